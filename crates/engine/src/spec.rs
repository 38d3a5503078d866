//! The OCI runtime spec (config.json) for a container, made as dockerd makes it: Docker's
//! default capabilities, masked and read-only /proc paths, /dev, the resolv.conf/hosts/hostname
//! binds, the user looked up in the image's /etc/passwd, and the HostConfig's limits.

use std::path::Path;

use bollard_stubs::models::HostConfig;
use serde_json::{json, Value};

use crate::container::{Container, MountRecord};
use crate::error::{ApiError, Result};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the container's own files are: its mounted root and its dir with hosts/resolv.conf.
pub struct Paths<'a> {
    pub rootfs: &'a Path,
    pub dir: &'a Path,
    pub cgroup_parent: &'a str,
    /// The network namespace to join (made by the daemon); None: the host's.
    pub netns: Option<&'a Path>,
    /// pid, ipc or uts namespaces shared rather than made: the host's (None) or the one at
    /// this path (another container's).
    pub shared: &'a [(&'static str, Option<std::path::PathBuf>)],
}

/// Every capability the daemon holds, for `--privileged`: a container cannot be given one its
/// runtime does not have (on some hosts root lacks CAP_SYS_RESOURCE).
pub fn all_caps() -> Vec<String> {
    let held = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapPrm:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    (0..64u32)
        .filter(|n| held & (1u64 << n) != 0)
        .filter_map(|n| berth_runtime::capability_name(n).map(|c| c.to_owned()))
        .collect()
}

pub fn build(c: &Container, paths: &Paths<'_>) -> Result<Value> {
    let hc = &c.host_config;
    let privileged = hc.privileged.unwrap_or(false);
    let tty = c.tty();
    let gpu = crate::gpu::grant(hc)?.unwrap_or_default();

    let (uid, gid, mut gids) = resolve_user(paths.rootfs, c.config.user.as_deref().unwrap_or(""))?;
    if c.extras.as_ref().is_some_and(|x| x.strict_groups) {
        gids.clear();
    }
    for g in hc.group_add.iter().flatten() {
        gids.push(resolve_group(paths.rootfs, g)?);
    }

    let mut env: Vec<String> = Vec::new();
    let user_env = c.config.env.clone().unwrap_or_default();
    if !user_env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_owned());
    }
    env.push(format!("HOSTNAME={}", hostname(c)));
    if tty {
        env.push("TERM=xterm".to_owned());
    }
    env.extend(user_env);
    env.extend(gpu.env.iter().cloned());
    for dir in &gpu.path {
        if let Some(p) = env.iter_mut().find(|e| e.starts_with("PATH=")) {
            p.push_str(&format!(":{}", dir.display()));
        }
    }

    let mut caps: Vec<String> = if privileged {
        all_caps()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    // Drops first, then adds: `--cap-drop ALL --cap-add X` leaves X (dockerd's order).
    for drop in hc.cap_drop.iter().flatten() {
        let drop = normalize_cap(drop);
        if drop == "CAP_ALL" {
            caps.clear();
        } else {
            caps.retain(|c| *c != drop);
        }
    }
    for add in hc.cap_add.iter().flatten() {
        let add = normalize_cap(add);
        if add == "CAP_ALL" {
            caps = all_caps();
        } else if !caps.contains(&add) {
            caps.push(add);
        }
    }

    let mut no_new_privs = false;
    let mut seccomp: Option<Value> = (!privileged).then(|| crate::seccomp::default_profile(&caps));
    for opt in hc.security_opt.iter().flatten() {
        let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), "true"));
        match k {
            "no-new-privileges" => no_new_privs = v != "false",
            "seccomp" if v == "unconfined" => seccomp = None,
            "seccomp" => {
                let data = std::fs::read(v).map_err(|e| {
                    ApiError::BadRequest(format!("opening seccomp profile ({v}) failed: {e}"))
                })?;
                seccomp = Some(serde_json::from_slice(&data).map_err(|e| {
                    ApiError::BadRequest(format!("decoding seccomp profile failed: {e}"))
                })?);
            }
            "label" | "apparmor" => {}
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid --security-opt: \"{opt}\""
                )))
            }
        }
    }

    let rlimits: Vec<Value> = hc
        .ulimits
        .iter()
        .flatten()
        .map(|u| {
            json!({
                "type": format!("RLIMIT_{}", u.name.clone().unwrap_or_default().to_uppercase()),
                "soft": u.soft.unwrap_or(0),
                "hard": u.hard.unwrap_or(0),
            })
        })
        .collect();

    let mut process = json!({
        "terminal": tty,
        "user": {"uid": uid, "gid": gid, "additionalGids": gids},
        "args": args(c),
        "env": env,
        "cwd": c.config.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into()),
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "noNewPrivileges": no_new_privs,
        "oomScoreAdj": hc.oom_score_adj.unwrap_or(0),
    });
    if !rlimits.is_empty() {
        process["rlimits"] = Value::Array(rlimits);
    }

    let shm_size = hc.shm_size.filter(|s| *s > 0).unwrap_or(64 << 20);
    let mut mounts = default_mounts(privileged, shm_size, paths.dir);
    for m in &c.mounts {
        mounts.push(mount_entry(m));
    }
    for dir in &gpu.binds {
        mounts.push(json!({"destination": dir, "type": "bind", "source": dir, "options": ["rbind", "ro", "nosuid", "nodev"]}));
    }
    for (dest, opts) in hc.tmpfs.iter().flatten() {
        let mut options = vec!["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()];
        options.extend(opts.split(',').filter(|o| !o.is_empty()).map(str::to_owned));
        mounts.push(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}),
        );
    }

    let mut namespaces = namespaces(
        paths
            .netns
            .map(|path| json!({"type": "network", "path": path})),
    );
    if c.userns.is_some() {
        namespaces.push(json!({"type": "user"}));
    }
    for (kind, path) in paths.shared {
        namespaces.retain(|n| n["type"] != *kind);
        if let Some(path) = path {
            namespaces.push(json!({"type": kind, "path": path}));
        }
    }
    // A hostname is set only in a UTS namespace of the container's own.
    let own_uts = !paths.shared.iter().any(|(kind, _)| *kind == "uts");

    let (devices, granted) = devices(hc, privileged, &gpu.devices)?;
    // Deny every device first, as dockerd's spec does: the runtime then adds the defaults
    // (null, zero, tty, …) and these grants. Without it the device cgroup allows all.
    let device_rules = if privileged {
        vec![json!({"allow": true, "access": "rwm"})]
    } else {
        let mut rules = vec![json!({"allow": false, "access": "rwm"})];
        rules.extend(granted);
        rules
    };

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": format!("{}/{}", paths.cgroup_parent, c.id),
        "resources": resources(hc, device_rules),
        "devices": devices,
        "maskedPaths": match &hc.masked_paths {
            Some(paths) => paths.clone(),
            None if privileged => vec![],
            None => MASKED.iter().map(|p| p.to_string()).collect(),
        },
        "readonlyPaths": match &hc.readonly_paths {
            Some(paths) => paths.clone(),
            None if privileged => vec![],
            None => READ_ONLY.iter().map(|p| p.to_string()).collect(),
        },
    });
    if let Some(sysctls) = &hc.sysctls {
        linux["sysctl"] = json!(sysctls);
    }
    if let Some(p) = rootfs_propagation(&c.mounts)? {
        linux["rootfsPropagation"] = json!(p);
    }
    if let Some(r) = c.userns {
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": r.uid, "size": r.size}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": r.gid, "size": r.size}]);
    }
    if let Some(profile) = seccomp {
        linux["seccomp"] = profile;
    }

    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": paths.rootfs, "readonly": hc.readonly_rootfs.unwrap_or(false) || c.is_infra()},
        "mounts": mounts,
        "linux": linux,
    });
    if own_uts {
        spec["hostname"] = json!(hostname(c));
    }
    if c.is_infra() {
        spec["annotations"] = json!({ berth_runtime::PAUSE_ANNOTATION: "true" });
    }
    if hc.init.unwrap_or(false) {
        with_init(&mut spec, &c.runtime)?;
    }
    Ok(spec)
}

/// `--init`: berth's runtime keeps its own init process as pid 1 (a spec annotation; nothing is
/// mounted into the container). Another runtime gets Docker's arrangement: the host's
/// docker-init (tini) bound read-only at /sbin/docker-init and put before the program.
fn with_init(spec: &mut Value, runtime: &str) -> Result<()> {
    if runtime == "berth" || runtime == "runc-berth" {
        spec["annotations"] = json!({ berth_runtime::INIT_ANNOTATION: "true" });
        return Ok(());
    }
    let Some(init) = DOCKER_INIT.iter().map(Path::new).find(|p| p.is_file()) else {
        return Err(ApiError::BadRequest(format!(
            "--init with runtime {runtime} needs docker-init on the host ({}); install Debian's tini package, or use berth's runtime",
            DOCKER_INIT.join(", ")
        )));
    };
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": init, "options": ["bind", "ro", "nosuid", "nodev"]}));
    }
    if let Some(args) = spec["process"]["args"].as_array_mut() {
        args.splice(0..0, [json!("/sbin/docker-init"), json!("--")]);
    }
    Ok(())
}

/// Where a host keeps a docker-init that runs in any image (statically linked).
const DOCKER_INIT: &[&str] = &[
    "/usr/libexec/docker/docker-init",
    "/usr/bin/docker-init",
    "/usr/bin/tini-static",
];

/// Docker's mounts of every container: /proc, /dev, /sys, cgroups, mqueue, shm, and the
/// /etc/resolv.conf, /etc/hostname and /etc/hosts binds of the files in `etc_dir`.
pub fn default_mounts(privileged: bool, shm_size: i64, etc_dir: &Path) -> Vec<Value> {
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
    ];
    for (file, dest) in [
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
    ] {
        mounts.push(json!({
            "destination": dest, "type": "bind",
            "source": etc_dir.join(file),
            "options": ["rbind", "rprivate"],
        }));
    }
    mounts
}

pub fn hostname(c: &Container) -> String {
    c.config
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| c.short_id().to_owned())
}

/// Entrypoint + Cmd, as the process's argv.
pub fn args(c: &Container) -> Vec<String> {
    let mut a = vec![c.path.clone()];
    a.extend(c.args.iter().cloned());
    a
}

fn normalize_cap(c: &str) -> String {
    let up = c.to_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

fn mount_entry(m: &MountRecord) -> Value {
    match m.kind.as_str() {
        "tmpfs" => {
            let mut options = vec!["nosuid".to_owned(), "nodev".to_owned()];
            options.extend(m.options.iter().cloned());
            if m.read_only {
                options.push("ro".into());
            }
            json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": options})
        }
        _ => {
            let mut options = vec!["rbind".to_owned()];
            // A bind's propagation, `rprivate` unless asked (dockerd's); a volume's none.
            if m.kind == "bind" {
                options.push(m.propagation().to_owned());
            }
            options.extend(
                m.options
                    .iter()
                    .filter(|o| !crate::container::PROPAGATION_MODES.contains(&o.as_str()))
                    .cloned(),
            );
            options.push(if m.read_only { "ro" } else { "rw" }.into());
            json!({"destination": m.destination, "type": "bind", "source": m.source, "options": options})
        }
    }
}

/// The root's propagation that the binds' need, as dockerd decides it: `shared` when a bind
/// is shared (its source must sit on a shared mount), else `rslave` when one is a slave (its
/// source on a shared or slave mount); None (the runtime's default) otherwise.
fn rootfs_propagation(mounts: &[MountRecord]) -> Result<Option<&'static str>> {
    let mut root = None;
    for m in mounts.iter().filter(|m| m.kind == "bind") {
        match m.propagation() {
            "shared" | "rshared" => {
                crate::mountinfo::ensure_shared(&m.source)?;
                root = Some("shared");
            }
            "slave" | "rslave" => {
                crate::mountinfo::ensure_shared_or_slave(&m.source)?;
                root = root.or(Some("rslave"));
            }
            _ => {}
        }
    }
    Ok(root)
}

/// The OCI `linux.resources` of a HostConfig's limits, without device rules (for update).
pub fn resources_of(hc: &HostConfig) -> Value {
    let mut r = resources(hc, Vec::new());
    if let Some(o) = r.as_object_mut() {
        o.remove("devices");
    }
    r
}

fn resources(hc: &HostConfig, device_rules: Vec<Value>) -> Value {
    let mut r = json!({ "devices": device_rules });
    let memory = hc.memory.filter(|m| *m > 0);
    if let Some(limit) = memory {
        let mut mem = json!({"limit": limit});
        match hc.memory_swap {
            // Docker: unset or 0 = twice the memory; -1 = unlimited.
            None | Some(0) => mem["swap"] = json!(limit * 2),
            Some(-1) => mem["swap"] = json!(-1),
            Some(s) => mem["swap"] = json!(s),
        }
        if let Some(res) = hc.memory_reservation.filter(|m| *m > 0) {
            mem["reservation"] = json!(res);
        }
        r["memory"] = mem;
    }
    let mut cpu = serde_json::Map::new();
    if let Some(shares) = hc.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(shares));
    }
    if let Some(nano) = hc.nano_cpus.filter(|n| *n > 0) {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(nano / 10_000));
    } else {
        if let Some(q) = hc.cpu_quota.filter(|q| *q > 0) {
            cpu.insert("quota".into(), json!(q));
        }
        if let Some(p) = hc.cpu_period.filter(|p| *p > 0) {
            cpu.insert("period".into(), json!(p));
        }
    }
    if let Some(cpus) = hc.cpuset_cpus.clone().filter(|s| !s.is_empty()) {
        cpu.insert("cpus".into(), json!(cpus));
    }
    if let Some(mems) = hc.cpuset_mems.clone().filter(|s| !s.is_empty()) {
        cpu.insert("mems".into(), json!(mems));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = hc.pids_limit.filter(|p| *p != 0) {
        r["pids"] = json!({"limit": p});
    }
    if let Some(w) = hc.blkio_weight.filter(|w| *w > 0) {
        r["blockIO"] = json!({"weight": w});
    }
    r
}

/// `--device HOST[:CONTAINER[:PERMS]]`: the node in the container and its cgroup rule.
fn devices(
    hc: &HostConfig,
    privileged: bool,
    gpus: &[std::path::PathBuf],
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    let mut add = |host: &str, inside: &str, perms: &str| -> Result<()> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::metadata(host).map_err(|e| {
            ApiError::BadRequest(format!(
                "error gathering device information while adding custom device \"{host}\": {e}"
            ))
        })?;
        let kind = if meta.file_type().is_char_device() {
            "c"
        } else if meta.file_type().is_block_device() {
            "b"
        } else {
            return Err(ApiError::BadRequest(format!(
                "error gathering device information while adding custom device \"{host}\": not a device node"
            )));
        };
        let rdev = meta.rdev();
        let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
        nodes.push(json!({
            "path": inside, "type": kind, "major": major, "minor": minor,
            "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid(),
        }));
        rules.push(
            json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": perms}),
        );
        Ok(())
    };
    for d in hc.devices.iter().flatten() {
        let host = d.path_on_host.clone().unwrap_or_default();
        let inside = d
            .path_in_container
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| host.clone());
        let perms = d
            .cgroup_permissions
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "rwm".into());
        add(&host, &inside, &perms)?;
    }
    for node in gpus {
        let p = node.to_string_lossy();
        add(&p, &p, "rwm")?;
    }
    if privileged {
        // Like dockerd: every device node of the host's /dev, top level.
        let named: Vec<String> = hc
            .devices
            .iter()
            .flatten()
            .filter_map(|d| d.path_in_container.clone())
            .collect();
        for entry in std::fs::read_dir("/dev").into_iter().flatten().flatten() {
            let name = entry.path().to_string_lossy().into_owned();
            if !named.contains(&name) {
                let _ = add(&name, &name, "rwm");
            }
        }
    }
    Ok((nodes, rules))
}

/// The namespaces of a container as Docker makes them: pid, ipc, uts and mount of its own,
/// `network` when it has one (a new one, or one to join by path), and a cgroup namespace
/// where the host is cgroup v2 only.
pub fn namespaces(network: Option<Value>) -> Vec<Value> {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    namespaces.extend(network);
    if cgroup_v2_only() {
        namespaces.push(json!({"type": "cgroup"}));
    }
    namespaces
}

fn cgroup_v2_only() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// `user`, `uid`, `user:group`, `uid:gid`: numbers and names looked up in the image, with the
/// user's supplementary groups from /etc/group, as dockerd does.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>)> {
    let u = berth_image::users::resolve_user(rootfs, user)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((u.uid, u.gid, u.additional_gids))
}

pub fn resolve_group(rootfs: &Path, g: &str) -> Result<u32> {
    berth_image::users::resolve_group(rootfs, g).map_err(|e| ApiError::BadRequest(e.to_string()))
}
