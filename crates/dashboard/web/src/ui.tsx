// Pieces every page uses: the error line (the daemon's words), buttons that show they are
// busy, sparklines, and loading of one request's answer.

import { ComponentChildren } from 'preact';
import { useEffect, useState, useCallback } from 'preact/hooks';
import { DaemonError } from './api';

type Note = { id: number; text: string; kind: 'error' | 'info' };
let notes: Note[] = [];
let nextNote = 1;
const noteListeners = new Set<() => void>();

/** Shows an error as the daemon worded it (or any other message). */
export function notify(e: unknown, kind: 'error' | 'info' = 'error'): void {
  const text = e instanceof DaemonError ? `Error response from daemon: ${e.message}` : e instanceof Error ? e.message : String(e);
  const id = nextNote++;
  notes = [...notes, { id, text, kind }].slice(-5);
  noteListeners.forEach((l) => l());
  window.setTimeout(() => dismiss(id), kind === 'error' ? 15000 : 4000);
}

function dismiss(id: number) {
  notes = notes.filter((n) => n.id !== id);
  noteListeners.forEach((l) => l());
}

export function Notes() {
  const [, tick] = useState(0);
  useEffect(() => {
    const l = () => tick((n) => n + 1);
    noteListeners.add(l);
    return () => noteListeners.delete(l);
  }, []);
  return (
    <div class="notes" role="status">
      {notes.map((n) => (
        <div key={n.id} class={`note ${n.kind}`} data-kind={n.kind} onClick={() => dismiss(n.id)}>
          {n.text}
        </div>
      ))}
    </div>
  );
}

/** A button that runs `action`, shows it is busy meanwhile, and reports its error. */
export function Action(props: { action: () => Promise<unknown>; children: ComponentChildren; disabled?: boolean; danger?: boolean; title?: string; name?: string }) {
  const [busy, setBusy] = useState(false);
  const run = useCallback(async () => {
    setBusy(true);
    try {
      await props.action();
    } catch (e) {
      notify(e);
    } finally {
      setBusy(false);
    }
  }, [props.action]);
  return (
    <button class={props.danger ? 'danger' : ''} disabled={busy || props.disabled} onClick={run} title={props.title} data-action={props.name}>
      {busy ? '…' : props.children}
    </button>
  );
}

/** The answer to one GET, loaded on mount and when `deps` change. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | null; error: DaemonError | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<DaemonError | null>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => live && (setData(d), setError(null)),
      (e) => live && setError(e instanceof DaemonError ? e : new DaemonError(0, String(e))),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { data, error, reload: () => setN((x) => x + 1) };
}

export function Failure(props: { error: DaemonError | null }) {
  return props.error ? <p class="failure">Error response from daemon: {props.error.message}</p> : null;
}

/** A small line chart of recent values (SVG; no library for 200 of them). */
export function Sparkline(props: { values: number[]; max?: number; label: string }) {
  const w = 80,
    h = 20;
  const vs = props.values;
  const max = Math.max(props.max ?? 0, ...vs, 1e-9);
  const pts = vs.map((v, i) => `${((i / Math.max(vs.length - 1, 1)) * w).toFixed(1)},${(h - (v / max) * (h - 2) - 1).toFixed(1)}`).join(' ');
  return (
    <svg class="spark" width={w} height={h} viewBox={`0 0 ${w} ${h}`} aria-label={props.label}>
      {vs.length > 1 ? <polyline points={pts} fill="none" stroke="currentColor" stroke-width="1.2" /> : null}
    </svg>
  );
}

export function Page(props: { title: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="page">
      <header class="page-head">
        <h1>{props.title}</h1>
        <div class="actions">{props.actions}</div>
      </header>
      {props.children}
    </section>
  );
}

/**
 * A component whose code is loaded when first shown (xterm.js and uPlot are most of the
 * page's weight and only a container's page uses them: the list loads without them).
 */
export function lazy<C extends (props: any) => any>(load: () => Promise<C>): C {
  let Loaded: C | null = null;
  let loading: Promise<void> | null = null;
  return function Lazy(props: Parameters<C>[0]) {
    const [, setReady] = useState(false);
    if (Loaded) return <Loaded {...(props as any)} />;
    loading ??= load().then((c) => {
      Loaded = c;
    });
    loading.then(() => setReady(true), (e) => notify(e));
    return <p class="dim">Loading…</p>;
  } as C;
}

/** A list table: its column headings, and its rows as children. */
export function Table(props: { class?: string; heads: ComponentChildren[]; children: ComponentChildren }) {
  return (
    <table class={`list ${props.class ?? ''}`}>
      <thead>
        <tr>
          {props.heads.map((h, i) => (
            <th key={i}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}

/** The remove button of a row. */
export function Remove(props: { action: () => Promise<unknown> }) {
  return (
    <Action name="remove" danger action={props.action}>
      Remove
    </Action>
  );
}
