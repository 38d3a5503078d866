//! Compiled programs are checked the way the kernel checks them, then run in a small classic
//! BPF interpreter against a reference model of the spec's semantics; real-kernel tests install
//! filters in forked children.

use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use serde_json::{json, Value};

use super::arch::{Abi, X32_SYSCALL_BIT};
use super::bpf::{
    Insn, ALU_AND_K, JMP_JA, JMP_JEQ_K, JMP_JGE_K, JMP_JGT_K, LD_W_ABS, MAX_INSNS, RET_K,
};
use super::compile::{
    self, RET_ALLOW, RET_ENOSYS, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_LOG, RET_TRACE,
    RET_TRAP, RET_USER_NOTIF,
};
use super::{Filter, SeccompError};

const ARCH_X86_64: u32 = 0xc000_003e;
const ARCH_I386: u32 = 0x4000_0003;
const ARCH_AARCH64: u32 = 0xc000_00b7;
const ARCH_ARM: u32 = 0x4000_0028;
const NO_ARGS: [u64; 6] = [0; 6];

// ---------------------------------------------------------------------------------------------
// A classic BPF checker and interpreter (the subset seccomp filters use).

/// What the kernel's `bpf_check_classic` + `seccomp_check_filter` insist on.
fn verify(prog: &[Insn]) {
    assert!(
        !prog.is_empty() && prog.len() <= MAX_INSNS,
        "length {}",
        prog.len()
    );
    for (pc, insn) in prog.iter().enumerate() {
        let after = pc + 1;
        match insn.code {
            LD_W_ABS => assert!(insn.k % 4 == 0 && insn.k < 64, "bad load at {pc}: {insn:?}"),
            ALU_AND_K | RET_K => {}
            JMP_JA => assert!(
                after + (insn.k as usize) < prog.len(),
                "ja out of range at {pc}"
            ),
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                assert!(
                    after + usize::from(insn.jt) < prog.len(),
                    "jt out of range at {pc}"
                );
                assert!(
                    after + usize::from(insn.jf) < prog.len(),
                    "jf out of range at {pc}"
                );
            }
            other => panic!("unexpected opcode {other:#x} at {pc}"),
        }
    }
    assert_eq!(
        prog[prog.len() - 1].code,
        RET_K,
        "last instruction must be a ret"
    );
}

/// `struct seccomp_data` as the kernel lays it out.
fn seccomp_data(arch: u32, nr: u32, args: [u64; 6]) -> [u8; 64] {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
    }
    data
}

/// Runs the program; returns the verdict and the number of instructions executed.
fn execute(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let data = seccomp_data(arch, nr, args);
    let (mut pc, mut a, mut steps) = (0usize, 0u32, 0usize);
    loop {
        let insn = prog[pc];
        steps += 1;
        pc += 1;
        let taken = |cond: bool| usize::from(if cond { insn.jt } else { insn.jf });
        match insn.code {
            LD_W_ABS => {
                let k = insn.k as usize;
                a = u32::from_ne_bytes(data[k..k + 4].try_into().expect("4 bytes"));
            }
            ALU_AND_K => a &= insn.k,
            JMP_JA => pc += insn.k as usize,
            JMP_JEQ_K => pc += taken(a == insn.k),
            JMP_JGT_K => pc += taken(a > insn.k),
            JMP_JGE_K => pc += taken(a >= insn.k),
            RET_K => return (insn.k, steps),
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    execute(prog, arch, nr, args).0
}

// ---------------------------------------------------------------------------------------------
// A reference model of the semantics, written straight from the spec (no BPF).

fn action_value(action: LinuxSeccompAction, errno_ret: Option<u32>) -> u32 {
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | errno_ret.unwrap_or(1),
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | errno_ret.unwrap_or(1),
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => panic!("model has no notify"),
    }
}

fn op_holds(op: LinuxSeccompOperator, arg: u64, value: u64, value_two: u64, wide: bool) -> bool {
    let m = if wide { u64::MAX } else { u64::from(u32::MAX) };
    let (a, v, v2) = (arg & m, value & m, value_two & m);
    match op {
        LinuxSeccompOperator::ScmpCmpNe => a != v,
        LinuxSeccompOperator::ScmpCmpLt => a < v,
        LinuxSeccompOperator::ScmpCmpLe => a <= v,
        LinuxSeccompOperator::ScmpCmpEq => a == v,
        LinuxSeccompOperator::ScmpCmpGe => a >= v,
        LinuxSeccompOperator::ScmpCmpGt => a > v,
        LinuxSeccompOperator::ScmpCmpMaskedEq => a & v == v2,
    }
}

/// Kernel precedence: lower is stronger.
fn precedence(verdict: u32) -> u32 {
    (verdict & 0xffff_0000) ^ 0x8000_0000
}

/// The spec with every name resolved per ABI up front (resolving is the slow part).
struct Model<'a> {
    spec: &'a LinuxSeccomp,
    native: Abi,
    /// For each ABI of the native family: for each spec rule, the numbers its names have.
    numbers: Vec<(Abi, Vec<Vec<u32>>)>,
}

impl<'a> Model<'a> {
    fn new(spec: &'a LinuxSeccomp, native: Abi) -> Self {
        let rules = spec.syscalls().clone().unwrap_or_default();
        let numbers = native
            .family()
            .iter()
            .map(|&abi| {
                let per_rule = rules
                    .iter()
                    .map(|r| {
                        r.names()
                            .iter()
                            .filter_map(|n| abi.syscall_number(n))
                            .collect()
                    })
                    .collect();
                (abi, per_rule)
            })
            .collect();
        Model {
            spec,
            native,
            numbers,
        }
    }

    fn verdict(&self, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let spec = self.spec;
        let listed = spec.architectures().clone().unwrap_or_default();
        let covered = |abi: Abi| {
            abi == self.native
                || listed
                    .iter()
                    .any(|&a| Abi::from_spec(a, self.native) == Some(abi))
        };
        let Some(mut abi) = self
            .native
            .family()
            .iter()
            .copied()
            .find(|&abi| abi != Abi::X32 && abi.audit_arch() == arch && covered(abi))
        else {
            return RET_KILL_PROCESS;
        };
        if abi == Abi::X86_64 && nr >= X32_SYSCALL_BIT {
            if !covered(Abi::X32) {
                return RET_KILL_PROCESS;
            }
            abi = Abi::X32;
        }
        let numbers = &self
            .numbers
            .iter()
            .find(|(a, _)| *a == abi)
            .expect("family member")
            .1;
        let default = action_value(spec.default_action(), spec.default_errno_ret());
        // runc's stub: a number above every syscall the profile names, in an architecture the
        // profile lists, is ENOSYS unless the default allows (or is ENOSYS already).
        let allowing = matches!(default, RET_ALLOW | RET_LOG | RET_ENOSYS)
            || default & 0xffff_0000 == RET_TRACE;
        let listed_abi = listed
            .iter()
            .any(|&a| Abi::from_spec(a, self.native) == Some(abi));
        let newest = numbers.iter().flatten().copied().max();
        if !allowing && listed_abi && newest.is_some_and(|n| nr > n) {
            return RET_ENOSYS;
        }
        let mut best: Option<u32> = None;
        let rules = spec.syscalls().as_deref().unwrap_or_default();
        for (syscall, nrs) in rules.iter().zip(numbers) {
            let action = action_value(syscall.action(), syscall.errno_ret());
            if action == default || !nrs.contains(&nr) {
                continue;
            }
            let conds = syscall.args().as_deref().unwrap_or_default();
            let holds = |c: &oci_spec::runtime::LinuxSeccompArg| {
                op_holds(
                    c.op(),
                    args[c.index()],
                    c.value(),
                    c.value_two().unwrap_or(0),
                    abi.wide_args(),
                )
            };
            let repeated = conds
                .iter()
                .enumerate()
                .any(|(i, c)| conds[..i].iter().any(|d| d.index() == c.index()));
            let matched = if repeated {
                conds.iter().any(holds)
            } else {
                conds.iter().all(holds)
            };
            if matched && best.is_none_or(|b| precedence(action) < precedence(b)) {
                best = Some(action);
            }
        }
        best.unwrap_or(default)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn spec(value: Value) -> LinuxSeccomp {
    serde_json::from_value(value).expect("valid seccomp JSON")
}

fn compile_for(native: Abi, spec: &LinuxSeccomp) -> Vec<Insn> {
    let program = compile::compile(spec, native).expect("compiles");
    verify(&program.insns);
    program.insns
}

fn x86_64(spec: &LinuxSeccomp) -> Vec<Insn> {
    compile_for(Abi::X86_64, spec)
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.syscall_number(name)
        .unwrap_or_else(|| panic!("{name} on {abi:?}"))
}

fn errno(e: u32) -> u32 {
    RET_ERRNO | e
}

fn args0(a: u64) -> [u64; 6] {
    [a, 0, 0, 0, 0, 0]
}

/// Checks the program against the model for many (arch, nr, args) triples.
fn assert_matches_model(native: Abi, spec: &LinuxSeccomp, prog: &[Insn], argsets: &[[u64; 6]]) {
    let model = Model::new(spec, native);
    let arches = [ARCH_X86_64, ARCH_I386, ARCH_AARCH64, ARCH_ARM, 0, u32::MAX];
    let mut nrs: Vec<u32> = (0..600).collect();
    nrs.extend((0..600).map(|n| n | X32_SYSCALL_BIT));
    nrs.extend([
        0x000f_0000,
        0x000f_0005,
        0x3fff_ffff,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
    ]);
    for &arch in &arches {
        for &n in &nrs {
            for &args in argsets {
                assert_eq!(
                    run(prog, arch, n, args),
                    model.verdict(arch, n, args),
                    "arch {arch:#x} nr {n:#x} args {args:x?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Unit tests.

#[test]
fn default_action_applies_to_unlisted_syscalls() {
    let s = spec(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let prog = x86_64(&s);
    assert_eq!(run(&prog, ARCH_X86_64, 0, NO_ARGS), RET_ALLOW);
    assert_eq!(run(&prog, ARCH_X86_64, 400, NO_ARGS), RET_ALLOW);
    // Empty architecture list: native only.
    assert_eq!(run(&prog, ARCH_I386, 0, NO_ARGS), RET_KILL_PROCESS);
    assert_eq!(
        run(&prog, ARCH_X86_64, X32_SYSCALL_BIT | 1, NO_ARGS),
        RET_KILL_PROCESS
    );
}

#[test]
fn allow_list_with_errno_default() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read", "write", "getcwd"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let prog = x86_64(&s);
    for name in ["read", "write", "getcwd"] {
        assert_eq!(
            run(&prog, ARCH_X86_64, nr(Abi::X86_64, name), NO_ARGS),
            RET_ALLOW
        );
    }
    for name in ["open", "mkdir", "ptrace"] {
        assert_eq!(
            run(&prog, ARCH_X86_64, nr(Abi::X86_64, name), NO_ARGS),
            errno(1),
            "{name} gets EPERM like runc's default errno"
        );
    }
}

#[test]
fn errno_ret_defaults_to_eperm_and_honours_custom_values() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    let prog = x86_64(&s);
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86_64, "getcwd"), NO_ARGS),
        errno(99)
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86_64, "mkdir"), NO_ARGS),
        errno(1)
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86_64, "open"), NO_ARGS),
        errno(38)
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86_64, "read"), NO_ARGS),
        RET_ALLOW
    );
}

#[test]
fn actions_map_to_kernel_verdicts() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_KILL"},
            {"names": ["write"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["open"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["close"], "action": "SCMP_ACT_TRAP"},
            {"names": ["stat"], "action": "SCMP_ACT_TRACE", "errnoRet": 1234},
            {"names": ["fstat"], "action": "SCMP_ACT_TRACE"},
            {"names": ["lstat"], "action": "SCMP_ACT_LOG"}
        ]
    }));
    let prog = x86_64(&s);
    let verdict = |name| run(&prog, ARCH_X86_64, nr(Abi::X86_64, name), NO_ARGS);
    assert_eq!(verdict("read"), RET_KILL_THREAD);
    assert_eq!(verdict("write"), RET_KILL_THREAD);
    assert_eq!(verdict("open"), RET_KILL_PROCESS);
    assert_eq!(verdict("close"), RET_TRAP);
    assert_eq!(verdict("stat"), RET_TRACE | 1234);
    assert_eq!(verdict("fstat"), RET_TRACE | 1);
    assert_eq!(verdict("lstat"), RET_LOG);
    assert_eq!(verdict("poll"), RET_ALLOW);
}

const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Values where a 64-bit comparison can go wrong: word boundaries, high word alone, extremes.
const EDGES: [u64; 14] = [
    0,
    1,
    5,
    0x7fff_ffff,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0005,
    0x1_ffff_ffff,
    0xffff_ffff_0000_0000,
    0xffff_ffff_0000_0005,
    0x8000_0000_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

fn probe_values(v: u64) -> Vec<u64> {
    let mut probes: Vec<u64> = EDGES.to_vec();
    probes.extend([
        v,
        v.wrapping_add(1),
        v.wrapping_sub(1),
        v ^ (1 << 32),
        v & 0xffff_ffff,
        v | 0xffff_ffff_0000_0000,
        v.rotate_left(32),
    ]);
    probes
}

fn check_operator(abi: Abi, arch: u32, op: &str, value: u64, value_two: u64) {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{
            "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
            "args": [{"index": 3, "value": value, "valueTwo": value_two, "op": op}]
        }]
    }));
    let prog = x86_64(&s);
    let parsed: LinuxSeccompOperator = op.parse().expect("operator");
    for arg in probe_values(value)
        .into_iter()
        .chain(probe_values(value_two))
    {
        let args = [0, 0, 0, arg, 0, 0];
        let expected = if op_holds(parsed, arg, value, value_two, abi.wide_args()) {
            errno(7)
        } else {
            RET_ALLOW
        };
        assert_eq!(
            run(&prog, arch, nr(abi, "getcwd"), args),
            expected,
            "{abi:?} {op} value {value:#x} valueTwo {value_two:#x} arg {arg:#x}"
        );
    }
}

#[test]
fn every_operator_compares_all_64_bits_on_64_bit_abis() {
    for op in OPS {
        for value in EDGES {
            for value_two in [0, 5, 0x1_0000_0000, value] {
                check_operator(Abi::X86_64, ARCH_X86_64, op, value, value_two);
            }
        }
    }
}

#[test]
fn every_operator_compares_the_low_word_on_32_bit_abis() {
    for op in OPS {
        for value in EDGES {
            for value_two in [0, 5, 0x1_0000_0000, value] {
                check_operator(Abi::X86, ARCH_I386, op, value, value_two);
            }
        }
    }
}

#[test]
fn high_word_decides_64_bit_comparisons() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 0x1_0000_0005u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GE"}]}
        ]
    }));
    let prog = x86_64(&s);
    let read = nr(Abi::X86_64, "read");
    let write = nr(Abi::X86_64, "write");
    assert_eq!(run(&prog, ARCH_X86_64, read, args0(5)), RET_ALLOW);
    assert_eq!(
        run(&prog, ARCH_X86_64, read, args0(0x1_0000_0005)),
        errno(1)
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, read, args0(0x2_0000_0005)),
        RET_ALLOW
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, write, [0, 0xffff_ffff, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, write, [0, 0x1_0000_0000, 0, 0, 0, 0]),
        errno(1)
    );
}

#[test]
fn masked_eq_tests_the_masked_bits() {
    // Docker's clone rule: allow unless a namespace flag is set.
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2_114_060_288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 2, "value": 0xff00_0000_0000_00f0u64, "valueTwo": 0x1200_0000_0000_0030u64,
                      "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0xf0, "valueTwo": 0x1f, "op": "SCMP_CMP_MASKED_EQ"}]}]
    }));
    let prog = x86_64(&s);
    let clone = nr(Abi::X86_64, "clone");
    assert_eq!(
        run(&prog, ARCH_X86_64, clone, args0(0x0100_0011)),
        RET_ALLOW
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, clone, args0(0x1000_0000)),
        errno(1),
        "CLONE_NEWUSER"
    );
    let read = nr(Abi::X86_64, "read");
    assert_eq!(
        run(
            &prog,
            ARCH_X86_64,
            read,
            [0, 0, 0x12ab_cdef_0000_0037, 0, 0, 0]
        ),
        RET_ALLOW
    );
    assert_eq!(
        run(
            &prog,
            ARCH_X86_64,
            read,
            [0, 0, 0x13ab_cdef_0000_0037, 0, 0, 0]
        ),
        errno(1)
    );
    assert_eq!(
        run(
            &prog,
            ARCH_X86_64,
            read,
            [0, 0, 0x1200_0000_0000_0040, 0, 0, 0]
        ),
        errno(1)
    );
    // valueTwo has bits outside the mask: never matches.
    let write = nr(Abi::X86_64, "write");
    for a in [0x1f, 0x10, 0xff, 0] {
        assert_eq!(run(&prog, ARCH_X86_64, write, args0(a)), errno(1));
    }
}

#[test]
fn several_args_in_one_rule_are_anded() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mmap"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 2, "value": 4, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 4},
                     {"index": 3, "value": 0x20, "op": "SCMP_CMP_EQ"}]}]
    }));
    let prog = x86_64(&s);
    let mmap = nr(Abi::X86_64, "mmap");
    assert_eq!(
        run(&prog, ARCH_X86_64, mmap, [0, 0, 7, 0x20, 0, 0]),
        errno(1)
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, mmap, [0, 0, 3, 0x20, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, mmap, [0, 0, 7, 0x22, 0, 0]),
        RET_ALLOW
    );
}

#[test]
fn an_argument_named_twice_in_one_rule_gives_alternatives_like_runc() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                     {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
    }));
    let prog = x86_64(&s);
    let personality = nr(Abi::X86_64, "personality");
    assert_eq!(run(&prog, ARCH_X86_64, personality, args0(0)), RET_ALLOW);
    assert_eq!(run(&prog, ARCH_X86_64, personality, args0(8)), RET_ALLOW);
    assert_eq!(run(&prog, ARCH_X86_64, personality, args0(9)), errno(1));
}

#[test]
fn several_rules_for_one_syscall_apply_to_their_own_arguments() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_TRAP",
             "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let prog = x86_64(&s);
    let socket = nr(Abi::X86_64, "socket");
    assert_eq!(run(&prog, ARCH_X86_64, socket, args0(1)), errno(11));
    assert_eq!(run(&prog, ARCH_X86_64, socket, args0(2)), errno(22));
    assert_eq!(run(&prog, ARCH_X86_64, socket, args0(3)), RET_ALLOW);
    assert_eq!(
        run(&prog, ARCH_X86_64, socket, [2, 3, 0, 0, 0, 0]),
        RET_TRAP,
        "TRAP outranks ERRNO"
    );
}

#[test]
fn highest_precedence_action_wins_when_rules_overlap() {
    for order in [false, true] {
        let mut syscalls = vec![
            json!({"names": ["mkdir"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_GT"}]}),
            json!({"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS",
                   "args": [{"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]}),
            json!({"names": ["mkdir"], "action": "SCMP_ACT_LOG",
                   "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_GE"}]}),
            json!({"names": ["mkdir"], "action": "SCMP_ACT_KILL_THREAD",
                   "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}),
        ];
        if order {
            syscalls.reverse();
        }
        let s = spec(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": syscalls}));
        let prog = x86_64(&s);
        let mkdir = nr(Abi::X86_64, "mkdir");
        let verdict = |mode| run(&prog, ARCH_X86_64, mkdir, [0, mode, 0, 0, 0, 0]);
        assert_eq!(verdict(0), errno(1));
        assert_eq!(verdict(3), RET_ALLOW);
        assert_eq!(verdict(5), RET_LOG, "LOG outranks ALLOW");
        assert_eq!(verdict(7), RET_KILL_PROCESS);
        assert_eq!(verdict(9), RET_KILL_THREAD);
    }
}

#[test]
fn rules_with_the_default_action_are_ignored_like_libseccomp() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO"}
        ]
    }));
    let prog = x86_64(&s);
    let write = nr(Abi::X86_64, "write");
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86_64, "read"), NO_ARGS),
        RET_ALLOW
    );
    assert_eq!(run(&prog, ARCH_X86_64, write, args0(1)), errno(1));
    // read needs no code; write's rule is a range of its own: ld arch, jeq, ld nr, three
    // jumps over four ranges (the fourth is x32), three rets.
    assert_eq!(prog.len(), 9, "{prog:#?}");
}

#[test]
fn unknown_syscall_names_are_skipped_per_architecture() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["no_such_syscall", "socketcall", "arm_fadvise64_64",
                                "set_tls", "getcwd", ""], "action": "SCMP_ACT_ALLOW"}]
    }));
    let prog = x86_64(&s);
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86_64, "getcwd"), NO_ARGS),
        RET_ALLOW
    );
    assert_eq!(
        run(&prog, ARCH_I386, nr(Abi::X86, "socketcall"), NO_ARGS),
        RET_ALLOW
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86, "access"), NO_ARGS),
        errno(1),
        "access's i386 number (33) is another syscall on x86_64"
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86, "socketcall"), NO_ARGS),
        RET_ENOSYS,
        "socketcall's i386 number is above x86_64's newest named syscall (getcwd)"
    );
}

#[test]
fn x86_compat_syscalls_use_their_own_numbers() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let prog = x86_64(&s);
    assert_eq!(nr(Abi::X86_64, "getcwd"), 79);
    assert_eq!(nr(Abi::X86, "getcwd"), 183);
    assert_eq!(run(&prog, ARCH_X86_64, 79, NO_ARGS), RET_ALLOW);
    assert_eq!(run(&prog, ARCH_X86_64, 78, NO_ARGS), errno(1));
    // Above x86_64's newest named syscall (getcwd, 79): runc's ENOSYS.
    assert_eq!(run(&prog, ARCH_X86_64, 183, NO_ARGS), RET_ENOSYS);
    assert_eq!(run(&prog, ARCH_I386, 183, NO_ARGS), RET_ALLOW);
    assert_eq!(run(&prog, ARCH_I386, 79, NO_ARGS), errno(1));
    // 0x40000000 is an ordinary (unknown) number on i386, above its newest named one.
    assert_eq!(
        run(&prog, ARCH_I386, X32_SYSCALL_BIT | 183, NO_ARGS),
        RET_ENOSYS
    );
}

#[test]
fn x32_syscalls_are_killed_unless_x32_is_listed() {
    let rules = json!([{"names": ["getcwd", "ioctl"], "action": "SCMP_ACT_ALLOW"}]);
    let without = spec(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules}));
    let prog = x86_64(&without);
    assert_eq!(
        run(&prog, ARCH_X86_64, X32_SYSCALL_BIT | 79, NO_ARGS),
        RET_KILL_PROCESS
    );
    assert_eq!(run(&prog, ARCH_X86_64, u32::MAX, NO_ARGS), RET_KILL_PROCESS);

    let with = spec(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"], "syscalls": rules}));
    let prog = x86_64(&with);
    assert_eq!(
        run(&prog, ARCH_X86_64, X32_SYSCALL_BIT | 79, NO_ARGS),
        RET_ALLOW
    );
    assert_eq!(run(&prog, ARCH_X86_64, 79, NO_ARGS), RET_ALLOW);
    assert_eq!(
        run(&prog, ARCH_X86_64, X32_SYSCALL_BIT | 80, NO_ARGS),
        errno(1)
    );
    // ioctl has its own x32 number (514); x86_64's 16 with the x32 bit is not x32's ioctl.
    assert_eq!(
        run(&prog, ARCH_X86_64, X32_SYSCALL_BIT | 514, NO_ARGS),
        RET_ALLOW
    );
    assert_eq!(
        run(&prog, ARCH_X86_64, X32_SYSCALL_BIT | 16, NO_ARGS),
        errno(1)
    );
    assert_eq!(run(&prog, ARCH_X86_64, 16, NO_ARGS), RET_ALLOW);
    // Above x32's newest named syscall (ioctl, 514): runc's ENOSYS.
    assert_eq!(run(&prog, ARCH_X86_64, u32::MAX, NO_ARGS), RET_ENOSYS);
}

#[test]
fn x32_rules_compare_the_low_word_like_libseccomp() {
    let s = spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}));
    let prog = x86_64(&s);
    let native = nr(Abi::X86_64, "personality");
    let x32 = nr(Abi::X32, "personality");
    assert_eq!(x32, X32_SYSCALL_BIT | native);
    assert_eq!(run(&prog, ARCH_X86_64, native, args0(8)), errno(1));
    assert_eq!(
        run(&prog, ARCH_X86_64, native, args0(0x1_0000_0008)),
        RET_ALLOW
    );
    assert_eq!(run(&prog, ARCH_X86_64, x32, args0(8)), errno(1));
    assert_eq!(run(&prog, ARCH_X86_64, x32, args0(0x1_0000_0008)), errno(1));
}

#[test]
fn architectures_the_spec_leaves_out_are_killed() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        // PPC64LE cannot occur on an x86_64 kernel: accepted and irrelevant, as with runc.
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_AARCH64"],
    }));
    let prog = x86_64(&s);
    assert_eq!(run(&prog, ARCH_X86_64, 1, NO_ARGS), RET_ALLOW);
    for arch in [ARCH_I386, ARCH_AARCH64, ARCH_ARM, 0, 0xc000_0015] {
        assert_eq!(run(&prog, arch, 1, NO_ARGS), RET_KILL_PROCESS, "{arch:#x}");
    }
}

#[test]
fn aarch64_filter_covers_arm_compat_and_arm_private_syscalls() {
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["getcwd", "set_tls", "cacheflush", "open"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let prog = compile_for(Abi::Aarch64, &s);
    assert_eq!(run(&prog, ARCH_AARCH64, 17, NO_ARGS), RET_ALLOW, "getcwd");
    assert_eq!(run(&prog, ARCH_ARM, 183, NO_ARGS), RET_ALLOW, "getcwd");
    assert_eq!(
        run(&prog, ARCH_ARM, 0xf_0005, NO_ARGS),
        RET_ALLOW,
        "set_tls"
    );
    assert_eq!(
        run(&prog, ARCH_ARM, 0xf_0002, NO_ARGS),
        RET_ALLOW,
        "cacheflush"
    );
    assert_eq!(run(&prog, ARCH_ARM, 5, NO_ARGS), RET_ALLOW, "open");
    // Above aarch64's newest named syscall: runc's ENOSYS.
    assert_eq!(run(&prog, ARCH_AARCH64, 0xf_0005, NO_ARGS), RET_ENOSYS);
    assert_eq!(run(&prog, ARCH_X86_64, 79, NO_ARGS), RET_KILL_PROCESS);
    let pers_arm = nr(Abi::Arm, "personality");
    assert_eq!(
        run(&prog, ARCH_ARM, pers_arm, args0(0xffff_ffff)),
        RET_ALLOW
    );
    assert_eq!(
        run(&prog, ARCH_ARM, pers_arm, args0(0x1_ffff_ffff)),
        RET_ALLOW,
        "32-bit ABI: only the low word"
    );
    let pers = nr(Abi::Aarch64, "personality");
    assert_eq!(
        run(&prog, ARCH_AARCH64, pers, args0(0x1_ffff_ffff)),
        errno(1)
    );
    assert_matches_model(Abi::Aarch64, &s, &prog, &[NO_ARGS, args0(0xffff_ffff)]);
}

/// A profile shaped like Docker's default: ~400 names allowed, a few argument rules, three ABIs.
fn docker_sized_profile() -> LinuxSeccomp {
    const DENIED: [&str; 24] = [
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "clone",
        "clone3",
        "create_module",
        "delete_module",
        "finit_module",
        "init_module",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "mount",
        "personality",
        "pivot_root",
        "ptrace",
        "reboot",
        "socket",
        "swapon",
        "umount2",
        "unshare",
        "userfaultfd",
    ];
    let mut names: Vec<String> = syscalls::x86_64::Sysno::iter()
        .map(|s| s.name().to_owned())
        .filter(|n| !DENIED.contains(&n.as_str()))
        .collect();
    // i386- and arm-only names, as in Docker's profile.
    names.extend(
        [
            "_llseek",
            "_newselect",
            "socketcall",
            "mmap2",
            "fstat64",
            "stat64",
            "lstat64",
            "fcntl64",
            "sigreturn",
            "waitpid",
            "ugetrlimit",
            "arm_fadvise64_64",
            "set_tls",
            "breakpoint",
            "cacheflush",
            "sync_file_range2",
            "send",
            "recv",
        ]
        .map(str::to_owned),
    );
    names.extend((0..20).map(|i| format!("future_syscall_{i}")));
    spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 131_072, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4_294_967_295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2_114_060_288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_LE"},
                      {"index": 1, "value": 1, "op": "SCMP_CMP_GT"}]},
            {"names": ["mount"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 3, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_LT"}]},
            {"names": ["mount"], "action": "SCMP_ACT_TRAP"}
        ]
    }))
}

#[test]
fn docker_sized_profile_is_small_fast_and_exact() {
    let s = docker_sized_profile();
    let names = s.syscalls().as_ref().expect("syscalls")[0].names().len();
    assert!(names >= 380, "{names} names");

    let prog = x86_64(&s);
    assert!(prog.len() < 1200, "{} instructions", prog.len());

    let argsets = [
        NO_ARGS,
        args0(8),
        args0(40),
        args0(0x1000_0000),
        args0(0xffff_ffff),
        args0(0x1_ffff_ffff),
        [16, 2, 0, 0, 0, 0],
        [17, 2, 0, 0x1_0000_0000, 0, 0],
    ];
    assert_matches_model(Abi::X86_64, &s, &prog, &argsets);

    // The dispatch is a binary search: a syscall costs a handful of instructions.
    let read = nr(Abi::X86_64, "read");
    let (_, steps) = execute(&prog, ARCH_X86_64, read, NO_ARGS);
    assert!(steps <= 14, "read takes {steps} instructions");
    let worst = (0..600)
        .map(|n| execute(&prog, ARCH_X86_64, n, NO_ARGS).1)
        .max()
        .expect("some");
    assert!(
        worst <= 24,
        "worst native syscall takes {worst} instructions"
    );

    // Timing: release builds stay far below 1 ms; debug builds get slack.
    let budget = if cfg!(debug_assertions) {
        Duration::from_millis(25)
    } else {
        Duration::from_millis(1)
    };
    let mut best = Duration::MAX;
    for _ in 0..20 {
        let start = Instant::now();
        let program = compile::compile(&s, Abi::X86_64).expect("compiles");
        best = best.min(start.elapsed());
        assert_eq!(program.insns.len(), prog.len());
    }
    eprintln!(
        "docker-sized profile: {} instructions, compiled in {best:?}, read in {steps} steps, worst {worst}",
        prog.len()
    );
    assert!(best < budget, "compiling took {best:?}");
}

#[test]
fn long_argument_chains_stay_within_jump_reach() {
    // 300 rules on one syscall make its checks far longer than a conditional jump reaches, and
    // 300 more syscalls make the search tree wide.
    let mut syscalls: Vec<Value> = (0..300u64)
        .map(|i| {
            json!({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1,
                   "args": [{"index": 1, "value": 0x5400 + i, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let even: Vec<&str> = syscalls::x86_64::Sysno::iter()
        .filter(|s| s.id() % 2 == 0)
        .map(|s| s.name())
        .collect();
    syscalls.push(json!({"names": even, "action": "SCMP_ACT_ALLOW"}));
    syscalls.push(json!({"names": ["write"], "action": "SCMP_ACT_TRAP",
                         "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}));
    let s = spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1000,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": syscalls
    }));
    let prog = x86_64(&s);
    assert!(
        prog.len() > 1000 && prog.len() < MAX_INSNS,
        "{}",
        prog.len()
    );
    let ioctl = nr(Abi::X86_64, "ioctl");
    for i in 0..300 {
        assert_eq!(
            run(&prog, ARCH_X86_64, ioctl, [3, 0x5400 + i, 0, 0, 0, 0]),
            errno(u32::try_from(i).expect("small") + 1)
        );
    }
    let argsets = [
        NO_ARGS,
        [2, 0x5400, 0, 0, 0, 0],
        [1, 0x5400 + 299, 0, 0, 0, 0],
    ];
    assert_matches_model(Abi::X86_64, &s, &prog, &argsets);
}

/// xorshift64*: deterministic randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[test]
fn random_profiles_match_the_reference_model() {
    const NAMES: [&str; 10] = [
        "read",
        "write",
        "ioctl",
        "personality",
        "socket",
        "socketcall",
        "mmap",
        "mmap2",
        "set_tls",
        "getcwd",
    ];
    const ACTIONS: [&str; 8] = [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
        "SCMP_ACT_KILL_THREAD",
    ];
    const ARCHES: [&str; 4] = [
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_NATIVE",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let value = |rng: &mut Rng| {
            if rng.below(3) == 0 {
                rng.next()
            } else {
                *rng.pick(&EDGES)
            }
        };
        let syscalls: Vec<Value> = (0..1 + rng.below(12))
            .map(|_| {
                let names: Vec<&str> = (0..1 + rng.below(3)).map(|_| *rng.pick(&NAMES)).collect();
                let args: Vec<Value> = (0..rng.below(4))
                    .map(|_| {
                        json!({"index": rng.below(3), "value": value(&mut rng),
                               "valueTwo": value(&mut rng), "op": rng.pick(&OPS)})
                    })
                    .collect();
                json!({"names": names, "action": rng.pick(&ACTIONS),
                       "errnoRet": rng.below(3), "args": args})
            })
            .collect();
        let arches: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(&ARCHES)).collect();
        let s = spec(json!({
            "defaultAction": rng.pick(&ACTIONS), "defaultErrnoRet": rng.below(3),
            "architectures": arches, "syscalls": syscalls
        }));
        let argsets: Vec<[u64; 6]> = (0..12)
            .map(|_| [value(&mut rng), value(&mut rng), value(&mut rng), 0, 0, 0])
            .collect();
        for native in [Abi::X86_64, Abi::Aarch64] {
            let prog = compile_for(native, &s);
            let model = Model::new(&s, native);
            for &abi in native.family() {
                let arch = abi.audit_arch();
                let mut nrs: Vec<u32> = NAMES
                    .iter()
                    .filter_map(|n| abi.syscall_number(n))
                    .flat_map(|n| [n.wrapping_sub(1), n, n + 1])
                    .collect();
                nrs.extend([0, X32_SYSCALL_BIT, u32::MAX]);
                for nr in nrs {
                    for &args in &argsets {
                        assert_eq!(
                            run(&prog, arch, nr, args),
                            model.verdict(arch, nr, args),
                            "{native:?} {abi:?} nr {nr:#x} args {args:x?}\n{s:#?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn flags_are_passed_to_the_kernel() {
    let s = spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}));
    let program = compile::compile(&s, Abi::X86_64).expect("compiles");
    assert_eq!(u64::from(program.flags), 0b111);
    assert_eq!(
        libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        0b111
    );
}

fn compile_error(value: Value) -> String {
    let err = compile::compile(&spec(value), Abi::X86_64).expect_err("must be refused");
    err.to_string()
}

#[test]
fn notify_rules_hand_syscalls_to_the_agent_and_bad_uses_are_refused() {
    let profile = spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}));
    let program = compile::compile(&profile, Abi::X86_64).expect("compiles");
    assert_eq!(
        program.flags & compile::FLAG_NEW_LISTENER,
        compile::FLAG_NEW_LISTENER
    );
    let prog = program.insns;
    verify(&prog);
    let mkdir = nr(Abi::X86_64, "mkdirat");
    assert_eq!(run(&prog, ARCH_X86_64, mkdir, [0; 6]), RET_USER_NOTIF);
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86_64, "read"), [0; 6]),
        RET_ALLOW
    );

    let msg = compile_error(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(msg.contains("listenerPath"), "{msg}");
    let msg = compile_error(json!({"defaultAction": "SCMP_ACT_NOTIFY",
        "listenerPath": "/run/agent.sock"}));
    assert!(msg.contains("default action"), "{msg}");
    let msg = compile_error(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(msg.contains("write"), "{msg}");
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys_like_runc() {
    // An allow list with an errno default, as profiles written before clone3 existed.
    let profile = spec(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "write", "open", "clone", "execve", "kexec_load"],
                      "action": "SCMP_ACT_ALLOW"}]}));
    let prog = x86_64(&profile);
    verify(&prog);
    let newest = nr(Abi::X86_64, "kexec_load");
    let clone3 = nr(Abi::X86_64, "clone3");
    assert!(clone3 > newest);
    // Newer than anything the profile names: ENOSYS, so glibc falls back to clone.
    assert_eq!(run(&prog, ARCH_X86_64, clone3, [0; 6]), RET_ENOSYS);
    assert_eq!(run(&prog, ARCH_X86_64, newest + 1, [0; 6]), RET_ENOSYS);
    // Older but not named: the profile's default.
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X86_64, "mkdir"), [0; 6]),
        errno(1)
    );
    assert_eq!(run(&prog, ARCH_X86_64, newest, [0; 6]), RET_ALLOW);
    // x32 and x86 have their own newest syscall.
    let x32_newest = nr(Abi::X32, "kexec_load");
    assert_eq!(run(&prog, ARCH_X86_64, x32_newest + 1, [0; 6]), RET_ENOSYS);
    assert_eq!(
        run(&prog, ARCH_X86_64, nr(Abi::X32, "mkdir"), [0; 6]),
        errno(1)
    );
    let x86_newest = nr(Abi::X86, "kexec_load");
    assert_eq!(run(&prog, ARCH_I386, x86_newest + 1, [0; 6]), RET_ENOSYS);
    assert_matches_model(Abi::X86_64, &profile, &prog, &[[0; 6]]);

    // No stub when the default allows, when it is ENOSYS already, or when no architecture is
    // listed (runc finds the newest syscall per listed architecture).
    for value in [
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}),
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
               "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
        json!({"defaultAction": "SCMP_ACT_ERRNO",
               "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
    ] {
        let profile = spec(value.clone());
        let prog = x86_64(&profile);
        let default = action_value(profile.default_action(), profile.default_errno_ret());
        assert_eq!(run(&prog, ARCH_X86_64, clone3, [0; 6]), default, "{value}");
    }
}

#[test]
fn invalid_profiles_are_refused_with_what_is_wrong() {
    let msg = compile_error(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert!(
        msg.contains("argument index 6") && msg.contains("(read)"),
        "{msg}"
    );

    let msg = compile_error(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}));
    assert!(msg.contains("errnoRet 70000"), "{msg}");

    let msg = compile_error(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}));
    assert!(
        msg.contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
        "{msg}"
    );

    // Unknown actions, operators and flags never reach the compiler: the spec parser names them.
    let err = serde_json::from_value::<LinuxSeccomp>(json!({"defaultAction": "SCMP_ACT_MAYBE"}))
        .expect_err("unknown action");
    assert!(err.to_string().contains("SCMP_ACT_MAYBE"), "{err}");
}

#[test]
fn programs_over_the_kernel_limit_are_refused() {
    let syscalls: Vec<Value> = (0..1100u64)
        .map(|i| {
            json!({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 1, "value": 0x1_0000_0000u64 + i, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let err = compile::compile(
        &spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls})),
        Abi::X86_64,
    )
    .expect_err("too large");
    assert!(
        matches!(err, SeccompError::ProgramTooLarge { max: 4096, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("4096"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Real-kernel tests: each installs a filter in a forked child, which reports through its exit
// status. The child only makes raw syscalls (it is forked from a multi-threaded test process,
// so it must not allocate).

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

/// Runs `body` in a forked child after no_new_privs; returns how the child ended.
fn in_child(filter: &Filter, body: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child only makes raw syscalls (prctl, seccomp, the tested syscalls) and
    // leaves with _exit, all async-signal-safe; nothing allocates or takes locks.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: plain prctl with integer arguments.
            let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let code = if nnp != 0 {
                200
            } else if filter.load().is_err() {
                201
            } else {
                body()
            };
            // SAFETY: ends the child without running the parent's atexit handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

fn errno_now() -> i32 {
    nix::errno::Errno::last_raw()
}

#[test]
fn kernel_applies_errno_and_argument_rules() {
    let dir = std::env::temp_dir().join(format!("berth-seccomp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let denied = std::ffi::CString::new(dir.join("denied").into_os_string().into_encoded_bytes())
        .expect("path");
    let allowed = std::ffi::CString::new(dir.join("allowed").into_os_string().into_encoded_bytes())
        .expect("path");

    let filter = Filter::compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99},
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"}]}
        ]
    })))
    .expect("compiles");

    let status = in_child(&filter, || {
        let mut buf = [0u8; 256];
        // SAFETY: raw syscalls with a valid buffer and NUL-terminated paths that outlive them.
        unsafe {
            if libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) != -1
                || errno_now() != 99
            {
                return 1;
            }
            let mode_denied: libc::c_long = 0o700;
            let mode_allowed: libc::c_long = 0o755;
            if libc::syscall(
                libc::SYS_mkdirat,
                libc::AT_FDCWD,
                denied.as_ptr(),
                mode_denied,
            ) != -1
                || errno_now() != libc::EPERM
            {
                return 2;
            }
            if libc::syscall(
                libc::SYS_mkdirat,
                libc::AT_FDCWD,
                allowed.as_ptr(),
                mode_allowed,
            ) != 0
            {
                return 3;
            }
            // The high word counts: 0x1_000001c0 is not 0o700 (the kernel truncates the
            // mode, so this creates the directory).
            let wide_mode: libc::c_long = 0x1_0000_01c0;
            if libc::syscall(
                libc::SYS_mkdirat,
                libc::AT_FDCWD,
                denied.as_ptr(),
                wide_mode,
            ) != 0
            {
                return 4;
            }
            if libc::syscall(libc::SYS_getpid) <= 0 {
                return 5;
            }
        }
        0
    });
    let denied_exists = dir.join("denied").exists();
    let allowed_exists = dir.join("allowed").exists();
    std::fs::remove_dir_all(&dir).expect("cleanup");
    assert_eq!(status, WaitStatus::Exited(status.pid().expect("pid"), 0));
    assert!(denied_exists && allowed_exists);
}

#[test]
fn kernel_kills_the_process_with_sigsys() {
    let filter = Filter::compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]
    })))
    .expect("compiles");
    let status = in_child(&filter, || {
        // SAFETY: a raw syscall without arguments.
        unsafe { libc::syscall(libc::SYS_getppid) };
        0
    });
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{status:?}"
    );
}

#[test]
fn kernel_runs_a_docker_sized_allow_list() {
    let mut s = docker_sized_profile();
    // The child needs getppid denied to observe the default action, and exit_group allowed.
    let mut syscalls = s.syscalls().clone().expect("syscalls");
    let names: Vec<String> = syscalls[0]
        .names()
        .iter()
        .filter(|n| *n != "getppid")
        .cloned()
        .collect();
    syscalls[0].set_names(names);
    s.set_syscalls(Some(syscalls));
    s.set_default_errno_ret(Some(77));
    let filter = Filter::compile(&s).expect("compiles");
    let status = in_child(&filter, || {
        let mut buf = [0u8; 256];
        // SAFETY: raw syscalls with a valid buffer.
        unsafe {
            if libc::syscall(libc::SYS_getppid) != -1 || errno_now() != 77 {
                return 1;
            }
            if libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) <= 0 {
                return 2;
            }
            // personality(0xffffffff) queries the persona: allowed by an argument rule.
            if libc::syscall(libc::SYS_personality, 0xffff_ffff_u64) == -1 {
                return 3;
            }
            // personality(PER_LINUX32 = 8) is allowed; 1 is not.
            if libc::syscall(libc::SYS_personality, 1) != -1 || errno_now() != 77 {
                return 4;
            }
        }
        0
    });
    assert_eq!(status, WaitStatus::Exited(status.pid().expect("pid"), 0));
}

#[test]
fn load_without_no_new_privs_as_unprivileged_user_reports_eacces() {
    let filter =
        Filter::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW"}))).expect("compiles");
    // SAFETY: the child only makes raw syscalls and leaves with _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: setresuid with integer arguments; dropping root drops CAP_SYS_ADMIN.
            let code = if unsafe { libc::setresuid(65534, 65534, 65534) } != 0 {
                100
            } else {
                match filter.load() {
                    Err(SeccompError::Load {
                        errno: nix::errno::Errno::EACCES,
                        ..
                    }) => 0,
                    Err(_) => 101,
                    Ok(_) => 102,
                }
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            assert_eq!(
                waitpid(child, None).expect("waitpid"),
                WaitStatus::Exited(child, 0)
            );
        }
    }
    let err = SeccompError::Load {
        errno: nix::errno::Errno::EACCES,
        flags: 1,
    };
    assert!(err.to_string().contains("no_new_privs"), "{err}");
}

#[cfg(target_arch = "x86_64")]
mod x86_64_kernel {
    use super::*;

    /// An i386 syscall through `int 0x80` (no arguments); returns the raw result.
    fn int80(nr: u32) -> i64 {
        let ret: u32;
        // SAFETY: int 0x80 enters the kernel's i386 compat path; eax is the only register
        // read or written (besides what the kernel preserves).
        unsafe {
            core::arch::asm!(
                "int 0x80",
                inlateout("eax") nr => ret,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                options(nostack),
            );
        }
        i64::from(ret as i32)
    }

    /// Whether this kernel runs i386 syscalls at all (ia32 emulation may be disabled).
    fn ia32_available() -> bool {
        // SAFETY: the child only makes raw syscalls and leaves with _exit.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let ok = int80(20) == i64::from(std::process::id()); // getpid
                                                                     // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            ForkResult::Parent { child } => {
                waitpid(child, None).expect("waitpid") == WaitStatus::Exited(child, 0)
            }
        }
    }

    #[test]
    fn kernel_filters_i386_syscalls_by_their_own_numbers_and_kills_unlisted_ones() {
        if !ia32_available() {
            eprintln!("skipped: this kernel does not run i386 syscalls");
            return;
        }
        let listed = Filter::compile(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55}]
        })))
        .expect("compiles");
        let status = in_child(&listed, || {
            if int80(64) != -55 {
                return 1; // i386 getppid
            }
            if int80(20) <= 0 {
                return 2; // i386 getpid
            }
            0
        });
        assert_eq!(status, WaitStatus::Exited(status.pid().expect("pid"), 0));

        let unlisted =
            Filter::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW"}))).expect("compiles");
        let status = in_child(&unlisted, || {
            int80(20);
            0
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{status:?}"
        );
    }

    #[test]
    fn kernel_kills_x32_syscalls_unless_x32_is_listed() {
        let x32_getpid = libc::c_long::from(X32_SYSCALL_BIT | 39);
        let without =
            Filter::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW"}))).expect("compiles");
        let status = in_child(&without, || {
            // SAFETY: a raw syscall without arguments.
            unsafe { libc::syscall(x32_getpid) };
            0
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{status:?}"
        );

        let with = Filter::compile(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 56}]
        })))
        .expect("compiles");
        let status = in_child(&with, || {
            // SAFETY: raw syscalls without arguments. The filter runs before the kernel looks
            // the number up, so the x32 verdict shows even without x32 support.
            unsafe {
                if libc::syscall(libc::c_long::from(X32_SYSCALL_BIT | 110)) != -1
                    || errno_now() != 56
                {
                    return 1;
                }
                libc::syscall(x32_getpid); // a pid, or ENOSYS without x32 support
            }
            0
        });
        assert_eq!(status, WaitStatus::Exited(status.pid().expect("pid"), 0));
    }
}
