//! Inngest SDK apps (admins): sync an app by its serve URL, list the synced apps.
//! The SDK-facing endpoints (`/fn/register`, `/e/{key}`, `/dev`) come from
//! `learnflow-inngest`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{json_body, AnyJson, ErrorBody};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// An app to sync.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncApp {
    /// The app's serve URL, e.g. `http://127.0.0.1:3000/api/inngest`.
    #[schema(max_length = 2000, pattern = "^https?://\\S+$")]
    pub url: String,
}

fn gateway(
    state: &AppState,
    caller: &Caller,
) -> Result<std::sync::Arc<learnflow_inngest::Gateway>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::NotFound("not found".into()));
    }
    state.inngest.clone().filter(|g| g.enabled()).ok_or_else(|| {
        ApiError::NotFound("the Inngest gateway is off (set LEARNFLOW_INNGEST_DEV=true)".into())
    })
}

/// Syncs an Inngest SDK app: LearnFlow asks it for its functions (an in-band sync,
/// `PUT url`) and registers them on the engine. Options LearnFlow cannot honour yet
/// are named in a 422 and nothing is registered.
#[utoipa::path(
    post, path = "/api/inngest/apps", tag = "inngest",
    request_body = SyncApp,
    responses((status = 200, description = "`{url, appName, sdk, functions, syncedAt}`", body = AnyJson),
              (status = 400, body = ErrorBody), (status = 404, description = "Not an admin, or the gateway is off", body = ErrorBody),
              (status = 422, description = "The app did not answer, or uses options LearnFlow cannot run yet", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let gw = gateway(&state, &caller)?;
    let body: SyncApp = json_body(&body)?;
    let url = reqwest::Url::parse(&body.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| ApiError::BadRequest("field 'url' must be an http:// or https:// URL".into()))?;
    match gw.sync(url.as_str()).await {
        Ok(app) => Ok(Json(json!(app))),
        Err(e) => Err(ApiError::Unprocessable(e.to_string())),
    }
}

/// The synced Inngest apps, with their functions, the last sync error, and whether
/// each still answers (`unreachable`, `lastSeenAt`).
#[utoipa::path(
    get, path = "/api/inngest/apps", tag = "inngest",
    responses((status = 200, description = "`{apps: [{url, appName, sdk, functions, syncedAt, error, lastSeenAt, unreachable}]}`", body = AnyJson),
              (status = 404, description = "Not an admin, or the gateway is off", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let gw = gateway(&state, &caller)?;
    Ok(Json(json!({ "apps": gw.apps() })))
}
