//! Live updates: every state change of a run and its steps, as it happens, for
//! progress bars, SSE streams and tests. Updates are best-effort notifications (a slow
//! subscriber may miss some, see [`tokio::sync::broadcast`]); the store stays the
//! source of truth.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::failure::ErrorInfo;
use crate::ids::RunId;
use crate::time::Timestamp;

/// How many updates a subscriber may fall behind before it misses some.
pub const WATCH_CAPACITY: usize = 16_384;

/// One change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunUpdate {
    /// The run.
    pub run_id: RunId,
    /// Its function.
    pub function_id: String,
    /// When.
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: UpdateKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UpdateKind {
    /// Created and queued.
    Queued,
    /// A node started (or resumed) executing it.
    Started,
    /// A step attempt began.
    StepStarted {
        /// Step id.
        step_id: String,
        /// Attempt number (0-based).
        attempt: u32,
    },
    /// A step completed.
    StepCompleted {
        /// Step id.
        step_id: String,
    },
    /// A step attempt failed and will be retried.
    StepRetrying {
        /// Step id.
        step_id: String,
        /// The failed attempt.
        attempt: u32,
        /// Its error.
        error: ErrorInfo,
        /// When the next attempt is due.
        next_at: Timestamp,
    },
    /// A step failed for good.
    StepFailed {
        /// Step id.
        step_id: String,
        /// Its error.
        error: ErrorInfo,
    },
    /// Parked on a timer.
    Sleeping {
        /// When it is due again.
        until: Option<Timestamp>,
    },
    /// Parked on an event or an invoked run.
    Waiting {
        /// Deadline, if any.
        until: Option<Timestamp>,
    },
    /// Queued for another attempt of the whole function.
    Retrying {
        /// The error.
        error: ErrorInfo,
        /// When.
        next_at: Timestamp,
    },
    /// Completed.
    Completed {
        /// The output.
        output: Value,
    },
    /// Failed.
    Failed {
        /// The error.
        error: ErrorInfo,
    },
    /// Cancelled.
    Cancelled {
        /// Why.
        reason: ErrorInfo,
    },
}

impl UpdateKind {
    /// Whether the run ended with this update.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            UpdateKind::Completed { .. } | UpdateKind::Failed { .. } | UpdateKind::Cancelled { .. }
        )
    }
}
