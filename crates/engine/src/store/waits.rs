//! Registered waits for events.

use async_trait::async_trait;

use super::StoreError;
use crate::event::Event;
use crate::ids::{NodeId, RunId};
use crate::step::StepRecord;
use crate::time::Timestamp;

/// A wait for an event: a `wait_for_event` step, or a `cancel_on` option (no step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWait {
    /// Wait id.
    pub id: String,
    /// The waiting run.
    pub run_id: RunId,
    /// The waiting step; `None` for a `cancel_on` wait.
    pub step_id: Option<String>,
    /// The awaited event name.
    pub event_name: String,
    /// Match expression over `event` and `async`.
    pub expr: Option<String>,
    /// When the wait lapses.
    pub expires_at: Option<Timestamp>,
}

/// A wait satisfied by an event.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitResolution {
    /// The run.
    pub run_id: RunId,
    /// The settled step.
    pub step: StepRecord,
    /// The run was parked and is now queued.
    pub queued: bool,
    /// The node executing the run, if any.
    pub lease_owner: Option<NodeId>,
}

/// Waits.
#[async_trait]
pub trait WaitStore: Send + Sync {
    /// Satisfies a step wait with `event` if it is still registered: removes it and
    /// completes its step with the event. `None` if it was already gone.
    async fn resolve_wait(
        &self,
        wait_id: &str,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<WaitResolution>, StoreError>;
}
