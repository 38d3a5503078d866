// A terminal in the container: an exec with a tty (`POST /containers/{id}/exec`), started
// over a WebSocket that the dashboard turns into the Engine API's hijacked `exec start`, as
// `docker exec -it` does; xterm.js draws it, and every size change is sent as
// `POST /exec/{id}/resize`.

import { useEffect, useRef, useState } from 'preact/hooks';
import { Terminal as XTerm } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { post, hijack } from '../api';
import { notify } from '../ui';

export function Terminal(props: { id: string; running?: boolean }) {
  const [command, setCommand] = useState('sh');
  const [session, setSession] = useState(0);
  const [state, setState] = useState<'idle' | 'open' | 'ended'>('idle');
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!session || !el.current) return;
    const term = new XTerm({ cursorBlink: true, fontSize: 13, convertEol: false, scrollback: 5000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el.current);
    fit.fit();
    let conn: ReturnType<typeof hijack> | null = null;
    let execId = '';
    let live = true;
    const resize = () => {
      if (execId) post(`/exec/${execId}/resize?h=${term.rows}&w=${term.cols}`).catch(() => undefined);
    };
    (async () => {
      try {
        const created: any = await post(`/containers/${props.id}/exec`, {
          AttachStdin: true,
          AttachStdout: true,
          AttachStderr: true,
          Tty: true,
          Cmd: splitCommand(command),
          ConsoleSize: [term.rows, term.cols],
          Env: ['TERM=xterm-256color'],
        });
        if (!live) return;
        execId = created.Id;
        const enc = new TextEncoder();
        conn = hijack(
          `/exec/${execId}/start`,
          (b) => term.write(b),
          (e) => {
            if (e) notify(e);
            term.write('\r\n\x1b[2m[the process ended]\x1b[0m\r\n');
            setState('ended');
          },
        );
        term.onData((d) => conn?.send(enc.encode(d)));
        term.onResize(resize);
        setState('open');
        term.focus();
        window.setTimeout(resize, 200);
      } catch (e) {
        notify(e);
        setState('ended');
      }
    })();
    const onWindow = () => fit.fit();
    window.addEventListener('resize', onWindow);
    return () => {
      live = false;
      window.removeEventListener('resize', onWindow);
      conn?.close();
      term.dispose();
    };
  }, [session]);
  if (!props.running) return <p class="dim">The container is not running: no terminal.</p>;
  return (
    <div class="terminal">
      <div class="toolbar">
        <label>
          Command <input value={command} onInput={(e) => setCommand((e.target as HTMLInputElement).value)} aria-label="command" />
        </label>
        <button data-action="connect" onClick={() => setSession((n) => n + 1)}>
          {state === 'idle' ? 'Connect' : 'Reconnect'}
        </button>
        <span class="dim" data-terminal-state={state}>
          {state === 'open' ? 'connected' : state === 'ended' ? 'ended' : ''}
        </span>
      </div>
      <div class="xterm-box" ref={el} />
    </div>
  );
}

/** `sh -c "echo hi"` → ["sh", "-c", "echo hi"] (quotes group words). */
function splitCommand(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? m[3]);
  return out.length ? out : ['sh'];
}
