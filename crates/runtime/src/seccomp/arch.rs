//! The syscall ABIs a filter can cover, their `AUDIT_ARCH_*` tokens and syscall numbers.

use std::str::FromStr;

use oci_spec::runtime::Arch;

/// Set in the syscall number of every x32 syscall; x32 shares `AUDIT_ARCH_X86_64` with x86_64.
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall ABI: a calling convention with its own syscall table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Abi {
    X86_64,
    X32,
    X86,
    Aarch64,
    Arm,
}

impl Abi {
    /// The ABI of the machine berth was built for, or the name of an architecture the compiler
    /// has no syscall tables for.
    pub(super) fn native() -> Result<Abi, &'static str> {
        if cfg!(target_arch = "x86_64") {
            Ok(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Ok(Abi::Aarch64)
        } else {
            Err(std::env::consts::ARCH)
        }
    }

    /// The ABIs a kernel for this native ABI can run, native first.
    pub(super) fn family(self) -> &'static [Abi] {
        match self {
            Abi::X86_64 | Abi::X32 | Abi::X86 => &[Abi::X86_64, Abi::X32, Abi::X86],
            Abi::Aarch64 | Abi::Arm => &[Abi::Aarch64, Abi::Arm],
        }
    }

    /// The ABI a spec architecture names; `None` for architectures without syscall tables here
    /// (they can only matter on a kernel of another architecture).
    pub(super) fn from_spec(arch: Arch, native: Abi) -> Option<Abi> {
        match arch {
            Arch::ScmpArchNative => Some(native),
            Arch::ScmpArchX86_64 => Some(Abi::X86_64),
            Arch::ScmpArchX32 => Some(Abi::X32),
            Arch::ScmpArchX86 => Some(Abi::X86),
            Arch::ScmpArchAarch64 => Some(Abi::Aarch64),
            Arch::ScmpArchArm => Some(Abi::Arm),
            _ => None,
        }
    }

    /// `seccomp_data.arch` for syscalls made through this ABI (linux/audit.h).
    pub(super) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => 0xc000_003e,
            Abi::X86 => 0x4000_0003,
            Abi::Aarch64 => 0xc000_00b7,
            Abi::Arm => 0x4000_0028,
        }
    }

    /// Whether rules compare all 64 bits of an argument. On 32-bit ABIs (x32 included, whose
    /// arguments are 32-bit longs and pointers) rules compare only the low word, and their
    /// values are truncated to it, as libseccomp does.
    pub(super) fn wide_args(self) -> bool {
        matches!(self, Abi::X86_64 | Abi::Aarch64)
    }

    /// The syscall number `name` has in this ABI, or `None` if the ABI has no such syscall.
    pub(super) fn syscall_number(self, name: &str) -> Option<u32> {
        let id = match self {
            Abi::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok()?.id(),
            Abi::X32 => return x32_number(name),
            Abi::X86 => syscalls::x86::Sysno::from_str(name).ok()?.id(),
            Abi::Aarch64 => syscalls::aarch64::Sysno::from_str(name).ok()?.id(),
            Abi::Arm => match syscalls::arm::Sysno::from_str(name) {
                Ok(sysno) => sysno.id(),
                Err(()) => return arm_private_number(name),
            },
        };
        u32::try_from(id).ok()
    }
}

/// x32 syscalls whose argument layout differs from x86_64 got their own numbers (the kernel's
/// syscall_64.tbl, 512-547); every other x32 syscall uses the x86_64 number.
const X32_OWN_NUMBERS: [(&str, u32); 36] = [
    ("rt_sigaction", 512),
    ("rt_sigreturn", 513),
    ("ioctl", 514),
    ("readv", 515),
    ("writev", 516),
    ("recvfrom", 517),
    ("sendmsg", 518),
    ("recvmsg", 519),
    ("execve", 520),
    ("ptrace", 521),
    ("rt_sigpending", 522),
    ("rt_sigtimedwait", 523),
    ("rt_sigqueueinfo", 524),
    ("sigaltstack", 525),
    ("timer_create", 526),
    ("mq_notify", 527),
    ("kexec_load", 528),
    ("waitid", 529),
    ("set_robust_list", 530),
    ("get_robust_list", 531),
    ("vmsplice", 532),
    ("move_pages", 533),
    ("preadv", 534),
    ("pwritev", 535),
    ("rt_tgsigqueueinfo", 536),
    ("recvmmsg", 537),
    ("sendmmsg", 538),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("setsockopt", 541),
    ("getsockopt", 542),
    ("io_setup", 543),
    ("io_submit", 544),
    ("execveat", 545),
    ("preadv2", 546),
    ("pwritev2", 547),
];

fn x32_number(name: &str) -> Option<u32> {
    let base = match X32_OWN_NUMBERS.iter().find(|(n, _)| *n == name) {
        Some(&(_, nr)) => nr,
        None => Abi::X86_64.syscall_number(name)?,
    };
    Some(X32_SYSCALL_BIT | base)
}

/// ARM's private syscalls (`__ARM_NR_BASE + n`, arch/arm/include/uapi/asm/unistd.h), missing from
/// the generic tables; 32-bit ARM glibc calls `set_tls` at startup, so profiles list them.
fn arm_private_number(name: &str) -> Option<u32> {
    const ARM_NR_BASE: u32 = 0x000f_0000;
    let n = match name {
        "breakpoint" => 1,
        "cacheflush" => 2,
        "usr26" => 3,
        "usr32" => 4,
        "set_tls" => 5,
        "get_tls" => 6,
        _ => return None,
    };
    Some(ARM_NR_BASE + n)
}
