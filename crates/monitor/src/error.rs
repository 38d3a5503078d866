//! The monitor's error type: one variant per thing that can go wrong, each naming what failed.

use std::path::PathBuf;

use nix::errno::Errno;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the monitor could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON document (config.json, state.json, a socket message) did not parse.
    #[error("parse {what}: {source}")]
    Parse {
        what: String,
        source: serde_json::Error,
    },
    /// The `berth monitor` process could not be started.
    #[error("start the monitor {}: {source}", exe.display())]
    SpawnMonitor {
        exe: PathBuf,
        source: std::io::Error,
    },
    /// The monitor could not start the container; the text is the runtime's.
    #[error("{0}")]
    Start(String),
    /// The monitor ended without saying whether the container started.
    #[error("the monitor for {dir} exited without a report ({status})")]
    NoReport { dir: String, status: String },
    /// berth's runtime library failed.
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    /// An OCI runtime binary (`--runtime`) failed.
    #[error("{} {op}: {reason}", runtime.display())]
    RuntimeBinary {
        runtime: PathBuf,
        op: &'static str,
        reason: String,
    },
    /// A system call failed.
    #[error("{what}: {errno}")]
    Syscall { what: String, errno: Errno },
    /// A monitor socket could not be reached or used.
    #[error("{what} {}: {source}", path.display())]
    Socket {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The monitor refused a request or answered something unexpected.
    #[error("monitor {}: {reason}", dir.display())]
    Refused { dir: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn sys(what: impl Into<String>, errno: Errno) -> Self {
        Error::Syscall {
            what: what.into(),
            errno,
        }
    }

    pub(crate) fn file(
        what: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::File {
            what,
            path: path.into(),
            source,
        }
    }
}
