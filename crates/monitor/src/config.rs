//! What the daemon asks of a monitor: the container, its stdio, its log and its restart policy.
//! The daemon writes it to `<dir>/config.json`; `berth monitor <dir>` reads it back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything one monitor needs to run one container.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MonitorConfig {
    /// The container id (64 hex), also the runtime's container id.
    pub id: String,
    /// The runtime's state root (runc's `--root`).
    pub runtime_root: PathBuf,
    /// The bundle: config.json and an already mounted rootfs.
    pub bundle: PathBuf,
    /// The monitor's own directory: config.json, state.json, the sockets.
    pub dir: PathBuf,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub log: LogConfig,
    pub restart: RestartPolicy,
    /// `None`: berth's runtime library, in-process. `Some(path)`: a runc-compatible binary.
    pub runtime: Option<PathBuf>,
    /// How many clients attached before the start (`docker run`, `start -a`, an exec): their
    /// connections come on the report socket (`spawn` sets this and sends them), and the
    /// monitor takes them before it starts the process, so they see its first byte.
    #[serde(default)]
    pub attachers: u32,
    /// Run this process.json in the running container `id` (`docker exec`) instead of creating
    /// the container: the monitor then holds that process's stdio, keeps no log, never
    /// restarts, and leaves the container alone when the process ends.
    #[serde(default)]
    pub exec: Option<PathBuf>,
}

/// Docker's json-file log driver options.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct LogConfig {
    pub path: PathBuf,
    /// `max-size`: rotate when the file reaches this many bytes.
    pub max_size: Option<u64>,
    /// `max-file`: how many files to keep, the live one included.
    pub max_files: u32,
    /// The `none` driver: no log is kept.
    #[serde(default)]
    pub disabled: bool,
    /// The format of each line: Docker's json-file (the default) or the CRI's.
    #[serde(default)]
    pub format: LogFormat,
}

/// How the monitor writes a container's output.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Docker's json-file: `{"log":…,"stream":…,"time":…}` per line.
    #[default]
    JsonFile,
    /// Kubernetes' CRI format, which kubelet reads: `<RFC3339Nano> <stream> <P|F> <text>`, `P`
    /// for a piece of a longer line, `F` for a line's last (or only) piece.
    Cri,
}

/// Docker's restart policy: `no`, `always`, `on-failure` (with `max_retries`), `unless-stopped`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RestartPolicy {
    pub name: String,
    /// For `on-failure` only; 0 means no limit.
    pub max_retries: u32,
}

impl RestartPolicy {
    /// Docker's rule (daemon/restartmanager): a manual stop never restarts; `always` and
    /// `unless-stopped` restart on any exit; `on-failure` on a non-zero one, up to its limit.
    pub fn should_restart(&self, exit_code: i32, restart_count: u32, stopped: bool) -> bool {
        if stopped {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                exit_code != 0 && (self.max_retries == 0 || restart_count < self.max_retries)
            }
            _ => false,
        }
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            name: "no".into(),
            max_retries: 0,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    fn policy(name: &str, max: u32) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            max_retries: max,
        }
    }

    #[test]
    fn restart_rules_follow_docker() {
        assert!(!policy("no", 0).should_restart(1, 0, false));
        assert!(policy("always", 0).should_restart(0, 9, false));
        assert!(!policy("always", 0).should_restart(0, 0, true));
        assert!(!policy("unless-stopped", 0).should_restart(1, 0, true));
        assert!(policy("on-failure", 2).should_restart(1, 1, false));
        assert!(!policy("on-failure", 2).should_restart(1, 2, false));
        assert!(!policy("on-failure", 2).should_restart(0, 0, false));
        assert!(policy("on-failure", 0).should_restart(1, 100, false));
    }
}
