//! DOCX: heading styles become headings, page breaks become pages, and hostile or broken
//! packages are refused with their own errors.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{build_docx, build_zip, docx_paragraph};
use learnflow_ingest::{detect, extract, DocumentKind, Heading, IngestError, IngestOptions, Limits};

const STYLES: &str = r#"
<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style>
<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/></w:style>
<w:style w:type="paragraph" w:styleId="Normal"><w:name w:val="Normal"/></w:style>"#;

fn heading(level: u8, text: &str) -> Heading {
    Heading {
        level,
        text: text.to_owned(),
    }
}

#[test]
fn headings_runs_and_page_breaks_make_real_pages() {
    let body = [
        docx_paragraph(Some("Title"), &["Cell ", "Biology"]),
        docx_paragraph(Some("Heading1"), &["Membranes"]),
        docx_paragraph(None, &["Lipids form a ", "bilayer", " &amp; proteins float in it."]),
        // An explicit page break inside a run, then text on the next page.
        r#"<w:p><w:r><w:t>Before the break.</w:t></w:r><w:r><w:br w:type="page"/></w:r><w:r><w:t>After the break.</w:t></w:r></w:p>"#
            .to_owned(),
        docx_paragraph(Some("berschrift2"), &["Transport"]),
        r#"<w:p><w:r><w:t>Pumps</w:t></w:r><w:r><w:tab/><w:t>move ions.</w:t></w:r></w:p>"#.to_owned(),
        // Word's own marker of where it last broke the page.
        r#"<w:p><w:r><w:lastRenderedPageBreak/><w:t>Channels let ions diffuse.</w:t></w:r></w:p>"#.to_owned(),
        r#"<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Ion</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Charge</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>Na</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>+1</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#.to_owned(),
        r#"<w:p><w:r><w:delText>deleted words</w:delText></w:r><w:r><w:instrText>PAGE</w:instrText></w:r></w:p>"#.to_owned(),
        // Numbered paragraphs: one list block, one item per line, nesting from w:ilvl.
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="3"/></w:numPr></w:pPr><w:r><w:t>Sodium</w:t></w:r></w:p>"#.to_owned(),
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="1"/><w:numId w:val="3"/></w:numPr></w:pPr><w:r><w:t>in salt</w:t></w:r></w:p>"#.to_owned(),
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="3"/></w:numPr></w:pPr><w:r><w:t>Potassium</w:t></w:r></w:p>"#.to_owned(),
        docx_paragraph(None, &["After the list."]),
    ]
    .concat();
    let docx = build_docx(&body, Some(STYLES), None);
    assert_eq!(detect(&docx).unwrap(), DocumentKind::Docx);
    let doc = extract(&docx, &IngestOptions::default()).expect("DOCX extracts");
    assert_eq!(doc.kind, DocumentKind::Docx);
    assert!(!doc.virtual_pages, "explicit breaks give real pages");
    assert_eq!(doc.title.as_deref(), Some("Cell Biology"));
    assert_eq!(doc.pages.len(), 3, "{:#?}", doc.pages);
    assert_eq!(
        doc.pages[0].text,
        "Cell Biology\n\nMembranes\n\nLipids form a bilayer & proteins float in it.\n\nBefore the break."
    );
    assert_eq!(
        doc.pages[0].headings,
        vec![heading(1, "Cell Biology"), heading(1, "Membranes")]
    );
    assert_eq!(
        doc.pages[1].text,
        "After the break.\n\nTransport\n\nPumps move ions."
    );
    assert_eq!(doc.pages[1].headings, vec![heading(2, "Transport")]);
    assert_eq!(
        doc.pages[2].text,
        "Channels let ions diffuse.\n\nIon | Charge\nNa | +1\n\n- Sodium\n  - in salt\n- Potassium\n\nAfter the list."
    );
    assert!(doc.pages[2].headings.is_empty());
    assert!(!doc.full_text().contains("deleted") && !doc.full_text().contains("PAGE"));
}

#[test]
fn without_page_breaks_pages_are_virtual_and_the_core_title_wins() {
    let paragraph = "Enzymes lower the activation energy of reactions without being consumed. ".repeat(8);
    let mut body = docx_paragraph(Some("Heading1"), &["Enzymes"]);
    for _ in 0..12 {
        body.push_str(&docx_paragraph(None, &[&paragraph]));
    }
    let docx = build_docx(&body, Some(STYLES), Some("Metabolism &amp; Enzymes"));
    let doc = extract(&docx, &IngestOptions::default()).expect("DOCX extracts");
    assert!(doc.virtual_pages);
    assert_eq!(doc.title.as_deref(), Some("Metabolism & Enzymes"));
    assert!(
        doc.pages.len() >= 2,
        "{} chars on {} pages",
        doc.char_count(),
        doc.pages.len()
    );
    for page in &doc.pages {
        let chars = page.text.chars().count();
        assert!(
            chars <= learnflow_ingest::VIRTUAL_PAGE_CHARS,
            "page {} has {chars} chars",
            page.number
        );
        assert!(
            page.text.ends_with("consumed."),
            "pages end at paragraph boundaries"
        );
    }
    assert_eq!(doc.pages[0].headings, vec![heading(1, "Enzymes")]);
}

#[test]
fn heading_styles_are_recognised_without_a_styles_part() {
    let body = [
        docx_paragraph(Some("Heading3"), &["Deep heading"]),
        docx_paragraph(None, &["Body text."]),
    ]
    .concat();
    let doc = extract(&build_docx(&body, None, None), &IngestOptions::default()).expect("extracts");
    assert_eq!(doc.pages[0].headings, vec![heading(3, "Deep heading")]);
    assert_eq!(doc.title.as_deref(), Some("Deep heading"));
}

/// Rewrites the uncompressed size recorded for `name` in both its local header and the central
/// directory, so the archive lies about how big the entry is.
fn patch_declared_size(zip: &mut [u8], name: &str, size: u32) {
    let mut patched = 0;
    for i in 0..zip.len().saturating_sub(46) {
        if zip[i..].starts_with(b"PK\x03\x04") && zip[i + 30..].starts_with(name.as_bytes()) {
            zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
        if zip[i..].starts_with(b"PK\x01\x02") && zip[i + 46..].starts_with(name.as_bytes()) {
            zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "local and central headers of {name}");
}

/// A DOCX whose document.xml inflates to `megabytes` MiB of whitespace inside a paragraph.
fn bomb(megabytes: usize) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    writer.start_file("[Content_Types].xml", options).unwrap();
    writer.write_all(b"<Types/>").unwrap();
    writer.start_file("word/document.xml", options).unwrap();
    writer
        .write_all(br#"<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>"#)
        .unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..megabytes {
        writer.write_all(&chunk).unwrap();
    }
    writer
        .write_all(b"</w:t></w:r></w:p></w:body></w:document>")
        .unwrap();
    writer.finish().unwrap().into_inner()
}

#[test]
fn a_zip_bomb_is_refused_by_its_declared_size() {
    let docx = bomb(120);
    assert!(
        docx.len() < 2 * 1024 * 1024,
        "the bomb is small: {} bytes",
        docx.len()
    );
    let started = Instant::now();
    let err = extract(&docx, &IngestOptions::default()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused without inflating: {:?}",
        started.elapsed()
    );
    match &err {
        IngestError::DecompressedTooLarge { limit, detail } => {
            assert_eq!(*limit, 100 * 1024 * 1024);
            assert!(detail.contains("declare"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("zip bomb"), "{err}");
    assert!(err.is_permanent());
}

#[test]
fn a_zip_bomb_that_lies_about_its_size_is_stopped_while_inflating() {
    let mut docx = bomb(20);
    patch_declared_size(&mut docx, "word/document.xml", 4096);
    let started = Instant::now();
    let err = extract(&docx, &IngestOptions::default()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped early: {:?}",
        started.elapsed()
    );
    match &err {
        IngestError::DecompressedTooLarge { detail, .. } => assert!(detail.contains("inflates"), "{detail}"),
        other => panic!("{other:?}"),
    }

    // Honest headers, but more than a small budget: the running count stops it.
    let docx = bomb(3);
    let options = IngestOptions {
        limits: Limits {
            max_decompressed_bytes: 1024 * 1024,
            ..Limits::default()
        },
        ..IngestOptions::default()
    };
    let mut lying = docx.clone();
    patch_declared_size(&mut lying, "word/document.xml", 512 * 1024);
    for bytes in [&docx, &lying] {
        match extract(bytes, &options) {
            Err(IngestError::DecompressedTooLarge { limit: 1_048_576, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_docx_without_its_document_part_is_corrupt() {
    let zip = build_zip([
        ("[Content_Types].xml", &b"<Types/>"[..]),
        ("word/styles.xml", &b"<w:styles xmlns:w=\"x\"/>"[..]),
    ]);
    assert_eq!(detect(&zip).unwrap(), DocumentKind::Docx);
    match extract(&zip, &IngestOptions::default()) {
        Err(IngestError::CorruptDocx { detail }) => assert!(detail.contains("word/document.xml"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_docx_with_broken_xml_is_corrupt() {
    for body in [
        "<w:p><w:r><w:t>unclosed</w:r></w:p>", // mismatched end tag
        "<w:p><w:r><w:t>cut off here",         // truncated
    ] {
        let mut docx = build_docx("", None, None);
        // Replace the document part with broken XML.
        let xml = format!(r#"<w:document xmlns:w="x"><w:body>{body}"#);
        docx = rebuild_with_document(&docx, &xml);
        match extract(&docx, &IngestOptions::default()) {
            Err(IngestError::CorruptDocx { detail }) => {
                assert!(detail.contains("word/document.xml"), "{detail}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

fn rebuild_with_document(docx: &[u8], xml: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(docx)).unwrap();
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut content).unwrap();
        let name = file.name().unwrap().into_owned();
        if name == "word/document.xml" {
            content = xml.as_bytes().to_vec();
        }
        entries.push((name, content));
    }
    build_zip(entries.iter().map(|(n, c)| (n.as_str(), c.as_slice())))
}

#[test]
fn a_zip_that_is_not_a_docx_is_unsupported() {
    let zip = build_zip([("notes.txt", &b"hello"[..]), ("images/a.png", &b"x"[..])]);
    match extract(&zip, &IngestOptions::default()) {
        Err(IngestError::Unsupported { what }) => assert_eq!(what, "a ZIP archive that is not a DOCX"),
        other => panic!("{other:?}"),
    }
    let xlsx = build_zip([
        ("[Content_Types].xml", &b"<Types/>"[..]),
        ("xl/workbook.xml", &b"<workbook/>"[..]),
    ]);
    match detect(&xlsx) {
        Err(IngestError::Unsupported { what }) => assert!(what.contains("XLSX"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_docx_with_only_empty_paragraphs_has_no_text() {
    let docx = build_docx("<w:p/><w:p><w:r><w:t>   </w:t></w:r></w:p>", None, None);
    match extract(&docx, &IngestOptions::default()) {
        Err(IngestError::NoText {
            kind: DocumentKind::Docx,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}
