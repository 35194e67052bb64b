//! Document generators for tests and benchmarks: text PDFs from paragraphs, and
//! "scanned" PDFs whose pages are only images (rendered with poppler's `pdftoppm`,
//! embedded as JPEG, no text layer). Not used by extraction itself.

use std::process::Command;

use crate::error::IngestError;

/// Characters per line of generated text pages.
pub const LINE_CHARS: usize = 80;
/// Lines per generated text page.
pub const PAGE_LINES: usize = 40;
/// Letter size in points.
pub const PAGE_WIDTH: f64 = 612.0;
/// Letter size in points.
pub const PAGE_HEIGHT: f64 = 792.0;

/// Greedy word wrap at `width` characters.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Lays paragraphs out on pages: wrapped at [`LINE_CHARS`], a blank line between
/// paragraphs, [`PAGE_LINES`] lines a page; `page_break` paragraphs (`"\x0c"`) start
/// a new page.
pub fn paginate<S: AsRef<str>>(paragraphs: &[S]) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut page: Vec<String> = Vec::new();
    for p in paragraphs {
        let p = p.as_ref();
        if p == "\x0c" {
            if !page.is_empty() {
                pages.push(std::mem::take(&mut page));
            }
            continue;
        }
        let lines = wrap(p, LINE_CHARS);
        if page.len() + lines.len() > PAGE_LINES && !page.is_empty() {
            pages.push(std::mem::take(&mut page));
        }
        page.extend(lines);
        page.push(String::new());
    }
    if page.iter().any(|l| !l.is_empty()) {
        pages.push(page);
    }
    pages
}

/// Escapes a line for a PDF literal string in WinAnsiEncoding.
fn pdf_string(line: &str) -> String {
    let mut out = String::from("(");
    for c in line.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if (0xA0..=0xFF).contains(&(c as u32)) => out.push_str(&format!("\\{:03o}", c as u32)),
            '\u{2013}' | '\u{2014}' => out.push('-'),
            '\u{2018}' | '\u{2019}' => out.push('\''),
            '\u{201c}' | '\u{201d}' => out.push('"'),
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

/// One page of a generated PDF.
pub enum PdfPage {
    /// Lines of text in 12 pt Helvetica, top-down from the top-left margin.
    Text(Vec<String>),
    /// A full-page 8-bit grayscale image and no text layer at all (a "scan").
    Scan {
        /// Pixels across.
        width: u32,
        /// Pixels down.
        height: u32,
        /// Row-major gray levels.
        gray: Vec<u8>,
    },
}

/// Writes a PDF with a correct cross-reference table; scans are stored losslessly
/// (Flate).
pub fn build_pdf(pages: &[PdfPage], title: Option<&str>) -> Vec<u8> {
    // Object numbers: 1 catalog, 2 pages, 3 font, 4 info, then 3 per page (page, content, image).
    let page_obj = |i: usize| 5 + i * 3;
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let kids: Vec<String> = (0..pages.len()).map(|i| format!("{} 0 R", page_obj(i))).collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .into_bytes(),
    );
    objects
        .push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec());
    objects.push(match title {
        Some(t) => format!("<< /Title {} /Producer (LearnFlow fixtures) >>", pdf_string(t)).into_bytes(),
        None => b"<< /Producer (LearnFlow fixtures) >>".to_vec(),
    });
    for (i, page) in pages.iter().enumerate() {
        let content_obj = page_obj(i) + 1;
        let image_obj = page_obj(i) + 2;
        let (resources, ops, image) = match page {
            PdfPage::Text(lines) => {
                let mut ops = String::from("BT /F1 12 Tf 16 TL 72 720 Td\n");
                for line in lines {
                    ops.push_str(&format!("{} Tj T*\n", pdf_string(line)));
                }
                ops.push_str("ET\n");
                ("<< /Font << /F1 3 0 R >> >>".to_string(), ops, b"<< >>".to_vec())
            }
            PdfPage::Scan { width, height, gray } => {
                let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                let data = std::io::Write::write_all(&mut encoder, gray)
                    .and_then(|()| encoder.finish())
                    .unwrap_or_default();
                let mut image = format!(
                    "<< /Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceGray \
                     /BitsPerComponent 8 /Filter /FlateDecode /Length {} >>\nstream\n",
                    data.len()
                )
                .into_bytes();
                image.extend_from_slice(&data);
                image.extend_from_slice(b"\nendstream");
                (
                    format!("<< /XObject << /Im1 {image_obj} 0 R >> >>"),
                    format!("q {PAGE_WIDTH} 0 0 {PAGE_HEIGHT} 0 0 cm /Im1 Do Q\n"),
                    image,
                )
            }
        };
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] /Resources {resources} \
                 /Contents {content_obj} 0 R >>"
            )
            .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", ops.len()).into_bytes();
        stream.extend_from_slice(ops.as_bytes());
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
        objects.push(image);
    }
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 4 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PDF with a text layer: one page per entry of `pages`, each a list of lines.
pub fn text_pdf(pages: &[Vec<String>], title: Option<&str>) -> Vec<u8> {
    let pages: Vec<PdfPage> = pages.iter().map(|p| PdfPage::Text(p.clone())).collect();
    build_pdf(&pages, title)
}

/// A "scanned" PDF: the pages of `pages` rendered at `dpi` by `pdftoppm` and embedded
/// as grayscale images, with no text layer.
pub fn scanned_pdf(pages: &[Vec<String>], dpi: u32) -> Result<Vec<u8>, IngestError> {
    let dir = tempfile::tempdir().map_err(|e| IngestError::io("creating a temporary folder", e))?;
    let src = dir.path().join("text.pdf");
    std::fs::write(&src, text_pdf(pages, None)).map_err(|e| IngestError::io("writing the fixture", e))?;
    let out = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-gray", "-png"])
        .arg(&src)
        .arg(dir.path().join("page"))
        .output()
        .map_err(|e| IngestError::io("running pdftoppm", e))?;
    if !out.status.success() {
        return Err(IngestError::io(
            "rendering fixture pages",
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
        ));
    }
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
        .map_err(|e| IngestError::io("listing rendered pages", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    files.sort();
    let mut scans = Vec::new();
    for f in files {
        let img = image::open(&f)
            .map_err(|e| IngestError::io("decoding a rendered page", std::io::Error::other(e.to_string())))?
            .into_luma8();
        scans.push(PdfPage::Scan {
            width: img.width(),
            height: img.height(),
            gray: img.into_raw(),
        });
    }
    Ok(build_pdf(&scans, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paginates_and_writes_a_pdf_poppler_reads() {
        let paras: Vec<String> = (0..40)
            .map(|i| format!("Paragraph {i} {}", "word ".repeat(60)))
            .collect();
        let pages = paginate(&paras);
        assert!(pages.len() > 3);
        assert!(pages.iter().all(|p| p.len() <= PAGE_LINES + 1));
        let pdf = text_pdf(&pages, Some("Fixture"));
        assert!(pdf.starts_with(b"%PDF-1.4"));
        let doc = crate::extract(&pdf, &crate::IngestOptions::default()).expect("extracts");
        assert_eq!(doc.pages.len(), pages.len());
        assert!(doc.pages[0].text.contains("Paragraph 0"));
        assert_eq!(doc.title.as_deref(), Some("Fixture"));
    }
}
