//! pid 1 for a container whose spec asks for an init (`docker run --init`, the annotation
//! [`INIT_ANNOTATION`]): the container's first process stays berth, forks the program, forwards
//! every signal it gets to it, reaps every orphan the pid namespace hands it, and exits with the
//! program's status — what Docker's docker-init (tini) does.
//!
//! Unlike docker-init, nothing is bind-mounted into the container: pid 1 is the runtime's own
//! init process, already in the container with its user, capabilities and seccomp filter, that
//! forks instead of exec'ing. It stays non-dumpable, so the container cannot ptrace it or read
//! its memory.

use std::ffi::CString;

use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use crate::error::{Error, Result};
use crate::process::ProcessPlan;

/// The spec annotation that asks for berth's init as pid 1 ("true").
pub const INIT_ANNOTATION: &str = "berth.init";

/// The spec annotation ("true") that makes the init a pod's infra process (the CRI's sandbox):
/// it holds the pod's namespaces and reaps what the pod's pid namespace hands it, and runs no
/// program, so a sandbox needs no pause image.
pub const PAUSE_ANNOTATION: &str = "berth.pause";

/// What /proc/1/comm shows, as with Docker.
const TITLE: &str = "docker-init";

/// Forks the program and serves as its init. Returns only if the fork fails.
pub(crate) fn run(plan: &ProcessPlan, program: &CString, env: &[CString]) -> Error {
    match serve(plan, program, env) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn serve(
    plan: &ProcessPlan,
    program: &CString,
    env: &[CString],
) -> Result<std::convert::Infallible> {
    // Every signal stays pending until the loop takes it: none is lost between the fork and
    // the first wait, and none runs a default action (pid 1 ignores those it does not handle).
    let mut before = SigSet::empty();
    nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut before),
    )
    .map_err(|e| Error::sys("block signals in the container's init", e))?;
    // SAFETY: the init is single-threaded (a fresh clone of the runtime's one thread); the child
    // only calls async-signal-safe functions and execve, or _exit.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => run_program(plan, program, env, &before),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(Error::sys("fork the container's program from its init", e)),
    };
    // The init is a clone of the runtime's process and never execs: without this it would
    // hold, for the container's life, every descriptor the runtime had open (a caller waiting
    // for EOF on one would wait for the container to end). The program got its own copies.
    let _ = crate::syscall::close_from(3);
    set_title(plan);
    loop {
        let signal = wait_signal();
        if signal == libc::SIGCHLD {
            if let Some(code) = reap(child) {
                // SAFETY: _exit ends pid 1; the kernel then ends the rest of the namespace.
                unsafe { libc::_exit(code) }
            }
        } else if signal > 0 {
            // SAFETY: kill with a pid and a signal number the kernel just gave us.
            unsafe { libc::kill(child.as_raw(), signal) };
        }
    }
}

/// The infra process's life: every signal is taken synchronously; SIGTERM, SIGINT or SIGQUIT
/// end it (status 0, as Kubernetes' pause), SIGCHLD reaps, the rest is ignored.
pub(crate) fn pause() -> ! {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None);
    // A clone of the runtime: the descriptors it had must not live as long as the pod.
    let _ = crate::syscall::close_from(3);
    let _ = nix::sys::prctl::set_name(&CString::new("pause").unwrap_or_default());
    loop {
        match wait_signal() {
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => {
                // SAFETY: _exit ends pid 1; the kernel then ends the rest of the namespace.
                unsafe { libc::_exit(0) }
            }
            libc::SIGCHLD => {
                while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
                    waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG))
                {}
            }
            _ => {}
        }
    }
}

/// The program's side of the fork: its own process group (the terminal's foreground one, so
/// that ^C reaches it and not the init), the signal mask it would have had, then execve.
fn run_program(plan: &ProcessPlan, program: &CString, env: &[CString], mask: &SigSet) -> ! {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    if plan.terminal {
        // tcsetpgrp from a background group raises SIGTTOU, which is blocked here.
        let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpid());
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(mask), None);
    let error = plan.exec(program, env);
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("docker-init: {error}\n").as_bytes(),
    );
    let code = match error {
        Error::Syscall {
            errno: nix::errno::Errno::ENOENT,
            ..
        } => 127,
        _ => 126,
    };
    // SAFETY: _exit ends this forked child without running atexit handlers.
    unsafe { libc::_exit(code) }
}

/// The next pending signal's number (0 if the wait was interrupted).
fn wait_signal() -> libc::c_int {
    let all = SigSet::all();
    // SAFETY: sigwaitinfo writes into the siginfo we own; the set outlives the call.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let n = libc::sigwaitinfo(all.as_ref(), &mut info);
        n.max(0)
    }
}

/// Reaps every exited child; returns the exit code to leave with once the program is among
/// them (128 + the signal that killed it, as shells report it).
fn reap(program: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, status)) if pid == program => code = Some(status),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == program => {
                code = Some(128 + signal as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

/// Makes `ps` in the container show `docker-init -- PROGRAM ARGS` for pid 1 rather than the
/// host command line the init was cloned with (which names host paths). The new text is
/// written over the old argument strings and cut to their length.
fn set_title(plan: &ProcessPlan) {
    let _ = nix::sys::prctl::set_name(&CString::new(TITLE).unwrap_or_default());
    let Some((start, end)) = argument_area() else {
        return;
    };
    let mut text: Vec<u8> = Vec::with_capacity(end - start);
    text.extend_from_slice(TITLE.as_bytes());
    text.extend_from_slice(b"\0--\0");
    for arg in &plan.args {
        text.extend_from_slice(arg.as_bytes_with_nul());
    }
    text.resize(end - start, 0);
    if let Some(last) = text.last_mut() {
        *last = 0;
    }
    // SAFETY: [start, end) is this process's argument area (from /proc/self/stat), which the
    // kernel placed in its writable stack mapping; nothing in this process holds a reference
    // into it (std copies arguments out when asked), and exactly `end - start` bytes are written.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), start as *mut u8, text.len()) };
}

/// `arg_start` and `arg_end` of /proc/self/stat (fields 48 and 49).
fn argument_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 2 (comm) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let start: usize = fields.get(48 - 3)?.parse().ok()?;
    let end: usize = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}
