//! The registry client's one error type. Every message names the image (or registry) and
//! the cause, in dockerd's words where scripts match on them.

/// `Result` with the registry's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest (tag or digest) does not exist.
    #[error("manifest for {image} not found: {message}")]
    ManifestUnknown { image: String, message: String },

    /// The repository does not exist, or the credentials may not read it.
    #[error("pull access denied for {repository}, repository does not exist or may require 'docker login': {message}")]
    PullDenied { repository: String, message: String },

    /// The registry refused the credentials or the action.
    #[error("{action} {target}: unauthorized: {message}")]
    Unauthorized {
        action: &'static str,
        target: String,
        message: String,
    },

    /// `POST /auth`: the registry refused the login.
    #[error("login attempt to {url} failed with status: {status}")]
    Login { url: String, status: String },

    /// An HTTP answer the protocol does not allow at that point (a 500 after retries, …).
    #[error("{method} {url}: unexpected status {status}{detail}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        detail: String,
    },

    /// No answer: connection refused, TLS failure, time-out (after retries).
    #[error("{method} {url}: {cause}")]
    Transport {
        method: &'static str,
        url: String,
        cause: String,
    },

    /// A blob or manifest whose bytes do not hash to the digest that names it.
    #[error("{image}: {what} failed verification: expected {expected}, got {actual}")]
    DigestMismatch {
        image: String,
        what: String,
        expected: String,
        actual: String,
    },

    /// The download ended before the size the manifest gave, and resuming did not finish it.
    #[error("{image}: layer {digest} download truncated at {got} of {want} bytes")]
    Truncated {
        image: String,
        digest: String,
        got: u64,
        want: u64,
    },

    /// A manifest larger than berth accepts (a registry cannot make the daemon buffer
    /// unbounded JSON).
    #[error("{image}: manifest is larger than the {limit} byte limit")]
    ManifestTooLarge { image: String, limit: u64 },

    /// A manifest, index or config that does not parse or breaks the spec.
    #[error("{image}: malformed manifest: {reason}")]
    BadManifest { image: String, reason: String },

    /// An index without an entry for the requested platform.
    #[error("{image}: no matching manifest for {platform} in the manifest list entries")]
    NoPlatform { image: String, platform: String },

    /// Certificates or keys of the certs dir that cannot be used.
    #[error("registry {host}: {reason}")]
    Tls { host: String, reason: String },

    /// A bad argument: a reference, platform, or auth header.
    #[error("{0}")]
    Invalid(String),

    /// The client went away (the pull or push was cancelled).
    #[error("{image}: cancelled")]
    Cancelled { image: String },

    /// A registry failure (status, transport, TLS) while pulling or pushing an image.
    #[error("{action} {image}: {source}")]
    While {
        action: &'static str,
        image: String,
        #[source]
        source: Box<Error>,
    },

    /// The image store failed (writing, unpacking, a hostile layer).
    #[error("{image}: {source}")]
    Store {
        image: String,
        #[source]
        source: berth_image::Error,
    },
}

impl Error {
    pub(crate) fn store(image: &str) -> impl FnOnce(berth_image::Error) -> Error + '_ {
        move |source| Error::Store {
            image: image.to_string(),
            source,
        }
    }

    /// Names the image on errors that only name a URL.
    pub(crate) fn while_(self, action: &'static str, image: &str) -> Error {
        match self {
            e @ (Error::Status { .. } | Error::Transport { .. } | Error::Tls { .. }) => {
                Error::While {
                    action,
                    image: image.to_string(),
                    source: Box::new(e),
                }
            }
            other => other,
        }
    }

    fn inner(&self) -> &Error {
        match self {
            Error::While { source, .. } => source.inner(),
            e => e,
        }
    }

    /// Whether the error is the registry saying no (not found / denied), for API statuses.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.inner(),
            Error::ManifestUnknown { .. } | Error::PullDenied { .. } | Error::NoPlatform { .. }
        )
    }

    /// Whether the registry refused access to the repository (no such repository, or
    /// credentials that do not reach it: registries answer both alike).
    pub fn is_denied(&self) -> bool {
        matches!(self.inner(), Error::PullDenied { .. })
    }

    /// Whether the error is a refused login or authorization.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self.inner(),
            Error::Unauthorized { .. } | Error::Login { .. }
        )
    }

    /// Whether the caller sent something wrong (bad reference, platform, header).
    pub fn is_invalid(&self) -> bool {
        matches!(self, Error::Invalid(_))
            || matches!(
                self,
                Error::Store {
                    source: berth_image::Error::InvalidReference { .. }
                        | berth_image::Error::InvalidOption(_),
                    ..
                }
            )
    }
}
