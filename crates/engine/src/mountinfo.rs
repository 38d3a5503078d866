//! The daemon's mount table (`/proc/self/mountinfo`), for what dockerd checks before it binds a
//! source with shared or slave propagation: a mount can only receive (or send) mounts through
//! a bind if the mount holding its source takes part in propagation itself.

use std::path::Path;

use crate::error::{ApiError, Result};

/// One line's mount point and its propagation tags (`shared:N`, `master:N`).
struct MountPoint {
    target: String,
    shared: bool,
    slave: bool,
}

fn mounts() -> Result<Vec<MountPoint>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| ApiError::internal("read /proc/self/mountinfo", e))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let optional = fields.get(6..sep)?;
            Some(MountPoint {
                target: unescape(fields.get(4)?),
                shared: optional.iter().any(|o| o.starts_with("shared:")),
                slave: optional.iter().any(|o| o.starts_with("master:")),
            })
        })
        .collect())
}

/// The mount point holding `path`: the longest mount point that is `path` or above it (the
/// last such line: a later mount hides an earlier one on the same point).
fn holding(path: &Path) -> Result<MountPoint> {
    let path = path
        .canonicalize()
        .map_err(|e| ApiError::internal(format!("resolve {}", path.display()), e))?;
    let mut best: Option<MountPoint> = None;
    for m in mounts()? {
        if path.starts_with(&m.target)
            && best
                .as_ref()
                .is_none_or(|b| m.target.len() >= b.target.len())
        {
            best = Some(m);
        }
    }
    best.ok_or_else(|| ApiError::Internal(format!("no mount holds {}", path.display())))
}

/// dockerd's check for a bind asked to be `shared`/`rshared`.
pub fn ensure_shared(source: &Path) -> Result<()> {
    let m = holding(source)?;
    if m.shared {
        return Ok(());
    }
    Err(ApiError::Internal(format!(
        "path {} is mounted on {} but it is not a shared mount",
        source.display(),
        m.target
    )))
}

/// dockerd's check for a bind asked to be `slave`/`rslave`.
pub fn ensure_shared_or_slave(source: &Path) -> Result<()> {
    let m = holding(source)?;
    if m.shared || m.slave {
        return Ok(());
    }
    Err(ApiError::Internal(format!(
        "path {} is mounted on {} but it is not a shared or slave mount",
        source.display(),
        m.target
    )))
}

/// mountinfo escapes space, tab, newline and backslash as `\\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_held_by_a_mount() {
        assert!(holding(Path::new("/")).is_ok());
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
