//! Starting one run of the container: its stdio (pipes, or the pty the init sends back), then
//! create and start through berth's runtime library or a runc-compatible binary.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{SigSet, SigmaskHow};

use crate::config::MonitorConfig;
use crate::error::{Error, Result};
use crate::sock;

/// One live run of the container, and the monitor's ends of its stdio.
#[derive(Debug)]
pub(crate) struct Run {
    pub pid: i32,
    /// The write end of the container's stdin pipe (not for a tty: that is `pty`).
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    /// The pty master: the container's output, and where its input goes.
    pub pty: Option<File>,
    /// memory.oom_control (v1) or memory.events (v2) of the container's cgroup.
    pub oom_file: Option<PathBuf>,
    pub started: Instant,
}

/// The container's ends of its stdio, for the time of create.
struct ContainerEnds {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

pub(crate) fn start(cfg: &MonitorConfig) -> Result<Run> {
    let console = if cfg.tty {
        Some(
            sock::bind(&cfg.dir, sock::CONSOLE).map_err(|e| Error::Socket {
                what: "listen on",
                path: cfg.dir.join(sock::CONSOLE),
                source: e,
            })?,
        )
    } else {
        None
    };
    let (ends, mut run) = if cfg.tty {
        // The init replaces all three with the pty's slave.
        let ends = ContainerEnds {
            stdin: open_null()?,
            stdout: open_null()?,
            stderr: open_null()?,
        };
        (ends, empty_run())
    } else {
        let (stdin, stdin_w) = if cfg.open_stdin {
            let (r, w) = pipe()?;
            (r, Some(File::from(w)))
        } else {
            (open_null()?, None)
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let mut run = empty_run();
        run.stdin = stdin_w;
        run.stdout = Some(File::from(out_r));
        run.stderr = Some(File::from(err_r));
        (
            ContainerEnds {
                stdin,
                stdout: out_w,
                stderr: err_w,
            },
            run,
        )
    };
    let console_path = cfg.dir.join(sock::CONSOLE);
    // What the runtime connects to: a path that fits a socket address however long the exec
    // root is (held open until the runtime is done with it).
    let console_short = match &console {
        Some(_) => Some(
            sock::ShortPath::new(&console_path).map_err(|e| Error::Socket {
                what: "name",
                path: console_path.clone(),
                source: e,
            })?,
        ),
        None => None,
    };
    let console_socket = console_short.as_ref().map(sock::ShortPath::path);
    let started = match (&cfg.runtime, &cfg.exec) {
        (None, None) => start_in_process(cfg, ends, console_socket),
        (Some(bin), None) => start_binary(cfg, bin, ends, console_socket),
        (None, Some(process)) => exec_in_process(cfg, process, ends, console_socket),
        (Some(bin), Some(process)) => exec_binary(cfg, bin, process, ends, console_socket),
    };
    let _ = std::fs::remove_file(&console_path);
    run.pid = started?;
    if let Some(listener) = console {
        run.pty = Some(File::from(receive_master(&listener)?));
    }
    for f in [&run.stdin, &run.stdout, &run.stderr, &run.pty]
        .into_iter()
        .flatten()
    {
        set_nonblocking(f.as_raw_fd())?;
    }
    run.oom_file = oom_file(run.pid);
    run.started = Instant::now();
    Ok(run)
}

fn empty_run() -> Run {
    Run {
        pid: 0,
        stdin: None,
        stdout: None,
        stderr: None,
        pty: None,
        oom_file: None,
        started: Instant::now(),
    }
}

/// The runtime library gives the init the caller's own stdio: lend it ours for the time of
/// create, and the signal mask and dispositions a fresh process has (the init keeps them).
fn start_in_process(
    cfg: &MonitorConfig,
    ends: ContainerEnds,
    console: Option<&Path>,
) -> Result<i32> {
    let runtime = berth_runtime::Runtime::new(&cfg.runtime_root);
    let opts = berth_runtime::CreateOptions {
        bundle: cfg.bundle.clone(),
        console_socket: console.map(Path::to_path_buf),
        ..Default::default()
    };
    let result = with_stdio(&ends, || {
        let container = runtime.create(&cfg.id, &opts)?;
        if let Err(e) = container.start() {
            let _ = container.delete(true);
            return Err(Error::Runtime(e));
        }
        Ok(container.pid())
    });
    drop(ends);
    result
}

/// `docker exec` through the runtime library: the process joins the running container and
/// stays our child (detached from the library's point of view: we wait for it).
fn exec_in_process(
    cfg: &MonitorConfig,
    process: &Path,
    ends: ContainerEnds,
    console: Option<&Path>,
) -> Result<i32> {
    let runtime = berth_runtime::Runtime::new(&cfg.runtime_root);
    let opts = berth_runtime::ExecOptions {
        console_socket: console.map(Path::to_path_buf),
        detach: true,
        ..Default::default()
    };
    let result = with_stdio(&ends, || {
        let container = runtime.load(&cfg.id)?;
        let process = berth_runtime::load_process(process)?;
        Ok(container.exec(&process, &opts)?)
    });
    drop(ends);
    result
}

/// `runtime exec --detach`, runc's command line: the process is reparented to the monitor (a
/// child subreaper) when the runtime exits.
fn exec_binary(
    cfg: &MonitorConfig,
    bin: &Path,
    process: &Path,
    ends: ContainerEnds,
    console: Option<&Path>,
) -> Result<i32> {
    let pid_file = cfg.dir.join("exec.pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut exec = runtime_command(cfg, bin);
    exec.arg("exec")
        .arg("--detach")
        .arg("--process")
        .arg(process)
        .arg("--pid-file")
        .arg(&pid_file);
    run_with_stdio(cfg, bin, "exec", exec, ends, console)?;
    std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or_else(|| Error::RuntimeBinary {
            runtime: bin.to_owned(),
            op: "exec",
            reason: format!("no pid in {}", pid_file.display()),
        })
}

/// Runs a runtime binary's `create` or `exec` (`cmd`, all but the console socket and the
/// id) with the process's stdio ends; its failure is the error it logged.
fn run_with_stdio(
    cfg: &MonitorConfig,
    bin: &Path,
    op: &'static str,
    mut cmd: Command,
    ends: ContainerEnds,
    console: Option<&Path>,
) -> Result<()> {
    if let Some(c) = console {
        cmd.arg("--console-socket").arg(c);
    }
    cmd.arg(&cfg.id)
        .stdin(Stdio::from(ends.stdin))
        .stdout(Stdio::from(ends.stdout))
        .stderr(Stdio::from(ends.stderr));
    let status = cmd.status().map_err(|e| Error::RuntimeBinary {
        runtime: bin.to_owned(),
        op,
        reason: e.to_string(),
    })?;
    // The pipes' write ends live in `cmd` until it is dropped.
    drop(cmd);
    if !status.success() {
        return Err(Error::Start(runtime_error(
            &cfg.dir.join("runtime.log"),
            status,
        )));
    }
    Ok(())
}

fn with_stdio<T>(ends: &ContainerEnds, f: impl FnOnce() -> Result<T>) -> Result<T> {
    dup_onto(ends.stdin.as_raw_fd(), 0)?;
    dup_onto(ends.stdout.as_raw_fd(), 1)?;
    dup_onto(ends.stderr.as_raw_fd(), 2)?;
    let mut blocked = SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        Some(&mut blocked),
    );
    let result = f();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&blocked), None);
    // The monitor must not keep the container's ends open: EOF on its output depends on it.
    let null = open_null()?;
    for fd in 0..=2 {
        dup_onto(null.as_raw_fd(), fd)?;
    }
    result
}

/// `runtime create` then `runtime start`, runc's command line. The init is reparented to the
/// monitor (a child subreaper) when `create` exits.
fn start_binary(
    cfg: &MonitorConfig,
    bin: &Path,
    ends: ContainerEnds,
    console: Option<&Path>,
) -> Result<i32> {
    let pid_file = cfg.dir.join("init.pid");
    let log_file = cfg.dir.join("runtime.log");
    let _ = std::fs::remove_file(&pid_file);
    let _ = std::fs::remove_file(&log_file);
    let mut create = runtime_command(cfg, bin);
    create
        .arg("create")
        .arg("--bundle")
        .arg(&cfg.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    run_with_stdio(cfg, bin, "create", create, ends, console)?;
    let start = runtime_command(cfg, bin)
        .arg("start")
        .arg(&cfg.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    match (start, pid) {
        (Ok(s), Some(pid)) if s.success() => Ok(pid),
        (start, _) => {
            delete_binary(cfg, bin);
            let status = start
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            Err(Error::RuntimeBinary {
                runtime: bin.to_owned(),
                op: "start",
                reason: status,
            })
        }
    }
}

fn runtime_command(cfg: &MonitorConfig, bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--root")
        .arg(&cfg.runtime_root)
        .arg("--log")
        .arg(cfg.dir.join("runtime.log"))
        .arg("--log-format")
        .arg("json");
    cmd
}

/// The last error runc or crun logged (their stderr is the container's), else the status.
fn runtime_error(log_file: &Path, status: std::process::ExitStatus) -> String {
    let text = std::fs::read_to_string(log_file).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(str::to_owned))
        .next_back()
        .unwrap_or_else(|| format!("the runtime failed: {status}"))
}

/// Removes the runtime's record and cgroup of a run that ended (not for an exec'd process:
/// the container lives on).
pub(crate) fn delete(cfg: &MonitorConfig) {
    if cfg.exec.is_some() {
        return;
    }
    match &cfg.runtime {
        None => {
            let runtime = berth_runtime::Runtime::new(&cfg.runtime_root);
            if let Ok(c) = runtime.load(&cfg.id) {
                let _ = c.delete(true);
            }
        }
        Some(bin) => delete_binary(cfg, bin),
    }
}

fn delete_binary(cfg: &MonitorConfig, bin: &Path) {
    let _ = runtime_command(cfg, bin)
        .args(["delete", "--force"])
        .arg(&cfg.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The file whose `oom_kill` counter says whether the kernel killed in the container's
/// memory cgroup, found while the init is alive (its cgroup is gone after delete).
fn oom_file(pid: i32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut unified = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            return Some(
                Path::new("/sys/fs/cgroup/memory")
                    .join(path)
                    .join("memory.oom_control"),
            );
        }
        if controllers.is_empty() {
            unified = Some(path.to_owned());
        }
    }
    let path = unified?;
    let v2_root = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/unified"
    };
    Some(Path::new(v2_root).join(path).join("memory.events"))
}

/// Whether the kernel's OOM killer killed anything in the run's cgroup.
pub(crate) fn oom_killed(run: &Run) -> bool {
    let Some(file) = &run.oom_file else {
        return false;
    };
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("oom_kill ").map(|n| n.trim().parse::<u64>()))
        })
        .and_then(|r| r.ok())
        .is_some_and(|n| n > 0)
}

fn receive_master(listener: &UnixListener) -> Result<OwnedFd> {
    let (conn, _) = listener.accept().map_err(|e| Error::Socket {
        what: "receive the pty master on",
        path: PathBuf::from(sock::CONSOLE),
        source: e,
    })?;
    Ok(berth_runtime::receive_console_master(conn.as_fd())?)
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("pipe for the container's stdio", e))
}

pub(crate) fn open_null() -> Result<OwnedFd> {
    nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open /dev/null", e))
}

/// dup2 onto a standard descriptor number, which no OwnedFd of ours owns.
pub(crate) fn dup_onto(from: RawFd, to: RawFd) -> Result<()> {
    // SAFETY: dup2 on plain descriptor numbers; `to` is 0, 1 or 2, owned by no Rust object.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(Error::sys(
            format!("dup2 {from} onto {to}"),
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

pub(crate) fn set_nonblocking(fd: RawFd) -> Result<()> {
    // SAFETY: the descriptor is open for the duration of the call (the caller holds it).
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(|e| Error::sys("F_GETFL", e))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(|e| Error::sys("F_SETFL O_NONBLOCK", e))?;
    Ok(())
}
