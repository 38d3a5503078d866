//! Writing the daemon's metadata so that a `kill -9` at any instant leaves the old or the new
//! version of a file, never a torn one: write a temp file beside it, fsync, rename.

use std::io::Write;
use std::path::Path;

pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let data = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    write_atomic(path, &data)
}

/// RFC 3339 with nanoseconds in UTC, as Docker prints times.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Seconds since the epoch of an RFC 3339 time ("2026-11-23T10:00:00.5Z"), for `Created`.
pub fn unix_seconds(rfc: &str) -> i64 {
    let parse = || -> Option<i64> {
        let (date, time) = rfc.split_once('T')?;
        let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
        let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
        let hms = time.get(..8)?;
        let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
        let (h, mi, s) = (t.next()??, t.next()??, t.next()??);
        Some(days_from_civil(y, m, dd) * 86400 + h * 3600 + mi * 60 + s)
    };
    parse().unwrap_or(0)
}

// Howard Hinnant's civil-date algorithms: days since 1970-01-01 <-> (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_unix_seconds() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        let s = rfc3339(t);
        assert!(s.ends_with(".000000000Z"), "{s}");
        assert_eq!(unix_seconds(&s), 1_795_000_000);
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), 0);
    }
}
