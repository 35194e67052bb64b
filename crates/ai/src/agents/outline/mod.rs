//! Outline agent: the document's heading hierarchy (levels from numbering such as
//! "2.1", "Part", "Chapter") with pages and each section's key terms; for a document
//! without headings, the derived topic sections (marked `derived`).

use serde::Serialize;

use super::notes::section_terms;
use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::structure::heading_level;

/// Output of the outline agent.
#[derive(Debug, Serialize)]
pub struct OutlineOutput {
    /// Document title.
    pub title: String,
    /// True when the items were derived from topic shifts, not headings.
    pub derived: bool,
    /// Outline entries in document order.
    pub items: Vec<OutlineItem>,
}

/// One outline entry.
#[derive(Debug, Serialize)]
pub struct OutlineItem {
    /// 1 = top level.
    pub level: u8,
    /// Heading text.
    pub title: String,
    /// Page where it starts.
    pub page: u32,
    /// Key terms of the part it heads.
    pub key_terms: Vec<String>,
    /// First passage of the part, when it has text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Citation>,
}

/// Builds the outline.
pub fn build(input: &AgentInput<'_>) -> OutlineOutput {
    let a = input.analysis;
    let derived = a.headings.is_empty();
    let mut items = Vec::new();
    if derived {
        for sec in &a.sections {
            items.push(OutlineItem {
                level: 1,
                title: sec.title.clone(),
                page: sec.page,
                key_terms: section_terms(a, sec.sentences.clone(), 5)
                    .into_iter()
                    .map(|t| a.terms[t].text.clone())
                    .collect(),
                source: sec.sentences.clone().next().map(|s| a.cite(s)),
            });
        }
    } else {
        let has_parts = a.headings.iter().any(|h| {
            let l = h.0.to_lowercase();
            l.starts_with("part ") || l.starts_with("book ")
        });
        for (h, page) in &a.headings {
            let sec = a
                .sections
                .iter()
                .find(|s| !s.derived && &s.title == h && s.page == *page);
            let (key_terms, source) = match sec {
                Some(s) => (
                    section_terms(a, s.sentences.clone(), 5)
                        .into_iter()
                        .map(|t| a.terms[t].text.clone())
                        .collect(),
                    s.sentences.clone().next().map(|x| a.cite(x)),
                ),
                None => (Vec::new(), None),
            };
            items.push(OutlineItem {
                level: heading_level(h, has_parts).min(4),
                title: h.clone(),
                page: (*page).max(1),
                key_terms,
                source,
            });
        }
    }
    if items.is_empty() {
        items.push(OutlineItem {
            level: 1,
            title: if a.title.is_empty() {
                "Document".into()
            } else {
                a.title.clone()
            },
            page: a.chunks.first().map(|c| c.page).unwrap_or(1).max(1),
            key_terms: Vec::new(),
            source: Some(a.cite(0)),
        });
    }
    OutlineOutput {
        title: a.title.clone(),
        derived,
        items,
    }
}
