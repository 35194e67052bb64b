//! Any OpenAI-compatible chat endpoint: OpenAI, Ollama, vLLM, llama.cpp server,
//! LM Studio, OpenRouter. Chosen by base URL, key and model.
//!
//! Structured output uses `response_format: {"type": "json_schema", …}` with the
//! agent's schema. A server that rejects that (HTTP 400 naming `response_format` or
//! `json_schema`) is asked again in JSON mode (`{"type": "json_object"}`, schema in the
//! prompt), and one that rejects JSON mode too gets plain text with the schema in the
//! prompt; the provider remembers what the server accepts. HTTP 429 becomes
//! [`ProviderError::RateLimited`] with the server's `Retry-After` (seconds or an HTTP
//! date); other 4xx are permanent; 5xx, timeouts and connection errors are transient.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ChatProvider, ChatRequest, ChatResponse, Message, ProviderError, Role, ToolCall, Usage};

/// Prices of a model, in US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    /// Per million prompt tokens.
    pub input_per_million: f64,
    /// Per million generated tokens.
    pub output_per_million: f64,
}

/// How to reach the endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenAiConfig {
    /// Base URL up to and including `/v1` (`https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` for Ollama).
    pub base_url: String,
    /// API key; empty for servers that need none.
    pub api_key: String,
    /// Model name.
    pub model: String,
    /// Per-request timeout.
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// Prices, for cost figures.
    pub prices: Option<Prices>,
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "https://api.openai.com/v1".into(),
            api_key: String::new(),
            model: "gpt-4o-mini".into(),
            timeout: Duration::from_secs(120),
            prices: None,
        }
    }
}

const MODE_SCHEMA: u8 = 0;
const MODE_JSON: u8 = 1;
const MODE_PLAIN: u8 = 2;

/// The OpenAI-compatible provider.
pub struct OpenAiProvider {
    config: OpenAiConfig,
    http: reqwest::Client,
    /// What structured-output form the server accepts (learned on 400s).
    mode: AtomicU8,
}

impl OpenAiProvider {
    /// A provider for `config`.
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ProviderError::Connection {
                provider: "openai".into(),
                url: config.base_url.clone(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(OpenAiProvider {
            config,
            http,
            mode: AtomicU8::new(MODE_SCHEMA),
        })
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'))
    }

    fn body(&self, req: &ChatRequest, mode: u8) -> Value {
        let mut messages: Vec<Value> = Vec::with_capacity(req.messages.len() + 1);
        let schema_hint = match (&req.schema, mode) {
            (Some(s), MODE_JSON | MODE_PLAIN) => Some(format!(
                "Answer with one JSON object only, no prose, that validates against this JSON Schema:\n{}",
                s.schema
            )),
            _ => None,
        };
        for m in &req.messages {
            messages.push(wire_message(m));
        }
        if let Some(hint) = schema_hint {
            messages.push(json!({ "role": "system", "content": hint }));
        }
        let mut body = json!({ "model": self.config.model, "messages": messages });
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(n) = req.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if let Some(s) = &req.schema {
            match mode {
                MODE_SCHEMA => {
                    body["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": { "name": s.name, "schema": s.schema, "strict": false }
                    })
                }
                MODE_JSON => body["response_format"] = json!({ "type": "json_object" }),
                _ => {}
            }
        }
        if !req.tools.is_empty() {
            body["tools"] = Value::Array(
                req.tools
                    .iter()
                    .map(|t| {
                        json!({ "type": "function", "function": {
                            "name": t.name, "description": t.description, "parameters": t.parameters } })
                    })
                    .collect(),
            );
        }
        body
    }

    fn err_connection(&self, e: &reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            ProviderError::Timeout {
                provider: "openai".into(),
                after: self.config.timeout,
            }
        } else {
            ProviderError::Connection {
                provider: "openai".into(),
                url: self.url(),
                message: e.to_string(),
            }
        }
    }

    async fn send(&self, body: &Value) -> Result<(u16, Option<Duration>, String), ProviderError> {
        let mut rb = self.http.post(self.url()).json(body);
        if !self.config.api_key.is_empty() {
            rb = rb.bearer_auth(&self.config.api_key);
        }
        let resp = rb.send().await.map_err(|e| self.err_connection(&e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = resp.text().await.map_err(|e| self.err_connection(&e))?;
        Ok((status, retry_after, text))
    }
}

fn wire_message(m: &Message) -> Value {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut v = json!({ "role": role, "content": m.content });
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = Value::Array(
            m.tool_calls
                .iter()
                .map(|c| {
                    json!({ "id": c.id, "type": "function",
                            "function": { "name": c.name, "arguments": c.arguments.to_string() } })
                })
                .collect(),
        );
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    v
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
    }
    let when = httpdate_to_unix(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    Some(Duration::from_secs((when - now).max(0) as u64))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
fn httpdate_to_unix(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

/// The error message inside an OpenAI-style error body, or the body itself.
fn server_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| body.chars().take(500).collect())
}

fn rejects_format(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("response_format") || m.contains("json_schema") || m.contains("json_object")
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[async_trait]
impl ChatProvider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    fn supports_tools(&self) -> bool {
        true
    }

    fn cost_usd(&self, usage: &Usage) -> Option<f64> {
        self.config.prices.map(|p| {
            (usage.input_tokens as f64 * p.input_per_million
                + usage.output_tokens as f64 * p.output_per_million)
                / 1e6
        })
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        loop {
            let mode = self.mode.load(Ordering::Relaxed);
            let body = self.body(req, mode);
            let (status, retry_after, text) = self.send(&body).await?;
            if status == 400 && req.schema.is_some() && mode < MODE_PLAIN {
                let message = server_message(&text);
                if rejects_format(&message) {
                    tracing::info!(
                        "{} does not accept this structured-output form ({message}); falling back",
                        self.config.base_url
                    );
                    self.mode.store(mode + 1, Ordering::Relaxed);
                    continue;
                }
            }
            return match status {
                200..=299 => self.parse(&text),
                429 => Err(ProviderError::RateLimited {
                    provider: "openai".into(),
                    retry_after,
                    message: server_message(&text),
                }),
                400..=499 => Err(ProviderError::Rejected {
                    provider: "openai".into(),
                    status,
                    message: server_message(&text),
                }),
                _ => Err(ProviderError::ServerError {
                    provider: "openai".into(),
                    status,
                    message: server_message(&text),
                }),
            };
        }
    }
}

impl OpenAiProvider {
    fn parse(&self, text: &str) -> Result<ChatResponse, ProviderError> {
        let bad = |message: String| ProviderError::BadResponse {
            provider: "openai".into(),
            message,
        };
        let wire: WireResponse =
            serde_json::from_str(text).map_err(|e| bad(format!("not a chat completion ({e})")))?;
        let choice = wire
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| bad("the response has no choices".into()))?;
        let mut tool_calls = Vec::new();
        for (i, c) in choice.message.tool_calls.into_iter().enumerate() {
            let raw = c.function.arguments.unwrap_or_default();
            let arguments = if raw.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&raw).map_err(|e| {
                    bad(format!(
                        "tool call '{}' has arguments that are not JSON: {e}",
                        c.function.name
                    ))
                })?
            };
            tool_calls.push(ToolCall {
                id: c.id.unwrap_or_else(|| format!("call_{i}")),
                name: c.function.name,
                arguments,
            });
        }
        let usage = wire.usage.map_or_else(Usage::default, |u| Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        });
        Ok(ChatResponse {
            content: choice.message.content.unwrap_or_default(),
            tool_calls,
            usage,
            model: wire.model.unwrap_or_else(|| self.config.model.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 2.5 "), Some(Duration::from_secs_f64(2.5)));
        assert_eq!(
            httpdate_to_unix("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn server_messages_are_extracted() {
        assert_eq!(server_message(r#"{"error":{"message":"bad key"}}"#), "bad key");
        assert_eq!(server_message(r#"{"error":"nope"}"#), "nope");
        assert_eq!(server_message("plain"), "plain");
    }
}
