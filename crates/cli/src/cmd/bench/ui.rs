//! `learnflow bench ui`: the dashboard's list pages with many runs in the store. The
//! store is seeded with N finished runs of one user (through the engine, in this
//! process), then a real `learnflow serve` answers the runs list as the web UI asks for
//! it: the first page with counts, a filtered page, pages deep down the cursor, a
//! search by event id, and the page itself. `GET /healthz` is the baseline.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use learnflow_engine::{Ctx, Engine, EventInput, Function, RunFilter, RunStatus};
use learnflow_store_sqlite::SqliteStore;
use serde_json::{json, Value};

use super::percentile;
use super::serve::{create_user, spawn_server};
use crate::config::Config;

/// Options of `learnflow bench ui`.
#[derive(Args)]
pub struct UiBenchArgs {
    /// Runs in the store.
    #[arg(long, default_value_t = 10_000)]
    runs: usize,
    /// Requests per measured page.
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

async fn seed(db: &std::path::Path, user: &str, n: usize) -> anyhow::Result<()> {
    let store = Arc::new(SqliteStore::open(db).context("opening the store")?);
    let engine = Engine::builder(store).build();
    engine.register(
        Function::new("bench-noop")
            .on_event("bench.page")
            .handler(|ctx: Ctx| async move {
                let v: u64 = ctx.run("work", || async { Ok(1u64) }).await?;
                Ok(json!({ "v": v }))
            }),
    )?;
    engine.start().await?;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let events = chunk
            .iter()
            .map(|i| {
                let mut e = EventInput::new("bench.page", json!({ "i": i })).with_id(format!("bench-{i}"));
                e.user = Some(json!({ "id": user }));
                e
            })
            .collect();
        engine.send_many(events).await?;
    }
    let filter = RunFilter::default();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done: u64 = engine
            .count_runs(&filter)
            .await?
            .iter()
            .filter(|(s, _)| *s == RunStatus::Completed)
            .map(|c| c.1)
            .sum();
        if done as usize >= n {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "seeding did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    engine.shutdown().await;
    Ok(())
}

async fn time(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<(u64, Value)> {
    let t0 = Instant::now();
    let r = http.get(url).bearer_auth(token).send().await?;
    let status = r.status();
    let text = r.text().await?;
    let us = t0.elapsed().as_micros() as u64;
    anyhow::ensure!(status.is_success(), "GET {url} answered {status}: {text}");
    Ok((us, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn figures(mut v: Vec<u64>) -> (f64, f64) {
    v.sort_unstable();
    (
        percentile(&v, 50.0) as f64 / 1000.0,
        percentile(&v, 99.0) as f64 / 1000.0,
    )
}

/// Runs the benchmark.
pub async fn run(_config: &Config, args: UiBenchArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir().context("creating a scratch data directory")?;
    let exe = std::env::current_exe().context("finding the learnflow binary")?;
    let (token, user) = create_user(&exe, dir.path(), "dashboard").await?;
    let t0 = Instant::now();
    seed(&dir.path().join("learnflow.db"), &user, args.runs).await?;
    eprintln!(
        "bench ui: seeded {} runs in {:.1} s",
        args.runs,
        t0.elapsed().as_secs_f64()
    );
    let embedder = std::ffi::OsStr::new("hash");
    let (mut child, base) = spawn_server(&exe, dir.path(), &[("LEARNFLOW_EMBEDDER", embedder)]).await?;
    let http = reqwest::Client::new();
    let n = args.requests.max(1);
    let mut rows: Vec<(&str, Vec<u64>)> = Vec::new();
    let mut sample = |name: &'static str, v: Vec<u64>| rows.push((name, v));

    let mut v = Vec::new();
    for _ in 0..n {
        v.push(time(&http, &format!("{base}/healthz"), &token).await?.0);
    }
    sample("healthz (baseline)", v);
    let mut v = Vec::new();
    let mut total = 0;
    for _ in 0..n {
        let (us, body) = time(&http, &format!("{base}/api/runs?limit=50"), &token).await?;
        total = body["counts"]["completed"].as_u64().unwrap_or(0);
        v.push(us);
    }
    anyhow::ensure!(total as usize == args.runs, "the list counts {total} runs");
    sample("first page + counts", v);
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(
            time(
                &http,
                &format!("{base}/api/runs?limit=50&status=completed&function=bench-noop"),
                &token,
            )
            .await?
            .0,
        );
    }
    sample("filtered page", v);
    let mut v = Vec::new();
    let mut cursor: Option<i64> = None;
    for _ in 0..n {
        let url = match cursor {
            Some(c) => format!("{base}/api/runs?limit=50&cursor={c}"),
            None => format!("{base}/api/runs?limit=50"),
        };
        let (us, body) = time(&http, &url, &token).await?;
        v.push(us);
        // Walks down the pages; after the last one it starts again at the top.
        cursor = body["nextCursor"].as_i64();
    }
    sample("next pages (cursor)", v);
    let mut v = Vec::new();
    for i in 0..n {
        let id = (i * 7919) % args.runs.max(1);
        let (us, body) = time(&http, &format!("{base}/api/runs?event=bench-{id}"), &token).await?;
        anyhow::ensure!(
            body["runs"].as_array().map(Vec::len) == Some(1),
            "search found no run"
        );
        v.push(us);
    }
    sample("search by event id", v);
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(
            time(&http, &format!("{base}/"), &token)
                .await
                .map(|x| x.0)
                .unwrap_or(0),
        );
    }
    sample("page shell GET /", v);

    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;

    eprintln!("  {} runs in the store, {n} requests each:", args.runs);
    let mut out = serde_json::Map::new();
    out.insert("runs".into(), json!(args.runs));
    let keys = ["healthz", "list", "filtered", "deep_page", "search", "ui_page"];
    for ((name, v), key) in rows.into_iter().zip(keys) {
        let (p50, p99) = figures(v);
        eprintln!("  {name:<22} p50 {p50:>7.2} ms   p99 {p99:>7.2} ms");
        out.insert(format!("{key}_p50_ms"), json!(p50));
        out.insert(format!("{key}_p99_ms"), json!(p99));
    }
    if args.json {
        println!("{}", Value::Object(out));
    }
    Ok(ExitCode::SUCCESS)
}
