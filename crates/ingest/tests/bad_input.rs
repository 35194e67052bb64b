//! Every kind of bad upload fails with its own clear error, naming the offending value or limit.

mod common;

use std::process::Command;

use common::{build_pdf, reference_pdf, PdfPage};
use learnflow_ingest::{detect, extract, DocumentKind, IngestError, IngestOptions, Limits};

fn options_with(limits: Limits) -> IngestOptions {
    IngestOptions {
        limits,
        ..IngestOptions::default()
    }
}

#[test]
fn zero_bytes_is_empty() {
    assert!(matches!(detect(b""), Err(IngestError::Empty)));
    let err = extract(b"", &IngestOptions::default()).unwrap_err();
    assert!(matches!(err, IngestError::Empty));
    assert_eq!(err.to_string(), "the file is empty (0 bytes)");
    assert!(err.is_permanent());
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_detection() {
    let options = options_with(Limits {
        max_file_bytes: 100,
        ..Limits::default()
    });
    let err = extract(&[b'a'; 101], &options).unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::FileTooLarge {
                size: 101,
                limit: 100
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the file is 101 bytes, over the limit of 100 bytes"
    );
    // Even bytes that are not a document are refused for their size first.
    let err = extract(&[0u8; 200], &options).unwrap_err();
    assert!(matches!(err, IngestError::FileTooLarge { .. }), "{err:?}");
}

#[test]
fn unsupported_types_are_named() {
    let cases: [(&[u8], &str); 6] = [
        (b"GIF89a\x10\x00\x10\x00\x80\x00\x00", "a GIF image"),
        (
            b"\x7FELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00",
            "an executable (ELF binary)",
        ),
        (
            b"\x1F\x8B\x08\x00\x00\x00\x00\x00\x00\x03",
            "a gzip-compressed file",
        ),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00",
            "a legacy Microsoft Office document (.doc/.xls/.ppt); save it as DOCX or PDF",
        ),
        (
            b"{\\rtf1\\ansi\\deff0 {\\fonttbl} Hello}",
            "an RTF document; save it as DOCX or PDF",
        ),
        (b"\x00\x00\x00\x00\x13\x37\x00\x01\xFF", "unknown binary data"),
    ];
    for (bytes, what) in cases {
        match extract(bytes, &IngestOptions::default()) {
            Err(err @ IngestError::Unsupported { .. }) => {
                assert_eq!(
                    err.to_string(),
                    format!("unsupported file type: the file is {what}")
                );
                assert!(err.is_permanent());
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn a_truncated_pdf_is_corrupt() {
    let pdf = reference_pdf(2);
    let truncated = &pdf[..pdf.len() / 2];
    assert_eq!(detect(truncated).unwrap(), DocumentKind::Pdf);
    match extract(truncated, &IngestOptions::default()) {
        Err(err @ IngestError::CorruptPdf { .. }) => {
            assert!(
                err.to_string().contains("xref") || err.to_string().contains("trailer"),
                "{err}"
            );
            assert!(err.is_permanent());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_after_a_pdf_header_is_corrupt() {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    let mut state = 7u32;
    bytes.extend((0..5_000).map(|_| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 16) as u8
    }));
    match extract(&bytes, &IngestOptions::default()) {
        Err(IngestError::CorruptPdf { detail }) => assert!(detail.contains("pdfinfo"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

/// Encrypts `pdf` with qpdf (Debian package `qpdf`): AES-256, the given user password.
fn qpdf_encrypt(pdf: &[u8], user_password: &str, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("in.pdf"), dir.path().join("out.pdf"));
    std::fs::write(&input, pdf).expect("write");
    let status = Command::new("qpdf")
        .args(["--encrypt", user_password, "owner-secret", "256"])
        .args(extra)
        .arg("--")
        .arg(&input)
        .arg(&output)
        .status()
        .expect("qpdf must be installed for this test (apt-get install qpdf)");
    assert!(status.success());
    std::fs::read(output).expect("read encrypted pdf")
}

#[test]
fn a_password_protected_pdf_is_refused_as_encrypted() {
    let encrypted = qpdf_encrypt(&reference_pdf(1), "user-secret", &[]);
    let err = extract(&encrypted, &IngestOptions::default()).unwrap_err();
    assert!(matches!(err, IngestError::EncryptedPdf), "{err:?}");
    assert!(err.to_string().contains("password-protected"), "{err}");
    assert!(err.is_permanent());
}

#[test]
fn a_pdf_encrypted_without_a_user_password_is_read_with_a_warning() {
    let encrypted = qpdf_encrypt(&reference_pdf(1), "", &["--extract=n"]);
    let doc = extract(&encrypted, &IngestOptions::default()).expect("opens without a password");
    assert!(
        doc.pages[0].text.contains("Photosynthesis"),
        "{}",
        doc.pages[0].text
    );
    assert!(
        doc.warnings
            .iter()
            .any(|w| w.contains("encrypted without a user password")),
        "{:?}",
        doc.warnings
    );
}

#[test]
fn a_pdf_with_more_pages_than_allowed_is_refused() {
    let pages: Vec<PdfPage> = (0..501)
        .map(|i| PdfPage::Text(vec![format!("Page {i} of a long reader.")]))
        .collect();
    let pdf = build_pdf(&pages, None);
    let err = extract(&pdf, &IngestOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::TooManyPages {
                pages: 501,
                limit: 500
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the document has 501 pages, over the limit of 500 pages"
    );

    let small = options_with(Limits {
        max_pages: 2,
        ..Limits::default()
    });
    assert!(matches!(
        extract(&reference_pdf(3), &small),
        Err(IngestError::TooManyPages { pages: 3, limit: 2 })
    ));
}

#[test]
fn text_over_the_character_limit_is_refused() {
    let options = options_with(Limits {
        max_text_chars: 1_000,
        ..Limits::default()
    });
    let text = "word ".repeat(500);
    let err = extract(text.as_bytes(), &options).unwrap_err();
    assert!(
        matches!(err, IngestError::TextTooLong { limit: 1_000, .. }),
        "{err:?}"
    );
}

#[test]
fn documents_without_any_text_are_no_text_errors() {
    let err = extract(b"   \n\n\t  \n", &IngestOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::NoText {
                kind: DocumentKind::Text,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "the text document contains no text");

    let html = b"<html><body><script>only code</script><nav>menu</nav></body></html>";
    assert!(matches!(
        extract(html, &IngestOptions::default()),
        Err(IngestError::NoText {
            kind: DocumentKind::Html,
            ..
        })
    ));

    // A PDF whose only page is blank: it is rendered and OCR'd, and still has nothing.
    let blank = build_pdf(&[PdfPage::Text(Vec::new())], None);
    let err = extract(&blank, &IngestOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::NoText {
                kind: DocumentKind::Pdf,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the pdf document contains no text even after OCR of 1 page"
    );
}

#[test]
fn invalid_options_are_named() {
    let options = IngestOptions {
        ocr_threads: 0,
        ..IngestOptions::default()
    };
    let err = extract(b"hello", &options).unwrap_err();
    assert!(err.to_string().contains("ocr_threads"), "{err}");
}

#[test]
fn a_pdf_with_more_text_than_allowed_is_stopped() {
    let line = "All work and no play makes a study pack a very long document indeed, page after page.";
    let pages: Vec<PdfPage> = (0..40)
        .map(|_| PdfPage::Text(vec![line.to_owned(); 500]))
        .collect();
    let pdf = build_pdf(&pages, None);
    let options = options_with(Limits {
        max_text_chars: 10_000,
        ..Limits::default()
    });
    let started = std::time::Instant::now();
    let err = extract(&pdf, &options).unwrap_err();
    assert!(
        matches!(err, IngestError::TextTooLong { limit: 10_000, .. }),
        "{err:?}"
    );
    println!("refused after {:?}", started.elapsed());
}
