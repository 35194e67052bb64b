//! Fixture builders shared by the integration tests: hand-written PDFs (text pages and
//! image-only "scanned" pages), scans rendered with poppler, DOCX packages, and the character
//! error rate used to grade OCR. Everything is generated at test time; nothing binary is
//! committed except `tests/fixtures/mom-pdf.pdf`.

#![allow(dead_code)]

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::Command;

pub use learnflow_ingest::fixtures::{build_pdf, wrap, PdfPage};

/// Paragraphs wrapped at 72 characters, with an empty line between paragraphs.
pub fn page_lines(paragraphs: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            lines.push(String::new());
        }
        lines.extend(wrap(paragraph, 72));
    }
    lines
}

/// Study-like reference prose for the OCR pages (one page each).
pub const SCAN_TEXTS: [&[&str]; 4] = [
    &[
        "Photosynthesis is the process by which green plants convert light energy into chemical energy. \
         It takes place mainly in the leaves, inside small organelles called chloroplasts.",
        "The light reactions happen in the thylakoid membranes, where water is split and oxygen is released. \
         The energy captured there is stored in two carrier molecules, ATP and NADPH.",
        "In the Calvin cycle, which runs in the stroma, the enzyme Rubisco fixes carbon dioxide from the air. \
         Three turns of the cycle produce one molecule of glyceraldehyde phosphate.",
    ],
    &[
        "The French Revolution began in 1789 with the meeting of the Estates General at Versailles. \
         Within weeks the Third Estate declared itself the National Assembly.",
        "On the fourteenth of July a crowd stormed the Bastille, a royal fortress and prison in Paris. \
         The event became the symbol of the end of absolute monarchy in France.",
        "In August the Assembly adopted the Declaration of the Rights of Man and of the Citizen, \
         which stated that all men are born free and equal in rights.",
    ],
    &[
        "A prime number is a whole number greater than one whose only divisors are one and itself. \
         The first primes are two, three, five, seven, eleven and thirteen.",
        "Euclid proved more than two thousand years ago that there are infinitely many primes. \
         His argument multiplies a finite list of primes and adds one to the product.",
        "The fundamental theorem of arithmetic states that every integer greater than one \
         can be written as a product of primes in exactly one way, apart from the order.",
    ],
    &[
        "The water cycle describes how water moves between the oceans, the atmosphere and the land. \
         Heat from the sun evaporates water from seas, lakes and the surface of leaves.",
        "As moist air rises it cools, and the vapour condenses into the tiny droplets that form clouds. \
         When the droplets grow heavy enough they fall as rain, snow or hail.",
        "Rivers and groundwater carry the water back to the sea, where the cycle begins again. \
         Glaciers and ice sheets can store water for thousands of years.",
    ],
];

/// The reference text of a scan page, whitespace collapsed.
pub fn scan_reference(page: usize) -> String {
    normalise(&SCAN_TEXTS[page].join(" "))
}

/// Collapses all whitespace to single spaces.
pub fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Levenshtein distance over chars, in O(n) memory.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Character error rate of `ocr` against `reference`, both whitespace-normalised.
pub fn cer(ocr: &str, reference: &str) -> f64 {
    let (ocr, reference) = (normalise(ocr), normalise(reference));
    levenshtein(&ocr, &reference) as f64 / reference.chars().count().max(1) as f64
}

/// A text PDF with one page per entry of [`SCAN_TEXTS`] (the first `pages` of them).
pub fn reference_pdf(pages: usize) -> Vec<u8> {
    let pdf_pages: Vec<PdfPage> = SCAN_TEXTS[..pages]
        .iter()
        .map(|p| PdfPage::Text(page_lines(p)))
        .collect();
    build_pdf(&pdf_pages, None)
}

/// Renders page `page` (1-based) of `pdf` to an 8-bit grayscale PNG at `dpi` with pdftoppm:
/// what a flatbed scanner would produce from a clean printout.
pub fn render_png(pdf: &[u8], page: u32, dpi: u32, dir: &Path) -> Vec<u8> {
    let input = dir.join(format!("render-{page}-{dpi}.pdf"));
    std::fs::write(&input, pdf).expect("write pdf");
    let prefix = dir.join(format!("render-{page}-{dpi}"));
    let status = Command::new("pdftoppm")
        .args([
            "-r",
            &dpi.to_string(),
            "-f",
            &page.to_string(),
            "-l",
            &page.to_string(),
        ])
        .args(["-png", "-gray", "-singlefile"])
        .arg(&input)
        .arg(&prefix)
        .status()
        .expect("pdftoppm must be installed (apt-get install poppler-utils)");
    assert!(status.success(), "pdftoppm failed");
    std::fs::read(prefix.with_extension("png")).expect("read rendered png")
}

/// Decodes a PNG into a [`PdfPage::Scan`].
pub fn scan_page(png: &[u8]) -> PdfPage {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("decode png")
        .to_luma8();
    PdfPage::Scan {
        width: image.width(),
        height: image.height(),
        gray: image.into_raw(),
    }
}

/// Re-encodes a PNG in another format with the `image` crate.
pub fn convert_png(png: &[u8], format: image::ImageFormat) -> Vec<u8> {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png).expect("decode png");
    let image = image::DynamicImage::ImageLuma8(image.to_luma8());
    let image = if format == image::ImageFormat::WebP {
        // The WebP encoder wants RGB(A).
        image::DynamicImage::ImageRgb8(image.to_rgb8())
    } else {
        image
    };
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode image");
    out.into_inner()
}

/// A minimal DOCX package: `body` is the inner XML of `<w:body>`.
pub fn build_docx(body: &str, styles: Option<&str>, core_title: Option<&str>) -> Vec<u8> {
    let mut files: Vec<(&str, String)> = vec![
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
</Types>"#
                .to_owned(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
</Relationships>"#
                .to_owned(),
        ),
        (
            "word/document.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
            ),
        ),
    ];
    if let Some(styles) = styles {
        files.push((
            "word/styles.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">{styles}</w:styles>"#
            ),
        ));
    }
    if let Some(title) = core_title {
        files.push((
            "docProps/core.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>"#
            ),
        ));
    }
    build_zip(files.iter().map(|(name, content)| (*name, content.as_bytes())))
}

/// A deflated ZIP archive of the given entries.
pub fn build_zip<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(name, options).expect("start zip entry");
        writer.write_all(content).expect("write zip entry");
    }
    writer.finish().expect("finish zip").into_inner()
}

/// A paragraph in DOCX XML, with an optional style id.
pub fn docx_paragraph(style: Option<&str>, runs: &[&str]) -> String {
    let properties = style
        .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
        .unwrap_or_default();
    let runs: String = runs
        .iter()
        .map(|r| format!(r#"<w:r><w:t xml:space="preserve">{r}</w:t></w:r>"#))
        .collect();
    format!("<w:p>{properties}{runs}</w:p>")
}

/// Installs a tracing subscriber for the current thread that records the crate's events as
/// `(message, page, thread name, instant)`; returns the guard and the shared record.
pub mod events {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    /// One recorded event.
    #[derive(Debug, Clone)]
    pub struct Recorded {
        pub message: String,
        pub page: Option<u64>,
        pub at: Instant,
    }

    #[derive(Default)]
    struct Fields {
        message: String,
        page: Option<u64>,
    }

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.message = format!("{value:?}");
            }
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.message = value.to_owned();
            }
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            if field.name() == "page" {
                self.page = Some(value);
            }
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            if field.name() == "page" {
                self.page = u64::try_from(value).ok();
            }
        }
    }

    struct Recorder(Arc<Mutex<Vec<Recorded>>>);

    impl<S: tracing::Subscriber> Layer<S> for Recorder {
        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            let record = Recorded {
                message: fields.message,
                page: fields.page,
                at: Instant::now(),
            };
            self.0.lock().expect("recorder lock").push(record);
        }
    }

    /// Runs `f` with a recording subscriber and returns its result and the events.
    pub fn record<R>(f: impl FnOnce() -> R) -> (R, Vec<Recorded>) {
        let store = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Recorder(Arc::clone(&store)));
        let result = tracing::subscriber::with_default(subscriber, f);
        let events = store.lock().expect("recorder lock").clone();
        (result, events)
    }
}

/// A baseline little-endian TIFF with one uncompressed 8-bit grayscale image per page, at
/// 300 dpi (the `image` crate writes single-page TIFFs only).
pub fn multipage_tiff(pages: &[image::GrayImage]) -> Vec<u8> {
    const ENTRIES: u16 = 12;
    let ifd_len = 2 + 12 * usize::from(ENTRIES) + 4;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    for (index, page) in pages.iter().enumerate() {
        let ifd_start = out.len();
        let rationals = ifd_start + ifd_len;
        let pixels = rationals + 16;
        let next_ifd = if index + 1 < pages.len() {
            pixels + page.as_raw().len()
        } else {
            0
        };
        let (w, h) = (page.width(), page.height());
        out.extend_from_slice(&ENTRIES.to_le_bytes());
        let mut push = |tag: u16, kind: u16, value: u32| {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        };
        const SHORT: u16 = 3;
        const LONG: u16 = 4;
        const RATIONAL: u16 = 5;
        push(256, LONG, w);
        push(257, LONG, h);
        push(258, SHORT, 8);
        push(259, SHORT, 1);
        push(262, SHORT, 1);
        push(273, LONG, pixels as u32);
        push(277, SHORT, 1);
        push(278, LONG, h);
        push(279, LONG, w * h);
        push(282, RATIONAL, rationals as u32);
        push(283, RATIONAL, (rationals + 8) as u32);
        push(296, SHORT, 2);
        out.extend_from_slice(&(next_ifd as u32).to_le_bytes());
        for _ in 0..2 {
            out.extend_from_slice(&300u32.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(page.as_raw());
    }
    out
}
