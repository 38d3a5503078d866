// Compose projects, found by docker compose's labels on the containers (as `docker compose
// ls` finds them), grouped with their services. down, stop, start and restart are Engine API
// requests from the labels alone; up needs the project's files (crates/dashboard/src/compose.rs).

import { useEffect } from 'preact/hooks';
import { get, post, del, dashboardPost, filters, DaemonError } from '../api';
import { Summary, nameOf } from '../live';
import { href } from '../router';
import { Action, notify, Page, Table, Failure } from '../ui';
import { useContainers, PortLinks } from './Containers';

const P = 'com.docker.compose.project';
const KNOWN = 'berth.compose-projects';

type Known = Record<string, { WorkingDir: string; ConfigFiles: string }>;

function known(): Known {
  try {
    return JSON.parse(localStorage.getItem(KNOWN) ?? '{}');
  } catch {
    return {};
  }
}

/** Every failure of a batch, in the daemon's words; throws the first so the button shows it. */
async function each<T>(items: T[], f: (x: T) => Promise<unknown>): Promise<void> {
  const r = await Promise.allSettled(items.map(f));
  const failed = r.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
  failed.slice(1).forEach((x) => notify(x.reason));
  if (failed.length) throw failed[0].reason;
}

async function projectContainers(project: string): Promise<Summary[]> {
  return get(`/containers/json?all=1&filters=${filters({ label: [`${P}=${project}`] })}`);
}

/** `docker compose down`: stop and remove the containers, then the project's networks. */
export async function down(project: string): Promise<void> {
  const cs = await projectContainers(project);
  await each(
    cs.filter((c) => c.State === 'running' || c.State === 'paused'),
    (c) => post(`/containers/${c.Id}/stop`),
  );
  await each(cs, (c) => del(`/containers/${c.Id}?force=1`));
  const nets: any[] = await get(`/networks?filters=${filters({ label: [`${P}=${project}`] })}`);
  await each(nets, (n) => del(`/networks/${n.Id}`));
}

async function verb(project: string, v: 'stop' | 'start' | 'restart'): Promise<void> {
  const cs = await projectContainers(project);
  const want = v === 'start' ? cs.filter((c) => c.State !== 'running') : v === 'stop' ? cs.filter((c) => c.State === 'running') : cs;
  await each(want, (c) => post(`/containers/${c.Id}/${v}`));
}

export function ComposePage() {
  const store = useContainers();
  const projects = new Map<string, Summary[]>();
  for (const c of store.rows.values()) {
    const p = c.Labels?.[P];
    if (p) projects.set(p, [...(projects.get(p) ?? []), c]);
  }
  // Remember where each project's files are, so `up` still works after `down`.
  useEffect(() => {
    const k = known();
    let changed = false;
    for (const [p, cs] of projects) {
      const l = cs[0].Labels ?? {};
      const files = { WorkingDir: l[`${P}.working_dir`] ?? '', ConfigFiles: l[`${P}.config_files`] ?? '' };
      if (files.WorkingDir && JSON.stringify(k[p]) !== JSON.stringify(files)) {
        k[p] = files;
        changed = true;
      }
    }
    if (changed) localStorage.setItem(KNOWN, JSON.stringify(k));
  });
  const gone = Object.keys(known()).filter((p) => !projects.has(p));
  return (
    <Page title="Compose projects">
      <Failure error={store.error} />
      {!projects.size && store.loaded ? <p class="dim">No compose project has containers here.</p> : null}
      {[...projects.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([p, cs]) => (
          <Project key={p} name={p} containers={cs} />
        ))}
      {gone.length ? (
        <section class="project down">
          <h2>Down (their files are known)</h2>
          {gone.map((p) => (
            <div key={p} class="project-row" data-project={p}>
              <b>{p}</b> <span class="dim mono">{known()[p].WorkingDir}</span>
              <Action name="up" action={() => up(p)}>
                Up
              </Action>
              <button
                onClick={() => {
                  const k = known();
                  delete k[p];
                  localStorage.setItem(KNOWN, JSON.stringify(k));
                  location.reload();
                }}
              >
                Forget
              </button>
            </div>
          ))}
        </section>
      ) : null}
    </Page>
  );
}

async function up(project: string): Promise<void> {
  const r = await dashboardPost(`/compose/${encodeURIComponent(project)}/up`, known()[project] ?? {});
  notify(`${project}: up (${(r.Containers ?? []).length} container(s))`, 'info');
}

function Project(props: { name: string; containers: Summary[] }) {
  const services = new Map<string, Summary[]>();
  for (const c of props.containers) {
    const s = c.Labels?.['com.docker.compose.service'] ?? '?';
    services.set(s, [...(services.get(s) ?? []), c]);
  }
  const running = props.containers.filter((c) => c.State === 'running').length;
  const dir = props.containers[0].Labels?.[`${P}.working_dir`];
  return (
    <section class="project" data-project={props.name}>
      <header class="page-head">
        <h2>
          {props.name} <span class="dim">{running}/{props.containers.length} running</span>
        </h2>
        <div class="actions">
          <Action name="up" action={() => up(props.name)}>
            Up
          </Action>
          <Action name="restart" action={() => verb(props.name, 'restart')}>
            Restart
          </Action>
          <Action name="stop" action={() => verb(props.name, 'stop')}>
            Stop
          </Action>
          <Action name="start" action={() => verb(props.name, 'start')}>
            Start
          </Action>
          <Action name="down" danger action={() => down(props.name)}>
            Down
          </Action>
        </div>
      </header>
      {dir ? <div class="dim mono">{dir}</div> : null}
      <Table heads={['Service', 'Container', 'State', 'Image', 'Ports']}>
          {[...services.entries()].flatMap(([s, cs]) =>
            cs.map((c) => (
              <tr key={c.Id} data-service={s} data-state={c.State}>
                <td>{s}</td>
                <td>
                  <a href={href('containers', c.Id)}>{nameOf(c)}</a>
                </td>
                <td>
                  <span class={`state ${c.State}`}>{c.State}</span>
                </td>
                <td class="mono">{c.Image}</td>
                <td>
                  <PortLinks ports={c.Ports ?? []} />
                </td>
              </tr>
            )),
          )}
        </Table>
    </section>
  );
}

export type { DaemonError };
