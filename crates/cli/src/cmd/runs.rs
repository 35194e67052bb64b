//! `learnflow runs`: list, show, cancel and replay runs in the store.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use learnflow_engine::{Engine, ReplayFrom, RunDetail, RunFilter, RunId, RunStatus, StepStatus};

use super::{human_us, open_store};
use crate::config::Config;
use crate::UsageError;

/// Run administration.
#[derive(Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Only runs of this function.
        #[arg(long)]
        function: Option<String>,
        /// Only runs in this state (queued, running, sleeping, waiting, completed, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only runs started by the event with this id.
        #[arg(long)]
        event_id: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a run with its event, output or error, and its step journal.
    Show {
        /// The run id.
        run_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run; it stops before its next step.
    Cancel {
        /// The run id.
        run_id: String,
    },
    /// Replay a failed or cancelled run as a new run (executed by a process that has its function).
    Replay {
        /// The run id.
        run_id: String,
        /// Start over, or keep the completed steps and start from the failed one.
        #[arg(long, value_enum, default_value_t = From::FailedStep)]
        from: From,
    },
}

/// Where a replay starts.
#[derive(Clone, Copy, ValueEnum)]
pub enum From {
    /// From the first step.
    Start,
    /// From the failed step, reusing earlier results.
    FailedStep,
}

pub async fn run(config: &Config, cmd: RunsCommand) -> anyhow::Result<ExitCode> {
    let engine = Engine::builder(open_store(config).await?)
        .config(config.engine_config())
        .build();
    match cmd {
        RunsCommand::List {
            function,
            status,
            event_id,
            limit,
            json,
        } => {
            let statuses = match status {
                Some(s) => vec![s.parse::<RunStatus>().map_err(UsageError)?],
                None => Vec::new(),
            };
            let page = engine
                .list_runs(&RunFilter {
                    function_id: function,
                    statuses,
                    event_id,
                    limit: Some(limit),
                    ..Default::default()
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                println!(
                    "{:<28} {:<24} {:<10} {:<26}",
                    "RUN", "FUNCTION", "STATUS", "CREATED"
                );
                for r in &page.runs {
                    println!(
                        "{:<28} {:<24} {:<10} {:<26}",
                        r.id, r.function_id, r.status, r.created_at
                    );
                }
            }
        }
        RunsCommand::Show { run_id, json } => {
            let detail = engine.get_run(&RunId(run_id)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
            } else {
                print_detail(&detail);
            }
        }
        RunsCommand::Cancel { run_id } => {
            engine.cancel(&RunId(run_id.clone())).await?;
            println!("cancelled {run_id}");
        }
        RunsCommand::Replay { run_id, from } => {
            let from = match from {
                From::Start => ReplayFrom::Start,
                From::FailedStep => ReplayFrom::FailedStep,
            };
            let new = engine.replay(&RunId(run_id), from).await?;
            println!("{new}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a run and its journal as a table.
pub fn print_detail(d: &RunDetail) {
    let r = &d.run;
    let took = match (r.started_at, r.ended_at) {
        (Some(s), Some(e)) => format!(" in {}", human_us(e.since(s).as_micros() as u64)),
        _ => String::new(),
    };
    println!("run {} of {} — {}{took}", r.id, r.function_id, r.status);
    println!("  event {} {} {}", d.event.name, d.event.id, d.event.data);
    if let Some(o) = &r.output {
        println!("  output {o}");
    }
    if let Some(e) = &r.error {
        println!("  error {e}");
    }
    let origin = r.started_at.unwrap_or(r.created_at);
    println!(
        "  {:<16} {:<15} {:<10} {:>8} {:>10} {:>10}",
        "STEP", "KIND", "STATUS", "ATTEMPTS", "AT", "TOOK"
    );
    for s in &d.steps {
        let at = s.started_at.since(origin).as_micros() as u64;
        let took = match s.ended_at {
            Some(e) => human_us(e.since(s.started_at).as_micros() as u64),
            None => "—".into(),
        };
        println!(
            "  {:<16} {:<15} {:<10} {:>8} {:>10} {:>10}",
            s.step_id,
            s.kind.as_str(),
            s.status.as_str(),
            s.attempts.len(),
            format!("+{}", human_us(at)),
            took
        );
        for a in &s.attempts {
            if let Some(err) = &a.error {
                println!(
                    "      attempt {} failed after {}: {err}",
                    a.number,
                    human_us(a.duration_us)
                );
            }
        }
        if s.status == StepStatus::Retrying {
            if let Some(w) = s.wake_at {
                println!("      next attempt at {w}");
            }
        }
    }
}
