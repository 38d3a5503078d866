//! `docker search` and `docker login`. Search asks the registry's `/v1/search` (which Docker
//! Hub serves); a registry without it (distribution) is searched through `/v2/_catalog`, as
//! podman does. Login proves the credentials against `/v2/` (basic) or the token service
//! (bearer), as dockerd does.

use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::Challenge;
use crate::error::{Error, Result};
use crate::options::Credentials;
use crate::transport::{read_limited, send_once, unexpected, Registries};

/// Docker Hub's index address, the key docker's config.json uses for it.
pub const DOCKER_HUB_INDEX: &str = "https://index.docker.io/v1/";

/// Most catalog pages read for one search.
const MAX_CATALOG_PAGES: usize = 50;

/// One search hit, as `/v1/search` and the Engine API spell it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SearchResult {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

/// `https://index.docker.io/v1/`, `localhost:5000`, `http://h:1/` → the registry's domain.
pub fn server_domain(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Splits a search term into registry domain and query, as docker does: a first component
/// that looks like a host names the registry.
fn split_term(term: &str) -> (String, String) {
    if let Some((first, rest)) = term.split_once('/') {
        if first.contains(['.', ':']) || first == "localhost" {
            return (server_domain(first), rest.to_string());
        }
    }
    ("docker.io".to_string(), term.to_string())
}

impl Registries {
    /// Searches for `term`; at most `limit` results (0: the registry's default, 25).
    pub async fn search(
        &self,
        term: &str,
        limit: usize,
        creds: Option<&Credentials>,
    ) -> Result<Vec<SearchResult>> {
        let (domain, query) = split_term(term);
        let limit = if limit == 0 { 25 } else { limit };
        if !(1..=100).contains(&limit) {
            return Err(Error::Invalid(format!(
                "limit {limit} is outside the range of [1, 100]"
            )));
        }
        let (base, client) = if domain == "docker.io" {
            // Docker Hub's search lives on its index, not on the registry API host.
            ("https://index.docker.io".to_string(), self.client(&domain)?)
        } else {
            let ep = self.endpoint(&domain, None).await?;
            (ep.base, ep.client)
        };
        let url = format!("{base}/v1/search");
        let n = limit.to_string();
        let mut req = client
            .get(&url)
            .query(&[("q", query.as_str()), ("n", n.as_str())]);
        if let Some(b) = creds.and_then(Credentials::basic) {
            req = req.header(AUTHORIZATION, b);
        }
        let resp = send_once(req, &url, self.opts.timeout).await?;
        if resp.status().is_success() {
            #[derive(Deserialize)]
            struct V1 {
                #[serde(default)]
                results: Vec<SearchResult>,
            }
            let body = read_limited(resp, 16 << 20, &url).await?;
            let v: V1 = serde_json::from_slice(&body).map_err(|e| Error::Status {
                method: "GET",
                url: url.clone(),
                status: 200,
                detail: format!(": not a search result: {e}"),
            })?;
            let mut r = v.results;
            r.truncate(limit);
            return Ok(r);
        }
        if resp.status() != StatusCode::NOT_FOUND && resp.status() != StatusCode::UNAUTHORIZED {
            return Err(unexpected("GET", &url, resp).await);
        }
        // No v1 search here: list the catalog and match names.
        let s = self
            .session(
                &domain,
                None,
                "",
                vec!["registry:catalog:*".to_string()],
                creds,
                "search",
                term,
            )
            .await?;
        let mut out = Vec::new();
        let mut next = Some(format!("{}/v2/_catalog?n=1000", s.ep.base));
        let needle = query.to_lowercase();
        for _ in 0..MAX_CATALOG_PAGES {
            let Some(url) = next.take() else { break };
            let resp = s.get(reqwest::Method::GET, &url, HeaderMap::new()).await?;
            if !resp.status().is_success() {
                return Err(unexpected("GET", &url, resp).await);
            }
            next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|l| s.absolute(l.trim().trim_start_matches('<').trim_end_matches('>')));
            #[derive(Deserialize)]
            struct Catalog {
                #[serde(default)]
                repositories: Vec<String>,
            }
            let body = read_limited(resp, 16 << 20, &url).await?;
            let c: Catalog = serde_json::from_slice(&body).map_err(|e| Error::Status {
                method: "GET",
                url: url.clone(),
                status: 200,
                detail: format!(": not a catalog: {e}"),
            })?;
            for r in c.repositories {
                if r.to_lowercase().contains(&needle) {
                    out.push(SearchResult {
                        name: format!("{domain}/{r}"),
                        ..SearchResult::default()
                    });
                }
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Checks `creds` against `server`; returns an identity (refresh) token when the token
    /// service issued one.
    pub async fn login(&self, server: &str, creds: &Credentials) -> Result<String> {
        let domain = server_domain(server);
        let ep = self.endpoint(&domain, None).await?;
        let url = format!("{}/v2/", ep.base);
        let refused = |status: String| Error::Login {
            url: url.clone(),
            status,
        };
        match &ep.challenge {
            None => Ok(String::new()),
            Some(Challenge::Basic) => {
                let mut req = ep.client.get(&url);
                if let Some(b) = creds.basic() {
                    req = req.header(AUTHORIZATION, b);
                }
                let r = send_once(req, &url, self.opts.timeout).await?;
                if r.status().is_success() {
                    Ok(String::new())
                } else {
                    Err(refused(r.status().to_string()))
                }
            }
            Some(Challenge::Bearer { realm, service }) => {
                match self
                    .token(&ep, realm, service, &[], Some(creds), "login", server)
                    .await
                {
                    Ok(t) => Ok(t.refresh),
                    Err(Error::Unauthorized { .. }) => {
                        Err(refused(StatusCode::UNAUTHORIZED.to_string()))
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_and_servers_name_registries_as_docker_does() {
        assert_eq!(
            split_term("busybox"),
            ("docker.io".into(), "busybox".into())
        );
        assert_eq!(
            split_term("localhost:5000/app"),
            ("localhost:5000".into(), "app".into())
        );
        assert_eq!(
            split_term("user/app"),
            ("docker.io".into(), "user/app".into())
        );
        assert_eq!(server_domain(DOCKER_HUB_INDEX), "docker.io");
        assert_eq!(server_domain("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(server_domain("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
