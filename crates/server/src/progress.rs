//! Realtime progress. A recorder task follows the engine's live updates, keeps the
//! ones that belong to a document's runs in the progress log (`progress` table) and
//! feeds the metrics; each SSE stream reads the log after its last event id, so a
//! client that reconnects with `Last-Event-ID` gets what it missed. Streams wake on
//! this node's writes and also poll once a second (another node may run the steps).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::Event as SseEvent;
use futures::Stream;
use learnflow_engine::{RunId, RunUpdate, UpdateKind};
use learnflow_pipeline::steps::{FUNCTION_ID, UPLOADED_EVENT};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::db::{NewProgress, ProgressRow};
use crate::AppState;

/// Wakes the SSE streams of one document when its progress is written (streams of
/// other documents sleep on).
#[derive(Default)]
pub struct ProgressHub {
    docs: parking_lot::Mutex<HashMap<String, tokio::sync::watch::Sender<i64>>>,
}

impl ProgressHub {
    /// A receiver that changes when `document_id` gets new progress.
    pub fn subscribe(&self, document_id: &str) -> tokio::sync::watch::Receiver<i64> {
        let mut docs = self.docs.lock();
        if docs.len() > 10_000 {
            docs.retain(|_, tx| tx.receiver_count() > 0);
        }
        docs.entry(document_id.to_string())
            .or_insert_with(|| tokio::sync::watch::channel(0).0)
            .subscribe()
    }

    /// Progress up to `seq` was written for `document_id`.
    pub fn notify(&self, document_id: &str, seq: i64) {
        let mut docs = self.docs.lock();
        if let Some(tx) = docs.get(document_id) {
            if tx.receiver_count() == 0 {
                docs.remove(document_id);
            } else {
                tx.send_replace(seq);
            }
        }
    }
}

/// The SSE event name of an update.
pub fn kind_name(kind: &UpdateKind) -> &'static str {
    match kind {
        UpdateKind::Queued => "run.queued",
        UpdateKind::Started => "run.started",
        UpdateKind::StepStarted { .. } => "step.started",
        UpdateKind::StepCompleted { .. } => "step.completed",
        UpdateKind::StepRetrying { .. } => "step.retrying",
        UpdateKind::StepFailed { .. } => "step.failed",
        UpdateKind::Sleeping { .. } => "run.sleeping",
        UpdateKind::Waiting { .. } => "run.waiting",
        UpdateKind::Retrying { .. } => "run.retrying",
        UpdateKind::Completed { .. } => "completed",
        UpdateKind::Failed { .. } => "failed",
        UpdateKind::Cancelled { .. } => "cancelled",
    }
}

/// Whether an event name ends a run.
pub fn is_terminal(kind: &str) -> bool {
    matches!(kind, "completed" | "failed" | "cancelled")
}

/// Follows the engine's updates until `stop` flips, then writes what is still queued
/// and returns; never returns early on errors.
pub async fn record(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut rx = state.engine.subscribe();
    let mut owners: HashMap<RunId, Option<(String, String)>> = HashMap::new();
    let mut started: HashMap<(RunId, String), i64> = HashMap::new();
    let mut stopping = false;
    loop {
        let mut batch = Vec::new();
        if !stopping {
            let first = tokio::select! {
                u = rx.recv() => Some(u),
                _ = stop.changed() => None,
            };
            match first {
                Some(Ok(u)) => batch.push(u),
                Some(Err(RecvError::Lagged(n))) => {
                    tracing::warn!(
                        missed = n,
                        "the progress recorder fell behind; some live events are missing"
                    );
                    continue;
                }
                Some(Err(RecvError::Closed)) => return,
                None => stopping = true,
            }
        }
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(u) => batch.push(u),
                Err(_) => break,
            }
        }
        if stopping && batch.is_empty() {
            return;
        }
        let mut rows = Vec::new();
        for u in batch {
            observe(&state, &u, &mut started);
            if u.function_id != FUNCTION_ID {
                continue;
            }
            if !owners.contains_key(&u.run_id) {
                if owners.len() > 50_000 {
                    owners.clear();
                }
                let owner = match state.engine.get_run(&u.run_id).await {
                    Ok(d) if d.event.name == UPLOADED_EVENT => {
                        let doc = d.event.data["documentId"].as_str().map(str::to_string);
                        let user = d.event.data["userId"].as_str().map(str::to_string);
                        doc.zip(user)
                    }
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(run = %u.run_id, "progress: cannot read the run: {e}");
                        None
                    }
                };
                owners.insert(u.run_id.clone(), owner);
            }
            let Some(Some((document_id, user_id))) = owners.get(&u.run_id).cloned() else {
                continue;
            };
            if u.kind.is_terminal() {
                owners.remove(&u.run_id);
            }
            rows.push(to_row(&u, document_id, user_id));
        }
        let docs: std::collections::BTreeSet<String> = rows.iter().map(|r| r.document_id.clone()).collect();
        match state.db.append_progress(rows).await {
            Ok(Some(last)) => {
                for d in &docs {
                    state.progress.notify(d, last);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!("progress log write failed: {e}"),
        }
    }
}

fn observe(state: &AppState, u: &RunUpdate, started: &mut HashMap<(RunId, String), i64>) {
    match &u.kind {
        UpdateKind::StepStarted { step_id, .. } => {
            if started.len() > 100_000 {
                started.clear();
            }
            started.insert((u.run_id.clone(), step_id.clone()), u.at.millis());
        }
        UpdateKind::StepCompleted { step_id }
        | UpdateKind::StepFailed { step_id, .. }
        | UpdateKind::StepRetrying { step_id, .. } => {
            if let Some(t0) = started.remove(&(u.run_id.clone(), step_id.clone())) {
                let secs = (u.at.millis() - t0).max(0) as f64 / 1000.0;
                state.metrics.observe_step(&u.function_id, secs);
            }
            if matches!(u.kind, UpdateKind::StepRetrying { .. }) {
                state.metrics.retry(&u.function_id);
            }
        }
        _ => {}
    }
}

fn to_row(u: &RunUpdate, document_id: String, user_id: String) -> NewProgress {
    let kind = kind_name(&u.kind).to_string();
    let mut body = serde_json::to_value(&u.kind).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut body {
        for (from, to) in [("step_id", "stepId"), ("next_at", "nextAt")] {
            if let Some(v) = m.remove(from) {
                m.insert(to.into(), v);
            }
        }
        m.insert("type".into(), json!(kind));
        m.insert("runId".into(), json!(u.run_id.as_str()));
        m.insert("documentId".into(), json!(document_id));
        m.insert("at".into(), json!(u.at.millis()));
    }
    NewProgress {
        document_id,
        user_id,
        run_id: u.run_id.as_str().to_string(),
        at: u.at.millis(),
        kind,
        body,
    }
}

fn sse_event(row: &ProgressRow) -> SseEvent {
    SseEvent::default()
        .id(row.seq.to_string())
        .event(row.kind.clone())
        .data(row.body.to_string())
}

struct Cursor {
    state: AppState,
    document_id: String,
    after: i64,
    pending: VecDeque<ProgressRow>,
    ended_run: bool,
    wake: tokio::sync::watch::Receiver<i64>,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// The SSE stream of a document's progress after `after` (0: from the start). It ends
/// after a run's final event when nothing follows, or when the server shuts down.
pub fn stream(
    state: AppState,
    document_id: String,
    after: i64,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let cursor = Cursor {
        wake: state.progress.subscribe(&document_id),
        stop: state.stop.subscribe(),
        state,
        document_id,
        after,
        pending: VecDeque::new(),
        ended_run: false,
    };
    futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(row) = c.pending.pop_front() {
                c.after = row.seq;
                c.ended_run = is_terminal(&row.kind);
                return Some((Ok(sse_event(&row)), c));
            }
            if *c.stop.borrow() {
                return None;
            }
            match c.state.db.progress_after(&c.document_id, c.after, 500).await {
                Ok(rows) if !rows.is_empty() => {
                    c.pending = rows.into();
                    continue;
                }
                Ok(_) if c.ended_run => return None,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("progress read failed: {e}");
                }
            }
            tokio::select! {
                _ = c.wake.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = c.stop.changed() => return None,
            }
        }
    })
}
