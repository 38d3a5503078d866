//! What the monitor knows of its container, kept in `<dir>/state.json` so that a restarted
//! daemon finds it again. Rewritten atomically at every change.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's `State.Status` values that a monitor can be in.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Restarting,
    Exited,
}

/// Docker's zero time, for `finished_at` of a container that never finished.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub(crate) const STATE_FILE: &str = "state.json";

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MonitorState {
    pub status: Status,
    /// The container's init, in the host's pid namespace; 0 when none runs.
    pub pid: i32,
    pub monitor_pid: i32,
    /// The monitor's start time (/proc/PID/stat field 22): tells it from a reused pid.
    #[serde(default)]
    pub monitor_start_time: u64,
    /// RFC 3339 with nanoseconds, UTC.
    pub started_at: String,
    pub finished_at: String,
    /// 128+N for an init killed by signal N, as Docker reports it.
    pub exit_code: i32,
    pub oom_killed: bool,
    pub restart_count: u32,
    /// Why the container could not be (re)started, as the runtime said it.
    pub error: String,
    /// Whether the monitor process is alive; filled in by [`crate::read_state`], never stored.
    #[serde(default, skip_serializing)]
    pub monitor_alive: bool,
}

impl MonitorState {
    pub(crate) fn new() -> MonitorState {
        let monitor_pid = std::process::id() as i32;
        MonitorState {
            status: Status::Created,
            pid: 0,
            monitor_pid,
            monitor_start_time: process_start_time(monitor_pid).unwrap_or(0),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            exit_code: 0,
            oom_killed: false,
            restart_count: 0,
            error: String::new(),
            monitor_alive: true,
        }
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Parse {
            what: "state".into(),
            source: e,
        })?;
        write_atomic(&dir.join(STATE_FILE), &bytes)
    }
}

/// The state a monitor last wrote to `dir`, and whether that monitor still runs.
pub fn read_state(dir: &Path) -> Result<MonitorState> {
    let path = dir.join(STATE_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::file("read", &path, e))?;
    let mut state: MonitorState = serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
        what: path.display().to_string(),
        source: e,
    })?;
    state.monitor_alive = state.monitor_pid > 0
        && process_start_time(state.monitor_pid) == Some(state.monitor_start_time);
    Ok(state)
}

/// Writes through a temporary file and a rename: a reader sees the old file or the new one.
/// Each write has a temp file of its own, so two writers never rename each other's. The file
/// is root's alone (0600) before any byte is in it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)
    };
    write().map_err(|e| Error::file("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::file("rename into place", path, e))
}

/// The start time of a live (not zombie) process, from /proc/PID/stat.
pub(crate) fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields resume after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_sees_a_live_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = MonitorState::new();
        s.status = Status::Running;
        s.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
        assert!(text.contains("\"status\":\"running\""), "{text}");
        assert!(!text.contains("monitor_alive"));
        let back = read_state(dir.path()).unwrap();
        assert_eq!(back.status, Status::Running);
        assert!(back.monitor_alive);
        s.monitor_start_time += 1;
        s.write(dir.path()).unwrap();
        assert!(!read_state(dir.path()).unwrap().monitor_alive);
    }
}
