//! The document as the AI side sees it: pages of text, chunks with their page, and
//! citations. Produced from `learnflow-ingest` output by the pipeline; the `ai` crate
//! does not depend on `ingest`.

use serde::{Deserialize, Serialize};

/// A document's text, page by page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DocumentText {
    /// Title (file name or first heading).
    pub title: String,
    /// Pages in order; `number` starts at 1.
    pub pages: Vec<PageText>,
}

/// One page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PageText {
    /// 1-based page number (real pages for PDF/images/DOCX page breaks; "virtual"
    /// pages of about 3,000 characters for formats without pages).
    pub number: u32,
    /// The page's text; paragraphs separated by blank lines.
    pub text: String,
    /// Headings that start on this page, in order.
    pub headings: Vec<String>,
}

/// A retrievable passage: a part of one page (a chunk never spans pages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Stable id within the document: "c0", "c1", … in reading order.
    pub id: String,
    /// Position in reading order (the number in the id).
    pub index: usize,
    /// The page it comes from.
    pub page: u32,
    /// Its text (exactly a substring of the page text, trimmed).
    pub text: String,
    /// The nearest heading at or before it, if any.
    pub heading: Option<String>,
}

/// Where a claim comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Citation {
    /// Chunk id ("c12").
    pub chunk: String,
    /// Page number.
    pub page: u32,
}
