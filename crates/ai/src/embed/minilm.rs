//! all-MiniLM-L6-v2 sentence embeddings computed on the CPU with candle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{embed_in_batches, EmbedError, Embedder};

/// The model id stored with MiniLM vectors.
pub const MINILM_MODEL_ID: &str = "minilm-l6-v2";
/// Vector length of all-MiniLM-L6-v2.
pub const MINILM_DIMENSIONS: usize = 384;
/// How many texts go through the model in one forward pass.
pub const MINILM_BATCH_SIZE: usize = 32;
/// Inputs are truncated to this many tokens (including `[CLS]` and `[SEP]`), as the
/// sentence-transformers model was trained.
pub const MINILM_MAX_TOKENS: usize = 256;

/// The all-MiniLM-L6-v2 sentence embedder (384 dimensions, mean pooling, L2-normalised).
///
/// Loaded from a folder holding `config.json`, `tokenizer.json` and `model.safetensors`
/// (see [`super::ModelStore`] to obtain one). Cloning is cheap: the model sits behind an
/// `Arc`. The forward pass runs in `tokio::task::spawn_blocking`, one batch of
/// [`MINILM_BATCH_SIZE`] texts at a time, so it needs a Tokio runtime. Results are
/// deterministic and do not depend on how texts are batched (up to float rounding).
#[derive(Clone)]
pub struct MiniLmEmbedder {
    inner: Arc<Inner>,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for MiniLmEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLmEmbedder")
            .field("model_id", &MINILM_MODEL_ID)
            .finish_non_exhaustive()
    }
}

impl MiniLmEmbedder {
    /// Loads the model from `dir` (`config.json`, `tokenizer.json`, `model.safetensors`).
    ///
    /// This reads the files only; it does not check their checksums (use
    /// [`super::verify_minilm_dir`] or [`super::ModelStore`] for that). It is blocking
    /// (about 0.1–0.5 s); call it from `spawn_blocking` inside async code if that matters.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let config_path = existing(dir, "config.json")?;
        let tokenizer_path = existing(dir, "tokenizer.json")?;
        let weights_path = existing(dir, "model.safetensors")?;

        let config_text =
            std::fs::read_to_string(&config_path).map_err(|e| EmbedError::io(&config_path, e))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|e| corrupt(&config_path, e))?;
        if config.hidden_size != MINILM_DIMENSIONS {
            return Err(corrupt(
                &config_path,
                format!(
                    "hidden_size is {}, expected {MINILM_DIMENSIONS}",
                    config.hidden_size
                ),
            ));
        }

        let tokenizer = load_tokenizer(&tokenizer_path)?;

        let device = Device::Cpu;
        let bytes = std::fs::read(&weights_path).map_err(|e| EmbedError::io(&weights_path, e))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .map_err(|e| corrupt(&weights_path, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| corrupt(&weights_path, e))?;

        Ok(MiniLmEmbedder {
            inner: Arc::new(Inner {
                model,
                tokenizer,
                device,
            }),
        })
    }
}

/// Loads a MiniLM `tokenizer.json` set up for batch embedding: padding to the longest text of
/// each batch (keeping the file's pad token) and truncation at [`MINILM_MAX_TOKENS`].
///
/// The shipped tokenizer.json pads every input to a fixed 128 tokens and truncates at 128;
/// both are overridden here, and pooling relies on the attention mask so padding never
/// changes a vector. Shared by the candle and the ONNX embedders.
pub(super) fn load_tokenizer(tokenizer_path: &Path) -> Result<Tokenizer, EmbedError> {
    let mut tokenizer = Tokenizer::from_file(tokenizer_path).map_err(|e| corrupt(tokenizer_path, e))?;
    let mut padding = tokenizer
        .get_padding()
        .cloned()
        .unwrap_or_else(PaddingParams::default);
    padding.strategy = PaddingStrategy::BatchLongest;
    padding.pad_to_multiple_of = None;
    tokenizer.with_padding(Some(padding));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MINILM_MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(|e| corrupt(tokenizer_path, e))?;
    Ok(tokenizer)
}

fn existing(dir: &Path, name: &str) -> Result<PathBuf, EmbedError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::ModelFilesMissing {
            path,
            detail: format!("the MiniLM model folder {} has no {name}", dir.display()),
        })
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> EmbedError {
    EmbedError::ModelCorrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn inference(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Inference(e.to_string())
}

impl Inner {
    /// Tokenises and embeds one batch; returns one normalised vector per text.
    fn embed_batch(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self.tokenizer.encode_batch(texts, true).map_err(inference)?;
        let batch = encodings.len();
        let seq = encodings.first().map_or(0, |e| e.get_ids().len());
        if batch == 0 || seq == 0 {
            return Err(EmbedError::Inference("the tokenizer produced no tokens".into()));
        }
        let mut ids = Vec::with_capacity(batch * seq);
        let mut mask = Vec::with_capacity(batch * seq);
        for enc in &encodings {
            if enc.get_ids().len() != seq {
                return Err(EmbedError::Inference(
                    "batch encodings have different lengths".into(),
                ));
            }
            ids.extend_from_slice(enc.get_ids());
            mask.extend_from_slice(enc.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (batch, seq), &self.device).map_err(inference)?;
        let mask = Tensor::from_vec(mask, (batch, seq), &self.device).map_err(inference)?;
        let type_ids = ids.zeros_like().map_err(inference)?;

        let hidden = self
            .model
            .forward(&ids, &type_ids, Some(&mask))
            .map_err(inference)?; // (b, seq, 384)
        let pooled = (|| {
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, seq, 1)
            let summed = hidden.broadcast_mul(&m)?.sum(1)?; // (b, 384)
            let counts = m.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (b, 1)
            let mean = summed.broadcast_div(&counts)?;
            let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
            mean.broadcast_div(&norms)?.to_vec2::<f32>()
        })()
        .map_err(inference)?;
        Ok(pooled)
    }
}

#[async_trait::async_trait]
impl Embedder for MiniLmEmbedder {
    fn model_id(&self) -> &str {
        MINILM_MODEL_ID
    }

    fn dimensions(&self) -> usize {
        MINILM_DIMENSIONS
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inner = Arc::clone(&self.inner);
        embed_in_batches(texts, MINILM_BATCH_SIZE, move |batch| inner.embed_batch(batch)).await
    }
}
