//! `learnflow approve DOCUMENT [--agents a,b,c]`: approve (and optionally edit) the
//! plan of a run waiting for review, by sending `plan.approved`.

use std::process::ExitCode;

use clap::Args;
use learnflow_engine::{Engine, EventInput};
use learnflow_pipeline::steps::APPROVED_EVENT;

use super::process::approval_data;
use super::{open_library, open_store};
use crate::config::Config;
use crate::UsageError;

/// Options of `learnflow approve`.
#[derive(Args)]
pub struct ApproveArgs {
    /// The document id.
    document: String,
    /// The agents to run instead of the planned ones, comma-separated (e.g. `summary,quiz,flashcards`).
    #[arg(long, value_delimiter = ',')]
    agents: Option<Vec<String>>,
}

pub async fn run(config: &Config, args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let library = open_library(config).await?;
    let doc = library
        .document_any(&args.document)
        .await?
        .ok_or_else(|| UsageError(format!("document '{}' not found", args.document)))?;
    let engine = Engine::builder(open_store(config).await?)
        .config(config.engine_config())
        .build();
    let agents = args.agents.map(|a| {
        a.into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let receipt = engine
        .send(EventInput::new(
            APPROVED_EVENT,
            approval_data(&args.document, &doc.user_id, agents),
        ))
        .await?;
    println!(
        "sent {APPROVED_EVENT} for {} (event {})",
        args.document, receipt.event_id
    );
    Ok(ExitCode::SUCCESS)
}
