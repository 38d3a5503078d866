//! The differential harness: the same bundle through runc (the reference, Debian's 1.1.5) and
//! through berth, comparing what a user observes — the exit code, stdout and stderr, and a probe
//! run inside the container (capabilities, seccomp mode, ids, limits, umask, cwd, hostname,
//! environment, namespaces relative to the host's, cgroup membership and values read back,
//! mounts and their flags, /dev, the rootfs's writability, descriptors, the terminal) — plus
//! the state and environment hooks record.
//!
//! The corpus is made of configs berth did not write: `runc spec` (and `--rootless`), configs
//! captured from dockerd, podman and containerd (runc_corpus/, scripts/capture-runc-corpus.sh),
//! and variations of every field of runc's spec, strict seccomp profiles among them. A config
//! is only adapted to run here (the probe as its process, its bind sources made, its cgroup
//! path made unique, capabilities this host's root lacks removed): both runtimes get the same
//! bundle.
//!
//! Every difference fails the test unless the variation declares it as a deliberate one, with
//! the docs/runtime.md section that explains it; such a declaration is checked too (a
//! difference that went away must be taken out of the list).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use common::{make_busybox_rootfs, output_within, unique, RUNTIME_LIMIT};
use serde_json::{json, Value};

// ------------------------------------------------------------------------------------------
// The probe.

/// What runs in the container: each section is one thing a user could look at.
const PROBE: &str = r###"
echo "## id"; id
echo "## status"; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters|SigBlk|SigIgn):' /proc/self/status
echo "## limits"; cat /proc/self/limits
echo "## umask"; umask
echo "## cwd"; pwd
echo "## uts"; hostname; cat /proc/sys/kernel/domainname
echo "## env"; env | sort
echo "## oom"; cat /proc/self/oom_score_adj
echo "## ns"; for n in cgroup ipc mnt net pid time user uts; do echo "$n $(readlink /proc/self/ns/$n)"; done
echo "## cgroup"; cat /proc/self/cgroup
echo "## cgroupfs"
for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes memory/memory.soft_limit_in_bytes \
    memory/memory.swappiness memory/memory.oom_control cpu/cpu.shares cpu/cpu.cfs_quota_us \
    cpu/cpu.cfs_period_us cpuset/cpuset.cpus cpuset/cpuset.mems pids/pids.max \
    blkio/blkio.throttle.read_bps_device hugetlb/hugetlb.2MB.limit_in_bytes devices/devices.list \
    memory.max memory.swap.max memory.low cpu.max cpu.weight pids.max cpuset.cpus; do
    [ -r /sys/fs/cgroup/$f ] && { echo "> $f"; cat /sys/fs/cgroup/$f | sort; }
done
echo "## mounts"; awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { print $5, $6, $(i+1), $(i+3) } }' /proc/self/mountinfo
echo "## dev"; for f in /dev/* /dev/pts/ptmx; do stat -c '%n %A %u:%g %t:%T' $f; done
echo "## sysctl"; cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmax 2>&1
echo "## rootfs"; touch /.probe 2>/dev/null && echo writable || echo read-only; rm -f /.probe
echo "## mkdir"; mkdir /tmp/.probe-dir 2>&1; echo "rc=$?"; rmdir /tmp/.probe-dir 2>/dev/null
echo "## sched"; cut -d' ' -f19,41 /proc/self/stat
echo "## fds"; ls /proc/self/fd | sort -n | tr '\n' ' '; echo
echo "## tty"; tty
exit 0
"###;

// ------------------------------------------------------------------------------------------
// Variations.

/// What the comparison expects of a variation.
#[derive(Clone, Copy)]
enum Expect {
    /// No observable difference.
    Same,
    /// A deliberate difference: the docs/runtime.md section naming it, and what must hold of
    /// the two outcomes (runc's, berth's) for the difference to be that one.
    Differs(&'static str, fn(&Outcome, &Outcome) -> bool),
    /// Not run through runc: runc would change the host (a config without a mount namespace
    /// makes its mounts in the host's). berth's outcome must pass the check.
    BerthOnly(&'static str, fn(&Outcome) -> bool),
}

struct Variation {
    name: String,
    config: Value,
    /// Extra flags of `run`.
    flags: Vec<&'static str>,
    /// Changes to the rootfs before the runs (both runtimes get a copy).
    setup: Option<fn(&Path)>,
    expect: Expect,
}

/// runc's spec without a terminal: the variations with one set it themselves.
fn base() -> Value {
    let mut c = corpus_config("runc-spec");
    c["process"]["terminal"] = json!(false);
    c
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runc_corpus")
}

fn corpus_config(name: &str) -> Value {
    let text = std::fs::read_to_string(corpus_dir().join(format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A variation of runc's spec.
fn spec(name: &str, change: impl FnOnce(&mut Value)) -> Variation {
    let mut config = base();
    change(&mut config);
    Variation {
        name: name.to_owned(),
        config,
        flags: Vec::new(),
        setup: None,
        expect: Expect::Same,
    }
}

fn push(v: &mut Value, item: Value) {
    v.as_array_mut().unwrap().push(item);
}

fn without_ns(c: &mut Value, typ: &str) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != typ);
}

fn caps(c: &mut Value, list: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set] = json!(list);
    }
}

/// A profile like those written before 2021: an errno default, an allow list without
/// close_range, clone3, faccessat2, openat2 and getcwd.
fn strict_profile(extra: &[&str]) -> Value {
    const NAMES: &str = "access arch_prctl brk capget capset chdir chmod chown clock_gettime \
        clock_nanosleep clone close dup dup2 dup3 execve exit exit_group faccessat fchdir fchmod \
        fchmodat fchown fchownat fcntl fstat fstatfs futex getdents getdents64 getegid geteuid \
        getgid getgroups getpgid getpgrp getpid getppid getpriority getrandom getresgid getresuid \
        getrlimit gettid gettimeofday getuid ioctl kill lseek lstat madvise mkdir mkdirat mmap \
        mprotect munmap nanosleep newfstatat open openat pipe pipe2 poll prctl pread64 prlimit64 \
        read readlink readlinkat rename renameat rmdir rt_sigaction rt_sigprocmask rt_sigreturn \
        sched_getaffinity sched_yield select set_robust_list set_tid_address setgid setgroups \
        setpgid setresgid setresuid setsid setuid sigaltstack stat statfs statx sysinfo tgkill \
        umask uname unlink unlinkat vfork wait4 write writev";
    let mut names: Vec<&str> = NAMES.split_whitespace().collect();
    names.extend_from_slice(extra);
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    })
}

fn hook(kind: &str) -> Value {
    // HOOK_LOG is replaced by each runtime's own log file when the bundle is written.
    json!({"path": "/bin/sh", "args": ["sh", "-c",
        format!("{{ echo \"== {kind}\"; cat; echo; env | grep -v -e ^_= -e ^SHLVL= | sort; }} >> HOOK_LOG")]})
}

fn failing_hook() -> Value {
    json!({"path": "/bin/false"})
}

/// Both succeeded and their outputs are the same but for the lines containing `needle`.
fn same_except(runc: &Outcome, berth: &Outcome, needle: &str) -> bool {
    let keep = |o: &Outcome| -> Vec<String> {
        o.stdout
            .lines()
            .filter(|l| !l.contains(needle))
            .map(str::to_owned)
            .collect()
    };
    succeeded(runc) && succeeded(berth) && keep(runc) == keep(berth) && runc.stdout != berth.stdout
}

fn failed(o: &Outcome) -> bool {
    o.code != Some(0)
}

fn succeeded(o: &Outcome) -> bool {
    o.code == Some(0)
}

/// Every variation: the corpus as captured, then runc's spec with each field varied.
fn variations() -> Vec<Variation> {
    let mut all = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    for name in names {
        all.push(Variation {
            name: format!("corpus/{name}"),
            config: corpus_config(&name),
            flags: Vec::new(),
            setup: None,
            expect: Expect::Same,
        });
    }
    let v = |name: &str, change: fn(&mut Value)| spec(name, change);
    all.extend([
        // process: user, groups, umask, cwd, env, args
        v("user-1000", |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000})
        }),
        v(
            "user-groups",
            |c| {
                c["process"]["user"] =
                    json!({"uid": 1000, "gid": 1000, "additionalGids": [27, 1000, 4]})
            },
        ),
        v("user-nobody-umask", |c| {
            c["process"]["user"] = json!({"uid": 65534, "gid": 65534, "umask": 63})
        }),
        v("umask-027", |c| c["process"]["user"]["umask"] = json!(23)),
        v("no-user", |c| {
            c["process"].as_object_mut().unwrap().remove("user");
        }),
        v("cwd-tmp", |c| c["process"]["cwd"] = json!("/tmp")),
        v("cwd-missing-is-made", |c| {
            c["process"]["cwd"] = json!("/made/by/runtime")
        }),
        v("cwd-relative", |c| c["process"]["cwd"] = json!("tmp")),
        v("env-extra", |c| {
            push(&mut c["process"]["env"], json!("FOO=bar baz"))
        }),
        v("env-home", |c| {
            push(&mut c["process"]["env"], json!("HOME=/tmp"))
        }),
        v("env-no-path", |c| {
            c["process"]["env"] = json!(["TERM=xterm"])
        }),
        v("env-empty", |c| c["process"]["env"] = json!([])),
        v("env-not-kv", |c| {
            push(&mut c["process"]["env"], json!("NOEQUALS"))
        }),
        v("args-empty", |c| c["process"]["args"] = json!([])),
        v("args-not-found", |c| {
            c["process"]["args"] = json!(["no-such-program"])
        }),
        v("args-not-executable", |c| {
            c["process"]["args"] = json!(["/etc/passwd"])
        }),
        v("args-relative-path", |c| {
            c["process"]["args"] = json!(["sh", "/probe.sh"])
        }),
        v("exit-code", |c| {
            c["process"]["args"] = json!(["sh", "-c", "exit 7"])
        }),
        v("killed-by-signal", |c| {
            c["process"]["args"] = json!(["sh", "-c", "kill -9 $$"])
        }),
        v("no-new-privileges-off", |c| {
            c["process"]["noNewPrivileges"] = json!(false)
        }),
        v("no-new-privileges-absent", |c| {
            c["process"]
                .as_object_mut()
                .unwrap()
                .remove("noNewPrivileges");
        }),
        // capabilities
        v("caps-none", |c| caps(c, &[])),
        v("caps-extra", |c| {
            caps(
                c,
                &["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_KILL", "CAP_CHOWN"],
            )
        }),
        v("caps-bounding-only", |c| {
            c["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN"]})
        }),
        v("caps-absent", |c| {
            c["process"].as_object_mut().unwrap().remove("capabilities");
        }),
        v("caps-ambient-for-user", |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            let set = json!(["CAP_NET_BIND_SERVICE"]);
            c["process"]["capabilities"] = json!({"bounding": set, "effective": set,
                "permitted": set, "inheritable": set, "ambient": set});
        }),
        v("caps-unknown-name", |c| {
            push(
                &mut c["process"]["capabilities"]["bounding"],
                json!("CAP_FOO"),
            )
        }),
        v("caps-user-keeps-effective", |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            caps(c, &["CAP_NET_RAW", "CAP_CHOWN"]);
        }),
        // rlimits
        v(
            "rlimit-nofile",
            |c| {
                c["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 4096}])
            },
        ),
        v("rlimits-several", |c| {
            c["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 1024},
                {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608},
                {"type": "RLIMIT_MEMLOCK", "soft": 65536, "hard": 65536}])
        }),
        v("rlimits-empty", |c| c["process"]["rlimits"] = json!([])),
        v(
            "rlimit-above-host",
            |c| {
                c["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}])
            },
        ),
        v("oom-score-raised", |c| {
            c["process"]["oomScoreAdj"] = json!(500)
        }),
        v("oom-score-same", |c| c["process"]["oomScoreAdj"] = json!(0)),
        v("apparmor-profile-without-apparmor", |c| {
            c["process"]["apparmorProfile"] = json!("docker-default")
        }),
        v("selinux-label-without-selinux", |c| {
            c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")
        }),
        // root
        v("root-writable", |c| c["root"]["readonly"] = json!(false)),
        v("root-readonly-absent", |c| {
            c["root"].as_object_mut().unwrap().remove("readonly");
        }),
        // uts
        v("hostname", |c| c["hostname"] = json!("probe-host")),
        v("hostname-empty", |c| c["hostname"] = json!("")),
        v("hostname-without-uts", |c| without_ns(c, "uts")),
        // mounts
        v("tmpfs-extra", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/scratch", "type": "tmpfs",
                "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=1m"]}),
            )
        }),
        v("tmpfs-readonly", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/scratch", "type": "tmpfs",
                "source": "tmpfs", "options": ["ro", "size=1m"]}),
            )
        }),
        v("tmpfs-over-existing-dir", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/etc", "type": "tmpfs",
                "source": "tmpfs", "options": ["size=1m"]}),
            )
        }),
        v("tmpfs-copyup", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/etc", "type": "tmpfs",
                "source": "tmpfs", "options": ["tmpcopyup", "size=1m"]}),
            )
        }),
        v("tmpfs-atime-options", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/scratch", "type": "tmpfs",
                "source": "tmpfs", "options": ["noatime", "nodiratime"]}),
            )
        }),
        v("bind-readonly", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/data", "type": "bind",
                "source": "SHARED", "options": ["rbind", "ro"]}),
            )
        }),
        v("bind-writable", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/data", "type": "bind",
                "source": "SHARED", "options": ["rbind", "rw"]}),
            )
        }),
        v("bind-flags", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/data", "type": "bind",
                "source": "SHARED", "options": ["bind", "nosuid", "nodev", "noexec"]}),
            )
        }),
        v("bind-file", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/etc/probe-file", "type": "bind",
                "source": "SHARED/file", "options": ["bind", "ro"]}),
            )
        }),
        v("bind-relative-source", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/data", "type": "bind",
                "source": "relative-dir", "options": ["bind"]}),
            )
        }),
        v("bind-propagation", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/data", "type": "bind",
                "source": "SHARED", "options": ["rbind", "rprivate"]}),
            )
        }),
        v("bind-recursive-readonly", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/data", "type": "bind",
                "source": "SHARED", "options": ["rbind", "rro"]}),
            )
        }),
        v("bind-source-missing", |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/data", "type": "bind",
                "source": "/nonexistent/source", "options": ["bind"]}),
            )
        }),
        v("dev-readonly", |c| {
            push(&mut c["mounts"][1]["options"], json!("ro"));
        }),
        v("no-dev-mount", |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/dev")
        }),
        v("no-cgroup-mount", |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/sys/fs/cgroup")
        }),
        v("cgroup-mount-rw", |c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/sys/fs/cgroup" {
                    m["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "rw"]);
                }
            }
        }),
        v("sysfs-writable", |c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/sys" {
                    m["options"] = json!(["nosuid", "noexec", "nodev"]);
                }
            }
        }),
        v("proc-options", |c| {
            c["mounts"][0]["options"] = json!(["nosuid", "noexec", "nodev"])
        }),
        v("mqueue-absent", |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/dev/mqueue")
        }),
        v("shm-size", |c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/dev/shm" {
                    m["options"] = json!(["nosuid", "noexec", "nodev", "mode=1777", "size=1m"]);
                }
            }
        }),
        // namespaces
        v("host-network", |c| without_ns(c, "network")),
        v("host-pid", |c| without_ns(c, "pid")),
        v("host-ipc", |c| without_ns(c, "ipc")),
        v("host-uts", |c| {
            without_ns(c, "uts");
            c.as_object_mut().unwrap().remove("hostname");
        }),
        v("cgroup-namespace", |c| {
            push(&mut c["linux"]["namespaces"], json!({"type": "cgroup"}))
        }),
        v("user-namespace-without-maps", |c| {
            push(&mut c["linux"]["namespaces"], json!({"type": "user"}))
        }),
        v("network-joined-by-path", |c| {
            for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == "network" {
                    n["path"] = json!("/proc/self/ns/net");
                }
            }
        }),
        v("ipc-joined-by-path", |c| {
            for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if n["type"] == "ipc" {
                    n["path"] = json!("/proc/self/ns/ipc");
                }
            }
        }),
        v("namespace-twice", |c| {
            push(&mut c["linux"]["namespaces"], json!({"type": "pid"}))
        }),
        v("namespace-path-missing", |c| {
            push(
                &mut c["linux"]["namespaces"],
                json!({"type": "cgroup", "path": "/nonexistent/ns"}),
            )
        }),
        // sysctl
        v("sysctl-net", |c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"})
        }),
        v("sysctl-ipc", |c| {
            c["linux"]["sysctl"] = json!({"kernel.shmmax": "65536"})
        }),
        v("sysctl-uts", |c| {
            c["linux"]["sysctl"] = json!({"kernel.domainname": "via.sysctl"})
        }),
        v("sysctl-host-only", |c| {
            c["linux"]["sysctl"] = json!({"vm.swappiness": "10"})
        }),
        v("sysctl-net-without-netns", |c| {
            without_ns(c, "network");
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        }),
        // masked and read-only paths
        v("masked-file", |c| {
            push(&mut c["linux"]["maskedPaths"], json!("/etc/group"))
        }),
        v("masked-dir", |c| {
            push(&mut c["linux"]["maskedPaths"], json!("/root"))
        }),
        v("masked-missing", |c| {
            push(&mut c["linux"]["maskedPaths"], json!("/nonexistent"))
        }),
        v("readonly-dir", |c| {
            push(&mut c["linux"]["readonlyPaths"], json!("/tmp"))
        }),
        v("readonly-missing", |c| {
            push(&mut c["linux"]["readonlyPaths"], json!("/nonexistent"))
        }),
        v("masked-and-readonly", |c| {
            push(&mut c["linux"]["maskedPaths"], json!("/etc"));
            push(&mut c["linux"]["readonlyPaths"], json!("/etc"));
        }),
        v("no-masked-no-readonly", |c| {
            c["linux"]["maskedPaths"] = json!([]);
            c["linux"]["readonlyPaths"] = json!([]);
        }),
        // propagation
        v("rootfs-private", |c| {
            c["linux"]["rootfsPropagation"] = json!("private")
        }),
        v("rootfs-rslave", |c| {
            c["linux"]["rootfsPropagation"] = json!("rslave")
        }),
        v("rootfs-shared", |c| {
            c["linux"]["rootfsPropagation"] = json!("shared")
        }),
        v("rootfs-unknown-propagation", |c| {
            c["linux"]["rootfsPropagation"] = json!("sideways")
        }),
        // devices
        v("device-node", |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/mynull", "type": "c", "major": 1,
                "minor": 3, "fileMode": 438}])
        }),
        v("device-kmsg-denied", |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/kmsg", "type": "c", "major": 1,
                "minor": 11, "fileMode": 420}])
        }),
        v("device-owner-mode", |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/mynull", "type": "c", "major": 1,
                "minor": 3, "fileMode": 384, "uid": 1000, "gid": 27}])
        }),
        v("device-block", |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/loopx", "type": "b", "major": 7,
                "minor": 0}])
        }),
        v("device-fifo", |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/myfifo", "type": "p", "major": 0,
                "minor": 0}])
        }),
        v("device-rules-allow-all", |c| {
            c["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}])
        }),
        v("device-rules-deny-null", |c| {
            push(
                &mut c["linux"]["resources"]["devices"],
                json!({"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
            )
        }),
        v("device-rules-lenient-access", |c| {
            push(
                &mut c["linux"]["resources"]["devices"],
                json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwa"}),
            )
        }),
        v("device-rules-absent", |c| {
            c["linux"]["resources"]
                .as_object_mut()
                .unwrap()
                .remove("devices");
        }),
        // resources
        v("memory-limit", |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 67108864, "swap": 67108864})
        }),
        v("memory-limit-without-swap", |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 67108864})
        }),
        v("memory-reservation", |c| {
            c["linux"]["resources"]["memory"] = json!({"reservation": 33554432})
        }),
        v("memory-swappiness", |c| {
            c["linux"]["resources"]["memory"] = json!({"swappiness": 10})
        }),
        v("memory-oom-killer-off", |c| {
            c["linux"]["resources"]["memory"] = json!({"disableOOMKiller": true})
        }),
        v("memory-kernel", |c| {
            c["linux"]["resources"]["memory"] = json!({"kernel": 67108864})
        }),
        v("memory-limit-unlimited", |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": -1})
        }),
        v("cpu-shares", |c| {
            c["linux"]["resources"]["cpu"] = json!({"shares": 512})
        }),
        v("cpu-quota", |c| {
            c["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000})
        }),
        v("cpu-quota-unlimited", |c| {
            c["linux"]["resources"]["cpu"] = json!({"quota": -1, "period": 100000})
        }),
        v("cpuset", |c| {
            c["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"})
        }),
        v("cpuset-invalid", |c| {
            c["linux"]["resources"]["cpu"] = json!({"cpus": "999"})
        }),
        v("cpu-shares-clamped", |c| {
            c["linux"]["resources"]["cpu"] = json!({"shares": 1})
        }),
        v("pids-limit", |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 50})
        }),
        v("pids-unlimited", |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": -1})
        }),
        v("blkio-throttle", |c| {
            c["linux"]["resources"]["blockIO"] = json!({"throttleReadBpsDevice":
                [{"major": 254, "minor": 0, "rate": 1048576}]})
        }),
        v("blkio-weight-without-bfq", |c| {
            c["linux"]["resources"]["blockIO"] = json!({"weight": 500})
        }),
        v("hugepages", |c| {
            c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 0}])
        }),
        v("network-classes-unmounted", |c| {
            c["linux"]["resources"]["network"] = json!({"classID": 1048577})
        }),
        v("unified-on-v1", |c| {
            c["linux"]["resources"]["unified"] = json!({"pids.max": "10"})
        }),
        v("cgroups-path-relative", |c| {
            c["linux"]["cgroupsPath"] = json!("relative/CGROUP")
        }),
        // seccomp
        v("seccomp-docker-profile", |c| {
            c["linux"]["seccomp"] = corpus_config("docker-default")["linux"]["seccomp"].clone()
        }),
        v("seccomp-docker-profile-no-nnp", |c| {
            c["linux"]["seccomp"] = corpus_config("docker-default")["linux"]["seccomp"].clone();
            c["process"]["noNewPrivileges"] = json!(false);
        }),
        v("seccomp-podman-profile", |c| {
            c["linux"]["seccomp"] = corpus_config("podman-default")["linux"]["seccomp"].clone()
        }),
        v("seccomp-strict-nnp", |c| {
            c["linux"]["seccomp"] = strict_profile(&[])
        }),
        v("seccomp-strict-no-nnp-with-getcwd", |c| {
            c["linux"]["seccomp"] = strict_profile(&["getcwd"]);
            c["process"]["noNewPrivileges"] = json!(false);
        }),
        v("seccomp-deny-mkdir", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
        }),
        v("seccomp-errno-ret", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": 28}]})
        }),
        v("seccomp-kill-mkdir", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]})
        }),
        v("seccomp-trap-mkdir", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRAP"}]})
        }),
        v("seccomp-argument-rule", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 2, "value": 448, "op": "SCMP_CMP_EQ"}]}]})
        }),
        v("seccomp-no-architectures", |c| {
            c["linux"]["seccomp"] = strict_profile(&[]);
            c["linux"]["seccomp"]
                .as_object_mut()
                .unwrap()
                .remove("architectures");
        }),
        v("seccomp-unknown-syscall-names", |c| {
            c["linux"]["seccomp"] = strict_profile(&["no_such_syscall", "socketcall"])
        }),
        v("seccomp-enosys-default", |c| {
            c["linux"]["seccomp"] = strict_profile(&[]);
            c["linux"]["seccomp"]["defaultErrnoRet"] = json!(38);
        }),
        v("seccomp-log-default", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_LOG"})
        }),
        v("seccomp-unknown-action", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_DANCE"})
        }),
        v("seccomp-notify-without-listener", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
        }),
        // hooks
        v("hooks-every-kind-recorded", |c| {
            c["hooks"] = json!({"prestart": [hook("prestart")],
                "createRuntime": [hook("createRuntime")],
                "createContainer": [hook("createContainer")],
                "startContainer": [hook("startContainer")],
                "poststop": [hook("poststop")]})
        }),
        v("hooks-with-env-and-args", |c| {
            let mut h = hook("prestart");
            h["env"] = json!(["ONLY=this"]);
            c["hooks"] = json!({"prestart": [h],
                "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 0", "arg1"]}]})
        }),
        v("hooks-annotations-in-state", |c| {
            c["annotations"] = json!({"org.example.key": "value", "a": "b"});
            c["hooks"] = json!({"prestart": [hook("prestart")], "poststop": [hook("poststop")]});
        }),
        v("hook-prestart-fails", |c| {
            c["hooks"] = json!({"prestart": [failing_hook()]})
        }),
        v("hook-create-runtime-fails", |c| {
            c["hooks"] = json!({"createRuntime": [failing_hook()]})
        }),
        v("hook-create-container-fails", |c| {
            c["hooks"] = json!({"createContainer": [failing_hook()]})
        }),
        v("hook-start-container-fails", |c| {
            c["hooks"] = json!({"startContainer": [failing_hook()]})
        }),
        v("hook-poststop-fails", |c| {
            c["hooks"] = json!({"poststop": [failing_hook()]})
        }),
        v("hook-times-out", |c| {
            c["hooks"] = json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "5"],
                "timeout": 1}]})
        }),
        v("hook-missing-program", |c| {
            c["hooks"] = json!({"prestart": [{"path": "/nonexistent/hook"}]})
        }),
        v("annotations", |c| {
            c["annotations"] = json!({"org.example.key": "value"})
        }),
        // terminals
        v("terminal", |c| c["process"]["terminal"] = json!(true)),
        v("terminal-user", |c| {
            c["process"]["terminal"] = json!(true);
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        }),
    ]);

    // Variations with rootfs set-up or run flags.
    let mut special =
        |name: &str, change: fn(&mut Value), flags: &[&'static str], setup: Option<fn(&Path)>| {
            let mut v = spec(name, change);
            v.flags = flags.to_vec();
            v.setup = setup;
            all.push(v);
        };
    special("no-pivot", |_| {}, &["--no-pivot"], None);
    special("no-new-keyring", |_| {}, &["--no-new-keyring"], None);
    special("preserve-fds", |_| {}, &["--preserve-fds", "1"], None);
    special(
        "cwd-root-only-dir-for-user",
        |c| {
            c["process"]["cwd"] = json!("/root");
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        },
        &[],
        Some(|rootfs| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(rootfs.join("root"), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }),
    );
    special(
        "masked-dangling-symlink",
        |c| push(&mut c["linux"]["maskedPaths"], json!("/dangling")),
        &[],
        Some(|rootfs| {
            std::os::unix::fs::symlink("/nowhere", rootfs.join("dangling")).unwrap();
        }),
    );
    special(
        "masked-symlink-to-file",
        |c| push(&mut c["linux"]["maskedPaths"], json!("/group-link")),
        &[],
        Some(|rootfs| {
            std::os::unix::fs::symlink("/etc/group", rootfs.join("group-link")).unwrap();
        }),
    );
    special(
        "mount-destination-through-symlink",
        |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "/escape/inside", "type": "tmpfs",
            "source": "tmpfs", "options": ["size=1m"]}),
            )
        },
        &[],
        Some(|rootfs| {
            std::os::unix::fs::symlink("/", rootfs.join("escape")).unwrap();
        }),
    );

    // Strict seccomp profiles applied to captured configs.
    for name in ["docker-default", "podman-default", "containerd-default"] {
        for nnp in [true, false] {
            let mut config = corpus_config(name);
            config["linux"]["seccomp"] = strict_profile(&["getcwd"]);
            config["process"]["noNewPrivileges"] = json!(nnp);
            all.push(Variation {
                name: format!("corpus/{name}+strict-seccomp-nnp-{nnp}"),
                config,
                flags: Vec::new(),
                setup: None,
                expect: Expect::Same,
            });
        }
    }

    // The deliberate differences (docs/runtime.md, "Differences from runc").
    let differs = |all: &mut Vec<Variation>,
                   name: &str,
                   change: fn(&mut Value),
                   doc: &'static str,
                   check: fn(&Outcome, &Outcome) -> bool| {
        let mut v = spec(name, change);
        v.expect = Expect::Differs(doc, check);
        all.push(v);
    };
    differs(
        &mut all,
        "seccomp-strict-no-nnp-without-getcwd",
        |c| {
            c["linux"]["seccomp"] = strict_profile(&[]);
            c["process"]["noNewPrivileges"] = json!(false);
        },
        "Seccomp is loaded after the runtime's own work",
        |runc, berth| failed(runc) && succeeded(berth),
    );
    differs(
        &mut all,
        "hooks-poststart-recorded",
        |c| {
            c["hooks"] = json!({"startContainer": [hook("startContainer")],
            "poststart": [hook("poststart")]})
        },
        "Poststart hooks run after the program is executed",
        |runc, berth| {
            // runc: poststart first, in "created"; berth: after startContainer, in "running".
            let order = |o: &Outcome| -> Vec<String> {
                o.hooks
                    .lines()
                    .filter(|l| l.starts_with("== "))
                    .map(str::to_owned)
                    .collect()
            };
            let poststart = |o: &Outcome| {
                o.hooks
                    .split("== poststart\n")
                    .nth(1)
                    .and_then(|rest| rest.lines().next())
                    .and_then(|state| serde_json::from_str::<Value>(state).ok())
                    .map(|s| s["status"].clone())
            };
            succeeded(runc)
                && succeeded(berth)
                && order(runc) == ["== poststart", "== startContainer"]
                && order(berth) == ["== startContainer", "== poststart"]
                && poststart(runc) == Some(json!("created"))
                && poststart(berth) == Some(json!("running"))
        },
    );
    differs(
        &mut all,
        "domainname",
        |c| c["domainname"] = json!("probe.example"),
        "Fields runc 1.1 ignores",
        |runc, berth| {
            succeeded(runc)
                && succeeded(berth)
                && runc.stdout.contains("## uts\nrunc\n(none)\n")
                && berth.stdout.contains("## uts\nrunc\nprobe.example\n")
        },
    );
    differs(
        &mut all,
        "mount-relative-destination",
        |c| {
            push(
                &mut c["mounts"],
                json!({"destination": "data", "type": "tmpfs",
            "source": "tmpfs"}),
            )
        },
        "Mount destinations must be absolute",
        |runc, berth| succeeded(runc) && failed(berth),
    );
    differs(
        &mut all,
        "seccomp-log-flag",
        |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
        },
        "Fields runc 1.1 ignores",
        |runc, berth| {
            failed(runc) && succeeded(berth) && berth.stdout.contains("## mkdir\nmkdir: can't create directory '/tmp/.probe-dir': Operation not permitted")
        },
    );
    differs(
        &mut all,
        "device-overrides-default",
        |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/null", "type": "c", "major": 1,
            "minor": 3, "fileMode": 384}])
        },
        "A spec device that redefines a default one",
        |runc, berth| {
            failed(runc)
                && succeeded(berth)
                && berth.stdout.contains("/dev/null crw------- 0:0 1:3")
        },
    );
    differs(
        &mut all,
        "user-namespace",
        |c| {
            push(&mut c["linux"]["namespaces"], json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        },
        "The owner of /dev/mqueue in a user namespace",
        |runc, berth| same_except(runc, berth, "/dev/mqueue drwxrwxrwt"),
    );
    differs(
        &mut all,
        "user-namespace-one-id",
        |c| {
            push(&mut c["linux"]["namespaces"], json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
            for m in c["mounts"].as_array_mut().unwrap() {
                if let Some(o) = m["options"].as_array_mut() {
                    o.retain(|o| o != "gid=5");
                }
            }
        },
        "The owner of /dev/mqueue in a user namespace",
        |runc, berth| same_except(runc, berth, "/dev/mqueue drwxrwxrwt"),
    );
    differs(
        &mut all,
        "hook-poststart-fails",
        |c| c["hooks"] = json!({"poststart": [failing_hook()]}),
        "A failed poststart hook is a warning",
        |runc, berth| failed(runc) && succeeded(berth),
    );
    differs(
        &mut all,
        "time-namespace",
        |c| {
            push(&mut c["linux"]["namespaces"], json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400}});
        },
        "Newer runtime-spec fields",
        |runc, berth| failed(runc) && succeeded(berth),
    );
    differs(
        &mut all,
        "scheduler",
        |c| c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5}),
        "Newer runtime-spec fields",
        |runc, berth| succeeded(runc) && succeeded(berth) && runc.stdout != berth.stdout,
    );
    differs(
        &mut all,
        "personality",
        |c| c["linux"]["personality"] = json!({"domain": "LINUX32"}),
        "Newer runtime-spec fields",
        |runc, berth| succeeded(runc) && succeeded(berth) && runc.stdout == berth.stdout,
    );
    let mut no_mnt = spec("no-mount-namespace", |c| without_ns(c, "mount"));
    no_mnt.expect = Expect::BerthOnly("Configs without a mount namespace", |berth| {
        failed(berth) && berth.stderr.contains("level=error")
    });
    all.push(no_mnt);
    let mut no_mnt_ok = spec("no-mount-namespace-no-mounts", |c| {
        without_ns(c, "mount");
        c["mounts"] = json!([]);
        c["linux"]["maskedPaths"] = json!([]);
        c["linux"]["readonlyPaths"] = json!([]);
        c["root"]["readonly"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", "ls /probe.sh"]);
    });
    no_mnt_ok.expect = Expect::BerthOnly("Configs without a mount namespace", |berth| {
        succeeded(berth) && berth.stdout.contains("/probe.sh")
    });
    all.push(no_mnt_ok);
    all
}

// ------------------------------------------------------------------------------------------
// Running a variation.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runtime {
    Runc,
    Berth,
}

impl Runtime {
    fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Berth => "berth",
        }
    }
}

/// What a user sees of one run, normalized (ids, paths, times, inodes).
#[derive(Debug, Default, Clone)]
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    hooks: String,
}

struct Context {
    dir: PathBuf,
    template: PathBuf,
    /// The harness's own namespaces (inode per kind): "host" in the probe's output.
    host_ns: Vec<(String, String)>,
    /// Capabilities the harness's bounding set lacks (this host's root has no CAP_SYS_RESOURCE).
    missing_caps: Vec<&'static str>,
}

impl Context {
    fn new() -> Context {
        let dir = std::env::temp_dir().join(unique("berth-diff"));
        let template = dir.join("rootfs-template");
        make_busybox_rootfs(&template);
        std::fs::write(template.join("probe.sh"), PROBE).unwrap();
        let host_ns = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
            .iter()
            .map(|n| {
                let link = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
                (n.to_string(), link.display().to_string())
            })
            .collect();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let bounding = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        let missing_caps = (0..64)
            .filter(|i| bounding & (1 << i) == 0)
            .filter_map(berth_runtime::capability_name)
            .collect();
        Context {
            dir,
            template,
            host_ns,
            missing_caps,
        }
    }

    /// The config made runnable here for `runtime`, in a bundle of its own.
    fn adapt(&self, v: &Variation, n: usize, runtime: Runtime, work: &Path) -> (PathBuf, PathBuf) {
        let bundle = work.join(format!("bundle-{}", runtime.name()));
        let rootfs = work.join(format!("rootfs-{}", runtime.name()));
        std::fs::create_dir_all(&bundle).unwrap();
        // A copy of the template with hard links: quick, and neither runtime sees what the
        // other made in it (mount points, device nodes).
        let ok = Command::new("cp")
            .arg("-al")
            .arg(&self.template)
            .arg(&rootfs)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp -al rootfs");
        if let Some(setup) = v.setup {
            setup(&rootfs);
        }
        let shared = work.join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(shared.join("file"), "shared\n").unwrap();
        std::fs::create_dir_all(bundle.join("relative-dir")).unwrap();
        // In the shared directory, which the container sees at the same path (startContainer
        // hooks run inside it).
        let hook_log = shared.join(format!("hooks-{}.log", runtime.name()));
        let cgroup = format!("/berth-diff-{}/{}-{n}", std::process::id(), runtime.name());

        let mut c = v.config.clone();
        c["root"]["path"] = json!(rootfs);
        let args = c["process"]["args"].clone();
        let probe = json!(["/bin/sh", "/probe.sh"]);
        match args
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
        {
            // Docker's --init: keep the init in front of the probe.
            Some(init) if init.ends_with("docker-init") => {
                c["process"]["args"] = json!([init, "--", "/bin/sh", "/probe.sh"])
            }
            // The variation is about the process itself.
            _ if v.name.starts_with("args-")
                || v.name.starts_with("exit-")
                || v.name.starts_with("killed-")
                || v.name.starts_with("no-mount-namespace-") => {}
            _ => c["process"]["args"] = probe,
        }
        // Capabilities this host's root does not have cannot be granted by any runtime.
        if let Some(sets) = c["process"]["capabilities"].as_object_mut() {
            for list in sets.values_mut().filter_map(Value::as_array_mut) {
                list.retain(|cap| !cap.as_str().is_some_and(|c| self.missing_caps.contains(&c)));
            }
        }
        // Nor a hard limit above its own.
        if let Some(limits) = c["process"]["rlimits"].as_array_mut() {
            for l in limits {
                if l["type"] == "RLIMIT_NOFILE" && v.name != "rlimit-above-host" {
                    for k in ["soft", "hard"] {
                        if l[k].as_u64().is_some_and(|x| x > 20000) {
                            l[k] = json!(20000);
                        }
                    }
                }
            }
        }
        if let Some(linux) = c["linux"].as_object_mut() {
            if linux.contains_key("cgroupsPath") || v.name.starts_with("corpus/") {
                linux.insert("cgroupsPath".into(), json!(cgroup));
            }
            if v.name == "cgroups-path-relative" {
                linux.insert(
                    "cgroupsPath".into(),
                    json!(format!(
                        "berth-diff-{}/{}-{n}",
                        std::process::id(),
                        runtime.name()
                    )),
                );
            }
            // A network namespace the capture joined: podman's CNI one becomes a new one here,
            // docker's host network the host's.
            if let Some(list) = linux.get_mut("namespaces").and_then(Value::as_array_mut) {
                for ns in list {
                    let Some(path) = ns["path"].as_str().map(str::to_owned) else {
                        continue;
                    };
                    if ns["type"] == "network" && path.starts_with("/run/netns") {
                        ns.as_object_mut().unwrap().remove("path");
                    } else if ns["type"] == "network" && !path.starts_with("/proc/self/") {
                        ns["path"] = json!("/proc/self/ns/net");
                    }
                }
            }
        }
        if c["hooks"].is_object() {
            push(
                &mut c["mounts"],
                json!({"destination": shared, "type": "bind",
                "source": shared, "options": ["rbind"]}),
            );
        }
        // Docker's libnetwork hook calls back into a dockerd that is not here.
        if let Some(hooks) = c["hooks"].as_object_mut() {
            for list in hooks.values_mut().filter_map(Value::as_array_mut) {
                list.retain(|h| !h["path"].as_str().is_some_and(|p| p.starts_with("/proc/")));
                for h in list.iter_mut() {
                    if let Some(args) = h["args"].as_array_mut() {
                        for a in args {
                            if let Some(s) = a.as_str() {
                                *a = json!(s.replace("HOOK_LOG", hook_log.to_str().unwrap()));
                            }
                        }
                    }
                }
            }
        }
        // Bind sources of the capture (hosts, resolv.conf, volumes) and of the variations.
        if let Some(mounts) = c["mounts"].as_array_mut() {
            for m in mounts {
                let Some(source) = m["source"].as_str().map(str::to_owned) else {
                    continue;
                };
                let local = if let Some(rest) = source.strip_prefix("/CAPTURE/") {
                    let path = work.join("capture").join(rest);
                    let is_file = ["hosts", "hostname", "resolv.conf", ".containerenv"]
                        .iter()
                        .any(|f| rest.ends_with(f));
                    std::fs::create_dir_all(if is_file {
                        path.parent().unwrap()
                    } else {
                        &path
                    })
                    .unwrap();
                    if is_file {
                        std::fs::write(&path, "# from the capture\n").unwrap();
                    }
                    path
                } else if let Some(rest) = source.strip_prefix("SHARED") {
                    PathBuf::from(format!("{}{rest}", shared.display()))
                } else {
                    continue;
                };
                m["source"] = json!(local);
            }
        }
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .unwrap();
        (bundle, hook_log)
    }

    fn run(&self, v: &Variation, n: usize, runtime: Runtime) -> Outcome {
        let work = self.dir.join(format!("v{n}"));
        std::fs::create_dir_all(&work).unwrap();
        let (bundle, hook_log) = self.adapt(v, n, runtime, &work);
        let root = self.dir.join(format!("state-{}", runtime.name()));
        let id = format!("diff-{}-{n}", std::process::id());
        let mut cmd = match runtime {
            Runtime::Runc => Command::new("runc"),
            Runtime::Berth => {
                let mut c = Command::new(common::berth());
                c.arg("runtime");
                c
            }
        };
        cmd.arg("--root")
            .arg(&root)
            .arg("run")
            .args(&v.flags)
            .arg("--bundle")
            .arg(&bundle)
            .arg(&id)
            .current_dir(&work)
            .env("DIFF_MARKER", "from-the-harness");
        if v.flags.contains(&"--preserve-fds") {
            use std::os::unix::process::CommandExt;
            let file = std::fs::File::open("/dev/null").unwrap();
            let raw = std::os::fd::IntoRawFd::into_raw_fd(file);
            // SAFETY: dup2 in the child before exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(raw, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let terminal = v.config["process"]["terminal"] == true;
        let out = if terminal {
            common::on_pty(cmd, RUNTIME_LIMIT)
        } else {
            output_within(cmd.stdin(Stdio::null()), RUNTIME_LIMIT)
        };
        // Whatever the run left (a failed create may leave nothing, a kept container much).
        let _ = output_within(
            match runtime {
                Runtime::Runc => Command::new("runc"),
                Runtime::Berth => {
                    let mut c = Command::new(common::berth());
                    c.arg("runtime");
                    c
                }
            }
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &id])
            .stdin(Stdio::null()),
            RUNTIME_LIMIT,
        );
        let hooks = std::fs::read_to_string(&hook_log).unwrap_or_default();
        let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if runtime == Runtime::Runc {
            // runc 1.1's process starts with signal 32 ignored (a side effect of Go's runtime);
            // berth's with none (docs/runtime.md, "Signals").
            stdout = stdout.replace("SigIgn:\t0000000080000000", "SigIgn:\t0000000000000000");
        }
        let norm = |text: &str| self.normalize(text, &id, &work, runtime, n);
        Outcome {
            code: out.status.code(),
            stdout: norm(&stdout),
            stderr: norm(&String::from_utf8_lossy(&out.stderr)),
            hooks: norm(&hooks),
        }
    }

    /// Replaces what legitimately differs between two runs: ids, paths, times, inodes, pids.
    fn normalize(&self, text: &str, id: &str, work: &Path, runtime: Runtime, n: usize) -> String {
        let name = runtime.name();
        let mut t = text.replace('\r', "");
        for (kind, link) in &self.host_ns {
            t = t.replace(&format!("{kind} {link}"), &format!("{kind} host"));
        }
        t = t
            .replace(
                &work.join(format!("bundle-{name}")).display().to_string(),
                "BUNDLE",
            )
            .replace(
                &work.join(format!("rootfs-{name}")).display().to_string(),
                "ROOTFS",
            )
            .replace(
                &work
                    .join(format!("shared/hooks-{name}.log"))
                    .display()
                    .to_string(),
                "HOOKLOG",
            )
            .replace(&work.display().to_string(), "WORK")
            .replace(
                &format!("berth-diff-{}/{name}-{n}", std::process::id()),
                "CGROUP",
            )
            .replace(id, "ID");
        let mut out = String::with_capacity(t.len());
        for line in t.lines() {
            let mut line = line.to_owned();
            // Namespaces the container made: their inode numbers are new each run.
            if let Some(pos) = line.find(":[") {
                if line[..pos].ends_with("cgroup")
                    || ["ipc", "mnt", "net", "pid", "time", "user", "uts"]
                        .iter()
                        .any(|k| line[..pos].ends_with(k))
                {
                    line = format!("{}:[own]", &line[..pos]);
                }
            }
            // logrus's time stamps, runc's and berth's names for themselves and their versions.
            if let Some(rest) = line.strip_prefix("time=\"") {
                if let Some(end) = rest.find('"') {
                    line = format!("time=\"T\"{}", &rest[end + 1..]);
                }
            }
            line = line
                .replace("runc run failed", "RUNTIME run failed")
                .replace("berth run failed", "RUNTIME run failed");
            // A runtime's own message: its level is compared, its wording is its own
            // (docs/runtime.md, "Messages").
            for level in ["error", "warning", "info", "debug"] {
                if line.starts_with(&format!("time=\"T\" level={level} msg=")) {
                    line = format!("LOG level={level}");
                }
            }
            for (tag, level) in [
                ("ERRO", "error"),
                ("WARN", "warning"),
                ("INFO", "info"),
                ("DEBU", "debug"),
            ] {
                if line.contains(&format!("m{tag}\u{1b}[0m[")) {
                    line = format!("LOG level={level}");
                }
            }
            out.push_str(&line);
            out.push('\n');
        }
        // The hooks' state: the runtime's spec version and the pids differ.
        let mut cleaned = String::new();
        for line in out.lines() {
            if line.starts_with("{\"ociVersion\"") {
                if let Ok(mut state) = serde_json::from_str::<Value>(line) {
                    state["ociVersion"] = json!("V");
                    if state.get("pid").is_some_and(|p| p != 1) {
                        state["pid"] = json!("PID");
                    }
                    cleaned.push_str(&state.to_string());
                    cleaned.push('\n');
                    continue;
                }
            }
            // The hook's working directory is the bundle for both, under its own name.
            cleaned.push_str(line);
            cleaned.push('\n');
        }
        cleaned
    }
}

/// Why two outcomes differ, if they do.
fn difference(runc: &Outcome, berth: &Outcome) -> Option<String> {
    if runc.code != berth.code {
        return Some(format!(
            "exit code: runc {:?}, berth {:?}\nrunc: {}{}\nberth: {}{}",
            runc.code, berth.code, runc.stdout, runc.stderr, berth.stdout, berth.stderr
        ));
    }
    let same_output = runc.stdout == berth.stdout && runc.stderr == berth.stderr;
    if runc.code != Some(0) && !same_output {
        // A refusal (or the container's own failure with different output): the runtimes'
        // wording is each their own, but both must say it is an error. On a terminal the
        // messages come through stdout.
        let says_error = |o: &Outcome| {
            o.stderr.contains("error") || o.stdout.contains("ERRO") || o.stdout.contains("error")
        };
        if !says_error(runc) || !says_error(berth) {
            return Some(format!(
                "a failure without an error message:\nrunc: {} / {}\nberth: {} / {}",
                runc.stdout, runc.stderr, berth.stdout, berth.stderr
            ));
        }
        return first_difference("hooks", &runc.hooks, &berth.hooks);
    }
    if let Some(d) = first_difference("stdout", &runc.stdout, &berth.stdout) {
        return Some(d);
    }
    if let Some(d) = first_difference("stderr", &runc.stderr, &berth.stderr) {
        return Some(d);
    }
    first_difference("hooks", &runc.hooks, &berth.hooks)
}

fn first_difference(what: &str, a: &str, b: &str) -> Option<String> {
    if a == b {
        return None;
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = la
        .iter()
        .zip(&lb)
        .position(|(x, y)| x != y)
        .unwrap_or(la.len().min(lb.len()));
    let section = la[..at.min(la.len())]
        .iter()
        .rev()
        .find(|l| l.starts_with("## "))
        .unwrap_or(&"");
    Some(format!(
        "{what} differs in section {section:?} at line {at}:\n  runc:  {:?}\n  berth: {:?}",
        la.get(at),
        lb.get(at)
    ))
}

#[test]
fn berth_matches_runc_on_the_corpus_and_its_variations() {
    if Command::new("runc").arg("--version").output().is_err() {
        panic!("runc is not installed (scripts/install-deps.sh installs it)");
    }
    let ctx = Context::new();
    let all = variations();
    assert!(all.len() >= 150, "only {} variations", all.len());
    let names: BTreeSet<&str> = all.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names.len(), all.len(), "variation names must be unique");
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    let documented = Mutex::new(Vec::new());
    // Two runs at a time per core: the runtimes mostly wait on the kernel.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some(v) = all.get(n) else { break };
                let problem = match v.expect {
                    Expect::BerthOnly(doc, check) => {
                        let berth = ctx.run(v, n, Runtime::Berth);
                        documented.lock().unwrap().push(format!("{}: {doc}", v.name));
                        (!check(&berth)).then(|| format!("berth only, {doc}: unexpected {berth:?}"))
                    }
                    expect => {
                        let runc = ctx.run(v, n, Runtime::Runc);
                        let berth = ctx.run(v, n, Runtime::Berth);
                        match (expect, difference(&runc, &berth)) {
                            (Expect::Same, None) => None,
                            (Expect::Same, Some(d)) => Some(d),
                            (Expect::Differs(doc, check), d) => {
                                documented.lock().unwrap().push(format!("{}: {doc}", v.name));
                                (!check(&runc, &berth)).then(|| {
                                    format!("documented difference ({doc}) not as described: {d:?}\nrunc {runc:?}\nberth {berth:?}")
                                })
                            }
                            (Expect::BerthOnly(..), _) => None,
                        }
                    }
                };
                let _ = std::fs::remove_dir_all(ctx.dir.join(format!("v{n}")));
                if let Some(p) = problem {
                    problems.lock().unwrap().push(format!("[{}] {p}", v.name));
                }
            });
        }
    });
    // The parents of the variations' cgroups, in every hierarchy.
    let parent = format!("berth-diff-{}", std::process::id());
    for entry in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(entry.path().join(&parent));
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(&parent));
    let _ = std::fs::remove_dir_all(&ctx.dir);
    let problems = problems.into_inner().unwrap();
    eprintln!(
        "{} variations in {:?}; documented differences: {:#?}",
        all.len(),
        started.elapsed(),
        documented.into_inner().unwrap()
    );
    assert!(
        problems.is_empty(),
        "{} unexplained difference(s) between runc and berth:\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
