#!/usr/bin/env bash
# build-dashboard.sh — builds the dashboard's page (crates/dashboard/web) with npm, before
# cargo builds berth (crates/dashboard/build.rs embeds web/dist into the binary; without it
# the dashboard serves a page that says to run this script):
#   1. checks Node.js (>= 20.19, Vite 8's floor) and npm (>= 11: older ones fail to install
#      Vite 8's platform packages)
#   2. npm ci from the committed package-lock.json, only when the lockfile changed since the
#      last install (a stamp in node_modules)
#   3. tsc --noEmit (the page's types) and vite build → web/dist
# Run by scripts/quickstart.sh and scripts/test.sh. Quiet unless something fails (-v: say
# each step). Exits non-zero with a message naming what is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
web=$(cd "$here/../crates/dashboard/web" && pwd -P)
verbose=0
[[ ${1:-} == -v || ${1:-} == --verbose ]] && verbose=1
log=${DASHBOARD_BUILD_LOG:-/tmp/berth-build-dashboard.log}

die() { echo "build-dashboard: error: $*" >&2; exit 1; }
note() { if ((verbose)); then echo "build-dashboard: $*"; fi; }
run() {
    if ! "$@" >>"$log" 2>&1; then
        tail -n 30 "$log" >&2 || true
        die "$* failed in $web (log: $log)"
    fi
}

command -v node >/dev/null 2>&1 || die "node not found: install Node.js >= 20.19 (scripts/install-deps.sh)"
command -v npm >/dev/null 2>&1 || die "npm not found: install npm >= 11 (scripts/install-deps.sh)"
node_v=$(node -p 'process.versions.node')
IFS=. read -r major minor _ <<<"$node_v"
if ((major < 20 || (major == 20 && minor < 19))); then
    die "Node.js $node_v is too old for Vite 8: install Node.js >= 20.19"
fi
npm_major=$(npm --version | cut -d. -f1)
((npm_major >= 11)) || die "npm $(npm --version) is too old for Vite 8's packages: npm install -g npm@11"

cd "$web"
: >"$log"
stamp=node_modules/.berth-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    note "npm ci"
    run npm ci --no-audit --no-fund
    echo "$want" >"$stamp"
fi
note "tsc --noEmit"
run npx --no-install tsc --noEmit
note "vite build"
run npx --no-install vite build
[[ -f dist/index.html ]] || die "vite build made no dist/index.html"
note "built $web/dist"
