//! The swarm routes (`/swarm…`, `/nodes`, `/services`, `/tasks`, `/secrets`, `/configs`),
//! answered as dockerd answers them on a node that is in no swarm: berth does not implement
//! swarm mode (docs/api.md). Clients depend on those exact answers: docker-py's
//! `leave_swarm(force=True)` swallows only the 503, and the docker CLI prints the message.
//! A request is checked as dockerd checks it first (its body, its `version`), so a bad
//! request still gets dockerd's 400.

use axum::body::Bytes;
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::{Query, Shared};
use crate::error::{ApiError, Result};

/// dockerd's error for anything that needs a manager.
pub const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
/// dockerd's error for leaving when there is nothing to leave.
pub const NOT_IN_SWARM: &str = "This node is not part of a swarm";
/// berth's answer to creating or joining a swarm.
const UNSUPPORTED: &str = "swarm mode is not supported by berth: this node cannot create or join a swarm (for several machines, run berth under Kubernetes through its CRI)";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/swarm", get(not_manager))
        .route("/swarm/init", post(init))
        .route("/swarm/join", post(join))
        .route("/swarm/leave", post(leave))
        .route("/swarm/update", post(update_swarm))
        .route("/swarm/unlock", post(unlock))
        .route("/swarm/unlockkey", get(not_manager))
        .route("/nodes", get(not_manager))
        .route("/nodes/{id}", get(not_manager).delete(not_manager))
        .route("/nodes/{id}/update", post(update_object))
        .route("/services", get(not_manager))
        .route("/services/create", post(create_object))
        .route("/services/{id}", get(not_manager).delete(not_manager))
        .route("/services/{id}/update", post(update_object))
        .route("/services/{id}/logs", get(logs))
        .route("/tasks", get(not_manager))
        .route("/tasks/{id}", get(not_manager))
        .route("/tasks/{id}/logs", get(logs))
        .route("/secrets", get(not_manager))
        .route("/secrets/create", post(create_object))
        .route("/secrets/{id}", get(not_manager).delete(not_manager))
        .route("/secrets/{id}/update", post(update_object))
        .route("/configs", get(not_manager))
        .route("/configs/create", post(create_object))
        .route("/configs/{id}", get(not_manager).delete(not_manager))
        .route("/configs/{id}/update", post(update_object))
}

fn no_manager() -> ApiError {
    ApiError::Unavailable(NOT_MANAGER.into())
}

async fn not_manager() -> Result<()> {
    Err(no_manager())
}

/// A swarm request's JSON body, read as dockerd reads it before anything else.
fn body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::BadRequest(
            "got EOF while reading request body".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The `version` query parameter of an update, checked as dockerd parses it (a uint64),
/// with its words for `what` (`swarm`, `node`, …).
fn version(q: &Query, what: &str) -> Result<u64> {
    let raw = q.get("version").map(String::as_str).unwrap_or_default();
    // Secrets and configs say only this much.
    if matches!(what, "secret" | "config") {
        return raw
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid {what} version")));
    }
    raw.parse().map_err(|_| {
        let why = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        ApiError::BadRequest(format!(
            "invalid {what} version '{raw}': strconv.ParseUint: parsing \"{raw}\": {why}"
        ))
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InitRequest {
    #[serde(rename = "ListenAddr")]
    listen_addr: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JoinRequest {
    #[serde(rename = "ListenAddr")]
    listen_addr: String,
    #[serde(rename = "RemoteAddrs")]
    remote_addrs: Vec<String>,
}

fn listen_addr(addr: &str) -> Result<()> {
    if addr.is_empty() {
        return Err(ApiError::BadRequest(
            "invalid ListenAddr \"\": invalid empty address".into(),
        ));
    }
    Ok(())
}

/// `POST /swarm/init`: dockerd's checks of the request, then berth's refusal.
async fn init(b: Bytes) -> Result<()> {
    let req: InitRequest = body(&b)?;
    listen_addr(&req.listen_addr)?;
    Err(ApiError::NotImplemented(UNSUPPORTED.into()))
}

/// `POST /swarm/join`: as `init`.
async fn join(b: Bytes) -> Result<()> {
    let req: JoinRequest = body(&b)?;
    listen_addr(&req.listen_addr)?;
    if req.remote_addrs.is_empty() {
        return Err(ApiError::BadRequest(
            "at least 1 RemoteAddr is required to join".into(),
        ));
    }
    Err(ApiError::NotImplemented(UNSUPPORTED.into()))
}

/// `POST /swarm/leave[?force=1]`: there is no swarm to leave.
async fn leave() -> Result<()> {
    Err(ApiError::Unavailable(NOT_IN_SWARM.into()))
}

async fn update_swarm(q: Query, b: Bytes) -> Result<()> {
    body::<serde_json::Map<String, serde_json::Value>>(&b)?;
    version(&q, "swarm")?;
    Err(no_manager())
}

async fn unlock(b: Bytes) -> Result<()> {
    body::<serde_json::Map<String, serde_json::Value>>(&b)?;
    Err(no_manager())
}

async fn create_object(b: Bytes) -> Result<()> {
    body::<serde_json::Map<String, serde_json::Value>>(&b)?;
    Err(no_manager())
}

/// `POST /{nodes,services,secrets,configs}/{id}/update`.
async fn update_object(
    Path(_id): Path<String>,
    uri: axum::http::Uri,
    q: Query,
    b: Bytes,
) -> Result<()> {
    body::<serde_json::Map<String, serde_json::Value>>(&b)?;
    let what = match uri.path().split('/').nth(1) {
        Some("nodes") => "node",
        Some("services") => "service",
        Some("secrets") => "secret",
        _ => "config",
    };
    version(&q, what)?;
    Err(no_manager())
}

/// A network create that needs a swarm (swarm scope, an ingress network, a multi-host
/// driver) is refused as dockerd refuses it on a node in no swarm; `Attachable` alone is
/// a local network's option and passes.
pub fn check_network_scope(req: &bollard_stubs::models::NetworkCreateRequest) -> Result<()> {
    if req.ingress.unwrap_or(false) {
        return Err(ApiError::Forbidden(
            "Ingress network can only be global scope network".into(),
        ));
    }
    match req.scope.as_deref().unwrap_or_default() {
        "" | "local" => {}
        "swarm" => {
            return Err(ApiError::Forbidden(
                "cannot create a swarm scoped network when swarm is not active".into(),
            ))
        }
        // dockerd hands any other scope to the swarm's manager, which is not there.
        _ => return Err(ApiError::Internal(NOT_MANAGER.into())),
    }
    if req.driver.as_deref() == Some("overlay") {
        return Err(ApiError::Internal(NOT_MANAGER.into()));
    }
    Ok(())
}

/// `GET /{services,tasks}/{id}/logs`: dockerd checks the streams first, and answers a
/// request for none with a 500.
async fn logs(Path(_id): Path<String>, q: Query) -> Result<()> {
    if !q.bool("stdout") && !q.bool("stderr") {
        return Err(ApiError::Internal(
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    Err(no_manager())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Form;

    #[test]
    fn versions_are_parsed_as_a_uint64() {
        let q = |s: &str| Query(Form::parse(s));
        assert_eq!(version(&q("version=7"), "swarm").ok(), Some(7));
        let msg = |s: &str, w: &str| version(&q(s), w).err().map(|e| e.to_string());
        assert_eq!(
            msg("", "node").as_deref(),
            Some("invalid node version '': strconv.ParseUint: parsing \"\": invalid syntax")
        );
        assert_eq!(
            msg("version=-1", "swarm").as_deref(),
            Some("invalid swarm version '-1': strconv.ParseUint: parsing \"-1\": invalid syntax")
        );
        assert!(msg("version=99999999999999999999999", "service")
            .is_some_and(|m| m.ends_with("value out of range")));
        assert_eq!(
            msg("version=x", "secret").as_deref(),
            Some("invalid secret version")
        );
    }
}
