//! `learnflow bench engine`: on a fresh database (an SQLite file, or with
//! `--database-url postgres://…` a fresh schema of that PostgreSQL database),
//!
//! 1. raw baseline: single-row inserts, each committed on its own, on the same
//!    database (what one step costs if nothing else is done);
//! 2. sequential step overhead: one run of N trivial steps, the time between
//!    consecutive step completions (each step's result committed before the next
//!    starts), its mean, p99 and ratio to the raw commit;
//! 3. throughput: M runs of K trivial steps sent at once, runs/s and steps/s;
//! 4. peak RSS;
//! 5. with `--nodes N`: the same M runs executed by one worker process, then by N
//!    worker processes sharing the database, steps/s for each and the ratio.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use learnflow_engine::{Ctx, Engine, EventInput, Function, UpdateKind};
use learnflow_engine::{RunFilter, RunStatus, Store};
use learnflow_store_postgres::PostgresStore;
use learnflow_store_sqlite::{raw_commit_baseline, Durability, SqliteOptions, SqliteStore};
use serde_json::json;
use std::sync::Mutex;

use super::{peak_rss_mb, percentile};
use crate::cmd::human_us;
use crate::config::{Config, Database};
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
    /// Also measure throughput with this many worker processes sharing the database
    /// (against one worker process, in the same run).
    #[arg(long)]
    nodes: Option<usize>,
    /// Internal: run as a worker process of `--nodes` until stdin closes.
    #[arg(long, hide = true)]
    worker: bool,
}

/// The benchmark's own database.
enum BenchDb {
    Sqlite {
        path: std::path::PathBuf,
        durability: Durability,
    },
    Postgres {
        base: String,
        schema: String,
        url: String,
    },
}

impl BenchDb {
    fn create(config: &Config) -> anyhow::Result<BenchDb> {
        let id = ulid::Ulid::new().to_string().to_lowercase();
        match config.database().map_err(|e| UsageError(e.to_string()))? {
            Database::Sqlite(_) => Ok(BenchDb::Sqlite {
                path: config.data_dir.join(format!("bench-engine-{id}.db")),
                durability: config.sqlite_durability,
            }),
            Database::Postgres(base) => {
                let schema = format!("bench_{id}");
                run_sql(&base, format!("CREATE SCHEMA {schema}"))?;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-csearch_path%3D{schema},public");
                Ok(BenchDb::Postgres { base, schema, url })
            }
        }
    }

    /// The URL worker processes open.
    fn url(&self) -> String {
        match self {
            BenchDb::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            BenchDb::Postgres { url, .. } => url.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            BenchDb::Sqlite { path, durability } => format!(
                "SQLite {} (synchronous={})",
                path.display(),
                if *durability == Durability::Full {
                    "FULL"
                } else {
                    "NORMAL"
                }
            ),
            BenchDb::Postgres { schema, .. } => format!("PostgreSQL, schema {schema}"),
        }
    }

    async fn open(&self, config: &Config) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            BenchDb::Sqlite { path, durability } => Arc::new(
                SqliteStore::open_with(
                    path,
                    SqliteOptions {
                        durability: *durability,
                        ..Default::default()
                    },
                )
                .with_context(|| format!("creating the benchmark database {}", path.display()))?,
            ),
            BenchDb::Postgres { url, .. } => Arc::new(
                PostgresStore::connect(url, config.pg_pool_size)
                    .await
                    .context("opening the PostgreSQL benchmark store")?,
            ),
        })
    }

    async fn raw_baseline(&self, n: usize) -> anyhow::Result<Vec<Duration>> {
        Ok(match self {
            BenchDb::Sqlite { path, durability } => {
                let (path, durability) = (path.clone(), *durability);
                tokio::task::spawn_blocking(move || raw_commit_baseline(&path, durability, n)).await??
            }
            BenchDb::Postgres { url, .. } => {
                let url = url.clone();
                tokio::task::spawn_blocking(move || learnflow_store_postgres::raw_commit_baseline(&url, n))
                    .await??
            }
        })
    }

    fn remove(&self) {
        match self {
            BenchDb::Sqlite { path, .. } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            BenchDb::Postgres { base, schema, .. } => {
                if let Err(e) = run_sql(base, format!("DROP SCHEMA IF EXISTS {schema} CASCADE")) {
                    eprintln!("warning: could not drop the benchmark schema {schema}: {e}");
                }
            }
        }
    }

    fn store_name(&self) -> &'static str {
        match self {
            BenchDb::Sqlite { .. } => "sqlite",
            BenchDb::Postgres { .. } => "postgres",
        }
    }
}

/// Runs statements on a blocking client on a thread of its own.
fn run_sql(url: &str, sql: String) -> anyhow::Result<()> {
    let url = url.to_string();
    std::thread::spawn(move || -> anyhow::Result<()> {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).context("connecting to PostgreSQL")?;
        c.batch_execute(&sql).context("running SQL")?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the SQL thread panicked"))?
}

/// `bench-parallel`: runs of `run_steps` trivial steps.
fn parallel_function(run_steps: usize) -> learnflow_engine::FunctionDef {
    Function::new("bench-parallel")
        .on_event("bench.parallel")
        .handler(move |ctx: Ctx| async move {
            for i in 0..run_steps {
                ctx.run("step", || async move { Ok(i) }).await?;
            }
            Ok(run_steps)
        })
}

/// A worker of `--nodes`: executes `bench-parallel` runs until stdin closes.
async fn worker(config: &Config, args: &EngineBenchArgs) -> anyhow::Result<ExitCode> {
    let store = crate::cmd::open_store(config).await?;
    let engine = Engine::builder(store)
        .config(learnflow_engine::EngineConfig {
            poll_interval: Duration::from_millis(20),
            ..config.engine_config()
        })
        .build();
    engine.register(parallel_function(args.run_steps))?;
    engine.start().await?;
    println!("ready");
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await;
    engine.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Sends `runs` runs, starts `nodes` worker processes and returns the wall time until
/// every run completed.
async fn throughput_with_workers(
    db: &BenchDb,
    sender: &Engine,
    nodes: usize,
    runs: usize,
    run_steps: usize,
    batch: &str,
) -> anyhow::Result<Duration> {
    use std::io::BufRead;
    let exe = std::env::current_exe().context("finding the learnflow binary")?;
    let mut children = Vec::new();
    for _ in 0..nodes {
        let mut child = std::process::Command::new(&exe)
            .args(["--database-url", &db.url(), "bench", "engine", "--worker"])
            .args(["--run-steps", &run_steps.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting a worker process")?;
        let out = child.stdout.take().context("worker stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .context("waiting for a worker")?;
        anyhow::ensure!(line.trim() == "ready", "a worker did not start: {line}");
        children.push(child);
    }
    let filter = RunFilter {
        function_id: Some("bench-parallel".into()),
        ..Default::default()
    };
    let completed = || async {
        let counts = sender.count_runs(&filter).await?;
        anyhow::Ok(
            counts
                .iter()
                .filter(|(s, _)| *s == RunStatus::Completed)
                .map(|(_, n)| *n as usize)
                .sum::<usize>(),
        )
    };
    // Runs of earlier phases are completed already: count only this batch's.
    let before = completed().await?;
    let events: Vec<EventInput> = (0..runs)
        .map(|i| EventInput::new("bench.parallel", json!({ "batch": batch, "i": i })))
        .collect();
    let t0 = Instant::now();
    sender.send_many(events).await?;
    let deadline = t0 + Duration::from_secs(600);
    loop {
        if completed().await? >= before + runs {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the runs did not finish within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t0.elapsed();
    for mut c in children {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    Ok(elapsed)
}

pub async fn run(config: &Config, args: EngineBenchArgs) -> anyhow::Result<ExitCode> {
    if args.steps == 0 || args.runs == 0 || args.run_steps == 0 || args.raw == 0 {
        return Err(UsageError("--steps, --runs, --run-steps and --raw must be at least 1".into()).into());
    }
    if args.worker {
        return worker(config, &args).await;
    }
    if args.nodes == Some(0) || args.nodes.is_some_and(|n| n > 32) {
        return Err(UsageError("--nodes must be between 1 and 32".into()).into());
    }
    let db = BenchDb::create(config)?;
    let result = measure(config, &args, &db).await;
    if !args.keep {
        db.remove();
    }
    result
}

async fn measure(config: &Config, args: &EngineBenchArgs, db: &BenchDb) -> anyhow::Result<ExitCode> {
    let store = db.open(config).await?;
    eprintln!(
        "bench engine: {}, {} raw commits, {} sequential steps, {} runs × {} steps",
        db.describe(),
        args.raw,
        args.steps,
        args.runs,
        args.run_steps
    );

    // 1. Raw baseline on the same database.
    let raw = db.raw_baseline(args.raw).await?;
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
    engine.register(parallel_function(args.run_steps))?;
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
    let rss = peak_rss_mb();

    // 5. Worker processes sharing the database.
    let nodes = match args.nodes {
        Some(n) => {
            let sender = Engine::builder(store.clone()).build();
            sender.register(parallel_function(args.run_steps))?;
            eprintln!(
                "bench engine: {} runs with 1 worker process, then with {n}",
                args.runs
            );
            let one = throughput_with_workers(db, &sender, 1, args.runs, args.run_steps, "one").await?;
            let many = throughput_with_workers(db, &sender, n, args.runs, args.run_steps, "many").await?;
            let total = (args.runs * args.run_steps) as f64;
            Some((n, total / one.as_secs_f64(), total / many.as_secs_f64()))
        }
        None => None,
    };
    drop(store);

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
    if let Some((n, one, many)) = nodes {
        eprintln!("  {:<44} {:>12.0}", "1 worker process, steps/s", one);
        eprintln!(
            "  {:<44} {:>12.0}",
            format!("{n} worker processes, steps/s"),
            many
        );
        eprintln!(
            "  {:<44} {:>12.2}",
            "scaling (N processes / 1 process)",
            many / one
        );
    }
    if args.json {
        let mut out = json!({
                "raw_commit_us": round1(raw_mean),
                "step_overhead_us": round1(step_mean),
                "overhead_ratio": (ratio * 100.0).round() / 100.0,
                "step_p99_us": step_p99,
                "runs_per_sec": runs_per_sec.round(),
                "steps_per_sec": steps_per_sec.round(),
                "peak_rss_mb": round1(rss),
                "store": db.store_name(),
                "sequential_steps": args.steps,
                "runs": args.runs,
                "steps_per_run": args.run_steps,
        });
        if let BenchDb::Sqlite { durability, .. } = db {
            out["synchronous"] = json!(if *durability == Durability::Full {
                "full"
            } else {
                "normal"
            });
        }
        if let Some((n, one, many)) = nodes {
            out["nodes"] = json!(n);
            out["one_node_steps_per_sec"] = json!(one.round());
            out["nodes_steps_per_sec"] = json!(many.round());
            out["nodes_scaling"] = json!((many / one * 100.0).round() / 100.0);
        }
        println!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
