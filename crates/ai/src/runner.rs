//! Running a structured task on a provider: ask, check the answer against the JSON
//! Schema (and any extra check such as "every citation names a real chunk"), and when
//! it does not validate, ask again with the validation error fed back, up to
//! `max_repairs` times. Tools the model calls are executed and their results fed back,
//! up to `max_tool_rounds` rounds. Every model and tool call is recorded.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use crate::provider::local::LocalTask;
use crate::provider::{ChatProvider, ChatRequest, Message, OutputSchema, ProviderError, ToolSpec, Usage};
use crate::record::{CallKind, CallRecord};
use crate::schema::{extract_json, Validator};

/// Tools a model may call during a task.
#[async_trait]
pub trait ToolBox: Send + Sync {
    /// The tools offered.
    fn specs(&self) -> Vec<ToolSpec>;
    /// Runs one call; an `Err` is shown to the model as the tool's answer.
    async fn call(&self, name: &str, arguments: &Value) -> Result<Value, String>;
}

/// An extra check of an answer that passed the schema.
pub type Check = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// A task whose answer is JSON following a schema.
#[derive(Clone)]
pub struct StructuredTask {
    /// What it is for (`agent:quiz`).
    pub task: String,
    /// The opening messages (instructions and the prompt).
    pub messages: Vec<Message>,
    /// The schema's name.
    pub schema_name: String,
    /// The compiled schema.
    pub validator: Arc<Validator>,
    /// Checks beyond the schema.
    pub check: Option<Check>,
    /// The structured task for computing providers.
    pub local: Option<LocalTask>,
    /// How often an invalid answer is sent back for repair.
    pub max_repairs: u32,
    /// How many rounds of tool calls are allowed.
    pub max_tool_rounds: u32,
    /// Generation cap.
    pub max_tokens: Option<u32>,
}

/// A validated answer and the calls that produced it.
#[derive(Clone, Debug)]
pub struct TaskOutcome {
    /// The answer.
    pub output: Value,
    /// Every call made.
    pub calls: Vec<CallRecord>,
}

/// Why a task failed; it keeps the calls made so far.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The provider failed.
    #[error("{error}")]
    Provider {
        /// The failure.
        error: ProviderError,
        /// Calls made.
        calls: Vec<CallRecord>,
    },
    /// The answers never validated.
    #[error("the model's answer did not validate after {attempts} attempt(s): {errors}")]
    Invalid {
        /// The last validation errors.
        errors: String,
        /// Answers received.
        attempts: u32,
        /// Calls made.
        calls: Vec<CallRecord>,
    },
}

impl TaskError {
    /// The calls made before the failure.
    pub fn calls(&self) -> &[CallRecord] {
        match self {
            TaskError::Provider { calls, .. } | TaskError::Invalid { calls, .. } => calls,
        }
    }
}

fn last_user_prompt(messages: &[Message]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.role == crate::provider::Role::User)
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

/// Runs `task` on `provider` (offering `tools` when the provider supports them).
pub async fn run_structured(
    provider: &dyn ChatProvider,
    task: &StructuredTask,
    tools: Option<&dyn ToolBox>,
) -> Result<TaskOutcome, TaskError> {
    let mut messages = task.messages.clone();
    let mut calls = Vec::new();
    let mut answers = 0u32;
    let mut tool_rounds = 0u32;
    let tools = tools.filter(|_| provider.supports_tools());
    loop {
        let mut req = ChatRequest::new(task.task.clone(), messages.clone());
        req.schema = Some(OutputSchema {
            name: task.schema_name.clone(),
            schema: task.validator.schema.clone(),
        });
        if tool_rounds < task.max_tool_rounds {
            req.tools = tools.map(|t| t.specs()).unwrap_or_default();
        }
        req.local = task.local.clone();
        req.max_tokens = task.max_tokens;
        let prompt = last_user_prompt(&messages);
        let t0 = Instant::now();
        let result = provider.chat(&req).await;
        let latency = t0.elapsed().as_millis() as u64;
        let resp = match result {
            Ok(r) => r,
            Err(error) => {
                let mut rec = CallRecord::new(
                    CallKind::Llm,
                    &task.task,
                    provider.name(),
                    provider.model(),
                    &prompt,
                    "",
                    Usage::default(),
                    latency,
                );
                rec.error = Some(error.to_string());
                calls.push(rec);
                return Err(TaskError::Provider { error, calls });
            }
        };
        let mut rec = CallRecord::new(
            CallKind::Llm,
            &task.task,
            provider.name(),
            &resp.model,
            &prompt,
            &resp.content,
            resp.usage,
            latency,
        );
        rec.cost_usd = provider.cost_usd(&resp.usage);
        calls.push(rec);

        if let (Some(tb), false) = (tools, resp.tool_calls.is_empty()) {
            if tool_rounds < task.max_tool_rounds {
                tool_rounds += 1;
                messages.push(Message::assistant(resp.content.clone(), resp.tool_calls.clone()));
                for call in &resp.tool_calls {
                    let t0 = Instant::now();
                    let result = tb.call(&call.name, &call.arguments).await;
                    let latency = t0.elapsed().as_millis() as u64;
                    let (text, error) = match &result {
                        Ok(v) => (v.to_string(), None),
                        Err(e) => (
                            format!("{{\"error\": {}}}", Value::String(e.clone())),
                            Some(e.clone()),
                        ),
                    };
                    let mut rec = CallRecord::new(
                        CallKind::Tool,
                        &task.task,
                        &call.name,
                        "",
                        &call.arguments.to_string(),
                        &text,
                        Usage::default(),
                        latency,
                    );
                    rec.error = error;
                    calls.push(rec);
                    messages.push(Message::tool(call.id.clone(), text));
                }
                continue;
            }
        }

        answers += 1;
        let verdict = extract_json(&resp.content).and_then(|v| {
            task.validator.validate(&v)?;
            if let Some(check) = &task.check {
                check(&v)?;
            }
            Ok(v)
        });
        match verdict {
            Ok(output) => return Ok(TaskOutcome { output, calls }),
            Err(errors) if answers <= task.max_repairs => {
                tracing::debug!(task = %task.task, "answer did not validate, asking for a repair: {errors}");
                messages.push(Message::assistant(resp.content.clone(), Vec::new()));
                messages.push(Message::user(format!(
                    "Your answer was not valid: {errors}\nReply again with only the corrected JSON object."
                )));
            }
            Err(errors) => {
                return Err(TaskError::Invalid {
                    errors,
                    attempts: answers,
                    calls,
                })
            }
        }
    }
}
