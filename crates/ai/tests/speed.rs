//! Speed: a synthetic 50-page document (~25,000 words) analysed and run through
//! every agent. Bounds are generous in debug builds; `cargo run --release --example
//! speed` reports real timings.

mod common;

use std::time::{Duration, Instant};

use learnflow_ai::agents::{plan_local, run_local, AgentInput, AgentName, Purpose};
use learnflow_ai::nlp::Analysis;

#[test]
fn fifty_pages_analyse_and_run_in_time() {
    let doc = common::synthetic(50);
    let words: usize = doc.pages.iter().map(|p| p.text.split_whitespace().count()).sum();
    assert!((22_000..=28_000).contains(&words), "{words} words");
    let chunks = common::chunk_document(&doc, 800);
    assert!(chunks.len() >= 100, "{} chunks", chunks.len());
    let release = !cfg!(debug_assertions);
    let (analysis_bound, agent_bound) = if release {
        (Duration::from_secs(1), Duration::from_millis(300))
    } else {
        (Duration::from_secs(30), Duration::from_secs(10))
    };
    let t = Instant::now();
    let a = Analysis::new(&doc, &chunks);
    let took = t.elapsed();
    assert!(took < analysis_bound, "analysis took {took:?}");
    let input = AgentInput {
        doc: &doc,
        chunks: &chunks,
        analysis: &a,
        purpose: &Purpose::ExamPrep,
        focus: None,
    };
    for agent in AgentName::ALL {
        let t = Instant::now();
        let out = run_local(agent, &input);
        let took = t.elapsed();
        assert!(out.is_ok(), "{agent}: {:?}", out.err());
        assert!(took < agent_bound, "{agent} took {took:?}");
    }
    let t = Instant::now();
    let plan = plan_local(&doc, &a, &Purpose::ExamPrep);
    assert!(!plan.agents.is_empty());
    assert!(t.elapsed() < agent_bound * 15);
}
