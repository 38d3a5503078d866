//! A container's network namespace as a file: made by the daemon, kept alive by a bind mount of
//! its nsfs inode (as `ip netns add` does), so that it outlives the container's restarts and the
//! daemon's, and is joined by path from config.json.
//!
//! Network namespaces belong to threads, not processes: every operation that must happen inside
//! one runs on a short-lived thread of its own that `setns`'s there, so the daemon's threads
//! never change namespace.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Error, Result};

/// A network namespace made ahead of need, held by a descriptor: loopback up and Docker's
/// sysctls set. Making one takes the kernel's rtnl lock (loopback up), which another engine's
/// or an earlier container's namespace teardown can hold for tens of milliseconds: kept spares
/// take that wait off a container's start.
#[derive(Debug)]
pub struct Spare(std::os::fd::OwnedFd);

/// Makes a spare network namespace.
pub fn make_spare() -> Result<Spare> {
    on_thread(|| -> Result<Spare> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::Namespace {
            what: "unshare a network namespace",
            path: PathBuf::from("/proc/thread-self/ns/net"),
            source: e,
        })?;
        prepare()?;
        let path = Path::new("/proc/thread-self/ns/net");
        let fd = std::fs::File::open(path).map_err(|e| Error::file("open", path, e))?;
        Ok(Spare(fd.into()))
    })?
}

/// Makes a new network namespace bound at `path` (a new empty file), with its loopback up —
/// from `spare` if given, else made now.
pub fn create(path: &Path, spare: Option<Spare>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(|e| Error::file("create", dir, e))?;
    }
    // Only a mount point: the namespace's own inode (r--r--r--) shows there once bound.
    std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new().write(true).create_new(true),
        0o400,
    )
    .open(path)
    .map_err(|e| Error::file("create", path, e))?;
    let made = match spare {
        Some(spare) => bind(&spare, path),
        None => make_spare().and_then(|spare| bind(&spare, path)),
    };
    if made.is_err() {
        remove(path);
    }
    made
}

/// Binds the namespace `spare` holds at `path`, which keeps it alive.
fn bind(spare: &Spare, path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let source = format!("/proc/self/fd/{}", spare.0.as_raw_fd());
    mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::Namespace {
        what: "bind the network namespace to",
        path: path.to_owned(),
        source: e,
    })
}

/// What every container network namespace gets, from inside it.
fn prepare() -> Result<()> {
    crate::link::loopback_up()?;
    // Docker's defaults (since 20.10) for every container network: any user may bind ports
    // below 1024 and use ICMP echo sockets. Set here, by the namespace's owner, they also hold
    // for containers in a user namespace of their own, whose root cannot change this
    // namespace's sysctls.
    for (key, value) in [
        ("net/ipv4/ip_unprivileged_port_start", "0"),
        ("net/ipv4/ping_group_range", "0 2147483647"),
    ] {
        let file = Path::new("/proc/sys").join(key);
        std::fs::write(&file, value).map_err(|e| Error::file("write", &file, e))?;
    }
    Ok(())
}

/// Unmounts and removes a namespace file; the namespace goes when its last user does (the
/// veth ends inside it with it). Missing files are fine: removal is idempotent.
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// Whether `path` is a bound network namespace (not just the empty file left by a crash).
pub fn is_bound(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

/// Runs `f` on a thread inside the network namespace at `path`.
pub fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let ns = std::fs::File::open(path).map_err(|e| Error::file("open", path, e))?;
    let path: PathBuf = path.to_owned();
    on_thread(move || {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| Error::Namespace {
            what: "enter the network namespace",
            path,
            source: e,
        })?;
        f()
    })?
}

fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(f)
        .map_err(|e| Error::Thread(format!("spawn a namespace thread: {e}")))?
        .join()
        .map_err(|_| Error::Thread("a namespace thread panicked".into()))
}
