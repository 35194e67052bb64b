//! Scanned PDFs: pages without a usable text layer are rendered and OCR'd (in parallel), pages
//! with one keep it.

mod common;

use std::sync::OnceLock;
use std::time::Instant;

use common::{
    build_pdf, cer, page_lines, reference_pdf, render_png, scan_page, scan_reference, PdfPage, SCAN_TEXTS,
};
use learnflow_ingest::{extract, IngestOptions};

/// The four reference pages rendered at 300 dpi (once per test binary).
fn scans() -> &'static [Vec<u8>] {
    static SCANS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SCANS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let pdf = reference_pdf(4);
        (1..=4)
            .map(|page| render_png(&pdf, page, 300, dir.path()))
            .collect()
    })
}

#[test]
fn an_image_only_pdf_is_ocrd_page_by_page() {
    let pdf = build_pdf(&[scan_page(&scans()[1])], Some("Scanned history notes"));
    let doc = extract(&pdf, &IngestOptions::default()).expect("scanned PDF extracts");
    assert_eq!(doc.title.as_deref(), Some("Scanned history notes"));
    assert_eq!(doc.ocr_pages, vec![1]);
    assert_eq!(doc.pages.len(), 1);
    let rate = cer(&doc.pages[0].text, &scan_reference(1));
    println!("CER scanned PDF page: {:.2}%", rate * 100.0);
    assert!(rate < 0.03, "CER {:.2}%:\n{}", rate * 100.0, doc.pages[0].text);
    assert!(
        doc.pages[0].text.contains("Declaration of the Rights of Man"),
        "{}",
        doc.pages[0].text
    );
}

#[test]
fn a_mixed_pdf_ocrs_only_the_scanned_page() {
    let pdf = build_pdf(
        &[
            PdfPage::Text(page_lines(SCAN_TEXTS[0])),
            scan_page(&scans()[2]),
            PdfPage::Text(page_lines(SCAN_TEXTS[3])),
        ],
        None,
    );
    let doc = extract(&pdf, &IngestOptions::default()).expect("mixed PDF extracts");
    assert_eq!(doc.ocr_pages, vec![2], "only the scanned page is OCR'd");
    assert_eq!(doc.pages.len(), 3);
    // Text-layer pages are exact.
    assert_eq!(common::normalise(&doc.pages[0].text), scan_reference(0));
    assert_eq!(common::normalise(&doc.pages[2].text), scan_reference(3));
    let rate = cer(&doc.pages[1].text, &scan_reference(2));
    println!("CER mixed PDF scanned page: {:.2}%", rate * 100.0);
    assert!(rate < 0.03, "CER {:.2}%:\n{}", rate * 100.0, doc.pages[1].text);
}

#[test]
fn scanned_pages_are_ocrd_concurrently() {
    let pdf = build_pdf(
        &scans().iter().map(|png| scan_page(png)).collect::<Vec<_>>(),
        None,
    );
    let options = IngestOptions {
        ocr_threads: 2,
        ..IngestOptions::default()
    };
    let started = Instant::now();
    let doc = extract(&pdf, &options).expect("4-page scanned PDF extracts");
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(doc.ocr_pages, vec![1, 2, 3, 4]);
    for (i, page) in doc.pages.iter().enumerate() {
        let rate = cer(&page.text, &scan_reference(i));
        println!("CER page {}: {:.2}%", i + 1, rate * 100.0);
        assert!(
            rate < 0.03,
            "page {}: CER {:.2}%:\n{}",
            i + 1,
            rate * 100.0,
            page.text
        );
    }
    // The extraction measures how many pages were being OCR'd at the same moment: two
    // proves concurrency; nothing is assumed about the speed-up on a loaded machine.
    let stats = doc.ocr.expect("OCR figures are reported");
    println!(
        "4 pages at 300 dpi: wall {wall:.2}s, OCR {:.2}s, {:.2} pages/s, at most {} pages at once",
        stats.seconds,
        f64::from(stats.pages) / stats.seconds,
        stats.peak_parallel
    );
    assert_eq!(stats.pages, 4);
    assert!(stats.peak_parallel >= 2, "pages were OCR'd one after another");
}
