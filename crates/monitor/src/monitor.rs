//! The monitor process: one per container, single-threaded, a ppoll(2) loop over the
//! container's stdio, the attach and control sockets, and SIGCHLD. It outlives the daemon.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::time::TimeSpec;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::Deserialize;

use crate::config::MonitorConfig;
use crate::error::{Error, Result};
use crate::footprint;
use crate::launch::{self, Run};
use crate::log::{JsonLog, Stream};
use crate::sock::{self, ATTACH, CONTROL};
use crate::state::{MonitorState, Status};

/// dockerd's restart manager: the first delay, its cap, and how long a run must last for the
/// delay to start over.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

/// One read's worth: the largest chunk an attacher may have to buffer.
const CHUNK: usize = 8192;
/// A request line longer than this is not one of ours.
const MAX_REQUEST: usize = 1024;

pub(crate) const CONFIG_FILE: &str = "config.json";

/// After the process exits, how long an attacher may take nothing of its pending output before
/// the monitor stops waiting for it.
const STALLED_ATTACHER: Duration = Duration::from_secs(30);

/// How long a run lasts before the monitor trims itself (see `settle`).
const SETTLE_AFTER: Duration = Duration::from_secs(1);

/// The entry point of `berth monitor DIR`: fd 1 is the pipe `spawn` reads the report from.
pub fn run_monitor(dir: &Path) -> ! {
    // Fork once more so that the daemon reaps its child at once and never sees the monitor.
    // SAFETY: this process was just exec'd and has one thread; the child only runs our code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{}", report_error(&format!("fork the monitor: {e}")));
            std::process::exit(1);
        }
    }
    let report = daemonize();
    let code = match Monitor::boot(dir, report.as_ref()) {
        Ok(mut monitor) => {
            let line = serde_json::json!({ "state": monitor.state }).to_string();
            send_report(report, &line);
            monitor.run()
        }
        Err((e, started)) => {
            if started {
                let mut state = MonitorState::new();
                state.status = Status::Exited;
                state.exit_code = start_failure_code(&e.to_string());
                state.error = e.to_string();
                state.finished_at = berth_runtime::now_rfc3339();
                let _ = state.write(dir);
            }
            let _ = std::fs::remove_file(dir.join(ATTACH));
            let _ = std::fs::remove_file(dir.join(CONTROL));
            send_report(report, &report_error(&e.to_string()));
            1
        }
    };
    std::process::exit(code)
}

/// Takes the `want` clients that attached before the start, which the daemon sends on the
/// report socket, and reads each one's request (already written when the daemon sent it), so
/// that they are attached before the container's process exists. Returns them and any stdin
/// they sent along with the request.
fn receive_early_attachers(report: Option<&UnixStream>, want: u32) -> (Vec<Attacher>, Vec<u8>) {
    let mut out = Vec::new();
    let mut stdin = Vec::new();
    let Some(report) = report.filter(|_| want > 0) else {
        return (out, stdin);
    };
    for fd in sock::recv_fds(report, want as usize) {
        let mut conn = UnixStream::from(fd);
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = Vec::new();
        let mut byte = [0u8; 256];
        while !line.contains(&b'\n') && line.len() <= MAX_REQUEST {
            match conn.read(&mut byte) {
                Ok(0) | Err(_) => break,
                Ok(n) => line.extend_from_slice(&byte[..n]),
            }
        }
        let Some(nl) = line.iter().position(|&b| b == b'\n') else {
            continue;
        };
        let Ok(req) = serde_json::from_slice::<AttachRequest>(&line[..nl]) else {
            continue;
        };
        if req.stdin {
            stdin.extend_from_slice(&line[nl + 1..]);
        }
        if conn.set_nonblocking(true).is_err() {
            continue;
        }
        out.push(Attacher {
            conn,
            request: None,
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
            stdin_eof: false,
            pending: Vec::new(),
            dead: false,
        });
    }
    (out, stdin)
}

fn report_error(text: &str) -> String {
    serde_json::json!({ "error": text }).to_string()
}

fn send_report(report: Option<UnixStream>, line: &str) {
    if let Some(mut f) = report {
        let _ = f.write_all(line.as_bytes());
        let _ = f.write_all(b"\n");
    }
}

/// Docker's exit codes for a container that could not start: 127 when the program is not
/// there, 126 when it cannot be executed.
fn start_failure_code(message: &str) -> i32 {
    if message.contains("not found") || message.contains("No such file") {
        127
    } else if message.contains("ermission denied") {
        126
    } else {
        128
    }
}

/// Leaves everything of the daemon's behind: its session, its cwd, its descriptors. Returns
/// the report socket, moved off fd 1.
fn daemonize() -> Option<UnixStream> {
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    // SAFETY: close_range takes plain numbers; nothing of ours lives above 2 yet.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let report = nix::fcntl::fcntl(std::io::stdout(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
        .ok()
        // SAFETY: F_DUPFD_CLOEXEC just returned a new descriptor that nothing else owns.
        .map(|fd| UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) }));
    if let Ok(null) = launch::open_null() {
        for fd in 0..=2 {
            let _ = launch::dup_onto(null.as_raw_fd(), fd);
        }
    }
    report
}

extern "C" fn wake(_: libc::c_int) {}

/// SIGCHLD only interrupts ppoll (blocked elsewhere); SIGPIPE turns into EPIPE. Both get a
/// handler rather than SIG_IGN: an exec resets handlers, so the container's processes start
/// with the default dispositions, while an ignored signal would stay ignored in them.
fn setup_signals() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(wake),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    for sig in [Signal::SIGCHLD, Signal::SIGPIPE] {
        // SAFETY: the handler does nothing, which is async-signal-safe.
        unsafe { nix::sys::signal::sigaction(sig, &action) }
            .map_err(|e| Error::sys(format!("sigaction {sig}"), e))?;
    }
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&chld), None)
        .map_err(|e| Error::sys("block SIGCHLD", e))
}

#[derive(Debug)]
struct Attacher {
    conn: UnixStream,
    /// The request line while it is still being read.
    request: Option<Vec<u8>>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    stdin_eof: bool,
    /// Output the client has not taken yet; while any is held, the container's output waits.
    pending: Vec<u8>,
    dead: bool,
}

#[derive(Debug, Deserialize)]
struct AttachRequest {
    #[serde(default)]
    stdin: bool,
    #[serde(default)]
    stdout: bool,
    #[serde(default)]
    stderr: bool,
}

#[derive(Debug)]
struct Control {
    conn: Option<UnixStream>,
    buf: Vec<u8>,
}

#[derive(Debug, Default, Deserialize)]
struct ControlRequest {
    resize: Option<[u16; 2]>,
    #[serde(default)]
    wait: bool,
    /// With `wait`: the run (restart count) the client last saw running. If that run has
    /// already ended, the answer comes at once (the client must not miss a quick exit).
    #[serde(default)]
    run: Option<u32>,
    /// Answer once the container runs again after a restart (at once if it runs now), or
    /// once it is done for good.
    #[serde(default)]
    wait_start: bool,
    #[serde(default)]
    no_restart: bool,
    /// Reopen the log file at its path (the CRI's ReopenContainerLog).
    #[serde(default)]
    reopen_log: bool,
}

#[derive(Debug, Clone, Copy)]
enum Token {
    AttachListener,
    ControlListener,
    Stdout,
    Stderr,
    Pty,
    Stdin,
    Attacher(usize),
    Control(usize),
}

#[derive(Debug)]
enum Pumped {
    Data,
    Empty,
    Eof,
}

#[derive(Debug)]
struct Monitor {
    cfg: MonitorConfig,
    state: MonitorState,
    /// The json-file log; none for an exec'd process (dockerd keeps no log of those).
    log: Option<JsonLog>,
    attach_listener: UnixListener,
    control_listener: UnixListener,
    attachers: Vec<Attacher>,
    controls: Vec<Control>,
    waiters: Vec<UnixStream>,
    start_waiters: Vec<UnixStream>,
    run: Option<Run>,
    stdin_pending: Vec<u8>,
    /// Close the container's stdin once `stdin_pending` is written.
    stdin_closing: bool,
    no_restart: bool,
    restart_at: Option<Instant>,
    /// When to give back what starting the container needed: once it has run a while, so
    /// that a short-lived container's exit is never delayed by it.
    settle_at: Option<Instant>,
    backoff: Duration,
    finished: bool,
}

/// Why boot failed, and whether it got far enough (a config) to own the state file.
type BootError = (Error, bool);

impl Monitor {
    fn boot(dir: &Path, report: Option<&UnixStream>) -> std::result::Result<Monitor, BootError> {
        let path = dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(|e| (Error::file("read", &path, e), false))?;
        let cfg: MonitorConfig = serde_json::from_slice(&bytes).map_err(|e| {
            (
                Error::Parse {
                    what: path.display().to_string(),
                    source: e,
                },
                false,
            )
        })?;
        let mut state = MonitorState::new();
        let early = |e: Error| (e, true);
        // The init must stay our child even when a runtime binary's `create` exits.
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(early(Error::sys(
                "become a child subreaper",
                nix::errno::Errno::last(),
            )));
        }
        setup_signals().map_err(early)?;
        let log = match cfg.exec {
            None if !cfg.log.disabled => Some(JsonLog::open(&cfg.log).map_err(early)?),
            _ => None,
        };
        let listen = |name: &str| {
            sock::bind(dir, name).map_err(|e| Error::Socket {
                what: "listen on",
                path: dir.join(name),
                source: e,
            })
        };
        let attach_listener = listen(ATTACH).map_err(early)?;
        let control_listener = listen(CONTROL).map_err(early)?;
        let (attachers, stdin_pending) = receive_early_attachers(report, cfg.attachers);
        let run = launch::start(&cfg).map_err(early)?;
        state.status = Status::Running;
        state.pid = run.pid;
        state.started_at = berth_runtime::now_rfc3339();
        state.write(dir).map_err(|e| {
            launch::delete(&cfg);
            early(e)
        })?;
        Ok(Monitor {
            cfg,
            state,
            log,
            attach_listener,
            control_listener,
            attachers,
            controls: Vec::new(),
            waiters: Vec::new(),
            start_waiters: Vec::new(),
            run: Some(run),
            stdin_pending,
            stdin_closing: false,
            no_restart: false,
            restart_at: None,
            settle_at: Some(Instant::now() + SETTLE_AFTER),
            backoff: Duration::ZERO,
            finished: false,
        })
    }

    fn run(&mut self) -> i32 {
        loop {
            self.reap();
            if !self.finished {
                if let Some(at) = self.restart_at {
                    if Instant::now() >= at {
                        self.restart();
                    }
                }
            }
            if self.finished {
                self.finish();
                return 0;
            }
            if self.settle_at.is_some_and(|at| Instant::now() >= at) {
                self.settle_at = None;
                self.settle();
            }
            let ready = self.poll();
            for (token, revents) in ready {
                self.handle(token, revents);
            }
            self.attachers.retain(|a| !a.dead);
            self.controls.retain(|c| c.conn.is_some());
        }
    }

    fn reap(&mut self) {
        let init = self.run.as_ref().map(|r| r.pid);
        let mut exit = None;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if Some(pid.as_raw()) == init => {
                    exit = Some(code)
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if Some(pid.as_raw()) == init => {
                    exit = Some(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                // Orphans of the container (without a pid namespace) are reaped here too.
                Ok(_) => {}
            }
        }
        if let Some(code) = exit {
            self.on_exit(code);
        }
    }

    fn poll(&mut self) -> Vec<(Token, PollFlags)> {
        let mut tokens = Vec::with_capacity(8 + self.attachers.len() + self.controls.len());
        let mut fds = Vec::with_capacity(tokens.capacity());
        macro_rules! add {
            ($t:expr, $fd:expr, $f:expr $(,)?) => {{
                tokens.push($t);
                fds.push(PollFd::new($fd, $f));
            }};
        }
        add!(
            Token::AttachListener,
            self.attach_listener.as_fd(),
            PollFlags::POLLIN,
        );
        add!(
            Token::ControlListener,
            self.control_listener.as_fd(),
            PollFlags::POLLIN,
        );
        let output_blocked = self.attachers.iter().any(|a| !a.pending.is_empty());
        let input = if output_blocked {
            PollFlags::empty()
        } else {
            PollFlags::POLLIN
        };
        let stdin_waits = !self.stdin_pending.is_empty();
        if let Some(run) = &self.run {
            if let Some(f) = &run.stdout {
                add!(Token::Stdout, f.as_fd(), input);
            }
            if let Some(f) = &run.stderr {
                add!(Token::Stderr, f.as_fd(), input);
            }
            if let Some(f) = &run.pty {
                let out = if stdin_waits {
                    PollFlags::POLLOUT
                } else {
                    PollFlags::empty()
                };
                add!(Token::Pty, f.as_fd(), input | out);
            }
            if let Some(f) = &run.stdin {
                if stdin_waits {
                    add!(Token::Stdin, f.as_fd(), PollFlags::POLLOUT);
                }
            }
        }
        for (i, a) in self.attachers.iter().enumerate() {
            let mut f = PollFlags::empty();
            if a.request.is_some() || (!a.stdin_eof && !stdin_waits) {
                f |= PollFlags::POLLIN;
            }
            if !a.pending.is_empty() {
                f |= PollFlags::POLLOUT;
            }
            add!(Token::Attacher(i), a.conn.as_fd(), f);
        }
        for (i, c) in self.controls.iter().enumerate() {
            if let Some(conn) = &c.conn {
                add!(Token::Control(i), conn.as_fd(), PollFlags::POLLIN);
            }
        }
        let timeout = [self.restart_at, self.settle_at]
            .into_iter()
            .flatten()
            .min()
            .map(|at| TimeSpec::from_duration(at.saturating_duration_since(Instant::now())));
        // SIGCHLD is let through only while we sleep here, so no exit is missed between the
        // reap above and the sleep.
        match nix::poll::ppoll(&mut fds, timeout, Some(SigSet::empty())) {
            Ok(n) if n > 0 => tokens
                .into_iter()
                .zip(fds.iter())
                .filter_map(|(t, fd)| fd.revents().filter(|r| !r.is_empty()).map(|r| (t, r)))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn handle(&mut self, token: Token, revents: PollFlags) {
        let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        match token {
            Token::AttachListener => self.accept_attachers(),
            Token::ControlListener => self.accept_controls(),
            Token::Stdout => {
                self.pump(Stream::Stdout);
            }
            Token::Stderr => {
                self.pump(Stream::Stderr);
            }
            Token::Pty => {
                if revents.contains(PollFlags::POLLOUT) {
                    self.flush_stdin();
                }
                if revents.intersects(readable) {
                    self.pump(Stream::Stdout);
                }
            }
            Token::Stdin => {
                if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) {
                    self.close_stdin();
                } else {
                    self.flush_stdin();
                }
            }
            Token::Attacher(i) => {
                if revents.contains(PollFlags::POLLOUT) {
                    let _ = flush_pending(&mut self.attachers[i]);
                }
                if revents.intersects(readable) {
                    self.read_attacher(i, revents.contains(PollFlags::POLLHUP));
                }
            }
            Token::Control(i) => self.read_control(i),
        }
    }

    fn accept_attachers(&mut self) {
        while let Ok((conn, _)) = self.attach_listener.accept() {
            if conn.set_nonblocking(true).is_err() {
                continue;
            }
            self.attachers.push(Attacher {
                conn,
                request: Some(Vec::new()),
                stdin: false,
                stdout: false,
                stderr: false,
                stdin_eof: false,
                pending: Vec::new(),
                dead: false,
            });
        }
    }

    fn accept_controls(&mut self) {
        while let Ok((conn, _)) = self.control_listener.accept() {
            if conn.set_nonblocking(true).is_err() {
                continue;
            }
            self.controls.push(Control {
                conn: Some(conn),
                buf: Vec::new(),
            });
        }
    }

    /// Moves one chunk of the container's output to the log and the attachers.
    fn pump(&mut self, stream: Stream) -> Pumped {
        let mut buf = [0u8; CHUNK];
        let Some(run) = self.run.as_mut() else {
            return Pumped::Eof;
        };
        let tty = run.pty.is_some();
        let source = match (stream, tty) {
            (_, true) => &mut run.pty,
            (Stream::Stdout, false) => &mut run.stdout,
            (Stream::Stderr, false) => &mut run.stderr,
        };
        let Some(file) = source.as_mut() else {
            return Pumped::Eof;
        };
        let n = match file.read(&mut buf) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return Pumped::Empty
            }
            // EIO from a pty master: the last slave descriptor in the container closed.
            Err(_) => 0,
        };
        if n == 0 {
            *source = None;
            if tty {
                // The pty was also the container's input: nothing more can reach it.
                self.stdin_pending = Vec::new();
            }
            if let Some(log) = self.log.as_mut() {
                log.flush(stream);
            }
            return Pumped::Eof;
        }
        let data = &buf[..n];
        if let Some(log) = self.log.as_mut() {
            log.write(stream, data);
        }
        let header = frame_header(stream, n);
        for a in self.attachers.iter_mut().filter(|a| a.request.is_none()) {
            let wants = match stream {
                Stream::Stdout => a.stdout,
                Stream::Stderr => a.stderr,
            };
            if !wants {
                continue;
            }
            if tty {
                send(a, &[data]);
            } else {
                send(a, &[&header, data]);
            }
        }
        Pumped::Data
    }

    fn read_attacher(&mut self, i: usize, hangup: bool) {
        let mut buf = [0u8; 4096];
        let a = &mut self.attachers[i];
        let n = match a.conn.read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => return,
            Err(_) => 0,
        };
        if n == 0 {
            if a.request.is_some() || a.stdin_eof || hangup {
                a.dead = true;
            }
            let had_stdin = a.stdin && !a.stdin_eof;
            a.stdin_eof = true;
            if had_stdin && self.cfg.stdin_once {
                // Docker closes the container's stdin when a stdin_once attacher's ends.
                self.stdin_closing = true;
                self.flush_stdin();
            }
            return;
        }
        let mut data = &buf[..n];
        if let Some(mut line) = a.request.take() {
            line.extend_from_slice(data);
            let Some(nl) = line.iter().position(|&b| b == b'\n') else {
                if line.len() > MAX_REQUEST {
                    a.dead = true;
                } else {
                    a.request = Some(line);
                }
                return;
            };
            match serde_json::from_slice::<AttachRequest>(&line[..nl]) {
                Ok(req) => {
                    a.stdin = req.stdin;
                    a.stdout = req.stdout;
                    a.stderr = req.stderr;
                }
                Err(_) => {
                    a.dead = true;
                    return;
                }
            }
            let rest = line[nl + 1..].to_vec();
            if a.stdin && !rest.is_empty() {
                self.write_stdin(&rest);
            }
            return;
        }
        if !a.stdin {
            data = &[];
        }
        if !data.is_empty() {
            self.write_stdin(data);
        }
    }

    fn write_stdin(&mut self, data: &[u8]) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let Some(target) = run.stdin.as_mut().or(run.pty.as_mut()) else {
            return;
        };
        if !self.stdin_pending.is_empty() {
            self.stdin_pending.extend_from_slice(data);
            return;
        }
        match target.write(data) {
            Ok(n) if n == data.len() => {}
            Ok(n) => self.stdin_pending.extend_from_slice(&data[n..]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                self.stdin_pending.extend_from_slice(data)
            }
            // EPIPE: the container closed its stdin.
            Err(_) => self.close_stdin(),
        }
    }

    fn flush_stdin(&mut self) {
        if let Some(run) = self.run.as_mut() {
            if let Some(target) = run.stdin.as_mut().or(run.pty.as_mut()) {
                while !self.stdin_pending.is_empty() {
                    match target.write(&self.stdin_pending) {
                        Ok(n) => {
                            self.stdin_pending.drain(..n);
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                        Err(_) => {
                            self.close_stdin();
                            return;
                        }
                    }
                }
                self.stdin_pending = Vec::new();
            }
        }
        if self.stdin_closing {
            self.close_stdin();
        }
    }

    /// EOF on the container's stdin pipe. A terminal has no such thing: it stays open.
    fn close_stdin(&mut self) {
        self.stdin_pending = Vec::new();
        self.stdin_closing = false;
        if let Some(run) = self.run.as_mut() {
            run.stdin = None;
        }
    }

    fn read_control(&mut self, i: usize) {
        let c = &mut self.controls[i];
        let Some(conn) = c.conn.as_mut() else { return };
        let mut buf = [0u8; 512];
        match conn.read(&mut buf) {
            Ok(0) => {
                c.conn = None;
                return;
            }
            Ok(n) => c.buf.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => return,
            Err(_) => {
                c.conn = None;
                return;
            }
        }
        let Some(nl) = c.buf.iter().position(|&b| b == b'\n') else {
            if c.buf.len() > MAX_REQUEST {
                c.conn = None;
            }
            return;
        };
        let parsed = serde_json::from_slice::<ControlRequest>(&c.buf[..nl]);
        let Some(mut conn) = c.conn.take() else {
            return;
        };
        let reply = match parsed {
            Err(e) => Some(serde_json::json!({ "error": format!("bad request: {e}") })),
            Ok(req) if req.wait => {
                let ended = req.run.is_some_and(|run| {
                    self.state.status != Status::Running || self.state.restart_count > run
                });
                if ended {
                    let line = serde_json::to_string(&self.state).unwrap_or_default();
                    reply_line(&mut conn, &line);
                } else {
                    self.waiters.push(conn);
                }
                return;
            }
            Ok(req) if req.wait_start => {
                self.start_waiters.push(conn);
                if self.state.status != Status::Restarting {
                    self.answer_start_waiters();
                }
                return;
            }
            Ok(req) => {
                let mut reply = None;
                if let Some([h, w]) = req.resize {
                    if let Err(e) = self.resize(h, w) {
                        reply = Some(serde_json::json!({ "error": e.to_string() }));
                    }
                }
                if req.no_restart {
                    self.stop_restarting();
                }
                if req.reopen_log {
                    let reopened = match self.log.as_mut() {
                        Some(log) => log.reopen(),
                        None => Err(Error::Start("the process keeps no log".into())),
                    };
                    if let Err(e) = reopened {
                        reply = Some(serde_json::json!({ "error": e.to_string() }));
                    }
                }
                reply
            }
        };
        let reply = reply.unwrap_or_else(|| serde_json::json!({ "ok": true }));
        reply_line(&mut conn, &reply.to_string());
    }

    fn resize(&self, height: u16, width: u16) -> Result<()> {
        let Some(pty) = self.run.as_ref().and_then(|r| r.pty.as_ref()) else {
            return Err(Error::Start(
                "the container has no terminal to resize".into(),
            ));
        };
        let ws = libc::winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid for the call.
        if unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(Error::sys("TIOCSWINSZ", nix::errno::Errno::last()));
        }
        Ok(())
    }

    fn stop_restarting(&mut self) {
        self.no_restart = true;
        if self.restart_at.take().is_some() {
            // Stopped while waiting to restart: that wait was the last.
            self.state.status = Status::Exited;
            self.save();
            self.answer_waiters();
            self.finished = true;
        }
    }

    fn on_exit(&mut self, code: i32) {
        self.state.exit_code = code;
        self.state.finished_at = berth_runtime::now_rfc3339();
        self.state.oom_killed = self.run.as_ref().is_some_and(launch::oom_killed);
        self.drain();
        launch::delete(&self.cfg);
        // Every writer is gone now: what is left in the pipes ends in EOF.
        self.drain();
        if let Some(log) = self.log.as_mut() {
            log.flush(Stream::Stdout);
            log.flush(Stream::Stderr);
        }
        let ran = self
            .run
            .take()
            .map(|r| r.started.elapsed())
            .unwrap_or_default();
        self.stdin_pending = Vec::new();
        self.stdin_closing = false;
        self.state.pid = 0;
        let restart = self.cfg.exec.is_none()
            && self
                .cfg
                .restart
                .should_restart(code, self.state.restart_count, self.no_restart);
        if restart {
            self.backoff = if ran >= BACKOFF_RESET_AFTER || self.backoff.is_zero() {
                BACKOFF_INITIAL
            } else {
                (self.backoff * 2).min(BACKOFF_MAX)
            };
            self.restart_at = Some(Instant::now() + self.backoff);
            self.state.status = Status::Restarting;
        } else {
            self.state.status = Status::Exited;
            self.finished = true;
        }
        self.save();
        self.answer_waiters();
    }

    fn drain(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            while let Pumped::Data = self.pump(stream) {}
        }
    }

    fn restart(&mut self) {
        self.restart_at = None;
        self.state.restart_count += 1;
        match launch::start(&self.cfg) {
            Ok(run) => {
                self.state.status = Status::Running;
                self.state.pid = run.pid;
                self.state.started_at = berth_runtime::now_rfc3339();
                self.state.error.clear();
                self.run = Some(run);
                self.settle_at = Some(Instant::now() + SETTLE_AFTER);
            }
            Err(e) => {
                self.state.status = Status::Exited;
                self.state.error = e.to_string();
                self.finished = true;
            }
        }
        self.save();
        if self.finished {
            self.answer_waiters();
        }
        self.answer_start_waiters();
    }

    /// After a start: give back the heap and the code pages that parsing the bundle and
    /// creating the container needed, for the container's long idle life.
    fn settle(&self) {
        // SAFETY: malloc_trim only releases free heap memory; no allocation is in flight.
        unsafe { libc::malloc_trim(0) };
        footprint::release_startup_pages();
    }

    fn save(&self) {
        // A full /run loses the record, not the container: keep running.
        let _ = self.state.write(&self.cfg.dir);
    }

    /// Answers the exit waiters (and, unless a restart is pending, the start waiters).
    fn answer_waiters(&mut self) {
        let line = serde_json::to_string(&self.state).unwrap_or_default();
        for mut w in self.waiters.drain(..) {
            reply_line(&mut w, &line);
        }
        if self.state.status != Status::Restarting {
            self.answer_start_waiters();
        }
    }

    fn answer_start_waiters(&mut self) {
        let line = serde_json::to_string(&self.state).unwrap_or_default();
        for mut w in self.start_waiters.drain(..) {
            reply_line(&mut w, &line);
        }
    }

    /// Once the process is gone, everything it wrote reaches each attacher that still takes
    /// it: a client that is slow to read (or a daemon busy with many) is waited for, one that
    /// takes nothing for `STALLED_ATTACHER` is given up, one that hung up is dropped.
    fn flush_attachers(&mut self) {
        let mut progress_at = Instant::now();
        loop {
            for a in &mut self.attachers {
                if flush_pending(a) > 0 {
                    progress_at = Instant::now();
                }
            }
            self.attachers.retain(|a| !a.dead);
            let waiting: Vec<usize> = (0..self.attachers.len())
                .filter(|&i| !self.attachers[i].pending.is_empty())
                .collect();
            if waiting.is_empty() || progress_at.elapsed() >= STALLED_ATTACHER {
                return;
            }
            let mut fds: Vec<PollFd<'_>> = waiting
                .iter()
                .map(|&i| PollFd::new(self.attachers[i].conn.as_fd(), PollFlags::POLLOUT))
                .collect();
            let _ = nix::poll::poll(&mut fds, PollTimeout::from(1000u16));
        }
    }

    fn finish(&mut self) {
        self.flush_attachers();
        self.attachers.clear();
        self.controls.clear();
        let _ = std::fs::remove_file(self.cfg.dir.join(ATTACH));
        let _ = std::fs::remove_file(self.cfg.dir.join(CONTROL));
    }
}

/// Docker's stdcopy header: the stream (1 stdout, 2 stderr), three zero bytes, the length.
fn frame_header(stream: Stream, len: usize) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[0] = match stream {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    };
    h[4..].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    h
}

/// Writes what the client takes now and keeps the rest for when it can take more.
fn send(a: &mut Attacher, parts: &[&[u8]]) {
    if a.dead {
        return;
    }
    if !a.pending.is_empty() {
        parts.iter().for_each(|p| a.pending.extend_from_slice(p));
        return;
    }
    let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut written = match a.conn.write_vectored(&iov) {
        Ok(n) => n,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => 0,
        Err(_) => {
            a.dead = true;
            return;
        }
    };
    for p in parts {
        if written >= p.len() {
            written -= p.len();
        } else {
            a.pending.extend_from_slice(&p[written..]);
            written = 0;
        }
    }
}

/// Writes what the client can take now of what it has pending; returns how much that was.
fn flush_pending(a: &mut Attacher) -> usize {
    let mut written = 0;
    while !a.pending.is_empty() {
        match a.conn.write(&a.pending) {
            Ok(n) => {
                a.pending.drain(..n);
                written += n;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return written,
            Err(_) => {
                a.dead = true;
                a.pending = Vec::new();
                return written;
            }
        }
    }
    a.pending = Vec::new();
    written
}

/// Small replies fit the socket buffer; a client that is gone just misses it.
fn reply_line(conn: &mut UnixStream, line: &str) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = conn.write_all(line.as_bytes());
    let _ = conn.write_all(b"\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    #[test]
    fn frame_header_is_dockers() {
        assert_eq!(frame_header(Stream::Stdout, 5), [1, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(
            frame_header(Stream::Stderr, 0x0102_0304),
            [2, 0, 0, 0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn start_failures_get_dockers_codes() {
        assert_eq!(
            start_failure_code("exec: \"nosuch\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_failure_code("exec /x: permission denied"), 126);
        assert_eq!(start_failure_code("mount failed"), 128);
    }
}
