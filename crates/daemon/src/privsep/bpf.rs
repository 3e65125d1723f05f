//! A seccomp program as a binary search over system-call numbers.
//!
//! Every front installs its filter after it forks, and the kernel's cost
//! of installing one grows with its length: the program is checked and
//! compiled, then run once for every system-call number to build the
//! "always allowed" cache. A program that compares the number against
//! each listed call in turn (as seccompiler builds it) made installing
//! the filter 40% of a front's time in a profile of the connection loop.
//! This one finds a call's verdict in a few comparisons, and is one
//! program instead of two.
//!
//! A program also says what happens to the calls it does not list: the
//! process is killed (a whole policy, as the front factory's), or the call
//! is allowed (a layer on top of another filter, as each front's: the
//! kernel runs every installed filter and the most restrictive answer
//! wins, so a layer only needs the calls where it is stricter).
#![deny(unsafe_code)]

use nix::libc;
use seccompiler::{sock_filter, BpfProgram};

const LD_ABS_W: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
const AND_K: u16 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets into `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;

/// What a call gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Made.
    Allow,
    /// Kills the process (SIGSYS).
    Kill,
    /// Fails with this errno.
    Errno(u32),
    /// Made when any of the rules holds (each a list of conditions that
    /// must all hold), else the process is killed.
    AllowIf(Vec<Vec<Condition>>),
}

/// A test of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The argument's low 32 bits, masked, equal `value`.
    Low32 { arg: u8, mask: u32, value: u32 },
    /// The whole 64-bit argument equals `value`.
    Full64 { arg: u8, value: u64 },
}

/// The raw return values (`linux/seccomp.h`).
const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const RET_ERRNO: u32 = libc::SECCOMP_RET_ERRNO;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn ret(verdict: u32) -> sock_filter {
    stmt(RET_K, verdict)
}

/// The program for `audit_arch`: the listed calls get their verdict, any
/// other call gets `otherwise`, and any other architecture kills the
/// process.
pub fn compile(audit_arch: u32, calls: &[(u32, Verdict)], otherwise: &Verdict) -> BpfProgram {
    let mut sorted: Vec<(u32, Verdict)> = calls.to_vec();
    sorted.sort_by_key(|(nr, _)| *nr);
    sorted.dedup_by_key(|(nr, _)| *nr);
    let mut program = vec![
        stmt(LD_ABS_W, ARCH),
        jump(JEQ_K, audit_arch, 1, 0),
        ret(RET_KILL),
        stmt(LD_ABS_W, NR),
    ];
    program.extend(search(&sorted, &verdict_code(otherwise)));
    program
}

/// Subtrees this small are a row of comparisons.
const ROW: usize = 4;

/// Code deciding among `calls` (sorted), the number in the accumulator,
/// ending in `otherwise` for a number not among them. Every path ends in
/// a return, so subtrees are simply laid one after the other.
fn search(calls: &[(u32, Verdict)], otherwise: &[sock_filter]) -> Vec<sock_filter> {
    if calls.len() <= ROW {
        let mut code = Vec::new();
        for (nr, verdict) in calls {
            let action = verdict_code(verdict);
            code.push(jump(JEQ_K, *nr, 0, offset(action.len())));
            code.extend(action);
        }
        code.extend_from_slice(otherwise);
        return code;
    }
    let mid = calls.len() / 2;
    let (below, from) = (
        search(&calls[..mid], otherwise),
        search(&calls[mid..], otherwise),
    );
    let mut code = Vec::with_capacity(below.len() + from.len() + 2);
    match u8::try_from(below.len()) {
        Ok(skip) => code.push(jump(JGE_K, calls[mid].0, skip, 0)),
        Err(_) => {
            // Too far for a conditional jump: through an unconditional one.
            code.push(jump(JGE_K, calls[mid].0, 0, 1));
            code.push(stmt(JA, u32::try_from(below.len()).expect("small program")));
        }
    }
    code.extend(below);
    code.extend(from);
    code
}

fn offset(n: usize) -> u8 {
    u8::try_from(n).expect("a verdict's code is short")
}

/// The code for one call's verdict (the argument tests reload the
/// accumulator, which is fine: every path returns).
fn verdict_code(verdict: &Verdict) -> Vec<sock_filter> {
    match verdict {
        Verdict::Allow => vec![ret(RET_ALLOW)],
        Verdict::Kill => vec![ret(RET_KILL)],
        Verdict::Errno(errno) => vec![ret(RET_ERRNO | (errno & 0xffff))],
        Verdict::AllowIf(rules) => {
            let mut code = Vec::new();
            for rule in rules {
                code.extend(rule_code(rule));
            }
            code.push(ret(RET_KILL));
            code
        }
    }
}

/// One rule: each failed test jumps past the rule's closing "allow".
fn rule_code(conditions: &[Condition]) -> Vec<sock_filter> {
    // Built with placeholder offsets, then each failing branch is pointed
    // at the instruction after the rule.
    let mut code: Vec<sock_filter> = Vec::new();
    let mut tests = Vec::new();
    for condition in conditions {
        match *condition {
            Condition::Low32 { arg, mask, value } => {
                code.push(stmt(LD_ABS_W, ARGS + 8 * u32::from(arg)));
                if mask != u32::MAX {
                    code.push(stmt(AND_K, mask));
                }
                tests.push(code.len());
                code.push(jump(JEQ_K, value, 0, 0));
            }
            Condition::Full64 { arg, value } => {
                // Little-endian: the low word first.
                for (word, half) in [(0, value as u32), (4, (value >> 32) as u32)] {
                    code.push(stmt(LD_ABS_W, ARGS + 8 * u32::from(arg) + word));
                    tests.push(code.len());
                    code.push(jump(JEQ_K, half, 0, 0));
                }
            }
        }
    }
    code.push(ret(RET_ALLOW));
    let end = code.len();
    for at in tests {
        code[at].jf = offset(end - at - 1);
    }
    code
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A call as the kernel hands it to the filter.
    #[derive(Clone, Copy)]
    pub struct Call {
        pub arch: u32,
        pub nr: u32,
        pub args: [u64; 6],
    }

    /// Runs `program` on `call` as the kernel would (the instructions
    /// this module emits), returning the verdict.
    pub fn run(program: &[sock_filter], call: Call) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&call.nr.to_le_bytes());
        data[4..8].copy_from_slice(&call.arch.to_le_bytes());
        for (i, a) in call.args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = &program[pc];
            pc += 1;
            match i.code {
                LD_ABS_W => {
                    let at = i.k as usize;
                    acc = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
                }
                AND_K => acc &= i.k,
                JA => pc += i.k as usize,
                JEQ_K => pc += usize::from(if acc == i.k { i.jt } else { i.jf }),
                JGE_K => pc += usize::from(if acc >= i.k { i.jt } else { i.jf }),
                RET_K => return i.k,
                other => panic!("instruction {other:#x} not emitted by this module"),
            }
        }
    }

    const ARCH_X: u32 = 0xc000_003e;

    fn call(nr: u32) -> Call {
        Call {
            arch: ARCH_X,
            nr,
            args: [0; 6],
        }
    }

    #[test]
    fn every_number_gets_its_verdict_and_others_are_killed() {
        // Many calls, so the tree has long branches (over 255
        // instructions: the unconditional-jump form is used too).
        let calls: Vec<(u32, Verdict)> = (0..400)
            .filter(|n| n % 3 != 0)
            .map(|n| {
                let v = if n % 2 == 0 {
                    Verdict::Allow
                } else {
                    Verdict::Errno(n)
                };
                (n, v)
            })
            .collect();
        let program = compile(ARCH_X, &calls, &Verdict::Kill);
        assert!(program.len() > 600, "{}", program.len());
        for nr in 0..1000 {
            let want = match calls.iter().find(|(n, _)| *n == nr) {
                Some((_, Verdict::Allow)) => RET_ALLOW,
                Some((_, Verdict::Errno(e))) => RET_ERRNO | e,
                _ => RET_KILL,
            };
            assert_eq!(run(&program, call(nr)), want, "call {nr}");
        }
        // x32 numbers and another architecture.
        assert_eq!(run(&program, call(0x4000_0001)), RET_KILL);
        let mut other = call(1);
        other.arch = 0x4000_0003;
        assert_eq!(run(&program, other), RET_KILL);
    }

    #[test]
    fn a_layer_allows_what_it_does_not_list() {
        let calls = vec![
            (5, Verdict::Kill),
            (7, Verdict::Errno(1)),
            (9, Verdict::Allow),
        ];
        let program = compile(ARCH_X, &calls, &Verdict::Allow);
        assert_eq!(run(&program, call(5)), RET_KILL);
        assert_eq!(run(&program, call(7)), RET_ERRNO | 1);
        for nr in [0, 6, 8, 9, 10, 400, 0x4000_0005] {
            assert_eq!(run(&program, call(nr)), RET_ALLOW, "call {nr}");
        }
        // Another architecture is still killed.
        let mut other = call(6);
        other.arch = 0x4000_0003;
        assert_eq!(run(&program, other), RET_KILL);
    }

    #[test]
    fn argument_rules_allow_only_what_they_say() {
        let eq = |arg, value| Condition::Low32 {
            arg,
            mask: u32::MAX,
            value,
        };
        let calls = vec![
            (9, Verdict::Allow),
            (
                10,
                Verdict::AllowIf(vec![vec![Condition::Low32 {
                    arg: 2,
                    mask: 4,
                    value: 0,
                }]]),
            ),
            (
                54,
                Verdict::AllowIf(vec![vec![eq(1, 1), eq(2, 20)], vec![eq(1, 1), eq(2, 21)]]),
            ),
            (
                44,
                Verdict::AllowIf(vec![vec![Condition::Full64 { arg: 4, value: 0 }]]),
            ),
        ];
        let program = compile(ARCH_X, &calls, &Verdict::Kill);
        let with = |nr: u32, args: [u64; 6]| {
            run(
                &program,
                Call {
                    arch: ARCH_X,
                    nr,
                    args,
                },
            )
        };
        // mprotect-like: bit 4 must be clear.
        assert_eq!(with(10, [0, 0, 3, 0, 0, 0]), RET_ALLOW);
        assert_eq!(with(10, [0, 0, 7, 0, 0, 0]), RET_KILL);
        // setsockopt-like: level 1 and option 20 or 21.
        assert_eq!(with(54, [0, 1, 20, 0, 0, 0]), RET_ALLOW);
        assert_eq!(with(54, [0, 1, 21, 0, 0, 0]), RET_ALLOW);
        assert_eq!(with(54, [0, 1, 22, 0, 0, 0]), RET_KILL);
        assert_eq!(with(54, [0, 2, 20, 0, 0, 0]), RET_KILL);
        // sendto-like: the whole of argument 4 must be 0.
        assert_eq!(with(44, [0; 6]), RET_ALLOW);
        assert_eq!(with(44, [0, 0, 0, 0, 1 << 40, 0]), RET_KILL);
        assert_eq!(with(44, [0, 0, 0, 0, 8, 0]), RET_KILL);
        assert_eq!(with(9, [0; 6]), RET_ALLOW);
    }
}
