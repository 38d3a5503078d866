//! The container lifecycle of the runtime-spec, as the runtime's side sees it: create (fork the
//! init and walk it through its setup), start, kill, delete, exec, pause, resume, update.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, LinuxSeccomp, Process};

use crate::cgroups::{Cgroup, Joined};
use crate::error::{Error, Result};
use crate::foreground::{self, Signals};
use crate::hooks::{self, DefaultEnv};
use crate::init::{self, ExecArgs, InitArgs};
use crate::namespaces::{self, NamespacePlan, Saved};
use crate::process::ProcessPlan;
use crate::spec::{validate_process, Bundle};
use crate::state::{self, ContainerState, SpecState, StateDocument, Status, EXEC_FIFO};
use crate::sync::{self, Msg};
use crate::{console, netdev, seccomp, syscall};

/// A directory of container states (runc's `--root`).
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    warn: fn(&str),
    error: fn(&str),
}

/// How to create a container (`create` and `run` flags).
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    /// Descriptors 3 .. 3+N are passed to the container's process.
    pub preserve_fds: u32,
}

/// How to run an extra process in a container (`exec` flags).
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    /// Run the process even in a paused container (runc's `--ignore-paused`): it starts frozen.
    pub ignore_paused: bool,
}

/// How `run` follows the container (its flags besides the create ones).
#[derive(Debug, Default, Clone, Copy)]
pub struct RunOptions {
    /// Return once the container is started.
    pub detach: bool,
    /// Keep the container (stopped) after its process exits, for a later `delete`.
    pub keep: bool,
    /// Do not become a child subreaper: orphans of the container go to the host's reaper.
    pub no_subreaper: bool,
}

/// A container known to the runtime: its record and where it is kept.
#[derive(Debug)]
pub struct Container {
    dir: PathBuf,
    state: ContainerState,
    warn: fn(&str),
    error: fn(&str),
}

fn default_warn(message: &str) {
    eprintln!("berth: warning: {message}");
}

fn default_error(message: &str) {
    eprintln!("berth: error: {message}");
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            root: root.into(),
            warn: default_warn,
            error: default_error,
        }
    }

    /// Where warnings (an LSM the host lacks, a failed poststart hook) go.
    pub fn with_warnings(mut self, warn: fn(&str)) -> Runtime {
        self.warn = warn;
        self
    }

    /// Where errors that do not stop the operation go (a failed poststop hook: the container
    /// is deleted all the same, as the runtime-spec and runc have it).
    pub fn with_errors(mut self, error: fn(&str)) -> Runtime {
        self.error = error;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the container: its init is set up and waits for `start`. The caller must be
    /// single-threaded (see the crate documentation).
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<Container> {
        self.create_inner(id, opts, false).map(|(c, _)| c)
    }

    /// `run`: create, start, and unless `detach`, wait for the init to exit, forwarding signals
    /// and the terminal, then delete the container (unless `keep`). Returns the exit code for
    /// the caller to exit with (128+N for a signal, as shells do).
    pub fn run(&self, id: &str, opts: &CreateOptions, run: RunOptions) -> Result<i32> {
        // From before the container exists: a signal meanwhile is forwarded, not fatal.
        let signals = if run.detach {
            None
        } else {
            Some(Signals::block()?)
        };
        if !run.detach && !run.no_subreaper {
            // As runc: orphans of a container without a pid namespace come back to us.
            let _ = syscall::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        }
        let (container, console_rx) = self.create_inner(id, opts, !run.detach)?;
        let result = container.start().and_then(|()| match &signals {
            None => Ok(0),
            Some(signals) => {
                let master = console_rx
                    .map(|rx| console::receive_master(rx.as_fd()))
                    .transpose()?;
                foreground::wait(
                    signals,
                    Pid::from_raw(container.state.pid),
                    master,
                    !run.no_subreaper,
                )
            }
        });
        let remove = if run.detach {
            result.is_err()
        } else {
            !run.keep || result.is_err()
        };
        if remove {
            container.delete(true)?;
        }
        result
    }

    fn create_inner(
        &self,
        id: &str,
        opts: &CreateOptions,
        keep_terminal: bool,
    ) -> Result<(Container, Option<OwnedFd>)> {
        validate_id(id)?;
        let warn = self.warn;
        let bundle = Bundle::load(&opts.bundle, &mut |m| warn(&m))?;
        let spec = &bundle.spec;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| Error::InvalidConfig("linux is missing".into()))?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::InvalidConfig("process is missing".into()))?;
        let ns_plan = NamespacePlan::new(linux)?;
        let plan = ProcessPlan::new(process, Some(linux), &mut |m| warn(&m))?;
        if linux
            .resources()
            .as_ref()
            .and_then(|r| r.memory().as_ref())
            .is_some_and(|m| m.kernel().is_some())
        {
            // As runc 1.1: kernel memory accounting cannot be limited since Linux 5.4 and the
            // knob is gone in cgroup v2.
            warn("Kernel memory settings are ignored and will be removed");
        }

        // The console, resolved before anything is made so a refusal leaves nothing behind.
        let (console_tx, console_rx) =
            console_ends(plan.terminal, opts.console_socket.as_deref(), keep_terminal)?;

        state::private_root(&self.root)?;
        let dir = self.root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::IdInUse(id.to_owned()))
            }
            Err(e) => return Err(Error::io(format!("create state dir {}", dir.display()), e)),
        }
        let mut guard = CreateGuard {
            dir: Some(dir.clone()),
            cgroup: None,
            pid: None,
        };

        let fifo_path = dir.join(EXEC_FIFO);
        nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
            .map_err(|e| Error::sys(format!("mkfifo {}", fifo_path.display()), e))?;
        // mkfifo honours the umask; anyone the container runs as must be able to open it.
        std::fs::set_permissions(
            &fifo_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o622),
        )
        .map_err(|e| Error::io(format!("chmod {}", fifo_path.display()), e))?;
        let fifo = open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::sys(format!("open {}", fifo_path.display()), e))?;

        let cgroup = Cgroup::resolve(linux.cgroups_path().as_deref(), id)?;
        // A cgroup someone froze would freeze the init as it joins: refused before anything
        // is made or removed, with runc's words.
        if cgroup.is_frozen().unwrap_or(false) {
            return Err(Error::InvalidConfig(format!(
                "container's cgroup unexpectedly frozen ({})",
                cgroup.describe()
            )));
        }
        if let Ok(pids) = cgroup.pids() {
            if !pids.is_empty() {
                warn(&format!(
                    "container's cgroup is not empty: {} process(es) found",
                    pids.len()
                ));
            }
        }
        cgroup.create()?;
        guard.cgroup = Some(cgroup.clone());
        let cgroup_sources = cgroup.mount_sources();

        let created = state::now_rfc3339();
        let annotations = spec.annotations().clone().unwrap_or_default();
        let mut record = ContainerState {
            id: id.to_owned(),
            pid: 0,
            pid_start_time: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created,
            owner: owner_name(),
            annotations,
            cgroup,
            config: bundle.spec.clone(),
        };

        let idmapped = crate::rootfs::prepare_idmapped(spec, &bundle.dir)?;
        let resources = with_default_devices(linux.resources().clone().unwrap_or_default());
        let clone_target = record.cgroup.clone_target().transpose()?;
        // An init born in the host's user namespace joins the v1 hierarchies itself, by the
        // write that skips the kernel's global migration lock (Cgroup::join_v1_self).
        let join_v1 = record.cgroup.has_v1() && !ns_plan.new_userns;
        let limits_first = clone_target.is_some() || join_v1;
        if limits_first {
            // The init starts (or places itself) inside the cgroup: its limits must be there
            // before it is.
            record.cgroup.apply(&resources)?;
        }
        let (runtime_end, init_end) = sync::pair()?;
        // Network devices go to a network namespace joined by path before the runtime enters
        // it (a new one is made by the clone below: they go there after it).
        if let (Some(devices), Some(path)) = (linux.net_devices(), ns_plan.joined_network()) {
            netdev::move_to_path(devices, path)?;
        }
        // The runtime enters some namespaces itself for the fork; it goes back right after.
        let entered = ns_plan.entered_by_runtime();
        let saved = (!entered.is_empty()).then(|| Saved::save(&entered));
        ns_plan.enter_before_fork(linux)?;
        // SAFETY: the runtime's documented precondition is a single-threaded caller.
        let spawned = unsafe {
            spawn(
                ns_plan.clone_flags.bits() as libc::c_ulong,
                clone_target.as_ref(),
            )
        };
        if let (Ok((Some(_), _)), Some(saved)) = (&spawned, &saved) {
            saved.restore()?;
        }
        let (child, placed) = spawned.map_err(|e| {
            Error::sys(
                format!("clone the init with namespaces {:?}", ns_plan.clone_flags),
                e,
            )
        })?;
        let Some(pid) = child else {
            drop(runtime_end);
            init::run(InitArgs {
                channel: init_end,
                spec,
                rootfs: &bundle.rootfs,
                bundle: &bundle.dir,
                ns_plan: &ns_plan,
                plan: &plan,
                cgroup_sources: &cgroup_sources,
                join_v1: join_v1.then_some(&record.cgroup),
                fifo: &fifo,
                console: console_tx.as_ref(),
                no_pivot: opts.no_pivot,
                preserve_fds: opts.preserve_fds,
                idmapped: &idmapped,
                as_init: spec
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(crate::reaper::INIT_ANNOTATION))
                    .is_some_and(|v| v == "true"),
                as_pause: spec
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(crate::reaper::PAUSE_ANNOTATION))
                    .is_some_and(|v| v == "true"),
                state_json: &|status| hook_state(&record, status, std::process::id() as i32),
            })
        };
        drop(init_end);
        drop(console_tx);
        guard.pid = Some(pid);
        record.pid = pid.as_raw();

        if ns_plan.new_userns {
            namespaces::write_id_maps(pid.as_raw(), linux)?;
        }
        if let (Some(devices), None) = (linux.net_devices(), ns_plan.joined_network()) {
            netdev::move_to_process(devices, pid.as_raw())?;
        }
        let joined = Joined {
            v1: join_v1,
            v2: placed,
        };
        if !ns_plan.new_userns {
            // In its cgroup before it goes on (mostly nothing to write: the init joined v1 by
            // itself and v2 at birth), so that it may make its cgroup namespace and mount its
            // cgroups in the spec's order, as runc does.
            record.cgroup.add_process(pid.as_raw(), joined)?;
        }
        runtime_end.send(Msg::Proceed)?;
        if !limits_first {
            // Limits first, then the process: the init, already building its root, must never
            // see a half-written device list (deny-all before the allows).
            record.cgroup.apply(&resources)?;
        }
        if ns_plan.new_userns {
            record.cgroup.add_process(pid.as_raw(), joined)?;
        }
        runtime_end.expect(Msg::RunCreateRuntimeHooks)?;
        let hooks = spec.hooks().as_ref();
        let creating = hook_state(&record, Status::Creating, pid.as_raw());
        hooks::run(
            "prestart",
            hooks.and_then(|h| h.prestart().as_ref()),
            &creating,
            DefaultEnv::Runtime(&bundle.dir),
        )?;
        hooks::run(
            "createRuntime",
            hooks.and_then(|h| h.create_runtime().as_ref()),
            &creating,
            DefaultEnv::Runtime(&bundle.dir),
        )?;
        runtime_end.send(Msg::HooksDone)?;
        runtime_end.expect_ready(&mut |fd| {
            to_seccomp_agent(linux.seccomp().as_ref(), &fd, pid.as_raw(), &creating)
        })?;

        record.pid_start_time = state::process_stat(pid.as_raw())
            .map(|(_, start)| start)
            .ok_or_else(|| Error::Init("exited right after setup".into()))?;
        record.write(&dir)?;
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid.as_raw())?;
        }
        guard.disarm();
        Ok((
            Container {
                dir,
                state: record,
                warn: self.warn,
                error: self.error,
            },
            console_rx,
        ))
    }

    /// The container with this id.
    pub fn load(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = self.root.join(id);
        let state = ContainerState::read(&dir, id)?;
        Ok(Container {
            dir,
            state,
            warn: self.warn,
            error: self.error,
        })
    }

    /// Every container under this root, by id.
    pub fn list(&self) -> Result<Vec<Container>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("read {}", self.root.display()), e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str() else { continue };
            match self.load(id) {
                Ok(c) => out.push(c),
                // A directory without state is a create in progress (or one that crashed).
                Err(Error::NotFound(_)) | Err(Error::InvalidId(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.state.id.cmp(&b.state.id));
        Ok(out)
    }
}

impl Container {
    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn pid(&self) -> i32 {
        self.state.pid
    }

    pub fn record(&self) -> &ContainerState {
        &self.state
    }

    /// The status, read from the system: a dead init means stopped whatever the file says.
    pub fn status(&self) -> Status {
        if !self.state.init_alive() {
            return Status::Stopped;
        }
        if self.dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.state.cgroup.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The runtime-spec state document, as `state` prints it.
    pub fn state_document(&self) -> StateDocument<'_> {
        let status = self.status();
        let pid = if status == Status::Stopped {
            0
        } else {
            self.state.pid
        };
        document(&self.state, status, pid)
    }

    /// Lets the init exec the container's program.
    pub fn start(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Created {
            return Err(self.wrong_state(
                "start",
                status,
                " (only a created container can be started)",
            ));
        }
        let fifo_path = self.dir.join(EXEC_FIFO);
        let fifo = open(
            &fifo_path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("open {}", fifo_path.display()), e))?;
        // The init opens the fifo for writing and writes one byte: wait for it, but not for an
        // init that died meanwhile.
        loop {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u8)) {
                Ok(0) | Err(Errno::EINTR) => {
                    if !self.state.init_alive() {
                        return Err(Error::Init("exited before it could be started".into()));
                    }
                }
                Ok(_) => break,
                Err(e) => return Err(Error::sys("wait on the exec fifo", e)),
            }
        }
        let mut byte = [0u8; 1];
        let _ = nix::unistd::read(fifo.as_fd(), &mut byte);
        let _ = std::fs::remove_file(&fifo_path);
        // The init keeps its end open until it execs the program (close-on-exec) or dies; what
        // it writes meanwhile is why it failed (a startContainer hook, the exec itself).
        let failure = read_to_end(&fifo);
        if !failure.is_empty() {
            return Err(Error::Init(
                String::from_utf8_lossy(&failure).trim_end().to_owned(),
            ));
        }
        // Only now does the program run: poststart hooks come after it is executed (the
        // spec), and a failed one is a warning, the others still running.
        let hooks = self.state.config.hooks().as_ref();
        let running = hook_state(&self.state, Status::Running, self.state.pid);
        let warn = self.warn;
        hooks::run_all(
            "poststart",
            hooks.and_then(|h| h.poststart().as_ref()),
            &running,
            &self.state.bundle,
            &mut |e| warn(&e.to_string()),
        );
        Ok(())
    }

    /// Sends `signal` to the init, or with `all` to every process of the container (which
    /// runc allows on a stopped container too: processes that outlived the init of a container
    /// without a pid namespace are still in its cgroup).
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let status = self.status();
        if status == Status::Stopped && !all {
            return Err(self.wrong_state("kill", status, " (container not running)"));
        }
        let name = crate::signal::name(signal).unwrap_or("signal 0");
        if all {
            for pid in self.state.cgroup.pids()? {
                match send_signal(pid, signal) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => return Err(Error::sys(format!("kill pid {pid} with {name}"), e)),
                }
            }
            return Ok(());
        }
        send_signal(self.state.pid, signal).map_err(|e| {
            Error::sys(
                format!("kill the init (pid {}) with {name}", self.state.pid),
                e,
            )
        })
    }

    /// Removes the container. A running or paused one only with `force` (it is killed first).
    pub fn delete(&self, force: bool) -> Result<()> {
        let status = self.status();
        match status {
            Status::Stopped | Status::Created => {}
            Status::Running | Status::Paused | Status::Creating if force => {}
            _ => {
                return Err(self.wrong_state("delete", status, " (stop it first, or use --force)"))
            }
        }
        if status == Status::Paused {
            self.state.cgroup.thaw()?;
        }
        if status != Status::Stopped {
            let _ = kill(Pid::from_raw(self.state.pid), Signal::SIGKILL);
            wait_gone(self.state.pid, self.state.pid_start_time);
        }
        // Without a pid namespace, processes may outlive the init: the cgroup knows them all.
        for _ in 0..100 {
            let pids = self.state.cgroup.pids().unwrap_or_default();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.state.cgroup.destroy()?;
        std::fs::remove_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("remove {}", self.dir.display()), e))?;
        // After the container is gone, before delete returns (the spec). A failure is logged
        // as an error and the other hooks still run; delete itself succeeds, as runc's does.
        let hooks = self.state.config.hooks().as_ref();
        let stopped = hook_state(&self.state, Status::Stopped, 0);
        let error = self.error;
        hooks::run_all(
            "poststop",
            hooks.and_then(|h| h.poststop().as_ref()),
            &stopped,
            &self.state.bundle,
            &mut |e| error(&e.to_string()),
        );
        Ok(())
    }

    pub fn pause(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Running && status != Status::Created {
            return Err(self.wrong_state("pause", status, ""));
        }
        Ok(self.state.cgroup.freeze()?)
    }

    pub fn resume(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Paused {
            return Err(self.wrong_state("resume", status, " (it is not paused)"));
        }
        Ok(self.state.cgroup.thaw()?)
    }

    /// Changes the container's resource limits.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.wrong_state("update", status, ""));
        }
        // A new device list replaces the old one: it must keep the rules every container gets.
        let mut resources = resources.clone();
        if resources.devices().is_some() {
            resources = with_default_devices(resources);
        }
        Ok(self.state.cgroup.apply(&resources)?)
    }

    /// Every process of the container, by host pid.
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(self.state.cgroup.pids()?)
    }

    /// Runs `process` in the container's namespaces and cgroup. Detached: returns its pid.
    /// Otherwise waits and returns its exit code. The caller must be single-threaded.
    pub fn exec(&self, process: &Process, opts: &ExecOptions) -> Result<i32> {
        let status = self.status();
        match status {
            Status::Stopped | Status::Creating => {
                return Err(self.wrong_state("exec in", status, ""));
            }
            Status::Paused if !opts.ignore_paused => {
                return Err(self.wrong_state(
                    "exec in",
                    status,
                    " (use --ignore-paused to override)",
                ));
            }
            _ => {}
        }
        validate_process(process)?;
        let linux = self.state.config.linux().as_ref();
        let warn = self.warn;
        let plan = ProcessPlan::new(process, linux, &mut |m| warn(&m))?;
        // From before the fork: a signal meanwhile is forwarded, not fatal.
        let signals = if opts.detach {
            None
        } else {
            Some(Signals::block()?)
        };
        let (console_tx, console_rx) =
            console_ends(plan.terminal, opts.console_socket.as_deref(), !opts.detach)?;
        let joins = namespaces::of_process(self.state.pid);
        let for_children: Vec<_> = joins
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| {
                *f == nix::sched::CloneFlags::CLONE_NEWPID || *f == namespaces::CLONE_NEWTIME
            })
            .collect();
        let saved = (!for_children.is_empty()).then(|| Saved::save(&for_children));
        let mut in_child = Vec::new();
        for (flag, path) in joins {
            let fd = open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(|e| Error::sys(format!("open {}", path.display()), e))?;
            if flag == nix::sched::CloneFlags::CLONE_NEWPID || flag == namespaces::CLONE_NEWTIME {
                // Both act on children only: enter them here, before the fork.
                namespaces::join_fd(flag, &fd, &path)?;
            } else {
                in_child.push((flag, fd, path));
            }
        }
        let clone_target = self.state.cgroup.clone_target().transpose()?;
        // Still in the host's user namespace, the process joins the v1 hierarchies itself.
        let join_v1 = self.state.cgroup.has_v1();
        let (runtime_end, init_end) = sync::pair()?;
        // SAFETY: the runtime's documented precondition is a single-threaded caller.
        let spawned = unsafe { spawn(0, clone_target.as_ref()) };
        if let (Ok((Some(_), _)), Some(saved)) = (&spawned, &saved) {
            saved.restore()?;
        }
        let (child, placed) = spawned.map_err(|e| Error::sys("fork the exec process", e))?;
        let Some(pid) = child else {
            drop(runtime_end);
            init::exec(ExecArgs {
                channel: init_end,
                joins: &in_child,
                join_v1: join_v1.then_some(&self.state.cgroup),
                plan: &plan,
                console: console_tx.as_ref(),
                console_size: process.console_size().map(|b| {
                    (
                        u16::try_from(b.height()).unwrap_or(u16::MAX),
                        u16::try_from(b.width()).unwrap_or(u16::MAX),
                    )
                }),
                preserve_fds: opts.preserve_fds,
                detach: opts.detach,
            })
        };
        drop(init_end);
        drop(console_tx);
        let setup = (|| {
            self.state.cgroup.add_process(
                pid.as_raw(),
                Joined {
                    v1: join_v1,
                    v2: placed,
                },
            )?;
            runtime_end.send(Msg::Proceed)?;
            let state = hook_state(&self.state, Status::Running, self.state.pid);
            runtime_end.expect_ready(&mut |fd| {
                to_seccomp_agent(
                    linux.and_then(|l| l.seccomp().as_ref()),
                    &fd,
                    pid.as_raw(),
                    &state,
                )
            })
        })();
        if let Err(e) = setup {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(e);
        }
        if let Some(pid_file) = &opts.pid_file {
            if let Err(e) = write_pid_file(pid_file, pid.as_raw()) {
                // runc ends the process when it cannot tell its pid.
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return Err(e);
            }
        }
        let Some(signals) = signals else {
            return Ok(pid.as_raw());
        };
        let master = console_rx
            .map(|rx| console::receive_master(rx.as_fd()))
            .transpose()?;
        foreground::wait(&signals, pid, master, false)
    }

    fn wrong_state(&self, op: &'static str, status: Status, hint: &'static str) -> Error {
        Error::WrongState {
            id: self.state.id.clone(),
            op,
            status,
            hint,
        }
    }
}

/// The spec's resources with the device rules every container gets appended, as runc does:
/// mknod of any node, the default /dev nodes, ptys, /dev/net/tun. Without them a deny-all rule
/// would leave the init unable to make its own /dev. The spec's `linux.devices` get no rule of
/// their own (nor with runc): a node is usable only where `resources.devices` allows it.
fn with_default_devices(mut resources: LinuxResources) -> LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_owned()));
        r
    };
    let c = LinuxDeviceType::C;
    // An allowlist, as the spec calls it and runc builds it: everything is denied first, so a
    // list without a deny-all of its own still grants only what it names.
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".to_owned()));
    let mut rules = vec![deny_all];
    rules.extend(resources.devices().clone().unwrap_or_default());
    rules.extend([
        rule(c, None, None, "m"),
        rule(LinuxDeviceType::B, None, None, "m"),
        rule(c, Some(1), Some(3), "rwm"),
        rule(c, Some(1), Some(8), "rwm"),
        rule(c, Some(1), Some(7), "rwm"),
        rule(c, Some(5), Some(0), "rwm"),
        rule(c, Some(1), Some(5), "rwm"),
        rule(c, Some(1), Some(9), "rwm"),
        rule(c, Some(136), None, "rwm"),
        rule(c, Some(5), Some(2), "rwm"),
        rule(c, Some(10), Some(200), "rwm"),
    ]);
    resources.set_devices(Some(rules));
    resources
}

/// Undoes a half-made create: kills the init, removes its cgroup and state directory.
struct CreateGuard {
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    pid: Option<Pid>,
}

impl CreateGuard {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pid = None;
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cgroup) = &self.cgroup {
            for pid in cgroup.pids().unwrap_or_default() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = cgroup.destroy();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// runc's rule for ids, which shims and podman rely on: no path separators, no `..`.
fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_owned()))
    }
}

/// The runtime-spec state a hook or a seccomp agent gets.
fn hook_state(record: &ContainerState, status: Status, pid: i32) -> Vec<u8> {
    let doc = SpecState {
        oci_version: state::SPEC_VERSION,
        id: &record.id,
        status,
        pid,
        bundle: &record.bundle,
        annotations: &record.annotations,
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The document `state` prints (runc's fields and key order).
fn document(record: &ContainerState, status: Status, pid: i32) -> StateDocument<'_> {
    StateDocument {
        oci_version: state::SPEC_VERSION,
        id: &record.id,
        pid,
        status,
        bundle: &record.bundle,
        rootfs: &record.rootfs,
        created: &record.created,
        annotations: &record.annotations,
        owner: &record.owner,
    }
}

/// Hands a seccomp notify descriptor to the agent the spec names.
fn to_seccomp_agent(
    seccomp: Option<&LinuxSeccomp>,
    fd: &OwnedFd,
    pid: i32,
    state: &[u8],
) -> Result<()> {
    let Some(path) = seccomp.and_then(|s| s.listener_path().as_deref()) else {
        return Err(Error::Init(
            "sent a seccomp notify descriptor, but no listenerPath is set".into(),
        ));
    };
    let metadata = seccomp
        .and_then(|s| s.listener_metadata().as_deref())
        .unwrap_or("");
    Ok(seccomp::send_to_agent(
        path,
        fd,
        pid,
        metadata,
        state,
        state::SPEC_VERSION,
    )?)
}

/// Reads a non-blocking descriptor until end-of-file, waiting on it (for a bounded number of
/// bytes: an error message).
fn read_to_end(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(0) => return out,
            Ok(n) => {
                if out.len() < 64 * 1024 {
                    out.extend_from_slice(&buf[..n]);
                }
            }
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::NONE);
            }
            Err(Errno::EINTR) => {}
            Err(_) => return out,
        }
    }
}

/// The caller's user name, as runc records the owner.
fn owner_name() -> String {
    let uid = nix::unistd::getuid().as_raw();
    crate::process::passwd_entry("/etc/passwd", uid)
        .map_or_else(|| uid.to_string(), |(name, _)| name)
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    // The caller's path and no secret: readable as runc writes it.
    state::write_atomic(path, pid.to_string().as_bytes(), 0o644)
}

/// kill(2) with a signal number: 0 (the existence check) and the real-time signals included,
/// which nix's Signal cannot name.
fn send_signal(pid: i32, signal: i32) -> std::result::Result<(), Errno> {
    // SAFETY: kill takes two integers.
    Errno::result(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Waits until a process that is not our child is gone, on a pidfd (bounded: 10 s).
fn wait_gone(pid: i32, start_time: u64) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return;
    }
    // SAFETY: the kernel just returned this descriptor; we own it.
    let pidfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // The pid might have been reused between our check and pidfd_open.
    if state::process_stat(pid).map(|(_, s)| s) != Some(start_time) {
        return;
    }
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(10_000u16));
    // Our own child (run, or a create in this process): reap it so it leaves no zombie.
    let _ = waitpid(
        Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

/// Where the init sends its pty master (tx) and, when the runtime keeps the terminal itself,
/// where the runtime receives it (rx).
fn console_ends(
    terminal: bool,
    socket: Option<&Path>,
    keep_terminal: bool,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    if !terminal {
        return Ok((None, None));
    }
    if let Some(path) = socket {
        return Ok((Some(console::connect_socket(path)?), None));
    }
    if keep_terminal {
        let (tx, rx) = console::socket_pair()?;
        return Ok((Some(tx), Some(rx)));
    }
    Err(Error::InvalidConfig(
        "process.terminal is true but no --console-socket was given to receive the pty".into(),
    ))
}

/// Forks (with `flags`) straight into the cgroup directory `cgroup` where the kernel can;
/// otherwise plainly. Returns the child's pid (`None` in the child) and whether it was placed
/// in the cgroup.
///
/// # Safety
/// As [`syscall::clone_process`].
unsafe fn spawn(
    flags: libc::c_ulong,
    cgroup: Option<&OwnedFd>,
) -> std::result::Result<(Option<Pid>, bool), nix::errno::Errno> {
    use nix::errno::Errno;
    if let Some(dir) = cgroup {
        // SAFETY: forwarded from this function's own contract.
        match unsafe { syscall::clone_into_cgroup(flags, dir.as_fd()) } {
            Ok(child) => return Ok((child, true)),
            // Kernels before 5.7 (or sandboxes that filter clone3) refuse it: fall back.
            Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL | Errno::EPERM) => {}
            Err(e) => return Err(e),
        }
    }
    // SAFETY: forwarded from this function's own contract.
    unsafe { syscall::clone_process(flags) }.map(|child| (child, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for good in ["a", "abc-1.2_3+x", "A9"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "x\0"] {
            assert!(
                matches!(validate_id(bad), Err(Error::InvalidId(_))),
                "{bad:?}"
            );
        }
    }
}
