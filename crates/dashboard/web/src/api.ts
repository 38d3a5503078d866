// The page's only way to the daemon: Engine API requests, the ones the berth CLI sends
// (`/v1.44/...`), through the dashboard's `/api` prefix. Streams (events, stats, followed
// logs) and the terminal's hijacked exec come over WebSockets that carry the same requests
// (see crates/dashboard/src/ws.rs): browsers allow only six HTTP/1.1 connections per host.

export const API = '/api/v1.44';
const KEY_STORE = 'berth.key';

/** The session key from the login redirect (`/#key=...`), kept in this origin's storage. */
export function takeKey(): void {
  const m = location.hash.match(/^#key=([0-9a-f]+)/);
  if (m) {
    localStorage.setItem(KEY_STORE, m[1]);
    history.replaceState(null, '', location.pathname);
  }
}

function key(): string {
  return localStorage.getItem(KEY_STORE) ?? '';
}

/** An error answer, in the daemon's words. */
export class DaemonError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

async function errorOf(resp: Response): Promise<DaemonError> {
  const text = await resp.text();
  let message = text.trim();
  try {
    const v = JSON.parse(text);
    if (v && typeof v.message === 'string') message = v.message;
  } catch {
    /* not JSON: the text itself */
  }
  return new DaemonError(resp.status, message || `${resp.status} ${resp.statusText}`);
}

/** One Engine API request; throws `DaemonError` on an error status. */
export async function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const init: RequestInit = { method, headers: { 'X-Berth-Key': key(), ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Blob ? body : JSON.stringify(body);
    if (!(body instanceof Blob) && !headers['Content-Type']) {
      (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
    }
  }
  const resp = await fetch(API + path, init);
  if (!resp.ok) throw await errorOf(resp);
  return resp;
}

export async function get<T = any>(path: string): Promise<T> {
  return (await request('GET', path)).json();
}

export async function post<T = any>(path: string, body?: unknown): Promise<T | null> {
  const resp = await request('POST', path, body);
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

export async function del(path: string): Promise<void> {
  await request('DELETE', path);
}

/** `filters` as the API takes it. */
export function filters(f: Record<string, string[]>): string {
  return encodeURIComponent(JSON.stringify(f));
}

/** Splits a byte stream into lines (JSON messages, log lines). */
export class Lines {
  private buf = '';
  private dec = new TextDecoder();
  push(chunk: Uint8Array, each: (line: string) => void): void {
    this.buf += this.dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).replace(/\r$/, '');
      this.buf = this.buf.slice(i + 1);
      if (line) each(line);
    }
  }
}

/** A running stream; `close()` ends it. */
export interface Stream {
  close(): void;
}

function wsURL(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${API}${path}`;
}

function socket(path: string): WebSocket {
  const ws = new WebSocket(wsURL(path), ['berth', `berth.key.${key()}`]);
  ws.binaryType = 'arraybuffer';
  return ws;
}

/**
 * A GET whose answer streams, chunk by chunk. `onError` gets the daemon's message when it
 * refuses (close codes 4000 + HTTP status) or when the connection breaks.
 */
export function stream(path: string, onChunk: (b: Uint8Array) => void, onError?: (e: DaemonError) => void, onEnd?: () => void): Stream {
  const ws = socket(path);
  let refusal = '';
  let closed = false;
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') refusal = ev.data;
    else onChunk(new Uint8Array(ev.data));
  };
  ws.onclose = (ev) => {
    if (closed) return;
    if (ev.code >= 4000) {
      let msg = refusal;
      try {
        msg = JSON.parse(refusal).message ?? refusal;
      } catch {
        /* plain text */
      }
      onError?.(new DaemonError(ev.code - 4000, msg));
    } else if (ev.code !== 1000) {
      onError?.(new DaemonError(0, `the stream ${path} broke (${ev.code})`));
    }
    onEnd?.();
  };
  return {
    close() {
      closed = true;
      ws.close();
    },
  };
}

/** A stream of JSON messages, one per line (`/events`, `/stats`). */
export function jsonStream<T = any>(path: string, each: (v: T) => void, onError?: (e: DaemonError) => void): Stream {
  const lines = new Lines();
  return stream(
    path,
    (b) =>
      lines.push(b, (l) => {
        try {
          each(JSON.parse(l));
        } catch {
          /* a partial or non-JSON line: skip */
        }
      }),
    onError,
  );
}

/** A hijacked connection (`/exec/{id}/start`): bytes both ways. */
export function hijack(path: string, onData: (b: Uint8Array) => void, onEnd: (e?: DaemonError) => void): { send(d: string | Uint8Array): void; close(): void } {
  const ws = socket(path);
  let refusal = '';
  const pending: (string | Uint8Array)[] = [];
  ws.onopen = () => pending.splice(0).forEach((d) => ws.send(d));
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') refusal = ev.data;
    else onData(new Uint8Array(ev.data));
  };
  ws.onclose = (ev) => {
    if (ev.code >= 4000) {
      let msg = refusal;
      try {
        msg = JSON.parse(refusal).message ?? refusal;
      } catch {
        /* plain text */
      }
      onEnd(new DaemonError(ev.code - 4000, msg));
    } else onEnd();
  };
  return {
    send(d) {
      if (ws.readyState === WebSocket.OPEN) ws.send(d);
      else if (ws.readyState === WebSocket.CONNECTING) pending.push(d);
    },
    close() {
      ws.close();
    },
  };
}

/**
 * Docker's multiplexed stream (logs and attach of a container without a tty): frames of an
 * 8-byte header (stream, 0, 0, 0, size as big-endian u32) and the payload.
 */
export class Demux {
  private buf = new Uint8Array(0);
  push(chunk: Uint8Array, each: (stream: number, payload: Uint8Array) => void): void {
    const all = new Uint8Array(this.buf.length + chunk.length);
    all.set(this.buf);
    all.set(chunk, this.buf.length);
    let off = 0;
    while (all.length - off >= 8) {
      const size = ((all[off + 4] << 24) >>> 0) + (all[off + 5] << 16) + (all[off + 6] << 8) + all[off + 7];
      if (all.length - off - 8 < size) break;
      each(all[off], all.subarray(off + 8, off + 8 + size));
      off += 8 + size;
    }
    this.buf = all.slice(off);
  }
}

/** Human sizes as docker prints them (decimal units). */
export function bytes(n: number | undefined | null): string {
  if (n == null || !isFinite(n) || n < 0) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)}${units[i]}`;
}

/** "3 minutes", as docker's human durations. */
export function duration(secs: number): string {
  if (secs < 1) return 'Less than a second';
  if (secs < 60) return `${Math.floor(secs)} second${Math.floor(secs) === 1 ? '' : 's'}`;
  const m = Math.floor(secs / 60);
  if (m < 60) return m === 1 ? 'About a minute' : `${m} minutes`;
  const h = Math.floor(m / 60);
  if (h < 48) return h === 1 ? 'About an hour' : `${h} hours`;
  const d = Math.floor(h / 24);
  return d < 14 ? `${d} days` : `${Math.floor(d / 7)} weeks`;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

export function ago(unixSecs: number): string {
  return `${duration(Date.now() / 1000 - unixSecs)} ago`;
}

/** A request to the dashboard's own endpoint (`/compose/{project}/up`), not the Engine API. */
export async function dashboardPost<T = any>(path: string, body?: unknown): Promise<T> {
  const resp = await fetch(path, {
    method: 'POST',
    headers: { 'X-Berth-Key': key(), 'Content-Type': 'application/json' },
    body: body === undefined ? '' : JSON.stringify(body),
  });
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}
