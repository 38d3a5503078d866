//! The channel between the runtime and the init it forked: a SOCK_SEQPACKET socketpair, so each
//! message arrives whole, and a peer that dies is seen as end-of-file instead of a hang.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

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

    /// Waits for `expected`. A failure report from the peer, or its death, becomes an error.
    pub(crate) fn expect(&self, expected: Msg) -> Result<()> {
        let mut buf = [0u8; 4096];
        let n = loop {
            match nix::unistd::read(self.fd.as_fd(), &mut buf) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("read from the init's sync channel", e)),
            }
        };
        match buf[..n] {
            [] => Err(Error::Init(format!("exited before {}", describe(expected)))),
            [tag, ref rest @ ..] if tag == Msg::Failed as u8 => {
                Err(Error::Init(String::from_utf8_lossy(rest).into_owned()))
            }
            [tag] if tag == expected as u8 => Ok(()),
            [tag, ..] => Err(Error::Init(format!(
                "protocol error: got message {tag} while waiting for {}",
                describe(expected)
            ))),
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

fn describe(msg: Msg) -> &'static str {
    match msg {
        Msg::Proceed => "the runtime let it proceed",
        Msg::RunCreateRuntimeHooks => "its mounts were done",
        Msg::HooksDone => "the createRuntime hooks ran",
        Msg::Ready => "it was ready",
        Msg::Failed => "a failure report",
    }
}
