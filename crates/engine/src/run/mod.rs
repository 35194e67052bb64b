//! Runs: one execution of a function for one event.
//!
//! `lifecycle` holds the state machine; `driver` carries a run's code forward,
//! turning what the code does into store writes.

pub(crate) mod driver;
pub mod lifecycle;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Event;
use crate::failure::ErrorInfo;
use crate::ids::{NodeId, RunId};
use crate::step::StepRecord;
use crate::time::Timestamp;

pub use lifecycle::{IllegalTransition, RunStatus};

/// The invoking run and step of a run started by `step.invoke`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent run.
    pub run_id: RunId,
    /// The parent's invoke step.
    pub step_id: String,
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub id: RunId,
    /// Store-assigned sequence number (creation order).
    pub seq: i64,
    /// The function it runs.
    pub function_id: String,
    /// The id of the event that started it.
    pub event_id: String,
    /// Current state.
    pub status: RunStatus,
    /// Function-level attempt (errors outside steps retry the whole body).
    pub attempt: u32,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When it first started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// When it is next due (queued, sleeping or waiting runs).
    pub available_at: Option<Timestamp>,
    /// The function's return value, once completed.
    pub output: Option<Value>,
    /// Why it failed or was cancelled.
    pub error: Option<ErrorInfo>,
    /// The run this one replays.
    pub replay_of: Option<RunId>,
    /// The invoking run, for invoked runs.
    pub parent: Option<ParentRef>,
    /// The node executing it now.
    pub lease_owner: Option<NodeId>,
    /// The user it belongs to (its event's `user.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// A run with its event and its step journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    /// The run.
    pub run: RunRecord,
    /// Its event.
    pub event: Event,
    /// Its steps, in the order they started.
    pub steps: Vec<StepRecord>,
}

/// Which runs to list (all fields optional; newest first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFilter {
    /// Only this function.
    pub function_id: Option<String>,
    /// Only these states.
    #[serde(default)]
    pub statuses: Vec<RunStatus>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// Started by the event with this id.
    pub event_id: Option<String>,
    /// Only runs belonging to this user (see [`crate::Event::owner`]).
    #[serde(default)]
    pub owner: Option<String>,
    /// Page cursor: only runs with a smaller `seq` than this.
    pub before_seq: Option<i64>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<u32>,
}

impl RunFilter {
    /// The page size to use.
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 1000)
    }
}

/// One page of runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    /// The runs, newest first.
    pub runs: Vec<RunRecord>,
    /// Pass as `before_seq` for the next page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// How to replay a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayFrom {
    /// A fresh run with the same event and an empty journal.
    Start,
    /// A fresh run with the same event that keeps every completed step's result and
    /// runs again from the failed (or unfinished) step.
    FailedStep,
}

/// The steps a [`ReplayFrom::FailedStep`] replay keeps from the failed run's journal:
/// those that completed before the failure. Steps that started after the first failed
/// step ended belong to the failure's handling (cleanup), which the replay will not
/// reach. A step counts as earlier when it started before the failure ended or was
/// first recorded before the failed step (journal order breaks ties when timestamps
/// are equal).
pub fn steps_kept_for_replay(steps: Vec<crate::step::StepRecord>) -> Vec<crate::step::StepRecord> {
    use crate::step::StepStatus;
    let cutoff = steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .filter_map(|s| s.ended_at)
        .min();
    let first_failed = steps.iter().position(|s| s.status == StepStatus::Failed);
    steps
        .into_iter()
        .enumerate()
        .filter(|(i, s)| {
            s.status == StepStatus::Completed
                && (cutoff.is_none_or(|c| s.started_at < c) || first_failed.is_none_or(|f| *i < f))
        })
        .map(|(_, s)| s)
        .collect()
}
