//! Writing into an image's root without ever leaving it: every path is resolved with
//! `openat2(RESOLVE_IN_ROOT)` from the root's descriptor (a symlink in the image, absolute or
//! with `..`, stays inside), and each entry is made with `*at()` calls relative to its
//! resolved parent, never through a final symlink.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use crate::error::{Error, Result};

/// The root of an image being written (a mounted overlay).
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// Who owns what a step writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

fn errno(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(Errno) -> Error {
    let path = path.into();
    move |e| Error::Io {
        op,
        path,
        source: std::io::Error::from(e),
    }
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno("open", path))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The host path of `p` (for messages only: never opened by path).
    fn shown(&self, p: &str) -> PathBuf {
        self.path.join(p.trim_start_matches('/'))
    }

    fn open_in(&self, p: &str, flags: OFlag) -> std::result::Result<OwnedFd, Errno> {
        let p = p.trim_start_matches('/');
        let p = if p.is_empty() { "." } else { p };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        loop {
            match nix::fcntl::openat2(self.fd.as_fd(), p, how) {
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                r => return r,
            }
        }
    }

    /// lstat of `p` (parents resolved in the root, the last component not followed).
    pub fn lstat(&self, p: &str) -> Option<FileStat> {
        let (parent, name) = split(p);
        let dir = self
            .open_in(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .ok()?;
        if name.is_empty() {
            return nix::sys::stat::fstat(dir.as_fd()).ok();
        }
        nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()
    }

    /// stat of `p`, symlinks followed inside the root.
    pub fn stat(&self, p: &str) -> Option<FileStat> {
        let fd = self.open_in(p, OFlag::O_PATH).ok()?;
        nix::sys::stat::fstat(fd.as_fd()).ok()
    }

    /// Whether `p` is (or leads, in the root, to) a directory.
    pub fn is_dir(&self, p: &str) -> bool {
        self.stat(p).is_some_and(|s| is_kind(&s, SFlag::S_IFDIR))
    }

    /// Opens the directory `p`, making it and any missing parent (mode 0755, owned by
    /// `owner`) first; symlinks on the way are followed inside the root.
    pub fn mkdir_all(&self, p: &str, owner: Owner) -> Result<OwnedFd> {
        match self.open_in(p, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(errno("open directory", self.shown(p))(e)),
        }
        let mut cur = self
            .open_in("/", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(errno("open", &self.path))?;
        let mut sofar = String::new();
        for comp in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
            sofar.push('/');
            sofar.push_str(comp);
            cur = match self.open_in(&sofar, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    put_dir(cur.as_fd(), comp, 0o755, owner, None)
                        .map_err(|e| with_path(e, self.shown(&sofar)))?;
                    self.open_in(&sofar, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                        .map_err(errno("open directory", self.shown(&sofar)))?
                }
                Err(Errno::ENOTDIR) => {
                    return Err(Error::Invalid(format!(
                        "cannot create directory {sofar}: a file of that name exists in the image"
                    )))
                }
                Err(e) => return Err(errno("open directory", self.shown(&sofar))(e)),
            };
        }
        Ok(cur)
    }

    /// Opens the directory `p` (following symlinks inside the root).
    pub fn open_dir(&self, p: &str) -> Result<OwnedFd> {
        self.open_in(p, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(errno("open directory", self.shown(p)))
    }

    /// Opens the file `p` for reading (symlinks followed inside the root).
    pub fn open_file(&self, p: &str) -> Result<File> {
        self.open_in(p, OFlag::O_RDONLY)
            .map(File::from)
            .map_err(errno("open", self.shown(p)))
    }

    /// The target of the symlink `p`.
    pub fn readlink(&self, p: &str) -> Result<String> {
        let (parent, name) = split(p);
        let dir = self
            .open_in(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(errno("open", self.shown(parent)))?;
        nix::fcntl::readlinkat(dir.as_fd(), name)
            .map(|t| t.to_string_lossy().into_owned())
            .map_err(errno("readlink", self.shown(p)))
    }

    /// The names in directory `p`, sorted.
    pub fn list(&self, p: &str) -> Result<Vec<String>> {
        let fd = self.open_dir(p)?;
        let mut d = nix::dir::Dir::from_fd(fd).map_err(errno("read dir", self.shown(p)))?;
        let mut names: Vec<String> = d
            .iter()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        Ok(names)
    }

    /// A path of this root as the kernel can reopen it (the resolved directory's
    /// /proc/self/fd link), for an API that wants a path.
    pub fn proc_path(fd: BorrowedFd<'_>) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    }
}

fn with_path(e: Error, path: PathBuf) -> Error {
    match e {
        Error::Io { op, source, .. } => Error::Io { op, path, source },
        other => other,
    }
}

/// `(parent, name)` of a `/`-separated path.
pub fn split(p: &str) -> (&str, &str) {
    let p = p.trim_end_matches('/');
    match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    }
}

pub fn is_kind(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

fn io_err(op: &'static str, name: &str) -> impl FnOnce(Errno) -> Error {
    let path = PathBuf::from(name);
    move |e| Error::Io {
        op,
        path,
        source: std::io::Error::from(e),
    }
}

/// Makes room for `name` in `dir`: a different kind of entry there goes (a directory
/// stays when a directory replaces it: contents merge, as tar does).
fn make_room(dir: BorrowedFd<'_>, name: &str, want_dir: bool) -> Result<bool> {
    let st = match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(io_err("stat", name)(e)),
    };
    let is_dir = is_kind(&st, SFlag::S_IFDIR);
    if is_dir && want_dir {
        return Ok(true);
    }
    if is_dir {
        remove_tree(dir, name)?;
    } else {
        nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
            .map_err(io_err("remove", name))?;
    }
    Ok(false)
}

/// Opens the directory `name` of `dir`, never through a symlink.
fn open_subdir(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err("open", name))
}

/// Removes `name` and everything under it.
pub fn remove_tree(dir: BorrowedFd<'_>, name: &str) -> Result<()> {
    let fd = open_subdir(dir, name)?;
    let keep = fd.try_clone().map_err(|e| Error::Io {
        op: "dup",
        path: PathBuf::from(name),
        source: e,
    })?;
    let mut d = nix::dir::Dir::from_fd(fd).map_err(io_err("read dir", name))?;
    let kids: Vec<(String, bool)> = d
        .iter()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n != "." && n != "..").then(|| {
                let dir = e.file_type() == Some(nix::dir::Type::Directory);
                (n, dir)
            })
        })
        .collect();
    for (k, is_dir) in kids {
        if is_dir {
            remove_tree(keep.as_fd(), &k)?;
        } else {
            nix::unistd::unlinkat(keep.as_fd(), k.as_str(), UnlinkatFlags::NoRemoveDir)
                .map_err(io_err("remove", name))?;
        }
    }
    nix::unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(io_err("remove", name))
}

/// Makes (or keeps) the directory `name` in `dir` with this mode and owner; returns it open.
pub fn put_dir(
    dir: BorrowedFd<'_>,
    name: &str,
    mode: u32,
    owner: Owner,
    mtime: Option<i64>,
) -> Result<OwnedFd> {
    if !make_room(dir, name, true)? {
        match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io_err("mkdir", name)(e)),
        }
    }
    let fd = open_subdir(dir, name)?;
    finish(fd.as_fd(), name, mode, owner)?;
    if let Some(t) = mtime {
        set_mtime(dir, name, t);
    }
    Ok(fd)
}

/// Writes the file `name` in `dir` (replacing what is there) with `fill`, then its owner,
/// mode and modification time.
pub fn put_file(
    dir: BorrowedFd<'_>,
    name: &str,
    mode: u32,
    owner: Owner,
    mtime: Option<i64>,
    fill: &mut dyn FnMut(&mut File) -> Result<()>,
) -> Result<()> {
    make_room(dir, name, false)?;
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(io_err("create", name))?;
    let mut f = File::from(fd);
    fill(&mut f)?;
    finish(f.as_fd(), name, mode, owner)?;
    if let Some(t) = mtime {
        set_mtime(dir, name, t);
    }
    Ok(())
}

/// Makes the symlink `name` → `target` in `dir` (replacing what is there).
pub fn put_symlink(
    dir: BorrowedFd<'_>,
    name: &str,
    target: &str,
    owner: Owner,
    mtime: Option<i64>,
) -> Result<()> {
    make_room(dir, name, false)?;
    nix::unistd::symlinkat(target, dir, name).map_err(io_err("symlink", name))?;
    nix::unistd::fchownat(
        dir,
        name,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(io_err("chown", name))?;
    if let Some(t) = mtime {
        set_mtime(dir, name, t);
    }
    Ok(())
}

fn finish(fd: BorrowedFd<'_>, name: &str, mode: u32, owner: Owner) -> Result<()> {
    nix::unistd::fchown(
        fd,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )
    .map_err(io_err("chown", name))?;
    // chown clears set-id bits: the mode comes after it.
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode & 0o7777))
        .map_err(io_err("chmod", name))
}

fn set_mtime(dir: BorrowedFd<'_>, name: &str, secs: i64) {
    let t = TimeSpec::new(secs, 0);
    let _ = nix::sys::stat::utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink);
}
