//! The system calls that layer extraction and overlay mounts need and that nix does not wrap
//! in the shape we need: openat2, the *at family on raw descriptors, xattrs on descriptors,
//! and the new mount API. Every `unsafe` block of this crate lives here.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

pub(crate) type SysResult<T> = std::result::Result<T, Errno>;

fn cstr(s: &[u8]) -> SysResult<CString> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

fn check(ret: libc::c_int) -> SysResult<()> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn owned(fd: libc::c_long) -> SysResult<OwnedFd> {
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this descriptor and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// openat2 with `root` as the filesystem root: `..` and absolute symlinks stay inside it,
/// so a hostile symlink in a layer can never lead a lookup out of the snapshot.
pub(crate) fn open_in_root(root: BorrowedFd<'_>, path: &[u8], flags: i32) -> SysResult<OwnedFd> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let path = cstr(if path.is_empty() { b"." } else { path })?;
    let how = OpenHow::new()
        .flags(OFlag::from_bits_retain(flags | libc::O_CLOEXEC))
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    loop {
        match nix::fcntl::openat2(root, path.as_c_str(), how) {
            // openat2 asks to retry when a rename raced with the lookup.
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// openat relative to `dir` for one name (no slashes): the final component's symlink is
/// refused by the caller passing O_NOFOLLOW.
pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &[u8],
    flags: i32,
    mode: u32,
) -> SysResult<OwnedFd> {
    let name = cstr(name)?;
    // SAFETY: NUL-terminated name, valid dirfd borrowed for the call.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode,
        )
    };
    owned(fd as libc::c_long)
}

pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> SysResult<()> {
    let name = cstr(name)?;
    // SAFETY: NUL-terminated name, valid dirfd.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

pub(crate) fn mknodat(dir: BorrowedFd<'_>, name: &[u8], mode: u32, dev: u64) -> SysResult<()> {
    let name = cstr(name)?;
    // SAFETY: NUL-terminated name, valid dirfd.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) })
}

pub(crate) fn symlinkat(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> SysResult<()> {
    let target = cstr(target)?;
    let name = cstr(name)?;
    // SAFETY: both strings NUL-terminated, valid dirfd.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// linkat without AT_SYMLINK_FOLLOW: links the named inode itself, never a symlink's target.
pub(crate) fn linkat(
    from_dir: BorrowedFd<'_>,
    from: &[u8],
    to_dir: BorrowedFd<'_>,
    to: &[u8],
) -> SysResult<()> {
    let from = cstr(from)?;
    let to = cstr(to)?;
    // SAFETY: both strings NUL-terminated, valid dirfds.
    check(unsafe {
        libc::linkat(
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
            0,
        )
    })
}

pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &[u8], flags: i32) -> SysResult<()> {
    let name = cstr(name)?;
    // SAFETY: NUL-terminated name, valid dirfd.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

pub(crate) fn fchownat_nofollow(
    dir: BorrowedFd<'_>,
    name: &[u8],
    uid: u32,
    gid: u32,
) -> SysResult<()> {
    let name = cstr(name)?;
    // SAFETY: NUL-terminated name, valid dirfd.
    check(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// chmod of `name` in `dir`, which the caller has just made: never a symlink (this call would
/// follow one).
pub(crate) fn fchmodat(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> SysResult<()> {
    let name = cstr(name)?;
    // SAFETY: NUL-terminated name, valid dirfd.
    check(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) })
}

pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> SysResult<()> {
    // SAFETY: valid descriptor.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
}

pub(crate) fn utimensat_nofollow(dir: BorrowedFd<'_>, name: &[u8], mtime: i64) -> SysResult<()> {
    let name = cstr(name)?;
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: NUL-terminated name, two valid timespecs, valid dirfd.
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

pub(crate) fn fsetxattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> SysResult<()> {
    let name = cstr(name.as_bytes())?;
    // SAFETY: NUL-terminated name, value slice valid for its length.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// lgetxattr on a path: used only on our own snapshot and upper dirs, never hostile paths.
pub(crate) fn lgetxattr(path: &CStr, name: &str) -> SysResult<Vec<u8>> {
    let name = cstr(name.as_bytes())?;
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings; buf valid for its length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(Errno::last());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// All xattr names of a path (not following a final symlink).
pub(crate) fn llistxattr(path: &CStr) -> SysResult<Vec<String>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated path; buf valid for its length.
    let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(Errno::last());
    }
    buf.truncate(n as usize);
    Ok(buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

// The new mount API (linux >= 5.2; "lowerdir+" >= 6.8).
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
// Not O_CLOEXEC: these calls have their own flag values.
const FSOPEN_CLOEXEC: u32 = 0x01;
const FSMOUNT_CLOEXEC: u32 = 0x01;

pub(crate) fn fsopen(fs: &CStr) -> SysResult<OwnedFd> {
    // SAFETY: NUL-terminated filesystem name.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, fs.as_ptr(), FSOPEN_CLOEXEC) };
    owned(fd)
}

pub(crate) fn fsconfig_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> SysResult<()> {
    // SAFETY: NUL-terminated key and value, valid fs context fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

pub(crate) fn fsconfig_flag(fs: BorrowedFd<'_>, key: &CStr) -> SysResult<()> {
    // SAFETY: a NUL-terminated key, no value, a valid fs context fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

pub(crate) fn fsconfig_create(fs: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: a valid fs context fd; the command takes no key or value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

pub(crate) fn fsmount(fs: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    // SAFETY: a valid, created fs context fd.
    let fd = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0u32) };
    owned(fd)
}

pub(crate) fn move_mount_to(mnt: BorrowedFd<'_>, target: &CStr) -> SysResult<()> {
    let empty = c"";
    // SAFETY: a detached mount fd and a NUL-terminated target path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// fstatat without following a final symlink.
pub(crate) fn lstatat(dir: BorrowedFd<'_>, name: &[u8]) -> SysResult<libc::stat> {
    let name = cstr(name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: NUL-terminated name, `st` is written by the kernel on success only.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(r)?;
    // SAFETY: fstatat returned 0, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

pub(crate) fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> SysResult<()> {
    // SAFETY: valid descriptor.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })
}

pub(crate) fn fgetxattr(fd: BorrowedFd<'_>, name: &str) -> SysResult<Vec<u8>> {
    let name = cstr(name.as_bytes())?;
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated name; buf valid for its length.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(Errno::last());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// A detached copy of the mount tree at `path` (open_tree with OPEN_TREE_CLONE).
pub(crate) fn open_tree_clone(path: &CStr) -> SysResult<OwnedFd> {
    const OPEN_TREE_CLONE: u32 = 1;
    // SAFETY: a NUL-terminated path; the flags ask for a new descriptor we then own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as u32,
        )
    };
    owned(fd)
}

/// Makes the detached mount `mnt` id-mapped through the user namespace `userns`.
pub(crate) fn mount_setattr_idmap(mnt: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> SysResult<()> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: `attr` is a valid mount_attr of the size passed, alive for the call; the mount
    // and namespace descriptors are open.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
