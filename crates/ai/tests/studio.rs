//! Agents through both providers: the offline `local` provider, and the real
//! OpenAI-compatible client against the loopback fake. Every material must pass its
//! schema, its citations must name real chunks on the right pages, and the
//! agent-specific checks (valid Mermaid, a right answer among distinct options) hold.

mod common;

use std::time::Duration;

use learnflow_ai::agents::{AgentName, Purpose};
use learnflow_ai::provider::local::LocalProvider;
use learnflow_ai::provider::openai::{OpenAiConfig, OpenAiProvider};
use learnflow_ai::runner::TaskError;
use learnflow_ai::studio::{self, agent_check, StudyContext};
use learnflow_ai::testing::fake_openai::{FakeConfig, FakeOpenAi, Scripted};

fn context(name: &str) -> StudyContext {
    let doc = common::load(name);
    let chunks = common::chunk_document(&doc, 800);
    StudyContext::new(doc, chunks)
}

#[tokio::test]
async fn every_agent_works_offline_and_passes_the_checks() {
    let ctx = context("french_revolution");
    let purpose = Purpose::parse("exam-prep");
    let (plan, calls) = studio::plan(&LocalProvider, &ctx, &purpose).await.unwrap();
    assert!(!plan.agents.is_empty());
    assert_eq!(calls[0].provider, "local");
    for agent in AgentName::ALL {
        let out = studio::material(&LocalProvider, &ctx, agent, &purpose, None)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", agent.as_str()));
        ctx.check_citations(&out.output).unwrap();
        agent_check(agent, &out.output).unwrap();
        assert_eq!(
            out.calls.len(),
            1,
            "{}: valid at the first answer",
            agent.as_str()
        );
        assert!(out.calls[0].output_tokens > 0);
    }
}

#[tokio::test]
async fn every_agent_works_through_an_openai_compatible_server() {
    let fake = FakeOpenAi::start(FakeConfig::default()).await.unwrap();
    let provider = OpenAiProvider::new(OpenAiConfig {
        base_url: fake.base_url.clone(),
        model: "fake-model".into(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .unwrap();
    let ctx = context("photosynthesis");
    let purpose = Purpose::parse("deep-understanding");
    let (plan, _) = studio::plan(&provider, &ctx, &purpose).await.unwrap();
    assert!(!plan.agents.is_empty());
    for agent in AgentName::ALL {
        let out = studio::material(&provider, &ctx, agent, &purpose, Some("light reactions"))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", agent.as_str()));
        ctx.check_citations(&out.output).unwrap();
        assert_eq!(out.calls[0].model, "fake-model");
    }
    let first = &fake.requests()[1];
    let prompt = first["messages"][1]["content"].as_str().unwrap();
    assert!(
        prompt.contains("[c0 p.1]"),
        "the prompt carries the cited excerpt"
    );
    assert_eq!(first["response_format"]["type"], "json_schema");
}

#[tokio::test]
async fn a_citation_of_a_missing_chunk_is_repaired_then_fails() {
    let fake = FakeOpenAi::start(FakeConfig::default()).await.unwrap();
    let provider = OpenAiProvider::new(OpenAiConfig {
        base_url: fake.base_url.clone(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .unwrap();
    let ctx = context("sorting");
    let bad = r#"{"entries": [{"term": "Merge sort", "definition": "A divide-and-conquer sort.", "source": {"chunk": "c999", "page": 1}}]}"#;
    fake.push(Scripted::Content(bad.into()));
    let out = studio::material(
        &provider,
        &ctx,
        AgentName::Glossary,
        &Purpose::parse("exam-prep"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(out.calls.len(), 2, "the bad citation was sent back once");
    let repair = fake.requests()[1]["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(repair.contains("c999"), "{repair}");
    for _ in 0..3 {
        fake.push(Scripted::Content(bad.into()));
    }
    let err = studio::material(
        &provider,
        &ctx,
        AgentName::Glossary,
        &Purpose::parse("exam-prep"),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TaskError::Invalid { attempts: 3, .. }), "{err}");
}

#[test]
fn quiz_and_diagram_checks_reject_broken_material() {
    let dup = serde_json::json!({ "questions": [{ "options": ["a", "A", "b", "c"], "correct_index": 0 }] });
    assert!(agent_check(AgentName::Quiz, &dup).unwrap_err().contains("differ"));
    let out_of_range =
        serde_json::json!({ "questions": [{ "options": ["a", "b", "c", "d"], "correct_index": 7 }] });
    assert!(agent_check(AgentName::Quiz, &out_of_range).is_err());
    let bad = serde_json::json!({ "mermaid": "flowchart TD\n  n1[\"A\" --> n2" });
    assert!(agent_check(AgentName::Diagram, &bad)
        .unwrap_err()
        .starts_with("/mermaid"));
}
