// One image: its configuration, history, and what no other desktop tool shows — berth's
// per-layer waste analysis and its lint findings (`/berth/images/{name}/analyze|lint`).

import { useState } from 'preact/hooks';
import { get, post, del, bytes, shortId, ago } from '../api';
import { href } from '../router';
import { Action, Failure, Page, useLoad, Table } from '../ui';
import { splitRef } from './Images';

export function ImagePage(props: { name: string }) {
  const n = encodeURIComponent(props.name);
  const inspect = useLoad<any>(() => get(`/images/${n}/json`), [props.name]);
  const history = useLoad<any[]>(() => get(`/images/${n}/history`), [props.name]);
  const analysis = useLoad<any>(() => get(`/berth/images/${n}/analyze?changes=20`), [props.name]);
  const lint = useLoad<any>(() => get(`/berth/images/${n}/lint`), [props.name]);
  const [tag, setTag] = useState('');
  const im = inspect.data;
  return (
    <Page
      title={
        <>
          <a href={href('images')}>Images</a> / {props.name}
        </>
      }
      actions={
        <>
          <input placeholder="new tag, e.g. app:2" value={tag} aria-label="new tag" onInput={(e) => setTag((e.target as HTMLInputElement).value)} />
          <Action
            name="tag"
            disabled={!tag.trim()}
            action={async () => {
              const [repo, t] = splitRef(tag.trim());
              await post(`/images/${n}/tag?repo=${encodeURIComponent(repo)}&tag=${encodeURIComponent(t)}`);
              location.hash = href('images', tag.trim().includes(':') ? tag.trim() : `${tag.trim()}:latest`);
            }}
          >
            Tag
          </Action>
          <Action
            name="remove"
            danger
            action={async () => {
              await del(`/images/${n}`);
              location.hash = href('images');
            }}
          >
            Remove
          </Action>
        </>
      }
    >
      <Failure error={inspect.error} />
      {im ? (
        <table class="kv">
          <tbody>
            <tr>
              <th>Id</th>
              <td class="mono">{im.Id}</td>
            </tr>
            <tr>
              <th>Tags</th>
              <td>{(im.RepoTags ?? []).join(', ')}</td>
            </tr>
            <tr>
              <th>Size</th>
              <td>{bytes(im.Size)}</td>
            </tr>
            <tr>
              <th>Created</th>
              <td>{new Date(im.Created).toLocaleString()}</td>
            </tr>
            <tr>
              <th>Command</th>
              <td class="mono">{[...(im.Config?.Entrypoint ?? []), ...(im.Config?.Cmd ?? [])].join(' ')}</td>
            </tr>
          </tbody>
        </table>
      ) : null}
      <section class="lint">
        <h2>Lint findings</h2>
        <Failure error={lint.error} />
        {lint.data ? (
          lint.data.Findings?.length ? (
            <ul>
              {lint.data.Findings.map((f: any, i: number) => (
                <li key={i} class={`finding ${f.Severity}`} data-rule={f.Rule}>
                  <b>{f.Rule}</b> ({f.Severity}) {f.Message}
                  {f.Bytes ? <span class="dim"> — {bytes(f.Bytes)}</span> : null}
                </li>
              ))}
            </ul>
          ) : (
            <p class="dim">No findings.</p>
          )
        ) : null}
      </section>
      <section class="analysis">
        <h2>Layers and waste</h2>
        <Failure error={analysis.error} />
        {analysis.data ? <Analysis a={analysis.data} /> : null}
      </section>
      <section class="history">
        <h2>History</h2>
        <Failure error={history.error} />
        {history.data ? (
          <Table heads={['Layer', 'Created', 'Created by', 'Size']}>
              {history.data.map((h, i) => (
                <tr key={i}>
                  <td class="mono">{h.Id && h.Id !== '<missing>' ? shortId(h.Id) : '<missing>'}</td>
                  <td>{h.Created ? ago(h.Created) : ''}</td>
                  <td class="mono created-by">{h.CreatedBy}</td>
                  <td>{bytes(h.Size)}</td>
                </tr>
              ))}
            </Table>
        ) : null}
      </section>
    </Page>
  );
}

function Analysis(props: { a: any }) {
  const a = props.a;
  const max = Math.max(...a.Layers.map((l: any) => l.Size), 1);
  return (
    <div>
      <p>
        {bytes(a.Size)} in {a.Layers.length} layer(s); wasted {bytes(a.WastedBytes)}; efficiency <b>{(a.Efficiency * 100).toFixed(1)}%</b>
        {a.User ? `; runs as ${a.User}` : '; runs as root'}
      </p>
      <Table class="layers-analysis" heads={['#', 'Instruction', 'Size', 'Added / changed / deleted', 'Wasted']}>
          {a.Layers.map((l: any) => (
            <tr key={l.Index} data-layer-index={l.Index}>
              <td>{l.Index}</td>
              <td class="mono created-by">{l.CreatedBy}</td>
              <td>
                <div class="bar" style={{ width: `${Math.max(2, (l.Size / max) * 120)}px` }} /> {bytes(l.Size)}
              </td>
              <td>
                {l.Added} / {l.Changed} / {l.Deleted}
              </td>
              <td class={l.WastedBytes ? 'waste' : 'dim'}>{bytes(l.WastedBytes)}</td>
            </tr>
          ))}
        </Table>
      {a.Wasted?.length ? (
        <>
          <h3>Wasted files</h3>
          <Table heads={['Path', 'Size', 'Added in', 'Removed in', 'How']}>
              {a.Wasted.map((w: any, i: number) => (
                <tr key={i}>
                  <td class="mono">{w.Path}</td>
                  <td>{bytes(w.Size)}</td>
                  <td>{w.AddedIn}</td>
                  <td>{w.RemovedIn}</td>
                  <td>{w.How}</td>
                </tr>
              ))}
            </Table>
        </>
      ) : null}
    </div>
  );
}
