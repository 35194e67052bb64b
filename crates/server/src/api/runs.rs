//! Events in, runs out: send events, list and inspect runs (with the step journal),
//! cancel and replay them, and the registered functions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use learnflow_engine::{EventInput, ReplayFrom, RunFilter, RunId, RunStatus, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::{json_body, AnyJson, ErrorBody};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// Most events in one request.
const MAX_EVENTS: usize = 100;

/// Sends one event (an object) or several (an array) for integrations. A non-admin's
/// events are sent as that user (`user.id` and `data.userId` are set to the caller).
#[utoipa::path(
    post, path = "/api/events", tag = "runs",
    request_body(content = EventsIn, description = "`{name, data?, id?}` or an array of them"),
    responses((status = 202, description = "`{events: [{id, runs}]}`", body = AnyJson),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn send_events(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let value: Value = json_body(&body)?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(_) => vec![value],
        other => {
            return Err(ApiError::BadRequest(format!(
                "the body must be an event object or an array of events, not {}",
                learnflow_engine::event::json_type(&other)
            )))
        }
    };
    if items.len() > MAX_EVENTS {
        return Err(ApiError::BadRequest(format!(
            "send at most {MAX_EVENTS} events at a time"
        )));
    }
    if items.is_empty() {
        return Ok((StatusCode::ACCEPTED, Json(json!({ "events": [] }))));
    }
    let mut inputs = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let mut input: EventInput =
            serde_json::from_value(item).map_err(|e| ApiError::BadRequest(format!("event [{i}]: {e}")))?;
        if input.name.trim() != input.name || input.name.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "event [{i}]: field 'name' must be non-empty, without surrounding whitespace"
            )));
        }
        if !caller.is_admin() {
            if input.name.trim().starts_with("learnflow/") {
                return Err(ApiError::BadRequest(format!(
                    "event [{i}]: names starting with 'learnflow/' are reserved"
                )));
            }
            input.user = Some(json!({ "id": caller.id() }));
            if let Value::Object(m) = &mut input.data {
                m.insert("userId".into(), json!(caller.id()));
            }
        } else if input.user.is_none() {
            input.user = Some(json!({ "id": caller.id() }));
        }
        inputs.push(input);
    }
    let receipts = state.engine.send_many(inputs).await?;
    let events: Vec<Value> = receipts
        .iter()
        .map(|r| json!({ "id": r.event_id, "duplicate": r.duplicate, "runs": r.runs }))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({ "events": events }))))
}

/// Filters for the runs list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only this function.
    function: Option<String>,
    /// Only these states, comma-separated.
    #[param(
        pattern = "^(queued|running|sleeping|waiting|completed|failed|cancelled)(,(queued|running|sleeping|waiting|completed|failed|cancelled))*$"
    )]
    status: Option<String>,
    /// Only this user's runs (admins; others always see only their own).
    user: Option<String>,
    /// Created at or after (Unix milliseconds; RFC 3339 is accepted too).
    #[param(pattern = "^[0-9]{1,15}$")]
    since: Option<String>,
    /// Created before (Unix milliseconds; RFC 3339 is accepted too).
    #[param(pattern = "^[0-9]{1,15}$")]
    until: Option<String>,
    /// Started by this event id.
    event: Option<String>,
    /// The `nextCursor` of the previous page.
    cursor: Option<i64>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// An event to send.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct EventIn {
    /// Its name (names starting with `learnflow/` are reserved).
    #[schema(min_length = 1, max_length = 256, pattern = "^(?!learnflow/)\\S(.*\\S)?$")]
    name: String,
    /// Its payload.
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
    /// An id; an id seen in the last 24 hours starts nothing again.
    #[schema(min_length = 1, max_length = 256, pattern = "\\S")]
    id: Option<String>,
}

/// One event or several.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum EventsIn {
    /// One event.
    One(EventIn),
    /// Up to 100 events.
    Many(Vec<EventIn>),
}

fn parse_time(field: &str, v: &str) -> Result<Timestamp, ApiError> {
    if let Ok(ms) = v.trim().parse::<i64>() {
        return Ok(Timestamp::from_millis(ms));
    }
    chrono::DateTime::parse_from_rfc3339(v.trim())
        .map(|t| Timestamp::from_millis(t.timestamp_millis()))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "query '{field}' must be Unix milliseconds or RFC 3339, not '{v}'"
            ))
        })
}

fn filter_for(caller: &Caller, q: RunsQuery) -> Result<RunFilter, ApiError> {
    let statuses = match &q.status {
        Some(s) => s
            .split(',')
            .map(|p| {
                p.trim().parse::<RunStatus>().map_err(|_| {
                    ApiError::BadRequest(format!("query 'status': unknown state '{}'", p.trim()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    if q.limit.is_some_and(|l| l == 0 || l > 1000) {
        return Err(ApiError::BadRequest("query 'limit' must be 1 to 1000".into()));
    }
    let owner = if caller.is_admin() {
        q.user.clone()
    } else {
        Some(caller.id().to_string())
    };
    Ok(RunFilter {
        function_id: q.function.clone(),
        statuses,
        since: q.since.as_deref().map(|v| parse_time("since", v)).transpose()?,
        until: q.until.as_deref().map(|v| parse_time("until", v)).transpose()?,
        event_id: q.event.clone(),
        owner,
        before_seq: q.cursor,
        limit: q.limit,
    })
}

/// Runs, newest first, paged; with counts by status for the same filter.
#[utoipa::path(
    get, path = "/api/runs", tag = "runs",
    params(RunsQuery),
    responses((status = 200, description = "`{runs, nextCursor, counts}`", body = AnyJson),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let filter = filter_for(&caller, q)?;
    let page = state.engine.list_runs(&filter).await?;
    let counts = state.engine.count_runs(&filter).await?;
    let counts: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    Ok(Json(
        json!({ "runs": page.runs, "nextCursor": page.next_cursor, "counts": counts }),
    ))
}

async fn visible_run(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<learnflow_engine::RunDetail, ApiError> {
    let not_found = || ApiError::NotFound(format!("run '{id}' not found"));
    let detail = match state.engine.get_run(&RunId(id.to_string())).await {
        Ok(d) => d,
        Err(learnflow_engine::EngineError::RunNotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if caller.is_admin() || detail.run.owner.as_deref() == Some(caller.id()) {
        Ok(detail)
    } else {
        Err(not_found())
    }
}

/// A run: its event, output or error, and the step journal with attempts and timings.
#[utoipa::path(
    get, path = "/api/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, description = "`{run, event, steps}`", body = AnyJson), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let detail = visible_run(&state, &caller, &id).await?;
    Ok(Json(serde_json::to_value(detail).map_err(ApiError::internal)?))
}

/// Cancels a run that has not ended.
#[utoipa::path(
    post, path = "/api/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 202, description = "Cancelled", body = AnyJson), (status = 404, body = ErrorBody),
              (status = 409, description = "Already ended", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn cancel_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    visible_run(&state, &caller, &id).await?;
    state.engine.cancel(&RunId(id.clone())).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "runId": id, "status": "cancelled" })),
    ))
}

/// How to replay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// `start` (empty journal) or `failed-step` (keep what completed before the failure).
    #[schema(value_type = ReplayFromName)]
    pub from: String,
}

/// Where a replay starts.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "kebab-case")]
pub enum ReplayFromName {
    /// An empty journal.
    Start,
    /// Keep what completed before the failure.
    FailedStep,
}

/// Replays a failed or cancelled run as a new run with the same event.
#[utoipa::path(
    post, path = "/api/runs/{id}/replay", tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    request_body = ReplayBody,
    responses((status = 202, description = "`{runId}` of the new run", body = AnyJson),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Not failed or cancelled", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn replay_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: ReplayBody = json_body(&body)?;
    let from = match body.from.as_str() {
        "start" => ReplayFrom::Start,
        "failed-step" => ReplayFrom::FailedStep,
        other => {
            return Err(ApiError::BadRequest(format!(
                "field 'from' must be 'start' or 'failed-step', not '{other}'"
            )))
        }
    };
    visible_run(&state, &caller, &id).await?;
    let new_id = state.engine.replay(&RunId(id.clone()), from).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "runId": new_id, "replayOf": id })),
    ))
}

/// The registered functions: triggers, options and current concurrency use (per key
/// for admins; totals for others).
#[utoipa::path(
    get, path = "/api/functions", tag = "runs",
    responses((status = 200, description = "`{functions: [...]}`", body = AnyJson), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn functions(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let list: Vec<Value> = state
        .engine
        .functions()
        .into_iter()
        .map(|f| {
            let usage: Vec<Value> = f
                .concurrency
                .iter()
                .filter(|u| {
                    caller.is_admin()
                        || u.key
                            .key
                            .as_deref()
                            .is_none_or(|k| k.trim_matches('"') == caller.id())
                })
                .map(|u| {
                    json!({
                        "limitIndex": u.key.limit_index, "key": u.key.key,
                        "inUse": u.in_use, "limit": u.limit, "waiting": u.waiting,
                    })
                })
                .collect();
            json!({ "id": f.config.id, "config": f.config, "concurrency": usage })
        })
        .collect();
    Ok(Json(json!({ "functions": list })))
}
