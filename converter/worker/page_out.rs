//! Gives back the zygote's pages of LibreOffice's code that no worker uses.
//!
//! Preinit loads and initialises every component library, touching code
//! and read-only data that converting a document never touches again:
//! about 50 MiB stay mapped in the zygote alone, for its whole life.
//! Those pages are clean copies of the files, so the kernel can drop them
//! (`MADV_PAGEOUT`) and read them back should anything touch them again.
//! Only mappings of files that hold no anonymous (written, copy-on-write)
//! page are dropped: the relocated data every worker shares stays put,
//! and with swap configured nothing is written to it. The kernel itself
//! skips pages another process maps, so once the workers have mapped what
//! they use, this costs them nothing. Done before the workers had started,
//! it made them read those pages back from disk: 170-230 ms to ready
//! instead of 20.

use std::ops::Range;

/// The address ranges of `/proc/self/smaps` mappings that are backed by a
/// file, hold resident pages, and hold no anonymous page.
pub fn clean_file_mappings(smaps: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut current: Option<(Range<usize>, u64, u64)> = None;
    let mut finish = |mapping: Option<(Range<usize>, u64, u64)>| {
        if let Some((range, rss, anonymous)) = mapping
            && rss > 0
            && anonymous == 0
        {
            found.push(range);
        }
    };
    for line in smaps.lines() {
        if let Some(range) = mapping_header(line) {
            finish(current.take());
            current = range.map(|range| (range, 0, 0));
        } else if let Some((_, rss, anonymous)) = current.as_mut() {
            match field_kib(line) {
                Some(("Rss", kib)) => *rss = kib,
                Some(("Anonymous", kib)) => *anonymous = kib,
                _ => {}
            }
        }
    }
    finish(current);
    found
}

/// Asks the kernel to drop the pages of `ranges` (see the module's notes);
/// returns how many ranges it refused.
pub fn page_out(ranges: &[Range<usize>]) -> usize {
    ranges
        .iter()
        .filter(|range| {
            // SAFETY: advice only; the ranges are this process's own
            // mappings, whose contents stay valid (the kernel reads them
            // back from the file on the next touch).
            unsafe { libc::madvise(range.start as *mut libc::c_void, range.len(), libc::MADV_PAGEOUT) != 0 }
        })
        .count()
}

/// `Some(Some(range))` for the header of a file-backed mapping,
/// `Some(None)` for any other mapping's header, `None` for a field line.
fn mapping_header(line: &str) -> Option<Option<Range<usize>>> {
    let mut parts = line.split_whitespace();
    let (start, end) = parts.next()?.split_once('-')?;
    let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
    let inode = parts.nth(3)?;
    let path = parts.next();
    let file_backed = inode != "0" && path.is_some_and(|p| p.starts_with('/'));
    Some(file_backed.then_some(start..end))
}

/// A `Name:   123 kB` line.
fn field_kib(line: &str) -> Option<(&str, u64)> {
    let (name, rest) = line.split_once(':')?;
    let value = rest.trim().strip_suffix(" kB")?;
    Some((name, value.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
7f0000000000-7f0000004000 r-xp 00000000 fd:01 1234 /usr/lib/libreoffice/program/libmergedlo.so
Size:                 16 kB
Rss:                  12 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
7f0000004000-7f0000006000 rw-p 00004000 fd:01 1234 /usr/lib/libreoffice/program/libmergedlo.so
Size:                  8 kB
Rss:                   8 kB
Anonymous:             4 kB
7f0000006000-7f0000008000 r--p 00000000 fd:01 1235 /usr/lib/libreoffice/program/libuno_sal.so.3
Size:                  8 kB
Rss:                   0 kB
Anonymous:             0 kB
7f0000008000-7f000000a000 rw-p 00000000 00:00 0
Rss:                   8 kB
Anonymous:             8 kB
7ffd00000000-7ffd00002000 rw-p 00000000 00:00 0 [stack]
Rss:                   8 kB
Anonymous:             0 kB
";

    #[test]
    fn only_resident_file_mappings_without_anonymous_pages_are_chosen() {
        assert_eq!(clean_file_mappings(SMAPS), vec![0x7f00_0000_0000..0x7f00_0000_4000]);
    }

    #[test]
    fn nothing_is_chosen_from_nothing() {
        assert!(clean_file_mappings("").is_empty());
        assert!(clean_file_mappings("garbage\nmore: garbage").is_empty());
    }

    #[test]
    fn this_programs_own_code_is_found_in_its_real_smaps() {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let exe = std::env::current_exe().unwrap();
        let ranges = clean_file_mappings(&smaps);
        let ours = |line: &str| line.ends_with(exe.to_str().unwrap()) && line.contains(" r-xp ");
        let code = smaps.lines().find(|l| ours(l)).and_then(mapping_header).flatten().unwrap();
        assert!(ranges.contains(&code), "{code:x?} not in {ranges:x?}");
    }
}
