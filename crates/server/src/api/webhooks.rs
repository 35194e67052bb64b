//! A user's webhooks: register a URL (the signing secret is shown once), list, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{json_body, AnyJson, ErrorBody};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// Most webhooks per user.
const MAX_WEBHOOKS: usize = 20;

/// A webhook to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http://` or `https://` URL that receives `document.processed` deliveries.
    pub url: String,
}

/// Registers a webhook; the answer holds its signing secret, shown only here.
#[utoipa::path(
    post, path = "/api/webhooks", tag = "webhooks",
    request_body = NewWebhook,
    responses((status = 201, description = "`{id, url, secret, createdAt}`", body = AnyJson),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: NewWebhook = json_body(&body)?;
    let url = reqwest::Url::parse(body.url.trim())
        .map_err(|e| ApiError::BadRequest(format!("field 'url' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::BadRequest(
            "field 'url' must be an http:// or https:// URL with a host".into(),
        ));
    }
    if state.db.webhooks(caller.id()).await?.len() >= MAX_WEBHOOKS {
        return Err(ApiError::Conflict(format!(
            "a user may have at most {MAX_WEBHOOKS} webhooks"
        )));
    }
    let hook = state.db.add_webhook(caller.id(), url.as_str()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": hook.id, "url": hook.url, "secret": hook.secret, "createdAt": hook.created_at })),
    ))
}

/// The caller's webhooks (without secrets).
#[utoipa::path(
    get, path = "/api/webhooks", tag = "webhooks",
    responses((status = 200, description = "`{webhooks: [...]}`", body = AnyJson), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let hooks = state.db.webhooks(caller.id()).await?;
    Ok(Json(json!({ "webhooks": hooks })))
}

/// Deletes a webhook.
#[utoipa::path(
    delete, path = "/api/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.db.delete_webhook(caller.id(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("webhook '{id}' not found")))
    }
}
