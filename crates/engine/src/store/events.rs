//! Received events and the runs they start.

use std::time::Duration;

use async_trait::async_trait;

use super::{NewRun, NewWait, StoreError};
use crate::event::Event;
use crate::ids::RunId;
use crate::time::Timestamp;

/// One event to record, with the runs it starts.
#[derive(Clone, Debug)]
pub struct AppendEvent {
    /// The event.
    pub event: Event,
    /// The runs of the functions it triggers.
    pub runs: Vec<NewRun>,
}

/// A run that was not created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRun {
    /// Its function.
    pub function_id: String,
    /// Why (for example an idempotency key already used).
    pub reason: String,
}

/// A registered wait on the appended event's name, for the engine to match.
#[derive(Clone, Debug)]
pub struct WaitCandidate {
    /// The wait.
    pub wait: NewWait,
    /// The waiting run's own event (the `event` of the match expression).
    pub run_event: Event,
}

/// What happened to one appended event.
#[derive(Clone, Debug)]
pub struct AppendOutcome {
    /// The event id.
    pub event_id: String,
    /// The id was seen within the dedupe window: nothing was recorded or started.
    pub duplicate: bool,
    /// Runs created.
    pub created: Vec<RunId>,
    /// Runs not created.
    pub skipped: Vec<SkippedRun>,
    /// Waits registered for this event name (empty for duplicates).
    pub waits: Vec<WaitCandidate>,
    /// Active runs of singleton functions this event replaces: the engine cancels
    /// them.
    pub superseded: Vec<RunId>,
}

/// Events.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Records events and creates their runs, each event atomically: an event whose
    /// id was seen within `dedupe_window` records nothing; a run whose idempotency
    /// key was used within the window is skipped; a throttled run gets its start
    /// time from the throttle state. Returns one outcome per event, in order.
    async fn append_events(
        &self,
        batch: Vec<AppendEvent>,
        now: Timestamp,
        dedupe_window: Duration,
    ) -> Result<Vec<AppendOutcome>, StoreError>;

    /// The events gathered into a batched run, in arrival order (just its own event
    /// for a run that is not batched).
    async fn batch_events(&self, run: &RunId) -> Result<Vec<Event>, StoreError>;
}
