//! Without poppler-utils or tesseract on PATH, PDFs and images fail with `ToolMissing` and an
//! install hint, while formats that need no external program still work.
//!
//! This file holds a single test because it changes PATH for its whole process.

mod common;

use learnflow_ingest::{extract, ocr_available, IngestError, IngestOptions};

#[test]
fn missing_programs_are_reported_with_an_install_hint() {
    let pdf = common::reference_pdf(1);
    let mut png = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_pixel(64, 64, image::Luma([255u8]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();

    let empty_dir = tempfile::tempdir().expect("tempdir");
    // Safe here: this test binary runs this one test, so no other thread reads the environment.
    std::env::set_var("PATH", empty_dir.path());

    match extract(&pdf, &IngestOptions::default()) {
        Err(err @ IngestError::ToolMissing { .. }) => {
            assert_eq!(
                err.to_string(),
                "the program `pdfinfo` is not installed or not on PATH; install it with `apt-get install poppler-utils`"
            );
            assert!(err.is_permanent());
        }
        other => panic!("{other:?}"),
    }
    match extract(png.get_ref(), &IngestOptions::default()) {
        Err(IngestError::ToolMissing { tool, hint }) => {
            assert_eq!(tool, "tesseract");
            assert_eq!(hint, "apt-get install tesseract-ocr");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ocr_available("eng"),
        Err(IngestError::ToolMissing { .. })
    ));

    let doc = extract(
        b"Plain text needs no external program.",
        &IngestOptions::default(),
    )
    .expect("text works");
    assert_eq!(doc.pages[0].text, "Plain text needs no external program.");
}
