//! `learnflow serve`: the HTTP API with the engine running behind it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use learnflow_engine::RetryPolicy;
use learnflow_server::webhooks::{deliver_webhooks, DeliveryOptions};
use learnflow_server::{AppState, ServerConfig};

use super::{app, open_server_db};
use crate::config::Config;
use crate::UsageError;

/// Arguments of `learnflow serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (env LEARNFLOW_LISTEN; default 127.0.0.1:7878; port 0 picks one).
    #[arg(long)]
    pub listen: Option<String>,
    /// Also run the `demo-steps` workload (`demo.steps` events), for trying several nodes.
    #[arg(long)]
    pub demo: bool,
    /// With --demo: append a line per step start and end to this file.
    #[arg(long, requires = "demo")]
    pub demo_log: Option<std::path::PathBuf>,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn run(config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen = args.listen.unwrap_or_else(|| config.server.listen.clone());
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let db = open_server_db(config).await?;
    if db.user_count().await? == 0 {
        let (user, token) = db.create_user("admin", true).await?;
        println!(
            "Created the admin user '{}' ({}). Its API token, shown only now:",
            user.name, user.id
        );
        println!("{token}");
    }
    let services = app::services(config).await?;
    let engine = app::engine(config, services.clone()).await?;
    let s = &config.server;
    engine.register(deliver_webhooks(
        db.clone(),
        DeliveryOptions {
            retries: s.webhook_retries,
            backoff: RetryPolicy {
                base: Duration::from_millis(s.webhook_backoff_ms.max(1)),
                factor: 2.0,
                max_delay: Duration::from_secs(600),
            },
            allow_private: s.webhook_allow_private,
            ..DeliveryOptions::default()
        },
    ))?;
    if args.demo {
        engine.register(super::demo::steps_function(args.demo_log.clone())?)?;
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| UsageError(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let engine = Arc::new(engine);
    // Synced Inngest apps are registered before the engine starts, so their runs left
    // over from before a restart are claimed at once.
    let signing_key = s
        .inngest_signing_key
        .as_deref()
        .map(learnflow_inngest::signing::SigningKey::new)
        .transpose()
        .map_err(UsageError)?;
    let inngest = if s.inngest_dev || signing_key.is_some() {
        let mode = if signing_key.is_some() {
            "cloud mode (signed)"
        } else {
            "dev mode"
        };
        eprintln!("Inngest SDK apps: {mode}; sync with POST /api/inngest/apps, events at /e/{{key}}");
        let gw = learnflow_inngest::Gateway::with_store(
            engine.clone(),
            learnflow_inngest::GatewayConfig {
                dev: s.inngest_dev,
                signing_key,
                event_keys: s.inngest_event_keys.clone(),
                retry_backoff: learnflow_inngest::inngest_backoff(Duration::from_millis(
                    s.inngest_retry_base_ms.max(1),
                )),
                max_calls_per_app: s.inngest_max_calls_per_app,
                ..Default::default()
            },
            Some(Arc::new(learnflow_server::InngestApps(db.clone()))),
        );
        gw.restore(&db.inngest_apps().await?);
        gw.spawn_upkeep(Duration::from_secs(s.inngest_check_secs.max(1)));
        Some(gw)
    } else {
        None
    };
    engine.start().await?;
    let mut state = AppState::new(
        engine.clone(),
        services,
        db,
        ServerConfig {
            max_upload_bytes: config.ingest.max_file_mb.saturating_mul(1024 * 1024),
            rate_per_sec: s.rate_limit,
            rate_burst: s.rate_burst,
            shutdown_grace: Duration::from_secs(s.shutdown_grace_secs),
            webhook_allow_private: s.webhook_allow_private,
        },
    );
    if let Some(gw) = inngest {
        state = state.with_inngest(gw);
    }
    println!("LearnFlow listening on http://{addr}");
    learnflow_server::serve(listener, state, shutdown_signal()).await?;
    eprintln!("LearnFlow stopped");
    Ok(ExitCode::SUCCESS)
}
