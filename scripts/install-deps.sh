#!/usr/bin/env bash
# install-deps.sh [--for-crun] [--for-engine-bench] [--for-network-bench]
#
# Idempotent, quiet set-up of a fresh Debian 12 machine (as root) for building,
# testing and benchmarking berth:
#   * installs busybox-static crun runc podman iproute2 nftables libc6-dev gcc python3
#     (nft: berth's network rules), for the CRI tests containernetworking-plugins
#     python3-kubernetes containerd python3-grpcio python3-grpc-tools, and for the registry
#     tests docker-registry skopeo
#     apache2-utils openssl curl gzip python3-jwt python3-cryptography (runs `apt-get update`
#     only when one is missing; no service is started: the tests start their own registries);
#     docker-compose (v1, python: the peer that runs the compose tests' files); zsh, fish,
#     man-db and groff-base for the CLI's completion and man page tests; docker.io
#     (dockerd 20.10, the reference of the Engine API differential test; not started);
#     chromium for the dashboard's browser test (and Node.js/npm, if missing, for its page)
#   * makes sure /etc/containers/containers.conf has a [containers]
#     default_ulimits entry with a nofile limit the host can grant (podman
#     refuses to start containers otherwise when the hard RLIMIT_NOFILE is low),
#     without clobbering what the file already holds;
#   * with --for-crun: when the hugetlb controller sits on the cgroup2
#     hierarchy while the others are cgroup v1 (a layout crun refuses), mounts
#     hugetlb as a v1 hierarchy at /sys/fs/cgroup/hugetlb (only if not already);
#   * with --for-engine-bench (bench/engine_run.py): also installs Debian's
#     docker.io (dockerd 20.10, containerd, containerd-shim-runc-v2, the 20.10
#     CLI at /usr/bin/docker) without starting its services: the bench starts
#     its own dockerd on a private socket and root;
#   * with --for-network-bench (bench/network.py): docker.io as above, iperf3, and
#     ethtool (its --show-path).
#
# Prints nothing on a machine that is already set up (except with -v).
# Exits non-zero with a message on stderr if anything fails.
set -euo pipefail

PACKAGES=(busybox-static crun runc podman iproute2 nftables libc6-dev gcc python3
    # registry tests (crates/cli/tests/registry.rs): the CNCF distribution, skopeo as the
    # peer, htpasswd, openssl for the test CA, curl, and PyJWT for the token service
    docker-registry skopeo apache2-utils openssl curl gzip python3-jwt python3-cryptography
    # IPv6 networks with the iptables backend (crates/cli/tests/engine_ipv6.rs): ip6tables
    iptables)
CONTAINERS_CONF=${CONTAINERS_CONF:-/etc/containers/containers.conf}
APT_LOG=${APT_LOG:-/tmp/berth-install-deps.apt.log}

for_crun=0
for_engine_bench=0
for_network_bench=0
verbose=0
usage() { echo "usage: $0 [--for-crun] [--for-engine-bench] [--for-network-bench] [-v|--verbose]" >&2; }
while (($#)); do
    case "$1" in
        --for-crun) for_crun=1 ;;
        --for-engine-bench) for_engine_bench=1 ;;
        --for-network-bench) for_engine_bench=1; for_network_bench=1 ;;
        -v|--verbose) verbose=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage; echo "install-deps: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "install-deps: error: $*" >&2; exit 1; }
say() { echo "install-deps: $*"; }
note() { if ((verbose)); then say "$@"; fi; }

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, /etc/containers, cgroup mounts)"
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    die "this script targets Debian 12 (dpkg-query/apt-get not found)"
fi

# ---------------------------------------------------------------- packages --
is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

# iptables (its legacy commands): the e2e test of berth's iptables backend.
PACKAGES+=(iptables)
# criu: the runtime's checkpoint/restore (crates/cli/tests/runtime_compat.rs).
PACKAGES+=(criu)
# zsh and fish load `berth completion zsh|fish`, man-db and groff render `berth man`'s pages
# (crates/cli/tests/cli_help.rs).
PACKAGES+=(zsh fish man-db groff-base)
# docker.io (dockerd 20.10 and its containerd, services not started): the Engine API's
# reference in crates/cli/tests/engine_api_diff.rs, which runs its own private dockerd.
PACKAGES+=(docker.io)
# chromium: the dashboard's browser test (crates/cli/tests/dashboard.rs drives it headless
# with playwright-core); Node.js and npm build the dashboard's page (scripts/build-dashboard.sh).
PACKAGES+=(chromium)
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
# The CRI tests (crates/cli/tests/cri.rs, cri_differential.rs) and bench/cri_pod_start.py:
# Debian's CNI plugins for pod networks, the Kubernetes Python client (its WebSocket exec and
# port-forward), containerd (its CRI plugin is the peer), gRPC for Python (the bench's client).
PACKAGES+=(containernetworking-plugins python3-kubernetes containerd python3-grpcio python3-grpc-tools)
if ((for_network_bench)); then
    PACKAGES+=(iperf3 ethtool)
fi

missing=()
for p in "${PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
done

apt_run() {
    # Wait up to 5 minutes for another apt/dpkg (e.g. a concurrent install) to finish.
    DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" \
        >>"$APT_LOG" 2>&1
}

if ((${#missing[@]})); then
    say "installing ${missing[*]} (apt log: $APT_LOG)"
    : >"$APT_LOG"
    # Keep package scripts from starting daemons (docker.io, containerd) on the
    # host's default sockets: a policy-rc.d that forbids it, unless one exists.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, from berth scripts/install-deps.sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    if ! apt_run update; then
        tail -n 20 "$APT_LOG" >&2 || true
        die "apt-get update failed (see $APT_LOG)"
    fi
    if ! apt_run install "${missing[@]}"; then
        tail -n 20 "$APT_LOG" >&2 || true
        die "apt-get install ${missing[*]} failed (see $APT_LOG)"
    fi
    still=()
    for p in "${missing[@]}"; do is_installed "$p" || still+=("$p"); done
    ((${#still[@]} == 0)) || die "packages still missing after apt-get install: ${still[*]}"
else
    note "packages already installed: ${PACKAGES[*]}"
fi

# busybox-static must give a static /bin/busybox (the test rootfs is built from it).
[[ -x /bin/busybox ]] || die "/bin/busybox missing although busybox-static is installed"
if ldd /bin/busybox >/dev/null 2>&1; then
    die "/bin/busybox is dynamically linked (is the 'busybox' package shadowing busybox-static?)"
fi

# --------------------------------------------------------------- docker-py --
# The engine's e2e tests drive berth with docker-py (crates/cli/tests/dockerpy/).
if ! python3 -c 'import docker' >/dev/null 2>&1; then
    note "installing docker-py"
    python3 -m pip install -q docker >>"$APT_LOG" 2>&1 \
        || apt-get install -y -q python3-docker >>"$APT_LOG" 2>&1 \
        || die "could not install docker-py (python3 -m pip install docker); see $APT_LOG"
fi

# ------------------------------------------------------------------- npm 11 --
# Vite 8 (the dashboard's page) needs npm >= 11 to install its platform packages.
if command -v npm >/dev/null 2>&1 && (($(npm --version | cut -d. -f1) < 11)); then
    note "upgrading npm to 11"
    npm install -g --no-audit --no-fund npm@11 >>"$APT_LOG" 2>&1 \
        || die "npm install -g npm@11 failed (see $APT_LOG)"
fi

# ---------------------------------------------------------- docker-compose --
# The compose e2e tests run the same files with Debian's docker-compose (v1, python) against
# berth's daemon. Without its recommended docker.io: nothing of Docker's daemon is needed.
if ! is_installed docker-compose; then
    note "installing docker-compose"
    apt_run install --no-install-recommends docker-compose \
        || { apt_run update && apt_run install --no-install-recommends docker-compose; } \
        || die "apt-get install docker-compose failed (see $APT_LOG)"
fi

# ------------------------------------------------------ containers.conf ------
hard_nofile=$(ulimit -Hn)
nofile=20000
if [[ $hard_nofile != unlimited ]] && ((hard_nofile < nofile)); then nofile=$hard_nofile; fi
ulimits_line="default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=32768:32768\"]"

# Edits the file in place (atomically) with a small line-based TOML edit:
#   - no file:                       write a [containers] table with the key
#   - [containers] has the key:      leave it (warn if it sets no nofile limit)
#   - [containers] lacks the key:    insert the key right after the table header
#   - no [containers] table:         append one
python3 - "$CONTAINERS_CONF" "$ulimits_line" <<'PY' || die "could not update $CONTAINERS_CONF"
import os, re, sys, tempfile

path, line = sys.argv[1], sys.argv[2]
try:
    with open(path, encoding="utf-8") as f:
        text = f.read()
except FileNotFoundError:
    text = None

header_re = re.compile(r"^\s*\[\s*([^\]\s]+)\s*\]\s*(#.*)?$")
key_re = re.compile(r"^\s*default_ulimits\s*=")

def write(new):
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    mode = os.stat(path).st_mode & 0o7777 if text is not None else 0o644
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".containers.conf.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"install-deps: {path}: set [containers] {line}")

if text is None:
    write(f"# written by berth scripts/install-deps.sh\n[containers]\n{line}\n")
    sys.exit(0)

lines = text.splitlines(keepends=True)
table = None
header_idx = None
for i, l in enumerate(lines):
    m = header_re.match(l)
    if m:
        table = m.group(1)
        if table == "containers" and header_idx is None:
            header_idx = i
        continue
    if table == "containers" and key_re.match(l):
        # Key present (possibly a multi-line array): respect it.
        rest = "".join(lines[i:i + 20])
        if "nofile" not in rest.split("]")[0]:
            print(f"install-deps: warning: {path} sets default_ulimits without a nofile "
                  f"limit; podman may fail (want {line})", file=sys.stderr)
        sys.exit(0)

if header_idx is not None:
    lines.insert(header_idx + 1, line + "\n")
    write("".join(lines))
else:
    sep = "" if text.endswith("\n") or not text else "\n"
    write(text + sep + f"\n# added by berth scripts/install-deps.sh\n[containers]\n{line}\n")
PY

# ------------------------------------------------------------ --for-crun -----
# crun (1.8) refuses a hybrid layout where a controller lives on cgroup2 while
# the rest are v1. Move hugetlb to its own v1 hierarchy if that is the case.
if ((for_crun)); then
    hugetlb_v1_mounted() {
        # a cgroup (v1) mount whose super options include hugetlb
        awk '$3 == "cgroup" && $4 ~ /(^|,)hugetlb(,|$)/ { f = 1 } END { exit !f }' /proc/self/mounts
    }
    unified=/sys/fs/cgroup/unified
    if hugetlb_v1_mounted; then
        note "hugetlb cgroup v1 hierarchy already mounted"
    elif [[ -r $unified/cgroup.controllers ]] && grep -qw hugetlb "$unified/cgroup.controllers" \
        && awk '$3 == "cgroup" { f = 1 } END { exit !f }' /proc/self/mounts; then
        say "mounting hugetlb as a cgroup v1 hierarchy at /sys/fs/cgroup/hugetlb (for crun)"
        mkdir -p /sys/fs/cgroup/hugetlb || die "cannot create /sys/fs/cgroup/hugetlb"
        # The kernel refuses once a cgroup2 subtree has enabled hugetlb (after containers
        # ran there): crun then cannot run on this host until reboot; berth is unaffected.
        if ! mountpoint -q /sys/fs/cgroup/hugetlb \
            && ! mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null; then
            say "warning: hugetlb is in use on cgroup2 and cannot move to v1; crun cannot run here until reboot"
        fi
    else
        note "cgroup layout needs no change for crun"
    fi
fi

note "done"
