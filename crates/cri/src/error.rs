//! The CRI's errors, each with the gRPC status kubelet expects for it.

/// What a CRI call can fail with; the message names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such pod sandbox, container or image (NotFound).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed: a missing field, a bad value (InvalidArgument).
    #[error("{0}")]
    InvalidArgument(String),
    /// A pod or container of that name exists already (AlreadyExists).
    #[error("{0}")]
    AlreadyExists(String),
    /// The object is in a state that forbids the call (FailedPrecondition).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A registry refused the credentials (Unauthenticated).
    #[error("{0}")]
    Unauthenticated(String),
    /// ExecSync's timeout passed (DeadlineExceeded).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// What the CRI does not serve (Unimplemented).
    #[error("{0}")]
    Unimplemented(String),
    /// A CNI plugin failed (Unknown, with the plugin's message).
    #[error("{0}")]
    Network(String),
    /// Something failed inside the daemon (Internal).
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        let text = e.to_string();
        match e {
            Error::NotFound(_) => tonic::Status::not_found(text),
            Error::InvalidArgument(_) => tonic::Status::invalid_argument(text),
            Error::AlreadyExists(_) => tonic::Status::already_exists(text),
            Error::FailedPrecondition(_) => tonic::Status::failed_precondition(text),
            Error::Unauthenticated(_) => tonic::Status::unauthenticated(text),
            Error::DeadlineExceeded(_) => tonic::Status::deadline_exceeded(text),
            Error::Unimplemented(_) => tonic::Status::unimplemented(text),
            Error::Network(_) => tonic::Status::unknown(text),
            Error::Internal(_) => tonic::Status::internal(text),
        }
    }
}

impl From<berth_engine::Error> for Error {
    fn from(e: berth_engine::Error) -> Error {
        use berth_engine::Error as E;
        match e {
            E::NotFound(m) => Error::NotFound(m),
            E::Invalid(m) => Error::InvalidArgument(m),
            E::Conflict(m) if m.contains("already in use") => Error::AlreadyExists(m),
            E::Conflict(m) => Error::FailedPrecondition(m),
            E::Unauthorized(m) => Error::Unauthenticated(m),
            E::Internal(m) => Error::Internal(m),
        }
    }
}
