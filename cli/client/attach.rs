//! Attachment flags: files embedded in each PDF result, sent after the
//! documents as further files of the same `Submit`, each with a
//! `DocumentHeader.attachment`. `--attach` names the file; the n-th
//! `--attachment-description`, `-type` and `-relationship` go with the
//! n-th `--attach` (give them in the same order). The service checks the
//! values, as for the options.

use clap::{Args, ValueEnum};
use docconv::proto::v1::{Attachment, AttachmentRelationship, DocumentHeader};
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Attachments (PDF)")]
pub struct AttachArgs {
    /// A file to embed in each PDF result, the flag repeated for more
    #[arg(long, value_name = "FILE")]
    attach: Vec<PathBuf>,
    /// The description of the n-th --attach file, shown by PDF readers
    #[arg(long, value_name = "TEXT")]
    attachment_description: Vec<String>,
    /// The MIME type of the n-th --attach file, e.g. text/xml [default:
    /// guessed from its name]
    #[arg(long, value_name = "MIME")]
    attachment_type: Vec<String>,
    /// How the n-th --attach file relates to the document (PDF/A-3's
    /// AFRelationship) [default: unspecified]
    #[arg(long, value_enum, value_name = "RELATIONSHIP")]
    attachment_relationship: Vec<Relationship>,
}

/// `AttachmentRelationship` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relationship {
    Source,
    Data,
    Alternative,
    Supplement,
}

/// One file to embed: where it is, and its header (without its size).
#[derive(Debug, Clone, PartialEq)]
pub struct Attaching {
    pub path: PathBuf,
    pub header: DocumentHeader,
}

impl AttachArgs {
    /// Each `--attach` file with what was said of it. More descriptions,
    /// types or relationships than files is a usage error.
    pub fn to_attachments(&self) -> Result<Vec<Attaching>, String> {
        let count = self.attach.len();
        for (flag, given) in [
            ("--attachment-description", self.attachment_description.len()),
            ("--attachment-type", self.attachment_type.len()),
            ("--attachment-relationship", self.attachment_relationship.len()),
        ] {
            if given > count {
                return Err(format!("{given} {flag} for {count} --attach files: give one per file, in order"));
            }
        }
        let attachments = self.attach.iter().enumerate().map(|(index, path)| {
            let relationship = match self.attachment_relationship.get(index) {
                None => AttachmentRelationship::Unspecified,
                Some(Relationship::Source) => AttachmentRelationship::Source,
                Some(Relationship::Data) => AttachmentRelationship::Data,
                Some(Relationship::Alternative) => AttachmentRelationship::Alternative,
                Some(Relationship::Supplement) => AttachmentRelationship::Supplement,
            };
            let attachment = Attachment {
                description: self.attachment_description.get(index).cloned().unwrap_or_default(),
                relationship: relationship as i32,
            };
            let header = DocumentHeader {
                file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                content_type: self.attachment_type.get(index).cloned().unwrap_or_default(),
                attachment: Some(attachment),
                ..Default::default()
            };
            Attaching { path: path.clone(), header }
        });
        Ok(attachments.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        attach: AttachArgs,
    }

    fn parse(args: &[&str]) -> Result<Vec<Attaching>, String> {
        let all = std::iter::once("convert").chain(args.iter().copied());
        Command::try_parse_from(all).map_err(|e| e.to_string())?.attach.to_attachments()
    }

    #[test]
    fn each_flag_goes_with_its_file_in_order() {
        let attached = parse(&[
            "--attach",
            "dir/invoice.xml",
            "--attachment-description",
            "Invoice data",
            "--attachment-relationship",
            "data",
            "--attach",
            "notes.txt",
            "--attachment-type",
            "text/xml",
            "--attachment-type",
            "text/plain",
        ])
        .unwrap();
        assert_eq!(attached.len(), 2);
        let (first, second) = (&attached[0].header, &attached[1].header);
        assert_eq!(first.file_name, "invoice.xml");
        assert_eq!(first.content_type, "text/xml");
        let attachment = first.attachment.clone().unwrap();
        assert_eq!(attachment.description, "Invoice data");
        assert_eq!(attachment.relationship, AttachmentRelationship::Data as i32);
        assert_eq!((second.file_name.as_str(), second.content_type.as_str()), ("notes.txt", "text/plain"));
        assert_eq!(second.attachment.clone().unwrap(), Attachment::default());
        assert!(parse(&[]).unwrap().is_empty());
        assert!(parse(&["--attachment-description", "for nothing"]).is_err());
    }
}
