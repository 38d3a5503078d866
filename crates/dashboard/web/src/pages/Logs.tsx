// A container's logs: the last lines, then followed live (`follow=1` over a WebSocket),
// with the daemon's timestamps and a search that filters and highlights.

import { useEffect, useRef, useState } from 'preact/hooks';
import { stream, Demux, Lines, Stream, DaemonError } from '../api';
import { Failure } from '../ui';

type Line = { n: number; stream: number; ts: string; text: string };
const MAX_LINES = 5000;

export function Logs(props: { id: string; tty: boolean }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [follow, setFollow] = useState(true);
  const [timestamps, setTimestamps] = useState(true);
  const [search, setSearch] = useState('');
  const [error, setError] = useState<DaemonError | null>(null);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    setLines([]);
    setError(null);
    let n = 0;
    const batch: Line[] = [];
    let scheduled = false;
    const add = (streamNo: number, text: string) => {
      // timestamps=1: each line starts with the daemon's RFC 3339 time and a space.
      const sp = text.indexOf(' ');
      batch.push({ n: n++, stream: streamNo, ts: sp > 0 ? text.slice(0, sp) : '', text: sp > 0 ? text.slice(sp + 1) : text });
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(() => {
          scheduled = false;
          const add = batch.splice(0);
          setLines((ls) => [...ls, ...add].slice(-MAX_LINES));
        });
      }
    };
    const out = new Lines(),
      err = new Lines();
    const demux = new Demux();
    const s: Stream = stream(
      `/containers/${props.id}/logs?stdout=1&stderr=1&timestamps=1&tail=1000${follow ? '&follow=1' : ''}`,
      (b) => {
        if (props.tty) out.push(b, (l) => add(1, l));
        else demux.push(b, (no, payload) => (no === 2 ? err : out).push(payload, (l) => add(no, l)));
      },
      setError,
    );
    return () => s.close();
  }, [props.id, follow]);
  useEffect(() => {
    const el = box.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [lines, follow]);
  const q = search.toLowerCase();
  const shown = q ? lines.filter((l) => l.text.toLowerCase().includes(q)) : lines;
  return (
    <div class="logs">
      <div class="toolbar">
        <label>
          <input type="checkbox" checked={follow} onChange={() => setFollow(!follow)} /> follow
        </label>
        <label>
          <input type="checkbox" checked={timestamps} onChange={() => setTimestamps(!timestamps)} /> timestamps
        </label>
        <input type="search" placeholder="search the logs" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        <span class="dim">
          {shown.length} of {lines.length} lines
        </span>
      </div>
      <Failure error={error} />
      <div class="log-lines mono" ref={box}>
        {shown.map((l) => (
          <div key={l.n} class={l.stream === 2 ? 'stderr' : ''}>
            {timestamps && l.ts ? <span class="ts">{l.ts.replace('T', ' ').replace(/\.\d+Z$/, 'Z')} </span> : null}
            {q ? <Highlight text={l.text} q={q} /> : l.text}
          </div>
        ))}
      </div>
    </div>
  );
}

function Highlight(props: { text: string; q: string }) {
  const parts: (string | preact.JSX.Element)[] = [];
  const lower = props.text.toLowerCase();
  let i = 0;
  let at: number;
  while ((at = lower.indexOf(props.q, i)) >= 0) {
    parts.push(props.text.slice(i, at));
    parts.push(<mark key={at}>{props.text.slice(at, at + props.q.length)}</mark>);
    i = at + props.q.length;
  }
  parts.push(props.text.slice(i));
  return <>{parts}</>;
}
