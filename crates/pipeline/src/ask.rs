//! Questions over a processed document: hybrid retrieval (vectors + full text), then a
//! cited answer from the provider. Tool-calling providers may search again with the
//! `search_document` tool (agentic retrieval). Each thread keeps its turns, so a
//! follow-up sees the earlier questions and answers.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use learnflow_ai::answer::Turn;
use learnflow_ai::doc::Citation;
use learnflow_ai::provider::{ChatProvider, ToolSpec};
use learnflow_ai::record::CallRecord;
use learnflow_ai::runner::{TaskError, ToolBox};
use learnflow_ai::studio;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::library::{DocumentStatus, LibraryError, Passage, TurnRecord};
use crate::services::Services;

/// Passages retrieved per question.
pub const TOP_K: usize = 5;
/// Longest accepted question.
pub const MAX_QUESTION_CHARS: usize = 2_000;

/// A question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AskRequest {
    /// Who asks.
    pub user_id: String,
    /// About which document.
    pub document_id: String,
    /// The question.
    pub question: String,
    /// The conversation it belongs to.
    pub thread_id: String,
}

/// A cited answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AskAnswer {
    /// The answer, with `[p. N]` citations.
    pub answer: String,
    /// The sources cited.
    pub citations: Vec<Citation>,
    /// The passages retrieved.
    pub passages: Vec<Passage>,
    /// The thread.
    pub thread_id: String,
    /// Model and tool calls.
    pub calls: Vec<CallRecord>,
}

/// Why a question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Bad question.
    #[error("{0}")]
    BadQuestion(String),
    /// No such document for this user.
    #[error("document '{0}' not found")]
    NotFound(String),
    /// The document has no study pack yet.
    #[error("document '{id}' is {status}; questions can be asked once it is ready")]
    NotReady {
        /// The document.
        id: String,
        /// Its status.
        status: String,
    },
    /// Retrieval or storage failed.
    #[error(transparent)]
    Library(#[from] LibraryError),
    /// The embedder failed.
    #[error("embedding the question failed: {0}")]
    Embed(String),
    /// The provider failed.
    #[error("answering failed: {0}")]
    Provider(#[from] TaskError),
    /// The provider is not configured.
    #[error("{0}")]
    NoProvider(String),
}

struct SearchTool<'a> {
    services: &'a Services,
    document_id: String,
    use_vectors: bool,
}

#[async_trait]
impl ToolBox for SearchTool<'_> {
    fn specs(&self) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "search_document".into(),
            description:
                "Search the student's document; returns the most relevant passages with chunk ids and pages."
                    .into(),
            parameters: json!({
                "type": "object", "additionalProperties": false, "required": ["query"],
                "properties": { "query": { "type": "string", "description": "What to look for" } }
            }),
        }]
    }

    async fn call(&self, name: &str, arguments: &Value) -> Result<Value, String> {
        if name != "search_document" {
            return Err(format!("unknown tool '{name}'"));
        }
        let query = arguments
            .get("query")
            .and_then(Value::as_str)
            .filter(|q| !q.trim().is_empty())
            .ok_or("search_document needs a non-empty 'query'")?;
        let passages = retrieve(self.services, &self.document_id, query, self.use_vectors)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Value::Array(
            passages
                .iter()
                .map(|p| json!({ "chunk": p.chunk.id, "page": p.chunk.page, "text": p.chunk.text }))
                .collect(),
        ))
    }
}

/// The top passages for a query (vectors when the document was embedded with the
/// current embedder, full text always).
pub async fn retrieve(
    s: &Services,
    document_id: &str,
    query: &str,
    use_vectors: bool,
) -> Result<Vec<Passage>, AskError> {
    let vector = if use_vectors {
        let v = s
            .embedder
            .embed(&[query.to_string()])
            .await
            .map_err(|e| AskError::Embed(e.to_string()))?;
        v.into_iter().next()
    } else {
        None
    };
    Ok(s.library
        .search(document_id, query, vector.as_deref(), TOP_K)
        .await?)
}

/// Answers a question in a thread.
pub async fn ask(
    s: &Services,
    provider: Arc<dyn ChatProvider>,
    req: &AskRequest,
) -> Result<AskAnswer, AskError> {
    let question = req.question.trim();
    if question.is_empty() {
        return Err(AskError::BadQuestion("the question is empty".into()));
    }
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(AskError::BadQuestion(format!(
            "the question is longer than {MAX_QUESTION_CHARS} characters"
        )));
    }
    let doc = s
        .library
        .document(&req.user_id, &req.document_id)
        .await?
        .ok_or_else(|| AskError::NotFound(req.document_id.clone()))?;
    if doc.status != DocumentStatus::Ready {
        return Err(AskError::NotReady {
            id: doc.id,
            status: doc.status.as_str().into(),
        });
    }
    let use_vectors = doc.embed_model.as_deref() == Some(s.embedder.model_id());
    if !use_vectors {
        tracing::warn!(
            document = %doc.id,
            "the document was embedded with {:?} but the embedder is now {}; searching by text only",
            doc.embed_model,
            s.embedder.model_id()
        );
    }
    let history: Vec<Turn> = s
        .library
        .turns(&req.user_id, &doc.id, &req.thread_id)
        .await?
        .into_iter()
        .map(|t| Turn {
            question: t.question,
            answer: t.answer,
        })
        .collect();
    // A follow-up ("and its causes?") is searched together with the previous question.
    let query = match history.last() {
        Some(prev) => format!("{question} {}", prev.question),
        None => question.to_string(),
    };
    let passages = retrieve(s, &doc.id, &query, use_vectors).await?;
    let (_, chunks) = s
        .library
        .text(&doc.id)
        .await?
        .ok_or_else(|| AskError::NotFound(doc.id.clone()))?;
    let chunk_pages: HashMap<String, u32> = chunks.iter().map(|c| (c.id.clone(), c.page)).collect();
    let tool = SearchTool {
        services: s,
        document_id: doc.id.clone(),
        use_vectors,
    };
    let found: Vec<_> = passages.iter().map(|p| p.chunk.clone()).collect();
    let (answer, calls) = studio::answer(
        provider.as_ref(),
        question,
        &found,
        &history,
        chunk_pages,
        Some(&tool),
    )
    .await?;
    s.usage.add(&calls);
    let turn = TurnRecord {
        question: question.to_string(),
        answer: answer.answer.clone(),
        detail: json!({
            "citations": answer.citations,
            "passages": found.iter().map(|c| &c.id).collect::<Vec<_>>(),
            "calls": calls,
        }),
        at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    };
    s.library
        .add_turn(&req.user_id, &doc.id, &req.thread_id, &turn)
        .await?;
    Ok(AskAnswer {
        answer: answer.answer,
        citations: answer.citations,
        passages,
        thread_id: req.thread_id.clone(),
        calls,
    })
}
