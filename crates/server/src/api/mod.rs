//! The routes. Everything under `/api` needs a bearer token; `/healthz` does not;
//! `/metrics` needs an admin's token. The OpenAPI document at `/api/openapi.json` is
//! generated from the same handler annotations the router is built from, so the two
//! cannot drift apart.

pub mod documents;
pub mod inngest;
pub mod runs;
pub mod webhooks;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics::StoreFigures;
use crate::AppState;

/// Any JSON value (the shapes are described in each operation's text).
#[derive(ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)]
pub struct AnyJson(Value);

/// An error: `{"error": {"code", "message"}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// `{code, message}`.
    #[schema(value_type = Object)]
    error: Value,
}

/// Parses a JSON body; a bad one is a 400 that names the field at fault.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "the request body is empty; expected JSON".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        if syntax || path.is_empty() || path == "." {
            ApiError::BadRequest(format!("malformed JSON body: {inner}"))
        } else {
            ApiError::BadRequest(format!("field '{path}': {inner}"))
        }
    })
}

/// One Server-Sent Event as a client parses it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SseFrame {
    /// The event id (resume with `Last-Event-ID`).
    id: Option<String>,
    /// The event name.
    event: Option<String>,
    /// The JSON payload, as text.
    data: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    components(schemas(ErrorBody)),
    info(
        title = "LearnFlow API",
        description = "Upload documents, watch their pipelines live, read study packs, ask cited questions, and manage runs."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "documents", description = "Uploads, study packs, progress, review and questions"),
        (name = "runs", description = "Events, runs and functions of the durable engine"),
        (name = "webhooks", description = "Signed notifications when a document is processed"),
        (name = "inngest", description = "Inngest SDK apps running on LearnFlow (admins)"),
        (name = "operations", description = "Health and the API description"),
    )
)]
struct ApiDoc;

/// Liveness: 200 while the server runs and its database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{status: ok}`", body = AnyJson), (status = 503, body = ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .db
        .user_count()
        .await
        .map_err(|e| ApiError::Unavailable(format!("database unavailable: {e}")))?;
    Ok(Json(
        json!({ "status": "ok", "activeRuns": state.engine.active_runs() }),
    ))
}

/// Who the caller is, and the server's upload limit.
#[utoipa::path(get, path = "/api/me", tag = "operations",
    responses((status = 200, description = "`{id, name, admin, maxUploadBytes}`", body = AnyJson)),
    security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    Json(json!({
        "id": caller.0.id, "name": caller.0.name, "admin": caller.0.admin,
        "maxUploadBytes": state.config.max_upload_bytes,
    }))
}

/// Prometheus metrics (an admin's bearer token).
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::Forbidden("metrics need an admin token".into()));
    }
    let mut runs = Vec::new();
    let mut queue_depth = 0;
    for f in state.engine.functions() {
        let filter = learnflow_engine::RunFilter {
            function_id: Some(f.config.id.clone()),
            ..Default::default()
        };
        for (status, n) in state.engine.count_runs(&filter).await? {
            if status == learnflow_engine::RunStatus::Queued {
                queue_depth += n;
            }
            runs.push((f.config.id.clone(), status.as_str().to_string(), n));
        }
    }
    let figures = StoreFigures {
        runs,
        queue_depth,
        active: state.engine.active_runs(),
    };
    let text = state.metrics.render(&figures, &state.services.usage.snapshot());
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Largest body of any request but an upload.
pub const MAX_JSON_BODY: usize = 2 * 1024 * 1024;

/// A declared body over [`MAX_JSON_BODY`] but at most this large is read and dropped
/// before the 413 goes out, so the client reliably gets the answer.
const LINGER_MAX_BODY: usize = 32 * 1024 * 1024;

/// Bodies other than uploads are cut off at [`MAX_JSON_BODY`] (413), so a large JSON
/// body is refused without being held in memory whole.
async fn limit_bodies(req: Request, next: Next) -> Response {
    let upload = req.method() == axum::http::Method::POST && req.uri().path() == "/api/documents";
    if upload {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > MAX_JSON_BODY) {
        if n <= LINGER_MAX_BODY {
            // Read (and drop) what the client is sending before answering: closing a
            // socket with unread bytes resets the connection, and the client would see
            // a broken connection instead of the 413.
            let drain = async {
                let mut body = req.into_body().into_data_stream();
                while let Some(Ok(_)) = futures::StreamExt::next(&mut body).await {}
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
        }
        return ApiError::TooLarge(format!(
            "the request body is larger than {} MB",
            MAX_JSON_BODY / (1024 * 1024)
        ))
        .into_response();
    }
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, MAX_JSON_BODY)));
    next.run(req).await
}

async fn count_status(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    state.metrics.http(resp.status().as_u16());
    resp
}

/// Every authenticated operation may also answer 401 (no or a bad token) and 429 (over
/// the request budget, with Retry-After).
fn add_common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, ResponseBuilder};
    for item in openapi.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if op.security.as_ref().is_none_or(|s| s.is_empty()) {
                continue;
            }
            for (code, text) in [
                ("401", "No valid bearer token"),
                ("429", "Too many requests; see Retry-After"),
            ] {
                op.responses.responses.entry(code.to_string()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(text)
                            .content(
                                "application/json",
                                utoipa::openapi::ContentBuilder::new()
                                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                                    .build(),
                            )
                            .build(),
                    )
                });
            }
        }
    }
}

/// The OpenAPI document and the router, built from the same annotations.
pub fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(documents::upload, documents::list))
        .routes(routes!(documents::get, documents::delete))
        .routes(routes!(documents::pack_md))
        .routes(routes!(documents::pack_json_route))
        .routes(routes!(documents::flashcards_tsv))
        .routes(routes!(documents::events))
        .routes(routes!(documents::approve))
        .routes(routes!(documents::ask))
        .routes(routes!(runs::send_events))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::cancel_run))
        .routes(routes!(runs::replay_run))
        .routes(routes!(runs::functions))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(inngest::sync, inngest::list))
        .routes(routes!(healthz))
        .routes(routes!(me))
        .split_for_parts();
    add_common_responses(&mut doc);
    (router, doc)
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let (api, mut doc) = parts();
    if state.services.openai.is_none() {
        // Only the providers this server has are valid values.
        if let Some(c) = doc.components.as_mut() {
            c.schemas.insert(
                "ProviderName".into(),
                utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::Type::String)
                        .enum_values(Some(["local"]))
                        .description(Some("The provider (this server has only `local`)."))
                        .build(),
                )),
            );
        }
    }
    let doc = std::sync::Arc::new(doc);
    let body_limit = usize::try_from(state.config.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1024 * 1024);
    let app = api
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route("/metrics", get(metrics))
        .route("/", get(crate::ui::index))
        .route("/assets/{*path}", get(crate::ui::asset))
        .route("/ui/login", axum::routing::post(crate::ui::login))
        .route("/ui/logout", axum::routing::post(crate::ui::logout))
        .fallback(no_route)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(limit_bodies))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_status))
        .with_state(state.clone());
    match &state.inngest {
        Some(gw) => learnflow_inngest::api::router(gw.clone()).merge(app),
        None => app,
    }
}

/// A status and JSON body, for tests and tools.
pub fn status_of(e: &ApiError) -> StatusCode {
    e.status()
}
