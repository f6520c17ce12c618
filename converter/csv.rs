//! CSV and TSV become flat OpenDocument spreadsheets before LibreOffice sees
//! them.
//!
//! LibreOfficeKit's CSV import waits for its options dialog, so a CSV load
//! never returns (with `Batch` it fails instead). Parsing CSV ourselves and
//! handing LibreOffice a `.fods` avoids the dialog, and the sheet gets the
//! uploaded file's name rather than a temporary one, which Calc prints in the
//! page header.
//!
//! The conversion streams from file to file, row by row: however large the
//! CSV, the converter holds one record and a few buffers, not the file.

mod encoding;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

/// How much decoded text the separator is guessed from: the first line,
/// or this much of it when it is longer.
const FIRST_LINE_MAX: u64 = 64 * 1024;

/// Converts the CSV (or TSV when `tab_separated`) file `input` into the
/// `.fods` document `output`, whose single sheet is called `sheet_name`.
/// The encoding is detected (see `encoding`).
pub fn write_fods(input: &Path, output: &Path, sheet_name: &str, tab_separated: bool) -> io::Result<()> {
    let text = encoding::decoded(File::open(input)?)?;
    let mut out = BufWriter::with_capacity(64 * 1024, File::create(output)?);
    write_sheet(text, &mut out, sheet_name, tab_separated)?;
    out.flush()
}

/// Writes UTF-8 CSV `text` to `out` as a `.fods` document, one row as it is
/// parsed. Returns the number of rows.
fn write_sheet(mut text: impl Read, mut out: impl Write, sheet_name: &str, tab_separated: bool) -> io::Result<u64> {
    let mut first = Vec::new();
    text.by_ref().take(FIRST_LINE_MAX).read_to_end(&mut first)?;
    let separator = if tab_separated { b'\t' } else { guess_separator(&first) };
    // RFC 4180 quoting; rows may differ in length. A trailing newline ends
    // the last row without adding one. Blank lines are skipped: the parser
    // has no option to keep them as empty rows.
    let mut rows = ::csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(io::Cursor::new(first).chain(text));

    out.write_all(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<office:document xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" ",
            "xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" ",
            "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" ",
            "office:version=\"1.2\" office:mimetype=\"application/vnd.oasis.opendocument.spreadsheet\">",
            "<office:body><office:spreadsheet><table:table table:name=\""
        )
        .as_bytes(),
    )?;
    write_escaped(&mut out, sheet_name)?;
    out.write_all(b"\">")?;
    let mut record = ::csv::ByteRecord::new();
    let mut count = 0;
    while rows.read_byte_record(&mut record)? {
        out.write_all(b"<table:table-row>")?;
        for field in &record {
            // The text is UTF-8 and fields are split at ASCII bytes, so
            // this never replaces anything.
            write_cell(&mut out, &String::from_utf8_lossy(field))?;
        }
        out.write_all(b"</table:table-row>")?;
        count += 1;
    }
    out.write_all(b"</table:table></office:spreadsheet></office:body></office:document>\n")?;
    Ok(count)
}

/// The most frequent of `,` `;` and tab on the first line, outside quotes.
fn guess_separator(text: &[u8]) -> u8 {
    let first_line = text.split(|&b| b == b'\n' || b == b'\r').next().unwrap_or_default();
    let mut counts = [(b',', 0), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for &b in first_line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for (separator, count) in counts.iter_mut() {
                if b == *separator {
                    *count += 1;
                }
            }
        }
    }
    counts.iter().max_by_key(|(_, n)| *n).filter(|(_, n)| *n > 0).map_or(b',', |(separator, _)| *separator)
}

fn write_cell(out: &mut impl Write, value: &str) -> io::Result<()> {
    if value.is_empty() {
        return out.write_all(b"<table:table-cell/>");
    }
    match as_number(value) {
        Some(number) => {
            write!(out, "<table:table-cell office:value-type=\"float\" office:value=\"{number}\"><text:p>")?
        }
        None => out.write_all(b"<table:table-cell office:value-type=\"string\"><text:p>")?,
    }
    write_escaped(out, value)?;
    out.write_all(b"</text:p></table:table-cell>")
}

/// Plain decimal numbers only; "007" and "1e5" stay text, as in a
/// spreadsheet's default import, so codes and ids are not mangled.
fn as_number(value: &str) -> Option<f64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.chars().all(|c| c.is_ascii_digit())
        && !frac.is_empty()
        && !(int.len() > 1 && int.starts_with('0'));
    if plain { value.parse().ok() } else { None }
}

/// XML text escaping; characters XML 1.0 forbids are dropped.
fn write_escaped(out: &mut impl Write, text: &str) -> io::Result<()> {
    let mut plain_from = 0;
    for (i, c) in text.char_indices() {
        let replacement = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\t' | '\n' | '\r' => continue,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => "",
            _ => continue,
        };
        out.write_all(&text.as_bytes()[plain_from..i])?;
        out.write_all(replacement.as_bytes())?;
        plain_from = i + c.len_utf8();
    }
    out.write_all(&text.as_bytes()[plain_from..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Seek, SeekFrom};

    /// The `.fods` made from CSV `data`, through encoding detection.
    fn fods(data: &[u8], sheet_name: &str, tab_separated: bool) -> String {
        let mut out = Vec::new();
        let text = encoding::decoded(Cursor::new(data)).unwrap();
        write_sheet(text, &mut out, sheet_name, tab_separated).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The cells' text (still escaped), row by row; "" for an empty cell.
    fn table(xml: &str) -> Vec<Vec<String>> {
        let text = |cell: &str| match cell.split_once("<text:p>") {
            Some((_, rest)) => rest.split("</text:p>").next().unwrap().to_owned(),
            None => String::new(),
        };
        let rows = xml.split("<table:table-row>").skip(1);
        let rows = rows.map(|row| row.split("</table:table-row>").next().unwrap());
        rows.map(|row| row.split("<table:table-cell").skip(1).map(text).collect()).collect()
    }

    fn rows(data: &[u8]) -> Vec<Vec<String>> {
        table(&fods(data, "s", false))
    }

    #[test]
    fn parses_quotes_separators_and_newlines() {
        let parsed = rows(b"a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",,x\n");
        assert_eq!(parsed, [vec!["a", "b,c", "say &quot;hi&quot;"], vec!["two\nlines", "", "x"]]);
        assert_eq!(rows(b"short\nlonger,row,here\n"), [vec!["short"], vec!["longer", "row", "here"]]);
    }

    #[test]
    fn a_trailing_newline_makes_no_empty_row() {
        for data in [&b"a,b"[..], b"a,b\n", b"a,b\r\n", b"a,b\r"] {
            assert_eq!(rows(data), [vec!["a", "b"]], "{data:?}");
        }
        assert!(rows(b"").is_empty());
        assert_eq!(rows(b"a\n\nb\n"), [vec!["a"], vec!["b"]]);
    }

    #[test]
    fn guesses_semicolons_and_tabs() {
        assert_eq!(guess_separator(b"a;b;c\n1,2,3,4,5"), b';');
        assert_eq!(guess_separator(b"a\tb"), b'\t');
        assert_eq!(guess_separator(b"\"x,y\";z"), b';');
        assert_eq!(guess_separator(b"single"), b',');
        assert_eq!(rows(b"a;b,c\n1;2"), [vec!["a", "b,c"], vec!["1", "2"]]);
        // TSV is tab separated even when its first line has more commas.
        assert_eq!(table(&fods(b"a,b,c\td\n", "s", true)), [vec!["a,b,c", "d"]]);
    }

    #[test]
    fn numbers_are_numbers_and_codes_stay_text() {
        assert_eq!(as_number("100"), Some(100.0));
        assert_eq!(as_number("-2.5"), Some(-2.5));
        assert_eq!(as_number("0.5"), Some(0.5));
        for text in ["007", "1e5", "12a", "1.", ".5", "-", "1,5", " 1"] {
            assert_eq!(as_number(text), None, "{text}");
        }
        let xml = fods(b"100,007\n", "s", false);
        assert!(xml.contains("office:value-type=\"float\" office:value=\"100\"><text:p>100</text:p>"));
        assert!(xml.contains("office:value-type=\"string\"><text:p>007</text:p>"));
    }

    #[test]
    fn escapes_markup_and_names_the_sheet() {
        let xml = fods(b"Name,Amount\n<b>&\"x\",100\n", "my <sheet> & \"co\"", false);
        assert!(xml.contains("table:name=\"my &lt;sheet&gt; &amp; &quot;co&quot;\""));
        assert!(xml.contains("<text:p>&lt;b&gt;&amp;&quot;x&quot;</text:p>"));
        // Characters XML 1.0 forbids are dropped; tabs and newlines kept.
        assert_eq!(rows("a\u{1}b\u{1F}c\u{FFFE},\"t\tn\n\"".as_bytes()), [vec!["abc", "t\tn\n"]]);
    }

    #[test]
    fn reads_windows_1252_when_not_utf8() {
        assert_eq!(rows(b"caf\xE9;\x80 5\n"), [vec!["café", "€ 5"]]);
    }

    #[test]
    fn drops_a_utf8_bom() {
        assert_eq!(rows(b"\xEF\xBB\xBFName,x\n"), [vec!["Name", "x"]]);
    }

    #[test]
    fn reads_excels_unicode_text() {
        // Excel's "Unicode text": UTF-16LE with a BOM, tab separated.
        let text = "Name\tPrice\r\nCafé\t3,50 €\r\n";
        let utf16le: Vec<u8> = [0xFEFF].into_iter().chain(text.encode_utf16()).flat_map(u16::to_le_bytes).collect();
        assert_eq!(&utf16le[..4], b"\xFF\xFEN\0");
        let expected = [vec!["Name", "Price"], vec!["Café", "3,50 €"]];
        assert_eq!(rows(&utf16le), expected);
        let utf16be: Vec<u8> = [0xFEFF].into_iter().chain(text.encode_utf16()).flat_map(u16::to_be_bytes).collect();
        assert_eq!(table(&fods(&utf16be, "s", true)), expected);
    }

    #[test]
    fn write_fods_converts_a_file_and_checks_all_of_it_for_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in.csv"), dir.path().join("in.fods"));
        let mut csv = Vec::new();
        for row in 0..50_000 {
            write!(csv, "{row};\"Name; {row}\";{row}.25;<&>\r\n").unwrap();
        }
        // One Windows-1252 byte megabytes in makes the whole file 1252.
        csv.extend_from_slice(b"last;caf\xE9\r\n");
        std::fs::write(&input, &csv).unwrap();

        write_fods(&input, &output, "Sales 2024", false).unwrap();
        let xml = std::fs::read_to_string(&output).unwrap();
        assert_well_formed(&xml);
        assert!(xml.contains("table:name=\"Sales 2024\""));
        let table = table(&xml);
        assert_eq!(table.len(), 50_001);
        assert_eq!(table[7], ["7", "Name; 7", "7.25", "&lt;&amp;&gt;"]);
        assert_eq!(table[50_000], ["last", "café"]);
    }

    /// Checks that tags nest and that text and attributes hold no raw
    /// markup (enough for what `write_sheet` writes).
    fn assert_well_formed(xml: &str) {
        let mut rest = xml.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n").expect("declaration");
        let mut open = Vec::new();
        let entities_only = |text: &str| {
            text.split('&').skip(1).all(|after| ["amp;", "lt;", "gt;", "quot;"].iter().any(|e| after.starts_with(e)))
        };
        while let Some(start) = rest.find('<') {
            let end = start + rest[start..].find('>').expect("tag ends");
            let (text, tag) = (&rest[..start], &rest[start + 1..end]);
            assert!(!text.contains('>') && entities_only(text), "{text}");
            assert!(!tag.contains('<') && entities_only(tag), "{tag}");
            match tag.strip_prefix('/') {
                Some(name) => assert_eq!(open.pop(), Some(name)),
                None if tag.ends_with('/') => {}
                None => open.push(tag.split(' ').next().unwrap()),
            }
            rest = &rest[end + 1..];
        }
        assert!(open.is_empty() && rest == "\n", "unclosed: {open:?}");
    }

    /// CSV made as it is read, one row at a time, never held whole.
    struct GeneratedCsv {
        rows: u64,
        made: u64,
        line: Vec<u8>,
        at: usize,
    }

    impl Read for GeneratedCsv {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.line.len() {
                if self.made == self.rows {
                    return Ok(0);
                }
                self.line.clear();
                let row = self.made;
                write!(self.line, "{row},\"Name, {row}\",{row}.5,caf\u{e9} <&>\r\n")?;
                self.made += 1;
                self.at = 0;
            }
            let n = buf.len().min(self.line.len() - self.at);
            buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// Rewinding is all that encoding detection asks of a file.
    impl Seek for GeneratedCsv {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            assert_eq!(to, SeekFrom::Start(0));
            (self.made, self.at) = (0, 0);
            self.line.clear();
            Ok(0)
        }
    }

    /// Counts what is written and keeps only the end of it.
    #[derive(Default)]
    struct CountingWriter {
        bytes: u64,
        tail: Vec<u8>,
    }

    impl Write for CountingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes += buf.len() as u64;
            self.tail.extend_from_slice(buf);
            let excess = self.tail.len().saturating_sub(256);
            self.tail.drain(..excess);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Memory stays bounded whatever the CSV's size: the input is generated
    /// as it is read and the output only counted, so neither exists whole
    /// anywhere, and the conversion (encoding check, decoding, parsing,
    /// writing) only ever sees `Read` and `Write`. That is the proof; a
    /// measure of the process's peak memory would be shared with the other
    /// tests running beside this one.
    #[test]
    fn streams_thirty_mebibytes_through_read_and_write() {
        let rows = 800_000;
        let mut csv = GeneratedCsv { rows, made: 0, line: Vec::new(), at: 0 };
        let size = io::copy(&mut csv, &mut io::sink()).unwrap();
        assert!(size > 30 << 20, "{size}");
        csv.seek(SeekFrom::Start(0)).unwrap();

        let mut out = CountingWriter::default();
        let written = write_sheet(encoding::decoded(csv).unwrap(), &mut out, "big", false).unwrap();
        assert_eq!(written, rows);
        assert!(out.bytes > size);
        let tail = String::from_utf8_lossy(&out.tail);
        assert!(tail.ends_with("caf\u{e9} &lt;&amp;&gt;</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document>\n"), "{tail}");
    }
}
