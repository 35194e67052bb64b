//! A client for OpenAI-compatible `POST {base_url}/embeddings` endpoints.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::error::error_chain;
use super::{check_non_empty, l2_normalize, EmbedError, Embedder};

/// The largest number of inputs sent in one request.
pub const OPENAI_MAX_BATCH: usize = 96;

/// Settings for [`OpenAiEmbedder`].
#[derive(Clone)]
pub struct OpenAiConfig {
    /// Base URL up to and excluding `/embeddings`, e.g. "https://api.openai.com/v1".
    pub base_url: String,
    /// Bearer token; when empty no `Authorization` header is sent (local servers).
    pub api_key: String,
    /// Model name sent as `model`, e.g. "text-embedding-3-small".
    pub model: String,
    /// Whole-request timeout (default 60 s).
    pub timeout: Duration,
    /// Inputs per request, 1..=[`OPENAI_MAX_BATCH`] (default 96; larger values are capped).
    pub batch_size: usize,
    /// The vector length if known in advance; otherwise it is learned from the first
    /// response. Responses of another length are rejected either way.
    pub dimensions: Option<usize>,
}

impl OpenAiConfig {
    /// Settings with the default timeout (60 s) and batch size (96).
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            api_key: api_key.into(),
            model: model.into(),
            timeout: Duration::from_secs(60),
            batch_size: OPENAI_MAX_BATCH,
            dimensions: None,
        }
    }
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field(
                "api_key",
                &if self.api_key.is_empty() { "" } else { "<redacted>" },
            )
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("batch_size", &self.batch_size)
            .field("dimensions", &self.dimensions)
            .finish()
    }
}

/// Embeddings from any OpenAI-compatible service (OpenAI, Azure-style proxies, Ollama,
/// llama.cpp server, vLLM, …).
///
/// Sends `{"model", "input": [..]}` in batches of up to 96 texts and reads
/// `{"data": [{"embedding": [..], "index": i}]}`, ordering by `index` and re-normalising
/// every vector. Its model id is `"openai:<model>"`. It does not retry by itself: callers
/// look at [`EmbedError::is_transient`] and [`EmbedError::retry_after`].
#[derive(Debug)]
pub struct OpenAiEmbedder {
    config: OpenAiConfig,
    endpoint: String,
    model_id: String,
    client: reqwest::Client,
    dimensions: AtomicUsize,
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    index: usize,
}

impl OpenAiEmbedder {
    /// Creates the client. Fails only if the HTTP client cannot be built (TLS setup).
    pub fn new(config: OpenAiConfig) -> Result<Self, EmbedError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("learnflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EmbedError::Network(error_chain(&e)))?;
        let endpoint = format!("{}/embeddings", config.base_url.trim_end_matches('/'));
        let model_id = format!("openai:{}", config.model);
        let dimensions = AtomicUsize::new(config.dimensions.unwrap_or(0));
        Ok(OpenAiEmbedder {
            config,
            endpoint,
            model_id,
            client,
            dimensions,
        })
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn transport_error(&self, e: reqwest::Error) -> EmbedError {
        if e.is_timeout() {
            EmbedError::Timeout(self.config.timeout)
        } else {
            EmbedError::Network(error_chain(&e))
        }
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = serde_json::json!({ "model": self.config.model, "input": texts });
        let mut request = self.client.post(&self.endpoint).json(&body);
        if !self.config.api_key.is_empty() {
            request = request.bearer_auth(&self.config.api_key);
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let bytes = response.bytes().await.map_err(|e| self.transport_error(e))?;

        if !status.is_success() {
            let message = server_message(&bytes);
            let code = status.as_u16();
            return Err(match code {
                429 => EmbedError::RateLimited { retry_after, message },
                400..=499 => EmbedError::Rejected {
                    status: code,
                    message,
                },
                _ if status.is_server_error() => EmbedError::ServerError {
                    status: code,
                    message,
                },
                _ => EmbedError::BadResponse(format!("unexpected HTTP {code}: {message}")),
            });
        }

        let parsed: EmbeddingResponse = serde_json::from_slice(&bytes).map_err(|e| {
            EmbedError::BadResponse(format!(
                "the body is not an embeddings response ({e}): {}",
                snippet(&bytes)
            ))
        })?;
        self.check_and_order(parsed, texts.len())
    }

    fn check_and_order(
        &self,
        parsed: EmbeddingResponse,
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if parsed.data.len() != expected {
            return Err(EmbedError::BadResponse(format!(
                "sent {expected} inputs but got {} embeddings",
                parsed.data.len()
            )));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for item in parsed.data {
            let Some(slot) = slots.get_mut(item.index) else {
                return Err(EmbedError::BadResponse(format!(
                    "embedding index {} is out of range for {expected} inputs",
                    item.index
                )));
            };
            if slot.is_some() {
                return Err(EmbedError::BadResponse(format!(
                    "embedding index {} appears twice",
                    item.index
                )));
            }
            let mut v = item.embedding;
            if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
                return Err(EmbedError::BadResponse(format!(
                    "embedding {} is empty or has non-finite values",
                    item.index
                )));
            }
            self.check_dimensions(v.len())?;
            l2_normalize(&mut v);
            *slot = Some(v);
        }
        // Every slot is filled: there are `expected` items, all distinct and in range.
        Ok(slots.into_iter().flatten().collect())
    }

    fn check_dimensions(&self, len: usize) -> Result<(), EmbedError> {
        match self
            .dimensions
            .compare_exchange(0, len, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => Ok(()),
            Err(known) if known == len => Ok(()),
            Err(known) => Err(EmbedError::BadResponse(format!(
                "embedding has {len} dimensions, expected {known} for model {}",
                self.config.model
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions.load(Ordering::SeqCst)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        check_non_empty(texts)?;
        let batch = self.config.batch_size.clamp(1, OPENAI_MAX_BATCH);
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch) {
            out.extend(self.embed_batch(chunk).await?);
        }
        Ok(out)
    }
}

/// The server's error message: `error.message`, `error` or `message` from a JSON body,
/// else the start of the body text.
fn server_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let candidates = [
            json.pointer("/error/message"),
            json.get("error"),
            json.get("message"),
            json.get("detail"),
        ];
        for value in candidates.into_iter().flatten() {
            if let Some(s) = value.as_str() {
                return s.to_string();
            }
        }
    }
    let text = snippet(body);
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text
    }
}

/// The body as text, cut to 300 characters.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Parses `Retry-After`: delay seconds or an IMF-fixdate HTTP date
/// ("Sun, 06 Nov 1994 08:49:37 GMT"). A date in the past gives zero.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the Unix epoch for an IMF-fixdate, the only date format HTTP/1.1 senders use.
fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || !(0..24).contains(h) || !(0..60).contains(m) || !(0..=60).contains(sec) {
        return None;
    }
    // Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's method).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn http_dates_match_known_timestamps() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn server_messages_prefer_the_json_error_text() {
        assert_eq!(
            server_message(br#"{"error":{"message":"bad model","type":"x"}}"#),
            "bad model"
        );
        assert_eq!(server_message(br#"{"error":"nope"}"#), "nope");
        assert_eq!(server_message(b"plain failure"), "plain failure");
        assert_eq!(server_message(b""), "(empty body)");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let cfg = OpenAiConfig::new("http://x", "sk-secret", "m");
        assert!(!format!("{cfg:?}").contains("sk-secret"));
    }
}
