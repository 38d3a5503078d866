//! The connection to the daemon: HTTP/1.1 over its Unix socket, the Docker Engine API
//! (`/v1.44`), errors turned into docker's wording, the hijacked streams of attach and exec,
//! and the zero-set-up start of the daemon when the default socket does not answer.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use berth_compose::JsonMessages;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

/// The socket the CLI uses unless `-H` or `BERTH_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
/// The API version every request is prefixed with.
pub const API_VERSION: &str = "1.44";
const DAEMON_LOG: &str = "/run/berth/daemon.log";

/// A request body: empty, bytes, or a stream (tar uploads).
pub type Body = BoxBody<Bytes, io::Error>;

/// An error the daemon answered with: docker prints it as "Error response from daemon: …".
#[derive(Debug)]
pub struct DaemonError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `message` of the JSON error body.
    pub message: String,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

/// The daemon could not be reached at all.
#[derive(Debug)]
pub struct ConnectError {
    host: String,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cannot connect to the berth daemon at {}. Is the berth daemon running?",
            self.host
        )
    }
}

impl std::error::Error for ConnectError {}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    socket: PathBuf,
    autostart: bool,
}

/// A buffered answer.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).context("decoding the daemon's answer")
    }
}

/// An empty body.
pub fn empty() -> Body {
    bytes_body(Bytes::new())
}

/// A JSON body.
pub fn json_body(v: &Value) -> Body {
    bytes_body(v.to_string())
}

/// A body already in memory (a context tar, a Dockerfile, an archive).
pub fn bytes_body(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A body streamed from a reader (a tar file or stdin), never buffered whole.
pub fn reader_body<R: tokio::io::AsyncRead + Unpin + Send + Sync + 'static>(r: R) -> Body {
    let stream = futures_util::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Percent-encodes a query value (compose's requests and the CLI's are encoded alike).
pub use berth_compose::enc;

/// Builds `path?k=v&…` from pairs, leaving out empty values.
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

static STARTED_DAEMON: AtomicBool = AtomicBool::new(false);

impl Client {
    /// A client of `host` (`unix:///path`), `BERTH_HOST`, or the default socket.
    pub fn new(host: Option<String>) -> Result<Client> {
        let host = host
            .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let socket = match host.strip_prefix("unix://") {
            Some(p) => PathBuf::from(p),
            None if host.starts_with('/') => PathBuf::from(&host),
            None => {
                return Err(anyhow!(
                    "unsupported host {host:?}: berth speaks only unix:// sockets"
                ))
            }
        };
        let autostart = host == DEFAULT_HOST;
        Ok(Client {
            host,
            socket,
            autostart,
        })
    }

    /// The same client, which never starts a daemon (shell completion must not).
    pub fn without_autostart(mut self) -> Client {
        self.autostart = false;
        self
    }

    async fn dial(&self) -> Result<UnixStream> {
        match connect(&self.socket).await {
            Ok(s) => Ok(s),
            Err(e)
                if self.autostart
                    && matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                    ) =>
            {
                self.start_daemon().await?;
                connect(&self.socket)
                    .await
                    .map_err(|_| self.connect_error())
            }
            Err(_) => Err(self.connect_error()),
        }
    }

    fn connect_error(&self) -> anyhow::Error {
        anyhow!(ConnectError {
            host: self.host.clone()
        })
    }

    /// Zero set-up: start `berth daemon` in its own session, its output appended to
    /// /run/berth/daemon.log, then wait (up to 10 s) until `/_ping` answers.
    async fn start_daemon(&self) -> Result<()> {
        if STARTED_DAEMON.swap(true, Ordering::SeqCst) {
            return Err(self.connect_error());
        }
        let mut child = match spawn_daemon(&self.socket) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("berth: could not start the daemon: {e:#}");
                return Err(self.connect_error());
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut delay = Duration::from_millis(5);
        while Instant::now() < deadline {
            if let Ok(s) = connect(&self.socket).await {
                if ping(s).await {
                    return Ok(());
                }
            }
            // A daemon that exited (bad config, another one holding the lock) will not answer.
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("berth: the daemon exited ({status}); see {DAEMON_LOG}");
                return Err(self.connect_error());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        Err(self.connect_error())
    }

    async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>> {
        let io = TokioIo::new(self.dial().await?);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|_| self.connect_error())?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        sender
            .send_request(req)
            .await
            .with_context(|| format!("talking to the daemon at {}", self.host))
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, String)],
    ) -> Result<Request<Body>> {
        let uri = if path.starts_with("/_ping") {
            path.to_string()
        } else {
            // BERTH_API_VERSION lets the CLI talk to an older daemon (dockerd 20.10 speaks 1.41).
            let v = std::env::var("BERTH_API_VERSION").unwrap_or_else(|_| API_VERSION.to_string());
            format!("/v{v}{path}")
        };
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "api.moby.localhost")
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        Ok(b.body(body)?)
    }

    /// Sends a request and returns the streaming answer, turning error statuses into
    /// `DaemonError`.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>> {
        let req = self.build(method, path, body, headers)?;
        let resp = self.send(req).await?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            return Err(daemon_error(status, &body).into());
        }
        Ok(resp)
    }

    /// Sends a request and buffers the answer.
    pub async fn call(&self, method: Method, path: &str, body: Body) -> Result<Reply> {
        self.call_with(method, path, body, &[]).await
    }

    /// `call` with extra headers.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, String)],
    ) -> Result<Reply> {
        let resp = self.stream(method, path, body, headers).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply { status, body })
    }

    /// GET returning JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, empty()).await?.json()
    }

    /// POST of a JSON body returning JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        self.call_with(
            Method::POST,
            path,
            json_body(body),
            &[("Content-Type", "application/json".into())],
        )
        .await?
        .json()
    }

    /// POST with no body.
    pub async fn post(&self, path: &str) -> Result<Reply> {
        self.call(Method::POST, path, empty()).await
    }

    /// The hijack of attach and exec start: `Upgrade: tcp`, the daemon answers 101 and the
    /// connection becomes the raw stream. A daemon that answers 200 instead streams the
    /// output in the body (then no stdin can be sent).
    pub async fn hijack(&self, path: &str, body: Option<&Value>) -> Result<Hijacked> {
        let mut headers = vec![
            ("Connection", "Upgrade".to_string()),
            ("Upgrade", "tcp".to_string()),
        ];
        let b = match body {
            Some(v) => {
                headers.push(("Content-Type", "application/json".into()));
                json_body(v)
            }
            None => empty(),
        };
        let resp = self.stream(Method::POST, path, b, &headers).await?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let up = hyper::upgrade::on(resp)
                .await
                .context("upgrading the connection")?;
            Ok(Hijacked::Raw(TokioIo::new(up)))
        } else {
            Ok(Hijacked::Body(resp.into_body()))
        }
    }
}

/// A hijacked connection.
#[derive(Debug)]
pub enum Hijacked {
    /// Both directions, after a 101.
    Raw(TokioIo<hyper::upgrade::Upgraded>),
    /// Output only, in an HTTP body.
    Body(Incoming),
}

/// Turns an error answer into docker's message.
pub fn daemon_error(status: StatusCode, body: &[u8]) -> DaemonError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| {
            let t = String::from_utf8_lossy(body).trim().to_string();
            if t.is_empty() {
                format!("{status}")
            } else {
                t
            }
        });
    DaemonError { status, message }
}

async fn ping(stream: UnixStream) -> bool {
    let Ok((mut sender, conn)) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let Ok(req) = Request::get("/_ping")
        .header("Host", "api.moby.localhost")
        .body(empty())
    else {
        return false;
    };
    matches!(sender.send_request(req).await, Ok(r) if r.status().is_success())
}

fn spawn_daemon(socket: &Path) -> Result<std::process::Child> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    use std::os::unix::process::CommandExt;
    // The default exec root, which the daemon keeps 0700 (docs/security.md), then the socket's
    // directory (0711, as the daemon makes it); the log holds whatever the daemon says: root's
    // alone.
    let create = |dir: &Path, mode| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
    };
    create(Path::new("/run/berth"), 0o700).context("creating /run/berth")?;
    if let Some(parent) = socket.parent() {
        create(parent, 0o711).with_context(|| format!("creating {}", parent.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(DAEMON_LOG)
        .with_context(|| format!("opening {DAEMON_LOG}"))?;
    let exe = std::env::current_exe().context("finding the berth binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent; it only
    // detaches the child from our session and terminal so the daemon outlives this CLI.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(io::Error::from)?;
            Ok(())
        });
    }
    cmd.spawn().context("spawning `berth daemon`")
}

/// Reads a streaming body of JSON messages (pull, push, load, build, events, stats), calling
/// `each` per object; messages may span chunks or share one.
pub async fn each_json<F>(body: Incoming, mut each: F) -> Result<()>
where
    F: FnMut(Value) -> Result<bool>,
{
    let mut stream = body.into_data_stream();
    let mut messages = JsonMessages::default();
    while let Some(chunk) = stream.next().await {
        messages.push(&chunk?);
        while let Some(v) = messages.next_message() {
            if !each(v.context("decoding the daemon's stream")?)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Connects to the daemon's socket; a path past sun_path's 108 bytes through a descriptor of
/// its directory (a unix connect does not wait on anything, so the blocking call is brief).
async fn connect(path: &std::path::Path) -> io::Result<UnixStream> {
    if path.as_os_str().len() < 100 {
        return UnixStream::connect(path).await;
    }
    let s = berth_monitor::sock::connect_path(path)?;
    s.set_nonblocking(true)?;
    UnixStream::from_std(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(
            with_query(
                "/containers/json",
                &[
                    ("all", "1".into()),
                    ("filters", r#"{"status":["exited"]}"#.into()),
                    ("x", String::new())
                ]
            ),
            "/containers/json?all=1&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D"
        );
        assert_eq!(with_query("/p", &[]), "/p");
    }

    #[test]
    fn errors_read_the_message() {
        let e = daemon_error(
            StatusCode::NOT_FOUND,
            br#"{"message":"No such container: x"}"#,
        );
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: x"
        );
        let e = daemon_error(StatusCode::INTERNAL_SERVER_ERROR, b"boom\n");
        assert_eq!(e.to_string(), "Error response from daemon: boom");
    }

    #[test]
    fn hosts_parse() {
        let c = Client::new(Some("unix:///tmp/x.sock".into())).unwrap();
        assert_eq!(c.socket, PathBuf::from("/tmp/x.sock"));
        assert!(!c.autostart);
        assert!(Client::new(Some("tcp://1.2.3.4:2375".into())).is_err());
    }
}
