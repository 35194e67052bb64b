//! # learnflow-server: `learnflow serve`
//!
//! The HTTP API on top of the engine and the pipeline. An upload stores the file,
//! sends `document.uploaded` and answers 202 at once; the engine does the rest while
//! the client watches over Server-Sent Events.
//!
//! | module | owns |
//! |---|---|
//! | [`api`] | the routes under `/api`, `/healthz`, `/metrics` and the OpenAPI document |
//! | [`auth`] | bearer tokens to users, the per-user rate limit |
//! | [`db`] | users, hashed tokens, webhooks, the progress log |
//! | [`progress`] | live updates into the progress log, SSE streams out of it |
//! | [`webhooks`] | the durable, signed `deliver-webhooks` function |
//! | [`metrics`] | Prometheus counters and histograms |
//! | [`ui`] | the web UI: embedded page, scripts and vendored libraries, cookie sign-in |
//! | [`error`] | API errors and their JSON shape |

pub mod api;
pub mod auth;
pub mod db;
pub mod error;
pub mod metrics;
pub mod progress;
pub mod ui;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use learnflow_engine::Engine;
use learnflow_pipeline::services::Services;
use tokio::net::TcpListener;

use crate::auth::RateLimiter;
use crate::db::ServerDb;
use crate::metrics::Metrics;

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest upload, in bytes (413 above).
    pub max_upload_bytes: u64,
    /// Requests per second per user, on average.
    pub rate_per_sec: f64,
    /// Requests a user may burst above the rate.
    pub rate_burst: u32,
    /// How long running steps may go on after SIGTERM.
    pub shutdown_grace: Duration,
    /// Whether webhooks may target loopback, private and link-local addresses.
    pub webhook_allow_private: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_upload_bytes: 50 * 1024 * 1024,
            rate_per_sec: 50.0,
            rate_burst: 100,
            shutdown_grace: Duration::from_secs(10),
            webhook_allow_private: true,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The engine (started).
    pub engine: Arc<Engine>,
    /// The pipeline's services (library, blobs, providers, embedder).
    pub services: Arc<Services>,
    /// Users, tokens, webhooks, progress.
    pub db: ServerDb,
    /// Settings.
    pub config: Arc<ServerConfig>,
    /// Per-user request budget.
    pub limiter: Arc<RateLimiter>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The last progress entry written by this node (wakes SSE streams).
    pub progress: Arc<progress::ProgressHub>,
    /// Flips to true when the server shuts down (ends SSE streams).
    pub stop: Arc<tokio::sync::watch::Sender<bool>>,
    /// The Inngest SDK gateway, when configured.
    pub inngest: Option<Arc<learnflow_inngest::Gateway>>,
}

impl AppState {
    /// State for an engine (with `process-document` and `deliver-webhooks` registered)
    /// and its services.
    pub fn new(engine: Arc<Engine>, services: Arc<Services>, db: ServerDb, config: ServerConfig) -> Self {
        AppState {
            engine,
            services,
            db,
            limiter: Arc::new(RateLimiter::new(config.rate_per_sec, config.rate_burst)),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            progress: Arc::new(progress::ProgressHub::default()),
            stop: Arc::new(tokio::sync::watch::channel(false).0),
            inngest: None,
        }
    }

    /// With the Inngest SDK gateway (its routes are served at `/fn/register`,
    /// `/e/{key}` and `/dev`, its admin API at `/api/inngest/apps`).
    pub fn with_inngest(mut self, gateway: Arc<learnflow_inngest::Gateway>) -> Self {
        self.inngest = Some(gateway);
        self
    }
}

/// Keeps synced Inngest apps in the server's tables.
pub struct InngestApps(pub ServerDb);

impl learnflow_inngest::AppStore for InngestApps {
    fn save(&self, url: String, body: String) -> learnflow_inngest::BoxFuture<Result<(), String>> {
        let db = self.0.clone();
        Box::pin(async move {
            let at = learnflow_engine::Timestamp::now_utc().millis();
            db.put_inngest_app(&url, &body, at)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn load(&self) -> learnflow_inngest::BoxFuture<Result<Vec<(String, String)>, String>> {
        let db = self.0.clone();
        Box::pin(async move { db.inngest_apps().await.map_err(|e| e.to_string()) })
    }
}

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener failed.
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the API on `listener` until `shutdown` resolves; then stops taking requests,
/// ends SSE streams, lets running steps go on for the grace period and stops the
/// engine (unfinished work resumes on the next start).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // The recorder outlives the HTTP side: steps that finish during the grace period
    // still reach the progress log.
    let (recorder_stop, recorder_rx) = tokio::sync::watch::channel(false);
    let recorder = tokio::spawn(progress::record(state.clone(), recorder_rx));
    let app = api::router(state.clone());
    let stop = state.stop.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new requests");
            let _ = stop.send(true);
        })
        .await;
    let _ = state.stop.send(true);
    state
        .engine
        .shutdown_gracefully(state.config.shutdown_grace)
        .await;
    let _ = recorder_stop.send(true);
    let _ = recorder.await;
    result.map_err(ServeError::Io)
}
