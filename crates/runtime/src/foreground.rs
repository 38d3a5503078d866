//! The foreground of `run` and `exec`: the process's exit awaited on a pidfd, the user's signals
//! forwarded to it, and its terminal relayed when the runtime holds the pty master — in one
//! thread and one poll loop.
//!
//! One thread on purpose. With a relay thread, SIGCHLD could be delivered to the thread that
//! had it unblocked and be lost to the signalfd of the thread that waited (a `run -t` that
//! never returned), and after `exec` entered a container's pid namespace for its child the
//! kernel refuses to create threads at all (CLONE_THREAD with a different pid namespace for
//! children is EINVAL).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// How long the terminal is still relayed after the process exited when something else keeps
/// the pty open (a background process of an `exec` in a container without a pid namespace).
const DRAIN_QUIET: Duration = Duration::from_millis(500);

/// Signals the runtime takes over while a process runs in the foreground: blocked (read from a
/// signalfd), forwarded to the process unless they concern the runtime itself.
#[derive(Debug)]
pub(crate) struct Signals {
    set: SigSet,
    previous: SigSet,
}

impl Signals {
    /// Blocks every signal a user or a supervisor may send, as runc's handler catches them all,
    /// from before the container exists: one sent meanwhile is forwarded, not lost or fatal.
    pub(crate) fn block() -> Result<Signals> {
        let mut set = SigSet::empty();
        for sig in Signal::iterator() {
            if !matches!(
                sig,
                Signal::SIGKILL
                    | Signal::SIGSTOP
                    | Signal::SIGSEGV
                    | Signal::SIGBUS
                    | Signal::SIGFPE
                    | Signal::SIGILL
                    | Signal::SIGTRAP
                    | Signal::SIGSYS
            ) {
                set.add(sig);
            }
        }
        let mut previous = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut previous))
            .map_err(|e| Error::sys("block signals to forward them", e))?;
        Ok(Signals { set, previous })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}

/// Waits for our child `pid`, forwarding signals and relaying the terminal `master` (when the
/// runtime holds it) with the caller's stdin and stdout. Returns its exit code (128+N when
/// killed by signal N, as shells report it). With `subreaper`, other children that exit
/// meanwhile (orphans the container left to us) are reaped too.
pub(crate) fn wait(
    signals: &Signals,
    pid: Pid,
    master: Option<OwnedFd>,
    subreaper: bool,
) -> Result<i32> {
    let sfd = SignalFd::with_flags(&signals.set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;
    let pidfd = pidfd_open(pid);
    let mut relay = master.map(Relay::new).transpose()?;
    let mut code = None;
    let mut exited_at: Option<Instant> = None;
    loop {
        if let Some(at) = exited_at {
            let done = relay.as_ref().is_none_or(|r| r.closed) || at.elapsed() >= DRAIN_QUIET;
            if done {
                break;
            }
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let (Some(p), None) = (&pidfd, code) {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        let slots = relay.as_ref().map(|r| r.interest(&mut fds));
        let timeout = match exited_at {
            Some(_) => PollTimeout::from(50u8),
            None => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll while waiting for the container", e)),
        }
        let ready: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        // Signals (SIGCHLD among them) and the pidfd both may say the process exited.
        while let Ok(Some(info)) = sfd.read_signal() {
            let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
            match Signal::try_from(signo) {
                Ok(Signal::SIGCHLD) => {}
                Ok(Signal::SIGWINCH) => {
                    if let Some(r) = &relay {
                        r.resize();
                    }
                }
                // runc ignores SIGURG (Go's preemption signal); so does the forwarding here.
                Ok(Signal::SIGURG) => {}
                Ok(sig) if code.is_none() => {
                    let _ = kill(pid, sig);
                }
                _ => {}
            }
        }
        if code.is_none() {
            if let Some(status) = reap(pid, subreaper)? {
                code = Some(status);
                exited_at = Some(Instant::now());
            }
        }
        if let (Some(r), Some((input, master))) = (&mut relay, slots) {
            let at = |slot: Option<usize>| {
                slot.and_then(|i| ready.get(i).copied())
                    .unwrap_or(PollFlags::empty())
            };
            r.serve(at(input), at(master))?;
        }
    }
    if let Some(r) = relay {
        r.restore();
    }
    // The loop only leaves once the exit was seen.
    code.ok_or_else(|| Error::Init("lost track of the container's process".into()))
}

/// Reaps exited children; returns `pid`'s exit code once it is among them.
fn reap(pid: Pid, subreaper: bool) -> Result<Option<i32>> {
    let target = if subreaper { Pid::from_raw(-1) } else { pid };
    loop {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, status)) if p == pid => return Ok(Some(status)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(None),
            Ok(_) => {
                if !subreaper {
                    return Ok(None);
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys(format!("wait for pid {pid}"), e)),
        }
    }
}

fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor; we own it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The caller's terminal (stdin, stdout) relayed to and from the container's pty master.
struct Relay {
    master: OwnedFd,
    /// The caller's terminal settings, restored at the end (stdin was put in raw mode).
    saved: Option<Termios>,
    /// Input read from stdin that the pty has not taken yet.
    pending: Vec<u8>,
    stdin_open: bool,
    /// The container closed its last descriptor of the pty (reads give EIO).
    closed: bool,
}

impl Relay {
    fn new(master: OwnedFd) -> Result<Relay> {
        // Non-blocking on our own descriptor of the master: the container holds the slave
        // only, so no one else sees the flag.
        let flags = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| Error::sys("read the pty master's flags", e))?;
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(|e| Error::sys("make the pty master non-blocking", e))?;
        let saved = termios::tcgetattr(std::io::stdin()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw);
        }
        let relay = Relay {
            master,
            saved,
            pending: Vec::new(),
            stdin_open: true,
            closed: false,
        };
        relay.resize();
        Ok(relay)
    }

    /// Gives the pty the caller's terminal size, as runc does at start and on SIGWINCH.
    fn resize(&self) {
        // SAFETY: TIOCGWINSZ writes a winsize into `ws`, TIOCSWINSZ reads it; both descriptors
        // are valid for the calls.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    }

    /// Adds what the relay waits for to `fds`: (index of stdin, index of the master), each
    /// only when there is something to wait for (a closed pty would report POLLHUP forever).
    fn interest<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) -> (Option<usize>, Option<usize>) {
        let mut input = None;
        if self.stdin_open && self.pending.is_empty() {
            // SAFETY: stdin stays open for the whole relay.
            let stdin = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
            input = Some(fds.len());
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        let mut events = PollFlags::empty();
        if !self.closed {
            events |= PollFlags::POLLIN;
        }
        if !self.pending.is_empty() {
            events |= PollFlags::POLLOUT;
        }
        let mut master = None;
        if !events.is_empty() {
            master = Some(fds.len());
            fds.push(PollFd::new(self.master.as_fd(), events));
        }
        (input, master)
    }

    /// Moves what is ready, given the events of stdin and of the master.
    fn serve(&mut self, input: PollFlags, master: PollFlags) -> Result<()> {
        if self.stdin_open
            && self.pending.is_empty()
            && input.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        {
            let mut buf = [0u8; 8192];
            match nix::unistd::read(std::io::stdin(), &mut buf) {
                Ok(0) | Err(Errno::EIO | Errno::EBADF) => self.stdin_open = false,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        if !self.pending.is_empty() {
            match nix::unistd::write(&self.master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                // The container closed the pty: what the user types has nowhere to go.
                Err(_) => self.pending.clear(),
            }
        }
        if !self.closed
            && master.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        {
            self.copy_out()?;
        }
        Ok(())
    }

    /// Copies what the container wrote to our stdout, until the pty has no more for now.
    fn copy_out(&mut self) -> Result<()> {
        let mut buf = [0u8; 8192];
        loop {
            match nix::unistd::read(self.master.as_fd(), &mut buf) {
                // EIO: the container closed its last descriptor of the slave, and the kernel
                // has handed over everything it wrote before.
                Ok(0) | Err(Errno::EIO) => {
                    self.closed = true;
                    return Ok(());
                }
                Ok(n) => write_all(libc::STDOUT_FILENO, &buf[..n]),
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("read the container's terminal", e)),
            }
        }
    }

    fn restore(self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
        }
    }
}

/// Writes all of `bytes` to a blocking descriptor; a reader that went away ends the copy.
fn write_all(fd: i32, mut bytes: &[u8]) {
    // SAFETY: the caller's stdout stays open for the call.
    let out = unsafe { BorrowedFd::borrow_raw(fd) };
    while !bytes.is_empty() {
        match nix::unistd::write(out, bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(out, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(100u8));
            }
            Err(_) => return,
        }
    }
}
