//! # learnflow-inngest: unmodified Inngest SDK apps on LearnFlow's engine
//!
//! An app built with the official `inngest` npm SDK (`serve({client, functions})`)
//! points at LearnFlow (`INNGEST_DEV=http://learnflow:7878` or `INNGEST_BASE_URL`)
//! and its functions run as engine functions: synced configs become engine functions
//! with the same options ([`config`]), events sent to `/e/{key}` trigger native and SDK
//! functions alike ([`api`]), and every op the app answers with becomes a durable
//! engine step ([`exec`]), so SDK runs get the engine's guarantees and appear in the
//! same runs API and dashboard as native ones.
//!
//! The protocol is described in `shared/research/inngest-protocol.md`; this crate
//! implements dev mode (no signing) with step runs, parallel steps, sleeps, waits for
//! events, invokes, retries (`RetryAfterError`, `NonRetriableError`) and caught step
//! failures.

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod exec;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use learnflow_engine::{Ctx, Engine};
use parking_lot::RwLock;
use serde::Serialize;

pub use config::{FunctionConfig, RegisterRequest, SyncedFunction};

/// How the gateway is set up.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Dev mode: `/fn/register` and `/e/{key}` accept any caller (like `inngest dev`),
    /// for local use. Off: the gateway's endpoints answer 404.
    pub dev: bool,
    /// Longest wait for one call to an app.
    pub call_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            dev: false,
            call_timeout: Duration::from_secs(300),
        }
    }
}

/// A synced app as the gateway knows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// Its serve URL.
    pub url: String,
    /// Its id.
    pub app_name: String,
    /// SDK and version (`js:v4.24.0`).
    pub sdk: Option<String>,
    /// Its functions' ids.
    pub functions: Vec<String>,
    /// Last successful sync (ms since the epoch).
    pub synced_at: i64,
    /// Why the last sync failed, if it did.
    pub error: Option<String>,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The app could not be reached or answered badly.
    #[error("the app at {url} did not sync: {reason}")]
    App {
        /// Its URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Some functions use what LearnFlow cannot run yet; nothing was registered.
    #[error("{}", .0.join("; "))]
    Unsupported(Vec<String>),
}

/// The gateway: synced apps and the engine they run on.
pub struct Gateway {
    engine: Arc<Engine>,
    config: GatewayConfig,
    call: Arc<exec::CallOptions>,
    apps: RwLock<BTreeMap<String, AppInfo>>,
}

fn now_ms() -> i64 {
    learnflow_engine::Timestamp::now_utc().millis()
}

impl Gateway {
    /// A gateway registering synced functions on `engine`.
    pub fn new(engine: Arc<Engine>, config: GatewayConfig) -> Arc<Self> {
        let call = Arc::new(exec::CallOptions {
            http: reqwest::Client::new(),
            timeout: config.call_timeout,
        });
        Arc::new(Gateway {
            engine,
            config,
            call,
            apps: RwLock::new(BTreeMap::new()),
        })
    }

    /// Whether the gateway answers (dev mode).
    pub fn enabled(&self) -> bool {
        self.config.dev
    }

    /// Registers an app's functions (all, or none when any cannot run here).
    pub fn register(&self, req: &RegisterRequest) -> Result<Vec<String>, SyncError> {
        let mut planned = Vec::new();
        let mut problems = Vec::new();
        for f in &req.functions {
            match f.plan() {
                Ok(p) => planned.push(p),
                Err(mut e) => problems.append(&mut e),
            }
        }
        if !problems.is_empty() {
            self.apps
                .write()
                .entry(req.url.clone())
                .or_insert_with(|| AppInfo {
                    url: req.url.clone(),
                    app_name: req.app_name.clone(),
                    sdk: req.sdk.clone(),
                    functions: Vec::new(),
                    synced_at: 0,
                    error: None,
                })
                .error = Some(problems.join("; "));
            return Err(SyncError::Unsupported(problems));
        }
        let mut ids = Vec::new();
        for (synced, function) in planned {
            let synced = Arc::new(synced);
            let call = self.call.clone();
            let s = synced.clone();
            let def = function.handler(move |ctx: Ctx| exec::run(ctx, call.clone(), s.clone()));
            self.engine
                .register(def)
                .map_err(|e| SyncError::Unsupported(vec![format!("function '{}': {e}", synced.id)]))?;
            ids.push(synced.id.clone());
        }
        tracing::info!(app = %req.app_name, url = %req.url, functions = ids.len(), "synced an Inngest app");
        self.apps.write().insert(
            req.url.clone(),
            AppInfo {
                url: req.url.clone(),
                app_name: req.app_name.clone(),
                sdk: req.sdk.clone(),
                functions: ids.clone(),
                synced_at: now_ms(),
                error: None,
            },
        );
        Ok(ids)
    }

    /// Syncs the app serving at `url` in-band: `PUT url` with `X-Inngest-Sync-Kind:
    /// in_band`, whose answer carries the function configs.
    pub async fn sync(&self, url: &str) -> Result<AppInfo, SyncError> {
        let fail = |reason: String| SyncError::App {
            url: url.to_string(),
            reason,
        };
        let resp = self
            .call
            .http
            .put(url)
            .timeout(Duration::from_secs(30))
            .header("content-type", "application/json")
            .header("x-inngest-sync-kind", "in_band")
            .header("x-inngest-server-kind", "dev")
            .body(serde_json::json!({ "url": url }).to_string())
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("it answered {status}: {text}")));
        }
        let mut req: RegisterRequest = serde_json::from_str(&text)
            .map_err(|e| fail(format!("its sync answer is not understood: {e}")))?;
        if req.url.is_empty() {
            req.url = url.to_string();
        }
        self.register(&req)?;
        self.apps
            .read()
            .get(&req.url)
            .cloned()
            .ok_or_else(|| fail("the app vanished while syncing".into()))
    }

    /// The synced apps.
    pub fn apps(&self) -> Vec<AppInfo> {
        self.apps.read().values().cloned().collect()
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}
