//! FAQ agent: questions a student would ask, answered with sentences of the text:
//! "What is X?" from definitions, "What explains why …?" from sentences that give a
//! reason ("because", "due to", "as a result"), "How are X and Y related?" from the
//! co-occurrence graph, "What should I know about `<section>`?" from headings, and
//! "What does the text say about X?" for central undefined terms. Every answer cites
//! the chunk of its sentences (answers never mix chunks).

use std::collections::HashSet;

use serde::Serialize;

use super::common::{focused_score, scaled};
use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::{truncate_chars, word_count};
use crate::nlp::{Analysis, TermKind};

/// Output of the FAQ agent.
#[derive(Debug, Serialize)]
pub struct FaqOutput {
    /// Questions and answers.
    pub items: Vec<FaqItem>,
}

/// One question with its answer.
#[derive(Debug, Serialize)]
pub struct FaqItem {
    /// The question.
    pub question: String,
    /// The answer, from the text.
    pub answer: String,
    /// definition, reason, relation, section or concept.
    pub kind: &'static str,
    /// Where the answer comes from.
    pub source: Citation,
}

const PRONOUN_STARTS: &[&str] = &[
    "it", "they", "this", "these", "he", "she", "that", "those", "its", "their", "his", "her", "there", "we",
];

/// Turns "A because B." into "What explains why a?"; also handles "Because B, A."
fn reason_question(text: &str, is_name: &dyn Fn(&str) -> bool) -> Option<String> {
    let t = text.trim_end_matches(['.', '!']);
    let lower = t.to_lowercase();
    let clause = if let Some(rest) = lower.strip_prefix("because ") {
        let comma = rest.find(", ")?;
        t.get(8 + comma + 2..)?.to_string()
    } else {
        let p = [" because ", " due to ", ", so that ", " as a result of "]
            .iter()
            .filter_map(|m| lower.find(m))
            .min()?;
        let head = t.get(..p)?.trim_end_matches(',');
        // drop a leading connective or date phrase ("In 1790, ")
        match head.find(", ") {
            Some(c) if word_count(&head[..c]) <= 4 => head[c + 2..].to_string(),
            _ => head.to_string(),
        }
    };
    let first_word = clause.split_whitespace().next()?.to_string();
    let first = first_word.to_lowercase();
    let last = clause.split_whitespace().last()?.to_lowercase();
    if PRONOUN_STARTS.contains(&first.as_str())
        || word_count(&clause) < 4
        || word_count(&clause) > 24
        || clause.contains(", and ")
        || clause.contains(", but ")
        || matches!(
            last.as_str(),
            "not" | "is" | "are" | "was" | "were" | "do" | "does" | "did" | "be"
        )
    {
        return None;
    }
    let keep_cap = clause.chars().nth(1).is_some_and(char::is_uppercase) || is_name(&first_word);
    let body = if keep_cap {
        clause
    } else {
        let mut cs = clause.chars();
        cs.next()
            .map(|f| f.to_lowercase().chain(cs).collect())
            .unwrap_or_default()
    };
    Some(format!("What explains why {body}?"))
}

fn sentence_answer(a: &Analysis, s: usize) -> String {
    truncate_chars(&a.sentences[s].text, 600)
}

/// Builds the FAQ.
pub fn build(input: &AgentInput<'_>) -> FaqOutput {
    let a = input.analysis;
    let focus = Analysis::focus_words(input.focus);
    let max = scaled(input, 18).min(40);
    let mut items: Vec<FaqItem> = Vec::new();
    let mut used: HashSet<usize> = HashSet::new();

    // definitions
    let mut defs: Vec<usize> = (0..a.definitions.len()).collect();
    let ds = |i: usize| {
        a.definitions[i]
            .term_index
            .map(|t| a.terms[t].score)
            .unwrap_or(0.0)
    };
    defs.sort_by(|&x, &y| ds(y).total_cmp(&ds(x)).then(x.cmp(&y)));
    for i in defs.into_iter().take(max / 3 + 1) {
        let d = &a.definitions[i];
        let kind = d.term_index.map(|t| a.terms[t].kind).unwrap_or(TermKind::Concept);
        let past =
            a.sentences[d.sentence].text.contains(" was ") || a.sentences[d.sentence].text.contains(" were ");
        let q = match kind {
            TermKind::Person => format!("Who was {}?", d.term),
            _ if past && kind.is_proper() => format!("What was the {}?", d.term),
            _ if kind.is_proper() => format!("What is the {}?", d.term),
            _ => {
                let keep = d.term.chars().skip(1).any(char::is_uppercase);
                let t = if keep {
                    d.term.clone()
                } else {
                    let mut cs = d.term.chars();
                    cs.next()
                        .map(|f| f.to_lowercase().chain(cs).collect())
                        .unwrap_or_default()
                };
                let plural = t.ends_with('s')
                    && !t.ends_with("ss")
                    && !t.ends_with("is")
                    && !t.ends_with("us")
                    && !keep;
                format!("What {} {t}?", if plural { "are" } else { "is" })
            }
        };
        let q = q.replace("the the ", "the ");
        items.push(FaqItem {
            question: q,
            answer: sentence_answer(a, d.sentence),
            kind: "definition",
            source: a.cite(d.sentence),
        });
        used.insert(d.sentence);
    }

    // reasons
    let is_name = |w: &str| {
        a.terms
            .iter()
            .any(|t| t.kind.is_proper() && t.text.split_whitespace().next() == Some(w))
    };
    let mut reasons: Vec<(usize, String)> = (0..a.sentences.len())
        .filter(|&s| a.sentences[s].is_good() && !used.contains(&s))
        .filter_map(|s| reason_question(&a.sentences[s].text, &is_name).map(|q| (s, q)))
        .collect();
    reasons.sort_by(|x, y| {
        focused_score(a, y.0, &focus)
            .total_cmp(&focused_score(a, x.0, &focus))
            .then(x.0.cmp(&y.0))
    });
    for (s, q) in reasons.into_iter().take(max / 4 + 1) {
        items.push(FaqItem {
            question: q,
            answer: sentence_answer(a, s),
            kind: "reason",
            source: a.cite(s),
        });
        used.insert(s);
    }

    // relations
    let mut rel = 0;
    for e in &a.cooccurrence.edges {
        if rel >= 4 {
            break;
        }
        let (x, y) = (&a.terms[e.a], &a.terms[e.b]);
        if x.words + y.words < 3 && (x.score + y.score) < 0.6 {
            continue;
        }
        let Some(&s) = e
            .sentences
            .iter()
            .filter(|&&s| a.sentences[s].is_good() && !used.contains(&s))
            .min_by_key(|&&s| a.sentences[s].words)
        else {
            continue;
        };
        items.push(FaqItem {
            question: format!("How are {} and {} related?", x.text, y.text),
            answer: sentence_answer(a, s),
            kind: "relation",
            source: a.cite(s),
        });
        used.insert(s);
        rel += 1;
    }

    // sections (headings only)
    for sec in a.sections.iter().filter(|s| !s.derived).take(8) {
        let best = sec
            .sentences
            .clone()
            .filter(|&s| a.sentences[s].is_good() && !used.contains(&s))
            .max_by(|&x, &y| {
                focused_score(a, x, &focus)
                    .total_cmp(&focused_score(a, y, &focus))
                    .then(y.cmp(&x))
            });
        let Some(s) = best else { continue };
        // a second good sentence from the same chunk, in reading order
        let chunk = a.sentences[s].chunk_index;
        let second = a.chunk_sentences[chunk]
            .clone()
            .filter(|&o| o != s && a.sentences[o].is_good() && !used.contains(&o))
            .max_by(|&x, &y| {
                a.sentence_scores[x]
                    .total_cmp(&a.sentence_scores[y])
                    .then(y.cmp(&x))
            });
        let mut picked = vec![s];
        if let Some(o) = second {
            picked.push(o);
        }
        picked.sort_unstable();
        let answer = truncate_chars(
            &picked
                .iter()
                .map(|&p| a.sentences[p].text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            900,
        );
        let title = sec
            .title
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' ');
        items.push(FaqItem {
            question: format!("What should I know about “{title}”?"),
            answer,
            kind: "section",
            source: a.cite(s),
        });
        used.extend(picked);
    }

    // central undefined concepts
    for &t in a.keyphrases.iter().take(20) {
        if items.len() >= max {
            break;
        }
        let term = &a.terms[t];
        if term.definition.is_some() || term.kind == TermKind::Person || term.words < 2 && term.count < 4 {
            continue;
        }
        let Some(s) = a.best_sentence_for(t) else { continue };
        if used.contains(&s) || !a.sentences[s].is_good() {
            continue;
        }
        items.push(FaqItem {
            question: format!("What does the text say about {}?", term.text),
            answer: sentence_answer(a, s),
            kind: "concept",
            source: a.cite(s),
        });
        used.insert(s);
    }
    items.truncate(max);
    FaqOutput { items }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_questions_are_grammatical() {
        let no = |_: &str| false;
        assert_eq!(
            reason_question("Because the privileged estates refused to pay new taxes, the government could not raise the money it needed.", &no),
            Some("What explains why the government could not raise the money it needed?".to_string())
        );
        assert_eq!(
            reason_question("Both plant and animal cells contain mitochondria, because both need a steady supply of usable energy.", &no),
            Some("What explains why both plant and animal cells contain mitochondria?".to_string())
        );
        assert_eq!(reason_question("It failed because of the rain.", &no), None);
        assert_eq!(
            reason_question(
                "Counting sort and radix sort are not, because they look at digits.",
                &no
            ),
            None
        );
        let louis = |w: &str| w == "Louis";
        assert_eq!(
            reason_question("Louis XVI fled to Varennes because he feared the crowds.", &louis),
            Some("What explains why Louis XVI fled to Varennes?".to_string())
        );
    }
}
