//! Raster images (PNG, JPEG, TIFF, WebP): header checks against the pixel limit, then OCR.

use std::io::Cursor;

use crate::document::{DocumentKind, ExtractedDocument, ImageFormat, OcrStats, Page};
use crate::error::IngestError;
use crate::ocr::{self, OcrJob};
use crate::options::IngestOptions;
use crate::text::normalize_multiline;

/// Width and height of every image in the file, read from headers only (nothing is decoded).
fn dimensions(bytes: &[u8], format: ImageFormat) -> Result<Vec<(u32, u32)>, IngestError> {
    let corrupt = |detail: String| IngestError::CorruptImage { format, detail };
    if format == ImageFormat::Tiff {
        return tiff_page_sizes(bytes).map_err(corrupt);
    }
    if format == ImageFormat::Png {
        // The IHDR chunk is always first: width and height are bytes 16..24.
        return match (bytes.get(12..16), bytes.get(16..20), bytes.get(20..24)) {
            (Some(b"IHDR"), Some(w), Some(h)) => {
                let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                Ok(vec![(be(w), be(h))])
            }
            _ => Err(corrupt("the PNG has no IHDR header chunk".to_owned())),
        };
    }
    let crate_format = match format {
        ImageFormat::Png => ::image::ImageFormat::Png,
        ImageFormat::Jpeg => ::image::ImageFormat::Jpeg,
        ImageFormat::Tiff => ::image::ImageFormat::Tiff,
        ImageFormat::Webp => ::image::ImageFormat::WebP,
    };
    let (width, height) = ::image::ImageReader::with_format(Cursor::new(bytes), crate_format)
        .into_dimensions()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(vec![(width, height)])
}

/// Most images (pages) a TIFF may hold before its directory chain is considered hostile.
const MAX_TIFF_DIRECTORIES: usize = 10_000;

/// Walks the image file directories of a TIFF, returning each image's width and height.
fn tiff_page_sizes(bytes: &[u8]) -> Result<Vec<(u32, u32)>, String> {
    let little = match bytes.get(0..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return Err("not a TIFF header".to_owned()),
    };
    let u16_at = |pos: usize| -> Option<u16> {
        let b: [u8; 2] = bytes.get(pos..pos + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |pos: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(pos..pos + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let mut sizes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut offset = u32_at(4).ok_or("truncated header")? as usize;
    while offset != 0 {
        if !seen.insert(offset) || sizes.len() >= MAX_TIFF_DIRECTORIES {
            return Err(format!(
                "the image directory chain loops or is too long (at offset {offset})"
            ));
        }
        let count =
            usize::from(u16_at(offset).ok_or_else(|| format!("directory at {offset} is past the end"))?);
        let (mut width, mut height) = (None, None);
        for i in 0..count {
            let entry = offset + 2 + i * 12;
            let tag = u16_at(entry).ok_or("truncated directory")?;
            let kind = u16_at(entry + 2).ok_or("truncated directory")?;
            let value = match kind {
                3 => u32::from(u16_at(entry + 8).ok_or("truncated directory")?),
                4 => u32_at(entry + 8).ok_or("truncated directory")?,
                _ => continue,
            };
            match tag {
                256 => width = Some(value),
                257 => height = Some(value),
                _ => {}
            }
        }
        match (width, height) {
            (Some(w), Some(h)) => sizes.push((w, h)),
            _ => return Err(format!("image {} has no width or height", sizes.len() + 1)),
        }
        offset = u32_at(offset + 2 + count * 12).ok_or("truncated directory")? as usize;
    }
    if sizes.is_empty() {
        return Err("no images in the file".to_owned());
    }
    Ok(sizes)
}

/// Decodes a WebP image and writes it as PNG to `path`, for a tesseract built without libwebp.
fn webp_to_png(bytes: &[u8], path: &std::path::Path) -> Result<(), IngestError> {
    let decoded = ::image::load_from_memory_with_format(bytes, ::image::ImageFormat::WebP).map_err(|e| {
        IngestError::CorruptImage {
            format: ImageFormat::Webp,
            detail: e.to_string(),
        }
    })?;
    decoded
        .save_with_format(path, ::image::ImageFormat::Png)
        .map_err(|e| IngestError::io("writing the WebP image as PNG", std::io::Error::other(e)))
}

/// OCRs an image upload. A multi-page TIFF gives one page per image.
pub(crate) fn extract_image(
    bytes: &[u8],
    format: ImageFormat,
    options: &IngestOptions,
) -> Result<ExtractedDocument, IngestError> {
    let limits = &options.limits;
    let sizes = dimensions(bytes, format)?;
    limits.check_pages(sizes.len() as u64)?;
    for &(width, height) in &sizes {
        let pixels = u64::from(width) * u64::from(height);
        if pixels == 0 {
            return Err(IngestError::CorruptImage {
                format,
                detail: format!("{width}x{height} has no pixels"),
            });
        }
        if pixels > limits.max_image_pixels {
            return Err(IngestError::ImageTooLarge {
                format,
                width,
                height,
                pixels,
                limit: limits.max_image_pixels,
            });
        }
    }
    ocr::ocr_available(&options.ocr_language)?;
    let info = ocr::tesseract_info()?;
    let dir = tempfile::Builder::new()
        .prefix("learnflow-ingest-")
        .tempdir()
        .map_err(|e| IngestError::io("creating a temporary directory", e))?;
    let path = if format == ImageFormat::Webp && !info.reads_webp {
        // This tesseract cannot read WebP: hand it a PNG (the pixel limit was checked above).
        let path = dir.path().join("input.png");
        webp_to_png(bytes, &path)?;
        path
    } else {
        let path = dir.path().join(format!("input.{}", format.extension()));
        std::fs::write(&path, bytes)
            .map_err(|e| IngestError::io("writing the image to a temporary file", e))?;
        path
    };
    let page_count = u32::try_from(sizes.len()).unwrap_or(u32::MAX);
    let started = std::time::Instant::now();
    let raw = ocr::timed_page(1, || {
        ocr::ocr_image(&OcrJob {
            image: &path,
            language: &options.ocr_language,
            dpi: None,
            timeout: options.page_timeout.saturating_mul(page_count),
            single_threaded: false,
            context: format!("while reading the {format} image"),
        })
        .map_err(|e| match e {
            // Headers were fine but the image data is not: bad input, not a tool problem.
            IngestError::ToolFailed {
                stderr,
                killed_by_signal: false,
                ..
            } => IngestError::CorruptImage {
                format,
                detail: format!("tesseract cannot decode it: {stderr}"),
            },
            other => other,
        })
    })?;
    let mut texts: Vec<&str> = raw.split('\x0c').collect();
    if texts.len() > 1 && texts.last().is_some_and(|t| t.trim().is_empty()) {
        texts.pop();
    }
    let mut pages = Vec::new();
    let mut ocr_pages = Vec::new();
    let mut warnings = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let text = normalize_multiline(text, true);
        if text.is_empty() {
            warnings.push(format!("page {number} has no text even after OCR"));
        } else {
            ocr_pages.push(number);
        }
        pages.push(Page {
            number,
            text,
            headings: Vec::new(),
        });
    }
    let kind = DocumentKind::Image(format);
    if ocr_pages.is_empty() {
        return Err(IngestError::NoText {
            kind,
            detail: " even after OCR".to_owned(),
        });
    }
    Ok(ExtractedDocument {
        kind,
        title: None,
        pages,
        ocr: Some(OcrStats {
            pages: u32::try_from(texts.len()).unwrap_or(u32::MAX),
            seconds: started.elapsed().as_secs_f64(),
            peak_parallel: 1,
        }),
        ocr_pages,
        virtual_pages: false,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webp_is_converted_to_png_for_a_tesseract_without_webp_support() {
        let image = ::image::RgbImage::from_fn(40, 30, |x, _| ::image::Rgb([(x * 6) as u8, 0, 255]));
        let mut webp = Cursor::new(Vec::new());
        image.write_to(&mut webp, ::image::ImageFormat::WebP).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.png");
        webp_to_png(webp.get_ref(), &path).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(dimensions(&png, ImageFormat::Png).unwrap(), vec![(40, 30)]);
        assert!(matches!(
            webp_to_png(b"RIFF\0\0\0\0WEBPjunk", &path),
            Err(IngestError::CorruptImage {
                format: ImageFormat::Webp,
                ..
            })
        ));
    }

    #[test]
    fn tiff_directories_give_every_page_size() {
        // Two IFDs, little endian: 10x20 then 30x40.
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        let ifd = |w: u16, h: u32, next: u32| {
            let mut v = 2u16.to_le_bytes().to_vec();
            v.extend_from_slice(&256u16.to_le_bytes());
            v.extend_from_slice(&3u16.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
            v.extend_from_slice(&u32::from(w).to_le_bytes());
            v.extend_from_slice(&257u16.to_le_bytes());
            v.extend_from_slice(&4u16.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
            v.extend_from_slice(&h.to_le_bytes());
            v.extend_from_slice(&next.to_le_bytes());
            v
        };
        let first = ifd(10, 20, 8 + 30);
        tiff.extend_from_slice(&first);
        tiff.extend_from_slice(&ifd(30, 40, 0));
        assert_eq!(tiff_page_sizes(&tiff), Ok(vec![(10, 20), (30, 40)]));
        // A directory pointing at itself is refused rather than looping.
        let mut looping = tiff.clone();
        let next_pos = 8 + 2 + 24;
        looping[next_pos..next_pos + 4].copy_from_slice(&8u32.to_le_bytes());
        assert!(tiff_page_sizes(&looping).is_err());
    }
}
