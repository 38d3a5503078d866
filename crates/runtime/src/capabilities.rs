//! The OCI `process.capabilities` object, applied in the container's init right before execve.
//!
//! The sets are turned into bitmasks in the parent ([`CapabilityPlan::new`]) so that the forked
//! child only issues syscalls: no allocation, no parsing. The child's sequence is
//!
//! 1. [`CapabilityPlan::drop_bounding`] while still uid 0 with `CAP_SETPCAP`;
//! 2. [`CapabilityPlan::keep_across_setuid`], then `setresuid`/`setresgid` to the process user;
//! 3. [`CapabilityPlan::apply`]: effective, permitted and inheritable (capset), then ambient.

use std::io;

use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

const CAP_LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";

/// CAP_SYS_ADMIN's number: loading a seccomp filter without no_new_privs needs it.
const CAP_SYS_ADMIN: u32 = 21;

/// capset(2) version 3: two 32-bit words per set, i.e. 64-bit masks.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Capability names by number, as in `linux/capability.h`.
pub(crate) const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Why a capability set could not be computed or applied.
///
/// Variants built in the forked child carry only numbers and errnos, so that constructing them
/// does not allocate; the message is formatted by whoever reports it.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    /// The kernel's highest capability number could not be read.
    #[error("read {CAP_LAST_CAP}: {source}")]
    ReadLastCap { source: io::Error },
    /// The kernel's highest capability number is not a number.
    #[error("parse {CAP_LAST_CAP}: {content:?} is not a capability number")]
    ParseLastCap { content: String },
    /// A capability could not be dropped from the bounding set.
    #[error("drop {} from the bounding set: {errno}{}", display_name(*cap), setpcap_hint(*errno))]
    DropBounding { cap: u32, errno: Errno },
    /// The keep-capabilities flag, which carries the permitted set across the uid change, could
    /// not be set or cleared.
    #[error("prctl(PR_SET_KEEPCAPS, {}): {errno}", u8::from(*keep))]
    KeepCaps { keep: bool, errno: Errno },
    /// The kernel refused the effective, permitted and inheritable sets.
    #[error(
        "capset(effective={effective:#x}, permitted={permitted:#x}, inheritable={inheritable:#x}): \
         {errno}{}",
        capset_hint(*errno)
    )]
    Capset {
        effective: u64,
        permitted: u64,
        inheritable: u64,
        errno: Errno,
    },
    /// The ambient set could not be emptied before raising the requested capabilities.
    #[error("clear the ambient capability set: {errno}")]
    ClearAmbient { errno: Errno },
    /// A capability could not be raised in the ambient set.
    #[error(
        "raise {} in the ambient set: {errno} (an ambient capability must also be in the \
         permitted and inheritable sets)",
        display_name(*cap)
    )]
    RaiseAmbient { cap: u32, errno: Errno },
}

/// The five capability sets of `process.capabilities` as bitmasks, ready to be applied in the
/// container's init without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapabilityPlan {
    /// `None` only for a plan that changes nothing (tests); a config without
    /// `process.capabilities` gets empty sets.
    sets: Option<Sets>,
    /// Highest capability number the kernel knows (`cap_last_cap`), at most 63.
    last_cap: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sets {
    bounding: u64,
    effective: u64,
    inheritable: u64,
    permitted: u64,
    ambient: u64,
}

#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

impl CapabilityPlan {
    /// Computes the bitmask of each set. Capabilities above `/proc/sys/kernel/cap_last_cap`, and
    /// ambient ones the kernel would refuse to raise, are left out of the plan; the second element
    /// holds a warning for each, for the caller to show (runc warns and ignores them too). A set
    /// missing from `caps` is empty.
    pub fn new(
        caps: Option<&LinuxCapabilities>,
    ) -> Result<(CapabilityPlan, Vec<String>), CapabilityError> {
        // No `capabilities` object means no capability at all, bounding set included, as runc
        // reads it: an empty object, not "leave them as they are".
        let caps = caps.cloned().unwrap_or_else(|| {
            let mut none = LinuxCapabilities::default();
            none.set_bounding(None)
                .set_effective(None)
                .set_inheritable(None)
                .set_permitted(None)
                .set_ambient(None);
            none
        });
        Ok(Self::with_last_cap(&caps, read_last_cap()?))
    }

    /// Step 1, while still uid 0 with `CAP_SETPCAP`: drops every capability the kernel knows
    /// that is not in the bounding set.
    pub fn drop_bounding(&self) -> Result<(), CapabilityError> {
        let Some(sets) = self.sets else {
            return Ok(());
        };
        for cap in 0..=self.last_cap {
            if sets.bounding & bit(cap) != 0 {
                continue;
            }
            // Dropping needs CAP_SETPCAP even for a capability that is already gone; reading
            // first lets a runtime that lacks it (nested in another container) still succeed
            // when its bounding set is already narrow enough.
            // SAFETY: PR_CAPBSET_READ takes one integer argument and touches no memory of ours.
            let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap)) };
            let present = Errno::result(present)
                .map_err(|errno| CapabilityError::DropBounding { cap, errno })?;
            if present == 0 {
                continue;
            }
            // SAFETY: PR_CAPBSET_DROP takes one integer argument and touches no memory of ours.
            let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap)) };
            Errno::result(ret).map_err(|errno| CapabilityError::DropBounding { cap, errno })?;
        }
        Ok(())
    }

    /// Step 2, right before `setresuid`: keeps the permitted set when the uid changes from 0 to
    /// another, which would otherwise empty it.
    pub fn keep_across_setuid() -> Result<(), CapabilityError> {
        set_keepcaps(true)
    }

    /// Step 3, after `setresuid`: sets effective, permitted and inheritable, then the ambient set,
    /// then clears the keep-capabilities flag again so it does not leak into the container.
    /// With `keep_admin`, CAP_SYS_ADMIN stays effective and permitted on top of the spec's sets,
    /// for a seccomp filter loaded later without no_new_privs ([`CapabilityPlan::settle`] and
    /// execve take it away).
    pub fn apply(&self, keep_admin: bool) -> Result<(), CapabilityError> {
        if let Some(mut sets) = self.sets {
            if keep_admin {
                sets.effective |= bit(CAP_SYS_ADMIN);
                sets.permitted |= bit(CAP_SYS_ADMIN);
            }
            capset(&sets)?;
            // The ambient set may hold leftovers from the runtime's own environment; the spec's
            // list is the whole set, not an addition.
            // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integer arguments only (the unused ones
            // must be zero) and touches no memory of ours.
            let ret = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            };
            Errno::result(ret).map_err(|errno| CapabilityError::ClearAmbient { errno })?;
            for cap in 0..=self.last_cap {
                if sets.ambient & bit(cap) == 0 {
                    continue;
                }
                // SAFETY: PR_CAP_AMBIENT_RAISE takes integer arguments only (the unused ones
                // must be zero) and touches no memory of ours.
                let ret = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        libc::c_ulong::from(cap),
                        0 as libc::c_ulong,
                        0 as libc::c_ulong,
                    )
                };
                Errno::result(ret).map_err(|errno| CapabilityError::RaiseAmbient { cap, errno })?;
            }
        }
        set_keepcaps(false)
    }

    /// After a seccomp filter was loaded with the CAP_SYS_ADMIN [`CapabilityPlan::apply`] kept:
    /// the spec's exact sets again. Best effort: a filter may refuse capset, and execve drops
    /// the extra capability anyway (it is in no set that execve carries over).
    pub fn settle(&self) {
        if let Some(sets) = self.sets {
            let _ = capset(&sets);
        }
    }

    fn with_last_cap(caps: &LinuxCapabilities, last_cap: u32) -> (CapabilityPlan, Vec<String>) {
        // The masks are 64 bits wide, as is capset v3; a kernel with more capabilities would need
        // a new capset version anyway.
        let last_cap = last_cap.min(63);
        let mut unknown = 0u64;
        let mut mask = |set: &Option<Capabilities>| {
            let mut known = 0u64;
            for &cap in set.iter().flatten() {
                let n = number(cap);
                if n > last_cap {
                    unknown |= bit(n);
                } else {
                    known |= bit(n);
                }
            }
            known
        };
        let mut sets = Sets {
            bounding: mask(caps.bounding()),
            effective: mask(caps.effective()),
            inheritable: mask(caps.inheritable()),
            permitted: mask(caps.permitted()),
            ambient: mask(caps.ambient()),
        };
        // The kernel only raises an ambient capability that is permitted and inheritable.
        // `runc spec` lists ambient capabilities without inheritable ones; runc silently goes
        // on without them, and so does berth.
        let not_raisable = sets.ambient & !(sets.permitted & sets.inheritable);
        sets.ambient &= !not_raisable;
        // Capabilities this kernel lacks: the caller warns about them by name, as runc does.
        let unknown = (0..64u32)
            .filter(|&n| unknown & bit(n) != 0)
            .map(|n| display_name(n).to_owned())
            .collect();
        (
            CapabilityPlan {
                sets: Some(sets),
                last_cap,
            },
            unknown,
        )
    }
}

/// The name of capability number `cap` (`21` -> `"CAP_SYS_ADMIN"`), for the capabilities up to
/// `CAP_CHECKPOINT_RESTORE` (40).
pub fn name(cap: u32) -> Option<&'static str> {
    NAMES.get(usize::try_from(cap).ok()?).copied()
}

/// The number of a capability by name (`"CAP_SYS_ADMIN"` -> `21`). Like runtime-spec consumers
/// do, the match ignores case and the `CAP_` prefix is optional.
#[cfg(test)]
pub fn from_name(name: &str) -> Option<u32> {
    let bare = |s: &'static str| s.strip_prefix("CAP_").unwrap_or(s);
    let wanted = match name.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("CAP_") => &name[4..],
        _ => name,
    };
    let index = NAMES
        .iter()
        .position(|known| bare(known).eq_ignore_ascii_case(wanted))?;
    u32::try_from(index).ok()
}

fn read_last_cap() -> Result<u32, CapabilityError> {
    let content = std::fs::read_to_string(CAP_LAST_CAP)
        .map_err(|source| CapabilityError::ReadLastCap { source })?;
    content
        .trim()
        .parse()
        .map_err(|_| CapabilityError::ParseLastCap { content })
}

fn set_keepcaps(keep: bool) -> Result<(), CapabilityError> {
    nix::sys::prctl::set_keepcaps(keep).map_err(|errno| CapabilityError::KeepCaps { keep, errno })
}

fn capset(sets: &Sets) -> Result<(), CapabilityError> {
    let header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // Version 3 splits each 64-bit mask into a low word (data[0]) and a high word (data[1]);
    // the truncating casts are that split.
    let data = [
        CapUserData {
            effective: sets.effective as u32,
            permitted: sets.permitted as u32,
            inheritable: sets.inheritable as u32,
        },
        CapUserData {
            effective: (sets.effective >> 32) as u32,
            permitted: (sets.permitted >> 32) as u32,
            inheritable: (sets.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and data are valid, properly laid out (repr(C)) for capset v3, which reads
    // one header and two data structs; both outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &header as *const CapUserHeader,
            data.as_ptr(),
        )
    };
    Errno::result(ret)
        .map(drop)
        .map_err(|errno| CapabilityError::Capset {
            effective: sets.effective,
            permitted: sets.permitted,
            inheritable: sets.inheritable,
            errno,
        })
}

fn bit(cap: u32) -> u64 {
    1u64 << cap
}

fn display_name(cap: u32) -> &'static str {
    name(cap).unwrap_or("a capability unknown to berth")
}

fn setpcap_hint(errno: Errno) -> &'static str {
    if errno == Errno::EPERM {
        " (dropping from the bounding set needs CAP_SETPCAP)"
    } else {
        ""
    }
}

fn capset_hint(errno: Errno) -> &'static str {
    if errno == Errno::EPERM {
        " (a process can only keep capabilities it holds: compare with CapPrm in \
         /proc/self/status of the runtime)"
    } else {
        ""
    }
}

/// The kernel's number for a capability of the runtime-spec.
fn number(cap: Capability) -> u32 {
    match cap {
        Capability::Chown => 0,
        Capability::DacOverride => 1,
        Capability::DacReadSearch => 2,
        Capability::Fowner => 3,
        Capability::Fsetid => 4,
        Capability::Kill => 5,
        Capability::Setgid => 6,
        Capability::Setuid => 7,
        Capability::Setpcap => 8,
        Capability::LinuxImmutable => 9,
        Capability::NetBindService => 10,
        Capability::NetBroadcast => 11,
        Capability::NetAdmin => 12,
        Capability::NetRaw => 13,
        Capability::IpcLock => 14,
        Capability::IpcOwner => 15,
        Capability::SysModule => 16,
        Capability::SysRawio => 17,
        Capability::SysChroot => 18,
        Capability::SysPtrace => 19,
        Capability::SysPacct => 20,
        Capability::SysAdmin => 21,
        Capability::SysBoot => 22,
        Capability::SysNice => 23,
        Capability::SysResource => 24,
        Capability::SysTime => 25,
        Capability::SysTtyConfig => 26,
        Capability::Mknod => 27,
        Capability::Lease => 28,
        Capability::AuditWrite => 29,
        Capability::AuditControl => 30,
        Capability::Setfcap => 31,
        Capability::MacOverride => 32,
        Capability::MacAdmin => 33,
        Capability::Syslog => 34,
        Capability::WakeAlarm => 35,
        Capability::BlockSuspend => 36,
        Capability::AuditRead => 37,
        Capability::Perfmon => 38,
        Capability::Bpf => 39,
        Capability::CheckpointRestore => 40,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::io::Read;
    use std::os::fd::OwnedFd;

    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult, Uid};
    use oci_spec::runtime::LinuxCapabilitiesBuilder;

    use super::*;

    const UNPRIVILEGED: u32 = 1000;

    fn set(caps: &[Capability]) -> Capabilities {
        caps.iter().copied().collect()
    }

    /// The builder fills every set left out with runc's three defaults, so tests name all five.
    fn caps(
        bounding: &[Capability],
        effective: &[Capability],
        inheritable: &[Capability],
        permitted: &[Capability],
        ambient: &[Capability],
    ) -> LinuxCapabilities {
        LinuxCapabilitiesBuilder::default()
            .bounding(set(bounding))
            .effective(set(effective))
            .inheritable(set(inheritable))
            .permitted(set(permitted))
            .ambient(set(ambient))
            .build()
            .expect("caps")
    }

    /// Runs `child` in a forked process, which must not allocate (the test harness has other
    /// threads), and returns its exit code and what it wrote to the pipe it is given.
    fn in_child(child: impl FnOnce(&OwnedFd) -> i32) -> (i32, String) {
        let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
        // SAFETY: the child only makes syscalls through `child`, which allocates nothing, and
        // leaves with _exit, so no lock another thread held at fork time is ever needed.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(read_end);
                let code = child(&write_end);
                // SAFETY: _exit ends the child without running the parent's atexit handlers or
                // unwinding into the test harness.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(write_end);
                let mut out = String::new();
                std::fs::File::from(read_end)
                    .read_to_string(&mut out)
                    .expect("read the child's report");
                let code = match waitpid(child, None).expect("waitpid") {
                    WaitStatus::Exited(_, code) => code,
                    other => panic!("child did not exit: {other:?}"),
                };
                (code, out)
            }
        }
    }

    /// Copies /proc/self/status to `out` without allocating.
    fn report_status(out: &OwnedFd) -> i32 {
        let mut buf = [0u8; 8192];
        let Ok(status) = nix::fcntl::open(
            c"/proc/self/status",
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        ) else {
            return 90;
        };
        loop {
            match nix::unistd::read(&status, &mut buf) {
                Ok(0) => return 0,
                Ok(n) => {
                    if nix::unistd::write(out, &buf[..n]).is_err() {
                        return 91;
                    }
                }
                Err(_) => return 92,
            }
        }
    }

    fn become_unprivileged(plan: &CapabilityPlan) -> i32 {
        if plan.drop_bounding().is_err() {
            return 10;
        }
        if CapabilityPlan::keep_across_setuid().is_err() {
            return 11;
        }
        let uid = Uid::from_raw(UNPRIVILEGED);
        if nix::unistd::setresuid(uid, uid, uid).is_err() {
            return 12;
        }
        match plan.apply(false) {
            Ok(()) => 0,
            Err(CapabilityError::Capset { .. }) => 13,
            Err(CapabilityError::RaiseAmbient { .. }) => 14,
            Err(_) => 15,
        }
    }

    fn field<'a>(status: &'a str, key: &str) -> &'a str {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{key} missing from:\n{status}"))
    }

    fn is_root() -> bool {
        if Uid::effective().is_root() {
            return true;
        }
        eprintln!("skipped: needs root (CAP_SETPCAP, CAP_SETUID)");
        false
    }

    #[test]
    fn names_match_the_runtime_spec() {
        for n in 0..=40 {
            let name = name(n).expect("named");
            let cap: Capability =
                serde_json::from_str(&format!("\"{name}\"")).expect("runtime-spec name");
            assert_eq!(number(cap), n, "{name}");
            assert_eq!(from_name(name), Some(n));
        }
        assert_eq!(name(41), None);
        assert_eq!(from_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(from_name("sys_admin"), Some(21));
        assert_eq!(from_name("cap_net_raw"), Some(13));
        assert_eq!(from_name("CAP_"), None);
        assert_eq!(from_name("CAP_NOPE"), None);
        assert_eq!(from_name(""), None);
    }

    #[test]
    fn plan_masks_each_set_and_reports_caps_the_kernel_lacks() {
        let caps = caps(
            &[Capability::Chown, Capability::Bpf],
            &[Capability::Kill],
            &[],
            &[Capability::Kill, Capability::CheckpointRestore],
            &[],
        );
        // A kernel older than CAP_BPF (39) and CAP_CHECKPOINT_RESTORE (40).
        let (plan, unknown) = CapabilityPlan::with_last_cap(&caps, 38);
        assert_eq!(
            plan.sets,
            Some(Sets {
                bounding: 0x1,
                effective: 0x20,
                inheritable: 0,
                permitted: 0x20,
                ambient: 0,
            })
        );
        assert_eq!(unknown.len(), 2, "{unknown:?}");
        assert!(
            unknown[0].contains("CAP_BPF") && unknown[1].contains("CAP_CHECKPOINT_RESTORE"),
            "{unknown:?}"
        );
    }

    #[test]
    fn plan_reads_the_running_kernel() {
        let caps = caps(&[Capability::CheckpointRestore], &[], &[], &[], &[]);
        let (plan, unknown) = CapabilityPlan::new(Some(&caps)).expect("plan");
        // Kernels since 5.9 know CAP_CHECKPOINT_RESTORE.
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(plan.sets.map(|s| s.bounding), Some(1 << 40));
    }

    #[test]
    fn errors_name_the_capability() {
        let err = CapabilityError::DropBounding {
            cap: 21,
            errno: Errno::EPERM,
        };
        assert_eq!(
            err.to_string(),
            "drop CAP_SYS_ADMIN from the bounding set: EPERM: Operation not permitted \
             (dropping from the bounding set needs CAP_SETPCAP)"
        );
    }

    #[test]
    fn non_root_user_keeps_exactly_the_planned_sets() {
        if !is_root() {
            return;
        }
        let three = [
            Capability::Chown,
            Capability::Kill,
            Capability::NetBindService,
        ];
        let caps = caps(&three, &three, &[], &three, &[]);
        let (plan, unknown) = CapabilityPlan::new(Some(&caps)).expect("plan");
        assert!(unknown.is_empty());

        let (code, status) = in_child(|out| match become_unprivileged(&plan) {
            0 => report_status(out),
            code => code,
        });
        assert_eq!(code, 0, "child failed, status:\n{status}");
        assert_eq!(field(&status, "Uid"), "1000\t1000\t1000\t1000");
        assert_eq!(field(&status, "CapEff"), "0000000000000421");
        assert_eq!(field(&status, "CapPrm"), "0000000000000421");
        assert_eq!(field(&status, "CapBnd"), "0000000000000421");
        assert_eq!(field(&status, "CapInh"), "0000000000000000");
        assert_eq!(field(&status, "CapAmb"), "0000000000000000");
    }

    #[test]
    fn ambient_set_survives_execve_for_non_root_user() {
        if !is_root() {
            return;
        }
        let one = [Capability::NetBindService];
        let caps = caps(&one, &one, &one, &one, &one);
        let (plan, _) = CapabilityPlan::new(Some(&caps)).expect("plan");
        let cat = CString::new("/bin/cat").expect("path");
        let status_path = CString::new("/proc/self/status").expect("path");
        let argv = [cat.clone(), status_path];

        let (code, status) = in_child(|out| {
            let code = become_unprivileged(&plan);
            if code != 0 {
                return code;
            }
            if nix::unistd::dup2_stdout(out).is_err() {
                return 20;
            }
            let _ = nix::unistd::execv(&cat, &argv);
            21
        });
        assert_eq!(code, 0, "child failed, output:\n{status}");
        assert_eq!(field(&status, "Uid"), "1000\t1000\t1000\t1000");
        assert_eq!(field(&status, "CapAmb"), "0000000000000400");
        assert_eq!(field(&status, "CapEff"), "0000000000000400");
        assert_eq!(field(&status, "CapPrm"), "0000000000000400");
        assert_eq!(field(&status, "CapInh"), "0000000000000400");
        assert_eq!(field(&status, "CapBnd"), "0000000000000400");
    }

    #[test]
    fn ambient_capability_outside_inheritable_is_left_out_silently_like_runc() {
        if !is_root() {
            return;
        }
        let one = [Capability::NetBindService];
        let caps = caps(&one, &one, &[], &one, &one);
        let (plan, unknown) = CapabilityPlan::new(Some(&caps)).expect("plan");
        // `runc spec` writes such sets; runc says nothing about them.
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(plan.sets.map(|s| s.ambient), Some(0));
        let (code, _) = in_child(|_| become_unprivileged(&plan));
        assert_eq!(
            code, 0,
            "the plan must apply without the ambient capability"
        );
    }

    #[test]
    fn without_capabilities_none_is_kept_like_runc() {
        if !is_root() {
            return;
        }
        let (plan, _) = CapabilityPlan::new(None).expect("plan");
        let (code, status) = in_child(|out| match become_unprivileged(&plan) {
            0 => report_status(out),
            code => code,
        });
        assert_eq!(code, 0, "child failed, status:\n{status}");
        for set in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
            assert_eq!(field(&status, set), "0000000000000000", "{set}");
        }
    }
}
