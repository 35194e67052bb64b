//! The output model: what an upload was detected as, and its text page by page.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The raster image formats that are read through OCR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    /// Portable Network Graphics.
    Png,
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// TIFF, little or big endian (multi-page TIFFs give one page per image).
    Tiff,
    /// WebP, lossy or lossless.
    Webp,
}

impl ImageFormat {
    /// The lowercase name used in [`fmt::Display`] and serialisation (`"png"`, `"jpeg"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Tiff => "tiff",
            ImageFormat::Webp => "webp",
        }
    }

    /// The usual file extension, used for temporary files handed to tesseract.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Tiff => "tif",
            ImageFormat::Webp => "webp",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an upload was detected as, from its content alone.
///
/// Serialises (and displays) as one lowercase string: `"text"`, `"markdown"`, `"html"`, `"pdf"`,
/// `"docx"`, `"image_png"`, `"image_jpeg"`, `"image_tiff"`, `"image_webp"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// Plain text (any supported encoding).
    Text,
    /// Markdown (CommonMark with tables).
    Markdown,
    /// HTML or XHTML.
    Html,
    /// PDF, with or without a text layer.
    Pdf,
    /// Office Open XML word-processing document.
    Docx,
    /// A raster image, read with OCR.
    Image(ImageFormat),
}

impl DocumentKind {
    /// The string used by [`fmt::Display`] and serde.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Text => "text",
            DocumentKind::Markdown => "markdown",
            DocumentKind::Html => "html",
            DocumentKind::Pdf => "pdf",
            DocumentKind::Docx => "docx",
            DocumentKind::Image(ImageFormat::Png) => "image_png",
            DocumentKind::Image(ImageFormat::Jpeg) => "image_jpeg",
            DocumentKind::Image(ImageFormat::Tiff) => "image_tiff",
            DocumentKind::Image(ImageFormat::Webp) => "image_webp",
        }
    }

    /// Every kind, for exhaustive tests and UI listings.
    pub const ALL: [DocumentKind; 9] = [
        DocumentKind::Text,
        DocumentKind::Markdown,
        DocumentKind::Html,
        DocumentKind::Pdf,
        DocumentKind::Docx,
        DocumentKind::Image(ImageFormat::Png),
        DocumentKind::Image(ImageFormat::Jpeg),
        DocumentKind::Image(ImageFormat::Tiff),
        DocumentKind::Image(ImageFormat::Webp),
    ];
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`DocumentKind::from_str`]: the string names no kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown document kind {0:?}")]
pub struct UnknownKind(pub String);

impl FromStr for DocumentKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocumentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

impl Serialize for DocumentKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DocumentKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A heading found on a page. Its text is also part of [`Page::text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heading {
    /// 1 (top level) to 6.
    pub level: u8,
    /// The heading text, without markup.
    pub text: String,
}

/// One page of text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// 1-based page number; pages are numbered 1, 2, 3... without gaps.
    pub number: u32,
    /// The page text: paragraphs separated by a blank line, lines without trailing spaces,
    /// no runs of spaces. May be empty for a blank page of a paginated document (a warning
    /// says so).
    pub text: String,
    /// Headings on this page, in order.
    pub headings: Vec<Heading>,
}

/// The result of [`crate::extract`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractedDocument {
    /// What the bytes were detected as.
    pub kind: DocumentKind,
    /// The document title: PDF Title metadata, HTML `<title>`, DOCX core title or Title
    /// paragraph, otherwise the first heading.
    pub title: Option<String>,
    /// The pages, numbered from 1, in order.
    pub pages: Vec<Page>,
    /// Numbers of the pages whose text came from OCR, ascending.
    pub ocr_pages: Vec<u32>,
    /// True when the format has no pages and the text was split into pages of about
    /// [`crate::VIRTUAL_PAGE_CHARS`] characters at paragraph boundaries.
    pub virtual_pages: bool,
    /// Problems that did not stop the extraction (for example "page 3 has no text even after OCR").
    pub warnings: Vec<String>,
    /// How the OCR went, when any page was OCR'd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr: Option<OcrStats>,
}

/// Figures of one extraction's OCR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OcrStats {
    /// Pages rendered and OCR'd.
    pub pages: u32,
    /// Wall time of the OCR, seconds.
    pub seconds: f64,
    /// Most pages OCR'd at the same moment.
    pub peak_parallel: usize,
}

impl ExtractedDocument {
    /// All page texts joined with a blank line.
    pub fn full_text(&self) -> String {
        let mut out = String::new();
        for page in self.pages.iter().filter(|p| !p.text.is_empty()) {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&page.text);
        }
        out
    }

    /// Total number of characters over all pages.
    pub fn char_count(&self) -> usize {
        self.pages.iter().map(|p| p.text.chars().count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_strings() {
        for kind in DocumentKind::ALL {
            assert_eq!(kind.to_string().parse::<DocumentKind>(), Ok(kind));
        }
        assert!("gif".parse::<DocumentKind>().is_err());
    }
}
