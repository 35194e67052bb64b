//! Flashcards agent: question/answer cards from definitions ("What is meant by X?"),
//! dated sentences ("What happened in 1789?"), people ("Who was X?"), lists ("name
//! all 3") and key facts about central concepts. Every card is cited.

use std::collections::HashSet;

use serde::Serialize;

use super::common::{focused_score, scaled};
use super::AgentInput;
use crate::doc::Citation;
use crate::nlp::text::{capitalize_first, condense, truncate_chars};
use crate::nlp::{Analysis, DatePrecision, TermKind};

/// Output of the flashcards agent.
#[derive(Debug, Serialize)]
pub struct FlashcardsOutput {
    /// The cards.
    pub cards: Vec<Card>,
}

/// One card.
#[derive(Debug, Serialize)]
pub struct Card {
    /// Question side.
    pub front: String,
    /// Answer side.
    pub back: String,
    /// What the card tests: definition, date, person, list or concept.
    pub kind: &'static str,
    /// Where the answer comes from.
    pub source: Citation,
}

fn end_period(s: String) -> String {
    if s.ends_with(['.', '…', '!', '?']) {
        s
    } else {
        format!("{s}.")
    }
}

/// Builds the flashcards.
pub fn build(input: &AgentInput<'_>) -> FlashcardsOutput {
    let a = input.analysis;
    let focus = Analysis::focus_words(input.focus);
    let max = scaled(input, 24).min(60);
    let mut cards: Vec<Card> = Vec::new();
    let mut used_sentences: HashSet<usize> = HashSet::new();

    // 1. definitions, most important terms first
    let mut defs: Vec<usize> = (0..a.definitions.len()).collect();
    let dscore = |i: usize| {
        let d = &a.definitions[i];
        d.term_index.map(|t| a.terms[t].score).unwrap_or(0.0) + focused_score(a, d.sentence, &focus) * 0.01
    };
    defs.sort_by(|&x, &y| dscore(y).total_cmp(&dscore(x)).then(x.cmp(&y)));
    for i in defs.into_iter().take(max / 2 + 2) {
        let d = &a.definitions[i];
        let mut back = capitalize_first(&d.definition);
        if let Some(al) = &d.alias {
            back = format!("{back} (also called {al})");
        }
        cards.push(Card {
            front: format!("What is meant by “{}”?", d.term),
            back: end_period(truncate_chars(&back, 500)),
            kind: "definition",
            source: a.cite(d.sentence),
        });
        used_sentences.insert(d.sentence);
    }

    // 2. dates: best-ranked dated sentences, one card per date text
    let mut seen_dates: HashSet<String> = HashSet::new();
    let mut dated: Vec<usize> = (0..a.dates.len()).collect();
    dated.sort_by(|&x, &y| {
        focused_score(a, a.dates[y].sentence, &focus)
            .total_cmp(&focused_score(a, a.dates[x].sentence, &focus))
            .then(x.cmp(&y))
    });
    let mut n_dates = 0;
    for i in dated {
        let d = &a.dates[i];
        let s = &a.sentences[d.sentence];
        if n_dates > max / 4 || used_sentences.contains(&d.sentence) || s.fragment || s.words < 6 {
            continue;
        }
        if !seen_dates.insert(d.expr.text.to_lowercase()) {
            continue;
        }
        let prep = match d.expr.precision {
            DatePrecision::Day => "on",
            _ => "in",
        };
        let date_text = d.expr.text.trim_start_matches("the ").trim_start_matches("The ");
        let date_text = if matches!(d.expr.precision, DatePrecision::Decade | DatePrecision::Century) {
            format!("the {date_text}")
        } else {
            date_text.to_string()
        };
        cards.push(Card {
            front: format!("What happened {prep} {date_text}?"),
            back: end_period(condense(&s.text, 300)),
            kind: "date",
            source: a.cite(d.sentence),
        });
        used_sentences.insert(d.sentence);
        n_dates += 1;
    }

    // 3. people
    let mut people: Vec<usize> = a
        .keyphrases
        .iter()
        .copied()
        .filter(|&t| a.terms[t].kind == TermKind::Person)
        .collect();
    people.truncate(6);
    for t in people {
        let term = &a.terms[t];
        if term.definition.is_some() {
            continue;
        }
        let name = term.text.as_str();
        let describes = |s: usize| -> f64 {
            let txt = &a.sentences[s].text;
            let cues = [
                format!("{name} was "),
                format!("{name}, a"),
                format!("{name}, the"),
                format!("{name} ("),
                format!(", {name},"),
            ];
            let bonus = if cues.iter().any(|c| txt.contains(c.as_str())) {
                2.0
            } else {
                0.0
            };
            a.sentence_scores[s] + bonus
        };
        let Some(s) = term
            .sentences
            .iter()
            .copied()
            .filter(|&s| !used_sentences.contains(&s) && !a.sentences[s].fragment)
            .max_by(|&x, &y| describes(x).total_cmp(&describes(y)).then(y.cmp(&x)))
        else {
            continue;
        };
        cards.push(Card {
            front: format!("Who was {}?", term.text),
            back: end_period(condense(&a.sentences[s].text, 300)),
            kind: "person",
            source: a.cite(s),
        });
        used_sentences.insert(s);
    }

    // 4. lists
    for l in a
        .lists
        .iter()
        .filter(|l| (3..=7).contains(&l.items.len()))
        .take(4)
    {
        let front = if !l.intro_is_heading {
            format!(
                "Complete the list: “{} …” ({} items)",
                truncate_chars(l.intro.trim().trim_end_matches([':', '.']), 200),
                l.items.len()
            )
        } else if l.after.split_whitespace().count() >= 2 {
            format!(
                "Name the {} things that {} (section “{}”).",
                l.items.len(),
                truncate_chars(&l.after, 150),
                l.intro
            )
        } else {
            format!("Name the {} items listed in “{}”.", l.items.len(), l.intro)
        };
        cards.push(Card {
            front,
            back: end_period(l.items.join("; ")),
            kind: "list",
            source: a.cite(l.sentence),
        });
    }

    // 5. key facts about central concepts without a definition
    for &t in a.keyphrases.iter().take(30) {
        if cards.len() >= max {
            break;
        }
        let term = &a.terms[t];
        if term.definition.is_some() || term.kind == TermKind::Person || term.words == 1 && term.count < 3 {
            continue;
        }
        let Some(s) = a.best_sentence_for(t) else { continue };
        if used_sentences.contains(&s) || !a.sentences[s].is_good() {
            continue;
        }
        cards.push(Card {
            front: format!("What does the text say about {}?", term.text),
            back: end_period(condense(&a.sentences[s].text, 300)),
            kind: "concept",
            source: a.cite(s),
        });
        used_sentences.insert(s);
    }
    cards.truncate(max);
    FlashcardsOutput { cards }
}
