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
    pub(crate) fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| Error::io(format!("bundle directory {}", dir.display()), e))?;
        let config = dir.join("config.json");
        let spec: Spec = read_json(&config)?;
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

/// Reads a runtime-spec `process` object, as `exec --process FILE` takes.
pub fn load_process(path: &Path) -> Result<Process> {
    let process: Process = read_json(path)?;
    validate_process(&process)?;
    Ok(process)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| Error::ReadConfig {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| Error::ParseConfig {
        path: path.to_owned(),
        source,
    })
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
        return Err(Error::InvalidConfig(
            "a mount namespace is required (berth never changes the host's mounts)".into(),
        ));
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
    }
    for mount in spec.mounts().as_deref().unwrap_or_default() {
        if !mount.destination().is_absolute() {
            return Err(Error::InvalidConfig(format!(
                "mount destination {:?} must be an absolute path",
                mount.destination()
            )));
        }
    }
    if let Some(seccomp) = linux.seccomp() {
        if seccomp.listener_path().is_some() {
            return Err(Error::Unsupported(
                "linux.seccomp.listenerPath: berth does not hand seccomp notify fds to an agent"
                    .into(),
            ));
        }
    }
    Ok(())
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
