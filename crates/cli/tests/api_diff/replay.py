"""The differential harness of the Engine API: replays captured client request sequences to
dockerd (the reference) and to berth, and compares the answers.

    replay.py --reference SOCK --reference-dir DIR --berth SOCK --berth-dir DIR CORPUS.json...

Each corpus file is what one client run sent to dockerd and got back (proxy.py). A sequence
is replayed to each daemon in the capture's order and with its concurrency: a request the
client left running while it sent the next ones (an attach, a wait, an event stream) runs
in the background until the point where the client had its answer or gave up. Ids in paths
and bodies are those of the capture; each daemon's own ids replace them as its answers
name them (the same JSON path in the captured and the live answer).

The answers of the two daemons to each request are then compared:
  * the status code, and the kind of body (JSON, JSON stream, raw stream, tar);
  * JSON: the same keys at every level and the same type of value (Go's nil slices and maps
    are `null` where berth may send `[]`/`{}`: both read as empty), and the same value once
    what differs by nature is normalised: ids, times, sizes, addresses, the daemons' own
    directories, version strings;
  * JSON streams (build, pull, load): the messages' kinds, and their text normalised;
  * raw streams (attach, exec, logs): the bytes, normalised the same way.
Every difference fails the run unless DIFFERENCES below lists it, with its reason; the same
list is in docs/api.md. Exit status 0: no unexplained difference.

Python 3 standard library only.
"""

import argparse
import base64
import json
import re
import socket
import sys
import tarfile
import io
import threading
import time
import urllib.parse

# ----------------------------------------------------------------- DIFFERENCES ----
# Each entry: (request regex over "METHOD /path" with the version prefix and query cut,
# JSON-path regex ("" is the top level; `.Key`, `[]` for array items), kind regex
# (status, missing = only in dockerd's answer, extra = only in berth's, type, value,
# stream, raw, length), and why berth differs. docs/api.md lists the same entries.
DIFFERENCES = [
    # -- what berth is: another engine ----------------------------------------------------
    (r"GET /(version|info)", r".*", r"value|length",
     "berth reports itself: its version, API 1.47, its components, drivers, root and "
     "counters, not dockerd 20.10's"),
    (r"GET /info", r"\.Runtimes\..*", r"missing|extra",
     "berth's runtimes are berth's own, runc and crun where installed; dockerd's are "
     "containerd's shims"),
    (r"(GET|HEAD) /_ping", r"", r"value",
     "the body is OK in both; the headers (API version, builder) are berth's"),
    (r"GET /images/[^/]+/json", r"\.DockerVersion", r"value",
     "images berth makes say no Docker version (DockerVersion is empty, as for images "
     "BuildKit or podman make)"),
    (r"GET /containers/[^/]+/json", r"\.HostConfig\.Runtime", r"value",
     "berth's own OCI runtime is called berth (runc is there as `--runtime runc`)"),
    (r"GET /containers/[^/]+/json", r"\.HostConfig\.MaskedPaths(\[\])?", r"value|length",
     "berth masks the paths current Docker masks (also /proc/interrupts and "
     "/sys/devices/virtual/powercap), not 20.10's shorter list"),
    (r"GET /images/[^/]+/json", r"\.GraphDriver\.Data\.(MergedDir|WorkDir)", r"missing",
     "an image's layers are shared read-only snapshots in berth: there is no per-image "
     "merged or work directory to show (UpperDir and LowerDir name the snapshots)"),
    # -- berth's builder keeps no intermediate images or containers ----------------------
    (r"GET /images/\{built\}/json",
     r"\.(Parent|Container|Config\.Image|ContainerConfig(\..*)?)", r".*",
     "berth's builder caches steps by key, not as intermediate images, and runs no "
     "container for config-only steps: a built image has no Parent and no Container, and "
     "its ContainerConfig is its Config"),
    (r"DELETE /images/\{built\}|POST /images/prune|POST /containers/prune",
     r"\.?(ImagesDeleted|ContainersDeleted)?", r"length",
     "no intermediate images (or, with docker-py's rm=False, containers) are left by "
     "berth's builds, so there are fewer to delete or prune"),
    # -- the records berth keeps ------------------------------------------------------------
    (r"GET /containers(/[^/]+)?/json", r"(\[\])?\.HostConfig\.NetworkMode", r"value",
     "berth records the network a container is on: `default` (the docker CLI's word for "
     "none given) is recorded as `bridge`"),
    (r"GET /containers/[^/]+/json", r"\.HostConfig\.RestartPolicy\.Name", r"value",
     "an empty restart policy name is recorded as `no`, the policy it means"),
    (r"GET /containers/[^/]+/json", r"\.Name", r"value",
     "a generated container name is random in each daemon"),
    (r"GET /containers/json", r"\[\]\.NetworkSettings\.Networks\..*\.Aliases", r"type",
     "dockerd 20.10's list shows an endpoint's Aliases as null while its inspect has them; "
     "berth lists them in both (as later dockerds do)"),
    (r"GET /containers/json", r"\[\]\.Mounts\[\]\.Source", r"value",
     "dockerd 20.10's list leaves a named volume's Source empty; berth gives its path, as "
     "inspect does"),
    # -- the test's own setup ----------------------------------------------------------------
    (r"GET /networks(/bridge)?", r"(\[\])?\.Options\.com\.docker\.network\.bridge\.name",
     r"value", "each daemon's default bridge has the device name the test gave it"),
    (r"GET /networks(/bridge)?",
     r"(\[\])?\.Options\.com\.docker\.network\.bridge\.enable_ip_masquerade", r"value",
     "the reference runs with --ip-masq=false so that it adds no NAT rule to the host"),
    # -- messages whose words come from another implementation ------------------------
    (r".*", r"(\.errorDetail)?\.(message|error)", r"value",
     "an error's words come from berth's decoders and archive readers where dockerd's come "
     "from Go's encoding/json, archive/tar or its graph driver (the status, and the "
     "messages clients match on, agree)"),
]

# Lines of a build's output stream that one daemon writes and the other does not, with why;
# the rest is compared step by step (a step's own lines as a set: a RUN's stdout and
# stderr interleave as the two pipes are read).
STREAM_LINES = [
    (r" ---> Running in <id12>|Removing intermediate container <id12>",
     "berth's builder runs no container for a step that only changes the image config "
     "(ENV, LABEL, CMD, …), so only its RUN steps say 'Running in'"),
    (r"Image hygiene: .*|  ?\[(WARNING|INFO|ERROR)\] .*",
     "berth ends a build with its image hygiene report (docs/build.md)"),
]

# go-units' HumanDuration, as `Status` writes it ("Up 3 seconds", "Exited (0) 2 minutes ago").
DURATION = re.compile(r"(Less than a second|About a minute|About an hour|\d+ (seconds?|minutes?|"
                      r"hours?|days?|weeks?|months?|years?))")
ID64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
ID12 = re.compile(r"(?<![0-9a-zA-Z])[0-9a-f]{12}(?![0-9a-zA-Z])")
SWARM_ID = re.compile(r"(?<![0-9a-z])[0-9a-z]{25}(?![0-9a-z])")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
IPV4 = re.compile(r"(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(/\d{1,2})?(?![\d.])")
MAC = re.compile(r"(?i)(?<![0-9a-f:])([0-9a-f]{2}:){5}[0-9a-f]{2}(?![0-9a-f:])")

# Keys whose numbers differ by nature (sizes, times, pids, counters): compared by type.
VOLATILE_NUMBERS = {
    "Created", "Size", "SizeRw", "SizeRootFs", "VirtualSize", "SharedSize", "Pid",
    "LayersSize", "SpaceReclaimed", "time", "timeNano", "RefCount", "Containers",
}

# Answers (request regex, JSON-path regex) whose values differ by nature between any two
# runs, even of one daemon: compared by shape (keys and types) only.
SHAPE_ONLY = [
    (r"GET /containers/[^/]+/stats", r".*"),   # cgroup counters of two processes
    (r"GET /containers/[^/]+/top", r"\.Processes.*"),  # pids, start times, CPU time
]

# Answers compared with what dockerd answered when the corpus was captured rather than with
# the live reference: dockerd 20.10's containerd reads the host's cgroup mounts for stats
# and gives an empty sample when another tool moved a controller (crun's hugetlb set-up).
FROM_CAPTURE = [r"GET /containers/[^/]+/stats"]

# Lists whose order carries no meaning (each variable is set once, whatever the order in
# which a daemon merged the image's and the request's): compared sorted.
UNORDERED_LISTS = {"Env"}

# Fields that name the same thing in each of two arrays of objects: the arrays are
# compared item by item in this order, whatever order each daemon listed them in.
IDENTITY_KEYS = ("Name", "Names", "RepoTags", "Destination", "Path", "Type", "Kind",
                 "Untagged", "Deleted")


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------------ HTTP client ----

class Response:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""
        self.raw = False
        self.error = None
        self.headers_event = threading.Event()
        self.done_event = threading.Event()


def read_until(sock, buf, marker, deadline, stop=None):
    while marker not in buf:
        if stop is not None and stop.is_set():
            raise EOFError("stopped")
        sock.settimeout(0.2)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if time.monotonic() > deadline:
                raise
            continue
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def request(path, method, target, headers, body, stdin, resp, stop, timeout=120):
    """One exchange on its own connection; fills resp as things arrive."""
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        lines = [f"{method} {target} HTTP/1.1", "Host: api"]
        for k, v in headers.items():
            if k in ("content-length", "transfer-encoding", "host"):
                continue
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        buf = read_until(sock, b"", b"\r\n\r\n", deadline)
        head, buf = buf.split(b"\r\n\r\n", 1)
        hl = head.decode("latin-1").split("\r\n")
        resp.status = int(hl[0].split(" ")[1])
        for l in hl[1:]:
            if ":" in l:
                k, v = l.split(":", 1)
                resp.headers[k.strip().lower()] = v.strip()
        resp.headers_event.set()
        ct = resp.headers.get("content-type", "")
        chunked = resp.headers.get("transfer-encoding", "").lower() == "chunked"
        if method == "HEAD" or resp.status in (204, 304):
            return
        if resp.status == 101 or (ct.startswith("application/vnd.docker.")
                                  and "content-length" not in resp.headers and not chunked):
            resp.raw = True
            if stdin:
                sock.sendall(stdin)
        out = b""
        if "content-length" in resp.headers and not resp.raw:
            n = int(resp.headers["content-length"])
            while len(buf) < n:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
            out = buf[:n]
        elif chunked and not resp.raw:
            while True:
                buf = read_until(sock, buf, b"\r\n", deadline, stop)
                size, buf = buf.split(b"\r\n", 1)
                n = int(size.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    break
                while len(buf) < n + 2:
                    if stop.is_set():
                        raise EOFError("stopped")
                    sock.settimeout(0.2)
                    try:
                        chunk = sock.recv(65536)
                    except socket.timeout:
                        if time.monotonic() > deadline:
                            raise
                        continue
                    if not chunk:
                        raise EOFError("connection closed in a chunk")
                    buf += chunk
                out += buf[:n]
                resp.body = out
                buf = buf[n + 2:]
        else:
            out = buf
            while True:
                if stop.is_set():
                    break
                sock.settimeout(0.2)
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    if time.monotonic() > deadline:
                        raise
                    continue
                if not chunk:
                    break
                out += chunk
                resp.body = out
        resp.body = out
    except (OSError, EOFError, ValueError, IndexError) as e:
        if not stop.is_set():
            resp.error = f"{type(e).__name__}: {e}"
    finally:
        resp.headers_event.set()
        resp.done_event.set()
        try:
            sock.close()
        except OSError:
            pass


# -------------------------------------------------------------- id mapping ----

def id_tokens(v, path="", out=None):
    """(path, token) of every id-like string in a JSON value (strings scanned for ids)."""
    if out is None:
        out = []
    if isinstance(v, dict):
        for k, x in v.items():
            id_tokens(x, f"{path}.{k}", out)
            if ID64.fullmatch(k.replace("sha256:", "")):
                out.append((f"{path}.<key>", k.replace("sha256:", "")))
    elif isinstance(v, list):
        for x in v:
            # Items of a list are told apart by what names them (the two daemons may list
            # them in another order), else by their place.
            ident = sort_key(x, []) if isinstance(x, dict) else ""
            id_tokens(x, f"{path}[{ident}]", out)
    elif isinstance(v, str):
        for m in ID64.finditer(v):
            out.append((path, m.group(0)))
        for m in ID12.finditer(v):
            if not ID64.search(v):
                out.append((path + "#12", m.group(0)))
        if SWARM_ID.fullmatch(v):
            out.append((path + "#swarm", v))
    return out


def learn(idmap, captured, live):
    """Pairs the ids of a captured answer with those of a live one, path by path."""
    a, b = id_tokens(captured), id_tokens(live)
    by_path = {}
    for p, t in b:
        by_path.setdefault(p, []).append(t)
    seen = {}
    for p, t in a:
        i = seen.get(p, 0)
        seen[p] = i + 1
        lst = by_path.get(p, [])
        if i < len(lst):
            new = lst[i]
            if len(t) == 12 and len(new) == 12:
                # A short id names what a full one already named; keep the full pair.
                if t not in idmap:
                    idmap[t] = new
            else:
                idmap[t] = new


def substitute(text, idmap):
    def full(m):
        return idmap.get(m.group(0), m.group(0))

    def short(m):
        t = m.group(0)
        if t in idmap:
            return idmap[t][:12]
        for k, v in idmap.items():
            if len(k) == 64 and k.startswith(t):
                return v[:len(t)]
        return t
    text = ID64.sub(full, text)
    text = ID12.sub(short, text)
    for k, v in idmap.items():
        if len(k) == 25:
            text = text.replace(k, v)
    return text


def parse_body(rec):
    if rec is None:
        return None
    if "json" in rec:
        return rec["json"]
    if "jsonl" in rec:
        return rec["jsonl"]
    return None


def decode_json(data):
    text = data.decode("utf-8", "replace")
    try:
        return json.loads(text), "json"
    except ValueError:
        pass
    lines = [l for l in text.split("\n") if l.strip()]
    try:
        return [json.loads(l) for l in lines], "jsonl"
    except ValueError:
        return None, None


# ------------------------------------------------------------------ replay ----

class Live:
    def __init__(self, ex, resp, thread, stop):
        self.ex, self.resp, self.thread, self.stop = ex, resp, thread, stop


def call(sock, method, target, body=None):
    resp = Response()
    request(sock, method, target, {"content-type": "application/json"}, body, b"", resp,
            threading.Event(), 120)
    return resp


def reset(sock, keep):
    """Leaves a daemon as a corpus starts: no containers, volumes, networks or build cache
    of an earlier corpus, and only the image `keep`."""
    def listed(target, key=None):
        r = call(sock, "GET", target)
        v, _ = decode_json(r.body)
        return (v or {}).get(key, []) if key else (v or [])
    for c in listed("/containers/json?all=1"):
        call(sock, "DELETE", f"/containers/{c['Id']}?force=1&v=1")
    for n in listed("/networks"):
        if n["Name"] not in ("bridge", "host", "none"):
            call(sock, "DELETE", f"/networks/{n['Id']}")
    for v in listed("/volumes", "Volumes"):
        call(sock, "DELETE", f"/volumes/{v['Name']}?force=1")
    for i in listed("/images/json?all=1"):
        if keep not in (i.get("RepoTags") or []):
            call(sock, "DELETE", f"/images/{i['Id']}?force=1")
    call(sock, "POST", "/build/prune?all=1", b"")


def replay(sock, exchanges):
    """Replays one sequence to one daemon; returns the live responses, in order."""
    idmap = {}
    lives = [None] * len(exchanges)
    pending = []

    def finish(j):
        lv = lives[j]
        ex = lv.ex
        if ex.get("aborted"):
            # The client gave up on it: so does the replay, at the same point.
            time.sleep(0.3)
            lv.stop.set()
        lv.resp.done_event.wait(120)
        lv.thread.join(5)
        cap = parse_body(ex.get("response"))
        live, _ = decode_json(lv.resp.body) if lv.resp.body else (None, None)
        if cap is not None and live is not None:
            learn(idmap, cap, live)

    for i, ex in enumerate(exchanges):
        for j in list(pending):
            if exchanges[j]["t2"] <= ex["t0"]:
                finish(j)
                pending.remove(j)
        target = substitute(ex["target"], idmap)
        body = None
        rec = ex.get("body")
        if rec is not None:
            if "json" in rec:
                body = substitute(json.dumps(rec["json"]), idmap).encode()
            elif "jsonl" in rec:
                body = substitute("\n".join(json.dumps(x) for x in rec["jsonl"]), idmap).encode()
            elif "text" in rec:
                body = substitute(rec["text"], idmap).encode()
            elif "base64" in rec:
                body = base64.b64decode(rec["base64"])
            else:
                body = b""
        elif ex["method"] in ("POST", "PUT"):
            body = b""
        stdin = base64.b64decode(ex.get("stdin", "")) if ex.get("hijacked") else b""
        resp = Response()
        stop = threading.Event()
        t = threading.Thread(target=request, args=(sock, ex["method"], target, ex["headers"],
                                                   body, stdin, resp, stop), daemon=True)
        t.start()
        lives[i] = Live(ex, resp, t, stop)
        resp.headers_event.wait(120)
        nxt = exchanges[i + 1]["t0"] if i + 1 < len(exchanges) else float("inf")
        if ex["t2"] <= nxt:
            finish(i)
        else:
            pending.append(i)
    for j in pending:
        finish(j)
    return lives


# --------------------------------------------------------------- compare ----

def normalise_text(s, dirs):
    for d in dirs:
        # A path in a daemon's own directories names the same kind of thing in each.
        if s.startswith(d):
            return "<path>"
        s = s.replace(d, "<dir>")
    s = TIME.sub("<time>", s)
    s = DURATION.sub("<duration>", s)
    s = ID64.sub("<id>", s)
    s = ID12.sub("<id12>", s)
    s = MAC.sub("<mac>", s)
    s = IPV4.sub("<ip>", s)
    return s


def kind_of(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def empty(v):
    return v is None or v == [] or v == {}


def sort_key(x, dirs):
    if not isinstance(x, dict):
        return ""
    return normalise_text(json.dumps([x.get(k) for k in IDENTITY_KEYS]), dirs)


def compare_json(a, b, path, dirs, out, key="", shape_only=False):
    """Differences between dockerd's value a and berth's b."""
    if empty(a) and empty(b):
        return
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        # Go's nil slices and maps: null where the other side is an empty [] or {}.
        if (a is None and empty(b)) or (b is None and empty(a)):
            return
        out.append((path, "type", ka, kb))
        return
    if ka == "object" and a and b and all(ID64.fullmatch(k) for k in list(a) + list(b)):
        # Maps keyed by ids (a network's Containers): the entries, whatever their keys.
        compare_json(list(a.values()), list(b.values()), f"{path}.<id>", dirs, out, key)
        return
    if ka == "object":
        for k in a:
            if k not in b:
                out.append((f"{path}.{k}", "missing", short(a[k]), ""))
        for k in b:
            if k not in a:
                out.append((f"{path}.{k}", "extra", "", short(b[k])))
        for k in a:
            if k in b:
                compare_json(a[k], b[k], f"{path}.{k}", dirs, out, k, shape_only)
    elif ka == "array":
        if key in UNORDERED_LISTS:
            a, b = sorted(a, key=json.dumps), sorted(b, key=json.dumps)
        if len(a) != len(b) and not shape_only:
            out.append((path, "length", len(a), len(b)))
        if all(isinstance(x, dict) for x in a + b):
            a = sorted(a, key=lambda x: sort_key(x, dirs))
            b = sorted(b, key=lambda x: sort_key(x, dirs))
        for x, y in zip(a, b):
            compare_json(x, y, f"{path}[]", dirs, out, key, shape_only)
    elif shape_only:
        return
    elif ka == "number":
        if key not in VOLATILE_NUMBERS and a != b:
            out.append((path, "value", a, b))
    elif ka == "string":
        na, nb = normalise_text(a, dirs), normalise_text(b, dirs)
        if na != nb:
            out.append((path, "value", a, b))
    elif a != b:
        out.append((path, "value", a, b))


def short(v):
    s = json.dumps(v)
    return s if len(s) < 80 else s[:77] + "..."


def demux(data):
    """Docker's multiplexed frames → (stdout, stderr); raw bytes when not framed."""
    out, err, i = b"", b"", 0
    while i + 8 <= len(data) and data[i] in (0, 1, 2) and data[i + 1:i + 4] == b"\0\0\0":
        n = int.from_bytes(data[i + 4:i + 8], "big")
        frame = data[i + 8:i + 8 + n]
        if data[i] == 2:
            err += frame
        else:
            out += frame
        i += 8 + n
    if i < len(data):
        return data, b""
    return out, err


def tar_names(data):
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            return sorted(m.name for m in t.getmembers())
    except (tarfile.TarError, EOFError):
        return None


def compare_exchange(ex, ra, rb, dirs, explained_lines):
    """The differences between dockerd's answer (ra) and berth's (rb) to one request."""
    out = []
    if ra.error or rb.error:
        if bool(ra.error) != bool(rb.error):
            out.append(("", "status", ra.error or ra.status, rb.error or rb.status))
        return out
    if ra.status != rb.status:
        out.append(("", "status", ra.status, rb.status))
        return out
    if ex.get("aborted") or ex["method"] == "HEAD":
        return out
    cta = ra.headers.get("content-type", "").split(";")[0]
    ctb = rb.headers.get("content-type", "").split(";")[0]
    if ra.raw or rb.raw:
        if ra.raw != rb.raw:
            out.append(("", "raw", ra.raw, rb.raw))
            return out
        oa, ea = demux(ra.body)
        ob, eb = demux(rb.body)
        for name, x, y in (("stdout", oa, ob), ("stderr", ea, eb)):
            nx = normalise_text(x.decode("utf-8", "replace"), dirs)
            ny = normalise_text(y.decode("utf-8", "replace"), dirs)
            if nx != ny:
                out.append((f".{name}", "raw", short(nx), short(ny)))
        return out
    if cta == "application/x-tar" or ctb == "application/x-tar":
        na, nb = tar_names(ra.body), tar_names(rb.body)
        if na != nb:
            out.append(("", "value", short(na), short(nb)))
        return out
    if cta.startswith("application/vnd.docker") or ctb.startswith("application/vnd.docker"):
        oa, ea = demux(ra.body)
        ob, eb = demux(rb.body)
        if (oa, ea) != (ob, eb):
            out.append(("", "raw", short(oa.decode("utf-8", "replace")),
                        short(ob.decode("utf-8", "replace"))))
        return out
    if any(re.fullmatch(r, request_key(ex)) for r in FROM_CAPTURE) and ex.get("response"):
        ra = Response()
        ra.status, ra.body = ex["status"], json.dumps(parse_body(ex["response"])).encode()
    va, fa = decode_json(ra.body) if ra.body.strip() else (None, "empty")
    vb, fb = decode_json(rb.body) if rb.body.strip() else (None, "empty")
    if fa != fb:
        out.append(("", "type", f"{fa} ({cta})", f"{fb} ({ctb})"))
        return out
    if fa == "jsonl":
        return compare_stream(va, vb, dirs, explained_lines)
    if fa == "json":
        compare_json(va, vb, "", dirs, out)
        key = request_key(ex)
        out = [d for d in out if not any(
            re.fullmatch(r, key) and re.fullmatch(p, d[0]) and d[1] in ("value", "length")
            for r, p in SHAPE_ONLY)]
    return out


def stream_steps(msgs, dirs, explained_lines):
    """A build's output as [(step header, sorted lines)], stderr lines marked `E:`, the
    lines of STREAM_LINES left out (counted in explained_lines)."""
    text = "".join(m.get("stream", "") for m in msgs if isinstance(m, dict))
    lines, cur, err, start_err = [], "", False, False
    for part in re.split(r"(\x1b\[91m|\x1b\[0m)", text):
        if part in ("\x1b[91m", "\x1b[0m"):
            err = part == "\x1b[91m"
            if not cur:
                start_err = err
            continue
        pieces = part.split("\n")
        for i, piece in enumerate(pieces):
            if not cur:
                start_err = err
            cur += piece
            if i < len(pieces) - 1:
                lines.append(("E:" if start_err else "") + cur)
                cur = ""
    if cur:
        lines.append(("E:" if start_err else "") + cur)
    steps = [("", [])]
    for line in lines:
        n = normalise_text(line, dirs)
        why = next((w for r, w in STREAM_LINES if re.fullmatch(r, n)), None)
        if why:
            explained_lines[why] = explained_lines.get(why, 0) + 1
        elif n.startswith("Step "):
            steps.append((n, []))
        else:
            steps[-1][1].append(n)
    return [(h, sorted(ls)) for h, ls in steps]


def compare_stream(a, b, dirs, explained_lines):
    """JSON message streams: the kinds of messages, the output step by step, the errors."""
    out = []
    kinds_a = [tuple(sorted(m)) for m in a if isinstance(m, dict)]
    kinds_b = [tuple(sorted(m)) for m in b if isinstance(m, dict)]
    if sorted(set(kinds_a)) != sorted(set(kinds_b)):
        out.append(("", "stream", short(sorted(set(kinds_a))), short(sorted(set(kinds_b)))))
    sa = stream_steps(a, dirs, explained_lines)
    sb = stream_steps(b, dirs, explained_lines)
    if sa != sb:
        out.append((".stream", "stream", json.dumps(sa), json.dumps(sb)))
    ea = [m.get("error") for m in a if isinstance(m, dict) and "error" in m]
    eb = [m.get("error") for m in b if isinstance(m, dict) and "error" in m]
    if bool(ea) != bool(eb):
        out.append((".error", "stream", short(ea), short(eb)))
    elif ea != eb:
        out.append((".error.message", "value", short(ea), short(eb)))
    return out


def built_names(exchanges):
    """The tags and ids of the images the corpus's builds made: a request naming one is
    keyed `{built}` (DIFFERENCES says how built images differ)."""
    names = set()
    for ex in exchanges:
        if ex["method"] != "POST" or not re.match(r"(/v[\d.]+)?/build\b", ex["target"]):
            continue
        query = ex["target"].split("?", 1)[1] if "?" in ex["target"] else ""
        for kv in query.split("&"):
            if kv.startswith("t="):
                names.add(urllib.parse.unquote_plus(kv[2:]))
        for m in parse_body(ex.get("response")) or []:
            if not isinstance(m, dict):
                continue
            if isinstance(m.get("aux"), dict) and "ID" in m["aux"]:
                names.add(m["aux"]["ID"])
                names.add(m["aux"]["ID"].replace("sha256:", "")[:12])
            found = re.match(r"Successfully built ([0-9a-f]{12})", m.get("stream", ""))
            if found:
                names.add(found.group(1))
    return names


def request_key(ex, built=()):
    path = ex["target"].split("?")[0]
    path = re.sub(r"^/v\d+\.\d+", "", path)
    m = re.fullmatch(r"/images/(.+)/(json|history)", path)
    if m and m.group(1) in built:
        path = f"/images/{{built}}/{m.group(2)}"
    if ex["method"] == "DELETE" and path.startswith("/images/") and path[8:] in built:
        path = "/images/{built}"
    return f"{ex['method']} {path}"


def explained(key, path, kind):
    for req, jpath, kinds, why in DIFFERENCES:
        if re.fullmatch(req, key) and re.fullmatch(jpath, path) and re.fullmatch(kinds, kind):
            return why
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--reference-dir", required=True)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--berth-dir", required=True)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("corpus", nargs="+")
    args = ap.parse_args()
    dirs = [args.reference_dir, args.berth_dir]
    unexplained, explained_n, total = [], {}, 0
    for path in sorted(args.corpus):
        with open(path) as f:
            exchanges = json.load(f)
        name = path.rsplit("/", 1)[-1]
        results = {}

        def run(which, sock):
            reset(sock, "busybox:e2e")
            results[which] = replay(sock, exchanges)
        threads = [threading.Thread(target=run, args=(w, s))
                   for w, s in (("dockerd", args.reference), ("berth", args.berth))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        built = built_names(exchanges)
        for i, ex in enumerate(exchanges):
            total += 1
            key = request_key(ex, built)
            diffs = compare_exchange(ex, results["dockerd"][i].resp, results["berth"][i].resp,
                                     dirs, explained_n)
            for jpath, kind, a, b in diffs:
                why = explained(key, jpath, kind)
                line = f"{name}#{i} {key} {jpath or '<top>'} [{kind}] dockerd={a} berth={b}"
                if why:
                    explained_n[why] = explained_n.get(why, 0) + 1
                    if args.verbose:
                        print("explained:", line)
                else:
                    unexplained.append(line)
    print(f"{total} requests replayed to dockerd and berth; "
          f"{sum(explained_n.values())} differences explained, {len(unexplained)} not")
    for why, n in sorted(explained_n.items(), key=lambda x: -x[1]):
        print(f"  {n:4d}  {why[:100]}")
    if unexplained:
        print("\nunexplained differences (a bug, or a choice to list in DIFFERENCES and "
              "docs/api.md):")
        for line in unexplained:
            print("  " + line)
        sys.exit(1)


if __name__ == "__main__":
    main()
