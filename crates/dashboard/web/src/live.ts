// The containers list, kept live from the daemon's `/events` stream (no polling): the list
// is read once, then each container event makes the page read again just the containers it
// names (one request for a burst of events, `filters={"id":[...]}`); `destroy` removes one.

import { get, filters, jsonStream, DaemonError, Stream } from './api';

export interface Port {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

export interface Summary {
  Id: string;
  Names: string[];
  Image: string;
  State: string;
  Status: string;
  Created: number;
  Ports: Port[];
  Labels: Record<string, string> | null;
  /** When it started (seconds), from a start event seen live, else estimated from `Status`. */
  startedAt?: number;
}

type Listener = () => void;

/** Docker's "Up 3 minutes" back to an approximate start time. */
function startedFromStatus(status: string, now: number): number | undefined {
  const m = status.match(/^Up (Less than a second|About a minute|About an hour|(\d+) (second|minute|hour|day|week|month|year)s?)/);
  if (!m) return undefined;
  const unit: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86400, week: 604800, month: 2592000, year: 31536000 };
  const secs = m[1] === 'Less than a second' ? 0 : m[1] === 'About a minute' ? 60 : m[1] === 'About an hour' ? 3600 : Number(m[2]) * unit[m[3]];
  return now - secs;
}

export class Containers {
  rows = new Map<string, Summary>();
  loaded = false;
  error: DaemonError | null = null;
  /** Milliseconds from navigation start to the first full list on screen (set by the page). */
  private listeners = new Set<Listener>();
  private pending = new Set<string>();
  private starts = new Map<string, number>();
  private timer: number | undefined;
  private events: Stream | null = null;

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private emit() {
    this.listeners.forEach((l) => l());
  }

  /** Subscribes to events first, then reads the list, so no change falls in between. */
  async start(): Promise<void> {
    if (this.events) return;
    this.events = jsonStream(
      `/events?filters=${filters({ type: ['container'] })}`,
      (ev) => this.onEvent(ev),
      (e) => {
        this.error = e;
        this.emit();
      },
    );
    try {
      const list: Summary[] = await get('/containers/json?all=1');
      performance.mark('berth:containers-fetched');
      const now = Date.now() / 1000;
      this.rows.clear();
      for (const c of list) this.rows.set(c.Id, this.withStart(c, now));
      this.loaded = true;
      this.error = null;
    } catch (e) {
      this.error = e as DaemonError;
    }
    this.emit();
  }

  private withStart(c: Summary, now: number): Summary {
    const live = this.starts.get(c.Id);
    c.startedAt = c.State === 'running' || c.State === 'paused' ? (live ?? this.rows.get(c.Id)?.startedAt ?? startedFromStatus(c.Status, now)) : undefined;
    return c;
  }

  private onEvent(ev: any) {
    const id: string = ev.Actor?.ID ?? ev.id;
    if (!id) return;
    const action: string = ev.Action ?? ev.status ?? '';
    if (action === 'start' || action === 'restart') this.starts.set(id, ev.time ?? Date.now() / 1000);
    if (action === 'destroy') {
      this.starts.delete(id);
      if (this.rows.delete(id)) this.emit();
      return;
    }
    this.pending.add(id);
    if (this.timer === undefined) this.timer = window.setTimeout(() => this.flush(), 40);
  }

  private async flush() {
    this.timer = undefined;
    const ids = [...this.pending];
    this.pending.clear();
    if (!ids.length) return;
    try {
      const list: Summary[] = await get(`/containers/json?all=1&filters=${filters({ id: ids })}`);
      const now = Date.now() / 1000;
      for (const c of list) this.rows.set(c.Id, this.withStart(c, now));
      this.emit();
    } catch (e) {
      this.error = e as DaemonError;
      this.emit();
    }
  }
}

export const containers = new Containers();

/** A container's name without docker's leading slash. */
export function nameOf(c: { Names?: string[]; Id: string }): string {
  return (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, '');
}

/** The health word of a status ("Up 3 minutes (healthy)"). */
export function healthOf(status: string): string {
  const m = status.match(/\((healthy|unhealthy|health: starting)\)/);
  return m ? m[1].replace('health: ', '') : '';
}

/** CPU percent of one stats sample, as `docker stats` computes it. */
export function cpuPercent(s: any): number {
  const cpu = s?.cpu_stats?.cpu_usage?.total_usage ?? 0;
  const pre = s?.precpu_stats?.cpu_usage?.total_usage ?? 0;
  const sys = s?.cpu_stats?.system_cpu_usage ?? 0;
  const presys = s?.precpu_stats?.system_cpu_usage ?? 0;
  const n = s?.cpu_stats?.online_cpus || s?.cpu_stats?.cpu_usage?.percpu_usage?.length || 1;
  const dc = cpu - pre;
  const ds = sys - presys;
  return dc > 0 && ds > 0 ? (dc / ds) * n * 100 : 0;
}

/** Memory in use, as `docker stats` counts it (less the page cache). */
export function memUsed(s: any): number {
  const m = s?.memory_stats ?? {};
  const cache = m.stats?.inactive_file ?? m.stats?.total_inactive_file ?? m.stats?.cache ?? 0;
  return Math.max(0, (m.usage ?? 0) - cache);
}
