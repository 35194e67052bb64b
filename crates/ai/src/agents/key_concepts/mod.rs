//! Key-concepts agent: the top keyphrases (names and concept phrases) with an
//! importance score, a one-sentence explanation (the definition sentence when the
//! document has one, else the best-ranked sentence using the term) and a citation.

use serde::Serialize;

use super::common::scaled;
use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::{condense, contains_word_ci};
use crate::nlp::Analysis;

/// Output of the key-concepts agent.
#[derive(Debug, Serialize)]
pub struct KeyConceptsOutput {
    /// Concepts, most important first.
    pub concepts: Vec<Concept>,
}

/// One concept.
#[derive(Debug, Serialize)]
pub struct Concept {
    /// The term as the document writes it.
    pub term: String,
    /// What it is: person, place, organization, event, name or concept.
    pub kind: &'static str,
    /// Importance in 0..=1 (1 = the document's most central term).
    pub importance: f64,
    /// One sentence from the document that explains it.
    pub explanation: String,
    /// True when the explanation is a definition sentence.
    pub defined: bool,
    /// Where the explanation comes from.
    pub source: Citation,
}

/// Terms chosen as key concepts (term indices), honouring focus.
pub(crate) fn choose(a: &Analysis, n: usize, focus: &[String]) -> Vec<usize> {
    let mut cands: Vec<(usize, f64)> = a
        .keyphrases
        .iter()
        .map(|&t| {
            let term = &a.terms[t];
            let hit = !focus.is_empty() && term.key.split(' ').any(|w| focus.iter().any(|f| f == w));
            (t, term.score * if hit { 1.6 } else { 1.0 })
        })
        .collect();
    cands.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    let mut out: Vec<usize> = Vec::new();
    for (t, _) in cands {
        if out.len() >= n {
            break;
        }
        let term = &a.terms[t];
        let dup = out.iter().any(|&o| {
            let other = &a.terms[o];
            other.text.eq_ignore_ascii_case(&term.text)
                || (term.definition.is_none()
                    && term.words < other.words
                    && contains_word_ci(&other.text, &term.text))
        });
        if !dup {
            out.push(t);
        }
    }
    out
}

/// Builds the key concepts.
pub fn build(input: &AgentInput<'_>) -> KeyConceptsOutput {
    let a = input.analysis;
    let focus = Analysis::focus_words(input.focus);
    let n = scaled(input, 15).min(30);
    let mut concepts = Vec::new();
    for t in choose(a, n, &focus) {
        let Some(s) = a.best_sentence_for(t) else { continue };
        let term = &a.terms[t];
        concepts.push(Concept {
            term: term.text.clone(),
            kind: term.kind.as_str(),
            importance: (term.score * 100.0).round() / 100.0,
            explanation: condense(&a.sentences[s].text, 400),
            defined: term.definition.is_some(),
            source: a.cite(s),
        });
    }
    KeyConceptsOutput { concepts }
}
