//! `/plugins…`: answered as dockerd answers on an engine with no managed plugins. berth has
//! no managed-plugin system (docs/api.md): the list is empty, every plugin is "not found",
//! and installing one (pull, create, privileges) is refused with 501 once the request has
//! passed dockerd's own checks, so a bad request still gets dockerd's words.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::Method;
use axum::routing::{any, get, post};
use axum::Router;

use super::{filters, json, Query, Shared};
use crate::error::{ApiError, Result};

const UNSUPPORTED: &str = "managed plugins are not supported by berth: it has the local volume driver and the bridge, host and none network drivers built in";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/plugins", get(list))
        .route("/plugins/privileges", get(privileges))
        .route("/plugins/pull", post(pull))
        .route("/plugins/create", post(create))
        .route("/plugins/{*rest}", any(by_name))
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("plugin \"{name}\" not found"))
}

/// A plugin reference as dockerd checks one before it looks anything up.
fn reference(remote: &str) -> Result<()> {
    berth_image::Reference::parse(remote)
        .map(|_| ())
        .map_err(|_| ApiError::Internal("invalid reference format".into()))
}

/// The privileges body of a pull or an upgrade.
fn privileges_body(b: &Bytes) -> Result<()> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Err(ApiError::Internal("failed to parse privileges: EOF".into()));
    }
    serde_json::from_slice::<serde_json::Value>(b)
        .map(|_| ())
        .map_err(|e| ApiError::Internal(format!("failed to parse privileges: {e}")))
}

/// `GET /plugins`: none, after dockerd's checks of the filters.
async fn list(q: Query) -> Result<axum::response::Response> {
    for (k, vals) in filters(&q)? {
        match k.as_str() {
            "enabled" => {
                if let Some(v) = vals
                    .iter()
                    .find(|v| !matches!(v.as_str(), "true" | "false"))
                {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid filter 'enabled=[{v}]'"
                    )));
                }
            }
            "capability" => {}
            other => return Err(ApiError::BadRequest(format!("Invalid filter '{other}'"))),
        }
    }
    Ok(json(axum::http::StatusCode::OK, &serde_json::json!([])))
}

async fn privileges(q: Query) -> Result<()> {
    reference(q.get("remote").map(String::as_str).unwrap_or_default())?;
    Err(ApiError::NotImplemented(UNSUPPORTED.into()))
}

async fn pull(q: Query, b: Bytes) -> Result<()> {
    privileges_body(&b)?;
    reference(q.get("remote").map(String::as_str).unwrap_or_default())?;
    Err(ApiError::NotImplemented(UNSUPPORTED.into()))
}

async fn create(q: Query) -> Result<()> {
    let name = q.get("name").map(String::as_str).unwrap_or_default();
    if berth_image::Reference::parse(name).is_err() {
        return Err(ApiError::Internal(format!(
            "failed to parse reference {name}: invalid reference format"
        )));
    }
    Err(ApiError::NotImplemented(UNSUPPORTED.into()))
}

/// `/plugins/{name}/json|enable|disable|push|set|upgrade` and `DELETE /plugins/{name}`
/// (names hold slashes: `vieux/sshfs:latest`).
async fn by_name(method: Method, Path(rest): Path<String>, q: Query, b: Bytes) -> Result<()> {
    if method == Method::DELETE {
        return Err(not_found(&rest));
    }
    let (name, action) = rest.rsplit_once('/').unwrap_or((rest.as_str(), ""));
    match (method, action) {
        (Method::GET, "json") => Err(not_found(name)),
        (Method::POST, "enable") => {
            let t = q.get("timeout").map(String::as_str).unwrap_or_default();
            t.parse::<i64>().map_err(|_| {
                ApiError::Internal(format!("strconv.Atoi: parsing \"{t}\": invalid syntax"))
            })?;
            Err(not_found(name))
        }
        (Method::POST, "disable" | "push") => Err(not_found(name)),
        (Method::POST, "set") => {
            if b.iter().all(|c| c.is_ascii_whitespace()) {
                return Err(ApiError::BadRequest(
                    "got EOF while reading request body".into(),
                ));
            }
            serde_json::from_slice::<Vec<String>>(&b)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            Err(not_found(name))
        }
        (Method::POST, "upgrade") => {
            privileges_body(&b)?;
            reference(q.get("remote").map(String::as_str).unwrap_or_default())?;
            Err(not_found(name))
        }
        _ => Err(ApiError::NotFound("page not found".into())),
    }
}
