//! The invoice of a Factur-X job (`options.pdf.factur_x`), found among the
//! attachments of its `Submit`: the one XML attachment. It is renamed to
//! the name the standard fixes and related as Factur-X allows as soon as
//! its header arrives (so the job shows what will be embedded), a second
//! XML is refused at its header, and the XML itself is checked as soon as
//! it is stored, so a bad invoice fails the `Submit` and never a job.

use crate::error::{Error, Result};
use crate::options::{Violation, factur_x, invoice_xml};
use docconv::proto::v1::{AttachmentRelationship, ConversionOptions, PdfFacturX};
use docconv_backend::{Blobs, StoredInput};

pub(super) struct Invoice {
    /// Set for a Factur-X job.
    factur_x: Option<PdfFacturX>,
    found: Option<Found>,
}

struct Found {
    /// The name it was sent as, to name it in errors.
    sent_as: String,
    /// Its file among the job's.
    blob: String,
    checked: bool,
}

impl Invoice {
    pub(super) fn expected(options: &ConversionOptions) -> Invoice {
        Invoice { factur_x: options.pdf.as_ref().and_then(|pdf| pdf.factur_x.clone()), found: None }
    }

    /// Takes `stored`, an attachment whose data goes to `blob`, as the
    /// invoice if it is XML: renames it and sets its relationship.
    pub(super) fn claim(&mut self, stored: &mut StoredInput, blob: &str) -> Result<()> {
        let Some(factur_x) = &self.factur_x else { return Ok(()) };
        if !factur_x::is_xml(&stored.file_name, &stored.content_type) {
            return Ok(());
        }
        if let Some(found) = &self.found {
            return Err(refused(
                "next_document.file_name",
                format!(
                    "{:?} would be a second XML: a Factur-X PDF carries one invoice, and {:?} is it",
                    stored.file_name, found.sent_as
                ),
            ));
        }
        let attachment = stored.attachment.get_or_insert_default();
        let given = AttachmentRelationship::try_from(attachment.relationship).unwrap_or_default();
        attachment.relationship = factur_x::relationship(given).map_err(|v| Error::BadRequest(vec![v]))? as i32;
        let sent_as = std::mem::replace(&mut stored.file_name, factur_x::file_name(factur_x).to_owned());
        stored.content_type = "text/xml".into();
        self.found = Some(Found { sent_as, blob: blob.to_owned(), checked: false });
        Ok(())
    }

    /// Called once each file is stored: checks the invoice's XML once it is.
    pub(super) async fn check_stored(&mut self, blobs: &dyn Blobs, id: &str) -> Result<()> {
        let Some(found) = self.found.as_mut().filter(|found| !found.checked) else { return Ok(()) };
        let xml = blobs
            .open(id, &found.blob, 0)
            .await?
            .ok_or_else(|| Error::internal(format!("the invoice of job {id} was stored but cannot be found")))?;
        let not_invoice = |problem: String| {
            refused("next_document", format!("{:?} is not a Factur-X invoice: {problem}", found.sent_as))
        };
        let guideline = invoice_xml::check(xml).await.map_err(not_invoice)?;
        let factur_x = self.factur_x.as_ref().expect("found only for a Factur-X job");
        if !factur_x::declares(factur_x, &guideline) {
            return Err(refused(
                "options.pdf.factur_x.conformance_level",
                format!(
                    "{:?} declares the profile {guideline:?} (its GuidelineSpecifiedDocumentContextParameter), \
                     not {}: choose the level the invoice was written for",
                    found.sent_as,
                    factur_x::level_name(factur_x)
                ),
            ));
        }
        found.checked = true;
        Ok(())
    }

    /// At the end of the upload: a Factur-X job must have had its invoice.
    pub(super) fn required(&self) -> Result<()> {
        match (&self.factur_x, &self.found) {
            (Some(factur_x), None) => Err(refused(
                "options.pdf.factur_x",
                format!(
                    "needs the invoice's XML, sent as an attachment (embedded as {:?}); no XML attachment came",
                    factur_x::file_name(factur_x)
                ),
            )),
            _ => Ok(()),
        }
    }
}

fn refused(field: &str, description: String) -> Error {
    Error::BadRequest(vec![Violation { field: field.into(), description }])
}
