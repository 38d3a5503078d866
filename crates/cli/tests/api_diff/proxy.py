"""A logging proxy for the Docker Engine API over unix sockets: the corpus of the dockerd
differential harness is what real clients send through it.

    proxy.py LISTEN_SOCKET UPSTREAM_SOCKET OUT.json

Clients connect to LISTEN_SOCKET; each connection gets its own connection to
UPSTREAM_SOCKET (dockerd's) and every byte is passed on as it comes, so streams (events,
logs, wait, attach, exec) behave as they would without the proxy. Each exchange is
recorded: when the request started, when the response's headers came, when it ended (or
that the client closed it first), the method, target, a few headers and the body of the
request, and the status, content type and body of the response. Hijacked connections
(`Upgrade`, dockerd's raw streams) record the bytes of both directions. On SIGTERM or
SIGINT the recording is written to OUT.json, ordered by start time.

Python 3 standard library only.
"""

import base64
import json
import os
import signal
import socket
import sys
import threading
import time

KEEP_HEADERS = ("content-type", "upgrade", "connection", "content-encoding",
                "x-registry-auth", "x-registry-config")
MAX_BODY = 1 << 20
T0 = time.monotonic()
LOCK = threading.Lock()
EXCHANGES = []


def now():
    return round(time.monotonic() - T0, 6)


def body_record(data, content_type):
    """A body as the corpus keeps it: JSON, JSON lines, text, or base64 (large ones by size)."""
    if not data:
        return None
    if len(data) > MAX_BODY:
        return {"omitted": len(data)}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}
    ct = (content_type or "").split(";")[0].strip()
    if ct in ("application/json", "text/plain", "") or text[:1] in "{[":
        try:
            return {"json": json.loads(text)}
        except ValueError:
            pass
        lines = [l for l in text.split("\n") if l.strip()]
        try:
            return {"jsonl": [json.loads(l) for l in lines]}
        except ValueError:
            pass
    if "\x00" in text or ct in ("application/x-tar", "application/vnd.docker.raw-stream",
                                "application/vnd.docker.multiplexed-stream"):
        return {"base64": base64.b64encode(data).decode()}
    return {"text": text}


class Conn:
    """A byte reader over a socket that can give back lines, exact counts, or the rest."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    def exactly(self, n):
        while len(self.buf) < n:
            if not self.fill():
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                out, self.buf = self.buf, b""
                return out
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out + b"\r\n"


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0]
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return first, headers


def relay_body(src, dst, headers, until_eof, ended_at):
    """Passes a body on with its framing; returns the decoded bytes and whether it ended.
    ended_at[0] is set when its last bytes came, before they are passed on: the client's
    next request is always later."""
    data = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = src.line()
            if not size_line:
                return data, False
            try:
                n = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                return data, False
            chunk = src.exactly(n + 2)
            if n == 0:
                ended_at[0] = now()
            dst.sendall(size_line + chunk)
            if n == 0:
                # Trailers end with an empty line; the common case is just "\r\n".
                return data, True
            data += chunk[:n]
            if len(chunk) < n + 2:
                return data, False
    if "content-length" in headers:
        n = int(headers["content-length"])
        got = b""
        while len(got) < n:
            part = src.exactly(min(65536, n - len(got)))
            if not part:
                return data + got, False
            got += part
            if len(got) >= n:
                ended_at[0] = now()
            dst.sendall(part)
        ended_at[0] = ended_at[0] or now()
        return got, True
    if until_eof:
        while True:
            if src.buf:
                part, src.buf = src.buf, b""
            elif src.fill():
                continue
            else:
                ended_at[0] = now()
                return data, True
            dst.sendall(part)
            data += part
    return data, True


def pipe(a, b, sink):
    """Raw bytes from a to b (a hijacked stream), kept in sink, until either side closes."""
    try:
        if a.buf:
            b.sock.sendall(a.buf)
            sink.append(a.buf)
            a.buf = b""
        while True:
            chunk = a.sock.recv(65536)
            if not chunk:
                break
            b.sock.sendall(chunk)
            sink.append(chunk)
    except OSError:
        pass
    try:
        b.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def handle(client_sock, upstream_path, conn_id):
    client = Conn(client_sock)
    up_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    up_sock.connect(upstream_path)
    upstream = Conn(up_sock)
    try:
        while True:
            head = client.head()
            if head is None:
                return
            t0 = now()
            first, headers = parse_head(head)
            method, target = first.split(" ")[0], first.split(" ")[1]
            up_sock.sendall(head)
            has_body = "content-length" in headers or \
                headers.get("transfer-encoding", "").lower() == "chunked"
            req_body, _ = relay_body(client, up_sock, headers, False, [None]) if has_body \
                else (b"", True)
            ex = {"conn": conn_id, "t0": t0, "method": method, "target": target,
                  "headers": {k: v for k, v in headers.items() if k in KEEP_HEADERS},
                  "body": body_record(req_body, headers.get("content-type"))}
            rhead = upstream.head()
            if rhead is None:
                return
            ex["t1"] = now()
            ended_at = [ex["t1"]]
            rfirst, rheaders = parse_head(rhead)
            status = int(rfirst.split(" ")[1])
            ex["status"] = status
            ex["content_type"] = rheaders.get("content-type", "")
            client_sock.sendall(rhead)
            ct = ex["content_type"]
            raw = status == 101 or (
                ct.startswith("application/vnd.docker.") and "content-length" not in rheaders
                and rheaders.get("transfer-encoding", "").lower() != "chunked")
            if raw:
                up_data, down_data = [], []
                t = threading.Thread(target=pipe, args=(client, upstream, up_data))
                t.start()
                pipe(upstream, client, down_data)
                t.join(5)
                ex["t2"] = now()
                ex["hijacked"] = True
                ex["stdin"] = base64.b64encode(b"".join(up_data)).decode()
                ex["response"] = {"base64": base64.b64encode(b"".join(down_data)).decode()}
                with LOCK:
                    EXCHANGES.append(ex)
                return
            with LOCK:
                EXCHANGES.append(ex)
            if method == "HEAD" or status in (204, 304):
                data, ended = b"", True
            else:
                ended_at[0] = None
                data, ended = relay_body(upstream, client_sock, rheaders, True, ended_at)
            ex["t2"] = ended_at[0] or now()
            ex["response"] = body_record(data, ct)
            if not ended:
                ex["aborted"] = True
                return
    except (OSError, ValueError, IndexError):
        # The client went away mid-stream (it stopped following events or logs).
        with LOCK:
            for ex in EXCHANGES:
                if ex["conn"] == conn_id and "t2" not in ex:
                    ex["t2"] = now()
                    ex["aborted"] = True
    finally:
        for s in (client_sock, up_sock):
            try:
                s.close()
            except OSError:
                pass


def main():
    listen, upstream, out = sys.argv[1:4]
    if os.path.exists(listen):
        os.unlink(listen)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen)
    srv.listen(64)
    stop = threading.Event()

    def finish(*_):
        stop.set()
        srv.close()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    n = 0
    while not stop.is_set():
        try:
            c, _ = srv.accept()
        except OSError:
            break
        n += 1
        threading.Thread(target=handle, args=(c, upstream, n), daemon=True).start()
    time.sleep(0.5)
    with LOCK:
        ex = sorted(EXCHANGES, key=lambda e: e["t0"])
    for e in ex:
        e.setdefault("t2", now())
    with open(out, "w") as f:
        json.dump(ex, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
