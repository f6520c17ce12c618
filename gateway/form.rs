//! Conversion options from form fields, for the upload page and for
//! scripts posting multipart forms. Fields come before the files they
//! apply to; names follow the gRPC options.

use super::error::AppError;
use docconv::proto::v1::{
    ConversionOptions, FacturXDocumentType, FacturXLevel, PageRanges, PdfEncryption, PdfFacturX, PdfMark,
    PdfMarkPosition, PdfMetadata, PdfOptions, PdfRotate, PdfSplit, PdfStandard, PdfTrapped, pdf_split,
};

/// Everything an upload form may carry besides its files.
#[derive(Default, Debug)]
pub struct UploadForm {
    pub target_format: String,
    pub merge: bool,
    pub options: ConversionOptions,
}

impl UploadForm {
    /// Takes one text field. Empty values mean "not set", as browsers send
    /// every field of a form.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), AppError> {
        let value = value.trim_matches(['\r', '\n']);
        // Unset fields, and the form's explicit "no standard" and "no
        // rotation" choices, add no PDF options (which other targets would
        // refuse).
        if value.is_empty() || (name == "pdf_standard" && value == "none") || (name == "rotate" && value == "0") {
            return Ok(());
        }
        match name {
            "target_format" => self.target_format = value.to_owned(),
            "merge" => self.merge = flag(name, value)?,
            "input_password" => self.options.input_password = value.to_owned(),
            _ => set_pdf(self.options.pdf.get_or_insert_with(PdfOptions::default), name, value)?,
        }
        Ok(())
    }
}

fn metadata(pdf: &mut PdfOptions) -> &mut PdfMetadata {
    pdf.metadata.get_or_insert_with(Default::default)
}

fn encryption(pdf: &mut PdfOptions) -> &mut PdfEncryption {
    pdf.encryption.get_or_insert_with(Default::default)
}

fn factur_x(pdf: &mut PdfOptions) -> &mut PdfFacturX {
    pdf.factur_x.get_or_insert_with(Default::default)
}

fn set_pdf(pdf: &mut PdfOptions, name: &str, value: &str) -> Result<(), AppError> {
    match name {
        "pdf_standard" => {
            pdf.standard = match value {
                "pdf_a_1b" => PdfStandard::PdfA1b,
                "pdf_a_2b" => PdfStandard::PdfA2b,
                "pdf_a_3b" => PdfStandard::PdfA3b,
                _ => return Err(bad(name, "use none, pdf_a_1b, pdf_a_2b or pdf_a_3b")),
            } as i32
        }
        "universal_access" => pdf.universal_access = flag(name, value)?,
        "page_ranges" => pdf.page_ranges = value.to_owned(),
        "single_page_sheets" => pdf.single_page_sheets = flag(name, value)?,
        "landscape" => pdf.landscape = flag(name, value)?,
        "image_quality" => pdf.image_quality = number(name, value)?,
        "max_image_resolution" => pdf.max_image_resolution = number(name, value)?,
        "export_bookmarks" => pdf.export_bookmarks = Some(flag(name, value)?),
        "export_notes" => pdf.export_notes = Some(flag(name, value)?),
        "export_form_fields" => pdf.export_form_fields = Some(flag(name, value)?),
        "watermark" => pdf.watermark = value.to_owned(),
        "title" => metadata(pdf).title = value.to_owned(),
        "author" => metadata(pdf).author = value.to_owned(),
        "subject" => metadata(pdf).subject = value.to_owned(),
        "keywords" => {
            metadata(pdf).keywords = value.split(',').map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect()
        }
        "creator" => metadata(pdf).creator = value.to_owned(),
        "producer" => metadata(pdf).producer = value.to_owned(),
        "creation_time" => metadata(pdf).creation_time = Some(time(name, value)?),
        "modification_time" => metadata(pdf).modification_time = Some(time(name, value)?),
        "trapped" => {
            metadata(pdf).trapped = match value {
                "true" => PdfTrapped::True,
                "false" => PdfTrapped::False,
                "unknown" => PdfTrapped::Unknown,
                _ => return Err(bad(name, "use true, false or unknown")),
            } as i32
        }
        // One NAME=VALUE per field, the field repeated for more.
        "custom" => {
            let (key, entry) = value.split_once('=').ok_or_else(|| bad(name, "use NAME=VALUE"))?;
            metadata(pdf).custom.insert(key.trim().to_owned(), entry.to_owned());
        }
        "rotate" => pdf.rotate.get_or_insert_with(PdfRotate::default).degrees = number(name, value)?,
        "rotate_pages" => pdf.rotate.get_or_insert_with(PdfRotate::default).pages = value.to_owned(),
        "flatten" => pdf.flatten = flag(name, value)?,
        "export_hidden_slides" => pdf.export_hidden_slides = flag(name, value)?,
        "export_notes_pages" => pdf.export_notes_pages = flag(name, value)?,
        "export_only_notes_pages" => pdf.export_only_notes_pages = flag(name, value)?,
        "skip_empty_pages" => pdf.skip_empty_pages = Some(flag(name, value)?),
        "export_placeholders" => pdf.export_placeholders = flag(name, value)?,
        "lossless_images" => pdf.lossless_images = flag(name, value)?,
        "named_destinations" => pdf.named_destinations = flag(name, value)?,
        "allow_duplicate_field_names" => pdf.allow_duplicate_field_names = flag(name, value)?,
        "embed_original" => pdf.embed_original = flag(name, value)?,
        "keep_image_resolution" => pdf.keep_image_resolution = flag(name, value)?,
        "open_password" => encryption(pdf).open_password = value.to_owned(),
        "owner_password" => encryption(pdf).owner_password = value.to_owned(),
        "allow_printing" => encryption(pdf).allow_printing = flag(name, value)?,
        "allow_copying" => encryption(pdf).allow_copying = flag(name, value)?,
        "allow_editing" => encryption(pdf).allow_editing = flag(name, value)?,
        "split_every_pages" => pdf.split = Some(PdfSplit { by: Some(pdf_split::By::EveryPages(number(name, value)?)) }),
        "split_ranges" => {
            let ranges = value.split(';').map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
            pdf.split = Some(PdfSplit { by: Some(pdf_split::By::Ranges(PageRanges { ranges })) });
        }
        "factur_x" => {
            factur_x(pdf).conformance_level = match value {
                "minimum" => FacturXLevel::Minimum,
                "basic_wl" => FacturXLevel::BasicWl,
                "basic" => FacturXLevel::Basic,
                "en16931" | "comfort" => FacturXLevel::En16931,
                "extended" => FacturXLevel::Extended,
                "xrechnung" => FacturXLevel::Xrechnung,
                _ => return Err(bad(name, "use minimum, basic_wl, basic, en16931, extended or xrechnung")),
            } as i32
        }
        "factur_x_document_type" => {
            factur_x(pdf).document_type = match value {
                "invoice" => FacturXDocumentType::Invoice,
                "order" => FacturXDocumentType::Order,
                "order_response" => FacturXDocumentType::OrderResponse,
                "order_change" => FacturXDocumentType::OrderChange,
                _ => return Err(bad(name, "use invoice, order, order_response or order_change")),
            } as i32
        }
        "factur_x_version" => factur_x(pdf).version = value.to_owned(),
        _ => match super::form_catalog::set(pdf, name, value) {
            Some(set) => set?,
            None => return set_mark(pdf, name, value),
        },
    }
    Ok(())
}

/// `background_text`, `stamp_color`, …: a text mark's fields, named as
/// `PdfMark`'s after the mark's. (Image and PDF marks are for the API and
/// the command line, as attachments are.)
fn set_mark(pdf: &mut PdfOptions, name: &str, value: &str) -> Result<(), AppError> {
    let (mark, field) = match name.split_once('_') {
        Some(("background", field)) => (pdf.background.get_or_insert_with(PdfMark::default), field),
        Some(("stamp", field)) => (pdf.stamp.get_or_insert_with(PdfMark::default), field),
        _ => return Err(AppError::BadRequest(format!("Unknown form field {name:?}."))),
    };
    match field {
        "text" => mark.text = value.to_owned(),
        "pages" => mark.pages = value.to_owned(),
        "font" => mark.font = value.to_owned(),
        "font_size" => mark.font_size = decimal(name, value)?,
        "color" => mark.color = value.to_owned(),
        "opacity" => mark.opacity = Some(decimal(name, value)?),
        "angle" => mark.angle = Some(decimal(name, value)?),
        "position" => {
            let position = PdfMarkPosition::from_str_name(&format!("PDF_MARK_POSITION_{}", value.to_uppercase()))
                .filter(|p| *p != PdfMarkPosition::Unspecified)
                .ok_or_else(|| {
                    bad(name, "use center, top_left, top, top_right, left, right, bottom_left, bottom or bottom_right")
                })?;
            mark.position = position as i32;
        }
        "tiled" => mark.tiled = flag(name, value)?,
        "scale" => mark.scale = decimal(name, value)?,
        _ => return Err(AppError::BadRequest(format!("Unknown form field {name:?}."))),
    }
    Ok(())
}

fn decimal(name: &str, value: &str) -> Result<f32, AppError> {
    value.trim().parse::<f32>().ok().filter(|n| n.is_finite()).ok_or_else(|| bad(name, "use a number such as 0.5"))
}

/// Checkboxes send "on"; scripts may send true/false.
pub(crate) fn flag(name: &str, value: &str) -> Result<bool, AppError> {
    match value {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(bad(name, "use true or false")),
    }
}

pub(crate) fn number(name: &str, value: &str) -> Result<u32, AppError> {
    value.trim().parse().map_err(|_| bad(name, "use a whole number"))
}

/// An RFC 3339 time, e.g. 2026-05-04T10:00:00Z.
fn time(name: &str, value: &str) -> Result<prost_types::Timestamp, AppError> {
    value.trim().parse().map_err(|_| bad(name, "use a time such as 2026-05-04T10:00:00Z"))
}

pub(crate) fn bad(name: &str, how: &str) -> AppError {
    AppError::BadRequest(format!("The field {name} has a value that is not understood: {how}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_options() {
        let mut form = UploadForm::default();
        for (name, value) in [
            ("target_format", "pdf"),
            ("page_ranges", "2-3"),
            ("pdf_standard", "pdf_a_2b"),
            ("landscape", "on"),
            ("input_password", "foo"),
            ("keywords", "a, b,,c"),
            ("split_ranges", "1-2; 3-"),
            ("watermark", ""),
            ("rotate", "90"),
            ("rotate_pages", "2-"),
            ("flatten", "on"),
            ("creation_time", "2026-05-04T10:00:00Z"),
            ("trapped", "false"),
            ("custom", "Department=Finance"),
            ("export_notes_pages", "true"),
            ("skip_empty_pages", "false"),
            ("keep_image_resolution", "on"),
            ("factur_x", "comfort"),
            ("factur_x_document_type", "order"),
            ("background_text", "DRAFT"),
            ("background_opacity", "0.4"),
            ("background_tiled", "true"),
            ("stamp_text", "COPY"),
            ("stamp_position", "top_right"),
            ("stamp_angle", "-15"),
            ("stamp_color", "#C00000"),
        ] {
            form.set(name, value).unwrap();
        }
        let pdf = form.options.pdf.unwrap();
        assert_eq!(pdf.page_ranges, "2-3");
        assert_eq!(pdf.standard, PdfStandard::PdfA2b as i32);
        assert!(pdf.landscape);
        assert_eq!(pdf.metadata.as_ref().unwrap().keywords, ["a", "b", "c"]);
        assert!(pdf.watermark.is_empty());
        match pdf.split.unwrap().by.unwrap() {
            pdf_split::By::Ranges(r) => assert_eq!(r.ranges, ["1-2", "3-"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(form.options.input_password, "foo");
        assert_eq!(pdf.rotate, Some(PdfRotate { degrees: 90, pages: "2-".into() }));
        assert!(pdf.flatten);
        assert!(pdf.export_notes_pages && pdf.keep_image_resolution);
        assert_eq!(pdf.skip_empty_pages, Some(false));
        let background = pdf.background.clone().unwrap();
        assert_eq!((background.text.as_str(), background.opacity, background.tiled), ("DRAFT", Some(0.4), true));
        let stamp = pdf.stamp.clone().unwrap();
        assert_eq!(stamp.position, PdfMarkPosition::TopRight as i32);
        assert_eq!((stamp.angle, stamp.color.as_str()), (Some(-15.0), "#C00000"));
        let metadata = pdf.metadata.unwrap();
        assert_eq!(metadata.creation_time.unwrap().seconds, 1_777_888_800);
        assert_eq!(metadata.trapped, PdfTrapped::False as i32);
        assert_eq!(metadata.custom["Department"], "Finance");
        let invoice = pdf.factur_x.unwrap();
        assert_eq!(
            (invoice.conformance_level(), invoice.document_type()),
            (FacturXLevel::En16931, FacturXDocumentType::Order)
        );
        // The form's "no rotation" adds nothing.
        let mut unturned = UploadForm::default();
        unturned.set("rotate", "0").unwrap();
        assert_eq!(unturned.options.pdf, None);
    }

    #[test]
    fn malformed_values_name_their_field() {
        let mut form = UploadForm::default();
        for (name, value) in [
            ("image_quality", "high"),
            ("landscape", "sideways"),
            ("pdf_standard", "x"),
            ("colour", "red"),
            ("rotate", "right"),
            ("creation_time", "today"),
            ("trapped", "maybe"),
            ("custom", "novalue"),
            ("factur_x", "gold"),
            ("factur_x_document_type", "receipt"),
            ("stamp_opacity", "half"),
            ("background_position", "middle"),
            ("stamp_size", "12"),
        ] {
            match form.set(name, value) {
                Err(AppError::BadRequest(message)) => assert!(message.contains(name), "{message}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
