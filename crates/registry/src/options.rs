//! What the daemon is configured with (`--insecure-registry`, `--registry-mirror`, the certs
//! dir) and what a client sends (`X-Registry-Auth`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The daemon's registry settings.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// `--insecure-registry`: `host[:port]` or a CIDR; such registries may be reached over
    /// plain HTTP, or HTTPS with any certificate. 127.0.0.0/8 and ::1 always are, as Docker.
    pub insecure: Vec<String>,
    /// `--registry-mirror`: URLs tried, in order, before Docker Hub for `docker.io` images.
    pub mirrors: Vec<String>,
    /// Per-registry TLS material: `DIR/HOST[:PORT]/*.crt` (CAs), `*.cert` + `*.key`
    /// (client certificate). Docker's default is /etc/docker/certs.d.
    pub certs_dir: PathBuf,
    /// How long a connection may stay silent (connect, response, each body read).
    pub timeout: Duration,
    /// Tries of one request (the first plus retries with back-off) on time-outs, resets
    /// and 5xx/429 answers.
    pub attempts: u32,
    /// Largest manifest or index accepted, in bytes.
    pub max_manifest_size: u64,
    /// Layers downloaded and unpacked (or uploaded) at once.
    pub concurrency: usize,
    /// Blobs larger than this are uploaded in chunks of this size (PATCH), smaller ones
    /// in one PUT.
    pub chunk_size: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            mirrors: Vec::new(),
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
            timeout: Duration::from_secs(30),
            attempts: 4,
            max_manifest_size: 4 << 20,
            concurrency: 4,
            chunk_size: 64 << 20,
        }
    }
}

impl RegistryOptions {
    /// Whether `host[:port]` may be spoken to without verified TLS.
    pub fn is_insecure(&self, domain: &str) -> bool {
        let host = host_of(domain);
        if host == "localhost" {
            return true;
        }
        let ip: Option<IpAddr> = host.trim_matches(['[', ']']).parse().ok();
        if let Some(ip) = ip {
            if ip.is_loopback() {
                return true;
            }
        }
        self.insecure.iter().any(|entry| {
            entry == domain
                || entry == host
                || match (ip, entry.split_once('/')) {
                    (Some(ip), Some((net, bits))) => cidr_contains(net, bits, ip),
                    _ => false,
                }
        })
    }

    /// The `IndexConfigs`/`InsecureRegistryCIDRs` of `/info`, as dockerd reports them.
    pub fn insecure_cidrs(&self) -> Vec<String> {
        let mut out = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
        out.extend(self.insecure.iter().filter(|e| e.contains('/')).cloned());
        out
    }
}

/// The host part of `host[:port]` (IPv6 literals keep their brackets).
pub(crate) fn host_of(domain: &str) -> &str {
    if domain.starts_with('[') {
        return domain
            .split(']')
            .next()
            .map_or(domain, |h| &domain[..=h.len()]);
    }
    domain.rsplit_once(':').map_or(domain, |(h, _)| h)
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let Ok(bits) = bits.parse::<u32>() else {
        return false;
    };
    match (net.parse::<IpAddr>(), ip) {
        (Ok(IpAddr::V4(n)), IpAddr::V4(i)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (Ok(IpAddr::V6(n)), IpAddr::V6(i)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// base64url (padded or not, or plain base64) JSON, as the Engine API's auth headers carry it.
fn decode_header<T: serde::de::DeserializeOwned>(h: &str, name: &str) -> Result<T> {
    let std: String = h
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(std.as_bytes())
        .map_err(|e| Error::Invalid(format!("invalid {name} header: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("invalid {name} header: {e}")))
}

/// Credentials as the Engine API carries them (`X-Registry-Auth`, `POST /auth`). dockerd
/// decodes them with Go's case-insensitive field names and clients lean on it (docker-py
/// sends `IdentityToken`): the capitalised spellings are accepted too, and a null is empty.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    #[serde(
        default,
        alias = "Username",
        deserialize_with = "or_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub username: String,
    #[serde(
        default,
        alias = "Password",
        deserialize_with = "or_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub password: String,
    /// `base64(user:password)`, as config.json stores it.
    #[serde(
        default,
        alias = "Auth",
        deserialize_with = "or_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub auth: String,
    #[serde(
        default,
        alias = "ServerAddress",
        deserialize_with = "or_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub serveraddress: String,
    /// An OAuth2 refresh token a previous login returned.
    #[serde(
        default,
        alias = "IdentityToken",
        deserialize_with = "or_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub identitytoken: String,
    /// A bearer token to send as it is.
    #[serde(
        default,
        alias = "RegistryToken",
        deserialize_with = "or_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub registrytoken: String,
}

/// A string field that may be null.
fn or_empty<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Decodes an `X-Registry-Auth` header: base64url (padded or not, or plain base64) of
    /// the JSON; empty, `{}` or all-empty fields mean anonymous.
    pub fn from_header(h: &str) -> Result<Option<Credentials>> {
        let h = h.trim();
        if h.is_empty() {
            return Ok(None);
        }
        let mut c: Credentials = decode_header(h, "X-Registry-Auth")?;
        c.fill_from_auth();
        Ok(c.nonempty())
    }

    /// Decodes an `X-Registry-Config` header, the credentials a build may pull with (as the
    /// docker CLI and docker-py send them): base64url of a JSON object from a registry
    /// (`host[:port]`, or a URL as config.json keys Docker Hub) to its credentials. The
    /// entries without usable credentials are left out.
    pub fn map_from_header(h: &str) -> Result<Vec<(String, Credentials)>> {
        let h = h.trim();
        if h.is_empty() {
            return Ok(Vec::new());
        }
        let map: std::collections::BTreeMap<String, Credentials> =
            decode_header(h, "X-Registry-Config")?;
        Ok(map
            .into_iter()
            .filter_map(|(k, mut c)| {
                c.fill_from_auth();
                c.nonempty().map(|c| (k, c))
            })
            .collect())
    }

    /// The credentials of a map from [`Credentials::map_from_header`] for a registry
    /// `domain` (`docker.io` for Docker Hub): the entry whose key names that host.
    pub fn for_domain(map: &[(String, Credentials)], domain: &str) -> Option<Credentials> {
        map.iter()
            .find(|(k, _)| crate::search::server_domain(k) == domain)
            .map(|(_, c)| c.clone())
    }

    /// Splits `auth` into username and password when they are not given.
    pub fn fill_from_auth(&mut self) {
        if self.username.is_empty() && !self.auth.is_empty() {
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(self.auth.trim()) {
                let s = String::from_utf8_lossy(&b).into_owned();
                if let Some((u, p)) = s.split_once(':') {
                    self.username = u.to_string();
                    self.password = p.to_string();
                }
            }
        }
    }

    /// `Some(self)` unless nothing usable is set.
    pub fn nonempty(self) -> Option<Credentials> {
        if self.username.is_empty()
            && self.identitytoken.is_empty()
            && self.registrytoken.is_empty()
        {
            None
        } else {
            Some(self)
        }
    }

    pub(crate) fn basic(&self) -> Option<String> {
        if self.username.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_are_insecure() {
        let o = RegistryOptions {
            insecure: vec!["reg.example:5000".into(), "10.1.0.0/16".into()],
            ..RegistryOptions::default()
        };
        assert!(o.is_insecure("localhost:5000"));
        assert!(o.is_insecure("127.0.0.1:5000"));
        assert!(o.is_insecure("127.3.2.1"));
        assert!(o.is_insecure("[::1]:5000"));
        assert!(o.is_insecure("reg.example:5000"));
        assert!(!o.is_insecure("reg.example:5001"));
        assert!(o.is_insecure("10.1.2.3:443"));
        assert!(!o.is_insecure("10.2.2.3"));
        assert!(!o.is_insecure("docker.io"));
    }

    #[test]
    fn registry_auth_header_decodes_every_way_clients_send_it() {
        let json = br#"{"username":"u","password":"p+/?","serveraddress":"h"}"#;
        let url = base64::engine::general_purpose::URL_SAFE.encode(json);
        let c = Credentials::from_header(&url).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p+/?"));
        let std = base64::engine::general_purpose::STANDARD_NO_PAD.encode(json);
        assert_eq!(Credentials::from_header(&std).unwrap().unwrap(), c);
        assert!(Credentials::from_header("e30=").unwrap().is_none());
        assert!(Credentials::from_header("").unwrap().is_none());
        assert!(Credentials::from_header("!!!").is_err());
        let auth = base64::engine::general_purpose::STANDARD.encode("a:b:c");
        let j = format!(r#"{{"auth":"{auth}"}}"#);
        let c = Credentials::from_header(
            &base64::engine::general_purpose::URL_SAFE.encode(j.as_bytes()),
        )
        .unwrap()
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("a", "b:c"));
    }

    #[test]
    fn registry_config_header_maps_registries_to_their_credentials() {
        // As the docker CLI sends it for a build: every stored login, Docker Hub by its URL.
        let auth = base64::engine::general_purpose::STANDARD.encode("u:pw");
        let j = format!(
            r#"{{"127.0.0.1:5000":{{"auth":"{auth}","email":"x"}},"https://index.docker.io/v1/":{{"username":"hub","password":"h"}},"empty.example":{{}}}}"#
        );
        let map = Credentials::map_from_header(
            &base64::engine::general_purpose::URL_SAFE.encode(j.as_bytes()),
        )
        .unwrap();
        assert_eq!(map.len(), 2);
        let c = Credentials::for_domain(&map, "127.0.0.1:5000").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "pw"));
        assert_eq!(
            Credentials::for_domain(&map, "docker.io").unwrap().username,
            "hub"
        );
        assert!(Credentials::for_domain(&map, "empty.example").is_none());
        // docker-py's spellings: a capitalised identity token, a null e-mail and password.
        let j = br#"{"reg.example:5000":{"IdentityToken":"tok","email":null,"password":null}}"#;
        let map =
            Credentials::map_from_header(&base64::engine::general_purpose::URL_SAFE.encode(j))
                .unwrap();
        assert_eq!(
            Credentials::for_domain(&map, "reg.example:5000")
                .unwrap()
                .identitytoken,
            "tok"
        );
        assert!(Credentials::for_domain(&map, "127.0.0.1:5001").is_none());
        assert!(Credentials::map_from_header("").unwrap().is_empty());
        assert!(Credentials::map_from_header("e30=").unwrap().is_empty());
        assert!(Credentials::map_from_header("!!!").is_err());
    }
}
