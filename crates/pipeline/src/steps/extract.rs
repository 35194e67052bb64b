//! `extract`: the uploaded bytes become text with page numbers (OCR where needed),
//! cut into chunks and stored in the library.

use learnflow_ai::doc::{DocumentText, PageText};
use learnflow_ai::rag::chunk::{chunk_document, ChunkOptions};
use learnflow_engine::Failure;
use serde_json::{json, Value};

use super::Uploaded;
use crate::blobs::BlobError;
use crate::library::DocumentStatus;
use crate::services::Services;

fn retriable(e: impl std::fmt::Display) -> Failure {
    Failure::retriable(e.to_string())
}

pub async fn extract(s: &Services, data: &Uploaded, run_id: &str) -> Result<Value, Failure> {
    let id = &data.document_id;
    let doc = s
        .library
        .document_any(id)
        .await
        .map_err(retriable)?
        .ok_or_else(|| Failure::non_retriable(format!("document '{id}' is not in the library")))?;
    if doc.user_id != data.user_id {
        // An event naming someone else's document: say no more than "not found".
        return Err(Failure::non_retriable(format!(
            "document '{id}' is not in the library"
        )));
    }
    s.library
        .set_status(id, DocumentStatus::Processing, None, Some(run_id))
        .await
        .map_err(retriable)?;
    let bytes = s.blobs.get(&doc.blob_key).await.map_err(|e| match e {
        BlobError::NotFound(_) | BlobError::BadKey { .. } => Failure::non_retriable(e.to_string()),
        BlobError::Storage(_) => retriable(e),
    })?;
    let options = s.ingest.clone();
    let extracted = tokio::task::spawn_blocking(move || learnflow_ingest::extract(&bytes, &options))
        .await
        .map_err(|e| Failure::retriable(format!("extraction task failed: {e}")))?
        .map_err(|e| {
            if e.is_permanent() {
                Failure::non_retriable(e.to_string()).named("BadDocument")
            } else {
                Failure::retriable(e.to_string())
            }
        })?;
    let title = extracted
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| doc.file_name.clone());
    let text = document_text(&extracted, title);
    let chunks = chunk_document(&text, &ChunkOptions::default());
    let kind = extracted.kind.to_string();
    s.library
        .put_text(id, &text, &chunks, &kind, &extracted.ocr_pages)
        .await
        .map_err(retriable)?;
    s.forget(id);
    let chars: usize = text.pages.iter().map(|p| p.text.chars().count()).sum();
    Ok(json!({
        "kind": kind,
        "title": text.title,
        "pages": text.pages.len(),
        "ocrPages": extracted.ocr_pages,
        "virtualPages": extracted.virtual_pages,
        "chunks": chunks.len(),
        "chars": chars,
        "warnings": extracted.warnings,
    }))
}

/// The text an extracted document gives the agents and the library, under `title`.
pub fn document_text(extracted: &learnflow_ingest::ExtractedDocument, title: String) -> DocumentText {
    DocumentText {
        title,
        pages: extracted
            .pages
            .iter()
            .map(|p| PageText {
                number: p.number,
                text: p.text.clone(),
                headings: p.headings.iter().map(|h| h.text.clone()).collect(),
            })
            .collect(),
    }
}
