//! HTTP to registries: one reqwest client per registry host (its TLS trust from the certs
//! dir), the scheme Docker would use (HTTPS; plain HTTP only for insecure registries and
//! loopback, after HTTPS failed), bounded time-outs, retries with back-off, and sessions
//! that carry a repository's authorization and renew it on a 401.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};

use crate::auth::{backoff, parse_challenge, Challenge};
use crate::error::{Error, Result};
use crate::options::{Credentials, RegistryOptions};

/// Docker Hub's API host; `docker.io` references are served there.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The registries the daemon talks to: settings, clients and what their `/v2/` said.
#[derive(Debug)]
pub struct Registries {
    pub(crate) opts: RegistryOptions,
    clients: Mutex<HashMap<String, reqwest::Client>>,
    /// Clients for URLs that are not registries (a build's `ADD https://…`), per host.
    url_clients: Mutex<HashMap<String, reqwest::Client>>,
    endpoints: Mutex<HashMap<String, Endpoint>>,
}

/// One registry as reached: base URL (`https://host:port`), its client and its challenge.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) challenge: Option<Challenge>,
}

/// Authorized access to one repository for one operation.
#[derive(Debug)]
pub(crate) struct Session<'a> {
    pub(crate) reg: &'a Registries,
    pub(crate) ep: Endpoint,
    pub(crate) repo: String,
    scopes: Vec<String>,
    creds: Option<Credentials>,
    action: &'static str,
    /// The image as the user named it, for messages.
    pub(crate) image: String,
    auth: tokio::sync::RwLock<Option<String>>,
}

impl Registries {
    pub fn new(opts: RegistryOptions) -> Registries {
        Registries {
            opts,
            clients: Mutex::new(HashMap::new()),
            url_clients: Mutex::new(HashMap::new()),
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// The daemon's settings.
    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// The client for `domain` (`host[:port]`), with the CAs and client certificate of
    /// `certs_dir/domain/`.
    pub(crate) fn client(&self, domain: &str) -> Result<reqwest::Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(domain) {
            return Ok(c.clone());
        }
        let mut b = self.builder(domain)?;
        if self.opts.is_insecure(domain) {
            b = b.danger_accept_invalid_certs(true);
        }
        let c = b.build().map_err(|e| Error::Tls {
            host: domain.to_string(),
            reason: format!("building the HTTP client: {e}"),
        })?;
        clients.insert(domain.to_string(), c.clone());
        Ok(c)
    }

    /// A client for URLs of `domain` (`host[:port]`) that are not a registry's (a build's
    /// `ADD https://…`): trusting the system's roots and the CAs of `certs_dir/domain/`, and
    /// presenting its client certificate, as for a registry there — but never accepting an
    /// invalid certificate, whatever `--insecure-registry` says.
    pub fn url_client(&self, domain: &str) -> Result<reqwest::Client> {
        let mut clients = self.url_clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(domain) {
            return Ok(c.clone());
        }
        let c = self.builder(domain)?.build().map_err(|e| Error::Tls {
            host: domain.to_string(),
            reason: format!("building the HTTP client: {e}"),
        })?;
        clients.insert(domain.to_string(), c.clone());
        Ok(c)
    }

    /// A client builder with the time-outs and the TLS material of `certs_dir/domain/`.
    fn builder(&self, domain: &str) -> Result<reqwest::ClientBuilder> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(self.opts.timeout)
            .read_timeout(self.opts.timeout)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(16);
        let tls_err = |reason: String| Error::Tls {
            host: domain.to_string(),
            reason,
        };
        let dir = self.opts.certs_dir.join(domain);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut names: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            names.sort();
            for p in &names {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                if ext == "crt" {
                    let pem = read(p).map_err(&tls_err)?;
                    let certs = reqwest::Certificate::from_pem_bundle(&pem)
                        .map_err(|e| tls_err(format!("CA {}: {e}", p.display())))?;
                    for c in certs {
                        b = b.add_root_certificate(c);
                    }
                } else if ext == "cert" {
                    let key = p.with_extension("key");
                    let mut pem = read(p).map_err(&tls_err)?;
                    pem.push(b'\n');
                    pem.extend(read(&key).map_err(|_| {
                        tls_err(format!(
                            "missing key {} for client certificate {}",
                            key.display(),
                            p.display()
                        ))
                    })?);
                    let id = reqwest::Identity::from_pem(&pem)
                        .map_err(|e| tls_err(format!("client certificate {}: {e}", p.display())))?;
                    b = b.identity(id);
                } else if ext == "key" && !p.with_extension("cert").exists() {
                    return Err(tls_err(format!(
                        "missing client certificate {} for key {}",
                        p.with_extension("cert").display(),
                        p.display()
                    )));
                }
            }
        }
        Ok(b)
    }

    /// How `domain` is reached: HTTPS, or for an insecure registry plain HTTP when HTTPS
    /// fails; its `/v2/` challenge is remembered. `base` overrides the URL (a mirror).
    pub(crate) async fn endpoint(&self, domain: &str, base: Option<&str>) -> Result<Endpoint> {
        let key = base.unwrap_or(domain).to_string();
        if let Some(ep) = self
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(ep.clone());
        }
        let client = self.client(domain)?;
        let host = if domain == "docker.io" {
            DOCKER_HUB_API
        } else {
            domain
        };
        let ep = match base {
            Some(b) => self.ping(&client, b.trim_end_matches('/'), true).await?,
            None if self.opts.is_insecure(domain) => {
                match self.ping(&client, &format!("https://{host}"), false).await {
                    Ok(ep) => ep,
                    Err(_) => self.ping(&client, &format!("http://{host}"), true).await?,
                }
            }
            None => self.ping(&client, &format!("https://{host}"), true).await?,
        };
        self.endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, ep.clone());
        Ok(ep)
    }

    /// `GET /v2/`: 200 (no auth) or 401 with a challenge says this is a registry.
    async fn ping(&self, client: &reqwest::Client, base: &str, retry: bool) -> Result<Endpoint> {
        let url = format!("{base}/v2/");
        let tries = if retry { self.opts.attempts.max(1) } else { 1 };
        let mut last = None;
        for n in 0..tries {
            if n > 0 {
                tokio::time::sleep(backoff(n - 1)).await;
            }
            match client.get(&url).send().await {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                    let challenge = r
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|h| h.to_str().ok())
                        .and_then(parse_challenge);
                    return Ok(Endpoint {
                        base: base.to_string(),
                        client: client.clone(),
                        challenge: challenge.or(Some(Challenge::Basic)),
                    });
                }
                Ok(r) if r.status().is_success() => {
                    return Ok(Endpoint {
                        base: base.to_string(),
                        client: client.clone(),
                        challenge: None,
                    })
                }
                Ok(r) if retryable(r.status()) => last = Some(unexpected("GET", &url, r).await),
                Ok(r) => return Err(unexpected("GET", &url, r).await),
                Err(e) => {
                    last = Some(Error::Transport {
                        method: "GET",
                        url: url.clone(),
                        cause: cause(&e, self.opts.timeout),
                    })
                }
            }
        }
        Err(last.unwrap_or(Error::Transport {
            method: "GET",
            url,
            cause: "no attempt made".to_string(),
        }))
    }

    /// A session on `repo` of `domain` with `scopes`, authorized up front.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn session(
        &self,
        domain: &str,
        base: Option<&str>,
        repo: &str,
        scopes: Vec<String>,
        creds: Option<&Credentials>,
        action: &'static str,
        image: &str,
    ) -> Result<Session<'_>> {
        let ep = self.endpoint(domain, base).await?;
        let auth = self.authorize(&ep, &scopes, creds, action, image).await?;
        Ok(Session {
            reg: self,
            ep,
            repo: repo.to_string(),
            scopes,
            creds: creds.cloned(),
            action,
            image: image.to_string(),
            auth: tokio::sync::RwLock::new(auth),
        })
    }
}

impl Session<'_> {
    /// `base/v2/<repo>/<rest>`.
    pub(crate) fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.ep.base, self.repo)
    }

    /// Resolves a `Location` the registry returned (absolute or relative to the base).
    pub(crate) fn absolute(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else {
            format!("{}/{}", self.ep.base, loc.trim_start_matches('/'))
        }
    }

    /// Sends a request with retries (time-outs, resets, 5xx, 429) and one re-authorization
    /// on a 401. `body` makes the body anew for every try.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: &(dyn Fn() -> Result<Option<reqwest::Body>> + Sync),
    ) -> Result<Response> {
        let attempts = self.reg.opts.attempts.max(1);
        let mut reauthed = false;
        let mut n = 0;
        loop {
            let mut rb = self
                .ep
                .client
                .request(method.clone(), url)
                .headers(headers.clone());
            if let Some(a) = self.auth.read().await.as_deref() {
                if let Ok(v) = HeaderValue::from_str(a) {
                    rb = rb.header(AUTHORIZATION, v);
                }
            }
            if let Some(b) = body()? {
                rb = rb.body(b);
            }
            let last_try = n + 1 >= attempts;
            match rb.send().await {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED && !reauthed => {
                    reauthed = true;
                    // The token expired, or the registry wants a scope we did not ask for.
                    let ch = r
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|h| h.to_str().ok())
                        .and_then(parse_challenge);
                    let Some(ch) = ch else { return Ok(r) };
                    let ep = Endpoint {
                        challenge: Some(ch),
                        ..self.ep.clone()
                    };
                    let a = self
                        .reg
                        .authorize(
                            &ep,
                            &self.scopes,
                            self.creds.as_ref(),
                            self.action,
                            &self.image,
                        )
                        .await?;
                    *self.auth.write().await = a;
                    continue;
                }
                Ok(r) if retryable(r.status()) && !last_try => {}
                Ok(r) => return Ok(r),
                Err(e) if last_try || e.is_builder() || e.is_redirect() => {
                    return Err(Error::Transport {
                        method: method_name(&method),
                        url: url.to_string(),
                        cause: cause(&e, self.reg.opts.timeout),
                    })
                }
                Err(_) => {}
            }
            tokio::time::sleep(backoff(n)).await;
            n += 1;
        }
    }

    /// A request without a body.
    pub(crate) async fn get(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
    ) -> Result<Response> {
        self.send(method, url, headers, &|| Ok(None)).await
    }
}

fn read(p: &Path) -> std::result::Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()))
}

fn retryable(s: StatusCode) -> bool {
    s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT
}

pub(crate) fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "HTTP",
    }
}

/// A reqwest error with its causes (reqwest's own message hides the TLS or connection
/// reason), and a plain word for a time-out.
pub fn cause(e: &reqwest::Error, timeout: std::time::Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s (timed out)", timeout.as_secs_f32());
    }
    if let Some(reason) = dns_failure(e) {
        // Go's words, as dockerd reports a registry whose name does not resolve.
        let host = e.url().and_then(|u| u.host_str()).unwrap_or("");
        return format!("dial tcp: lookup {host}: {reason}");
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// The resolver's reason when connecting failed on the name lookup (hyper's connector
/// reports it as a "dns error" whose source is getaddrinfo's failure).
fn dns_failure(e: &reqwest::Error) -> Option<String> {
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        if c.to_string() == "dns error" {
            let reason = c.source().map(|r| r.to_string()).unwrap_or_default();
            let reason = reason
                .strip_prefix("failed to lookup address information: ")
                .unwrap_or(&reason);
            return Some(reason.to_string());
        }
        src = c.source();
    }
    None
}

/// The registry's error body (`{"errors":[{"code","message"}]}`) as `code: message`, or
/// the start of whatever it sent.
pub(crate) async fn error_message(r: Response) -> String {
    let bytes = r.bytes().await.unwrap_or_default();
    let bytes = &bytes[..bytes.len().min(64 << 10)];
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        #[serde(default)]
        errors: Vec<E>,
        #[serde(default)]
        details: String,
    }
    if let Ok(es) = serde_json::from_slice::<Es>(bytes) {
        let parts: Vec<String> = es
            .errors
            .iter()
            .map(|e| {
                if e.code.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.code.to_lowercase().replace('_', " "), e.message)
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
        if !es.details.is_empty() {
            return es.details;
        }
    }
    String::from_utf8_lossy(bytes)
        .trim()
        .chars()
        .take(200)
        .collect()
}

/// An answer with a status the protocol does not allow there, with the registry's words.
pub(crate) async fn unexpected(method: &'static str, url: &str, r: Response) -> Error {
    Error::Status {
        method,
        url: url.to_string(),
        status: r.status().as_u16(),
        detail: detail(r).await,
    }
}

/// Sends a single request (no retry: logins, tokens, search) with the time-out, mapping a
/// failure to send to [`Error::Transport`].
pub(crate) async fn send_once(
    req: reqwest::RequestBuilder,
    url: &str,
    timeout: std::time::Duration,
) -> Result<Response> {
    req.timeout(timeout)
        .send()
        .await
        .map_err(|e| Error::Transport {
            method: "GET",
            url: url.to_string(),
            cause: cause(&e, timeout),
        })
}

/// `: message` for an error status, or nothing.
pub(crate) async fn detail(r: Response) -> String {
    let m = error_message(r).await;
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

/// Reads a body of at most `limit` bytes; more is an error (a manifest, a token, a config).
pub(crate) async fn read_limited(r: Response, limit: u64, url: &str) -> Result<Vec<u8>> {
    read_capped(r, limit, url, &|| {
        Error::Invalid(format!("{url}: answer larger than the {limit} byte limit"))
    })
    .await
}

/// [`read_limited`] with the caller's error for a body that is too large.
pub(crate) async fn read_capped(
    mut r: Response,
    limit: u64,
    url: &str,
    too_large: &(dyn Fn() -> Error + Sync),
) -> Result<Vec<u8>> {
    if r.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    loop {
        match r.chunk().await {
            Ok(Some(c)) => {
                if out.len() as u64 + c.len() as u64 > limit {
                    return Err(too_large());
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                return Err(Error::Transport {
                    method: "GET",
                    url: url.to_string(),
                    cause: e.to_string(),
                })
            }
        }
    }
}
