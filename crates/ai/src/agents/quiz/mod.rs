//! Quiz agent: multiple-choice questions with four options and exactly one correct
//! answer. A question is either a sentence of a chunk with a key term, name or date
//! blanked out ("_____"), or a definition rephrased as "Which term is described in
//! the text as …?". The correct answer occurs in the cited chunk. The three
//! distractors are other terms of the same kind from the same document (other years
//! for a year, other people for a person, other concept phrases for a concept),
//! nearest in form (similar length, nearby year); they differ from the answer and
//! from each other, do not contain one another, and none occurs in the question.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::common::{answer_surface, fnv, focused_score, in_chunk_of, scaled};
use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::{contains_ci, contains_word_ci, truncate_chars};
use crate::nlp::{Analysis, TermKind};

/// The blank shown in questions.
pub const BLANK: &str = "_____";

/// Output of the quiz agent.
#[derive(Debug, Serialize)]
pub struct QuizOutput {
    /// Questions in document order.
    pub questions: Vec<Question>,
}

/// One multiple-choice question.
#[derive(Debug, Serialize)]
pub struct Question {
    /// "q1", "q2", …
    pub id: String,
    /// The question stem.
    pub question: String,
    /// Exactly four options.
    pub options: Vec<String>,
    /// Index of the correct option (0–3).
    pub correct_index: usize,
    /// Kind of the answer: person, place, organization, event, name, year, date, period, number or concept.
    pub answer_kind: &'static str,
    /// Why the answer is right, quoting the source sentence.
    pub explanation: String,
    /// The passage the question comes from.
    pub source: Citation,
}

/// Terms of a sentence that could be blanked, with a priority (higher is better):
/// keyphrases by score, dates and numbers at a fixed priority.
pub(crate) fn blank_candidates(a: &Analysis, sentence: usize) -> Vec<(usize, f64)> {
    let mut v: Vec<(usize, f64)> = Vec::new();
    for t in a.terms_in(sentence) {
        let term = &a.terms[t];
        let p = match term.kind {
            TermKind::Year | TermKind::Date => 0.55,
            TermKind::Period | TermKind::Number => 0.35,
            // a lone word must be a real key term (not "half", "stable", "leave")
            TermKind::Concept if term.words == 1 && term.definition.is_none() && term.score < 0.25 => {
                continue
            }
            _ if term.score > 0.0 => term.score,
            _ => continue,
        };
        v.push((t, p));
    }
    v.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    v
}

fn year_of(a: &Analysis, t: usize) -> Option<i64> {
    a.terms[t].date_key.map(|k| k / 10000)
}

/// Three distractors of the same kind as `answer_term`, none occurring in `stem` or
/// in `avoid_sentence`, all different from `answer_text` and from each other.
pub(crate) fn distractors(
    a: &Analysis,
    answer_term: usize,
    answer_text: &str,
    stem: &str,
    avoid_sentence: usize,
    alias: Option<&str>,
    usage: &HashMap<usize, usize>,
) -> Option<Vec<(usize, String)>> {
    // keyphrase candidates first; all terms of the kind only if that is not enough
    for strict in [true, false] {
        if let Some(v) = distractors_from(
            a,
            answer_term,
            answer_text,
            stem,
            avoid_sentence,
            alias,
            usage,
            strict,
        ) {
            return Some(v);
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn distractors_from(
    a: &Analysis,
    answer_term: usize,
    answer_text: &str,
    stem: &str,
    avoid_sentence: usize,
    alias: Option<&str>,
    usage: &HashMap<usize, usize>,
    strict: bool,
) -> Option<Vec<(usize, String)>> {
    let section = a.sentences[avoid_sentence].section;
    let ans = &a.terms[answer_term];
    let kind = ans.kind;
    let sentence_text = &a.sentences[avoid_sentence].text;
    let mut pool: Vec<(usize, f64)> = a
        .terms
        .iter()
        .enumerate()
        .filter(|(i, t)| *i != answer_term && t.kind == kind && !t.subsumed)
        .filter(|(_, t)| match kind {
            TermKind::Concept => {
                let l = t.text.to_lowercase();
                t.score > 0.0
                    && (t.words > 1
                        || t.definition.is_some()
                        || (t.count >= 3
                            && !(l.ends_with("est") && l.len() > 5)
                            && !crate::nlp::stopwords::is_common_verb(&l)))
            }
            k if k.is_proper() => t.text.chars().count() >= 3 && (!strict || t.score > 0.0),
            _ => true,
        })
        .map(|(i, t)| {
            // lower is better
            let d = match kind {
                TermKind::Year | TermKind::Date | TermKind::Period => match (ans.date_key, t.date_key) {
                    (Some(x), Some(y)) => ((x - y).abs() as f64).ln_1p(),
                    _ => 100.0,
                },
                TermKind::Number => {
                    let unit_a = ans.text.split_whitespace().last().unwrap_or("");
                    let unit_b = t.text.split_whitespace().last().unwrap_or("");
                    if unit_a == unit_b {
                        0.0
                    } else {
                        1.0
                    }
                }
                _ => (ans.words as f64 - t.words as f64).abs() - t.score - (t.count as f64).ln_1p() * 0.1,
            };
            let same_section = t.sentences.iter().any(|&s| a.sentences[s].section == section);
            let defined = if t.definition.is_some() { 0.5 } else { 0.0 };
            let d = d + 0.6 * usage.get(&i).copied().unwrap_or(0) as f64
                - if same_section { 0.4 } else { 0.0 }
                - defined;
            (i, d)
        })
        .collect();
    pool.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
    let ans_l = answer_text.to_lowercase();
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut keys: HashSet<String> = HashSet::new();
    keys.insert(ans.key.clone());
    for (i, _) in pool {
        if out.len() == 3 {
            break;
        }
        let t = &a.terms[i];
        let text = t.text.clone();
        let tl = text.to_lowercase();
        if keys.contains(&t.key)
            || tl == ans_l
            || contains_word_ci(&text, answer_text)
            || contains_word_ci(answer_text, &text)
            || contains_ci(stem, &text)
            || contains_ci(sentence_text, &text)
            || alias.is_some_and(|al| contains_word_ci(al, &text) || contains_word_ci(&text, al))
        {
            continue;
        }
        if kind == TermKind::Year {
            if let (Some(x), Some(y)) = (year_of(a, answer_term), year_of(a, i)) {
                if x == y {
                    continue;
                }
            }
        }
        if out.iter().any(|(_, o)| {
            let ol = o.to_lowercase();
            ol == tl || contains_word_ci(o, &text) || contains_word_ci(&text, o)
        }) {
            continue;
        }
        keys.insert(t.key.clone());
        out.push((i, text));
    }
    (out.len() == 3).then_some(out)
}

fn kind_noun(k: TermKind) -> &'static str {
    match k {
        TermKind::Person => "person",
        TermKind::Place => "place",
        TermKind::Organization => "body",
        TermKind::Event => "event",
        TermKind::Name => "name",
        _ => "term",
    }
}

/// Whether `text[start..end]` stands on its own: not part of a longer token such as
/// `PDF_LINK` or `Estates-General` (blanking "PDF" there would give "______LINK").
pub(crate) fn is_whole_word(text: &str, start: usize, end: usize) -> bool {
    let glued = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let before = text.get(..start).and_then(|t| t.chars().next_back());
    let after = text.get(end..).and_then(|t| t.chars().next());
    !(before.is_some_and(glued) || after.is_some_and(glued))
}

/// Replaces the hit of `term` in sentence `s` by the blank; None when the answer
/// would still be visible elsewhere in the sentence.
pub(crate) fn blank_out(a: &Analysis, s: usize, term: usize) -> Option<(String, String)> {
    let sent = &a.sentences[s];
    let hit = a.hits[s].iter().find(|h| h.term == term)?;
    // only whole names: not "National _____" for "Assembly" inside "National Assembly"
    let nested = a.hits[s].iter().any(|o| {
        o.term != term
            && o.start <= hit.start
            && o.end >= hit.end
            && (o.end - o.start) > (hit.end - hit.start)
    });
    // "to _____" would blank a verb ("to leave"), not a term
    let after_to = sent.text[..hit.start].trim_end().to_lowercase().ends_with(" to")
        && a.terms[term].kind == TermKind::Concept;
    if nested || after_to {
        return None;
    }
    if !is_whole_word(&sent.text, hit.start, hit.end) {
        return None;
    }
    let surface = sent.text.get(hit.start..hit.end)?.to_string();
    let stem = format!("{}{}{}", &sent.text[..hit.start], BLANK, &sent.text[hit.end..]);
    if contains_word_ci(&stem, &surface) {
        return None;
    }
    // the answer's head word must not remain visible either ("the ___ sort" for "merge sort" is fine)
    Some((stem, surface))
}

struct Draft {
    sentence: usize,
    question: String,
    answer: String,
    distractors: Vec<(usize, String)>,
    kind: TermKind,
    term: usize,
}

/// Builds the quiz.
pub fn build(input: &AgentInput<'_>) -> QuizOutput {
    let a = input.analysis;
    let focus = Analysis::focus_words(input.focus);
    let good: Vec<usize> = (0..a.sentences.len())
        .filter(|&i| a.sentences[i].is_good())
        .collect();
    let n = scaled(input, (good.len() / 8).clamp(5, 12)).min(30);
    let mut drafts: Vec<Draft> = Vec::new();
    let mut used_terms: HashSet<usize> = HashSet::new();
    let mut used_sentences: HashSet<usize> = HashSet::new();
    let mut per_chunk: HashMap<usize, usize> = HashMap::new();
    let mut usage: HashMap<usize, usize> = HashMap::new();

    // 1. definition questions (at most half)
    let mut defs: Vec<usize> = (0..a.definitions.len())
        .filter(|&i| a.definitions[i].term_index.is_some())
        .collect();
    defs.sort_by(|&x, &y| {
        let sx = a.definitions[x]
            .term_index
            .map(|t| a.terms[t].score)
            .unwrap_or(0.0);
        let sy = a.definitions[y]
            .term_index
            .map(|t| a.terms[t].score)
            .unwrap_or(0.0);
        sy.total_cmp(&sx).then(x.cmp(&y))
    });
    for di in defs {
        if drafts.len() >= n / 2 {
            break;
        }
        let d = &a.definitions[di];
        let Some(t) = d.term_index else { continue };
        let kind = a.terms[t].kind;
        if kind.is_value() || used_terms.contains(&t) {
            continue;
        }
        let Some(answer) = answer_surface(a, d.sentence, t) else {
            continue;
        };
        let def_text = d.definition.trim_end_matches('.');
        if contains_word_ci(def_text, &answer)
            || contains_word_ci(def_text, &a.terms[t].text)
            || def_text.split_whitespace().count() < 4
        {
            continue;
        }
        let mut first = def_text.chars();
        let def_lower: String = match first.next() {
            Some(c) if !def_text.chars().nth(1).is_some_and(char::is_uppercase) => {
                c.to_lowercase().chain(first).collect()
            }
            _ => def_text.to_string(),
        };
        let question = format!(
            "Which {} is described in the text as “{}”?",
            kind_noun(kind),
            truncate_chars(&def_lower, 400)
        );
        let Some(ds) = distractors(a, t, &answer, &question, d.sentence, d.alias.as_deref(), &usage) else {
            continue;
        };
        if !in_chunk_of(a, d.sentence, &answer) {
            continue;
        }
        used_terms.insert(t);
        used_sentences.insert(d.sentence);
        for (i, _) in &ds {
            *usage.entry(*i).or_insert(0) += 1;
        }
        *per_chunk.entry(a.sentences[d.sentence].chunk_index).or_insert(0) += 1;
        drafts.push(Draft {
            sentence: d.sentence,
            question,
            answer,
            distractors: ds,
            kind,
            term: t,
        });
    }

    // 2. blanked sentences, best-ranked first
    let mut order = good.clone();
    order.sort_by(|&x, &y| {
        focused_score(a, y, &focus)
            .total_cmp(&focused_score(a, x, &focus))
            .then(x.cmp(&y))
    });
    for s in order {
        if drafts.len() >= n {
            break;
        }
        let sent = &a.sentences[s];
        if used_sentences.contains(&s)
            || sent.text.chars().count() > 320
            || per_chunk.get(&sent.chunk_index).copied().unwrap_or(0) >= 2
        {
            continue;
        }
        for (t, _) in blank_candidates(a, s) {
            if used_terms.contains(&t) {
                continue;
            }
            let Some((stem, surface)) = blank_out(a, s, t) else {
                continue;
            };
            let answer = if a.terms[t].kind == TermKind::Concept {
                answer_surface(a, s, t).unwrap_or(surface)
            } else {
                surface
            };
            let Some(ds) = distractors(a, t, &answer, &stem, s, None, &usage) else {
                continue;
            };
            if !in_chunk_of(a, s, &answer) {
                continue;
            }
            used_terms.insert(t);
            used_sentences.insert(s);
            for (i, _) in &ds {
                *usage.entry(*i).or_insert(0) += 1;
            }
            *per_chunk.entry(sent.chunk_index).or_insert(0) += 1;
            drafts.push(Draft {
                sentence: s,
                question: stem,
                answer,
                distractors: ds,
                kind: a.terms[t].kind,
                term: t,
            });
            break;
        }
    }

    drafts.sort_by_key(|d| (d.sentence, d.term));
    let questions = drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let pos = (fnv(&d.question) % 4) as usize;
            let mut options: Vec<String> = d.distractors.iter().map(|x| x.1.clone()).collect();
            options.insert(pos, d.answer.clone());
            let s = &a.sentences[d.sentence];
            Question {
                id: format!("q{}", i + 1),
                question: d.question,
                options,
                correct_index: pos,
                answer_kind: d.kind.as_str(),
                explanation: format!(
                    "The answer is “{}”. The text says (p. {}): “{}”",
                    d.answer,
                    s.page,
                    truncate_chars(&s.text, 500)
                ),
                source: a.cite(d.sentence),
            }
        })
        .collect();
    QuizOutput { questions }
}

#[cfg(test)]
mod regression {
    use super::is_whole_word;

    /// Regression: a quiz on groff's mom manual blanked "PDF" inside the macro name
    /// `PDF_LINK`, giving the question "… invocation of ______LINK would produce …".
    #[test]
    fn blanks_never_cut_into_a_longer_token() {
        let text = "the following invocation of PDF_LINK would produce a link to the PDF file";
        let inner = text.find("PDF_LINK").unwrap();
        assert!(!is_whole_word(text, inner, inner + 3));
        let last = text.rfind("PDF").unwrap();
        assert!(is_whole_word(text, last, last + 3));
        let hyphen = "the Estates-General met";
        let g = hyphen.find("General").unwrap();
        assert!(!is_whole_word(hyphen, g, g + "General".len()));
        assert!(is_whole_word("PDF", 0, 3));
    }
}
