//! Writing the daemon's metadata so that a `kill -9` at any instant leaves the old or the new
//! version of a file, never a torn one: write a temp file beside it, fsync, rename. Each write
//! has a temp file of its own, so two writers never rename each other's; which of two
//! concurrent writes of one file lands last is the caller's to order (each object's writes
//! happen under its registry's lock).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(
        ".{name}.tmp{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        // Root's alone (docs/security.md) before the first byte: records hold environments.
        let mut f = create_with_mode(&tmp, 0o600)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Rewrites a file that a running container has bind-mounted (its /etc/hosts, resolv.conf,
/// hostname): in place, so the container's mount, which holds the inode, sees the new text (a
/// rename would leave it the old file). These are regenerated at every start: no fsync. Every
/// user in the container reads them: 0644 whatever the daemon's umask (the container's
/// directory keeps others out).
pub fn write_in_place(path: &Path, data: &[u8]) -> std::io::Result<()> {
    create_with_mode(path, 0o644)?.write_all(data)
}

/// Opens `path` for writing, emptied, with `mode` before any byte is in it: whatever the
/// daemon's umask, and a file an older version left with a wider mode included.
pub fn create_with_mode(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(f)
}

pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let data = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    write_atomic(path, &data)
}

/// RFC 3339 with nanoseconds in UTC, as Docker prints times.
pub fn now_rfc3339() -> String {
    berth_image::timefmt::now_rfc3339()
}

pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    berth_image::timefmt::format_unix(d.as_secs() as i64, d.subsec_nanos())
}

/// Seconds since the epoch of an RFC 3339 time ("2026-11-23T10:00:00.5Z"), for `Created`;
/// 0 when it is not one (Docker's zero time included).
pub fn unix_seconds(rfc: &str) -> i64 {
    berth_image::timefmt::parse_rfc3339(rfc).unwrap_or(0).max(0)
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
