//! berth's monitor: one small process per running container. It holds the container's stdio,
//! writes its json-file log, keeps its exit code, applies its restart policy, and outlives the
//! daemon, which finds it again through `<dir>/state.json` and the sockets beside it.
//!
//! Process model: the daemon calls [`spawn`], which runs `berth monitor <dir>` in a new
//! session; that process forks the monitor proper and exits, so the daemon never reaps it.
//! The monitor is single-threaded (the runtime library forks the container's init from it)
//! and sleeps in one ppoll(2) over its descriptors.

pub mod client;
mod config;
pub mod detach;
mod error;
mod footprint;
pub mod frames;
mod launch;
mod log;
mod monitor;
pub mod sock;
mod state;

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;

pub use config::{LogConfig, LogFormat, MonitorConfig, RestartPolicy};
pub use error::{Error, Result};
pub use monitor::run_monitor;
pub use state::{read_state, MonitorState, Status, ZERO_TIME};

/// Starts a monitor for `config` (writing `<dir>/config.json`) and returns once the container
/// runs, or with the reason it could not start. `attachers` are the clients that attached
/// before the start ([`client::attach_early`]): the monitor receives them before it starts
/// the process, so they see its first byte. Safe to call from a multi-threaded process: the
/// monitor is exec'd (`berth_exe monitor <dir>`), not forked from the caller.
pub fn spawn(
    config: &MonitorConfig,
    berth_exe: &Path,
    attachers: Vec<client::EarlyAttach>,
) -> Result<MonitorState> {
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&config.dir)
        .map_err(|e| Error::file("create", &config.dir, e))?;
    let config = MonitorConfig {
        attachers: u32::try_from(attachers.len()).unwrap_or(u32::MAX),
        ..config.clone()
    };
    let bytes = serde_json::to_vec(&config).map_err(|e| Error::Parse {
        what: "monitor config".into(),
        source: e,
    })?;
    state::write_atomic(&config.dir.join(monitor::CONFIG_FILE), &bytes)?;
    // The monitor's stdout is a socket: it reports on it, and receives the early attachers'
    // connections on it (SCM_RIGHTS), which a pipe could not carry.
    let (report, theirs) = UnixStream::pair().map_err(|e| Error::Socket {
        what: "make",
        path: "the monitor's report socket pair".into(),
        source: e,
    })?;
    // The socket is given as stdout, so std can use its posix_spawn path (no pre_exec
    // closure); the Command is dropped at once to close our copy of the other end.
    let mut child = {
        let mut cmd = Command::new(berth_exe);
        cmd.arg("monitor")
            .arg(&config.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(OwnedFd::from(theirs)))
            .stderr(Stdio::null());
        cmd.spawn().map_err(|e| Error::SpawnMonitor {
            exe: berth_exe.to_owned(),
            source: e,
        })?
    };
    // A monitor that fails before it takes them just closes them: its attachers see EOF.
    let _ = sock::send_fds(&report, attachers.iter().map(|a| a.0.as_fd()));
    drop(attachers);
    let mut report_text = String::new();
    let read = (&report).read_to_string(&mut report_text);
    // The first process only forks the monitor and exits: this wait is short.
    let status = child.wait();
    #[derive(Deserialize)]
    struct Report {
        state: Option<MonitorState>,
        error: Option<String>,
    }
    let parsed = read
        .ok()
        .and_then(|_| serde_json::from_str::<Report>(report_text.trim()).ok());
    match parsed {
        Some(Report {
            state: Some(mut state),
            ..
        }) => {
            state.monitor_alive = true;
            Ok(state)
        }
        Some(Report {
            error: Some(text), ..
        }) => Err(Error::Start(text)),
        _ => Err(Error::NoReport {
            dir: config.dir.display().to_string(),
            status: status.map_or_else(|e| e.to_string(), |s| s.to_string()),
        }),
    }
}
