//! Plain text: decoding bytes in any supported encoding, whitespace normalisation shared by
//! every format, and plain-text extraction (paragraphs, form-feed pages, virtual pages).

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use unicode_normalization::UnicodeNormalization;

use crate::document::{DocumentKind, ExtractedDocument};
use crate::error::IngestError;
use crate::limits::Limits;
use crate::pages::{paginate, Block};

/// Why bytes could not be decoded as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeFailure {
    /// The bytes look like binary data (NUL bytes, many control bytes).
    Binary,
    /// The bytes could be text, but decode cleanly in no known encoding.
    UnknownEncoding(String),
}

/// Text decoded from bytes, and the encoding it was in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub text: String,
    pub encoding: &'static str,
}

/// Decodes `bytes` as UTF-8 (with or without BOM), UTF-16 (BOM, or an unmistakable NUL pattern)
/// or, failing those, the legacy encoding `chardetng` guesses, accepted only when the result
/// clearly reads as text.
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, DecodeFailure> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let body = &bytes[bom_len..];
        let text = encoding
            .decode_without_bom_handling_and_without_replacement(body)
            .ok_or_else(|| {
                DecodeFailure::UnknownEncoding(format!(
                    "the file starts with a {} byte-order mark but the rest is not valid {}",
                    encoding.name(),
                    encoding.name()
                ))
            })?;
        check_controls(&text).map_err(|_| DecodeFailure::Binary)?;
        return Ok(Decoded {
            text: text.into_owned(),
            encoding: encoding.name(),
        });
    }
    if let Some(encoding) = bomless_utf16(bytes) {
        if let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(bytes) {
            if check_controls(&text).is_ok() {
                return Ok(Decoded {
                    text: text.into_owned(),
                    encoding: encoding.name(),
                });
            }
        }
    }
    if bytes.contains(&0) {
        return Err(DecodeFailure::Binary);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        check_controls(text).map_err(|_| DecodeFailure::Binary)?;
        return Ok(Decoded {
            text: text.to_owned(),
            encoding: UTF_8.name(),
        });
    }
    let control_bytes = bytes.iter().filter(|&&b| is_binary_control_byte(b)).count();
    if control_bytes * 100 > bytes.len() {
        return Err(DecodeFailure::Binary);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Deny);
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| {
            DecodeFailure::UnknownEncoding(format!(
                "the bytes are not valid UTF-8, and not valid {} either (the most likely legacy encoding)",
                encoding.name()
            ))
        })?;
    clearly_text(&text).map_err(|why| {
        DecodeFailure::UnknownEncoding(format!(
            "the bytes are not valid UTF-8, and decoding them as {} (the most likely legacy encoding) {why}",
            encoding.name()
        ))
    })?;
    Ok(Decoded {
        text: text.into_owned(),
        encoding: encoding.name(),
    })
}

/// UTF-16 without a BOM: in ASCII-heavy text every other byte is NUL.
fn bomless_utf16(bytes: &[u8]) -> Option<&'static Encoding> {
    if bytes.len() < 16 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let sample = &bytes[..bytes.len().min(4096)];
    let pairs = sample.len() / 2;
    let even_nul = sample.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd_nul = sample.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    if odd_nul * 10 >= pairs * 9 && even_nul == 0 {
        Some(UTF_16LE)
    } else if even_nul * 10 >= pairs * 9 && odd_nul == 0 {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// C0 control bytes that do not occur in text (everything but TAB, LF, VT, FF, CR, ESC, SUB).
fn is_binary_control_byte(b: u8) -> bool {
    b < 0x20 && !matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1b | 0x1a)
}

/// Control characters that do not occur in text, and the replacement character.
fn is_bad_char(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0b' | '\x0c' | '\x1b' | '\x1a'))
        || c == '\u{FFFD}'
}

/// Text may contain a few stray control characters, not more than 0.5 %.
fn check_controls(text: &str) -> Result<(), ()> {
    let mut total = 0usize;
    let mut bad = 0usize;
    for c in text.chars() {
        total += 1;
        if is_bad_char(c) {
            bad += 1;
        }
    }
    if bad * 200 > total.max(1) {
        Err(())
    } else {
        Ok(())
    }
}

/// A stricter test for text decoded from a guessed legacy encoding: almost everything must be
/// letters, digits, whitespace or ordinary punctuation, and words must be separated.
fn clearly_text(text: &str) -> Result<(), String> {
    let (mut total, mut good, mut bad, mut spaces, mut cjk) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for c in text.chars() {
        total += 1;
        if is_bad_char(c) || ('\u{80}'..='\u{9F}').contains(&c) || ('\u{E000}'..='\u{F8FF}').contains(&c) {
            bad += 1;
        } else if c.is_whitespace() {
            spaces += 1;
            good += 1;
        } else if c.is_alphanumeric() {
            good += 1;
            if is_cjk(c) {
                cjk += 1;
            }
        } else if c.is_ascii_punctuation() || is_common_punctuation(c) {
            good += 1;
        }
    }
    if total == 0 {
        return Err("gives nothing".to_owned());
    }
    if bad > 0 {
        return Err(format!("gives {bad} control or undefined characters"));
    }
    if good * 100 < total * 95 {
        return Err(format!(
            "gives {}% symbols instead of letters",
            (total - good) * 100 / total
        ));
    }
    if total > 200 && cjk * 2 < total && spaces * 100 < total * 2 {
        return Err("gives no separated words".to_owned());
    }
    Ok(())
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7AF}')
}

fn is_common_punctuation(c: char) -> bool {
    matches!(
        c,
        '«' | '»' | '¡' | '¿' | '°' | '·' | '§' | '€' | '£' | '©' | '\u{2010}'..='\u{2027}' | '\u{3000}'..='\u{303F}' | '\u{FF01}'..='\u{FF65}'
    )
}

/// Replaces typographic ligatures, odd spaces and invisible characters, drops control
/// characters (keeping `\n`, `\t` and form feeds) and applies Unicode NFC.
pub(crate) fn clean_chars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\u{2028}' | '\u{2029}' | '\x0b' | '\u{85}' => out.push('\n'),
            '\n' | '\t' | '\x0c' => out.push(c),
            '\u{A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => out.push(' '),
            // Zero-width characters, and private-use code points (icon-font glyphs in HTML,
            // unmapped glyphs in PDFs) that carry no readable text.
            '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{E000}'..='\u{F8FF}' => {}
            '\u{FB00}' => out.push_str("ff"),
            '\u{FB01}' => out.push_str("fi"),
            '\u{FB02}' => out.push_str("fl"),
            '\u{FB03}' => out.push_str("ffi"),
            '\u{FB04}' => out.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => out.push_str("st"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.nfc().collect()
}

/// Collapses all whitespace (newlines included) to single spaces and trims: for inline text
/// of HTML, Markdown and DOCX paragraphs.
pub(crate) fn normalize_inline(text: &str) -> String {
    let cleaned = clean_chars(text);
    let mut out = String::with_capacity(cleaned.len());
    for word in cleaned.split(|c: char| c.is_whitespace() || c == '\u{AD}') {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Normalises one line: no runs of spaces, no leading or trailing spaces, soft hyphens gone.
fn normalize_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for word in line.split(|c: char| c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Normalises text that keeps its line structure (plain text, PDF, OCR): every line as in
/// [`normalize_line`], paragraphs separated by exactly one blank line, no blank lines at the
/// start or end. With `dehyphenate`, a word broken across a line end ("exam-" / "ple") is
/// rejoined onto the first line when that is clearly a hyphenation: a lowercase letter before
/// the hyphen, a lowercase letter starting the next line, and no other hyphen in the word.
pub(crate) fn normalize_multiline(text: &str, dehyphenate: bool) -> String {
    let cleaned = clean_chars(&text.replace('\x0c', "\n"));
    let mut lines: Vec<String> = cleaned.lines().map(normalize_line).collect();
    if dehyphenate {
        lines = dehyphenate_lines(lines);
    }
    lines.iter_mut().for_each(|l| {
        if l.contains('\u{AD}') {
            *l = l.replace('\u{AD}', "");
        }
    });
    let mut out = String::with_capacity(cleaned.len());
    let mut blank_pending = false;
    for line in lines {
        if line.is_empty() {
            blank_pending = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_pending { "\n\n" } else { "\n" });
        }
        blank_pending = false;
        out.push_str(&line);
    }
    out
}

fn dehyphenate_lines(lines: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for line in lines {
        if let Some(previous) = out.last_mut() {
            let starts_lower = line.chars().next().is_some_and(char::is_lowercase);
            if let (true, Some(stem_len)) = (starts_lower, hyphenated_stem(previous)) {
                // Move the rest of the word up; if that empties the line, drop it (it is not a
                // paragraph break), so the joined line is checked against the next one.
                let (first_word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                previous.truncate(stem_len);
                previous.push_str(first_word);
                if !rest.is_empty() {
                    out.push(rest.to_owned());
                }
                continue;
            }
        }
        out.push(line);
    }
    out
}

/// Longest word stem (in chars) considered for de-hyphenation; also bounds the work per line.
const MAX_STEM_CHARS: usize = 64;

/// If `line` ends in a hyphenated word stem ("… exam-"), the byte length of the line without
/// the hyphen.
fn hyphenated_stem(line: &str) -> Option<usize> {
    let mut rev = line.char_indices().rev();
    let (hyphen_pos, hyphen) = rev.next()?;
    if !matches!(hyphen, '-' | '\u{2010}' | '\u{AD}') {
        return None;
    }
    let soft = hyphen == '\u{AD}';
    let mut stem_chars = 0usize;
    let mut last = None;
    for (_, c) in rev {
        if c == ' ' {
            break;
        }
        if !(c.is_alphabetic() || c == '\u{AD}') || stem_chars >= MAX_STEM_CHARS {
            return None;
        }
        if last.is_none() {
            last = Some(c);
        }
        stem_chars += 1;
    }
    let before = last?;
    // A soft hyphen always marks a hyphenation; a plain one only after a lowercase stem.
    if !(soft || (before.is_lowercase() && stem_chars >= 2)) {
        return None;
    }
    Some(hyphen_pos)
}

/// Extracts a plain-text document: paragraphs at blank lines, real pages at form feeds,
/// virtual pages otherwise.
pub(crate) fn extract_text(text: &str, limits: &Limits) -> Result<ExtractedDocument, IngestError> {
    limits.check_text_len(text)?;
    let has_form_feeds = text.trim_end_matches(['\x0c', '\n', '\r', ' ']).contains('\x0c');
    let mut warnings = Vec::new();
    let (pages, virtual_pages) = if has_form_feeds {
        let raw_pages: Vec<&str> = text.trim_end_matches(['\n', '\r', ' ']).split('\x0c').collect();
        let raw_pages = match raw_pages.split_last() {
            Some((last, init)) if last.trim().is_empty() => init.to_vec(),
            _ => raw_pages,
        };
        limits.check_pages(raw_pages.len() as u64)?;
        let pages: Vec<crate::Page> = raw_pages
            .iter()
            .enumerate()
            .map(|(i, raw)| crate::Page {
                number: u32::try_from(i + 1).unwrap_or(u32::MAX),
                text: normalize_multiline(raw, false),
                headings: Vec::new(),
            })
            .collect();
        for page in pages.iter().filter(|p| p.text.is_empty()) {
            warnings.push(format!("page {} is empty", page.number));
        }
        (pages, false)
    } else {
        let normalized = normalize_multiline(text, false);
        let blocks = normalized
            .split("\n\n")
            .map(|p| Block::Paragraph(p.to_owned()))
            .collect();
        let paged = paginate(blocks);
        (paged.pages, paged.virtual_pages)
    };
    Ok(ExtractedDocument {
        kind: DocumentKind::Text,
        title: None,
        pages,
        ocr_pages: Vec::new(),
        ocr: None,
        virtual_pages,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_normalisation_collapses_spaces_and_blank_lines() {
        let raw = "  Hello   world  \r\n\r\n\r\n\tSecond\u{A0}\u{A0}para  \nline two \n\n";
        assert_eq!(
            normalize_multiline(raw, false),
            "Hello world\n\nSecond para\nline two"
        );
    }

    #[test]
    fn dehyphenation_joins_only_clear_hyphenations() {
        let raw = "the exam-\nple is good\nwell-known state-of-\nthe art\nEnd-\nUser and 2-\nway";
        let out = normalize_multiline(raw, true);
        assert_eq!(
            out,
            "the example\nis good\nwell-known state-of-\nthe art\nEnd-\nUser and 2-\nway"
        );
        assert_eq!(normalize_multiline("infor-\nmation", true), "information");
        assert_eq!(
            normalize_multiline("a para-\ngraph\nnext", true),
            "a paragraph\nnext"
        );
    }

    #[test]
    fn ligatures_and_invisible_characters_are_cleaned() {
        assert_eq!(
            normalize_inline("e\u{301}\u{FB01}n\u{200B}al  \n x\u{F0C1}"),
            "éfinal x"
        );
    }

    #[test]
    fn decodes_utf16_and_legacy_text() {
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in "Grüße, café".encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(decode(&utf16).map(|d| d.text), Ok("Grüße, café".to_owned()));
        let (latin, _, _) = encoding_rs::WINDOWS_1252.encode("Le café est très bon, à côté de la gare.");
        let decoded = decode(&latin).unwrap();
        assert_eq!(decoded.text, "Le café est très bon, à côté de la gare.");
        assert_eq!(decode(&[0x00, 0x01, 0x02, 0xFF]), Err(DecodeFailure::Binary));
    }
}
