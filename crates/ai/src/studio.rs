//! The studio: agents run on a provider. It builds each task (prompt, schema, the
//! structured input for the offline provider), adds the checks beyond the schema
//! (every citation names a real chunk on the right page; the diagram is valid
//! Mermaid; a quiz question has exactly one right answer among distinct options), and
//! offers tools to providers that can call them (the architect's `get_outline`, the
//! question answerer's `search_document`).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::agents::{self, AgentName, Plan, Purpose};
use crate::answer::Turn;
use crate::doc::{Chunk, Citation, DocumentText};
use crate::nlp::Analysis;
use crate::provider::local::LocalTask;
use crate::provider::{ChatProvider, Message, ToolSpec};
use crate::record::CallRecord;
use crate::runner::{run_structured, Check, StructuredTask, TaskError, TaskOutcome, ToolBox};
use crate::schema::Validator;

/// How much document text an agent prompt carries.
pub const EXCERPT_CHARS: usize = 12_000;

const SYSTEM: &str = "You are a careful teaching assistant that turns a student's document into study \
material. Use only the document. Cite sources with the chunk ids shown as [cN p.P]. Answer with JSON only.";

/// A document ready for the agents: its text, chunks and analysis.
pub struct StudyContext {
    /// The text.
    pub doc: Arc<DocumentText>,
    /// The chunks.
    pub chunks: Arc<Vec<Chunk>>,
    /// The offline analysis.
    pub analysis: Arc<Analysis>,
    pages: HashMap<String, u32>,
}

impl StudyContext {
    /// Analyses a document (CPU work: call it from a blocking thread for large ones).
    pub fn new(doc: DocumentText, chunks: Vec<Chunk>) -> Self {
        let analysis = Analysis::new(&doc, &chunks);
        let pages = chunks.iter().map(|c| (c.id.clone(), c.page)).collect();
        StudyContext {
            doc: Arc::new(doc),
            chunks: Arc::new(chunks),
            analysis: Arc::new(analysis),
            pages,
        }
    }

    /// Checks every `{"chunk", "page"}` object in `v` against the document.
    pub fn check_citations(&self, v: &Value) -> Result<(), String> {
        check_citations(&self.pages, v, "")
    }
}

/// Checks every `{"chunk", "page"}` object in `v` against `pages` (chunk id → page).
pub fn check_citations(pages: &HashMap<String, u32>, v: &Value, path: &str) -> Result<(), String> {
    match v {
        Value::Object(map) => {
            if let (Some(Value::String(chunk)), Some(page)) = (map.get("chunk"), map.get("page")) {
                let page = page.as_u64().unwrap_or(0);
                match pages.get(chunk) {
                    None => {
                        return Err(format!(
                            "{path}: cites chunk '{chunk}', which is not in the document"
                        ))
                    }
                    Some(p) if u64::from(*p) != page => {
                        return Err(format!("{path}: chunk '{chunk}' is on page {p}, not page {page}"))
                    }
                    Some(_) => {}
                }
            }
            for (k, x) in map {
                check_citations(pages, x, &format!("{path}/{k}"))?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                check_citations(pages, x, &format!("{path}/{i}"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn validator(schema: &str) -> Result<Arc<Validator>, TaskError> {
    Validator::from_text(schema)
        .map(Arc::new)
        .map_err(|e| TaskError::Invalid {
            errors: format!("built-in schema is broken: {e}"),
            attempts: 0,
            calls: Vec::new(),
        })
}

/// The agent-specific checks beyond schema and citations.
pub fn agent_check(agent: AgentName, v: &Value) -> Result<(), String> {
    match agent {
        AgentName::Diagram => {
            let src = v.get("mermaid").and_then(Value::as_str).unwrap_or_default();
            agents::check_mermaid_flowchart(src).map_err(|e| format!("/mermaid: {e}"))
        }
        AgentName::Quiz => check_quiz(v),
        _ => Ok(()),
    }
}

/// Every quiz question has distinct options and a right answer among them.
fn check_quiz(v: &Value) -> Result<(), String> {
    for (i, q) in v
        .get("questions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let options: Vec<String> = q
            .get("options")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|o| o.as_str().unwrap_or_default().trim().to_lowercase())
            .collect();
        let unique: std::collections::HashSet<&String> = options.iter().collect();
        if unique.len() != options.len() {
            return Err(format!("/questions/{i}/options: the options must all differ"));
        }
        let correct = q.get("correct_index").and_then(Value::as_u64).unwrap_or(u64::MAX);
        if correct as usize >= options.len() {
            return Err(format!(
                "/questions/{i}/correct_index: {correct} does not name one of the options"
            ));
        }
    }
    Ok(())
}

/// The architect's outline tool.
struct OutlineTool<'a>(&'a StudyContext);

#[async_trait]
impl ToolBox for OutlineTool<'_> {
    fn specs(&self) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "get_outline".into(),
            description:
                "The document's headings with their pages, and counts of words, definitions and dates.".into(),
            parameters: json!({ "type": "object", "properties": {}, "additionalProperties": false }),
        }]
    }

    async fn call(&self, name: &str, _arguments: &Value) -> Result<Value, String> {
        if name != "get_outline" {
            return Err(format!("unknown tool '{name}'"));
        }
        let headings: Vec<Value> = self
            .0
            .doc
            .pages
            .iter()
            .flat_map(|p| {
                p.headings
                    .iter()
                    .map(move |h| json!({ "heading": h, "page": p.number }))
            })
            .collect();
        let words: usize = self
            .0
            .doc
            .pages
            .iter()
            .map(|p| p.text.split_whitespace().count())
            .sum();
        let a = &self.0.analysis;
        Ok(
            json!({ "title": self.0.doc.title, "pages": self.0.doc.pages.len(), "words": words, "headings": headings,
                   "definitions": a.definitions.len(), "dated_events": a.dated_event_count(),
                   "examples": a.examples.len(), "lists": a.lists.len() }),
        )
    }
}

/// Plans the agents for a purpose.
pub async fn plan(
    provider: &dyn ChatProvider,
    ctx: &StudyContext,
    purpose: &Purpose,
) -> Result<(Plan, Vec<CallRecord>), TaskError> {
    let excerpt = agents::excerpt(&ctx.chunks, EXCERPT_CHARS / 2);
    let prompt = agents::architect::render_architect_prompt(purpose, None, &ctx.doc.title, &excerpt);
    let task = StructuredTask {
        task: "architect".into(),
        messages: vec![Message::system(SYSTEM), Message::user(prompt)],
        schema_name: "plan".into(),
        validator: validator(agents::ARCHITECT_SCHEMA)?,
        check: Some(Arc::new(|v: &Value| {
            let plan: Plan = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
            if plan.agents.is_empty() {
                return Err("the plan has no agents".into());
            }
            let mut seen = std::collections::HashSet::new();
            for a in &plan.agents {
                if !seen.insert(a.name) {
                    return Err(format!("agent '{}' is planned twice", a.name.as_str()));
                }
            }
            Ok(())
        }) as Check),
        local: Some(LocalTask::Architect {
            doc: ctx.doc.clone(),
            analysis: ctx.analysis.clone(),
            purpose: purpose.clone(),
        }),
        max_repairs: 2,
        max_tool_rounds: 2,
        max_tokens: Some(2_000),
    };
    let out = run_structured(provider, &task, Some(&OutlineTool(ctx))).await?;
    let plan: Plan = serde_json::from_value(out.output.clone()).map_err(|e| TaskError::Invalid {
        errors: format!("plan does not decode: {e}"),
        attempts: 1,
        calls: out.calls.clone(),
    })?;
    Ok((plan, out.calls))
}

/// Makes one agent's material.
pub async fn material(
    provider: &dyn ChatProvider,
    ctx: &StudyContext,
    agent: AgentName,
    purpose: &Purpose,
    focus: Option<&str>,
) -> Result<TaskOutcome, TaskError> {
    let spec = agent.spec();
    let excerpt = agents::excerpt(&ctx.chunks, EXCERPT_CHARS);
    let prompt = agents::render_prompt(agent, purpose, focus, &ctx.doc.title, &excerpt);
    let pages = ctx.pages.clone();
    let task = StructuredTask {
        task: format!("agent:{}", agent.as_str()),
        messages: vec![Message::system(SYSTEM), Message::user(prompt)],
        schema_name: agent.as_str().replace('-', "_"),
        validator: validator(spec.schema)?,
        check: Some(Arc::new(move |v: &Value| {
            check_citations(&pages, v, "")?;
            agent_check(agent, v)
        }) as Check),
        local: Some(LocalTask::Agent {
            agent,
            doc: ctx.doc.clone(),
            chunks: ctx.chunks.clone(),
            analysis: ctx.analysis.clone(),
            purpose: purpose.clone(),
            focus: focus.map(str::to_string),
        }),
        max_repairs: 2,
        max_tool_rounds: 0,
        max_tokens: Some(4_000),
    };
    run_structured(provider, &task, None).await
}

/// A cited answer to a question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CitedAnswer {
    /// The answer with `[p. N]` after each claim.
    pub answer: String,
    /// The sources.
    pub citations: Vec<Citation>,
}

/// The answer's schema.
pub const ANSWER_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["answer", "citations"],
  "properties": {
    "answer": { "type": "string", "minLength": 1, "maxLength": 4000 },
    "citations": {
      "type": "array", "maxItems": 12,
      "items": {
        "type": "object", "additionalProperties": false, "required": ["chunk", "page"],
        "properties": { "chunk": { "type": "string" }, "page": { "type": "integer", "minimum": 1 } }
      }
    }
  }
}"#;

/// Answers a question from passages (and, with a tool-calling provider, from
/// `tools`), seeing the thread's earlier turns. `chunk_pages` lists every chunk the
/// answer may cite.
pub async fn answer(
    provider: &dyn ChatProvider,
    question: &str,
    passages: &[Chunk],
    history: &[Turn],
    chunk_pages: HashMap<String, u32>,
    tools: Option<&dyn ToolBox>,
) -> Result<(CitedAnswer, Vec<CallRecord>), TaskError> {
    let mut prompt = String::new();
    if !history.is_empty() {
        prompt.push_str("Earlier in this conversation:\n");
        for t in history.iter().rev().take(6).rev() {
            prompt.push_str(&format!("Q: {}\nA: {}\n", t.question, t.answer));
        }
        prompt.push('\n');
    }
    prompt.push_str("Passages from the document:\n");
    for c in passages {
        prompt.push_str(&format!("[{} p.{}] {}\n", c.id, c.page, c.text));
    }
    prompt.push_str(&format!(
        "\nQuestion: {question}\n\nAnswer from the passages only (call search_document if they are not enough). \
         Put [p. N] after each sentence that uses page N, list the chunks used in `citations`, and say so \
         plainly when the document does not answer the question."
    ));
    let task = StructuredTask {
        task: "ask".into(),
        messages: vec![Message::system(SYSTEM), Message::user(prompt)],
        schema_name: "answer".into(),
        validator: validator(ANSWER_SCHEMA)?,
        check: Some(Arc::new(move |v: &Value| check_citations(&chunk_pages, v, "")) as Check),
        local: Some(LocalTask::Answer {
            question: question.to_string(),
            passages: passages.to_vec(),
            history: history.to_vec(),
        }),
        max_repairs: 2,
        max_tool_rounds: 3,
        max_tokens: Some(1_500),
    };
    let out = run_structured(provider, &task, tools).await?;
    let answer: CitedAnswer = serde_json::from_value(out.output.clone()).map_err(|e| TaskError::Invalid {
        errors: format!("answer does not decode: {e}"),
        attempts: 1,
        calls: out.calls.clone(),
    })?;
    Ok((answer, out.calls))
}
