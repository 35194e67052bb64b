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
    #[schema(
        max_length = 2000,
        pattern = "^https?://(([A-Za-z0-9-]+\\.)*[A-Za-z][A-Za-z0-9-]*|(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?(/\\S*)?$"
    )]
    pub url: String,
}

/// Registers a webhook; the answer holds its signing secret, shown only here.
#[utoipa::path(
    post, path = "/api/webhooks", tag = "webhooks",
    request_body = NewWebhook,
    responses((status = 201, description = "`{id, url, secret, createdAt}`", body = AnyJson),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, description = "The user has 20 webhooks already", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: NewWebhook = json_body(&body)?;
    let url = reqwest::Url::parse(&body.url)
        .ok()
        .filter(|_| plausible_url(&body.url))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "field 'url' must be an http:// or https:// URL with a host name (letters, digits, dots, \
                 hyphens) or IPv4 address, an optional port and a path without spaces"
                    .into(),
            )
        })?;
    if !state.config.webhook_allow_private {
        crate::webhooks::check_public(url.as_str())
            .await
            .map_err(|e| ApiError::BadRequest(format!("field 'url': {e}")))?;
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

/// The shape the OpenAPI document gives for `url`: scheme, a host name whose last label
/// starts with a letter (or an IPv4 address), an optional port, a path without spaces.
fn plausible_url(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://")) else {
        return false;
    };
    if s.len() > 2000 || s.chars().any(char::is_whitespace) {
        return false;
    }
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port {
        let digits = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits || p.parse::<u32>().map_or(true, |n| n > 65_535) {
            return false;
        }
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let labels: Vec<&str> = host.split('.').collect();
    labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && labels
            .last()
            .is_some_and(|l| l.as_bytes()[0].is_ascii_alphabetic())
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
