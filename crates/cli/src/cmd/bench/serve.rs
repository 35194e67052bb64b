//! `learnflow bench serve`: a real `learnflow serve` process under load. N clients
//! upload small documents for S seconds while the pipelines run behind the API; each
//! upload's SSE stream is followed to measure how late step events arrive. A prober
//! times `GET /healthz` meanwhile: the baseline of a request that does no work.

use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::percentile;
use crate::config::Config;

/// Options of `learnflow bench serve`.
#[derive(Args)]
pub struct ServeBenchArgs {
    /// Concurrent uploading clients (each its own user).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Pause between one client's uploads, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    interval_ms: u64,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

const SAMPLE: &str = include_str!("../../../../../samples/photosynthesis.md");

#[derive(Default)]
struct Figures {
    upload_us: Vec<u64>,
    health_us: Vec<u64>,
    sse_delay_ms: Vec<u64>,
    uploaded: Vec<(String, String)>,
    errors: Vec<String>,
}

fn rss_mb(pid: u32) -> f64 {
    super::proc_status_mb(&pid.to_string(), "VmRSS:")
}

fn now_ms() -> i64 {
    learnflow_engine::Timestamp::now_utc().millis()
}

/// A small document: a few paragraphs of the sample, made unique.
fn document(client: usize, n: usize) -> Vec<u8> {
    let paragraphs: Vec<&str> = SAMPLE.split("\n\n").collect();
    let start = (client * 3 + n) % paragraphs.len().max(1);
    let mut text = String::from("# Study notes\n\n");
    for i in 0..6 {
        text.push_str(paragraphs[(start + i) % paragraphs.len()]);
        text.push_str("\n\n");
    }
    text.push_str(&format!("Copy {client}-{n}.\n"));
    text.into_bytes()
}

async fn follow_sse(
    http: reqwest::Client,
    base: String,
    token: String,
    doc: String,
    figs: Arc<Mutex<Figures>>,
) {
    let resp = match http
        .get(format!("{base}/api/documents/{doc}/events"))
        .bearer_auth(&token)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            figs.lock().unwrap().errors.push(format!("sse: {e}"));
            return;
        }
    };
    let mut resp = resp;
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(c))) => c,
            _ => return,
        };
        let received = now_ms();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = "";
            let mut data = "";
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = v.trim();
                }
            }
            if event == "step.completed" {
                if let Some(at) = serde_json::from_str::<Value>(data)
                    .ok()
                    .and_then(|v| v["at"].as_i64())
                {
                    figs.lock()
                        .unwrap()
                        .sse_delay_ms
                        .push((received - at).max(0) as u64);
                }
            }
            if matches!(event, "completed" | "failed" | "cancelled") {
                return;
            }
        }
    }
}

/// `learnflow users create NAME` in `dir`; returns the token and the user id.
pub async fn create_user(
    exe: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let out = tokio::process::Command::new(exe)
        .arg("--data-dir")
        .arg(dir)
        .args(["users", "create", name])
        .output()
        .await?;
    if !out.status.success() {
        bail!("users create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let token = text.lines().last().unwrap_or_default().trim().to_string();
    let id = text
        .split(['(', ')'])
        .find(|p| p.starts_with("usr_"))
        .unwrap_or_default()
        .to_string();
    Ok((token, id))
}

/// Starts `learnflow serve` on a free loopback port in `dir` (rate limits off);
/// returns the process and its base URL.
pub async fn spawn_server(
    exe: &std::path::Path,
    dir: &std::path::Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> anyhow::Result<(tokio::process::Child, String)> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LEARNFLOW_RATE_LIMIT", "100000")
        .env("LEARNFLOW_RATE_BURST", "100000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("starting learnflow serve")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .context("the server did not start in time")??
            .context("the server exited before listening")?;
        if let Some(addr) = line.strip_prefix("LearnFlow listening on ") {
            break addr.trim().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, base))
}

/// Runs the benchmark.
pub async fn run(config: &Config, args: ServeBenchArgs) -> anyhow::Result<ExitCode> {
    if args.clients == 0 || args.seconds == 0 {
        bail!(crate::UsageError(
            "--clients and --seconds must be at least 1".into()
        ));
    }
    let dir = tempfile::tempdir().context("creating a scratch data directory")?;
    let exe = std::env::current_exe().context("finding the learnflow binary")?;
    let models = config.models_dir();
    let mut tokens = Vec::new();
    for i in 0..args.clients {
        tokens.push(create_user(&exe, dir.path(), &format!("bench-{i}")).await?.0);
    }
    let (mut child, base) =
        spawn_server(&exe, dir.path(), &[("LEARNFLOW_MODELS_DIR", models.as_os_str())]).await?;
    let pid = child.id().unwrap_or(0);
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_mb(pid);
    eprintln!(
        "bench serve: {} clients for {} s against {base} (pid {pid}, idle RSS {rss_idle:.0} MB)",
        args.clients, args.seconds
    );

    let figs = Arc::new(Mutex::new(Figures::default()));
    let start = Instant::now();
    let window = Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    let interval_ms = args.interval_ms;
    for (i, token) in tokens.iter().enumerate() {
        let (http, base, token, figs) = (http.clone(), base.clone(), token.clone(), figs.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while start.elapsed() < window {
                n += 1;
                let form = reqwest::multipart::Form::new()
                    .part(
                        "file",
                        reqwest::multipart::Part::bytes(document(i, n))
                            .file_name(format!("notes-{i}-{n}.md")),
                    )
                    .text("purpose", "quick-review");
                let t0 = Instant::now();
                let r = http
                    .post(format!("{base}/api/documents"))
                    .bearer_auth(&token)
                    .multipart(form)
                    .send()
                    .await;
                let us = t0.elapsed().as_micros() as u64;
                match r {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        let doc = body["documentId"].as_str().unwrap_or_default().to_string();
                        {
                            let mut f = figs.lock().unwrap();
                            f.upload_us.push(us);
                            f.uploaded.push((token.clone(), doc.clone()));
                        }
                        tokio::spawn(follow_sse(
                            http.clone(),
                            base.clone(),
                            token.clone(),
                            doc,
                            figs.clone(),
                        ));
                    }
                    Ok(r) => figs
                        .lock()
                        .unwrap()
                        .errors
                        .push(format!("upload answered {}", r.status())),
                    Err(e) => figs.lock().unwrap().errors.push(format!("upload: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(interval_ms)).await;
            }
        }));
    }
    // The baseline prober and the RSS sampler.
    let (prober, sampler) = {
        let (http, base, figs) = (http.clone(), base.clone(), figs.clone());
        let prober = tokio::spawn(async move {
            while start.elapsed() < window {
                let t0 = Instant::now();
                if http.get(format!("{base}/healthz")).send().await.is_ok() {
                    figs.lock()
                        .unwrap()
                        .health_us
                        .push(t0.elapsed().as_micros() as u64);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let sampler = tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while start.elapsed() < window {
                peak = peak.max(rss_mb(pid));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            peak
        });
        (prober, sampler)
    };
    for t in tasks {
        let _ = t.await;
    }
    let _ = prober.await;
    let rss_load = sampler.await.unwrap_or(0.0).max(rss_mb(pid));
    let elapsed = start.elapsed();
    let window_end = now_ms();
    // Documents completed within the window (their last update came before its end).
    let uploaded = figs.lock().unwrap().uploaded.clone();
    let mut completed = 0usize;
    for (token, doc) in &uploaded {
        let r = http
            .get(format!("{base}/api/documents/{doc}"))
            .bearer_auth(token)
            .send()
            .await?;
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if v["status"] == "ready" && v["updatedAt"].as_i64().unwrap_or(i64::MAX) <= window_end {
            completed += 1;
        }
    }
    let docs_per_min = completed as f64 / (elapsed.as_secs_f64() / 60.0);
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;

    let f = figs.lock().unwrap();
    let mut up = f.upload_us.clone();
    up.sort_unstable();
    let mut health = f.health_us.clone();
    health.sort_unstable();
    let mut sse = f.sse_delay_ms.clone();
    sse.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let result = json!({
        "clients": args.clients,
        "seconds": args.seconds,
        "interval_ms": args.interval_ms,
        "uploads": up.len(),
        "upload_errors": f.errors.len(),
        "upload_p50_ms": ms(percentile(&up, 50.0)),
        "upload_p99_ms": ms(percentile(&up, 99.0)),
        "healthz_p50_ms": ms(percentile(&health, 50.0)),
        "healthz_p99_ms": ms(percentile(&health, 99.0)),
        "docs_completed": completed,
        "docs_per_min": (docs_per_min * 10.0).round() / 10.0,
        "sse_events": sse.len(),
        "sse_delay_p50_ms": percentile(&sse, 50.0),
        "sse_delay_p99_ms": percentile(&sse, 99.0),
        "rss_idle_mb": rss_idle.round(),
        "rss_load_mb": rss_load.round(),
    });
    eprintln!("  uploads            {} ({} errors)", up.len(), f.errors.len());
    if let Some(e) = f.errors.first() {
        eprintln!("  first error        {e}");
    }
    eprintln!(
        "  upload latency     p50 {:.1} ms  p99 {:.1} ms   (baseline GET /healthz: p50 {:.1} ms  p99 {:.1} ms)",
        ms(percentile(&up, 50.0)),
        ms(percentile(&up, 99.0)),
        ms(percentile(&health, 50.0)),
        ms(percentile(&health, 99.0))
    );
    eprintln!("  completed          {completed} documents = {docs_per_min:.1} per minute");
    eprintln!(
        "  SSE delay          p50 {} ms  p99 {} ms over {} step events",
        percentile(&sse, 50.0),
        percentile(&sse, 99.0),
        sse.len()
    );
    eprintln!("  server RSS         idle {rss_idle:.0} MB, under load {rss_load:.0} MB");
    if args.json {
        println!("{result}");
    }
    Ok(ExitCode::SUCCESS)
}
