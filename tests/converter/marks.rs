//! Marks drawn on finished PDFs (`background`, `stamp`): text as glyph
//! outlines, which no text extractor sees, so every check is visual —
//! pages rendered by pdftoppm and their pixels compared with and without
//! the mark, on pages made so that a missing mark, or one on the wrong
//! layer or turned the wrong way, shows.

use crate::support::*;
use docconv::proto::v1::{
    ConversionOptions, DocumentHeader, Job, PdfMark, PdfMarkLayer, PdfMarkPosition, PdfRotate, PdfSplit, PdfStandard,
    SubmitHeader, pdf_split,
};
use std::process::Command;
use tonic::Code;
use tonic_types::StatusExt;

/// A page of a test PDF: its MediaBox, more page entries, its content.
struct Page<'a> {
    media: [u32; 4],
    extra: &'a str,
    content: &'a str,
}

const A4: [u32; 4] = [0, 0, 595, 842];

fn blank(media: [u32; 4]) -> Page<'static> {
    Page { media, extra: "", content: "" }
}

/// A PDF of `pages`, with a correct cross-reference table.
fn pdf_of(pages: &[Page]) -> Vec<u8> {
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!(
            "<< /Type /Pages /Count {} /Kids [{}] >>",
            pages.len(),
            (0..pages.len()).map(|i| format!("{} 0 R", 3 + 2 * i)).collect::<Vec<_>>().join(" ")
        ),
    ];
    for (i, page) in pages.iter().enumerate() {
        let [x0, y0, x1, y1] = page.media;
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [{x0} {y0} {x1} {y1}] {} /Contents {} 0 R /Resources << >> >>",
            page.extra,
            4 + 2 * i
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{}\nendstream", page.content.len() + 1, page.content));
    }
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n{object}\nendobj\n", i + 1).bytes());
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for offset in offsets {
        pdf.extend(format!("{offset:010} 00000 n \n").bytes());
    }
    pdf.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes());
    pdf
}

/// A page rendered in gray at 30 dpi: width, height and pixels (0 black).
struct Render {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

fn render(pdf: &[u8], page: u32) -> Render {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.pdf"), pdf).unwrap();
    let page = page.to_string();
    let status = Command::new("pdftoppm")
        // The visible area (CropBox), as readers show it.
        .args(["-r", "30", "-gray", "-cropbox", "-singlefile", "-f", &page, "-l", &page])
        .arg(dir.path().join("in.pdf"))
        .arg(dir.path().join("out"))
        .status()
        .unwrap();
    assert!(status.success(), "pdftoppm");
    let pgm = std::fs::read(dir.path().join("out.pgm")).unwrap();
    // "P5\n<width> <height>\n255\n", then one byte a pixel.
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&pgm[start..at]).into_owned());
    }
    let (width, height) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    Render { width, height, pixels: pgm[at + 1..].to_vec() }
}

impl Render {
    /// How dark an area is on average, 0 (white) to 255 (black); the area
    /// in fractions of the width and height, from the top left.
    fn darkness(&self, (x0, x1): (f32, f32), (y0, y1): (f32, f32)) -> f32 {
        let (w, h) = (self.width as f32, self.height as f32);
        let (mut sum, mut count) = (0.0, 0.0);
        for y in (y0 * h) as usize..(y1 * h) as usize {
            for x in (x0 * w) as usize..(x1 * w) as usize {
                sum += 255.0 - f32::from(self.pixels[y * self.width + x]);
                count += 1.0;
            }
        }
        sum / count
    }

    fn page(&self) -> f32 {
        self.darkness((0.0, 1.0), (0.0, 1.0))
    }

    /// The mean difference of two renders of one size.
    fn difference(&self, other: &Render) -> f32 {
        assert_eq!((self.width, self.height), (other.width, other.height), "renders of different sizes");
        let total: u64 = self.pixels.iter().zip(&other.pixels).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        total as f32 / self.pixels.len() as f32
    }
}

fn text_mark(text: &str, edit: impl FnOnce(&mut PdfMark)) -> PdfMark {
    let mut mark = PdfMark { text: text.into(), ..Default::default() };
    edit(&mut mark);
    mark
}

fn with_options(name: &str, options: ConversionOptions) -> SubmitHeader {
    SubmitHeader { options: Some(options), ..header(name) }
}

/// Submits `data` after `header`, then each file of a mark.
async fn submit_marked(
    header: SubmitHeader,
    data: &[u8],
    files: &[(&str, PdfMarkLayer, &[u8])],
) -> Result<Job, tonic::Status> {
    let further: Vec<(DocumentHeader, &[u8])> = files
        .iter()
        .map(|(name, layer, bytes)| {
            (DocumentHeader { file_name: name.to_string(), mark: *layer as i32, ..Default::default() }, *bytes)
        })
        .collect();
    submit_with_files(&mut shared().client().await, header, data, &further).await
}

/// The result of `job`, which must succeed.
async fn finished(job: Job) -> Vec<u8> {
    succeeded(job).await.1
}

/// The result of a PDF input `pdf` with `options` and mark files.
async fn marked(pdf: &[u8], options: ConversionOptions, files: &[(&str, PdfMarkLayer, &[u8])]) -> Vec<u8> {
    finished(submit_marked(with_options("in.pdf", options), pdf, files).await.unwrap()).await
}

#[tokio::test]
async fn a_background_lies_behind_the_content_and_a_stamp_over_it() {
    // The left half of the page is black; the mark spans both halves.
    let half_black = pdf_of(&[Page { media: A4, extra: "", content: "0 g 0 0 297.5 842 re f" }]);
    let grey = |p: &mut PdfMark| {
        p.angle = Some(0.0);
        p.color = "#808080".into();
    };
    let background = marked(&half_black, pdf_options(|p| p.background = Some(text_mark("MARK", grey))), &[]).await;
    let stamp = marked(&half_black, pdf_options(|p| p.stamp = Some(text_mark("MARK", grey))), &[]).await;
    let (left, right, middle) = ((0.05, 0.45), (0.55, 0.95), (0.4, 0.6));
    let plain = render(&half_black, 1);
    assert!(plain.darkness(left, middle) > 254.0 && plain.darkness(right, middle) < 1.0);
    let behind = render(&background, 1);
    // On bare paper the background shows; under the black it is hidden.
    assert!(behind.darkness(right, middle) > 20.0, "{}", behind.darkness(right, middle));
    assert!(behind.darkness(left, middle) > 254.0, "{}", behind.darkness(left, middle));
    let over = render(&stamp, 1);
    assert!(over.darkness(right, middle) > 20.0, "{}", over.darkness(right, middle));
    // Grey letters over the black lighten it.
    assert!(over.darkness(left, middle) < 240.0, "{}", over.darkness(left, middle));
    // Nothing is drawn far from the (centred, unturned) text.
    assert!(over.darkness(right, (0.0, 0.2)) < 1.0);
    for pdf in [&background, &stamp] {
        assert!(qpdf_check(pdf));
        let uncompressed = qpdf_rewrite(pdf, &["--qdf", "--object-streams=disable"]);
        assert!(String::from_utf8_lossy(&uncompressed).contains("/Artifact BMC"), "the mark is an artifact");
    }
}

#[tokio::test]
async fn a_converted_document_and_pdf_a_keep_a_background() {
    let word = std::fs::read(fixture("page_1.docx")).unwrap();
    let (_, plain) = convert_on_shared(header("page_1.docx"), &word).await;
    let options = pdf_options(|p| p.background = Some(text_mark("CONFIDENTIAL", |_| {})));
    let (_, pdf) = convert_on_shared(with_options("page_1.docx", options), &word).await;
    // The text runs through the page's centre, turned 45°.
    let centre = |pdf: &[u8]| render(pdf, 1).darkness((0.3, 0.7), (0.3, 0.7));
    let (before, after) = (centre(&plain), centre(&pdf));
    assert!(after > before + 5.0, "a background across the page: {before} → {after}");
    // Outlines are no text: the document's text is all there is.
    assert_eq!(pdf_text(&pdf, None), pdf_text(&plain, None));
    assert!(!pdf_text(&pdf, None).contains("CONFIDENTIAL"));

    let archival = pdf_options(|p| {
        p.standard = PdfStandard::PdfA2b as i32;
        p.background = Some(text_mark("CONFIDENTIAL", |m| m.opacity = Some(0.5)));
    });
    let (_, pdf_a) = convert_on_shared(with_options("page_1.docx", archival), &word).await;
    assert!(qpdf_check(&pdf_a), "qpdf --check");
    let meta = poppler_with("pdfinfo", &["-meta"], &pdf_a).unwrap();
    assert!(meta.contains("<pdfaid:part>2</pdfaid:part>"), "{meta}");
    // Half as dark as the opaque mark, but there.
    let translucent = centre(&pdf_a);
    assert!(translucent > before + 2.0 && translucent < after - 2.0, "{before} < {translucent} < {after}");
    // No font was added for the mark.
    let fonts = |pdf: &[u8]| poppler_with("pdffonts", &[], pdf).unwrap().lines().count();
    assert_eq!(fonts(&pdf_a), fonts(&pdf));

    // A tagged PDF/UA document takes marks as artifacts, outside its
    // structure.
    let accessible = pdf_options(|p| {
        p.universal_access = true;
        p.stamp = Some(text_mark("COPY", |m| m.position = PdfMarkPosition::Top as i32));
    });
    let (_, tagged) = convert_on_shared(with_options("page_1.docx", accessible), &word).await;
    let info = poppler_with("pdfinfo", &[], &tagged).unwrap();
    assert!(info.lines().any(|l| l.starts_with("Tagged:") && l.ends_with("yes")), "{info}");
    let top = |pdf: &[u8]| render(pdf, 1).darkness((0.4, 0.6), (0.03, 0.09));
    assert!(top(&tagged) > top(&plain) + 5.0, "the stamp at the top: {} → {}", top(&plain), top(&tagged));
    let uncompressed = qpdf_rewrite(&tagged, &["--qdf", "--object-streams=disable"]);
    assert!(String::from_utf8_lossy(&uncompressed).contains("/Artifact BMC"));
    assert!(qpdf_check(&tagged));
}

#[tokio::test]
async fn a_stamp_marks_only_its_pages_and_every_output() {
    let three = pdf_of(&[blank(A4), blank(A4), blank(A4)]);
    let stamp = |pages: &str| text_mark("COPY", |m| m.pages = pages.into());
    let second = marked(&three, pdf_options(|p| p.stamp = Some(stamp("2"))), &[]).await;
    let plain = |page| render(&three, page);
    assert_eq!(render(&second, 1).difference(&plain(1)), 0.0);
    assert_eq!(render(&second, 3).difference(&plain(3)), 0.0);
    assert!(render(&second, 2).page() > 3.0, "{}", render(&second, 2).page());

    // Every part of a split.
    let split = pdf_options(|p| {
        p.stamp = Some(stamp(""));
        p.split = Some(PdfSplit { by: Some(pdf_split::By::EveryPages(1)) });
    });
    let zip = marked(&three, split, &[]).await;
    let parts = unzip(&zip);
    assert_eq!(parts.len(), 3);
    for part in &parts {
        assert!(render(part, 1).page() > 3.0);
    }

    // A merge, with an image mark sent after its documents: the image is
    // no document of the merge, and every page carries it.
    let mut client = shared().client().await;
    let header = with_options("a.pdf", pdf_options(|p| p.stamp = Some(PdfMark::default())));
    let one = pdf_of(&[blank(A4)]);
    let seal = png(20, 20, |_, _| [0, 0, 0]);
    let further: Vec<(DocumentHeader, &[u8])> =
        [("b.pdf", PdfMarkLayer::Unspecified, &one[..]), ("seal.png", PdfMarkLayer::Stamp, &seal[..])]
            .into_iter()
            .map(|(name, mark, data)| {
                (DocumentHeader { file_name: name.into(), mark: mark as i32, ..Default::default() }, data)
            })
            .collect();
    let job = submit_with_files(&mut client, header, &one, &further).await.unwrap();
    assert_eq!(job.merged_file_names, ["a.pdf", "b.pdf"]);
    let merged = finished(job).await;
    assert_eq!(pdf_pages(&merged), 2);
    for page in [1, 2] {
        // A black square half the page wide, centred.
        assert!(render(&merged, page).darkness((0.3, 0.7), (0.4, 0.6)) > 250.0);
    }
}

fn unzip(zip: &[u8]) -> Vec<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut archive.by_index(i).unwrap(), &mut data).unwrap();
            data
        })
        .collect()
}

/// A PNG with an alpha channel, `pixel(x, y)` giving gray and alpha.
fn gray_alpha_png(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 2]) -> Vec<u8> {
    let mut file = Vec::new();
    let mut encoder = png::Encoder::new(&mut file, width, height);
    encoder.set_color(png::ColorType::GrayscaleAlpha);
    encoder.set_depth(png::BitDepth::Eight);
    let pixel = &pixel;
    let data: Vec<u8> = (0..height).flat_map(|y| (0..width).flat_map(move |x| pixel(x, y))).collect();
    encoder.write_header().unwrap().write_image_data(&data).unwrap();
    file
}

/// A JPEG of a black page `width` × `height` points, at 72 dpi, by pdftoppm.
fn black_jpeg(width: u32, height: u32) -> Vec<u8> {
    let pdf = pdf_of(&[Page { media: [0, 0, width, height], extra: "", content: "0 g -10 -10 1000 1000 re f" }]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.pdf"), pdf).unwrap();
    let status = Command::new("pdftoppm")
        .args(["-jpeg", "-r", "72", "-singlefile"])
        .arg(dir.path().join("in.pdf"))
        .arg(dir.path().join("out"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(dir.path().join("out.jpg")).unwrap()
}

#[tokio::test]
async fn images_and_pdfs_are_marks_too() {
    let page = pdf_of(&[blank(A4)]);
    let stamp = |edit: fn(&mut PdfMark)| {
        let mut mark = PdfMark::default();
        edit(&mut mark);
        pdf_options(|p| p.stamp = Some(mark))
    };
    let (left, right, middle) = ((0.1, 0.4), (0.6, 0.9), (0.45, 0.55));

    // A PNG, the page's width, black on its left half and transparent on
    // its right: without its soft mask the right half would be black too.
    let half = gray_alpha_png(40, 20, |x, _| if x < 20 { [0, 255] } else { [0, 0] });
    let pdf = marked(&page, stamp(|m| m.scale = 1.0), &[("half.png", PdfMarkLayer::Stamp, &half)]).await;
    let shown = render(&pdf, 1);
    assert!(shown.darkness(left, middle) > 250.0, "{}", shown.darkness(left, middle));
    assert!(shown.darkness(right, middle) < 1.0, "{}", shown.darkness(right, middle));
    assert!(shown.darkness((0.0, 1.0), (0.0, 0.3)) < 1.0, "only the middle band");

    // A JPEG, half the page wide (the default), centred.
    let jpeg = black_jpeg(100, 50);
    let pdf = marked(&page, stamp(|_| {}), &[("black.jpg", PdfMarkLayer::Stamp, &jpeg)]).await;
    let shown = render(&pdf, 1);
    assert!(shown.darkness((0.3, 0.7), (0.45, 0.55)) > 240.0, "{}", shown.darkness((0.3, 0.7), (0.45, 0.55)));
    assert!(shown.darkness((0.0, 0.2), (0.0, 1.0)) < 1.0);
    assert_eq!(pdf_images(&pdf), 1);

    // Half opaque: the black square shows as mid grey.
    let black = png(10, 10, |_, _| [0, 0, 0]);
    let pdf = marked(&page, stamp(|m| m.opacity = Some(0.5)), &[("black.png", PdfMarkLayer::Stamp, &black)]).await;
    let grey = render(&pdf, 1).darkness((0.4, 0.6), (0.45, 0.55));
    assert!((100.0..155.0).contains(&grey), "{grey}");

    // A PDF's first page, centred at its own size (200 × 100 of 595 × 842).
    let seal = pdf_of(&[
        Page { media: [0, 0, 200, 100], extra: "", content: "0 g 0 0 200 100 re f" },
        Page { media: [0, 0, 595, 842], extra: "", content: "0 g 0 0 595 842 re f" },
    ]);
    let pdf = marked(&page, stamp(|_| {}), &[("seal.pdf", PdfMarkLayer::Stamp, &seal)]).await;
    let shown = render(&pdf, 1);
    assert!(shown.darkness((0.4, 0.6), (0.47, 0.53)) > 250.0);
    assert!(shown.darkness((0.0, 0.25), (0.0, 1.0)) < 1.0, "its first page only, unscaled");
    assert!(qpdf_check(&pdf));
}

#[tokio::test]
async fn marks_stand_upright_on_turned_and_cropped_pages() {
    // Three pages shown alike, 400 × 600: one plain; one lying on its
    // side, turned by the rotate option; one cropped out of a larger page.
    let upright = pdf_of(&[blank([0, 0, 400, 600])]);
    let lying = pdf_of(&[blank([0, 0, 600, 400])]);
    let cropped = pdf_of(&[Page { media: [0, 0, 600, 800], extra: "/CropBox [100 100 500 700]", content: "" }]);
    let mark = text_mark("Fg", |m| {
        m.position = PdfMarkPosition::TopLeft as i32;
        m.angle = Some(0.0);
        m.font_size = 60.0;
        m.color = "#000000".into();
    });
    let stamped = |turn: bool| {
        let mark = mark.clone();
        pdf_options(move |p| {
            p.stamp = Some(mark);
            p.rotate = turn.then(|| PdfRotate { degrees: 90, pages: String::new() });
        })
    };
    let expected = render(&marked(&upright, stamped(false), &[]).await, 1);
    assert!(expected.darkness((0.0, 0.4), (0.0, 0.2)) > 5.0, "the mark at the top left");
    assert!(expected.darkness((0.5, 1.0), (0.3, 1.0)) < 1.0);
    for (name, pdf, turn) in [("turned", &lying, true), ("cropped", &cropped, false)] {
        let shown = render(&marked(pdf, stamped(turn), &[]).await, 1);
        let difference = shown.difference(&expected);
        assert!(difference < 1.0, "{name}: differs by {difference} on average");
    }
}

#[tokio::test]
async fn every_malformed_mark_is_refused_with_the_field_named() {
    let word = std::fs::read(fixture("page_1.docx")).unwrap();
    let seal = png(4, 4, |_, _| [0, 0, 0]);
    let seal_pdf = pdf_of(&[blank([0, 0, 100, 100])]);
    let stamp = |mark: PdfMark| pdf_options(|p| p.stamp = Some(mark));
    let image = PdfMark::default();
    type Case<'a> = (ConversionOptions, Vec<(&'a str, PdfMarkLayer, &'a [u8])>, &'a str);
    let cases: Vec<Case> = vec![
        (stamp(text_mark("X", |m| m.color = "red".into())), vec![], "options.pdf.stamp.color"),
        (stamp(text_mark("X", |m| m.opacity = Some(1.5))), vec![], "options.pdf.stamp.opacity"),
        (stamp(text_mark("X", |m| m.pages = "2-1".into())), vec![], "options.pdf.stamp.pages"),
        (stamp(text_mark("X", |m| m.angle = Some(400.0))), vec![], "options.pdf.stamp.angle"),
        (
            pdf_options(|p| {
                p.standard = PdfStandard::PdfA1b as i32;
                p.background = Some(text_mark("X", |m| m.opacity = Some(0.5)));
            }),
            vec![],
            "options.pdf.background.opacity",
        ),
        // A mark without text needs its file; a file needs its mark.
        (stamp(image.clone()), vec![], "options.pdf.stamp.text"),
        (ConversionOptions::default(), vec![("seal.png", PdfMarkLayer::Stamp, &seal)], "next_document.mark"),
        (
            stamp(image.clone()),
            vec![("seal.png", PdfMarkLayer::Background, &seal), ("s.png", PdfMarkLayer::Stamp, &seal)],
            "next_document.mark",
        ),
        (stamp(text_mark("X", |_| {})), vec![("seal.png", PdfMarkLayer::Stamp, &seal)], "next_document.mark"),
        (
            stamp(image.clone()),
            vec![("seal.png", PdfMarkLayer::Stamp, &seal), ("again.png", PdfMarkLayer::Stamp, &seal)],
            "next_document.mark",
        ),
        (stamp(image.clone()), vec![("seal.gif", PdfMarkLayer::Stamp, &seal)], "next_document.file_name"),
        (
            stamp(PdfMark { font_size: 12.0, ..image.clone() }),
            vec![("seal.png", PdfMarkLayer::Stamp, &seal)],
            "options.pdf.stamp.font_size",
        ),
        (
            pdf_options(|p| {
                p.standard = PdfStandard::PdfA2b as i32;
                p.stamp = Some(PdfMark::default());
            }),
            vec![("seal.pdf", PdfMarkLayer::Stamp, &seal_pdf)],
            "options.pdf.standard",
        ),
        (
            stamp(PdfMark { angle: Some(30.0), ..image.clone() }),
            vec![("seal.pdf", PdfMarkLayer::Stamp, &seal_pdf)],
            "options.pdf.stamp.angle",
        ),
    ];
    for (options, files, field) in cases {
        let status = submit_marked(with_options("a.docx", options.clone()), &word, &files).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{options:?}");
        assert!(status.message().contains(field), "{field}: {}", status.message());
        let bad_request = status.get_details_bad_request().expect("google.rpc.BadRequest details");
        assert!(bad_request.field_violations.iter().any(|v| v.field == field), "{field}: {bad_request:?}");
    }

    // What only the job can tell fails the job, naming the field.
    let mut client = shared().client().await;
    let one = pdf_of(&[blank(A4)]);
    let past_the_end = stamp(text_mark("X", |m| m.pages = "5".into()));
    let job = submit_marked(with_options("in.pdf", past_the_end), &one, &[]).await.unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert!(error.message.contains("options.pdf.stamp.pages"), "{}", error.message);
    let not_an_image = b"GIF89a this is no PNG".as_slice();
    let job =
        submit_marked(with_options("in.pdf", stamp(image)), &one, &[("seal.png", PdfMarkLayer::Stamp, not_an_image)])
            .await
            .unwrap();
    let error = wait_failed(&mut client, &job.id).await;
    assert_eq!(error.code, Code::InvalidArgument as i32);
    assert!(error.message.contains("options.pdf.stamp: its file is not a PNG or JPEG"), "{}", error.message);
}
