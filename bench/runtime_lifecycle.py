#!/usr/bin/env python3
"""Container lifecycle benchmark: berth vs crun vs runc, side by side in one run.

For each runtime, one busybox bundle whose process is `true` (no terminal) is
prepared with scripts/make-bundle.sh, then every iteration measures, for every
runtime in turn (round-robin, start rotated each iteration so drift and
ordering effects hit all runtimes equally):

  (a) run:       RT --root R run --bundle B ID
                 (create + start + wait + delete in one runtime process)
  (b) lifecycle: RT --root R create --bundle B ID ; RT start ID ;
                 wait until stopped ; RT delete ID   (total of the four steps)

Waiting in (b) is, by default, polling `RT state ID` until its JSON status is
"stopped" (every --poll-ms, bounded by 5 s); so (b) includes at least one
`state` invocation of that runtime. `--wait pidfd` instead reads the pid from
`state` once right after create (outside the timed region) and waits on a
pidfd, which takes the runtime's `state` cost out of the figure.

The benchmark process makes itself a child subreaper (like containerd-shim or
conmon) and reaps the exited containers it inherits after `create`, since
pid 1 of a minimal machine may not.

Python 3.11 standard library only. Must run as root.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402  (shared by every bench)
    REPO, SCRIPTS, STOP, BenchError, become_subreaper, catch_signals, check_rc, count_failure,
    file_tail, fmt, install_deps, log, remove_cgroups, run_meta, summarize, timed_run, write_json,
)

ALL_RUNTIMES = ("berth", "crun", "runc")
STEP_TIMEOUT_S = 30.0  # bound on any single runtime invocation
WAIT_BOUND_S = 5.0  # bound on waiting for the container to stop


@dataclass
class Runtime:
    name: str
    prefix: list[str]  # argv before the global flags, e.g. ["crun"] or [berth, "runtime"]
    root: str = ""
    bundle: str = ""
    errlog: str = ""
    version: str = ""
    spec_source: str = ""  # whose `spec` made the bundle's config.json
    live: set[str] = field(default_factory=set)  # ids possibly still existing
    failures: int = 0
    disabled: str = ""  # reason, once disabled
    run_ms: list[float] = field(default_factory=list)
    life_ms: list[float] = field(default_factory=list)
    steps_ms: dict[str, list[float]] = field(
        default_factory=lambda: {"create": [], "start": [], "wait": [], "delete": []}
    )
    polls: list[int] = field(default_factory=list)

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, "--root", self.root, *args]


# --------------------------------------------------------------- helpers ----

def reap_children() -> None:
    """Reap exited orphans we inherited as subreaper. Only call while no
    subprocess.Popen of ours is alive (we are single-threaded, so: between calls)."""
    for _ in range(10_000):
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def invoke(rt: Runtime, args: list[str], capture: bool = False,
           timeout: float = STEP_TIMEOUT_S) -> tuple[int, float, str]:
    """Run one runtime command; return (returncode, elapsed ms, stdout)."""
    return timed_run(f"{rt.name} {args[0]}", rt.argv(*args), rt.errlog, timeout, capture)


def err_tail(rt: Runtime, n: int = 600) -> str:
    return file_tail(rt.errlog, n)


def check(rt: Runtime, what: str, rc: int) -> None:
    check_rc(rt.name, what, rc, rt.errlog)


def force_delete(rt: Runtime, cid: str) -> None:
    try:
        invoke(rt, ["delete", "--force", cid], timeout=10)
    except BenchError:
        pass
    reap_children()
    rt.live.discard(cid)


def state_of(rt: Runtime, cid: str) -> dict:
    rc, _ms, out = invoke(rt, ["state", cid], capture=True, timeout=10)
    check(rt, "state", rc)
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        raise BenchError(f"{rt.name} state: not JSON: {out[:200]!r}")


# ---------------------------------------------------------- measurements ----

def measure_run(rt: Runtime, cid: str) -> float:
    rt.live.add(cid)
    rc, ms, _ = invoke(rt, ["run", "--bundle", rt.bundle, cid])
    check(rt, "run", rc)
    rt.live.discard(cid)
    return ms


def measure_lifecycle(rt: Runtime, cid: str, wait_mode: str, poll_s: float) -> dict:
    steps: dict[str, float] = {}
    rt.live.add(cid)
    rc, steps["create"], _ = invoke(rt, ["create", "--bundle", rt.bundle, cid])
    check(rt, "create", rc)

    pidfd = -1
    if wait_mode == "pidfd":  # untimed: learn the pid, open a pidfd on it
        st = state_of(rt, cid)
        pid = int(st.get("pid") or 0)
        if pid <= 0:
            raise BenchError(f"{rt.name} state after create has no pid: {st}")
        pidfd = os.pidfd_open(pid)
    polls = 0
    try:
        rc, steps["start"], _ = invoke(rt, ["start", cid])
        check(rt, "start", rc)

        t0 = time.perf_counter_ns()
        if wait_mode == "pidfd":
            p = select.poll()
            p.register(pidfd, select.POLLIN)
            if not p.poll(WAIT_BOUND_S * 1000):
                raise BenchError(f"{rt.name}: container did not exit within {WAIT_BOUND_S} s")
            reap_children()
        else:
            deadline = time.monotonic() + WAIT_BOUND_S
            while True:  # bounded by the deadline
                reap_children()
                polls += 1
                status = state_of(rt, cid).get("status")
                if status == "stopped":
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"{rt.name}: still {status!r} after {WAIT_BOUND_S} s")
                time.sleep(poll_s)
        steps["wait"] = (time.perf_counter_ns() - t0) / 1e6
    finally:
        if pidfd >= 0:
            os.close(pidfd)

    rc, steps["delete"], _ = invoke(rt, ["delete", cid])
    check(rt, "delete", rc)
    rt.live.discard(cid)
    reap_children()
    steps["total"] = steps["create"] + steps["start"] + steps["wait"] + steps["delete"]
    steps["polls"] = polls
    return steps


# ------------------------------------------------------------- statistics ---

# ----------------------------------------------------------------- setup ----

def find_runtimes(args) -> tuple[list[Runtime], list[str]]:
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = [r for r in wanted if r not in ALL_RUNTIMES]
    if unknown:
        raise SystemExit(f"unknown runtime(s): {', '.join(unknown)} (known: {', '.join(ALL_RUNTIMES)})")
    found, skipped = [], []
    for name in wanted:
        if name == "berth":
            if args.berth:
                path = os.path.abspath(args.berth)
                if not os.access(path, os.X_OK):
                    skipped.append(f"berth: {path} is not executable")
                    continue
                prefix = [path] if os.path.basename(path) == "berth-runtime" else [path, "runtime"]
            else:
                rel = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release")
                link, binary = os.path.join(rel, "berth-runtime"), os.path.join(rel, "berth")
                if os.access(link, os.X_OK):
                    prefix = [link]
                elif os.access(binary, os.X_OK):
                    prefix = [binary, "runtime"]
                else:
                    skipped.append(f"berth: not built ({binary} missing; cargo build --release -p berth)")
                    continue
            found.append(Runtime("berth", prefix))
        else:
            path = shutil.which(name)
            if not path:
                skipped.append(f"{name}: not installed")
                continue
            found.append(Runtime(name, [path]))
    return found, skipped


def version_of(rt: Runtime) -> str:
    for flag in ("--version", "version"):
        try:
            p = subprocess.run([*rt.prefix, flag], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.decode(errors="replace").strip().splitlines()[0]
    return "unknown"


def make_bundle(spec_rt: Runtime, bundle: str) -> None:
    cmd = ["bash", os.path.join(SCRIPTS, "make-bundle.sh"),
           "--runtime-cmd", " ".join(spec_rt.prefix), bundle, "true"]
    p = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    if p.returncode != 0:
        raise BenchError(f"make-bundle.sh for {spec_rt.name} failed: "
                         f"{p.stderr.decode(errors='replace').strip()[-600:]}")


# ------------------------------------------------------------------ main ----

def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="create+start+wait+delete of a busybox `true` container: "
                    "berth vs crun vs runc, medians and ratios.")
    ap.add_argument("--runs", type=int, default=50, help="measured iterations (default 50)")
    ap.add_argument("--warmup", type=int, default=5, help="discarded warm-up iterations (default 5)")
    ap.add_argument("--runtimes", default=",".join(ALL_RUNTIMES),
                    help="comma-separated subset of berth,crun,runc (default: all)")
    ap.add_argument("--berth", metavar="PATH",
                    help="berth binary (default: target/release/berth-runtime, else target/release/berth runtime)")
    ap.add_argument("--baseline", default="crun", help="runtime the ratios are relative to (default crun)")
    ap.add_argument("--poll-ms", type=float, default=1.0,
                    help="interval between `state` polls while waiting in (b) (default 1 ms)")
    ap.add_argument("--wait", choices=("state", "pidfd"), default="state",
                    help="how (b) waits for exit: poll `state` (default) or a pidfd")
    ap.add_argument("--spec-from", metavar="RUNTIME",
                    help="generate every bundle's config.json with this runtime's `spec` "
                         "(default: each runtime its own)")
    ap.add_argument("--max-seconds", type=float, default=900.0,
                    help="stop measuring after this long, reporting what was measured (default 900)")
    ap.add_argument("--max-failures", type=int, default=5,
                    help="drop a runtime after this many failed iterations (default 5)")
    ap.add_argument("--json", metavar="OUT", help="also write all numbers to OUT as JSON")
    ap.add_argument("--no-install", action="store_true",
                    help="do not run scripts/install-deps.sh --for-crun first")
    a = ap.parse_args(argv)
    if a.runs < 1 or a.runs > 100_000 or a.warmup < 0 or a.warmup > 1000:
        ap.error("--runs must be 1..100000 and --warmup 0..1000")
    if not 0 <= a.poll_ms <= 1000:
        ap.error("--poll-ms must be within 0..1000")
    return a


def one_iteration(rts: list[Runtime], it: int, counter: list[int], args, record: bool) -> None:
    k = len(rts)
    order = [rts[(it + j) % k] for j in range(k)]  # rotate start every iteration
    for mode in ("run", "lifecycle"):
        for rt in order:
            if rt.disabled or STOP["signal"]:
                continue
            counter[0] += 1
            cid = f"bench-{os.getpid()}-{counter[0]}"
            try:
                if mode == "run":
                    ms = measure_run(rt, cid)
                    if record:
                        rt.run_ms.append(ms)
                else:
                    steps = measure_lifecycle(rt, cid, args.wait, args.poll_ms / 1000)
                    if record:
                        rt.life_ms.append(steps["total"])
                        for s in ("create", "start", "wait", "delete"):
                            rt.steps_ms[s].append(steps[s])
                        if args.wait == "state":
                            rt.polls.append(int(steps["polls"]))
            except (BenchError, OSError) as e:
                force_delete(rt, cid)
                count_failure(rt, mode, e, not record, args.max_failures)


def report(rts: list[Runtime], skipped: list[str], args, meta: dict) -> dict:
    results: dict = {"meta": meta, "skipped": skipped, "runtimes": {}}
    for rt in rts:
        results["runtimes"][rt.name] = {
            "command": rt.prefix,
            "version": rt.version,
            "spec_from": rt.spec_source or None,
            "disabled": rt.disabled or None,
            "failures": rt.failures,
            "run": summarize(rt.run_ms),
            "lifecycle": summarize(rt.life_ms),
            "steps": {s: summarize(v) for s, v in rt.steps_ms.items()},
            "polls_per_lifecycle": statistics.fmean(rt.polls) if rt.polls else None,
            "samples_ms": {"run": rt.run_ms, "lifecycle": rt.life_ms, **rt.steps_ms},
        }
    base = results["runtimes"].get(args.baseline, {})
    base_run = base.get("run", {}).get("median")
    base_life = base.get("lifecycle", {}).get("median")
    for r in results["runtimes"].values():
        rm, lm = r["run"].get("median"), r["lifecycle"].get("median")
        r["ratio_to_" + args.baseline] = {
            "run": rm / base_run if rm and base_run else None,
            "lifecycle": lm / base_life if lm and base_life else None,
        }

    print()
    print(f"container lifecycle, busybox `true`: {meta['runs_measured']} iterations "
          f"(+{args.warmup} warm-up), runtimes interleaved round-robin")
    print(f"(a) run = `RT run --bundle B ID`;  (b) lifecycle = create + start + wait + delete, "
          f"wait = {'poll `state` every %g ms' % args.poll_ms if args.wait == 'state' else 'pidfd'}")
    print(f"times in ms; ratio = median / {args.baseline}'s median")
    print()
    hdr = (f"{'runtime':<8} {'n':>4} | {'(a) med':>8} {'(a) p90':>8} {'ratio':>6} | "
           f"{'(b) med':>8} {'(b) p90':>8} {'ratio':>6} | "
           f"{'create':>7} {'start':>7} {'wait':>7} {'delete':>7} {'polls':>5}")
    print(hdr)
    print("-" * len(hdr))
    for name, r in results["runtimes"].items():
        ra, rb = r["run"], r["lifecycle"]
        ratio = r["ratio_to_" + args.baseline]
        st = r["steps"]
        print(f"{name:<8} {ra.get('n', 0):>4} | {fmt(ra.get('median'))} {fmt(ra.get('p90'))} "
              f"{fmt(ratio['run'], '6.2f')} | {fmt(rb.get('median'))} {fmt(rb.get('p90'))} "
              f"{fmt(ratio['lifecycle'], '6.2f')} | "
              f"{fmt(st['create'].get('median'), '7.2f')} {fmt(st['start'].get('median'), '7.2f')} "
              f"{fmt(st['wait'].get('median'), '7.2f')} {fmt(st['delete'].get('median'), '7.2f')} "
              f"{fmt(r['polls_per_lifecycle'], '5.2f')}")
    for rt in rts:
        if rt.spec_source and rt.spec_source != rt.name:
            print(f"note: {rt.name}'s config.json came from `{rt.spec_source} spec`")
        if rt.disabled:
            print(f"note: {rt.name} dropped: {rt.disabled}")
    for s in skipped:
        print(f"note: skipped {s}")
    print("(step columns are medians of each step of (b); polls = mean `state` calls per wait)")
    la = meta["loadavg_1m_before_after"]
    print(f"{meta['cpus']} CPUs, kernel {meta['kernel']}, cgroups {meta['cgroups']}, "
          f"load average {la[0]} -> {la[1]}")
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        log("runtime_lifecycle: must run as root")
        return 1

    if not args.no_install and not install_deps("runtime_lifecycle", "--for-crun"):
        return 1

    rts, skipped = find_runtimes(args)
    for s in skipped:
        log(f"skipping {s}")
    if not rts:
        log("runtime_lifecycle: no runtime to measure")
        return 1

    if not become_subreaper():
        log("warning: could not become a child subreaper; exited containers may linger as zombies")

    tmp = tempfile.mkdtemp(prefix="berth-bench-")
    catch_signals()

    counter = [0]
    load_before = os.getloadavg()
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        log(f"warning: load average {load_before[0]:.2f} on {os.cpu_count()} CPUs: "
            "other work will add noise to the figures")
    t_start = time.monotonic()
    measured = 0
    try:
        spec_rt = None
        if args.spec_from:
            spec_rt = next((r for r in rts if r.name == args.spec_from), None)
            if spec_rt is None:
                path = shutil.which(args.spec_from)
                if not path:
                    log(f"runtime_lifecycle: --spec-from {args.spec_from}: not available")
                    return 1
                spec_rt = Runtime(args.spec_from, [path])
        for rt in rts:
            base = os.path.join(tmp, rt.name)
            os.makedirs(base)
            rt.root = os.path.join(base, "state")
            rt.bundle = os.path.join(base, "bundle")
            rt.errlog = os.path.join(base, "stderr.log")
            rt.version = version_of(rt)
            # Own `spec` (or --spec-from's); if that fails (say berth has no
            # `spec` yet), fall back to another runtime's and say so.
            candidates = [spec_rt] if spec_rt else [rt] + [r for r in rts if r is not rt]
            errors = []
            for cand in candidates:
                try:
                    make_bundle(cand, rt.bundle)
                except (BenchError, subprocess.TimeoutExpired) as e:
                    errors.append(str(e))
                    continue
                rt.spec_source = cand.name
                break
            if not rt.spec_source:
                rt.disabled = "bundle: " + " / ".join(errors)
                log(f"{rt.name}: {rt.disabled}")
                continue
            if errors:
                log(f"{rt.name}: own `spec` failed ({errors[0]}); using {rt.spec_source}'s config.json")
            log(f"{rt.name}: {' '.join(rt.prefix)} ({rt.version}); config.json from `{rt.spec_source} spec`")

        log(f"warm-up: {args.warmup} iteration(s)")
        for it in range(args.warmup):
            if STOP["signal"]:
                return 128 + STOP["signal"]
            one_iteration(rts, it, counter, args, record=False)
        if all(rt.disabled for rt in rts):
            log("runtime_lifecycle: every runtime failed")
            return 1

        log(f"measuring: {args.runs} iteration(s), max {args.max_seconds:.0f} s")
        for it in range(args.runs):
            if time.monotonic() - t_start > args.max_seconds:
                log(f"time bound reached after {measured} iteration(s)")
                break
            if STOP["signal"]:
                break
            one_iteration(rts, it, counter, args, record=True)
            if STOP["signal"]:  # partial iteration: leave it out
                for rt in rts:
                    n = min(len(rt.run_ms), measured)
                    del rt.run_ms[n:]
                    n = min(len(rt.life_ms), measured)
                    del rt.life_ms[n:]
                    for v in rt.steps_ms.values():
                        del v[n:]
                    del rt.polls[n:]
                break
            measured += 1
            if (it + 1) % 10 == 0:
                log(f"  {it + 1}/{args.runs}")
            if all(rt.disabled for rt in rts):
                break

        meta = run_meta(t_start, load_before, runs_requested=args.runs, runs_measured=measured,
                        warmup=args.warmup, wait=args.wait,
                        poll_ms=args.poll_ms if args.wait == "state" else None,
                        spec_from=args.spec_from or "own", baseline=args.baseline)
        results = report(rts, skipped, args, meta)
        if args.json:
            write_json(args.json, results)
        if STOP["signal"]:
            return 128 + STOP["signal"]
        ok = any(rt.run_ms or rt.life_ms for rt in rts)
        return 0 if ok else 1
    finally:
        for rt in rts:
            if rt.root:
                for cid in sorted(rt.live):
                    force_delete(rt, cid)
        reap_children()
        remove_cgroups(f"bench-{os.getpid()}-")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
