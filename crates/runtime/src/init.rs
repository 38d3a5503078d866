//! The child side: the container's init (after create's fork) and an exec'd process (after
//! exec's fork). Each step reports failure over the sync channel, then the child exits; the
//! runtime turns the report into the user's error and cleans up.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::cgroups::{Cgroup, CgroupMountSource};
use crate::error::{Error, Result};
use crate::hooks;
use crate::namespaces::{self, NamespacePlan};
use crate::process::ProcessPlan;
use crate::rootfs::{self, RootfsPlan};
use crate::state::Status;
use crate::sync::{Channel, Msg};
use crate::{console, syscall};

pub(crate) struct InitArgs<'a> {
    pub channel: Channel,
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub ns_plan: &'a NamespacePlan,
    pub plan: &'a ProcessPlan,
    pub cgroup_sources: &'a [CgroupMountSource],
    /// The cgroup whose v1 hierarchies the init joins by itself, at once.
    pub join_v1: Option<&'a Cgroup>,
    pub fifo: &'a OwnedFd,
    pub console: Option<&'a OwnedFd>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub idmapped: &'a [(usize, OwnedFd)],
    /// Stay as pid 1 and fork the program (the spec's init annotation).
    pub as_init: bool,
    /// The process is a pod's infra ([`crate::reaper::PAUSE_ANNOTATION`]): no program is run.
    pub as_pause: bool,
    /// The state document for hooks run from the init, with the init's host pid.
    pub state_json: &'a dyn Fn(Status) -> Vec<u8>,
}

pub(crate) struct ExecArgs<'a> {
    pub channel: Channel,
    pub joins: &'a [(CloneFlags, OwnedFd, PathBuf)],
    /// The container's cgroup, whose v1 hierarchies the process joins by itself, at once.
    pub join_v1: Option<&'a Cgroup>,
    pub plan: &'a ProcessPlan,
    pub console: Option<&'a OwnedFd>,
    /// The terminal's rows and columns (process.json's consoleSize), set before the program
    /// runs so that it never sees another size.
    pub console_size: Option<(u16, u16)>,
    pub preserve_fds: u32,
    pub detach: bool,
}

/// The init's whole life before execve. Never returns.
pub(crate) fn run(args: InitArgs<'_>) -> ! {
    let error = match setup_container(&args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    args.channel.send_failure(&error.to_string());
    // SAFETY: _exit ends this forked child without running the parent's atexit handlers or
    // flushing stdio buffers it shares with the runtime.
    unsafe { libc::_exit(1) }
}

/// An exec'd process's life before execve. Never returns.
pub(crate) fn exec(args: ExecArgs<'_>) -> ! {
    let error = match setup_exec(&args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    args.channel.send_failure(&error.to_string());
    // SAFETY: as in `run`.
    unsafe { libc::_exit(1) }
}

fn setup_container(a: &InitArgs<'_>) -> Result<Infallible> {
    guard_against_parent_death()?;
    container_umask();
    if let Some(cgroup) = a.join_v1 {
        cgroup.join_v1_self()?;
    }
    a.channel.expect(Msg::Proceed)?;
    let spec = a.spec;
    if a.ns_plan.new_userns {
        become_root_in_userns()?;
    }
    a.ns_plan.enter_in_init()?;
    let rootfs_plan = RootfsPlan {
        spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        cgroup_sources: a.cgroup_sources,
        in_userns: a.ns_plan.new_userns,
        cgroupns: a.ns_plan.new_cgroupns,
        idmapped: a.idmapped,
    };
    // An init in a new user namespace, which could not join its v1 cgroups itself, is moved
    // there by the runtime meanwhile (a cgroup.procs write can wait out an RCU grace
    // period): the two overlap instead of adding up.
    rootfs::prepare(&rootfs_plan)?;
    a.channel.send(Msg::RunCreateRuntimeHooks)?;
    // HooksDone also means the cgroup is joined: only now can the cgroup namespace be made,
    // with that cgroup as its root.
    a.channel.expect(Msg::HooksDone)?;
    if a.ns_plan.new_cgroupns {
        unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| Error::sys("unshare the cgroup namespace", e))?;
    }
    rootfs::mount_cgroups(&rootfs_plan)?;
    let hooks = spec.hooks().as_ref();
    hooks::run(
        "createContainer",
        hooks.and_then(|h| h.create_container().as_ref()),
        &(a.state_json)(Status::Creating),
    )?;
    rootfs::pivot(a.rootfs, a.no_pivot)?;

    if let Some(name) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(name)
            .map_err(|e| Error::sys(format!("sethostname {name:?}"), e))?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        set_domainname(name)?;
    }
    for (key, value) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value)
            .map_err(|e| Error::io(format!("sysctl {key}={value:?} ({path})"), e))?;
    }
    if let Some(socket) = a.console {
        let size = spec
            .process()
            .as_ref()
            .and_then(|p| p.console_size())
            .map(|b| {
                (
                    u16::try_from(b.height()).unwrap_or(u16::MAX),
                    u16::try_from(b.width()).unwrap_or(u16::MAX),
                )
            });
        console::setup_in_container(socket.as_fd(), a.plan.uid, size)?;
    }
    rootfs::finish(spec)?;
    finish_process(a.plan, a.preserve_fds)?;
    // From here the runtime may exit: the init must outlive it.
    syscall::prctl(libc::PR_SET_PDEATHSIG, 0)
        .map_err(|e| Error::sys("clear the parent-death signal", e))?;
    let program = if a.as_pause {
        None
    } else {
        Some(a.plan.resolve_program()?)
    };
    a.channel.send(Msg::Ready)?;

    // Block until `start` opens the fifo for reading.
    let fifo_path = format!("/proc/self/fd/{}", a.fifo.as_raw_fd());
    let fifo = open(
        fifo_path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open the exec fifo", e))?;
    nix::unistd::write(&fifo, &[0]).map_err(|e| Error::sys("write the exec fifo", e))?;
    drop(fifo);
    hooks::run(
        "startContainer",
        hooks.and_then(|h| h.start_container().as_ref()),
        &(a.state_json)(Status::Created),
    )?;
    load_late_seccomp(a.plan)?;
    let Some(program) = program else {
        crate::reaper::pause();
    };
    if a.as_init {
        return Err(crate::reaper::run(a.plan, &program));
    }
    Err(a.plan.exec(&program))
}

fn setup_exec(a: &ExecArgs<'_>) -> Result<Infallible> {
    guard_against_parent_death()?;
    container_umask();
    if let Some(cgroup) = a.join_v1 {
        cgroup.join_v1_self()?;
    }
    a.channel.expect(Msg::Proceed)?;
    // The user namespace last: while still the host's root, this process may join any
    // namespace, also one its container's user namespace does not own (a network namespace an
    // engine made); once in the user namespace, only those it owns.
    let (user, others): (Vec<_>, Vec<_>) = a
        .joins
        .iter()
        .partition(|(flag, _, _)| *flag == CloneFlags::CLONE_NEWUSER);
    for (flag, fd, path) in others.into_iter().chain(user) {
        namespaces::join_fd(*flag, fd, path)?;
        if *flag == CloneFlags::CLONE_NEWUSER {
            become_root_in_userns()?;
        }
    }
    if let Some(socket) = a.console {
        console::setup_in_container(socket.as_fd(), a.plan.uid, a.console_size)?;
    }
    finish_process(a.plan, a.preserve_fds)?;
    if a.detach {
        syscall::prctl(libc::PR_SET_PDEATHSIG, 0)
            .map_err(|e| Error::sys("clear the parent-death signal", e))?;
    }
    let program = a.plan.resolve_program()?;
    a.channel.send(Msg::Ready)?;
    load_late_seccomp(a.plan)?;
    Err(a.plan.exec(&program))
}

/// The steps shared by the init and exec: limits, LSM label, seccomp (early, when it needs
/// CAP_SYS_ADMIN), the user and capabilities, the working directory, descriptor hygiene.
fn finish_process(plan: &ProcessPlan, preserve_fds: u32) -> Result<()> {
    plan.apply_limits()?;
    plan.apply_lsm()?;
    if !plan.no_new_privileges {
        // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it before the
        // capabilities are dropped. The filter must then allow the few syscalls left to us.
        if let Some(filter) = &plan.seccomp {
            filter.load()?;
        }
    }
    plan.switch_user()?;
    // No descriptor of the runtime's may reach the container, and no directory descriptor may
    // be open while the cwd is entered (the CVE-2024-21626 class): all of ours are
    // close-on-exec and none is a directory; mark every other one close-on-exec too.
    syscall::cloexec_from(3 + preserve_fds)
        .map_err(|e| Error::sys("mark descriptors close-on-exec", e))?;
    for fd in 3..3 + preserve_fds {
        let fd = i32::try_from(fd).unwrap_or(i32::MAX);
        // SAFETY: F_SETFD on a descriptor number; a closed one just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    plan.enter_cwd()?;
    plan.set_no_new_privileges()?;
    Ok(())
}

fn load_late_seccomp(plan: &ProcessPlan) -> Result<()> {
    if plan.no_new_privileges {
        if let Some(filter) = &plan.seccomp {
            filter.load()?;
        }
    }
    Ok(())
}

/// The init must not outlive a runtime that died mid-setup, and nothing in the container may
/// ptrace it or open its /proc files while it still is berth.
fn guard_against_parent_death() -> Result<()> {
    syscall::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64)
        .map_err(|e| Error::sys("set the parent-death signal", e))?;
    syscall::prctl(libc::PR_SET_DUMPABLE, 0)
        .map_err(|e| Error::sys("make the init non-dumpable", e))?;
    Ok(())
}

fn become_root_in_userns() -> Result<()> {
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .map_err(|e| Error::sys("setresgid 0 in the user namespace (is gid 0 mapped?)", e))?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .map_err(|e| Error::sys("setresuid 0 in the user namespace (is uid 0 mapped?)", e))?;
    // The supplementary groups came from the runtime's caller (the host's root, often with
    // group 0): kept, they would open to the remapped root whatever those groups may reach
    // on the host while it builds the root (bind sources, the bundle's directories). A user
    // namespace whose setgroups is denied (rootless) keeps its caller's own groups.
    match nix::unistd::setgroups(&[]) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => Ok(()),
        Err(e) => Err(Error::sys(
            "drop the supplementary groups in the user namespace",
            e,
        )),
    }
}

/// The umask of what the init makes in the root and of the container's process: 0022, as
/// runc gives when the spec sets none (the spec's own is applied later), whatever stricter
/// one the runtime's caller runs under (berth's daemon and monitors run under 027).
fn container_umask() {
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
}

fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes for the duration of the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret != 0 {
        return Err(Error::sys(
            format!("setdomainname {name:?}"),
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}
