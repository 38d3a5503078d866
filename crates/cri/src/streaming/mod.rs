//! The streaming server: Exec, Attach and PortForward return a one-time URL on it; kubelet
//! (or crictl) then upgrades an HTTP request to that URL to SPDY/3.1 or to a WebSocket and
//! speaks Kubernetes' channel protocols over it (stdin, stdout, stderr, the error stream with
//! the exit status, terminal resizes; for port forwarding, a data and an error stream per
//! connection).

mod portforward;
mod remotecommand;
mod spdy;
mod websocket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

use crate::error::{Error, Result};
use crate::pods::is_running;
use crate::proto as pb;
use crate::service::Cri;

/// How long a URL may wait for its request (kubelet's streaming server uses a minute too).
const TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// What a URL was made for.
#[derive(Debug, Clone)]
pub enum Pending {
    Exec(pb::ExecRequest),
    Attach(pb::AttachRequest),
    PortForward(pb::PortForwardRequest),
}

/// URLs handed out and not used yet.
#[derive(Debug, Default)]
pub struct Tokens {
    all: Mutex<HashMap<String, (Instant, Pending)>>,
}

impl Tokens {
    fn insert(&self, p: Pending) -> Result<String> {
        let mut raw = [0u8; 16];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom")
                .map_err(|e| Error::Internal(format!("open /dev/urandom: {e}")))?,
            &mut raw,
        )
        .map_err(|e| Error::Internal(format!("read /dev/urandom: {e}")))?;
        let token = hex::encode(raw);
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, (at, _)| at.elapsed() < TOKEN_LIFETIME);
        all.insert(token.clone(), (Instant::now(), p));
        Ok(token)
    }

    /// The request a token stands for; each token serves once.
    fn take(&self, token: &str) -> Option<Pending> {
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        let (at, p) = all.remove(token)?;
        (at.elapsed() < TOKEN_LIFETIME).then_some(p)
    }
}

/// Binds the streaming server and serves it for as long as the daemon runs.
pub async fn start(cri: &Arc<Cri>) -> std::result::Result<(), String> {
    let listener = tokio::net::TcpListener::bind(cri.opts.stream_address)
        .await
        .map_err(|e| {
            format!(
                "listen on {} (the CRI streaming server): {e}",
                cri.opts.stream_address
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("the streaming server's address: {e}"))?;
    let host = if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    *cri.stream_base.lock().unwrap_or_else(|p| p.into_inner()) = format!("http://{host}");
    let cri = cri.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let cri = cri.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let cri = cri.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(cri, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(())
}

impl Cri {
    fn stream_url(&self, kind: &str, p: Pending) -> Result<String> {
        let token = self.tokens.insert(p)?;
        let base = self
            .stream_base
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(format!("{base}/{kind}/{token}"))
    }

    pub fn stream_exec(&self, r: pb::ExecRequest) -> Result<String> {
        let c = self.find_container(&r.container_id)?;
        if !is_running(&c) {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        if r.cmd.is_empty() {
            return Err(Error::InvalidArgument("exec command is empty".into()));
        }
        check_streams(r.stdin, r.stdout, r.stderr, r.tty)?;
        self.stream_url("exec", Pending::Exec(r))
    }

    pub fn stream_attach(&self, r: pb::AttachRequest) -> Result<String> {
        let c = self.find_container(&r.container_id)?;
        if !is_running(&c) {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        check_streams(r.stdin, r.stdout, r.stderr, r.tty)?;
        self.stream_url("attach", Pending::Attach(r))
    }

    pub fn stream_port_forward(&self, r: pb::PortForwardRequest) -> Result<String> {
        let pod = self.find_pod(&r.pod_sandbox_id)?.ok_or_else(|| {
            Error::NotFound(format!("pod sandbox {:?} not found", r.pod_sandbox_id))
        })?;
        if !is_running(&pod) {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        if let Some(p) = r.port.iter().find(|p| !(1..=65535).contains(*p)) {
            return Err(Error::InvalidArgument(format!("invalid port {p}")));
        }
        self.stream_url("portforward", Pending::PortForward(r))
    }
}

/// The stream flags kubelet's server accepts: at least one stream, no stderr with a tty.
fn check_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<()> {
    if !stdin && !stdout && !stderr {
        return Err(Error::InvalidArgument(
            "one of stdin, stdout, or stderr must be set".into(),
        ));
    }
    if tty && stderr {
        return Err(Error::InvalidArgument(
            "tty and stderr cannot both be true".into(),
        ));
    }
    Ok(())
}

/// The protocols of Kubernetes' remote command (exec, attach), the server's preference first.
const SPDY_COMMAND: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
const WS_COMMAND: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
const SPDY_PORTFORWARD: &[&str] = &["portforward.k8s.io"];
const WS_PORTFORWARD: &[&str] = &["v4.channel.k8s.io", "channel.k8s.io"];

type Body = Full<Bytes>;

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text + "\n")));
    *r.status_mut() = status;
    r
}

/// Every value of `name`, also comma-separated ones.
fn header_values(req: &Request<hyper::body::Incoming>, name: &str) -> Vec<String> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .collect()
}

async fn handle(cri: Arc<Cri>, mut req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (kind, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Some(pending) = cri.tokens.take(token) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("no streaming session at {path} (the URL is used or expired)"),
        );
    };
    let wanted = matches!(
        (&pending, kind),
        (Pending::Exec(_), "exec")
            | (Pending::Attach(_), "attach")
            | (Pending::PortForward(_), "portforward")
    );
    if !wanted {
        return plain(
            StatusCode::NOT_FOUND,
            format!("no {kind} session at {path}"),
        );
    }
    let upgrade = header_values(&req, "upgrade")
        .first()
        .map(|u| u.to_ascii_lowercase())
        .unwrap_or_default();
    let forward = matches!(pending, Pending::PortForward(_));
    let (transport, supported, offered) = match upgrade.as_str() {
        "websocket" => (
            Transport::WebSocket,
            if forward { WS_PORTFORWARD } else { WS_COMMAND },
            header_values(&req, "sec-websocket-protocol"),
        ),
        "spdy/3.1" => (
            Transport::Spdy,
            if forward {
                SPDY_PORTFORWARD
            } else {
                SPDY_COMMAND
            },
            header_values(&req, "x-stream-protocol-version"),
        ),
        _ => {
            return plain(
                StatusCode::BAD_REQUEST,
                "unable to upgrade: the request asks for neither SPDY/3.1 nor websocket".into(),
            )
        }
    };
    let protocol = supported
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .map(|p| p.to_string());
    let protocol = match (protocol, transport) {
        (Some(p), _) => p,
        // A WebSocket without a subprotocol speaks the plain channel protocol.
        (None, Transport::WebSocket) if offered.is_empty() => String::new(),
        (None, _) => {
            let mut r = plain(
                StatusCode::FORBIDDEN,
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"
                ),
            );
            if let Ok(v) = supported.join(", ").parse() {
                r.headers_mut()
                    .insert("x-accepted-stream-protocol-versions", v);
            }
            return r;
        }
    };
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    match transport {
        Transport::Spdy => {
            h.insert(
                hyper::header::UPGRADE,
                hyper::header::HeaderValue::from_static("SPDY/3.1"),
            );
            if let Ok(v) = protocol.parse() {
                h.insert("x-stream-protocol-version", v);
            }
        }
        Transport::WebSocket => {
            let key = header_values(&req, "sec-websocket-key").join(",");
            h.insert(
                hyper::header::UPGRADE,
                hyper::header::HeaderValue::from_static("websocket"),
            );
            if let Ok(v) = websocket::accept_key(&key).parse() {
                h.insert("sec-websocket-accept", v);
            }
            if !protocol.is_empty() {
                if let Ok(v) = protocol.parse() {
                    h.insert("sec-websocket-protocol", v);
                }
            }
        }
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let session = Session {
            transport,
            protocol,
        };
        match pending {
            Pending::Exec(r) => remotecommand::exec(cri, r, session, io).await,
            Pending::Attach(r) => remotecommand::attach(cri, r, session, io).await,
            Pending::PortForward(r) => portforward::serve(cri, r, session, io, &query).await,
        }
    });
    resp
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Spdy,
    WebSocket,
}

/// The negotiated transport and protocol of one upgraded connection.
#[derive(Debug, Clone)]
struct Session {
    transport: Transport,
    protocol: String,
}

impl Session {
    /// Protocols from v4 on report the exit as a JSON Status; older ones as plain text.
    fn json_status(&self) -> bool {
        self.protocol.starts_with("v4.") || self.protocol.starts_with("v5.")
    }
}
