//! Release timings on the synthetic 50-page document:
//! `cargo run --release --example speed`.
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use learnflow_ai::agents::{plan_local, run_local, AgentInput, AgentName, Purpose};
use learnflow_ai::answer::answer_local;
use learnflow_ai::nlp::Analysis;

fn main() {
    let doc = common::synthetic(50);
    let words: usize = doc.pages.iter().map(|p| p.text.split_whitespace().count()).sum();
    let chunks = common::chunk_document(&doc, 800);
    // best of 3 to smooth out noise
    let mut best = f64::MAX;
    let mut analysis = None;
    for _ in 0..3 {
        let t = Instant::now();
        let a = Analysis::new(&doc, &chunks);
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        analysis = Some(a);
    }
    let Some(a) = analysis else { return };
    println!(
        "document: {} pages, {words} words, {} chunks, {} sentences",
        doc.pages.len(),
        chunks.len(),
        a.sentences.len()
    );
    println!("{:<16} {:>9.1} ms", "analysis", best);
    let input = AgentInput {
        doc: &doc,
        chunks: &chunks,
        analysis: &a,
        purpose: &Purpose::ExamPrep,
        focus: None,
    };
    let mut total = 0.0;
    for agent in AgentName::ALL {
        let mut b = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let out = run_local(agent, &input);
            b = b.min(t.elapsed().as_secs_f64() * 1000.0);
            if let Err(e) = out {
                println!("{agent}: error {e}");
            }
        }
        total += b;
        println!("{:<16} {:>9.2} ms", agent.as_str(), b);
    }
    println!("{:<16} {:>9.2} ms", "all agents", total);
    let t = Instant::now();
    let plan = plan_local(&doc, &a, &Purpose::ExamPrep);
    println!(
        "{:<16} {:>9.2} ms ({} agents planned)",
        "plan_local",
        t.elapsed().as_secs_f64() * 1000.0,
        plan.agents.len()
    );
    let t = Instant::now();
    let ans = answer_local(
        "What did Marie Curie describe about the hash table?",
        &chunks[..10],
        &[],
    );
    println!(
        "{:<16} {:>9.2} ms ({} chars)",
        "answer_local",
        t.elapsed().as_secs_f64() * 1000.0,
        ans.text.len()
    );
}
