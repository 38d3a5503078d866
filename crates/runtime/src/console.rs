//! Terminals: the init makes a pty in the container's own devpts and hands its master to whoever
//! listens on the console socket (runc's protocol: one SCM_RIGHTS message over a Unix socket).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{
    connect, recvmsg, sendmsg, socket, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use nix::unistd::{setsid, Uid};

use crate::error::{Error, Result};

/// Connects to the console socket the caller named (`--console-socket`).
pub(crate) fn connect_socket(path: &Path) -> Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("create a socket for the console", e))?;
    let failed = |e| Error::sys(format!("connect to console socket {}", path.display()), e);
    // A path past sun_path's 108 bytes is reached through a descriptor of its directory.
    let (parent, name) = (path.parent(), path.file_name());
    let dir = match (parent, name) {
        (Some(dir), Some(_)) if path.as_os_str().len() >= 108 => Some(
            open(
                dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(failed)?,
        ),
        _ => None,
    };
    let short = dir
        .as_ref()
        .zip(name)
        .map(|(d, n)| Path::new(&format!("/proc/self/fd/{}", d.as_raw_fd())).join(n));
    let addr = UnixAddr::new(short.as_deref().unwrap_or(path))
        .map_err(|e| Error::sys(format!("console socket path {}", path.display()), e))?;
    connect(fd.as_raw_fd(), &addr).map_err(failed)?;
    Ok(fd)
}

/// In the init, after pivot_root: makes the pty, sends its master, and makes its slave the
/// controlling terminal and stdio of the process; with `console`, also mounts the slave on
/// /dev/console, as runc does for a container's first process.
pub(crate) fn setup_in_container(
    socket: BorrowedFd<'_>,
    uid: Uid,
    size: Option<(u16, u16)>,
    console: bool,
) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("open /dev/ptmx in the container", e))?;
    grantpt(&master).map_err(|e| Error::sys("grantpt", e))?;
    unlockpt(&master).map_err(|e| Error::sys("unlockpt", e))?;
    let slave_name = ptsname_r(&master).map_err(|e| Error::sys("ptsname", e))?;
    let slave = open(
        slave_name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {slave_name}"), e))?;
    nix::unistd::fchown(&slave, Some(uid), None)
        .map_err(|e| Error::sys(format!("chown {slave_name}"), e))?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which is valid for the call.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    if console {
        mount_console(&slave_name)?;
    }
    let master_fd = master.as_raw_fd();
    send_fd(socket, master_fd, b"/dev/ptmx")?;
    drop(master);
    setsid().map_err(|e| Error::sys("setsid", e))?;
    // SAFETY: TIOCSCTTY takes an integer argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::sys(
            "make the pty the controlling terminal",
            nix::errno::Errno::last(),
        ));
    }
    for target in 0..=2 {
        dup2_raw(slave.as_raw_fd(), target)?;
    }
    Ok(())
}

/// /dev/console becomes the container's terminal: an empty file made there, the slave bound
/// over it.
fn mount_console(slave: &str) -> Result<()> {
    let previous = nix::sys::stat::umask(Mode::empty());
    let made = open(
        "/dev/console",
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o666),
    );
    nix::sys::stat::umask(previous);
    match made {
        Ok(_) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys("create /dev/console", e)),
    }
    nix::mount::mount(
        Some(slave),
        "/dev/console",
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::sys(format!("bind {slave} on /dev/console"), e))
}

fn dup2_raw(from: RawFd, to: RawFd) -> Result<()> {
    // SAFETY: both are plain descriptor numbers; dup2 replaces `to` atomically.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(Error::sys(
            format!("dup2 {from} to {to}"),
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

fn send_fd(socket: BorrowedFd<'_>, fd: RawFd, name: &[u8]) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name)];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| Error::sys("send the pty master over the console socket", e))?;
    Ok(())
}

/// Receives a pty master sent by [`setup_in_container`] (runc's console-socket protocol), for
/// the runtime's own proxy and for a console socket's owner such as berth's monitor.
pub fn receive_master(socket: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys("receive the pty master", e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys("read control message", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed this descriptor in our table; we own it.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(Error::Init("the init sent no pty master".into()))
}

/// A connected pair standing in for a console socket when `run` keeps the terminal itself.
pub(crate) fn socket_pair() -> Result<(OwnedFd, OwnedFd)> {
    nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair for the console", e))
}
