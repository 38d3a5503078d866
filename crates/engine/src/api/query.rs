//! A request's query read as dockerd (Go's `net/http`) reads it: every value of a repeated
//! key kept in order, one value read as `FormValue` reads it (the first), and booleans as
//! dockerd's `httputils.BoolValue` reads them. Clients rely on both: docker-py sends
//! `dockerfile=` twice on a build, `docker commit -c` repeats `changes=`, and Python clients
//! write booleans as `True`/`False`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The decoded `key=value` pairs of a query, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Parses a raw query as Go's `url.ParseQuery`: `&`-separated pairs, `+` and `%XX`
    /// decoded; a pair with a bad escape or a `;` is dropped, as Go drops it.
    pub fn parse(raw: &str) -> Form {
        let pairs = raw
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.contains(';'))
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                Some((unescape(k)?, unescape(v)?))
            })
            .collect();
        Form(pairs)
    }

    /// The first value of `key` (Go's `FormValue`), if the key is there at all.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Every value of `key`, in order (Go's `r.Form[key]`).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v)
    }

    /// dockerd's `BoolValue`: false for a missing key and for `""`, `0`, `no`, `false`,
    /// `none` (any case, spaces trimmed); true for anything else.
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| truthy(v))
    }

    /// dockerd's `BoolValueOrDefault`: `default` when the key is absent, else [`Form::bool`].
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(v) => truthy(v),
        }
    }
}

/// A boolean query value as dockerd reads one.
pub fn truthy(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

/// `%XX` and `+` decoded; None for a malformed escape or bytes that are not UTF-8.
fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
                continue;
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The extractor handlers take: the request's query as a [`Form`].
#[derive(Clone, Debug, Default)]
pub struct Query(pub Form);

impl std::ops::Deref for Query {
    type Target = Form;
    fn deref(&self) -> &Form {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query, Self::Rejection> {
        Ok(Query(Form::parse(parts.uri.query().unwrap_or_default())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_all_values_are_kept() {
        let f = Form::parse("dockerfile=.dockerfile.abc&dockerfile=Dockerfile&t=a&t=b%3A1");
        assert_eq!(
            f.get("dockerfile").map(String::as_str),
            Some(".dockerfile.abc")
        );
        assert_eq!(f.all("t").collect::<Vec<_>>(), ["a", "b:1"]);
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn booleans_read_as_dockerd_reads_them() {
        let f = Form::parse("a=False&b=True&c=1&d=0&e=&f=no&g=yes&h=+none+&i=FALSE");
        for k in ["a", "d", "e", "f", "h", "i", "zz"] {
            assert!(!f.bool(k), "{k}");
        }
        for k in ["b", "c", "g"] {
            assert!(f.bool(k), "{k}");
        }
        assert!(f.bool_or("zz", true));
        assert!(!f.bool_or("a", true));
        assert!(!f.bool_or("e", true));
    }

    #[test]
    fn decoding_as_go() {
        let f = Form::parse("changes=ENV+A%3D1&bad=%zz&x;y=1&path=%2Fa%2Fb");
        assert_eq!(f.get("changes").map(String::as_str), Some("ENV A=1"));
        assert_eq!(f.get("bad"), None);
        assert_eq!(f.get("x;y"), None);
        assert_eq!(f.get("path").map(String::as_str), Some("/a/b"));
    }
}
