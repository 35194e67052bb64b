//! `process-document`, on `document.uploaded`: the steps in run order.
//!
//! ```text
//! extract → architect → [review: wait for plan.approved] → agent-<name> × N (parallel)
//!         → embed → store → notify
//! ```
//!
//! Each step's result is recorded by the engine, so a restarted process resumes where
//! it stopped. An agent that fails for good does not sink the run: its material is
//! stored as failed with the reason. A bad document (empty, corrupt, unsupported) fails
//! the run at once with the reason, and the document is marked failed.

mod agents;
mod embed;
mod extract;
pub use extract::document_text;
mod store;

use std::sync::Arc;
use std::time::Duration;

use learnflow_ai::agents::{AgentName, Plan, PlannedAgent};
use learnflow_ai::runner::TaskError;
use learnflow_engine::{Ctx, EventInput, Failure, Function, FunctionDef};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::library::DocumentStatus;
use crate::services::{DocumentNotice, Services};

/// The function id.
pub const FUNCTION_ID: &str = "process-document";
/// The event that starts it.
pub const UPLOADED_EVENT: &str = "document.uploaded";
/// The event that approves (and may edit) a plan under review.
pub const APPROVED_EVENT: &str = "plan.approved";
/// The event sent when a document is done.
pub const PROCESSED_EVENT: &str = "document.processed";

/// The data of `document.uploaded`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    /// The library document.
    pub document_id: String,
    /// Its owner.
    pub user_id: String,
    /// Study purpose (`exam-prep`, `quick-review`, `deep-understanding`, `lecture-notes`, or free text).
    #[serde(default = "default_purpose")]
    pub purpose: String,
    /// The file's name (display only).
    #[serde(default)]
    pub file_name: String,
    /// Wait for `plan.approved` before the agents run.
    #[serde(default)]
    pub review: bool,
    /// `local` or `openai` (default: the configured one).
    #[serde(default)]
    pub provider: Option<String>,
}

fn default_purpose() -> String {
    "exam-prep".into()
}

/// Turns a task failure into the engine's retry semantics: rate limits honour
/// `Retry-After`, rejected requests are not retried, the rest is retried.
pub fn task_failure(what: &str, e: &TaskError) -> Failure {
    match e {
        TaskError::Provider { error, .. } => {
            let msg = format!("{what}: {error}");
            if let Some(after) = error.retry_after() {
                Failure::retry_after(msg, after)
            } else if error.is_permanent() {
                Failure::non_retriable(msg)
            } else {
                Failure::retriable(msg)
            }
        }
        TaskError::Invalid { .. } => Failure::retriable(format!("{what}: {e}")),
    }
}

/// The `process-document` function with production options: 3 retries, at most 5
/// steps per user and 50 in all at once, 100 runs a minute per user, one run per
/// document.
pub fn process_document(services: Arc<Services>) -> FunctionDef {
    Function::new(FUNCTION_ID)
        .name("Process a document into a study pack")
        .on_event(UPLOADED_EVENT)
        .retries(3)
        .concurrency(5, Some("event.data.userId"))
        .concurrency(50, None)
        .throttle(100, Duration::from_secs(60), 10, Some("event.data.userId"))
        .idempotency("event.data.documentId")
        .handler(move |ctx: Ctx| {
            let services = services.clone();
            async move { run(&ctx, &services).await }
        })
}

async fn run(ctx: &Ctx, s: &Arc<Services>) -> Result<Value, Failure> {
    let data: Uploaded = serde_json::from_value(ctx.event().data.clone())
        .map_err(|e| Failure::non_retriable(format!("document.uploaded event data is invalid: {e}")))?;
    let provider = s
        .provider(data.provider.as_deref())
        .map_err(Failure::non_retriable)?;

    let extracted = match ctx
        .run("extract", || extract::extract(s, &data, ctx.run_id().as_str()))
        .await
    {
        Ok(v) => v,
        Err(f) => return fail(ctx, s, &data, f).await,
    };

    let planned: agents::PlanOutput = match ctx
        .run("architect", || agents::architect(s, &data, provider.clone()))
        .await
    {
        Ok(p) => p,
        Err(f) => return fail(ctx, s, &data, f).await,
    };
    let mut plan = planned.plan.clone();

    if data.review {
        let approval = ctx
            .wait_for_event(
                "review",
                APPROVED_EVENT,
                Some("async.data.documentId == event.data.documentId && async.data.userId == event.data.userId"),
                s.review_timeout,
            )
            .await?;
        if let Some(ev) = approval {
            plan = apply_approval(plan, &ev.data).map_err(Failure::non_retriable)?;
        }
    }

    let data = &data;
    let outcomes = futures::future::join_all(plan.agents.iter().map(|pa| {
        let name = format!("agent-{}", pa.name.as_str());
        let provider = provider.clone();
        async move {
            let out = ctx
                .run(&name, || agents::material(s, data, provider.clone(), pa.clone()))
                .await;
            (pa.clone(), out)
        }
    }))
    .await;

    let embedded: Value = match ctx.run("embed", || embed::embed(s, data)).await {
        Ok(v) => v,
        Err(f) => return fail(ctx, s, data, f).await,
    };
    let stored: store::Stored = ctx.run("store", || store::store(s, data, &outcomes)).await?;

    ctx.send_events(
        "notify",
        vec![processed_event(
            data,
            json!({
                "documentId": data.document_id, "userId": data.user_id, "status": "ready",
                "ready": stored.ready, "failed": stored.failed, "failedAgents": stored.failed_agents,
                "runId": ctx.run_id().as_str(),
            }),
        )],
    )
    .await?;
    let _ = s.notices.send(DocumentNotice {
        document_id: data.document_id.clone(),
        user_id: data.user_id.clone(),
        status: "ready".into(),
        ready: stored.ready,
        failed: stored.failed,
    });
    Ok(json!({
        "documentId": data.document_id,
        "status": "ready",
        "pages": extracted["pages"],
        "chunks": embedded["chunks"],
        "materials": { "ready": stored.ready, "failed": stored.failed, "failedAgents": stored.failed_agents },
    }))
}

/// Marks the document failed (as a step, once) and fails the run with `f`.
async fn fail(ctx: &Ctx, s: &Services, data: &Uploaded, f: Failure) -> Result<Value, Failure> {
    let reason = f.message.clone();
    let id = data.document_id.clone();
    let owned: bool = ctx
        .run("mark-failed", || async {
            // An event naming a document that is not the sender's touches nothing.
            let retriable = |e: crate::library::LibraryError| Failure::retriable(e.to_string());
            if s.library
                .document(&data.user_id, &id)
                .await
                .map_err(retriable)?
                .is_none()
            {
                return Ok(false);
            }
            s.library
                .set_status(&id, DocumentStatus::Failed, Some(&reason), None)
                .await
                .map_err(retriable)?;
            Ok(true)
        })
        .await?;
    if !owned {
        return Err(f);
    }
    ctx.send_events(
        "notify-failed",
        vec![processed_event(
            data,
            json!({
                "documentId": data.document_id, "userId": data.user_id, "status": "failed",
                "error": f.message, "runId": ctx.run_id().as_str(),
            }),
        )],
    )
    .await?;
    let _ = s.notices.send(DocumentNotice {
        document_id: data.document_id.clone(),
        user_id: data.user_id.clone(),
        status: "failed".into(),
        ready: 0,
        failed: 0,
    });
    Err(f)
}

/// Applies a `plan.approved` event: `data.agents`, when present, is the list of agent
/// names to run (in order of importance); agents added by the reviewer get an empty
/// focus. Unknown names are an error.
/// The `document.processed` event (ready or failed), sent for the document's owner so
/// the runs it starts (webhook deliveries) belong to them.
fn processed_event(data: &Uploaded, body: Value) -> EventInput {
    let mut e = EventInput::new(PROCESSED_EVENT, body);
    e.user = Some(json!({ "id": data.user_id }));
    e
}

pub fn apply_approval(plan: Plan, data: &Value) -> Result<Plan, String> {
    let Some(list) = data.get("agents") else {
        return Ok(plan);
    };
    let names = list
        .as_array()
        .ok_or_else(|| "plan.approved: agents must be a list of agent names".to_string())?;
    let mut agents = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let text = n
            .as_str()
            .ok_or_else(|| format!("plan.approved: agents[{i}] is not a string"))?;
        let name = AgentName::parse(text).ok_or_else(|| {
            let all: Vec<&str> = AgentName::ALL.iter().map(|a| a.as_str()).collect();
            format!(
                "plan.approved: unknown agent '{text}' (known: {})",
                all.join(", ")
            )
        })?;
        if agents.iter().any(|a: &PlannedAgent| a.name == name) {
            continue;
        }
        let previous = plan.agents.iter().find(|a| a.name == name);
        agents.push(PlannedAgent {
            name,
            priority: (agents.len() + 1) as u8,
            focus: previous.map(|p| p.focus.clone()).unwrap_or_default(),
            reason: previous
                .map(|p| p.reason.clone())
                .unwrap_or_else(|| "added by the reviewer".into()),
        });
    }
    Ok(Plan {
        agents,
        rationale: format!("{} (edited at review)", plan.rationale),
    })
}
