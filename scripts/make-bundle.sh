#!/usr/bin/env bash
# make-bundle.sh [--runtime-cmd "CMD"] DIR [ARGS...]
#
# Makes an OCI bundle in DIR:
#   DIR/rootfs       busybox rootfs (scripts/make-rootfs.sh)
#   DIR/config.json  from `CMD spec`, then process.terminal=false and
#                    process.args=ARGS (default: sh -c 'echo hello ...; hostname; id')
#
# CMD is any runc-compatible command line, word-split, e.g. "runc", "crun",
# "target/release/berth runtime" or "target/release/berth-runtime".
# Default: "<repo>/target/release/berth runtime" (target/debug/berth if only the
# debug build exists). Relative paths in CMD are taken from the repository root
# if they do not exist relative to the current directory.
# Idempotent: an existing DIR/config.json is replaced.
set -euo pipefail

die() { echo "make-bundle: error: $*" >&2; exit 1; }
usage() { echo "usage: $0 [--runtime-cmd \"CMD\"] DIR [ARGS...]" >&2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/.." && pwd -P)

runtime_cmd=
while (($#)); do
    case "$1" in
        --runtime-cmd) (($# >= 2)) || { usage; exit 2; }; runtime_cmd=$2; shift 2 ;;
        --runtime-cmd=*) runtime_cmd=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) usage; die "unknown option: $1" ;;
        *) break ;;
    esac
done
(($# >= 1)) || { usage; exit 2; }
dir=$1
shift
if (($# == 0)); then
    set -- sh -c 'echo hello from a berth container; hostname; id'
fi

if [[ -z $runtime_cmd ]]; then
    target=${CARGO_TARGET_DIR:-$repo/target}
    if [[ -x $target/release/berth ]]; then
        runtime_cmd="$target/release/berth runtime"
    elif [[ -x $target/debug/berth ]]; then
        runtime_cmd="$target/debug/berth runtime"
    else
        die "berth is not built ($target/release/berth missing): run 'cargo build --release -p berth', or pass --runtime-cmd runc"
    fi
fi

read -r -a rt <<<"$runtime_cmd"
((${#rt[@]} > 0)) || die "empty --runtime-cmd"
# Resolve the program now: `spec` runs in a scratch directory.
if [[ ${rt[0]} == */* ]]; then
    if [[ -x ${rt[0]} ]]; then
        rt[0]=$(cd "$(dirname "${rt[0]}")" && pwd -P)/$(basename "${rt[0]}")
    elif [[ ${rt[0]} != /* && -x $repo/${rt[0]} ]]; then
        rt[0]=$repo/${rt[0]}
    else
        die "runtime '${rt[0]}' not found or not executable"
    fi
else
    command -v "${rt[0]}" >/dev/null 2>&1 || die "runtime '${rt[0]}' not found in PATH"
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)

bash "$here/make-rootfs.sh" "$dir/rootfs"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/make-bundle.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
if ! (cd "$scratch" && "${rt[@]}" spec) >"$scratch/spec.log" 2>&1; then
    cat "$scratch/spec.log" >&2
    die "'${rt[*]} spec' failed"
fi
[[ -s $scratch/config.json ]] || die "'${rt[*]} spec' wrote no config.json"

py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3) || die "python3 not found"
"$py" - "$scratch/config.json" "$dir/config.json" "$@" <<'PY'
import json, os, sys
src, dst, args = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(src, encoding="utf-8") as f:
    cfg = json.load(f)
proc = cfg.setdefault("process", {})
proc["terminal"] = False
proc["args"] = args
cfg.setdefault("root", {})["path"] = "rootfs"
tmp = dst + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
os.replace(tmp, dst)
PY
