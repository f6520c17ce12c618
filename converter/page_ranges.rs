//! Page ranges as the options write them ("2-3", "1,4-", "-3", "5"), as
//! LibreOffice's print dialog takes them: comma-separated pages or
//! inclusive ranges counting from 1, either end of a range left open.
//! The options check their syntax; tools that work on a finished PDF turn
//! them into the pages of a document of known length here.

/// One part of a range text: `from`..=`to`, either end open.
type Part = (Option<u32>, Option<u32>);

fn parse(text: &str) -> Option<Vec<Part>> {
    let page = |s: &str| s.trim().parse::<u32>().ok().filter(|&n| n >= 1);
    text.split(',')
        .map(|part| match part.split_once('-') {
            None => page(part).map(|p| (Some(p), Some(p))),
            Some((from, to)) => match (from.trim().is_empty(), to.trim().is_empty()) {
                (true, true) => None,
                (true, false) => page(to).map(|to| (None, Some(to))),
                (false, true) => page(from).map(|from| (Some(from), None)),
                (false, false) => match (page(from), page(to)) {
                    (Some(a), Some(b)) if a <= b => Some((Some(a), Some(b))),
                    _ => None,
                },
            },
        })
        .collect()
}

/// Whether `text` is a page range at all.
pub fn is_valid(text: &str) -> bool {
    parse(text).is_some()
}

/// The pages of a document of `pages` pages that `text` names, in the
/// document's order, each once. Pages past the end are left out (as
/// LibreOffice does), so the result may be empty.
pub fn select(text: &str, pages: u32) -> Vec<u32> {
    let mut chosen = std::collections::BTreeSet::new();
    for (from, to) in parse(text).unwrap_or_default() {
        let (from, to) = (from.unwrap_or(1), to.unwrap_or(pages).min(pages));
        chosen.extend(from..=to);
    }
    chosen.into_iter().collect()
}

/// `pages` (ascending) in qpdf's page range syntax, runs joined: "1,4-6".
pub fn for_qpdf(pages: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &page in pages {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == page => *last = page,
            _ => runs.push((page, page)),
        }
    }
    let shown: Vec<String> =
        runs.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    shown.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_syntax_follows_the_print_dialog() {
        for good in ["1", "2-3", "1,4-", "-3", "1, 3-5 ,7"] {
            assert!(is_valid(good), "{good}");
        }
        for bad in ["", "0", "3-2", "a", "1-2-3", "-", "1,,2", "1.5"] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn selections_keep_the_documents_order_and_stop_at_its_end() {
        assert_eq!(select("2-3", 12), [2, 3]);
        assert_eq!(select("1,4-", 6), [1, 4, 5, 6]);
        assert_eq!(select("-3", 12), [1, 2, 3]);
        assert_eq!(select("5,1,2-3,3", 12), [1, 2, 3, 5]);
        assert_eq!(select("2-9", 3), [2, 3]);
        assert!(select("4-", 3).is_empty());
        assert!(select("10", 3).is_empty());
    }

    #[test]
    fn qpdf_ranges_join_runs() {
        assert_eq!(for_qpdf(&[1, 4, 5, 6, 9]), "1,4-6,9");
        assert_eq!(for_qpdf(&[3]), "3");
    }
}
