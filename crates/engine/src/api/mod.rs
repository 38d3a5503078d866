//! The Docker Engine API router. Paths may carry a version prefix (`/v1.44/containers/json`);
//! it is stripped before routing and kept in the request (`ApiVersion`) for the handlers that
//! answer each version as dockerd does; a version out of berth's range is refused.

mod archive;
mod build;
mod containers;
mod hijack;
pub(crate) mod images;
mod logs;
mod networks;
mod plugins;
mod query;
pub(crate) mod registry;
mod relay;
mod shape;
mod stats;
pub(crate) use stats::stats_sample;
mod swarm;
mod system;
mod version;
mod volumes;

pub use relay::ConnFd;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::daemon::Daemon;
use crate::error::{ApiError, Result};
pub(crate) use query::{Form, Query};
pub(crate) use version::ApiVersion;

pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";

pub type Shared = Arc<Daemon>;

/// The Engine API's routes, with `faces`' (the dashboard's `/berth/dashboard/…`) beside them.
pub fn router(
    daemon: Shared,
    faces: Router,
) -> tower::util::MapRequest<Router, fn(Request) -> Request> {
    let app = Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/system/df", get(system::df))
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}", delete(containers::remove))
        // A link's own name, `/PARENT/ALIAS` (`docker rm --link`).
        .route(
            "/containers/{parent}/{alias}",
            delete(containers::remove_link_name),
        )
        .route("/containers/{id}/attach", post(hijack::attach))
        .route("/containers/{id}/logs", get(logs::logs))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/stats", get(stats::stats))
        .route("/containers/{id}/update", post(stats::update))
        .route(
            "/containers/{id}/archive",
            get(archive::get).put(archive::put).head(archive::head),
        )
        .route("/containers/{id}/changes", get(containers::changes))
        .route("/containers/{id}/export", get(containers::export))
        .route("/containers/{id}/exec", post(hijack::exec_create))
        .route("/exec/{id}/start", post(hijack::exec_start))
        .route("/exec/{id}/json", get(hijack::exec_inspect))
        .route("/exec/{id}/resize", post(hijack::exec_resize))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/berth/images/{*name}", get(build::image_hygiene))
        .route("/berth/dockerfile/lint", post(build::dockerfile_lint))
        .route("/commit", post(images::commit))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save))
        .route("/images/prune", post(images::prune))
        .route("/images/search", get(registry::search))
        .route("/auth", post(registry::auth))
        .route("/distribution/{*name}", get(registry::distribution))
        .route(
            "/images/{*name}",
            get(images::by_name)
                .delete(images::remove)
                .post(images::by_name_post),
        )
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .merge(swarm::routes())
        .merge(plugins::routes())
        .fallback(not_found)
        // dockerd answers a known path with another method as an unknown path.
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::from_fn(check_version))
        .layer(axum::middleware::map_response(api_headers))
        .with_state(daemon)
        .merge(faces);
    tower::util::MapRequest::new(app, strip_version as fn(Request) -> Request)
}

/// `/v1.44/x` → `/x`, with the version kept in the request's extensions.
fn strip_version(mut req: Request) -> Request {
    let Some((version, rest)) = req.uri().path().strip_prefix("/v").and_then(|rest| {
        let slash = rest.find('/')?;
        Some((ApiVersion::parse(&rest[..slash])?, rest[slash..].to_owned()))
    }) else {
        return req;
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest,
    };
    if let Ok(uri) = pq.parse::<Uri>() {
        *req.uri_mut() = uri;
        req.extensions_mut().insert(version);
    }
    req
}

async fn api_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    resp
}

/// A version out of berth's range is refused before any handler runs, in dockerd's words.
async fn check_version(
    req: Request,
    next: axum::middleware::Next,
) -> std::result::Result<Response, ApiError> {
    if let Some(v) = req.extensions().get::<ApiVersion>() {
        v.check()?;
    }
    Ok(next.run(req).await)
}

/// dockerd's answer to a path it has no route for.
async fn not_found() -> Response {
    ApiError::NotFound("page not found".into()).into_response()
}

/// A boolean query parameter as dockerd reads it (`BoolValue`).
pub fn flag(q: &Form, key: &str) -> bool {
    q.bool(key)
}

/// A JSON request body, with dockerd's 400 wording when it does not parse.
pub fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

pub fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Whether an object passes all of `filt`, `test(key, value)` deciding each value: any value
/// of a key will do, except `label`, whose values must all match (dockerd ANDs them).
pub fn passes(filt: &HashMap<String, Vec<String>>, test: impl Fn(&str, &str) -> bool) -> bool {
    filt.iter().all(|(k, vals)| {
        let one = |v: &String| test(k, v);
        if k == "label" {
            vals.iter().all(one)
        } else {
            vals.iter().any(one)
        }
    })
}

/// Whether an object's labels (`get` looks one up) pass one `label` filter: `KEY=VALUE` (that
/// value) or `KEY` (any value).
pub fn label_matches<'a>(filter: &str, get: impl Fn(&str) -> Option<&'a str>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => get(k) == Some(v),
        None => get(filter).is_some(),
    }
}

/// Docker's `filters` query parameter: `{"key":["v1","v2"]}` (or the legacy `{"key":{"v":true}}`).
pub fn filters(q: &Form) -> Result<HashMap<String, Vec<String>>> {
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(HashMap::new());
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::BadRequest(format!("invalid filter: {e}")))?;
    let mut out = HashMap::new();
    for (k, vals) in v.as_object().into_iter().flatten() {
        let list: Vec<String> = match vals {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            _ => return Err(ApiError::BadRequest(format!("invalid filter '{k}'"))),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_anded_and_other_values_ored() {
        let labels = HashMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), String::new()),
        ]);
        let test = |k: &str, v: &str| match k {
            "label" => label_matches(v, |k| labels.get(k).map(String::as_str)),
            "name" => v == "web",
            _ => true,
        };
        let filt = |pairs: &[(&str, &[&str])]| -> HashMap<String, Vec<String>> {
            pairs
                .iter()
                .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
                .collect()
        };
        assert!(passes(&filt(&[]), test));
        assert!(passes(&filt(&[("label", &["a=1", "b"])]), test));
        assert!(!passes(&filt(&[("label", &["a=1", "c"])]), test));
        assert!(!passes(&filt(&[("label", &["a=2"])]), test));
        assert!(passes(&filt(&[("name", &["db", "web"])]), test));
        assert!(!passes(
            &filt(&[("name", &["db"]), ("label", &["a"])]),
            test
        ));
    }
}
