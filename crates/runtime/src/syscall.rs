//! The few system calls nix does not wrap (yet): clone and clone3 without a new stack, openat2, the new
//! mount API, close_range. Everything `unsafe` about talking to the kernel directly lives here.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// `clone(2)` with fork semantics (no new stack): returns `None` in the child.
///
/// # Safety
/// The caller must be single-threaded; the child may only rely on state that fork preserves.
pub(crate) unsafe fn clone_process(flags: libc::c_ulong) -> Result<Option<Pid>, Errno> {
    let flags = flags | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a null stack makes clone behave like fork (the child runs on a copy of this
    // stack); the caller guarantees there is no other thread whose locks the child would inherit.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), up to `cgroup` (the kernel's CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3(2)` with fork semantics that starts the child inside the cgroup v2 directory
/// `cgroup`: no write to `cgroup.procs` afterwards, so no wait on the cgroup migration lock
/// (an RCU grace period, the largest single cost of starting a container). Linux 5.7+;
/// older kernels answer ENOSYS, E2BIG or EINVAL, and the caller falls back to clone and a write.
///
/// # Safety
/// As [`clone_process`].
pub(crate) unsafe fn clone_into_cgroup(
    flags: libc::c_ulong,
    cgroup: BorrowedFd<'_>,
) -> Result<Option<Pid>, Errno> {
    #[allow(
        clippy::useless_conversion,
        reason = "c_ulong is u64 only on 64-bit targets"
    )]
    let flags = u64::from(flags);
    let args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: stack 0 gives fork semantics as for clone above; `args` outlives the call and
    // its size is passed with it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` as if `root` were `/`: `..` and absolute symlinks cannot leave it, and procfs
/// magic links are refused. This is what keeps a hostile rootfs from redirecting a mount.
pub(crate) fn open_in_root(
    root: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: `how` is a valid open_how of the size passed; `path` is NUL-terminated.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        match Errno::last() {
            // openat2 asks to retry when a rename raced with the lookup.
            Errno::EAGAIN | Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

pub(crate) const OPEN_TREE_CLONE: u32 = 1;
pub(crate) const AT_RECURSIVE: u32 = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;

/// `open_tree(2)`: a detached copy of the mount at `path` when `OPEN_TREE_CLONE` is given.
pub(crate) fn open_tree(dirfd: RawFd, path: &CStr, flags: u32) -> Result<OwnedFd, Errno> {
    let flags = flags | libc::O_CLOEXEC as u32;
    // SAFETY: plain syscall with a NUL-terminated path.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[repr(C)]
pub(crate) struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x01;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x02;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x04;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x08;
pub(crate) const MOUNT_ATTR__ATIME: u64 = 0x70;
pub(crate) const MOUNT_ATTR_RELATIME: u64 = 0x00;
pub(crate) const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub(crate) const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub(crate) const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub(crate) const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
pub(crate) const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// `mount_setattr(2)` on the mount `fd` (with `AT_EMPTY_PATH`), recursively if asked.
pub(crate) fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: &MountAttr,
) -> Result<(), Errno> {
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `attr` is a valid mount_attr of the size passed; the path is the empty string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `move_mount(2)` of the detached mount `from` onto the file or directory `to`.
pub(crate) fn move_mount_to_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: both descriptors are valid for the call; empty paths with F_EMPTY_PATH flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | 0x40, /* MOVE_MOUNT_T_EMPTY_PATH */
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Closes every descriptor from `first` up: close_range, else (an old kernel, a filter refusing
/// it) each one /proc/self/fd lists.
pub(crate) fn close_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range takes plain numbers; the caller owns no Rust object on these fds.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if ret == 0 {
        return Ok(());
    }
    let first = RawFd::try_from(first).unwrap_or(RawFd::MAX);
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| Errno::last())?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: as above; a number that was the listing's own descriptor is already closed.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Marks every descriptor from `first` up close-on-exec: close_range(CLOSE_RANGE_CLOEXEC) where
/// the kernel has it (5.11) and no seccomp filter of an outer sandbox refuses it, else each
/// descriptor listed in /proc/self/fd with fcntl, else (no /proc) every number below the
/// descriptor limit.
pub(crate) fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: plain syscall on integer arguments; marks descriptors, frees no memory.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    let fallback = match Errno::last() {
        // ENOSYS: a kernel before 5.9; EINVAL: before 5.11 (no CLOEXEC flag); EPERM/EACCES:
        // refused by a filter the runtime itself runs under.
        Errno::ENOSYS | Errno::EINVAL | Errno::EPERM | Errno::EACCES => true,
        _ => false,
    };
    if !fallback {
        return Err(Errno::last());
    }
    let first = RawFd::try_from(first).unwrap_or(RawFd::MAX);
    match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => {
            // Collect first: marking while listing would also mark the listing's own descriptor.
            let fds: Vec<RawFd> = entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd >= first)
                .collect();
            for fd in fds {
                set_cloexec(fd)?;
            }
        }
        Err(_) => {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into the struct we own.
            if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
                return Err(Errno::last());
            }
            let end = RawFd::try_from(limit.rlim_cur.min(1 << 20)).unwrap_or(1 << 20);
            for fd in first..end {
                set_cloexec(fd)?;
            }
        }
    }
    Ok(())
}

/// Sets FD_CLOEXEC on one descriptor; a closed number is fine.
fn set_cloexec(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: F_GETFD/F_SETFD on a descriptor number touch no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return match Errno::last() {
            Errno::EBADF => Ok(()),
            e => Err(e),
        };
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `prctl(2)` with integer arguments.
pub(crate) fn prctl(option: i32, arg2: u64) -> Result<(), Errno> {
    // SAFETY: the options used by berth take integer arguments only.
    let ret = unsafe { libc::prctl(option, arg2, 0u64, 0u64, 0u64) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}
