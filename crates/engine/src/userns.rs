//! User-namespace remapping (`berth daemon --userns-remap`, as dockerd's): each container runs
//! in a user namespace whose root is an unprivileged range of host ids, read from /etc/subuid
//! and /etc/subgid. The shared image snapshots stay owned by the host's ids on disk and are
//! id-mapped into that range when the container's overlay is mounted; the container's own
//! upper dir, volumes and /etc files belong to the range's root. `--userns=host` opts one
//! container out.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Result};

/// The host ids a remapped container's ids 0..size stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdRange {
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

/// The user Docker creates for `--userns-remap=default`; berth uses the same one, so a host
/// moving from dockerd keeps its ranges.
const DEFAULT_USER: &str = "dockremap";
/// How many ids a created range gets, and where ranges start (as Docker's).
const RANGE_SIZE: u64 = 65536;
const FIRST_ID: u64 = 100_000;

/// The daemon's remapping and the id-mapping namespaces made for it.
#[derive(Debug, Default)]
pub struct Remapping {
    pub range: Option<IdRange>,
    namespaces: Mutex<HashMap<IdRange, Arc<OwnedFd>>>,
}

impl Remapping {
    /// `--userns-remap` as dockerd reads it: `default`, `USER`, `USER:GROUP` or `UID:GID`.
    pub fn from_flag(flag: Option<&str>) -> std::result::Result<Remapping, String> {
        let range = match flag.filter(|f| !f.is_empty()) {
            None => None,
            Some(spec) => Some(resolve(spec)?),
        };
        Ok(Remapping {
            range,
            namespaces: Mutex::new(HashMap::new()),
        })
    }

    /// A user namespace with `range`'s mappings (kept for the daemon's life: id-mapped
    /// mounts take one, and making one costs a fork).
    pub fn namespace(&self, range: IdRange) -> Result<Arc<OwnedFd>> {
        let mut map = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fd) = map.get(&range) {
            return Ok(fd.clone());
        }
        let fd = Arc::new(
            berth_runtime::id_mapping_namespace(
                (0, range.uid, range.size),
                (0, range.gid, range.size),
            )
            .map_err(|e| ApiError::internal("make the user namespace for the remapping", e))?,
        );
        map.insert(range, fd.clone());
        Ok(fd)
    }
}

/// Reads the range of `spec`'s user and group from /etc/subuid and /etc/subgid, creating
/// `dockremap` and its ranges first for `default`.
fn resolve(spec: &str) -> std::result::Result<IdRange, String> {
    let (user, group) = if spec == "default" {
        ensure_default_user()?;
        (DEFAULT_USER.to_owned(), DEFAULT_USER.to_owned())
    } else {
        let (u, g) = spec.split_once(':').unwrap_or((spec, spec));
        let user = name_of("/etc/passwd", u)
            .ok_or_else(|| format!("--userns-remap: no user {u:?} in /etc/passwd"))?;
        let group = match spec.split_once(':') {
            Some(_) => name_of("/etc/group", g)
                .ok_or_else(|| format!("--userns-remap: no group {g:?} in /etc/group"))?,
            // `USER` alone: the group of the same name, as dockerd.
            None => user.clone(),
        };
        (user, group)
    };
    let (uid, ucount) = first_range("/etc/subuid", &user).ok_or_else(|| {
        format!("Can't create ID mappings: No subuid ranges found for user {user:?}")
    })?;
    let (gid, gcount) = first_range("/etc/subgid", &group).ok_or_else(|| {
        format!("Can't create ID mappings: No subgid ranges found for group {group:?}")
    })?;
    let size = ucount.min(gcount);
    let fits = |start: u32| u64::from(start) + u64::from(size) <= u64::from(u32::MAX);
    if size == 0 || !fits(uid) || !fits(gid) {
        return Err(format!(
            "--userns-remap: the ranges of {user}:{group} in /etc/subuid and /etc/subgid are empty or too large"
        ));
    }
    Ok(IdRange { uid, gid, size })
}

/// The name of `who` (a name or a number) in a passwd- or group-format file.
fn name_of(file: &str, who: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && (f[0] == who || f[2] == who)).then(|| f[0].to_owned())
    })
}

/// The first `name:start:count` of a subordinate-id file.
fn first_range(file: &str, name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        if f.next()? != name {
            return None;
        }
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

/// Makes the `dockremap` user and group and gives them a range past every range in use, as
/// dockerd does on its first start with `--userns-remap=default`.
fn ensure_default_user() -> std::result::Result<(), String> {
    if name_of("/etc/passwd", DEFAULT_USER).is_none() {
        let status = std::process::Command::new("useradd")
            .args(["--system", "--user-group", "--shell", "/bin/false"])
            .arg(DEFAULT_USER)
            .status()
            .map_err(|e| format!("--userns-remap=default: run useradd: {e}"))?;
        if !status.success() {
            return Err(format!(
                "--userns-remap=default: useradd {DEFAULT_USER} failed: {status}"
            ));
        }
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        if first_range(file, DEFAULT_USER).is_some() {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let start = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.trim().split(':').collect();
                let start: u64 = f.get(1)?.parse().ok()?;
                let count: u64 = f.get(2)?.parse().ok()?;
                Some(start + count)
            })
            .fold(FIRST_ID, u64::max);
        let mut new = text.clone();
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(&format!("{DEFAULT_USER}:{start}:{RANGE_SIZE}\n"));
        crate::files::write_atomic(std::path::Path::new(file), new.as_bytes())
            .map_err(|e| format!("--userns-remap=default: write {file}: {e}"))?;
    }
    Ok(())
}

/// dockerd's refusals of what a remapped container cannot have.
pub fn check_compatible(hc: &bollard_stubs::models::HostConfig) -> Result<()> {
    if hc.privileged.unwrap_or(false) {
        return Err(ApiError::BadRequest("privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode".into()));
    }
    if hc.network_mode.as_deref() == Some("host") {
        return Err(ApiError::BadRequest(
            "cannot share the host's network namespace when user namespaces are enabled".into(),
        ));
    }
    if hc.pid_mode.as_deref() == Some("host") {
        return Err(ApiError::BadRequest(
            "cannot share the host PID namespace when user namespaces are enabled".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    #[test]
    fn ranges_and_names_are_read_as_shadow_utils_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("subuid");
        std::fs::write(&sub, "alice:100000:65536\nbob:165536:1000\n").unwrap();
        let sub = sub.to_str().unwrap();
        assert_eq!(first_range(sub, "bob"), Some((165536, 1000)));
        assert_eq!(first_range(sub, "carol"), None);
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0::/root:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n",
        )
        .unwrap();
        let passwd = passwd.to_str().unwrap();
        assert_eq!(name_of(passwd, "1001").as_deref(), Some("bob"));
        assert_eq!(name_of(passwd, "bob").as_deref(), Some("bob"));
        assert_eq!(name_of(passwd, "nobody"), None);
    }
}
