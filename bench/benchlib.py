"""What every bench in bench/ shares: paths, errors, the stop-on-signal flag, logging,
installing the peers, becoming a child subreaper, summary statistics, the host's cgroup layout,
cgroup cleanup, the run's metadata and number formatting. Python 3.11 standard library only."""

from __future__ import annotations

import ctypes
import glob
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
PR_SET_CHILD_SUBREAPER = 36
MNT_DETACH = 2
LIBC = ctypes.CDLL(None, use_errno=True)


class BenchError(Exception):
    pass


# Set by SIGINT/SIGTERM/SIGHUP: finish the command in flight (killing a runtime or an engine
# half-way can leave a container or cgroups behind), then report what was measured and clean
# up. A second signal aborts at once (cleanup still runs, from the callers' `finally`).
STOP = {"signal": 0}


def on_signal(signum, _frame):
    if STOP["signal"]:
        raise KeyboardInterrupt
    STOP["signal"] = signum
    log(f"got signal {signum}: stopping after the current step (again to abort now)")


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def catch_signals() -> None:
    """From here on a signal stops the bench after the step in flight (`on_signal`)."""
    for sig in SIGNALS:
        signal.signal(sig, on_signal)


def ignore_signals() -> None:
    """For the cleanup at the end: it is bounded, and must finish."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def install_deps(bench: str, *flags: str) -> bool:
    """Runs scripts/install-deps.sh with `flags` (what the bench's peers need); says so and
    returns False when it failed."""
    p = subprocess.run(["bash", os.path.join(SCRIPTS, "install-deps.sh"), *flags],
                       timeout=1800, check=False)
    if p.returncode != 0:
        log(f"{bench}: scripts/install-deps.sh {' '.join(flags)} failed "
            "(use --no-install to skip)")
        return False
    return True


def become_subreaper() -> bool:
    """Orphans of what the bench starts (monitors, conmon, shims) come back to us to reap."""
    try:
        return LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def count_failure(x, what: str, ex: Exception, warm_up: bool, max_failures: int) -> None:
    """A failed measurement of `x` (an engine or runtime: name, failures, disabled): said, and
    counted; it drops `x` from the run when it came in the warm-up or was one too many."""
    x.failures += 1
    log(f"  {x.name}: {what} failed: {ex}")
    if warm_up:
        x.disabled = f"failed during warm-up: {ex}"
    elif x.failures >= max_failures:
        x.disabled = f"{x.failures} failures"
    if x.disabled:
        log(f"  {x.name}: dropped ({x.disabled})")


def percentile(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile, q in 0..1."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))
    return s[k]


def summarize(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "median": statistics.median(xs), "p90": percentile(xs, 0.9),
            "mean": statistics.fmean(xs), "min": min(xs), "max": max(xs),
            "stdev": statistics.stdev(xs) if len(xs) > 1 else 0.0}


def cgroup_layout() -> str:
    try:
        with open("/proc/self/mounts") as f:
            fstypes = {line.split()[2] for line in f if "cgroup" in line.split()[2]}
    except OSError:
        return "unknown"
    if fstypes == {"cgroup2"}:
        return "v2"
    if fstypes == {"cgroup"}:
        return "v1"
    return "hybrid" if fstypes else "none"


def remove_cgroups(prefix: str) -> None:
    """rmdir the (empty) cgroups named after the bench's own tag, deepest first, in every
    hierarchy; names carry the bench's pid, so they are its own."""
    for top in glob.glob("/sys/fs/cgroup/*/") + ["/sys/fs/cgroup/"]:
        for d in glob.glob(os.path.join(top, prefix + "*")):
            for sub, _dirs, _files in sorted(os.walk(d), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


def run_meta(t_start: float, load_before: tuple[float, float, float], **fields) -> dict:
    """What a bench's JSON says of its run: when, the machine, `fields` (the bench's own
    settings), how long it took (from `t_start`, a time.monotonic()) and the load around it."""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "cgroups": cgroup_layout(),
        **fields,
        "elapsed_s": round(time.monotonic() - t_start, 1),
        "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }


def print_notes(engines, skipped: list[str], meta: dict) -> None:
    """The end of a report: what was dropped or skipped, and the machine and its load."""
    for e in engines:
        if e.disabled:
            print(f"note: {e.name} dropped: {e.disabled}")
    for s in skipped:
        print(f"note: skipped {s}")
    la = meta["loadavg_1m_before_after"]
    print(f"{meta['cpus']} CPUs, kernel {meta['kernel']}, cgroups {meta['cgroups']}, "
          f"load average {la[0]} -> {la[1]}, {meta['date']}")


def write_json(path: str, data) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    log(f"wrote {path}")


def fmt(x, spec: str = "8.2f") -> str:
    return format(x, spec) if x is not None else format("-", ">" + spec.split(".")[0])


def timed_run(label: str, argv: list[str], errlog: str, timeout: float, capture: bool = False,
              env: dict[str, str] | None = None) -> tuple[int, float, str]:
    """Runs one command of the thing measured (`label` names it in errors, e.g. "crun run"):
    (returncode, elapsed ms, stdout). stderr goes
    to `errlog` (a detached container may inherit and hold a pipe); its own process group, so
    that a terminal's ^C reaches only the bench, which then stops cleanly."""
    with open(errlog, "wb") as err:
        t0 = time.perf_counter_ns()
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                               stderr=err, env=env, timeout=timeout,
                               process_group=0, check=False)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{label}: timed out after {timeout:.0f} s")
        except OSError as ex:
            raise BenchError(f"{label}: cannot execute: {ex}")
        t1 = time.perf_counter_ns()
    out = p.stdout.decode(errors="replace") if capture and p.stdout is not None else ""
    return p.returncode, (t1 - t0) / 1e6, out


def file_tail(path: str, n: int = 600) -> str:
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace").strip()
    except OSError:
        return ""


def check_rc(name: str, what: str, rc: int, errlog: str) -> None:
    if rc != 0:
        tail = file_tail(errlog)
        raise BenchError(f"{name} {what}: exit status {rc}" + (f": {tail}" if tail else ""))
