//! Reading a bundle's config.json and refusing, before anything is created, what cannot work.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::error::{Error, Result};

/// A bundle whose config.json parsed and passed validation, with its rootfs made absolute.
#[derive(Debug)]
pub(crate) struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    /// Reads and checks `dir/config.json`; what runc would warn about and go on (an unknown
    /// capability) goes to `warn`.
    pub(crate) fn load(dir: &Path, warn: &mut dyn FnMut(String)) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| Error::io(format!("bundle directory {}", dir.display()), e))?;
        let config = dir.join("config.json");
        let spec: Spec = read_json(&config, |doc| {
            if let Some(process) = doc.get_mut("process") {
                lenient_process(process, warn);
            }
        })?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::InvalidConfig("root is missing".into()))?;
        let rootfs = dir.join(root.path());
        if !rootfs.is_dir() {
            return Err(Error::MissingRootfs { path: rootfs });
        }
        let rootfs = std::fs::canonicalize(&rootfs)
            .map_err(|e| Error::io(format!("rootfs {}", rootfs.display()), e))?;
        validate(&spec)?;
        Ok(Bundle { dir, rootfs, spec })
    }
}

/// Reads a runtime-spec `process` object, as `exec --process FILE` takes. Unknown capabilities
/// are dropped with a warning on stderr, as runc does.
pub fn load_process(path: &Path) -> Result<Process> {
    load_process_reporting(path, &mut |m| eprintln!("berth: warning: {m}"))
}

/// [`load_process`], its warnings going to `warn`.
pub fn load_process_reporting(path: &Path, warn: &mut dyn FnMut(String)) -> Result<Process> {
    let process: Process = read_json(path, |doc| lenient_process(doc, warn))?;
    validate_process(&process)?;
    Ok(process)
}

/// Parses a JSON file, letting `adjust` first bring the document to what the typed model
/// takes.
fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    adjust: impl FnOnce(&mut serde_json::Value),
) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| Error::ReadConfig {
        path: path.to_owned(),
        source,
    })?;
    let parse_error = |source| Error::ParseConfig {
        path: path.to_owned(),
        source,
    };
    let mut doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(parse_error)?;
    adjust(&mut doc);
    serde_json::from_value(doc).map_err(parse_error)
}

/// What runc accepts in a `process` object and the typed model would refuse: a missing `user`
/// (runc's Go zero value: uid 0, gid 0), and capability names this runtime does not know
/// (runc warns "ignoring unknown or unavailable capabilities" and goes on).
fn lenient_process(process: &mut serde_json::Value, warn: &mut dyn FnMut(String)) {
    let Some(object) = process.as_object_mut() else {
        return;
    };
    object
        .entry("user")
        .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    let Some(sets) = object
        .get_mut("capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    let mut unknown: Vec<String> = Vec::new();
    for list in sets.values_mut().filter_map(|l| l.as_array_mut()) {
        list.retain(|name| {
            let known = name
                .as_str()
                .is_some_and(|n| crate::capabilities::NAMES.contains(&n));
            if !known {
                let text = name
                    .as_str()
                    .map_or_else(|| name.to_string(), str::to_owned);
                if !unknown.contains(&text) {
                    unknown.push(text);
                }
            }
            known
        });
    }
    if !unknown.is_empty() {
        warn(format!(
            "ignoring unknown or unavailable capabilities: [{}]",
            unknown.join(" ")
        ));
    }
}

pub(crate) fn validate_process(process: &Process) -> Result<()> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::InvalidConfig(
            "process.args is empty: give the program to run".into(),
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::InvalidConfig(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        )));
    }
    for var in process.env().as_deref().unwrap_or_default() {
        if !var.contains('=') {
            return Err(Error::InvalidConfig(format!(
                "process.env entry {var:?} is not of the form NAME=VALUE"
            )));
        }
    }
    Ok(())
}

fn validate(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidConfig("process is missing".into()))?;
    validate_process(process)?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::InvalidConfig("linux is missing".into()))?;

    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    for ns in namespaces {
        if !seen.insert(ns.typ()) {
            return Err(Error::InvalidConfig(format!(
                "namespace {} is listed twice",
                ns.typ()
            )));
        }
        if let Some(path) = ns.path() {
            if !path.exists() {
                return Err(Error::InvalidConfig(format!(
                    "namespace path {} does not exist",
                    path.display()
                )));
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    if !has(LinuxNamespaceType::Mount) {
        refuse_mounts_without_namespace(spec, linux)?;
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(Error::InvalidConfig(
            "hostname is set but there is no private uts namespace".into(),
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        return Err(Error::InvalidConfig(
            "domainname is set but there is no private uts namespace".into(),
        ));
    }
    let new_userns = namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        && linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_userns && !has_maps {
        return Err(Error::InvalidConfig(
            "a new user namespace needs linux.uidMappings and linux.gidMappings".into(),
        ));
    }
    if !has(LinuxNamespaceType::User) && has_maps {
        return Err(Error::InvalidConfig(
            "uidMappings/gidMappings are given but there is no user namespace".into(),
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|o| !o.is_empty())
        && !has(LinuxNamespaceType::Time)
    {
        return Err(Error::InvalidConfig(
            "timeOffsets are given but there is no time namespace".into(),
        ));
    }
    for key in linux.sysctl().as_ref().into_iter().flat_map(|s| s.keys()) {
        if key == "kernel.hostname" {
            return Err(Error::InvalidConfig(format!(
                "sysctl {key:?} is not allowed as it conflicts with the OCI \"hostname\" field"
            )));
        }
        let needs = sysctl_namespace(key).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "sysctl {key:?} is not namespaced: setting it would change the host"
            ))
        })?;
        if !has(needs) {
            return Err(Error::InvalidConfig(format!(
                "sysctl {key:?} needs a private {needs} namespace"
            )));
        }
        // A namespace joined by path may be the host's own (`--network host` as a path):
        // the sysctl would change the host.
        let joined = namespaces
            .iter()
            .find(|ns| ns.typ() == needs)
            .and_then(|ns| ns.path().as_ref());
        if let Some(path) = joined {
            if is_own_namespace(needs, path) {
                return Err(Error::InvalidConfig(format!(
                    "sysctl {key:?} not allowed in the host's {needs} namespace ({})",
                    path.display()
                )));
            }
        }
    }
    if let Some(devices) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) {
        if !has(LinuxNamespaceType::Network) {
            return Err(Error::InvalidConfig(
                "linux.netDevices needs a network namespace of the container's own: moving host \
                 devices without one would move them nowhere"
                    .into(),
            ));
        }
        for (host, device) in devices {
            for name in std::iter::once(host.as_str()).chain(device.name().as_deref()) {
                let valid = !name.is_empty()
                    && name.len() < 16
                    && name != "."
                    && name != ".."
                    && !name.contains(['/', ':'])
                    && !name.contains(char::is_whitespace);
                if !valid {
                    return Err(Error::InvalidConfig(format!(
                        "linux.netDevices: {name:?} is not a network device name (1 to 15 \
                         characters, no '/', ':' or spaces)"
                    )));
                }
            }
        }
    }
    for mount in spec.mounts().as_deref().unwrap_or_default() {
        if !mount.destination().is_absolute() {
            return Err(Error::InvalidConfig(format!(
                "mount destination {:?} must be an absolute path",
                mount.destination()
            )));
        }
    }
    Ok(())
}

/// Without a mount namespace every mount would be made in the host's: runc does so (its
/// container's /proc, /dev and /sys land on the host, under the rootfs, and stay there). berth
/// refuses such a config, naming what would be mounted, and runs one that asks for no mount
/// (the rootfs is then entered by chroot alone).
fn refuse_mounts_without_namespace(spec: &Spec, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let mut wanted = Vec::new();
    if let Some(first) = spec.mounts().as_deref().and_then(<[_]>::first) {
        wanted.push(format!(
            "mounts (such as {})",
            first.destination().display()
        ));
    }
    if linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()) {
        wanted.push("linux.maskedPaths".to_owned());
    }
    if linux
        .readonly_paths()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        wanted.push("linux.readonlyPaths".to_owned());
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        wanted.push("root.readonly".to_owned());
    }
    if linux
        .rootfs_propagation()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        wanted.push("linux.rootfsPropagation".to_owned());
    }
    if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        wanted.push("linux.devices".to_owned());
    }
    if wanted.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidConfig(format!(
        "linux.namespaces has no mount namespace, but the config asks for {}: without a \
         private mount namespace they would be made in the host's mounts. Add {{\"type\": \
         \"mount\"}} to linux.namespaces, or ask for no mount at all",
        wanted.join(", ")
    )))
}

/// Whether the namespace at `path` is the runtime's own (the host's) of that kind.
fn is_own_namespace(kind: LinuxNamespaceType, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let name = match kind {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        _ => return false,
    };
    match (
        std::fs::metadata(path),
        std::fs::metadata(format!("/proc/self/ns/{name}")),
    ) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Which namespace isolates a sysctl, as the kernel scopes them (the same list runc allows).
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}
