//! The daemon's errors, each with the HTTP status dockerd answers for it and a message in
//! dockerd's words where scripts match on them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub type Result<T> = std::result::Result<T, ApiError>;

/// An error the API reports: a status and a JSON `{"message": …}` body, as dockerd does.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request itself is wrong (a malformed body, a bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// 401: a registry refused the credentials (`POST /auth`).
    #[error("{0}")]
    Unauthorized(String),
    /// 404: the object does not exist ("No such container: x").
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the object's state (a name in use, a running container).
    #[error("{0}")]
    Conflict(String),
    /// 403: dockerd's Forbidden (an endpoint that exists, a predefined network).
    #[error("{0}")]
    Forbidden(String),
    /// 304 for start on a running container and stop on a stopped one, as dockerd answers.
    #[error("not modified")]
    NotModified,
    /// 503: dockerd's Unavailable (swarm routes on a node in no swarm).
    #[error("{0}")]
    Unavailable(String),
    /// 501: an endpoint berth knows of but does not serve yet.
    #[error("{0}")]
    NotImplemented(String),
    /// 500: something failed inside the daemon; the message says what.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotModified => StatusCode::NOT_MODIFIED,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn internal(context: impl std::fmt::Display, e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(format!("{context}: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        let body = serde_json::json!({ "message": self.to_string() });
        (status, axum::Json(body)).into_response()
    }
}

impl From<berth_image::Error> for ApiError {
    fn from(e: berth_image::Error) -> ApiError {
        use berth_image::Error as E;
        match e {
            E::NotFound(_) | E::Ambiguous(_) => ApiError::NotFound(e.to_string()),
            E::Conflict { .. } => ApiError::Conflict(e.to_string()),
            E::InvalidReference { .. }
            | E::InvalidDigest(_)
            | E::BadArchive(_)
            | E::BadLayer { .. }
            | E::UnsafeEntry { .. }
            | E::DigestMismatch { .. }
            | E::InvalidOption(_)
            | E::UnknownUser(_)
            | E::UnknownGroup(_) => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<berth_monitor::Error> for ApiError {
    fn from(e: berth_monitor::Error) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<berth_runtime::Error> for ApiError {
    fn from(e: berth_runtime::Error) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}
