//! What a browser's request must show before anything else is looked at: a `Host` that no
//! DNS name can rebind, and an `Origin` (when the browser sends one) that is the
//! dashboard's own. Each check returns the refusal; `server.rs` turns it into a 403.

use axum::http::{header, HeaderMap, Method};

/// Why a request was refused before its session was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is not an IP literal or `localhost` with the dashboard's port.
    Host(String),
    /// `Origin` is another site's (or missing where a browser always sends it).
    Origin(String),
    /// `Sec-Fetch-Site` says another site asked.
    CrossSite(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Host(h) => write!(
                f,
                "refused: Host {h:?} is not this dashboard's address (use the URL `berth dashboard` prints)"
            ),
            Refusal::Origin(o) => write!(f, "refused: Origin {o:?} is not this dashboard's"),
            Refusal::CrossSite(s) => write!(f, "refused: a request from another site ({s})"),
        }
    }
}

/// The `Host` header names the dashboard by an IP literal (which DNS cannot rebind to
/// another address) or by `localhost`, with the port it listens on.
pub fn check_host(headers: &HeaderMap, port: u16) -> Result<(), Refusal> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let bad = || Refusal::Host(host.to_owned());
    let (name, p) = split_host_port(host).ok_or_else(bad)?;
    if p != port {
        return Err(bad());
    }
    let literal = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .map_or_else(
            || name.parse::<std::net::Ipv4Addr>().is_ok(),
            |v6| v6.parse::<std::net::Ipv6Addr>().is_ok(),
        );
    if literal || name.eq_ignore_ascii_case("localhost") {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A browser sends `Origin` with every request that can change something (POST, PUT,
/// DELETE) and with every WebSocket handshake: it must be `http://` + the `Host` (no CORS,
/// no other origin is ever allowed), and it must be there for those requests. Where the
/// browser also sends `Sec-Fetch-Site`, it must say same-origin (or `none`: an address
/// typed or opened by `berth dashboard --open`).
pub fn check_origin(method: &Method, headers: &HeaderMap, websocket: bool) -> Result<(), Refusal> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    match headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("?"))
    {
        Some(origin) => {
            let ours = origin
                .strip_prefix("http://")
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
            if !ours {
                return Err(Refusal::Origin(origin.to_owned()));
            }
        }
        None if websocket || !matches!(*method, Method::GET | Method::HEAD) => {
            return Err(Refusal::Origin("(none)".into()));
        }
        None => {}
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|s| s.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err(Refusal::CrossSite(site.to_owned()));
        }
    }
    Ok(())
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn split_host_port(host: &str) -> Option<(&str, u16)> {
    let (name, port) = host.rsplit_once(':')?;
    if name.is_empty() || (name.contains(':') && !name.starts_with('[')) {
        return None;
    }
    Some((name, port.parse().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn host_must_be_a_literal_or_localhost_with_our_port() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
            "10.0.0.5:8080",
        ] {
            assert!(check_host(&headers(&[("host", ok)]), 8080).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1.nip.io:8080",
            "127.0.0.1:8081",
            "127.0.0.1",
            "localhost",
            "::1:8080",
            "",
        ] {
            assert!(
                check_host(&headers(&[("host", bad)]), 8080).is_err(),
                "{bad}"
            );
        }
        assert!(check_host(&HeaderMap::new(), 8080).is_err());
    }

    #[test]
    fn origin_must_be_ours_and_present_where_browsers_send_it() {
        let host = ("host", "127.0.0.1:8080");
        let ok = headers(&[host, ("origin", "http://127.0.0.1:8080")]);
        assert!(check_origin(&Method::POST, &ok, false).is_ok());
        assert!(check_origin(&Method::GET, &ok, true).is_ok());
        for bad in [
            "http://evil.example",
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "null",
        ] {
            let h = headers(&[host, ("origin", bad)]);
            assert!(check_origin(&Method::GET, &h, false).is_err(), "{bad}");
        }
        let none = headers(&[host]);
        assert!(check_origin(&Method::GET, &none, false).is_ok());
        assert!(check_origin(&Method::POST, &none, false).is_err());
        assert!(check_origin(&Method::DELETE, &none, false).is_err());
        assert!(check_origin(&Method::GET, &none, true).is_err());
        let cross = headers(&[host, ("sec-fetch-site", "cross-site")]);
        assert!(check_origin(&Method::GET, &cross, false).is_err());
        let typed = headers(&[host, ("sec-fetch-site", "none")]);
        assert!(check_origin(&Method::GET, &typed, false).is_ok());
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = headers(&[("cookie", "a=1; berth_session_8080=abc; b=2")]);
        assert_eq!(cookie(&h, "berth_session_8080"), Some("abc"));
        assert_eq!(cookie(&h, "berth_session_9090"), None);
    }
}
