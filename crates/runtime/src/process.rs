//! The container's process as the spec describes it (`process`): prepared in the runtime from
//! config.json, then applied step by step in the init or exec child right before execve.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    MemoryPolicyFlagType, MemoryPolicyModeType, PosixRlimitType, Process,
};

use crate::capabilities::CapabilityPlan;
use crate::error::{Error, Result};
use crate::seccomp::Filter;
use crate::syscall;

/// Everything about the process, turned into the values the syscalls take.
pub(crate) struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    path_var: Option<String>,
    pub has_home: bool,
    pub cwd: PathBuf,
    pub uid: Uid,
    pub gid: Gid,
    additional_gids: Vec<Gid>,
    umask: Option<u32>,
    rlimits: Vec<(PosixRlimitType, libc::rlimit)>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub capabilities: CapabilityPlan,
    pub seccomp: Option<Filter>,
    io_priority: Option<u64>,
    scheduler: Option<SchedAttr>,
    /// The LSM label to put on the exec, and the file to write it to, when the host has that LSM.
    lsm_exec: Option<(&'static str, String)>,
    pub terminal: bool,
    /// `linux.personality`: the execution domain (personality(2)).
    personality: Option<libc::c_ulong>,
    /// `linux.memoryPolicy`: set_mempolicy(2)'s mode (with its flags) and node mask.
    memory_policy: Option<(i32, Vec<libc::c_ulong>)>,
}

impl std::fmt::Debug for ProcessPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPlan")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

impl ProcessPlan {
    /// Builds the plan; warnings (ignored capabilities, an LSM the host lacks) go to `warn`.
    /// `linux` gives the container-wide settings every process gets (seccomp, personality,
    /// memory policy).
    pub(crate) fn new(
        process: &Process,
        linux: Option<&Linux>,
        warn: &mut dyn FnMut(String),
    ) -> Result<ProcessPlan> {
        let seccomp = linux.and_then(|l| l.seccomp().as_ref());
        let cstr = |s: &str, what: &str| {
            CString::new(s)
                .map_err(|_| Error::InvalidConfig(format!("{what} {s:?} contains a NUL byte")))
        };
        let args = process
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| cstr(a, "process.args entry"))
            .collect::<Result<Vec<_>>>()?;
        let env_list = process.env().as_deref().unwrap_or_default();
        let env = env_list
            .iter()
            .map(|e| cstr(e, "process.env entry"))
            .collect::<Result<Vec<_>>>()?;
        let path_var = env_list
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .map(str::to_owned);
        let has_home = env_list.iter().any(|e| e.starts_with("HOME="));
        let user = process.user();
        let (capabilities, unknown) = CapabilityPlan::new(process.capabilities().as_ref())?;
        if !unknown.is_empty() {
            warn(format!(
                "ignoring unknown or unavailable capabilities: [{}]",
                unknown.join(" ")
            ));
        }
        let rlimits = process
            .rlimits()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                (
                    r.typ(),
                    libc::rlimit {
                        rlim_cur: r.soft(),
                        rlim_max: r.hard(),
                    },
                )
            })
            .collect();
        let io_priority = process.io_priority().as_ref().map(|p| {
            let class: u64 = match p.class() {
                IOPriorityClass::IoprioClassRt => 1,
                IOPriorityClass::IoprioClassBe => 2,
                IOPriorityClass::IoprioClassIdle => 3,
            };
            (class << 13) | (p.priority().clamp(0, 7) as u64)
        });
        let scheduler = process.scheduler().as_ref().map(|s| SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: match s.policy() {
                LinuxSchedulerPolicy::SchedOther => 0,
                LinuxSchedulerPolicy::SchedFifo => 1,
                LinuxSchedulerPolicy::SchedRr => 2,
                LinuxSchedulerPolicy::SchedBatch => 3,
                LinuxSchedulerPolicy::SchedIso => 4,
                LinuxSchedulerPolicy::SchedIdle => 5,
                LinuxSchedulerPolicy::SchedDeadline => 6,
            },
            flags: s
                .flags()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .fold(0, |acc, f| {
                    acc | match f {
                        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
                    }
                }),
            nice: s.nice().unwrap_or(0),
            priority: u32::try_from(s.priority().unwrap_or(0)).unwrap_or(0),
            runtime: s.runtime().unwrap_or(0),
            deadline: s.deadline().unwrap_or(0),
            period: s.period().unwrap_or(0),
        });
        let lsm_exec = lsm_exec_label(process)?;
        let personality = linux
            .and_then(|l| l.personality().as_ref())
            .map(|p| {
                if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                    return Err(Error::InvalidConfig(
                        "linux.personality.flags: no personality flags are defined by the \
                         runtime-spec yet; leave the list empty"
                            .into(),
                    ));
                }
                Ok(match p.domain() {
                    LinuxPersonalityDomain::PerLinux => 0x0000,
                    LinuxPersonalityDomain::PerLinux32 => 0x0008,
                })
            })
            .transpose()?;
        let memory_policy = linux
            .and_then(|l| l.memory_policy().as_ref())
            .map(memory_policy)
            .transpose()?;
        Ok(ProcessPlan {
            args,
            env,
            path_var,
            has_home,
            cwd: process.cwd().clone(),
            uid: Uid::from_raw(user.uid()),
            gid: Gid::from_raw(user.gid()),
            additional_gids: user
                .additional_gids()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|g| Gid::from_raw(*g))
                .collect(),
            umask: user.umask(),
            rlimits,
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            oom_score_adj: process.oom_score_adj(),
            capabilities,
            seccomp: seccomp.map(Filter::compile).transpose()?,
            io_priority,
            scheduler,
            lsm_exec,
            terminal: process.terminal().unwrap_or(false),
            personality,
            memory_policy,
        })
    }

    /// Limits and priorities, applied while the process still has its privileges.
    pub(crate) fn apply_limits(&self) -> Result<()> {
        for (typ, limit) in &self.rlimits {
            // SAFETY: `limit` is a valid rlimit; the resource number comes from the spec's enum.
            let ret = unsafe { libc::setrlimit(rlimit_resource(*typ), limit) };
            if ret != 0 {
                let errno = Errno::last();
                let hint = if errno == Errno::EPERM {
                    " (a hard limit may not be raised above the host's without CAP_SYS_RESOURCE)"
                } else {
                    ""
                };
                return Err(Error::sys(
                    format!(
                        "setrlimit {typ:?} soft={} hard={}{hint}",
                        limit.rlim_cur, limit.rlim_max
                    ),
                    errno,
                ));
            }
        }
        // The value inherited from the runtime often is the one asked for: then nothing is
        // written (in a user namespace the non-dumpable init cannot open its own /proc files).
        let current = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok());
        if let Some(adj) = self.oom_score_adj.filter(|adj| Some(*adj) != current) {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
                Error::io(
                    format!("set oom_score_adj to {adj} (lowering it needs CAP_SYS_RESOURCE)"),
                    e,
                )
            })?;
        }
        if let Some(prio) = self.io_priority {
            const IOPRIO_WHO_PROCESS: i32 = 1;
            // SAFETY: ioprio_set takes three integers.
            let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
            if ret != 0 {
                return Err(Error::sys(format!("ioprio_set {prio:#x}"), Errno::last()));
            }
        }
        if let Some(persona) = self.personality {
            // SAFETY: personality takes one integer argument.
            if unsafe { libc::personality(persona) } < 0 {
                return Err(Error::sys(
                    format!("personality {persona:#x}"),
                    Errno::last(),
                ));
            }
        }
        if let Some((mode, nodes)) = &self.memory_policy {
            let bits = nodes.len() * libc::c_ulong::BITS as usize;
            // set_mempolicy's maxnode counts one more than the mask's bits (a kernel quirk
            // every libnuma caller follows).
            let maxnode = if nodes.is_empty() { 0 } else { bits + 1 };
            let mask = if nodes.is_empty() {
                std::ptr::null()
            } else {
                nodes.as_ptr()
            };
            // SAFETY: `mask` points at `nodes`, `bits` bits long, for the duration of the call.
            let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, *mode, mask, maxnode) };
            if ret != 0 {
                return Err(Error::sys(
                    format!("set_mempolicy mode {mode:#x} (linux.memoryPolicy)"),
                    Errno::last(),
                ));
            }
        }
        if let Some(attr) = &self.scheduler {
            // SAFETY: `attr` is a sched_attr of the size recorded in its `size` field.
            let ret =
                unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) };
            if ret != 0 {
                return Err(Error::sys(
                    format!(
                        "sched_setattr policy {} priority {}",
                        attr.policy, attr.priority
                    ),
                    Errno::last(),
                ));
            }
        }
        Ok(())
    }

    /// Becomes the spec's user with exactly the spec's capabilities, plus CAP_SYS_ADMIN in
    /// the effective and permitted sets when `keep_admin` (a seccomp filter is yet to be
    /// loaded without no_new_privs; execve drops it again: no bounding, inheritable or ambient
    /// set holds it). The umask is the spec's, else 0022 as runc sets it.
    pub(crate) fn switch_user(&self, keep_admin: bool) -> Result<()> {
        self.capabilities.drop_bounding()?;
        CapabilityPlan::keep_across_setuid()?;
        nix::unistd::setgroups(&self.additional_gids)
            .map_err(|e| Error::sys(format!("setgroups {:?}", self.additional_gids), e))?;
        nix::unistd::setresgid(self.gid, self.gid, self.gid)
            .map_err(|e| Error::sys(format!("setresgid {}", self.gid), e))?;
        nix::unistd::setresuid(self.uid, self.uid, self.uid)
            .map_err(|e| Error::sys(format!("setresuid {}", self.uid), e))?;
        self.capabilities.apply(keep_admin)?;
        let mask = self.umask.unwrap_or(0o022);
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
        Ok(())
    }

    /// Enters the working directory while still root, as runc does first: a directory the
    /// user could not enter (a 0700 /root for a non-root user) still becomes its cwd. Returns
    /// false when root was refused too (EACCES, as on a root-squashed mount): then
    /// [`ProcessPlan::enter_cwd`] tries again as the user.
    pub(crate) fn enter_cwd_as_root(&self) -> Result<bool> {
        match nix::unistd::chdir(&self.cwd) {
            Ok(()) => Ok(true),
            Err(Errno::EACCES | Errno::EPERM) => Ok(false),
            Err(e) => Err(Error::sys(
                format!("chdir to cwd {}", self.cwd.display()),
                e,
            )),
        }
    }

    /// Enters the working directory (unless `entered` already) and proves it lies inside the
    /// container: a leaked host directory descriptor used as cwd (the CVE-2024-21626 class)
    /// would show as unreachable.
    pub(crate) fn enter_cwd(&self, entered: bool) -> Result<()> {
        if !entered {
            nix::unistd::chdir(&self.cwd)
                .map_err(|e| Error::sys(format!("chdir to cwd {}", self.cwd.display()), e))?;
        }
        let cwd = nix::unistd::getcwd().map_err(|e| Error::sys("getcwd", e))?;
        if !cwd.is_absolute() || cwd.as_os_str().as_bytes().starts_with(b"(unreachable)") {
            return Err(Error::InvalidConfig(format!(
                "cwd {} resolves outside the container",
                self.cwd.display()
            )));
        }
        Ok(())
    }

    /// The program to exec, looked up in the spec's PATH inside the container, as runc does.
    pub(crate) fn resolve_program(&self) -> Result<CString> {
        let arg0 = self
            .args
            .first()
            .ok_or_else(|| Error::InvalidConfig("process.args is empty".into()))?;
        let name = Path::new(std::ffi::OsStr::from_bytes(arg0.as_bytes()));
        if name.as_os_str().as_bytes().contains(&b'/') {
            // runc's checks and words, before Ready: dockerd and the docker CLI map them to
            // the exit codes 127 and 126.
            return match std::fs::metadata(name) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Exec(format!(
                    "{:?}: stat {}: no such file or directory",
                    name.display().to_string(),
                    name.display()
                ))),
                Ok(m)
                    if m.is_dir()
                        || nix::unistd::access(name, nix::unistd::AccessFlags::X_OK).is_err() =>
                {
                    Err(Error::Exec(format!(
                        "{:?}: permission denied",
                        name.display().to_string()
                    )))
                }
                _ => Ok(arg0.clone()),
            };
        }
        let search = self
            .path_var
            .as_deref()
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        for dir in search.split(':').filter(|d| !d.is_empty()) {
            let candidate = Path::new(dir).join(name);
            if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok()
                && candidate.is_file()
            {
                return CString::new(candidate.as_os_str().as_bytes())
                    .map_err(|_| Error::InvalidConfig("PATH contains a NUL byte".into()));
            }
        }
        Err(Error::Exec(format!(
            "{:?}: executable file not found in $PATH",
            name.display().to_string()
        )))
    }

    /// Labels the coming exec with the spec's AppArmor profile or SELinux label.
    pub(crate) fn apply_lsm(&self) -> Result<()> {
        if let Some((file, label)) = &self.lsm_exec {
            std::fs::write(file, label)
                .map_err(|e| Error::io(format!("write {label:?} to {file}"), e))?;
        }
        Ok(())
    }

    pub(crate) fn set_no_new_privileges(&self) -> Result<()> {
        if self.no_new_privileges {
            syscall::prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
                .map_err(|e| Error::sys("prctl PR_SET_NO_NEW_PRIVS", e))?;
        }
        Ok(())
    }

    /// The program's environment: the spec's, plus HOME from the container's /etc/passwd
    /// (or `/`) when the spec sets none, as runc adds it. Read inside the container's root.
    pub(crate) fn final_env(&self) -> Vec<CString> {
        let mut env = self.env.clone();
        if !self.has_home {
            let home = passwd_entry("/etc/passwd", self.uid.as_raw())
                .map_or_else(|| "/".into(), |(_, home)| home);
            if let Ok(var) = CString::new(format!("HOME={home}")) {
                env.push(var);
            }
        }
        env
    }

    /// Replaces the process with the container's program. Returns only on failure.
    pub(crate) fn exec(&self, program: &CString, env: &[CString]) -> Error {
        reset_signal_dispositions();
        match nix::unistd::execve(program, &self.args, env) {
            Err(e) => Error::sys(format!("exec {:?}", program), e),
            Ok(never) => match never {},
        }
    }
}

/// Every signal back to its default action, and none blocked. An ignored or blocked signal
/// stays so across execve, and the runtime's process may ignore some (Rust's start-up ignores
/// SIGPIPE; a daemon may ignore SIGQUIT or glibc's internal 32 and 33) and blocks those it
/// forwards while `run` or `exec` waits: the container's program must start as a fresh process
/// would. Raw rt_sigaction, since glibc refuses to touch 32 and 33.
fn reset_signal_dispositions() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    // SAFETY: a zeroed sigaction is SIG_DFL with no flags and an empty mask; rt_sigaction reads
    // it during the call only. Numbers the kernel refuses (SIGKILL, SIGSTOP) fail harmlessly.
    unsafe {
        let dfl: libc::sigaction = std::mem::zeroed();
        for sig in 1..=64 {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const libc::sigaction,
                std::ptr::null_mut::<libc::sigaction>(),
                8usize,
            );
        }
    }
}

/// set_mempolicy's mode word and node mask for `linux.memoryPolicy`.
fn memory_policy(
    policy: &oci_spec::runtime::LinuxMemoryPolicy,
) -> Result<(i32, Vec<libc::c_ulong>)> {
    let mode = match policy.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    let mut flags = 0;
    for flag in policy.flags().as_deref().unwrap_or_default() {
        flags |= match flag {
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        };
    }
    let mut mask: Vec<libc::c_ulong> = Vec::new();
    let nodes = policy.nodes().as_deref().unwrap_or("").trim();
    let bad =
        |why: &str| Error::InvalidConfig(format!("linux.memoryPolicy.nodes {nodes:?}: {why}"));
    for part in nodes.split(',').filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let first: usize = first.trim().parse().map_err(|_| bad("not a node list"))?;
        let last: usize = last.trim().parse().map_err(|_| bad("not a node list"))?;
        if first > last || last >= 4096 {
            return Err(bad("node ranges must ascend and stay below 4096"));
        }
        for node in first..=last {
            let word = node / libc::c_ulong::BITS as usize;
            if mask.len() <= word {
                mask.resize(word + 1, 0);
            }
            mask[word] |= 1 << (node % libc::c_ulong::BITS as usize);
        }
    }
    let empty = mask.is_empty();
    match mode {
        // MPOL_DEFAULT and MPOL_LOCAL take no nodes; the kernel refuses a mask with EINVAL.
        0 | 4 if !empty => return Err(bad("MPOL_DEFAULT and MPOL_LOCAL take no nodes")),
        1 | 2 | 3 | 5 | 6 if empty => return Err(bad("this mode needs nodes")),
        _ => {}
    }
    Ok((mode | flags, mask))
}

/// The name and home directory of `uid` in the passwd file at `path`, read directly: an NSS
/// lookup would load modules (milliseconds on every create) and, in the container, the host's.
pub(crate) fn passwd_entry(path: &str, uid: u32) -> Option<(String, String)> {
    let passwd = std::fs::read_to_string(path).ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid))
            .then(|| (f[0].to_owned(), f[5].to_owned()))
    })
}

/// The file to write the exec label to, for the LSM the spec names. A label for an LSM the host
/// does not run is refused, as runc refuses it: the process would run without the confinement
/// it asked for.
fn lsm_exec_label(process: &Process) -> Result<Option<(&'static str, String)>> {
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        if !enabled {
            return Err(Error::InvalidConfig(format!(
                "apparmor profile {profile:?} is specified in config, but AppArmor is not enabled \
                 on this host"
            )));
        }
        let file = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        return Ok(Some((file, format!("exec {profile}"))));
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if !Path::new("/sys/fs/selinux/enforce").exists() {
            return Err(Error::InvalidConfig(format!(
                "selinux label {label:?} is specified in config, but SELinux is disabled or not \
                 supported"
            )));
        }
        return Ok(Some(("/proc/self/attr/exec", label.to_owned())));
    }
    Ok(None)
}

fn rlimit_resource(typ: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match typ {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}
