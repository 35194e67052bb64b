//! Notes agent: structured notes per section (the document's headings, or derived
//! topic sections), each with bullets condensed from the section's top-ranked
//! sentences in reading order, the section's key terms and citations.

use serde::Serialize;

use super::common::pick_diverse;
use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::condense;
use crate::nlp::Analysis;

/// Output of the notes agent.
#[derive(Debug, Serialize)]
pub struct NotesOutput {
    /// Notes per section, in document order.
    pub sections: Vec<NoteSection>,
}

/// Notes for one section.
#[derive(Debug, Serialize)]
pub struct NoteSection {
    /// Section heading (or derived title).
    pub heading: String,
    /// Page where the section starts.
    pub page: u32,
    /// Bullet points in reading order.
    pub bullets: Vec<Bullet>,
    /// Key terms of the section, most important first.
    pub key_terms: Vec<String>,
}

/// One bullet point.
#[derive(Debug, Serialize)]
pub struct Bullet {
    /// The point, condensed from a sentence of the document.
    pub text: String,
    /// Where it comes from.
    pub source: Citation,
}

/// Key terms of a range of sentences: keyphrases occurring there, by score.
pub(crate) fn section_terms(a: &Analysis, range: std::ops::Range<usize>, n: usize) -> Vec<usize> {
    let mut seen: Vec<usize> = Vec::new();
    for si in range {
        for h in &a.hits[si] {
            let t = &a.terms[h.term];
            if t.score > 0.0 && !seen.contains(&h.term) {
                seen.push(h.term);
            }
        }
    }
    seen.sort_by(|&x, &y| a.terms[y].score.total_cmp(&a.terms[x].score).then(x.cmp(&y)));
    // drop a term contained in a better one ("cycle" after "Calvin cycle")
    let mut out: Vec<usize> = Vec::new();
    for t in seen {
        let tl = a.terms[t].text.to_lowercase();
        if out
            .iter()
            .any(|&o| crate::nlp::text::contains_word_ci(&a.terms[o].text, &tl))
        {
            continue;
        }
        out.push(t);
        if out.len() >= n {
            break;
        }
    }
    out
}

/// Builds the notes.
pub fn build(input: &AgentInput<'_>) -> NotesOutput {
    let a = input.analysis;
    let focus = Analysis::focus_words(input.focus);
    let mut sections = Vec::new();
    for sec in &a.sections {
        let range = sec.sentences.clone();
        let len = range.len();
        if len == 0 {
            continue;
        }
        let good: Vec<usize> = range.clone().filter(|&i| a.sentences[i].is_good()).collect();
        let pool: Vec<usize> = if good.is_empty() {
            range.clone().collect()
        } else {
            good
        };
        let k = super::common::scaled(input, (len / 3).clamp(2, 6)).min(8);
        let mut chosen = pick_diverse(a, pool, k, &focus, 0.55);
        chosen.sort_unstable();
        let bullets: Vec<Bullet> = chosen
            .iter()
            .map(|&i| Bullet {
                text: condense(&a.sentences[i].text, 260),
                source: a.cite(i),
            })
            .collect();
        if bullets.is_empty() {
            continue;
        }
        let key_terms = section_terms(a, range, 6)
            .into_iter()
            .map(|t| a.terms[t].text.clone())
            .collect();
        sections.push(NoteSection {
            heading: sec.title.clone(),
            page: sec.page,
            bullets,
            key_terms,
        });
    }
    NotesOutput { sections }
}
