#!/usr/bin/env python3
"""Engine benchmark: `X run --rm IMAGE true` for berth, podman and docker, side by side in one
run, with crun's own `run` of a bundle as the reference; then the memory of the per-container
supervisor (berth's monitor, podman's conmon, docker's containerd-shim-runc-v2).

Everything is offline and private to this run:
  * one busybox image is made from Debian's busybox-static (scripts/make-rootfs.sh, then a tar)
    and imported into each engine (`X import TAR busybox-bench:latest`);
  * berth: `target/release/berth daemon` on a socket, --root and --exec-root in a temp dir,
    a --bridge and --nft-table of this run's own (the CLI reaches it through BERTH_HOST);
  * podman: --root/--runroot/--tmpdir in the temp dir, --runtime crun, --cgroup-manager
    cgroupfs, --events-backend file;
  * docker: Debian's dockerd 20.10 started here with --data-root/--exec-root/-H/--pidfile in
    the temp dir, --bridge=none --iptables=false --ip6tables=false (its own managed
    containerd); client /usr/bin/docker (20.10), else `docker` on PATH, with DOCKER_HOST;
  * crun: `crun --root R run --bundle B ID` of a bundle from scripts/make-bundle.sh.

Every engine's container runs with `--network none` (no engine sets up a network on this
path) and a private `--cgroup-parent`; `podman-net` (opt-in) is podman with its default
network. Engines take turns round-robin and the first one rotates every iteration.

At exit (also on failure, SIGINT, SIGTERM, SIGHUP) it removes the containers, stops the
daemons it started (by pid), ends leftover processes whose command line names its temp dir
(monitors, conmon, shims, containerd: all started by its daemons), unmounts what is mounted
under the temp dir, removes empty cgroups it made, berth's bridge and nft table, and deletes
the temp dir. It also removes
what dockerd 20.10 writes outside its flags (/etc/docker/key.json, /run/docker/plugins,
/run/containerd/s) and, after podman-net, netavark's empty NETAVARK* iptables chains, in both
cases only what did not exist before.

Python 3.11 standard library only. Must run as root.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402,F401  (shared by every bench; others use them as er.*)
    LIBC, MNT_DETACH, REPO, SCRIPTS, STOP, BenchError, become_subreaper, catch_signals,
    cgroup_layout, check_rc, count_failure, file_tail, fmt, ignore_signals, install_deps, log,
    on_signal, percentile, print_notes, remove_cgroups, run_meta, summarize, timed_run,
    write_json,
)

ALL_ENGINES = ("berth", "podman", "docker", "crun")
KNOWN_ENGINES = (*ALL_ENGINES, "podman-net")
IMAGE = "busybox-bench:latest"
STEP_TIMEOUT_S = 60.0  # bound on any single engine command


@dataclass
class Engine:
    name: str
    kind: str  # berth | podman | docker | crun
    cli: list[str] = field(default_factory=list)  # argv prefix of every client command
    env: dict[str, str] = field(default_factory=dict)
    run_flags: list[str] = field(default_factory=list)  # between `run --rm` and the image
    base: str = ""  # its directory under the temp dir
    errlog: str = ""
    version: str = ""
    supervisor: str = ""  # what the per-container process is called
    disabled: str = ""
    failures: int = 0
    run_ms: list[float] = field(default_factory=list)
    mem: list[dict] = field(default_factory=list)  # one per container of the memory phase
    daemon_rss_kb: dict[str, int] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)  # container names/ids that may exist

    def argv(self, *args: str) -> list[str]:
        return [*self.cli, *args]


@dataclass
class Ctx:
    tmp: str
    tag: str  # eb-<pid>: prefix of names, ids and cgroups
    daemons: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    inits: list[int] = field(default_factory=list)  # container init pids of the memory phase
    host_paths: list[str] = field(default_factory=list)  # made outside tmp; removed at exit
    netavark_chains: set[tuple[str, str]] | None = None  # (table, chain) before podman-net
    counter: int = 0

    def next_id(self) -> str:
        self.counter += 1
        return f"{self.tag}-{self.counter}"


def new_engine(ctx: Ctx, name: str, kind: str) -> Engine:
    """An engine of this run: its own directory under the temp dir and its stderr log."""
    e = Engine(name=name, kind=kind, base=os.path.join(ctx.tmp, name))
    os.makedirs(e.base)
    e.errlog = os.path.join(e.base, "stderr.log")
    return e


def new_ctx(prefix: str) -> Ctx:
    """A run's context: its temp dir and tag, `<prefix>-<pid>`. Short: unix socket paths
    (dockerd's containerd nests several levels) must fit 108 bytes."""
    tag = f"{prefix}-{os.getpid()}"
    return Ctx(tmp=tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"), tag=tag)


# --------------------------------------------------------------- helpers ----

def reap_orphans(ctx: Ctx) -> None:
    """Reap zombie children that we inherited as subreaper (conmon, monitors, shims that
    daemonized). Only pids that are not one of our own Popen children, whose status
    subprocess will collect."""
    mine = {p.pid for _n, p in ctx.daemons}
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        st = proc_stat(int(d))
        if st and st[1] == "Z" and st[2] == me:
            try:
                os.waitpid(int(d), os.WNOHANG)
            except ChildProcessError:
                pass


def proc_stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of pid, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read().decode(errors="replace")
    except OSError:
        return None
    comm = s[s.find("(") + 1:s.rfind(")")]
    rest = s[s.rfind(")") + 2:].split()
    return comm, rest[0], int(rest[1])


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def status_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def invoke(e: Engine, args: list[str], capture: bool = False,
           timeout: float = STEP_TIMEOUT_S) -> tuple[int, float, str]:
    """Run one client command; return (returncode, elapsed ms, stdout)."""
    env = {**os.environ, **e.env}
    return timed_run(f"{e.name} {args[0]}", e.argv(*args), e.errlog, timeout, capture, env)


def err_tail(e: Engine, n: int = 500) -> str:
    return file_tail(e.errlog, n)


def check(e: Engine, what: str, rc: int) -> None:
    check_rc(e.name, what, rc, e.errlog)


def wait_until(pred, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ------------------------------------------------------------- the image ----

def make_image_tar(ctx: Ctx) -> str:
    rootfs = os.path.join(ctx.tmp, "rootfs")
    p = subprocess.run(["bash", os.path.join(SCRIPTS, "make-rootfs.sh"), rootfs],
                       capture_output=True, timeout=120, check=False)
    if p.returncode != 0:
        raise BenchError("make-rootfs.sh failed: " + p.stderr.decode(errors="replace")[-600:])
    tar_path = os.path.join(ctx.tmp, "busybox.tar")

    def owner_root(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, name), arcname=name, filter=owner_root)
    return tar_path


# --------------------------------------------------------------- engines ----

# Paths outside its --data-root/--exec-root that dockerd 20.10 and its containerd write to
# whatever the flags say (trust key, plugin sockets, shim sockets). Children before parents.
DOCKER_HOST_PATHS = ("/etc/docker/key.json", "/run/docker/plugins", "/run/docker",
                     "/run/containerd/s", "/run/containerd")

def start_daemon(ctx: Ctx, name: str, argv: list[str], log_path: str) -> subprocess.Popen:
    with open(log_path, "ab") as lf:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                             start_new_session=True)
    ctx.daemons.append((name, p))
    return p


def stop_daemon(ctx: Ctx, name: str, p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {p.pid}) did not stop within 20 s: SIGKILL")
            p.kill()
            p.wait(timeout=10)
    ctx.daemons = [(n, d) for n, d in ctx.daemons if d is not p]


def setup_berth(ctx: Ctx, e: Engine, args) -> None:
    exe = args.berth or os.path.join(REPO, "target", "release", "berth")
    if not os.access(exe, os.X_OK):
        raise BenchError(f"{exe} not built (cargo build --release -p berth)")
    sock = os.path.join(e.base, "d.sock")
    root, exec_root = os.path.join(e.base, "root"), os.path.join(e.base, "exec")
    e.cli = [exe]
    e.env = {"BERTH_HOST": "unix://" + sock}
    e.run_flags = ["--network", "none", "--cgroup-parent", f"/{ctx.tag}-berth"]
    e.supervisor = "berth monitor"
    logf = os.path.join(e.base, "daemon.log")
    # This run's own default bridge and nft table (removed by cleanup), never the host's
    # berth0 and `berth` of a daemon the user runs.
    e.bridge = f"bbe{os.getpid() % 100000}"
    e.nft_table = f"berth_be{os.getpid()}"
    d = start_daemon(ctx, "berth daemon", [exe, "daemon", "-H", "unix://" + sock,
                                           "--root", root, "--exec-root", exec_root,
                                           "--bridge", e.bridge, "--nft-table", e.nft_table],
                     logf)
    if not wait_until(lambda: os.path.exists(sock) or d.poll() is not None, 30):
        raise BenchError("berth daemon: no socket after 30 s")
    if d.poll() is not None:
        raise BenchError(f"berth daemon exited ({d.returncode}): {file_tail(logf)}")
    e.daemon_rss_kb = {}
    e.version = client_version(e, ["version", "--format", "{{.Server.Version}}"], "berth")


def setup_podman(ctx: Ctx, e: Engine, args) -> None:
    exe = shutil.which("podman")
    if not exe:
        raise BenchError("podman not installed")
    if not shutil.which("crun"):
        raise BenchError("crun not installed (podman runs with --runtime crun)")
    e.cli = [exe, "--root", os.path.join(e.base, "root"),
             "--runroot", os.path.join(e.base, "run"),
             "--tmpdir", os.path.join(e.base, "tmp"),
             "--runtime", "crun", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    e.run_flags = ["--cgroup-parent", f"/{ctx.tag}-{e.name}"]
    if e.name == "podman":
        e.run_flags += ["--network", "none"]
    elif ctx.netavark_chains is None and shutil.which("iptables"):
        ctx.netavark_chains = iptables_chains("NETAVARK")
    e.supervisor = "conmon"
    e.version = client_version(e, ["version", "--format", "{{.Client.Version}}"], "podman")


def iptables_chains(prefix: str) -> set[tuple[str, str]]:
    out = set()
    for table in ("filter", "nat"):
        try:
            p = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True,
                               timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in p.stdout.decode(errors="replace").splitlines():
            w = line.split()
            if len(w) >= 2 and w[0] == "-N" and w[1].startswith(prefix):
                out.add((table, w[1]))
    return out


def remove_netavark_chains(before: set[tuple[str, str]]) -> None:
    """podman's default network (netavark) leaves its NETAVARK* chains and the jumps to them
    in the host's iptables after the last container is gone; remove those that were not there
    before podman-net started, and only while they hold nothing of another network."""
    remove_made_chains("NETAVARK", before)


def remove_made_chains(prefix: str, before: set[tuple[str, str]]) -> None:
    """Removes the iptables chains named PREFIX* that are not in `before`, and the jumps to
    them, unless they hold per-network rules (then another network still uses them)."""
    made = iptables_chains(prefix) - before
    for table in sorted({t for t, _c in made}):
        chains = {c for t, c in made if t == table}
        p = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, timeout=20,
                           check=False)
        rules = p.stdout.decode(errors="replace").splitlines()
        if any(r.startswith(f"-A {prefix}") and f"-j {prefix}-" not in r and
               ("-s " in r or "-d " in r or "--dport" in r) for r in rules):
            log(f"iptables {table}: {prefix} chains hold per-network rules: left alone")
            continue
        for r in rules:  # jumps from the built-in chains
            w = shlex.split(r)
            if len(w) > 2 and w[0] == "-A" and w[1] not in chains and w[-1] in chains:
                subprocess.run(["iptables", "-t", table, "-D", *w[1:]], timeout=20, check=False)
        for c in chains:
            subprocess.run(["iptables", "-t", table, "-F", c], timeout=20, check=False)
        for c in chains:
            subprocess.run(["iptables", "-t", table, "-X", c], timeout=20, check=False,
                           stderr=subprocess.DEVNULL)


def setup_docker(ctx: Ctx, e: Engine, args) -> None:
    # No networking of its own: the containers run with --network none.
    start_dockerd(ctx, e, ["--iptables=false", "--ip6tables=false", "--ip-masq=false",
                           "--userland-proxy=false"],
                  "scripts/install-deps.sh --for-engine-bench installs Debian's docker.io")
    e.run_flags = ["--network", "none"]
    e.supervisor = "containerd-shim-runc-v2"
    e.version = client_version(e, ["version", "--format",
                                   "{{.Server.Version}} (client {{.Client.Version}})"], "docker")


def start_dockerd(ctx: Ctx, e: Engine, flags: list[str], install_hint: str) -> None:
    """Starts Debian's dockerd for `e`, private to this run (socket, roots, pid file and log
    under e.base; no default bridge; `flags` shape the rest of its networking), points e's
    client at it, and returns once it answers."""
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise BenchError(f"dockerd not installed ({install_hint})")
    client = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else shutil.which("docker")
    if not client:
        raise BenchError("no docker client")
    sock = os.path.join(e.base, "docker.sock")
    conf = os.path.join(e.base, "daemon.json")
    with open(conf, "w") as f:
        f.write("{}\n")
    logf = os.path.join(e.base, "dockerd.log")
    ctx.host_paths += [p for p in DOCKER_HOST_PATHS if not os.path.lexists(p)]
    d = start_daemon(ctx, "dockerd", [
        dockerd, "--config-file", conf, "-H", "unix://" + sock,
        "--data-root", os.path.join(e.base, "data"), "--exec-root", os.path.join(e.base, "exec"),
        "--pidfile", os.path.join(e.base, "docker.pid"), "--bridge=none", *flags,
        "--cgroup-parent", f"/{ctx.tag}-docker", "--log-level", "warn"], logf)
    e.cli = [client]
    e.env = {"DOCKER_HOST": "unix://" + sock, "DOCKER_CONFIG": os.path.join(e.base, "cfg")}

    def up() -> bool:
        if d.poll() is not None or not os.path.exists(sock):
            return d.poll() is not None
        rc, _ms, _o = invoke(e, ["version"], timeout=10)
        return rc == 0

    if not wait_until(up, 60, 0.2) or d.poll() is not None:
        raise BenchError(f"dockerd did not come up: {file_tail(logf)}")


def setup_crun(ctx: Ctx, e: Engine, args) -> None:
    exe = shutil.which("crun")
    if not exe:
        raise BenchError("crun not installed")
    bundle = os.path.join(e.base, "bundle")
    p = subprocess.run(["bash", os.path.join(SCRIPTS, "make-bundle.sh"), "--runtime-cmd", exe,
                        bundle, "true"], capture_output=True, timeout=120, check=False)
    if p.returncode != 0:
        raise BenchError("make-bundle.sh failed: " + p.stderr.decode(errors="replace")[-600:])
    e.cli = [exe, "--root", os.path.join(e.base, "state")]
    e.supervisor = ""
    e.run_flags = ["--bundle", bundle]
    p = subprocess.run([exe, "--version"], capture_output=True, timeout=10, check=False)
    e.version = p.stdout.decode(errors="replace").splitlines()[0] if p.returncode == 0 else "?"


SETUP = {"berth": setup_berth, "podman": setup_podman, "docker": setup_docker,
         "crun": setup_crun}


def client_version(e: Engine, args: list[str], fallback: str) -> str:
    try:
        rc, _ms, out = invoke(e, args, capture=True, timeout=20)
    except BenchError:
        return fallback
    return out.strip() if rc == 0 and out.strip() else fallback


def load_image(e: Engine, tar_path: str) -> None:
    if e.kind == "crun":
        return
    rc, ms, _ = invoke(e, ["import", tar_path, IMAGE], timeout=120)
    check(e, "import", rc)
    log(f"{e.name}: imported {IMAGE} in {ms:.0f} ms")


# ---------------------------------------------------------- measurements ----

def measure_run(ctx: Ctx, e: Engine) -> float:
    if e.kind == "crun":
        cid = ctx.next_id()
        e.live.add(cid)
        rc, ms, _ = invoke(e, ["run", *e.run_flags, cid])
        check(e, "run", rc)
        e.live.discard(cid)
        return ms
    rc, ms, _ = invoke(e, ["run", "--rm", *e.run_flags, IMAGE, "true"])
    check(e, "run --rm", rc)
    return ms


def one_round(ctx: Ctx, engines: list[Engine], it: int, record: bool, args) -> None:
    live = [e for e in engines if not e.disabled]
    k = len(live)
    for j in range(k):
        if STOP["signal"]:
            return
        e = live[(it + j) % k]
        try:
            ms = measure_run(ctx, e)
            if record:
                e.run_ms.append(ms)
        except (BenchError, OSError) as ex:
            count_failure(e, "run", ex, not record, args.max_failures)
        reap_orphans(ctx)


def container_init_pid(e: Engine, ref: str) -> int:
    rc, _ms, out = invoke(e, ["inspect", ref], capture=True, timeout=30)
    check(e, "inspect", rc)
    try:
        data = json.loads(out)
        obj = data[0] if isinstance(data, list) else data
        return int(obj["State"]["Pid"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise BenchError(f"{e.name} inspect: no State.Pid in {out[:200]!r}")


def berth_monitor_pid(e: Engine, cid: str) -> int | None:
    """monitor_pid from <exec-root>/containers/<id>/state.json (cid may be a prefix)."""
    for path in glob.glob(os.path.join(e.base, "exec", "containers", cid + "*", "state.json")):
        try:
            with open(path) as f:
                return int(json.load(f).get("monitor_pid") or 0) or None
        except (OSError, ValueError):
            pass
    return None


def measure_memory(ctx: Ctx, e: Engine, k: int) -> None:
    if e.kind == "crun":
        return
    started: list[tuple[str, int]] = []
    for i in range(k):
        name = f"{ctx.tag}-mem-{e.name}-{i}"
        e.live.add(name)
        rc, _ms, out = invoke(e, ["run", "-d", "--name", name, *e.run_flags, IMAGE,
                                  "sleep", "300"], capture=True)
        check(e, "run -d", rc)
        cid = out.strip().splitlines()[-1] if out.strip() else name
        pid = container_init_pid(e, name)
        if pid <= 0:
            raise BenchError(f"{e.name}: container {name} has no pid")
        ctx.inits.append(pid)
        started.append((cid, pid))
    time.sleep(1.0)  # let the supervisors settle after their start
    for cid, pid in started:
        st = proc_stat(pid)
        if not st:
            raise BenchError(f"{e.name}: container init {pid} is gone")
        sup = st[2]
        argv = cmdline(sup)
        if e.kind == "berth":
            mp = berth_monitor_pid(e, cid)
            if mp and mp != sup:
                log(f"  berth: state.json says monitor {mp}, init's parent is {sup}; using {mp}")
                sup, argv = mp, cmdline(mp)
        rec = {"container": cid, "init_pid": pid, "supervisor_pid": sup,
               "supervisor_cmd": " ".join(argv)[:300], **status_kb(sup)}
        e.mem.append(rec)
    # The engine's long-lived processes, for context.
    for pid, label in daemon_pids(ctx, e):
        e.daemon_rss_kb[label] = status_kb(pid).get("VmRSS", 0)


def daemon_pids(ctx: Ctx, e: Engine) -> list[tuple[int, str]]:
    out = []
    for name, p in ctx.daemons:
        if p.poll() is not None:
            continue
        if (e.kind == "berth" and name == "berth daemon") or (e.kind == "docker" and name == "dockerd"):
            out.append((p.pid, name))
    if e.kind == "docker":  # dockerd's managed containerd
        for pid in pids_naming(e.base):
            argv = cmdline(pid)
            if argv and os.path.basename(argv[0]) == "containerd":
                out.append((pid, "containerd"))
    return out


def pids_naming(path: str) -> list[int]:
    """Processes (other than us) whose command line mentions path."""
    me = os.getpid()
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != me:
            if any(path in a for a in cmdline(int(d))):
                found.append(int(d))
    return found


def remove_containers(e: Engine) -> None:
    if not e.live or not e.cli:
        return
    try:
        if e.kind == "crun":
            for cid in sorted(e.live):
                invoke(e, ["delete", "--force", cid], timeout=20)
        else:
            invoke(e, ["rm", "-f", *sorted(e.live)], timeout=60)
    except BenchError as ex:
        log(f"{e.name}: removing containers: {ex}")
    e.live.clear()


# --------------------------------------------------------------- cleanup ----

def kill_pids(pids: list[int], what: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in pids if proc_stat(p) and proc_stat(p)[1] != "Z"]
        if not alive:
            return
        log(f"ending leftover {what}: {alive} ({signal.Signals(sig).name})")
        for p in alive:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        wait_until(lambda: not [p for p in alive if proc_stat(p) and proc_stat(p)[1] != "Z"], 5)


def unmount_under(path: str) -> None:
    prefix = path.rstrip("/") + "/"
    for _round in range(3):
        try:
            with open("/proc/self/mountinfo") as f:
                points = [line.split()[4] for line in f]
        except OSError:
            return
        points = [p.replace("\\040", " ") for p in points if p.startswith(prefix) or p == path]
        if not points:
            return
        for p in sorted(set(points), key=len, reverse=True):
            if LIBC.umount2(p.encode(), MNT_DETACH) != 0:
                log(f"umount {p}: {os.strerror(ctypes.get_errno())}")


def remove_engine_networks(engines) -> None:
    """The bridge and nft table each engine's daemon of this run made (berth's)."""
    for e in engines:
        if getattr(e, "bridge", ""):
            subprocess.run(["ip", "link", "del", e.bridge], stderr=subprocess.DEVNULL,
                           check=False)
        if getattr(e, "nft_table", ""):
            subprocess.run(["nft", "delete", "table", "ip", e.nft_table],
                           stderr=subprocess.DEVNULL, check=False)


def cleanup(ctx: Ctx, engines: list[Engine]) -> None:
    for e in engines:
        remove_containers(e)
    for e in engines:  # the image, so the private roots hold no more than needed
        if e.kind in ("berth", "podman", "docker") and e.cli and not e.disabled.startswith("setup"):
            try:
                invoke(e, ["rmi", "-f", IMAGE], timeout=30)
            except BenchError:
                pass
    for name, p in list(ctx.daemons):
        stop_daemon(ctx, name, p)
    # Monitors, conmon, shims, containerd: started by our daemons, named after our temp dir.
    kill_pids(pids_naming(ctx.tmp), f"processes under {ctx.tmp}")
    kill_pids([p for p in ctx.inits if cmdline(p)[:2] == ["sleep", "300"]], "container inits")
    reap_orphans(ctx)
    unmount_under(ctx.tmp)
    remove_cgroups(ctx.tag)
    remove_engine_networks(engines)
    if ctx.netavark_chains is not None:
        try:
            remove_netavark_chains(ctx.netavark_chains)
        except (OSError, subprocess.TimeoutExpired) as ex:
            log(f"iptables cleanup: {ex}")
    for p in ctx.host_paths:  # only those that did not exist before dockerd started
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)  # only if empty: never what something else put there since
            elif os.path.lexists(p):
                os.unlink(p)
        except OSError as ex:
            log(f"could not remove {p}: {ex}")
    shutil.rmtree(ctx.tmp, ignore_errors=True)
    if os.path.exists(ctx.tmp):
        log(f"warning: could not remove all of {ctx.tmp}")


# ---------------------------------------------------------------- report ----

def report(engines: list[Engine], skipped: list[str], args, meta: dict) -> dict:
    res: dict = {"meta": meta, "skipped": skipped, "engines": {}}
    for e in engines:
        res["engines"][e.name] = {
            "command": e.cli, "run_flags": e.run_flags, "version": e.version,
            "disabled": e.disabled or None, "failures": e.failures,
            "run": summarize(e.run_ms), "samples_ms": e.run_ms,
            "supervisor": e.supervisor or None, "memory": e.mem,
            "daemon_rss_kb": e.daemon_rss_kb,
        }
    med = {n: r["run"].get("median") for n, r in res["engines"].items()}
    for n, r in res["engines"].items():
        m = med[n]
        r["ratio_to_crun"] = m / med["crun"] if m and med.get("crun") else None
        r["ratio_to_berth"] = m / med["berth"] if m and med.get("berth") else None

    print()
    print(f"`X run --rm {IMAGE} true`: {meta['runs_measured']} rounds (+{args.warmup} warm-up), "
          "engines interleaved round-robin; crun = `crun run --bundle B ID` (no engine)")
    print("times in ms; ratios = median / crun's median, / berth's median")
    print()
    hdr = (f"{'engine':<11} {'n':>4} | {'median':>8} {'p90':>8} {'min':>8} | "
           f"{'/crun':>6} {'/berth':>6} | version")
    print(hdr)
    print("-" * len(hdr))
    for n, r in res["engines"].items():
        s = r["run"]
        print(f"{n:<11} {s.get('n', 0):>4} | {fmt(s.get('median'))} {fmt(s.get('p90'))} "
              f"{fmt(s.get('min'))} | {fmt(r['ratio_to_crun'], '6.2f')} "
              f"{fmt(r['ratio_to_berth'], '6.2f')} | {r['version']}")
    if any(e.mem for e in engines):
        print()
        print(f"per-container supervisor, {args.containers} x `run -d {IMAGE} sleep 300` each "
              "(medians, KiB, from /proc/PID/status and smaps_rollup):")
        hdr = (f"{'engine':<11} {'process':<24} {'n':>2} | {'VmRSS':>7} {'RssAnon':>7} "
               f"{'RssFile':>7} {'Pss':>7} | daemons (VmRSS KiB)")
        print(hdr)
        print("-" * len(hdr))
        for e in engines:
            if not e.mem:
                continue

            def m(key):
                xs = [r[key] for r in e.mem if key in r]
                return int(statistics.median(xs)) if xs else None

            names = {os.path.basename(r["supervisor_cmd"].split(" ")[0]) for r in e.mem}
            proc = e.supervisor + ("" if e.supervisor.split()[0] in names
                                   else f" (saw {','.join(sorted(names))})")
            daemons = ", ".join(f"{k} {v}" for k, v in e.daemon_rss_kb.items()) or "none"
            print(f"{e.name:<11} {proc:<24} {len(e.mem):>2} | {fmt(m('VmRSS'), '7d')} "
                  f"{fmt(m('RssAnon'), '7d')} {fmt(m('RssFile'), '7d')} {fmt(m('Pss'), '7d')} "
                  f"| {daemons}")
    print_notes(engines, skipped, meta)
    return res


# ------------------------------------------------------------------ main ----

def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="`run --rm busybox true`: berth vs podman (crun) vs docker vs crun's own "
                    "run, medians and ratios; and the RSS of the per-container supervisor.")
    ap.add_argument("--runs", type=int, default=30, help="measured rounds (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="discarded warm-up rounds (default 3)")
    ap.add_argument("--engines", default=",".join(ALL_ENGINES),
                    help="comma-separated subset of berth,podman,docker,crun,podman-net "
                         "(default: berth,podman,docker,crun)")
    ap.add_argument("--containers", type=int, default=3,
                    help="containers per engine for the memory phase (default 3; 0 skips it)")
    ap.add_argument("--berth", metavar="PATH", help="berth binary (default target/release/berth)")
    ap.add_argument("--max-seconds", type=float, default=900.0,
                    help="stop measuring after this long, reporting what was measured (default 900)")
    ap.add_argument("--max-failures", type=int, default=5,
                    help="drop an engine after this many failed runs (default 5)")
    ap.add_argument("--json", metavar="OUT", help="also write all numbers to OUT as JSON")
    ap.add_argument("--no-install", action="store_true",
                    help="do not run scripts/install-deps.sh --for-crun --for-engine-bench")
    a = ap.parse_args(argv)
    if not 1 <= a.runs <= 100_000 or not 0 <= a.warmup <= 1000 or not 0 <= a.containers <= 50:
        ap.error("--runs must be 1..100000, --warmup 0..1000, --containers 0..50")
    a.engine_list = [x.strip() for x in a.engines.split(",") if x.strip()]
    bad = [x for x in a.engine_list if x not in KNOWN_ENGINES]
    if bad or not a.engine_list:
        ap.error(f"unknown engine(s) {bad}; known: {', '.join(KNOWN_ENGINES)}")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        log("engine_run: must run as root")
        return 1
    if not args.no_install and not install_deps("engine_run", "--for-crun", "--for-engine-bench"):
        return 1
    if not become_subreaper():
        log("warning: could not become a child subreaper; exited conmon/monitors may linger "
            "as zombies")

    ctx = new_ctx("eb")
    catch_signals()
    engines: list[Engine] = []
    skipped: list[str] = []
    load_before = os.getloadavg()
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        log(f"warning: load average {load_before[0]:.2f} on {os.cpu_count()} CPUs: "
            "other work will add noise to the figures")
    t_start = time.monotonic()
    measured = 0
    try:
        tar_path = make_image_tar(ctx)
        for name in args.engine_list:
            if STOP["signal"]:
                break
            kind = "podman" if name.startswith("podman") else name
            e = new_engine(ctx, name, kind)
            try:
                SETUP[kind](ctx, e, args)  # podman-net: a root of its own, imported again
                load_image(e, tar_path)
            except (BenchError, OSError, subprocess.TimeoutExpired) as ex:
                skipped.append(f"{name}: {ex}")
                log(f"skipping {name}: {ex}")
                e.disabled = f"setup: {ex}"
                engines.append(e)  # for cleanup; not measured
                continue
            log(f"{name}: {' '.join(e.cli[:1])} ({e.version})")
            engines.append(e)
        measured_engines = [e for e in engines if not e.disabled]
        if not measured_engines:
            log("engine_run: no engine to measure")
            return 1

        log(f"warm-up: {args.warmup} round(s)")
        for it in range(args.warmup):
            if STOP["signal"]:
                break
            one_round(ctx, measured_engines, it, False, args)
        log(f"measuring: {args.runs} round(s), max {args.max_seconds:.0f} s")
        for it in range(args.runs):
            if STOP["signal"] or all(e.disabled for e in measured_engines):
                break
            if time.monotonic() - t_start > args.max_seconds:
                log(f"time bound reached after {measured} round(s)")
                break
            one_round(ctx, measured_engines, it, True, args)
            if STOP["signal"]:  # a partial round: leave it out
                for e in measured_engines:
                    del e.run_ms[measured:]
                break
            measured += 1
            if (it + 1) % 10 == 0:
                log(f"  {it + 1}/{args.runs}")

        if args.containers and not STOP["signal"]:
            log(f"memory: {args.containers} `sleep 300` container(s) per engine")
            for e in measured_engines:
                if e.disabled or STOP["signal"] or e.kind == "crun":
                    continue
                if time.monotonic() - t_start > args.max_seconds + 120:
                    log("time bound reached: skipping the rest of the memory phase")
                    break
                try:
                    measure_memory(ctx, e, args.containers)
                except (BenchError, OSError) as ex:
                    log(f"  {e.name}: memory phase failed: {ex}")
                    e.disabled = e.disabled or f"memory phase: {ex}"
                remove_containers(e)
                reap_orphans(ctx)

        meta = run_meta(t_start, load_before, runs_requested=args.runs, runs_measured=measured,
                        warmup=args.warmup, containers=args.containers, image=IMAGE)
        res = report(engines, skipped, args, meta)
        if args.json:
            write_json(args.json, res)
        if STOP["signal"]:
            return 128 + STOP["signal"]
        return 0 if any(e.run_ms for e in engines) else 1
    except BenchError as ex:
        log(f"engine_run: {ex}")
        return 1
    finally:
        ignore_signals()
        cleanup(ctx, engines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
