//! `learnflow ask DOCUMENT "question"`: a cited answer from a processed document.
//! Follow-up questions in the same thread (`--thread`, default `cli`) see the earlier
//! turns.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use learnflow_pipeline::ask::{ask, AskError, AskRequest};
use learnflow_pipeline::blobs::sha256_hex;

use super::app;
use crate::config::Config;
use crate::UsageError;

/// Options of `learnflow ask`.
#[derive(Args)]
pub struct AskArgs {
    /// A document id (`doc_…`), or the path of a file processed before.
    document: String,
    /// The question.
    question: String,
    /// The conversation thread.
    #[arg(long, default_value = "cli")]
    thread: String,
    /// Language-model provider: local or openai.
    #[arg(long)]
    provider: Option<String>,
    /// The user the document belongs to.
    #[arg(long, default_value = "local")]
    user: String,
    /// Print JSON (answer, citations, passages, calls).
    #[arg(long)]
    json: bool,
}

pub async fn run(config: &Config, args: AskArgs) -> anyhow::Result<ExitCode> {
    let services = app::services(config).await?;
    let provider = services.provider(args.provider.as_deref()).map_err(UsageError)?;
    let document_id = if Path::new(&args.document).is_file() {
        let bytes = std::fs::read(&args.document)
            .map_err(|e| UsageError(format!("cannot read {}: {e}", args.document)))?;
        match services
            .library
            .document_by_hash(&args.user, &sha256_hex(&bytes))
            .await?
        {
            Some(d) => d.id,
            None => {
                return Err(UsageError(format!(
                    "{} has not been processed yet; run `learnflow process {}` first",
                    args.document, args.document
                ))
                .into())
            }
        }
    } else {
        args.document.clone()
    };
    let req = AskRequest {
        user_id: args.user.clone(),
        document_id,
        question: args.question.clone(),
        thread_id: args.thread.clone(),
    };
    let answer = match ask(&services, provider, &req).await {
        Ok(a) => a,
        Err(e @ (AskError::BadQuestion(_) | AskError::NotFound(_) | AskError::NotReady { .. })) => {
            return Err(UsageError(e.to_string()).into())
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("{}\n", answer.answer);
        println!("Passages used:");
        for p in &answer.passages {
            let text: String = p.chunk.text.chars().take(160).collect();
            println!(
                "  [{} p. {}] {}…",
                p.chunk.id,
                p.chunk.page,
                text.replace('\n', " ")
            );
        }
        println!("\n(thread: {})", answer.thread_id);
    }
    Ok(ExitCode::SUCCESS)
}
