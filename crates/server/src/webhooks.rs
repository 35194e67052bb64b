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
    /// Whether loopback, private and link-local targets are allowed.
    pub allow_private: bool,
}

/// Whether an address is loopback, private, link-local, shared (CGNAT), unspecified or
/// otherwise not a public destination.
pub fn is_private(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves a webhook URL's host and refuses private destinations.
pub async fn check_public(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or("the URL has no host")?
        .trim_matches(['[', ']']);
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("'{host}' resolves to no address"));
    }
    if let Some(a) = addrs.iter().find(|a| is_private(a.ip())) {
        return Err(format!(
            "'{host}' is a private address ({}), which this server does not allow for webhooks",
            a.ip()
        ));
    }
    Ok(())
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
            allow_private: true,
        }
    }
}

/// The `deliver-webhooks` function.
pub fn deliver_webhooks(db: ServerDb, options: DeliveryOptions) -> FunctionDef {
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .build()
        .unwrap_or_default();
    let allow_private = options.allow_private;
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
                            deliver(db, client, &user, t, &event_id, body.clone(), allow_private)
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
    allow_private: bool,
) -> Result<Value, Failure> {
    let Some(hook) = db
        .webhook(user, &target.id)
        .await
        .map_err(|e| Failure::retriable(e.to_string()))?
    else {
        return Ok(json!({ "skipped": "the webhook was deleted" }));
    };
    if !allow_private {
        // Checked at every attempt: a name may resolve elsewhere since it was registered.
        check_public(&hook.url)
            .await
            .map_err(|e| Failure::non_retriable(format!("not delivered to {}: {e}", hook.url)))?;
    }
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
    fn private_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "93.184.216.34",
            "2606:4700::1111",
            "100.128.0.1",
            "172.32.0.1",
        ] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

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
