//! The local architect: purpose changes the plan, the document's content gates
//! agents (timeline only with dates, …), and no planned agent has empty output.

mod common;

use common::{chunk_document, load, schema_errors, FIXTURES};
use learnflow_ai::agents::{
    is_empty_output, plan_local, run_local, AgentInput, AgentName, Plan, Purpose, ARCHITECT_SCHEMA,
};
use learnflow_ai::doc::{DocumentText, PageText};
use learnflow_ai::nlp::Analysis;

fn plan(name: &str, p: &Purpose) -> (Plan, DocumentText, Analysis) {
    let doc = load(name);
    let chunks = chunk_document(&doc, 800);
    let a = Analysis::new(&doc, &chunks);
    (plan_local(&doc, &a, p), doc, a)
}

fn names(p: &Plan) -> Vec<AgentName> {
    p.agents.iter().map(|x| x.name).collect()
}

#[test]
fn purpose_changes_the_plan() {
    let (exam, _, _) = plan("photosynthesis", &Purpose::ExamPrep);
    let (deep, _, _) = plan("photosynthesis", &Purpose::DeepUnderstanding);
    let (quick, _, _) = plan("photosynthesis", &Purpose::QuickReview);
    let (lecture, _, _) = plan("photosynthesis", &Purpose::LectureNotes);
    assert_eq!(names(&exam)[0], AgentName::Quiz);
    assert_eq!(names(&deep)[0], AgentName::Notes);
    assert_eq!(names(&lecture)[..2], [AgentName::Notes, AgentName::Outline]);
    assert_eq!(names(&quick)[0], AgentName::Summary);
    assert!(quick.agents.len() <= 6 && quick.agents.len() < exam.agents.len());
    assert_ne!(names(&exam), names(&deep));
    for want in [AgentName::Flashcards, AgentName::Cloze, AgentName::StudyPlan] {
        assert!(names(&exam).contains(&want));
    }
    for want in [AgentName::Examples, AgentName::Diagram, AgentName::Prerequisites] {
        assert!(names(&deep).contains(&want));
    }
    assert!(exam.rationale.contains("exam-prep"));
}

#[test]
fn timeline_only_for_the_dated_document() {
    for name in FIXTURES {
        for p in [
            Purpose::ExamPrep,
            Purpose::DeepUnderstanding,
            Purpose::QuickReview,
        ] {
            let (pl, _, a) = plan(name, &p);
            let has = names(&pl).contains(&AgentName::Timeline);
            assert_eq!(has, name == "french_revolution", "{name} {p}: {:?}", names(&pl));
            if !has {
                assert!(
                    a.dated_event_count() < 3
                        || !matches!(
                            p,
                            Purpose::ExamPrep | Purpose::DeepUnderstanding | Purpose::QuickReview
                        )
                );
            }
        }
    }
    let (pl, _, _) = plan("sorting", &Purpose::ExamPrep);
    assert!(pl.rationale.contains("timeline skipped"), "{}", pl.rationale);
}

#[test]
fn planned_agents_never_have_empty_output_and_priorities_are_ordered() {
    for name in FIXTURES {
        for p in [
            Purpose::ExamPrep,
            Purpose::QuickReview,
            Purpose::DeepUnderstanding,
            Purpose::LectureNotes,
            Purpose::Custom("anything".into()),
        ] {
            let (pl, doc, a) = plan(name, &p);
            assert!(!pl.agents.is_empty() && pl.agents.len() <= 15);
            for (i, x) in pl.agents.iter().enumerate() {
                assert_eq!(usize::from(x.priority), i + 1);
                assert!(!x.reason.is_empty() && !x.focus.is_empty());
                let input = AgentInput {
                    doc: &doc,
                    chunks: &a.chunks,
                    analysis: &a,
                    purpose: &p,
                    focus: Some(&x.focus),
                };
                let v = run_local(x.name, &input).unwrap_or_default();
                assert!(
                    !is_empty_output(x.name, &v),
                    "{name} {p}: {} planned but empty",
                    x.name
                );
            }
            let mut uniq = names(&pl);
            uniq.sort();
            uniq.dedup();
            assert_eq!(uniq.len(), pl.agents.len(), "duplicate agent");
            let v = serde_json::to_value(&pl).unwrap_or_default();
            assert!(
                schema_errors(ARCHITECT_SCHEMA, &v).is_empty(),
                "{:?}",
                schema_errors(ARCHITECT_SCHEMA, &v)
            );
            let back: Plan = serde_json::from_value(v).unwrap_or(Plan {
                agents: vec![],
                rationale: String::new(),
            });
            assert_eq!(back, pl);
        }
    }
}

#[test]
fn custom_purposes_match_agent_descriptions() {
    let (pl, _, _) = plan(
        "french_revolution",
        &Purpose::Custom("I need the chronology of events and dates".into()),
    );
    assert_eq!(names(&pl)[0], AgentName::Timeline, "{:?}", names(&pl));
    let (pl, _, _) = plan(
        "photosynthesis",
        &Purpose::Custom("a visual map of how the concepts connect".into()),
    );
    assert_eq!(names(&pl)[0], AgentName::Diagram, "{:?}", names(&pl));
    let (pl, _, _) = plan("sorting", &Purpose::Custom("zzz qqq".into()));
    assert_eq!(names(&pl)[0], AgentName::Summary);
    assert!(pl.rationale.contains("balanced"));
}

#[test]
fn content_gates_glossary_examples_and_mnemonics() {
    let text = "Plants grow towards the light in spring. Gardeners water the plants every morning. \
                The soil in the garden stays damp after rain. Birds visit the garden to eat seeds. \
                The garden looks green and full in summer. Visitors walk around the garden paths.";
    let doc = DocumentText {
        title: "Garden".into(),
        pages: vec![PageText {
            number: 1,
            text: text.into(),
            headings: vec![],
        }],
    };
    let chunks = chunk_document(&doc, 800);
    let a = Analysis::new(&doc, &chunks);
    let pl = plan_local(&doc, &a, &Purpose::ExamPrep);
    let n = names(&pl);
    for absent in [
        AgentName::Glossary,
        AgentName::Timeline,
        AgentName::Examples,
        AgentName::Mnemonics,
    ] {
        assert!(
            !n.contains(&absent),
            "{absent} planned for a document without its material: {n:?}"
        );
    }
    assert!(n.contains(&AgentName::Summary));
    let empty = DocumentText::default();
    let a = Analysis::new(&empty, &[]);
    let pl = plan_local(&empty, &a, &Purpose::ExamPrep);
    assert!(pl.agents.is_empty());
    assert!(pl.rationale.contains("No agent"));
}
