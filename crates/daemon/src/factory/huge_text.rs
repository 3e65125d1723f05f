//! The factory's program text on transparent huge pages, so that a front
//! starts without faulting it in.
//!
//! Why: a fork copies the page tables of anonymous memory but not those
//! of file mappings, which the child faults in again, 16 pages at a time
//! (the kernel's fault-around), and unmaps page by page when it exits. A
//! front that greets a client and reads QUIT faulted in about 40 windows
//! of `posternd`'s text that way: a third of its page faults. Each 2 MB
//! stretch of the text that lies on a 2 MB boundary is copied here, once,
//! into anonymous memory the kernel backs with one huge page, and moved
//! over the file's pages at the same address: a fork then copies one
//! page-table entry for the whole 2 MB and a front's exit drops one.
//!
//! The copy is read-only and executable, never writable once in place; it
//! is made before the factory's seccomp layer, which forbids executable
//! mappings. Where the kernel has no huge page to give, the stretch stays
//! as it was. `POSTERN_HUGE_TEXT=off` in the environment leaves the text
//! alone (profilers attribute samples in anonymous memory to no file).

// Mapping memory and walking the loader's list are unsafe calls; each
// block says why it holds.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::libc;
use nix::sys::mman::{self, MRemapFlags, MapFlags, MmapAdvise, ProtFlags};

/// The size of a transparent huge page on x86-64 and aarch64 (4 KiB base
/// pages).
const HUGE: usize = 2 << 20;

/// A stretch of executable text, `[start, end)`, in the address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stretch {
    pub start: usize,
    pub end: usize,
}

/// Moves every 2 MB-aligned stretch of the loaded objects' text onto huge
/// pages; returns how many bytes now are. Call while single-threaded
/// and before any seccomp filter: it maps executable memory.
pub fn move_to_huge_pages() -> usize {
    if std::env::var_os("POSTERN_HUGE_TEXT").is_some_and(|v| v == "off") {
        return 0;
    }
    executable_segments()
        .into_iter()
        .filter_map(aligned_interior)
        .map(|stretch| move_stretch(stretch).map_or(0, |()| stretch.end - stretch.start))
        .sum()
}

/// The whole 2 MB pages inside a segment, if any.
pub fn aligned_interior(segment: Stretch) -> Option<Stretch> {
    let start = segment.start.checked_add(HUGE - 1)? & !(HUGE - 1);
    let end = segment.end & !(HUGE - 1);
    (end > start).then_some(Stretch { start, end })
}

/// The executable `PT_LOAD` segments of the program and its libraries.
fn executable_segments() -> Vec<Stretch> {
    unsafe extern "C" fn collect(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid info for the duration of the
        // call, and `data` is the Vec handed to dl_iterate_phdr below.
        let (info, segments) = unsafe { (&*info, &mut *data.cast::<Vec<Stretch>>()) };
        if info.dlpi_phdr.is_null() {
            return 0;
        }
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        for header in headers {
            if header.p_type == libc::PT_LOAD && header.p_flags & libc::PF_X != 0 {
                let start = info.dlpi_addr as usize + header.p_vaddr as usize;
                segments.push(Stretch {
                    start,
                    end: start + header.p_memsz as usize,
                });
            }
        }
        0
    }
    let mut segments: Vec<Stretch> = Vec::new();
    // SAFETY: `collect` matches the callback's signature and only touches
    // `segments` through `data`, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(collect),
            std::ptr::from_mut(&mut segments).cast::<c_void>(),
        );
    }
    segments
}

/// Copies `stretch` (2 MB-aligned) into anonymous huge pages and moves
/// them over it. On any failure the text is left as it was.
fn move_stretch(stretch: Stretch) -> Result<(), nix::Error> {
    let len = stretch.end - stretch.start;
    let copy = aligned_anonymous(len)?;
    let moved = fill_and_move(copy, stretch);
    if moved.is_err() {
        // SAFETY: `copy` is our own mapping of `len` bytes, not yet moved.
        let _ = unsafe { mman::munmap(copy, len) };
    }
    moved
}

fn fill_and_move(copy: NonNull<c_void>, stretch: Stretch) -> Result<(), nix::Error> {
    let len = stretch.end - stretch.start;
    // SAFETY: `copy` is a fresh private mapping of `len` bytes.
    unsafe { mman::madvise(copy, len, MmapAdvise::MADV_HUGEPAGE)? };
    // SAFETY: the source is mapped, readable text of `len` bytes; the
    // destination our own writable mapping of the same length.
    unsafe {
        std::ptr::copy_nonoverlapping(stretch.start as *const u8, copy.as_ptr().cast::<u8>(), len);
    }
    if !is_huge(copy, len) {
        // No huge page to be had: moving would only trade file pages for
        // anonymous ones.
        return Err(nix::Error::ENOMEM);
    }
    // SAFETY: our own mapping; from here on never writable.
    unsafe { mman::mprotect(copy, len, ProtFlags::PROT_READ | ProtFlags::PROT_EXEC)? };
    // SAFETY: the destination is the text we copied, byte for byte, so
    // whatever executes there (this very call returns into it, when the
    // stretch holds this function) sees the same instructions.
    unsafe {
        mman::mremap(
            copy,
            len,
            len,
            MRemapFlags::MREMAP_MAYMOVE | MRemapFlags::MREMAP_FIXED,
            Some(NonNull::new(stretch.start as *mut c_void).ok_or(nix::Error::EINVAL)?),
        )?;
    }
    Ok(())
}

/// A private anonymous read-write mapping of `len` bytes starting on a
/// 2 MB boundary.
fn aligned_anonymous(len: usize) -> Result<NonNull<c_void>, nix::Error> {
    let padded = NonZeroUsize::new(len + HUGE).ok_or(nix::Error::EINVAL)?;
    // SAFETY: a fresh anonymous mapping; nothing else refers to it.
    let base = unsafe {
        mman::mmap_anonymous(
            None,
            padded,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_PRIVATE,
        )?
    };
    let raw = base.as_ptr() as usize;
    let aligned = (raw + HUGE - 1) & !(HUGE - 1);
    let head = aligned - raw;
    let tail = padded.get() - head - len;
    // SAFETY: trimming our own mapping to the aligned part.
    unsafe {
        if head > 0 {
            mman::munmap(base, head)?;
        }
        if tail > 0 {
            let after = NonNull::new((aligned + len) as *mut c_void).ok_or(nix::Error::EINVAL)?;
            mman::munmap(after, tail)?;
        }
    }
    NonNull::new(aligned as *mut c_void).ok_or(nix::Error::EINVAL)
}

/// Whether every 2 MB of the mapping got a huge page, as the kernel's
/// /proc/self/smaps tells; without /proc, the madvise is trusted.
fn is_huge(copy: NonNull<c_void>, len: usize) -> bool {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return true;
    };
    anon_huge_bytes(&smaps, copy.as_ptr() as usize).is_some_and(|huge| huge >= len)
}

/// `AnonHugePages` of the mapping that starts at `start`, in bytes.
fn anon_huge_bytes(smaps: &str, start: usize) -> Option<usize> {
    let header = format!("{start:x}-");
    smaps
        .lines()
        .skip_while(|line| !line.starts_with(&header))
        .skip(1)
        // The next mapping's header ends this one's fields.
        .take_while(|line| !is_mapping_header(line))
        .find_map(|line| line.strip_prefix("AnonHugePages:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<usize>().ok())
        .map(|kb| kb * 1024)
}

/// Whether an smaps line starts a mapping (`start-end perms ...`) rather
/// than being one of its `Field: value` lines.
fn is_mapping_header(line: &str) -> bool {
    line.split_whitespace()
        .next()
        .and_then(|range| range.split_once('-'))
        .is_some_and(|(a, b)| {
            usize::from_str_radix(a, 16).is_ok() && usize::from_str_radix(b, 16).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_aligned_huge_pages_are_moved() {
        let mb = 1 << 20;
        assert_eq!(
            aligned_interior(Stretch {
                start: 0x161b80 + 0x55_0000_0000,
                end: 0x5b2980 + 0x55_0000_0000
            }),
            Some(Stretch {
                start: 0x55_0020_0000,
                end: 0x55_0040_0000
            })
        );
        assert_eq!(
            aligned_interior(Stretch {
                start: 2 * mb,
                end: 6 * mb
            }),
            Some(Stretch {
                start: 2 * mb,
                end: 6 * mb
            })
        );
        assert_eq!(
            aligned_interior(Stretch {
                start: 2 * mb + 1,
                end: 6 * mb - 1
            }),
            None
        );
    }

    #[test]
    fn the_huge_page_count_is_read_from_smaps() {
        let smaps = "\
7f0000000000-7f0000400000 r-xp 00000000 00:00 0 
Size:               4096 kB
AnonHugePages:      4096 kB
7f0000400000-7f0000401000 rw-p 00000000 00:00 0 
AnonHugePages:         0 kB
";
        assert_eq!(anon_huge_bytes(smaps, 0x7f00_0000_0000), Some(4 << 20));
        assert_eq!(anon_huge_bytes(smaps, 0x7f00_0040_0000), Some(0));
        assert_eq!(anon_huge_bytes(smaps, 0x7f00_0080_0000), None);
    }
}
