//! The config.json `berth spec` writes: runc's example spec (`runc spec`), with berth's hostname,
//! and its rootless variant (`runc spec --rootless`).

use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount,
    PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec, User, VERSION,
};

/// A container that runs `sh` as root on a terminal in `./rootfs` (read-only), with runc's
/// defaults: the three capabilities Docker also keeps at minimum, 1024 open files, no new
/// privileges, its own pid, network, ipc, uts and mount namespaces (and cgroup namespace on a
/// host with cgroup v2 only, as runc adds it), no device access, and /proc and /sys paths that
/// leak host information masked or read-only.
pub fn default_spec() -> Spec {
    spec_for(cgroup2_only())
}

/// Whether the host mounts cgroup v2 alone at /sys/fs/cgroup.
fn cgroup2_only() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn spec_for(cgroupns: bool) -> Spec {
    let mut spec = Spec::default();
    spec.set_version(VERSION.to_owned())
        .set_root(Some(root()))
        .set_process(Some(process()))
        .set_hostname(Some("berth".to_owned()))
        .set_domainname(None)
        .set_mounts(Some(mounts()))
        .set_hooks(None)
        .set_annotations(None)
        .set_linux(Some(linux(cgroupns)));
    spec
}

/// [`default_spec`] turned into one an unprivileged user can run, as `runc spec --rootless`
/// does: a user namespace mapping root in the container to `host_uid`/`host_gid`, no network
/// namespace (an unprivileged user could not give it an interface), /sys bind-mounted from the
/// host (sysfs cannot be mounted without owning the network namespace), no `uid=`/`gid=` mount
/// options (those ids do not exist in the one-id user namespace), and no cgroup resources.
pub fn rootless_spec(host_uid: u32, host_gid: u32) -> Spec {
    let mut spec = default_spec();
    if let Some(linux) = spec.linux_mut() {
        let mut namespaces: Vec<LinuxNamespace> = linux
            .namespaces()
            .iter()
            .flatten()
            .filter(|ns| {
                !matches!(
                    ns.typ(),
                    LinuxNamespaceType::Network | LinuxNamespaceType::User
                )
            })
            .cloned()
            .collect();
        namespaces.push(namespace(LinuxNamespaceType::User));
        linux
            .set_namespaces(Some(namespaces))
            .set_uid_mappings(Some(vec![id_mapping(host_uid)]))
            .set_gid_mappings(Some(vec![id_mapping(host_gid)]))
            .set_resources(None);
    }
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            if m.destination() == &PathBuf::from("/sys") {
                *m = mount(
                    "/sys",
                    "none",
                    "/sys",
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                );
                continue;
            }
            if let Some(options) = m.options_mut() {
                options.retain(|o| !o.starts_with("uid=") && !o.starts_with("gid="));
            }
        }
    }
    spec
}

fn root() -> Root {
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"))
        .set_readonly(Some(true));
    root
}

fn process() -> Process {
    let defaults: Capabilities = [
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
    ]
    .into_iter()
    .collect();
    let mut capabilities = LinuxCapabilities::default();
    capabilities
        .set_bounding(Some(defaults.clone()))
        .set_effective(Some(defaults.clone()))
        .set_permitted(Some(defaults))
        .set_inheritable(None)
        .set_ambient(None);

    // PosixRlimit has no setters, only a builder; it cannot fail: every field is given.
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .expect("all PosixRlimit fields are set");

    let mut process = Process::default();
    process
        .set_terminal(Some(true))
        .set_console_size(None)
        .set_user(User::default())
        .set_args(Some(vec!["sh".to_owned()]))
        .set_env(Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            "TERM=xterm".to_owned(),
        ]))
        .set_cwd(PathBuf::from("/"))
        .set_capabilities(Some(capabilities))
        .set_rlimits(Some(vec![nofile]))
        .set_no_new_privileges(Some(true));
    process
}

fn mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

fn linux(cgroupns: bool) -> Linux {
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false).set_access(Some("rwm".to_owned()));
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(vec![deny_all]));

    let mut linux = Linux::default();
    linux
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_resources(Some(resources))
        .set_namespaces(Some(
            [
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Cgroup,
            ]
            .into_iter()
            .filter(|t| cgroupns || *t != LinuxNamespaceType::Cgroup)
            .map(namespace)
            .collect(),
        ))
        .set_masked_paths(Some(strings(&[
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
            // Power readings let a container recover secrets from other processes (the
            // "Platypus" RAPL side channel).
            "/sys/devices/virtual/powercap",
        ])))
        .set_readonly_paths(Some(strings(&[
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ])));
    linux
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut mount = Mount::default();
    mount
        .set_destination(PathBuf::from(destination))
        .set_typ(Some(typ.to_owned()))
        .set_source(Some(PathBuf::from(source)))
        .set_options((!options.is_empty()).then(|| strings(options)));
    mount
}

fn namespace(typ: LinuxNamespaceType) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ).set_path(None);
    ns
}

fn id_mapping(host_id: u32) -> LinuxIdMapping {
    // LinuxIdMapping has no setters, only a builder; it cannot fail: every field is given.
    LinuxIdMappingBuilder::default()
        .host_id(host_id)
        .container_id(0u32)
        .size(1u32)
        .build()
        .expect("all LinuxIdMapping fields are set")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// The capability sets serialize from a HashSet, in no fixed order; sort them to compare.
    fn to_json(spec: &Spec) -> Value {
        let mut value = serde_json::to_value(spec).expect("serialize");
        if let Some(Value::Object(sets)) = value.pointer_mut("/process/capabilities") {
            for set in sets.values_mut() {
                if let Value::Array(caps) = set {
                    caps.sort_by_key(|c| c.as_str().map(str::to_owned));
                }
            }
        }
        value
    }

    fn runc_example() -> Value {
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        json!({
            "ociVersion": VERSION,
            "process": {
                "terminal": true,
                "user": {"uid": 0, "gid": 0},
                "args": ["sh"],
                "env": [
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"
                ],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "berth",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                             "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                    {"type": "mount"}, {"type": "cgroup"}
                ],
                "maskedPaths": [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
                    "/sys/devices/virtual/powercap"
                ],
                "readonlyPaths": [
                    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
                ]
            }
        })
    }

    #[test]
    fn default_spec_is_runcs_example_with_berths_hostname() {
        assert_eq!(to_json(&spec_for(true)), runc_example());
        // On a host with cgroup v1 (or hybrid), runc adds no cgroup namespace.
        let mut v1 = runc_example();
        if let Some(list) = v1["linux"]["namespaces"].as_array_mut() {
            list.retain(|ns| ns["type"] != "cgroup");
        }
        assert_eq!(to_json(&spec_for(false)), v1);
        let host = to_json(&default_spec());
        assert_eq!(host, if cgroup2_only() { runc_example() } else { v1 });
    }

    #[test]
    fn rootless_spec_maps_root_to_the_host_user_and_drops_what_needs_privilege() {
        let mut expected = runc_example();
        let linux = &mut expected["linux"];
        linux["namespaces"] = if cgroup2_only() {
            json!([
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "cgroup"}, {"type": "user"}
            ])
        } else {
            json!([
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                {"type": "user"}
            ])
        };
        linux["uidMappings"] = json!([{"hostID": 1234, "containerID": 0, "size": 1}]);
        linux["gidMappings"] = json!([{"hostID": 5678, "containerID": 0, "size": 1}]);
        linux
            .as_object_mut()
            .expect("linux object")
            .remove("resources");
        let mounts = &mut expected["mounts"];
        mounts[2]["options"] = json!([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620"
        ]);
        mounts[5] = json!({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});

        assert_eq!(to_json(&rootless_spec(1234, 5678)), expected);
    }

    #[test]
    fn specs_round_trip_through_config_json() {
        for spec in [default_spec(), rootless_spec(1000, 1000)] {
            let text = serde_json::to_string_pretty(&spec).expect("serialize");
            let back: Spec = serde_json::from_str(&text).expect("parse");
            assert_eq!(back, spec);
        }
    }
}
