//! What the runtime remembers of a container between commands (`<root>/<id>/state.json`), and how
//! its status is derived from the live system rather than trusted from the file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};

/// The lifecycle states of the runtime-spec, plus `paused` (a frozen cgroup) as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The persisted record of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// The init's pid in the runtime's pid namespace.
    pub pid: i32,
    /// The init's start time in clock ticks since boot (/proc/PID/stat field 22): tells the
    /// init from a later process that reused its pid.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub(crate) cgroup: Cgroup,
    /// The spec the container was created from: `delete` runs its poststop hooks and `exec`
    /// reads its namespaces from it, even if the bundle changed since.
    pub(crate) config: Spec,
}

/// The document `state` and `list --format json` print: the runtime-spec's state plus the
/// fields runc adds, in runc's key order (scripts and tests compare the text).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDocument<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty", serialize_with = "sorted")]
    pub annotations: &'a HashMap<String, String>,
    pub owner: &'a str,
}

/// The state a hook reads on its stdin and a seccomp agent receives: exactly the runtime-spec's
/// state object (runc's too), the pid left out once there is none.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SpecState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    #[serde(skip_serializing_if = "is_zero")]
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "HashMap::is_empty", serialize_with = "sorted")]
    pub annotations: &'a HashMap<String, String>,
}

/// The runtime-spec version this runtime implements: what it reports as `ociVersion` in state
/// documents, as runc reports its own.
pub(crate) const SPEC_VERSION: &str = oci_spec::runtime::VERSION;

fn is_zero(pid: &i32) -> bool {
    *pid == 0
}

/// Annotations in key order, as Go's encoding/json writes a map.
fn sorted<S: serde::Serializer>(
    map: &&HashMap<String, String>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    let ordered: std::collections::BTreeMap<&String, &String> = map.iter().collect();
    ordered.serialize(serializer)
}

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const EXEC_FIFO: &str = "exec.fifo";

impl ContainerState {
    pub(crate) fn read(dir: &Path, id: &str) -> Result<ContainerState> {
        let path = dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_owned()))
            }
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::CorruptState {
            id: id.to_owned(),
            path,
            reason: e.to_string(),
        })
    }

    /// Writes the state atomically: a reader sees the old file or the new one, never half.
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::CorruptState {
            id: self.id.clone(),
            path: dir.join(STATE_FILE),
            reason: e.to_string(),
        })?;
        // The spec inside holds the process's environment: root's alone (docs/security.md).
        write_atomic(&dir.join(STATE_FILE), &bytes, 0o600)
    }

    /// The `process` of the spec the container was created from: `exec`'s template.
    pub fn config_process(&self) -> Option<&oci_spec::runtime::Process> {
        self.config.process().as_ref()
    }

    /// Whether the recorded init is still the process with that pid, and not a zombie.
    pub(crate) fn init_alive(&self) -> bool {
        match process_stat(self.pid) {
            Some((state, start)) => start == self.pid_start_time && state != 'Z' && state != 'X',
            None => false,
        }
    }
}

/// Makes the state root (and missing parents) private to root, 0700 as runc makes its own; an
/// existing directory is left as it is (it may be the caller's own). Each container's
/// directory below is 0700 in any case.
pub(crate) fn private_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| Error::io(format!("create state root {}", root.display()), e))
}

/// Writes `bytes` to `path` through a temporary file and a rename; the file has `mode` before
/// any byte is in it (a stale temporary file of an older, wider mode included).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)
    };
    write().map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::io(format!("rename {} to {}", tmp.display(), path.display()), e))
}

/// The state letter and start time of a process, from /proc/PID/stat.
pub(crate) fn process_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // starttime is field 22 of the whole line, the 20th after the state.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The time now as RFC 3339 in UTC with nanoseconds, as runc writes `created`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }

    #[test]
    fn own_process_stat_is_readable() {
        let (state, start) = process_stat(std::process::id() as i32).expect("stat of self");
        assert!("RS".contains(state), "{state}");
        assert!(start > 0);
    }
}
