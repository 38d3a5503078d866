#!/usr/bin/env python3
"""Compose benchmark: a project's `up -d` from nothing, the second `up -d` (nothing to change)
and `down -v`, side by side in one run, for
  * berth compose against berth's daemon             (berth)
  * Debian's docker-compose 1.29 against berth's daemon (dc@berth)
  * docker-compose 1.29 against Debian's dockerd 20.10 (dc@docker)

The project: four busybox services (`sleep` under an init) on the project's network (an
explicit /24 per tool, so no daemon picks a subnet someone else uses), one with a named volume.
Rounds rotate the tools; medians over rounds; ratios are berth's time over each peer's (below 1:
berth is faster). Every command is bounded (60 s), the run by --runs and --max-seconds.

Daemons, images, bridges, nft tables, iptables chains and temp dirs are bench/network.py's (its
setup and cleanup are reused): everything made here is removed at exit, also on failure or a
signal. Python 3.11 standard library only. Must run as root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine_run as er  # noqa: E402
import network as nb  # noqa: E402

PROJECT = """
services:
  web:
    image: busybox-bench:latest
    init: true
    command: ["sleep", "1000"]
    volumes: [data:/data]
  api:
    image: busybox-bench:latest
    init: true
    command: ["sleep", "1000"]
    depends_on: [web]
  worker1:
    image: busybox-bench:latest
    init: true
    command: ["sleep", "1000"]
  worker2:
    image: busybox-bench:latest
    init: true
    command: ["sleep", "1000"]
volumes:
  data: {}
networks:
  default:
    ipam:
      config:
        - subnet: ${SUBNET}
"""
STEPS = ("up", "up-again", "down")


class Tool:
    def __init__(self, name: str, engine: er.Engine, argv: list[str], env: dict[str, str],
                 subnet: str, base: str):
        self.name, self.engine, self.argv, self.env = name, engine, argv, env
        self.dir = os.path.join(base, name)
        self.project = f"cb{os.getpid()}{name.replace('@', '').replace('-', '')}"
        self.times: dict[str, list[float]] = {s: [] for s in STEPS}
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "docker-compose.yml"), "w") as f:
            f.write(PROJECT)
        with open(os.path.join(self.dir, ".env"), "w") as f:
            f.write(f"SUBNET={subnet}\n")

    def run(self, *args: str) -> float:
        t0 = time.perf_counter()
        p = subprocess.run([*self.argv, "-p", self.project, *args], cwd=self.dir,
                           env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60, check=False)
        ms = (time.perf_counter() - t0) * 1000
        if p.returncode != 0:
            raise er.BenchError(f"{self.name} {' '.join(args)}: "
                                + p.stderr.decode(errors="replace")[-600:])
        return ms

    def running(self) -> int:
        p = subprocess.run([*self.argv, "-p", self.project, "ps", "-q"], cwd=self.dir,
                           env={**os.environ, **self.env}, capture_output=True, timeout=60,
                           check=False)
        return len(p.stdout.split())


def subnet_for(i: int) -> str:
    third = (os.getpid() * 11 + i * 53) % 250 + 2
    return f"10.196.{third}.0/24"


def one_round(tools: list[Tool], it: int, record: bool) -> None:
    order = tools[it % len(tools):] + tools[:it % len(tools)]
    for t in order:
        if er.STOP["signal"]:
            return
        times = {"up": t.run("up", "-d")}
        if t.running() != 4:
            raise er.BenchError(f"{t.name}: not 4 containers running after up")
        times["up-again"] = t.run("up", "-d")
        times["down"] = t.run("down", "-v")
        if record:
            for k, v in times.items():
                t.times[k].append(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--berth", help="the berth binary (default target/release/berth)")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        er.log("compose: must run as root")
        return 1
    if not args.no_install and not er.install_deps("compose", "--for-engine-bench"):
        return 1
    if not shutil.which("docker-compose"):
        er.log("compose: docker-compose not installed")
        return 1
    er.become_subreaper()
    ctx = er.new_ctx("cb")
    er.catch_signals()
    engines: list[er.Engine] = []
    tools: list[Tool] = []
    ctx.nft_tables = nb.nft_tables()
    t0 = time.monotonic()
    try:
        tar_path = er.make_image_tar(ctx)
        for i, name in enumerate(("berth", "docker")):
            e = er.Engine(name=name, kind=name, base=os.path.join(ctx.tmp, name))
            os.makedirs(e.base)
            e.errlog = os.path.join(e.base, "stderr.log")
            engines.append(e)
            try:
                nb.SETUP[name](ctx, e, args, i)
                er.load_image(e, tar_path)
            except (er.BenchError, OSError, subprocess.TimeoutExpired) as ex:
                er.log(f"skipping {name}: {ex}")
                e.disabled = f"setup: {ex}"
        base = os.path.join(ctx.tmp, "projects")
        berth, docker = engines
        if not berth.disabled:
            sock = berth.env["BERTH_HOST"]
            tools.append(Tool("berth", berth, [*berth.cli, "compose"], berth.env,
                              subnet_for(0), base))
            tools.append(Tool("dc@berth", berth, ["docker-compose", "--ansi", "never"],
                              {"DOCKER_HOST": sock}, subnet_for(1), base))
        if not docker.disabled:
            tools.append(Tool("dc@docker", docker, ["docker-compose", "--ansi", "never"],
                              {"DOCKER_HOST": docker.env["DOCKER_HOST"]}, subnet_for(2), base))
        if not tools:
            return 1
        er.log("warm-up round")
        one_round(tools, 0, False)
        for it in range(args.runs):
            if er.STOP["signal"] or time.monotonic() - t0 > args.max_seconds:
                break
            er.log(f"round {it + 1}/{args.runs}")
            one_round(tools, it, True)
        out = {"rounds": args.runs, "tools": {}}
        print()
        print(f"{'step':10} " + " ".join(f"{t.name:>12}" for t in tools) + "   berth/peer")
        for step in STEPS:
            meds = {t.name: statistics.median(t.times[step]) if t.times[step] else None
                    for t in tools}
            for t in tools:
                out["tools"].setdefault(t.name, {"version": t.engine.version})[step] = {
                    "median_ms": meds[t.name], "samples_ms": t.times[step]}
            b = meds.get("berth")
            ratios = " ".join(f"{n}:{b / m:.2f}" for n, m in meds.items()
                              if n != "berth" and b and m)
            cells = " ".join(f"{(f'{m:.0f} ms' if m is not None else '-'):>12}"
                             for m in meds.values())
            print(f"{step:10} {cells}   {ratios}")
        print()
        for e in engines:
            if not e.disabled:
                print(f"  {e.name}: {e.version}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    except er.BenchError as ex:
        er.log(f"compose: {ex}")
        return 1
    finally:
        for t in tools:
            try:
                t.run("down", "-v")
            except (er.BenchError, subprocess.TimeoutExpired):
                pass
        nb.cleanup(ctx, engines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
