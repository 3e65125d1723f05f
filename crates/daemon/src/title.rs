//! Process titles for `ps ax`: `posternd: master, accepting connections on
//! …`, `posternd: queue runner`, `posternd: front for host [192.0.2.1]`,
//! as sendmail (`sendmail: MTA: accepting connections`) and Postfix
//! (`smtpd -n smtp -t inet`) tell their processes apart. The short
//! `comm` names (`posternd-front`, 15 bytes at most) are set separately,
//! with prctl.
//!
//! Linux shows a process's argv strings, which live in one block of its
//! memory, followed by the environment strings. [`init`] (first thing in
//! `main`, while single-threaded) finds that block in `/proc/self/stat`
//! and moves the environment out of it (each variable set again, so that
//! the C library's `environ` points at copies); [`set`] then writes the
//! title over the block. A process forked afterwards inherits the block's
//! address and writes its own copy, so fronts, chrooted where there is no
//! `/proc`, can still be named. Nothing reads argv after `main` parsed it.
//! As with nginx and PostgreSQL, `/proc/<pid>/environ` then shows the
//! title's bytes rather than the environment.
#![allow(unsafe_code)]

use std::sync::OnceLock;

/// The memory that holds argv (and, once moved out, the environment).
#[derive(Clone, Copy, Debug)]
struct Block {
    start: usize,
    len: usize,
}

static BLOCK: OnceLock<Option<Block>> = OnceLock::new();

/// Finds the block and frees the environment's part of it. Call it first
/// thing in `main`, before any thread exists.
pub fn init() {
    BLOCK.get_or_init(find);
}

/// Shows `posternd: <what>` in `ps`; control characters and non-ASCII
/// are shown as `?`, and a title longer than the block is cut.
pub fn set(what: &str) {
    let Some(Some(block)) = BLOCK.get() else {
        return;
    };
    let title: Vec<u8> = format!("posternd: {what}")
        .bytes()
        .map(|b| {
            if b.is_ascii_graphic() || b == b' ' {
                b
            } else {
                b'?'
            }
        })
        .collect();
    // The last byte stays NUL: the title ends there at the latest.
    let shown = title.len().min(block.len - 1);
    // SAFETY: [start, start + len) is the block the kernel reported for
    // this process's argv and environment strings (arg_start..env_end),
    // mapped writable in the stack area for the life of the process. No
    // Rust value lives there: std reads argv only through its own copy
    // made at parsing, and `init` moved every environment variable out
    // before any thread could read one. Writing bytes into it is what
    // setproctitle(3) does.
    unsafe {
        let base = block.start as *mut u8;
        std::ptr::copy_nonoverlapping(title.as_ptr(), base, shown);
        std::ptr::write_bytes(base.add(shown), 0, block.len - shown);
    }
}

/// arg_start..env_end from `/proc/self/stat` (fields 48 to 51), the
/// environment copied out first; argv's part alone if the two are not
/// adjacent.
fn find() -> Option<Block> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may contain anything but ends
    // at the last ')'; the first of them is field 3.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let field = |n: usize| -> Option<usize> { rest.split(' ').nth(n - 3)?.trim().parse().ok() };
    let (arg_start, arg_end) = (field(48)?, field(49)?);
    let (env_start, env_end) = (field(50)?, field(51)?);
    if arg_end <= arg_start {
        return None;
    }
    let end = if env_start == arg_end && env_end > env_start {
        move_environment_out();
        env_end
    } else {
        arg_end
    };
    Some(Block {
        start: arg_start,
        len: end - arg_start,
    })
}

/// Sets every variable again: the C library then holds a copy of each,
/// and nothing refers to the original strings any more.
fn move_environment_out() {
    for (name, value) in std::env::vars_os() {
        std::env::set_var(name, value);
    }
}
