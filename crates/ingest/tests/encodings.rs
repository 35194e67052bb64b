//! Text in UTF-8, UTF-16 (with BOM) and legacy 8-bit encodings is decoded; bytes that are text
//! in no known encoding, and binary data, are refused with their own errors.

use learnflow_ingest::{detect, extract, DocumentKind, IngestError, IngestOptions};

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for unit in text.encode_utf16() {
        out.extend_from_slice(&if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

fn text_of(bytes: &[u8]) -> String {
    let doc = extract(bytes, &IngestOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    doc.full_text()
}

#[test]
fn utf16_with_a_byte_order_mark_is_decoded_in_both_byte_orders() {
    let text = "Grüße aus München — 東京\n\nZweiter Absatz über Ökologie.";
    for big_endian in [false, true] {
        let bytes = utf16(text, big_endian);
        assert_eq!(detect(&bytes).unwrap(), DocumentKind::Text);
        assert_eq!(text_of(&bytes), text);
    }
    let markdown = utf16(
        "# Überschrift\n\nText mit **Betonung** und [Link](http://x).",
        false,
    );
    assert_eq!(detect(&markdown).unwrap(), DocumentKind::Markdown);
    let doc = extract(&markdown, &IngestOptions::default()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("Überschrift"));
}

#[test]
fn utf8_with_and_without_bom_is_decoded() {
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice("Ça va très bien.".as_bytes());
    assert_eq!(text_of(&with_bom), "Ça va très bien.");
    assert_eq!(text_of("naïve café".as_bytes()), "naïve café");
}

#[test]
fn windows_1252_and_other_legacy_encodings_are_detected() {
    let french = "Le café coûte 3 € au comptoir — c'est très cher.\n\nDeuxième paragraphe : « citation », œuvre, déjà.";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(french);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");
    assert_eq!(detect(&bytes).unwrap(), DocumentKind::Text);
    assert_eq!(text_of(&bytes), french);

    let german = "Die Straße ist schön, und die Bäume blühen im Frühling überall.";
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(german);
    assert_eq!(text_of(&bytes), german);

    let russian = "Привет! Это учебный текст о клетках и о том, как они делятся.";
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(russian);
    assert_eq!(text_of(&bytes), russian);
}

#[test]
fn bytes_that_are_text_in_no_known_encoding_are_refused() {
    // No NUL or control bytes, but not UTF-8 and gibberish in every 8-bit code page.
    let mut state = 0x2545_F491_u32;
    let bytes: Vec<u8> = (0..2_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            0x80 + (state % 0x80) as u8
        })
        .collect();
    match extract(&bytes, &IngestOptions::default()) {
        Err(err @ IngestError::UnknownEncoding { .. }) => {
            assert!(err.to_string().contains("not valid UTF-8"), "{err}");
            assert!(err.is_permanent());
        }
        other => panic!("{other:?}"),
    }
    // A UTF-16 byte-order mark followed by an unpaired surrogate.
    match detect(&[0xFF, 0xFE, 0x00, 0xD8, 0x41, 0x00]) {
        Err(IngestError::UnknownEncoding { detail }) => assert!(detail.contains("UTF-16LE"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn random_binary_is_unsupported_unknown_binary_data() {
    let mut state = 0x9E37_79B9_u32;
    let bytes: Vec<u8> = (0..4_096)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    match extract(&bytes, &IngestOptions::default()) {
        Err(IngestError::Unsupported { what }) => assert_eq!(what, "unknown binary data"),
        other => panic!("{other:?}"),
    }
}
