//! The monitor's Unix sockets in its directory. A socket address holds at most 107 bytes, and
//! `/run/berth/containers/<64 hex>/attach.sock` comes close: longer paths go through the
//! directory's descriptor in /proc/self/fd, which the kernel resolves like any path.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

pub(crate) const ATTACH: &str = "attach.sock";
pub(crate) const CONTROL: &str = "control.sock";
pub(crate) const CONSOLE: &str = "console.sock";

/// sun_path is 108 bytes with its terminating NUL; stay clear of it.
const MAX_PATH: usize = 100;

fn with_path<T>(dir: &Path, name: &str, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    let full = dir.join(name);
    if full.as_os_str().len() < MAX_PATH {
        return f(&full);
    }
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    f(&PathBuf::from(format!(
        "/proc/self/fd/{}/{name}",
        handle.as_raw_fd()
    )))
}

pub(crate) fn bind(dir: &Path, name: &str) -> io::Result<UnixListener> {
    // A socket file left by a monitor that died would make bind fail with EADDRINUSE.
    let _ = std::fs::remove_file(dir.join(name));
    // The socket is made with the umask's mode: 0600, root's alone (connecting takes write
    // permission), from its first instant. The monitor is single-threaded: the process-wide
    // umask is its own to swap.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = with_path(dir, name, |p| UnixListener::bind(p));
    nix::sys::stat::umask(umask);
    let listener = bound?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

pub(crate) fn connect(dir: &Path, name: &str) -> io::Result<UnixStream> {
    with_path(dir, name, |p| UnixStream::connect(p))
}
