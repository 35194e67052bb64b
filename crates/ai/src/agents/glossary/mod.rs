//! Glossary agent: term → definition, only from definition sentences of the
//! document ("X is a …", "X refers to …", "… is called X", "X, also called Y, …",
//! "X: …"). Every term occurs literally (ignoring case) in its cited chunk.
//! Entries are sorted alphabetically.

use serde::Serialize;

use super::common::in_chunk_of;
use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::{capitalize_first, truncate_chars};

/// Output of the glossary agent.
#[derive(Debug, Serialize)]
pub struct GlossaryOutput {
    /// Entries sorted by term.
    pub entries: Vec<GlossaryEntry>,
}

/// One glossary entry.
#[derive(Debug, Serialize)]
pub struct GlossaryEntry {
    /// The term as written in the cited passage.
    pub term: String,
    /// Its definition, as the document gives it.
    pub definition: String,
    /// Another name the document gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub also_called: Option<String>,
    /// The passage with the definition.
    pub source: Citation,
}

/// Builds the glossary.
pub fn build(input: &AgentInput<'_>) -> GlossaryOutput {
    let a = input.analysis;
    let mut entries: Vec<GlossaryEntry> = Vec::new();
    for d in &a.definitions {
        if !in_chunk_of(a, d.sentence, &d.term) {
            continue;
        }
        let term = if d.term.chars().nth(1).is_some_and(char::is_uppercase) || term_is_name(d, a) {
            d.term.clone()
        } else {
            let mut cs = d.term.chars();
            cs.next()
                .map(|f| f.to_lowercase().chain(cs).collect())
                .unwrap_or_default()
        };
        let mut definition = truncate_chars(&capitalize_first(&d.definition), 600);
        if !definition.ends_with(['.', '…', '!', '?']) {
            definition.push('.');
        }
        entries.push(GlossaryEntry {
            term,
            definition,
            also_called: d.alias.clone().filter(|x| !x.is_empty()),
            source: a.cite(d.sentence),
        });
    }
    entries.sort_by_key(|x| x.term.to_lowercase());
    entries.dedup_by(|x, y| x.term.eq_ignore_ascii_case(&y.term));
    entries.truncate(80);
    GlossaryOutput { entries }
}

/// True when the defined term is a proper name (it keeps its capitals).
fn term_is_name(d: &crate::nlp::Definition, a: &crate::nlp::Analysis) -> bool {
    d.term_index.is_some_and(|t| a.terms[t].kind.is_proper())
        || d.term
            .split_whitespace()
            .skip(1)
            .any(|w| w.chars().next().is_some_and(char::is_uppercase))
}
