//! The PDF of marks that qpdf lays under or over the document's pages:
//! one page per chosen page, of that page's size. The mark itself is one
//! form XObject (glyph outlines, or an image) shared by every page; each
//! page draws it where `layout` places it, inside `/Artifact` marked
//! content, through an ExtGState for its opacity. Pages of one size share
//! their content stream.

use super::Job;
use super::image::Image;
use super::layout::{self, Size};
use super::text::Outlines;
use crate::options::parse_color;
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref};

/// What the mark is made of.
pub enum Drawing {
    Text(Outlines),
    Image(Image),
}

/// Grey, for text without a colour.
const GREY: [f32; 3] = [0.5, 0.5, 0.5];

const CATALOG: Ref = Ref::new(1);
const PAGE_TREE: Ref = Ref::new(2);
const MARK: Ref = Ref::new(3);
const IMAGE: Ref = Ref::new(4);
const ALPHA: Ref = Ref::new(5);
const OPACITY: Ref = Ref::new(6);
/// The first of the pages' and their contents' numbers.
const FIRST_FREE: i32 = 7;

/// The PDF of `drawing` for pages of `sizes` (points, as shown).
pub fn write(drawing: &Drawing, job: &Job<'_>, sizes: &[(f32, f32)]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    // Transparency (soft masks, ExtGState alpha) needs PDF 1.4; PDF/A-1 is
    // built on it.
    pdf.set_version(1, 4);
    let color = parse_color(&job.mark.color).unwrap_or(GREY);
    let (natural, size) = mark_form(&mut pdf, drawing, color);
    let opacity = job.mark.opacity.filter(|&o| o < 1.0);
    if let Some(opacity) = opacity {
        pdf.ext_graphics(OPACITY).non_stroking_alpha(opacity).stroking_alpha(opacity);
    }
    let mut next = FIRST_FREE;
    let mut contents: Vec<((f32, f32), Ref)> = Vec::new();
    let mut pages = Vec::with_capacity(sizes.len());
    for &page_size in sizes {
        let content = match contents.iter().find(|(s, _)| *s == page_size) {
            Some(&(_, content)) => content,
            None => {
                let content = Ref::new(next);
                next += 1;
                let placements = layout::placements(job.mark, job.layer, size, natural, page_size);
                pdf.stream(content, &page_content(&placements, opacity.is_some()));
                contents.push((page_size, content));
                content
            }
        };
        let page = Ref::new(next);
        next += 1;
        let mut writer = pdf.page(page);
        writer.parent(PAGE_TREE).media_box(Rect::new(0.0, 0.0, page_size.0, page_size.1)).contents(content);
        let mut resources = writer.resources();
        resources.x_objects().pair(Name(b"M"), MARK);
        if opacity.is_some() {
            resources.ext_g_states().pair(Name(b"G"), OPACITY);
        }
        resources.finish();
        writer.finish();
        pages.push(page);
    }
    pdf.pages(PAGE_TREE).kids(pages.iter().copied()).count(pages.len() as i32);
    pdf.catalog(CATALOG).pages(PAGE_TREE);
    pdf.finish()
}

/// Writes the mark's form XObject; returns its box (from (0, 0)) and how
/// `layout` sizes it.
fn mark_form(pdf: &mut Pdf, drawing: &Drawing, color: [f32; 3]) -> ((f32, f32), Size) {
    match drawing {
        Drawing::Text(outlines) => {
            // Filled in font units; the form's matrix makes them points of
            // text 1 pt high.
            let [r, g, b] = color;
            let mut content = format!("{r:.3} {g:.3} {b:.3} rg\n").into_bytes();
            content.extend_from_slice(&outlines.path);
            content.extend_from_slice(b"f\n");
            let em = 1.0 / outlines.units_per_em;
            let mut form = pdf.form_xobject(MARK, &content);
            form.bbox(Rect::new(0.0, 0.0, outlines.width, outlines.height));
            form.matrix([em, 0.0, 0.0, em, 0.0, 0.0]);
            form.finish();
            ((outlines.width * em, outlines.height * em), Size::Text)
        }
        Drawing::Image(image) => {
            let ratio = image.height as f32 / image.width as f32;
            let mut content = Content::new();
            content.transform([1.0, 0.0, 0.0, ratio, 0.0, 0.0]).x_object(Name(b"I"));
            let content = content.finish();
            let mut form = pdf.form_xobject(MARK, &content);
            form.bbox(Rect::new(0.0, 0.0, 1.0, ratio));
            form.resources().x_objects().pair(Name(b"I"), IMAGE);
            form.finish();
            write_image(pdf, image);
            ((1.0, ratio), Size::Image)
        }
    }
}

fn write_image(pdf: &mut Pdf, image: &Image) {
    let mut xobject = pdf.image_xobject(IMAGE, &image.data);
    xobject.filter(if image.jpeg { Filter::DctDecode } else { Filter::FlateDecode });
    xobject.width(image.width as i32).height(image.height as i32).bits_per_component(8);
    xobject.color_space_name(Name(if image.components == 1 { b"DeviceGray" } else { b"DeviceRGB" }));
    // Smooth when scaled up, as image viewers do.
    xobject.interpolate(true);
    if image.alpha.is_some() {
        xobject.s_mask(ALPHA);
    }
    xobject.finish();
    if let Some(alpha) = &image.alpha {
        let mut mask = pdf.image_xobject(ALPHA, alpha);
        mask.filter(Filter::FlateDecode);
        mask.width(image.width as i32).height(image.height as i32).bits_per_component(8);
        mask.color_space_name(Name(b"DeviceGray"));
        mask.finish();
    }
}

/// A page's content: the mark at each placement, all of it an artifact.
fn page_content(placements: &[[f32; 6]], translucent: bool) -> Vec<u8> {
    let mut content = Content::new();
    content.begin_marked_content(Name(b"Artifact"));
    content.save_state();
    if translucent {
        content.set_parameters(Name(b"G"));
    }
    for &matrix in placements {
        content.save_state().transform(matrix).x_object(Name(b"M")).restore_state();
    }
    content.restore_state();
    content.end_marked_content();
    content.finish().to_vec()
}
