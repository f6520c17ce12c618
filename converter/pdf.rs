//! Reads the page count of a PDF that LibreOffice wrote.
//!
//! LibreOffice writes its page tree as plain (uncompressed) objects, so the
//! root `/Type /Pages` dictionary's `/Count` is the page count. Outline
//! dictionaries also carry `/Count`, which is why only page-tree objects are
//! looked at.

/// The number of pages, or `None` if no page tree was found.
pub fn page_count(pdf: &[u8]) -> Option<u32> {
    objects(pdf).filter(|object| is_page_tree(object)).filter_map(count_of).max()
}

/// The text up to each `endobj`: one object each.
fn objects(pdf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = pdf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = find(rest, b"endobj").map_or(rest.len(), |i| i + b"endobj".len());
        let (object, tail) = rest.split_at(end);
        rest = tail;
        Some(object)
    })
}

fn is_page_tree(object: &[u8]) -> bool {
    let mut rest = object;
    while let Some(i) = find(rest, b"/Type") {
        rest = &rest[i + b"/Type".len()..];
        let value = trim_start(rest);
        if value.starts_with(b"/Pages") && !value[b"/Pages".len()..].first().is_some_and(u8::is_ascii_alphanumeric) {
            return true;
        }
    }
    false
}

fn count_of(object: &[u8]) -> Option<u32> {
    let i = find(object, b"/Count")?;
    let digits: Vec<u8> =
        trim_start(&object[i + b"/Count".len()..]).iter().take_while(|b| b.is_ascii_digit()).copied().collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_root_page_tree_not_outlines() {
        let pdf = b"%PDF-1.6\n1 0 obj\n<</Type/Outlines/Count 40>>\nendobj\n\
            2 0 obj\n<</Type /Pages /Kids[3 0 R 4 0 R] /Count 12>>\nendobj\n\
            5 0 obj\n<</Type/Pages/Parent 2 0 R/Count 3>>\nendobj\n\
            6 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n";
        assert_eq!(page_count(pdf), Some(12));
    }

    #[test]
    fn no_page_tree_no_count() {
        assert_eq!(page_count(b"not a pdf"), None);
        assert_eq!(page_count(b"<</Type/PagesX/Count 3>>endobj"), None);
    }
}
