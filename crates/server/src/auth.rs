//! Who is calling: every `/api` request carries `Authorization: Bearer <token>`; the
//! token's hash finds the user. Each user also gets a request budget (a GCRA rate
//! limit) so one client cannot starve the others.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use parking_lot::Mutex;

use crate::db::User;
use crate::error::ApiError;
use crate::AppState;

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller(pub User);

impl Caller {
    /// The user's id.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// Whether the user is an admin.
    pub fn is_admin(&self) -> bool {
        self.0.admin
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The web UI's session cookie (it holds the API token; HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "lf_session";

/// The header a cookie-authenticated request that changes something must carry (a
/// cross-site form cannot set it).
pub const CSRF_HEADER: &str = "x-learnflow-csrf";

/// The session token from the `Cookie` header, if any.
pub fn cookie_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = match bearer(parts) {
            Some(t) => t,
            None => {
                let t = cookie_token(parts).ok_or_else(|| {
                    ApiError::Unauthorized("missing 'Authorization: Bearer <token>' header".into())
                })?;
                let safe = matches!(parts.method.as_str(), "GET" | "HEAD" | "OPTIONS");
                if !safe && !parts.headers.contains_key(CSRF_HEADER) {
                    return Err(ApiError::Forbidden(format!(
                        "a request signed in by cookie must carry the {CSRF_HEADER} header"
                    )));
                }
                t
            }
        };
        let user = state
            .db
            .user_by_token(token)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the token is not valid".into()))?;
        state.limiter.check(&user.id)?;
        Ok(Caller(user))
    }
}

/// A per-user request rate limit (generic cell rate algorithm).
pub struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    tats: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// `per_second` requests a second on average, bursts of up to `burst`.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let interval = Duration::from_secs_f64(1.0 / per_second.max(0.001));
        RateLimiter {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `user`, or says how many seconds to wait.
    pub fn check(&self, user: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut tats = self.tats.lock();
        if tats.len() > 100_000 {
            tats.retain(|_, t| *t > now);
        }
        let tat = tats.get(user).copied().unwrap_or(now).max(now);
        let allowed_at = tat.checked_sub(self.tolerance).unwrap_or(now);
        if allowed_at > now {
            let wait = allowed_at - now;
            return Err(ApiError::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64));
        }
        tats.insert(user.to_string(), tat + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let l = RateLimiter::new(1.0, 3);
        for _ in 0..3 {
            l.check("a").unwrap();
        }
        match l.check("a") {
            Err(ApiError::RateLimited(s)) => assert!(s >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
        l.check("b").expect("users have separate budgets");
    }
}
