//! `learnflow bench pipeline`: in one run,
//!
//! 1. the `local` provider on a generated text PDF of `--pages` pages (50): wall time
//!    and per-step times, embedding included (the configured embedder: MiniLM by
//!    default);
//! 2. OCR pages/s on a generated scanned PDF (300 dpi);
//! 3. an OpenAI-compatible test server on loopback that answers after `--delay-ms`
//!    (300 ms): the pipeline's wall time against its critical path (extract +
//!    architect + the agent waves the concurrency cap allows × the slowest agent +
//!    embed + store + notify);
//! 4. retrieval recall@5 on a question set written for the three sample documents.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use learnflow_ai::embed::{self, Embedder};
use learnflow_ai::provider::openai::{OpenAiConfig, OpenAiProvider};
use learnflow_ai::testing::fake_openai::{FakeConfig, FakeOpenAi};
use learnflow_engine::{Engine, RunDetail, RunStatus};
use learnflow_ingest::{fixtures, IngestOptions};
use learnflow_pipeline::blobs::BlobStore;
use learnflow_pipeline::library::SqliteLibrary;
use learnflow_pipeline::services::Services;
use learnflow_pipeline::steps::process_document;
use learnflow_pipeline::upload::{store_upload, uploaded_event};
use learnflow_store_sqlite::SqliteStore;
use serde::Deserialize;
use serde_json::json;

use super::peak_rss_mb;
use crate::cmd::app;
use crate::config::Config;
use crate::UsageError;

/// Options of `learnflow bench pipeline`.
#[derive(Args)]
pub struct PipelineBenchArgs {
    /// Pages of the generated text PDF.
    #[arg(long, default_value_t = 50)]
    pages: usize,
    /// Pages of the generated scan.
    #[arg(long, default_value_t = 4)]
    scan_pages: usize,
    /// Delay of the fake OpenAI-compatible server, in milliseconds.
    #[arg(long, default_value_t = 300)]
    delay_ms: u64,
    /// Keep the benchmark's data folder.
    #[arg(long)]
    keep: bool,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

const FIXTURES: [(&str, &str); 3] = [
    (
        "photosynthesis",
        include_str!("../../../../ai/tests/fixtures/photosynthesis.txt"),
    ),
    (
        "french_revolution",
        include_str!("../../../../ai/tests/fixtures/french_revolution.txt"),
    ),
    (
        "sorting",
        include_str!("../../../../ai/tests/fixtures/sorting.txt"),
    ),
];

#[derive(Deserialize)]
struct QuestionSet {
    documents: Vec<QuestionDoc>,
}

#[derive(Deserialize)]
struct QuestionDoc {
    name: String,
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct Question {
    q: String,
    answer: String,
}

/// A fixture as Markdown (title, headings, paragraphs) and as plain paragraphs.
fn fixture_markdown(src: &str) -> (String, Vec<String>) {
    let mut md = String::new();
    let mut paragraphs = Vec::new();
    for line in src.lines() {
        if let Some(t) = line.strip_prefix("Title: ") {
            md.push_str(&format!("# {}\n\n", t.trim()));
        } else if line.starts_with("=== page") {
            continue;
        } else if let Some(h) = line.strip_prefix('#') {
            md.push_str(&format!("##{h}\n\n"));
            paragraphs.push(h.trim().to_string());
        } else if !line.trim().is_empty() {
            md.push_str(line);
            md.push_str("\n\n");
            paragraphs.push(line.trim().to_string());
        }
    }
    (md, paragraphs)
}

struct Bench {
    engine: Engine,
    services: Arc<Services>,
}

impl Bench {
    async fn new(
        dir: &std::path::Path,
        embedder: Arc<dyn Embedder>,
        fake: Option<&FakeOpenAi>,
    ) -> anyhow::Result<Self> {
        let db = dir.join("learnflow.db");
        let store = Arc::new(SqliteStore::open(&db)?);
        let library = Arc::new(SqliteLibrary::open(&db)?);
        let blobs = BlobStore::local(&dir.join("blobs"))?;
        let mut services = Services::new(library, blobs, embedder, IngestOptions::default());
        if let Some(f) = fake {
            services.openai = Some(Arc::new(OpenAiProvider::new(OpenAiConfig {
                base_url: f.base_url.clone(),
                model: "fake-model".into(),
                timeout: Duration::from_secs(30),
                ..Default::default()
            })?));
        }
        let services = Arc::new(services);
        let engine = Engine::builder(store).build();
        engine.register(process_document(services.clone()))?;
        engine.start().await?;
        Ok(Bench { engine, services })
    }

    async fn process(
        &self,
        name: &str,
        bytes: Vec<u8>,
        provider: &str,
    ) -> anyhow::Result<(String, RunDetail)> {
        let stored = store_upload(&self.services, "bench", name, "exam-prep", bytes, true).await?;
        let id = stored.document.id.clone();
        let receipt = self
            .engine
            .send(uploaded_event(&stored.document, false, Some(provider)))
            .await?;
        let run = receipt.runs.first().context("the upload started no run")?;
        let record = self.engine.wait_for_run(run).await?;
        anyhow::ensure!(
            record.status == RunStatus::Completed,
            "processing {name} ended {}: {:?}",
            record.status,
            record.error
        );
        Ok((id, self.engine.get_run(run).await?))
    }
}

/// Seconds a step took, from the journal.
fn step_secs(d: &RunDetail, id: &str) -> f64 {
    d.steps
        .iter()
        .find(|s| s.step_id == id)
        .and_then(|s| s.ended_at.map(|e| e.since(s.started_at).as_secs_f64()))
        .unwrap_or(0.0)
}

fn run_secs(d: &RunDetail) -> f64 {
    match d.run.ended_at {
        Some(e) => e.since(d.run.created_at).as_secs_f64(),
        None => 0.0,
    }
}

fn agent_secs(d: &RunDetail) -> Vec<f64> {
    d.steps
        .iter()
        .filter(|s| s.step_id.starts_with("agent-"))
        .filter_map(|s| s.ended_at.map(|e| e.since(s.started_at).as_secs_f64()))
        .collect()
}

pub async fn run(config: &Config, args: PipelineBenchArgs) -> anyhow::Result<ExitCode> {
    if args.pages == 0 || args.scan_pages == 0 {
        return Err(UsageError("--pages and --scan-pages must be at least 1".into()).into());
    }
    let root = config
        .data_dir
        .join(format!("bench-pipeline-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&root)?;
    let embedder = app::embedder(config).await?;
    eprintln!(
        "bench pipeline: embedder {}, data in {}",
        embedder.model_id(),
        root.display()
    );

    // 1. local provider, generated text PDF.
    let fixtures_md: Vec<(&str, String, Vec<String>)> = FIXTURES
        .iter()
        .map(|(name, src)| {
            let (md, paras) = fixture_markdown(src);
            (*name, md, paras)
        })
        .collect();
    let mut paragraphs: Vec<String> = Vec::new();
    let mut round = 0;
    let mut pages = Vec::new();
    while pages.len() < args.pages {
        round += 1;
        for (name, _, paras) in &fixtures_md {
            paragraphs.push(format!("Part {round}: {}", name.replace('_', " ")));
            paragraphs.extend(paras.iter().cloned());
            paragraphs.push("\x0c".into());
        }
        pages = fixtures::paginate(&paragraphs);
    }
    pages.truncate(args.pages);
    let pdf = fixtures::text_pdf(&pages, Some("LearnFlow benchmark document"));
    let local = Bench::new(&root.join("local"), embedder.clone(), None).await?;
    let (doc_id, d) = local.process("bench.pdf", pdf, "local").await?;
    let local_wall = run_secs(&d);
    let chunks = d
        .steps
        .iter()
        .find(|s| s.step_id == "embed")
        .and_then(|s| s.output.as_ref())
        .and_then(|o| o["chunks"].as_u64())
        .unwrap_or(0);
    let embed_secs = step_secs(&d, "embed");
    let agents = agent_secs(&d);
    let words: usize = pages.iter().flatten().map(|l| l.split_whitespace().count()).sum();
    eprintln!(
        "\n  local provider, {} pages ({words} words, {chunks} chunks, {} agents): {:.2} s",
        pages.len(),
        agents.len(),
        local_wall
    );
    for step in ["extract", "architect", "embed", "store", "notify"] {
        eprintln!("    {step:<12} {:>8.3} s", step_secs(&d, step));
    }
    eprintln!(
        "    agents       {:>8.3} s slowest, {:.3} s in all",
        agents.iter().cloned().fold(0.0, f64::max),
        agents.iter().sum::<f64>()
    );
    let embed_rate = if embed_secs > 0.0 {
        chunks as f64 / embed_secs
    } else {
        0.0
    };

    // 2. OCR.
    let scan = fixtures::scanned_pdf(&pages[..args.scan_pages.min(pages.len())], 300)?;
    let extracted =
        tokio::task::spawn_blocking(move || learnflow_ingest::extract(&scan, &IngestOptions::default()))
            .await??;
    let ocr = extracted.ocr.context("the scan was not OCR'd")?;
    let ocr_rate = f64::from(ocr.pages) / ocr.seconds;
    eprintln!(
        "\n  OCR: {} pages at 300 dpi in {:.2} s = {ocr_rate:.2} pages/s ({} at once)",
        ocr.pages, ocr.seconds, ocr.peak_parallel
    );

    // 3. critical path against a delayed OpenAI-compatible server.
    let fake = FakeOpenAi::start(FakeConfig {
        chat_delay: Duration::from_millis(args.delay_ms),
        embed_delay: Duration::from_millis(args.delay_ms / 3),
        ..Default::default()
    })
    .await?;
    let remote_embedder: Arc<dyn Embedder> = Arc::new(embed::OpenAiEmbedder::new(embed::OpenAiConfig::new(
        fake.base_url.clone(),
        "",
        "fake-embed",
    ))?);
    let remote = Bench::new(&root.join("openai"), remote_embedder, Some(&fake)).await?;
    let (_, r) = remote
        .process(
            "photosynthesis.md",
            fixtures_md[0].1.clone().into_bytes(),
            "openai",
        )
        .await?;
    let wall = run_secs(&r);
    let agent_times = agent_secs(&r);
    let waves = agent_times.len().div_ceil(5) as f64;
    let slowest = agent_times.iter().cloned().fold(0.0, f64::max);
    let critical = step_secs(&r, "extract")
        + step_secs(&r, "architect")
        + waves * slowest
        + step_secs(&r, "embed")
        + step_secs(&r, "store")
        + step_secs(&r, "notify");
    let ratio = wall / critical;
    eprintln!(
        "\n  OpenAI-compatible server answering after {} ms: {} agents in {waves} waves of ≤5 (peak {} requests at once)",
        args.delay_ms,
        agent_times.len(),
        fake.peak_concurrency()
    );
    eprintln!("    wall {wall:.3} s, critical path {critical:.3} s, ratio {ratio:.3}");

    // 4. retrieval recall@5.
    let set: QuestionSet = serde_json::from_str(include_str!("questions.json"))?;
    let mut hits = 0usize;
    let mut total = 0usize;
    for qd in &set.documents {
        let (_, md, _) = fixtures_md
            .iter()
            .find(|(n, _, _)| *n == qd.name)
            .with_context(|| format!("no sample document '{}'", qd.name))?;
        let (id, _) = local
            .process(&format!("{}.md", qd.name), md.clone().into_bytes(), "local")
            .await?;
        let mut doc_hits = 0;
        for q in &qd.questions {
            let found = learnflow_pipeline::ask::retrieve(&local.services, &id, &q.q, true).await?;
            let needle = q.answer.to_lowercase();
            let hit = found
                .iter()
                .take(5)
                .any(|p| p.chunk.text.to_lowercase().contains(&needle));
            if hit {
                doc_hits += 1;
            } else {
                eprintln!("    miss ({}): {}", qd.name, q.q);
            }
            total += 1;
        }
        hits += doc_hits;
        eprintln!("  recall@5 {:<18} {doc_hits}/{}", qd.name, qd.questions.len());
    }
    let recall = hits as f64 / total.max(1) as f64;
    eprintln!(
        "  recall@5 overall {recall:.3} ({hits}/{total}, embedder {})",
        embedder.model_id()
    );

    local.engine.shutdown().await;
    remote.engine.shutdown().await;
    let _ = doc_id;
    if !args.keep {
        let _ = std::fs::remove_dir_all(&root);
    }
    if args.json {
        println!(
            "{}",
            json!({
                "local_50p_s": (local_wall * 100.0).round() / 100.0,
                "pages": pages.len(),
                "words": words,
                "chunks": chunks,
                "local_steps_s": {
                    "extract": step_secs(&d, "extract"), "architect": step_secs(&d, "architect"),
                    "agents_slowest": agents.iter().cloned().fold(0.0, f64::max),
                    "embed": embed_secs, "store": step_secs(&d, "store"), "notify": step_secs(&d, "notify"),
                },
                "ocr_pages_per_sec": (ocr_rate * 100.0).round() / 100.0,
                "critical_path_ratio": (ratio * 1000.0).round() / 1000.0,
                "critical_path_s": (critical * 1000.0).round() / 1000.0,
                "openai_wall_s": (wall * 1000.0).round() / 1000.0,
                "embed_chunks_per_sec": (embed_rate * 10.0).round() / 10.0,
                "retrieval_recall_at_5": (recall * 1000.0).round() / 1000.0,
                "embedder": embedder.model_id(),
                "peak_rss_mb": (peak_rss_mb() * 10.0).round() / 10.0,
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}
