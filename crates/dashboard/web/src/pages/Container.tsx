// One container: its inspect data laid out, and tabs for logs, stats, processes, a terminal
// and its files.

import { useEffect, useState } from 'preact/hooks';
import { get } from '../api';
import { containers, nameOf } from '../live';
import { href } from '../router';
import { Action, Failure, Page, useLoad, lazy } from '../ui';
import { useContainers, VERBS, runOn, PortLinks } from './Containers';
import { Logs } from './Logs';

const StatsCharts = lazy(() => import('./StatsCharts').then((m) => m.StatsCharts));
const Terminal = lazy(() => import('./Terminal').then((m) => m.Terminal));
import { Files } from './Files';

const TABS = ['inspect', 'logs', 'stats', 'top', 'terminal', 'files'] as const;

export function ContainerPage(props: { id: string; tab?: string }) {
  const store = useContainers();
  const tab = (TABS as readonly string[]).includes(props.tab ?? '') ? props.tab! : 'inspect';
  const summary = store.rows.get(props.id) ?? [...store.rows.values()].find((c) => c.Id.startsWith(props.id) || nameOf(c) === props.id);
  // Inspect again whenever the live list says the container changed.
  const { data, error, reload } = useLoad(() => get(`/containers/${props.id}/json`), [props.id]);
  useEffect(() => reload(), [summary?.State, summary?.Status]);
  const name = data ? data.Name.replace(/^\//, '') : summary ? nameOf(summary) : props.id;
  const id = data?.Id ?? props.id;
  return (
    <Page
      title={
        <>
          <a href={href('containers')}>Containers</a> / {name}{' '}
          <span class={`state ${data?.State?.Status ?? summary?.State ?? ''}`}>{data?.State?.Status ?? summary?.State}</span>
        </>
      }
      actions={VERBS.map((v) => (
        <Action key={v.name} name={v.name} danger={v.danger} action={async () => {
          await runOn(v, [id]);
          if (v.name === 'remove') location.hash = href('containers');
        }}>
          {v.label}
        </Action>
      ))}
    >
      <Failure error={error} />
      <nav class="tabs">
        {TABS.map((t) => (
          <a key={t} class={t === tab ? 'on' : ''} href={href('containers', props.id, t)}>
            {t}
          </a>
        ))}
      </nav>
      {data ? (
        <div class="tab-body" data-tab={tab}>
          {tab === 'inspect' && <Inspect c={data} />}
          {tab === 'logs' && <Logs id={id} tty={!!data.Config?.Tty} />}
          {tab === 'stats' && <StatsCharts id={id} running={data.State?.Running} />}
          {tab === 'top' && <Top id={id} running={data.State?.Running} />}
          {tab === 'terminal' && <Terminal id={id} running={data.State?.Running && !data.State?.Paused} />}
          {tab === 'files' && <Files id={id} />}
        </div>
      ) : null}
    </Page>
  );
}

function KV(props: { rows: [string, unknown][] }) {
  return (
    <table class="kv">
      <tbody>
        {props.rows
          .filter(([, v]) => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && !v.length))
          .map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td class="mono">{typeof v === 'object' && !(v as any)?.type ? (Array.isArray(v) ? (v as unknown[]).join('\n') : JSON.stringify(v, null, 1)) : (v as any)}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

function Inspect(props: { c: any }) {
  const c = props.c;
  const s = c.State ?? {};
  const nets = Object.entries(c.NetworkSettings?.Networks ?? {}) as [string, any][];
  const ports: any[] = [];
  for (const [k, binds] of Object.entries(c.NetworkSettings?.Ports ?? {}) as [string, any][]) {
    const [port, type] = k.split('/');
    for (const b of binds ?? []) ports.push({ IP: b.HostIp, PublicPort: Number(b.HostPort), PrivatePort: Number(port), Type: type });
  }
  const [raw, setRaw] = useState(false);
  return (
    <div class="inspect">
      <div class="cards">
        <section>
          <h2>State</h2>
          <KV
            rows={[
              ['Status', s.Status],
              ['Health', s.Health?.Status],
              ['Started', s.StartedAt && !s.StartedAt.startsWith('0001') ? new Date(s.StartedAt).toLocaleString() : ''],
              ['Finished', s.FinishedAt && !s.FinishedAt.startsWith('0001') ? new Date(s.FinishedAt).toLocaleString() : ''],
              ['Exit code', s.Running ? '' : String(s.ExitCode)],
              ['OOM killed', s.OOMKilled ? 'yes' : ''],
              ['Error', s.Error],
              ['Pid', s.Pid || ''],
              ['Restart count', c.RestartCount ? String(c.RestartCount) : ''],
            ]}
          />
        </section>
        <section>
          <h2>Configuration</h2>
          <KV
            rows={[
              ['Id', c.Id],
              ['Image', c.Config?.Image],
              ['Command', [...(c.Config?.Entrypoint ?? []), ...(c.Config?.Cmd ?? [])].join(' ')],
              ['Working dir', c.Config?.WorkingDir],
              ['User', c.Config?.User],
              ['Tty', c.Config?.Tty ? 'yes' : ''],
              ['Restart policy', c.HostConfig?.RestartPolicy?.Name],
              ['Created', new Date(c.Created).toLocaleString()],
            ]}
          />
        </section>
        <section>
          <h2>Network</h2>
          <KV rows={nets.map(([n, e]) => [n, `${e.IPAddress || '—'}${e.Aliases?.length ? `  aliases: ${e.Aliases.join(', ')}` : ''}`] as [string, unknown])} />
          {ports.length ? <PortLinks ports={ports} /> : null}
        </section>
        <section>
          <h2>Mounts</h2>
          <KV rows={(c.Mounts ?? []).map((m: any) => [m.Destination, `${m.Type} ${m.Name || m.Source}${m.RW ? '' : ' (read-only)'}`] as [string, unknown])} />
        </section>
        <section>
          <h2>Environment</h2>
          <KV rows={(c.Config?.Env ?? []).map((e: string) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, '']) as [string, unknown])} />
        </section>
        <section>
          <h2>Labels</h2>
          <KV rows={Object.entries(c.Config?.Labels ?? {}) as [string, unknown][]} />
        </section>
      </div>
      <button onClick={() => setRaw(!raw)}>{raw ? 'Hide' : 'Show'} the whole inspect JSON</button>
      {raw ? <pre class="raw">{JSON.stringify(c, null, 2)}</pre> : null}
    </div>
  );
}

function Top(props: { id: string; running?: boolean }) {
  const { data, error, reload } = useLoad(() => (props.running ? get(`/containers/${props.id}/top?ps_args=-ef`) : Promise.resolve(null)), [props.id, props.running]);
  if (!props.running) return <p class="dim">The container is not running.</p>;
  return (
    <div>
      <Failure error={error} />
      <button onClick={reload}>Refresh</button>
      {data ? (
        <table class="list top">
          <thead>
            <tr>
              {data.Titles.map((t: string) => (
                <th key={t}>{t}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.Processes.map((p: string[], i: number) => (
              <tr key={i}>
                {p.map((v, j) => (
                  <td key={j} class="mono">
                    {v}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}

export { containers };
