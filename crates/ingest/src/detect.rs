//! Content-based type detection: magic bytes first, then container structure (ZIP entries),
//! then text decoding and markup heuristics. File names are never consulted.

use std::io::Cursor;

use crate::document::{DocumentKind, ImageFormat};
use crate::error::IngestError;
use crate::text::{self, DecodeFailure};

/// What [`sniff`] found: the kind, and for textual kinds the decoded text (so extraction does
/// not decode twice).
#[derive(Debug, Clone)]
pub(crate) struct Sniffed {
    pub kind: DocumentKind,
    pub text: Option<String>,
    pub encoding: Option<&'static str>,
}

/// Detects the kind of document in `bytes` from its content.
///
/// Fails with [`IngestError::Empty`] for no bytes, [`IngestError::Unsupported`] for binary
/// data of another format (the message says which, when known), and
/// [`IngestError::UnknownEncoding`] for bytes that look like text in no known encoding.
/// Never panics, whatever the bytes.
pub fn detect(bytes: &[u8]) -> Result<DocumentKind, IngestError> {
    sniff(bytes).map(|s| s.kind)
}

pub(crate) fn sniff(bytes: &[u8]) -> Result<Sniffed, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::Empty);
    }
    match sniff_magic(bytes) {
        Some(Magic::Kind(kind)) => {
            return Ok(Sniffed {
                kind,
                text: None,
                encoding: None,
            })
        }
        Some(Magic::Other(what)) => {
            return Err(IngestError::Unsupported {
                what: what.to_owned(),
            })
        }
        Some(Magic::Zip) => {
            return sniff_zip(bytes).map(|kind| Sniffed {
                kind,
                text: None,
                encoding: None,
            });
        }
        None => {}
    }
    let decoded = text::decode(bytes).map_err(|failure| match failure {
        DecodeFailure::Binary => IngestError::Unsupported {
            what: "unknown binary data".to_owned(),
        },
        DecodeFailure::UnknownEncoding(detail) => IngestError::UnknownEncoding { detail },
    })?;
    let kind = classify_text(&decoded.text)?;
    Ok(Sniffed {
        kind,
        text: Some(decoded.text),
        encoding: Some(decoded.encoding),
    })
}

enum Magic {
    Kind(DocumentKind),
    Other(&'static str),
    Zip,
}

fn sniff_magic(bytes: &[u8]) -> Option<Magic> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    if is_pdf(bytes) {
        return Some(Magic::Kind(DocumentKind::Pdf));
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Some(Magic::Kind(DocumentKind::Image(ImageFormat::Png)));
    }
    if starts(b"\xFF\xD8\xFF") {
        return Some(Magic::Kind(DocumentKind::Image(ImageFormat::Jpeg)));
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return Some(Magic::Kind(DocumentKind::Image(ImageFormat::Tiff)));
    }
    if starts(b"RIFF") && at(8, b"WEBP") {
        return Some(Magic::Kind(DocumentKind::Image(ImageFormat::Webp)));
    }
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
        return Some(Magic::Zip);
    }
    let other = if starts(b"GIF87a") || starts(b"GIF89a") {
        "a GIF image"
    } else if starts(b"II+\0") || starts(b"MM\0+") {
        "a BigTIFF image"
    } else if starts(b"BM") && bytes.len() >= 18 && matches!(bytes[14], 12 | 40 | 52 | 56 | 64 | 108 | 124) {
        "a BMP image"
    } else if starts(b"\0\0\0\x0CjP  ") || starts(b"\xFF\x4F\xFF\x51") {
        "a JPEG 2000 image"
    } else if at(4, b"ftyp") {
        match bytes.get(8..12) {
            Some(b"heic" | b"heix" | b"hevc" | b"mif1" | b"msf1") => "a HEIC/HEIF image",
            Some(b"avif" | b"avis") => "an AVIF image",
            _ => "an MP4/QuickTime video or audio file",
        }
    } else if starts(b"8BPS") {
        "a Photoshop (PSD) image"
    } else if starts(b"\x7FELF") {
        "an executable (ELF binary)"
    } else if starts(b"MZ") && bytes.len() >= 64 && bytes[2..64].contains(&0) {
        "an executable (Windows PE/DOS binary)"
    } else if starts(b"\xFE\xED\xFA\xCE")
        || starts(b"\xFE\xED\xFA\xCF")
        || starts(b"\xCE\xFA\xED\xFE")
        || starts(b"\xCF\xFA\xED\xFE")
    {
        "an executable (Mach-O binary)"
    } else if starts(b"\xCA\xFE\xBA\xBE") {
        "a Java class file or universal Mach-O executable"
    } else if starts(b"\0asm") {
        "a WebAssembly module"
    } else if starts(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        "a legacy Microsoft Office document (.doc/.xls/.ppt); save it as DOCX or PDF"
    } else if starts(b"\x1F\x8B") {
        "a gzip-compressed file"
    } else if starts(b"BZh") && at(4, b"1AY&SY") {
        "a bzip2-compressed file"
    } else if starts(b"\xFD7zXZ\0") {
        "an xz-compressed file"
    } else if starts(b"\x28\xB5\x2F\xFD") {
        "a zstd-compressed file"
    } else if starts(b"7z\xBC\xAF\x27\x1C") {
        "a 7-Zip archive"
    } else if starts(b"Rar!\x1A\x07") {
        "a RAR archive"
    } else if at(257, b"ustar") {
        "a tar archive"
    } else if starts(b"SQLite format 3\0") {
        "an SQLite database"
    } else if starts(b"OggS") {
        "an Ogg audio/video file"
    } else if starts(b"fLaC") {
        "a FLAC audio file"
    } else if starts(b"ID3") {
        "an MP3 audio file"
    } else if starts(b"RIFF") && at(8, b"WAVE") {
        "a WAV audio file"
    } else if starts(b"RIFF") && at(8, b"AVI ") {
        "an AVI video"
    } else if starts(b"\x1A\x45\xDF\xA3") {
        "a Matroska/WebM video"
    } else if starts(b"wOFF") || starts(b"wOF2") {
        "a web font"
    } else {
        return None;
    };
    Some(Magic::Other(other))
}

/// `%PDF-` at the start (after whitespace), or within the first KiB after binary junk, which
/// PDF readers tolerate.
fn is_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let Some(pos) = head.windows(5).position(|w| w == b"%PDF-") else {
        return false;
    };
    let prefix = &head[..pos];
    prefix.iter().all(u8::is_ascii_whitespace) || prefix.contains(&0) || std::str::from_utf8(prefix).is_err()
}

/// A ZIP container: a DOCX if it has `word/document.xml` (or looks like a broken one),
/// otherwise an unsupported archive named as precisely as possible.
fn sniff_zip(bytes: &[u8]) -> Result<DocumentKind, IngestError> {
    let unsupported = |what: &str| {
        Err(IngestError::Unsupported {
            what: what.to_owned(),
        })
    };
    let archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(archive) => archive,
        Err(err) => {
            // A damaged archive whose first entry is an OOXML part is a damaged DOCX: let
            // extraction report it as such.
            let first_name = first_local_entry_name(bytes);
            if first_name.is_some_and(|n| n == "[Content_Types].xml" || n.starts_with("word/")) {
                return Ok(DocumentKind::Docx);
            }
            tracing::debug!(error = %err, "ZIP central directory unreadable");
            return unsupported("a damaged ZIP archive");
        }
    };
    let names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .map(|n| n.into_owned())
        .collect();
    let has = |name: &str| names.iter().any(|n| n == name);
    let has_prefix = |prefix: &str| names.iter().any(|n| n.starts_with(prefix));
    if has("word/document.xml") || (has("[Content_Types].xml") && has_prefix("word/")) {
        return Ok(DocumentKind::Docx);
    }
    if has_prefix("xl/") && has("[Content_Types].xml") {
        return unsupported("an Excel spreadsheet (XLSX), not a DOCX");
    }
    if has_prefix("ppt/") && has("[Content_Types].xml") {
        return unsupported("a PowerPoint presentation (PPTX), not a DOCX; save it as PDF");
    }
    if has("mimetype") {
        let mime = bytes
            .windows(20)
            .take(200)
            .any(|w| w.starts_with(b"application/epub+zip"));
        if mime {
            return unsupported("an EPUB e-book, not a DOCX");
        }
        if bytes
            .windows(39)
            .take(200)
            .any(|w| w == b"application/vnd.oasis.opendocument.text")
        {
            return unsupported("an OpenDocument text (ODT), not a DOCX; save it as DOCX or PDF");
        }
        return unsupported("an OpenDocument or other packaged file, not a DOCX");
    }
    if has("META-INF/MANIFEST.MF") {
        return unsupported("a Java archive (JAR), not a DOCX");
    }
    unsupported("a ZIP archive that is not a DOCX")
}

/// Name of the first entry from its local file header, if readable.
fn first_local_entry_name(bytes: &[u8]) -> Option<&str> {
    let len = usize::from(u16::from_le_bytes([*bytes.get(26)?, *bytes.get(27)?]));
    std::str::from_utf8(bytes.get(30..30 + len)?).ok()
}

/// Text formats: refuses text-based formats that are not documents (RTF, PostScript, SVG),
/// then tells HTML and Markdown from plain text.
fn classify_text(text: &str) -> Result<DocumentKind, IngestError> {
    let head: String = text
        .trim_start_matches(['\u{FEFF}', ' ', '\t', '\r', '\n'])
        .chars()
        .take(1024)
        .collect();
    let lower = head.to_ascii_lowercase();
    if lower.starts_with("{\\rtf") {
        return Err(IngestError::Unsupported {
            what: "an RTF document; save it as DOCX or PDF".to_owned(),
        });
    }
    if lower.starts_with("%!ps") {
        return Err(IngestError::Unsupported {
            what: "a PostScript file; convert it to PDF".to_owned(),
        });
    }
    let markup_start = skip_prolog(&lower);
    if markup_start.starts_with("<svg") {
        return Err(IngestError::Unsupported {
            what: "an SVG image".to_owned(),
        });
    }
    if ["<!doctype html", "<html", "<head", "<body"]
        .iter()
        .any(|p| markup_start.starts_with(p))
    {
        return Ok(DocumentKind::Html);
    }
    let sample = sample_prefix(text, 256 * 1024);
    let tags = count_html_tags(sample);
    let markdown = markdown_score(sample);
    let starts_with_tag = markup_start.starts_with('<');
    if (starts_with_tag && tags >= 2 && markdown < 6)
        || (tags >= 8 && tags * 300 >= sample.len() && markdown * 2 < tags)
    {
        return Ok(DocumentKind::Html);
    }
    if markdown >= 4 {
        return Ok(DocumentKind::Markdown);
    }
    Ok(DocumentKind::Text)
}

/// At most `max` bytes of `text`, cut at a char boundary.
fn sample_prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Skips an XML declaration, comments and whitespace at the start of (lowercased) markup.
fn skip_prolog(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if s.starts_with("<?xml") {
            match s.find("?>") {
                Some(end) => s = &s[end + 2..],
                None => return s,
            }
        } else if s.starts_with("<!--") {
            match s.find("-->") {
                Some(end) => s = &s[end + 3..],
                None => return s,
            }
        } else if s.starts_with("<!doctype") && !s.starts_with("<!doctype html") {
            match s.find('>') {
                Some(end) => s = &s[end + 1..],
                None => return s,
            }
        } else {
            return s;
        }
    }
}

const HTML_TAGS: &[&str] = &[
    "html",
    "head",
    "body",
    "title",
    "meta",
    "link",
    "script",
    "style",
    "div",
    "span",
    "p",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "table",
    "tr",
    "td",
    "th",
    "br",
    "hr",
    "img",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "main",
    "em",
    "strong",
    "b",
    "i",
    "pre",
    "code",
    "blockquote",
    "form",
    "input",
    "label",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "small",
    "sup",
    "sub",
];

/// Counts opening and closing tags of well-known HTML elements.
fn count_html_tags(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut count = 0;
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'<') {
        let start = i + offset + 1;
        i = start;
        let mut j = start;
        if bytes.get(j) == Some(&b'/') {
            j += 1;
        }
        let name_end = bytes[j..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .map_or(bytes.len(), |p| j + p);
        let Some(&after) = bytes.get(name_end) else { break };
        if !(after == b'>' || after == b'/' || after.is_ascii_whitespace()) {
            continue;
        }
        let name = text.get(j..name_end).unwrap_or("").to_ascii_lowercase();
        if HTML_TAGS.contains(&name.as_str()) {
            count += 1;
        }
    }
    count
}

/// A score of Markdown structure: headings, fences, links and tables weigh most; lists,
/// quotes and emphasis a little (plain text uses them too).
fn markdown_score(text: &str) -> usize {
    let mut score = 0usize;
    let mut list_items = 0usize;
    let mut emphasis = 0usize;
    let mut previous_text_line = false;
    for line in text.lines().take(5_000) {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let fence = trimmed.starts_with("```") || trimmed.starts_with("~~~");
        if (indent <= 3 && is_atx_heading(trimmed)) || fence {
            score += 3;
        } else if previous_text_line && is_setext_underline(trimmed) {
            score += 2;
        } else if trimmed.starts_with('|') && trimmed.contains("---") && trimmed.trim_end().ends_with('|') {
            score += 3;
        } else if is_list_item(trimmed) {
            list_items += 1;
        } else if trimmed.starts_with("> ") {
            score += 1;
        }
        score += count_links(line) * 2;
        emphasis += count_emphasis(line);
        previous_text_line = !trimmed.is_empty() && !is_list_item(trimmed);
    }
    score + list_items.min(3) + emphasis.min(4)
}

fn is_atx_heading(line: &str) -> bool {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    (1..=6).contains(&hashes) && line[hashes..].starts_with([' ', '\t']) && !line[hashes..].trim().is_empty()
}

fn is_setext_underline(line: &str) -> bool {
    let line = line.trim_end();
    (line.len() >= 3 && line.chars().all(|c| c == '=')) || (line.len() >= 3 && line.chars().all(|c| c == '-'))
}

fn is_list_item(line: &str) -> bool {
    if let Some(rest) = line.strip_prefix(['-', '*', '+']) {
        return rest.starts_with(' ') && !rest.trim().is_empty();
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    digits > 0
        && digits <= 3
        && line[digits..].starts_with(['.', ')'])
        && line[digits + 1..].starts_with(' ')
        && !line[digits + 1..].trim().is_empty()
}

/// `[text](target)` and `![alt](src)` occurrences.
fn count_links(line: &str) -> usize {
    let mut count = 0;
    let mut rest = line;
    while let Some(pos) = rest.find("](") {
        let before = &rest[..pos];
        let after = &rest[pos + 2..];
        // Link targets are short: look for the closing parenthesis nearby only, which keeps
        // this linear on hostile lines full of "](".
        let closes = after
            .bytes()
            .take(512)
            .position(|b| b == b')')
            .is_some_and(|close| close > 0);
        if before.rfind('[').is_some_and(|open| open + 1 < pos) && closes {
            count += 1;
        }
        rest = &rest[pos + 2..];
    }
    count
}

/// `**strong**`, `__strong__` and `` `code` `` spans.
fn count_emphasis(line: &str) -> usize {
    let pairs = |marker: &str| {
        let parts: Vec<&str> = line.split(marker).collect();
        if parts.len() < 3 {
            return 0;
        }
        parts[1..parts.len() - 1]
            .iter()
            .step_by(2)
            .filter(|inner| !inner.is_empty() && !inner.starts_with(' ') && !inner.ends_with(' '))
            .count()
    };
    pairs("**") + pairs("__") + pairs("`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_flavours_are_told_apart() {
        let kind = |s: &str| detect(s.as_bytes()).unwrap();
        assert_eq!(kind("Just a note.\nNothing special here.\n"), DocumentKind::Text);
        assert_eq!(
            kind("# Title\n\nSome *text* and a [link](http://x).\n"),
            DocumentKind::Markdown
        );
        assert_eq!(
            kind("Intro\n=====\n\n- one\n- two\n\n```\ncode\n```\n"),
            DocumentKind::Markdown
        );
        assert_eq!(kind("<!DOCTYPE html><title>x</title><p>y"), DocumentKind::Html);
        assert_eq!(kind("  <div><p>Hello</p><p>World</p></div>"), DocumentKind::Html);
        assert_eq!(
            kind("<?xml version=\"1.0\"?>\n<html xmlns=\"x\"><body>a</body></html>"),
            DocumentKind::Html
        );
        assert_eq!(
            kind("Shopping list:\n- eggs\n- milk\n1. first\n"),
            DocumentKind::Text
        );
    }

    #[test]
    fn binary_formats_are_named() {
        let what = |b: &[u8]| match detect(b) {
            Err(IngestError::Unsupported { what }) => what,
            other => panic!("{other:?}"),
        };
        assert_eq!(what(b"GIF89a\x01\x00\x01\x00\x00\x00\x00"), "a GIF image");
        assert!(what(b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0").contains("executable"));
        assert_eq!(what(&[0u8, 1, 2, 3, 0, 0, 0, 200]), "unknown binary data");
        assert!(what(b"{\\rtf1\\ansi hello}").contains("RTF"));
    }

    #[test]
    fn pdf_magic_tolerates_leading_junk_but_not_prose() {
        assert!(is_pdf(b"%PDF-1.7\n"));
        assert!(is_pdf(b"\0\x01junk%PDF-1.4\n"));
        assert!(!is_pdf(b"The header of a PDF is %PDF-1.7, as you know."));
    }
}
