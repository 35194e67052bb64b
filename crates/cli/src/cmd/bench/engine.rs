//! `learnflow bench engine`: on one fresh database file, in one process,
//!
//! 1. raw baseline: single-row inserts, each in its own `BEGIN IMMEDIATE … COMMIT`
//!    with the engine's pragmas (what one step costs if nothing else is done);
//! 2. sequential step overhead: one run of N trivial steps, the time between
//!    consecutive step completions (each step's result committed before the next
//!    starts), its mean, p99 and ratio to the raw commit;
//! 3. throughput: M runs of K trivial steps sent at once, runs/s and steps/s
//!    (concurrent runs share group commits);
//! 4. peak RSS.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use learnflow_engine::{Ctx, Engine, EventInput, Function, UpdateKind};
use learnflow_store_sqlite::{raw_commit_baseline, Durability, SqliteOptions, SqliteStore};
use serde_json::json;
use std::sync::Mutex;

use super::{peak_rss_mb, percentile};
use crate::cmd::human_us;
use crate::config::Config;
use crate::UsageError;

/// Options of `learnflow bench engine`.
#[derive(Args)]
pub struct EngineBenchArgs {
    /// Steps in the sequential run.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Runs in the throughput test.
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    /// Steps per run in the throughput test.
    #[arg(long, default_value_t = 10)]
    run_steps: usize,
    /// Commits in the raw baseline.
    #[arg(long, default_value_t = 1000)]
    raw: usize,
    /// Keep the benchmark database instead of deleting it.
    #[arg(long)]
    keep: bool,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(config: &Config, args: EngineBenchArgs) -> anyhow::Result<ExitCode> {
    if args.steps == 0 || args.runs == 0 || args.run_steps == 0 || args.raw == 0 {
        return Err(UsageError("--steps, --runs, --run-steps and --raw must be at least 1".into()).into());
    }
    let durability = config.sqlite_durability;
    let path = config
        .data_dir
        .join(format!("bench-engine-{}.db", ulid::Ulid::new()));
    let store = Arc::new(
        SqliteStore::open_with(
            &path,
            SqliteOptions {
                durability,
                ..Default::default()
            },
        )
        .with_context(|| format!("creating the benchmark database {}", path.display()))?,
    );
    eprintln!(
        "bench engine: SQLite {} (synchronous={}), {} raw commits, {} sequential steps, {} runs × {} steps",
        path.display(),
        if durability == Durability::Full {
            "FULL"
        } else {
            "NORMAL"
        },
        args.raw,
        args.steps,
        args.runs,
        args.run_steps
    );

    // 1. Raw baseline on the same file.
    let raw_path = path.clone();
    let raw_n = args.raw;
    let raw =
        tokio::task::spawn_blocking(move || raw_commit_baseline(&raw_path, durability, raw_n)).await??;
    let mut raw_us: Vec<u64> = raw.iter().map(|d| d.as_micros() as u64).collect();
    let raw_mean = raw_us.iter().sum::<u64>() as f64 / raw_us.len() as f64;
    raw_us.sort_unstable();

    let engine = Engine::builder(store.clone()).build();

    // 2. Sequential steps.
    let marks: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::with_capacity(args.steps + 1)));
    let m2 = marks.clone();
    let steps = args.steps;
    engine.register(
        Function::new("bench-sequential")
            .on_event("bench.sequential")
            .handler(move |ctx: Ctx| {
                let marks = m2.clone();
                async move {
                    if let Ok(mut m) = marks.lock() {
                        m.push(Instant::now());
                    }
                    for i in 0..steps {
                        ctx.run("step", || async move { Ok(i) }).await?;
                        if let Ok(mut m) = marks.lock() {
                            m.push(Instant::now());
                        }
                    }
                    Ok(steps)
                }
            }),
    )?;
    // 3. Many short runs.
    let run_steps = args.run_steps;
    engine.register(
        Function::new("bench-parallel")
            .on_event("bench.parallel")
            .handler(move |ctx: Ctx| async move {
                for i in 0..run_steps {
                    ctx.run("step", || async move { Ok(i) }).await?;
                }
                Ok(run_steps)
            }),
    )?;
    engine.start().await?;

    let seq = engine
        .send(EventInput::new("bench.sequential", json!({})))
        .await?;
    let run = engine.wait_for_run(&seq.runs[0]).await?;
    anyhow::ensure!(
        run.status.as_str() == "completed",
        "the sequential run ended {}",
        run.status
    );
    let marks = marks.lock().map(|m| m.clone()).unwrap_or_default();
    let mut step_us: Vec<u64> = marks
        .windows(2)
        .map(|w| (w[1] - w[0]).as_micros() as u64)
        .collect();
    anyhow::ensure!(
        step_us.len() == args.steps,
        "expected {} step timings, got {}",
        args.steps,
        step_us.len()
    );
    let step_mean = step_us.iter().sum::<u64>() as f64 / step_us.len() as f64;
    step_us.sort_unstable();
    let step_p99 = percentile(&step_us, 99.0);

    let mut updates = engine.subscribe();
    let events: Vec<EventInput> = (0..args.runs)
        .map(|i| EventInput::new("bench.parallel", json!({ "i": i })))
        .collect();
    let t0 = Instant::now();
    let receipts = engine.send_many(events).await?;
    let expected: usize = receipts.iter().map(|r| r.runs.len()).sum();
    let mut done = 0usize;
    let mut failed = 0usize;
    let deadline = tokio::time::sleep(Duration::from_secs(600));
    tokio::pin!(deadline);
    while done < expected {
        tokio::select! {
            u = updates.recv() => match u {
                Ok(u) if u.function_id == "bench-parallel" => match u.kind {
                    UpdateKind::Completed { .. } => done += 1,
                    UpdateKind::Failed { .. } | UpdateKind::Cancelled { .. } => { done += 1; failed += 1; }
                    _ => {}
                },
                Ok(_) => {}
                Err(e) => anyhow::bail!("lost progress updates: {e}"),
            },
            _ = &mut deadline => anyhow::bail!("the throughput runs did not finish within 10 minutes"),
        }
    }
    let elapsed = t0.elapsed();
    anyhow::ensure!(failed == 0, "{failed} throughput runs did not complete");
    let runs_per_sec = expected as f64 / elapsed.as_secs_f64();
    let steps_per_sec = (expected * args.run_steps) as f64 / elapsed.as_secs_f64();
    engine.shutdown().await;
    drop(engine);
    drop(store);
    let rss = peak_rss_mb();
    if !args.keep {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    let ratio = step_mean / raw_mean;
    eprintln!();
    eprintln!(
        "  {:<44} {:>12}",
        "raw commit (baseline), mean",
        human_us(raw_mean as u64)
    );
    eprintln!(
        "  {:<44} {:>12}",
        "raw commit, p99",
        human_us(percentile(&raw_us, 99.0))
    );
    eprintln!(
        "  {:<44} {:>12}",
        "engine step, sequential, mean",
        human_us(step_mean as u64)
    );
    eprintln!(
        "  {:<44} {:>12}",
        "engine step, sequential, p99",
        human_us(step_p99)
    );
    eprintln!(
        "  {:<44} {:>12.2}",
        "overhead ratio (step mean / raw mean)", ratio
    );
    eprintln!("  {:<44} {:>12.0}", "throughput, runs/s", runs_per_sec);
    eprintln!("  {:<44} {:>12.0}", "throughput, steps/s", steps_per_sec);
    eprintln!(
        "  {:<44} {:>12}",
        "throughput, wall time",
        human_us(elapsed.as_micros() as u64)
    );
    eprintln!("  {:<44} {:>12.1}", "peak RSS, MiB", rss);
    if args.json {
        println!(
            "{}",
            json!({
                "raw_commit_us": round1(raw_mean),
                "step_overhead_us": round1(step_mean),
                "overhead_ratio": (ratio * 100.0).round() / 100.0,
                "step_p99_us": step_p99,
                "runs_per_sec": runs_per_sec.round(),
                "steps_per_sec": steps_per_sec.round(),
                "peak_rss_mb": round1(rss),
                "store": "sqlite",
                "synchronous": if durability == Durability::Full { "full" } else { "normal" },
                "sequential_steps": args.steps,
                "runs": args.runs,
                "steps_per_run": args.run_steps,
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
