// A container's stats as charts (uPlot): CPU, memory, network and block I/O, from the
// daemon's stats stream (one sample a second, as `docker stats` reads them).

import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { jsonStream, bytes, DaemonError } from '../api';
import { cpuPercent, memUsed } from '../live';
import { Failure } from '../ui';

const KEEP = 120;

type Series = { label: string; color: string };
type ChartSpec = { title: string; unit: (v: number) => string; series: Series[] };

const CHARTS: ChartSpec[] = [
  { title: 'CPU', unit: (v) => `${v.toFixed(1)}%`, series: [{ label: 'CPU %', color: '#2f7ed8' }] },
  { title: 'Memory', unit: bytes, series: [{ label: 'used', color: '#8e44ad' }] },
  { title: 'Network', unit: (v) => `${bytes(v)}/s`, series: [{ label: 'received', color: '#27ae60' }, { label: 'sent', color: '#e67e22' }] },
  { title: 'Block I/O', unit: (v) => `${bytes(v)}/s`, series: [{ label: 'read', color: '#16a085' }, { label: 'written', color: '#c0392b' }] },
];

function sums(s: any): { rx: number; tx: number; rd: number; wr: number } {
  let rx = 0,
    tx = 0,
    rd = 0,
    wr = 0;
  for (const n of Object.values(s?.networks ?? {}) as any[]) {
    rx += n.rx_bytes ?? 0;
    tx += n.tx_bytes ?? 0;
  }
  for (const e of s?.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = String(e.op).toLowerCase();
    if (op === 'read') rd += e.value ?? 0;
    if (op === 'write') wr += e.value ?? 0;
  }
  return { rx, tx, rd, wr };
}

export function StatsCharts(props: { id: string; running?: boolean }) {
  const refs = CHARTS.map(() => useRef<HTMLDivElement>(null));
  const [error, setError] = useState<DaemonError | null>(null);
  const [latest, setLatest] = useState<string[]>(CHARTS.map(() => ''));
  useEffect(() => {
    if (!props.running) return;
    const data: number[][][] = CHARTS.map((c) => [[], ...c.series.map(() => [])]);
    const plots = CHARTS.map((c, i) => {
      const el = refs[i].current!;
      return new uPlot(
        {
          width: Math.max(el.clientWidth, 300),
          height: 160,
          legend: { show: true },
          scales: { x: { time: true } },
          axes: [{}, { values: (_u: uPlot, vs: number[]) => vs.map(c.unit), size: 70 }],
          series: [{}, ...c.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, value: (_u: uPlot, v: number) => (v == null ? '—' : c.unit(v)) }))],
        },
        data[i] as uPlot.AlignedData,
        el,
      );
    });
    let prev: { t: number; rx: number; tx: number; rd: number; wr: number } | null = null;
    const s = jsonStream(
      `/containers/${props.id}/stats?stream=1`,
      (v) => {
        const t = Date.parse(v.read) / 1000 || Date.now() / 1000;
        const cur = { t, ...sums(v) };
        const dt = prev ? Math.max(cur.t - prev.t, 0.001) : 1;
        const rate = (k: 'rx' | 'tx' | 'rd' | 'wr') => (prev ? Math.max(0, (cur[k] - prev[k]) / dt) : 0);
        const values = [[cpuPercent(v)], [memUsed(v)], [rate('rx'), rate('tx')], [rate('rd'), rate('wr')]];
        prev = cur;
        values.forEach((vals, i) => {
          const d = data[i];
          d[0].push(t);
          vals.forEach((x, j) => d[j + 1].push(x));
          if (d[0].length > KEEP) d.forEach((col) => col.shift());
          plots[i].setData(d as uPlot.AlignedData);
        });
        setLatest(values.map((vals, i) => vals.map(CHARTS[i].unit).join(' / ')));
      },
      setError,
    );
    return () => {
      s.close();
      plots.forEach((p) => p.destroy());
    };
  }, [props.id, props.running]);
  if (!props.running) return <p class="dim">The container is not running: no stats.</p>;
  return (
    <div class="stats">
      <Failure error={error} />
      {CHARTS.map((c, i) => (
        <section key={c.title} class="chart" data-chart={c.title}>
          <h2>
            {c.title} <span class="dim">{latest[i]}</span>
          </h2>
          <div ref={refs[i]} />
        </section>
      ))}
    </div>
  );
}
