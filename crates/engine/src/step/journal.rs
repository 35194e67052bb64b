//! The step journal: one record per step of a run, written before the code moves on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::failure::ErrorInfo;
use crate::time::Timestamp;

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// `step.run`: code with a result.
    Run,
    /// `step.sleep` / `step.sleep_until`.
    Sleep,
    /// `step.wait_for_event`.
    WaitForEvent,
    /// `step.invoke`.
    Invoke,
}

impl StepKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Run => "run",
            StepKind::Sleep => "sleep",
            StepKind::WaitForEvent => "wait_for_event",
            StepKind::Invoke => "invoke",
        }
    }

    /// Parses [`StepKind::as_str`] text.
    pub fn parse(s: &str) -> Option<Self> {
        [
            StepKind::Run,
            StepKind::Sleep,
            StepKind::WaitForEvent,
            StepKind::Invoke,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Finished with a result (recorded: never runs again).
    Completed,
    /// Failed for good (recorded: the code sees the error on every replay).
    Failed,
    /// An attempt failed; the next one is due at `wake_at`.
    Retrying,
    /// A sleep until `wake_at`.
    Sleeping,
    /// Waiting for an event until `wake_at`.
    Waiting,
    /// Waiting for an invoked run.
    Invoking,
}

impl StepStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Retrying => "retrying",
            StepStatus::Sleeping => "sleeping",
            StepStatus::Waiting => "waiting",
            StepStatus::Invoking => "invoking",
        }
    }

    /// Parses [`StepStatus::as_str`] text.
    pub fn parse(s: &str) -> Option<Self> {
        [
            StepStatus::Completed,
            StepStatus::Failed,
            StepStatus::Retrying,
            StepStatus::Sleeping,
            StepStatus::Waiting,
            StepStatus::Invoking,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Completed or failed: the step's outcome is final.
    pub fn is_settled(self) -> bool {
        matches!(self, StepStatus::Completed | StepStatus::Failed)
    }
}

/// One attempt at a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 0 for the first attempt.
    pub number: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// How long it ran, in microseconds.
    pub duration_us: u64,
    /// Its error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

/// A step as recorded in the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step id: its name, plus `:n` for the n-th repeat of a name in one run.
    pub step_id: String,
    /// The name the code gave.
    pub name: String,
    /// What it does.
    pub kind: StepKind,
    /// Where it is.
    pub status: StepStatus,
    /// Its result (completed steps; the event for waits, `null` on timeout).
    pub output: Option<Value>,
    /// Its final error (failed steps).
    pub error: Option<ErrorInfo>,
    /// Every attempt, oldest first (run steps).
    pub attempts: Vec<Attempt>,
    /// When it was first reached.
    pub started_at: Timestamp,
    /// When it settled.
    pub ended_at: Option<Timestamp>,
    /// Sleep end, next retry, or wait/invoke deadline.
    pub wake_at: Option<Timestamp>,
    /// Kind-specific details (the awaited event and match, the invoked function and run).
    pub detail: Option<Value>,
}
