// Images: the list with sizes and tags, a pull with a progress bar per layer (the daemon's
// JSON progress messages, as `docker pull` shows them), remove, tag and prune.

import { useState } from 'preact/hooks';
import { get, post, del, request, Lines, bytes, shortId, ago, DaemonError } from '../api';
import { href } from '../router';
import { Action, Failure, notify, Page, useLoad, Table, Remove } from '../ui';

type Layer = { id: string; status: string; current?: number; total?: number };

export function ImagesPage() {
  const { data, error, reload } = useLoad<any[]>(() => get('/images/json'), []);
  return (
    <Page
      title="Images"
      actions={
        <>
          <Action name="prune-dangling" action={() => prune(false).then(reload)}>
            Prune dangling
          </Action>
          <Action name="prune-unused" danger action={() => prune(true).then(reload)}>
            Prune unused
          </Action>
        </>
      }
    >
      <Pull done={reload} />
      <Failure error={error} />
      {data ? (
        <Table class="images" heads={['Tags', 'Id', 'Created', 'Size', '']}>
            {data.map((im) => {
              const tags: string[] = (im.RepoTags ?? []).filter((t: string) => t !== '<none>:<none>');
              const ref = tags[0] ?? im.Id;
              return (
                <tr key={im.Id} data-image={ref}>
                  <td>
                    {tags.length ? (
                      tags.map((t) => (
                        <div key={t}>
                          <a href={href('images', t)}>{t}</a>
                        </div>
                      ))
                    ) : (
                      <a href={href('images', im.Id)} class="dim">
                        &lt;none&gt;
                      </a>
                    )}
                  </td>
                  <td class="mono">{shortId(im.Id)}</td>
                  <td>{ago(im.Created)}</td>
                  <td>{bytes(im.Size)}</td>
                  <td>
                    <Remove action={() => del(`/images/${encodeURIComponent(ref)}`).then(reload)} />
                  </td>
                </tr>
              );
            })}
          </Table>
      ) : null}
    </Page>
  );
}

async function prune(unused: boolean): Promise<void> {
  const q = unused ? `?filters=${encodeURIComponent(JSON.stringify({ dangling: ['false'] }))}` : '';
  const r: any = await post(`/images/prune${q}`);
  notify(`Removed ${(r?.ImagesDeleted ?? []).length} image(s), reclaimed ${bytes(r?.SpaceReclaimed ?? 0)}`, 'info');
}

/** `POST /images/create?fromImage=…&tag=…`, its progress messages shown per layer. */
function Pull(props: { done: () => void }) {
  const [ref, setRef] = useState('');
  const [layers, setLayers] = useState<Layer[]>([]);
  const [status, setStatus] = useState<string[]>([]);
  const [error, setError] = useState<DaemonError | null>(null);
  const [busy, setBusy] = useState(false);
  const pull = async () => {
    setBusy(true);
    setLayers([]);
    setStatus([]);
    setError(null);
    const [image, tag] = splitRef(ref.trim());
    try {
      const resp = await request('POST', `/images/create?fromImage=${encodeURIComponent(image)}&tag=${encodeURIComponent(tag)}`);
      const reader = resp.body!.getReader();
      const lines = new Lines();
      const byId = new Map<string, Layer>();
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        lines.push(r.value, (l) => {
          let m: any;
          try {
            m = JSON.parse(l);
          } catch {
            return;
          }
          if (m.error || m.errorDetail) {
            setError(new DaemonError(0, m.errorDetail?.message ?? m.error));
          } else if (m.id && m.status && !m.status.startsWith('Pulling from')) {
            byId.set(m.id, { id: m.id, status: m.status, current: m.progressDetail?.current, total: m.progressDetail?.total });
            setLayers([...byId.values()]);
          } else if (m.status) {
            setStatus((s) => [...s, m.id ? `${m.id}: ${m.status}` : m.status]);
          }
        });
      }
      props.done();
    } catch (e) {
      setError(e as DaemonError);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="pull">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (ref.trim()) pull();
        }}
      >
        <input placeholder="image to pull, e.g. registry:5000/app:1" value={ref} aria-label="image to pull" onInput={(e) => setRef((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={busy || !ref.trim()} data-action="pull">
          {busy ? 'Pulling…' : 'Pull'}
        </button>
      </form>
      {layers.length ? (
        <table class="layers">
          <tbody>
            {layers.map((l) => (
              <tr key={l.id} data-layer={l.id} data-status={l.status}>
                <td class="mono">{l.id}</td>
                <td>{l.status}</td>
                <td>
                  <progress max={l.total || 1} value={l.status === 'Pull complete' || l.status === 'Already exists' ? l.total || 1 : l.current ?? 0} />
                </td>
                <td class="dim">{l.total ? `${bytes(l.current ?? 0)} / ${bytes(l.total)}` : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {status.map((s, i) => (
        <div key={i} class="pull-status">
          {s}
        </div>
      ))}
      <Failure error={error} />
    </div>
  );
}

/** `registry:5000/app:1` → [`registry:5000/app`, `1`] (a digest stays with the name). */
export function splitRef(ref: string): [string, string] {
  if (ref.includes('@')) return [ref, ''];
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
}
