//! The HTTP endpoints SDK apps call: `POST /fn/register` (out-of-band sync),
//! `POST /e/{key}` (events, as `inngest.send()` sends them), `GET /dev` (the v3
//! SDK's "is a dev server there?" probe), v4 checkpoints and `POST /v1/signals`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use learnflow_engine::EventInput;
use serde_json::{json, Value};

use crate::Gateway;

/// The routes, to merge into the server's router.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/fn/register", post(register))
        .route("/e/{key}", post(send_events))
        .route("/dev", get(dev_info))
        .route("/v1/checkpoint/{run_id}/async", post(checkpoint))
        .route("/v1/signals", post(send_signal))
        .with_state(gateway)
}

fn off() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({ "error": "the Inngest gateway is off (set LEARNFLOW_INNGEST_DEV=true)", "status": 404 }),
        ),
    )
        .into_response()
}

/// Errors carry `status` in the body: the SDK reads that, not the HTTP status.
fn error(status: StatusCode, message: String) -> Response {
    (
        status,
        Json(json!({ "error": message, "status": status.as_u16() })),
    )
        .into_response()
}

/// Calls an app makes to the API (register, checkpoint): the gateway must be on and,
/// in cloud mode, the caller must hold the signing key's bearer token.
fn refuse_app_caller(gw: &Gateway, headers: &axum::http::HeaderMap) -> Option<Response> {
    if !gw.enabled() {
        return Some(off());
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    (!gw.may_register(auth)).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "a signing key's bearer token is needed".into(),
        )
    })
}

async fn register(
    State(gw): State<Arc<Gateway>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = refuse_app_caller(&gw, &headers) {
        return refused;
    }
    let text = String::from_utf8_lossy(&body);
    match gw.accept(&text, None).await {
        Ok(app) => Json(json!({
            "ok": true,
            "modified": true,
            "app_id": app.app_name,
            "sync_id": ulid::Ulid::new().to_string(),
            "status": 200,
        }))
        .into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn send_events(
    State(gw): State<Arc<Gateway>>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if !gw.enabled() {
        return off();
    }
    if !gw.accepts_event_key(&key) {
        return error(StatusCode::UNAUTHORIZED, "Event key not found".into());
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")),
    };
    let list = match value {
        Value::Array(a) => a,
        v @ Value::Object(_) => vec![v],
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected an event object or an array of them".into(),
            )
        }
    };
    let mut inputs = Vec::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        let Some(name) = v["name"].as_str().filter(|n| !n.trim().is_empty()) else {
            return error(StatusCode::BAD_REQUEST, format!("event {i} has no name"));
        };
        let data = match &v["data"] {
            Value::Null => json!({}),
            d @ Value::Object(_) => d.clone(),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("event {i}: data must be an object"),
                )
            }
        };
        let mut input = EventInput::new(name, data);
        input.id = Some(match v["id"].as_str() {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => ulid::Ulid::new().to_string(),
        });
        if let Some(ts) = v["ts"].as_i64() {
            input.ts = Some(learnflow_engine::Timestamp::from_millis(ts));
        }
        if v["user"].is_object() {
            input.user = Some(v["user"].clone());
        }
        inputs.push(input);
    }
    match gw.engine().send_many(inputs).await {
        Ok(receipts) => Json(json!({
            "ids": receipts.iter().map(|r| r.event_id.clone()).collect::<Vec<_>>(),
            "status": 200,
        }))
        .into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn dev_info(State(gw): State<Arc<Gateway>>) -> Response {
    if !gw.dev() {
        return off();
    }
    Json(json!({
        "version": concat!("learnflow-", env!("CARGO_PKG_VERSION")),
        "isSingleNodeService": false,
        "functions": gw.apps().iter().flat_map(|a| a.functions.clone()).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// v4 checkpointing: steps an app ran inside a call, recorded by the run's executor
/// before this answers 200. 503 when no call of that run is in flight here (the SDK
/// then returns the steps in its answer).
async fn checkpoint(
    State(gw): State<Arc<Gateway>>,
    Path(run_id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = refuse_app_caller(&gw, &headers) {
        return refused;
    }
    let steps = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v["steps"].as_array().cloned().unwrap_or_default(),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed checkpoint: {e}")),
    };
    if gw.checkpoints().deliver(&run_id, steps).await {
        Json(json!({})).into_response()
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no call of run {run_id} is in flight here"),
        )
    }
}

/// `inngest.sendSignal()` / `step.sendSignal()`: resumes the run waiting for the
/// signal (`{data: {run_id}}`), or 404 when none is (the SDK reads that as "no run").
async fn send_signal(
    State(gw): State<Arc<Gateway>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = refuse_app_caller(&gw, &headers) {
        return refused;
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")),
    };
    let Some(signal) = v["signal"].as_str().filter(|s| !s.trim().is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "field 'signal' must be a non-empty string".into(),
        );
    };
    let input = EventInput::new(
        crate::exec::signal_event(signal),
        json!({ "signal": signal, "data": v["data"] }),
    );
    match gw.engine().send(input).await {
        Ok(receipt) => match receipt.resumed.first() {
            Some(run) => Json(json!({ "data": { "run_id": run.to_string() } })).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                format!("no run is waiting for signal '{signal}'"),
            ),
        },
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
