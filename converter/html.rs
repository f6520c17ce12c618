//! HTML results as one file.
//!
//! LibreOffice's HTML export writes a document's images beside the page, as
//! `<stem>_html_<hash>.<ext>`, and links them by that name. A job has one
//! result, so the images are put into the page as `data:` URLs and the side
//! files removed. (Writer's export could embed them itself; Calc's cannot,
//! so both go through here.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::io;
use std::path::Path;

/// Inlines the images LibreOffice wrote beside `page` and removes them.
pub fn inline_images(page: &Path) -> io::Result<()> {
    let (Some(dir), Some(stem)) = (page.parent(), page.file_stem().and_then(|s| s.to_str())) else {
        return Ok(());
    };
    let prefix = format!("{stem}_html_");
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) {
            images.push(name);
        }
    }
    if images.is_empty() {
        return Ok(());
    }
    let mut html = std::fs::read_to_string(page)?;
    for name in &images {
        let data = std::fs::read(dir.join(name))?;
        html = with_data_url(&html, name, &data);
    }
    std::fs::write(page, html)?;
    for name in &images {
        std::fs::remove_file(dir.join(name))?;
    }
    Ok(())
}

/// `html` with every quoted reference to `name` replaced by a `data:` URL
/// of `data`. Quotes are part of the match: text in the page cannot contain
/// a bare `"` (LibreOffice writes `&quot;`), so only attributes match.
fn with_data_url(html: &str, name: &str, data: &[u8]) -> String {
    let media_type = match name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("bmp") => "image/bmp",
        Some("tif" | "tiff") => "image/tiff",
        _ => "application/octet-stream",
    };
    let url = format!("\"data:{media_type};base64,{}\"", BASE64.encode(data));
    html.replace(&format!("\"{name}\""), &url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_references_become_data_urls() {
        let html = r#"<p>output_html_1.png</p><img src="output_html_1.png" alt="x"><img src="other.png">"#;
        let inlined = with_data_url(html, "output_html_1.png", b"PNG");
        assert_eq!(
            inlined,
            r#"<p>output_html_1.png</p><img src="data:image/png;base64,UE5H" alt="x"><img src="other.png">"#
        );
    }

    #[test]
    fn side_files_are_inlined_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("output.html");
        std::fs::write(&page, r#"<img src="output_html_a.jpg"><img src="output_html_b.gif">"#).unwrap();
        std::fs::write(dir.path().join("output_html_a.jpg"), b"JPG").unwrap();
        std::fs::write(dir.path().join("output_html_b.gif"), b"GIF").unwrap();
        std::fs::write(dir.path().join("input.docx"), b"kept").unwrap();
        inline_images(&page).unwrap();
        let html = std::fs::read_to_string(&page).unwrap();
        assert_eq!(html, r#"<img src="data:image/jpeg;base64,SlBH"><img src="data:image/gif;base64,R0lG">"#);
        let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, ["input.docx", "output.html"]);
    }
}
