//! Offline question answering over retrieved passages: picks the 1–4 sentences that
//! best match the question (idf-weighted overlap of normalised content words plus a
//! bonus for adjacent word pairs and for definitions of the asked term), carries the
//! key terms of the previous question into follow-ups ("what about its causes?"),
//! cites each sentence inline as "[p. N]", and says plainly when the passages do not
//! answer the question.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::doc::{Chunk, Citation};
use crate::nlp::definitions::find_definition;
use crate::nlp::text::{content_norms, split_sentences, tokenize, TokenKind};

/// The reply when nothing in the passages matches.
pub const NO_ANSWER: &str = "The document does not seem to answer this.";

/// One earlier exchange of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// What the student asked.
    pub question: String,
    /// What was answered.
    pub answer: String,
}

/// An answer built from the passages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Sentences from the passages, each followed by "[p. N]"; or [`NO_ANSWER`].
    pub text: String,
    /// The passages cited, in the order they are used.
    pub citations: Vec<Citation>,
    /// Ids of the chunks used.
    pub passages_used: Vec<String>,
}

/// Words of a question that say what kind of answer is wanted, not what it is about.
const QUESTION_WORDS: &[&str] = &[
    "explain",
    "describe",
    "tell",
    "mean",
    "meaning",
    "main",
    "define",
    "definition",
    "happen",
    "happened",
    "know",
    "give",
    "list",
    "name",
    "please",
    "role",
    "exactly",
    "kind",
    "type",
    "type",
    "work",
    "works",
    "doe",
    "does",
    "did",
    "happen",
    "about",
    "significance",
    "important",
    "importance",
    "purpose",
    "defined",
    "described",
    "called",
    "mentioned",
    "say",
    "says",
    "text",
    "document",
];

const FOLLOW_UP_MARKERS: &[&str] = &[
    "it", "its", "they", "their", "them", "this", "that", "these", "those", "he", "she", "his", "her", "him",
];

fn question_terms(q: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in content_norms(q) {
        if QUESTION_WORDS.contains(&w.as_str()) || out.contains(&w) {
            continue;
        }
        out.push(w);
    }
    out
}

fn is_follow_up(q: &str, own_terms: usize) -> bool {
    let lower = q.trim().to_lowercase();
    let words: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    lower.starts_with("what about")
        || lower.starts_with("how about")
        || lower.starts_with("and ")
        || lower.starts_with("why?")
        || words.iter().any(|w| FOLLOW_UP_MARKERS.contains(&w.as_str()))
        || own_terms <= 1
}

struct Cand {
    passage: usize,
    order: usize,
    text: String,
    norms: Vec<String>,
}

/// Answers a question from the passages (retrieved chunks), using the history for
/// follow-ups.
pub fn answer_local(question: &str, passages: &[Chunk], history: &[Turn]) -> Answer {
    let none = Answer {
        text: NO_ANSWER.to_string(),
        citations: Vec::new(),
        passages_used: Vec::new(),
    };
    let own = question_terms(question);
    let mut weights: Vec<(String, f64)> = own.iter().map(|t| (t.clone(), 1.0)).collect();
    if let Some(prev) = history.last() {
        if is_follow_up(question, own.len()) {
            for t in question_terms(&prev.question) {
                if !weights.iter().any(|w| w.0 == t) {
                    weights.push((t, 0.7));
                }
            }
        }
    }
    if weights.is_empty() {
        return none;
    }
    // candidate sentences
    let mut cands: Vec<Cand> = Vec::new();
    for (pi, p) in passages.iter().enumerate() {
        for (k, s) in split_sentences(&p.text).into_iter().enumerate() {
            if s.heading_like {
                continue;
            }
            let norms: Vec<String> = tokenize(&s.text)
                .into_iter()
                .filter(|t| t.kind != TokenKind::Punct)
                .map(|t| t.norm)
                .collect();
            cands.push(Cand {
                passage: pi,
                order: k,
                text: s.text,
                norms,
            });
        }
    }
    if cands.is_empty() {
        return none;
    }
    let n = cands.len() as f64;
    let mut df: HashMap<&str, usize> = HashMap::new();
    for c in &cands {
        let set: HashSet<&str> = c.norms.iter().map(String::as_str).collect();
        for w in set {
            *df.entry(w).or_insert(0) += 1;
        }
    }
    let idf = |w: &str| -> f64 {
        match df.get(w) {
            Some(&d) => (1.0 + n / d as f64).ln(),
            None => (1.0 + n).ln() + 1.0,
        }
    };
    let total: f64 = weights.iter().map(|(w, x)| x * idf(w)).sum();
    let lower_q = question.trim().to_lowercase();
    let asks_definition = [
        "what is",
        "what are",
        "what was",
        "what were",
        "who was",
        "who were",
        "define",
        "what does",
    ]
    .iter()
    .any(|p| lower_q.starts_with(p));
    let asks_when = lower_q.starts_with("when")
        || ["what year", "which year", "what date", "in which century"]
            .iter()
            .any(|p| lower_q.contains(p));
    let scored: Vec<(usize, f64, f64, HashSet<String>)> = cands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let set: HashSet<&str> = c.norms.iter().map(String::as_str).collect();
            let mut matched: HashSet<String> = HashSet::new();
            let mut s = 0.0;
            for (w, x) in &weights {
                if set.contains(w.as_str()) {
                    s += x * idf(w);
                    matched.insert(w.clone());
                }
            }
            let coverage = if total > 0.0 { s / total } else { 0.0 };
            // adjacent pairs of query words
            for pair in own.windows(2) {
                if c.norms.windows(2).any(|p| p[0] == pair[0] && p[1] == pair[1]) {
                    s += 0.5 * (idf(&pair[0]) + idf(&pair[1])) / 2.0;
                }
            }
            if asks_definition {
                if let Some(d) = find_definition(&c.text) {
                    let dn: HashSet<String> = content_norms(&d.term).into_iter().collect();
                    if !dn.is_empty() && dn.iter().all(|w| weights.iter().any(|q| &q.0 == w)) {
                        s *= 1.6;
                    }
                }
            }
            if c.norms.len() < 5 {
                s *= 0.5;
            }
            if asks_when {
                s *= if crate::nlp::dates::find_dates(&c.text).is_empty() {
                    0.7
                } else {
                    1.5
                };
            }
            (i, s, coverage, matched)
        })
        .collect();
    let Some(best) = scored
        .iter()
        .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)))
    else {
        return none;
    };
    let own_hit = own.is_empty() || own.iter().any(|t| best.3.contains(t));
    if best.1 <= 0.0 || best.2 < 0.45 || !own_hit {
        return none;
    }
    let mut order: Vec<&(usize, f64, f64, HashSet<String>)> = scored.iter().filter(|x| x.1 > 0.0).collect();
    order.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    let mut chosen: Vec<usize> = vec![best.0];
    let mut covered: HashSet<String> = best.3.clone();
    for x in order.into_iter().skip(1) {
        if chosen.len() >= 4 {
            break;
        }
        if x.1 < 0.5 * best.1 || x.2 < 0.3 {
            continue;
        }
        let adds = x.3.iter().any(|w| !covered.contains(w));
        let adjacent = chosen.iter().any(|&c| {
            cands[c].passage == cands[x.0].passage && cands[c].order.abs_diff(cands[x.0].order) == 1
        });
        if adds || adjacent || x.1 >= 0.8 * best.1 {
            chosen.push(x.0);
            covered.extend(x.3.iter().cloned());
        }
    }
    chosen.sort_by_key(|&i| (cands[i].passage, cands[i].order));
    let mut text = String::new();
    let mut citations: Vec<Citation> = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for i in chosen {
        let c = &cands[i];
        let p = &passages[c.passage];
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&c.text);
        text.push_str(&format!(" [p. {}]", p.page));
        let cit = Citation {
            chunk: p.id.clone(),
            page: p.page,
        };
        if !citations.contains(&cit) {
            citations.push(cit);
        }
        if !used.contains(&p.id) {
            used.push(p.id.clone());
        }
    }
    Answer {
        text,
        citations,
        passages_used: used,
    }
}
