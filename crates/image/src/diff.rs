//! Overlay upper dirs: what changed (`docker diff`) and the layer tar they make
//! (`docker commit`), and the plain tree tar of `docker export`.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::apply::{join, OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX};
use crate::error::{Error, Result};
use crate::store::{Change, ChangeKind};
use crate::sys;

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    CString::new(p.as_os_str().as_bytes())
        .ok()
        .and_then(|c| sys::lgetxattr(&c, OPAQUE_XATTR).ok())
        .is_some_and(|v| v == b"y")
}

/// Children of `dir`, sorted by name so output and tars are deterministic.
fn sorted_children(dir: &Path) -> Result<Vec<(String, PathBuf, fs::Metadata)>> {
    let rd = fs::read_dir(dir).map_err(Error::io("read dir", dir))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(Error::io("read dir", dir))?;
        let p = e.path();
        let m = fs::symlink_metadata(&p).map_err(Error::io("stat", &p))?;
        out.push((e.file_name().to_string_lossy().into_owned(), p, m));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

pub(crate) fn changes(lowers: &[PathBuf], upper: &Path) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk_changes(lowers, upper, "", &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk_changes(lowers: &[PathBuf], dir: &Path, rel: &str, out: &mut Vec<Change>) -> Result<()> {
    for (name, p, m) in sorted_children(dir)? {
        let path = format!("{rel}/{name}");
        if is_whiteout(&m) {
            out.push(Change {
                kind: ChangeKind::Deleted,
                path,
            });
            continue;
        }
        let kind = if in_lowers(lowers, &path) {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.push(Change {
            kind,
            path: path.clone(),
        });
        if m.is_dir() {
            walk_changes(lowers, &p, &path, out)?;
        }
    }
    Ok(())
}

/// Whether `path` is visible in the stack of lower snapshots (topmost first), honouring
/// whiteouts and opaque dirs. Lookups go through openat2 inside each snapshot so a symlink
/// in a layer can never make us stat a host path.
fn in_lowers(lowers: &[PathBuf], path: &str) -> bool {
    let comps: Vec<&[u8]> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::as_bytes)
        .collect();
    for lower in lowers {
        let Ok(root) = fs::File::open(lower) else {
            continue;
        };
        let mut opaque_above = false;
        for i in 0..comps.len() {
            let Ok(parent) = sys::open_in_root(
                root.as_fd(),
                &join(&comps[..i]),
                libc::O_PATH | libc::O_DIRECTORY,
            ) else {
                break;
            };
            let st = match sys::lstatat(parent.as_fd(), comps[i]) {
                Ok(st) => st,
                Err(_) => break,
            };
            let fmt = st.st_mode & libc::S_IFMT;
            if fmt == libc::S_IFCHR && st.st_rdev == 0 {
                return false;
            }
            if i + 1 == comps.len() {
                return true;
            }
            if fmt == libc::S_IFDIR {
                if let Ok(d) = sys::open_in_root(
                    root.as_fd(),
                    &join(&comps[..=i]),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                ) {
                    if sys::fgetxattr(d.as_fd(), OPAQUE_XATTR).is_ok_and(|v| v == b"y") {
                        opaque_above = true;
                    }
                }
            }
        }
        if opaque_above {
            return false;
        }
    }
    false
}

/// Writes the upper dir as a layer tar: overlay whiteouts become `.wh.` files and opaque
/// dirs get a `.wh..wh..opq` entry, the form every image consumer understands.
/// The files berth makes in a container's upper dir only as targets of its bind mounts: what
/// the container writes there goes to the daemon's own copies, so they are never part of
/// what it changed (dockerd keeps them in an "init" layer under the container's).
pub const MOUNT_STUBS: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf"];

/// Whether `path` (relative to the upper dir) is one of [`MOUNT_STUBS`], still empty.
fn is_stub(path: &str, m: &fs::Metadata) -> bool {
    MOUNT_STUBS.contains(&path) && m.file_type().is_file() && m.len() == 0
}

/// Whether an upper dir holds a change of the container's own: anything but the mount stubs
/// and the directories made only to hold them.
pub fn has_changes(upper: &Path) -> Result<bool> {
    fn walk(dir: &Path, rel: &str) -> Result<bool> {
        for (name, p, m) in sorted_children(dir)? {
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let only_stubs = m.file_type().is_dir()
                && MOUNT_STUBS
                    .iter()
                    .any(|s| s.starts_with(&format!("{path}/")))
                && !is_opaque(&p)
                && !walk(&p, &path)?;
            if !(is_stub(&path, &m) || only_stubs) {
                return Ok(true);
            }
        }
        Ok(false)
    }
    walk(upper, "")
}

pub(crate) fn tar_upper(upper: &Path, out: &mut dyn Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    let mut links = HashMap::new();
    write_tree(&mut b, upper, "", true, &mut links)?;
    b.finish().map_err(Error::io("write tar of", upper))
}

/// `docker export`: the tree under `dir` as a tar, symlinks stored not followed.
pub(crate) fn tar_tree(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    let mut links = HashMap::new();
    write_tree(&mut b, dir, "", false, &mut links)?;
    b.finish().map_err(Error::io("write tar of", dir))
}

fn write_tree(
    b: &mut tar::Builder<&mut dyn Write>,
    dir: &Path,
    rel: &str,
    overlay: bool,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    if overlay && !rel.is_empty() && is_opaque(dir) {
        append_empty(b, &format!("{rel}/{OPAQUE_MARKER}"))?;
    }
    for (name, p, m) in sorted_children(dir)? {
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let werr = Error::io("write tar entry for", &p);
        if overlay && is_stub(&path, &m) {
            continue;
        }
        if overlay && is_whiteout(&m) {
            let wh = match rel {
                "" => format!("{WHITEOUT_PREFIX}{name}"),
                r => format!("{r}/{WHITEOUT_PREFIX}{name}"),
            };
            append_empty(b, &wh)?;
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
        h.set_mtime(m.mtime().max(0) as u64);
        // Type bits belong in the entry type, not in the mode field.
        h.set_mode(m.mode() & 0o7777);
        append_xattrs(b, &p)?;
        let ft = m.file_type();
        if ft.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, &path, std::io::empty())
                .map_err(werr)?;
            write_tree(b, &p, &path, overlay, links)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&p).map_err(Error::io("readlink", &p))?;
            h.set_size(0);
            b.append_link(&mut h, &path, &target).map_err(werr)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = links.get(&(m.dev(), m.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &path, first).map_err(werr)?;
                    continue;
                }
                links.insert((m.dev(), m.ino()), path.clone());
            }
            // O_NOFOLLOW: the tree may change under us; never read through a new symlink.
            let f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&p)
                .map_err(Error::io("open", &p))?;
            b.append_data(&mut h, &path, f).map_err(werr)?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            h.set_size(0);
            b.append_data(&mut h, &path, std::io::empty())
                .map_err(werr)?;
        }
        // Sockets cannot be stored in a tar; Docker skips them too.
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

fn append_empty(b: &mut tar::Builder<&mut dyn Write>, path: &str) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(0);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, path, std::io::empty())
        .map_err(Error::io("write tar entry", path))
}

/// Stores the file's xattrs (except overlay's own) in a PAX header before its entry, as
/// `SCHILY.xattr.<name>`, which is how GNU tar and Docker record them.
fn append_xattrs(b: &mut tar::Builder<&mut dyn Write>, p: &Path) -> Result<()> {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return Ok(());
    };
    let names = match sys::llistxattr(&c) {
        Ok(n) => n,
        Err(Errno::ENOTSUP) => return Ok(()),
        Err(e) => return Err(Error::errno("list xattrs of", p, e)),
    };
    let mut data = Vec::new();
    for n in names.iter().filter(|n| !n.starts_with("trusted.overlay.")) {
        if let Ok(v) = sys::lgetxattr(&c, n) {
            pax_record(&mut data, &format!("SCHILY.xattr.{n}"), &v);
        }
    }
    if data.is_empty() {
        return Ok(());
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_path("PaxHeader")
        .map_err(Error::io("write pax header for", p))?;
    h.set_cksum();
    b.append(&h, data.as_slice())
        .map_err(Error::io("write pax header for", p))
}

/// One PAX record: "<len> <key>=<value>\n" where len counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}
