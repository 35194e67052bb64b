//! Cloze agent: sentences of the document with one key term, name or date replaced
//! by "____" (four underscores; the plain-blank style, not Anki's `{{c1::…}}`). The
//! answer is the exact text that was removed, so putting it back into the blank gives
//! the original sentence of the cited chunk. A hint gives the kind, the number of
//! words and the first letter.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::common::{focused_score, in_chunk_of, scaled};
use super::quiz::blank_candidates;
use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::contains_word_ci;
use crate::nlp::Analysis;

/// The blank used in cloze items.
pub const CLOZE_BLANK: &str = "____";

/// Output of the cloze agent.
#[derive(Debug, Serialize)]
pub struct ClozeOutput {
    /// Always "blank": the removed text is shown as [`CLOZE_BLANK`].
    pub format: &'static str,
    /// The blank marker used in `text`.
    pub blank: &'static str,
    /// Items in document order.
    pub items: Vec<ClozeItem>,
}

/// One fill-in-the-blank sentence.
#[derive(Debug, Serialize)]
pub struct ClozeItem {
    /// The sentence with exactly one blank.
    pub text: String,
    /// The removed text, exactly as written in the sentence.
    pub answer: String,
    /// Kind, length and first letter of the answer.
    pub hint: String,
    /// The passage the sentence comes from.
    pub source: Citation,
}

/// Builds the cloze exercises.
pub fn build(input: &AgentInput<'_>) -> ClozeOutput {
    let a = input.analysis;
    let focus = Analysis::focus_words(input.focus);
    let mut order: Vec<usize> = (0..a.sentences.len())
        .filter(|&i| a.sentences[i].is_good())
        .collect();
    let n = scaled(input, (order.len() / 6).clamp(5, 15)).min(40);
    order.sort_by(|&x, &y| {
        focused_score(a, y, &focus)
            .total_cmp(&focused_score(a, x, &focus))
            .then(x.cmp(&y))
    });
    let mut used_terms: HashMap<usize, usize> = HashMap::new();
    let mut per_chunk: HashMap<usize, usize> = HashMap::new();
    let mut picked: Vec<(usize, ClozeItem)> = Vec::new();
    let mut seen_text: HashSet<String> = HashSet::new();
    for s in order {
        if picked.len() >= n {
            break;
        }
        let sent = &a.sentences[s];
        if sent.text.chars().count() > 260 || per_chunk.get(&sent.chunk_index).copied().unwrap_or(0) >= 2 {
            continue;
        }
        for (t, _) in blank_candidates(a, s) {
            if used_terms.get(&t).copied().unwrap_or(0) >= 2 {
                continue;
            }
            let Some(hit) = a.hits[s].iter().find(|h| h.term == t) else {
                continue;
            };
            if a.hits[s].iter().any(|o| {
                o.term != t
                    && o.start <= hit.start
                    && o.end >= hit.end
                    && (o.end - o.start) > (hit.end - hit.start)
            }) {
                continue;
            }
            if !crate::agents::quiz::is_whole_word(&sent.text, hit.start, hit.end) {
                continue;
            }
            let Some(answer) = sent.text.get(hit.start..hit.end) else {
                continue;
            };
            let text = format!(
                "{}{}{}",
                &sent.text[..hit.start],
                CLOZE_BLANK,
                &sent.text[hit.end..]
            );
            if contains_word_ci(&text, answer)
                || !in_chunk_of(a, s, answer)
                || !seen_text.insert(text.clone())
            {
                continue;
            }
            let term = &a.terms[t];
            let words = answer.split_whitespace().count();
            let first = answer.chars().next().map(|c| c.to_string()).unwrap_or_default();
            let hint = format!(
                "{}, {} word{}, starts with “{}”",
                term.kind.as_str(),
                words,
                if words == 1 { "" } else { "s" },
                first
            );
            *used_terms.entry(t).or_insert(0) += 1;
            *per_chunk.entry(sent.chunk_index).or_insert(0) += 1;
            picked.push((
                s,
                ClozeItem {
                    text,
                    answer: answer.to_string(),
                    hint,
                    source: a.cite(s),
                },
            ));
            break;
        }
    }
    picked.sort_by_key(|x| x.0);
    ClozeOutput {
        format: "blank",
        blank: CLOZE_BLANK,
        items: picked.into_iter().map(|x| x.1).collect(),
    }
}
