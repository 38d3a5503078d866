//! Auth as Docker Hub and distribution do it: the registry's `/v2/` answers 401 with a
//! `WWW-Authenticate` challenge; `Basic` takes the credentials on every request, `Bearer`
//! names a token service (realm, service) from which a token for the needed scopes
//! (`repository:NAME:pull,push`) is fetched with the credentials, or anonymously.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::options::Credentials;
use crate::transport::{send_once, Endpoint, Registries};

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer { realm: String, service: String },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub(crate) fn parse_challenge(h: &str) -> Option<Challenge> {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = std::collections::HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let Some((k, v)) = s.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let v = v.trim_start();
        let (val, after) = if let Some(q) = v.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match v.find(',') {
                Some(end) => (&v[..end], &v[end..]),
                None => (v, ""),
            }
        };
        params.insert(k, val.to_string());
        s = after.trim_start().trim_start_matches(',').trim_start();
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.remove("realm")?,
            service: params.remove("service").unwrap_or_default(),
        }),
        _ => None,
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    refresh_token: String,
}

/// What a token request gives back.
pub(crate) struct Token {
    pub(crate) bearer: String,
    /// A refresh token (the `IdentityToken` of a login), when the service issued one.
    pub(crate) refresh: String,
}

impl Registries {
    /// The `Authorization` header value for `scopes` on `ep`, or None for anonymous access.
    /// `action` and `target` name what is being done, for the error a refusal gives.
    pub(crate) async fn authorize(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        creds: Option<&Credentials>,
        action: &'static str,
        target: &str,
    ) -> Result<Option<String>> {
        if let Some(c) = creds {
            if !c.registrytoken.is_empty() {
                return Ok(Some(format!("Bearer {}", c.registrytoken)));
            }
        }
        match &ep.challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(creds.and_then(Credentials::basic)),
            Some(Challenge::Bearer { realm, service }) => {
                let t = self
                    .token(ep, realm, service, scopes, creds, action, target)
                    .await?;
                Ok(Some(format!("Bearer {}", t.bearer)))
            }
        }
    }

    /// Fetches a token from the token service. With an identity token, the OAuth2
    /// refresh-token grant (POST), else a GET with basic credentials (or none).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: &str,
        scopes: &[String],
        creds: Option<&Credentials>,
        action: &'static str,
        target: &str,
    ) -> Result<Token> {
        let url = realm.to_string();
        let mut q: Vec<(&str, &str)> = Vec::new();
        if !service.is_empty() {
            q.push(("service", service));
        }
        for s in scopes {
            q.push(("scope", s));
        }
        let req = match creds {
            Some(c) if !c.identitytoken.is_empty() => {
                let mut form = q.clone();
                form.extend([
                    ("grant_type", "refresh_token"),
                    ("refresh_token", c.identitytoken.as_str()),
                    ("client_id", "berth"),
                ]);
                ep.client.post(&url).form(&form)
            }
            Some(c) => {
                let mut r = ep.client.get(&url).query(&q);
                if let Some(b) = c.basic() {
                    r = r.header("Authorization", b);
                }
                if !c.username.is_empty() {
                    r = r.query(&[("account", c.username.as_str())]);
                }
                r
            }
            None => ep.client.get(&url).query(&q),
        };
        let resp = send_once(req, &url, self.opts.timeout).await?;
        let status = resp.status();
        if status == 401 || status == 403 {
            let msg = crate::transport::error_message(resp).await;
            return Err(Error::Unauthorized {
                action,
                target: target.to_string(),
                message: if msg.is_empty() {
                    format!("the token service {url} refused the credentials ({status})")
                } else {
                    msg
                },
            });
        }
        if !status.is_success() {
            return Err(Error::Status {
                method: "GET",
                url,
                status: status.as_u16(),
                detail: format!(": {}", crate::transport::error_message(resp).await),
            });
        }
        let body = crate::transport::read_limited(resp, 1 << 20, &url).await?;
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| Error::Status {
            method: "GET",
            url: url.clone(),
            status: status.as_u16(),
            detail: format!(": token response is not JSON: {e}"),
        })?;
        let bearer = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        if bearer.is_empty() {
            return Err(Error::Status {
                method: "GET",
                url,
                status: status.as_u16(),
                detail: ": token response has no token".to_string(),
            });
        }
        Ok(Token {
            bearer,
            refresh: t.refresh_token,
        })
    }
}

/// Back-off before retry `n` (0-based): 250 ms doubling, at most 4 s.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << n.min(4))).min(Duration::from_secs(4))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_send_them() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: "registry.docker.io".into()
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://127.0.0.1:1/t, service=x"#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: "x".into()
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(30), Duration::from_secs(4));
    }
}
