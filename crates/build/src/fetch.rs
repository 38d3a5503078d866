//! ADD of a URL: a small HTTP/1.1 GET (redirects followed, `Content-Length` or chunked
//! bodies, `Last-Modified` kept as the file's mtime). Plain HTTP only: an https URL is
//! refused by name until berth has a TLS client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A download larger than this is refused (it is held in memory).
const MAX_BODY: u64 = 1 << 30;
const MAX_REDIRECTS: usize = 10;
const TIMEOUT: Duration = Duration::from_secs(60);

/// What a GET brought.
#[derive(Debug)]
pub struct Fetched {
    pub data: Vec<u8>,
    /// The last path segment of the (final) URL, if it has one.
    pub name: Option<String>,
    /// `Last-Modified`, in Unix seconds.
    pub last_modified: Option<i64>,
}

pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Downloads `url`.
pub fn get(url: &str) -> Result<Fetched, String> {
    let mut url = url.to_string();
    for _ in 0..MAX_REDIRECTS {
        match get_once(&url)? {
            Response::Redirect(to) => url = absolute(&url, &to),
            Response::Body(f) => return Ok(f),
        }
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

enum Response {
    Redirect(String),
    Body(Fetched),
}

fn get_once(url: &str) -> Result<Response, String> {
    if url.starts_with("https://") {
        return Err("https URLs are not supported by berth's builder yet; fetch the file in a RUN step or put it in the context".into());
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "not an http:// URL".to_string())?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let addr = if hostport.contains(':') && !hostport.ends_with(']') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("resolve {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {hostport}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&sock, TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let host = hostport;
    // One write: a server that reads one segment and closes must see the whole request.
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: berth-build\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut r = BufReader::new(stream);
    let mut status_line = String::new();
    r.read_line(&mut status_line)
        .map_err(|e| format!("read: {e}"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad response {:?}", status_line.trim()))?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).map_err(|e| format!("read: {e}"))?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
    if (300..400).contains(&status) {
        if let Some(to) = header("location") {
            return Ok(Response::Redirect(to));
        }
    }
    if status != 200 {
        return Err(format!("HTTP status {}", status_line.trim()));
    }
    let mut data = Vec::new();
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut l = String::new();
            r.read_line(&mut l).map_err(|e| format!("read: {e}"))?;
            let n = u64::from_str_radix(l.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {:?}", l.trim()))?;
            if n == 0 {
                break;
            }
            if data.len() as u64 + n > MAX_BODY {
                return Err("the file is larger than 1 GiB".into());
            }
            let start = data.len();
            data.resize(start + n as usize, 0);
            r.read_exact(&mut data[start..])
                .map_err(|e| format!("read: {e}"))?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).map_err(|e| format!("read: {e}"))?;
        }
    } else {
        let limit = header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(MAX_BODY + 1);
        (&mut r)
            .take(limit.min(MAX_BODY + 1))
            .read_to_end(&mut data)
            .map_err(|e| format!("read: {e}"))?;
        if data.len() as u64 > MAX_BODY {
            return Err("the file is larger than 1 GiB".into());
        }
    }
    let name = path
        .split(['?', '#'])
        .next()
        .and_then(|p| p.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    Ok(Response::Body(Fetched {
        data,
        name,
        last_modified: header("last-modified").and_then(|v| parse_http_date(&v)),
    }))
}

fn absolute(base: &str, to: &str) -> String {
    if is_url(to) {
        return to.to_string();
    }
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    if to.starts_with('/') {
        format!("{}{to}", &base[..host_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|i| *i >= host_end)
            .unwrap_or(host_end);
        format!("{}/{to}", &base[..dir_end])
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 7231's preferred form) → Unix seconds.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, _] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == mon)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let t: Vec<i64> = time.split(':').filter_map(|x| x.parse().ok()).collect();
    let [hh, mm, ss] = t.as_slice() else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_urls() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(absolute("http://h:1/a/b", "/c"), "http://h:1/c");
        assert_eq!(absolute("http://h:1/a/b", "c"), "http://h:1/a/c");
        assert!(is_url("http://x") && !is_url("x/http://"));
    }
}
