#!/usr/bin/env bash
# quickstart.sh — the README's first command. On a fresh Debian 12 machine, as root:
#   1. installs the system dependencies (scripts/install-deps.sh)
#   2. builds the dashboard's page (scripts/build-dashboard.sh, npm) and berth
#      (cargo build --release -p berth), which embeds it
#   3. links target/release/berth-runtime -> berth (runc-compatible entry point), installs
#      the bash/zsh/fish completion and the man pages (berth(1), berth-run(1), …)
#   4. makes a busybox OCI bundle in a fresh temporary directory
#   5. runs it: target/release/berth runtime run --bundle DIR quickstart-$$
#      (the container prints its hostname, id, CapEff line and `ls /`)
#   6. through the engine: `berth import` of that rootfs as busybox:quickstart (the first berth
#      command starts the daemon on /run/berth/berth.sock), then `berth run --rm` of it
# The temporary directory is removed on exit; the daemon and the image stay, as with docker.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/.." && pwd -P)
cd "$repo"

step() { printf '==> %s\n' "$*"; }
die() { echo "quickstart: error: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (containers need namespaces, mounts and cgroups)"
if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi

step "installing system dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust >= 1.85 (https://rustup.rs) and re-run"
step "building the dashboard's page (scripts/build-dashboard.sh)"
bash scripts/build-dashboard.sh
step "building berth (cargo build --release -p berth)"
cargo build --release -p berth

target=${CARGO_TARGET_DIR:-$repo/target}
berth=$target/release/berth
[[ -x $berth ]] || die "$berth was not built"
step "linking $target/release/berth-runtime -> berth"
ln -sfn berth "$target/release/berth-runtime"

# Completion (bash, zsh, fish) and man pages, from berth's own command definitions; the
# scripts call `berth`, so they work once target/release is on PATH (README).
step "installing shell completion and man pages (berth completion, berth man)"
install_out() { mkdir -p "$(dirname "$2")" && "$berth" completion "$1" >"$2"; }
install_out bash /usr/share/bash-completion/completions/berth
install_out zsh /usr/local/share/zsh/site-functions/_berth
install_out fish /usr/share/fish/vendor_completions.d/berth.fish
"$berth" man --dir /usr/local/share/man/man1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-quickstart.XXXXXX")
id=quickstart-$$
cleanup() {
    # Best effort: the container is normally gone already (run deletes it).
    "$berth" runtime delete --force "$id" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

step "making a busybox bundle in $tmp/bundle"
bash scripts/make-bundle.sh --runtime-cmd "$berth runtime" "$tmp/bundle" \
    sh -c 'echo "hostname: $(hostname)"; echo "id: $(id)"; grep "^CapEff" /proc/self/status; echo "ls /:"; ls /'

step "running: ${berth#"$repo"/} runtime run --bundle $tmp/bundle $id"
"$berth" runtime run --bundle "$tmp/bundle" "$id"
step "done: container $id ran and was deleted"

step "importing the rootfs as an image: berth import - busybox:quickstart"
tar -C "$tmp/bundle/rootfs" -c . | "$berth" import - busybox:quickstart
step "running it through the daemon: berth run --rm busybox:quickstart"
# shellcheck disable=SC2016  # expanded inside the container
"$berth" run --rm busybox:quickstart sh -c 'echo "hello from a berth container: $(hostname)"; grep -E "^(CapEff|Seccomp)" /proc/self/status'
"$berth" images busybox
step "done (the daemon keeps running, as dockerd does; docker CLI works too: DOCKER_HOST=unix:///run/berth/berth.sock docker ps -a)"
step "the web dashboard: $("$berth" dashboard 2>/dev/null) (a one-time login URL; \`berth dashboard --open\` opens one)"
