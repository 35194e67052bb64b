//! The output model serialises to stable strings, so other LearnFlow crates can store it.

use learnflow_ingest::{extract, DocumentKind, ExtractedDocument, ImageFormat, IngestOptions};

#[test]
fn document_kinds_serialise_and_display_as_snake_case_strings() {
    assert_eq!(
        serde_json::to_string(&DocumentKind::Markdown).unwrap(),
        "\"markdown\""
    );
    assert_eq!(
        serde_json::to_string(&DocumentKind::Image(ImageFormat::Webp)).unwrap(),
        "\"image_webp\""
    );
    assert_eq!(DocumentKind::Image(ImageFormat::Jpeg).to_string(), "image_jpeg");
    assert_eq!(ImageFormat::Tiff.to_string(), "tiff");
    for kind in DocumentKind::ALL {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(serde_json::from_str::<DocumentKind>(&json).unwrap(), kind);
    }
    assert!(serde_json::from_str::<DocumentKind>("\"gif\"").is_err());
}

#[test]
fn an_extracted_document_round_trips_through_json() {
    let doc = extract(
        b"# Notes\n\nSome *text* with a [link](x).\n",
        &IngestOptions::default(),
    )
    .unwrap();
    let json = serde_json::to_value(&doc).unwrap();
    assert_eq!(json["kind"], "markdown");
    assert_eq!(json["title"], "Notes");
    assert_eq!(json["pages"][0]["number"], 1);
    assert_eq!(json["pages"][0]["headings"][0]["level"], 1);
    assert_eq!(json["virtual_pages"], true);
    let back: ExtractedDocument = serde_json::from_value(json).unwrap();
    assert_eq!(back, doc);
}
