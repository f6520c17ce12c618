//! Counting a result's pages without starting a process. Every PDF job
//! reports its page count, and starting qpdf for it cost 4–5 ms a job, a
//! tenth of a small conversion. The PDFs LibreOffice writes (and qpdf
//! rewrites, keeping their layout) hold one flat page tree: a single
//! `/Type/Pages` dictionary whose `/Kids` lists every page and whose
//! `/Count` says how many. That shape is checked strictly here, and
//! anything else (several page trees, as in a file with an attached PDF; a
//! nested tree; object streams, which would hide the dictionary; a large
//! file) is left to qpdf, so the count is never a guess. A parser of our
//! own because reading one dictionary does not warrant a PDF library.

use super::tools;
use crate::failure::Failure;
use std::path::Path;

/// Files larger than this are counted by qpdf rather than read whole.
const READ_AT_MOST: u64 = 16 << 20;

/// The number of pages of `pdf`.
pub async fn page_count(pdf: &Path) -> Result<u32, Failure> {
    let small = tokio::fs::metadata(pdf).await.is_ok_and(|m| m.len() <= READ_AT_MOST);
    if small
        && let Ok(bytes) = tokio::fs::read(pdf).await
        && let Some(count) = flat_page_tree(&bytes)
    {
        return Ok(count);
    }
    tools::page_count(pdf, &[]).await
}

/// The page count of a PDF whose whole page tree is one `/Type/Pages`
/// dictionary listing every page; `None` for any other shape.
fn flat_page_tree(pdf: &[u8]) -> Option<u32> {
    if find(pdf, b"/ObjStm", 0).is_some() {
        return None;
    }
    let mut trees = Vec::new();
    let mut from = 0;
    while let Some(at) = find(pdf, b"/Pages", from) {
        from = at + b"/Pages".len();
        // "/Type/Pages" or "/Type /Pages": a page tree node (the catalog's
        // own "/Pages 4 0 R" is a reference, not a node).
        let before = pdf[..at].trim_ascii_end();
        if !before.ends_with(b"/Type") || pdf.get(from).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        trees.push(dictionary_around(pdf, at)?);
    }
    let [tree] = trees[..] else { return None };
    if find(tree, b"/Parent", 0).is_some() {
        return None;
    }
    let count: u32 = number_after(tree, b"/Count")?;
    let kids = array_after(tree, b"/Kids")?;
    // Each kid is "N G R": as many "R"s as pages, if the tree is flat.
    let references = kids.split(u8::is_ascii_whitespace).filter(|token| *token == b"R").count();
    (references == count as usize).then_some(count)
}

/// The innermost `<<…>>` holding `at` (dictionaries nest).
fn dictionary_around(pdf: &[u8], at: usize) -> Option<&[u8]> {
    let start = pdf[..at].windows(2).rposition(|w| w == b"<<")?;
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < pdf.len() {
        match &pdf[i..i + 2] {
            b"<<" => {
                depth += 1;
                i += 2;
            }
            b">>" => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return (i > at).then(|| &pdf[start..i]);
                }
            }
            _ => i += 1,
        }
    }
    None
}

fn number_after(dictionary: &[u8], key: &[u8]) -> Option<u32> {
    let at = find(dictionary, key, 0)? + key.len();
    let digits: Vec<u8> = dictionary[at..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn array_after<'a>(dictionary: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = find(dictionary, key, 0)? + key.len();
    let open = at + dictionary[at..].iter().position(|b| !b.is_ascii_whitespace())?;
    if dictionary[open] != b'[' {
        return None;
    }
    let close = open + dictionary[open..].iter().position(|b| *b == b']')?;
    Some(&dictionary[open + 1..close])
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PDF's objects as LibreOffice writes them, around its page tree.
    fn pdf(pages: &str) -> Vec<u8> {
        format!(
            "%PDF-1.6\n1 0 obj\n<</Type/Page/Parent 4 0 R/Resources 11 0 R>>\nendobj\n\n4 0 obj\n{pages}\nendobj\n\n\
             12 0 obj\n<</Type/Catalog/Pages 4 0 R\n/OpenAction[1 0 R /XYZ null null 0]\n>>\nendobj\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_flat_tree_is_counted() {
        let one = pdf("<</Type/Pages\n/Resources 11 0 R\n/MediaBox[ 0 0 612 792 ]\n/Kids[ 1 0 R ]\n/Count 1>>");
        assert_eq!(flat_page_tree(&one), Some(1));
        let twelve = (1..=12).map(|n| format!("{} 0 R", n * 3)).collect::<Vec<_>>().join(" ");
        let twelve = pdf(&format!("<< /Type /Pages /Kids [ {twelve} ] /Count 12 >>"));
        assert_eq!(flat_page_tree(&twelve), Some(12));
    }

    #[test]
    fn any_other_shape_is_left_to_qpdf() {
        // A count the kids do not bear out (a nested tree).
        assert_eq!(flat_page_tree(&pdf("<</Type/Pages/Kids[ 1 0 R 2 0 R ]/Count 5>>")), None);
        // An intermediate node.
        assert_eq!(flat_page_tree(&pdf("<</Type/Pages/Parent 9 0 R/Kids[ 1 0 R ]/Count 1>>")), None);
        // Two page trees: one of an attached PDF.
        let mut two = pdf("<</Type/Pages/Kids[ 1 0 R ]/Count 1>>");
        two.extend_from_slice(b"20 0 obj\n<</Type/Pages/Kids[ 21 0 R ]/Count 1>>\nendobj\n");
        assert_eq!(flat_page_tree(&two), None);
        // Object streams may hide the tree.
        let mut packed = pdf("<</Type/Pages/Kids[ 1 0 R ]/Count 1>>");
        packed.extend_from_slice(b"30 0 obj\n<</Type/ObjStm/N 3/First 20>>\nendobj\n");
        assert_eq!(flat_page_tree(&packed), None);
        // No tree at all, or no count.
        assert_eq!(flat_page_tree(b"%PDF-1.6\n"), None);
        assert_eq!(flat_page_tree(&pdf("<</Type/Pages/Kids[ 1 0 R ]>>")), None);
    }
}
