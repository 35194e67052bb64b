//! The executor side of the call protocol: an engine function whose handler drives an
//! SDK app over HTTP, turning every op the app answers with into a durable engine step.
//!
//! A fresh run (nothing pending in its journal) is called in v4 checkpoint mode: the
//! app runs its steps at once and pushes each to `/v1/checkpoint/{run}/async`, where
//! it is journaled before the app goes on. While a step is pending (a retry waiting
//! for its time, a sleep, a wait) and for functions with concurrency limits, calls
//! only plan (`ctx.disable_immediate_execution: true`): discovery then replays
//! memoized results and is safe to repeat, and each planned step runs in its own call
//! inside `ctx.run` (holding the function's slots), whose result is journaled before
//! the function goes on. Either way a recorded step is never sent to the app again.
//! `step.fetch`, `step.ai.infer`, sleeps, waits for events or signals and invokes are
//! engine steps LearnFlow performs itself.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use learnflow_engine::event::{CRON_EVENT, INVOKED_EVENT};
use learnflow_engine::{Ctx, EventInput, Failure};
use serde_json::{json, Map, Value};

use crate::config::{parse_time, SyncedFunction};

const SIGNAL_PREFIX: &str = "inngest/signal:";

/// The event a signal is delivered as (`POST /v1/signals`), one name per signal, so
/// a `step.waitForSignal` is a wait for that event.
pub fn signal_event(signal: &str) -> String {
    format!("{SIGNAL_PREFIX}{signal}")
}

/// A received signal as `step.waitForSignal` returns it: `{signal, data}` (two keys,
/// so the SDK takes the object as it is), from the signal event's data.
fn signal_memo(event_data: &Value) -> Value {
    json!({ "signal": event_data["signal"], "data": event_data["data"] })
}

/// The event name SDK apps expect on cron runs.
pub const SDK_CRON_EVENT: &str = "inngest/scheduled.timer";

/// The event name SDK apps expect on invoked runs.
pub const SDK_INVOKED_EVENT: &str = "inngest/function.invoked";

/// Settings shared by every call.
#[derive(Clone, Debug)]
pub struct CallOptions {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Longest wait for one call.
    pub timeout: Duration,
    /// Cloud mode: sign requests, verify answers.
    pub key: Option<crate::signing::SigningKey>,
    /// Calls in flight that accept checkpoints.
    pub checkpoints: Arc<Checkpoints>,
    /// Calls in flight per app (origin), so a burst of runs does not swamp an app
    /// with connections: the others wait their turn here (a call never waits for
    /// another call, so this cannot deadlock).
    pub inflight: Inflight,
}

/// Per-origin limits on calls in flight.
#[derive(Clone, Debug)]
pub struct Inflight {
    per_app: usize,
    apps: Arc<parking_lot::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>>,
}

impl Inflight {
    /// At most `per_app` calls at once to one origin (0: no limit).
    pub fn new(per_app: usize) -> Self {
        Inflight {
            per_app,
            apps: Default::default(),
        }
    }

    async fn enter(&self, url: &reqwest::Url) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if self.per_app == 0 {
            return None;
        }
        let origin = url.origin().ascii_serialization();
        let sem = self
            .apps
            .lock()
            .entry(origin)
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_app)))
            .clone();
        sem.acquire_owned().await.ok()
    }
}

/// Steps an app ran in a call and pushed to `/v1/checkpoint/{run}/async` (v4
/// checkpointing), handed to the run's executor, which records them before the app
/// goes on.
#[derive(Default)]
pub struct Checkpoints {
    open:
        parking_lot::Mutex<std::collections::HashMap<String, tokio::sync::mpsc::UnboundedSender<Checkpoint>>>,
}

struct Checkpoint {
    steps: Vec<Value>,
    ack: tokio::sync::oneshot::Sender<bool>,
}

struct CheckpointGuard {
    checkpoints: Arc<Checkpoints>,
    run: String,
}

impl Drop for CheckpointGuard {
    fn drop(&mut self) {
        self.checkpoints.open.lock().remove(&self.run);
    }
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("open", &self.open.lock().len())
            .finish()
    }
}

impl Checkpoints {
    fn open(
        self: &Arc<Self>,
        run: &str,
    ) -> (tokio::sync::mpsc::UnboundedReceiver<Checkpoint>, CheckpointGuard) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.open.lock().insert(run.to_string(), tx);
        (
            rx,
            CheckpointGuard {
                checkpoints: self.clone(),
                run: run.to_string(),
            },
        )
    }

    /// Hands steps to run `run`'s executor; true once they are recorded. False when
    /// no call of that run is in flight on this node (the app then returns the steps
    /// in its answer instead).
    pub async fn deliver(&self, run: &str, steps: Vec<Value>) -> bool {
        let (ack, done) = tokio::sync::oneshot::channel();
        let sent = self
            .open
            .lock()
            .get(run)
            .is_some_and(|tx| tx.send(Checkpoint { steps, ack }).is_ok());
        sent && matches!(
            tokio::time::timeout(Duration::from_secs(60), done).await,
            Ok(Ok(true))
        )
    }
}

/// Records steps the app checkpointed, in order, as durable steps.
async fn record_checkpoint(ctx: &Ctx, memo: &mut Memo, steps: &[Value]) -> Result<(), Failure> {
    for v in steps {
        let op = parse_op(v)?;
        if op.op != "StepRun" || memo.steps.contains_key(&op.id) {
            continue;
        }
        let data = op.data.clone();
        let value: Value = ctx
            .run_attempt(&op.display, |_| {
                let data = data.clone();
                async move { Ok(json!({ "data": data })) }
            })
            .await?;
        memo.add(op.id.clone(), value);
    }
    Ok(())
}

/// One answer from the app.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    no_retry: Option<bool>,
    retry_after: Option<Duration>,
}

/// What the app asked for, op by op.
#[derive(Clone, Debug)]
struct Op {
    op: String,
    id: String,
    /// The engine step's name: the user's step id (so the engine's `name:n` ids hash
    /// to the SDK's ids).
    display: String,
    /// From the answer that carried the op.
    no_retry: Option<bool>,
    retry_after: Option<Duration>,
    name: Option<String>,
    opts: Value,
    data: Value,
    error: Value,
}

fn parse_op(v: &Value) -> Result<Op, Failure> {
    let op = v["op"]
        .as_str()
        .ok_or_else(|| Failure::retriable(format!("the app answered an op without a name: {v}")))?;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    let display = v["userland"]["id"]
        .as_str()
        .or_else(|| v["displayName"].as_str())
        .or_else(|| v["name"].as_str())
        .unwrap_or(&id)
        .to_string();
    Ok(Op {
        op: op.to_string(),
        id,
        display,
        no_retry: None,
        retry_after: None,
        name: v["name"].as_str().map(str::to_string),
        opts: v["opts"].clone(),
        data: v["data"].clone(),
        error: v["error"].clone(),
    })
}

/// The run's event as the SDK expects it.
fn sdk_event(ctx: &Ctx) -> Value {
    sdk_event_of(ctx.event())
}

/// An event as the SDK expects it.
fn sdk_event_of(e: &learnflow_engine::Event) -> Value {
    let name = match e.name.as_str() {
        INVOKED_EVENT => SDK_INVOKED_EVENT,
        CRON_EVENT => SDK_CRON_EVENT,
        other => other,
    };
    json!({
        "name": name,
        "data": e.data,
        "id": e.id,
        "ts": e.ts.millis(),
        "user": if e.user.is_object() { e.user.clone() } else { json!({}) },
    })
}

/// A state of the run as the app sees it: the memoized results and their order.
#[derive(Clone, Debug, Default)]
struct Memo {
    steps: Map<String, Value>,
    stack: Vec<String>,
}

impl Memo {
    fn add(&mut self, id: String, value: Value) {
        if !self.steps.contains_key(&id) {
            self.stack.push(id.clone());
        }
        self.steps.insert(id, value);
    }
}

struct Call<'a> {
    opts: &'a CallOptions,
    function: &'a SyncedFunction,
    run_id: String,
    event: Value,
    /// Every event of the run (several for a batched function).
    events: Vec<Value>,
}

impl Call<'_> {
    /// Sends one call request for `step_id` (`step` = discovery).
    async fn send(
        &self,
        step_id: &str,
        memo: &Memo,
        attempt: u32,
        plan_only: bool,
    ) -> Result<Answer, Failure> {
        let body = self.body(memo, attempt, plan_only, false);
        self.post(step_id, body).await
    }

    /// A call request's canonical body. With `checkpoint`, the app may run several
    /// steps in this one call and push each to `/v1/checkpoint/{run}/async`.
    fn body(&self, memo: &Memo, attempt: u32, plan_only: bool, checkpoint: bool) -> String {
        let mut body = json!({
            "event": self.event,
            "events": self.events,
            "steps": memo.steps,
            "ctx": {
                "run_id": self.run_id,
                "attempt": attempt,
                "max_attempts": self.function.retries + 1,
                "disable_immediate_execution": plan_only,
                "use_api": false,
                "stack": { "stack": memo.stack, "current": memo.stack.len() },
            },
        });
        if checkpoint {
            body["ctx"]["fn_id"] = json!(self.function.id);
            body["ctx"]["qi_id"] = json!(self.run_id);
        }
        crate::signing::canonical(&body)
    }

    /// Posts a call request for `step_id` (`step` = discovery).
    async fn post(&self, step_id: &str, body: String) -> Result<Answer, Failure> {
        let mut url = reqwest::Url::parse(&self.function.url)
            .map_err(|e| Failure::non_retriable(format!("bad function URL '{}': {e}", self.function.url)))?;
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "stepId")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(pairs)
            .append_pair("stepId", step_id);
        let _turn = self.opts.inflight.enter(&url).await;
        let now = learnflow_engine::Timestamp::now_utc().millis() / 1000;
        let mut req = self
            .opts
            .http
            .post(url)
            .timeout(self.opts.timeout)
            .header("content-type", "application/json")
            .header("x-run-id", &self.run_id)
            .header("x-inngest-step-id", step_id);
        if let Some(k) = &self.opts.key {
            req = req.header("x-inngest-signature", k.sign(body.as_bytes(), now));
        }
        let resp = req.body(body).send().await.map_err(|e| {
            Failure::retriable(format!(
                "calling {}: {}",
                self.function.url,
                crate::http_error(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| {
            Failure::retriable(format!("reading the app's answer: {}", crate::http_error(&e)))
        })?;
        if !headers.contains_key("x-inngest-sdk") {
            return Err(Failure::retriable(format!(
                "{} answered {status} without an X-Inngest-SDK header: not an Inngest SDK app? {}",
                self.function.url,
                text.chars().take(200).collect::<String>()
            )));
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(k) = &self.opts.key {
            let signed = header("x-inngest-signature").ok_or_else(|| {
                Failure::retriable(format!("{} answered without a signature", self.function.url))
            })?;
            k.verify(&signed, text.as_bytes(), now)
                .map_err(|e| Failure::retriable(format!("{}'s answer: {e}", self.function.url)))?;
        }
        Ok(Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            no_retry: header("x-inngest-no-retry").map(|v| v == "true"),
            retry_after: header("retry-after").and_then(|v| parse_retry_after(&v)),
        })
    }
}

/// `Retry-After`: seconds, or an HTTP/ISO date; clamped to [1 s, 24 h].
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        return None;
    };
    Some(d.clamp(Duration::from_secs(1), Duration::from_secs(24 * 3600)))
}

/// The failure an error answer stands for.
fn failure_of(what: &str, error: &Value, no_retry: Option<bool>, retry_after: Option<Duration>) -> Failure {
    let name = error["name"].as_str().unwrap_or("Error").to_string();
    let message = error["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{what}: {error}"));
    if no_retry == Some(true) || name == "NonRetriableError" {
        return Failure::non_retriable(message).named(name);
    }
    match retry_after {
        Some(d) => Failure::retry_after(message, d).named(name),
        None => Failure::retriable(message).named(name),
    }
}

/// How long a wait op waits (`opts.timeout`; none or `""`: it expires at once, as
/// Inngest's executor does).
fn wait_timeout(op: &Op) -> Result<Duration, Failure> {
    match op.opts["timeout"].as_str() {
        Some("") | None => Ok(Duration::ZERO),
        Some(t) => {
            parse_time(t).map_err(|e| Failure::non_retriable(format!("{} '{}': {e}", op.op, op.display)))
        }
    }
}

/// A step's outcome as a memo value: a step that failed for good is an `{error}` the
/// app's code may catch; a failure of the run itself stays one.
fn settled(result: Result<Value, Failure>) -> Result<Value, Failure> {
    match result {
        Err(f) if f.step.is_some() => Ok(error_memo(&f)),
        other => other,
    }
}

/// The memo value of a step that failed for good.
fn error_memo(f: &Failure) -> Value {
    match &f.cause {
        Some(c) => json!({ "error": { "name": c.name, "message": c.message } }),
        None => json!({ "error": { "name": f.name, "message": f.message } }),
    }
}

/// Runs one synced function for the engine: the handler of its engine function.
/// When the run ends for good it sends `inngest/function.finished` (and
/// `inngest/function.failed` on failure), which `onFailure` handlers listen for.
pub async fn run(ctx: Ctx, opts: Arc<CallOptions>, function: Arc<SyncedFunction>) -> Result<Value, Failure> {
    let out = drive(&ctx, &opts, &function).await;
    let last = match &out {
        Ok(_) => true,
        Err(f) => !f.is_retriable() || ctx.attempt() >= function.retries,
    };
    if last {
        let mut data = json!({
            "function_id": function.id,
            "run_id": ctx.run_id().to_string(),
            "event": sdk_event(&ctx),
            "events": [sdk_event(&ctx)],
        });
        let mut events = Vec::new();
        match &out {
            Ok(v) => data["result"] = v.clone(),
            Err(f) => {
                data["error"] = json!({ "name": f.name, "message": f.message });
                events.push(EventInput::new(FAILED_EVENT, data.clone()));
            }
        }
        events.insert(0, EventInput::new(FINISHED_EVENT, data));
        ctx.send_events(ENDED_STEP, events).await?;
    }
    out
}

/// Sent when a run of a synced function ends, with its result or error.
pub const FINISHED_EVENT: &str = "inngest/function.finished";
/// Sent when a run of a synced function fails for good.
pub const FAILED_EVENT: &str = "inngest/function.failed";

async fn drive(ctx: &Ctx, opts: &CallOptions, function: &SyncedFunction) -> Result<Value, Failure> {
    let ctx = ctx.clone();
    let call = Call {
        opts,
        function,
        run_id: ctx.run_id().to_string(),
        event: sdk_event(&ctx),
        events: ctx.events().await?.iter().map(sdk_event_of).collect(),
    };
    let mut memo = Memo::default();
    for rec in ctx.adopt_settled() {
        if let Some(value) = memo_of(&rec) {
            memo.add(sdk_hash(&rec.step_id), value);
        }
    }
    // While a step is pending (a retry waiting for its time, a sleep, a wait) the first
    // call only plans: a step the engine is retrying must not run inside discovery.
    // Otherwise (a fresh run, or every op so far settled) the app may run steps at once,
    // checkpointing each, unless the function has concurrency limits.
    let mut plan_only = function.limited || ctx.has_unsettled_steps();
    loop {
        let answer = if plan_only || function.limited {
            call.send("step", &memo, ctx.attempt(), plan_only).await?
        } else {
            // Checkpointing: the app may run many steps in this call, pushing each to
            // /v1/checkpoint, where it is recorded before the app goes on.
            let body = call.body(&memo, ctx.attempt(), false, true);
            let (mut pushed, _open) = opts.checkpoints.open(&call.run_id);
            let post = call.post("step", body);
            tokio::pin!(post);
            loop {
                tokio::select! {
                    a = &mut post => break a?,
                    Some(cp) = pushed.recv() => {
                        let recorded = record_checkpoint(&ctx, &mut memo, &cp.steps).await;
                        let _ = cp.ack.send(recorded.is_ok());
                        recorded?;
                    }
                }
            }
        };
        // A limited function's steps run only inside engine steps, under its slots.
        plan_only = function.limited;
        match answer.status {
            200 => return Ok(answer.body),
            206 => {}
            _ => {
                return Err(failure_of(
                    "the function failed",
                    &answer.body,
                    answer.no_retry,
                    answer.retry_after,
                ))
            }
        }
        let mut ops = match &answer.body {
            Value::Array(a) => a.iter().map(parse_op).collect::<Result<Vec<_>, _>>()?,
            Value::Object(_) => vec![parse_op(&answer.body)?],
            other => return Err(Failure::retriable(format!("the app answered 206 with {other}"))),
        };
        for op in &mut ops {
            op.no_retry = answer.no_retry;
            op.retry_after = answer.retry_after;
        }
        if let Some(done) = ops.iter().find(|o| o.op == "RunComplete") {
            return Ok(done.data.clone());
        }
        let work: Vec<&Op> = ops
            .iter()
            .filter(|o| {
                !matches!(
                    o.op.as_str(),
                    "DeferAdd" | "DeferAbort" | "None" | "DiscoveryRequest"
                )
            })
            .filter(|o| !memo.steps.contains_key(&o.id))
            .collect();
        if work.is_empty() && !ops.iter().any(|o| o.op == "DiscoveryRequest") {
            return Err(Failure::retriable(format!(
                "the app reported nothing new to do: {}",
                answer.body
            )));
        }
        let mut running: FuturesUnordered<_> = work
            .into_iter()
            .map(|op| {
                let (ctx, call, memo) = (&ctx, &call, &memo);
                async move { execute(ctx, call, memo, op).await.map(|v| (op.id.clone(), v)) }
            })
            .collect();
        let mut done = Vec::new();
        while let Some(r) = running.next().await {
            done.push(r?);
        }
        drop(running);
        for (id, v) in done {
            memo.add(id, v);
        }
    }
}

/// Asks the app to run exactly step `op` (attempt `attempt`); its memo value.
async fn run_one(call: &Call<'_>, memo: &Memo, op: &Op, attempt: u32) -> Result<Value, Failure> {
    let a = call.send(&op.id, memo, attempt, false).await?;
    if a.status != 206 {
        return Err(failure_of("the step failed", &a.body, a.no_retry, a.retry_after));
    }
    let ran = match &a.body {
        Value::Array(v) => v.iter().find(|o| o["id"] == op.id.as_str()).cloned(),
        Value::Object(_) => Some(a.body.clone()),
        _ => None,
    }
    .ok_or_else(|| Failure::retriable(format!("the app did not run step '{}': {}", op.display, a.body)))?;
    let ran = parse_op(&ran)?;
    match ran.op.as_str() {
        "StepRun" | "Step" => Ok(json!({ "data": ran.data })),
        "StepError" => Err(failure_of(
            "the step failed",
            &ran.error,
            a.no_retry,
            a.retry_after,
        )),
        "StepFailed" => Err(failure_of("the step failed", &ran.error, Some(true), None)),
        other => Err(Failure::retriable(format!(
            "the app answered op {other} when asked to run step '{}'",
            op.display
        ))),
    }
}

/// Performs the HTTP request of an `AIGateway` (`step.ai.infer`) or `Gateway`
/// (`step.fetch`) op; its memo value.
///
/// `step.ai.infer` posts `opts.body` as JSON to `opts.url` with the provider's key
/// (`opts.auth_key`) where its `format` expects it, and answers the provider's JSON;
/// an error status fails the step (retried on 429 and 5xx). `step.fetch` answers
/// `{url, headers, body, status_code}` whatever the status, as `fetch` does.
async fn outbound(opts: &CallOptions, op: &Op) -> Result<Value, Failure> {
    let o = &op.opts;
    let url = o["url"]
        .as_str()
        .ok_or_else(|| Failure::non_retriable(format!("step '{}': no url to call", op.display)))?;
    let url = reqwest::Url::parse(url)
        .map_err(|e| Failure::non_retriable(format!("step '{}': bad url '{url}': {e}", op.display)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::non_retriable(format!(
            "step '{}': only http and https URLs can be called",
            op.display
        )));
    }
    let ai = op.op == "AIGateway";
    let method = if ai {
        reqwest::Method::POST
    } else {
        let m = o["method"].as_str().unwrap_or("GET");
        reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| Failure::non_retriable(format!("step '{}': bad method '{m}'", op.display)))?
    };
    let mut req = opts.http.request(method, url.clone()).timeout(opts.timeout);
    if let Some(headers) = o["headers"].as_object() {
        for (k, v) in headers {
            if let Some(v) = v.as_str() {
                req = req.header(k.as_str(), v);
            }
        }
    }
    if ai {
        let key = o["auth_key"].as_str().unwrap_or_default();
        let has = |name: &str| {
            o["headers"]
                .as_object()
                .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case(name)))
        };
        req = match o["format"].as_str().unwrap_or("openai-chat") {
            "anthropic" => {
                let req = req.header("x-api-key", key);
                if has("anthropic-version") {
                    req
                } else {
                    req.header("anthropic-version", "2023-06-01")
                }
            }
            "gemini" => req.header("x-goog-api-key", key),
            _ if key.is_empty() => req,
            _ => req.bearer_auth(key),
        };
        req = req.json(&o["body"]);
    } else if let Some(body) = o["body"].as_str() {
        req = req.body(body.to_string());
    }
    let resp = req.send().await.map_err(|e| {
        Failure::retriable(format!(
            "step '{}': calling {url}: {}",
            op.display,
            crate::http_error(&e)
        ))
    })?;
    let status = resp.status();
    let headers: Map<String, Value> = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), Value::String(v.to_str().ok()?.to_string()))))
        .collect();
    let text = resp.text().await.map_err(|e| {
        Failure::retriable(format!(
            "step '{}': reading {url}: {}",
            op.display,
            crate::http_error(&e)
        ))
    })?;
    if !ai {
        return Ok(json!({ "data": {
            "url": url.as_str(), "headers": headers, "body": text, "status_code": status.as_u16(),
        } }));
    }
    if !status.is_success() {
        let message = format!(
            "step '{}': the model answered {status}: {}",
            op.display,
            text.chars().take(500).collect::<String>()
        );
        return Err(if status.as_u16() == 429 || status.is_server_error() {
            Failure::retriable(message)
        } else {
            Failure::non_retriable(message)
        }
        .named("AIGatewayError"));
    }
    let answer: Value = serde_json::from_str(&text).map_err(|e| {
        Failure::retriable(format!(
            "step '{}': the model's answer is not JSON: {e}",
            op.display
        ))
    })?;
    Ok(json!({ "data": answer }))
}

/// The SDK's id of an engine step: the engine numbers repeated names `name:1`,
/// `name:2`… exactly as the SDK does before hashing.
fn sdk_hash(step_id: &str) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(step_id.as_bytes()))
}

/// The memo value of a settled engine step, as the app expects it.
fn memo_of(rec: &learnflow_engine::StepRecord) -> Option<Value> {
    use learnflow_engine::{StepKind, StepStatus};
    if rec.step_id.starts_with(ENDED_STEP) {
        return None;
    }
    let error = || {
        let e = rec
            .error
            .clone()
            .unwrap_or_else(|| learnflow_engine::ErrorInfo::new("Error", "the step failed"));
        json!({ "error": { "name": e.name, "message": e.message } })
    };
    Some(match (rec.kind, rec.status) {
        (StepKind::Run, StepStatus::Completed) => rec.output.clone().unwrap_or(Value::Null),
        (StepKind::Sleep, _) => Value::Null,
        (StepKind::WaitForEvent, StepStatus::Completed) => match &rec.output {
            // A signal's wait: `{signal, data}`, as the app first saw it.
            Some(Value::Object(e))
                if e.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with(SIGNAL_PREFIX)) =>
            {
                signal_memo(e.get("data").unwrap_or(&Value::Null))
            }
            Some(Value::Object(e)) => {
                let ts = match e.get("ts") {
                    Some(Value::String(t)) => {
                        learnflow_engine::Timestamp::parse_rfc3339(t).map_or(0, |t| t.millis())
                    }
                    Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
                    _ => 0,
                };
                json!({ "name": e.get("name"), "data": e.get("data"), "id": e.get("id"), "ts": ts,
                        "user": e.get("user").filter(|u| u.is_object()).cloned().unwrap_or(json!({})) })
            }
            _ => Value::Null,
        },
        (StepKind::Invoke, StepStatus::Completed) => {
            json!({ "data": rec.output.clone().unwrap_or(Value::Null) })
        }
        (_, StepStatus::Failed) => error(),
        _ => return None,
    })
}

/// The engine step that sends `inngest/function.finished`.
const ENDED_STEP: &str = "inngest-function-ended";

/// Runs one op as a durable step and returns its memo value.
async fn execute(ctx: &Ctx, call: &Call<'_>, memo: &Memo, op: &Op) -> Result<Value, Failure> {
    match op.op.as_str() {
        "StepPlanned" => {
            let result: Result<Value, Failure> = ctx
                .run_attempt(&op.display, |attempt| run_one(call, memo, op, attempt))
                .await;
            settled(result)
        }
        "StepRun" | "Step" | "StepError" | "StepFailed" => {
            // The app ran the step during discovery: its first attempt is in the answer;
            // a retry asks the app for exactly this step.
            let result: Result<Value, Failure> = ctx
                .run_attempt(&op.display, |attempt| async move {
                    if attempt == 0 {
                        return match op.op.as_str() {
                            "StepRun" | "Step" => Ok(json!({ "data": op.data })),
                            "StepFailed" => Err(failure_of("the step failed", &op.error, Some(true), None)),
                            _ => Err(failure_of(
                                "the step failed",
                                &op.error,
                                op.no_retry,
                                op.retry_after,
                            )),
                        };
                    }
                    run_one(call, memo, op, attempt).await
                })
                .await;
            settled(result)
        }
        "Sleep" => {
            let spec = op
                .name
                .clone()
                .or_else(|| op.opts["duration"].as_str().map(str::to_string))
                .unwrap_or_default();
            match parse_time(&spec) {
                Ok(d) => ctx.sleep(&op.display, d).await.map(|_| Value::Null),
                Err(_) => match learnflow_engine::Timestamp::parse_rfc3339(&spec) {
                    Some(at) => ctx.sleep_until(&op.display, at).await.map(|_| Value::Null),
                    None => Err(Failure::non_retriable(format!(
                        "sleep '{}': bad duration '{spec}'",
                        op.display
                    ))),
                },
            }
        }
        "WaitForEvent" => {
            let event = op.opts["event"]
                .as_str()
                .map(str::to_string)
                .or_else(|| op.name.clone())
                .unwrap_or_default();
            let timeout = wait_timeout(op)?;
            let found = ctx
                .wait_for_event(&op.display, &event, op.opts["if"].as_str(), timeout)
                .await?;
            Ok(match found {
                Some(e) => json!({
                    "name": e.name, "data": e.data, "id": e.id, "ts": e.ts.millis(),
                    "user": if e.user.is_object() { e.user } else { json!({}) },
                }),
                None => Value::Null,
            })
        }
        "WaitForSignal" => {
            let signal = op.opts["signal"]
                .as_str()
                .map(str::to_string)
                .or_else(|| op.name.clone())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    Failure::non_retriable(format!("waitForSignal '{}' names no signal", op.display))
                })?;
            let timeout = wait_timeout(op)?;
            let found = ctx
                .wait_for_event(&op.display, &signal_event(&signal), None, timeout)
                .await?;
            Ok(found.map_or(Value::Null, |e| signal_memo(&e.data)))
        }
        "InvokeFunction" => {
            let function_id = op.opts["function_id"]
                .as_str()
                .ok_or_else(|| Failure::non_retriable("invoke without a function_id"))?;
            let data = match &op.opts["payload"]["data"] {
                Value::Object(o) => Value::Object(o.clone()),
                _ => json!({}),
            };
            let timeout = op.opts["timeout"]
                .as_str()
                .map(parse_time)
                .transpose()
                .map_err(|e| Failure::non_retriable(format!("invoke: {e}")))?;
            settled(
                ctx.invoke::<Value>(&op.display, function_id, data, timeout)
                    .await
                    .map(|v| json!({ "data": v })),
            )
        }
        "AIGateway" | "Gateway" => {
            // `step.ai.infer` / `step.fetch`: LearnFlow makes the request, durably; the
            // app gets the answer as the step's result.
            let result: Result<Value, Failure> =
                ctx.run_attempt(&op.display, |_| outbound(call.opts, op)).await;
            settled(result)
        }
        other => Err(Failure::non_retriable(format!(
            "op '{other}' (step '{}') is not supported by LearnFlow yet",
            op.display
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_read_their_names_and_ids() {
        let op = parse_op(
            &json!({"op": "Sleep", "id": "c264", "name": "2s", "displayName": "nap",
            "userland": {"id": "nap"}, "opts": {}}),
        )
        .unwrap();
        assert_eq!(
            (op.op.as_str(), op.id.as_str(), op.display.as_str()),
            ("Sleep", "c264", "nap")
        );
        assert_eq!(op.name.as_deref(), Some("2s"));
        assert!(parse_op(&json!({"id": "x"})).is_err());
    }

    #[test]
    fn errors_keep_their_class_and_retry_advice() {
        let e = json!({"name": "NonRetriableError", "message": "do not retry me"});
        assert!(!failure_of("f", &e, None, None).is_retriable());
        let e = json!({"name": "RetryAfterError", "message": "try later"});
        let f = failure_of("f", &e, Some(false), Some(Duration::from_secs(5)));
        assert!(f.is_retriable());
        assert_eq!(f.name, "RetryAfterError");
        assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("0"), Some(Duration::from_secs(1)));
    }
}
