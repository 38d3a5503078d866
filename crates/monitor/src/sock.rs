//! Unix sockets bound and reached by path, whatever the path's length. A socket address holds
//! at most 107 bytes, and `<exec-root>/containers/<64 hex>/attach.sock` passes that as soon as
//! the exec root is longer than about 18 bytes: a longer path goes through a descriptor of its
//! directory in /proc (`/proc/self/fd/N/NAME`), which the kernel resolves like any path.
//!
//! The monitor's own sockets live in its directory (`attach.sock`, `control.sock`, and
//! `console.sock`, which another process — the runtime — connects to: [`ShortPath`]).

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

/// A socket path short enough for sun_path that names the same file as a long one, valid
/// while this value lives (it holds the directory's descriptor).
#[derive(Debug)]
pub struct ShortPath {
    path: PathBuf,
    _dir: Option<std::fs::File>,
}

impl ShortPath {
    /// `path` itself when it fits; else `/proc/<pid>/fd/<N>/<file name>` through a
    /// descriptor of its directory that this value holds. The pid is this process's own, not
    /// `self`, so another process (a runtime binary given `--console-socket`) resolves the
    /// same directory.
    pub fn new(path: &Path) -> io::Result<ShortPath> {
        if path.as_os_str().len() < MAX_PATH {
            return Ok(ShortPath {
                path: path.to_owned(),
                _dir: None,
            });
        }
        let (dir, name) = match (path.parent(), path.file_name()) {
            (Some(d), Some(n)) => (d, n),
            _ => return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG)),
        };
        let handle = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)?;
        let short = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            handle.as_raw_fd()
        ))
        .join(name);
        if short.as_os_str().len() >= MAX_PATH {
            // Only a file name of ~80 bytes gets here; berth's are short.
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        Ok(ShortPath {
            path: short,
            _dir: Some(handle),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Binds a listening socket at `path` (any length). A socket file left by a process that died
/// is replaced.
pub fn bind_path(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(ShortPath::new(path)?.path())
}

/// Connects to the socket at `path` (any length).
pub fn connect_path(path: &Path) -> io::Result<UnixStream> {
    UnixStream::connect(ShortPath::new(path)?.path())
}

/// The monitor's socket `name` in `dir`, listening and non-blocking.
pub(crate) fn bind(dir: &Path, name: &str) -> io::Result<UnixListener> {
    // The socket is made with the umask's mode: 0600, root's alone (connecting takes write
    // permission), from its first instant. The monitor is single-threaded: the process-wide
    // umask is its own to swap.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = bind_path(&dir.join(name));
    nix::sys::stat::umask(umask);
    let listener = bound?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

pub(crate) fn connect(dir: &Path, name: &str) -> io::Result<UnixStream> {
    connect_path(&dir.join(name))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sockets_bind_and_connect_under_a_directory_past_sun_path() {
        let base = std::env::temp_dir().join(format!("berth-sock-{}", std::process::id()));
        let dir = base.join("d".repeat(120));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(CONSOLE);
        assert!(path.as_os_str().len() > 108);
        let listener = bind_path(&path).unwrap();
        let short = ShortPath::new(&path).unwrap();
        assert!(
            short.path().as_os_str().len() < MAX_PATH,
            "{:?}",
            short.path()
        );
        let _client = UnixStream::connect(short.path()).unwrap();
        let _ = listener.accept().unwrap();
        let _again = connect_path(&path).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
