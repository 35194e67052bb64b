//! An OpenAI-compatible server on loopback for tests and benchmarks.
//!
//! `POST /v1/chat/completions` answers after a fixed delay. Unless a scripted answer
//! is queued, the answer is a JSON object generated from the request's JSON Schema
//! (from `response_format`, or from the schema text in the prompt in JSON mode): every
//! property filled, arrays at their minimum size, citations (`{"chunk", "page"}`
//! objects) taken from the `[cN p.P]` markers of the prompt, a valid Mermaid flowchart
//! for properties named `mermaid`. Scripts queue HTTP errors, raw contents and tool
//! calls. `POST /v1/embeddings` returns deterministic bag-of-words vectors. The server
//! records every request body and the peak number of requests in flight.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// Behaviour of the fake.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Delay before every chat answer.
    pub chat_delay: Duration,
    /// Delay before every embeddings answer.
    pub embed_delay: Duration,
    /// Embedding length.
    pub embedding_dims: usize,
    /// Answer 400 to `response_format: json_schema` (like servers without it).
    pub reject_json_schema: bool,
    /// Answer 400 to `response_format: json_object` too.
    pub reject_json_mode: bool,
    /// Requests whose JSON Schema has one of these names always get this HTTP status.
    pub fail_schemas: Vec<(String, u16)>,
    /// The first request for each of these schema names gets 429 with `Retry-After: 1`.
    pub rate_limit_first: Vec<String>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            chat_delay: Duration::ZERO,
            embed_delay: Duration::ZERO,
            embedding_dims: 64,
            reject_json_schema: false,
            reject_json_mode: false,
            fail_schemas: Vec::new(),
            rate_limit_first: Vec::new(),
        }
    }
}

/// A queued answer for the next chat request.
#[derive(Clone, Debug)]
pub enum Scripted {
    /// An HTTP error with an optional `Retry-After` header value.
    Error {
        /// Status code.
        status: u16,
        /// `Retry-After` header.
        retry_after: Option<String>,
        /// Error message.
        message: String,
    },
    /// This exact assistant content.
    Content(String),
    /// Tool calls: (function name, arguments).
    ToolCalls(Vec<(String, Value)>),
    /// A body that is not a chat completion.
    Garbage(String),
}

struct FakeState {
    config: FakeConfig,
    script: Mutex<VecDeque<Scripted>>,
    requests: Mutex<Vec<Value>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    limited: Mutex<std::collections::HashSet<String>>,
}

/// A running fake server.
pub struct FakeOpenAi {
    /// Base URL including `/v1`.
    pub base_url: String,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenAi {
    /// Starts a server on an ephemeral loopback port.
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeOpenAi> {
        let state = Arc::new(FakeState {
            config,
            script: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limited: Mutex::new(std::collections::HashSet::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeOpenAi {
            base_url: format!("http://{addr}/v1"),
            state,
            task,
        })
    }

    /// Queues an answer for the next chat request.
    pub fn push(&self, s: Scripted) {
        if let Ok(mut q) = self.state.script.lock() {
            q.push_back(s);
        }
    }

    /// Every request body received so far (chat and embeddings).
    pub fn requests(&self) -> Vec<Value> {
        self.state.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The most requests that were in flight at once.
    pub fn peak_concurrency(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }
}

struct InFlight(Arc<FakeState>);

impl InFlight {
    fn enter(state: &Arc<FakeState>) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak.fetch_max(now, Ordering::SeqCst);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn error(status: u16, message: &str, retry_after: Option<&str>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert("retry-after", v);
    }
    (
        code,
        headers,
        Json(json!({ "error": { "message": message, "type": "fake_error" } })),
    )
        .into_response()
}

async fn chat(State(state): State<Arc<FakeState>>, Json(body): Json<Value>) -> Response {
    let _guard = InFlight::enter(&state);
    if let Ok(mut r) = state.requests.lock() {
        r.push(body.clone());
    }
    tokio::time::sleep(state.config.chat_delay).await;
    let scripted = state.script.lock().ok().and_then(|mut q| q.pop_front());
    let format = body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let schema_name = body
        .pointer("/response_format/json_schema/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some((_, status)) = state.config.fail_schemas.iter().find(|(n, _)| *n == schema_name) {
        return error(
            *status,
            &format!("the model refuses to write '{schema_name}'"),
            None,
        );
    }
    if state.config.rate_limit_first.contains(&schema_name) {
        let first = state
            .limited
            .lock()
            .map(|mut l| l.insert(schema_name.clone()))
            .unwrap_or(false);
        if first {
            return error(429, "rate limit reached for requests", Some("1"));
        }
    }
    if scripted.is_none() {
        if format == "json_schema" && state.config.reject_json_schema {
            return error(
                400,
                "response_format json_schema is not supported by this server",
                None,
            );
        }
        if format == "json_object" && state.config.reject_json_mode {
            return error(
                400,
                "response_format json_object is not supported by this server",
                None,
            );
        }
    }
    let prompt = prompt_text(&body);
    let (content, tool_calls) = match scripted {
        Some(Scripted::Error {
            status,
            retry_after,
            message,
        }) => return error(status, &message, retry_after.as_deref()),
        Some(Scripted::Garbage(text)) => return (StatusCode::OK, text).into_response(),
        Some(Scripted::Content(c)) => (c, Vec::new()),
        Some(Scripted::ToolCalls(calls)) => (String::new(), calls),
        None => {
            let schema = body
                .pointer("/response_format/json_schema/schema")
                .cloned()
                .or_else(|| schema_from_prompt(&prompt));
            let content = match schema {
                Some(s) if schema_name == "plan" => full_plan(&s).to_string(),
                Some(s) => sample_root(&s, &citations(&prompt)).to_string(),
                None => "This is a plain answer from the fake server.".to_string(),
            };
            (content, Vec::new())
        }
    };
    let tool_calls: Vec<Value> = tool_calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({ "id": format!("call_{i}"), "type": "function",
                    "function": { "name": name, "arguments": args.to_string() } })
        })
        .collect();
    let mut message = json!({ "role": "assistant", "content": content });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    let model = body.get("model").and_then(Value::as_str).unwrap_or("fake-model");
    Json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": prompt.len() / 4 + 1, "completion_tokens": content.len() / 4 + 1 }
    }))
    .into_response()
}

fn prompt_text(body: &Value) -> String {
    body.get("messages")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.get("content").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The schema a JSON-mode prompt carries after "JSON Schema:".
fn schema_from_prompt(prompt: &str) -> Option<Value> {
    let at = prompt.rfind("JSON Schema:")?;
    let rest = &prompt[at + "JSON Schema:".len()..];
    let start = rest.find('{')?;
    let mut de = serde_json::Deserializer::from_str(&rest[start..]).into_iter::<Value>();
    de.next()?.ok()
}

/// A plan that runs every agent the plan schema allows, like a model that plans the
/// whole study pack.
fn full_plan(schema: &Value) -> Value {
    let names: Vec<Value> = schema
        .pointer("/properties/agents/items/properties/name/enum")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let agents: Vec<Value> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| json!({ "name": name, "priority": i + 1, "focus": "the key ideas", "reason": "useful for study" }))
        .collect();
    json!({ "agents": agents, "rationale": "Every material helps this purpose." })
}

/// `[cN p.P]` markers of the prompt, in order.
fn citations(prompt: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut rest = prompt;
    while let Some(i) = rest.find("[c") {
        rest = &rest[i + 2..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            continue;
        }
        let after = &rest[digits.len()..];
        if let Some(p) = after.strip_prefix(" p.") {
            let page: String = p.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = page.parse() {
                out.push((format!("c{digits}"), n));
            }
        }
    }
    out
}

/// A value that validates against `schema` (for the subset of JSON Schema agents use:
/// objects, arrays, scalars, `enum`, `const`, local `$ref`s, and the simple `pattern`s
/// of LearnFlow's schemas).
pub fn sample_root(schema: &Value, cites: &[(String, u64)]) -> Value {
    sample(schema, schema, cites, &mut 0)
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .unwrap_or(schema),
        None => schema,
    }
}

fn patterned(pattern: &str, n: usize, cites: &[(String, u64)]) -> Option<String> {
    match pattern {
        "^c[0-9]+$" => Some(cites.first().map_or_else(|| "c0".to_string(), |c| c.0.clone())),
        "^[A-Z]{3,7}$" => Some("ABCD".into()),
        "____" => Some(format!("Fake ____ sentence {n}")),
        p if p.starts_with('^') && p.ends_with("[0-9]+$") => {
            Some(format!("{}{n}", &p[1..p.len() - "[0-9]+$".len()]))
        }
        p if p.starts_with("^(flowchart|graph)") => Some("flowchart TD\n  n1[\"A\"] --> n2[\"B\"]".into()),
        _ => None,
    }
}

fn sample(root: &Value, schema: &Value, cites: &[(String, u64)], counter: &mut usize) -> Value {
    let schema = resolve(root, schema);
    *counter += 1;
    let n = *counter;
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(e) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return e.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = schema.get(key).and_then(Value::as_array).and_then(|a| a.first()) {
            return sample(root, first, cites, counter);
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let props = schema.get("properties").and_then(Value::as_object);
            let mut out = Map::new();
            if let Some(props) = props {
                let is_citation = props.contains_key("chunk") && props.contains_key("page");
                if is_citation && !cites.is_empty() {
                    let (chunk, page) = &cites[n % cites.len()];
                    out.insert("chunk".into(), json!(chunk));
                    out.insert("page".into(), json!(page));
                    return Value::Object(out);
                }
                for (k, v) in props {
                    let value = if k == "mermaid" {
                        json!("flowchart TD\n  n1[\"Concept A\"] --> n2[\"Concept B\"]")
                    } else {
                        sample(root, v, cites, counter)
                    };
                    out.insert(k.clone(), value);
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1).max(1) as usize;
            let items = schema
                .get("items")
                .cloned()
                .unwrap_or(json!({ "type": "string" }));
            Value::Array((0..min).map(|_| sample(root, &items, cites, counter)).collect())
        }
        "integer" | "number" => {
            let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(1);
            let max = schema.get("maximum").and_then(Value::as_i64).unwrap_or(i64::MAX);
            json!(min.max(0).min(max).max(min))
        }
        "boolean" => json!(n.is_multiple_of(2)),
        "null" => Value::Null,
        _ => {
            if let Some(p) = schema
                .get("pattern")
                .and_then(Value::as_str)
                .and_then(|p| patterned(p, n, cites))
            {
                return json!(p);
            }
            let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            let max = schema.get("maxLength").and_then(Value::as_u64).unwrap_or(200) as usize;
            let mut s = format!("Fake text {n}");
            while s.len() < min {
                s.push_str(" and more");
            }
            s.truncate(max.max(1));
            json!(s)
        }
    }
}

async fn embeddings(State(state): State<Arc<FakeState>>, Json(body): Json<Value>) -> Response {
    let _guard = InFlight::enter(&state);
    if let Ok(mut r) = state.requests.lock() {
        r.push(body.clone());
    }
    tokio::time::sleep(state.config.embed_delay).await;
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => return error(400, "input must be a string or an array of strings", None),
    };
    let dims = state.config.embedding_dims.max(2);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({ "object": "embedding", "index": i, "embedding": bag_of_words(text, dims) }))
        .collect();
    let model = body.get("model").and_then(Value::as_str).unwrap_or("fake-embed");
    Json(json!({ "object": "list", "model": model, "data": data,
                 "usage": { "prompt_tokens": inputs.iter().map(|s| s.len() / 4 + 1).sum::<usize>() } }))
    .into_response()
}

/// Deterministic vectors in which texts sharing words are close.
fn bag_of_words(text: &str, dims: usize) -> Vec<f32> {
    let mut v = vec![0f32; dims];
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2) {
        let mut h: u64 = 1469598103934665603;
        for b in word.to_lowercase().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(1099511628211);
        }
        v[(h % dims as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v[0] = 1.0;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_validate_against_their_schema() {
        let schema = json!({
            "type": "object", "additionalProperties": false, "required": ["items", "mermaid"],
            "properties": {
                "mermaid": { "type": "string" },
                "items": { "type": "array", "minItems": 2, "items": {
                    "type": "object", "additionalProperties": false, "required": ["q", "source", "n"],
                    "properties": {
                        "q": { "type": "string", "minLength": 20 },
                        "n": { "type": "integer", "minimum": 0, "maximum": 3 },
                        "source": { "type": "object", "additionalProperties": false, "required": ["chunk", "page"],
                                    "properties": { "chunk": { "type": "string" }, "page": { "type": "integer" } } }
                    } } }
            }
        });
        let cites = citations("[c0 p.1] alpha\n[c7 p.3] beta");
        assert_eq!(cites, vec![("c0".to_string(), 1), ("c7".to_string(), 3)]);
        let v = sample_root(&schema, &cites);
        let validator = crate::schema::Validator::new(&schema).unwrap();
        validator.validate(&v).unwrap();
        assert!(v["mermaid"].as_str().unwrap().starts_with("flowchart TD"));
        assert!(cites
            .iter()
            .any(|(c, _)| c == v["items"][0]["source"]["chunk"].as_str().unwrap()));
    }
}
