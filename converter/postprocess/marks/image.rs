//! The file of a mark, told by its first bytes (not its name): a PDF,
//! placed by qpdf as it is; or a PNG or JPEG, made a PDF image. A JPEG
//! keeps its bytes (PDF's DCTDecode reads them; only its size and colours
//! are read from its frame header). A PNG is decoded, its alpha channel
//! made a soft mask, and both compressed anew (PDF's FlateDecode).

use crate::failure::Failure;
use std::path::Path;

/// Most memory a PNG may take decoded.
const MAX_DECODED: usize = 256 << 20;

/// What a mark is drawn from.
pub enum Source {
    Text,
    Pdf,
    Image(Image),
}

/// A PDF image: its samples as a PDF stream wants them.
#[derive(Debug)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    /// 1 (gray) or 3 (RGB) colour components of 8 bits.
    pub components: u8,
    /// The samples; JPEG bytes for DCTDecode, else Flate-compressed.
    pub data: Vec<u8>,
    pub jpeg: bool,
    /// The alpha channel, Flate-compressed, 8 bits a pixel.
    pub alpha: Option<Vec<u8>>,
}

impl Source {
    /// Reads the file of the mark `field`.
    pub async fn read(file: &Path, field: &'static str) -> Result<Source, Failure> {
        let data = tokio::fs::read(file).await.map_err(|_| Failure::Unreadable)?;
        let unusable = move |reason: String| Failure::MarkUnusable { field, reason };
        if data.starts_with(b"%PDF-") {
            return Ok(Source::Pdf);
        }
        let decoded = tokio::task::spawn_blocking(move || decode(&data)).await.map_err(|_| Failure::Internal)?;
        decoded.map(Source::Image).map_err(unusable)
    }
}

fn decode(data: &[u8]) -> Result<Image, String> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(data)
    } else if data.starts_with(&[0xFF, 0xD8]) {
        jpeg(data)
    } else {
        Err("its file is not a PNG or JPEG image or a PDF".into())
    }
}

fn png(data: &[u8]) -> Result<Image, String> {
    let damaged = |e: png::DecodingError| format!("its PNG cannot be read: {e}");
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(data), png::Limits { bytes: MAX_DECODED });
    // Palettes and small bit depths become 8-bit gray or RGB, a
    // transparent colour (tRNS) an alpha channel; 16 bits become 8.
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(damaged)?;
    let size = reader.output_buffer_size().ok_or("its PNG is too large")?;
    let mut pixels = vec![0; size];
    let frame = reader.next_frame(&mut pixels).map_err(damaged)?;
    pixels.truncate(frame.buffer_size());
    let (components, has_alpha) = match frame.color_type {
        png::ColorType::Grayscale => (1, false),
        png::ColorType::GrayscaleAlpha => (1, true),
        png::ColorType::Rgb => (3, false),
        png::ColorType::Rgba => (3, true),
        png::ColorType::Indexed => return Err("its PNG's palette could not be expanded".into()),
    };
    let (colour, alpha) = if has_alpha {
        let stride = components as usize + 1;
        let colour: Vec<u8> =
            pixels.chunks_exact(stride).flat_map(|p| p[..components as usize].iter().copied()).collect();
        let alpha: Vec<u8> = pixels.chunks_exact(stride).map(|p| p[components as usize]).collect();
        // Fully opaque: no mask (one less thing for PDF/A-1 to refuse).
        let alpha = alpha.iter().any(|&a| a != 255).then_some(alpha);
        (colour, alpha)
    } else {
        (pixels, None)
    };
    let compress = |bytes: &[u8]| miniz_oxide::deflate::compress_to_vec_zlib(bytes, 6);
    Ok(Image {
        width: frame.width,
        height: frame.height,
        components,
        data: compress(&colour),
        jpeg: false,
        alpha: alpha.map(|a| compress(&a)),
    })
}

/// A JPEG's size and colour components, from its frame header (SOFn).
fn jpeg(data: &[u8]) -> Result<Image, String> {
    let mut at = 2;
    while at + 4 <= data.len() {
        if data[at] != 0xFF {
            break;
        }
        let marker = data[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        // SOF0 to SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let header = data.get(at + 4..at + 2 + length).filter(|h| h.len() >= 6).ok_or("its JPEG is cut short")?;
            let height = u32::from(u16::from_be_bytes([header[1], header[2]]));
            let width = u32::from(u16::from_be_bytes([header[3], header[4]]));
            let components = header[5];
            if width == 0 || height == 0 {
                return Err("its JPEG has no size".into());
            }
            if components != 1 && components != 3 {
                return Err(format!("its JPEG has {components} colour components; use a gray or RGB one"));
            }
            return Ok(Image { width, height, components, data: data.to_vec(), jpeg: true, alpha: None });
        }
        at += 2 + length;
    }
    Err("its JPEG has no frame header".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_file(color: png::ColorType, pixels: &[u8], width: u32) -> Vec<u8> {
        let mut file = Vec::new();
        let height = pixels.len() as u32 / width / color.samples() as u32;
        let mut encoder = png::Encoder::new(&mut file, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header().unwrap().write_image_data(pixels).unwrap();
        file
    }

    fn inflate(data: &[u8]) -> Vec<u8> {
        miniz_oxide::inflate::decompress_to_vec_zlib(data).unwrap()
    }

    #[test]
    fn a_png_with_alpha_gets_a_soft_mask() {
        let rgba = [255, 0, 0, 255, 0, 0, 255, 0];
        let image = decode(&png_file(png::ColorType::Rgba, &rgba, 2)).unwrap();
        assert_eq!((image.width, image.height, image.components, image.jpeg), (2, 1, 3, false));
        assert_eq!(inflate(&image.data), [255, 0, 0, 0, 0, 255]);
        assert_eq!(inflate(&image.alpha.unwrap()), [255, 0]);
        let opaque = decode(&png_file(png::ColorType::GrayscaleAlpha, &[7, 255, 9, 255], 2)).unwrap();
        assert_eq!((opaque.components, opaque.alpha.is_none()), (1, true));
        assert_eq!(inflate(&opaque.data), [7, 9]);
    }

    #[test]
    fn a_jpeg_is_read_from_its_frame_header() {
        // SOI, an APP0 segment, SOF0 of 3 × 2 pixels with 3 components.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0];
        jpeg.extend([0xFF, 0xC0, 0, 17, 8, 0, 2, 0, 3, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        let image = decode(&jpeg).unwrap();
        assert_eq!((image.width, image.height, image.components, image.jpeg), (3, 2, 3, true));
        assert_eq!(image.data, jpeg);
        jpeg[17] = 4;
        assert!(decode(&jpeg).unwrap_err().contains("4 colour components"));
        assert!(decode(b"GIF89a").is_err());
    }
}
