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
//! implements dev and cloud mode (signed calls, verified answers) with step runs,
//! parallel steps, sleeps, waits for events and signals, invokes, `step.fetch`,
//! `step.ai.infer`, retries (`RetryAfterError`, `NonRetriableError`, Inngest's backoff),
//! caught step failures, v4 checkpointing, and the function options (all but
//! `batchEvents.if`).

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod exec;
pub mod signing;

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
    /// Cloud mode: requests to apps are signed with this key and their answers
    /// verified; `/fn/register` needs the key's bearer token. Turns the gateway on.
    pub signing_key: Option<signing::SigningKey>,
    /// Keys `/e/{key}` accepts; empty: any key in dev mode, none in cloud mode.
    pub event_keys: Vec<String>,
    /// The wait between attempts of a step that failed without a `Retry-After`; by
    /// default Inngest's own schedule ([`inngest_backoff`]).
    pub retry_backoff: learnflow_engine::RetryPolicy,
    /// Most calls in flight to one app (0: no limit); more wait their turn.
    pub max_calls_per_app: usize,
}

/// A schedule like Inngest's (15 s, 30 s, 1 m, 2 m, … up to 2 h), with
/// `base` as its first wait.
pub fn inngest_backoff(base: Duration) -> learnflow_engine::RetryPolicy {
    learnflow_engine::RetryPolicy {
        base,
        factor: 2.0,
        max_delay: Duration::from_secs(2 * 3600),
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            dev: false,
            call_timeout: Duration::from_secs(300),
            signing_key: None,
            event_keys: Vec::new(),
            retry_backoff: inngest_backoff(Duration::from_secs(15)),
            max_calls_per_app: 0,
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
    /// Last time the app answered a sync or a health check (ms since the epoch).
    pub last_seen_at: Option<i64>,
    /// Why the last health check failed, while the app does not answer.
    pub unreachable: Option<String>,
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
    /// A register request LearnFlow cannot read.
    #[error("{0}")]
    Malformed(String),
    /// Some functions use what LearnFlow cannot run yet; nothing was registered.
    #[error("{}", .0.join("; "))]
    Unsupported(Vec<String>),
}

/// A boxed future, as [`AppStore`] returns them.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Where synced apps are kept, so a restarted node (or another node) knows them.
pub trait AppStore: Send + Sync {
    /// Keeps the register body of the app at `url` (replacing an earlier one).
    fn save(&self, url: String, body: String) -> BoxFuture<Result<(), String>>;
    /// Every kept app as `(url, register body)`, oldest sync first.
    fn load(&self) -> BoxFuture<Result<Vec<(String, String)>, String>>;
}

/// The gateway: synced apps and the engine they run on.
pub struct Gateway {
    engine: Arc<Engine>,
    config: GatewayConfig,
    call: Arc<exec::CallOptions>,
    apps: RwLock<BTreeMap<String, AppInfo>>,
    /// A hash of the register body last applied per URL, so a refresh from the store
    /// only re-registers what changed.
    applied: parking_lot::Mutex<std::collections::HashMap<String, u64>>,
    store: Option<Arc<dyn AppStore>>,
}

fn now_ms() -> i64 {
    learnflow_engine::Timestamp::now_utc().millis()
}

impl Gateway {
    /// A gateway registering synced functions on `engine`.
    pub fn new(engine: Arc<Engine>, config: GatewayConfig) -> Arc<Self> {
        Self::with_store(engine, config, None)
    }

    /// A gateway that keeps every successful sync in `store`.
    pub fn with_store(
        engine: Arc<Engine>,
        config: GatewayConfig,
        store: Option<Arc<dyn AppStore>>,
    ) -> Arc<Self> {
        let call = Arc::new(exec::CallOptions {
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(64)
                .build()
                .unwrap_or_default(),
            timeout: config.call_timeout,
            key: config.signing_key.clone(),
            checkpoints: Arc::new(exec::Checkpoints::default()),
            inflight: exec::Inflight::new(config.max_calls_per_app),
        });
        Arc::new(Gateway {
            engine,
            config,
            call,
            apps: RwLock::new(BTreeMap::new()),
            applied: parking_lot::Mutex::new(std::collections::HashMap::new()),
            store,
        })
    }

    /// Whether the gateway answers (dev mode, or cloud mode with a signing key).
    pub fn enabled(&self) -> bool {
        self.config.dev || self.config.signing_key.is_some()
    }

    /// Whether it runs in dev mode (no signing).
    pub fn dev(&self) -> bool {
        self.config.dev && self.config.signing_key.is_none()
    }

    /// Whether an app's `Authorization` header may register functions.
    pub fn may_register(&self, authorization: Option<&str>) -> bool {
        match &self.config.signing_key {
            None => self.config.dev,
            Some(k) => authorization.is_some_and(|a| k.bearer_matches(a)),
        }
    }

    /// Whether `/e/{key}` takes events under this key.
    pub fn accepts_event_key(&self, key: &str) -> bool {
        if self.config.event_keys.is_empty() {
            return self.dev();
        }
        self.config.event_keys.iter().any(|k| k == key)
    }

    /// Registers an app's functions (all, or none when any cannot run here). A re-sync
    /// replaces the app's functions: ones it no longer serves are removed from the
    /// engine. An app keeps its functions when it moves to another URL (apps are known
    /// by their id, as in Inngest).
    pub fn register(&self, req: &RegisterRequest) -> Result<Vec<String>, SyncError> {
        let mut planned = Vec::new();
        let mut problems = Vec::new();
        for f in &req.functions {
            match f.plan() {
                Ok(p) => planned.push(p),
                Err(mut e) => problems.append(&mut e),
            }
        }
        let mut apps = self.apps.write();
        let owned: std::collections::HashSet<String> =
            apps.values().flat_map(|a| a.functions.iter().cloned()).collect();
        let registered: std::collections::HashSet<String> =
            self.engine.functions().into_iter().map(|f| f.config.id).collect();
        for (synced, _) in &planned {
            if registered.contains(&synced.id) && !owned.contains(&synced.id) {
                problems.push(format!(
                    "function '{}': the id is taken by a LearnFlow function",
                    synced.id
                ));
            }
        }
        if !problems.is_empty() {
            apps.entry(req.url.clone())
                .or_insert_with(|| AppInfo {
                    url: req.url.clone(),
                    app_name: req.app_name.clone(),
                    sdk: req.sdk.clone(),
                    functions: Vec::new(),
                    synced_at: 0,
                    error: None,
                    last_seen_at: None,
                    unreachable: None,
                })
                .error = Some(problems.join("; "));
            return Err(SyncError::Unsupported(problems));
        }
        let mut ids = Vec::new();
        let mut defs = Vec::new();
        for (synced, function) in planned {
            let synced = Arc::new(synced);
            let call = self.call.clone();
            let s = synced.clone();
            defs.push(
                function
                    .backoff(self.config.retry_backoff.clone())
                    .handler(move |ctx: Ctx| exec::run(ctx, call.clone(), s.clone())),
            );
            ids.push(synced.id.clone());
        }
        // All or nothing: a function the engine refuses leaves the app as it was.
        self.engine
            .register_all(defs)
            .map_err(|e| SyncError::Unsupported(vec![e.to_string()]))?;
        // The app's earlier functions (under this URL, or under an older URL of the same
        // app) that it no longer serves.
        let earlier: Vec<String> = apps
            .iter()
            .filter(|(url, a)| *url == &req.url || a.app_name == req.app_name)
            .map(|(url, _)| url.clone())
            .collect();
        let mut dropped = Vec::new();
        for url in earlier {
            if let Some(old) = apps.remove(&url) {
                dropped.extend(old.functions.into_iter().filter(|f| !ids.contains(f)));
            }
        }
        let still_owned: std::collections::HashSet<&String> =
            apps.values().flat_map(|a| a.functions.iter()).collect();
        for id in dropped.iter().filter(|id| !still_owned.contains(id)) {
            self.engine.unregister(id);
            tracing::info!(function = %id, app = %req.app_name, "the app no longer serves this function");
        }
        tracing::info!(app = %req.app_name, url = %req.url, functions = ids.len(), "synced an Inngest app");
        let now = now_ms();
        apps.insert(
            req.url.clone(),
            AppInfo {
                url: req.url.clone(),
                app_name: req.app_name.clone(),
                sdk: req.sdk.clone(),
                functions: ids.clone(),
                synced_at: now,
                error: None,
                last_seen_at: Some(now),
                unreachable: None,
            },
        );
        Ok(ids)
    }

    /// Registers the app a register body describes and keeps the body (see
    /// [`AppStore`]); `fallback_url` names the app when the body does not.
    pub async fn accept(&self, body: &str, fallback_url: Option<&str>) -> Result<AppInfo, SyncError> {
        let reason = |what: String| match fallback_url {
            Some(url) => SyncError::App {
                url: url.to_string(),
                reason: what,
            },
            None => SyncError::Malformed(what),
        };
        let mut req: RegisterRequest = serde_json::from_str(body)
            .map_err(|e| reason(format!("the register request is not understood: {e}")))?;
        if req.url.is_empty() {
            req.url = fallback_url
                .ok_or_else(|| reason("the register request names no app url".into()))?
                .to_string();
        }
        self.register(&req)?;
        self.applied.lock().insert(req.url.clone(), body_hash(body));
        if let Some(store) = &self.store {
            if let Err(e) = store.save(req.url.clone(), body.to_string()).await {
                tracing::warn!(url = %req.url, "could not keep the synced app: {e}");
            }
        }
        self.apps
            .read()
            .get(&req.url)
            .cloned()
            .ok_or_else(|| SyncError::App {
                url: req.url.clone(),
                reason: "the app vanished while syncing".into(),
            })
    }

    /// Registers apps kept by an earlier sync (at start-up, and when another node
    /// synced them since): each register body not applied here yet. An app that no
    /// longer registers is logged and listed with its error.
    pub fn restore(&self, apps: &[(String, String)]) {
        for (url, body) in apps {
            let hash = body_hash(body);
            if self.applied.lock().get(url) == Some(&hash) {
                continue;
            }
            self.applied.lock().insert(url.clone(), hash);
            let outcome = serde_json::from_str::<RegisterRequest>(body)
                .map_err(|e| e.to_string())
                .and_then(|r| self.register(&r).map(|_| ()).map_err(|e| e.to_string()));
            if let Err(e) = outcome {
                tracing::warn!(%url, "a kept Inngest app did not register: {e}");
            }
        }
    }

    /// Applies syncs made on other nodes (from the [`AppStore`]) and checks that every
    /// app still answers (`GET` on its serve URL), every `every`, until the gateway is
    /// dropped.
    pub fn spawn_upkeep(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(gw) = weak.upgrade() else { return };
                if let Some(store) = &gw.store {
                    match store.load().await {
                        Ok(apps) => gw.restore(&apps),
                        Err(e) => tracing::warn!("could not read the synced Inngest apps: {e}"),
                    }
                }
                gw.check_apps().await;
            }
        })
    }

    /// Asks every synced app whether it is there (`GET` on its serve URL) and records
    /// the answer in [`AppInfo::unreachable`] / [`AppInfo::last_seen_at`].
    pub async fn check_apps(&self) {
        let urls: Vec<String> = self.apps.read().keys().cloned().collect();
        for url in urls {
            let answer = self
                .call
                .http
                .get(&url)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            let problem = match answer {
                Ok(r) if r.headers().contains_key("x-inngest-sdk") || r.status().is_success() => None,
                Ok(r) => Some(format!(
                    "it answered {} without an Inngest SDK header",
                    r.status()
                )),
                Err(e) => Some(http_error(&e)),
            };
            if let Some(app) = self.apps.write().get_mut(&url) {
                match &problem {
                    None => {
                        app.last_seen_at = Some(now_ms());
                        app.unreachable = None;
                    }
                    Some(p) => {
                        if app.unreachable.is_none() {
                            tracing::warn!(%url, "a synced Inngest app does not answer: {p}");
                        }
                        app.unreachable = Some(p.clone());
                    }
                }
            }
        }
    }

    /// Syncs the app serving at `url` in-band: `PUT url` with `X-Inngest-Sync-Kind:
    /// in_band`, whose answer carries the function configs.
    pub async fn sync(&self, url: &str) -> Result<AppInfo, SyncError> {
        let fail = |reason: String| {
            if let Some(known) = self.apps.write().get_mut(url) {
                known.error = Some(format!("the app did not answer: {reason}"));
            }
            SyncError::App {
                url: url.to_string(),
                reason,
            }
        };
        let body = signing::canonical(&serde_json::json!({ "url": url }));
        let mut req = self
            .call
            .http
            .put(url)
            .timeout(Duration::from_secs(30))
            .header("content-type", "application/json")
            .header("x-inngest-sync-kind", "in_band")
            .header("x-inngest-server-kind", if self.dev() { "dev" } else { "cloud" });
        if let Some(k) = &self.config.signing_key {
            req = req.header("x-inngest-signature", k.sign(body.as_bytes(), now_ms() / 1000));
        }
        let resp = req.body(body).send().await.map_err(|e| fail(http_error(&e)))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| fail(http_error(&e)))?;
        if !status.is_success() {
            return Err(fail(format!("it answered {status}: {text}")));
        }
        let app = self.accept(&text, Some(url)).await;
        if let Err(SyncError::App { reason, .. }) = &app {
            if let Some(known) = self.apps.write().get_mut(url) {
                known.error = Some(reason.clone());
            }
        }
        app
    }

    /// The synced apps.
    pub fn apps(&self) -> Vec<AppInfo> {
        self.apps.read().values().cloned().collect()
    }

    /// Calls in flight that accept checkpoints.
    pub fn checkpoints(&self) -> &exec::Checkpoints {
        &self.call.checkpoints
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

fn body_hash(body: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

/// An HTTP client error with its causes (reqwest's own text leaves them out, e.g.
/// "error sending request" without "connection refused").
pub(crate) fn http_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
