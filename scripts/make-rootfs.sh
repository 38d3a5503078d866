#!/usr/bin/env bash
# make-rootfs.sh DIR
#
# Builds a minimal busybox root filesystem in DIR, offline, from Debian's
# busybox-static (/bin/busybox; override with BUSYBOX=/path/to/static/busybox):
#   DIR/bin/busybox            copy of the static binary
#   DIR/bin/<applet>           symlink -> busybox, for every `busybox --list` applet
#   DIR/etc/passwd, group      root (0) and nobody (65534)
#   DIR/etc/hostname           empty
#   DIR/{proc,sys,dev,root,etc,var}, DIR/tmp (mode 1777)
# Idempotent: re-running over an existing DIR refreshes it. Takes well under 1 s.
set -euo pipefail

die() { echo "make-rootfs: error: $*" >&2; exit 1; }

[[ $# -eq 1 && -n $1 && $1 != -* ]] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
busybox=${BUSYBOX:-/bin/busybox}

[[ -x $busybox ]] || die "$busybox not found (apt-get install busybox-static, or run scripts/install-deps.sh)"
# A dynamically linked busybox would not run inside the rootfs.
if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked; need a static one (Debian package busybox-static)"
fi

mkdir -p "$dir"
root=$(cd "$dir" && pwd -P)
[[ $root != / ]] || die "refusing to build a rootfs in /"

mkdir -p "$root"/{bin,proc,sys,dev,root,etc,var,tmp}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

# Copy the binary (replace, never write through an existing symlink).
rm -f "$root/bin/busybox"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"

mapfile -t applets < <("$root/bin/busybox" --list)
((${#applets[@]} > 0)) || die "'busybox --list' printed no applets"

# One process for ~270 symlinks (a fork of ln per applet costs ~0.5 s);
# fall back to ln if no python3 is around.
py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3 || true)
if [[ -n $py ]]; then
    "$py" - "$root/bin" "${applets[@]}" <<'PY'
import os, sys
bindir, applets = sys.argv[1], sys.argv[2:]
for a in applets:
    if a == "busybox" or "/" in a or not a:
        continue
    p = os.path.join(bindir, a)
    try:
        os.symlink("busybox", p)
    except FileExistsError:
        if os.path.islink(p) and os.readlink(p) == "busybox":
            continue
        os.unlink(p)
        os.symlink("busybox", p)
PY
else
    for a in "${applets[@]}"; do
        [[ $a == busybox || $a == */* || -z $a ]] && continue
        ln -sfn busybox "$root/bin/$a"
    done
fi

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
: >"$root/etc/hostname"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/hostname"
