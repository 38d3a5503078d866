//! Seccomp: compiles the OCI runtime spec's `linux.seccomp` into a classic BPF filter and
//! installs it, without libseccomp.
//!
//! Semantics follow runc with libseccomp: names a given architecture lacks are skipped; rules
//! whose action is the default action are dropped; when several rules of one syscall match,
//! the kernel's action precedence decides (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > TRACE >
//! LOG > ALLOW); an architecture the spec does not list is killed (KILL_PROCESS).
//!
//! [`Filter::compile`] runs in the parent; [`Filter::load`] only hands the finished program to
//! the kernel, so it is safe to call in a forked child of a multi-threaded process.

mod agent;
mod arch;
mod bpf;
mod compile;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

pub(crate) use agent::send as send_to_agent;

use nix::errno::Errno;
use oci_spec::runtime::LinuxSeccomp;

/// A compiled seccomp filter, ready to be installed.
pub struct Filter {
    program: Vec<bpf::Insn>,
    flags: u32,
}

/// The seccomp user-notification descriptor a filter with SCMP_ACT_NOTIFY rules returns, for
/// the seccomp agent at `linux.seccomp.listenerPath`.
pub(crate) type NotifyFd = std::os::fd::OwnedFd;

/// Why a seccomp filter could not be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// SCMP_ACT_NOTIFY hands a syscall to an agent; as the default it would hand over all.
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used as the default action")]
    NotifyDefault,

    /// Rules with SCMP_ACT_NOTIFY need an agent to answer them.
    #[error(
        "seccomp: SCMP_ACT_NOTIFY rules need linux.seccomp.listenerPath (the seccomp agent's \
         socket)"
    )]
    NotifyWithoutListener,

    /// The runtime itself writes to hand the notify descriptor over.
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used for the write syscall ({rule})")]
    NotifyWrite { rule: String },

    /// The seccomp agent could not be reached or given the descriptor.
    #[error("seccomp: send the notify descriptor to the agent at {}: {reason}", path.display())]
    Agent { path: PathBuf, reason: String },

    #[error("seccomp: flag {flag} is not supported: {reason}")]
    UnsupportedFlag { flag: String, reason: &'static str },

    #[error(
        "seccomp: {rule}: argument index {index} is out of range (a syscall has 6 arguments, \
         indexes 0 to 5)"
    )]
    ArgIndexOutOfRange { rule: String, index: usize },

    /// The errno travels in the 16-bit SECCOMP_RET_DATA field of the verdict.
    #[error("seccomp: {rule}: errnoRet {value} does not fit seccomp's 16-bit return data (at most 65535)")]
    ErrnoRetOutOfRange { rule: String, value: u32 },

    #[error(
        "seccomp: berth cannot compile seccomp filters for the {arch} architecture (supported: \
         x86_64 with x86 and x32, aarch64 with arm)"
    )]
    UnsupportedArchitecture { arch: &'static str },

    #[error(
        "seccomp: the compiled filter has {len} BPF instructions, more than the kernel's limit of \
         {max}; the profile has too many argument rules"
    )]
    ProgramTooLarge { len: usize, max: usize },

    #[error(
        "seccomp: seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}) failed: {errno}{}",
        load_hint(*errno)
    )]
    Load { errno: Errno, flags: u32 },

    #[error(
        "seccomp: SECCOMP_FILTER_FLAG_TSYNC could not synchronize thread {tid} of the process \
         (it runs another seccomp filter or strict mode)"
    )]
    TsyncFailed { tid: i64 },
}

impl Filter {
    /// Compiles the spec's seccomp object for the machine's native architecture, plus the
    /// compat architectures the spec lists (SCMP_ARCH_X86 and SCMP_ARCH_X32 on x86_64,
    /// SCMP_ARCH_ARM on aarch64). Listed architectures this kernel cannot run are ignored.
    pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, SeccompError> {
        let native =
            arch::Abi::native().map_err(|arch| SeccompError::UnsupportedArchitecture { arch })?;
        let program = compile::compile(seccomp, native)?;
        Ok(Filter {
            program: program.insns,
            flags: program.flags,
        })
    }

    /// Whether the filter hands syscalls to a seccomp agent ([`Filter::load`] then returns
    /// the notify descriptor).
    pub(crate) fn notifies(&self) -> bool {
        self.flags & compile::FLAG_NEW_LISTENER != 0
    }

    /// Installs the filter on the calling thread (seccomp(2) SECCOMP_SET_MODE_FILTER with the
    /// spec's flags). The caller has set no_new_privs or holds CAP_SYS_ADMIN. With
    /// SCMP_ACT_NOTIFY rules, returns the notify descriptor for the agent.
    ///
    /// Does not allocate: it runs in a forked child right before execve.
    pub fn load(&self) -> Result<Option<NotifyFd>, SeccompError> {
        let prog = libc::sock_fprog {
            // compile() refused programs longer than BPF_MAXINSNS (4096).
            len: u16::try_from(self.program.len()).unwrap_or(u16::MAX),
            filter: self.program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
        };
        // SAFETY: `prog` describes `self.program`, a live array of `prog.len` instructions laid
        // out as `struct sock_filter` (asserted in bpf.rs); the kernel copies the program during
        // the call and never writes through the pointer. The other arguments are plain integers.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
                libc::c_ulong::from(self.flags),
                &prog as *const libc::sock_fprog,
            )
        };
        match rc {
            rc if rc < 0 => Err(SeccompError::Load {
                errno: Errno::last(),
                flags: self.flags,
            }),
            fd if self.notifies() => {
                let fd = i32::try_from(fd).map_err(|_| SeccompError::Load {
                    errno: Errno::EBADF,
                    flags: self.flags,
                })?;
                // SAFETY: with NEW_LISTENER the kernel returns a new descriptor we now own.
                Ok(Some(unsafe {
                    <NotifyFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
                }))
            }
            0 => Ok(None),
            // With TSYNC, a positive return is the thread that could not be synchronized.
            tid => Err(SeccompError::TsyncFailed { tid }),
        }
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .finish()
    }
}

fn load_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EACCES => {
            " (the process has neither no_new_privs set nor CAP_SYS_ADMIN in its user namespace)"
        }
        Errno::EINVAL => {
            " (the kernel rejected the filter flags or the program; is a flag too new for this \
             kernel?)"
        }
        Errno::ENOMEM => " (out of memory, or the process already has too many filters)",
        Errno::ENOSYS => " (the kernel is built without CONFIG_SECCOMP_FILTER)",
        _ => "",
    }
}
