//! [`Failure`]: how a step or a function says it went wrong, and what to do next.
//!
//! A failure is retriable by default. [`Failure::non_retriable`] fails the run at once;
//! [`Failure::retry_after`] / [`Failure::retry_at`] retry no earlier than a given time
//! (for example a provider's `Retry-After`). Any `std::error::Error` converts into a
//! retriable failure with `?`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// What the engine should do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDirective {
    /// Retry with the function's backoff schedule (while retries remain).
    Retry,
    /// Do not retry: fail the step (and, unless the code catches it, the run) now.
    Never,
    /// Retry no earlier than this delay after the attempt ended.
    After(Duration),
    /// Retry no earlier than this time.
    At(Timestamp),
}

/// An error returned by a step or a function body.
///
/// Deliberately not a `std::error::Error` itself, so that every such error converts
/// into it with `?`.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// A short class name (`Error`, `StepFailed`, `Timeout`, the Rust error type…).
    pub name: String,
    /// The human-readable message.
    pub message: String,
    /// What to do next.
    pub retry: RetryDirective,
    /// The step this failure comes from when it is a step's final failure.
    pub step: Option<String>,
    /// For a step's final failure, the step's own last error (its class name and
    /// message as the step reported them).
    pub cause: Option<Box<ErrorInfo>>,
}

impl Failure {
    /// A retriable failure.
    pub fn retriable(message: impl Into<String>) -> Self {
        Failure {
            name: "Error".into(),
            message: message.into(),
            retry: RetryDirective::Retry,
            step: None,
            cause: None,
        }
    }

    /// A failure that must not be retried.
    pub fn non_retriable(message: impl Into<String>) -> Self {
        Failure {
            retry: RetryDirective::Never,
            name: "NonRetriableError".into(),
            ..Failure::retriable(message)
        }
    }

    /// A retriable failure that must wait at least `delay` before the next attempt.
    pub fn retry_after(message: impl Into<String>, delay: Duration) -> Self {
        Failure {
            retry: RetryDirective::After(delay),
            name: "RetryAfterError".into(),
            ..Failure::retriable(message)
        }
    }

    /// A retriable failure whose next attempt must not start before `at`.
    pub fn retry_at(message: impl Into<String>, at: Timestamp) -> Self {
        Failure {
            retry: RetryDirective::At(at),
            name: "RetryAfterError".into(),
            ..Failure::retriable(message)
        }
    }

    /// Sets the class name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether the engine may retry after this failure.
    pub fn is_retriable(&self) -> bool {
        self.retry != RetryDirective::Never
    }

    /// The failure a caller sees when step `step_id` failed for good with `error`.
    /// It is non-retriable: propagating it with `?` fails the run with this error.
    pub fn step_failed(step_id: &str, error: &ErrorInfo) -> Self {
        Failure {
            name: "StepFailed".into(),
            message: format!("step '{step_id}' failed: {}", error.message),
            retry: RetryDirective::Never,
            step: Some(step_id.to_string()),
            cause: Some(Box::new(error.clone())),
        }
    }

    /// The stored form of this failure.
    pub fn to_info(&self) -> ErrorInfo {
        ErrorInfo {
            name: self.name.clone(),
            message: self.message.clone(),
            step: self.step.clone(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        let full = std::any::type_name::<E>();
        let short = full.rsplit("::").next().unwrap_or(full);
        Failure::retriable(message).named(short)
    }
}

/// An error as stored in the journal and on runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Class name.
    pub name: String,
    /// Message.
    pub message: String,
    /// The step it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl ErrorInfo {
    /// An error with a name and message.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorInfo {
            name: name.into(),
            message: message.into(),
            step: None,
        }
    }
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_convert_with_their_chain() {
        fn open() -> Result<(), Failure> {
            std::fs::read("/definitely/not/here")?;
            Ok(())
        }
        let f = open().unwrap_err();
        assert!(f.is_retriable());
        assert_eq!(f.name, "Error");
        assert!(f.message.contains("No such file"), "{}", f.message);
    }

    #[test]
    fn directives() {
        assert!(!Failure::non_retriable("x").is_retriable());
        assert_eq!(
            Failure::retry_after("slow down", Duration::from_secs(5)).retry,
            RetryDirective::After(Duration::from_secs(5))
        );
        let f = Failure::step_failed("fetch", &ErrorInfo::new("Error", "boom"));
        assert_eq!(f.message, "step 'fetch' failed: boom");
        assert!(!f.is_retriable());
    }
}
