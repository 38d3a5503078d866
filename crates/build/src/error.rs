//! The builder's one error type. Messages use dockerd's words where scripts match on them
//! (`COPY failed: …`, `The command … returned a non-zero code: N`).

use std::path::PathBuf;

use crate::dockerfile::ParseError;

pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can make a build fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile does not parse; the message names the line and column.
    #[error("{0}")]
    Parse(#[from] ParseError),

    /// The context itself is unusable (a malformed tar, an entry leading out of it).
    #[error("{0}")]
    Context(String),

    /// A COPY/ADD source (or one of its parents) is a symlink that leads out of the context.
    #[error("COPY failed: {path} is a symlink to {target}, which leads out of the build context")]
    SymlinkEscape { path: String, target: String },

    /// A COPY/ADD source that is not in the context (or `--from` image).
    #[error("{instruction} failed: file not found in build context or excluded by .dockerignore: stat {path}: file does not exist")]
    SourceNotFound { instruction: String, path: String },

    /// A pattern that matched nothing.
    #[error("{instruction} failed: no source files were specified (nothing matches {pattern})")]
    NoSources {
        instruction: String,
        pattern: String,
    },

    /// A source path whose `..` leads out of the context.
    #[error("{instruction} failed: forbidden path outside the build context: {path}")]
    OutsideContext { instruction: String, path: String },

    /// A RUN whose command exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code} (step {step}, Dockerfile line {line})")]
    RunFailed {
        command: String,
        code: i32,
        step: String,
        line: usize,
    },

    /// A base image that is neither local nor pullable.
    #[error("{0}")]
    BaseImage(String),

    /// A Dockerfile instruction or build option with a value the build cannot use; the
    /// message says which and why (with the Dockerfile line where there is one).
    #[error("{0}")]
    Invalid(String),

    /// ADD of a URL that could not be fetched.
    #[error("ADD failed: {url}: {reason}")]
    Fetch { url: String, reason: String },

    /// The image store failed.
    #[error("{0}")]
    Image(#[from] berth_image::Error),

    /// Starting or running a RUN container failed.
    #[error("RUN container: {0}")]
    Sandbox(String),

    /// I/O on the build's own files failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The client went away or the daemon is stopping.
    #[error("build cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    /// The exit code a client should leave with: the RUN's own for a failed RUN (as the
    /// docker CLI does with dockerd's `errorDetail.code`), else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::RunFailed { code, .. } if *code > 0 => *code,
            _ => 1,
        }
    }
}
