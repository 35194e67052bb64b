//! `learnflow demo`: a sample durable pipeline (extract → three parallel analyses →
//! a durable sleep → a summary whose first attempt fails and is retried), run on the
//! embedded engine and SQLite store in the data directory. Interrupt it (Ctrl-C, or
//! even `kill -9`) and run it again with the same `--batch-id`: it resumes where it
//! stopped, and no recorded step runs again.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use learnflow_engine::{Ctx, Engine, EventInput, Failure, Function, RunFilter, RunId, RunStatus};
use serde_json::{json, Value};

use super::open_store;
use super::runs::print_detail;
use crate::config::Config;
use crate::UsageError;

/// Options of `learnflow demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// How many runs to start.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// How long each step works, in milliseconds.
    #[arg(long, default_value_t = 150)]
    step_ms: u64,
    /// How long the durable cool-down sleep lasts, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    sleep_ms: u64,
    /// Make the first attempt of 'summarize' fail in each process, to show a retry.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fail_first: bool,
    /// Names this batch of runs; run again with the same id to resume it.
    #[arg(long)]
    batch_id: Option<String>,
    /// Append a line to this file whenever a step body starts and ends.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Print the journals as JSON.
    #[arg(long)]
    json: bool,
    /// Print only a summary line.
    #[arg(long)]
    quiet: bool,
}

struct Work {
    step_ms: u64,
    log: Option<Arc<std::sync::Mutex<std::fs::File>>>,
    failures: AtomicUsize,
    fail_first: bool,
}

impl Work {
    fn note(&self, what: &str, event: &str, step: &str) {
        if let Some(f) = &self.log {
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{what} {event} {step} {}", std::process::id());
            }
        }
    }

    async fn step(&self, event: &str, step: &str, out: Value) -> Result<Value, Failure> {
        self.note("start", event, step);
        tokio::time::sleep(Duration::from_millis(self.step_ms)).await;
        self.note("end", event, step);
        Ok(out)
    }
}

fn demo_function(work: Arc<Work>, sleep: Duration) -> learnflow_engine::FunctionDef {
    Function::new("demo-pipeline")
        .name("Demo pipeline")
        .on_event("demo.requested")
        .retries(3)
        .concurrency(4, None)
        .handler(move |ctx: Ctx| {
            let work = work.clone();
            async move {
                let ev = ctx.event().id.clone();
                let doc: Value = ctx
                    .run("extract", || {
                        work.step(&ev, "extract", json!({ "pages": 3, "words": 1200 }))
                    })
                    .await?;
                let parts = futures::future::join_all((1..=3).map(|i| {
                    let (work, ev, ctx) = (work.clone(), ev.clone(), ctx.clone());
                    async move {
                        let name = format!("analyze-{i}");
                        ctx.run(&name, || {
                            work.step(&ev, &name, json!({ "part": i, "concepts": i * 4 }))
                        })
                        .await
                    }
                }))
                .await
                .into_iter()
                .collect::<Result<Vec<Value>, Failure>>()?;
                ctx.sleep("cool-down", sleep).await?;
                let summary: Value = ctx
                    .run("summarize", || async {
                        if work.fail_first && work.failures.fetch_add(1, Ordering::SeqCst) == 0 {
                            work.note("failed", &ev, "summarize");
                            return Err(Failure::retry_after(
                                "the summariser is warming up",
                                Duration::from_millis(300),
                            ));
                        }
                        let concepts: i64 = parts.iter().filter_map(|p| p["concepts"].as_i64()).sum();
                        work.step(
                            &ev,
                            "summarize",
                            json!({ "pages": doc["pages"], "concepts": concepts }),
                        )
                        .await
                    })
                    .await?;
                Ok(summary)
            }
        })
}

pub async fn run(config: &Config, args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.runs == 0 || args.runs > 100_000 {
        return Err(UsageError("--runs must be between 1 and 100000".into()).into());
    }
    let log = match &args.log {
        Some(p) => Some(Arc::new(std::sync::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| UsageError(format!("cannot open log file {}: {e}", p.display())))?,
        ))),
        None => None,
    };
    let work = Arc::new(Work {
        step_ms: args.step_ms,
        log,
        failures: AtomicUsize::new(0),
        fail_first: args.fail_first,
    });
    let engine = Engine::builder(open_store(config).await?)
        .config(config.engine_config())
        .build();
    engine.register(demo_function(work, Duration::from_millis(args.sleep_ms)))?;
    engine.start().await?;
    let batch = args
        .batch_id
        .clone()
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    let events: Vec<EventInput> = (0..args.runs)
        .map(|i| {
            EventInput::new("demo.requested", json!({ "batch": batch, "n": i }))
                .with_id(format!("{batch}-{i}"))
        })
        .collect();
    let receipts = engine.send_many(events).await?;
    let resumed = receipts.iter().filter(|r| r.duplicate).count();
    if !args.quiet {
        eprintln!(
            "batch {batch}: {} run(s) started, {resumed} resumed from an earlier process",
            receipts.len() - resumed
        );
    }
    let mut runs: Vec<RunId> = Vec::new();
    for r in &receipts {
        let page = engine
            .list_runs(&RunFilter {
                event_id: Some(r.event_id.clone()),
                function_id: Some("demo-pipeline".into()),
                ..Default::default()
            })
            .await?;
        runs.extend(page.runs.into_iter().map(|r| r.id));
    }
    let waited = async {
        let mut out = Vec::new();
        for id in &runs {
            out.push(engine.wait_for_run(id).await?);
        }
        anyhow::Ok(out)
    };
    let finished = tokio::select! {
        r = waited => r?,
        _ = tokio::signal::ctrl_c() => {
            engine.shutdown().await;
            eprintln!("interrupted; run again with --batch-id {batch} to resume");
            return Ok(ExitCode::from(130));
        }
    };
    engine.shutdown().await;
    let failed = finished
        .iter()
        .filter(|r| r.status != RunStatus::Completed)
        .count();
    if args.json {
        let mut details = Vec::new();
        for id in &runs {
            details.push(engine.get_run(id).await?);
        }
        println!("{}", serde_json::to_string_pretty(&details)?);
    } else if !args.quiet {
        if let Some(first) = runs.first() {
            print_detail(&engine.get_run(first).await?);
        }
    }
    println!(
        "{} run(s): {} completed, {failed} not completed",
        finished.len(),
        finished.len() - failed
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Event that starts [`steps_function`].
pub const STEPS_EVENT: &str = "demo.steps";

/// `demo-steps`, the workload `learnflow serve --demo` adds for trying several nodes
/// on one database: a `demo.steps` event with `data: {userId, steps, stepMs}` runs
/// `steps` (1–100, default 10) sequential steps of `stepMs` (0–10000, default 20)
/// milliseconds each, at most 2 steps of one user at once across every node
/// (`concurrency: {limit: 2, key: event.data.userId}`), retried up to 3 times. With a
/// log file, each step body appends `start|end RUN STEP PID UNIX_MICROS USER` lines,
/// an outside record of what ran where and when.
pub fn steps_function(log: Option<PathBuf>) -> anyhow::Result<learnflow_engine::FunctionDef> {
    let log = match log {
        Some(p) => Some(Arc::new(std::sync::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| UsageError(format!("cannot open log file {}: {e}", p.display())))?,
        ))),
        None => None,
    };
    let note = move |what: &str, run: &str, step: &str, user: &str| {
        if let Some(f) = &log {
            let micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0);
            if let Ok(mut f) = f.lock() {
                // One write per line: O_APPEND keeps lines of several processes whole.
                let line = format!("{what} {run} {step} {} {micros} {user}\n", std::process::id());
                let _ = f.write_all(line.as_bytes());
            }
        }
    };
    let note = Arc::new(note);
    Ok(Function::new("demo-steps")
        .name("Demo steps (multi-node workload)")
        .on_event(STEPS_EVENT)
        .retries(3)
        .concurrency(2, Some("event.data.userId"))
        .handler(move |ctx: Ctx| {
            let note = note.clone();
            async move {
                let data = &ctx.event().data;
                let steps = data["steps"].as_u64().unwrap_or(10).clamp(1, 100);
                let step_ms = data["stepMs"].as_u64().unwrap_or(20).min(10_000);
                let user = data["userId"].as_str().unwrap_or("").to_string();
                let run = ctx.run_id().to_string();
                let mut done = Vec::new();
                for i in 0..steps {
                    let name = format!("step-{i}");
                    let out: Value = ctx
                        .run(&name, || {
                            let (note, run, user, name) =
                                (note.clone(), run.clone(), user.clone(), name.clone());
                            async move {
                                note("start", &run, &name, &user);
                                tokio::time::sleep(Duration::from_millis(step_ms)).await;
                                note("end", &run, &name, &user);
                                Ok(json!({ "pid": std::process::id() }))
                            }
                        })
                        .await?;
                    done.push(out);
                }
                Ok(json!({ "steps": done.len() }))
            }
        }))
}
