//! Arbitrary bytes never make `detect` or `extract` panic, and random data is always an error.

use learnflow_ingest::{detect, extract, IngestOptions};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

const MAGICS: &[&[u8]] = &[
    b"%PDF-1.4\n",
    b"\x89PNG\r\n\x1a\n",
    b"\xFF\xD8\xFF\xE0",
    b"II*\0",
    b"MM\0*",
    b"RIFF\x10\0\0\0WEBPVP8 ",
    b"PK\x03\x04",
    b"\xEF\xBB\xBF",
    b"\xFF\xFE",
    b"\xFE\xFF",
    b"<!DOCTYPE html>",
    b"# ",
    b"GIF89a",
    b"BM",
    b"MZ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn detect_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..4_096)) {
        let _ = detect(&bytes);
    }

    #[test]
    fn detect_never_panics_on_known_headers_with_garbage(magic in select(MAGICS), tail in vec(any::<u8>(), 0..1_024)) {
        let _ = detect(&[magic, tail.as_slice()].concat());
    }

    #[test]
    fn detect_never_panics_on_arbitrary_text(text in "\\PC{0,2000}") {
        let _ = detect(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn extract_of_random_bytes_is_an_error(bytes in vec(any::<u8>(), 512..4_096)) {
        prop_assert!(extract(&bytes, &IngestOptions::default()).is_err());
    }

    #[test]
    fn extract_of_a_known_header_with_garbage_is_an_error(magic in select(&MAGICS[..7]), tail in vec(any::<u8>(), 512..2_048)) {
        let bytes = [magic, tail.as_slice()].concat();
        prop_assert!(extract(&bytes, &IngestOptions::default()).is_err());
    }

    #[test]
    fn extract_of_arbitrary_text_never_panics(text in "\\PC{0,3000}") {
        let _ = extract(text.as_bytes(), &IngestOptions::default());
    }
}

#[test]
fn deeply_nested_markup_does_not_overflow_the_stack() {
    let html = format!(
        "<html><body>{}deep text{}</body></html>",
        "<div><ul><li>".repeat(20_000),
        "</li></ul></div>".repeat(20_000)
    );
    let doc = extract(html.as_bytes(), &IngestOptions::default()).expect("nested HTML extracts");
    assert!(doc.full_text().contains("deep text"));

    let markdown = format!("# Nested\n\n{}deep quote\n", "> ".repeat(5_000));
    let doc = extract(markdown.as_bytes(), &IngestOptions::default()).expect("nested Markdown extracts");
    assert!(doc.full_text().contains("deep quote"));

    let list = (0..2_000)
        .map(|i| format!("{}- item {i}\n", "  ".repeat(i)))
        .collect::<String>();
    let doc = extract(format!("# List\n\n{list}").as_bytes(), &IngestOptions::default())
        .expect("nested list extracts");
    assert!(doc.full_text().contains("item 1999"));
}
