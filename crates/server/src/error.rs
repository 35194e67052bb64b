//! API errors: a status code and a JSON body `{"error": {"code", "message"}}` that
//! names the problem.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::DbError;

/// An error answered to an API caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed (admin-only endpoints).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing for this user (other users' things are "not found" too).
    #[error("{0}")]
    NotFound(String),
    /// 409: the thing is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// 422: well-formed, but what it names cannot be done (an app that does not sync).
    #[error("{0}")]
    Unprocessable(String),
    /// 413: the upload is too large.
    #[error("{0}")]
    TooLarge(String),
    /// 415: the file's type is not supported.
    #[error("{0}")]
    UnsupportedType(String),
    /// 429: too many requests; retry after this many seconds.
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    /// 503: shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// 500: our fault; logged.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedType(_) => "unsupported_type",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// 500 from anything displayable (logged with the details).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {e}");
        ApiError::Internal(format!("internal error: {e}"))
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => ApiError::Conflict(m),
            e => ApiError::internal(e),
        }
    }
}

impl From<learnflow_pipeline::library::LibraryError> for ApiError {
    fn from(e: learnflow_pipeline::library::LibraryError) -> Self {
        match e {
            learnflow_pipeline::library::LibraryError::NotFound(what) => {
                ApiError::NotFound(format!("document '{what}' not found"))
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<learnflow_engine::EngineError> for ApiError {
    fn from(e: learnflow_engine::EngineError) -> Self {
        use learnflow_engine::EngineError as E;
        match e {
            E::RunNotFound(id) => ApiError::NotFound(format!("run '{id}' not found")),
            E::InvalidRunState { .. } => ApiError::Conflict(e.to_string()),
            E::InvalidEvent(_) | E::EventTooLarge { .. } | E::InvalidExpression { .. } => {
                ApiError::BadRequest(e.to_string())
            }
            E::UnknownFunction(_) => ApiError::NotFound(e.to_string()),
            e => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut resp = (status, axum::Json(body)).into_response();
        match &self {
            ApiError::RateLimited(secs) => {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::Unauthorized(_) => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}
