//! Chat providers: the one trait every language-model backend implements.
//!
//! | provider | what it is |
//! |---|---|
//! | [`local::LocalProvider`] | the offline default: answers agent tasks with classic NLP, deterministic, no key, no network |
//! | [`openai::OpenAiProvider`] | any OpenAI-compatible `/chat/completions` endpoint (OpenAI, Ollama, vLLM, llama.cpp server, LM Studio, OpenRouter) |
//!
//! A [`ChatRequest`] carries both what a language model needs (messages, a JSON Schema
//! for structured output, tools) and, in [`ChatRequest::local`], the structured task a
//! computing provider needs. Errors say what the caller does next
//! ([`ProviderError::retry_after`], [`ProviderError::is_permanent`]), which the pipeline
//! maps onto the engine's retry-after, non-retriable and retriable failures.

pub mod local;
pub mod openai;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who says a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The caller.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who says it.
    pub role: Role,
    /// The text (may be empty for an assistant turn that only calls tools).
    pub content: String,
    /// Tools the assistant asked to call in this turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            ..Message::system(content)
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Message {
            role: Role::Assistant,
            tool_calls,
            ..Message::system(content)
        }
    }

    /// A tool result.
    pub fn tool(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            tool_call_id: Some(call_id.into()),
            ..Message::system(content)
        }
    }
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Function name.
    pub name: String,
    /// What it does (the model reads this).
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// A call the model asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call.
    pub id: String,
    /// Function name.
    pub name: String,
    /// Arguments (parsed JSON; `{}` when the model sent none).
    pub arguments: Value,
}

/// A JSON Schema the answer must follow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    /// A short name (letters, digits, `_`, `-`).
    pub name: String,
    /// The schema.
    pub schema: Value,
}

/// A request to a provider.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// What this call is for (`agent:quiz`, `architect`, `ask`): recorded, and used
    /// by computing providers.
    pub task: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Structured output, when wanted.
    pub schema: Option<OutputSchema>,
    /// Tools offered (only to providers that support them).
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Cap on generated tokens.
    pub max_tokens: Option<u32>,
    /// The structured task for providers that compute instead of generate.
    pub local: Option<local::LocalTask>,
}

impl ChatRequest {
    /// A request with messages and defaults elsewhere.
    pub fn new(task: impl Into<String>, messages: Vec<Message>) -> Self {
        ChatRequest {
            task: task.into(),
            messages,
            schema: None,
            tools: Vec::new(),
            temperature: Some(0.2),
            max_tokens: None,
            local: None,
        }
    }
}

/// Token counts of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

/// What a provider answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The text answer (JSON text for structured output).
    pub content: String,
    /// Tool calls requested instead of (or besides) an answer.
    pub tool_calls: Vec<ToolCall>,
    /// Token counts (estimated by providers that do not report them).
    pub usage: Usage,
    /// The model that answered.
    pub model: String,
}

/// A provider failure, classified by what to do next.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// HTTP 429: slow down, then retry.
    #[error("{provider} is rate limiting requests{}: {message}", .retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// Provider name.
        provider: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// Another 4xx: the request itself is wrong (bad key, unknown model, too long).
    #[error("{provider} rejected the request (HTTP {status}): {message}")]
    Rejected {
        /// Provider name.
        provider: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// A 5xx: the server failed; retry.
    #[error("{provider} failed (HTTP {status}): {message}")]
    ServerError {
        /// Provider name.
        provider: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// No answer in time; retry.
    #[error("{provider} did not answer within {} s", .after.as_secs())]
    Timeout {
        /// Provider name.
        provider: String,
        /// The timeout.
        after: Duration,
    },
    /// The server could not be reached; retry.
    #[error("cannot reach {provider} at {url}: {message}")]
    Connection {
        /// Provider name.
        provider: String,
        /// The endpoint.
        url: String,
        /// Details.
        message: String,
    },
    /// The server answered something that is not a valid response; retry.
    #[error("{provider} sent an unusable response: {message}")]
    BadResponse {
        /// Provider name.
        provider: String,
        /// What was wrong.
        message: String,
    },
    /// The provider cannot do this task at all (configuration error).
    #[error("{provider} cannot handle task '{task}': {message}")]
    Unsupported {
        /// Provider name.
        provider: String,
        /// The task.
        task: String,
        /// Why.
        message: String,
    },
}

impl ProviderError {
    /// When to retry, for rate limits.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => {
                Some(retry_after.unwrap_or(Duration::from_secs(5)))
            }
            _ => None,
        }
    }

    /// Whether retrying cannot help (bad request, unsupported task).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ProviderError::Rejected { .. } | ProviderError::Unsupported { .. }
        )
    }
}

/// A chat/structured-generation backend.
#[async_trait]
pub trait ChatProvider: Send + Sync {
    /// Provider name (`local`, `openai`).
    fn name(&self) -> &str;
    /// The model used.
    fn model(&self) -> &str;
    /// Whether the provider can call tools.
    fn supports_tools(&self) -> bool;
    /// Cost of a call in US dollars, when a price table is configured.
    fn cost_usd(&self, _usage: &Usage) -> Option<f64> {
        None
    }
    /// Answers one request.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;
}

/// A rough token count for providers that report none (about four characters a token).
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}
