//! The dashboard's HTTP server, which a browser talks to: the login, the page's files, and
//! `/api/…` (the Engine API, through `proxy.rs` and `ws.rs`). Every request passes `guard`
//! first: a Host and an Origin of the dashboard's own (403 otherwise), then a session
//! (401 otherwise; the login URL is the only way in).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

use crate::guard::{self, Refusal};
use crate::vault::Access;
use crate::{assets, proxy, ws, Shared};

/// The header that carries the session's key on the page's API requests; a WebSocket (whose
/// handshake a page cannot add headers to) offers it as a subprotocol `berth.key.KEY`.
pub const KEY_HEADER: &str = "x-berth-key";
const KEY_PROTOCOL: &str = "berth.key.";
/// The subprotocol the server picks (a browser fails a handshake that offered some and got
/// none back).
const PROTOCOL: &str = "berth";

/// The server of one listening address.
#[derive(Debug, Clone)]
struct Site {
    shared: Arc<Shared>,
    port: u16,
}

/// The browser's side, for the dashboard listening on `port`.
pub fn router(shared: Arc<Shared>, port: u16) -> Router {
    let site = Site { shared, port };
    Router::new()
        .route("/login", get(login))
        .route("/api/{*rest}", any(api))
        .route("/compose/{project}/{verb}", axum::routing::post(compose))
        .fallback(page)
        .layer(middleware::from_fn_with_state(site.clone(), guard_layer))
        .with_state(site)
}

/// Cookies of 127.0.0.1 are sent to all its ports: each dashboard's has its port in its
/// name, so two daemons' dashboards on one machine do not log each other out.
fn cookie_name(port: u16) -> String {
    format!("berth_session_{port}")
}

async fn guard_layer(State(site): State<Site>, req: Request, next: Next) -> Response {
    let mut resp = check(&site, req, next).await;
    secure(resp.headers_mut());
    resp
}

async fn check(site: &Site, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let websocket = is_websocket(headers);
    let refused = guard::check_host(headers, site.port)
        .and_then(|()| guard::check_origin(req.method(), headers, websocket));
    if let Err(r) = refused {
        return forbidden(&r);
    }
    let path = req.uri().path();
    if path == "/login" {
        return next.run(req).await;
    }
    let cookie = guard::cookie(headers, &cookie_name(site.port));
    let key = headers
        .get(KEY_HEADER)
        .and_then(|k| k.to_str().ok())
        .or_else(|| ws_key(headers));
    let access = site.shared.vault.access(cookie, key);
    let api = path.starts_with("/api/") || path.starts_with("/compose/");
    match (api, access) {
        (_, Access::Full) | (false, Access::Page) => next.run(req).await,
        (true, _) => proxy::error(
            StatusCode::UNAUTHORIZED,
            "not logged in to the dashboard: open the URL `berth dashboard` prints",
        ),
        (false, Access::None) => unauthorized_page(
            "Not logged in",
            "Open the URL that <code>berth dashboard</code> prints (it logs this browser in).",
        ),
    }
}

/// `GET /login?token=…`: spends the token, sets the session cookie, and sends the browser
/// to the page with the session's key in the fragment (which no request carries: the page
/// takes it from there, keeps it in its origin's storage, and clears the address bar).
async fn login(State(site): State<Site>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let token = q
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    match site.shared.vault.redeem(token) {
        Ok(Some(s)) => {
            let cookie = format!(
                "{}={}; HttpOnly; SameSite=Strict; Path=/",
                cookie_name(site.port),
                s.cookie
            );
            let mut resp = StatusCode::SEE_OTHER.into_response();
            let h = resp.headers_mut();
            if let (Ok(c), Ok(l)) = (
                HeaderValue::from_str(&cookie),
                HeaderValue::from_str(&format!("/#key={}", s.key)),
            ) {
                h.insert(header::SET_COOKIE, c);
                h.insert(header::LOCATION, l);
            }
            resp
        }
        Ok(None) => unauthorized_page(
            "This login link does not work",
            "It was used already, it expired (a link lasts two minutes), or it is wrong. \
             Run <code>berth dashboard</code> for a new one.",
        ),
        Err(e) => proxy::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `/api/…`: the Engine API request, forwarded; a WebSocket handshake is bridged.
async fn api(State(site): State<Site>, req: Request) -> Response {
    let pq = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let target = pq.strip_prefix("/api").unwrap_or(pq).to_owned();
    let up = site.shared.upstream.clone();
    if is_websocket(req.headers()) {
        let path = req.uri().path().to_owned();
        let (mut parts, _) = req.into_parts();
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(u) => u,
            Err(e) => return e.into_response(),
        };
        let bridge = ws::bridge_for(path.strip_prefix("/api").unwrap_or(&path));
        return upgrade
            .protocols([PROTOCOL])
            .on_upgrade(move |socket| ws::run(up, target, bridge, socket));
    }
    let (parts, body) = req.into_parts();
    proxy::forward(&up, parts.method, &target, &parts.headers, body).await
}

/// `POST /compose/{project}/{verb}`: a compose project's `up` (which needs its files; see
/// `compose.rs`).
async fn compose(
    State(site): State<Site>,
    axum::extract::Path((project, verb)): axum::extract::Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let files = if body.iter().all(u8::is_ascii_whitespace) {
        crate::compose::Files::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(f) => f,
            Err(e) => return proxy::error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
        }
    };
    crate::compose::run(&site.shared.upstream, &project, &verb, files).await
}

/// The page's files (GET and HEAD only).
async fn page(method: Method, req: Request) -> Response {
    if !matches!(method, Method::GET | Method::HEAD) {
        return proxy::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let Some(a) = assets::find(req.uri().path()) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut resp = Response::new(Body::from(a.bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if a.immutable {
            "private, max-age=31536000, immutable"
        } else {
            "no-store"
        }),
    );
    resp
}

fn is_websocket(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// The key a WebSocket handshake offers as a subprotocol.
fn ws_key(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(KEY_PROTOCOL))
}

fn forbidden(r: &Refusal) -> Response {
    proxy::error(StatusCode::FORBIDDEN, &r.to_string())
}

fn unauthorized_page(title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>berth: {title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let mut resp = (StatusCode::UNAUTHORIZED, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// On every answer: no framing (clickjacking), no sniffing, no referrer (the login URL),
/// scripts only from the page itself, and no cross-origin reads. No CORS header is ever
/// sent, so no other origin can read an answer.
fn secure(h: &mut HeaderMap) {
    const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                       img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                       frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
