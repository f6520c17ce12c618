//! CSV and TSV become flat OpenDocument spreadsheets before LibreOffice sees
//! them.
//!
//! LibreOfficeKit's CSV import waits for its options dialog, so a CSV load
//! never returns (with `Batch` it fails instead). Parsing CSV ourselves and
//! handing LibreOffice a `.fods` avoids the dialog, and the sheet gets the
//! uploaded file's name rather than a temporary one, which Calc prints in the
//! page header.

use std::fmt::Write as _;

/// Converts CSV (or TSV when `tab_separated`) into a `.fods` document whose
/// single sheet is called `sheet_name`.
pub fn to_fods(data: &[u8], sheet_name: &str, tab_separated: bool) -> String {
    let text = decode(data);
    let separator = if tab_separated { '\t' } else { guess_separator(&text) };
    let mut xml = String::with_capacity(text.len() * 2 + 1024);
    xml.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<office:document xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" ",
        "xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" ",
        "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" ",
        "office:version=\"1.2\" office:mimetype=\"application/vnd.oasis.opendocument.spreadsheet\">",
        "<office:body><office:spreadsheet>"
    ));
    let _ = write!(xml, "<table:table table:name=\"{}\">", escape(sheet_name));
    for row in parse(&text, separator) {
        xml.push_str("<table:table-row>");
        for cell in row {
            push_cell(&mut xml, &cell);
        }
        xml.push_str("</table:table-row>");
    }
    xml.push_str("</table:table></office:spreadsheet></office:body></office:document>\n");
    xml
}

/// UTF-8 (with or without BOM); anything else is read as Windows-1252's
/// Latin-1 subset, the usual encoding of spreadsheets exported on Windows.
fn decode(data: &[u8]) -> String {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    match std::str::from_utf8(data) {
        Ok(text) => text.to_owned(),
        Err(_) => data.iter().map(|&b| b as char).collect(),
    }
}

/// The most frequent of `,` `;` and tab on the first line, outside quotes.
fn guess_separator(text: &str) -> char {
    let first_line = text.lines().next().unwrap_or("");
    let mut counts = [(',', 0), (';', 0), ('\t', 0)];
    let mut quoted = false;
    for c in first_line.chars() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted {
            for (sep, count) in counts.iter_mut() {
                if c == *sep {
                    *count += 1;
                }
            }
        }
    }
    counts.iter().max_by_key(|(_, n)| *n).filter(|(_, n)| *n > 0).map_or(',', |(sep, _)| *sep)
}

/// RFC 4180 parsing: quoted fields may hold separators, newlines and
/// doubled quotes. A trailing newline does not make an empty row.
fn parse(text: &str, separator: char) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            c if c == separator => row.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn push_cell(xml: &mut String, value: &str) {
    if value.is_empty() {
        xml.push_str("<table:table-cell/>");
    } else if let Some(number) = as_number(value) {
        let _ = write!(
            xml,
            "<table:table-cell office:value-type=\"float\" office:value=\"{number}\"><text:p>{}</text:p></table:table-cell>",
            escape(value)
        );
    } else {
        let _ = write!(
            xml,
            "<table:table-cell office:value-type=\"string\"><text:p>{}</text:p></table:table-cell>",
            escape(value)
        );
    }
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
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_separators_and_newlines() {
        let rows = parse("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",,x\n", ',');
        assert_eq!(rows, vec![vec!["a", "b,c", "say \"hi\""], vec!["two\nlines", "", "x"]]);
    }

    #[test]
    fn guesses_semicolons_and_tabs() {
        assert_eq!(guess_separator("a;b;c\n1;2;3"), ';');
        assert_eq!(guess_separator("a\tb"), '\t');
        assert_eq!(guess_separator("\"x,y\";z"), ';');
        assert_eq!(guess_separator("single"), ',');
    }

    #[test]
    fn numbers_are_numbers_and_codes_stay_text() {
        assert_eq!(as_number("100"), Some(100.0));
        assert_eq!(as_number("-2.5"), Some(-2.5));
        assert_eq!(as_number("007"), None);
        assert_eq!(as_number("1e5"), None);
        assert_eq!(as_number("12a"), None);
    }

    #[test]
    fn escapes_markup_and_names_the_sheet() {
        let xml = to_fods(b"Name,Amount\n<b>&,100\n", "my <sheet>", false);
        assert!(xml.contains("table:name=\"my &lt;sheet&gt;\""));
        assert!(xml.contains("<text:p>&lt;b&gt;&amp;</text:p>"));
        assert!(xml.contains("office:value=\"100\""));
    }

    #[test]
    fn reads_latin1_when_not_utf8() {
        assert_eq!(decode(b"caf\xE9"), "café");
        assert_eq!(decode(b"\xEF\xBB\xBFok"), "ok");
    }
}
