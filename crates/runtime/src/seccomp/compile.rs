//! From the spec's `linux.seccomp` to a BPF program.
//!
//! Program layout (each part is emitted back to front by [`Assembler`]):
//!
//! ```text
//!   ld arch
//!   jeq <native arch>  -> native block, else next check   (one check per covered ABI)
//!   ...
//!   ret KILL_PROCESS                                      (an architecture the spec left out)
//! block:
//!   ld nr
//!   binary search over ranges of syscall numbers: every range maps to one verdict or to
//!   the argument checks of one syscall, so a syscall costs ~log2(ranges) jumps, no matter
//!   how many syscalls the profile names
//!   argument checks: one per syscall with argument rules, rules in priority order
//! ```

use std::collections::HashMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};

use super::arch::{Abi, X32_SYSCALL_BIT};
use super::bpf::{Assembler, Cmp, Insn, Target, ALU_AND_K, LD_W_ABS, MAX_INSNS};
use super::SeccompError;

/// A compiled program with the flags to install it with.
#[derive(Debug)]
pub(super) struct Program {
    pub(super) insns: Vec<Insn>,
    pub(super) flags: u32,
}

// seccomp return values (linux/seccomp.h).
pub(super) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(super) const RET_KILL_THREAD: u32 = 0x0000_0000;
pub(super) const RET_TRAP: u32 = 0x0003_0000;
pub(super) const RET_ERRNO: u32 = 0x0005_0000;
pub(super) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub(super) const RET_TRACE: u32 = 0x7ff0_0000;
pub(super) const RET_LOG: u32 = 0x7ffc_0000;
pub(super) const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0x0000_ffff;

// Offsets into `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
const ARGS_OFFSET: u32 = 16;

/// runc's errno for SCMP_ACT_ERRNO and SCMP_ACT_TRACE without errnoRet.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// One spec rule: the syscalls it names, its verdict, and the argument conditions (ANDed).
struct SpecRule<'a> {
    names: &'a [String],
    action: u32,
    conds: Vec<Cond>,
}

#[derive(Clone, Copy, Debug)]
struct Cond {
    arg: u8,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

/// A condition as one ABI evaluates it, reduced to what BPF has to test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Test {
    /// `(word & mask) == datum` holds for every word present; `negate` inverts the outcome.
    Equal {
        arg: u8,
        words: [Option<WordEq>; 2],
        negate: bool,
    },
    /// The argument (64-bit if `wide`, else its low word) is greater than `value`; `negate`
    /// inverts the outcome.
    Greater {
        arg: u8,
        value: u64,
        wide: bool,
        negate: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct WordEq {
    high: bool,
    mask: u32,
    datum: u32,
}

enum Lowered {
    Always(bool),
    Test(Test),
}

/// A rule as one ABI evaluates it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Rule {
    action: u32,
    tests: Vec<Test>,
}

/// What one syscall number gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Verdict(u32),
    Chain(usize),
}

/// SECCOMP_FILTER_FLAG_NEW_LISTENER: the kernel returns a notify descriptor for an agent.
pub(super) const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19), valid only with NEW_LISTENER.
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// What a syscall newer than the profile gets (runc's -ENOSYS stub): `ERRNO(ENOSYS)`.
pub(super) const RET_ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

/// Compiles `seccomp` for a kernel whose native ABI is `native`.
pub(super) fn compile(seccomp: &LinuxSeccomp, native: Abi) -> Result<Program, SeccompError> {
    let default = verdict(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        || "defaultAction".to_owned(),
    )?;
    if default == RET_USER_NOTIF {
        return Err(SeccompError::NotifyDefault);
    }
    let syscalls = seccomp.syscalls().as_deref().unwrap_or_default();
    let rules = spec_rules(syscalls)?;
    let notify = rules.iter().any(|r| r.action == RET_USER_NOTIF);
    if let Some(rule) = syscalls.iter().find(|s| {
        s.action() == LinuxSeccompAction::ScmpActNotify && s.names().iter().any(|n| n == "write")
    }) {
        // The agent could never be told: the runtime writes to hand the descriptor over.
        return Err(SeccompError::NotifyWrite {
            rule: rule.names().join(", "),
        });
    }
    if notify && seccomp.listener_path().is_none() {
        return Err(SeccompError::NotifyWithoutListener);
    }
    let mut flags = filter_flags(seccomp.flags().as_deref().unwrap_or_default(), notify)?;
    if notify {
        flags |= FLAG_NEW_LISTENER;
    }

    // The native ABI is always covered; listed ABIs of other architectures cannot occur on
    // this kernel, so leaving them out changes nothing.
    let listed = seccomp.architectures().as_deref().unwrap_or_default();
    let covered = |abi: Abi| {
        abi == native
            || listed
                .iter()
                .any(|&arch| Abi::from_spec(arch, native) == Some(abi))
    };
    let x32 = native == Abi::X86_64 && covered(Abi::X32);
    // runc answers ENOSYS for syscalls numbered above every syscall the profile names, in each
    // architecture it lists, so that programs fall back from calls newer than the profile
    // (glibc's clone3 to clone) instead of failing on the default errno. An allowing default
    // (ALLOW, LOG, TRACE) or one that already answers ENOSYS needs no stub.
    let stub = !matches!(default, RET_ALLOW | RET_LOG | RET_ENOSYS)
        && default & RET_ACTION_FULL != RET_TRACE;
    let listed_abi = |abi: Abi| {
        listed
            .iter()
            .any(|&arch| Abi::from_spec(arch, native) == Some(abi))
    };
    let newest = |abi: Abi| {
        if !stub || !listed_abi(abi) {
            return None;
        }
        syscalls
            .iter()
            .flat_map(|s| s.names())
            .filter_map(|name| abi.syscall_number(name))
            .max()
    };

    let mut asm = Assembler::default();
    let mut next = Target::Ret(RET_KILL_PROCESS);
    for &abi in native.family().iter().rev() {
        if abi == Abi::X32 || !covered(abi) {
            continue;
        }
        let limits = NewestListed {
            native: newest(abi),
            x32: if x32 && abi == Abi::X86_64 {
                newest(Abi::X32)
            } else {
                None
            },
        };
        let block = emit_block(
            &mut asm,
            abi,
            x32 && abi == Abi::X86_64,
            &rules,
            default,
            limits,
        );
        next = asm.jump(Cmp::Eq, abi.audit_arch(), block, next);
    }
    let entry = load(&mut asm, ARCH_OFFSET, next);
    let insns = asm.finish(entry);
    if insns.len() > MAX_INSNS {
        return Err(SeccompError::ProgramTooLarge {
            len: insns.len(),
            max: MAX_INSNS,
        });
    }
    Ok(Program { insns, flags })
}

/// The highest syscall number the profile names, per ABI of one block: numbers above it answer
/// ENOSYS (`None`: no such stub).
#[derive(Clone, Copy, Debug, Default)]
struct NewestListed {
    native: Option<u32>,
    x32: Option<u32>,
}

impl NewestListed {
    /// What a syscall number no rule names gets: the default action, or ENOSYS above the
    /// newest syscall the profile knows in that number's ABI.
    fn unnamed(self, nr: u32, default: u32) -> Target {
        let newest = if nr >= X32_SYSCALL_BIT {
            self.x32
        } else {
            self.native
        };
        if newest.is_some_and(|newest| nr > newest) {
            Target::Ret(RET_ENOSYS)
        } else {
            Target::Ret(default)
        }
    }
}

/// Emits the syscall dispatch of one architecture token; `x32` adds the x32 numbers to the
/// x86_64 block, whose x32 numbers otherwise get KILL_PROCESS like an unlisted architecture.
fn emit_block(
    asm: &mut Assembler,
    abi: Abi,
    x32: bool,
    rules: &[SpecRule<'_>],
    default: u32,
    newest: NewestListed,
) -> Target {
    let mut entries: Vec<(u32, usize)> = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        for name in rule.names {
            // A name this ABI lacks is skipped, as libseccomp/runc do: profiles list the
            // syscalls of every architecture they cover.
            if let Some(nr) = abi.syscall_number(name) {
                entries.push((nr, index));
            }
            if x32 {
                if let Some(nr) = Abi::X32.syscall_number(name) {
                    entries.push((nr, index));
                }
            }
        }
    }
    entries.sort_unstable();
    entries.dedup();

    let mut chains: Vec<Vec<Rule>> = Vec::new();
    let mut chain_ids: HashMap<Vec<Rule>, usize> = HashMap::new();
    let mut outcomes: Vec<(u32, Outcome)> = Vec::new();
    for group in entries.chunk_by(|a, b| a.0 == b.0) {
        let nr = group[0].0;
        let wide = if x32 && nr >= X32_SYSCALL_BIT {
            Abi::X32.wide_args()
        } else {
            abi.wide_args()
        };
        let outcome = match resolve(group.iter().map(|&(_, i)| &rules[i]), default, wide) {
            Ok(verdict) => Outcome::Verdict(verdict),
            Err(chain) => {
                let next_id = chains.len();
                let id = *chain_ids.entry(chain.clone()).or_insert(next_id);
                if id == next_id {
                    chains.push(chain);
                }
                Outcome::Chain(id)
            }
        };
        outcomes.push((nr, outcome));
    }

    // Argument checks go behind the search tree, so the tree stays dense and its jumps short.
    let chain_targets: Vec<Target> = chains
        .iter()
        .map(|chain| emit_chain(asm, chain, default))
        .collect();
    let target = |outcome: Outcome| match outcome {
        Outcome::Verdict(verdict) => Target::Ret(verdict),
        Outcome::Chain(id) => chain_targets[id],
    };

    // Ranges of syscall numbers [start, next start) with one target each, covering all of u32.
    let mut ranges: Vec<(u32, Target)> = Vec::new();
    let mut add = |start: u32, t: Target| {
        if ranges.last().map(|&(_, last)| last) != Some(t) {
            ranges.push((start, t));
        }
    };
    // A gap of unnamed numbers [start, end): one target on each side of the x32 bit, since
    // x86_64 and x32 numbers each have their own newest listed syscall.
    let gap = |add: &mut dyn FnMut(u32, Target), start: u64, end: u64| {
        let bit = u64::from(X32_SYSCALL_BIT);
        add(narrow(start), newest.unnamed(narrow(start), default));
        if x32 && start < bit && end > bit {
            add(X32_SYSCALL_BIT, newest.unnamed(X32_SYSCALL_BIT, default));
        }
    };
    let mut cursor: u64 = 0;
    for &(nr, outcome) in &outcomes {
        if u64::from(nr) > cursor {
            gap(&mut add, cursor, u64::from(nr));
        }
        add(nr, target(outcome));
        cursor = u64::from(nr) + 1;
    }
    if abi == Abi::X86_64 && !x32 {
        // No x86_64 syscall number reaches the x32 bit, so the gap ends below it.
        if cursor < u64::from(X32_SYSCALL_BIT) {
            gap(&mut add, cursor, u64::from(X32_SYSCALL_BIT));
        }
        add(X32_SYSCALL_BIT, Target::Ret(RET_KILL_PROCESS));
    } else if cursor <= u64::from(u32::MAX) {
        gap(&mut add, cursor, u64::from(u32::MAX) + 1);
    }

    let tree = emit_search(asm, &ranges);
    load(asm, NR_OFFSET, tree)
}

/// Emits a balanced binary search over `ranges` (A holds the syscall number).
fn emit_search(asm: &mut Assembler, ranges: &[(u32, Target)]) -> Target {
    match ranges {
        [] => Target::Ret(RET_KILL_PROCESS),
        [(_, only)] => *only,
        _ => {
            let mid = ranges.len() / 2;
            let high = emit_search(asm, &ranges[mid..]);
            let low = emit_search(asm, &ranges[..mid]);
            asm.jump(Cmp::Ge, ranges[mid].0, high, low)
        }
    }
}

/// Emits one syscall's rules, highest priority first: the first rule whose tests all pass
/// decides; when none does, the default action.
fn emit_chain(asm: &mut Assembler, rules: &[Rule], default: u32) -> Target {
    let mut next = Target::Ret(default);
    for rule in rules.iter().rev() {
        let mut pass = Target::Ret(rule.action);
        for test in rule.tests.iter().rev() {
            pass = emit_test(asm, test, pass, next);
        }
        next = pass;
    }
    next
}

fn emit_test(asm: &mut Assembler, test: &Test, t: Target, f: Target) -> Target {
    if t == f {
        return t;
    }
    match *test {
        Test::Equal { arg, words, negate } => {
            let (t, f) = if negate { (f, t) } else { (t, f) };
            let mut next = t;
            for word in words.iter().rev().flatten() {
                next = asm.jump(Cmp::Eq, word.datum, next, f);
                if word.mask != u32::MAX {
                    next = asm.stmt(ALU_AND_K, word.mask);
                }
                next = load(asm, arg_offset(arg, word.high), next);
            }
            next
        }
        Test::Greater {
            arg,
            value,
            wide,
            negate,
        } => {
            let (t, f) = if negate { (f, t) } else { (t, f) };
            let (hi, lo) = split(value);
            let low_decides = |asm: &mut Assembler| {
                let j = asm.jump(Cmp::Gt, lo, t, f);
                load(asm, arg_offset(arg, false), j)
            };
            if !wide {
                return low_decides(asm);
            }
            // Compare the high words; only when they are equal does the low word decide.
            let on_equal_high = if lo == u32::MAX { f } else { low_decides(asm) };
            let j = if hi == 0 {
                asm.jump(Cmp::Gt, 0, t, on_equal_high)
            } else if hi == u32::MAX {
                asm.jump(Cmp::Eq, hi, on_equal_high, f)
            } else {
                let equal = asm.jump(Cmp::Eq, hi, on_equal_high, f);
                asm.jump(Cmp::Gt, hi, t, equal)
            };
            load(asm, arg_offset(arg, true), j)
        }
    }
}

/// Emits `A = seccomp_data[offset]` in front of `then`, unless `then` needs no input.
fn load(asm: &mut Assembler, offset: u32, then: Target) -> Target {
    match then {
        Target::Ret(_) => then,
        Target::At(_) => asm.stmt(LD_W_ABS, offset),
    }
}

/// One syscall's verdict when no argument matters, or the rules to test in order.
fn resolve<'r, 'a: 'r>(
    spec: impl Iterator<Item = &'r SpecRule<'a>>,
    default: u32,
    wide: bool,
) -> Result<u32, Vec<Rule>> {
    let mut rules: Vec<Rule> = Vec::new();
    'rules: for rule in spec {
        // libseccomp refuses rules whose action is the default one (runc skips them), so such
        // a rule never shadows a lower-priority rule that matches too.
        if rule.action == default {
            continue;
        }
        let mut tests = Vec::new();
        for cond in &rule.conds {
            match lower(cond, wide) {
                Lowered::Always(true) => {}
                Lowered::Always(false) => continue 'rules,
                Lowered::Test(test) => tests.push(test),
            }
        }
        rules.push(Rule {
            action: rule.action,
            tests,
        });
    }
    // When several rules match, the kernel's precedence order decides (KILL_PROCESS first,
    // ALLOW last); flipping the sign bit makes the kernel's signed comparison an unsigned one.
    rules.sort_by_key(|rule| (rule.action & RET_ACTION_FULL) ^ 0x8000_0000);
    if let Some(first_unconditional) = rules.iter().position(|rule| rule.tests.is_empty()) {
        rules.truncate(first_unconditional + 1);
        while let [.., before, last] = rules.as_slice() {
            if before.action != last.action {
                break;
            }
            rules.remove(rules.len() - 2);
        }
    }
    match rules.first() {
        None => Ok(default),
        Some(rule) if rule.tests.is_empty() => Ok(rule.action),
        Some(_) => Err(rules),
    }
}

/// Reduces a condition to the words the ABI passes; on 32-bit ABIs only the low word counts.
fn lower(cond: &Cond, wide: bool) -> Lowered {
    let max = if wide { u64::MAX } else { u64::from(u32::MAX) };
    let value = cond.value & max;
    let arg = cond.arg;
    let greater = |value: u64, negate: bool| {
        Lowered::Test(Test::Greater {
            arg,
            value,
            wide,
            negate,
        })
    };
    match cond.op {
        LinuxSeccompOperator::ScmpCmpEq => equal(arg, max, value, false, wide),
        LinuxSeccompOperator::ScmpCmpNe => equal(arg, max, value, true, wide),
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            equal(arg, value, cond.value_two & max, false, wide)
        }
        LinuxSeccompOperator::ScmpCmpGt if value == max => Lowered::Always(false),
        LinuxSeccompOperator::ScmpCmpGt => greater(value, false),
        LinuxSeccompOperator::ScmpCmpGe if value == 0 => Lowered::Always(true),
        LinuxSeccompOperator::ScmpCmpGe => greater(value - 1, false),
        LinuxSeccompOperator::ScmpCmpLt if value == 0 => Lowered::Always(false),
        LinuxSeccompOperator::ScmpCmpLt => greater(value - 1, true),
        LinuxSeccompOperator::ScmpCmpLe if value == max => Lowered::Always(true),
        LinuxSeccompOperator::ScmpCmpLe => greater(value, true),
    }
}

fn equal(arg: u8, mask: u64, datum: u64, negate: bool, wide: bool) -> Lowered {
    let (mask_hi, mask_lo) = split(mask);
    let (datum_hi, datum_lo) = split(datum);
    let halves = [(false, mask_lo, datum_lo), (true, mask_hi, datum_hi)];
    let mut words = [None, None];
    for (slot, (high, mask, datum)) in words.iter_mut().zip(halves) {
        if high && !wide {
            break;
        }
        if datum & !mask != 0 {
            // `arg & mask` never has bits outside the mask.
            return Lowered::Always(negate);
        }
        if mask != 0 {
            *slot = Some(WordEq { high, mask, datum });
        }
    }
    if words.iter().all(Option::is_none) {
        return Lowered::Always(!negate);
    }
    Lowered::Test(Test::Equal { arg, words, negate })
}

fn spec_rules(syscalls: &[LinuxSyscall]) -> Result<Vec<SpecRule<'_>>, SeccompError> {
    let mut rules = Vec::with_capacity(syscalls.len());
    for (index, syscall) in syscalls.iter().enumerate() {
        let context = || rule_context(index, syscall);
        let action = verdict(syscall.action(), syscall.errno_ret(), context)?;
        let args = syscall.args().as_deref().unwrap_or_default();
        let mut conds = Vec::with_capacity(args.len());
        for arg in args {
            let position = u8::try_from(arg.index()).ok().filter(|&i| i < 6);
            let Some(position) = position else {
                return Err(SeccompError::ArgIndexOutOfRange {
                    rule: context(),
                    index: arg.index(),
                });
            };
            conds.push(Cond {
                arg: position,
                op: arg.op(),
                value: arg.value(),
                value_two: arg.value_two().unwrap_or(0),
            });
        }
        let names = syscall.names().as_slice();
        let repeats_an_arg = conds
            .iter()
            .enumerate()
            .any(|(i, c)| conds[..i].iter().any(|d| d.arg == c.arg));
        if repeats_an_arg {
            // runc's rule: conditions on one argument named twice are alternatives, each
            // added as a rule of its own (libseccomp cannot AND them).
            rules.extend(conds.into_iter().map(|cond| SpecRule {
                names,
                action,
                conds: vec![cond],
            }));
        } else {
            rules.push(SpecRule {
                names,
                action,
                conds,
            });
        }
    }
    Ok(rules)
}

/// The seccomp return value for a spec action.
fn verdict(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    context: impl Fn() -> String,
) -> Result<u32, SeccompError> {
    let data = || {
        let value = errno_ret.unwrap_or(DEFAULT_ERRNO);
        if value > RET_DATA {
            return Err(SeccompError::ErrnoRetOutOfRange {
                rule: context(),
                value,
            });
        }
        Ok(value)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data()?,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data()?,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
    })
}

fn filter_flags(flags: &[LinuxSeccompFilterFlag], notify: bool) -> Result<u32, SeccompError> {
    let mut bits = 0;
    for flag in flags {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 1 << 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 1 << 2,
            // The kernel accepts it only with SECCOMP_FILTER_FLAG_NEW_LISTENER.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if notify => {
                FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::UnsupportedFlag {
                    flag: flag.to_string(),
                    reason: "it only applies to a filter with SCMP_ACT_NOTIFY rules",
                });
            }
        };
    }
    Ok(bits)
}

fn rule_context(index: usize, syscall: &LinuxSyscall) -> String {
    format!("syscalls[{index}] ({})", syscall.names().join(", "))
}

/// Offset in `seccomp_data` of one 32-bit word of argument `arg` (stored in native byte order).
fn arg_offset(arg: u8, high: bool) -> u32 {
    let base = ARGS_OFFSET + 8 * u32::from(arg);
    if high == cfg!(target_endian = "little") {
        base + 4
    } else {
        base
    }
}

/// (high word, low word)
fn split(value: u64) -> (u32, u32) {
    let [h0, h1, h2, h3, l0, l1, l2, l3] = value.to_be_bytes();
    (
        u32::from_be_bytes([h0, h1, h2, h3]),
        u32::from_be_bytes([l0, l1, l2, l3]),
    )
}

/// `value` is below 2^32 at every call site (a range start after a syscall number).
fn narrow(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
