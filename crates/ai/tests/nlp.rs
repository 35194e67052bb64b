//! NLP on the fixtures and property tests on arbitrary text.

mod common;

use learnflow_ai::agents::excerpt;
use learnflow_ai::doc::{Chunk, DocumentText, PageText};
use learnflow_ai::nlp::dates::find_dates;
use learnflow_ai::nlp::text::{split_sentences, squash_ws, tokenize};
use learnflow_ai::nlp::{Analysis, TermKind};
use proptest::prelude::*;

#[test]
fn fixtures_yield_definitions_dates_and_keyphrases() {
    let doc = common::load("photosynthesis");
    let chunks = common::chunk_document(&doc, 800);
    let a = Analysis::new(&doc, &chunks);
    assert!(a.definitions.len() >= 15, "{}", a.definitions.len());
    assert!(a.dates.is_empty());
    let top: Vec<String> = a
        .top_keyphrases(10)
        .into_iter()
        .map(|(t, _)| a.terms[t].text.to_lowercase())
        .collect();
    for want in ["photosynthesis", "calvin cycle", "carbon dioxide"] {
        assert!(top.iter().any(|t| t == want), "{want} not in {top:?}");
    }
    // multi-word terms are found and sentences stay inside their chunk
    assert!(a.keyphrases.iter().any(|&t| a.terms[t].words >= 2));
    for s in &a.sentences {
        let c = &chunks[s.chunk_index];
        assert_eq!(c.id, s.chunk);
        assert!(squash_ws(&c.text).contains(&s.text), "{}", s.text);
    }
    assert!(a.cooccurrence.related_concepts() >= 4);
    let h = common::load("french_revolution");
    let hc = common::chunk_document(&h, 800);
    let ha = Analysis::new(&h, &hc);
    assert!(ha.dated_event_count() >= 20);
    assert!(ha.terms.iter().filter(|t| t.kind == TermKind::Person).count() >= 5);
}

fn arb_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "Dr.",
        "e.g.",
        "3.14",
        "1789",
        "14 July 1789",
        "44 BC",
        "the 1920s",
        "J. K.",
        "U.S.",
        "is a",
        "refers to",
        "called",
        "Cell",
        "cells",
        "—",
        "–",
        ",",
        ".",
        "!",
        "?",
        "\n",
        "\n\n",
        "- ",
        "1. ",
        "(",
        ")",
        "\"",
        "’s",
        "é",
        "日本",
        "x",
        "Photosynthesis",
        "and",
        "or",
        "such as",
        ":",
        ";",
    ]);
    prop::collection::vec(pieces, 0..80).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn splitting_and_tokenising_never_panic_and_keep_spans(text in arb_text()) {
        for s in split_sentences(&text) {
            prop_assert!(s.start <= s.end && s.end <= text.len());
            prop_assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            prop_assert!(!s.text.is_empty());
            if !s.list_item {
                prop_assert_eq!(squash_ws(&text[s.start..s.end]), s.text.clone());
            }
        }
        for t in tokenize(&text) {
            prop_assert!(t.start < t.end && t.end <= text.len());
        }
        for d in find_dates(&text) {
            prop_assert!(d.month <= 12 && d.day <= 31);
            prop_assert_eq!(&text[d.start..d.end], d.text.as_str());
        }
    }

    #[test]
    fn analysis_and_excerpt_never_panic(text in arb_text(), max in 0usize..400) {
        let doc = DocumentText { title: "t".into(), pages: vec![PageText { number: 1, text: text.clone(), headings: vec![] }] };
        let chunks = if text.trim().is_empty() { vec![] } else {
            vec![Chunk { id: "c0".into(), index: 0, page: 1, text: text.trim().to_string(), heading: None }]
        };
        let a = Analysis::new(&doc, &chunks);
        for s in &a.sentences {
            prop_assert!(a.chunk(&s.chunk).is_some());
        }
        prop_assert!(excerpt(&chunks, max).chars().count() <= max);
    }
}
