//! berth-compose's one error type: each variant names the file, key, service or daemon answer
//! the user needs, in docker compose's words where scripts may read them.

use std::path::PathBuf;

/// What can go wrong loading a compose file or driving the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is not valid YAML (or holds a duplicate key): where, and what the parser said.
    #[error("{file}: yaml: line {line}, column {column}: {message}")]
    Yaml {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key or value the compose specification does not allow, named by its path.
    #[error("validating {file}: {message}")]
    Schema { file: PathBuf, message: String },
    /// A `${…}` that cannot be resolved: a `:?`/`?` variable unset, or a malformed expression.
    #[error("error while interpolating {path}: {message}")]
    Interpolation { path: String, message: String },
    /// The project as a whole is inconsistent (an undefined network, a dependency cycle, a
    /// port published twice).
    #[error("{0}")]
    Invalid(String),
    /// No compose file was found or named.
    #[error("no configuration file provided: not found")]
    NoFile,
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The daemon answered an error (`status`, its `message`).
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// The daemon could not be reached or its answer was not understood.
    #[error("{0}")]
    Transport(String),
    /// A service or container that does not exist (or is not running) was named.
    #[error("{0}")]
    NotFound(String),
    /// A container ended badly while `up` or `--wait` waited on it.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the daemon answered 404 (no such container, image, network or volume).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Daemon { status: 404, .. })
    }
}

/// berth-compose's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
