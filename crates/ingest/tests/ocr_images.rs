//! Images are read with OCR: a clean 300 dpi "scan" of known text comes back with a character
//! error rate under 3 % in every supported format.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{cer, convert_png, reference_pdf, render_png, scan_reference};
use learnflow_ingest::{extract, ocr_available, DocumentKind, ImageFormat, IngestError, IngestOptions};

/// The first reference page rendered at 300 dpi (rendered once per test binary).
fn scan_png() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        render_png(&reference_pdf(1), 1, 300, dir.path())
    })
}

fn assert_ocr(bytes: &[u8], format: ImageFormat) {
    let started = Instant::now();
    let doc = extract(bytes, &IngestOptions::default()).unwrap_or_else(|e| panic!("{format}: {e}"));
    let elapsed = started.elapsed();
    assert_eq!(doc.kind, DocumentKind::Image(format));
    assert_eq!(doc.pages.len(), 1);
    assert_eq!(doc.pages[0].number, 1);
    assert_eq!(doc.ocr_pages, vec![1]);
    assert!(!doc.virtual_pages);
    let rate = cer(&doc.pages[0].text, &scan_reference(0));
    println!(
        "CER {format}: {:.2}% ({} chars, OCR took {:.2}s)",
        rate * 100.0,
        scan_reference(0).len(),
        elapsed.as_secs_f64()
    );
    assert!(
        rate < 0.03,
        "{format}: CER {:.2}% is over 3%:\n{}",
        rate * 100.0,
        doc.pages[0].text
    );
    // Paragraph structure survives OCR: three paragraphs, separated by blank lines.
    assert_eq!(
        doc.pages[0].text.split("\n\n").count(),
        3,
        "{}",
        doc.pages[0].text
    );
}

#[test]
fn png_scan_is_read_with_low_error_rate() {
    assert_ocr(scan_png(), ImageFormat::Png);
}

#[test]
fn jpeg_scan_is_read_with_low_error_rate() {
    assert_ocr(
        &convert_png(scan_png(), image::ImageFormat::Jpeg),
        ImageFormat::Jpeg,
    );
}

#[test]
fn tiff_scan_is_read_with_low_error_rate() {
    assert_ocr(
        &convert_png(scan_png(), image::ImageFormat::Tiff),
        ImageFormat::Tiff,
    );
}

#[test]
fn webp_scan_is_read_with_low_error_rate() {
    assert_ocr(
        &convert_png(scan_png(), image::ImageFormat::WebP),
        ImageFormat::Webp,
    );
}

#[test]
fn ocr_reports_the_tesseract_version() {
    let version = ocr_available("eng").expect("tesseract with English data is installed");
    assert!(
        version.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "{version}"
    );
    match ocr_available("xxx") {
        Err(IngestError::OcrLanguageMissing { language, hint, .. }) => {
            assert_eq!(language, "xxx");
            assert_eq!(hint, "apt-get install tesseract-ocr-xxx");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_image_header_over_the_pixel_limit_is_refused_before_decoding() {
    // A PNG signature and IHDR claiming 20000 x 20000 pixels, and no pixel data at all.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let started = Instant::now();
    let err = extract(&png, &IngestOptions::default()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match &err {
        IngestError::ImageTooLarge {
            width: 20_000,
            height: 20_000,
            pixels: 400_000_000,
            limit: 40_000_000,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("20000x20000"), "{err}");
    assert!(err.is_permanent());
}

#[test]
fn a_truncated_image_is_reported_as_corrupt() {
    let png = scan_png();
    for cut in [12, png.len() / 2] {
        match extract(&png[..cut], &IngestOptions::default()) {
            Err(
                err @ IngestError::CorruptImage {
                    format: ImageFormat::Png,
                    ..
                },
            ) => assert!(err.is_permanent()),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn a_blank_image_has_no_text_even_after_ocr() {
    let blank = image::GrayImage::from_pixel(1200, 800, image::Luma([255u8]));
    let mut png = std::io::Cursor::new(Vec::new());
    blank.write_to(&mut png, image::ImageFormat::Png).expect("encode");
    let err = extract(png.get_ref(), &IngestOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::NoText {
                kind: DocumentKind::Image(ImageFormat::Png),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("no text even after OCR"), "{err}");
}

#[test]
fn an_ocr_run_over_its_timeout_is_killed_and_retryable() {
    let options = IngestOptions {
        page_timeout: Duration::from_millis(50),
        ..IngestOptions::default()
    };
    let started = Instant::now();
    let err = extract(scan_png(), &options).unwrap_err();
    assert!(
        matches!(&err, IngestError::Timeout { tool, .. } if tool == "tesseract"),
        "{err:?}"
    );
    assert!(!err.is_permanent());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// CRC-32 (IEEE) of a PNG chunk's type and data.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_multi_page_tiff_gives_one_page_per_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = reference_pdf(2);
    let pages: Vec<image::GrayImage> = (1..=2)
        .map(|page| {
            let png = render_png(&pdf, page, 300, dir.path());
            image::load_from_memory(&png).expect("decode").to_luma8()
        })
        .collect();
    let tiff = common::multipage_tiff(&pages);
    let doc = extract(&tiff, &IngestOptions::default()).expect("multi-page TIFF extracts");
    assert_eq!(doc.kind, DocumentKind::Image(ImageFormat::Tiff));
    assert_eq!(doc.pages.len(), 2);
    assert_eq!(doc.ocr_pages, vec![1, 2]);
    for (i, page) in doc.pages.iter().enumerate() {
        let rate = cer(&page.text, &scan_reference(i));
        println!("CER multi-page TIFF page {}: {:.2}%", i + 1, rate * 100.0);
        assert!(
            rate < 0.03,
            "page {}: {:.2}%:\n{}",
            i + 1,
            rate * 100.0,
            page.text
        );
    }

    // The page limit counts the images in the file before any OCR.
    let options = IngestOptions {
        limits: learnflow_ingest::Limits {
            max_pages: 1,
            ..Default::default()
        },
        ..IngestOptions::default()
    };
    assert!(matches!(
        extract(&tiff, &options),
        Err(IngestError::TooManyPages { pages: 2, limit: 1 })
    ));
}
