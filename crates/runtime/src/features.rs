//! The runtime-spec `features` document (features.md): what berth implements, as `runc features`
//! prints it for runc. Callers (containerd, CRI-O, Docker) read it to decide which config.json
//! fields they may use, so it must only claim what the runtime's code actually handles.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{
    Apparmor, Arch, Cgroup, Features, IDMap, IntelRdt, LinuxFeature, LinuxNamespaceType,
    LinuxSeccompAction, MemoryPolicy, MountExtensions, NetDevices, Seccomp, Selinux, VERSION,
};

const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
const SELINUXFS: &str = "/sys/fs/selinux";

/// The hooks berth runs, in the order of the container's lifecycle.
const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The mount options (the generic ones of mount(8), propagation, the recursive `r*` forms that
/// go through mount_setattr(2), and the OCI extensions) that berth's mount code interprets
/// itself rather than passing to the filesystem as data. Sorted, as runc prints them.
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Every capability up to CAP_CHECKPOINT_RESTORE, in kernel order.
const CAPABILITIES: &[&str] = &crate::capabilities::NAMES;

const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

const SECCOMP_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// set_mempolicy(2)'s modes and mode flags, as `linux.memoryPolicy` names them.
const MEMORY_POLICY_MODES: &[&str] = &[
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
];
const MEMORY_POLICY_FLAGS: &[&str] = &[
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

/// The features document for this berth `version`. AppArmor and SELinux are reported as enabled
/// when the running kernel has them on, since berth applies a profile or label only there.
pub fn features(version: &str) -> Features {
    let mut cgroup = Cgroup::default();
    cgroup
        .set_v1(Some(true))
        .set_v2(Some(true))
        .set_systemd(Some(false))
        .set_systemd_user(Some(false))
        .set_rdma(Some(false));

    let mut seccomp = Seccomp::default();
    seccomp
        .set_enabled(Some(true))
        .set_actions(Some(vec![
            LinuxSeccompAction::ScmpActAllow,
            LinuxSeccompAction::ScmpActErrno,
            LinuxSeccompAction::ScmpActKill,
            LinuxSeccompAction::ScmpActKillProcess,
            LinuxSeccompAction::ScmpActKillThread,
            LinuxSeccompAction::ScmpActLog,
            LinuxSeccompAction::ScmpActNotify,
            LinuxSeccompAction::ScmpActTrace,
            LinuxSeccompAction::ScmpActTrap,
        ]))
        .set_operators(Some(strings(SECCOMP_OPERATORS)))
        .set_archs(Some(vec![
            Arch::ScmpArchX86,
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX32,
            Arch::ScmpArchAarch64,
            Arch::ScmpArchArm,
        ]))
        .set_known_flags(Some(strings(SECCOMP_FLAGS)))
        .set_supported_flags(Some(strings(SECCOMP_FLAGS)));

    let mut apparmor = Apparmor::default();
    apparmor.set_enabled(Some(apparmor_enabled(Path::new(APPARMOR_ENABLED))));
    let mut selinux = Selinux::default();
    selinux.set_enabled(Some(Path::new(SELINUXFS).exists()));
    let mut intel_rdt = IntelRdt::default();
    intel_rdt.set_enabled(Some(false));
    let mut idmap = IDMap::default();
    idmap.set_enabled(Some(true));
    let mut mount_extensions = MountExtensions::default();
    mount_extensions.set_idmap(Some(idmap));
    let mut memory_policy = MemoryPolicy::default();
    memory_policy
        .set_modes(Some(strings(MEMORY_POLICY_MODES)))
        .set_flags(Some(strings(MEMORY_POLICY_FLAGS)));
    let mut net_devices = NetDevices::default();
    net_devices.set_enabled(Some(true));

    let mut linux = LinuxFeature::default();
    linux
        .set_namespaces(Some(vec![
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Time,
            LinuxNamespaceType::User,
            LinuxNamespaceType::Uts,
        ]))
        .set_capabilities(Some(strings(CAPABILITIES)))
        .set_cgroup(Some(cgroup))
        .set_seccomp(Some(seccomp))
        .set_apparmor(Some(apparmor))
        .set_selinux(Some(selinux))
        .set_intel_rdt(Some(intel_rdt))
        .set_memory_policy(Some(memory_policy))
        .set_net_devices(Some(net_devices))
        .set_mount_extensions(Some(mount_extensions));

    let annotations = HashMap::from([
        // Through the criu program (checkpoint.rs); whether the kernel lets criu work is
        // criu's to say (`criu check`).
        (
            "org.opencontainers.runc.checkpoint.enabled".to_owned(),
            "true".to_owned(),
        ),
        ("io.github.berth.version".to_owned(), version.to_owned()),
    ]);

    let mut features = Features::default();
    features
        .set_oci_version_min("1.0.0".to_owned())
        .set_oci_version_max(VERSION.to_owned())
        .set_hooks(Some(strings(HOOKS)))
        .set_mount_options(Some(strings(MOUNT_OPTIONS)))
        .set_linux(Some(linux))
        .set_annotations(Some(annotations));
    features
}

/// The kernel reports "Y" when AppArmor is built in and switched on; a missing file means the
/// module is absent, which is as good as off.
fn apparmor_enabled(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|content| content.starts_with(b"Y"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::Capability;
    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn features_serialize_in_runtime_spec_camel_case() {
        let value = serde_json::to_value(features("0.1.0")).expect("serialize");
        assert_eq!(value["ociVersionMin"], "1.0.0");
        assert_eq!(value["ociVersionMax"], VERSION);
        assert_eq!(
            value["hooks"],
            json!([
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ])
        );
        let options = value["mountOptions"].as_array().expect("mountOptions");
        for option in [
            "bind",
            "rbind",
            "rro",
            "nosymfollow",
            "tmpcopyup",
            "idmap",
            "ridmap",
        ] {
            assert!(options.contains(&json!(option)), "{option}");
        }
        assert_eq!(
            value["annotations"],
            json!({
                "org.opencontainers.runc.checkpoint.enabled": "true",
                "io.github.berth.version": "0.1.0"
            })
        );

        let linux = &value["linux"];
        assert_eq!(
            linux["namespaces"],
            json!(["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"])
        );
        assert_eq!(linux["capabilities"].as_array().map(Vec::len), Some(41));
        assert_eq!(
            linux["cgroup"],
            json!({"v1": true, "v2": true, "systemd": false, "systemdUser": false,
                   "rdma": false})
        );
        let seccomp = &linux["seccomp"];
        assert_eq!(seccomp["enabled"], true);
        assert_eq!(
            seccomp["actions"],
            json!([
                "SCMP_ACT_ALLOW",
                "SCMP_ACT_ERRNO",
                "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_KILL_THREAD",
                "SCMP_ACT_LOG",
                "SCMP_ACT_NOTIFY",
                "SCMP_ACT_TRACE",
                "SCMP_ACT_TRAP"
            ])
        );
        assert_eq!(seccomp["operators"].as_array().map(Vec::len), Some(7));
        assert_eq!(
            seccomp["archs"],
            json!([
                "SCMP_ARCH_X86",
                "SCMP_ARCH_X86_64",
                "SCMP_ARCH_X32",
                "SCMP_ARCH_AARCH64",
                "SCMP_ARCH_ARM"
            ])
        );
        let flags = json!([
            "SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
        ]);
        assert_eq!(seccomp["knownFlags"], flags);
        assert_eq!(seccomp["supportedFlags"], flags);
        assert!(linux["apparmor"]["enabled"].is_boolean());
        assert!(linux["selinux"]["enabled"].is_boolean());
        assert_eq!(linux["intelRdt"], json!({"enabled": false}));
        assert_eq!(
            linux["memoryPolicy"]["modes"].as_array().map(Vec::len),
            Some(7)
        );
        assert_eq!(linux["netDevices"], json!({"enabled": true}));
        assert_eq!(
            linux["mountExtensions"],
            json!({"idmap": {"enabled": true}})
        );
    }

    #[test]
    fn features_round_trip() {
        let features = features("0.1.0");
        let text = serde_json::to_string(&features).expect("serialize");
        let back: Features = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, features);
    }

    #[test]
    fn capabilities_are_runtime_spec_names() {
        for name in CAPABILITIES {
            let parsed: Result<Capability, _> = serde_json::from_value(Value::from(*name));
            assert!(parsed.is_ok(), "{name}");
        }
    }

    #[test]
    fn mount_options_are_sorted_and_unique() {
        assert!(MOUNT_OPTIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn apparmor_is_enabled_only_when_the_kernel_says_y() {
        let dir = std::env::temp_dir().join(format!("berth-features-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("enabled");
        std::fs::write(&file, "Y\n").expect("write");
        let on = apparmor_enabled(&file);
        std::fs::write(&file, "N\n").expect("write");
        let off = apparmor_enabled(&file);
        let missing = apparmor_enabled(&dir.join("missing"));
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(on);
        assert!(!off);
        assert!(!missing);
    }
}
