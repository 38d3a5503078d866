// The containers: a live list (from the events stream), actions on several at once, CPU and
// memory sparklines for the running ones on screen.

import { useEffect, useRef, useState } from 'preact/hooks';
import { post, del, jsonStream, Stream } from '../api';
import { containers, Summary, nameOf, healthOf, cpuPercent, memUsed, Port } from '../live';
import { href } from '../router';
import { Action, notify, Page, Sparkline, Failure } from '../ui';
import { duration, bytes } from '../api';

/** The list, re-rendered on every change of the live store. */
export function useContainers(): typeof containers {
  const [, tick] = useState(0);
  useEffect(() => {
    const off = containers.subscribe(() => tick((n) => n + 1));
    containers.start();
    return off;
  }, []);
  return containers;
}

/** One clock for every uptime on the page. */
let clockListeners = new Set<() => void>();
window.setInterval(() => clockListeners.forEach((l) => l()), 5000);
function useClock() {
  const [, tick] = useState(0);
  useEffect(() => {
    const l = () => tick((n) => n + 1);
    clockListeners.add(l);
    return () => clockListeners.delete(l);
  }, []);
}

function Uptime(props: { since?: number }) {
  useClock();
  if (props.since === undefined) return <span class="dim">—</span>;
  return <span>{duration(Date.now() / 1000 - props.since)}</span>;
}

export function PortLinks(props: { ports: Port[] }) {
  const seen = new Set<string>();
  return (
    <span class="ports">
      {props.ports.map((p) => {
        if (!p.PublicPort) return <span key={`${p.PrivatePort}/${p.Type}`}>{`${p.PrivatePort}/${p.Type}`}</span>;
        const host = !p.IP || p.IP === '0.0.0.0' || p.IP === '::' ? location.hostname : p.IP.includes(':') ? `[${p.IP}]` : p.IP;
        const label = `${p.PublicPort}→${p.PrivatePort}/${p.Type}`;
        if (seen.has(label)) return null;
        seen.add(label);
        return p.Type === 'tcp' ? (
          <a key={label} href={`http://${host}:${p.PublicPort}/`} target="_blank" rel="noopener noreferrer">
            {label}
          </a>
        ) : (
          <span key={label}>{label}</span>
        );
      })}
    </span>
  );
}

/** One observer for every row: which usage cells are on screen. */
const onScreen = new Map<Element, (visible: boolean) => void>();
const observer = new IntersectionObserver((es) => es.forEach((e) => onScreen.get(e.target)?.(e.isIntersecting)));

/** CPU and memory of a running container while its row is on screen. */
function Usage(props: { id: string; running: boolean }) {
  const ref = useRef<HTMLTableCellElement>(null);
  const [visible, setVisible] = useState(false);
  const [cpu, setCpu] = useState<number[]>([]);
  const [mem, setMem] = useState<number[]>([]);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    onScreen.set(el, setVisible);
    observer.observe(el);
    return () => {
      observer.unobserve(el);
      onScreen.delete(el);
    };
  }, []);
  useEffect(() => {
    if (!visible || !props.running) return;
    let s: Stream | null = jsonStream(`/containers/${props.id}/stats?stream=1`, (v) => {
      setCpu((a) => [...a.slice(-29), cpuPercent(v)]);
      setMem((a) => [...a.slice(-29), memUsed(v)]);
    });
    return () => {
      s?.close();
      s = null;
    };
  }, [visible, props.running, props.id]);
  const last = (a: number[]) => (a.length ? a[a.length - 1] : undefined);
  return (
    <td ref={ref} class="usage">
      {props.running && cpu.length ? (
        <>
          <span title="CPU">
            <Sparkline values={cpu} max={100} label="CPU" /> {last(cpu)!.toFixed(1)}%
          </span>
          <span title="memory">
            <Sparkline values={mem} label="memory" /> {bytes(last(mem))}
          </span>
        </>
      ) : (
        <span class="dim">—</span>
      )}
    </td>
  );
}

type Verb = { name: string; label: string; run: (id: string) => Promise<unknown>; danger?: boolean };

export const VERBS: Verb[] = [
  { name: 'start', label: 'Start', run: (id) => post(`/containers/${id}/start`) },
  { name: 'stop', label: 'Stop', run: (id) => post(`/containers/${id}/stop`) },
  { name: 'restart', label: 'Restart', run: (id) => post(`/containers/${id}/restart`) },
  { name: 'pause', label: 'Pause', run: (id) => post(`/containers/${id}/pause`) },
  { name: 'unpause', label: 'Resume', run: (id) => post(`/containers/${id}/unpause`) },
  { name: 'kill', label: 'Kill', run: (id) => post(`/containers/${id}/kill`), danger: true },
  { name: 'remove', label: 'Remove', run: (id) => del(`/containers/${id}?force=1`), danger: true },
];

/** Runs a verb on several containers at once; each failure is shown in the daemon's words. */
export async function runOn(verb: Verb, ids: string[]): Promise<void> {
  const results = await Promise.allSettled(ids.map((id) => verb.run(id)));
  results.forEach((r) => r.status === 'rejected' && notify(r.reason));
}

export function ContainersPage() {
  const store = useContainers();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [filter, setFilter] = useState('');
  const [all, setAll] = useState(true);
  const rows = [...store.rows.values()]
    .filter((c) => all || c.State === 'running')
    .filter((c) => !filter || nameOf(c).includes(filter) || c.Image.includes(filter) || c.Id.startsWith(filter))
    .sort((a, b) => b.Created - a.Created || nameOf(a).localeCompare(nameOf(b)));
  useEffect(() => {
    if (store.loaded && !performance.getEntriesByName('berth:containers-listed').length) {
      performance.mark('berth:containers-listed');
    }
  });
  const ids = [...selected].filter((id) => store.rows.has(id));
  const toggle = (id: string) =>
    setSelected((s) => {
      const n = new Set(s);
      n.has(id) ? n.delete(id) : n.add(id);
      return n;
    });
  const allOn = rows.length > 0 && rows.every((c) => selected.has(c.Id));
  return (
    <Page
      title={`Containers (${store.rows.size})`}
      actions={
        <>
          <input type="search" placeholder="filter by name, image, id" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
          <label>
            <input type="checkbox" checked={all} onChange={() => setAll(!all)} /> stopped too
          </label>
        </>
      }
    >
      <div class="bulk" data-selected={ids.length}>
        <span>{ids.length ? `${ids.length} selected` : 'Select containers to act on them'}</span>
        {VERBS.map((v) => (
          <Action key={v.name} name={v.name} danger={v.danger} disabled={!ids.length} action={() => runOn(v, ids)}>
            {v.label}
          </Action>
        ))}
      </div>
      <Failure error={store.error} />
      {!store.loaded ? (
        <p class="dim">Loading…</p>
      ) : (
        <table class="list containers">
          <thead>
            <tr>
              <th>
                <input type="checkbox" aria-label="select all" checked={allOn} onChange={() => setSelected(allOn ? new Set() : new Set(rows.map((c) => c.Id)))} />
              </th>
              <th>Name</th>
              <th>State</th>
              <th>Image</th>
              <th>Ports</th>
              <th>Uptime</th>
              <th>CPU / memory</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <Row key={c.Id} c={c} on={selected.has(c.Id)} toggle={toggle} />
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

function Row(props: { c: Summary; on: boolean; toggle: (id: string) => void }) {
  const c = props.c;
  const name = nameOf(c);
  const health = healthOf(c.Status);
  return (
    <tr data-name={name} data-state={c.State}>
      <td>
        <input type="checkbox" aria-label={`select ${name}`} checked={props.on} onChange={() => props.toggle(c.Id)} />
      </td>
      <td>
        <a href={href('containers', c.Id)}>{name}</a>
        <div class="dim mono">{c.Id.slice(0, 12)}</div>
      </td>
      <td>
        <span class={`state ${c.State}`} title={c.Status}>
          {c.State}
        </span>
        {health ? <span class={`health ${health}`}>{health}</span> : null}
      </td>
      <td class="mono">{c.Image}</td>
      <td>
        <PortLinks ports={c.Ports ?? []} />
      </td>
      <td>
        <Uptime since={c.startedAt} />
      </td>
      <Usage id={c.Id} running={c.State === 'running'} />
    </tr>
  );
}
