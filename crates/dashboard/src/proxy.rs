//! `/api/…` → the Engine API, unchanged: the same method, path, query and body the page
//! sent (the page sends what the CLI sends, `/v1.44/…`), answered with the daemon's
//! status, headers and body, streamed as the daemon writes it. Only the headers an Engine
//! API request means something by pass: never the browser's cookies or its key.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::upstream::Upstream;

/// Request headers the Engine API reads.
const PASSED: [&str; 3] = ["content-type", "x-registry-auth", "x-registry-config"];

/// Hop-by-hop headers, which describe one connection and are not passed on.
const HOP: [HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

/// Forwards one request to the daemon; `target` is its path and query without `/api`.
pub async fn forward(
    up: &Upstream,
    method: Method,
    target: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(target)
        .header(header::HOST, "localhost");
    for name in PASSED {
        for v in headers.get_all(name) {
            req = req.header(name, v);
        }
    }
    let req = match req.body(body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad request: {e}")),
    };
    match up.send(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            for h in &HOP {
                parts.headers.remove(h);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}

/// An error in the Engine API's shape (`{"message": …}`), as the page shows daemon errors.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
