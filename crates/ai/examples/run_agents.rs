//! Runs local agents on a fixture and prints their JSON:
//! `cargo run --example run_agents -- french_revolution [agent|all|plan] [purpose]`.
#[path = "../tests/common/mod.rs"]
mod common;

use learnflow_ai::agents::{plan_local, run_local, AgentInput, AgentName, Purpose};
use learnflow_ai::nlp::Analysis;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "french_revolution".into());
    let which = args.next().unwrap_or_else(|| "all".into());
    let purpose = Purpose::parse(&args.next().unwrap_or_else(|| "exam-prep".into()));
    let doc = if name == "synthetic" {
        common::synthetic(50)
    } else {
        common::load(&name)
    };
    let doc = if name.ends_with("-noheadings") {
        common::without_headings(&common::load(name.trim_end_matches("-noheadings")))
    } else {
        doc
    };
    let chunks = common::chunk_document(&doc, 800);
    let a = Analysis::new(&doc, &chunks);
    if which == "plan" {
        let plan = plan_local(&doc, &a, &purpose);
        println!("{}", serde_json::to_string_pretty(&plan).unwrap_or_default());
        return;
    }
    let input = AgentInput {
        doc: &doc,
        chunks: &chunks,
        analysis: &a,
        purpose: &purpose,
        focus: None,
    };
    for agent in AgentName::ALL {
        if which != "all" && agent.as_str() != which {
            continue;
        }
        println!("===== {agent}");
        match run_local(agent, &input) {
            Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            Err(e) => println!("error: {e}"),
        }
    }
}
