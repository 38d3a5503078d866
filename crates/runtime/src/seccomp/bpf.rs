//! Classic BPF instructions and a back-to-front assembler that keeps every conditional jump
//! within its 8-bit reach.

use std::collections::HashMap;

/// One classic BPF instruction, laid out exactly like the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Insn {
    pub(super) code: u16,
    pub(super) jt: u8,
    pub(super) jf: u8,
    pub(super) k: u32,
}

// `Filter::load` hands a `Vec<Insn>` to the kernel as `struct sock_filter[]`.
const _: () = assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<libc::sock_filter>());
const _: () = assert!(std::mem::align_of::<Insn>() == std::mem::align_of::<libc::sock_filter>());

/// `BPF_LD | BPF_W | BPF_ABS`: A = 32-bit word of `seccomp_data` at offset k.
pub(super) const LD_W_ABS: u16 = 0x20;
/// `BPF_ALU | BPF_AND | BPF_K`: A &= k.
pub(super) const ALU_AND_K: u16 = 0x54;
/// `BPF_JMP | BPF_JA`: unconditional jump by k (32-bit offset).
pub(super) const JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub(super) const JMP_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`.
pub(super) const JMP_JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K`.
pub(super) const JMP_JGE_K: u16 = 0x35;
/// `BPF_RET | BPF_K`.
pub(super) const RET_K: u16 = 0x06;

/// The kernel's BPF_MAXINSNS: seccomp(2) refuses longer programs with EINVAL.
pub(super) const MAX_INSNS: usize = 4096;

/// Comparisons a conditional jump can make between A and its constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq,
    Gt,
    Ge,
}

/// Where control goes: a verdict, or an instruction already emitted.
///
/// A verdict has no fixed place: the assembler puts a `ret` wherever a jump can reach one, so
/// code that only decides a verdict costs no instruction of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Target {
    Ret(u32),
    At(usize),
}

/// Builds a program from its last instruction to its first.
///
/// Every classic BPF jump goes forward, so when an instruction is emitted, all the places it can
/// jump to already exist and their distance is known. A conditional jump reaches at most 255
/// instructions; when a target lies further, the assembler places a copy of the `ret` or a `ja`
/// trampoline (32-bit offset) right behind the jump, and later jumps reuse it while in reach.
#[derive(Debug, Default)]
pub(super) struct Assembler {
    /// Instructions in reverse order; a position is an index into this vector.
    rev: Vec<Insn>,
    /// The nearest `ret` emitted so far for each verdict.
    rets: Vec<(u32, usize)>,
    /// The nearest `ja` trampoline emitted so far for each far target.
    trampolines: HashMap<usize, usize>,
}

impl Assembler {
    /// Emits a non-jump instruction in front of the code emitted so far.
    pub(super) fn stmt(&mut self, code: u16, k: u32) -> Target {
        self.push(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// Emits `if (A <cmp> k) goto t else goto f` in front of the code emitted so far.
    pub(super) fn jump(&mut self, cmp: Cmp, k: u32, t: Target, f: Target) -> Target {
        if t == f {
            return t;
        }
        let code = match cmp {
            Cmp::Eq => JMP_JEQ_K,
            Cmp::Gt => JMP_JGT_K,
            Cmp::Ge => JMP_JGE_K,
        };
        // Placing a stand-in for one target moves the other one a step further away, so settle
        // both until they fit (at most two rounds: a fresh stand-in sits at distance 0).
        loop {
            let jt = self.reach(t);
            let jf = self.reach(f);
            if let (Ok(jt), Ok(jf)) = (
                u8::try_from(self.distance(jt)),
                u8::try_from(self.distance(jf)),
            ) {
                return self.push(Insn { code, jt, jf, k });
            }
        }
    }

    /// Makes `target` the first instruction of the program and returns the program in order.
    pub(super) fn finish(mut self, target: Target) -> Vec<Insn> {
        match target {
            Target::Ret(verdict) => {
                self.push(ret(verdict));
            }
            Target::At(pos) => {
                if pos + 1 != self.rev.len() {
                    let k = offset32(self.distance(pos));
                    self.push(Insn {
                        code: JMP_JA,
                        jt: 0,
                        jf: 0,
                        k,
                    });
                }
            }
        }
        self.rev.reverse();
        self.rev
    }

    fn push(&mut self, insn: Insn) -> Target {
        self.rev.push(insn);
        Target::At(self.rev.len() - 1)
    }

    /// Forward offset from an instruction emitted next to the one at `pos`.
    fn distance(&self, pos: usize) -> usize {
        self.rev.len() - pos - 1
    }

    /// A position from which `target` is reached, within a conditional jump's range of the
    /// instruction emitted next (emitting a `ret` copy or a trampoline if needed).
    fn reach(&mut self, target: Target) -> usize {
        let max = usize::from(u8::MAX);
        match target {
            Target::Ret(verdict) => {
                let known = self
                    .rets
                    .iter()
                    .find(|(v, _)| *v == verdict)
                    .map(|&(_, p)| p);
                match known {
                    Some(pos) if self.distance(pos) <= max => pos,
                    _ => {
                        let pos = self.rev.len();
                        self.rev.push(ret(verdict));
                        match self.rets.iter_mut().find(|(v, _)| *v == verdict) {
                            Some(slot) => slot.1 = pos,
                            None => self.rets.push((verdict, pos)),
                        }
                        pos
                    }
                }
            }
            Target::At(pos) if self.distance(pos) <= max => pos,
            Target::At(pos) => match self.trampolines.get(&pos) {
                Some(&via) if self.distance(via) <= max => via,
                _ => {
                    let k = offset32(self.distance(pos));
                    let via = self.rev.len();
                    self.rev.push(Insn {
                        code: JMP_JA,
                        jt: 0,
                        jf: 0,
                        k,
                    });
                    self.trampolines.insert(pos, via);
                    via
                }
            },
        }
    }
}

fn ret(verdict: u32) -> Insn {
    Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: verdict,
    }
}

/// Offsets are bounded by the program length, which the compiler caps at `MAX_INSNS` before the
/// program is used; saturating keeps an over-long program invalid rather than wrapping around.
fn offset32(distance: usize) -> u32 {
    u32::try_from(distance).unwrap_or(u32::MAX)
}
