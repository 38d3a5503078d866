#!/usr/bin/env python3
"""Registry benchmark: pull and push of a multi-layer image through a local registry, berth vs
skopeo vs podman vs docker, side by side in one run; and berth's peak memory while pulling a
small and the large image (it must not grow with the image).

Everything is private to this run and offline:
  * two registries (Debian's docker-registry) on 127.0.0.1 with storage in a temp dir: the
    source, holding the images, and a sink for pushes, emptied before every push;
  * the images are made here as OCI layouts (random and compressible data in N gzip layers,
    about --size-mb unpacked; a small one of --small-mb) and copied to the source with skopeo;
  * berth: target/release/berth daemon on a private socket/root (engine_run.py's set-up);
    podman: private --root/--runroot; docker: Debian's dockerd 20.10 on a private socket and
    data root (scripts/install-deps.sh --for-engine-bench), skipped when not installed;
  * pull: `berth pull`, `podman pull`, `docker pull` (each unpacks into its store) and
    `skopeo copy docker://… oci:DIR` (verifies and stores, no unpacking): the reference;
  * push: of the pulled image to the sink: `berth push`, `podman push`, `docker push`,
    `skopeo copy oci:DIR docker://…`.
Every tool starts from nothing for each measured run (image removed, or a fresh dir);
tools take turns round-robin. berth's peak memory is the VmHWM of a fresh daemon that
pulled one image (the small one, then the large one).

At exit (also on failure or a signal) it removes the images, stops the registries and
daemons it started (by pid), ends what its daemons left (processes naming its temp dir),
unmounts what is under the temp dir, removes berth's bridge and nft table and deletes the temp
dir. Python 3.11 standard library only; root.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import hashlib
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine_run as er  # noqa: E402  (shared daemon set-up and cleanup)

REPO = er.REPO
TOOLS = ("berth", "skopeo", "podman", "docker")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, ctx: er.Ctx, name: str):
        self.ctx, self.name = ctx, name
        self.dir = os.path.join(ctx.tmp, name)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = None
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "config.yml"), "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/storage\n"
                    f"  delete:\n    enabled: true\nhttp:\n  addr: {self.host}\n")

    def start(self) -> None:
        self.proc = er.start_daemon(self.ctx, f"registry {self.name}", [
            "docker-registry", "serve", os.path.join(self.dir, "config.yml")],
            os.path.join(self.dir, "log"))

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False
        if not er.wait_until(up, 20):
            raise er.BenchError(f"registry {self.name} did not come up: "
                                f"{er.file_tail(os.path.join(self.dir, 'log'))}")

    def wipe(self) -> None:
        """Stop, forget every blob, start again (a push then uploads everything)."""
        if self.proc:
            er.stop_daemon(self.ctx, f"registry {self.name}", self.proc)
        shutil.rmtree(os.path.join(self.dir, "storage"), ignore_errors=True)
        self.start()


# ------------------------------------------------------------- the image ----
def make_oci(path: str, size_mb: int, layers: int, seed: int) -> int:
    """An OCI layout with `layers` gzip layers of about size_mb in all; returns the bytes of
    the compressed layers. Each file is half random, half text: it compresses like real
    software (about 2:1)."""
    rnd = random.Random(seed)
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data: bytes) -> tuple[str, int]:
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, h), "wb") as f:
            f.write(data)
        return "sha256:" + h, len(data)

    per_layer = size_mb * 1_000_000 // layers
    files = max(1, per_layer // 2_000_000)
    descs, diff_ids, packed = [], [], 0
    words = [rnd.randbytes(8).hex() for _ in range(4096)]
    for i in range(layers):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
            for j in range(files):
                n = per_layer // files
                text = " ".join(rnd.choice(words) for _ in range(n // 34)).encode()
                body = rnd.randbytes(n // 2) + text[: n - n // 2]
                ti = tarfile.TarInfo(f"layer{i}/file{j}.bin")
                ti.size, ti.mode, ti.mtime = len(body), 0o644, 0
                t.addfile(ti, io.BytesIO(body))
        tar = raw.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        gz = gzip.compress(tar, compresslevel=6, mtime=0)
        d, n = put(gz)
        packed += n
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": d, "size": n})
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    config = json.dumps({"architecture": arch,
                         "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cd, cn = put(config)
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": cd, "size": cn},
                           "layers": descs}).encode()
    md, mn = put(manifest)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
             "size": mn, "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)
    return packed


def run(argv: list[str], env: dict | None = None, timeout: float = 600) -> float:
    """Runs a command; returns seconds; raises on failure."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
                       timeout=timeout, check=False)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise er.BenchError(f"{' '.join(argv[:3])}…: exit {p.returncode}: "
                            f"{p.stderr.decode(errors='replace')[-500:]}")
    return dt


def peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.2f} s" if xs else "      -"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=500, help="unpacked size of the large image")
    ap.add_argument("--small-mb", type=int, default=100, help="the small image (memory check)")
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3, help="measured runs per tool (1..10)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--berth", help="berth binary (default target/release/berth)")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args(argv)
    args.runs = max(1, min(args.runs, 10))
    tools = [t for t in args.tools.split(",") if t]
    if os.geteuid() != 0:
        er.log("registry_pull: must run as root")
        return 1
    if not args.no_install:
        flags = ["--for-engine-bench"] if "docker" in tools else []
        if subprocess.run(["bash", os.path.join(REPO, "scripts", "install-deps.sh"), *flags],
                          timeout=1800, check=False).returncode != 0:
            er.log("registry_pull: install-deps.sh failed")
            return 1
    er.become_subreaper()
    ctx = er.Ctx(tmp=tempfile.mkdtemp(prefix=f"rb-{os.getpid()}-", dir="/tmp"),
                 tag=f"rb-{os.getpid()}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, er.on_signal)
    engines: dict[str, er.Engine] = {}
    results: dict = {"pull": {}, "push": {}, "berth_peak_kb": {}}
    src = sink = None
    try:
        src, sink = Registry(ctx, "src"), Registry(ctx, "sink")
        src.start()
        sink.start()
        sizes = {}
        for name, mb, seed in (("big", args.size_mb, 1), ("small", args.small_mb, 2)):
            oci = os.path.join(ctx.tmp, f"oci-{name}")
            er.log(f"making the {name} image ({mb} MB, {args.layers} layers)…")
            sizes[name] = make_oci(oci, mb, args.layers, seed)
            run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                 f"oci:{oci}:1", f"docker://{src.host}/bench/{name}:1"])
        er.log(f"compressed: big {sizes['big'] / 1e6:.0f} MB, small {sizes['small'] / 1e6:.0f} MB")
        for t in tools:
            if t == "skopeo":
                continue
            e = er.Engine(name=t, kind=t, base=os.path.join(ctx.tmp, t))
            os.makedirs(e.base)
            e.errlog = os.path.join(e.base, "err.log")
            try:
                {"berth": er.setup_berth, "podman": er.setup_podman,
                 "docker": er.setup_docker}[t](ctx, e, args)
                engines[t] = e
            except er.BenchError as ex:
                er.log(f"skipping {t}: {ex}")
        tools = [t for t in tools if t == "skopeo" or t in engines]
        big = f"{src.host}/bench/big:1"

        pushed = f"{sink.host}/bench/pushed:1"

        def remove(t: str, image: str) -> None:
            """Removes the image under every name a run gave it: the next pull starts
            from nothing."""
            if t == "skopeo":
                shutil.rmtree(os.path.join(ctx.tmp, "skopeo-out"), ignore_errors=True)
                return
            e = engines[t]
            for name in (image, pushed):
                subprocess.run(e.argv("rmi", "-f", name), env={**os.environ, **e.env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=120, check=False)

        def pull(t: str, image: str) -> float:
            if t == "skopeo":
                return run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                            f"docker://{image}", f"oci:{ctx.tmp}/skopeo-out:1"])
            e = engines[t]
            extra = ["--tls-verify=false"] if t == "podman" else []
            return run(e.argv("pull", "-q", *extra, image), e.env)

        def push(t: str) -> float:
            dst = pushed
            if t == "skopeo":
                return run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                            f"oci:{ctx.tmp}/skopeo-out:1", f"docker://{dst}"])
            e = engines[t]
            if t == "podman":
                return run(e.argv("push", "-q", "--tls-verify=false", big, f"docker://{dst}"), e.env)
            run(e.argv("tag", big, dst), e.env)
            return run(e.argv("push", "-q", dst), e.env) if t != "docker" else \
                run(e.argv("push", dst), e.env)

        pulls: dict[str, list[float]] = {t: [] for t in tools}
        pushes: dict[str, list[float]] = {t: [] for t in tools}
        for i in range(args.runs):
            order = tools[i % len(tools):] + tools[:i % len(tools)]
            for t in order:
                if er.STOP["signal"]:
                    raise er.BenchError("stopped by a signal")
                remove(t, big)
                pulls[t].append(pull(t, big))
                er.log(f"run {i + 1}: {t} pull {pulls[t][-1]:.2f} s")
            for t in order:
                sink.wipe()
                pushes[t].append(push(t))
                er.log(f"run {i + 1}: {t} push {pushes[t][-1]:.2f} s")
        if "berth" in engines:
            # Peak memory: a fresh daemon per pull, VmHWM over its whole life.
            e = engines["berth"]
            for size in ("small", "big"):
                for _ in range(args.runs):
                    for n, p in list(ctx.daemons):
                        if n == "berth daemon":
                            er.stop_daemon(ctx, n, p)
                    shutil.rmtree(os.path.join(e.base, "root"), ignore_errors=True)
                    er.setup_berth(ctx, e, args)
                    pid = next(p.pid for n, p in ctx.daemons if n == "berth daemon")
                    pull("berth", f"{src.host}/bench/{size}:1")
                    results["berth_peak_kb"].setdefault(size, []).append(peak_kb(pid))
        results["pull"] = pulls
        results["push"] = pushes
        results["sizes"] = {"big_mb_unpacked": args.size_mb, "small_mb_unpacked": args.small_mb,
                            "big_compressed": sizes["big"], "small_compressed": sizes["small"],
                            "layers": args.layers}
        versions = {t: engines[t].version for t in engines}
        print(f"\nregistry bench: {args.size_mb} MB image in {args.layers} layers "
              f"({sizes['big'] / 1e6:.0f} MB compressed), {args.runs} runs, "
              f"{os.cpu_count()} CPUs; versions {versions}")
        ref_pull = statistics.median(pulls["skopeo"]) if pulls.get("skopeo") else None
        ref_push = statistics.median(pushes["podman"]) if pushes.get("podman") else None
        print(f"{'tool':8} {'pull':>9} {'÷ skopeo':>9} {'push':>9} {'÷ podman':>9}")
        for t in tools:
            pm, sm = pulls[t], pushes[t]
            r1 = f"{statistics.median(pm) / ref_pull:9.2f}" if ref_pull and pm else "        -"
            r2 = f"{statistics.median(sm) / ref_push:9.2f}" if ref_push and sm else "        -"
            print(f"{t:8} {fmt(pm):>9} {r1} {fmt(sm):>9} {r2}")
        for k, v in results["berth_peak_kb"].items():
            print(f"berth daemon peak RSS (fresh daemon, one pull of the {k} image): "
                  f"{statistics.median(v) / 1024:.1f} MiB (median of {len(v)})")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"results": results, "versions": versions}, f, indent=1)
        return 0
    except er.BenchError as ex:
        er.log(f"registry_pull: {ex}")
        return 1
    finally:
        names = [f"{r.host}/bench/{n}:1" for r in (src, sink) if r
                 for n in ("big", "small", "pushed")]
        for t, e in engines.items():
            for image in names:
                subprocess.run(e.argv("rmi", "-f", image), env={**os.environ, **e.env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=120, check=False)
        for name, p in list(ctx.daemons):
            er.stop_daemon(ctx, name, p)
        er.kill_pids(er.pids_naming(ctx.tmp), f"processes under {ctx.tmp}")
        er.reap_orphans(ctx)
        er.unmount_under(ctx.tmp)
        er.remove_engine_networks(engines.values())
        for p in ctx.host_paths:
            try:
                if os.path.isdir(p) and not os.path.islink(p):
                    os.rmdir(p)
                elif os.path.lexists(p):
                    os.unlink(p)
            except OSError:
                pass
        shutil.rmtree(ctx.tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
