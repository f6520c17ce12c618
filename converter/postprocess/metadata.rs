//! Document information, written by exiftool both into the document
//! information dictionary and the XMP packet, so PDF/A files stay
//! consistent (PDF/A requires the two to agree); custom entries go into the
//! dictionary alone (in XMP, PDF/A would need an extension schema for them).
//!
//! exiftool is told about the custom entries, and about Trapped, in a
//! config file of its own for the job: it writes only entries it knows,
//! and writes Trapped as the string "/True" in both places where PDF and
//! XMP want the name /True and the text "True".

use super::tools::{ArgFile, RemovedOnDrop, run_tool, tool_failed};
use crate::failure::Failure;
use docconv::proto::v1::{PdfMetadata, PdfTrapped};
use prost_types::Timestamp;
use std::path::Path;

pub fn is_empty(metadata: &PdfMetadata) -> bool {
    *metadata == PdfMetadata::default()
}

pub async fn write(metadata: &PdfMetadata, pdf: &Path) -> Result<(), Failure> {
    let config = pdf.with_extension(format!("exiftool-{}.config", docconv::ids::new_id()));
    let _scratch = RemovedOnDrop(vec![config.clone()]);
    std::fs::write(&config, config_text(metadata)).map_err(|e| tool_failed("exiftool", &e.to_string()))?;
    // Arguments come from a file: values may start with '-' and must never
    // be read as options.
    let argfile = ArgFile::write(pdf, &arguments(metadata))?;
    // `-config` must come first, on the command line itself.
    let args = ["-config".as_ref(), config.as_os_str(), "-@".as_ref(), argfile.path.as_os_str(), pdf.as_os_str()];
    run_tool("exiftool", &args).await
}

fn arguments(metadata: &PdfMetadata) -> Vec<String> {
    let mut args = vec!["-overwrite_original".to_owned(), "-charset".into(), "utf8".into()];
    let keywords = metadata.keywords.join(", ");
    let date = |time: &Option<Timestamp>| time.as_ref().map(exiftool_date).unwrap_or_default();
    let (created, modified) = (date(&metadata.creation_time), date(&metadata.modification_time));
    let trapped = match metadata.trapped() {
        PdfTrapped::Unspecified => "",
        PdfTrapped::True => "True",
        PdfTrapped::False => "False",
        PdfTrapped::Unknown => "Unknown",
    };
    for (tags, value) in [
        (&["PDF:Title", "XMP-dc:Title"][..], metadata.title.as_str()),
        (&["PDF:Author", "XMP-dc:Creator"][..], &metadata.author),
        (&["PDF:Subject", "XMP-dc:Description"][..], &metadata.subject),
        (&["PDF:Keywords", "XMP-pdf:Keywords"][..], &keywords),
        (&["PDF:Creator", "XMP-xmp:CreatorTool"][..], &metadata.creator),
        (&["PDF:Producer", "XMP-pdf:Producer"][..], &metadata.producer),
        (&["PDF:CreateDate", "XMP-xmp:CreateDate"][..], &created),
        (&["PDF:ModifyDate", "XMP-xmp:ModifyDate"][..], &modified),
        (&["PDF:Trapped", "XMP-pdf:Trapped"][..], trapped),
    ] {
        if !value.is_empty() {
            args.extend(tags.iter().map(|tag| format!("-{tag}={value}")));
        }
    }
    // In name order, so a job's arguments are always the same.
    let mut custom: Vec<_> = metadata.custom.iter().collect();
    custom.sort();
    args.extend(custom.into_iter().map(|(name, value)| format!("-PDF:{name}={value}")));
    args
}

/// The job's exiftool config (Perl). Custom names are only ever ASCII
/// letters and digits (the options check them), so they cannot break out
/// of their quotes.
fn config_text(metadata: &PdfMetadata) -> String {
    let mut names: Vec<&String> = metadata.custom.keys().collect();
    names.sort();
    let custom: String = names.iter().map(|name| format!("        '{name}' => {{ }},\n")).collect();
    format!(
        "%Image::ExifTool::UserDefined = (\n    \
             'Image::ExifTool::PDF::Info' => {{\n        Trapped => {{ Writable => 'name' }},\n{custom}    }},\n    \
             'Image::ExifTool::XMP::pdf' => {{\n        Trapped => {{ }},\n    }},\n);\n1;\n"
    )
}

/// `2026-05-04T10:00:00Z` as exiftool writes dates: `2026:05:04 10:00:00+00:00`
/// (in UTC; the fraction of a second is left out, as PDF dates have none).
fn exiftool_date(time: &Timestamp) -> String {
    let whole = Timestamp { seconds: time.seconds, nanos: 0 }.to_string();
    let (date, clock) = whole.trim_end_matches('Z').split_once('T').unwrap_or((&whole, ""));
    format!("{} {clock}+00:00", date.replace('-', ":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_in_utc() {
        assert_eq!(exiftool_date(&Timestamp { seconds: 1_777_888_999, nanos: 500 }), "2026:05:04 10:03:19+00:00");
        assert_eq!(exiftool_date(&Timestamp { seconds: -62_135_596_800, nanos: 0 }), "0001:01:01 00:00:00+00:00");
    }

    #[test]
    fn each_field_goes_to_the_dictionary_and_xmp() {
        let metadata = PdfMetadata {
            creator: "Writer".into(),
            producer: "-docconv".into(),
            trapped: PdfTrapped::True as i32,
            custom: [("Zeta".to_owned(), "z".to_owned()), ("Alpha".into(), "a".into())].into(),
            ..Default::default()
        };
        let args = arguments(&metadata);
        let expected = [
            "-PDF:Creator=Writer",
            "-XMP-xmp:CreatorTool=Writer",
            "-PDF:Producer=-docconv",
            "-XMP-pdf:Producer=-docconv",
            "-PDF:Trapped=True",
            "-XMP-pdf:Trapped=True",
            "-PDF:Alpha=a",
            "-PDF:Zeta=z",
        ];
        assert_eq!(&args[3..], expected);
        let config = config_text(&metadata);
        assert!(config.contains("'Alpha' => { },\n        'Zeta' => { },"), "{config}");
        assert!(config.contains("Trapped => { Writable => 'name' }"), "{config}");
    }
}
