//! A real-world PDF from a Debian package (see tests/fixtures/README.md): the right number of
//! pages, the title from its metadata, and known phrases on the right pages.

use learnflow_ingest::{detect, extract, DocumentKind, IngestOptions};

const MOM_PDF: &[u8] = include_bytes!("fixtures/mom-pdf.pdf");

#[test]
fn the_groff_mom_manual_comes_out_page_by_page() {
    assert_eq!(detect(MOM_PDF).unwrap(), DocumentKind::Pdf);
    let doc = extract(MOM_PDF, &IngestOptions::default()).expect("the groff PDF extracts");
    assert_eq!(doc.pages.len(), 8);
    assert_eq!(doc.title.as_deref(), Some("Producing PDFs with groff and mom"));
    assert!(doc.ocr_pages.is_empty(), "every page has a text layer");
    assert!(!doc.virtual_pages);
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);

    let page = |n: usize| doc.pages[n - 1].text.as_str();
    assert!(
        page(1).starts_with("Producing PDFs\nwith groff and mom\nDeri James"),
        "{}",
        page(1)
    );
    assert!(page(1).contains("GNU General Public License"));
    assert!(page(2).starts_with("Contents"), "{}", page(2));
    assert!(page(2).contains("1. Introduction"));
    assert!(
        page(3).contains("1. Introduction\nPDF documents are intended to be “electronic paper,”"),
        "{}",
        page(3)
    );
    assert!(
        page(5).contains("3.5. Assigning a colour to links"),
        "{}",
        page(5)
    );
    assert!(
        page(5).contains("would open mom’s online documentation"),
        "{}",
        page(5)
    );
    assert!(
        page(8).contains("7. Comparison of -Tps /-mpdfmark with -Tpdf /-mom"),
        "{}",
        page(8)
    );
    assert!(!page(8).contains("1. Introduction\nPDF documents"));
    for p in &doc.pages {
        assert!(
            !p.text.contains("  ") && !p.text.contains('\x0c'),
            "page {} is normalised",
            p.number
        );
    }
}
