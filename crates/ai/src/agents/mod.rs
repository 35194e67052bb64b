//! The study-material agents. Each agent is one folder of data: `mod.rs` (its local,
//! offline implementation over [`crate::nlp::Analysis`]), `prompt.md` (the
//! instruction template an LLM provider fills with [`render_prompt`]) and
//! `schema.json` (the JSON Schema its output must validate against, for both
//! providers). This module owns the registry ([`AgentName`], [`AgentSpec`]), the
//! student's [`Purpose`], the local entry point [`run_local`], prompt rendering and the
//! document [`excerpt`] sent to an LLM. The architect, which plans which agents run,
//! lives in [`architect`].

pub mod architect;
pub mod cloze;
mod common;
pub mod diagram;
pub mod examples;
pub mod faq;
pub mod flashcards;
pub mod glossary;
pub mod key_concepts;
pub mod mnemonics;
pub mod notes;
pub mod outline;
pub mod prerequisites;
pub mod quiz;
pub mod study_plan;
pub mod summary;
pub mod timeline;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::doc::{Chunk, DocumentText};
use crate::nlp::Analysis;

pub use architect::{plan_local, Plan, PlannedAgent, ARCHITECT_PROMPT, ARCHITECT_SCHEMA};
pub use diagram::check_mermaid_flowchart;

/// The fifteen study-material agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentName {
    /// A short extractive abstract plus key points.
    Summary,
    /// Structured notes per section.
    Notes,
    /// The heading hierarchy with pages.
    Outline,
    /// Top concepts with explanations.
    KeyConcepts,
    /// Terms and definitions found in the text.
    Glossary,
    /// Question/answer cards.
    Flashcards,
    /// Multiple-choice questions.
    Quiz,
    /// Fill-in-the-blank sentences.
    Cloze,
    /// A concept map (Mermaid flowchart + nodes and edges).
    Diagram,
    /// Dated events in order.
    Timeline,
    /// Worked examples and illustrations grouped by concept.
    Examples,
    /// Memory aids for lists.
    Mnemonics,
    /// Questions a student would ask, answered from the text.
    Faq,
    /// Study sessions with spaced reviews.
    StudyPlan,
    /// Concepts the text assumes.
    Prerequisites,
}

/// What an agent is and the data that comes with it.
#[derive(Debug)]
pub struct AgentSpec {
    /// The agent.
    pub name: AgentName,
    /// One sentence on what it produces (also matched against custom purposes).
    pub description: &'static str,
    /// The LLM prompt template (`prompt.md`).
    pub prompt: &'static str,
    /// The output JSON Schema (`schema.json`).
    pub schema: &'static str,
    /// Whether its items carry `source` citations.
    pub cites: bool,
}

macro_rules! spec {
    ($name:ident, $dir:literal, $cites:expr, $desc:literal) => {
        AgentSpec {
            name: AgentName::$name,
            description: $desc,
            prompt: include_str!(concat!($dir, "/prompt.md")),
            schema: include_str!(concat!($dir, "/schema.json")),
            cites: $cites,
        }
    };
}

static SPECS: [AgentSpec; 15] = [
    spec!(Summary, "summary", true, "A short summary of the whole document: an abstract of its most central sentences and key points per section."),
    spec!(Notes, "notes", true, "Structured lecture notes by section with bullet points and key terms, for reading and revision."),
    spec!(Outline, "outline", true, "An outline of the document: its heading hierarchy with page numbers and the key terms of each part."),
    spec!(KeyConcepts, "key_concepts", true, "The most important concepts and terms of the document, each explained in one sentence and ranked by importance."),
    spec!(Glossary, "glossary", true, "A glossary of terms and definitions, vocabulary taken from the definitions in the text."),
    spec!(Flashcards, "flashcards", true, "Flashcards for memorising and recall practice: definitions, dates, people and key facts."),
    spec!(Quiz, "quiz", true, "A multiple-choice quiz to test and practise knowledge, with four options, one correct answer and an explanation."),
    spec!(Cloze, "cloze", true, "Fill-in-the-blank cloze exercises: sentences from the text with a key term left out, for active recall."),
    spec!(Diagram, "diagram", true, "A visual concept map diagram showing how the main concepts are connected, as a Mermaid flowchart."),
    spec!(Timeline, "timeline", true, "A chronological timeline of dated events, history and dates in order."),
    spec!(Examples, "examples", true, "Worked examples and illustrations from the text, grouped by the concept they explain, for applying and understanding ideas."),
    spec!(Mnemonics, "mnemonics", true, "Mnemonics and memory aids (acronyms and first-letter phrases) for lists to remember and memorise."),
    spec!(Faq, "faq", true, "Frequently asked questions a student would ask (what, why, how), answered from the text to explain and understand."),
    spec!(StudyPlan, "study_plan", false, "A study plan and schedule: study sessions sized to the document with spaced review sessions and the materials to use."),
    spec!(Prerequisites, "prerequisites", true, "Prerequisites: background concepts the text uses without defining them, to review before starting."),
];

impl AgentName {
    /// All agents in a fixed order.
    pub const ALL: [AgentName; 15] = [
        AgentName::Summary,
        AgentName::Notes,
        AgentName::Outline,
        AgentName::KeyConcepts,
        AgentName::Glossary,
        AgentName::Flashcards,
        AgentName::Quiz,
        AgentName::Cloze,
        AgentName::Diagram,
        AgentName::Timeline,
        AgentName::Examples,
        AgentName::Mnemonics,
        AgentName::Faq,
        AgentName::StudyPlan,
        AgentName::Prerequisites,
    ];

    /// Kebab-case name: "key-concepts".
    pub fn as_str(self) -> &'static str {
        match self {
            AgentName::Summary => "summary",
            AgentName::Notes => "notes",
            AgentName::Outline => "outline",
            AgentName::KeyConcepts => "key-concepts",
            AgentName::Glossary => "glossary",
            AgentName::Flashcards => "flashcards",
            AgentName::Quiz => "quiz",
            AgentName::Cloze => "cloze",
            AgentName::Diagram => "diagram",
            AgentName::Timeline => "timeline",
            AgentName::Examples => "examples",
            AgentName::Mnemonics => "mnemonics",
            AgentName::Faq => "faq",
            AgentName::StudyPlan => "study-plan",
            AgentName::Prerequisites => "prerequisites",
        }
    }

    /// Parses a kebab-case (or snake_case, any case) name.
    pub fn parse(s: &str) -> Option<Self> {
        let n = s.trim().to_ascii_lowercase().replace('_', "-");
        AgentName::ALL.into_iter().find(|a| a.as_str() == n)
    }

    /// Human title: "Key concepts".
    pub fn title(self) -> &'static str {
        match self {
            AgentName::Summary => "Summary",
            AgentName::Notes => "Notes",
            AgentName::Outline => "Outline",
            AgentName::KeyConcepts => "Key concepts",
            AgentName::Glossary => "Glossary",
            AgentName::Flashcards => "Flashcards",
            AgentName::Quiz => "Quiz",
            AgentName::Cloze => "Cloze exercises",
            AgentName::Diagram => "Concept map",
            AgentName::Timeline => "Timeline",
            AgentName::Examples => "Examples",
            AgentName::Mnemonics => "Mnemonics",
            AgentName::Faq => "FAQ",
            AgentName::StudyPlan => "Study plan",
            AgentName::Prerequisites => "Prerequisites",
        }
    }

    /// Description, prompt template and schema of the agent.
    pub fn spec(self) -> &'static AgentSpec {
        &SPECS[self as usize]
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the student studies this document. Serialised as a plain string:
/// "exam-prep", "quick-review", "deep-understanding", "lecture-notes", or the custom text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Purpose {
    /// Preparing for an exam: retrieval practice first.
    ExamPrep,
    /// A fast refresher.
    QuickReview,
    /// Understanding how ideas connect.
    DeepUnderstanding,
    /// Notes to accompany a lecture or reading.
    LectureNotes,
    /// Anything else, as the student wrote it.
    Custom(String),
}

impl Purpose {
    /// Parses a purpose; known names accept any case and "_" or " " for "-", anything
    /// else becomes `Custom` with the trimmed text.
    pub fn parse(s: &str) -> Purpose {
        let n = s.trim().to_lowercase().replace(['_', ' '], "-");
        match n.as_str() {
            "exam-prep" | "exam-preparation" | "exam" => Purpose::ExamPrep,
            "quick-review" | "review" => Purpose::QuickReview,
            "deep-understanding" | "understanding" => Purpose::DeepUnderstanding,
            "lecture-notes" | "notes" => Purpose::LectureNotes,
            _ => Purpose::Custom(s.trim().to_string()),
        }
    }

    /// The kebab-case name, or the custom text.
    pub fn as_str(&self) -> &str {
        match self {
            Purpose::ExamPrep => "exam-prep",
            Purpose::QuickReview => "quick-review",
            Purpose::DeepUnderstanding => "deep-understanding",
            Purpose::LectureNotes => "lecture-notes",
            Purpose::Custom(s) => s,
        }
    }

    /// A sentence for prompts describing what the student needs.
    pub fn describe(&self) -> String {
        match self {
            Purpose::ExamPrep => {
                "exam-prep: the student is preparing for an exam and needs to memorise and test their recall"
                    .into()
            }
            Purpose::QuickReview => {
                "quick-review: the student wants a fast refresher of the essentials".into()
            }
            Purpose::DeepUnderstanding => {
                "deep-understanding: the student wants to understand how the ideas connect and why".into()
            }
            Purpose::LectureNotes => {
                "lecture-notes: the student wants clear notes that follow the document's structure".into()
            }
            Purpose::Custom(s) => format!("custom: {s}"),
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Purpose {
    fn from(s: String) -> Self {
        Purpose::parse(&s)
    }
}

impl From<Purpose> for String {
    fn from(p: Purpose) -> Self {
        p.as_str().to_string()
    }
}

/// Everything an agent reads.
#[derive(Clone, Copy, Debug)]
pub struct AgentInput<'a> {
    /// The document.
    pub doc: &'a DocumentText,
    /// Its chunks (the same ones the analysis was built from).
    pub chunks: &'a [Chunk],
    /// The analysis of the document.
    pub analysis: &'a Analysis,
    /// Why the student studies it.
    pub purpose: &'a Purpose,
    /// What to emphasise (from the architect or the student), if anything.
    pub focus: Option<&'a str>,
}

/// Why a local agent could not produce its material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AgentError {
    /// The document is too short to build anything meaningful.
    #[error("the document has too little text for the {agent} agent: {found} words found, at least {needed} needed")]
    NotEnoughText {
        /// The agent.
        agent: AgentName,
        /// Words needed.
        needed: usize,
        /// Words found.
        found: usize,
    },
    /// The chunks passed in are not the ones the analysis was built from.
    #[error("the chunks do not match the analysis: expected {expected} chunks, got {found}")]
    ChunkMismatch {
        /// Chunks in the analysis.
        expected: usize,
        /// Chunks passed to the agent.
        found: usize,
    },
    /// The output could not be serialised.
    #[error("could not serialise the {agent} output: {message}")]
    Output {
        /// The agent.
        agent: AgentName,
        /// The serialiser's message.
        message: String,
    },
}

/// Fewest words of text any local agent works with.
pub const MIN_WORDS: usize = 25;

/// Runs an agent offline over the analysis. The output validates against the agent's
/// schema; it is an empty list only when the document lacks that material (no
/// dates for a timeline, no lists for mnemonics …).
pub fn run_local(name: AgentName, input: &AgentInput<'_>) -> Result<serde_json::Value, AgentError> {
    let a = input.analysis;
    if input.chunks.len() != a.chunks.len() || input.chunks.iter().zip(&a.chunks).any(|(x, y)| x.id != y.id) {
        return Err(AgentError::ChunkMismatch {
            expected: a.chunks.len(),
            found: input.chunks.len(),
        });
    }
    if a.sentences.is_empty() || a.word_count < MIN_WORDS {
        return Err(AgentError::NotEnoughText {
            agent: name,
            needed: MIN_WORDS,
            found: a.word_count,
        });
    }
    let out = match name {
        AgentName::Summary => common::to_json(name, &summary::build(input)),
        AgentName::Notes => common::to_json(name, &notes::build(input)),
        AgentName::Outline => common::to_json(name, &outline::build(input)),
        AgentName::KeyConcepts => common::to_json(name, &key_concepts::build(input)),
        AgentName::Glossary => common::to_json(name, &glossary::build(input)),
        AgentName::Flashcards => common::to_json(name, &flashcards::build(input)),
        AgentName::Quiz => common::to_json(name, &quiz::build(input)),
        AgentName::Cloze => common::to_json(name, &cloze::build(input)),
        AgentName::Diagram => common::to_json(name, &diagram::build(input)),
        AgentName::Timeline => common::to_json(name, &timeline::build(input)),
        AgentName::Examples => common::to_json(name, &examples::build(input)),
        AgentName::Mnemonics => common::to_json(name, &mnemonics::build(input)),
        AgentName::Faq => common::to_json(name, &faq::build(input)),
        AgentName::StudyPlan => common::to_json(name, &study_plan::build(input)),
        AgentName::Prerequisites => common::to_json(name, &prerequisites::build(input)),
    }?;
    Ok(out)
}

/// Fills an agent's prompt template. Placeholders `{{purpose}}`, `{{focus}}`,
/// `{{title}}` and `{{excerpt}}` are replaced in one pass, so text inside the
/// excerpt that looks like a placeholder is left alone.
pub fn render_prompt(
    name: AgentName,
    purpose: &Purpose,
    focus: Option<&str>,
    title: &str,
    excerpt: &str,
) -> String {
    fill_template(name.spec().prompt, purpose, focus, title, excerpt)
}

pub(crate) fn fill_template(
    template: &str,
    purpose: &Purpose,
    focus: Option<&str>,
    title: &str,
    excerpt: &str,
) -> String {
    let focus_text = match focus.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => f.to_string(),
        None => "none (cover the whole document evenly)".to_string(),
    };
    let purpose_text = purpose.describe();
    let mut out = String::with_capacity(template.len() + excerpt.len() + 64);
    let mut rest = template;
    while let Some(p) = rest.find("{{") {
        out.push_str(&rest[..p]);
        let after = &rest[p..];
        let mut matched = false;
        for (ph, val) in [
            ("{{purpose}}", purpose_text.as_str()),
            ("{{focus}}", focus_text.as_str()),
            ("{{title}}", title),
            ("{{excerpt}}", excerpt),
        ] {
            if let Some(r) = after.strip_prefix(ph) {
                out.push_str(val);
                rest = r;
                matched = true;
                break;
            }
        }
        if !matched {
            out.push_str("{{");
            rest = &after[2..];
        }
    }
    out.push_str(rest);
    out
}

/// The document as LLM input: one line per chunk, "[c3 p.2] text" (whitespace
/// collapsed), at most `max_chars` characters in total. When everything does not fit,
/// chunks are taken evenly spread over the whole document (first and last included)
/// and, if needed, each is shortened at a word boundary with "…".
pub fn excerpt(chunks: &[Chunk], max_chars: usize) -> String {
    let lines: Vec<(String, String)> = chunks
        .iter()
        .map(|c| {
            (
                format!("[{} p.{}] ", c.id, c.page),
                crate::nlp::text::squash_ws(&c.text),
            )
        })
        .collect();
    let len = |l: &(String, String)| l.0.chars().count() + l.1.chars().count();
    let total: usize = lines.iter().map(len).sum::<usize>() + lines.len().saturating_sub(1);
    if total <= max_chars {
        return lines
            .iter()
            .map(|(p, t)| format!("{p}{t}"))
            .collect::<Vec<_>>()
            .join("\n");
    }
    if lines.is_empty() {
        return String::new();
    }
    let avg = (total / lines.len()).max(1);
    let mut k = (max_chars / avg).clamp(1, lines.len());
    // each line needs room for its prefix and some text
    while k > 1 && max_chars / k < 60 {
        k -= 1;
    }
    let picks: Vec<usize> = if k == 1 {
        vec![0]
    } else {
        let n = lines.len();
        let mut v: Vec<usize> = (0..k).map(|i| i * (n - 1) / (k - 1)).collect();
        v.dedup();
        v
    };
    let per_line = (max_chars.saturating_sub(picks.len().saturating_sub(1))) / picks.len();
    let mut out: Vec<String> = Vec::with_capacity(picks.len());
    for &i in &picks {
        let (p, t) = &lines[i];
        let room = per_line.saturating_sub(p.chars().count());
        if room == 0 {
            continue;
        }
        out.push(format!("{p}{}", crate::nlp::text::truncate_chars(t, room)));
    }
    let mut s = out.join("\n");
    if s.chars().count() > max_chars {
        s = s.chars().take(max_chars).collect();
    }
    s
}

/// True when an agent's output has nothing in its main list (no questions, no
/// events, …), i.e. the document gave the agent nothing to work with.
pub fn is_empty_output(name: AgentName, value: &serde_json::Value) -> bool {
    let key = match name {
        AgentName::Summary => "sentences",
        AgentName::Notes => "sections",
        AgentName::Outline => "items",
        AgentName::KeyConcepts => "concepts",
        AgentName::Glossary => "entries",
        AgentName::Flashcards => "cards",
        AgentName::Quiz => "questions",
        AgentName::Cloze => "items",
        AgentName::Diagram => "edges",
        AgentName::Timeline => "events",
        AgentName::Examples => "groups",
        AgentName::Mnemonics => "mnemonics",
        AgentName::Faq => "items",
        AgentName::StudyPlan => "sessions",
        AgentName::Prerequisites => "prerequisites",
    };
    value
        .get(key)
        .and_then(|v| v.as_array())
        .is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_consistent() {
        for a in AgentName::ALL {
            assert_eq!(a.spec().name, a);
            assert_eq!(AgentName::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_value(a).ok(),
                Some(serde_json::Value::String(a.as_str().into()))
            );
            for ph in ["{{purpose}}", "{{focus}}", "{{title}}", "{{excerpt}}"] {
                assert!(a.spec().prompt.contains(ph), "{a} prompt lacks {ph}");
            }
            assert!(
                serde_json::from_str::<serde_json::Value>(a.spec().schema).is_ok(),
                "{a} schema is not JSON"
            );
        }
        assert_eq!(AgentName::parse("key_concepts"), Some(AgentName::KeyConcepts));
        assert_eq!(AgentName::parse("nope"), None);
    }

    #[test]
    fn purpose_parses_and_round_trips() {
        assert_eq!(Purpose::parse("Exam Prep"), Purpose::ExamPrep);
        assert_eq!(Purpose::parse("deep_understanding"), Purpose::DeepUnderstanding);
        assert_eq!(
            Purpose::parse(" learn the dates "),
            Purpose::Custom("learn the dates".into())
        );
        let p: Purpose = serde_json::from_str("\"quick-review\"").unwrap_or(Purpose::ExamPrep);
        assert_eq!(p, Purpose::QuickReview);
        assert_eq!(
            serde_json::to_string(&Purpose::Custom("x y".into()))
                .ok()
                .as_deref(),
            Some("\"x y\"")
        );
        assert_eq!(Purpose::LectureNotes.to_string(), "lecture-notes");
    }

    #[test]
    fn template_substitution_is_single_pass() {
        let out = fill_template(
            "a {{title}} b {{excerpt}} c {{unknown}}",
            &Purpose::ExamPrep,
            None,
            "T {{excerpt}}",
            "E {{title}}",
        );
        assert_eq!(out, "a T {{excerpt}} b E {{title}} c {{unknown}}");
    }

    fn chunk(i: usize, text: &str) -> Chunk {
        Chunk {
            id: format!("c{i}"),
            index: i,
            page: (i / 2) as u32 + 1,
            text: text.into(),
            heading: None,
        }
    }

    #[test]
    fn excerpt_fits_and_spreads() {
        let chunks: Vec<Chunk> = (0..50)
            .map(|i| chunk(i, &format!("Passage {i} {}", "word ".repeat(60))))
            .collect();
        let all = excerpt(&chunks[..3], 10_000);
        assert_eq!(all.lines().count(), 3);
        assert!(all.starts_with("[c0 p.1] Passage 0"));
        let e = excerpt(&chunks, 2000);
        assert!(e.chars().count() <= 2000);
        assert!(e.contains("[c0 p.1]") && e.contains("[c49 p.25]"), "{e}");
        assert!(e.lines().count() >= 4);
        let tiny = excerpt(&chunks, 50);
        assert!(tiny.chars().count() <= 50);
    }
}
