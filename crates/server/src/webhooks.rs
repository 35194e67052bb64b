//! Webhooks: when a document is processed (or fails), each of its owner's webhooks gets
//! a signed JSON POST. Delivery is the engine function `deliver-webhooks` (on
//! `document.processed`), one step per webhook, so a receiver that is down is retried
//! with backoff, durably, and a delivery that succeeded is never repeated.
//!
//! ## Signature
//!
//! Headers: `LearnFlow-Webhook-Id` (the webhook), `LearnFlow-Delivery` (the event id;
//! the same on every retry, so receivers can dedupe), `LearnFlow-Timestamp` (Unix
//! seconds) and `LearnFlow-Signature: v1=<hex>`, where the hex is
//! HMAC-SHA256(secret, `"{timestamp}.{body}"`) over the exact body bytes. Receivers
//! should recompute it, compare in constant time, and reject timestamps older than a
//! few minutes.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use learnflow_engine::{Ctx, Failure, Function, FunctionDef, RetryPolicy};
use learnflow_pipeline::steps::PROCESSED_EVENT;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::db::ServerDb;

/// The delivery function's id.
pub const FUNCTION_ID: &str = "deliver-webhooks";

/// `v1=<hex>` for this secret, timestamp and body.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

// HMAC accepts keys of any length, so `new_from_slice` cannot fail.
fn unreachable_hmac() -> ! {
    panic!("HMAC-SHA256 rejected a key, which it never does")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Target {
    id: String,
    url: String,
}

/// How deliveries are made.
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// Attempts after the first, per webhook.
    pub retries: u32,
    /// Backoff between attempts.
    pub backoff: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            retries: 8,
            backoff: RetryPolicy {
                base: Duration::from_secs(2),
                factor: 2.0,
                max_delay: Duration::from_secs(600),
            },
            timeout: Duration::from_secs(10),
        }
    }
}

/// The `deliver-webhooks` function.
pub fn deliver_webhooks(db: ServerDb, options: DeliveryOptions) -> FunctionDef {
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .build()
        .unwrap_or_default();
    let shared = Arc::new((db, client));
    Function::new(FUNCTION_ID)
        .name("Deliver webhooks for a processed document")
        .on_event(PROCESSED_EVENT)
        .retries(options.retries)
        .backoff(options.backoff)
        .concurrency(20, None)
        .handler(move |ctx: Ctx| {
            let shared = shared.clone();
            async move {
                let (db, client) = (&shared.0, &shared.1);
                let Some(user) = ctx.event().owner().map(str::to_string) else {
                    return Ok(json!({ "delivered": 0, "reason": "the event has no user" }));
                };
                let targets: Vec<Target> = ctx
                    .run("targets", || async {
                        let hooks = db
                            .webhooks(&user)
                            .await
                            .map_err(|e| Failure::retriable(e.to_string()))?;
                        Ok(hooks
                            .into_iter()
                            .map(|h| Target { id: h.id, url: h.url })
                            .collect::<Vec<_>>())
                    })
                    .await?;
                let event = ctx.event().clone();
                let body = json!({
                    "id": event.id,
                    "type": event.name,
                    "createdAt": event.ts.millis(),
                    "data": event.data,
                });
                let body = Arc::new(serde_json::to_vec(&body).unwrap_or_default());
                let results = futures::future::join_all(targets.iter().map(|t| {
                    let (body, user, event_id) = (body.clone(), user.clone(), event.id.clone());
                    let ctx = &ctx;
                    async move {
                        ctx.run(&format!("deliver-{}", t.id), || {
                            deliver(db, client, &user, t, &event_id, body.clone())
                        })
                        .await
                    }
                }))
                .await;
                let delivered = results.iter().filter(|r| r.is_ok()).count();
                let failed: Vec<Value> = results
                    .iter()
                    .zip(&targets)
                    .filter_map(|(r, t)| {
                        r.as_ref()
                            .err()
                            .map(|e| json!({ "webhook": t.id, "error": e.message }))
                    })
                    .collect();
                if !failed.is_empty() {
                    return Err(Failure::non_retriable(format!(
                        "{} of {} webhook deliveries failed for good",
                        failed.len(),
                        targets.len()
                    )));
                }
                Ok(json!({ "delivered": delivered }))
            }
        })
}

async fn deliver(
    db: &ServerDb,
    client: &reqwest::Client,
    user: &str,
    target: &Target,
    event_id: &str,
    body: Arc<Vec<u8>>,
) -> Result<Value, Failure> {
    let Some(hook) = db
        .webhook(user, &target.id)
        .await
        .map_err(|e| Failure::retriable(e.to_string()))?
    else {
        return Ok(json!({ "skipped": "the webhook was deleted" }));
    };
    let ts = learnflow_engine::Timestamp::now_utc().millis() / 1000;
    let sig = signature(&hook.secret, ts, &body);
    let resp = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("user-agent", "LearnFlow-Webhooks/1")
        .header("learnflow-webhook-id", &hook.id)
        .header("learnflow-delivery", event_id)
        .header("learnflow-timestamp", ts.to_string())
        .header("learnflow-signature", sig)
        .body(body.as_ref().clone())
        .send()
        .await
        .map_err(|e| Failure::retriable(format!("POST {}: {e}", hook.url)))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(json!({ "status": status.as_u16() }));
    }
    let msg = format!("POST {} answered {status}", hook.url);
    if status == reqwest::StatusCode::GONE {
        // The receiver says it will never accept this: stop retrying.
        return Err(Failure::non_retriable(msg));
    }
    if let Some(after) = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Err(Failure::retry_after(msg, Duration::from_secs(after.min(3600))));
    }
    Err(Failure::retriable(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = signature("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64);
        assert_ne!(a, signature("s3cret", 1_700_000_001, b"{\"a\":1}"));
        assert_ne!(a, signature("s3cret", 1_700_000_000, b"{\"a\":2}"));
        assert_ne!(a, signature("other", 1_700_000_000, b"{\"a\":1}"));
        // RFC 4231-style check against a known HMAC-SHA256 value.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
