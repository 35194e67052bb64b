//! `learnflow bench inngest`: the engine's two workloads (one run of 1,000 sequential
//! trivial steps; 1,000 runs of 10 steps sent at once) written with the npm Inngest
//! SDK (the conformance app's `bench-seq` and `bench-par`, real `inngest` 4.24.0 over
//! express) and run through LearnFlow's executor, beside the same workloads as native
//! functions on the same store, in the same run.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use learnflow_engine::{Ctx, Engine, EventInput, Function, RunFilter, RunStatus, Store};
use learnflow_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

use crate::cmd::human_us;
use crate::config::Config;
use crate::UsageError;

/// Options of `learnflow bench inngest`.
#[derive(Args)]
pub struct InngestBenchArgs {
    /// Steps in the sequential run.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Runs in the throughput test.
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    /// The conformance app (its npm packages installed with `npm ci`).
    #[arg(long, default_value = "conformance/inngest-app")]
    app_dir: PathBuf,
    /// The SDK major version to use (4 or 3).
    #[arg(long, default_value = "4")]
    sdk: String,
    /// Most calls in flight to the app (0: no limit), as `[server]
    /// inngest_max_calls_per_app`.
    #[arg(long, default_value_t = 0)]
    max_calls: usize,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

struct AppProcess(Child);

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_app(args: &InngestBenchArgs, learnflow: &str) -> anyhow::Result<(AppProcess, String)> {
    let tsx = args.app_dir.join("node_modules/.bin/tsx");
    if !tsx.exists() {
        return Err(UsageError(format!(
            "{} is missing: run `npm ci` in {}",
            tsx.display(),
            args.app_dir.display()
        ))
        .into());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    // One process (`node --import tsx`), so killing it stops the app.
    let mut child = Command::new("node")
        .args(["--import", "tsx", "app.ts"])
        .current_dir(&args.app_dir)
        .env("SDK_MAJOR", &args.sdk)
        .env("PORT", port.to_string())
        .env("INNGEST_DEV", learnflow)
        .env_remove("STEP_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the conformance app")?;
    let out = child.stdout.take().context("the app's stdout")?;
    let mut lines = BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("listening on") => break,
            Some(_) => {}
            None => anyhow::bail!("the conformance app exited before listening"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Ok((AppProcess(child), format!("http://127.0.0.1:{port}/api/inngest")))
}

/// Waits until `count` runs of `function` have completed (counting from `before`).
async fn wait_completed(engine: &Engine, function: &str, before: usize, count: usize) -> anyhow::Result<()> {
    let filter = RunFilter {
        function_id: Some(function.into()),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let counts = engine.count_runs(&filter).await?;
        let done: usize = counts
            .iter()
            .filter(|(s, _)| *s == RunStatus::Completed)
            .map(|(_, n)| *n as usize)
            .sum();
        let failed: usize = counts
            .iter()
            .filter(|(s, _)| *s == RunStatus::Failed)
            .map(|(_, n)| *n as usize)
            .sum();
        anyhow::ensure!(failed == 0, "{failed} runs of {function} failed");
        if done >= before + count {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{function} did not finish within 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn native(id: &str, event: &str) -> learnflow_engine::FunctionDef {
    Function::new(id)
        .on_event(event)
        .retries(0)
        .handler(|ctx: Ctx| async move {
            let n = ctx.event().data["steps"].as_u64().unwrap_or(10);
            for i in 0..n {
                ctx.run("s", || async move { Ok(i) }).await?;
            }
            Ok(n)
        })
}

/// Runs of `function` that needed more than one attempt (a call that failed).
async fn retried_runs(engine: &Engine, function: &str) -> anyhow::Result<usize> {
    let mut filter = RunFilter {
        function_id: Some(function.into()),
        limit: Some(500),
        ..Default::default()
    };
    let mut retried = 0;
    loop {
        let page = engine.list_runs(&filter).await?;
        retried += page.runs.iter().filter(|r| r.attempt > 0).count();
        match page.next_cursor {
            Some(c) => filter.before_seq = Some(c),
            None => return Ok(retried),
        }
    }
}

/// Time of one run of `steps` sequential steps, and of `runs` runs of 10 steps.
async fn workloads(
    engine: &Engine,
    seq: (&str, &str),
    par: (&str, &str),
    steps: usize,
    runs: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let t0 = Instant::now();
    engine
        .send(EventInput::new(seq.1, json!({ "steps": steps })))
        .await?;
    wait_completed(engine, seq.0, 0, 1).await?;
    let sequential = t0.elapsed();
    let events: Vec<EventInput> = (0..runs)
        .map(|i| EventInput::new(par.1, json!({ "steps": 10, "i": i })))
        .collect();
    let t1 = Instant::now();
    engine.send_many(events).await?;
    wait_completed(engine, par.0, 0, runs).await?;
    Ok((sequential, t1.elapsed()))
}

pub async fn run(config: &Config, args: InngestBenchArgs) -> anyhow::Result<ExitCode> {
    if args.steps == 0 || args.runs == 0 {
        return Err(UsageError("--steps and --runs must be at least 1".into()).into());
    }
    let path = config
        .data_dir
        .join(format!("bench-inngest-{}.db", ulid::Ulid::new()));
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open_with(
            &path,
            SqliteOptions {
                durability: config.sqlite_durability,
                ..Default::default()
            },
        )
        .with_context(|| format!("creating {}", path.display()))?,
    );
    let engine = Arc::new(Engine::builder(store).build());
    engine.register(native("native-seq", "native/seq"))?;
    engine.register(native("native-par", "native/par"))?;
    let gateway = learnflow_inngest::Gateway::new(
        engine.clone(),
        learnflow_inngest::GatewayConfig {
            dev: true,
            max_calls_per_app: args.max_calls,
            ..Default::default()
        },
    );
    // The SDK-facing routes (the app pushes v4 checkpoints to them).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = learnflow_inngest::api::router(gateway.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let (_app, url) = start_app(&args, &base)?;
    gateway.sync(&url).await.context("syncing the conformance app")?;
    engine.start().await?;
    eprintln!(
        "bench inngest: SDK v{} through LearnFlow vs native, {} sequential steps, {} runs × 10 steps",
        args.sdk, args.steps, args.runs
    );
    let (native_seq, native_par) = workloads(
        &engine,
        ("native-seq", "native/seq"),
        ("native-par", "native/par"),
        args.steps,
        args.runs,
    )
    .await?;
    let (sdk_seq, sdk_par) = workloads(
        &engine,
        ("conformance-app-bench-seq", "bench/seq"),
        ("conformance-app-bench-par", "bench/par"),
        args.steps,
        args.runs,
    )
    .await?;
    let retried = retried_runs(&engine, "conformance-app-bench-par").await?
        + retried_runs(&engine, "conformance-app-bench-seq").await?;
    engine.shutdown().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let per_step = |d: Duration| d.as_secs_f64() * 1e6 / args.steps as f64;
    let per_sec = |d: Duration| (args.runs * 10) as f64 / d.as_secs_f64();
    eprintln!();
    eprintln!(
        "  {:<44} {:>12}",
        "native step, sequential, mean",
        human_us(per_step(native_seq) as u64)
    );
    eprintln!(
        "  {:<44} {:>12}",
        "SDK step, sequential, mean",
        human_us(per_step(sdk_seq) as u64)
    );
    eprintln!(
        "  {:<44} {:>12.0}",
        "native throughput, steps/s",
        per_sec(native_par)
    );
    eprintln!("  {:<44} {:>12.0}", "SDK throughput, steps/s", per_sec(sdk_par));
    eprintln!("  {:<44} {:>12}", "SDK runs retried after a failed call", retried);
    if args.json {
        println!(
            "{}",
            json!({
                "sdk": format!("inngest-js v{}", args.sdk),
                "sdk_step_overhead_us": (per_step(sdk_seq) * 10.0).round() / 10.0,
                "native_step_overhead_us": (per_step(native_seq) * 10.0).round() / 10.0,
                "sdk_steps_per_sec": per_sec(sdk_par).round(),
                "native_steps_per_sec": per_sec(native_par).round(),
                "sdk_runs_retried": retried,
                "sequential_steps": args.steps,
                "runs": args.runs,
                "steps_per_run": 10,
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}
