#!/usr/bin/env bash
# capture-runc-corpus.sh OUT_DIR — capture the config.json files other tools write for their
# OCI runtime, for the runtime differential test (crates/cli/tests/runtime_diff.rs), whose
# corpus lives in crates/cli/tests/runc_corpus/. Not run by CI: the corpus is committed; run
# this again (as root) to refresh it.
#
#   * dockerd (Debian's docker.io, 20.10) with its own data root, exec root and socket,
#     --iptables=false --bridge=none, stopped by pid afterwards: one container per `docker run`
#     flag set, config.json read from its containerd task bundle;
#   * podman (Debian's 4.3) with its own storage: `podman create` + `podman init`;
#   * containerd's default spec (`ctr oci spec`), the base of what its CRI plugin writes
#     (crictl, the CRI plugin's client, is not packaged in Debian 12).
#
# Paths of the capture and container ids are replaced by placeholders (/CAPTURE, ID) so the
# files hold nothing of the machine that made them.
set -euo pipefail

out=${1:?usage: capture-runc-corpus.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
[[ $(id -u) -eq 0 ]] || { echo "capture: must run as root" >&2; exit 1; }
for tool in dockerd docker podman ctr busybox; do
    command -v "$tool" >/dev/null || { echo "capture: $tool is missing (apt-get install docker.io podman busybox-static)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/berth-capture.XXXXXX)
dockerd_pid=
cleanup() {
    if [[ -n $dockerd_pid ]] && kill -0 "$dockerd_pid" 2>/dev/null; then
        kill "$dockerd_pid"
        for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    podman_cmd rm -a -f >/dev/null 2>&1 || true
    # dockerd leaves its default netns bind-mounted under its exec root.
    awk -v w="$work" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r \
        | while read -r m; do umount -l "$m" || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# A busybox image made offline.
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root}
cp /bin/busybox "$root/bin/"
for applet in $(/bin/busybox --list); do [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
tar -C "$root" -cf "$work/rootfs.tar" .

sanitize() {  # FILE NAME: copy FILE to $out/NAME.json with placeholders
    sed -e "s#$work#/CAPTURE#g" -e 's#[0-9a-f]\{64\}#ID#g' "$1" \
        | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=1, sort_keys=True))' \
        >"$out/$2.json"
}

# ---------------------------------------------------------------------------- dockerd --
# dockerd's runtime is a wrapper that keeps each config.json it is given, then runs runc: the
# config is captured even where runc cannot run it on this host (a --privileged container
# wants capabilities this machine's root lacks).
mkdir -p "$work/seen"
cat >"$work/capture-runtime" <<WRAPPER
#!/bin/sh
prev=
for arg in "\$@"; do
    if [ "\$prev" = --bundle ] && [ -f "\$arg/config.json" ]; then
        cp "\$arg/config.json" "$work/seen/\$(basename "\$arg").json"
    fi
    prev=\$arg
done
exec runc "\$@"
WRAPPER
chmod +x "$work/capture-runtime"
sock=$work/docker.sock
dockerd --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
    --host "unix://$sock" --pidfile "$work/docker.pid" --iptables=false --bridge=none \
    --ip-masq=false --storage-driver vfs --add-runtime "capture=$work/capture-runtime" \
    --default-runtime capture >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 300); do [[ -S $sock ]] && docker -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.1; done
dk() { docker -H "unix://$sock" "$@"; }
dk import "$work/rootfs.tar" bb:capture >/dev/null
mkdir -p "$work/bind"

docker_case() {  # NAME FLAGS...
    local name=$1; shift
    local id
    id=$(dk create --network none "$@" bb:capture /bin/sleep 3600)
    dk start "$id" >/dev/null 2>&1 || echo "capture: note: docker $name does not start here (config kept)" >&2
    [[ -f $work/seen/$id.json ]] || { echo "capture: no config.json for docker $name" >&2; exit 1; }
    sanitize "$work/seen/$id.json" "docker-$name"
    dk rm -f "$id" >/dev/null
}
docker_case default
docker_case privileged --privileged
docker_case caps --cap-add SYS_ADMIN --cap-drop NET_RAW --cap-drop MKNOD
docker_case read-only --read-only --tmpfs /run:rw,size=1m
docker_case user --user 1000:1000 --group-add 27
docker_case no-new-privileges --security-opt no-new-privileges
docker_case limits --memory 64m --memory-swap 128m --cpus 0.5 --pids-limit 100 --cpu-shares 512
docker_case host-namespaces --ipc host --pid host --uts host
docker_case init --init
docker_case tty -t
docker_case sysctl-hostname --sysctl net.ipv4.ip_forward=1 --hostname myhost --domainname example.com
docker_case device --device /dev/null:/dev/mynull:rw
docker_case ulimits --ulimit nofile=2048:4096 --ulimit nproc=1000
docker_case workdir-env -w /tmp -e FOO=bar
docker_case unconfined --security-opt seccomp=unconfined
docker_case bind --mount "type=bind,source=$work/bind,destination=/data,readonly"
docker_case cgroupns-private --cgroupns private
docker_case oom-score --oom-score-adj 500
docker_case shm --shm-size 128m
docker_case tmpfs-mode --mount type=tmpfs,destination=/scratch,tmpfs-mode=1770
# The host network: a separate run, since every other case has --network none.
id=$(dk create --network host bb:capture /bin/sleep 3600)
dk start "$id" >/dev/null
sanitize "$work/seen/$id.json" docker-host-network
dk rm -f "$id" >/dev/null
kill "$dockerd_pid"
for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
dockerd_pid=

# ----------------------------------------------------------------------------- podman --
podman_cmd() {
    podman --root "$work/podman-storage" --runroot "$work/podman-run" --storage-driver vfs \
        --cgroup-manager cgroupfs --events-backend file "$@"
}
podman_cmd import "$work/rootfs.tar" localhost/bb:capture >/dev/null
podman_case() {  # NAME FLAGS...
    local name=$1; shift
    local id
    id=$(podman_cmd create "$@" localhost/bb:capture /bin/sleep 3600)
    podman_cmd init "$id" >/dev/null 2>&1 || echo "capture: note: podman $name does not start here (config kept)" >&2
    sanitize "$work/podman-storage/vfs-containers/$id/userdata/config.json" "podman-$name"
    podman_cmd rm -f "$id" >/dev/null
}
podman_case default
podman_case privileged --privileged
podman_case read-only --read-only
podman_case user-no-caps --user 1000 --cap-drop all
podman_case userns --uidmap 0:100000:65536 --gidmap 0:100000:65536
podman_case tty -t
podman_case nnp-memory --security-opt no-new-privileges --memory 32m
podman_case network-none --network none --pids-limit 50

# --------------------------------------------------------------------------- containerd --
ctr oci spec >"$work/ctr.json"
sanitize "$work/ctr.json" containerd-default

echo "capture: $(ls "$out" | wc -l) configs in $out"
