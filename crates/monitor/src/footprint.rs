//! Giving back the pages a monitor needed only to start its container.
//!
//! Creating a container runs a large part of the berth binary (config parsing, the runtime's
//! create path, the seccomp compiler's callers) and of libc; the idle loop that follows runs a
//! few functions. The kernel keeps every page a process has touched mapped into it, so without
//! this a monitor's resident set stays at the size of its busiest moment for the container's
//! whole life. Those pages are clean, read-only views of files: dropping our mappings of them
//! loses nothing (a later touch maps the same page-cache page again, at the cost of a minor
//! fault) and lets the kernel reclaim what no other process uses.

use std::io::{BufRead, BufReader};

/// One mapping of /proc/self/smaps that may be dropped: file-backed, never writable, with no
/// copy-on-write page in it.
#[derive(Debug, PartialEq, Eq)]
struct CleanMapping {
    start: usize,
    end: usize,
}

/// Drops this process's mappings of clean, read-only file pages (text and read-only data of the
/// binary and its libraries). Writable or dirtied mappings (data, bss, relocated RELRO, heap,
/// stack) are never touched, so no state can be lost. Best effort: errors are ignored.
pub(crate) fn release_startup_pages() {
    let Ok(file) = std::fs::File::open("/proc/self/smaps") else {
        return;
    };
    for m in clean_mappings(BufReader::new(file)) {
        let len = m.end - m.start;
        // SAFETY: the range is a whole mapping of this process, read from smaps just now; it is
        // file-backed, not writable (so nothing can have dirtied it since) and has no private
        // page, so MADV_DONTNEED only unmaps page-cache pages that a later access maps again.
        // No Rust reference can point into it with a different meaning afterwards: the memory
        // reads the same bytes from the file.
        unsafe {
            libc::madvise(m.start as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    }
}

/// The mappings of an smaps listing that `release_startup_pages` may drop.
fn clean_mappings(smaps: impl BufRead) -> Vec<CleanMapping> {
    let mut out = Vec::new();
    // The mapping being read: its range, whether it qualifies so far.
    let mut current: Option<(CleanMapping, bool)> = None;
    let finish = |cur: Option<(CleanMapping, bool)>, out: &mut Vec<CleanMapping>| {
        if let Some((m, true)) = cur {
            out.push(m);
        }
    };
    for line in smaps.lines().map_while(|l| l.ok()) {
        if let Some((range, rest)) = header(&line) {
            finish(current.take(), &mut out);
            let mut fields = rest.split_whitespace();
            let perms = fields.next().unwrap_or("");
            // offset, device, inode, then the path (absent for anonymous memory).
            let inode = fields.nth(2).unwrap_or("0");
            let path = fields.next().unwrap_or("");
            let file_backed = inode != "0" && path.starts_with('/');
            let read_only = perms.len() >= 2 && !perms[1..].starts_with('w');
            current = Some((range, file_backed && read_only));
            continue;
        }
        let Some((_, ok)) = current.as_mut() else {
            continue;
        };
        let mut kv = line.split_whitespace();
        let key = kv.next().unwrap_or("");
        let value = kv.next().unwrap_or("0");
        // Anonymous counts the mapping's copy-on-write copies: pages that exist nowhere else.
        // (Private_Dirty would also count file pages not yet written back, which are safe.)
        if matches!(key, "Anonymous:" | "Locked:") && value != "0" {
            *ok = false;
        }
    }
    finish(current, &mut out);
    out
}

/// `start-end perms …` → the range and the rest, for a mapping's header line.
fn header(line: &str) -> Option<(CleanMapping, &str)> {
    let (range, rest) = line.split_once(' ')?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((CleanMapping { start, end }, rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:01 1234 /usr/bin/berth
Rss:                 400 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
Locked:                0 kB
55d0a0100000-55d0a0800000 r-xp 00100000 fe:01 1234 /usr/bin/berth
Rss:                1800 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
55d0a0800000-55d0a0840000 r--p 00800000 fe:01 1234 /usr/bin/berth
Rss:                 268 kB
Private_Dirty:       268 kB
Anonymous:           268 kB
55d0a0841000-55d0a0842000 r--p 00841000 fe:01 1234 /usr/bin/other
Private_Dirty:         4 kB
Anonymous:             0 kB
55d0a0840000-55d0a0841000 rw-p 00840000 fe:01 1234 /usr/bin/berth
Private_Dirty:         4 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
Private_Dirty:        72 kB
7f0000000000-7f0000001000 r--p 00000000 00:00 0 
Private_Dirty:         0 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_are_dropped() {
        let got = clean_mappings(SMAPS.as_bytes());
        assert_eq!(
            got,
            vec![
                CleanMapping {
                    start: 0x55d0a0000000,
                    end: 0x55d0a0100000
                },
                CleanMapping {
                    start: 0x55d0a0100000,
                    end: 0x55d0a0800000
                },
                CleanMapping {
                    start: 0x55d0a0841000,
                    end: 0x55d0a0842000
                },
            ]
        );
    }

    #[test]
    fn dropping_keeps_the_process_working_and_shrinks_it() {
        // Touch a lot of code and data, drop, then keep running: nothing breaks and the
        // process's file-backed resident set does not grow.
        let before = rss_file_kib();
        release_startup_pages();
        let after = rss_file_kib();
        let v: Vec<String> = (0..1000).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[255], "ff");
        assert!(after <= before, "RssFile {before} KiB -> {after} KiB");
    }

    fn rss_file_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    }
}
