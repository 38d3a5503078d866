//! cgroup v2 device control: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE, generated
//! from the emulated v1 state, loaded with bpf(BPF_PROG_LOAD) and attached to the cgroup
//! directory with BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI).
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! where access_type is `device type | access << 16`, and returns 1 to allow, 0 to deny.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use super::devices::{DeviceKind, DeviceState, Exception, ACCESS_ALL};
use super::CgroupError;

/// One eBPF instruction, `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    code: u8,
    /// dst_reg and src_reg, 4 bits each, in the order of the target's bitfields.
    regs: u8,
    off: i16,
    imm: i32,
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to the fields berth sets.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH and BPF_PROG_DETACH.
#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `union bpf_attr` for BPF_PROG_QUERY.
#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `union bpf_attr` for BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_prog_info`, up to its name.
#[repr(C)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

// The kernel reads these by size; any implicit padding would be uninitialized bytes that the
// kernel insists be zero.
const _: () = assert!(size_of::<Insn>() == 8);
const _: () = assert!(size_of::<ProgLoadAttr>() == 72);
const _: () = assert!(size_of::<AttachAttr>() == 20);
const _: () = assert!(size_of::<QueryAttr>() == 32);
const _: () = assert!(size_of::<GetFdByIdAttr>() == 12);
const _: () = assert!(size_of::<InfoAttr>() == 16);
const _: () = assert!(size_of::<ProgInfo>() == 80);

const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_ATTACH: u32 = 8;
const BPF_PROG_DETACH: u32 = 9;
const BPF_PROG_GET_FD_BY_ID: u32 = 13;
const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
const BPF_PROG_QUERY: u32 = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

/// How berth recognises its own program on the cgroup when replacing it.
const PROG_NAME: &[u8] = b"berth_devices";
const LICENSE: &[u8] = b"Apache-2.0\0";
const VERIFIER_LOG_SIZE: usize = 64 * 1024;

// Opcodes: class | operation | source.
const LDX_MEM_W: u8 = 0x01 | 0x60; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_MOV_X: u8 = 0x04 | 0xb0 | 0x08; // BPF_ALU | BPF_MOV | BPF_X
const ALU32_AND_K: u8 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x04 | 0x70; // BPF_ALU | BPF_RSH | BPF_K
const ALU64_MOV_K: u8 = 0x07 | 0xb0; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP32_JEQ_K: u8 = 0x06 | 0x10; // BPF_JMP32 | BPF_JEQ | BPF_K
const JMP32_JNE_K: u8 = 0x06 | 0x50; // BPF_JMP32 | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x05 | 0x90; // BPF_JMP | BPF_EXIT

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// Placeholder offset of a "skip to the next exception" jump until the block length is known.
const SKIP: i16 = i16::MAX;

/// The program enforcing `state`. Registers after the prologue: r2 device type, r3 requested
/// access, r4 major, r5 minor. Each exception is a block that returns the opposite of the
/// default when the device and access match it, and otherwise falls through to the next.
pub(super) fn generate(state: &DeviceState) -> Vec<Insn> {
    let mut program = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_MOV_X, R3, R2, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for ex in &state.exceptions {
        program.extend(exception_block(ex, state.default_allow));
    }
    program.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(state.default_allow)));
    program.push(insn(JMP_EXIT, 0, 0, 0, 0));
    program
}

/// Loads `program` and attaches it to the cgroup at `dir`, then detaches the device programs
/// berth attached there before (an update). Attaching first means the container is never
/// without a filter; for that moment both apply, so it sees the stricter of the two.
pub(super) fn install(dir: &Path, program: &[Insn]) -> Result<(), CgroupError> {
    let cgroup = File::open(dir).map_err(|e| CgroupError::Read {
        path: dir.to_path_buf(),
        errno: super::files::errno_of(&e),
    })?;
    let previous = berth_programs(&cgroup, dir)?;
    let prog = load(program, dir)?;
    let mut attach = AttachAttr {
        target_fd: fd_u32(&cgroup),
        attach_bpf_fd: fd_u32(&prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|errno| bpf_error("BPF_PROG_ATTACH", dir, errno))?;
    for old in previous {
        let mut detach = AttachAttr {
            target_fd: fd_u32(&cgroup),
            attach_bpf_fd: fd_u32(&old),
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
            replace_bpf_fd: 0,
        };
        match bpf(BPF_PROG_DETACH, &mut detach) {
            // Detached meanwhile by a concurrent update: the goal is reached.
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(errno) => return Err(bpf_error("BPF_PROG_DETACH", dir, errno)),
        }
    }
    // The cgroup holds its own reference to the attached program; our fds can go.
    Ok(())
}

fn exception_block(ex: &Exception, default_allow: bool) -> Vec<Insn> {
    let mut block = Vec::with_capacity(10);
    match ex.kind {
        DeviceKind::Char => block.push(insn(JMP32_JNE_K, R2, 0, SKIP, BPF_DEVCG_DEV_CHAR)),
        DeviceKind::Block => block.push(insn(JMP32_JNE_K, R2, 0, SKIP, BPF_DEVCG_DEV_BLOCK)),
        // The emulator never leaves an "all devices" exception; matching any type is right
        // should one appear.
        DeviceKind::All => {}
    }
    if let Some(major) = ex.major {
        block.push(insn(JMP32_JNE_K, R4, 0, SKIP, imm_u32(major)));
    }
    if let Some(minor) = ex.minor {
        block.push(insn(JMP32_JNE_K, R5, 0, SKIP, imm_u32(minor)));
    }
    if ex.access & ACCESS_ALL != ACCESS_ALL {
        if default_allow {
            // A deny exception applies when the request overlaps its access.
            block.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
            block.push(insn(ALU32_AND_K, R1, 0, 0, i32::from(ex.access)));
            block.push(insn(JMP32_JEQ_K, R1, 0, SKIP, 0));
        } else {
            // An allow exception applies only when it covers all of the request.
            block.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
            block.push(insn(
                ALU32_AND_K,
                R1,
                0,
                0,
                i32::from(!ex.access & ACCESS_ALL),
            ));
            block.push(insn(JMP32_JNE_K, R1, 0, SKIP, 0));
        }
    }
    block.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(!default_allow)));
    block.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let len = block.len();
    for (i, ins) in block.iter_mut().enumerate() {
        if ins.off == SKIP {
            // Jumps are relative to the next instruction; land just past this block.
            ins.off = i16::try_from(len - i - 1).unwrap_or(SKIP);
        }
    }
    block
}

fn load(program: &[Insn], dir: &Path) -> Result<OwnedFd, CgroupError> {
    let mut name = [0u8; 16];
    name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(program.len()).unwrap_or(u32::MAX),
        insns: program.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: BPF_CGROUP_DEVICE,
    };
    match bpf(BPF_PROG_LOAD, &mut attr).and_then(owned_fd) {
        Ok(fd) => return Ok(fd),
        Err(Errno::EINVAL | Errno::EACCES) => {}
        Err(errno) => return Err(bpf_error("BPF_PROG_LOAD", dir, errno)),
    }
    // Refused by the verifier: load again with a log, so the error says why.
    let mut log = vec![0u8; VERIFIER_LOG_SIZE];
    attr.log_level = 1;
    attr.log_size = u32::try_from(log.len()).unwrap_or(0);
    attr.log_buf = log.as_mut_ptr() as u64;
    match bpf(BPF_PROG_LOAD, &mut attr).and_then(owned_fd) {
        Ok(fd) => Ok(fd),
        Err(errno) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(CgroupError::Bpf {
                command: "BPF_PROG_LOAD",
                path: dir.to_path_buf(),
                errno,
                log: String::from_utf8_lossy(&log[..end]).trim_end().to_owned(),
            })
        }
    }
}

/// The device programs attached directly to this cgroup that carry berth's name.
fn berth_programs(cgroup: &File, dir: &Path) -> Result<Vec<OwnedFd>, CgroupError> {
    let mut ids = [0u32; 64];
    let mut query = QueryAttr {
        target_fd: fd_u32(cgroup),
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: u32::try_from(ids.len()).unwrap_or(0),
        _pad: 0,
    };
    match bpf(BPF_PROG_QUERY, &mut query) {
        // ENOSPC: more programs than room; the first 64 were filled in, and berth's would
        // be among them unless something else attached dozens.
        Ok(_) | Err(Errno::ENOSPC) => {}
        Err(errno) => return Err(bpf_error("BPF_PROG_QUERY", dir, errno)),
    }
    let count = usize::try_from(query.prog_cnt).map_or(0, |n| n.min(ids.len()));
    let mut out = Vec::new();
    for &id in &ids[..count] {
        let mut by_id = GetFdByIdAttr {
            prog_id: id,
            next_id: 0,
            open_flags: 0,
        };
        let prog = match bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id).and_then(owned_fd) {
            Ok(fd) => fd,
            // Detached and freed since the query.
            Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(bpf_error("BPF_PROG_GET_FD_BY_ID", dir, errno)),
        };
        let mut info = ProgInfo {
            prog_type: 0,
            id: 0,
            tag: [0; 8],
            jited_prog_len: 0,
            xlated_prog_len: 0,
            jited_prog_insns: 0,
            xlated_prog_insns: 0,
            load_time: 0,
            created_by_uid: 0,
            nr_map_ids: 0,
            map_ids: 0,
            name: [0; 16],
        };
        let mut info_attr = InfoAttr {
            bpf_fd: fd_u32(&prog),
            info_len: u32::try_from(size_of::<ProgInfo>()).unwrap_or(0),
            info: (&raw mut info) as u64,
        };
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut info_attr)
            .map_err(|errno| bpf_error("BPF_OBJ_GET_INFO_BY_FD", dir, errno))?;
        let name_end = info.name.iter().position(|&b| b == 0).unwrap_or(16);
        if &info.name[..name_end] == PROG_NAME {
            out.push(prog);
        }
    }
    Ok(out)
}

fn bpf<T>(command: u32, attr: &mut T) -> Result<libc::c_long, Errno> {
    // SAFETY: `attr` is a live #[repr(C)] value laid out as the kernel's `union bpf_attr`
    // member for `command`, without implicit padding (see the size asserts), and its size
    // bounds what the kernel reads and writes. Pointers inside it refer to buffers that the
    // caller keeps alive across this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            libc::c_long::from(command),
            std::ptr::from_mut(attr),
            size_of::<T>(),
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn owned_fd(fd: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: bpf(2) returned this file descriptor just now; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// File descriptors are non-negative; a value out of range becomes one the kernel rejects.
fn fd_u32(fd: &impl AsRawFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// Major and minor numbers are compared as 32-bit values: reinterpret the bits.
fn imm_u32(n: u32) -> i32 {
    i32::from_ne_bytes(n.to_ne_bytes())
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: regs(dst, src),
        off,
        imm,
    }
}

#[cfg(target_endian = "little")]
const fn regs(dst: u8, src: u8) -> u8 {
    (src << 4) | (dst & 0x0f)
}

#[cfg(target_endian = "big")]
const fn regs(dst: u8, src: u8) -> u8 {
    (dst << 4) | (src & 0x0f)
}

fn bpf_error(command: &'static str, dir: &Path, errno: Errno) -> CgroupError {
    CgroupError::Bpf {
        command,
        path: dir.to_path_buf(),
        errno,
        log: String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
pub(super) mod unit {
    use super::super::devices::unit::{deny_all, rule};
    use super::super::devices::{
        emulate, normalize, DeviceKind, ACCESS_MKNOD, ACCESS_READ, ACCESS_WRITE,
    };
    use super::*;
    use oci_spec::runtime::LinuxDeviceType;

    /// Executes the instructions `generate` emits, as the kernel would.
    pub(in super::super) fn run(
        program: &[Insn],
        kind: DeviceKind,
        major: u32,
        minor: u32,
        access: u8,
    ) -> u64 {
        let kind = match kind {
            DeviceKind::Block => 1u32,
            DeviceKind::Char => 2,
            DeviceKind::All => 0,
        };
        let ctx = [kind | (u32::from(access) << 16), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let ins = program[pc];
            let (dst, src) = if cfg!(target_endian = "little") {
                (usize::from(ins.regs & 0x0f), usize::from(ins.regs >> 4))
            } else {
                (usize::from(ins.regs >> 4), usize::from(ins.regs & 0x0f))
            };
            let imm32 = ins.imm as u32;
            pc += 1;
            match ins.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[usize::try_from(ins.off).unwrap() / 4]);
                }
                ALU32_MOV_X => r[dst] = r[src] & 0xffff_ffff,
                ALU32_AND_K => r[dst] = (r[dst] as u32 & imm32).into(),
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> imm32).into(),
                ALU64_MOV_K => r[dst] = ins.imm as i64 as u64,
                JMP32_JEQ_K | JMP32_JNE_K => {
                    let equal = r[dst] as u32 == imm32;
                    if equal == (ins.code == JMP32_JEQ_K) {
                        pc = pc.checked_add_signed(isize::from(ins.off)).unwrap();
                    }
                }
                JMP_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn check_against_emulator(rules: &[oci_spec::runtime::LinuxDeviceCgroup]) {
        let state = emulate(&normalize(rules).unwrap());
        let program = generate(&state);
        let accesses = [
            ACCESS_READ,
            ACCESS_WRITE,
            ACCESS_MKNOD,
            ACCESS_READ | ACCESS_WRITE,
            ACCESS_READ | ACCESS_WRITE | ACCESS_MKNOD,
        ];
        for kind in [DeviceKind::Char, DeviceKind::Block] {
            for (major, minor) in [
                (1, 3),
                (1, 5),
                (136, 0),
                (136, 9),
                (8, 0),
                (4_000_000_000, 1),
            ] {
                for access in accesses {
                    let want = u64::from(state.permits(kind, major, minor, access));
                    let got = run(&program, kind, major, minor, access);
                    assert_eq!(
                        got, want,
                        "{kind:?} {major}:{minor} access {access:#b} with {state:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn program_matches_the_v1_semantics() {
        check_against_emulator(&[]);
        check_against_emulator(&[deny_all()]);
        check_against_emulator(&[
            deny_all(),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rw"),
            rule(true, LinuxDeviceType::C, Some(136), None, "rwm"),
            rule(true, LinuxDeviceType::B, None, None, "m"),
            rule(true, LinuxDeviceType::C, Some(4_000_000_000), Some(1), "r"),
        ]);
        check_against_emulator(&[
            rule(true, LinuxDeviceType::A, None, None, "rwm"),
            rule(false, LinuxDeviceType::C, Some(1), Some(5), "w"),
            rule(false, LinuxDeviceType::B, Some(8), None, "rwm"),
        ]);
    }

    #[test]
    fn deny_all_program_is_two_instructions_after_the_prologue() {
        let program = generate(&emulate(&normalize(&[deny_all()]).unwrap()));
        assert_eq!(program.len(), 8);
        assert_eq!(program[6], insn(ALU64_MOV_K, R0, 0, 0, 0));
        assert_eq!(program[7], insn(JMP_EXIT, 0, 0, 0, 0));
    }

    #[test]
    fn allow_block_encodes_type_numbers_and_access() {
        let state = emulate(
            &normalize(&[
                deny_all(),
                rule(true, LinuxDeviceType::C, Some(1), Some(3), "rw"),
            ])
            .unwrap(),
        );
        let program = generate(&state);
        let block = &program[6..program.len() - 2];
        assert_eq!(
            block,
            [
                // Each mismatch jumps to the instruction after the block's exit.
                insn(JMP32_JNE_K, R2, 0, 7, 2),
                insn(JMP32_JNE_K, R4, 0, 6, 1),
                insn(JMP32_JNE_K, R5, 0, 5, 3),
                // Requested access outside "rw" (i.e. mknod) does not match.
                insn(ALU32_MOV_X, R1, R3, 0, 0),
                insn(ALU32_AND_K, R1, 0, 0, 1),
                insn(JMP32_JNE_K, R1, 0, 2, 0),
                insn(ALU64_MOV_K, R0, 0, 0, 1),
                insn(JMP_EXIT, 0, 0, 0, 0),
            ]
        );
    }
}
