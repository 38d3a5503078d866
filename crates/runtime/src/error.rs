//! The runtime's error type: one variant per thing that can go wrong, each carrying what the user
//! needs to act on it (the file, the mount target, the syscall, the container id).

use std::path::PathBuf;

use nix::errno::Errno;

use crate::capabilities::CapabilityError;
use crate::cgroups::CgroupError;
use crate::seccomp::SeccompError;
use crate::signal::SignalError;
use crate::state::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json could not be read.
    #[error("read {}: {source}", path.display())]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bundle's config.json is not a valid runtime-spec document.
    #[error("parse {}: {source}", path.display())]
    ParseConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// config.json parsed, but asks for something contradictory or impossible. ("invalid
    /// configuration" is runc's wording, which scripts look for.)
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The program to run cannot be found or executed (runc's words, which dockerd and the
    /// docker CLI map to exit codes 127 and 126).
    #[error("exec: {0}")]
    Exec(String),
    /// The bundle's root filesystem is missing.
    #[error("rootfs {} of the bundle does not exist or is not a directory", path.display())]
    MissingRootfs { path: PathBuf },
    /// A container id must be a non-empty name of letters, digits, `_`, `+`, `-` and `.`.
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' only")]
    InvalidId(String),
    /// Another container already uses the id.
    #[error("container with id {0:?} already exists")]
    IdInUse(String),
    /// No container has that id under this root.
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// The operation is not allowed in the container's current state.
    #[error("cannot {op} container {id:?}: it is {status}{hint}")]
    WrongState {
        id: String,
        op: &'static str,
        status: Status,
        hint: &'static str,
    },
    /// A system call failed.
    #[error("{what}: {errno}{}", hint_for(*errno))]
    Syscall { what: String, errno: Errno },
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The container's state file is damaged.
    #[error("state of container {id:?} in {}: {reason}", path.display())]
    CorruptState {
        id: String,
        path: PathBuf,
        reason: String,
    },
    /// The container's init failed while setting up; its message says where (runc's words).
    #[error("unable to start container process: {0}")]
    Init(String),
    /// A hook failed or timed out.
    #[error("{kind} hook {}: {reason}", path.display())]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// criu failed to dump or restore; its log says why.
    #[error("criu failed: {op}: {reason} (log file: {})", log.display())]
    Criu {
        op: &'static str,
        log: PathBuf,
        reason: String,
    },
    /// The config asks for something this runtime does not do.
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] SeccompError),
    #[error("capabilities: {0}")]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Signal(#[from] SignalError),
}

impl Error {
    pub(crate) fn sys(what: impl Into<String>, errno: Errno) -> Self {
        Error::Syscall {
            what: what.into(),
            errno,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Adds the likely cause to the errnos that confuse people most in a runtime.
fn hint_for(errno: Errno) -> &'static str {
    match errno {
        Errno::EPERM => {
            " (operation not permitted: missing privilege, or refused by the kernel's policy)"
        }
        Errno::ENOSPC => {
            " (no space, or a kernel limit such as user namespaces or watches reached)"
        }
        _ => "",
    }
}
