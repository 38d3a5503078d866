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
    let listener = with_path(dir, name, |p| UnixListener::bind(p))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

pub(crate) fn connect(dir: &Path, name: &str) -> io::Result<UnixStream> {
    with_path(dir, name, |p| UnixStream::connect(p))
}

/// Descriptors per SCM_RIGHTS message: well under the kernel's limit (SCM_MAX_FD, 253).
const FDS_PER_MESSAGE: usize = 64;

/// Sends descriptors over a Unix stream socket, a few dozen per message (each message one
/// byte of data, which SCM_RIGHTS needs to ride on).
pub(crate) fn send_fds<'a>(
    sock: &UnixStream,
    fds: impl Iterator<Item = std::os::fd::BorrowedFd<'a>>,
) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    let raw: Vec<std::os::fd::RawFd> = fds.map(|fd| fd.as_raw_fd()).collect();
    for chunk in raw.chunks(FDS_PER_MESSAGE) {
        sendmsg::<UnixAddr>(
            sock.as_raw_fd(),
            &[io::IoSlice::new(&[0])],
            &[ControlMessage::ScmRights(chunk)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(io::Error::from)?;
    }
    Ok(())
}

/// Receives `want` descriptors that [`send_fds`] sent (fewer if the sender went away).
pub(crate) fn recv_fds(sock: &UnixStream, want: usize) -> Vec<std::os::fd::OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    let mut out: Vec<OwnedFd> = Vec::with_capacity(want);
    while out.len() < want {
        let mut byte = [0u8; 1];
        let mut iov = [io::IoSliceMut::new(&mut byte)];
        let mut cmsg = nix::cmsg_space!([RawFd; FDS_PER_MESSAGE]);
        let msg = match recvmsg::<UnixAddr>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        };
        let mut got = false;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    got = true;
                    // SAFETY: descriptors received with SCM_RIGHTS are new in this process
                    // and owned by nobody else.
                    out.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
        }
        if msg.bytes == 0 && !got {
            break;
        }
    }
    out
}
