//! The offline `local` provider: no key, no network, deterministic. It does not
//! generate text from prompts; it answers LearnFlow's own tasks (an agent's material,
//! the architect's plan, a cited answer) from their structured input, with the classic
//! NLP of [`crate::nlp`] and each agent's local implementation.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::{estimate_tokens, ChatProvider, ChatRequest, ChatResponse, ProviderError, Usage};
use crate::agents::{self, AgentInput, AgentName, Purpose};
use crate::answer::{answer_local, Turn};
use crate::doc::{Chunk, DocumentText};
use crate::nlp::Analysis;

/// The structured task a computing provider answers.
#[derive(Clone)]
pub enum LocalTask {
    /// One agent's material.
    Agent {
        /// The agent.
        agent: AgentName,
        /// The document.
        doc: Arc<DocumentText>,
        /// Its chunks.
        chunks: Arc<Vec<Chunk>>,
        /// Its analysis.
        analysis: Arc<Analysis>,
        /// The purpose.
        purpose: Purpose,
        /// The architect's focus.
        focus: Option<String>,
    },
    /// The architect's plan.
    Architect {
        /// The document.
        doc: Arc<DocumentText>,
        /// Its analysis.
        analysis: Arc<Analysis>,
        /// The purpose.
        purpose: Purpose,
    },
    /// A cited answer.
    Answer {
        /// The question.
        question: String,
        /// Retrieved passages.
        passages: Vec<Chunk>,
        /// Earlier turns of the thread.
        history: Vec<Turn>,
    },
}

impl std::fmt::Debug for LocalTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalTask::Agent { agent, .. } => write!(f, "LocalTask::Agent({})", agent.as_str()),
            LocalTask::Architect { purpose, .. } => write!(f, "LocalTask::Architect({purpose})"),
            LocalTask::Answer { question, .. } => write!(f, "LocalTask::Answer({question:?})"),
        }
    }
}

/// The offline provider.
#[derive(Debug, Default)]
pub struct LocalProvider;

fn compute(task: LocalTask) -> Result<Value, String> {
    match task {
        LocalTask::Agent {
            agent,
            doc,
            chunks,
            analysis,
            purpose,
            focus,
        } => {
            let input = AgentInput {
                doc: &doc,
                chunks: &chunks,
                analysis: &analysis,
                purpose: &purpose,
                focus: focus.as_deref(),
            };
            agents::run_local(agent, &input).map_err(|e| e.to_string())
        }
        LocalTask::Architect {
            doc,
            analysis,
            purpose,
        } => serde_json::to_value(agents::plan_local(&doc, &analysis, &purpose)).map_err(|e| e.to_string()),
        LocalTask::Answer {
            question,
            passages,
            history,
        } => {
            let a = answer_local(&question, &passages, &history);
            Ok(serde_json::json!({ "answer": a.text, "citations": a.citations }))
        }
    }
}

#[async_trait]
impl ChatProvider for LocalProvider {
    fn name(&self) -> &str {
        "local"
    }

    fn model(&self) -> &str {
        "learnflow-local-nlp"
    }

    fn supports_tools(&self) -> bool {
        false
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let Some(task) = request.local.clone() else {
            return Err(ProviderError::Unsupported {
                provider: "local".into(),
                task: request.task.clone(),
                message: "the local provider answers only LearnFlow's built-in tasks; configure an \
                          OpenAI-compatible provider for free-form prompts"
                    .into(),
            });
        };
        let prompt_tokens: u64 = request.messages.iter().map(|m| estimate_tokens(&m.content)).sum();
        let _cpu = crate::cpu::permit().await;
        let output = tokio::task::spawn_blocking(move || compute(task))
            .await
            .map_err(|e| ProviderError::ServerError {
                provider: "local".into(),
                status: 500,
                message: format!("the local task panicked: {e}"),
            })?
            .map_err(|message| ProviderError::Unsupported {
                provider: "local".into(),
                task: request.task.clone(),
                message,
            })?;
        let content = output.to_string();
        Ok(ChatResponse {
            usage: Usage {
                input_tokens: prompt_tokens,
                output_tokens: estimate_tokens(&content),
            },
            content,
            tool_calls: Vec::new(),
            model: "learnflow-local-nlp".into(),
        })
    }
}
