//! Helpers shared by the local agents: serialisation, sentence selection with
//! redundancy control, focus handling and citation checks.

use serde::Serialize;

use super::{AgentError, AgentInput, AgentName, Purpose};
use crate::nlp::text::contains_ci;
use crate::nlp::{tfidf, Analysis};

/// Serialises an agent's typed output.
pub(crate) fn to_json<T: Serialize>(agent: AgentName, value: &T) -> Result<serde_json::Value, AgentError> {
    serde_json::to_value(value).map_err(|e| AgentError::Output {
        agent,
        message: e.to_string(),
    })
}

/// Sentence score with the focus boost applied.
pub(crate) fn focused_score(a: &Analysis, sentence: usize, focus: &[String]) -> f64 {
    a.sentence_scores[sentence] * a.focus_boost(sentence, focus)
}

/// Picks up to `n` sentences from `candidates` by score (focus-boosted), skipping
/// near-duplicates (cosine ≥ `max_sim` with an already chosen sentence). Returned in
/// the order chosen (best first).
pub(crate) fn pick_diverse(
    a: &Analysis,
    candidates: impl IntoIterator<Item = usize>,
    n: usize,
    focus: &[String],
    max_sim: f32,
) -> Vec<usize> {
    let mut c: Vec<usize> = candidates.into_iter().collect();
    c.sort_by(|&x, &y| {
        focused_score(a, y, focus)
            .total_cmp(&focused_score(a, x, focus))
            .then(x.cmp(&y))
    });
    let mut out: Vec<usize> = Vec::new();
    for s in c {
        if out.len() >= n {
            break;
        }
        if out
            .iter()
            .any(|&o| tfidf::cosine(&a.sentence_vectors[o], &a.sentence_vectors[s]) >= max_sim)
        {
            continue;
        }
        out.push(s);
    }
    out
}

/// True when `text` occurs (case-insensitively, whitespace-insensitively) in the
/// chunk of `sentence`.
pub(crate) fn in_chunk_of(a: &Analysis, sentence: usize, text: &str) -> bool {
    a.sentences
        .get(sentence)
        .and_then(|s| a.chunks.get(s.chunk_index))
        .is_some_and(|c| contains_ci(&c.text, text))
}

/// Scales a list length by purpose: quick review gets fewer items, exam prep and deep
/// understanding more.
pub(crate) fn scaled(input: &AgentInput<'_>, base: usize) -> usize {
    match input.purpose {
        Purpose::QuickReview => (base * 2).div_ceil(3).max(1),
        Purpose::ExamPrep | Purpose::DeepUnderstanding => base + base / 3,
        _ => base,
    }
}

/// A term as it appears in a sentence for use as an answer: the exact surface, with
/// a sentence-initial capital lowered for concepts so options look alike.
pub(crate) fn answer_surface(a: &Analysis, sentence: usize, term: usize) -> Option<String> {
    let s = a.surface_in(sentence, term)?;
    let t = &a.terms[term];
    if t.kind == crate::nlp::TermKind::Concept {
        let all_caps = s.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase);
        let second_upper = s.chars().nth(1).is_some_and(char::is_uppercase);
        if !all_caps && !second_upper && t.text.chars().next().is_some_and(char::is_lowercase) {
            let mut cs = s.chars();
            return cs.next().map(|f| f.to_lowercase().chain(cs).collect());
        }
    }
    Some(s.to_string())
}

/// Stable small hash (FNV-1a) for deterministic choices.
pub(crate) fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
