//! The documents every peer converts: the Gotenberg fixtures of each kind,
//! plus large ones generated here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Document {
    pub name: String,
    pub path: PathBuf,
}

/// Fixtures of each kind the engine handles.
const FIXTURES: &[&str] = &["page_1.docx", "pages_12.docx", "singlepagesheets-scrolled.xlsx", "slideshow.ppsx"];

pub fn fixtures(dir: &Path) -> Vec<Document> {
    FIXTURES.iter().map(|name| Document { name: name.to_string(), path: dir.join(name) }).collect()
}

/// A Word document of `paragraphs` long paragraphs (about 20 per page).
pub fn write_large_docx(path: &Path, paragraphs: usize) -> std::io::Result<Document> {
    let mut body = String::new();
    for i in 0..paragraphs {
        body.push_str(&format!(
            "<w:p><w:r><w:t>Paragraph {i}. Conversion services are measured on documents that look like \
             the ones people send: long runs of text, wrapped over many lines, page after page, with \
             nothing clever in them, so that the engine's layout work dominates.</w:t></w:r></w:p>"
        ));
    }
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
    );
    write_ooxml(
        path,
        &[
            ("[Content_Types].xml", CONTENT_TYPES_DOCX.as_bytes()),
            ("_rels/.rels", rels("word/document.xml", "officeDocument").as_bytes()),
            ("word/document.xml", document.as_bytes()),
        ],
    )?;
    Ok(Document { name: "large.docx".into(), path: path.to_path_buf() })
}

/// An Excel workbook of `rows` rows of eight cells.
pub fn write_large_xlsx(path: &Path, rows: usize) -> std::io::Result<Document> {
    let mut sheet = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>",
    );
    for row in 1..=rows {
        sheet.push_str(&format!("<row r=\"{row}\">"));
        for (column, letter) in "ABCDEFGH".chars().enumerate() {
            if column % 2 == 0 {
                sheet.push_str(&format!(
                    "<c r=\"{letter}{row}\" t=\"inlineStr\"><is><t>item {row}-{column}</t></is></c>"
                ));
            } else {
                sheet.push_str(&format!("<c r=\"{letter}{row}\"><v>{}</v></c>", row * 7 + column));
            }
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    let workbook = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
        <workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" \
        xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">\
        <sheets><sheet name=\"Data\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>";
    let workbook_rels = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
        <Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
        <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" \
        Target=\"worksheets/sheet1.xml\"/></Relationships>";
    write_ooxml(
        path,
        &[
            ("[Content_Types].xml", CONTENT_TYPES_XLSX.as_bytes()),
            ("_rels/.rels", rels("xl/workbook.xml", "officeDocument").as_bytes()),
            ("xl/workbook.xml", workbook.as_bytes()),
            ("xl/_rels/workbook.xml.rels", workbook_rels.as_bytes()),
            ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
        ],
    )?;
    Ok(Document { name: "large.xlsx".into(), path: path.to_path_buf() })
}

/// A flat ODF text document of exactly `size` bytes holding a noisy image
/// of `pixels`×`pixels`, for the streaming scenario.
pub fn write_image_document(path: &Path, pixels: u32, size: usize) -> std::io::Result<()> {
    let image = noise_png(pixels);
    let encoded = BASE64.encode(&image);
    let head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<office:document \
         xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
         xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" \
         xmlns:draw=\"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0\" \
         xmlns:svg=\"urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0\" \
         office:version=\"1.2\" office:mimetype=\"application/vnd.oasis.opendocument.text\">\
         <office:body><office:text><text:p><draw:frame text:anchor-type=\"as-char\" svg:width=\"10cm\" svg:height=\"10cm\">\
         <draw:image><office:binary-data>".to_string();
    let tail =
        "</office:binary-data></draw:image></draw:frame></text:p></office:text></office:body></office:document>\n";
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(head.as_bytes())?;
    file.write_all(encoded.as_bytes())?;
    file.write_all(tail.as_bytes())?;
    // Pad with an XML comment to the exact size asked for.
    let used = head.len() + encoded.len() + tail.len();
    if size > used + 7 {
        file.write_all(b"<!--")?;
        file.write_all(&vec![b'.'; size - used - 7])?;
        file.write_all(b"-->")?;
    }
    file.flush()
}

const CONTENT_TYPES_DOCX: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
    <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
    <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
    <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
    <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
    </Types>";

const CONTENT_TYPES_XLSX: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
    <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
    <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
    <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
    <Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
    <Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>\
    </Types>";

fn rels(target: &str, kind: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
         <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/{kind}\" \
         Target=\"{target}\"/></Relationships>"
    )
}

fn write_ooxml(path: &Path, parts: &[(&str, &[u8])]) -> std::io::Result<()> {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in parts {
        zip.start_file(*name, stored)?;
        zip.write_all(data)?;
    }
    zip.finish()?;
    Ok(())
}

/// A noisy RGB PNG (incompressible, like a photo).
fn noise_png(pixels: u32) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    png(pixels, pixels, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        [state as u8, (state >> 8) as u8, (state >> 16) as u8]
    })
}

/// A PNG of `width`×`height` RGB pixels from `pixel(x, y)`, written with
/// zlib "stored" blocks so that no image library is needed.
pub fn png(width: u32, height: u32, mut pixel: impl FnMut(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(((width * 3 + 1) * height) as usize);
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        zlib.extend_from_slice(&(block.len() as u16).to_le_bytes());
        zlib.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &header[..]), (b"IDAT", &zlib[..]), (b"IEND", &[][..])] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32fast::hash(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}
