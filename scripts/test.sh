#!/usr/bin/env bash
# test.sh — the README's second command: the whole test suite.
#   1. scripts/install-deps.sh --for-crun (system packages, containers.conf, and the
#      hugetlb v1 mount crun needs on a hybrid host: tests run crun as a peer runtime)
#   2. scripts/build-dashboard.sh (the dashboard's page, with npm: embedded by the build and
#      driven in chromium by crates/cli/tests/dashboard.rs)
#   3. cargo build --release -p berth (+ target/release/berth-runtime symlink),
#      which integration tests, scripts and benches use
#   4. RUST_BACKTRACE=1 cargo test --workspace --no-fail-fast
# Exits with cargo test's status (or the first failing step's).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/.." && pwd -P)
cd "$repo"

if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi

echo "==> scripts/install-deps.sh --for-crun"
bash scripts/install-deps.sh --for-crun

command -v cargo >/dev/null 2>&1 || { echo "test: error: cargo not found (install Rust >= 1.85)" >&2; exit 1; }

echo "==> scripts/build-dashboard.sh"
bash scripts/build-dashboard.sh

echo "==> cargo build --release -p berth"
cargo build --release -p berth
target=${CARGO_TARGET_DIR:-$repo/target}
if [[ -x $target/release/berth ]]; then
    ln -sfn berth "$target/release/berth-runtime"
fi

echo "==> cargo test --workspace --no-fail-fast"
status=0
RUST_BACKTRACE=1 cargo test --workspace --no-fail-fast || status=$?
exit "$status"
