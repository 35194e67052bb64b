//! Summary agent: an extractive abstract (TextRank sentences, 3–8 depending on the
//! document's length, in document order, near-duplicates skipped) and one key point
//! per section (its best sentence not already in the abstract, condensed).

use serde::Serialize;

use super::common::pick_diverse;
use super::{AgentInput, Purpose};
use crate::doc::Citation;
use crate::nlp::text::condense;

/// Output of the summary agent.
#[derive(Debug, Serialize)]
pub struct SummaryOutput {
    /// Document title.
    pub title: String,
    /// The abstract: the chosen sentences joined.
    pub r#abstract: String,
    /// The abstract's sentences with their sources, in document order.
    pub sentences: Vec<SummarySentence>,
    /// One point per section.
    pub key_points: Vec<KeyPoint>,
}

/// A sentence of the abstract.
#[derive(Debug, Serialize)]
pub struct SummarySentence {
    /// The sentence as written in the document.
    pub text: String,
    /// Where it comes from.
    pub source: Citation,
}

/// A key point of one section.
#[derive(Debug, Serialize)]
pub struct KeyPoint {
    /// The point (a condensed sentence).
    pub point: String,
    /// Section title.
    pub section: String,
    /// Where it comes from.
    pub source: Citation,
}

/// Builds the summary.
pub fn build(input: &AgentInput<'_>) -> SummaryOutput {
    let a = input.analysis;
    let focus = crate::nlp::Analysis::focus_words(input.focus);
    let good: Vec<usize> = (0..a.sentences.len())
        .filter(|&i| a.sentences[i].is_good())
        .collect();
    let pool: Vec<usize> = if good.is_empty() {
        (0..a.sentences.len()).collect()
    } else {
        good
    };
    let mut n = (pool.len() as f64 / 15.0).round() as usize;
    n = n.clamp(3, 8);
    if matches!(input.purpose, Purpose::QuickReview) {
        n = n.min(5);
    }
    let mut chosen = pick_diverse(a, pool.iter().copied(), n, &focus, 0.5);
    chosen.sort_unstable();
    let sentences: Vec<SummarySentence> = chosen
        .iter()
        .map(|&i| SummarySentence {
            text: a.sentences[i].text.clone(),
            source: a.cite(i),
        })
        .collect();
    let r#abstract = sentences
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");

    let mut key_points = Vec::new();
    for sec in &a.sections {
        if key_points.len() >= 12 {
            break;
        }
        let cands = sec
            .sentences
            .clone()
            .filter(|i| !chosen.contains(i) && a.sentences[*i].is_good());
        if let Some(&best) = pick_diverse(a, cands, 1, &focus, 1.1).first() {
            key_points.push(KeyPoint {
                point: condense(&a.sentences[best].text, 240),
                section: sec.title.clone(),
                source: a.cite(best),
            });
        }
    }
    SummaryOutput {
        title: a.title.clone(),
        r#abstract,
        sentences,
        key_points,
    }
}
