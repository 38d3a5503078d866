//! The child side: the container's init (after create's fork) and an exec'd process (after
//! exec's fork). Each step reports failure over the sync channel, then the child exits; the
//! runtime turns the report into the user's error and cleans up.
//!
//! The order of the last steps is the runtime-spec's and runc's, with the seccomp filter last
//! whatever `noNewPrivileges` says: limits, LSM label, descriptor hygiene, working directory,
//! user and capabilities, no_new_privs, then the filter, then Ready. Everything berth itself
//! does to prepare the process (close_range, getcwd, setresuid, capset...) therefore happens
//! before the filter, so a profile never has to allow the runtime's own syscalls. Without
//! no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: the process keeps it in its
//! effective and permitted sets until then (execve takes it away: it is in no set that execve
//! carries over). After Ready, as with runc, the init waits on the exec fifo and runs the
//! startContainer hooks under the filter, then execs.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::cgroups::{Cgroup, CgroupMountSource};
use crate::error::{Error, Result};
use crate::hooks::{self, DefaultEnv};
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
        Ok(ready) => match start_container(&args, ready) {
            Ok(never) => match never {},
            Err((e, fifo)) => {
                // The runtime that created us may be gone: `start` reads the failure from the
                // exec fifo, and the container's stderr gets it as with runc.
                let text = e.to_string();
                let _ = nix::unistd::write(&fifo, text.as_bytes());
                let _ = nix::unistd::write(std::io::stderr(), format!("{text}\n").as_bytes());
                // SAFETY: _exit ends this forked child without running the parent's atexit
                // handlers or flushing stdio buffers it shares with the runtime.
                unsafe { libc::_exit(1) }
            }
        },
        Err(e) => e,
    };
    args.channel.send_failure(&error.to_string());
    // SAFETY: as above.
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

/// What the init holds once Ready is sent: the program and its environment.
struct Ready {
    /// None for a pod's infra ([`crate::reaper::PAUSE_ANNOTATION`]), which runs no program.
    program: Option<CString>,
    env: Vec<CString>,
    /// /proc/self/fd of the host's procfs, kept when the container has no /proc of its own
    /// (no mount namespace): the exec fifo is reopened through it.
    host_fds: Option<OwnedFd>,
}

fn setup_container(a: &InitArgs<'_>) -> Result<Ready> {
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
    let own_mounts = a.ns_plan.new_mountns;
    // Outside a new user namespace the init is in its cgroup by now: it makes its cgroup
    // namespace at once and mounts everything in the spec's order, as runc does. An init in a
    // new user namespace, which could not join its v1 cgroups itself, is moved there by the
    // runtime meanwhile (a cgroup.procs write can wait out an RCU grace period, so the two
    // overlap instead of adding up): its cgroup namespace and cgroup mounts wait for
    // HooksDone, which also means the cgroup is joined.
    // Without a cgroup namespace the cgroup mounts bind the host's directories, which do not
    // depend on where the init is: in order too.
    let in_cgroup = !a.ns_plan.new_userns;
    let cgroups_in_order = in_cgroup || !a.ns_plan.new_cgroupns;
    if in_cgroup && a.ns_plan.new_cgroupns {
        unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| Error::sys("unshare the cgroup namespace", e))?;
    }
    if own_mounts {
        rootfs::prepare(&rootfs_plan, cgroups_in_order)?;
    }
    a.channel.send(Msg::RunCreateRuntimeHooks)?;
    a.channel.expect(Msg::HooksDone)?;
    if !in_cgroup && a.ns_plan.new_cgroupns {
        unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| Error::sys("unshare the cgroup namespace", e))?;
    }
    if own_mounts && !cgroups_in_order {
        rootfs::mount_cgroups(&rootfs_plan)?;
    }
    let hooks = spec.hooks().as_ref();
    if hooks.is_some_and(|h| h.create_container().is_some()) {
        // runc's init works from the rootfs when it runs them.
        nix::unistd::chdir(a.rootfs)
            .map_err(|e| Error::sys(format!("chdir to rootfs {}", a.rootfs.display()), e))?;
    }
    hooks::run(
        "createContainer",
        hooks.and_then(|h| h.create_container().as_ref()),
        &(a.state_json)(Status::Creating),
        DefaultEnv::Process(&a.plan.env),
    )?;
    let mut host_fds = None;
    if own_mounts {
        rootfs::pivot(a.rootfs, a.no_pivot)?;
    } else {
        // No mount namespace: the spec asks for no mount (spec.rs refused any), so the root
        // is entered without changing a mount of the host's.
        host_fds = Some(
            open(
                "/proc/self/fd",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::sys("open /proc/self/fd", e))?,
        );
        rootfs::enter_without_mounts(a.rootfs)?;
    }
    // As runc: the working directory is made if the image lacks it (before the root may turn
    // read-only).
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(&a.plan.cwd)
        .map_err(|e| Error::io(format!("create cwd {}", a.plan.cwd.display()), e))?;

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
        console::setup_in_container(socket.as_fd(), a.plan.uid, size, own_mounts)?;
    }
    if own_mounts {
        rootfs::finish_mounts(spec)?;
    }
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
    if own_mounts {
        rootfs::restrict_paths(spec)?;
    }
    let env = a.plan.final_env();
    finish_process(a.plan, a.preserve_fds)?;
    // From here the runtime may exit: the init must outlive it.
    syscall::prctl(libc::PR_SET_PDEATHSIG, 0)
        .map_err(|e| Error::sys("clear the parent-death signal", e))?;
    let program = if a.as_pause {
        None
    } else {
        Some(a.plan.resolve_program()?)
    };
    load_seccomp(a.plan, &a.channel)?;
    a.channel.send(Msg::Ready)?;
    Ok(Ready {
        program,
        env,
        host_fds,
    })
}

/// After Ready: wait for `start`, run the startContainer hooks, exec. A failure comes back
/// with the exec fifo, for `start` to read it.
fn start_container(
    a: &InitArgs<'_>,
    ready: Ready,
) -> std::result::Result<Infallible, (Error, OwnedFd)> {
    // Block until `start` opens the fifo for reading. The write end stays open (it is
    // close-on-exec) until the program is exec'd or the init dies: `start` reads to its end,
    // so poststart hooks run only once the program runs, as the spec wants.
    let reopened = match &ready.host_fds {
        Some(dir) => nix::fcntl::openat(
            dir,
            a.fifo.as_raw_fd().to_string().as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
        None => open(
            format!("/proc/self/fd/{}", a.fifo.as_raw_fd()).as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
    };
    drop(ready.host_fds);
    let fifo = match reopened {
        Ok(fd) => fd,
        Err(e) => {
            let error = Error::sys("open the exec fifo", e);
            let _ = nix::unistd::write(std::io::stderr(), format!("{error}\n").as_bytes());
            // SAFETY: _exit ends this forked child without running atexit handlers.
            unsafe { libc::_exit(1) }
        }
    };
    if let Err(e) = nix::unistd::write(&fifo, &[0]) {
        return Err((Error::sys("write the exec fifo", e), fifo));
    }
    let hooks = a.spec.hooks().as_ref();
    if let Err(e) = hooks::run(
        "startContainer",
        hooks.and_then(|h| h.start_container().as_ref()),
        &(a.state_json)(Status::Created),
        DefaultEnv::Process(&ready.env),
    ) {
        return Err((e, fifo));
    }
    let Some(program) = ready.program else {
        // A pod's infra runs no program; it closes every descriptor, the fifo's end included.
        crate::reaper::pause();
    };
    if a.as_init {
        return Err((crate::reaper::run(a.plan, &program, &ready.env), fifo));
    }
    Err((a.plan.exec(&program, &ready.env), fifo))
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
        console::setup_in_container(socket.as_fd(), a.plan.uid, a.console_size, false)?;
    }
    let env = a.plan.final_env();
    finish_process(a.plan, a.preserve_fds)?;
    if a.detach {
        syscall::prctl(libc::PR_SET_PDEATHSIG, 0)
            .map_err(|e| Error::sys("clear the parent-death signal", e))?;
    }
    let program = a.plan.resolve_program()?;
    load_seccomp(a.plan, &a.channel)?;
    a.channel.send(Msg::Ready)?;
    Err(a.plan.exec(&program, &env))
}

/// The steps shared by the init and exec, in runc's order, all before the seccomp filter:
/// limits and priorities, LSM label, descriptor hygiene, the working directory (entered as
/// root first, like runc), the user and capabilities, no_new_privs.
fn finish_process(plan: &ProcessPlan, preserve_fds: u32) -> Result<()> {
    plan.apply_limits()?;
    plan.apply_lsm()?;
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
    let entered = plan.enter_cwd_as_root()?;
    let keep_admin = plan.seccomp.is_some() && !plan.no_new_privileges;
    plan.switch_user(keep_admin)?;
    plan.enter_cwd(entered)?;
    plan.set_no_new_privileges()?;
    Ok(())
}

/// Loads the seccomp filter, the last step before Ready (init) or execve (exec). A filter with
/// SCMP_ACT_NOTIFY rules gives a descriptor: the runtime passes it to the seccomp agent, and
/// the init waits until it has, since the program must not run before an agent can answer.
fn load_seccomp(plan: &ProcessPlan, channel: &Channel) -> Result<()> {
    let Some(filter) = &plan.seccomp else {
        return Ok(());
    };
    let notify = filter.load()?;
    if !plan.no_new_privileges {
        plan.capabilities.settle();
    }
    if let Some(fd) = notify {
        channel.send_with_fd(Msg::SeccompNotify, fd.as_raw_fd())?;
        drop(fd);
        channel.expect(Msg::SeccompNotifyDone)?;
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
