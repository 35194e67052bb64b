//! `learnflow`: LearnFlow's one binary.
//!
//! Exit codes: 0 success, 1 the job failed, 2 bad usage or bad input.

mod cmd;
mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

/// An error caused by the caller's input (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[derive(Parser)]
#[command(
    name = "learnflow",
    version,
    about = "LearnFlow: durable AI pipelines that turn documents into study packs"
)]
struct Cli {
    /// Folder for the SQLite database, blobs and model caches.
    #[arg(long, global = true, env = "LEARNFLOW_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "LEARNFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Store URL: sqlite://PATH (default: DATA_DIR/learnflow.db).
    #[arg(long, global = true, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// SQLite commit durability: full (fsync every commit group) or normal.
    #[arg(long, global = true, env = "LEARNFLOW_SQLITE_DURABILITY")]
    sqlite_durability: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (uploads, live progress, questions, runs, webhooks).
    Serve(cmd::serve::ServeArgs),
    /// Manage API users and tokens.
    #[command(subcommand)]
    Users(cmd::users::UsersCommand),
    /// Turn a document into a study pack (resumes if interrupted).
    Process(cmd::process::ProcessArgs),
    /// Ask a question about a processed document; the answer cites its pages.
    Ask(cmd::ask::AskArgs),
    /// Approve (and optionally edit) the plan of a document waiting for review.
    Approve(cmd::approve::ApproveArgs),
    /// Manage the offline models.
    #[command(subcommand)]
    Models(cmd::models::ModelsCommand),
    /// Run a sample durable pipeline and print its step journal.
    Demo(cmd::demo::DemoArgs),
    /// Inspect, cancel and replay runs.
    #[command(subcommand)]
    Runs(cmd::runs::RunsCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEARNFLOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = match Config::load(
        cli.config.as_deref(),
        Overrides {
            data_dir: cli.data_dir,
            database_url: cli.database_url,
            sqlite_durability: cli.sqlite_durability,
        },
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(&config, args).await,
            Command::Users(c) => cmd::users::run(&config, c).await,
            Command::Process(args) => cmd::process::run(&config, args).await,
            Command::Ask(args) => cmd::ask::run(&config, args).await,
            Command::Approve(args) => cmd::approve::run(&config, args).await,
            Command::Models(c) => cmd::models::run(&config, c).await,
            Command::Demo(args) => cmd::demo::run(&config, args).await,
            Command::Runs(c) => cmd::runs::run(&config, c).await,
            Command::Bench(c) => cmd::bench::run(&config, c).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() || is_bad_input(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Engine errors caused by the caller's input.
fn is_bad_input(e: &anyhow::Error) -> bool {
    use learnflow_engine::EngineError as E;
    matches!(
        e.downcast_ref::<E>(),
        Some(
            E::InvalidExpression { .. }
                | E::InvalidFunction { .. }
                | E::UnknownFunction(_)
                | E::InvalidEvent(_)
                | E::EventTooLarge { .. }
                | E::RunNotFound(_)
                | E::InvalidRunState { .. }
        )
    )
}
