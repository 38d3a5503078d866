//! Overlay snapshots: `snapshots/<chain-id hex>/` holds one layer's changes in overlayfs'
//! lower-dir form, shared by every image whose layer stack has that chain id. The store
//! returns an [`OverlayMount`]; the caller performs it.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::blobs::sha256_hex;
use crate::error::{Error, Result};
use crate::sys;

/// An overlay mount to perform: read-only lowers (topmost first) under a writable upper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayMount {
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// overlayfs' `volatile` (linux >= 5.10): no sync of the upper dir, neither at unmount
    /// nor for the container's own fsyncs. Only for an upper that is thrown away when the
    /// container stops (`run --rm`, as podman does), since after a host crash the upper is
    /// not to be trusted. Ignored by kernels without it.
    pub volatile: bool,
}

impl OverlayMount {
    /// Mounts the overlay at `target`. The new mount API adds each lower with its own
    /// `lowerdir+` call (linux >= 6.8), so an image may have more layers than fit in the one
    /// page that mount(2)'s option string is limited to; older kernels get mount(2).
    pub fn mount_at(&self, target: &Path) -> Result<()> {
        if self.volatile {
            // overlayfs refuses an upper once mounted volatile (its marker survives even a
            // clean unmount); this upper is thrown away at the container's end anyway.
            let marker = self.work.join("work/incompat/volatile");
            match std::fs::remove_dir_all(&marker) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &marker)(e)),
            }
            match self.mount_with(target, true) {
                // A kernel before 5.10 does not know the option.
                Err(Error::Mount {
                    errno: Errno::EINVAL,
                    ..
                }) => {}
                other => return other,
            }
        }
        self.mount_with(target, false)
    }

    fn mount_with(&self, target: &Path, volatile: bool) -> Result<()> {
        match self.mount_new_api(target, volatile) {
            Ok(()) => Ok(()),
            // ENOSYS: no fsopen; EINVAL: a kernel that does not know "lowerdir+".
            Err(Errno::ENOSYS) | Err(Errno::EINVAL) => self.mount_legacy(target, volatile),
            Err(errno) => Err(Error::Mount {
                op: "mount",
                target: target.to_path_buf(),
                errno,
                hint: "",
            }),
        }
    }

    fn mount_new_api(&self, target: &Path, volatile: bool) -> std::result::Result<(), Errno> {
        let fs = sys::fsopen(c"overlay")?;
        // The source /proc/mounts and df show, as with mount(2) and docker ("none" otherwise).
        sys::fsconfig_string(fs.as_fd(), c"source", c"overlay")?;
        for lower in &self.lowers {
            sys::fsconfig_string(fs.as_fd(), c"lowerdir+", &path_c(lower)?)?;
        }
        sys::fsconfig_string(fs.as_fd(), c"upperdir", &path_c(&self.upper)?)?;
        sys::fsconfig_string(fs.as_fd(), c"workdir", &path_c(&self.work)?)?;
        if volatile {
            sys::fsconfig_flag(fs.as_fd(), c"volatile")?;
        }
        sys::fsconfig_create(fs.as_fd())?;
        let mnt = sys::fsmount(fs.as_fd())?;
        sys::move_mount_to(mnt.as_fd(), &path_c(target)?)
    }

    fn mount_legacy(&self, target: &Path, volatile: bool) -> Result<()> {
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .map(|p| escape_option(&p.to_string_lossy()))
            .collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}{}",
            lowers.join(":"),
            escape_option(&self.upper.to_string_lossy()),
            escape_option(&self.work.to_string_lossy()),
            if volatile { ",volatile" } else { "" }
        );
        let page = 4096;
        let hint = if data.len() >= page {
            " (too many layers for mount(2)'s one-page option string on this kernel)"
        } else {
            ""
        };
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|errno| Error::Mount {
            op: "mount",
            target: target.to_path_buf(),
            errno,
            hint,
        })
    }

    /// Mounts the overlay at `target` with every lower id-mapped through `userns` (a
    /// container under user-namespace remapping: the shared snapshots stay owned by the host's
    /// ids on disk and appear shifted into the container's range). Each lower is cloned,
    /// id-mapped and attached under `scratch/<n>` for the time of the mount: overlayfs takes
    /// its own private copy of each layer's mount, so they are detached right after.
    pub fn mount_idmapped_at(
        &self,
        target: &Path,
        userns: std::os::fd::BorrowedFd<'_>,
        scratch: &Path,
    ) -> Result<()> {
        crate::private::create_dir(scratch).map_err(Error::io("create", scratch))?;
        let mut attached = Vec::with_capacity(self.lowers.len());
        let result = (|| {
            for (n, lower) in self.lowers.iter().enumerate() {
                let at = scratch.join(n.to_string());
                crate::private::create_dir(&at).map_err(Error::io("create", &at))?;
                let mount_error = |op, errno| Error::Mount {
                    op,
                    target: lower.clone(),
                    errno,
                    hint:
                        " (id-mapped layers need linux >= 5.19 and a filesystem that supports them)",
                };
                let tree =
                    sys::open_tree_clone(&path_c(lower).map_err(|e| mount_error("clone", e))?)
                        .map_err(|e| mount_error("clone", e))?;
                sys::mount_setattr_idmap(tree.as_fd(), userns)
                    .map_err(|e| mount_error("id-map", e))?;
                sys::move_mount_to(
                    tree.as_fd(),
                    &path_c(&at).map_err(|e| mount_error("attach", e))?,
                )
                .map_err(|e| mount_error("attach", e))?;
                attached.push(at);
            }
            OverlayMount {
                lowers: attached.clone(),
                ..self.clone()
            }
            .mount_at(target)
        })();
        for at in &attached {
            let _ = Self::unmount(at);
        }
        let _ = std::fs::remove_dir_all(scratch);
        result
    }

    /// Detaches the mount at `target`; a target with nothing mounted is fine.
    pub fn unmount(target: &Path) -> Result<()> {
        match nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
            Err(errno) => Err(Error::Mount {
                op: "unmount",
                target: target.to_path_buf(),
                errno,
                hint: "",
            }),
        }
    }
}

fn path_c(p: &Path) -> std::result::Result<CString, Errno> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

/// overlay splits lowerdir on ':' and options on ','; a backslash escapes them.
fn escape_option(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The OCI image-spec chain ids of a layer stack, bottom first:
/// `ChainID(L0) = DiffID(L0)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
pub(crate) fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let id = match out.last() {
            None => d.clone(),
            Some(prev) => format!("sha256:{}", sha256_hex(format!("{prev} {d}").as_bytes())),
        };
        out.push(id);
    }
    out
}

/// Whether a directory of a snapshot is opaque (hides what lower layers have under it).
pub fn is_opaque_dir(p: &Path) -> bool {
    CString::new(p.as_os_str().as_bytes())
        .ok()
        .and_then(|c| sys::lgetxattr(&c, crate::apply::OPAQUE_XATTR).ok())
        .is_some_and(|v| v == b"y")
}

pub(crate) fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_follows_the_spec() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(
            ids[1],
            format!("sha256:{}", sha256_hex(format!("{a} {b}").as_bytes()))
        );
    }
}
