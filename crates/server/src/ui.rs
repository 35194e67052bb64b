//! The web UI at `/`: one page and a little JavaScript, embedded in the binary (no CDN,
//! no npm at build time). The vendored libraries (Mermaid, marked, DOMPurify) are
//! committed under `assets/vendor/` with their licences. Signing in stores the API
//! token in an HttpOnly, SameSite=Strict cookie; the page then calls the same JSON API
//! as any client, with the CSRF header on requests that change something.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::auth::SESSION_COOKIE;
use crate::error::ApiError;
use crate::AppState;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    immutable: bool,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/app.js"),
        immutable: false,
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/app.css"),
        immutable: false,
    },
    Asset {
        name: "vendor/mermaid-11.17.2.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/vendor/mermaid-11.17.2.min.js"),
        immutable: true,
    },
    Asset {
        name: "vendor/marked-18.2.1.umd.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/vendor/marked-18.2.1.umd.js"),
        immutable: true,
    },
    Asset {
        name: "vendor/purify-3.4.18.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/vendor/purify-3.4.18.min.js"),
        immutable: true,
    },
];

const INDEX: &str = include_str!("../assets/index.html");

/// Headers every UI response carries: a strict content security policy (scripts only
/// from this origin), no sniffing, no framing, no referrer.
fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// `GET /`: the single page.
pub async fn index() -> Response {
    secure(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            INDEX,
        )
            .into_response(),
    )
}

/// `GET /assets/{*path}`: an embedded file.
pub async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == path) {
        Some(a) => secure(
            (
                [
                    (header::CONTENT_TYPE, a.content_type),
                    (
                        header::CACHE_CONTROL,
                        if a.immutable {
                            "public, max-age=31536000, immutable"
                        } else {
                            "no-cache"
                        },
                    ),
                ],
                a.body,
            )
                .into_response(),
        ),
        None => ApiError::NotFound(format!("no asset '{path}'")).into_response(),
    }
}

/// A sign-in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    token: String,
}

/// Whether the browser reached us over plain HTTP on a loopback address (then the
/// cookie cannot be `Secure`; everywhere else it is).
fn plain_loopback(headers: &HeaderMap) -> bool {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    !https && matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

fn cookie(value: &str, max_age: i64, secure_flag: bool) -> HeaderValue {
    let secure = if secure_flag { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("lf_session=; Path=/; Max-Age=0"))
}

/// `POST /ui/login` `{token}`: checks the token and keeps it in the session cookie.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let result: Result<Response, ApiError> = async {
        let login: Login = crate::api::json_body(&body)?;
        let token = login.token.trim().to_string();
        let valid = token.starts_with("lf_") && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let user = if valid {
            state.db.user_by_token(&token).await?
        } else {
            None
        };
        let user = user.ok_or_else(|| ApiError::Unauthorized("that token is not valid".into()))?;
        let mut resp = Json(json!({ "id": user.id, "name": user.name, "admin": user.admin })).into_response();
        resp.headers_mut().insert(
            header::SET_COOKIE,
            cookie(&token, 30 * 24 * 3600, !plain_loopback(&headers)),
        );
        Ok(resp)
    }
    .await;
    secure(result.unwrap_or_else(IntoResponse::into_response))
}

/// `POST /ui/logout`: forgets the session cookie.
pub async fn logout(headers: HeaderMap) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, !plain_loopback(&headers)));
    secure(resp)
}
