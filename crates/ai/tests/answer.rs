//! Offline question answering: finds the passage that answers, cites pages inline,
//! follows up on the previous question, and admits when the document has no answer.

mod common;

use common::{chunk_document, load};
use learnflow_ai::answer::{answer_local, Turn, NO_ANSWER};
use learnflow_ai::doc::Chunk;

fn chunks(name: &str) -> Vec<Chunk> {
    chunk_document(&load(name), 800)
}

fn assert_finds(chunks: &[Chunk], q: &str, history: &[Turn], expect: &str) {
    let a = answer_local(q, chunks, history);
    let expected: Vec<&Chunk> = chunks.iter().filter(|c| c.text.contains(expect)).collect();
    assert!(!expected.is_empty(), "fixture lacks {expect:?}");
    assert!(
        a.text.contains(expect),
        "{q:?} → {:?} (expected {expect:?})",
        a.text
    );
    assert!(
        a.passages_used
            .iter()
            .any(|id| expected.iter().any(|c| &c.id == id)),
        "{q:?}: {:?}",
        a.passages_used
    );
    // every sentence is followed by its page
    assert!(a.text.contains("[p. "));
    for c in &a.citations {
        let ch = chunks.iter().find(|x| x.id == c.chunk).map(|x| x.page);
        assert_eq!(ch, Some(c.page));
        assert!(a.text.contains(&format!("[p. {}]", c.page)));
    }
    let sentences = a.text.matches("[p. ").count();
    assert!((1..=4).contains(&sentences));
}

#[test]
fn history_questions() {
    let c = chunks("french_revolution");
    assert_finds(&c, "When was the Bastille stormed?", &[], "14 July 1789");
    assert_finds(&c, "What was the Tennis Court Oath?", &[], "Tennis Court Oath");
    assert_finds(&c, "What was the Great Fear?", &[], "wave of panic");
    assert_finds(&c, "Who was Robespierre?", &[], "lawyer from Arras");
    assert_finds(
        &c,
        "What did the Committee of Public Safety do?",
        &[],
        "executive committee",
    );
}

#[test]
fn biology_questions() {
    let c = chunks("photosynthesis");
    assert_finds(&c, "What is chlorophyll?", &[], "green pigment");
    assert_finds(&c, "Where does the Calvin cycle take place?", &[], "stroma");
    assert_finds(&c, "What are stomata?", &[], "tiny pores");
    assert_finds(
        &c,
        "Which factors limit the rate of photosynthesis?",
        &[],
        "light intensity",
    );
}

#[test]
fn computer_science_questions() {
    let c = chunks("sorting");
    assert_finds(&c, "Is quicksort stable?", &[], "not stable");
    assert_finds(&c, "Who described merge sort?", &[], "John von Neumann");
    assert_finds(&c, "What is binary search?", &[], "repeatedly halving");
}

#[test]
fn follow_ups_use_the_previous_question() {
    let c = chunks("french_revolution");
    let first = answer_local("What was the French Revolution?", &c, &[]);
    assert!(
        first.text.contains("period of political and social upheaval"),
        "{}",
        first.text
    );
    let history = vec![Turn {
        question: "What was the French Revolution?".into(),
        answer: first.text.clone(),
    }];
    assert_finds(&c, "What about its causes?", &history, "causes of the Revolution");
    let b = chunks("photosynthesis");
    let history = vec![Turn {
        question: "What is photolysis?".into(),
        answer: String::new(),
    }];
    assert_finds(
        &b,
        "And what does it release?",
        &history,
        "Photolysis releases oxygen",
    );
}

#[test]
fn unrelated_questions_get_an_honest_no() {
    for (name, q) in [
        ("french_revolution", "How do I bake sourdough bread at home?"),
        ("photosynthesis", "Who won the football world cup?"),
        ("sorting", "What is the boiling point of water on a mountain?"),
        ("sorting", "?"),
    ] {
        let a = answer_local(q, &chunks(name), &[]);
        assert_eq!(a.text, NO_ANSWER, "{name}: {q}");
        assert!(a.citations.is_empty() && a.passages_used.is_empty());
    }
    assert_eq!(answer_local("What is chlorophyll?", &[], &[]).text, NO_ANSWER);
}
