//! The architect: plans which agents run for a document and a purpose. The local
//! planner orders agents by purpose (exam prep puts retrieval practice first, quick
//! review keeps the list short, deep understanding favours notes, examples and the
//! concept map, lecture notes follow the structure; a custom purpose is matched word
//! by word against the agents' descriptions and keywords, else a balanced default),
//! then keeps only agents the document can feed: a timeline needs ≥ 3 dated events,
//! a concept map ≥ 4 related concepts, a glossary ≥ 3 definitions, examples and
//! mnemonics need examples and lists found; finally every kept agent is run once
//! locally and dropped if its output would be empty.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{fill_template, is_empty_output, run_local, AgentInput, AgentName, Purpose};
use crate::doc::DocumentText;
use crate::nlp::text::content_norms;
use crate::nlp::Analysis;

/// The LLM prompt template of the architect.
pub const ARCHITECT_PROMPT: &str = include_str!("prompt.md");
/// The JSON Schema of a [`Plan`].
pub const ARCHITECT_SCHEMA: &str = include_str!("schema.json");

/// Which agents run, in priority order, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Planned agents, priority 1 first.
    pub agents: Vec<PlannedAgent>,
    /// Why this plan.
    pub rationale: String,
}

/// One planned agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAgent {
    /// The agent.
    pub name: AgentName,
    /// 1 = most important.
    pub priority: u8,
    /// What the agent should emphasise.
    pub focus: String,
    /// Why it is in the plan.
    pub reason: String,
}

/// Fills the architect's prompt template (`{{focus}}` is the student's own focus, if any).
pub fn render_architect_prompt(purpose: &Purpose, focus: Option<&str>, title: &str, excerpt: &str) -> String {
    fill_template(ARCHITECT_PROMPT, purpose, focus, title, excerpt)
}

fn order_for(purpose: &Purpose) -> (Vec<AgentName>, Vec<AgentName>) {
    use AgentName::*;
    match purpose {
        Purpose::ExamPrep => (
            vec![
                Quiz,
                Flashcards,
                KeyConcepts,
                Summary,
                Glossary,
                Cloze,
                Faq,
                StudyPlan,
            ],
            vec![
                Timeline,
                Mnemonics,
                Outline,
                Diagram,
                Examples,
                Notes,
                Prerequisites,
            ],
        ),
        Purpose::QuickReview => (
            vec![Summary, KeyConcepts, Flashcards, Outline],
            vec![Timeline, Mnemonics],
        ),
        Purpose::DeepUnderstanding => (
            vec![Notes, KeyConcepts, Examples, Diagram, Prerequisites, Faq],
            vec![Summary, Timeline, Glossary, Outline, Quiz, StudyPlan],
        ),
        Purpose::LectureNotes => (
            vec![Notes, Outline, Summary, Glossary],
            vec![KeyConcepts, Diagram, Timeline, Examples, Faq],
        ),
        Purpose::Custom(_) => (Vec::new(), balanced()),
    }
}

fn balanced() -> Vec<AgentName> {
    use AgentName::*;
    vec![
        Summary,
        KeyConcepts,
        Notes,
        Flashcards,
        Quiz,
        Glossary,
        Timeline,
        Diagram,
        Faq,
    ]
}

fn keywords(name: AgentName) -> &'static str {
    match name {
        AgentName::Summary => "summary summarise summarize overview gist abstract short brief",
        AgentName::Notes => "notes note lecture class read reading revise structure",
        AgentName::Outline => "outline structure headings contents organise organize skim",
        AgentName::KeyConcepts => "concepts key ideas important main terms essentials",
        AgentName::Glossary => "glossary vocabulary definitions define words terminology meaning",
        AgentName::Flashcards => "flashcards cards memorise memorize remember recall drill",
        AgentName::Quiz => "quiz test exam questions practice practise check assess multiple choice",
        AgentName::Cloze => "cloze blanks fill gaps recall",
        AgentName::Diagram => {
            "diagram map visual visualise visualize connections relationships graph picture"
        }
        AgentName::Timeline => "timeline dates chronology history when events order",
        AgentName::Examples => "examples example apply application illustrate practice cases",
        AgentName::Mnemonics => "mnemonics memory remember lists acronyms memorise memorize",
        AgentName::Faq => "questions faq why how explain understand answers",
        AgentName::StudyPlan => "plan schedule sessions time organise organize week days",
        AgentName::Prerequisites => "prerequisites background basics beginner foundations before new",
    }
}

/// Agents whose description or keywords share words with a custom purpose, best match first.
fn match_custom(text: &str) -> Vec<AgentName> {
    let words: HashSet<String> = content_norms(text).into_iter().collect();
    let mut scored: Vec<(usize, AgentName)> = AgentName::ALL
        .into_iter()
        .map(|a| {
            let vocab: HashSet<String> = content_norms(&format!("{} {}", keywords(a), a.spec().description))
                .into_iter()
                .collect();
            (words.intersection(&vocab).count(), a)
        })
        .filter(|x| x.0 > 0)
        .collect();
    scored.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    scored.into_iter().map(|x| x.1).collect()
}

/// Why the document can (or cannot) feed an agent; `None` when it can.
fn document_gap(name: AgentName, a: &Analysis) -> Option<String> {
    match name {
        AgentName::Timeline if a.dated_event_count() < 3 => Some(format!(
            "timeline skipped: {} dated event(s), at least 3 needed",
            a.dated_event_count()
        )),
        AgentName::Diagram if a.cooccurrence.related_concepts() < 4 => Some(format!(
            "diagram skipped: {} related concepts, at least 4 needed",
            a.cooccurrence.related_concepts()
        )),
        AgentName::Glossary if a.definitions.len() < 3 => Some(format!(
            "glossary skipped: {} definition(s) found, at least 3 needed",
            a.definitions.len()
        )),
        AgentName::Examples if a.examples.is_empty() => {
            Some("examples skipped: no examples found in the text".into())
        }
        AgentName::Mnemonics if !a.lists.iter().any(|l| (3..=7).contains(&l.items.len())) => {
            Some("mnemonics skipped: no lists of 3–7 items found".into())
        }
        _ => None,
    }
}

fn top_terms(a: &Analysis, n: usize) -> Vec<String> {
    a.keyphrases
        .iter()
        .take(n)
        .map(|&t| a.terms[t].text.clone())
        .collect()
}

fn focus_for(name: AgentName, a: &Analysis) -> String {
    let top = top_terms(a, 5).join(", ");
    match name {
        AgentName::Timeline => {
            let keys: Vec<&crate::nlp::DateMention> = a.dates.iter().collect();
            let first = keys
                .iter()
                .min_by_key(|d| d.expr.key())
                .map(|d| d.expr.text.clone())
                .unwrap_or_default();
            let last = keys
                .iter()
                .max_by_key(|d| d.expr.key())
                .map(|d| d.expr.text.clone())
                .unwrap_or_default();
            format!("{} dated events from {first} to {last}", a.dated_event_count())
        }
        AgentName::Glossary => {
            let ex: Vec<&str> = a.definitions.iter().take(4).map(|d| d.term.as_str()).collect();
            format!(
                "{} terms defined in the text, e.g. {}",
                a.definitions.len(),
                ex.join(", ")
            )
        }
        AgentName::Mnemonics => {
            let topics: Vec<String> = a
                .lists
                .iter()
                .take(3)
                .map(|l| crate::nlp::text::truncate_chars(&l.intro, 60))
                .collect();
            format!("Lists: {}", topics.join("; "))
        }
        AgentName::Outline | AgentName::Notes | AgentName::StudyPlan => {
            format!(
                "{} sections over {} pages; key terms: {top}",
                a.sections.len(),
                a.page_count
            )
        }
        AgentName::Examples => format!("{} examples in the text; key terms: {top}", a.examples.len()),
        _ => format!("Emphasise: {top}"),
    }
}

fn reason_for(name: AgentName, purpose: &Purpose, primary: bool) -> String {
    let why = match name {
        AgentName::Summary => "gives the big picture first",
        AgentName::Notes => "organises the content section by section",
        AgentName::Outline => "shows the structure at a glance",
        AgentName::KeyConcepts => "names the ideas that matter most",
        AgentName::Glossary => "collects the definitions the text gives",
        AgentName::Flashcards => "supports spaced recall practice",
        AgentName::Quiz => "tests recall with feedback",
        AgentName::Cloze => "practises active recall of key terms in context",
        AgentName::Diagram => "shows how the main concepts connect",
        AgentName::Timeline => "puts the dated events in order",
        AgentName::Examples => "links ideas to the text's own examples",
        AgentName::Mnemonics => "helps memorise the lists in the text",
        AgentName::Faq => "answers the questions a student is likely to ask",
        AgentName::StudyPlan => "turns the material into timed, spaced sessions",
        AgentName::Prerequisites => "flags background knowledge the text assumes",
    };
    let fit = if primary {
        format!("core for {purpose}")
    } else {
        format!("useful extra for {purpose}")
    };
    format!("{} — {fit}.", crate::nlp::text::capitalize_first(why))
}

/// Plans the agents for a document and purpose without any network call.
pub fn plan_local(doc: &DocumentText, analysis: &Analysis, purpose: &Purpose) -> Plan {
    let a = analysis;
    let (mut primary, secondary) = order_for(purpose);
    let mut matched_note = String::new();
    if let Purpose::Custom(text) = purpose {
        let m = match_custom(text);
        matched_note = if m.is_empty() {
            " No agent matched the custom purpose's words, so a balanced set is used.".to_string()
        } else {
            format!(
                " The custom purpose matched: {}.",
                m.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
            )
        };
        primary = m;
    }
    let mut order: Vec<(AgentName, bool)> = Vec::new();
    for n in primary {
        if !order.iter().any(|x| x.0 == n) {
            order.push((n, true));
        }
    }
    for n in secondary {
        if !order.iter().any(|x| x.0 == n) {
            order.push((n, false));
        }
    }
    let mut skipped: Vec<String> = Vec::new();
    let mut agents: Vec<PlannedAgent> = Vec::new();
    let input = AgentInput {
        doc,
        chunks: &a.chunks,
        analysis: a,
        purpose,
        focus: None,
    };
    for (name, primary) in order {
        if agents.len() >= 15 {
            break;
        }
        if let Some(gap) = document_gap(name, a) {
            skipped.push(gap);
            continue;
        }
        match run_local(name, &input) {
            Ok(v) if !is_empty_output(name, &v) => {}
            Ok(_) => {
                skipped.push(format!(
                    "{name} skipped: the document gives it nothing to work with"
                ));
                continue;
            }
            Err(e) => {
                skipped.push(format!("{name} skipped: {e}"));
                continue;
            }
        }
        agents.push(PlannedAgent {
            name,
            priority: agents.len() as u8 + 1,
            focus: focus_for(name, a),
            reason: reason_for(name, purpose, primary),
        });
    }
    let mut rationale = format!(
        "Purpose {purpose}: {}. The document has {} page(s), about {} words, {} section(s), {} definition(s), {} dated event(s), {} example(s) and {} list(s).",
        match purpose {
            Purpose::ExamPrep => "retrieval practice first (quiz, flashcards, cloze), then the material to learn from",
            Purpose::QuickReview => "a short set for a fast refresher",
            Purpose::DeepUnderstanding => "explanations, examples and connections first",
            Purpose::LectureNotes => "materials that follow the document's structure",
            Purpose::Custom(_) => "agents chosen by the words of the purpose, then a balanced set",
        },
        a.page_count,
        a.word_count,
        a.sections.len(),
        a.definitions.len(),
        a.dated_event_count(),
        a.examples.len(),
        a.lists.len()
    );
    rationale.push_str(&matched_note);
    if !skipped.is_empty() {
        rationale.push_str(" Not planned: ");
        rationale.push_str(&skipped.join("; "));
        rationale.push('.');
    }
    if agents.is_empty() {
        rationale.push_str(" No agent can produce useful material from this document.");
    }
    Plan { agents, rationale }
}
