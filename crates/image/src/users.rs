//! Users and groups as an image names them: `user`, `uid`, `user:group`, `uid:gid`, looked up
//! in the image's own /etc/passwd and /etc/group, as dockerd does for `--user`, `USER` and
//! `COPY --chown`. The files are read inside the root (the image is untrusted: /etc/passwd
//! could be a symlink to a host file).

use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

/// Who a process or a file belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// The user's supplementary groups from /etc/group (the primary one left out).
    pub additional_gids: Vec<u32>,
}

/// Resolves `user` (`name`, `uid`, `name:group`, `uid:gid`; empty is root) in `rootfs`.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<User> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_in_root(rootfs, "/etc/passwd").unwrap_or_default();
    let (uid, mut gid, name) = if u.is_empty() {
        (0, 0, "root".to_owned())
    } else if let Ok(n) = u.parse::<u32>() {
        let entry = passwd_entries(&passwd).find(|e| e.1 == n);
        (
            n,
            entry.as_ref().map(|e| e.2).unwrap_or(0),
            entry.map(|e| e.0).unwrap_or_default(),
        )
    } else {
        let e = passwd_entries(&passwd)
            .find(|e| e.0 == u)
            .ok_or_else(|| Error::UnknownUser(u.to_owned()))?;
        (e.1, e.2, e.0)
    };
    if let Some(g) = g {
        gid = resolve_group(rootfs, g)?;
    }
    let group = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    let mut additional_gids = Vec::new();
    if !name.is_empty() {
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !additional_gids.contains(&n) {
                        additional_gids.push(n);
                    }
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

/// A group name or number, looked up in `rootfs`'s /etc/group.
pub fn resolve_group(rootfs: &Path, g: &str) -> Result<u32> {
    if let Ok(n) = g.parse::<u32>() {
        return Ok(n);
    }
    let group = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == g)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| Error::UnknownGroup(g.to_owned()))
}

/// Reads a file of the root without following a link out of it.
fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    let root = nix::fcntl::open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(root.as_fd(), path, how).ok()?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).ok()?;
    Some(s)
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = (String, u32, u32)> + '_ {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        Some((
            f.first()?.to_string(),
            f.get(2)?.parse().ok()?,
            f.get(3)?.parse().ok()?,
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1001:\nstaff:x:50:app\n",
        )
        .unwrap();
        let u = resolve_user(dir.path(), "app").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 1001, vec![50]));
        assert_eq!(resolve_user(dir.path(), "7:staff").unwrap().gid, 50);
        assert_eq!(resolve_user(dir.path(), "").unwrap(), User::default());
        assert!(matches!(
            resolve_user(dir.path(), "nobody"),
            Err(Error::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_group(dir.path(), "wheel"),
            Err(Error::UnknownGroup(_))
        ));
    }
}
