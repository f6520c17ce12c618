//! Which encoding a CSV file is in, and a reader that decodes it to UTF-8.
//!
//! Spreadsheets are exported in whatever the exporting program likes:
//! UTF-8 (with or without a BOM), Excel's "Unicode text" (UTF-16LE with a
//! BOM), or on Windows the ANSI code page, Windows-1252. A BOM is trusted;
//! without one a file is UTF-8 only if all of it is, which takes a pass
//! over the whole file (streamed, in fixed-size chunks) before the real one.

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};
use encoding_rs_io::DecodeReaderBytesBuilder;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};

/// Where BOM-less UTF-16 is looked for.
const SNIFF_LEN: u64 = 1024;
/// The chunk in which the UTF-8 check reads the file.
const CHUNK_LEN: usize = 64 * 1024;

/// Decides `input`'s encoding and returns a reader of it as UTF-8, any BOM
/// removed. Invalid sequences become U+FFFD, so the text is always UTF-8.
pub fn decoded<R: Read + Seek>(mut input: R) -> io::Result<impl Read> {
    let encoding = detect(&mut input)?;
    // The decoder reads its source in chunks into a buffer of its own, so
    // the source needs no `BufReader`.
    Ok(DecodeReaderBytesBuilder::new().encoding(Some(encoding)).build(input))
}

/// The encoding of `input`, which is left rewound to its start.
fn detect(input: &mut (impl Read + Seek)) -> io::Result<&'static Encoding> {
    let mut head = Vec::new();
    input.by_ref().take(SNIFF_LEN).read_to_end(&mut head)?;
    let encoding = match Encoding::for_bom(&head) {
        Some((encoding, _)) => encoding,
        None => match utf16_without_bom(&head) {
            Some(encoding) => encoding,
            None => {
                input.seek(SeekFrom::Start(0))?;
                if is_utf8(input.by_ref())? { UTF_8 } else { WINDOWS_1252 }
            }
        },
    };
    input.seek(SeekFrom::Start(0))?;
    Ok(encoding)
}

/// UTF-16 that lost its BOM: text in the Latin range then has a NUL in
/// every other byte, which text in a byte encoding never has.
fn utf16_without_bom(head: &[u8]) -> Option<&'static Encoding> {
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let nuls = |offset: usize| head.iter().skip(offset).step_by(2).take(pairs).filter(|&&b| b == 0).count();
    match (nuls(0), nuls(1)) {
        (0, odd) if odd * 2 > pairs => Some(UTF_16LE),
        (even, 0) if even * 2 > pairs => Some(UTF_16BE),
        _ => None,
    }
}

/// Whether all of `input` is valid UTF-8, read in chunks so that memory
/// stays bounded whatever the file's size.
fn is_utf8(mut input: impl Read) -> io::Result<bool> {
    let mut chunk = vec![0; CHUNK_LEN];
    // Bytes of a character cut at the end of the previous chunk.
    let mut carried = 0;
    loop {
        let read = match input.read(&mut chunk[carried..]) {
            Ok(read) => read,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if read == 0 {
            return Ok(carried == 0);
        }
        let filled = carried + read;
        carried = match std::str::from_utf8(&chunk[..filled]) {
            Ok(_) => 0,
            // The chunk ends inside a character: keep its start for the next.
            Err(e) if e.error_len().is_none() => {
                chunk.copy_within(e.valid_up_to()..filled, 0);
                filled - e.valid_up_to()
            }
            Err(_) => return Ok(false),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn decode(bytes: &[u8]) -> String {
        let mut text = String::new();
        decoded(Cursor::new(bytes)).unwrap().read_to_string(&mut text).unwrap();
        text
    }

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
        units.flat_map(|u| if big_endian { u.to_be_bytes() } else { u.to_le_bytes() }).collect()
    }

    #[test]
    fn utf8_is_read_as_is_and_its_bom_dropped() {
        assert_eq!(decode("naïve,€".as_bytes()), "naïve,€");
        assert_eq!(decode(b"\xEF\xBB\xBFok,1"), "ok,1");
        assert_eq!(decode(b""), "");
    }

    #[test]
    fn anything_else_is_windows_1252() {
        assert_eq!(decode(b"caf\xE9"), "café");
        assert_eq!(decode(b"\x80 5"), "€ 5");
        assert_eq!(decode(b"\x93quoted\x94"), "\u{201C}quoted\u{201D}");
    }

    #[test]
    fn utf16_with_a_bom_is_decoded() {
        let excel = utf16("Name\tPrice\r\nCafé\t3,50 €\r\n", false, true);
        assert_eq!(&excel[..2], b"\xFF\xFE");
        assert_eq!(decode(&excel), "Name\tPrice\r\nCafé\t3,50 €\r\n");
        let big_endian = utf16("a;b\n", true, true);
        assert_eq!(&big_endian[..2], b"\xFE\xFF");
        assert_eq!(decode(&big_endian), "a;b\n");
    }

    #[test]
    fn utf16_without_a_bom_is_recognised_by_its_nuls() {
        assert_eq!(decode(&utf16("x,y\n1,2\n", false, false)), "x,y\n1,2\n");
        assert_eq!(decode(&utf16("x,y\n1,2\n", true, false)), "x,y\n1,2\n");
        // Too short to tell, and text with a stray NUL: not UTF-16.
        assert_eq!(utf16_without_bom(b"a\0"), None);
        assert_eq!(utf16_without_bom(b"abc\0def,"), None);
    }

    #[test]
    fn the_utf8_check_reads_the_whole_file_in_chunks() {
        // A character cut by the chunk boundary is still valid...
        let mut data = vec![b'a'; CHUNK_LEN - 1];
        data.extend_from_slice("é,ü".as_bytes());
        assert!(is_utf8(Cursor::new(&data)).unwrap());
        assert_eq!(decode(&data).len(), data.len());
        // ...an invalid byte far past the first chunk is found, and so is
        // a character cut by the end of the file.
        data.extend_from_slice(&[b'a'; 3 * CHUNK_LEN]);
        data.push(0xE9);
        assert!(!is_utf8(Cursor::new(&data)).unwrap());
        assert!(decode(&data).ends_with("aé"));
        assert!(!is_utf8(Cursor::new(b"ok\xC3")).unwrap());
    }
}
