//! The factory's program image on transparent huge pages, so that a
//! front starts without faulting it in.
//!
//! Why: a fork copies the page tables of anonymous memory but not those
//! of file mappings, which the child faults in again, 16 pages at a time
//! (the kernel's fault-around), and unmaps page by page when it exits. A
//! front that greets a client and reads QUIT faulted in about 40 windows
//! of `posternd`'s text and read-only data that way: a third of its page
//! faults. Here, once, each 2 MB of a read-only segment (text, read-only
//! data) is copied into anonymous memory the kernel backs with one huge
//! page, and moved over the file's pages at the same address: a fork then
//! copies one page-table entry for the 2 MB and a front's exit drops one.
//!
//! A 2 MB page is moved whole or not at all: where it reaches beyond its
//! segment, the rest must be unmapped address space (posternd is linked
//! with its segments on 2 MB boundaries, `build.rs`, so the padding
//! between them is), which the copy then fills with zeros. Libraries'
//! segments, packed page by page, are left alone. The copies are
//! never writable once in place, and are made before the factory's
//! seccomp layer, which forbids executable mappings. Where the kernel has
//! no huge page to give, the segment stays as it was.
//! `POSTERN_HUGE_TEXT=off` in the environment leaves the image alone
//! (profilers attribute samples in anonymous memory to no file).

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
const PAGE: usize = 4 << 10;

/// `[start, end)` in the address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stretch {
    pub start: usize,
    pub end: usize,
}

impl Stretch {
    fn len(self) -> usize {
        self.end - self.start
    }
}

/// A read-only `PT_LOAD` segment, as mapped: whole pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub mapped: Stretch,
    pub executable: bool,
}

/// Moves every 2 MB of the program's read-only segments that can be onto
/// huge pages; returns how many bytes now are. Call while
/// single-threaded and before any seccomp filter: it maps executable
/// memory.
pub fn move_to_huge_pages() -> usize {
    if std::env::var_os("POSTERN_HUGE_TEXT").is_some_and(|v| v == "off") {
        return 0;
    }
    read_only_segments()
        .into_iter()
        .map(|segment| {
            // The whole segment on huge pages, else those wholly inside it
            // (a program linked without the 2 MB alignment).
            [covering(segment.mapped), interior(segment.mapped)]
                .into_iter()
                .flatten()
                .find(|&run| move_run(run, segment).is_ok())
                .map_or(0, Stretch::len)
        })
        .sum()
}

/// The 2 MB pages that cover `mapped`, from the one holding its first
/// byte to the one holding its last.
pub fn covering(mapped: Stretch) -> Option<Stretch> {
    let run = Stretch {
        start: mapped.start & !(HUGE - 1),
        end: mapped.end.div_ceil(HUGE) * HUGE,
    };
    (run.len() > 0).then_some(run)
}

/// The 2 MB pages wholly inside `mapped`.
pub fn interior(mapped: Stretch) -> Option<Stretch> {
    let run = Stretch {
        start: mapped.start.div_ceil(HUGE) * HUGE,
        end: mapped.end & !(HUGE - 1),
    };
    (run.end > run.start).then_some(run)
}

/// The parts of `run` outside `mapped`: what must be free address space
/// for the run to be moved whole.
pub fn slack(run: Stretch, mapped: Stretch) -> impl Iterator<Item = Stretch> {
    let before = Stretch {
        start: run.start,
        end: mapped.start.clamp(run.start, run.end),
    };
    let after = Stretch {
        start: mapped.end.clamp(run.start, run.end),
        end: run.end,
    };
    [before, after].into_iter().filter(|s| s.len() > 0)
}

/// The read-only `PT_LOAD` segments of the program.
fn read_only_segments() -> Vec<Segment> {
    unsafe extern "C" fn collect(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid info for the duration of the
        // call, and `data` is the Vec handed to dl_iterate_phdr below.
        let (info, segments) = unsafe { (&*info, &mut *data.cast::<Vec<Segment>>()) };
        if info.dlpi_phdr.is_null() {
            return 1;
        }
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        for header in headers {
            if header.p_type != libc::PT_LOAD || header.p_flags & libc::PF_W != 0 {
                continue;
            }
            let start = info.dlpi_addr as usize + header.p_vaddr as usize;
            let end = start + header.p_memsz as usize;
            segments.push(Segment {
                mapped: Stretch {
                    start: start & !(PAGE - 1),
                    end: end.div_ceil(PAGE) * PAGE,
                },
                executable: header.p_flags & libc::PF_X != 0,
            });
        }
        // The program comes first; its libraries' segments are packed
        // page by page and never leave a huge page to move (and the vDSO
        // must stay the kernel's).
        1
    }
    let mut segments: Vec<Segment> = Vec::new();
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

/// Moves `run` (whole 2 MB pages) of `segment` onto huge pages, when what
/// it holds beyond the segment is free address space; on any failure
/// leaves everything as it was.
fn move_run(run: Stretch, segment: Segment) -> Result<(), nix::Error> {
    // The slack is held (inaccessible) until the copy replaces it, so
    // that nothing else is mapped there meanwhile.
    let mut held = Vec::new();
    for gap in slack(run, segment.mapped) {
        match hold(gap) {
            Ok(()) => held.push(gap),
            Err(e) => {
                release(&held);
                return Err(e);
            }
        }
    }
    // Written, then made read-only and executable; where the system
    // refuses memory that turns executable (systemd's
    // MemoryDenyWriteExecute, the unit's default; SELinux's execmem),
    // mapped read-only and executable from the start and filled through
    // /proc/self/mem, as a debugger writes a breakpoint.
    let moved = copy_and_move(run, segment, Fill::ThenProtect).or_else(|e| match e {
        nix::Error::ENOMEM => Err(e),
        _ => copy_and_move(run, segment, Fill::ThroughProcMem),
    });
    if moved.is_err() {
        release(&held);
    }
    moved
}

/// How the copy gets the segment's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    /// Mapped writable, written, then given the segment's protection.
    ThenProtect,
    /// Mapped with the segment's protection, written by the kernel on
    /// our behalf through /proc/self/mem: never writable, never gaining
    /// execute permission.
    ThroughProcMem,
}

/// Copies the segment's part of `run` into a fresh huge-page mapping and
/// moves it over `run`; on failure the copy is gone and `run` untouched.
fn copy_and_move(run: Stretch, segment: Segment, fill: Fill) -> Result<(), nix::Error> {
    let prot = if segment.executable {
        ProtFlags::PROT_READ | ProtFlags::PROT_EXEC
    } else {
        ProtFlags::PROT_READ
    };
    let first = match fill {
        Fill::ThenProtect => ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        Fill::ThroughProcMem => prot,
    };
    let copy = aligned_anonymous(run.len(), first)?;
    let moved = fill_and_move(copy, run, segment, fill, prot);
    if moved.is_err() {
        // SAFETY: `copy` is our own mapping of the run's length, not moved.
        let _ = unsafe { mman::munmap(copy, run.len()) };
    }
    moved
}

/// Maps `gap` inaccessible, failing if anything is mapped there already.
fn hold(gap: Stretch) -> Result<(), nix::Error> {
    let len = NonZeroUsize::new(gap.len()).ok_or(nix::Error::EINVAL)?;
    let at = NonZeroUsize::new(gap.start).ok_or(nix::Error::EINVAL)?;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; a
    // kernel too old for it takes the address as a hint, checked below.
    let got = unsafe {
        mman::mmap_anonymous(
            Some(at),
            len,
            ProtFlags::PROT_NONE,
            MapFlags::MAP_PRIVATE | MapFlags::MAP_FIXED_NOREPLACE,
        )?
    };
    if got.as_ptr() as usize != gap.start {
        // SAFETY: our own fresh mapping, somewhere else.
        let _ = unsafe { mman::munmap(got, gap.len()) };
        return Err(nix::Error::EEXIST);
    }
    Ok(())
}

fn release(held: &[Stretch]) {
    for gap in held {
        if let Some(at) = NonNull::new(gap.start as *mut c_void) {
            // SAFETY: a placeholder `hold` mapped; nothing else is there.
            let _ = unsafe { mman::munmap(at, gap.len()) };
        }
    }
}

fn fill_and_move(
    copy: NonNull<c_void>,
    run: Stretch,
    segment: Segment,
    fill: Fill,
    prot: ProtFlags,
) -> Result<(), nix::Error> {
    let len = run.len();
    // SAFETY: `copy` is a fresh private mapping of `len` bytes.
    unsafe { mman::madvise(copy, len, MmapAdvise::MADV_HUGEPAGE)? };
    let inside = Stretch {
        start: segment.mapped.start.max(run.start),
        end: segment.mapped.end.min(run.end),
    };
    // SAFETY: the mapped, readable part of the segment in the run.
    let bytes = unsafe { std::slice::from_raw_parts(inside.start as *const u8, inside.len()) };
    let at = copy.as_ptr() as usize + (inside.start - run.start);
    match fill {
        Fill::ThenProtect => {
            // SAFETY: the same offset in our own writable mapping of
            // `len` bytes (the rest stays zero).
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len());
            }
        }
        Fill::ThroughProcMem => {
            use std::os::unix::fs::FileExt;
            let mem = std::fs::OpenOptions::new()
                .write(true)
                .open("/proc/self/mem")
                .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            mem.write_all_at(bytes, at as u64)
                .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        }
    }
    if !is_huge(copy, len) {
        // No huge page to be had: moving would only trade file pages for
        // anonymous ones.
        return Err(nix::Error::ENOMEM);
    }
    if fill == Fill::ThenProtect {
        // SAFETY: our own mapping; from here on never writable.
        unsafe { mman::mprotect(copy, len, prot)? };
    }
    // SAFETY: the destination holds the segment's bytes we copied, byte
    // for byte, and placeholders of ours; whatever executes or reads
    // there (this very call returns into it, when the run holds this
    // function) sees the same bytes.
    unsafe {
        mman::mremap(
            copy,
            len,
            len,
            MRemapFlags::MREMAP_MAYMOVE | MRemapFlags::MREMAP_FIXED,
            Some(NonNull::new(run.start as *mut c_void).ok_or(nix::Error::EINVAL)?),
        )?;
    }
    Ok(())
}

/// A private anonymous mapping of `len` bytes with protection `prot`,
/// starting on a 2 MB boundary.
fn aligned_anonymous(len: usize, prot: ProtFlags) -> Result<NonNull<c_void>, nix::Error> {
    let padded = NonZeroUsize::new(len + HUGE).ok_or(nix::Error::EINVAL)?;
    // SAFETY: a fresh anonymous mapping; nothing else refers to it.
    let base = unsafe { mman::mmap_anonymous(None, padded, prot, MapFlags::MAP_PRIVATE)? };
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

    const MB: usize = 1 << 20;

    fn at(start: usize, end: usize) -> Stretch {
        Stretch { start, end }
    }

    #[test]
    fn a_segment_is_covered_by_the_huge_pages_it_touches() {
        // posternd's text as linked: from a 2 MB boundary, 4.3 MB.
        let text = at(0x55_0020_0000, 0x55_0065_6000);
        assert_eq!(covering(text), Some(at(0x55_0020_0000, 0x55_0080_0000)));
        assert_eq!(interior(text), Some(at(0x55_0020_0000, 0x55_0060_0000)));
        // Its read-only data, from the image's first byte, 1.4 MB: one
        // huge page covers it, none lies inside it.
        let rodata = at(0x55_0000_0000, 0x55_0016_2000);
        assert_eq!(covering(rodata), Some(at(0x55_0000_0000, 0x55_0020_0000)));
        assert_eq!(interior(rodata), None);
        // Text linked without the alignment.
        let unaligned = at(0x55_0016_2000, 0x55_005b_3000);
        assert_eq!(
            interior(unaligned),
            Some(at(0x55_0020_0000, 0x55_0040_0000))
        );
    }

    #[test]
    fn the_slack_is_what_the_segment_leaves_of_the_chunk() {
        let text = at(2 * MB, 6 * MB + 0x56000);
        // A run wholly inside: nothing to hold.
        assert_eq!(slack(at(2 * MB, 6 * MB), text).count(), 0);
        // The covering run: the padding after the text.
        assert_eq!(
            slack(at(2 * MB, 8 * MB), text).collect::<Vec<_>>(),
            [at(6 * MB + 0x56000, 8 * MB)]
        );
        // A segment inside one huge page: both sides.
        assert_eq!(
            slack(at(0, 2 * MB), at(0x1000, 0x162000)).collect::<Vec<_>>(),
            [at(0, 0x1000), at(0x162000, 2 * MB)]
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
