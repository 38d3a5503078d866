#!/usr/bin/env python3
"""Network benchmark: TCP throughput and connection rate through a published port and between
two containers on one bridge, berth vs podman vs docker, side by side in one run.

Per engine, on a bridge network of its own (a private subnet and bridge name, so nothing is
shared with another engine or another daemon on this machine):
  * `srv`: iperf3 -s (published on 127.0.0.1:P1) and `web`: busybox httpd (published on
    127.0.0.1:P2);
  * throughput (iperf3 -c, --seconds each, one stream, received bits/s):
      pub-lo   the host's 127.0.0.1:P1 -> the container (the published port from the host)
      pub-gw   a client container -> gateway:P1 (the published port from another container,
               through the host's DNAT)
      c2c      a client container -> srv's address on the bridge
  * connection rate (sequential connect, HTTP/1.0 GET, close; --seconds each):
      conn-lo  the host -> 127.0.0.1:P2
      conn-c2c a client container -> web's address on the bridge

iperf3 (Debian's, dynamically linked) and python3 run inside the busybox containers from the
host's /usr, bind-mounted read-only (with /usr/lib64 as /lib64 for the loader). A "client
container" is a new `run --rm` container per measurement by default; with --client netns it is
the host's iperf3/python3 run by nsenter in the network namespace of one long-lived client
container per engine, so that the figure is the kernel's data path alone (no engine's start-up
work competes for the CPUs meanwhile). --show-path prints what shapes each engine's data path
(links, offloads, bridge and port settings, sysctls, the server's seccomp and cgroup, and the
filter chains of every table, which every forwarded packet passes).

Engines: berth (target/release/berth daemon, private root, its own --bridge/--bip/--nft-table);
podman (private root, --network-config-dir in the temp dir, netavark); docker (Debian's dockerd
20.10 started here with its iptables rules and default userland proxy, a private root and a
network with its own bridge name). Rounds rotate the engines; medians over rounds; ratios are
berth's figure over each peer's. Every run is bounded (--seconds per measurement, --runs
rounds, --max-seconds overall). All traffic stays on this machine: the loopback and the
containers' bridges. At exit (also on failure or a signal) it removes what it made: containers,
networks, daemons (by pid), mounts, cgroups, berth's bridge and nft table, dockerd's iptables
chains that did not exist before, the temp dir.

Python 3.11 standard library only. Must run as root. Reuses bench/engine_run.py's helpers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine_run as er  # noqa: E402

IMAGE = er.IMAGE
HOST_MOUNTS = ["-v", "/usr:/usr:ro", "-v", "/usr/lib64:/lib64:ro",
               "-v", "/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro"]
TESTS = ("pub-lo", "pub-gw", "c2c", "conn-lo", "conn-c2c")
UNITS = {"pub-lo": "Gbit/s", "pub-gw": "Gbit/s", "c2c": "Gbit/s",
         "conn-lo": "conn/s", "conn-c2c": "conn/s"}

CONN_LOOP = r"""
import socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n, fail, end = 0, 0, time.monotonic() + secs
while time.monotonic() < end:
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        while s.recv(4096):
            pass
        s.close()
        n += 1
    except OSError:
        fail += 1
        if fail > 1000:
            break
print(n / secs, fail)
"""


def log(msg: str) -> None:
    er.log(msg)


def subnet_for(i: int) -> tuple[str, str]:
    """A /24 per engine, unlikely to be anyone else's: 10.199.<pid-derived>.0/24."""
    third = (os.getpid() * 7 + i * 61) % 250 + 2
    return f"10.199.{third}.0/24", f"10.199.{third}.1"


def free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def setup_berth(ctx: er.Ctx, e: er.Engine, args, i: int) -> None:
    exe = args.berth or os.path.join(er.REPO, "target", "release", "berth")
    if not os.access(exe, os.X_OK):
        raise er.BenchError(f"{exe} not built (cargo build --release -p berth)")
    sock = os.path.join(e.base, "d.sock")
    subnet, gw = subnet_for(i)
    e.gw = gw
    e.bridge = f"bnb{os.getpid() % 100000}"  # berth's default bridge, this run's own
    e.nft_table = f"berth_nb{os.getpid()}"
    e.cli = [exe]
    e.env = {"BERTH_HOST": "unix://" + sock}
    e.run_flags = ["--cgroup-parent", f"/{ctx.tag}-berth"]
    logf = os.path.join(e.base, "daemon.log")
    d = er.start_daemon(ctx, "berth daemon", [
        exe, "daemon", "-H", "unix://" + sock, "--root", os.path.join(e.base, "root"),
        "--exec-root", os.path.join(e.base, "exec"), "--bridge", e.bridge,
        "--bip", f"{gw}/24", "--nft-table", e.nft_table, "--dns", "127.0.0.1",
        "--default-address-pool", f"base={subnet},size=24"], logf)
    if not er.wait_until(lambda: os.path.exists(sock) or d.poll() is not None, 30):
        raise er.BenchError("berth daemon: no socket after 30 s")
    if d.poll() is not None:
        raise er.BenchError(f"berth daemon exited ({d.returncode}): {er.file_tail(logf)}")
    e.version = er.client_version(e, ["version", "--format", "{{.Server.Version}}"], "berth")
    e.network = "bridge"


def setup_podman(ctx: er.Ctx, e: er.Engine, args, i: int) -> None:
    e.name = "podman-net"  # engine_run: no `--network none`, and note netavark's chains
    er.setup_podman(ctx, e, args)
    e.name = "podman"
    # runc, not crun: crun refuses this machine's hybrid cgroup layout, and the runtime plays
    # no part in the data path measured here.
    i_rt = e.cli.index("--runtime")
    e.cli[i_rt + 1] = "runc"
    netdir = os.path.join(e.base, "networks")
    os.makedirs(netdir, exist_ok=True)
    e.cli += ["--network-config-dir", netdir]
    subnet, gw = subnet_for(i)
    e.gw = gw
    rc, _ms, _o = er.invoke(e, ["network", "create", "--subnet", subnet, "--gateway", gw,
                                "nbench"], timeout=60)
    er.check(e, "network create", rc)
    rc, _ms, out = er.invoke(e, ["network", "inspect", "-f", "{{.NetworkInterface}}",
                                 "nbench"], capture=True)
    e.podman_bridge = out.strip()  # netavark deletes it with the last container
    e.network = "nbench"


def setup_docker(ctx: er.Ctx, e: er.Engine, args, i: int) -> None:
    ctx.docker_chains = er.iptables_chains("DOCKER")
    # Docker's defaults for the data path: iptables DNAT, the userland proxy for loopback.
    er.start_dockerd(ctx, e, ["--ip6tables=false"], "scripts/install-deps.sh --for-network-bench")
    e.run_flags = []
    e.version = er.client_version(e, ["version", "--format", "{{.Server.Version}}"], "docker")
    subnet, gw = subnet_for(i)
    e.gw = gw
    e.bridge = f"dnb{os.getpid() % 100000}"
    rc, _ms, _o = er.invoke(e, ["network", "create", "--subnet", subnet, "--gateway", gw, "-o",
                                f"com.docker.network.bridge.name={e.bridge}", "nbench"],
                            timeout=60)
    er.check(e, "network create", rc)
    e.network = "nbench"


SETUP = {"berth": setup_berth, "podman": setup_podman, "docker": setup_docker}


def start_servers(e: er.Engine, client: str) -> None:
    e.p_iperf, e.p_http, e.p_gw = free_port(), free_port(), free_port()
    net = ["--network", e.network]
    # Published twice: on the host's loopback, and on the network's gateway address (what a
    # container reaches through the host; not the host's outside addresses).
    rc, _ms, _o = er.invoke(e, ["run", "-d", "--name", "nb-srv", *net, *e.run_flags,
                                *HOST_MOUNTS, "-p", f"127.0.0.1:{e.p_iperf}:5201",
                                "-p", f"{e.gw}:{e.p_gw}:5201", IMAGE,
                                "iperf3", "-s", "-p", "5201"], timeout=60)
    er.check(e, "run iperf3 server", rc)
    e.live.add("nb-srv")
    rc, _ms, _o = er.invoke(e, ["run", "-d", "--name", "nb-web", *net, *e.run_flags,
                                "-p", f"127.0.0.1:{e.p_http}:8080", IMAGE, "sh", "-c",
                                "mkdir -p /www && echo hello > /www/index.html && "
                                "exec httpd -f -p 8080 -h /www"], timeout=60)
    er.check(e, "run httpd", rc)
    e.live.add("nb-web")
    e.srv_ip, e.gateway = address(e, "nb-srv")
    e.web_ip, _gw = address(e, "nb-web")
    if client == "netns":
        rc, _ms, _o = er.invoke(e, ["run", "-d", "--name", "nb-cli", *net, *e.run_flags,
                                    IMAGE, "sleep", "3600"], timeout=60)
        er.check(e, "run client container", rc)
        e.live.add("nb-cli")
        rc, _ms, pid = er.invoke(e, ["inspect", "-f", "{{.State.Pid}}", "nb-cli"],
                                 capture=True)
        er.check(e, "inspect client container", rc)
        e.cli_pid = pid.strip()
    time.sleep(1.0)


def address(e: er.Engine, name: str) -> tuple[str, str]:
    """The container's address and gateway on its network (from inspect's JSON)."""
    rc, _ms, out = er.invoke(e, ["inspect", name], capture=True)
    er.check(e, "inspect", rc)
    nets = json.loads(out)[0]["NetworkSettings"]["Networks"]
    ep = nets.get(e.network) or next(iter(nets.values()))
    if not ep.get("IPAddress"):
        raise er.BenchError(f"{name} has no address: {nets}")
    return ep["IPAddress"], ep["Gateway"]


def in_client(e: er.Engine, cmd: list[str], secs: float) -> tuple[int, str]:
    """Runs a client command "in a container": a new `run --rm` container (default), or, with
    --client netns, the host's binary in the network namespace of the engine's long-lived
    client container (`nb-cli`), which leaves only the kernel's data path in the figure."""
    if getattr(e, "cli_pid", None):
        try:
            p = subprocess.run(["nsenter", "-t", e.cli_pid, "-n", *cmd], capture_output=True,
                               timeout=secs + 30, check=False)
        except subprocess.TimeoutExpired:
            return 124, ""
        return p.returncode, p.stdout.decode(errors="replace")
    rc, _ms, out = er.invoke(e, ["run", "--rm", "--network", e.network, *e.run_flags,
                                 *HOST_MOUNTS, IMAGE, *cmd], capture=True, timeout=secs + 60)
    return rc, out


def iperf(e: er.Engine, where: str, host: str, port: int, secs: float) -> float | None:
    cmd = ["iperf3", "-c", host, "-p", str(port), "-t", str(secs), "-J"]
    if where == "host":
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=secs + 30, check=False)
            rc, out = p.returncode, p.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired:
            return None
    else:
        rc, out = in_client(e, cmd, secs)
    try:
        bps = json.loads(out)["end"]["sum_received"]["bits_per_second"]
    except (ValueError, KeyError, TypeError):
        log(f"  {e.name}: iperf3 to {host}:{port} failed (rc {rc}): {out[-300:]}")
        return None
    return bps / 1e9


def conn_rate(e: er.Engine, where: str, host: str, port: int, secs: float) -> float | None:
    cmd = ["python3", "-c", CONN_LOOP, host, str(port), str(secs)]
    if where == "host":
        p = subprocess.run(cmd, capture_output=True, timeout=secs + 30, check=False)
        rc, out = p.returncode, p.stdout.decode(errors="replace")
    else:
        rc, out = in_client(e, cmd, secs)
    try:
        rate, fails = out.split()[:2]
        if int(fails) > 0:
            log(f"  {e.name}: {fails} failed connection(s) to {host}:{port}")
        return float(rate)
    except ValueError:
        log(f"  {e.name}: connection loop to {host}:{port} failed (rc {rc}): {out[-300:]}")
        return None


def link_facts(ns_pid: str | None, ifname: str) -> dict:
    """What shapes a link's data path: queue length, GSO/GRO sizes, queues, and the offloads
    that are on (``ethtool -k``), in the host's namespace or in ``ns_pid``'s."""
    pre = ["nsenter", "-t", ns_pid, "-n"] if ns_pid else []
    facts: dict = {}
    p = subprocess.run([*pre, "ip", "-d", "-j", "link", "show", "dev", ifname],
                       capture_output=True, timeout=20, check=False)
    try:
        link = json.loads(p.stdout)[0]
    except (ValueError, IndexError):
        return {"error": p.stderr.decode(errors="replace").strip()}
    for k in ("mtu", "qdisc", "txqlen", "gso_max_size", "gso_max_segs", "gro_max_size",
              "tso_max_size", "num_tx_queues", "num_rx_queues", "link_index"):
        if k in link:
            facts[k] = link[k]
    info = link.get("linkinfo", {})
    if info.get("info_kind") == "bridge":
        d = info.get("info_data", {})
        for k in ("stp_state", "forward_delay", "mcast_snooping", "vlan_filtering",
                  "nf_call_iptables", "nf_call_arptables"):
            if k in d:
                facts[k] = d[k]
    slave = info.get("info_slave_data", {})
    for k in ("hairpin", "learning", "flood", "proxy_arp", "isolated", "neigh_suppress"):
        if k in slave:
            facts["port_" + k] = slave[k]
    p = subprocess.run([*pre, "ethtool", "-k", ifname], capture_output=True, timeout=20,
                       check=False)
    on = sorted(ln.split(":")[0].strip() for ln in p.stdout.decode(errors="replace").splitlines()
                if ": on" in ln)
    facts["offloads_on"] = on
    return facts


def process_facts(pid: str) -> dict:
    """What else costs a container's process per packet or per slice of CPU: its seccomp
    filters (run on every syscall), speculation mitigations, its CPU weight."""
    facts = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                k, _, v = ln.partition(":")
                if k in ("Seccomp", "Seccomp_filters", "Speculation_Store_Bypass",
                         "SpeculationIndirectBranch", "Cpus_allowed_list"):
                    facts[k] = v.strip()
        with open(f"/proc/{pid}/cgroup") as f:
            for ln in f:
                _, ctrl, path = ln.strip().split(":", 2)
                if "cpu" in ctrl.split(","):
                    with open(f"/sys/fs/cgroup/cpu{path}/cpu.shares") as g:
                        facts["cpu.shares"] = g.read().strip()
                    facts["cpu cgroup"] = path
                elif ctrl == "" and os.path.exists(f"/sys/fs/cgroup{path}/cpu.weight"):
                    with open(f"/sys/fs/cgroup{path}/cpu.weight") as g:
                        facts["cpu.weight"] = g.read().strip()
    except OSError as ex:
        facts["error"] = str(ex)
    return facts


def show_path(engines: list[er.Engine]) -> dict:
    """Per engine: the server container's eth0, its host end, the bridge, the sysctls and the
    firewall rules on the way (the first packets of a flow see the nat chains; every packet
    sees conntrack and the filter chains of every table on the host)."""
    out = {}
    for e in engines:
        rc, _ms, pid = er.invoke(e, ["inspect", "-f", "{{.State.Pid}}", "nb-srv"], capture=True)
        pid = pid.strip()
        if rc != 0 or not pid.isdigit():
            continue
        inner = link_facts(pid, "eth0")
        host_index = inner.get("link_index")
        p = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, timeout=20,
                           check=False)
        host_if = next((ln["ifname"] for ln in json.loads(p.stdout or b"[]")
                        if ln.get("ifindex") == host_index), None)
        bridge = getattr(e, "bridge", "") or getattr(e, "podman_bridge", "")
        facts = {"container eth0": inner,
                 f"host end {host_if}": link_facts(None, host_if) if host_if else {},
                 f"bridge {bridge}": link_facts(None, bridge) if bridge else {}}
        facts["server process"] = process_facts(pid)
        sysctls = {}
        for key in ("net/bridge/bridge-nf-call-iptables", "net/ipv4/ip_forward",
                    f"net/ipv4/conf/{bridge}/route_localnet",
                    "net/netfilter/nf_conntrack_max", "net/netfilter/nf_conntrack_count"):
            try:
                with open("/proc/sys/" + key) as f:
                    sysctls[key] = f.read().strip()
            except OSError:
                pass
        facts["sysctls"] = sysctls
        out[e.name] = facts
    p = subprocess.run(["nft", "list", "ruleset"], capture_output=True, timeout=20, check=False)
    chains = []
    for ln in p.stdout.decode(errors="replace").splitlines():
        ln = ln.strip()
        if ln.startswith("table "):
            table = ln.split("{")[0].strip()
        elif ln.startswith("type filter hook forward") or ln.startswith("type filter hook input") \
                or ln.startswith("type filter hook output"):
            chains.append(f"{table}: {ln}")
    out["filter chains every packet of a flow passes (all tables on the host)"] = chains
    print(json.dumps(out, indent=1))
    return out


def one_round(engines: list[er.Engine], secs: float, it: int, tests: list[str]) -> None:
    order = engines[it % len(engines):] + engines[:it % len(engines)]
    for test in tests:
        for e in order:
            if er.STOP["signal"]:
                return
            if test == "pub-lo":
                v = iperf(e, "host", "127.0.0.1", e.p_iperf, secs)
            elif test == "pub-gw":
                v = iperf(e, "ctr", e.gateway, e.p_gw, secs)
            elif test == "c2c":
                v = iperf(e, "ctr", e.srv_ip, 5201, secs)
            elif test == "conn-lo":
                v = conn_rate(e, "host", "127.0.0.1", e.p_http, secs)
            else:
                v = conn_rate(e, "ctr", e.web_ip, 8080, secs)
            if v is not None:
                e.results.setdefault(test, []).append(v)


def cleanup(ctx: er.Ctx, engines: list[er.Engine]) -> None:
    for e in engines:
        if e.cli and not e.disabled.startswith("setup: no"):
            for c in ("nb-srv", "nb-web", "nb-cli"):
                try:
                    er.invoke(e, ["rm", "-f", c], timeout=30)
                except er.BenchError:
                    pass
            if getattr(e, "network", "bridge") != "bridge":
                try:
                    er.invoke(e, ["network", "rm", e.network], timeout=30)
                except er.BenchError:
                    pass
    er.cleanup(ctx, engines)  # also the bridges and nft tables the engines made
    before = getattr(ctx, "docker_chains", None)
    if before is not None:
        er.remove_made_chains("DOCKER", before)
    if getattr(ctx, "nft_tables", None) is not None:
        # iptables-nft made these tables for dockerd and netavark: drop them when empty.
        for t in nft_tables() - ctx.nft_tables:
            p = subprocess.run(["nft", "list", "table", *t.split()], capture_output=True,
                               timeout=20, check=False)
            body = [ln.strip() for ln in p.stdout.decode(errors="replace").splitlines()]
            rules = [ln for ln in body if ln and not ln.startswith(("table", "chain", "type", "}"))]
            if not rules:
                subprocess.run(["nft", "delete", "table", *t.split()], timeout=20, check=False)


def nft_tables() -> set[str]:
    p = subprocess.run(["nft", "list", "tables"], capture_output=True, timeout=20, check=False)
    return {ln.removeprefix("table ").strip()
            for ln in p.stdout.decode(errors="replace").splitlines() if ln.startswith("table ")}


def report(engines: list[er.Engine], args) -> dict:
    live = [e for e in engines if not e.disabled]
    out = {"seconds_per_measurement": args.seconds, "rounds": args.runs,
           "client": args.client, "engines": {}}
    print()
    print(f"{'test':10} " + " ".join(f"{e.name:>14}" for e in live) + "   berth/peer")
    for test in TESTS:
        if not any(e.results.get(test) for e in live):
            continue
        meds = {}
        for e in live:
            xs = e.results.get(test, [])
            meds[e.name] = statistics.median(xs) if xs else None
            out["engines"].setdefault(e.name, {"version": e.version})[test] = {
                "median": meds[e.name], "samples": xs, "unit": UNITS[test]}
        b = meds.get("berth")
        ratios = " ".join(f"{n}:{b / m:.2f}" for n, m in meds.items()
                          if n != "berth" and b and m)
        cells = " ".join(f"{(f'{m:.2f}' if m is not None else '-'):>14}" for m in meds.values())
        print(f"{test:10} {cells}   {ratios}  ({UNITS[test]})")
    print()
    for e in live:
        print(f"  {e.name}: {e.version}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engines", default="berth,podman,docker")
    ap.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--berth", help="the berth binary (default target/release/berth)")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--tests", default=",".join(TESTS),
                    help=f"which measurements (default all: {','.join(TESTS)})")
    ap.add_argument("--client", choices=("container", "netns"), default="container",
                    help="where in-container clients run: a new `run --rm` container each "
                         "time (default), or the host's binary in a long-lived client "
                         "container's network namespace (the kernel's data path alone)")
    ap.add_argument("--show-path", action="store_true",
                    help="print each engine's data-path settings (links, offloads, bridge, "
                         "sysctls, filter chains) before measuring")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        log("network: must run as root")
        return 1
    tests = [t for t in args.tests.split(",") if t]
    if not tests or any(t not in TESTS for t in tests):
        log(f"network: --tests takes some of {','.join(TESTS)}")
        return 2
    if not args.no_install and not er.install_deps("network", "--for-network-bench"):
        return 1
    er.become_subreaper()
    ctx = er.new_ctx("nb")
    er.catch_signals()
    engines: list[er.Engine] = []
    ctx.nft_tables = nft_tables()
    t0 = time.monotonic()
    try:
        tar_path = er.make_image_tar(ctx)
        for i, name in enumerate(args.engines.split(",")):
            e = er.new_engine(ctx, name, name)
            e.results = {}
            engines.append(e)
            try:
                SETUP[name](ctx, e, args, i)
                er.load_image(e, tar_path)
                start_servers(e, args.client)
            except (er.BenchError, OSError, subprocess.TimeoutExpired, KeyError, ValueError) as ex:
                log(f"skipping {name}: {ex}")
                e.disabled = f"setup: {ex}"
                continue
            log(f"{name}: {e.version}, bridge {getattr(e, 'bridge', '?')}")
        live = [e for e in engines if not e.disabled]
        if not live:
            return 1
        path = show_path(live) if args.show_path else None
        for it in range(args.runs):
            if er.STOP["signal"] or time.monotonic() - t0 > args.max_seconds:
                break
            log(f"round {it + 1}/{args.runs}")
            one_round(live, args.seconds, it, tests)
        out = report(engines, args)
        if path is not None:
            out["path"] = path
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        cleanup(ctx, engines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
