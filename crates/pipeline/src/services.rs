//! What the pipeline's steps use: the library, blob storage, the language-model
//! providers, the embedder, ingest options, and a cache of analysed documents.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use learnflow_ai::embed::Embedder;
use learnflow_ai::provider::local::LocalProvider;
use learnflow_ai::provider::ChatProvider;
use learnflow_ai::record::CallRecord;
use learnflow_ai::studio::StudyContext;
use learnflow_ingest::IngestOptions;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::blobs::BlobStore;
use crate::library::{Library, LibraryError};

/// A notice that a document finished (in-process; the durable form is the
/// `document.processed` event).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentNotice {
    /// The document.
    pub document_id: String,
    /// Its owner.
    pub user_id: String,
    /// `ready` or `failed`.
    pub status: String,
    /// Materials ready.
    pub ready: usize,
    /// Materials that failed.
    pub failed: usize,
}

/// Language-model calls made by this process, by provider (counters for metrics).
#[derive(Debug, Default)]
pub struct Usage {
    by_provider: Mutex<HashMap<String, UsageTotals>>,
}

/// Totals for one provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    /// Calls made.
    pub calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost, where a price table is configured.
    pub cost_usd: f64,
}

impl Usage {
    /// Counts these calls.
    pub fn add(&self, calls: &[CallRecord]) {
        let mut map = self.by_provider.lock();
        for c in calls {
            let t = map.entry(c.provider.clone()).or_default();
            t.calls += 1;
            t.input_tokens += c.input_tokens;
            t.output_tokens += c.output_tokens;
            t.cost_usd += c.cost_usd.unwrap_or(0.0);
        }
    }

    /// Totals by provider, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, UsageTotals)> {
        let mut v: Vec<_> = self
            .by_provider
            .lock()
            .iter()
            .map(|(k, t)| (k.clone(), *t))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// Everything the steps need.
pub struct Services {
    /// Documents, text, chunks, materials, threads.
    pub library: Arc<dyn Library>,
    /// Uploaded files.
    pub blobs: BlobStore,
    /// The offline provider.
    pub local: Arc<dyn ChatProvider>,
    /// The OpenAI-compatible provider, when configured.
    pub openai: Option<Arc<dyn ChatProvider>>,
    /// The provider used when an upload names none: `local` or `openai`.
    pub default_provider: String,
    /// Embeddings.
    pub embedder: Arc<dyn Embedder>,
    /// Extraction options.
    pub ingest: IngestOptions,
    /// How long a run waits for `plan.approved`.
    pub review_timeout: Duration,
    /// In-process notices of finished documents.
    pub notices: broadcast::Sender<DocumentNotice>,
    /// Language-model use by this process (for metrics).
    pub usage: Arc<Usage>,
    contexts: Mutex<HashMap<String, Arc<StudyContext>>>,
}

/// How many analysed documents stay in memory.
const CONTEXT_CACHE: usize = 8;

impl Services {
    /// Services with the offline provider only.
    pub fn new(
        library: Arc<dyn Library>,
        blobs: BlobStore,
        embedder: Arc<dyn Embedder>,
        ingest: IngestOptions,
    ) -> Self {
        let (notices, _) = broadcast::channel(256);
        Services {
            library,
            blobs,
            local: Arc::new(LocalProvider),
            openai: None,
            default_provider: "local".into(),
            embedder,
            ingest,
            review_timeout: Duration::from_secs(24 * 3600),
            notices,
            usage: Arc::new(Usage::default()),
            contexts: Mutex::new(HashMap::new()),
        }
    }

    /// The provider called `name` (`local`, `openai`), or the default.
    pub fn provider(&self, name: Option<&str>) -> Result<Arc<dyn ChatProvider>, String> {
        match name.unwrap_or(&self.default_provider) {
            "local" => Ok(self.local.clone()),
            "openai" => self.openai.clone().ok_or_else(|| {
                "the openai provider is not configured (set LEARNFLOW_OPENAI_BASE_URL, LEARNFLOW_OPENAI_MODEL \
                 and LEARNFLOW_OPENAI_API_KEY, or the [ai] section of the config file)"
                    .to_string()
            }),
            other => Err(format!("unknown provider '{other}' (expected local or openai)")),
        }
    }

    /// The analysed text of a document (cached; built from the library when missing).
    pub async fn context(&self, document_id: &str) -> Result<Arc<StudyContext>, LibraryError> {
        if let Some(c) = self.contexts.lock().get(document_id).cloned() {
            return Ok(c);
        }
        let (doc, chunks) = self
            .library
            .text(document_id)
            .await?
            .ok_or_else(|| LibraryError::NotFound(format!("{document_id} (no extracted text)")))?;
        let ctx = tokio::task::spawn_blocking(move || StudyContext::new(doc, chunks))
            .await
            .map_err(|e| LibraryError::Database(format!("analysis task failed: {e}")))?;
        let ctx = Arc::new(ctx);
        let mut cache = self.contexts.lock();
        if cache.len() >= CONTEXT_CACHE {
            cache.clear();
        }
        cache.insert(document_id.to_string(), ctx.clone());
        Ok(ctx)
    }

    /// Forgets a cached analysis (after the text changed).
    pub fn forget(&self, document_id: &str) {
        self.contexts.lock().remove(document_id);
    }
}
