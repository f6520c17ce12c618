//! The document information a PDF may be given (see `postprocess::metadata`).

use super::{Violation, check_text, violation};
use docconv::proto::v1::{PdfMetadata, PdfTrapped};
use prost_types::Timestamp;

/// Most custom entries, and longest custom name.
const MAX_CUSTOM: usize = 32;
const MAX_CUSTOM_NAME: usize = 64;

/// Entries of the document information dictionary that have fields of
/// their own (and are tied to XMP): a custom entry may not be one.
const STANDARD_ENTRIES: &[&str] =
    &["Title", "Author", "Subject", "Keywords", "Creator", "Producer", "CreationDate", "ModDate", "Trapped"];

pub fn check(violations: &mut Vec<Violation>, metadata: &PdfMetadata) {
    let field = |name: &str| format!("options.pdf.metadata.{name}");
    for (name, value) in [
        ("title", &metadata.title),
        ("author", &metadata.author),
        ("subject", &metadata.subject),
        ("creator", &metadata.creator),
        ("producer", &metadata.producer),
    ] {
        check_text(violations, &field(name), value);
    }
    if metadata.keywords.len() > 32 {
        violations.push(violation(&field("keywords"), "at most 32 keywords"));
    }
    for keyword in &metadata.keywords {
        check_text(violations, &field("keywords"), keyword);
    }
    for (name, time) in [("creation_time", &metadata.creation_time), ("modification_time", &metadata.modification_time)]
    {
        if time.as_ref().is_some_and(|t| !writable(t)) {
            violations.push(violation(&field(name), "must be a time in the years 1 to 9999"));
        }
    }
    if PdfTrapped::try_from(metadata.trapped).is_err() {
        violations.push(violation(&field("trapped"), "unknown value; use TRUE, FALSE or UNKNOWN"));
    }
    check_custom(violations, metadata);
}

/// PDF dates have four-digit years.
fn writable(time: &Timestamp) -> bool {
    const FIRST: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    (FIRST..=LAST).contains(&time.seconds) && (0..1_000_000_000).contains(&time.nanos)
}

/// Custom names become PDF names and exiftool tag names: plain ASCII
/// letters and digits keep them valid as both (and never need escaping).
fn check_custom(violations: &mut Vec<Violation>, metadata: &PdfMetadata) {
    let field = "options.pdf.metadata.custom";
    if metadata.custom.len() > MAX_CUSTOM {
        violations.push(violation(field, format!("at most {MAX_CUSTOM} entries")));
    }
    let mut seen = std::collections::HashSet::new();
    for (name, value) in &metadata.custom {
        let well_formed = (1..=MAX_CUSTOM_NAME).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric());
        if !well_formed {
            violations.push(violation(
                field,
                format!("{name:?}: names have 1 to {MAX_CUSTOM_NAME} ASCII letters and digits, starting with a letter"),
            ));
        } else if let Some(standard) = STANDARD_ENTRIES.iter().find(|s| s.eq_ignore_ascii_case(name)) {
            violations.push(violation(field, format!("{name:?} is the standard entry {standard}: use its own field")));
        } else if !seen.insert(name.to_ascii_lowercase()) {
            // Tools match these names without regard to case.
            violations.push(violation(field, format!("{name:?} differs from another name only in case")));
        }
        check_text(violations, field, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(metadata: PdfMetadata) -> Vec<String> {
        let mut violations = Vec::new();
        check(&mut violations, &metadata);
        violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn good_metadata_passes() {
        let metadata = PdfMetadata {
            creator: "Writer".into(),
            producer: "docconv".into(),
            creation_time: Some(Timestamp { seconds: 1_777_888_000, nanos: 0 }),
            modification_time: Some(Timestamp { seconds: -2_000_000_000, nanos: 5 }),
            trapped: PdfTrapped::False as i32,
            custom: [("Department".to_owned(), "Finance".to_owned()), ("Review2".into(), "".into())].into(),
            ..Default::default()
        };
        assert!(fields(metadata).is_empty());
    }

    #[test]
    fn each_bad_value_is_named() {
        let bad_time = Some(Timestamp { seconds: 253_402_300_800, nanos: 0 });
        let metadata =
            PdfMetadata { producer: "a\u{1}".into(), creation_time: bad_time, trapped: 7, ..Default::default() };
        assert_eq!(
            fields(metadata),
            ["options.pdf.metadata.producer", "options.pdf.metadata.creation_time", "options.pdf.metadata.trapped"]
        );
        for name in ["", "1st", "Dé", "with space", "a-b", "Title", "moddate", &"x".repeat(65)] {
            let metadata = PdfMetadata { custom: [(name.to_owned(), "v".to_owned())].into(), ..Default::default() };
            assert_eq!(fields(metadata), ["options.pdf.metadata.custom"], "{name:?}");
        }
        let twins = PdfMetadata {
            custom: [("Dept".to_owned(), "a".to_owned()), ("DEPT".into(), "b".into())].into(),
            ..Default::default()
        };
        assert_eq!(fields(twins), ["options.pdf.metadata.custom"]);
    }
}
