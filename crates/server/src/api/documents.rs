//! Documents: upload (202 at once), list, read with materials, the study pack files,
//! delete, live progress over SSE, review approval and questions.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use learnflow_ai::agents::AgentName;
use learnflow_engine::{EventInput, RunFilter};
use learnflow_ingest::IngestError;
use learnflow_pipeline::ask::{AskError, AskRequest};
use learnflow_pipeline::library::{DocumentRecord, DocumentStatus};
use learnflow_pipeline::pack::{anki_tsv, pack_json, render_markdown};
use learnflow_pipeline::steps::APPROVED_EVENT;
use learnflow_pipeline::upload::{store_streamed_upload, temp_key, uploaded_event};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::{json_body, AnyJson, ErrorBody};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// How many bytes of an upload are looked at to decide its type.
const SNIFF_BYTES: usize = 64 * 1024;
/// Longest purpose text.
const MAX_PURPOSE_CHARS: usize = 500;

/// The multipart form of an upload.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The document (PDF, DOCX, HTML, Markdown, text, PNG, JPEG, TIFF, WebP).
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// `exam-prep` (default), `quick-review`, `deep-understanding`, `lecture-notes` or
    /// free text.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    purpose: Option<String>,
    /// `true` to wait for `POST /api/documents/{id}/approve` after the plan.
    review: Option<bool>,
    /// The provider (default: the server's); `openai` only when configured.
    provider: Option<ProviderName>,
}

/// A language-model provider.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    /// Offline, deterministic.
    Local,
    /// The configured OpenAI-compatible server.
    Openai,
}

/// An agent name, as a schema: the values come from [`AgentName::ALL`], so the API
/// document lists exactly the agents the pipeline has.
pub struct AgentChoice;

impl utoipa::PartialSchema for AgentChoice {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(AgentName::ALL.iter().map(|a| a.as_str())))
            .description(Some("An agent name."))
            .into()
    }
}

impl ToSchema for AgentChoice {}

/// The answer to an upload.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadAccepted {
    /// The document.
    pub document_id: String,
    /// The run processing it.
    pub run_id: Option<String>,
    /// The document's status.
    pub status: String,
    /// True when the same bytes were uploaded before (nothing new started).
    pub duplicate: bool,
}

fn document_json(d: &DocumentRecord) -> Value {
    json!({
        "id": d.id,
        "fileName": d.file_name,
        "title": d.title,
        "kind": d.kind,
        "pages": d.pages,
        "size": d.size,
        "purpose": d.purpose,
        "status": d.status.as_str(),
        "error": d.error,
        "runId": d.run_id,
        "contentHash": d.content_hash,
        "createdAt": d.created_at,
        "updatedAt": d.updated_at,
    })
}

pub(crate) async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<DocumentRecord, ApiError> {
    state
        .services
        .library
        .document(caller.id(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("document '{id}' not found")))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(format!("the upload is larger than the limit: {}", e.body_text()))
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::TooLarge(format!(
        "the file is larger than the upload limit of {} MB",
        limit / (1024 * 1024)
    ))
}

/// Decides the type from the first bytes; zip containers need the whole file.
enum Sniff {
    Ok,
    NeedsWholeFile,
}

fn sniff(head: &[u8], complete: bool) -> Result<Sniff, ApiError> {
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Sniff::NeedsWholeFile);
    }
    // A partial head may end inside a multi-byte character: try a little shorter.
    let tries = if complete { 1 } else { 4 };
    let mut last = None;
    for cut in 0..tries {
        let Some(slice) = head.get(..head.len().saturating_sub(cut)) else {
            break;
        };
        match learnflow_ingest::detect(slice) {
            Ok(_) => return Ok(Sniff::Ok),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(IngestError::Empty) => ApiError::BadRequest("the file is empty".into()),
        Some(e) => ApiError::UnsupportedType(format!("unsupported file: {e}")),
        None => ApiError::BadRequest("the file is empty".into()),
    })
}

fn check_whole(bytes: &[u8]) -> Result<(), ApiError> {
    learnflow_ingest::detect(bytes)
        .map(|_| ())
        .map_err(|e| ApiError::UnsupportedType(format!("unsupported file: {e}")))
}

struct Incoming {
    file_name: String,
    temp: String,
    hash: String,
    size: u64,
}

/// Upload a document: stored, `document.uploaded` sent, answered before any extraction.
#[utoipa::path(
    post, path = "/api/documents", tag = "documents",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Stored; processing has started", body = UploadAccepted),
        (status = 200, description = "The same bytes were uploaded before: that document", body = UploadAccepted),
        (status = 400, description = "Malformed form, missing or empty file, bad field", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 413, description = "Larger than the upload limit", body = ErrorBody),
        (status = 415, description = "Unsupported file type", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let limit = state.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit + 1024 * 1024) {
        return Err(too_large(limit));
    }
    let mut form = form.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected a multipart/form-data body with a 'file' field ({})",
            e.body_text()
        ))
    })?;
    let mut purpose: Option<String> = None;
    let mut review = false;
    let mut provider: Option<String> = None;
    let mut incoming: Option<Incoming> = None;
    let mut seen = std::collections::HashSet::new();
    let result = async {
        while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_string();
            if name != "file" {
                if !["purpose", "review", "provider"].contains(&name.as_str()) {
                    return Err(ApiError::BadRequest(format!(
                        "unknown form field '{name}' (expected file, purpose, review, provider)"
                    )));
                }
                // Optional text fields: `null` (what some form encoders send for a
                // missing value) means absent; a blank value is an error.
                if !seen.insert(name.clone()) {
                    return Err(ApiError::BadRequest(format!(
                        "form field '{name}' is given twice"
                    )));
                }
                let text = field.text().await.map_err(multipart_error)?;
                if text == "null" {
                    continue;
                }
                let text = text.trim().to_string();
                if text.is_empty() {
                    return Err(ApiError::BadRequest(format!("form field '{name}' is blank")));
                }
                match name.as_str() {
                    "purpose" => {
                        if text.chars().count() > MAX_PURPOSE_CHARS {
                            return Err(ApiError::BadRequest(format!(
                                "field 'purpose' must be 1 to {MAX_PURPOSE_CHARS} characters"
                            )));
                        }
                        purpose = Some(text);
                    }
                    "review" => {
                        review = match text.to_ascii_lowercase().as_str() {
                            "true" => true,
                            "false" => false,
                            other => {
                                return Err(ApiError::BadRequest(format!(
                                    "field 'review' must be true or false, not '{other}'"
                                )))
                            }
                        };
                    }
                    _ => {
                        state
                            .services
                            .provider(Some(&text))
                            .map_err(|e| ApiError::BadRequest(format!("field 'provider': {e}")))?;
                        provider = Some(text);
                    }
                }
                continue;
            }
            if incoming.is_some() {
                return Err(ApiError::BadRequest("only one 'file' field is allowed".into()));
            }
            let file_name = field
                .file_name()
                .map(str::to_string)
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| "upload".into());
            let mut head = Vec::new();
            let mut done = false;
            while head.len() < SNIFF_BYTES {
                match field.chunk().await.map_err(multipart_error)? {
                    Some(c) => head.extend_from_slice(&c),
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            if head.len() as u64 > limit {
                return Err(too_large(limit));
            }
            let whole = matches!(sniff(&head, done)?, Sniff::NeedsWholeFile);
            let temp = temp_key(caller.id());
            let mut w = state
                .services
                .blobs
                .writer(&temp)
                .await
                .map_err(ApiError::internal)?;
            let copied = async {
                w.write(&head).await.map_err(ApiError::internal)?;
                if !done {
                    while let Some(c) = field.chunk().await.map_err(multipart_error)? {
                        if w.size() + c.len() as u64 > limit {
                            return Err(too_large(limit));
                        }
                        w.write(&c).await.map_err(ApiError::internal)?;
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = copied {
                w.abort().await;
                return Err(e);
            }
            let (hash, size) = w.finish().await.map_err(ApiError::internal)?;
            incoming = Some(Incoming {
                file_name,
                temp: temp.clone(),
                hash,
                size,
            });
            if whole {
                let bytes = state
                    .services
                    .blobs
                    .get(&temp)
                    .await
                    .map_err(ApiError::internal)?;
                check_whole(&bytes)?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(i) = &incoming {
            let _ = state.services.blobs.delete(&i.temp).await;
        }
        return Err(e);
    }
    let incoming = incoming.ok_or_else(|| ApiError::BadRequest("the form has no 'file' field".into()))?;
    let purpose = purpose.unwrap_or_else(|| "exam-prep".into());
    let stored = store_streamed_upload(
        &state.services,
        caller.id(),
        &incoming.file_name,
        &purpose,
        &incoming.temp,
        incoming.hash,
        incoming.size,
    )
    .await
    .map_err(ApiError::internal)?;
    let doc = stored.document;
    if !stored.new {
        let run_id = match doc.run_id.clone() {
            Some(r) => Some(r),
            None => first_run(&state, &doc.id).await?,
        };
        let body = UploadAccepted {
            document_id: doc.id.clone(),
            run_id,
            status: doc.status.as_str().into(),
            duplicate: true,
        };
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    let receipt = state
        .engine
        .send(uploaded_event(&doc, review, provider.as_deref()))
        .await?;
    state.metrics.upload();
    let body = UploadAccepted {
        document_id: doc.id.clone(),
        run_id: receipt.runs.first().map(|r| r.as_str().to_string()),
        status: DocumentStatus::Queued.as_str().into(),
        duplicate: false,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn first_run(state: &AppState, document_id: &str) -> Result<Option<String>, ApiError> {
    let page = state
        .engine
        .list_runs(&RunFilter {
            event_id: Some(format!("upload-{document_id}")),
            limit: Some(1),
            ..Default::default()
        })
        .await?;
    Ok(page.runs.first().map(|r| r.id.as_str().to_string()))
}

/// The caller's documents, newest first.
#[utoipa::path(
    get, path = "/api/documents", tag = "documents",
    responses((status = 200, description = "`{documents: [...]}`", body = AnyJson), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let docs = state.services.library.documents(caller.id()).await?;
    Ok(Json(
        json!({ "documents": docs.iter().map(document_json).collect::<Vec<_>>() }),
    ))
}

/// A document with its status and the materials ready so far.
#[utoipa::path(
    get, path = "/api/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "Document id")),
    responses((status = 200, description = "The document and its materials", body = AnyJson), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let doc = owned(&state, &caller, &id).await?;
    let materials = state.services.library.materials(&id).await?;
    let mut body = document_json(&doc);
    body["materials"] = serde_json::to_value(&materials).map_err(ApiError::internal)?;
    Ok(Json(body))
}

/// Deletes a document: its file, text, chunks, embeddings, materials and threads (a
/// run still going is cancelled).
#[utoipa::path(
    delete, path = "/api/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "Document id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let doc = owned(&state, &caller, &id).await?;
    let runs = state
        .engine
        .list_runs(&RunFilter {
            event_id: Some(format!("upload-{id}")),
            ..Default::default()
        })
        .await?;
    let mut ids: Vec<_> = runs
        .runs
        .into_iter()
        .filter(|r| !r.status.is_terminal())
        .map(|r| r.id)
        .collect();
    if let Some(r) = &doc.run_id {
        ids.push(learnflow_engine::RunId(r.clone()));
    }
    for r in ids {
        match state.engine.cancel(&r).await {
            Ok(()) | Err(learnflow_engine::EngineError::InvalidRunState { .. }) => {}
            Err(learnflow_engine::EngineError::RunNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    state.services.library.delete_document(caller.id(), &id).await?;
    state.services.forget(&id);
    state
        .services
        .blobs
        .delete(&doc.blob_key)
        .await
        .map_err(ApiError::internal)?;
    state.db.delete_progress(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ready_materials(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(DocumentRecord, Vec<learnflow_pipeline::library::MaterialRecord>), ApiError> {
    let doc = owned(state, caller, id).await?;
    if doc.status != DocumentStatus::Ready {
        return Err(ApiError::Conflict(format!(
            "document '{id}' is {}, not ready yet",
            doc.status.as_str()
        )));
    }
    let materials = state.services.library.materials(id).await?;
    Ok((doc, materials))
}

fn file_response(content_type: &'static str, name: String, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{}\"", name.replace('"', ""));
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from(body),
    )
        .into_response()
}

fn stem(doc: &DocumentRecord) -> String {
    let base = doc
        .file_name
        .rsplit_once('.')
        .map(|(a, _)| a)
        .unwrap_or(&doc.file_name);
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() {
        "study-pack".into()
    } else {
        clean
    }
}

/// The study pack as one Markdown file.
#[utoipa::path(
    get, path = "/api/documents/{id}/pack.md", tag = "documents",
    params(("id" = String, Path, description = "Document id")),
    responses((status = 200, description = "Markdown", content_type = "text/markdown", body = String),
              (status = 404, body = ErrorBody), (status = 409, description = "Not ready yet", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn pack_md(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (doc, materials) = ready_materials(&state, &caller, &id).await?;
    Ok(file_response(
        "text/markdown; charset=utf-8",
        format!("{}.md", stem(&doc)),
        render_markdown(&doc, &materials),
    ))
}

/// The study pack as structured JSON.
#[utoipa::path(
    get, path = "/api/documents/{id}/pack.json", tag = "documents",
    params(("id" = String, Path, description = "Document id")),
    responses((status = 200, description = "Every material", body = AnyJson),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn pack_json_route(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (doc, materials) = ready_materials(&state, &caller, &id).await?;
    Ok(Json(pack_json(&doc, &materials)))
}

/// Flashcards, quiz and cloze cards in Anki's TSV import format.
#[utoipa::path(
    get, path = "/api/documents/{id}/flashcards.tsv", tag = "documents",
    params(("id" = String, Path, description = "Document id")),
    responses((status = 200, description = "Anki TSV", content_type = "text/tab-separated-values", body = String),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn flashcards_tsv(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (doc, materials) = ready_materials(&state, &caller, &id).await?;
    Ok(file_response(
        "text/tab-separated-values; charset=utf-8",
        format!("{}-anki.txt", stem(&doc)),
        anki_tsv(&doc, &materials),
    ))
}

/// Where an SSE stream starts.
#[derive(Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Start after this event id (like the `Last-Event-ID` header).
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// Live progress: each step's start, completion, failure and retry, then `completed`
/// or `failed`. Reconnect with `Last-Event-ID` to get what was missed.
#[utoipa::path(
    get, path = "/api/documents/{id}/events", tag = "documents",
    params(("id" = String, Path, description = "Document id"), EventsQuery,
           ("Last-Event-ID" = Option<String>, Header, description = "The last event id received (a number)")),
    responses((status = 200, description = "Server-Sent Events", content_type = "text/event-stream", body = super::SseFrame),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    owned(&state, &caller, &id).await?;
    let after = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                ApiError::BadRequest("header 'Last-Event-ID' must be an event id number".into())
            })?,
        None => q.after.unwrap_or(0),
    };
    Ok(Sse::new(crate::progress::stream(state, id, after)).keep_alive(KeepAlive::default()))
}

/// An approval of a plan under review.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The agents to run instead of the planned ones.
    #[schema(min_items = 1, value_type = Option<Vec<AgentChoice>>)]
    pub agents: Option<Vec<String>>,
}

/// Approves the architect's plan of a document waiting for review, optionally with an
/// edited list of agents.
#[utoipa::path(
    post, path = "/api/documents/{id}/approve", tag = "documents",
    params(("id" = String, Path, description = "Document id")),
    request_body(content = ApproveBody, description = "Optional"),
    responses((status = 202, description = "Sent `plan.approved`", body = AnyJson),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Not waiting for review", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: ApproveBody = if body.iter().all(u8::is_ascii_whitespace) {
        ApproveBody::default()
    } else {
        json_body(&body)?
    };
    let doc = owned(&state, &caller, &id).await?;
    if let Some(list) = &body.agents {
        if list.is_empty() {
            return Err(ApiError::BadRequest(
                "field 'agents' must name at least one agent".into(),
            ));
        }
        for (i, a) in list.iter().enumerate() {
            if AgentName::parse(a).is_none() {
                let all: Vec<&str> = AgentName::ALL.iter().map(|a| a.as_str()).collect();
                return Err(ApiError::BadRequest(format!(
                    "field 'agents[{i}]': unknown agent '{a}' (known: {})",
                    all.join(", ")
                )));
            }
        }
    }
    if doc.status != DocumentStatus::Review {
        return Err(ApiError::Conflict(format!(
            "document '{id}' is not waiting for review (it is {})",
            doc.status.as_str()
        )));
    }
    let mut data = json!({ "documentId": id, "userId": caller.id() });
    if let Some(list) = body.agents {
        data["agents"] = json!(list);
    }
    let mut event = EventInput::new(APPROVED_EVENT, data);
    event.user = Some(json!({ "id": caller.id() }));
    let receipt = state.engine.send(event).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "documentId": id, "eventId": receipt.event_id })),
    ))
}

/// A question about a document.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AskBody {
    /// The question.
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub question: String,
    /// A conversation to continue (earlier turns are seen); a new one when absent.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub thread_id: Option<String>,
    /// The provider (default: the server's); `openai` only when configured.
    #[schema(value_type = Option<ProviderName>)]
    pub provider: Option<String>,
}

/// Answers a question from the document with `[p. N]` citations. With
/// `Accept: text/event-stream` the answer streams as `token` events, then `done`.
#[utoipa::path(
    post, path = "/api/documents/{id}/ask", tag = "documents",
    params(("id" = String, Path, description = "Document id")),
    request_body = AskBody,
    responses((status = 200, description = "The cited answer (JSON or SSE)", body = AnyJson),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "The document is not ready", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn ask(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: AskBody = json_body(&body)?;
    if body.question.trim().is_empty() {
        return Err(ApiError::BadRequest("field 'question' must not be empty".into()));
    }
    let thread_id = match body.thread_id {
        Some(t) if t.trim().is_empty() || t.len() > 100 => {
            return Err(ApiError::BadRequest(
                "field 'threadId' must be 1 to 100 characters".into(),
            ))
        }
        Some(t) => t,
        None => format!("thr_{}", ulid::Ulid::new().to_string().to_lowercase()),
    };
    owned(&state, &caller, &id).await?;
    let provider = state
        .services
        .provider(body.provider.as_deref())
        .map_err(|e| ApiError::BadRequest(format!("field 'provider': {e}")))?;
    let req = AskRequest {
        user_id: caller.id().to_string(),
        document_id: id.clone(),
        question: body.question,
        thread_id,
    };
    let answer = learnflow_pipeline::ask::ask(&state.services, provider, &req)
        .await
        .map_err(|e| match e {
            AskError::BadQuestion(m) => ApiError::BadRequest(format!("field 'question': {m}")),
            AskError::NotFound(d) => ApiError::NotFound(format!("document '{d}' not found")),
            e @ AskError::NotReady { .. } => ApiError::Conflict(e.to_string()),
            e => ApiError::internal(e),
        })?;
    let full = serde_json::to_value(&answer).map_err(ApiError::internal)?;
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_stream {
        return Ok(Json(full).into_response());
    }
    let tokens = split_tokens(&answer.answer);
    let stream = futures::stream::iter(
        tokens
            .into_iter()
            .map(|t| {
                SseEvent::default()
                    .event("token")
                    .data(json!({ "text": t }).to_string())
            })
            .chain(std::iter::once(
                SseEvent::default().event("done").data(full.to_string()),
            ))
            .map(Ok::<_, Infallible>),
    );
    Ok(Sse::new(stream).into_response())
}

/// The answer cut into tokens: each word with the whitespace after it, so joining the
/// tokens gives the answer back exactly.
pub fn split_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            out.push(std::mem::take(&mut cur));
            in_space = false;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_join_back_to_the_answer() {
        let a = "Photosynthesis  makes glucose [p. 2].\nIt needs light.";
        let t = split_tokens(a);
        assert_eq!(t.concat(), a);
        assert_eq!(t[0], "Photosynthesis  ");
        assert!(t.len() >= 6);
    }
}
