//! Taking in an uploaded file: the bytes go to blob storage under their content hash,
//! the library gets a document record, and the `document.uploaded` event that starts
//! `process-document` is built. The same bytes uploaded again by the same user give the
//! same document.

use learnflow_engine::EventInput;

use crate::blobs::{blob_key, sha256_hex, BlobError};
use crate::library::{DocumentRecord, DocumentStatus, LibraryError};
use crate::services::Services;
use crate::steps::{Uploaded, UPLOADED_EVENT};

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Blob storage failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The library failed.
    #[error(transparent)]
    Library(#[from] LibraryError),
}

/// A stored upload.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    /// The document.
    pub document: DocumentRecord,
    /// False when these bytes were uploaded before (the earlier document is returned).
    pub new: bool,
}

/// Stores `bytes` for `user_id` and records the document, unless the user uploaded the
/// same bytes before (then that document is returned) or `force` is set.
pub async fn store_upload(
    s: &Services,
    user_id: &str,
    file_name: &str,
    purpose: &str,
    bytes: Vec<u8>,
    force: bool,
) -> Result<Stored, UploadError> {
    let hash = sha256_hex(&bytes);
    if !force {
        if let Some(document) = s.library.document_by_hash(user_id, &hash).await? {
            return Ok(Stored { document, new: false });
        }
    }
    let key = blob_key(user_id, &hash);
    let size = bytes.len() as u64;
    s.blobs.put(&key, bytes).await?;
    record(s, user_id, file_name, purpose, hash, key, size).await
}

/// Takes in a file already written to blob storage under the temporary key `temp_key`
/// (see [`crate::blobs::BlobStore::writer`]): when the user uploaded the same bytes
/// before, the temporary blob is removed and that document returned; otherwise the
/// blob moves to its content-addressed key and a document is recorded.
pub async fn store_streamed_upload(
    s: &Services,
    user_id: &str,
    file_name: &str,
    purpose: &str,
    temp_key: &str,
    hash: String,
    size: u64,
) -> Result<Stored, UploadError> {
    if let Some(document) = s.library.document_by_hash(user_id, &hash).await? {
        s.blobs.delete(temp_key).await?;
        return Ok(Stored { document, new: false });
    }
    let key = blob_key(user_id, &hash);
    s.blobs.rename(temp_key, &key).await?;
    record(s, user_id, file_name, purpose, hash, key, size).await
}

/// The temporary blob key for an upload in progress.
pub fn temp_key(user_id: &str) -> String {
    blob_key(user_id, &format!("incoming-{}", ulid::Ulid::new()))
}

async fn record(
    s: &Services,
    user_id: &str,
    file_name: &str,
    purpose: &str,
    hash: String,
    key: String,
    size: u64,
) -> Result<Stored, UploadError> {
    let now = learnflow_engine::Timestamp::now_utc().millis();
    let document = DocumentRecord {
        id: format!("doc_{}", ulid::Ulid::new()),
        user_id: user_id.to_string(),
        file_name: file_name.to_string(),
        content_hash: hash,
        blob_key: key,
        size,
        purpose: purpose.to_string(),
        status: DocumentStatus::Queued,
        error: None,
        run_id: None,
        title: None,
        kind: None,
        pages: None,
        embed_model: None,
        created_at: now,
        updated_at: now,
    };
    s.library.put_document(&document).await?;
    Ok(Stored { document, new: true })
}

/// The `document.uploaded` event for a stored document. Its id is derived from the
/// document, so sending it again starts nothing new (and a restarted client resumes
/// the same run).
pub fn uploaded_event(document: &DocumentRecord, review: bool, provider: Option<&str>) -> EventInput {
    let data = Uploaded {
        document_id: document.id.clone(),
        user_id: document.user_id.clone(),
        purpose: document.purpose.clone(),
        file_name: document.file_name.clone(),
        review,
        provider: provider.map(str::to_string),
    };
    let value = serde_json::to_value(data).unwrap_or_default();
    let mut event = EventInput::new(UPLOADED_EVENT, value).with_id(format!("upload-{}", document.id));
    event.user = Some(serde_json::json!({ "id": document.user_id }));
    event
}
