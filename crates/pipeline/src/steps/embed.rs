//! `embed`: every chunk gets a vector from the configured embedder.

use std::time::Instant;

use learnflow_engine::Failure;
use serde_json::{json, Value};

use super::Uploaded;
use crate::services::Services;

pub async fn embed(s: &Services, data: &Uploaded) -> Result<Value, Failure> {
    let id = &data.document_id;
    let (_, chunks) = s
        .library
        .text(id)
        .await
        .map_err(|e| Failure::retriable(e.to_string()))?
        .ok_or_else(|| Failure::non_retriable(format!("document '{id}' has no extracted text")))?;
    let texts: Vec<String> = chunks.iter().map(|c| c.text.clone()).collect();
    let t0 = Instant::now();
    let vectors = s.embedder.embed(&texts).await.map_err(|e| {
        if let Some(after) = e.retry_after() {
            Failure::retry_after(e.to_string(), after)
        } else if e.is_transient() {
            Failure::retriable(e.to_string())
        } else {
            Failure::non_retriable(e.to_string())
        }
    })?;
    let ms = t0.elapsed().as_millis() as u64;
    if vectors.len() != chunks.len() {
        return Err(Failure::retriable(format!(
            "the embedder returned {} vectors for {} chunks",
            vectors.len(),
            chunks.len()
        )));
    }
    let dims = vectors.first().map_or(0, Vec::len);
    let pairs: Vec<(String, Vec<f32>)> = chunks.iter().map(|c| c.id.clone()).zip(vectors).collect();
    s.library
        .put_embeddings(id, s.embedder.model_id(), &pairs)
        .await
        .map_err(|e| Failure::retriable(e.to_string()))?;
    Ok(json!({ "chunks": pairs.len(), "model": s.embedder.model_id(), "dims": dims, "ms": ms }))
}
