//! The units docker's CLI speaks: sizes (`512m`, `1.5GB`), durations as people read them
//! ("About a minute"), timestamps and the little encodings the API uses (base64 headers).
//! Each function matches the Go library docker uses (go-units, timetypes) so output and
//! accepted input are the same.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};

/// Parses a size the way go-units' `RAMInBytes` does: binary multiples, case-insensitive,
/// an optional `i` and `b` (`512m`, `1g`, `2GiB`, `1.5k`, `100`).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let invalid = || anyhow!("invalid size: '{s}'");
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, rest) = t.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(invalid());
    }
    let value: f64 = num.parse().map_err(|_| invalid())?;
    let rest = rest.trim_start_matches(' ').to_ascii_lowercase();
    let mut chars = rest.chars();
    let mult: f64 = match chars.next() {
        None => 1.0,
        Some(c) => {
            let m = match c {
                'k' => 1u64 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                'p' => 1 << 50,
                'b' => {
                    if chars.next().is_some() {
                        return Err(invalid());
                    }
                    1
                }
                _ => return Err(invalid()),
            };
            let tail: String = chars.collect();
            if !matches!(tail.as_str(), "" | "b" | "i" | "ib") {
                return Err(invalid());
            }
            m as f64
        }
    };
    Ok((value * mult) as i64)
}

/// `--memory-swap` also takes -1 (unlimited).
pub fn swap_bytes(s: &str) -> Result<i64> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// `--cpus 1.5` as the API's NanoCpus, refusing more precision than nanos like docker.
pub fn nano_cpus(s: &str) -> Result<i64> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| anyhow!("invalid argument \"{s}\" for \"--cpus\" flag: failed to parse {s} as a rational number"))?;
    if v < 0.0 || !v.is_finite() {
        bail!("invalid argument \"{s}\" for \"--cpus\" flag: value must be positive");
    }
    let nanos = v * 1e9;
    if (nanos - nanos.round()).abs() > 1e-3 {
        bail!("invalid argument \"{s}\" for \"--cpus\" flag: value is too precise");
    }
    Ok(nanos.round() as i64)
}

/// Go's `%.<prec>g` for the positive magnitudes sizes have.
fn go_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i64 + 1;
    let decimals = (prec as i64 - digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    s
}

fn custom_size(size: f64, prec: usize, base: f64, units: &[&str]) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", go_g(size, prec), units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units (kB, MB), `prec` significant digits.
pub fn human_size_prec(size: f64, prec: usize) -> String {
    custom_size(
        size,
        prec,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"],
    )
}

/// go-units `HumanSize` (4 significant digits).
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// go-units `BytesSize`: binary units (KiB, MiB), 4 significant digits.
pub fn bytes_size(size: f64) -> String {
    custom_size(
        size,
        4,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
    )
}

/// go-units `HumanDuration`: "Less than a second", "About a minute", "3 hours", "2 weeks".
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// Seconds since the epoch, as a float.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// "3 minutes ago" for a unix timestamp, as the CREATED columns show it.
pub fn ago(unix: i64) -> String {
    format!("{} ago", human_duration(now_secs() - unix as f64))
}

/// Days since the epoch → (year, month, day) (Howard Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn split_time(unix: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, mo, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    (y, mo, d, s / 3600, (s / 60) % 60, s % 60)
}

/// Go's `time.Time.String()` in UTC: `2024-01-02 15:04:05 +0000 UTC` (ps's CreatedAt).
pub fn go_time_string(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = split_time(unix);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

/// RFC 3339 with fixed nanoseconds, as `docker events` prints times.
pub fn rfc3339_nano(unix: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s) = split_time(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}Z")
}

/// RFC 3339 to the second, as `history -H=false` prints times.
pub fn rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = split_time(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Parses an RFC 3339 time (`2024-01-02T15:04:05.123Z`, `…+02:00`, or a bare date) to unix
/// seconds with the fraction kept as a float.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let mut secs = days_from_civil(y, u32::try_from(mo).ok()?, u32::try_from(d).ok()?) * 86_400;
    if b.len() == 10 {
        return Some(secs as f64);
    }
    if b.len() < 19 || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    secs += num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        frac = format!("0.{}", &r[..end]).parse().ok()?;
        rest = &r[end..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        r if r.len() == 6 => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (r[1..3].parse::<i64>().ok()? * 3600 + r[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    Some((secs - offset) as f64 + frac)
}

/// Parses a Go duration (`10m`, `1h30m`, `2.5s`, `300ms`) to seconds (a bare number is
/// not one: `--since 0` is a timestamp).
pub fn parse_go_duration(s: &str) -> Option<f64> {
    berth_build::duration::go_duration_ns(s).map(|ns| ns / 1e9)
}

/// docker's `timetypes.GetTimestamp`: `--since`/`--until` as the API wants them. A duration
/// is relative to now; a unix timestamp passes through; an RFC 3339 time is converted.
pub fn api_timestamp(value: &str) -> Result<String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    if let Some(d) = parse_go_duration(value) {
        return Ok(format!("{:.9}", now_secs() - d));
    }
    if value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(value.to_string());
    }
    match parse_rfc3339(value) {
        Some(t) => Ok(format!("{t:.9}")),
        None => bail!(
            "invalid value for \"since\"/\"until\": {value:?} is not a timestamp or a duration"
        ),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (the registry auth header, credentials in config.json).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Ellipsis as docker's formatter truncates: at most `max` chars, the last one "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `stringid.TruncateID`: drop the algorithm, keep 12 hex digits.
pub fn short_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, h)| h);
    id.chars().take(12).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ram_in_bytes_matches_go_units() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 * 1024 * 1024);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("100b").unwrap(), 100);
        assert_eq!(ram_in_bytes("64 M").unwrap(), 64 << 20);
        assert!(ram_in_bytes("abc").is_err());
        assert!(ram_in_bytes("1x").is_err());
        assert!(ram_in_bytes("").is_err());
        assert!(ram_in_bytes("-1").is_err());
        assert_eq!(swap_bytes("-1").unwrap(), -1);
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(nano_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(nano_cpus("0.25").unwrap(), 250_000_000);
        assert_eq!(nano_cpus("2").unwrap(), 2_000_000_000);
        assert!(nano_cpus("x").is_err());
        assert!(nano_cpus("0.0000000001").is_err());
    }

    #[test]
    fn sizes_print_like_go_units() {
        assert_eq!(human_size_prec(0.0, 3), "0B");
        assert_eq!(human_size_prec(2.0, 3), "2B");
        assert_eq!(human_size_prec(1_234_567.0, 3), "1.23MB");
        assert_eq!(human_size_prec(4_260_000.0, 3), "4.26MB");
        assert_eq!(human_size_prec(77_800_000.0, 3), "77.8MB");
        assert_eq!(human_size_prec(123_400_000.0, 3), "123MB");
        assert_eq!(human_size(1_000.0), "1kB");
        assert_eq!(bytes_size(1024.0 * 1024.0 * 1.5), "1.5MiB");
        assert_eq!(bytes_size(7.7 * 1024.0 * 1024.0 * 1024.0), "7.7GiB");
    }

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0.3), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(3.0), "3 seconds");
        assert_eq!(human_duration(65.0), "About a minute");
        assert_eq!(human_duration(120.0), "2 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(5400.0), "2 hours");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
        assert_eq!(human_duration(21.0 * 86400.0), "3 weeks");
        assert_eq!(human_duration(90.0 * 86400.0), "3 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
    }

    #[test]
    fn times_format_and_parse() {
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(1_704_207_845),
            "2024-01-02 15:04:05 +0000 UTC"
        );
        assert_eq!(parse_rfc3339("2024-01-02T15:04:05Z"), Some(1_704_207_845.0));
        assert_eq!(
            parse_rfc3339("2024-01-02T17:04:05+02:00"),
            Some(1_704_207_845.0)
        );
        assert_eq!(
            parse_rfc3339("2024-01-02T15:04:05.5Z"),
            Some(1_704_207_845.5)
        );
        assert_eq!(
            rfc3339_nano(1_704_207_845, 7),
            "2024-01-02T15:04:05.000000007Z"
        );
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("10m"), Some(600.0));
        assert_eq!(parse_go_duration("300ms"), Some(0.3));
        assert_eq!(parse_go_duration("abc"), None);
        assert_eq!(api_timestamp("1700000000").unwrap(), "1700000000");
        assert_eq!(
            api_timestamp("2024-01-02T15:04:05Z").unwrap(),
            "1704207845.000000000"
        );
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
    }

    #[test]
    fn ids_and_text_truncate() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(
            ellipsis("sleep 1000000000000000", 20),
            "sleep 1000000000000…"
        );
        assert_eq!(ellipsis("short", 20), "short");
    }
}
