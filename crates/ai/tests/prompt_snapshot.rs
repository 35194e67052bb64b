//! Snapshot of one rendered prompt: the quiz template filled for a fixed input must
//! equal the committed text in tests/snapshots/quiz_prompt.txt. Set
//! `UPDATE_SNAPSHOTS=1` to rewrite it after an intended change.

use learnflow_ai::agents::{excerpt, render_prompt, AgentName, Purpose};
use learnflow_ai::doc::Chunk;

#[test]
fn quiz_prompt_matches_snapshot() {
    let chunks = vec![
        Chunk {
            id: "c0".into(),
            index: 0,
            page: 1,
            text: "The Estates-General opened at Versailles on 5 May 1789.".into(),
            heading: None,
        },
        Chunk {
            id: "c1".into(),
            index: 1,
            page: 2,
            text: "On 14 July 1789 crowds attacked\nthe Bastille. {{title}}".into(),
            heading: None,
        },
    ];
    let got = render_prompt(
        AgentName::Quiz,
        &Purpose::ExamPrep,
        Some("dates of 1789"),
        "The French Revolution",
        &excerpt(&chunks, 4000),
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/quiz_prompt.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &got).unwrap_or_else(|e| panic!("write snapshot: {e}"));
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read snapshot {path}: {e}"));
    assert_eq!(got, want);
    assert!(got.contains("[c1 p.2] On 14 July 1789 crowds attacked the Bastille. {{title}}"));
}
