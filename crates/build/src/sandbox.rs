//! RUN containers, through berth's runtime library in-process: no monitor, no exec of a
//! binary. The runtime forks the container's init, which is only sound in a single-threaded
//! process, and the daemon is not one. So the daemon forks a small helper, the *sandbox
//! process*, before it starts any thread; the daemon sends it one request per RUN over a
//! socket (the bundle, the container id, and three descriptors: where its stdout and its
//! stderr go — apart, since the build's output marks stderr as dockerd does — and where the
//! result goes), and it forks a worker for each, which creates and starts the
//! container with the runtime library, waits for it, deletes it and reports the exit code.
//!
//! The worker watches its result socket while the container runs: when the daemon drops it
//! (the build was cancelled, the client went away, the daemon died), the worker kills the
//! container, deletes it and exits. The sandbox process exits when the daemon's end of its
//! socket closes.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, UnixAddr,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// The largest request (a JSON object with two paths).
const MAX_REQUEST: usize = 16 << 10;

/// The daemon's handle on the sandbox process.
#[derive(Debug)]
pub struct Sandbox {
    sock: Mutex<OwnedFd>,
    runtime_root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Request {
    id: String,
    bundle: PathBuf,
    runtime_root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Report {
    exit: Option<i32>,
    error: Option<String>,
}

/// A RUN container to start.
#[derive(Debug)]
pub struct RunRequest<'a> {
    /// The container id (runc's rules: letters, digits, `_+-.`).
    pub id: &'a str,
    /// The bundle: config.json, whose root is the mounted overlay.
    pub bundle: &'a Path,
}

impl Sandbox {
    /// Forks the sandbox process. Call it while the process is still single-threaded (before
    /// any async runtime starts): it refuses otherwise. `runtime_root` is the runtime state
    /// directory of RUN containers.
    pub fn start(runtime_root: &Path) -> Result<Sandbox> {
        let threads = std::fs::read_dir("/proc/self/task")
            .map(|d| d.count())
            .unwrap_or(0);
        if threads != 1 {
            return Err(Error::Sandbox(format!(
                "the sandbox process must be forked while the daemon has one thread (it has {threads})"
            )));
        }
        crate::private::create_dir(runtime_root)?;
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::Sandbox(format!("socketpair: {e}")))?;
        // SAFETY: the process has one thread (checked above), so the child inherits no lock
        // another thread holds; it only runs the sandbox loop and never returns.
        match unsafe { fork() }.map_err(|e| Error::Sandbox(format!("fork: {e}")))? {
            ForkResult::Child => {
                drop(ours);
                sandbox_main(theirs)
            }
            ForkResult::Parent { .. } => {
                drop(theirs);
                Ok(Sandbox {
                    sock: Mutex::new(ours),
                    runtime_root: runtime_root.to_path_buf(),
                })
            }
        }
    }

    /// The runtime's state directory of RUN containers.
    pub fn runtime_root(&self) -> &Path {
        &self.runtime_root
    }

    /// Runs a container to its end; its stdout and stderr go to `output` as they come (with
    /// `true` for stderr). Returns its exit code (128+N for a signal). When `cancel` fires,
    /// the container is killed.
    pub fn run(
        &self,
        req: &RunRequest<'_>,
        output: &mut dyn FnMut(bool, &[u8]),
        cancel: &Cancel,
    ) -> Result<i32> {
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| Error::Sandbox(format!("pipe: {e}")))
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (reply, reply_theirs) =
            UnixStream::pair().map_err(|e| Error::Sandbox(format!("socketpair: {e}")))?;
        let body = serde_json::to_vec(&Request {
            id: req.id.to_string(),
            bundle: req.bundle.to_path_buf(),
            runtime_root: self.runtime_root.clone(),
        })
        .map_err(|e| Error::Sandbox(e.to_string()))?;
        {
            let sock = self.sock.lock().unwrap_or_else(|e| e.into_inner());
            let fds = [
                out_w.as_raw_fd(),
                err_w.as_raw_fd(),
                reply_theirs.as_raw_fd(),
            ];
            sendmsg::<UnixAddr>(
                sock.as_raw_fd(),
                &[IoSlice::new(&body)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(|e| Error::Sandbox(format!("the sandbox process is gone ({e})")))?;
        }
        // Only the worker (and the container) may hold the write ends now: EOF on a pipe
        // means they are done with it.
        drop(out_w);
        drop(err_w);
        drop(reply_theirs);
        let mut streams = [
            (std::fs::File::from(out_r), true),
            (std::fs::File::from(err_r), true),
        ];
        let mut reply = reply;
        let mut buf = vec![0u8; 64 << 10];
        let mut report = Vec::new();
        let mut reply_open = true;
        while streams.iter().any(|(_, open)| *open) || reply_open {
            if cancel.is_cancelled() {
                // Dropping the reply socket tells the worker to kill the container.
                return Err(Error::Cancelled);
            }
            let mut fds = Vec::new();
            for (f, open) in &streams {
                if *open {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                }
            }
            if reply_open {
                fds.push(PollFd::new(reply.as_fd(), PollFlags::POLLIN));
            }
            if let Some(c) = cancel.fd() {
                fds.push(PollFd::new(c, PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::Sandbox(format!("poll: {e}"))),
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            let mut k = 0;
            for (i, (f, open)) in streams.iter_mut().enumerate() {
                if !*open {
                    continue;
                }
                if ready[k] {
                    match f.read(&mut buf) {
                        Ok(0) => *open = false,
                        Ok(n) => output(i == 1, &buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(Error::Sandbox(format!("read output: {e}"))),
                    }
                }
                k += 1;
            }
            if reply_open && ready[k] {
                match reply.read(&mut buf) {
                    Ok(0) => reply_open = false,
                    Ok(n) => report.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Sandbox(format!("read result: {e}"))),
                }
            }
        }
        let r: Report = serde_json::from_slice(&report).map_err(|_| {
            Error::Sandbox("the worker ended without a result (was it killed?)".into())
        })?;
        match (r.exit, r.error) {
            (_, Some(e)) => Err(Error::Sandbox(e)),
            (Some(code), None) => Ok(code),
            (None, None) => Err(Error::Sandbox("no exit code".into())),
        }
    }
}

/// The sandbox process: one worker per request, until the daemon closes the socket.
fn sandbox_main(sock: OwnedFd) -> ! {
    let _ = nix::sys::prctl::set_name(c"berth-build");
    // Workers are reaped by the kernel; each resets this for its own children.
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    let _ = unsafe { signal::signal(Signal::SIGCHLD, SigHandler::SigIgn) };
    let mut buf = vec![0u8; MAX_REQUEST];
    loop {
        let mut cmsg = nix::cmsg_space!([RawFd; 3]);
        let (n, fds) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<UnixAddr>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => std::process::exit(0),
            };
            let mut fds: Vec<OwnedFd> = Vec::new();
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: descriptors received with SCM_RIGHTS are new in this
                        // process and owned by nobody else.
                        fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
            }
            (msg.bytes, fds)
        };
        if n == 0 {
            std::process::exit(0);
        }
        let Ok(req) = serde_json::from_slice::<Request>(&buf[..n]) else {
            continue;
        };
        let mut fds = fds.into_iter();
        let (Some(out), Some(err), Some(reply)) = (fds.next(), fds.next(), fds.next()) else {
            continue;
        };
        // SAFETY: the sandbox process is single-threaded (forked from a single-threaded
        // daemon, and it starts no thread), so the worker inherits no held lock.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(sock);
                worker(req, out, err, reply)
            }
            // The worker holds its own copies; a failed fork drops the reply socket, which
            // the daemon reads as a worker that ended without a result.
            Ok(ForkResult::Parent { .. }) | Err(_) => {}
        }
    }
}

/// One RUN: create, start, wait (or kill when the daemon goes), delete, report.
fn worker(req: Request, out: OwnedFd, err: OwnedFd, reply: OwnedFd) -> ! {
    let mut reply = UnixStream::from(reply);
    let report = match run_container(&req, &out, &err, reply.as_fd()) {
        Ok(code) => Report {
            exit: Some(code),
            error: None,
        },
        Err(e) => Report {
            exit: None,
            error: Some(e),
        },
    };
    drop(out);
    drop(err);
    if let Ok(bytes) = serde_json::to_vec(&report) {
        let _ = reply.write_all(&bytes);
    }
    std::process::exit(0)
}

fn run_container(
    req: &Request,
    out: &OwnedFd,
    err: &OwnedFd,
    reply: BorrowedFd<'_>,
) -> std::result::Result<i32, String> {
    // The init inherits the worker's signal state, and ignored signals stay ignored across
    // exec: give it a fresh process's (Rust's start-up code ignores SIGPIPE, the sandbox
    // SIGCHLD, and a daemon started in the background of a shell SIGINT and SIGQUIT).
    // Real-time signals too (nix has no names for them). glibc keeps 32 and 33 for itself
    // and refuses them here; its threads library installs its own handlers for them anyway.
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: SIG_DFL installs no handler code; an invalid number only fails.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| format!("dup2: {e}"))?;
    nix::unistd::dup2_stdout(out).map_err(|e| format!("dup2: {e}"))?;
    nix::unistd::dup2_stderr(err).map_err(|e| format!("dup2: {e}"))?;

    let runtime = berth_runtime::Runtime::new(&req.runtime_root);
    let opts = berth_runtime::CreateOptions {
        bundle: req.bundle.clone(),
        ..Default::default()
    };
    let container = runtime.create(&req.id, &opts).map_err(|e| e.to_string())?;
    // Block SIGCHLD only now (the init must not inherit the mask) and read it from a
    // signalfd; an exit before this point is still a zombie that waitpid below finds.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let _ = signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None);
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(e.to_string());
    }
    let pid = Pid::from_raw(container.pid());
    let code = loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                let _ = container.delete(true);
                return Err(format!("wait for the container: {e}"));
            }
        }
        let mut fds = [
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(reply, PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        while let Ok(Some(_)) = sfd.read_signal() {}
        let gone = fds[1].revents().is_some_and(|r| {
            r.intersects(PollFlags::POLLHUP | PollFlags::POLLIN | PollFlags::POLLERR)
        });
        if gone {
            // The daemon dropped the build: end the container and everything in it.
            let _ = container.kill(libc::SIGKILL, true);
            let _ = waitpid(pid, None);
            let _ = container.delete(true);
            std::process::exit(0);
        }
    };
    container.delete(true).map_err(|e| e.to_string())?;
    Ok(code)
}
