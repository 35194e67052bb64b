//! Every local agent on every fixture: schema validity plus the properties each
//! material must have (quiz answers in their chunk, same-kind distractors, glossary
//! terms in their chunk, valid citations, sorted timeline, reconstructible cloze,
//! valid Mermaid, study plan covering each section once, …).

mod common;

use common::{chunk_document, load, norm, schema_errors, synthetic, without_headings, FIXTURES};
use learnflow_ai::agents::{
    check_mermaid_flowchart, is_empty_output, run_local, AgentError, AgentInput, AgentName, Purpose,
};
use learnflow_ai::doc::{Chunk, DocumentText, PageText};
use learnflow_ai::nlp::{Analysis, TermKind};
use serde_json::Value;

struct Fx {
    name: String,
    doc: DocumentText,
    chunks: Vec<Chunk>,
    a: Analysis,
}

fn fx(name: &str) -> Fx {
    let doc = if name == "photosynthesis-noheadings" {
        without_headings(&load("photosynthesis"))
    } else {
        load(name)
    };
    let chunks = chunk_document(&doc, 800);
    let a = Analysis::new(&doc, &chunks);
    Fx {
        name: name.to_string(),
        doc,
        chunks,
        a,
    }
}

fn all() -> Vec<Fx> {
    let mut v: Vec<Fx> = FIXTURES.iter().map(|n| fx(n)).collect();
    v.push(fx("photosynthesis-noheadings"));
    v
}

fn run(f: &Fx, agent: AgentName, purpose: &Purpose) -> Value {
    let input = AgentInput {
        doc: &f.doc,
        chunks: &f.chunks,
        analysis: &f.a,
        purpose,
        focus: None,
    };
    match run_local(agent, &input) {
        Ok(v) => v,
        Err(e) => panic!("{} on {}: {e}", agent, f.name),
    }
}

fn chunk_of<'a>(f: &'a Fx, src: &Value) -> &'a Chunk {
    let id = src["chunk"].as_str().unwrap_or_default();
    let c = f
        .chunks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{}: unknown chunk {id}", f.name));
    assert_eq!(
        src["page"].as_u64(),
        Some(u64::from(c.page)),
        "{}: page of {id}",
        f.name
    );
    c
}

fn arr<'v>(v: &'v Value, key: &str) -> &'v Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array {key} in {v}"))
}

#[test]
fn schemas_are_valid_and_closed() {
    let mut schemas: Vec<(String, &str)> = AgentName::ALL
        .iter()
        .map(|a| (a.to_string(), a.spec().schema))
        .collect();
    schemas.push(("architect".into(), learnflow_ai::agents::ARCHITECT_SCHEMA));
    for (name, s) in schemas {
        let v: Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            v["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert!(
            jsonschema::meta::validate(&v).is_ok(),
            "{name} is not a valid draft 2020-12 schema"
        );
        // every object schema is closed and says what it requires
        fn walk(name: &str, v: &Value) {
            if let Some(o) = v.as_object() {
                if o.contains_key("properties") {
                    assert_eq!(
                        o.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{name}: open object {v}"
                    );
                    assert!(o.contains_key("required"), "{name}: object without required {v}");
                }
                o.values().for_each(|x| walk(name, x));
            } else if let Some(a) = v.as_array() {
                a.iter().for_each(|x| walk(name, x));
            }
        }
        walk(&name, &v);
    }
}

#[test]
fn every_agent_validates_on_every_fixture_and_purpose() {
    let purposes = [
        Purpose::ExamPrep,
        Purpose::QuickReview,
        Purpose::DeepUnderstanding,
        Purpose::LectureNotes,
        Purpose::Custom("visual overview".into()),
    ];
    for f in all() {
        for p in &purposes {
            for agent in AgentName::ALL {
                let v = run(&f, agent, p);
                let errs = schema_errors(agent.spec().schema, &v);
                assert!(errs.is_empty(), "{agent} on {} ({p}): {errs:?}\n{v}", f.name);
                // a normal document gives every agent material, except a timeline without dates
                let may_be_empty = agent == AgentName::Timeline && f.a.dates.is_empty();
                assert!(
                    may_be_empty || !is_empty_output(agent, &v),
                    "{agent} empty on {}",
                    f.name
                );
            }
        }
    }
}

#[test]
fn synthetic_document_validates_too() {
    let doc = synthetic(12);
    let chunks = chunk_document(&doc, 800);
    let f = Fx {
        name: "synthetic".into(),
        a: Analysis::new(&doc, &chunks),
        doc,
        chunks,
    };
    for agent in AgentName::ALL {
        let v = run(&f, agent, &Purpose::ExamPrep);
        let errs = schema_errors(agent.spec().schema, &v);
        assert!(errs.is_empty(), "{agent}: {errs:?}");
    }
}

#[test]
fn citations_point_to_existing_chunks_with_matching_pages() {
    fn walk(f: &Fx, v: &Value, n: &mut usize) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    if matches!(k.as_str(), "source" | "first_use" | "defined_at") {
                        chunk_of(f, x);
                        *n += 1;
                    } else {
                        walk(f, x, n);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(f, x, n)),
            _ => {}
        }
    }
    for f in all() {
        for agent in AgentName::ALL {
            let v = run(&f, agent, &Purpose::ExamPrep);
            let mut n = 0;
            walk(&f, &v, &mut n);
            if agent.spec().cites && !is_empty_output(agent, &v) {
                assert!(n > 0, "{agent} on {} cites nothing", f.name);
            }
        }
    }
}

#[test]
fn quiz_answers_are_in_their_chunk_and_distractors_are_of_the_same_kind() {
    for f in all() {
        let v = run(&f, AgentName::Quiz, &Purpose::ExamPrep);
        let qs = arr(&v, "questions");
        assert!(qs.len() >= 5, "{}: only {} questions", f.name, qs.len());
        let mut kinds = std::collections::HashSet::new();
        for q in qs {
            let opts: Vec<&str> = arr(q, "options").iter().filter_map(Value::as_str).collect();
            assert_eq!(opts.len(), 4);
            let ci = q["correct_index"].as_u64().unwrap_or(9) as usize;
            let answer = opts[ci];
            let chunk = chunk_of(&f, &q["source"]);
            assert!(
                norm(&chunk.text).contains(&norm(answer)),
                "{}: answer {answer:?} not in {}",
                f.name,
                chunk.id
            );
            // exactly one correct option: all four differ (case-insensitively)
            let lower: std::collections::HashSet<String> = opts.iter().map(|o| o.to_lowercase()).collect();
            assert_eq!(lower.len(), 4, "{}: duplicate options {opts:?}", f.name);
            let stem = q["question"].as_str().unwrap_or_default();
            let kind = q["answer_kind"].as_str().unwrap_or_default();
            kinds.insert(kind.to_string());
            for (i, d) in opts.iter().enumerate() {
                if i == ci {
                    continue;
                }
                assert!(
                    !norm(stem).contains(&norm(d)),
                    "{}: distractor {d:?} occurs in {stem:?}",
                    f.name
                );
                assert!(
                    !norm(d).contains(&norm(answer)) && !norm(answer).contains(&norm(d)),
                    "{}: {d:?} vs {answer:?}",
                    f.name
                );
                let term =
                    f.a.terms
                        .iter()
                        .find(|t| t.text == *d)
                        .unwrap_or_else(|| panic!("{}: distractor {d:?} is not a term", f.name));
                assert_eq!(
                    term.kind.as_str(),
                    kind,
                    "{}: distractor {d:?} of kind {:?} for a {kind}",
                    f.name,
                    term.kind
                );
            }
            // the explanation quotes the source sentence
            let expl = q["explanation"].as_str().unwrap_or_default();
            assert!(expl.contains(answer), "{}: {expl}", f.name);
            // the correct position varies
        }
        let positions: std::collections::HashSet<u64> =
            qs.iter().filter_map(|q| q["correct_index"].as_u64()).collect();
        assert!(
            positions.len() >= 2,
            "{}: correct answer always at the same position",
            f.name
        );
        if f.name == "french_revolution" {
            assert!(kinds.len() >= 4, "history quiz should mix kinds, got {kinds:?}");
            assert!(kinds.contains("year") || kinds.contains("date"), "{kinds:?}");
        }
    }
}

#[test]
fn glossary_terms_occur_in_their_chunk() {
    for f in all() {
        let v = run(&f, AgentName::Glossary, &Purpose::LectureNotes);
        let entries = arr(&v, "entries");
        assert!(entries.len() >= 5, "{}: {} entries", f.name, entries.len());
        let mut prev = String::new();
        for e in entries {
            let term = e["term"].as_str().unwrap_or_default();
            let c = chunk_of(&f, &e["source"]);
            assert!(
                c.text.to_lowercase().contains(&term.to_lowercase()),
                "{}: {term:?} not in {}",
                f.name,
                c.id
            );
            assert!(term.to_lowercase() >= prev, "glossary not sorted");
            prev = term.to_lowercase();
            assert!(
                e["definition"]
                    .as_str()
                    .unwrap_or_default()
                    .split_whitespace()
                    .count()
                    >= 3
            );
        }
    }
}

#[test]
fn glossary_only_uses_definition_sentences() {
    let f = fx("photosynthesis");
    let v = run(&f, AgentName::Glossary, &Purpose::ExamPrep);
    let terms: Vec<String> = arr(&v, "entries")
        .iter()
        .filter_map(|e| e["term"].as_str())
        .map(str::to_lowercase)
        .collect();
    for expected in [
        "photosynthesis",
        "chlorophyll",
        "stroma",
        "calvin cycle",
        "limiting factor",
    ] {
        assert!(
            terms.iter().any(|t| t == expected),
            "missing {expected} in {terms:?}"
        );
    }
    // "oxygen" is used a lot but never defined
    assert!(!terms.iter().any(|t| t == "oxygen"));
}

#[test]
fn flashcards_faq_and_timeline_cite_real_passages() {
    for f in all() {
        for (agent, key) in [
            (AgentName::Flashcards, "cards"),
            (AgentName::Faq, "items"),
            (AgentName::Timeline, "events"),
        ] {
            let v = run(&f, agent, &Purpose::ExamPrep);
            for item in arr(&v, key) {
                chunk_of(&f, &item["source"]);
            }
        }
        let v = run(&f, AgentName::Faq, &Purpose::ExamPrep);
        for item in arr(&v, "items") {
            let c = chunk_of(&f, &item["source"]);
            // an answer's first sentence comes from the cited passage
            let ans = item["answer"].as_str().unwrap_or_default();
            let first: String = ans.chars().take(40).collect();
            assert!(
                norm(&c.text).contains(&norm(&first)),
                "{}: faq answer not from {}: {ans}",
                f.name,
                c.id
            );
            assert!(item["question"].as_str().unwrap_or_default().ends_with('?'));
        }
    }
}

#[test]
fn timeline_is_sorted_and_dated_only_when_the_document_has_dates() {
    let h = fx("french_revolution");
    let v = run(&h, AgentName::Timeline, &Purpose::ExamPrep);
    let ev = arr(&v, "events");
    assert!(ev.len() >= 20, "history timeline has {} events", ev.len());
    let keys: Vec<i64> = ev.iter().filter_map(|e| e["sort_key"].as_i64()).collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "not sorted: {keys:?}");
    for e in ev {
        let c = chunk_of(&h, &e["source"]);
        assert!(
            c.text.contains(e["date"].as_str().unwrap_or("?")),
            "date not in its chunk"
        );
    }
    let bastille = ev
        .iter()
        .find(|e| e["date"] == "14 July 1789")
        .map(|e| e["sort_key"].as_i64());
    assert_eq!(bastille, Some(Some(17890714)));
    let p = fx("photosynthesis");
    assert!(arr(&run(&p, AgentName::Timeline, &Purpose::ExamPrep), "events").is_empty());
}

#[test]
fn cloze_answers_rebuild_a_sentence_of_the_chunk() {
    for f in all() {
        let v = run(&f, AgentName::Cloze, &Purpose::ExamPrep);
        assert_eq!(v["blank"], "____");
        let items = arr(&v, "items");
        assert!(items.len() >= 5, "{}: {} cloze items", f.name, items.len());
        for it in items {
            let text = it["text"].as_str().unwrap_or_default();
            let answer = it["answer"].as_str().unwrap_or_default();
            assert_eq!(text.matches("____").count(), 1, "{text}");
            let c = chunk_of(&f, &it["source"]);
            let rebuilt = text.replacen("____", answer, 1);
            let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                squash(&c.text).contains(&squash(&rebuilt)),
                "{}: {rebuilt:?} not in {}",
                f.name,
                c.id
            );
            assert!(
                !norm(text).contains(&norm(answer)),
                "answer still visible: {text}"
            );
        }
    }
}

#[test]
fn diagram_is_valid_mermaid_and_matches_its_json() {
    for f in all() {
        let v = run(&f, AgentName::Diagram, &Purpose::DeepUnderstanding);
        let m = v["mermaid"].as_str().unwrap_or_default();
        assert_eq!(check_mermaid_flowchart(m), Ok(()), "{}:\n{m}", f.name);
        let nodes = arr(&v, "nodes");
        let edges = arr(&v, "edges");
        assert!(
            nodes.len() >= 4 && edges.len() >= 3,
            "{}: {} nodes {} edges",
            f.name,
            nodes.len(),
            edges.len()
        );
        let ids: Vec<&str> = nodes.iter().filter_map(|n| n["id"].as_str()).collect();
        for n in nodes {
            let line = format!(
                "{}[\"{}\"]",
                n["id"].as_str().unwrap_or_default(),
                n["label"].as_str().unwrap_or_default()
            );
            assert!(m.contains(&line), "{line} missing");
        }
        for e in edges {
            assert!(
                ids.contains(&e["from"].as_str().unwrap_or("?"))
                    && ids.contains(&e["to"].as_str().unwrap_or("?"))
            );
            assert_ne!(e["from"], e["to"]);
        }
        // every node is connected
        for id in &ids {
            assert!(
                edges.iter().any(|e| e["from"] == *id || e["to"] == *id),
                "{}: node {id} has no edge",
                f.name
            );
        }
    }
}

#[test]
fn study_plan_covers_every_section_exactly_once() {
    for f in all() {
        let exam = run(&f, AgentName::StudyPlan, &Purpose::ExamPrep);
        let mut planned: Vec<String> = arr(&exam, "sessions")
            .iter()
            .filter(|s| s["kind"] == "learn")
            .flat_map(|s| {
                arr(s, "sections")
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut expected: Vec<String> = f.a.sections.iter().map(|s| s.title.clone()).collect();
        planned.sort();
        expected.sort();
        assert_eq!(planned, expected, "{}", f.name);
        let reviews: Vec<u64> = arr(&exam, "sessions")
            .iter()
            .filter(|s| s["kind"] == "review")
            .filter_map(|s| s["day"].as_u64())
            .collect();
        assert_eq!(reviews.len(), 3);
        let quick = run(&f, AgentName::StudyPlan, &Purpose::QuickReview);
        assert!(arr(&quick, "sessions").len() < arr(&exam, "sessions").len());
        let total: u64 = arr(&exam, "sessions")
            .iter()
            .filter_map(|s| s["minutes"].as_u64())
            .sum();
        assert_eq!(exam["total_minutes"].as_u64(), Some(total));
    }
    // a 50-page document needs several learning sessions
    let doc = synthetic(50);
    let chunks = chunk_document(&doc, 800);
    let f = Fx {
        name: "synthetic".into(),
        a: Analysis::new(&doc, &chunks),
        doc,
        chunks,
    };
    let v = run(&f, AgentName::StudyPlan, &Purpose::ExamPrep);
    let learn = arr(&v, "sessions")
        .iter()
        .filter(|s| s["kind"] == "learn")
        .count();
    assert!((4..=6).contains(&learn), "{learn} learn sessions for 50 pages");
}

#[test]
fn mnemonics_spell_their_items() {
    for f in all() {
        let v = run(&f, AgentName::Mnemonics, &Purpose::ExamPrep);
        assert!(v["note"].as_str().unwrap_or_default().contains("invented"));
        for m in arr(&v, "mnemonics") {
            let items: Vec<&str> = arr(m, "items").iter().filter_map(Value::as_str).collect();
            let letters: String = items
                .iter()
                .filter_map(|i| i.chars().next())
                .map(|c| c.to_ascii_uppercase())
                .collect();
            assert_eq!(m["acronym"].as_str(), Some(letters.as_str()));
            let phrase_letters: String = m["phrase"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .map(|c| c.to_ascii_uppercase())
                .collect();
            assert_eq!(phrase_letters, letters);
            let c = chunk_of(&f, &m["source"]);
            for it in items {
                assert!(
                    norm(&c.text).contains(&norm(it)),
                    "{}: item {it:?} not in {}",
                    f.name,
                    c.id
                );
            }
        }
    }
    let p = fx("photosynthesis");
    let v = run(&p, AgentName::Mnemonics, &Purpose::ExamPrep);
    assert!(
        arr(&v, "mnemonics").iter().any(|m| m["acronym"] == "CRR"),
        "Calvin cycle phases: carbon fixation, reduction, regeneration"
    );
}

#[test]
fn summary_is_extractive_sized_and_in_order() {
    for f in all() {
        let v = run(&f, AgentName::Summary, &Purpose::ExamPrep);
        let s = arr(&v, "sentences");
        assert!((3..=8).contains(&s.len()), "{}: {} sentences", f.name, s.len());
        let idx: Vec<usize> = s.iter().map(|x| chunk_of(&f, &x["source"]).index).collect();
        assert!(
            idx.windows(2).all(|w| w[0] <= w[1]),
            "{}: not in document order",
            f.name
        );
        for x in s {
            let c = chunk_of(&f, &x["source"]);
            assert!(norm(&c.text).contains(&norm(x["text"].as_str().unwrap_or("?"))));
        }
        let quick = run(&f, AgentName::Summary, &Purpose::QuickReview);
        assert!(arr(&quick, "sentences").len() <= 5);
    }
}

#[test]
fn notes_and_outline_follow_the_headings() {
    let f = fx("photosynthesis");
    let o = run(&f, AgentName::Outline, &Purpose::LectureNotes);
    assert_eq!(o["derived"], false);
    let items = arr(&o, "items");
    assert_eq!(
        items.len(),
        f.doc.pages.iter().map(|p| p.headings.len()).sum::<usize>()
    );
    let plant = items
        .iter()
        .find(|i| i["title"] == "1.1 Plant cells")
        .map(|i| i["level"].as_u64());
    assert_eq!(plant, Some(Some(2)));
    let n = run(&f, AgentName::Notes, &Purpose::LectureNotes);
    assert_eq!(arr(&n, "sections").len(), f.a.sections.len());
    let nh = fx("photosynthesis-noheadings");
    let o = run(&nh, AgentName::Outline, &Purpose::LectureNotes);
    assert_eq!(o["derived"], true);
    assert!(arr(&o, "items").len() >= 2, "derived outline: {o}");
}

#[test]
fn key_concepts_are_ranked_and_explained() {
    let f = fx("photosynthesis");
    let v = run(&f, AgentName::KeyConcepts, &Purpose::ExamPrep);
    let c = arr(&v, "concepts");
    assert!(c.len() >= 10);
    let imp: Vec<f64> = c.iter().filter_map(|x| x["importance"].as_f64()).collect();
    assert!(imp.windows(2).all(|w| w[0] >= w[1]));
    let terms: Vec<&str> = c.iter().filter_map(|x| x["term"].as_str()).collect();
    assert!(
        terms
            .iter()
            .take(5)
            .any(|t| t.eq_ignore_ascii_case("photosynthesis")),
        "{terms:?}"
    );
    for x in c {
        let ch = chunk_of(&f, &x["source"]);
        assert!(norm(&ch.text).contains(
            &norm(x["term"].as_str().unwrap_or("?"))
                .trim_end_matches('s')
                .to_string()
        ));
    }
}

#[test]
fn prerequisites_and_examples_are_grounded() {
    let f = fx("sorting");
    let v = run(&f, AgentName::Prerequisites, &Purpose::DeepUnderstanding);
    let p = arr(&v, "prerequisites");
    assert!(!p.is_empty());
    for x in p {
        let c = chunk_of(&f, &x["first_use"]);
        assert!(norm(&c.text).contains(
            &norm(x["context"].as_str().unwrap_or("?"))
                .trim_end_matches('…')
                .to_string()
        ));
        if x["reason"] == "used-before-definition" {
            let d = chunk_of(&f, &x["defined_at"]);
            assert!(d.index > c.index);
        }
    }
    let e = run(&f, AgentName::Examples, &Purpose::DeepUnderstanding);
    let n: usize = arr(&e, "groups").iter().map(|g| arr(g, "examples").len()).sum();
    assert!(n >= 5, "sorting has many examples, found {n}");
}

#[test]
fn tiny_documents_and_mismatched_chunks_are_errors() {
    let doc = DocumentText {
        title: "t".into(),
        pages: vec![PageText {
            number: 1,
            text: "Too short.".into(),
            headings: vec![],
        }],
    };
    let chunks = chunk_document(&doc, 800);
    let a = Analysis::new(&doc, &chunks);
    let input = AgentInput {
        doc: &doc,
        chunks: &chunks,
        analysis: &a,
        purpose: &Purpose::ExamPrep,
        focus: None,
    };
    for agent in AgentName::ALL {
        assert!(matches!(
            run_local(agent, &input),
            Err(AgentError::NotEnoughText { .. })
        ));
    }
    let f = fx("sorting");
    let input = AgentInput {
        doc: &f.doc,
        chunks: &f.chunks[1..],
        analysis: &f.a,
        purpose: &Purpose::ExamPrep,
        focus: None,
    };
    let err = run_local(AgentName::Quiz, &input).err();
    assert!(matches!(err, Some(AgentError::ChunkMismatch { .. })));
    assert!(err
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("do not match"));
    let empty = DocumentText::default();
    let a = Analysis::new(&empty, &[]);
    let input = AgentInput {
        doc: &empty,
        chunks: &[],
        analysis: &a,
        purpose: &Purpose::ExamPrep,
        focus: None,
    };
    assert!(matches!(
        run_local(AgentName::Summary, &input),
        Err(AgentError::NotEnoughText { found: 0, .. })
    ));
}

#[test]
fn outputs_are_deterministic_and_focus_changes_emphasis() {
    let f = fx("french_revolution");
    for agent in AgentName::ALL {
        assert_eq!(
            run(&f, agent, &Purpose::ExamPrep),
            run(&fx("french_revolution"), agent, &Purpose::ExamPrep)
        );
    }
    let input = AgentInput {
        doc: &f.doc,
        chunks: &f.chunks,
        analysis: &f.a,
        purpose: &Purpose::ExamPrep,
        focus: Some("Napoleon Bonaparte Directory"),
    };
    let v = run_local(AgentName::KeyConcepts, &input).unwrap_or_default();
    let top: Vec<&str> = arr(&v, "concepts")
        .iter()
        .take(5)
        .filter_map(|c| c["term"].as_str())
        .collect();
    assert!(
        top.iter()
            .any(|t| t.contains("Napoleon") || t.contains("Directory")),
        "{top:?}"
    );
}

#[test]
fn term_kinds_group_names_dates_and_concepts() {
    let f = fx("french_revolution");
    let kind = |text: &str| f.a.terms.iter().find(|t| t.text == text).map(|t| t.kind);
    assert_eq!(kind("Louis XVI"), Some(TermKind::Person));
    assert_eq!(kind("Maximilien Robespierre"), Some(TermKind::Person));
    assert_eq!(kind("Paris"), Some(TermKind::Place));
    assert_eq!(kind("National Assembly"), Some(TermKind::Organization));
    assert_eq!(kind("Reign of Terror"), Some(TermKind::Event));
    assert_eq!(kind("1789"), Some(TermKind::Year));
    assert_eq!(kind("14 July 1789"), Some(TermKind::Date));
    assert_eq!(kind("constitutional monarchy"), Some(TermKind::Concept));
    // nationality adjectives are not names
    assert_eq!(kind("French"), None);
}
