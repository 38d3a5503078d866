//! A volume's subdirectory mounted instead of its root (`--mount
//! type=volume,volume-subpath=…`, `VolumeOptions.Subpath`). The subpath is resolved beneath
//! the volume's directory with no symlink followed (a container owns what is in its volumes
//! and could plant one pointing at the host), and what it resolved to is bound, through the
//! descriptor, at a mount point of the container's own: the runtime then binds that, so no
//! later swap of a path component changes what is mounted.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::error::{ApiError, Result};

/// At create: dockerd's checks of a subpath (`volume` is the mount's source, empty for an
/// anonymous volume).
pub fn check(volume: &str, subpath: &str) -> Result<()> {
    let bad = |what: &str| {
        ApiError::BadRequest(format!("invalid mount config for type \"volume\": {what}"))
    };
    if volume.is_empty() {
        return Err(bad("must not set Subpath when using anonymous volumes"));
    }
    // Go's filepath.IsLocal: relative, and never above its start.
    let mut depth = 0i32;
    for c in Path::new(subpath).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::Prefix(_) => depth = -1,
        }
        if depth < 0 {
            return Err(bad("subpath must be a relative path within the volume"));
        }
    }
    Ok(())
}

/// Opens `subpath` beneath `volume_dir` (no symlinks, no escape) as an O_PATH descriptor.
pub fn open(volume_dir: &Path, subpath: &str) -> Result<OwnedFd> {
    let base = nix::fcntl::open(
        volume_dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| not_accessible(volume_dir, e))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    nix::fcntl::openat2(&base, subpath, how).map_err(|e| match e {
        nix::errno::Errno::EXDEV => ApiError::BadRequest(format!(
            "subpath {subpath} escapes the volume {}",
            volume_dir.display()
        )),
        e => not_accessible(&volume_dir.join(subpath), e),
    })
}

fn not_accessible(path: &Path, e: nix::errno::Errno) -> ApiError {
    let why = match e {
        nix::errno::Errno::ELOOP => "a symbolic link (not followed)".to_owned(),
        e => e.desc().to_lowercase(),
    };
    ApiError::Internal(format!("cannot access path {}: {why}", path.display()))
}

/// Binds what `fd` resolved to at `<dir>/<index>` (a directory or a file, as it is) and
/// returns that mount point, which the container's spec then binds.
pub fn bind(fd: &OwnedFd, dir: &Path, index: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ApiError::internal(format!("create {}", dir.display()), e))?;
    let target = dir.join(index.to_string());
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let is_dir = std::fs::metadata(&source)
        .map_err(|e| ApiError::internal("stat the volume's subpath", e))?
        .is_dir();
    unmount(&target);
    let made = if is_dir {
        std::fs::create_dir(&target)
    } else {
        std::fs::File::create(&target).map(|_| ())
    };
    made.map_err(|e| ApiError::internal(format!("create {}", target.display()), e))?;
    nix::mount::mount(
        Some(&source),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        ApiError::internal(
            format!("bind the volume's subpath at {}", target.display()),
            e,
        )
    })?;
    Ok(target)
}

/// Unmounts and removes every subpath mount point under `dir`; missing ones are fine.
pub fn release(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        unmount(&e.path());
    }
    let _ = std::fs::remove_dir(dir);
}

fn unmount(target: &Path) {
    let _ = nix::mount::umount2(target, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(target).or_else(|_| std::fs::remove_file(target));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn subpaths_must_stay_in_the_volume() {
        assert!(check("v", "a/b").is_ok());
        assert!(check("v", "a/../b").is_ok());
        for bad in ["/abs", "../x", "a/../../x"] {
            assert!(check("v", bad).is_err(), "{bad}");
        }
        assert!(check("", "a")
            .unwrap_err()
            .to_string()
            .contains("anonymous"));
    }
}
