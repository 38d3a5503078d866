//! The one error type of the image store. Each variant's doc comment is its message.

use std::path::PathBuf;

/// `Result` with the store's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such image: {0}
    #[error("No such image: {0}")]
    NotFound(String),

    /// invalid reference format: {input}: {reason}
    #[error("invalid reference format: {input:?}: {reason}")]
    InvalidReference { input: String, reason: &'static str },

    /// conflict: unable to delete {short_id} (must be forced) - {reason}
    #[error("conflict: unable to delete {short_id} (must be forced) - {reason}")]
    Conflict { short_id: String, reason: String },

    /// more than one image matches the id prefix {0}
    #[error("more than one image matches the id prefix {0:?}")]
    Ambiguous(String),

    /// I/O on a path of the store or of an archive failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A blob's content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// A digest string that is not `sha256:<64 lowercase hex>`.
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),

    /// A layer tar entry that would escape its root or cannot be represented.
    #[error("layer {layer}: refusing entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },

    /// A layer tar that cannot be read.
    #[error("layer {layer}: malformed tar: {source}")]
    BadLayer {
        layer: String,
        #[source]
        source: std::io::Error,
    },

    /// An image archive (docker save / OCI layout) that is not what it claims.
    #[error("invalid image archive: {0}")]
    BadArchive(String),

    /// JSON of a config, manifest or the store's own db that does not parse.
    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A `--change` / option the store cannot apply.
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// unable to find user {0}: no matching entries in passwd file
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),

    /// unable to find group {0}: no matching entries in group file
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),

    /// A mount or unmount of an overlay rootfs failed.
    #[error("{op} overlay at {target}: {errno}{hint}")]
    Mount {
        op: &'static str,
        target: PathBuf,
        errno: nix::errno::Errno,
        hint: &'static str,
    },
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn errno(op: &'static str, path: impl Into<PathBuf>, e: nix::errno::Errno) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source: std::io::Error::from_raw_os_error(e as i32),
        }
    }

    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
        let what = what.into();
        move |source| Error::Json { what, source }
    }
}
