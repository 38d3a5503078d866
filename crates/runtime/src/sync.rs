//! The channel between the runtime and the init it forked: a SOCK_SEQPACKET socketpair, so each
//! message arrives whole, and a peer that dies is seen as end-of-file instead of a hang.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

use crate::error::{Error, Result};

/// One step of the create (or exec) handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Msg {
    /// Runtime → init: uid/gid maps are written, cgroup joined; go on.
    Proceed = 1,
    /// Init → runtime: mounts are done, run the prestart and createRuntime hooks now.
    RunCreateRuntimeHooks = 2,
    /// Runtime → init: those hooks ran.
    HooksDone = 3,
    /// Init → runtime: everything is set up; the init now waits on the exec fifo.
    Ready = 4,
    /// Init → runtime: the seccomp notify descriptor follows (SCM_RIGHTS), for the agent.
    SeccompNotify = 5,
    /// Runtime → init: the agent has the descriptor; the init closes its copy.
    SeccompNotifyDone = 6,
    /// Init → runtime: a failure follows as UTF-8 text.
    Failed = 0xff,
}

#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
}

/// Creates the two ends: (runtime's, init's).
pub(crate) fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair for the init's sync channel", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub(crate) fn send(&self, msg: Msg) -> Result<()> {
        self.send_bytes(&[msg as u8])
    }

    /// Reports a failure to the peer; used by the init right before it exits.
    pub(crate) fn send_failure(&self, message: &str) {
        let mut buf = Vec::with_capacity(message.len() + 1);
        buf.push(Msg::Failed as u8);
        buf.extend_from_slice(message.as_bytes());
        // Nothing more can be done if the runtime is gone: the exit status still tells.
        let _ = self.send_bytes(&buf);
    }

    /// Sends `msg` with a descriptor attached (SCM_RIGHTS).
    pub(crate) fn send_with_fd(&self, msg: Msg, fd: RawFd) -> Result<()> {
        let fds = [fd];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let bytes = [msg as u8];
        let iov = [IoSlice::new(&bytes)];
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(Error::sys(
                        "send a descriptor over the init's sync channel",
                        e,
                    ))
                }
            }
        }
    }

    /// Waits for `expected`. A failure report from the peer, or its death, becomes an error.
    pub(crate) fn expect(&self, expected: Msg) -> Result<()> {
        match self.receive(expected)? {
            (tag, _) if tag == expected as u8 => Ok(()),
            (tag, _) => Err(unexpected(tag, expected)),
        }
    }

    /// Waits for Ready; a seccomp notify descriptor the init sends first goes to `agent`, and
    /// the init is told once the agent has it.
    pub(crate) fn expect_ready(&self, agent: &mut dyn FnMut(OwnedFd) -> Result<()>) -> Result<()> {
        loop {
            match self.receive(Msg::Ready)? {
                (tag, _) if tag == Msg::Ready as u8 => return Ok(()),
                (tag, Some(fd)) if tag == Msg::SeccompNotify as u8 => {
                    agent(fd)?;
                    self.send(Msg::SeccompNotifyDone)?;
                }
                (tag, _) => return Err(unexpected(tag, Msg::Ready)),
            }
        }
    }

    /// One message: its tag and the descriptor it carried, if any.
    fn receive(&self, expected: Msg) -> Result<(u8, Option<OwnedFd>)> {
        let mut buf = [0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fd = None;
                    for c in msg.cmsgs().into_iter().flatten() {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SAFETY: SCM_RIGHTS just installed this descriptor; we own it.
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (msg.bytes, fd);
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("read from the init's sync channel", e)),
            }
        };
        match buf[..n] {
            [] => Err(Error::Init(format!("exited before {}", describe(expected)))),
            [tag, ref rest @ ..] if tag == Msg::Failed as u8 => {
                Err(Error::Init(String::from_utf8_lossy(rest).into_owned()))
            }
            [tag] => Ok((tag, fd)),
            [tag, ..] => Err(unexpected(tag, expected)),
        }
    }

    fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        loop {
            match nix::unistd::write(self.fd.as_fd(), bytes) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("write to the init's sync channel", e)),
            }
        }
    }
}

fn unexpected(tag: u8, expected: Msg) -> Error {
    Error::Init(format!(
        "protocol error: got message {tag} while waiting for {}",
        describe(expected)
    ))
}

fn describe(msg: Msg) -> &'static str {
    match msg {
        Msg::Proceed => "the runtime let it proceed",
        Msg::RunCreateRuntimeHooks => "its mounts were done",
        Msg::HooksDone => "the createRuntime hooks ran",
        Msg::Ready => "it was ready",
        Msg::SeccompNotify => "it sent its seccomp notify descriptor",
        Msg::SeccompNotifyDone => "the seccomp agent got the notify descriptor",
        Msg::Failed => "a failure report",
    }
}
