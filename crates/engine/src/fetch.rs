//! ADD of a URL in a build: an HTTP or HTTPS GET by the daemon (redirects followed), the
//! body streamed into the file the builder names, `Last-Modified` kept for the file's mtime.
//!
//! The daemon fetches, not the builder, because trust is the daemon's setting: the same
//! reqwest/rustls stack as its registry client, the system's roots plus the CAs and client
//! certificate of `--certs-dir/HOST:PORT/` for the URL's host — so a private CA is trusted
//! per host, as for registries, without touching the system's store.

use std::io::Write;
use std::path::Path;

use berth_build::Fetched;

use crate::daemon::Daemon;

impl Daemon {
    /// Downloads `url` into `dest` (blocking: called from a build's thread).
    pub fn fetch_url(&self, url: &str, dest: &Path) -> Result<Fetched, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        let host = parsed.host_str().unwrap_or_default();
        let domain = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let client = self
            .registries
            .url_client(&domain)
            .map_err(|e| e.to_string())?;
        let timeout = self.registries.options().timeout;
        let causes = |e: reqwest::Error| berth_registry::error_cause(&e, timeout);
        self.runtime.block_on(get(client, parsed, dest, &causes))
    }
}

async fn get(
    client: reqwest::Client,
    url: reqwest::Url,
    dest: &Path,
    causes: &dyn Fn(reqwest::Error) -> String,
) -> Result<Fetched, String> {
    let mut resp = client.get(url).send().await.map_err(causes)?;
    if !resp.status().is_success() {
        return Err(format!("HTTP status {}", resp.status()));
    }
    let name = resp
        .url()
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|n| !n.is_empty())
        .map(crate::api::images::percent_decode);
    let last_modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(berth_image::timefmt::parse_http_date);
    // A download into the build's scratch space: root's alone, as Docker gives ADD's file.
    let mut file = crate::files::create_with_mode(dest, 0o600)
        .map_err(|e| format!("create {}: {e}", dest.display()))?;
    while let Some(chunk) = resp.chunk().await.map_err(causes)? {
        file.write_all(&chunk)
            .map_err(|e| format!("write {}: {e}", dest.display()))?;
    }
    Ok(Fetched {
        name,
        last_modified,
    })
}
