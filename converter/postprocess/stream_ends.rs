//! PDF/A's rule on stream lengths, kept whatever byte a stream ends with.
//!
//! PDF/A counts a stream's `/Length` up to the end-of-line marker before
//! `endstream`. LibreOffice and qpdf write a LINE FEED there; when the
//! stream's own last byte is a CARRIAGE RETURN, the two read as one CRLF
//! marker and the length comes out one byte short, which validators refuse.
//! A Flate stream ends with its checksum, so about one stream in 256 ends
//! so, and which one changes from export to export (a font subset carries
//! the time of the export). Such a stream is stored decoded instead:
//! recompressing it would end in the same checksum.

use super::objects::write_entries;
use super::tools::{qpdf_json, qpdf_output, tool_failed};
use crate::failure::Failure;
use base64::Engine;
use serde_json::{Value, json};
use std::path::Path;

/// Stores decoded each stream of `pdf` whose data ends with a CARRIAGE
/// RETURN. Best effort: a stream that cannot be mended is logged, and the
/// file is left as it is.
pub async fn mend(pdf: &Path) -> Result<(), Failure> {
    let data = tokio::fs::read(pdf).await.map_err(|e| tool_failed("qpdf", &e.to_string()))?;
    let ending_in_cr = ending_in_cr(&data);
    if ending_in_cr.is_empty() {
        return Ok(());
    }
    let mut entries = serde_json::Map::new();
    let mut max_object_id = 0;
    for number in ending_in_cr {
        let json = qpdf_json(pdf, &["--json-key=qpdf".into(), format!("--json-object={number}")]).await?;
        max_object_id = json["qpdf"][0]["maxobjectid"].as_u64().unwrap_or(max_object_id);
        let Some(mut dict) = json["qpdf"][1][format!("obj:{number} 0 R")]["stream"]["dict"].as_object().cloned() else {
            tracing::warn!(object = number, "a stream ending in a carriage return was not found; left as it is");
            continue;
        };
        // Decoded only if it is stored otherwise, and of use only if it then ends otherwise.
        let decoded = match dict.contains_key("/Filter") {
            true => Some(decoded(pdf, number).await?),
            false => None,
        };
        let Some(decoded) = decoded.filter(|decoded| decoded.last() != Some(&b'\r')) else {
            tracing::warn!(object = number, "a stream ends in a carriage return however it is stored; left as it is");
            continue;
        };
        for key in ["/Filter", "/DecodeParms", "/Length"] {
            dict.remove(key);
        }
        let data = base64::engine::general_purpose::STANDARD.encode(&decoded);
        entries.insert(format!("obj:{number} 0 R"), json!({ "stream": { "dict": Value::Object(dict), "data": data } }));
    }
    if entries.is_empty() {
        return Ok(());
    }
    // Left uncompressed: compressing it again would end as before.
    write_entries(pdf, entries, max_object_id, &["--compress-streams=n".into()]).await
}

/// The stream's data with its filters undone.
async fn decoded(pdf: &Path, number: u64) -> Result<Vec<u8>, Failure> {
    let args = [format!("--show-object={number}"), "--filtered-stream-data".into(), pdf.to_string_lossy().into_owned()];
    qpdf_output(pdf, &args).await
}

/// The numbers of the objects whose stream data ends with a CARRIAGE
/// RETURN right before the LINE FEED and `endstream` a writer put after it.
fn ending_in_cr(pdf: &[u8]) -> Vec<u64> {
    const END: &[u8] = b"\r\nendstream";
    let mut numbers = Vec::new();
    let mut from = 0;
    while let Some(at) = find(&pdf[from..], END).map(|at| at + from) {
        if let Some(number) = object_number_before(&pdf[..at]) {
            numbers.push(number);
        }
        from = at + END.len();
    }
    numbers.dedup();
    numbers
}

/// The number of the last `N G obj` header in `pdf`.
fn object_number_before(pdf: &[u8]) -> Option<u64> {
    let mut end = pdf.len();
    while let Some(at) = rfind(&pdf[..end], b" obj") {
        let head = &pdf[..at];
        let line = &head[head.iter().rposition(|&b| b == b'\n' || b == b'\r').map_or(0, |p| p + 1)..];
        let mut words = line.split(|&b| b == b' ');
        let (number, generation) = (words.next(), words.next());
        if let (Some(number), Some(generation), None) = (number, generation, words.next())
            && generation.iter().all(u8::is_ascii_digit)
            && let Some(number) = std::str::from_utf8(number).ok().and_then(|n| n.parse().ok())
        {
            return Some(number);
        }
        end = at;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_ending_in_a_carriage_return_are_found_by_their_object() {
        let pdf = b"%PDF-1.4\n1 0 obj\n<</Length 3>>\nstream\nab\r\nendstream\nendobj\n\
            12 0 obj\n<</Length 2>>\nstream\nab\nendstream\nendobj\n\
            13 0 obj\n<</Length 5>>\nstream\n1 obj\r\nendstream\nendobj\n";
        assert_eq!(ending_in_cr(pdf), [1, 13]);
        assert!(ending_in_cr(b"12 0 obj\n<<>>\nstream\nab\nendstream\n").is_empty());
    }

    /// A one-page PDF whose content stream is `content`, compressed.
    fn pdf_with_content(content: &[u8]) -> Vec<u8> {
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(content, 6);
        let stream = [
            format!("<</Length {}/Filter/FlateDecode>>\nstream\n", compressed.len()).into_bytes(),
            compressed,
            b"\nendstream".to_vec(),
        ]
        .concat();
        let objects: [&[u8]; 4] = [
            b"<</Type/Catalog/Pages 2 0 R>>",
            b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Contents 4 0 R>>",
            &stream,
        ];
        let mut pdf = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (index, object) in objects.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
            pdf.extend_from_slice(object);
            pdf.extend_from_slice(b"\nendobj\n");
        }
        let xref = pdf.len();
        pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
        for offset in offsets {
            pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        let trailer = format!("trailer\n<</Size {}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1);
        pdf.extend_from_slice(trailer.as_bytes());
        pdf
    }

    #[tokio::test]
    async fn a_stream_ending_in_a_carriage_return_is_stored_decoded_and_reads_the_same() {
        // Its Adler-32 checksum, a zlib stream's last bytes, ends in 0x0D.
        let content = b"BT /F1 24 Tf 20 100 Td (docconv 1) Tj ET";
        let dir = tempfile::tempdir().unwrap();
        let pdf = dir.path().join("doc.pdf");
        std::fs::write(&pdf, pdf_with_content(content)).unwrap();
        assert_eq!(ending_in_cr(&std::fs::read(&pdf).unwrap()), [4]);
        mend(&pdf).await.unwrap();
        let mended = std::fs::read(&pdf).unwrap();
        assert!(ending_in_cr(&mended).is_empty(), "{}", String::from_utf8_lossy(&mended));
        assert_eq!(decoded(&pdf, 4).await.unwrap(), content);
        qpdf_output(&pdf, &["--check".into(), pdf.to_string_lossy().into_owned()]).await.unwrap();
        // A file with no such stream is left alone.
        let plain = dir.path().join("plain.pdf");
        let written = pdf_with_content(b"BT ET");
        std::fs::write(&plain, &written).unwrap();
        mend(&plain).await.unwrap();
        assert_eq!(std::fs::read(&plain).unwrap(), written);
    }
}
