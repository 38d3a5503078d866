//! The dashboard's errors.

/// What can go wrong in the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel's random source failed (no secret can be made).
    #[error("read random bytes for a login secret: {0}")]
    Random(String),
    /// The dashboard's address could not be bound.
    #[error("the dashboard cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The daemon was started with `--dashboard off`.
    #[error("the dashboard is off (the daemon was started with --dashboard off)")]
    Off,
    /// A login page for `--open` could not be written.
    #[error("write the dashboard's login page {path}: {source}")]
    LoginPage {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The Engine API socket did not answer.
    #[error("the dashboard cannot reach the daemon's API at {socket}: {reason}")]
    Upstream { socket: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;
