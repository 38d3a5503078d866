//! Lifecycle hooks: each is run with the container's state as JSON on its stdin, and killed if
//! it outlives its timeout.

use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Where a hook runs and with which environment when its config gives none (`env` absent).
/// runc runs hooks with Go's os/exec, whose nil environment is the caller's: the runtime's own
/// for the hooks it runs (from the bundle directory, where runc works), the container
/// process's for those its init runs (the init has taken that environment by then). A hook
/// with an `env` list, even an empty one, gets exactly that list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DefaultEnv<'a> {
    /// The runtime's environment, in this directory (prestart, createRuntime, poststart,
    /// poststop: the bundle).
    Runtime(&'a std::path::Path),
    /// The container process's, in the init's working directory (createContainer: the rootfs,
    /// startContainer: the process's cwd).
    Process(&'a [CString]),
}

/// Runs `hooks` in order; the first failure stops the rest (prestart, createRuntime,
/// createContainer, startContainer: the spec makes such a failure the operation's error).
pub(crate) fn run(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state_json: &[u8],
    env: DefaultEnv<'_>,
) -> Result<()> {
    for hook in hooks.map(Vec::as_slice).unwrap_or_default() {
        run_one(kind, hook, state_json, env)?;
    }
    Ok(())
}

/// Runs every hook even when one fails, as the spec asks of poststart and poststop hooks
/// ("the remaining hooks and lifecycle continue"); each failure goes to `report`.
pub(crate) fn run_all(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state_json: &[u8],
    bundle: &std::path::Path,
    report: &mut dyn FnMut(Error),
) {
    for hook in hooks.map(Vec::as_slice).unwrap_or_default() {
        if let Err(e) = run_one(kind, hook, state_json, DefaultEnv::Runtime(bundle)) {
            report(e);
        }
    }
}

fn run_one(kind: &'static str, hook: &Hook, state_json: &[u8], env: DefaultEnv<'_>) -> Result<()> {
    let fail = |reason: String| Error::Hook {
        kind,
        path: hook.path().clone(),
        reason,
    };
    let mut cmd = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    match (hook.env(), env) {
        (Some(list), _) => {
            cmd.env_clear();
            for var in list {
                if let Some((k, v)) = var.split_once('=') {
                    cmd.env(k, v);
                }
            }
        }
        (None, DefaultEnv::Runtime(_)) => {}
        (None, DefaultEnv::Process(vars)) => {
            cmd.env_clear();
            for var in vars {
                let bytes = var.as_bytes();
                if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                    cmd.env(
                        OsStr::from_bytes(&bytes[..eq]),
                        OsStr::from_bytes(&bytes[eq + 1..]),
                    );
                }
            }
        }
    }
    if let DefaultEnv::Runtime(dir) = env {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    // A hook that writes into the container's root (device libraries, ld.so.cache) makes
    // files as it would under runc: umask 0022, not the stricter one of berth's monitor. The
    // runtime's caller is single-threaded, so the process-wide umask is ours to swap.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let spawned = cmd.spawn();
    nix::sys::stat::umask(umask);
    let mut child = spawned.map_err(|e| fail(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let timeout = hook.timeout().filter(|t| *t > 0);
    if let Some(secs) = timeout {
        let pid = i32::try_from(child.id()).map_err(|_| fail("pid out of range".into()))?;
        if !wait_exit_within(pid, secs).map_err(|e| fail(format!("wait: {e}")))? {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {secs} s, killed")));
        }
    }
    let status = child.wait().map_err(|e| fail(format!("wait: {e}")))?;
    if !status.success() {
        return Err(fail(format!("failed: {status}")));
    }
    Ok(())
}

/// Waits for `pid` to exit for at most `secs`, on a pidfd: an event, not a polling loop.
fn wait_exit_within(pid: i32, secs: i64) -> std::io::Result<bool> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just returned by the kernel and is owned here only.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs.unsigned_abs());
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
