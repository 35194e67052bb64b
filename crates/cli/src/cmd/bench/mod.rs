//! `learnflow bench`: system benchmarks. Each prints a table to stderr and, with
//! `--json`, exactly one JSON object on the last line of stdout.

mod engine;
mod inngest;
mod pipeline;
mod serve;
mod ui;

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

/// The benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Step overhead and throughput of the engine on the configured store, against a
    /// raw single-row commit baseline on the same database file.
    Engine(engine::EngineBenchArgs),
    /// The study-pack pipeline: 50 pages offline, OCR speed, the critical path against a
    /// delayed OpenAI-compatible server, retrieval recall@5.
    Pipeline(pipeline::PipelineBenchArgs),
    /// `learnflow serve` under load: upload latency, documents per minute, SSE delay,
    /// memory.
    Serve(serve::ServeBenchArgs),
    /// The dashboard's runs list with 10,000 runs in the store.
    Ui(ui::UiBenchArgs),
    /// The engine's workloads written with the npm Inngest SDK, run through LearnFlow,
    /// beside the same workloads as native functions.
    Inngest(inngest::InngestBenchArgs),
}

pub async fn run(config: &Config, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Engine(args) => engine::run(config, args).await,
        BenchCommand::Pipeline(args) => pipeline::run(config, args).await,
        BenchCommand::Serve(args) => serve::run(config, args).await,
        BenchCommand::Ui(args) => ui::run(config, args).await,
        BenchCommand::Inngest(args) => inngest::run(config, args).await,
    }
}

/// Peak resident set size of this process, in MiB (Linux `VmHWM`).
pub fn peak_rss_mb() -> f64 {
    proc_status_mb("self", "VmHWM:")
}

/// A memory figure (`VmRSS:`, `VmHWM:`, …) of a process from `/proc/PID/status`, in MiB
/// (0 when unavailable).
pub fn proc_status_mb(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The p-th percentile (0–100) of sorted microsecond samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
