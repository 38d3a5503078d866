//! Real registries for the tests: Debian's docker-registry (the CNCF distribution) on
//! 127.0.0.1 with a free port and its own config and storage under a temp dir — plain, with
//! htpasswd, with the token flow (a token service the test runs: real RS256 JWTs that the
//! registry verifies), or with TLS from a CA the test makes (and client certificates) —
//! stopped by pid and removed on drop. Also small raw TCP servers for what a real registry
//! will not do: hang, answer 500, serve a malformed or oversized manifest, or cut a
//! download short (a proxy in front of the real registry).
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::netns::Netns;
use super::unique;

pub const USER: &str = "berth";
pub const PASSWORD: &str = "s3cret-pw";

/// How the registry guards itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    Htpasswd,
    Token,
}

/// TLS: a CA the test makes signs the server certificate (for 127.0.0.1, localhost and
/// this machine's host name); with `client_certs` the registry requires a client
/// certificate signed by the same CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tls {
    pub client_certs: bool,
}

pub struct Registry {
    pub dir: PathBuf,
    pub port: u16,
    /// `127.0.0.1:PORT`.
    pub host: String,
    child: Option<Child>,
    token: Option<Child>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sh(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// This machine's host name when it resolves to 127.0.0.1 (then TLS to it is verified:
/// unlike an IP in 127.0.0.0/8, a name is not an insecure registry by default).
pub fn loopback_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_string();
    let o = Command::new("getent")
        .args(["ahostsv4", &name])
        .output()
        .ok()?;
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .any(|l| l.starts_with("127.0.0.1 "))
        .then_some(name)
}

impl Registry {
    pub fn start(auth: Auth, tls: Option<Tls>) -> Registry {
        Registry::start_in(auth, tls, None)
    }

    /// A registry inside `netns` (127.0.0.1 there), or on the host's loopback.
    pub fn start_in(auth: Auth, tls: Option<Tls>, netns: Option<&Netns>) -> Registry {
        let listening = |p: u16| match netns {
            Some(n) => n.listening(p),
            None => TcpStream::connect(("127.0.0.1", p)).is_ok(),
        };
        let dir = PathBuf::from("/tmp").join(unique("breg"));
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let port = free_port();
        let mut reg = Registry {
            host: format!("127.0.0.1:{port}"),
            dir: dir.clone(),
            port,
            child: None,
            token: None,
        };
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        );
        if tls.is_some() {
            make_tls(&dir);
            cfg.push_str(&format!(
                "  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\n",
                d = dir.display()
            ));
            if tls.is_some_and(|t| t.client_certs) {
                cfg.push_str(&format!(
                    "    clientcas:\n      - {}/ca.crt\n",
                    dir.display()
                ));
            }
        }
        match auth {
            Auth::None => {}
            Auth::Htpasswd => {
                let o = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .unwrap();
                assert!(o.status.success());
                std::fs::write(dir.join("htpasswd"), &o.stdout).unwrap();
                cfg.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}/htpasswd\n",
                    dir.display()
                ));
            }
            Auth::Token => {
                let tport = free_port();
                sh(Command::new("openssl")
                    .args([
                        "req",
                        "-x509",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=berth-test-token-signer",
                        "-keyout",
                        &format!("{}/token.key", dir.display()),
                        "-out",
                        &format!("{}/token.crt", dir.display()),
                    ])
                    .stderr(Stdio::piped()));
                let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/registry/token_server.py");
                let log = std::fs::File::create(dir.join("token.log")).unwrap();
                let child = netns
                    .map_or_else(
                        || Command::new("/usr/bin/python3"),
                        |n| n.command("/usr/bin/python3"),
                    )
                    .arg(&script)
                    .args([
                        tport.to_string(),
                        format!("{}/token.key", dir.display()),
                        format!("{}/token.crt", dir.display()),
                        "berth-test-issuer".into(),
                        USER.into(),
                        PASSWORD.into(),
                    ])
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .unwrap();
                reg.token = Some(child);
                wait_until_listening(tport, &dir.join("token.log"), &listening);
                cfg.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{tport}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}/token.crt\n",
                    dir.display()
                ));
            }
        }
        std::fs::write(dir.join("config.yml"), cfg).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = netns
            .map_or_else(
                || Command::new("docker-registry"),
                |n| n.command("docker-registry"),
            )
            .args(["serve"])
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (scripts/install-deps.sh installs it)");
        reg.child = Some(child);
        wait_until_listening(port, &dir.join("registry.log"), &listening);
        reg
    }

    /// A certs dir for the daemon: `DIR/<name>:PORT/ca.crt` (+ client.cert/.key).
    pub fn certs_dir(&self, names: &[&str], client_cert: bool) -> PathBuf {
        let certs = self.dir.join("certs.d");
        for n in names {
            let d = certs.join(format!("{n}:{}", self.port));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::copy(self.dir.join("ca.crt"), d.join("ca.crt")).unwrap();
            if client_cert {
                std::fs::copy(self.dir.join("client.cert"), d.join("client.cert")).unwrap();
                std::fs::copy(self.dir.join("client.key"), d.join("client.key")).unwrap();
            }
        }
        certs
    }

    /// The data file of a blob in the registry's storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for c in [self.child.take(), self.token.take()].into_iter().flatten() {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_port(port: u16, log: &Path) {
    wait_until_listening(port, log, &|p| TcpStream::connect(("127.0.0.1", p)).is_ok())
}

fn wait_until_listening(port: u16, log: &Path, listening: &dyn Fn(u16) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if listening(port) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "nothing listens on 127.0.0.1:{port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A CA (`ca.crt`, `ca.key`) and certificates it signs in `dir`: `server.crt`/`.key` for
/// 127.0.0.1, localhost and this machine's host name, `client.cert`/`.key`.
pub fn make_tls(dir: &Path) {
    let d = dir.display().to_string();
    let mut san = "subjectAltName=IP:127.0.0.1,DNS:localhost".to_string();
    if let Some(h) = loopback_hostname() {
        san.push_str(&format!(",DNS:{h}"));
    }
    std::fs::write(dir.join("server.ext"), format!("{san}\n")).unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    let run = |args: &[&str]| sh(Command::new("openssl").args(args).stderr(Stdio::piped()));
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=berth-test-ca",
        "-keyout",
        &format!("{d}/ca.key"),
        "-out",
        &format!("{d}/ca.crt"),
    ]);
    for (name, cn) in [("server", "127.0.0.1"), ("client", "berth-test-client")] {
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{d}/{name}.key"),
            "-out",
            &format!("{d}/{name}.csr"),
        ]);
        let out = if name == "server" {
            format!("{d}/server.crt")
        } else {
            format!("{d}/client.cert")
        };
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{d}/{name}.csr"),
            "-CA",
            &format!("{d}/ca.crt"),
            "-CAkey",
            &format!("{d}/ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{d}/{name}.ext"),
            "-out",
            &out,
        ]);
    }
}

/// An HTTPS server of static files on 127.0.0.1 (`tests/registry/https_files.py`), its
/// certificate from a CA the test makes: `root` holds what it serves, `certs_dir()` is a
/// daemon's `--certs-dir` that trusts it. Stopped by pid and removed on drop.
pub struct TlsFileServer {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl TlsFileServer {
    pub fn start() -> TlsFileServer {
        let dir = PathBuf::from("/tmp").join(unique("bhttps"));
        std::fs::create_dir_all(dir.join("root")).unwrap();
        make_tls(&dir);
        let port = free_port();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/registry/https_files.py");
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(dir.join("root"))
            .arg(dir.join("server.crt"))
            .arg(dir.join("server.key"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let s = TlsFileServer {
            dir,
            port,
            child: Some(child),
        };
        wait_port(port, &s.dir.join("server.log"));
        s
    }

    /// Where the served files go.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// `https://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/{path}", self.port)
    }

    /// A certs dir trusting this server's CA: `DIR/127.0.0.1:PORT/ca.crt`.
    pub fn certs_dir(&self) -> PathBuf {
        let certs = self.dir.join("certs.d");
        let d = certs.join(format!("127.0.0.1:{}", self.port));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(self.dir.join("ca.crt"), d.join("ca.crt")).unwrap();
        certs
    }
}

impl Drop for TlsFileServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A raw TCP server on 127.0.0.1 answering every request with what `answer` returns for
/// its request line (None: never answer, hold the connection). Stops on drop.
pub struct RawServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RawServer {
    pub fn start(answer: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) -> RawServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let answer = Arc::new(answer);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let answer = answer.clone();
                        let stop3 = stop2.clone();
                        held.push(std::thread::spawn(move || serve_raw(s, &*answer, &stop3)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for h in held {
                let _ = h.join();
            }
        });
        RawServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

fn serve_raw(mut s: TcpStream, answer: &dyn Fn(&str) -> Option<Vec<u8>>, stop: &AtomicBool) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => continue,
        }
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let line = head.lines().next().unwrap_or("").to_string();
            match answer(&line) {
                Some(resp) => {
                    if s.write_all(&resp).is_err() {
                        return;
                    }
                }
                None => {
                    // Hold the connection, silent, until the test ends.
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    return;
                }
            }
        }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP response with a JSON-ish body.
pub fn http_response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that cuts a connection once it has
/// carried `cut_after` bytes towards the client, `cuts` times (usize::MAX: always); counts
/// the bytes it forwarded to clients.
pub struct CuttingProxy {
    pub port: u16,
    pub to_client: Arc<AtomicU64>,
    /// Whether a client sent a `Range: bytes=N-` request (a resumed download).
    pub saw_range: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CuttingProxy {
    pub fn start(upstream: u16, cut_after: u64, cuts: usize) -> CuttingProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let to_client = Arc::new(AtomicU64::new(0));
        let saw_range = Arc::new(AtomicBool::new(false));
        let left = Arc::new(AtomicUsize::new(cuts));
        let (stop2, count, range2) = (stop.clone(), to_client.clone(), saw_range.clone());
        let thread = std::thread::spawn(move || {
            let mut threads = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let Ok((c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let Ok(u) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, u2) = (c.try_clone().unwrap(), u.try_clone().unwrap());
                let (s1, r1) = (stop2.clone(), range2.clone());
                threads.push(std::thread::spawn(move || {
                    pipe(c2, u2, &s1, None, Some(&r1))
                }));
                let (count, left, s2) = (count.clone(), left.clone(), stop2.clone());
                threads.push(std::thread::spawn(move || {
                    pipe(u, c, &s2, Some((cut_after, &count, &left)), None)
                }));
            }
            for t in threads {
                let _ = t.join();
            }
        });
        CuttingProxy {
            port,
            to_client,
            saw_range,
            stop,
            thread: Some(thread),
        }
    }
}

fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    stop: &AtomicBool,
    cut: Option<(u64, &AtomicU64, &AtomicUsize)>,
    range: Option<&AtomicBool>,
) {
    from.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 16384];
    let mut carried = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => break,
        };
        if let Some(r) = range {
            let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            if text.contains("\r\nrange: bytes=") {
                r.store(true, Ordering::Relaxed);
            }
        }
        let mut cutting = false;
        if let Some((after, count, left)) = cut {
            if carried + n as u64 > after && left.load(Ordering::Relaxed) > 0 {
                n = after.saturating_sub(carried) as usize;
                cutting = true;
                let _ = left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                    if l == usize::MAX {
                        Some(l)
                    } else {
                        l.checked_sub(1)
                    }
                });
            }
            count.fetch_add(n as u64, Ordering::Relaxed);
        }
        carried += n as u64;
        if to.write_all(&buf[..n]).is_err() || cutting {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop's connections: they end on their read timeouts.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
