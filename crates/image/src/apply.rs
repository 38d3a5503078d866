//! Applying a layer tar to an empty snapshot directory, safely against hostile tars.
//!
//! Every parent directory is resolved with openat2(RESOLVE_IN_ROOT), so `..`, absolute
//! symlinks and symlinked parents (`a -> /etc` then `a/passwd`) all stay inside the snapshot;
//! the entry itself is created with *at() calls relative to that parent and never through a
//! final symlink. Whiteouts become what overlayfs expects of a lower dir: `.wh.NAME` a 0/0 char
//! device, `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::sys;

pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// A sparse file may claim this much at most: its holes are read back as zeros by the tar
/// crate, so a header claiming petabytes would keep us busy for hours while using no disk.
const MAX_SPARSE_SIZE: u64 = 16 << 30;

const CHUNK: usize = 128 * 1024;

/// Unpacks the tar read from `r` into `root` (an empty directory). Returns the bytes of file
/// content written, the layer's "unpacked size".
pub(crate) fn apply_layer(r: &mut dyn Read, root: &Path, layer: &str) -> Result<u64> {
    apply_tar(r, root, layer, true)
}

/// Unpacks a plain, gzip or zstd tar into the directory `dir` with the same defences as a
/// layer, but as a tar and not as a layer: `.wh.` names are ordinary files (Dockerfile `ADD`
/// of a local archive).
pub fn extract_archive(r: &mut dyn Read, dir: &Path, name: &str) -> Result<u64> {
    let mut plain = crate::blobs::decompress(r).map_err(|source| Error::BadLayer {
        layer: name.to_string(),
        source,
    })?;
    apply_tar(&mut plain, dir, name, false)
}

fn apply_tar(r: &mut dyn Read, root: &Path, layer: &str, whiteouts: bool) -> Result<u64> {
    let root_fd = File::open(root).map_err(Error::io("open snapshot", root))?;
    let root_fd: OwnedFd = root_fd.into();
    let mut archive = tar::Archive::new(r);
    let bad = |source| Error::BadLayer {
        layer: layer.to_string(),
        source,
    };
    let mut total = 0u64;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        total += apply_entry(root_fd.as_fd(), &mut entry, layer, whiteouts)?;
    }
    // Drain trailing padding so a caller hashing the stream sees every byte.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(bad)?;
    Ok(total)
}

/// The path's components with `.` and empty parts dropped and a leading `/` ignored (the
/// layer's root is `/`); `..` is refused outright rather than clamped, as Docker does.
pub(crate) fn clean_components(path: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    let mut out = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains \"..\""),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn apply_entry<R: Read>(
    root: BorrowedFd<'_>,
    entry: &mut tar::Entry<'_, R>,
    layer: &str,
    whiteouts: bool,
) -> Result<u64> {
    let raw_path = entry.path_bytes().into_owned();
    let shown = String::from_utf8_lossy(&raw_path).into_owned();
    let refuse = |reason: String| Error::UnsafeEntry {
        layer: layer.to_string(),
        entry: shown.clone(),
        reason,
    };
    let comps = clean_components(&raw_path).map_err(|r| refuse(r.to_string()))?;
    let Some((name, parents)) = comps.split_last() else {
        // The layer's root itself: the snapshot dir keeps its own owner and mode.
        return Ok(0);
    };
    let name: &[u8] = name;
    let header = entry.header().clone();
    let kind = header.entry_type();

    let (mut uid, mut gid) = (
        header.uid().map_err(|e| refuse(e.to_string()))? as u32,
        header.gid().map_err(|e| refuse(e.to_string()))? as u32,
    );
    let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(|e| refuse(e.to_string()))? {
        for ext in pax.flatten() {
            let Ok(key) = ext.key() else { continue };
            if let Some(x) = key.strip_prefix("SCHILY.xattr.") {
                // overlay's own xattrs would let a layer redirect lookups or fake opaque
                // dirs; only whiteout markers may produce them.
                if !x.starts_with("trusted.overlay.") {
                    xattrs.push((x.to_string(), ext.value_bytes().to_vec()));
                }
            } else if key == "uid" {
                uid = ext.value().ok().and_then(|v| v.parse().ok()).unwrap_or(uid);
            } else if key == "gid" {
                gid = ext.value().ok().and_then(|v| v.parse().ok()).unwrap_or(gid);
            }
        }
    }
    let mode = header.mode().map_err(|e| refuse(e.to_string()))? & 0o7777;
    let mtime = header.mtime().unwrap_or(0) as i64;

    let parent =
        open_parent(root, parents).map_err(|e| refuse(format!("parent directory: {e}")))?;
    let p = parent.as_fd();
    let sys_err = |what: &str, e: Errno| refuse(format!("{what}: {e}"));

    if let Some(wh) = name
        .strip_prefix(WHITEOUT_PREFIX.as_bytes())
        .filter(|_| whiteouts)
    {
        if name == OPAQUE_MARKER.as_bytes() {
            let dir = sys::open_in_root(root, &join(parents), libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| sys_err("open opaque dir", e))?;
            sys::fsetxattr(dir.as_fd(), OPAQUE_XATTR, b"y")
                .map_err(|e| sys_err("set opaque xattr", e))?;
        } else if !wh.starts_with(WHITEOUT_PREFIX.as_bytes()) && !wh.is_empty() {
            remove_existing(p, wh, false).map_err(|e| sys_err("replace", e))?;
            sys::mknodat(p, wh, libc::S_IFCHR, 0).map_err(|e| sys_err("create whiteout", e))?;
        }
        // Other `.wh..wh.*` names are aufs bookkeeping (hardlink dirs); nothing to apply.
        return Ok(0);
    }

    let mut written = 0;
    match kind {
        tar::EntryType::Directory => {
            remove_existing(p, name, true).map_err(|e| sys_err("replace", e))?;
            match sys::mkdirat(p, name, 0o700) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys_err("mkdir", e)),
            }
            let fd = sys::openat(
                p,
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .map_err(|e| sys_err("open dir", e))?;
            finish_fd(fd.as_fd(), uid, gid, mode, &xattrs)
                .map_err(|e| sys_err("set metadata", e))?;
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            if kind.is_gnu_sparse() {
                let real = header
                    .as_gnu()
                    .and_then(|g| g.real_size().ok())
                    .unwrap_or(u64::MAX);
                if real > MAX_SPARSE_SIZE {
                    return Err(refuse(format!(
                        "sparse file claims {real} bytes, more than the {MAX_SPARSE_SIZE} allowed"
                    )));
                }
            }
            remove_existing(p, name, false).map_err(|e| sys_err("replace", e))?;
            let fd = sys::openat(
                p,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0o600,
            )
            .map_err(|e| sys_err("create file", e))?;
            let mut file = File::from(fd);
            written = copy_sparse(entry, &mut file).map_err(|e| Error::BadLayer {
                layer: layer.to_string(),
                source: std::io::Error::new(e.kind(), format!("{shown}: {e}")),
            })?;
            finish_fd(file.as_fd(), uid, gid, mode, &xattrs)
                .map_err(|e| sys_err("set metadata", e))?;
            let _ = sys::utimensat_nofollow(p, name, mtime);
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| refuse("symlink without target".into()))?
                .into_owned();
            remove_existing(p, name, false).map_err(|e| sys_err("replace", e))?;
            // The target is stored, never followed: every later lookup is RESOLVE_IN_ROOT.
            sys::symlinkat(&target, p, name).map_err(|e| sys_err("symlink", e))?;
            sys::fchownat_nofollow(p, name, uid, gid).map_err(|e| sys_err("chown", e))?;
            let _ = sys::utimensat_nofollow(p, name, mtime);
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| refuse("hardlink without target".into()))?
                .into_owned();
            let tcomps =
                clean_components(&target).map_err(|r| refuse(format!("hardlink target: {r}")))?;
            let Some((tname, tparents)) = tcomps.split_last() else {
                return Err(refuse("hardlink to the root directory".into()));
            };
            let tparent =
                sys::open_in_root(root, &join(tparents), libc::O_PATH | libc::O_DIRECTORY)
                    .map_err(|e| sys_err("hardlink target not in this layer", e))?;
            remove_existing(p, name, false).map_err(|e| sys_err("replace", e))?;
            sys::linkat(tparent.as_fd(), tname, p, name)
                .map_err(|e| sys_err("hardlink target not in this layer", e))?;
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            let major = header.device_major().ok().flatten().unwrap_or(1);
            let minor = header.device_minor().ok().flatten().unwrap_or(1);
            if whiteouts && kind == tar::EntryType::Char && major == 0 && minor == 0 {
                // An overlay-style whiteout written by a tool that tars upper dirs as is.
                remove_existing(p, name, false).map_err(|e| sys_err("replace", e))?;
                sys::mknodat(p, name, libc::S_IFCHR, 0)
                    .map_err(|e| sys_err("create whiteout", e))?;
            }
            // Other device nodes are skipped: a container gets its devices from the runtime
            // (which creates /dev and grants cgroup access), and a node shipped in an image
            // would hand whoever runs it a host device number to open.
        }
        tar::EntryType::Fifo => {
            remove_existing(p, name, false).map_err(|e| sys_err("replace", e))?;
            sys::mknodat(p, name, libc::S_IFIFO | mode, 0).map_err(|e| sys_err("mkfifo", e))?;
            sys::fchownat_nofollow(p, name, uid, gid).map_err(|e| sys_err("chown", e))?;
            // mknod honours the daemon's umask, and chown clears set-id bits: the layer's
            // mode is set last.
            sys::fchmodat(p, name, mode).map_err(|e| sys_err("chmod", e))?;
        }
        // pax/GNU extension headers are consumed by the tar crate; anything else is unknown.
        _ => {}
    }
    Ok(written)
}

fn finish_fd(
    fd: BorrowedFd<'_>,
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: &[(String, Vec<u8>)],
) -> sys::SysResult<()> {
    sys::fchown(fd, uid, gid)?;
    // chown clears set-id bits, so the mode comes after it.
    sys::fchmod(fd, mode)?;
    for (k, v) in xattrs {
        // Filesystems without e.g. security.* support should not fail the whole layer.
        let _ = sys::fsetxattr(fd, k, v);
    }
    Ok(())
}

/// Copies the entry's data, turning runs of zeros into holes so sparse files stay sparse.
fn copy_sparse(r: &mut dyn Read, f: &mut File) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut pending_hole = false;
    loop {
        let n = read_full(r, &mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            f.seek(SeekFrom::Current(n as i64))?;
            pending_hole = true;
        } else {
            f.write_all(&buf[..n])?;
            pending_hole = false;
        }
        total += n as u64;
    }
    if pending_hole {
        f.set_len(total)?;
    }
    Ok(total)
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub(crate) fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

/// The parent directory of an entry, created (0755, root-owned, as Docker does for implied
/// parents) where missing; every step is resolved inside `root`.
fn open_parent(root: BorrowedFd<'_>, parents: &[&[u8]]) -> sys::SysResult<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    match sys::open_in_root(root, &join(parents), flags) {
        Err(Errno::ENOENT) => {}
        r => return r,
    }
    let mut cur = sys::open_in_root(root, b".", flags)?;
    for i in 0..parents.len() {
        let prefix = join(&parents[..=i]);
        cur = match sys::open_in_root(root, &prefix, flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match sys::mkdirat(cur.as_fd(), parents[i], 0o755) {
                    // 0755 exactly: mkdir honours the daemon's umask (027).
                    Ok(()) => sys::fchmodat(cur.as_fd(), parents[i], 0o755)?,
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                sys::open_in_root(root, &prefix, flags)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Makes room for a new entry `name`: anything there goes, except that a directory is kept
/// when a directory replaces it (tar semantics: later metadata wins, contents merge).
fn remove_existing(p: BorrowedFd<'_>, name: &[u8], keep_dir: bool) -> sys::SysResult<()> {
    let st = match sys::lstatat(p, name) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        if keep_dir {
            return Ok(());
        }
        remove_tree_at(p, name)
    } else {
        sys::unlinkat(p, name, 0)
    }
}

fn remove_tree_at(p: BorrowedFd<'_>, name: &[u8]) -> sys::SysResult<()> {
    let dir = sys::openat(
        p,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )?;
    let mut d = nix::dir::Dir::from_fd(dir)?;
    let fd = d.as_fd().try_clone_to_owned().map_err(|_| Errno::EMFILE)?;
    let names: Vec<Vec<u8>> = d
        .iter()
        .flatten()
        .map(|e| e.file_name().to_bytes().to_vec())
        .filter(|n| n != b"." && n != b"..")
        .collect();
    for n in names {
        remove_existing(fd.as_fd(), &n, false)?;
    }
    sys::unlinkat(p, name, libc::AT_REMOVEDIR)
}
