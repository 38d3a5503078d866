// A container's files through the archive API (`GET /containers/{id}/archive?path=…`, what
// `docker cp` uses): a directory is listed by reading the headers of the tar the daemon
// sends (its children only are kept; file contents are skipped as they stream by), a file
// is downloaded by taking it out of its one-entry tar.

import { useEffect, useState } from 'preact/hooks';
import { request, bytes, DaemonError } from '../api';
import { Table, Failure } from '../ui';

type Entry = { name: string; type: 'dir' | 'file' | 'link' | 'other'; size: number; mode: number; mtime: number; link: string };

/** Streams a tar, calling `each` per entry with its path; `want(path)` says whether to keep its data. */
async function readTar(body: ReadableStream<Uint8Array>, each: (e: Entry & { path: string }, data: Uint8Array | null) => void, want: (path: string) => boolean = () => false): Promise<void> {
  const reader = body.getReader();
  let buf = new Uint8Array(0);
  let done = false;
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length < n && !done) {
      const r = await reader.read();
      if (r.done) done = true;
      else {
        const all = new Uint8Array(buf.length + r.value.length);
        all.set(buf);
        all.set(r.value, buf.length);
        buf = all;
      }
    }
    return buf.length >= n;
  };
  const dec = new TextDecoder();
  const str = (b: Uint8Array) => dec.decode(b.subarray(0, b.indexOf(0) >= 0 ? b.indexOf(0) : b.length));
  const oct = (b: Uint8Array) => parseInt(str(b).trim() || '0', 8);
  let longName = '';
  let paxPath = '';
  while (await fill(512)) {
    const h = buf.subarray(0, 512);
    if (h.every((x) => x === 0)) break;
    const size = oct(h.subarray(124, 136));
    const flag = String.fromCharCode(h[156] || 48);
    const prefix = str(h.subarray(345, 500));
    let path = (prefix ? prefix + '/' : '') + str(h.subarray(0, 100));
    const padded = Math.ceil(size / 512) * 512;
    buf = buf.slice(512);
    const keep = flag === 'L' || flag === 'x' || want(longName || paxPath || path);
    let data: Uint8Array | null = null;
    if (keep) {
      await fill(padded);
      data = buf.slice(0, size);
      buf = buf.slice(padded);
    } else {
      let skip = padded;
      while (skip > 0) {
        if (!buf.length && !(await fill(1))) break;
        const n = Math.min(skip, buf.length);
        buf = buf.slice(n);
        skip -= n;
      }
    }
    if (flag === 'L') {
      longName = str(data!);
      continue;
    }
    if (flag === 'x') {
      const m = dec.decode(data!).match(/\d+ path=([^\n]*)\n/);
      paxPath = m ? m[1] : '';
      continue;
    }
    if (longName) path = longName;
    if (paxPath) path = paxPath;
    longName = paxPath = '';
    const type = flag === '5' ? 'dir' : flag === '0' || flag === '\0' || flag === '7' ? 'file' : flag === '2' || flag === '1' ? 'link' : 'other';
    each({ path: path.replace(/\/$/, ''), name: '', type, size, mode: oct(h.subarray(100, 108)), mtime: oct(h.subarray(136, 148)), link: str(h.subarray(157, 257)) }, data);
  }
  reader.cancel().catch(() => undefined);
}

function join(dir: string, name: string): string {
  return (dir.endsWith('/') ? dir : dir + '/') + name;
}

function parent(p: string): string {
  const i = p.replace(/\/$/, '').lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function Files(props: { id: string }) {
  const [dir, setDir] = useState('/');
  const [entries, setEntries] = useState<Entry[] | null>(null);
  const [error, setError] = useState<DaemonError | null>(null);
  const [read, setRead] = useState(0);
  const [broken, setBroken] = useState('');
  const [typed, setTyped] = useState(dir);
  useEffect(() => {
    setTyped(dir);
    let live = true;
    setEntries(null);
    setError(null);
    setBroken('');
    const found: Entry[] = [];
    const sorted = () => found.sort((a, b) => ((a.type === 'dir') === (b.type === 'dir') ? a.name.localeCompare(b.name) : a.type === 'dir' ? -1 : 1));
    (async () => {
      let resp: Response;
      try {
        resp = await request('GET', `/containers/${props.id}/archive?path=${encodeURIComponent(dir)}`);
      } catch (e) {
        if (live) setError(e as DaemonError);
        return;
      }
      try {
        // The tar's first entry is the directory itself, by its base name; its children are
        // one level below that.
        let root: string | null = null;
        let count = 0;
        await readTar(resp.body!, (e) => {
          if (!live) return;
          if (root === null) {
            root = e.path;
            return;
          }
          const rel = root === '.' || root === '' ? e.path : e.path.slice(root.length + 1);
          if (rel && !rel.includes('/')) found.push({ ...e, name: rel });
          if (++count % 500 === 0) setRead(count);
        });
        if (live) setEntries(sorted());
      } catch (e) {
        // The daemon ended the archive early: what came before is still true.
        if (live) {
          setEntries(sorted());
          setBroken(`The daemon's archive of ${dir} broke off (${(e as Error).message}): the list may be incomplete.`);
        }
      }
    })();
    return () => {
      live = false;
    };
  }, [props.id, dir]);
  const download = async (e: Entry) => {
    const path = join(dir, e.name);
    try {
      const resp = await request('GET', `/containers/${props.id}/archive?path=${encodeURIComponent(path)}`);
      let blob: Blob;
      let fileName = e.name;
      if (e.type === 'file') {
        let content: Uint8Array | null = null;
        await readTar(resp.body!, (_x, data) => (content ??= data), () => true);
        blob = new Blob([content ?? new Uint8Array(0)]);
      } else {
        blob = await resp.blob();
        fileName += '.tar';
      }
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = fileName;
      a.click();
      window.setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (err) {
      setError(err as DaemonError);
    }
  };
  return (
    <div class="files">
      <div class="toolbar">
        <button disabled={dir === '/'} onClick={() => setDir(parent(dir))}>
          Up
        </button>
        <form
          onSubmit={(ev) => {
            ev.preventDefault();
            setDir(typed.startsWith('/') ? typed : '/' + typed);
          }}
        >
          <input name="path" class="mono" value={typed} aria-label="path" onInput={(e) => setTyped((e.target as HTMLInputElement).value)} />
        </form>
      </div>
      <Failure error={error} />
      {broken ? <p class="failure">{broken}</p> : null}
      {!entries && !error ? <p class="dim">Reading {dir}… {read ? `${read} entries` : ''}</p> : null}
      {entries ? (
        <Table class="files" heads={['Name', 'Size', 'Mode', 'Modified', '']}>
            {entries.map((e) => (
              <tr key={e.name} data-file={e.name}>
                <td class="mono">
                  {e.type === 'dir' ? (
                    <button class="link" onClick={() => setDir(join(dir, e.name))}>
                      {e.name}/
                    </button>
                  ) : (
                    e.name
                  )}
                  {e.type === 'link' ? <span class="dim"> → {e.link}</span> : null}
                </td>
                <td>{e.type === 'file' ? bytes(e.size) : ''}</td>
                <td class="mono">{(e.mode & 0o7777).toString(8).padStart(4, '0')}</td>
                <td>{e.mtime ? new Date(e.mtime * 1000).toLocaleString() : ''}</td>
                <td>{e.type === 'file' || e.type === 'dir' ? <button onClick={() => download(e)}>Download</button> : null}</td>
              </tr>
            ))}
          </Table>
      ) : null}
    </div>
  );
}
