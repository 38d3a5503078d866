#!/usr/bin/env python3
"""Build benchmark: the same multi-step Dockerfile (FROM busybox, 3 RUN, COPY 2 MiB) built
cold (`--no-cache`) and fully cached, by berth, docker's classic builder and BuildKit (Debian's
dockerd 20.10 started privately, its 20.10 CLI with DOCKER_BUILDKIT=0 and =1) and podman
build, side by side in one run, engines interleaved round-robin; medians, p90 and ratios.

Everything is offline and private to this run, set up as bench/engine_run.py does (whose
helpers it uses): a busybox image made from Debian's busybox-static and imported into each
engine; berth's daemon, dockerd and podman's storage under one temp dir, removed at exit.
Every RUN step runs with `--network none` (no engine needs a network for this Dockerfile), or
with `--network default` with each engine's own default (no flag): docker's classic builder
and berth put RUN containers on the default bridge (a namespace, a veth and an address per
RUN), so that measures what networking a RUN costs.

The times are those of the client command, as a user sees them: the CLI's start, sending the
context, the build, the tagging.

Python 3.11 standard library only. Must run as root.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine_run as er  # noqa: E402

DOCKERFILE = f"""FROM {er.IMAGE}
RUN echo one > /one
RUN echo two > /two
RUN echo three > /three
COPY big /data/big
"""
ENGINES = ("berth", "docker-classic", "docker-buildkit", "podman")
BASELINE = "docker-buildkit"


def make_context(ctx: er.Ctx, size: int) -> str:
    d = os.path.join(ctx.tmp, "context")
    os.makedirs(d)
    with open(os.path.join(d, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(d, "big"), "wb") as f:
        f.write(os.urandom(size))
    return d


NETWORK = {"mode": "none"}


def build_args(e: er.Engine, context: str, cold: bool) -> list[str]:
    args = ["build", "-q", "-t", f"bench-build-{e.name}:latest"]
    if NETWORK["mode"] != "default":
        args[2:2] = ["--network", NETWORK["mode"]]
    if cold:
        args.append("--no-cache")
    return [*args, context]


def measure(e: er.Engine, context: str, cold: bool) -> float:
    rc, ms, _ = er.invoke(e, build_args(e, context, cold), capture=True, timeout=120)
    er.check(e, "build --no-cache" if cold else "build", rc)
    return ms


def setup(ctx: er.Ctx, names: list[str], args, tar_path: str) -> tuple[list[er.Engine], list[str]]:
    engines: list[er.Engine] = []
    skipped: list[str] = []
    docker: er.Engine | None = None
    for name in names:
        kind = "docker" if name.startswith("docker") else name
        if kind == "docker" and docker is not None:
            # The second docker builder shares the first's daemon.
            e = copy.deepcopy(docker)
            e.name = name
        else:
            e = er.Engine(name=name, kind=kind, base=os.path.join(ctx.tmp, name))
            os.makedirs(e.base)
            e.errlog = os.path.join(e.base, "stderr.log")
            try:
                er.SETUP[kind](ctx, e, args)
                er.load_image(e, tar_path)
            except (er.BenchError, OSError) as ex:
                skipped.append(f"{name}: {ex}")
                er.log(f"skipping {name}: {ex}")
                e.disabled = f"setup: {ex}"
                engines.append(e)
                continue
            if kind == "docker":
                docker = e
        if kind == "docker":
            e.env = {**e.env, "DOCKER_BUILDKIT": "1" if name.endswith("buildkit") else "0"}
        engines.append(e)
    return engines, skipped


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", type=int, default=10, help="cold builds per engine (default 10)")
    ap.add_argument("--cached", type=int, default=20,
                    help="fully cached builds per engine (default 20)")
    ap.add_argument("--size", type=int, default=2 << 20, help="bytes of the COPY'd file (2 MiB)")
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help=f"comma-separated subset of {','.join(ENGINES)}")
    ap.add_argument("--berth", metavar="PATH", help="berth binary (default target/release/berth)")
    ap.add_argument("--max-seconds", type=float, default=900.0,
                    help="stop measuring after this long (default 900)")
    ap.add_argument("--json", metavar="OUT", help="also write every sample to OUT")
    ap.add_argument("--network", choices=("none", "default"), default="none",
                    help="RUN steps' network: none (default), or each engine's default")
    ap.add_argument("--no-install", action="store_true",
                    help="do not run scripts/install-deps.sh --for-engine-bench")
    args = ap.parse_args(argv)
    NETWORK["mode"] = args.network
    names = [x.strip() for x in args.engines.split(",") if x.strip()]
    bad = [n for n in names if n not in ENGINES]
    if bad or not names or not (1 <= args.cold <= 1000 and 1 <= args.cached <= 1000):
        ap.error(f"engines from {ENGINES}; --cold and --cached 1..1000")
    if os.geteuid() != 0:
        er.log("build bench: must run as root")
        return 1
    if not args.no_install and not er.install_deps("build bench", "--for-engine-bench"):
        return 1
    er.become_subreaper()
    ctx = er.new_ctx("bb")
    er.catch_signals()
    engines: list[er.Engine] = []
    samples: dict[str, dict[str, list[float]]] = {}
    load_before = os.getloadavg()
    t0 = time.monotonic()
    try:
        tar_path = er.make_image_tar(ctx)
        context = make_context(ctx, args.size)
        engines, skipped = setup(ctx, names, args, tar_path)
        live = [e for e in engines if not e.disabled]
        for e in live:
            samples[e.name] = {"cold": [], "cached": []}
            try:  # warm-up: page cache, the engines' first-use costs
                measure(e, context, True)
                measure(e, context, False)
            except er.BenchError as ex:
                e.disabled = f"warm-up: {ex}"
                er.log(f"{e.name}: dropped ({ex})")
        live = [e for e in live if not e.disabled]
        for phase, n in (("cold", args.cold), ("cached", args.cached)):
            er.log(f"{phase}: {n} round(s)")
            for it in range(n):
                if er.STOP["signal"] or time.monotonic() - t0 > args.max_seconds:
                    break
                for j in range(len(live)):
                    e = live[(it + j) % len(live)]
                    if e.disabled:
                        continue
                    try:
                        samples[e.name][phase].append(measure(e, context, phase == "cold"))
                    except er.BenchError as ex:
                        e.failures += 1
                        er.log(f"  {e.name}: {ex}")
                        if e.failures >= 3:
                            e.disabled = f"{e.failures} failures"
                    er.reap_orphans(ctx)
        report(engines, samples, skipped, args, load_before)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"samples_ms": samples, "skipped": skipped,
                           "versions": {e.name: e.version for e in engines}}, f, indent=2)
        return 0 if any(s["cold"] for s in samples.values()) else 1
    except er.BenchError as ex:
        er.log(f"build bench: {ex}")
        return 1
    finally:
        er.ignore_signals()
        seen = set()
        unique = []
        for e in engines:  # the two docker builders share a daemon: clean it once
            key = (e.kind, e.base)
            if key not in seen:
                seen.add(key)
                unique.append(e)
        er.cleanup(ctx, unique)


def report(engines, samples, skipped, args, load_before) -> None:
    med = {n: {p: (statistics.median(v) if v else None) for p, v in s.items()}
           for n, s in samples.items()}
    base = med.get(BASELINE, {})
    print()
    print(f"Dockerfile: FROM busybox, 3 RUN, COPY {args.size / (1 << 20):.0f} MiB; "
          "cold = --no-cache, cached = the same build again; times in ms of the client command; "
          f"RUN network: {args.network}")
    print(f"ratios: median / {BASELINE}'s median")
    print()
    hdr = (f"{'engine':<16} | {'cold n':>6} {'median':>8} {'p90':>8} {'/bk':>6} | "
           f"{'cached n':>8} {'median':>8} {'p90':>8} {'/bk':>6} | version")
    print(hdr)
    print("-" * len(hdr))
    for e in engines:
        s = samples.get(e.name, {"cold": [], "cached": []})
        m = med.get(e.name, {})
        cells = []
        for p in ("cold", "cached"):
            xs = s[p]
            ratio = (m.get(p) / base[p]) if m.get(p) and base.get(p) else None
            cells.append(f"{len(xs):>{6 if p == 'cold' else 8}} {er.fmt(m.get(p))} "
                         f"{er.fmt(er.percentile(xs, 0.9))} {er.fmt(ratio, '6.2f')}")
        print(f"{e.name:<16} | {cells[0]} | {cells[1]} | {e.version}")
    for e in engines:
        if e.disabled:
            print(f"note: {e.name} dropped: {e.disabled}")
    for s in skipped:
        print(f"note: skipped {s}")
    b = med.get("berth", {})
    if b.get("cold") and base.get("cold"):
        print(f"goal: berth cold <= 0.70 x BuildKit: {b['cold'] / base['cold']:.2f} x")
    if b.get("cached"):
        print(f"goal: berth fully cached < 20 ms: {b['cached']:.1f} ms")
    print(f"{os.cpu_count()} CPUs, kernel {platform.release()}, cgroups {er.cgroup_layout()}, "
          f"load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}, "
          f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
