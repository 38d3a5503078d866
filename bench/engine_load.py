#!/usr/bin/env python3
"""Load benchmark: N concurrent `X run --rm IMAGE sh -c 'echo TOKEN'` on the engine's default
bridge network, as a CI system uses an engine, for berth, podman and docker side by side in one
run; N = 10, 50, 100 by default.

Per engine and N it prints the success rate (exit status 0), the output completeness (each run
printed exactly its own token), the wall time of the burst (first launch to last exit) and the
p50/p99 of each run's own time (its launch to its exit). The goals (issue 17): 100 % success
and complete output at N = 100, and berth's wall time at most 0.25 x dockerd's.

Engines, each private to this run (set up as bench/network.py does, reusing its helpers):
  * berth: target/release/berth daemon, private root, its own default bridge (--bridge, a
    --bip of a pid-derived 10.199.x.0/24) and nft table; containers on that default bridge;
  * podman: private root and --network-config-dir, runc, a bridge network of its own subnet
    and interface name (podman's default network is host-global: podman0, 10.88.0.0/16);
  * docker: Debian's dockerd 20.10 started here (private socket, roots, its managed
    containerd), its default bridge network on a bridge this run makes (--bridge), iptables
    as dockerd sets them; client /usr/bin/docker 20.10.
Engines take turns for each N, the first rotating. Every run is bounded (--run-timeout each,
--max-seconds overall). At exit (also on failure or a signal) it removes what it made:
containers, networks, daemons (by pid), mounts, cgroups, bridges, berth's nft table, dockerd's
iptables chains that did not exist before, the temp dir.

Python 3.11 standard library only. Must run as root.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine_run as er  # noqa: E402
import network as nb  # noqa: E402

IMAGE = er.IMAGE
ENGINES = ("berth", "podman", "docker")


def log(msg: str) -> None:
    er.log(msg)


def setup_docker(ctx: er.Ctx, e: er.Engine, args, i: int) -> None:
    """dockerd with its default bridge network on a bridge of this run's own."""
    ctx.docker_chains = er.iptables_chains("DOCKER")
    subnet, gw = nb.subnet_for(i)
    e.bridge = f"dlb{os.getpid() % 100000}"
    for cmd in (["ip", "link", "add", e.bridge, "type", "bridge"],
                ["ip", "addr", "add", f"{gw}/24", "dev", e.bridge],
                ["ip", "link", "set", e.bridge, "up"]):
        p = subprocess.run(cmd, capture_output=True, timeout=20, check=False)
        if p.returncode != 0:
            raise er.BenchError(f"{' '.join(cmd)}: {p.stderr.decode(errors='replace')}")
    # start_dockerd passes --bridge=none first; the later flag wins.
    er.start_dockerd(ctx, e, ["--ip6tables=false", f"--bridge={e.bridge}"],
                     "scripts/install-deps.sh --for-engine-bench installs Debian's docker.io")
    e.run_flags = ["--cgroup-parent", f"/{ctx.tag}-docker"]
    e.version = er.client_version(e, ["version", "--format", "{{.Server.Version}}"], "docker")
    e.network = "bridge"


def setup_podman(ctx: er.Ctx, e: er.Engine, args, i: int) -> None:
    nb.setup_podman(ctx, e, args, i)
    e.run_flags += ["--network", e.network]


SETUP = {"berth": nb.setup_berth, "podman": setup_podman, "docker": setup_docker}


class Burst:
    """One burst of N runs of one engine: what each run did and how long it took."""

    def __init__(self, n: int):
        self.n = n
        self.ok = 0
        self.complete = 0
        self.run_ms: list[float] = []
        self.wall_s = 0.0
        self.failures: list[str] = []


def burst(ctx: er.Ctx, e: er.Engine, n: int, timeout: float) -> Burst:
    """Launches n runs at once (as fast as they can be forked), each with its own token and
    name; waits for all (bounded); removes any container a failed run left."""
    b = Burst(n)
    env = {**os.environ, **e.env}
    names = [f"{ctx.tag}-{e.name}-{n}-{i}" for i in range(n)]
    e.live.update(names)
    results: list[tuple[int, float, str, str] | None] = [None] * n
    lock = threading.Lock()

    def one(i: int, p: subprocess.Popen, t0: int) -> None:
        try:
            out, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            rc = -1
            err = (err or b"") + f"timed out after {timeout:.0f} s".encode()
        ms = (time.perf_counter_ns() - t0) / 1e6
        with lock:
            results[i] = (rc, ms, out.decode(errors="replace"), err.decode(errors="replace"))

    threads = []
    start = time.perf_counter_ns()
    for i, name in enumerate(names):
        token = f"{name}-token"
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(e.argv("run", "--rm", "--name", name, *e.run_flags, IMAGE,
                                    "sh", "-c", f"echo {token}"),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, process_group=0)
        t = threading.Thread(target=one, args=(i, p, t0))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    b.wall_s = (time.perf_counter_ns() - start) / 1e9
    for i, r in enumerate(results):
        rc, ms, out, err = r if r else (-1, 0.0, "", "no result")
        b.run_ms.append(ms)
        if rc == 0:
            b.ok += 1
        else:
            b.failures.append(f"exit {rc}: {err.strip()[-200:]}")
        if out == f"{names[i]}-token\n":
            b.complete += 1
    # A failed run may leave its container: remove what is left, then forget the names.
    left = [x for x in names if container_exists(e, x)]
    if left:
        b.failures.append(f"{len(left)} container(s) left behind")
        try:
            er.invoke(e, ["rm", "-f", *left], timeout=120)
        except er.BenchError as ex:
            log(f"  {e.name}: removing leftovers: {ex}")
    e.live.difference_update(names)
    return b


def container_exists(e: er.Engine, name: str) -> bool:
    try:
        rc, _ms, _out = er.invoke(e, ["inspect", "--format", "{{.Id}}", name], timeout=30)
    except er.BenchError:
        return True
    return rc == 0


def report(engines: list[er.Engine], levels: list[int], skipped: list[str], meta: dict) -> dict:
    res: dict = {"meta": meta, "skipped": skipped, "engines": {}}
    for e in engines:
        res["engines"][e.name] = {"version": e.version, "disabled": e.disabled or None,
                                  "bursts": {}}
        for n, bs in e.bursts.items():
            res["engines"][e.name]["bursts"][str(n)] = [{
                "n": b.n, "ok": b.ok, "complete": b.complete, "wall_s": b.wall_s,
                "p50_ms": er.percentile(b.run_ms, 0.5), "p99_ms": er.percentile(b.run_ms, 0.99),
                "run_ms": b.run_ms, "failures": b.failures} for b in bs]
    print()
    print(f"N concurrent `X run --rm {IMAGE} sh -c 'echo TOKEN'` on each engine's default "
          "bridge; per N the engines take turns")
    print("ok = exit 0, output = its own token exactly once; wall = first launch to last exit; "
          "p50/p99 of each run's time; /docker = wall / docker's wall")
    print()
    hdr = (f"{'N':>4} {'engine':<8} | {'ok %':>6} {'output %':>8} | {'wall s':>7} "
           f"{'p50 ms':>8} {'p99 ms':>8} | {'/docker':>7} | version")
    print(hdr)
    print("-" * len(hdr))
    for n in levels:
        docker = [b.wall_s for e in engines if e.name == "docker" for b in e.bursts.get(n, [])]
        docker_wall = min(docker) if docker else None
        for e in engines:
            for b in e.bursts.get(n, []):
                ratio = b.wall_s / docker_wall if docker_wall else None
                print(f"{n:>4} {e.name:<8} | {100 * b.ok / b.n:>6.1f} "
                      f"{100 * b.complete / b.n:>8.1f} | {b.wall_s:>7.2f} "
                      f"{er.fmt(er.percentile(b.run_ms, 0.5))} "
                      f"{er.fmt(er.percentile(b.run_ms, 0.99))} | "
                      f"{er.fmt(ratio, '7.2f')} | {e.version}")
                for f in b.failures[:3]:
                    print(f"       {e.name}: {f}")
    er.print_notes(engines, skipped, meta)
    return res


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="N concurrent `run --rm` on the default bridge: berth vs podman vs docker; "
                    "success, output completeness, wall time, p50/p99 per run.")
    ap.add_argument("--levels", default="10,50,100",
                    help="comma-separated burst sizes (default 10,50,100; each 1..200)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="bursts per engine and level (default 1)")
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help="comma-separated subset of berth,podman,docker")
    ap.add_argument("--berth", metavar="PATH", help="berth binary (default target/release/berth)")
    ap.add_argument("--run-timeout", type=float, default=300.0,
                    help="seconds one run may take before it is killed (default 300)")
    ap.add_argument("--max-seconds", type=float, default=1800.0,
                    help="start no burst after this long (default 1800)")
    ap.add_argument("--json", metavar="OUT", help="also write all numbers to OUT as JSON")
    ap.add_argument("--no-install", action="store_true",
                    help="do not run scripts/install-deps.sh --for-engine-bench")
    a = ap.parse_args(argv)
    try:
        a.level_list = [int(x) for x in a.levels.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--levels: not numbers: {a.levels}")
    if not a.level_list or any(not 1 <= n <= 200 for n in a.level_list):
        ap.error("--levels must be numbers 1..200")
    if not 1 <= a.rounds <= 20:
        ap.error("--rounds must be 1..20")
    a.engine_list = [x.strip() for x in a.engines.split(",") if x.strip()]
    bad = [x for x in a.engine_list if x not in ENGINES]
    if bad or not a.engine_list:
        ap.error(f"unknown engine(s) {bad}; known: {', '.join(ENGINES)}")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        log("engine_load: must run as root")
        return 1
    if not args.no_install and not er.install_deps("engine_load", "--for-engine-bench"):
        return 1
    er.become_subreaper()
    ctx = er.new_ctx("lb")
    er.catch_signals()
    engines: list[er.Engine] = []
    skipped: list[str] = []
    ctx.nft_tables = nb.nft_tables()
    load_before = os.getloadavg()
    t_start = time.monotonic()
    try:
        tar_path = er.make_image_tar(ctx)
        for i, name in enumerate(args.engine_list):
            e = er.new_engine(ctx, name, name)
            e.bursts = {}
            engines.append(e)
            try:
                SETUP[name](ctx, e, args, i)
                er.load_image(e, tar_path)
            except (er.BenchError, OSError, subprocess.TimeoutExpired) as ex:
                skipped.append(f"{name}: {ex}")
                log(f"skipping {name}: {ex}")
                e.disabled = f"setup: {ex}"
                continue
            log(f"{name}: {e.version}")
        live = [e for e in engines if not e.disabled]
        if not live:
            return 1
        turn = 0
        for n in args.level_list:
            for r in range(args.rounds):
                for j in range(len(live)):
                    if er.STOP["signal"] or time.monotonic() - t_start > args.max_seconds:
                        break
                    e = live[(turn + j) % len(live)]
                    log(f"N={n} round {r + 1}: {e.name}")
                    b = burst(ctx, e, n, args.run_timeout)
                    e.bursts.setdefault(n, []).append(b)
                    log(f"  {e.name}: {b.ok}/{n} ok, {b.complete}/{n} complete, "
                        f"{b.wall_s:.2f} s")
                    er.reap_orphans(ctx)
                turn += 1
        meta = er.run_meta(t_start, load_before, levels=args.level_list, rounds=args.rounds,
                           image=IMAGE)
        res = report(engines, args.level_list, skipped, meta)
        if args.json:
            er.write_json(args.json, res)
        return 128 + er.STOP["signal"] if er.STOP["signal"] else 0
    except er.BenchError as ex:
        log(f"engine_load: {ex}")
        return 1
    finally:
        er.ignore_signals()
        nb.cleanup(ctx, engines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
