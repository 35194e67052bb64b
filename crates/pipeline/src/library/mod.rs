//! The library: what LearnFlow keeps about documents besides the engine's runs —
//! document records, their text page by page, chunks with embeddings (searched by
//! vector and by full text), study materials, and question threads. Every read names
//! the user, so a user never sees another user's documents.
//!
//! Two stores implement [`Library`]: [`SqliteLibrary`] (one file, FTS5, exact vector
//! search) and [`PostgresLibrary`] (several nodes, pgvector's HNSW index, `tsvector`).
//! They rank alike (the private `ranking` module holds what they share), so a document
//! gives the same passages, in the same order, whichever store keeps it.

mod postgres;
mod ranking;
mod sqlite;

pub use postgres::PostgresLibrary;
pub use sqlite::SqliteLibrary;

use async_trait::async_trait;
use learnflow_ai::doc::{Chunk, DocumentText};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a document is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    /// Uploaded, waiting for its run.
    Queued,
    /// The pipeline is working on it.
    Processing,
    /// Waiting for the plan's approval.
    Review,
    /// The study pack is ready.
    Ready,
    /// The pipeline failed; `error` says why.
    Failed,
}

impl DocumentStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Queued => "queued",
            DocumentStatus::Processing => "processing",
            DocumentStatus::Review => "review",
            DocumentStatus::Ready => "ready",
            DocumentStatus::Failed => "failed",
        }
    }

    /// Parses [`DocumentStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Processing,
            Self::Review,
            Self::Ready,
            Self::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A document as the library keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentRecord {
    /// Document id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The uploaded file's name (display only; the type comes from the content).
    pub file_name: String,
    /// SHA-256 of the bytes (hex).
    pub content_hash: String,
    /// Where the bytes are in blob storage.
    pub blob_key: String,
    /// Size in bytes.
    pub size: u64,
    /// The study purpose.
    pub purpose: String,
    /// Status.
    pub status: DocumentStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// The processing run.
    pub run_id: Option<String>,
    /// Title, once extracted.
    pub title: Option<String>,
    /// Detected type, once extracted.
    pub kind: Option<String>,
    /// Pages, once extracted.
    pub pages: Option<u32>,
    /// The embedding model of its chunks.
    pub embed_model: Option<String>,
    /// Created (ms since the epoch).
    pub created_at: i64,
    /// Last change (ms since the epoch).
    pub updated_at: i64,
}

/// A study material of a document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaterialRecord {
    /// The agent that made it (`quiz`).
    pub agent: String,
    /// `ready` or `failed`.
    pub status: String,
    /// The material (agent output) when ready.
    pub content: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// Importance in the plan (1 = most).
    pub priority: u32,
    /// The architect's focus for it.
    pub focus: String,
}

/// A passage found by search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// The chunk.
    pub chunk: Chunk,
    /// Fused score (higher is better).
    pub score: f64,
    /// Rank by vector similarity (1-based), if it was among the vector hits.
    pub vector_rank: Option<usize>,
    /// Rank by full-text relevance (1-based), if it was among the text hits.
    pub text_rank: Option<usize>,
}

/// One question and answer of a thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// The question.
    pub question: String,
    /// The answer.
    pub answer: String,
    /// Citations and passages used (JSON).
    pub detail: Value,
    /// When (ms since the epoch).
    pub at: i64,
}

/// Library failures.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// The database failed.
    #[error("library database error: {0}")]
    Database(String),
    /// Stored data could not be read.
    #[error("library data is corrupt: {0}")]
    Corrupt(String),
    /// No such document for this user.
    #[error("document '{0}' not found")]
    NotFound(String),
}

/// The library's storage.
#[async_trait]
pub trait Library: Send + Sync {
    /// Inserts or replaces a document record.
    async fn put_document(&self, doc: &DocumentRecord) -> Result<(), LibraryError>;
    /// A user's document.
    async fn document(&self, user_id: &str, id: &str) -> Result<Option<DocumentRecord>, LibraryError>;
    /// A document by id, whoever owns it (for the pipeline itself).
    async fn document_any(&self, id: &str) -> Result<Option<DocumentRecord>, LibraryError>;
    /// A user's document with these bytes.
    async fn document_by_hash(
        &self,
        user_id: &str,
        hash: &str,
    ) -> Result<Option<DocumentRecord>, LibraryError>;
    /// A user's documents, newest first.
    async fn documents(&self, user_id: &str) -> Result<Vec<DocumentRecord>, LibraryError>;
    /// Sets status and error (and optionally the run id).
    async fn set_status(
        &self,
        id: &str,
        status: DocumentStatus,
        error: Option<&str>,
        run_id: Option<&str>,
    ) -> Result<(), LibraryError>;
    /// Stores the extracted text and its chunks (replacing earlier ones) and the
    /// document's title, kind and page count.
    async fn put_text(
        &self,
        id: &str,
        text: &DocumentText,
        chunks: &[Chunk],
        kind: &str,
        ocr_pages: &[u32],
    ) -> Result<(), LibraryError>;
    /// The text and chunks of a document.
    async fn text(&self, id: &str) -> Result<Option<(DocumentText, Vec<Chunk>)>, LibraryError>;
    /// Stores chunk vectors made by `model`.
    async fn put_embeddings(
        &self,
        id: &str,
        model: &str,
        vectors: &[(String, Vec<f32>)],
    ) -> Result<(), LibraryError>;
    /// Hybrid search: vector similarity (when `query_vector` is given) and full text,
    /// fused by reciprocal rank; the top `k`.
    async fn search(
        &self,
        id: &str,
        query: &str,
        query_vector: Option<&[f32]>,
        k: usize,
    ) -> Result<Vec<Passage>, LibraryError>;
    /// Stores materials (replacing same-agent ones).
    async fn put_materials(&self, id: &str, materials: &[MaterialRecord]) -> Result<(), LibraryError>;
    /// A document's materials by priority.
    async fn materials(&self, id: &str) -> Result<Vec<MaterialRecord>, LibraryError>;
    /// Removes a document with its text, chunks, vectors, materials and threads.
    async fn delete_document(&self, user_id: &str, id: &str) -> Result<bool, LibraryError>;
    /// The turns of a thread of a user's document, oldest first.
    async fn turns(
        &self,
        user_id: &str,
        document_id: &str,
        thread_id: &str,
    ) -> Result<Vec<TurnRecord>, LibraryError>;
    /// Appends a turn to a thread.
    async fn add_turn(
        &self,
        user_id: &str,
        document_id: &str,
        thread_id: &str,
        turn: &TurnRecord,
    ) -> Result<(), LibraryError>;
}
