//! `learnflow process FILE`: run the pipeline on the embedded engine, show a progress
//! line per step, and write the study pack. Running it again on the same file (after
//! Ctrl-C or even `kill -9`) resumes the same run: recorded steps are not redone.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use learnflow_engine::{Engine, RunFilter, RunId, RunStatus, StepStatus, UpdateKind};
use learnflow_pipeline::pack;
use learnflow_pipeline::steps::FUNCTION_ID;
use learnflow_pipeline::upload::{store_upload, uploaded_event};
use serde_json::json;

use super::app;
use crate::config::Config;
use crate::UsageError;

/// Options of `learnflow process`.
#[derive(Args)]
pub struct ProcessArgs {
    /// The document (PDF, scan, photo, DOCX, HTML, Markdown or text).
    file: PathBuf,
    /// Study purpose: exam-prep, quick-review, deep-understanding, lecture-notes, or your own words.
    #[arg(long, default_value = "exam-prep")]
    purpose: String,
    /// Language-model provider: local (offline) or openai.
    #[arg(long)]
    provider: Option<String>,
    /// Where to write the study pack (default: `<file stem>-study-pack` next to the working directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stop after planning and wait for `learnflow approve` (or a plan.approved event).
    #[arg(long)]
    review: bool,
    /// The user the document belongs to.
    #[arg(long, default_value = "local")]
    user: String,
    /// Process again even if this file was processed before.
    #[arg(long)]
    force: bool,
}

/// Progress display: bars on a terminal, plain lines otherwise.
struct Progress {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
    started: HashMap<String, Instant>,
}

impl Progress {
    fn new() -> Self {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            multi,
            bars: HashMap::new(),
            started: HashMap::new(),
        }
    }

    fn bar(&mut self, step: &str) -> Option<&ProgressBar> {
        let multi = self.multi.as_ref()?;
        if !self.bars.contains_key(step) {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<22} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(step.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bars.insert(step.to_string(), bar);
        }
        self.bars.get(step)
    }

    fn line(&self, text: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn started(&mut self, step: &str, attempt: u32) {
        self.started.entry(step.to_string()).or_insert_with(Instant::now);
        let msg = if attempt > 0 {
            format!("running (attempt {})", attempt + 1)
        } else {
            "running".into()
        };
        match self.bar(step) {
            Some(b) => b.set_message(msg),
            None => eprintln!("… {step} {msg}"),
        }
    }

    fn done(&mut self, step: &str, note: &str) {
        let took = self
            .started
            .get(step)
            .map(|t| format!("{:.1} s", t.elapsed().as_secs_f64()))
            .unwrap_or_default();
        let msg = format!("done {took}{note}");
        match self.bar(step) {
            Some(b) => b.finish_with_message(msg),
            None => eprintln!("✓ {step} {msg}"),
        }
    }

    fn retrying(&mut self, step: &str, error: &str, next: &str) {
        let msg = format!("retrying at {next}: {error}");
        match self.bar(step) {
            Some(b) => b.set_message(msg),
            None => eprintln!("↻ {step} {msg}"),
        }
    }

    fn failed(&mut self, step: &str, error: &str) {
        let msg = format!("failed: {error}");
        match self.bar(step) {
            Some(b) => b.abandon_with_message(msg),
            None => eprintln!("✗ {step} {msg}"),
        }
    }
}

fn default_out(file: &std::path::Path) -> PathBuf {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("document");
    PathBuf::from(format!("{stem}-study-pack"))
}

pub async fn run(config: &Config, args: ProcessArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", args.file.display())))?;
    if let Some(p) = &args.provider {
        if !["local", "openai"].contains(&p.as_str()) {
            return Err(UsageError(format!("--provider must be local or openai, not '{p}'")).into());
        }
    }
    let services = app::services(config).await?;
    services.provider(args.provider.as_deref()).map_err(UsageError)?;
    let engine = app::engine(config, services.clone()).await?;
    let file_name = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("document")
        .to_string();
    let stored = store_upload(
        &services,
        &args.user,
        &file_name,
        &args.purpose,
        bytes,
        args.force,
    )
    .await
    .context("storing the upload")?;
    let (doc, fresh) = (stored.document, stored.new);
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.file));
    let mut updates = engine.subscribe();
    engine.start().await?;

    let event = uploaded_event(&doc, args.review, args.provider.as_deref());
    let event_id = event.id.clone().unwrap_or_default();
    let receipt = engine.send(event).await?;
    let run_id = match receipt.runs.first() {
        Some(r) => r.clone(),
        None => {
            let page = engine
                .list_runs(&RunFilter {
                    function_id: Some(FUNCTION_ID.into()),
                    event_id: Some(event_id.clone()),
                    limit: Some(1),
                    ..Default::default()
                })
                .await?;
            match page.runs.first() {
                Some(r) => r.id.clone(),
                None => {
                    return Err(anyhow::anyhow!(
                        "document {} was uploaded before but has no run; use --force to process it again",
                        doc.id
                    ))
                }
            }
        }
    };
    let mut progress = Progress::new();
    if fresh {
        progress.line(format!(
            "processing {} as {} (run {run_id})",
            args.file.display(),
            doc.id
        ));
    } else {
        progress.line(format!(
            "resuming {} ({}, run {run_id})",
            args.file.display(),
            doc.id
        ));
    }
    let mut run_id = run_id;
    let mut before = engine.get_run(&run_id).await?;
    // A run that failed for a reason other than the document itself (a provider that
    // was down past every retry, a cancel) is replayed from the failed step: the steps
    // it completed are reused.
    let refused = |d: &learnflow_engine::RunDetail| {
        d.steps
            .iter()
            .any(|s| s.step_id == "extract" && s.error.as_ref().is_some_and(|e| e.name == "BadDocument"))
    };
    if matches!(before.run.status, RunStatus::Failed | RunStatus::Cancelled) && !refused(&before) {
        let again = engine
            .replay(&run_id, learnflow_engine::ReplayFrom::FailedStep)
            .await?;
        progress.line(format!(
            "the earlier run {run_id} {}; replaying it from the failed step as {again}",
            before.run.status
        ));
        run_id = again;
        before = engine.get_run(&run_id).await?;
    }
    for s in &before.steps {
        if s.status == StepStatus::Completed {
            progress.done(&s.step_id, " (recorded earlier)");
        }
    }
    let finished = if before.run.status.is_terminal() {
        before.run
    } else {
        let watch = follow(
            &engine,
            &run_id,
            &mut updates,
            &mut progress,
            args.review,
            &doc.id,
        );
        tokio::select! {
            r = watch => r?,
            _ = tokio::signal::ctrl_c() => {
                engine.shutdown().await;
                eprintln!("interrupted; run the same command again to resume");
                return Ok(ExitCode::from(130));
            }
        }
    };
    engine.shutdown().await;
    match finished.status {
        RunStatus::Completed => {
            let doc = services
                .library
                .document(&args.user, &doc.id)
                .await?
                .context("the document disappeared")?;
            let materials = services.library.materials(&doc.id).await?;
            let files = pack::write_pack(&out, &doc, &materials).context("writing the study pack")?;
            let failed: Vec<&str> = materials
                .iter()
                .filter(|m| m.status != "ready")
                .map(|m| m.agent.as_str())
                .collect();
            println!(
                "{}: {} pages, {} materials ready{}",
                doc.title.as_deref().unwrap_or(&doc.file_name),
                doc.pages.unwrap_or(0),
                materials.len() - failed.len(),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!(", failed: {}", failed.join(", "))
                }
            );
            for f in files {
                println!("{}", f.display());
            }
            println!("document id: {}", doc.id);
            Ok(ExitCode::SUCCESS)
        }
        status => {
            let error = finished
                .error
                .map(|e| e.message)
                .unwrap_or_else(|| status.to_string());
            eprintln!("error: processing {} {status}: {error}", args.file.display());
            // A document the extractor refuses is bad input (exit 2); anything else is a
            // failure of the job (exit 1).
            let detail = engine.get_run(&run_id).await?;
            let bad_input = detail
                .steps
                .iter()
                .any(|s| s.step_id == "extract" && s.error.as_ref().is_some_and(|e| e.name == "BadDocument"));
            Ok(ExitCode::from(if bad_input { 2 } else { 1 }))
        }
    }
}

async fn follow(
    engine: &Engine,
    run_id: &RunId,
    updates: &mut tokio::sync::broadcast::Receiver<learnflow_engine::RunUpdate>,
    progress: &mut Progress,
    review: bool,
    document_id: &str,
) -> anyhow::Result<learnflow_engine::RunRecord> {
    loop {
        let next = tokio::time::timeout(Duration::from_millis(500), updates.recv()).await;
        match next {
            Ok(Ok(u)) if &u.run_id == run_id => match u.kind {
                UpdateKind::StepStarted { step_id, attempt } => progress.started(&step_id, attempt),
                UpdateKind::StepCompleted { step_id } => progress.done(&step_id, ""),
                UpdateKind::StepRetrying {
                    step_id, error, next_at, ..
                } => progress.retrying(&step_id, &error.message, &next_at.to_string()),
                UpdateKind::StepFailed { step_id, error } => progress.failed(&step_id, &error.message),
                UpdateKind::Waiting { .. } if review => progress.line(format!(
                    "waiting for the plan to be approved: run `learnflow approve {document_id}` in another terminal"
                )),
                kind if kind.is_terminal() => return Ok(engine.get_run(run_id).await?.run),
                _ => {}
            },
            Ok(Ok(_)) | Err(_) => {
                let run = engine.get_run(run_id).await?.run;
                if run.status.is_terminal() {
                    return Ok(run);
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                return Ok(engine.wait_for_run(run_id).await?);
            }
        }
    }
}

/// The data a `plan.approved` event carries.
pub fn approval_data(document_id: &str, user_id: &str, agents: Option<Vec<String>>) -> serde_json::Value {
    match agents {
        Some(a) => json!({ "documentId": document_id, "userId": user_id, "agents": a }),
        None => json!({ "documentId": document_id, "userId": user_id }),
    }
}
