//! PDFs with a text layer: every page comes out under its own number, with its own words,
//! without OCR.

mod common;

use common::{build_pdf, PdfPage};
use learnflow_ingest::{extract, DocumentKind, IngestOptions};

fn lines(lines: &[&str]) -> PdfPage {
    PdfPage::Text(lines.iter().map(|s| s.to_string()).collect())
}

#[test]
fn each_page_keeps_its_number_and_its_words() {
    let pdf = build_pdf(
        &[
            lines(&[
                "Chapter One: Cells",
                "",
                "The cell is the basic unit of life. Mitochondria produce",
                "energy for the cell, and the nucleus stores its genome.",
            ]),
            lines(&[
                "Chapter Two: Proteins",
                "",
                "Ribosomes   translate   messenger RNA into chains of amino",
                "acids, which fold into working proteins. During photo-",
                "synthesis, chloroplasts make sugars from light.",
            ]),
            lines(&[
                "Chapter Three: Genetics",
                "",
                "Gregor Mendel crossed pea plants (and counted them) in Brno.",
            ]),
        ],
        Some("Biology Notes \u{e9}dition"),
    );
    let doc = extract(&pdf, &IngestOptions::default()).expect("text PDF extracts");
    assert_eq!(doc.kind, DocumentKind::Pdf);
    assert_eq!(doc.title.as_deref(), Some("Biology Notes \u{e9}dition"));
    assert!(!doc.virtual_pages);
    assert!(
        doc.ocr_pages.is_empty(),
        "text pages must not be OCR'd: {:?}",
        doc.ocr_pages
    );
    assert_eq!(
        doc.pages.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );

    let p1 = &doc.pages[0].text;
    assert!(p1.starts_with("Chapter One: Cells"), "{p1}");
    assert!(p1.contains("Mitochondria produce\nenergy for the cell"), "{p1}");
    assert!(!p1.contains("Ribosomes") && !p1.contains("Mendel"));

    let p2 = &doc.pages[1].text;
    assert!(
        p2.contains("Ribosomes translate messenger RNA"),
        "runs of spaces collapsed: {p2}"
    );
    assert!(
        p2.contains("During photosynthesis,"),
        "hyphenation across the line end joined: {p2}"
    );
    assert!(!p2.contains("photo-"), "{p2}");
    assert!(!p2.contains("Mitochondria"));

    // Paragraph breaks inside a PDF page are poppler's call (a vertical gap alone is not one).
    assert_eq!(
        doc.pages[2].text.replace("\n\n", "\n"),
        "Chapter Three: Genetics\nGregor Mendel crossed pea plants (and counted them) in Brno."
    );
    for page in &doc.pages {
        assert!(
            !page.text.lines().any(|l| l.ends_with(' ') || l.contains("  ")),
            "{:?}",
            page.text
        );
    }
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
}

#[test]
fn a_blank_page_between_text_pages_keeps_the_numbering() {
    let pdf = build_pdf(
        &[
            lines(&["The first page talks about enzymes and their active sites."]),
            lines(&[]),
            lines(&["The third page talks about membranes and transport proteins."]),
        ],
        None,
    );
    let doc = extract(&pdf, &IngestOptions::default()).expect("extracts");
    assert_eq!(doc.pages.len(), 3);
    assert_eq!(doc.pages[1].number, 2);
    assert_eq!(doc.pages[1].text, "");
    assert!(doc.pages[2].text.contains("membranes"));
    assert!(doc.title.is_none());
    assert!(
        doc.warnings
            .iter()
            .any(|w| w.contains("page 2 has no text even after OCR")),
        "the blank page was OCR'd and reported: {:?}",
        doc.warnings
    );
    assert!(doc.ocr_pages.is_empty());
}
