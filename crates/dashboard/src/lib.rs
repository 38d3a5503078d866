//! berth's dashboard: a web page served by the daemon (DESIGN.md, `dashboard/`).
//!
//! The page speaks only the Engine API (principle 1): its `/api/…` requests are forwarded,
//! unchanged, to the daemon's own API socket, as any client's would be. This crate knows
//! nothing of the engine: the binary hands it the socket's path, serves `api_routes` on the
//! API socket (where `berth dashboard` asks for a login URL) and runs `task` on the daemon's
//! runtime.
//!
//! Security (the page controls a root daemon): loopback unless an address is given
//! explicitly; in by a one-time, expiring login token only, exchanged for a session (an
//! HttpOnly, SameSite=Strict cookie plus a key bound to the page's origin); everything else
//! answered 401; the Host and Origin headers checked (no DNS rebinding, no cross-site
//! request); no CORS; secrets in memory only.

mod assets;
mod compose;
mod error;
mod guard;
mod login_page;
mod proxy;
mod server;
mod upstream;
mod vault;
mod ws;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

pub use error::{Error, Result};

/// Where the dashboard listens when nothing says otherwise (`berth` on a phone's keypad; in
/// no common service's range, below Linux's ephemeral ports).
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 23784);

/// Whether the real page was built into this binary (not the stand-in `build.rs` embeds
/// when npm was not run).
pub const PAGE_BUILT: bool = assets::BUILT;

/// How the dashboard listens.
#[derive(Debug)]
pub enum Listen {
    /// Never (`--dashboard off`): `berth dashboard` is refused.
    Off,
    /// Not until the first `berth dashboard` asks, then on this address.
    OnDemand(SocketAddr),
    /// On this socket, bound by the binary before the daemon started (so a bad address
    /// fails the start).
    Bound(std::net::TcpListener),
}

/// The dashboard's settings.
#[derive(Debug)]
pub struct Options {
    pub listen: Listen,
    /// The daemon's Engine API socket.
    pub api_socket: PathBuf,
    /// Where login pages for `berth dashboard --open` are written (0700; each page 0600,
    /// gone when its token expires): `<exec-root>/dashboard`.
    pub state_dir: PathBuf,
}

#[derive(Debug)]
struct Shared {
    vault: vault::Vault,
    upstream: upstream::Upstream,
    listening: Mutex<Listening>,
    state_dir: PathBuf,
}

#[derive(Debug)]
enum Listening {
    Off,
    NotYet(SocketAddr),
    /// Bound, not served yet (the task serves it).
    Bound(std::net::TcpListener, SocketAddr),
    On(SocketAddr),
}

/// The dashboard of one daemon.
#[derive(Debug, Clone)]
pub struct Dashboard {
    shared: Arc<Shared>,
}

impl Dashboard {
    pub fn new(opts: Options) -> Result<Dashboard> {
        let listening = match opts.listen {
            Listen::Off => Listening::Off,
            Listen::OnDemand(a) => Listening::NotYet(a),
            Listen::Bound(l) => {
                let addr = l.local_addr().map_err(|source| Error::Listen {
                    addr: DEFAULT_ADDR,
                    source,
                })?;
                Listening::Bound(l, addr)
            }
        };
        // Login pages a previous daemon left (their tokens died with it).
        login_page::clear(&opts.state_dir);
        Ok(Dashboard {
            shared: Arc::new(Shared {
                vault: vault::Vault::default(),
                upstream: upstream::Upstream::new(opts.api_socket),
                listening: Mutex::new(listening),
                state_dir: opts.state_dir,
            }),
        })
    }

    /// What the dashboard adds to the Engine API socket: `POST /berth/dashboard/tokens`,
    /// which answers a login URL (`{"URL", "Address", "ExpiresIn", "PageBuilt"}`), opening
    /// the dashboard's address first if it is not open yet; with `?file=1` also a login page
    /// that leads to it (`"File"`), for a browser to be opened on without the token on any
    /// command line. Only the API socket's clients — who control the daemon anyway — can
    /// ask for one.
    pub fn api_routes(&self) -> Router {
        Router::new()
            .route("/berth/dashboard/tokens", post(new_token))
            .with_state(self.shared.clone())
    }

    /// Serves the address bound at start (`Listen::Bound`), on the daemon's runtime; an
    /// address on demand waits for the first token.
    pub fn task(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            let bound = matches!(
                *shared.listening.lock().unwrap_or_else(|p| p.into_inner()),
                Listening::Bound(..)
            );
            if bound {
                if let Err(e) = listen(&shared) {
                    tracing::error!("dashboard: {e}");
                }
            }
        }
    }
}

/// Serves the dashboard if it is bound or waiting to be; its address.
fn listen(shared: &Arc<Shared>) -> Result<SocketAddr> {
    let mut l = shared.listening.lock().unwrap_or_else(|p| p.into_inner());
    let (std_listener, addr) = match std::mem::replace(&mut *l, Listening::Off) {
        Listening::Off => return Err(Error::Off),
        Listening::On(a) => {
            *l = Listening::On(a);
            return Ok(a);
        }
        Listening::NotYet(a) => match std::net::TcpListener::bind(a) {
            Ok(s) => {
                let addr = s.local_addr().unwrap_or(a);
                (s, addr)
            }
            Err(source) => {
                *l = Listening::NotYet(a);
                return Err(Error::Listen { addr: a, source });
            }
        },
        Listening::Bound(s, a) => (s, a),
    };
    let listener = std_listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(std_listener))
        .map_err(|source| Error::Listen { addr, source })?;
    *l = Listening::On(addr);
    let app = server::router(shared.clone(), addr.port());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("dashboard on {addr}: {e}");
        }
    });
    Ok(addr)
}

async fn new_token(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> Response {
    let addr = match listen(&shared) {
        Ok(a) => a,
        Err(e @ Error::Off) => return proxy::error(StatusCode::CONFLICT, &e.to_string()),
        Err(e) => return proxy::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let token = match shared.vault.mint_token() {
        Ok(t) => t,
        Err(e) => return proxy::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let url = format!("http://{}/login?token={token}", url_host(addr));
    let mut answer = serde_json::json!({
        "URL": url,
        "Address": addr.to_string(),
        "ExpiresIn": vault::TOKEN_TTL.as_secs(),
        "PageBuilt": PAGE_BUILT,
    });
    if q.iter()
        .any(|(k, v)| k == "file" && matches!(v.as_str(), "1" | "true"))
    {
        match login_page::write(&shared.state_dir, &url, vault::TOKEN_TTL) {
            Ok(path) => answer["File"] = path.display().to_string().into(),
            Err(e) => return proxy::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// The host:port a browser on this machine reaches `addr` by (an unspecified address is
/// reached on loopback).
fn url_host(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_reachable_address() {
        assert_eq!(
            url_host("0.0.0.0:80".parse().unwrap_or(DEFAULT_ADDR)),
            "127.0.0.1:80"
        );
        assert_eq!(
            url_host("[::]:80".parse().unwrap_or(DEFAULT_ADDR)),
            "[::1]:80"
        );
        assert_eq!(
            url_host("10.1.2.3:80".parse().unwrap_or(DEFAULT_ADDR)),
            "10.1.2.3:80"
        );
    }
}
