//! Prerequisites agent: concepts the text relies on but does not explain: frequent
//! concept terms the document never defines, and terms it uses before the sentence
//! that defines them (in an earlier passage). Each comes with its first use.

use serde::Serialize;

use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::stopwords::is_generic;
use crate::nlp::text::truncate_chars;
use crate::nlp::TermKind;

/// Output of the prerequisites agent.
#[derive(Debug, Serialize)]
pub struct PrerequisitesOutput {
    /// Prerequisite concepts, most needed first.
    pub prerequisites: Vec<Prerequisite>,
}

/// One concept to know beforehand.
#[derive(Debug, Serialize)]
pub struct Prerequisite {
    /// The concept.
    pub term: String,
    /// "used-without-definition" or "used-before-definition".
    pub reason: &'static str,
    /// Why it is listed, in words.
    pub explanation: String,
    /// The passage where it is first used.
    pub first_use: Citation,
    /// The sentence of its first use.
    pub context: String,
    /// Where the document defines it, for terms used before their definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defined_at: Option<Citation>,
}

/// Builds the prerequisites.
pub fn build(input: &AgentInput<'_>) -> PrerequisitesOutput {
    let a = input.analysis;
    let mut before: Vec<(f64, Prerequisite)> = Vec::new();
    let mut undefined: Vec<(f64, Prerequisite)> = Vec::new();
    for t in &a.terms {
        if t.kind != TermKind::Concept || t.subsumed || t.text.chars().count() < 3 {
            continue;
        }
        if t.words == 1 && is_generic(&t.text.to_lowercase()) {
            continue;
        }
        let Some(&first) = t.sentences.first() else {
            continue;
        };
        let fs = &a.sentences[first];
        match t.definition {
            Some(d) => {
                let ds = a.definitions[d].sentence;
                if first < ds && a.sentences[ds].chunk_index != fs.chunk_index {
                    let dp = a.sentences[ds].page;
                    before.push((
                        t.score + 1.0,
                        Prerequisite {
                            term: t.text.clone(),
                            reason: "used-before-definition",
                            explanation: format!(
                                "Used on page {} before the document defines it on page {dp}.",
                                fs.page
                            ),
                            first_use: a.cite(first),
                            context: truncate_chars(&fs.text, 400),
                            defined_at: Some(a.cite(ds)),
                        },
                    ));
                }
            }
            None => {
                let gerund = t.words == 1 && t.text.ends_with("ing");
                if t.count < 2 || t.chunk_count < 2 || t.score <= 0.0 || gerund {
                    continue;
                }
                let weight = t.chunk_count as f64 * (1.0 + 0.5 * (t.words.min(3) as f64 - 1.0)) + t.score;
                undefined.push((
                    weight,
                    Prerequisite {
                        term: t.text.clone(),
                        reason: "used-without-definition",
                        explanation: format!(
                            "Used {} times in {} passages but never defined in the document.",
                            t.count, t.chunk_count
                        ),
                        first_use: a.cite(first),
                        context: truncate_chars(&fs.text, 400),
                        defined_at: None,
                    },
                ));
            }
        }
    }
    let by_weight =
        |x: &(f64, Prerequisite), y: &(f64, Prerequisite)| y.0.total_cmp(&x.0).then(x.1.term.cmp(&y.1.term));
    before.sort_by(by_weight);
    undefined.sort_by(by_weight);
    let mut out: Vec<Prerequisite> = before.into_iter().take(6).map(|x| x.1).collect();
    let room = 15usize.saturating_sub(out.len());
    out.extend(undefined.into_iter().take(room).map(|x| x.1));
    PrerequisitesOutput { prerequisites: out }
}
