//! Step records.

use async_trait::async_trait;

use super::{Lease, NewRun, NewWait, StoreError};
use crate::event::Event;
use crate::ids::RunId;
use crate::step::StepRecord;
use crate::time::Timestamp;

/// A write that goes with a step record, in the same transaction.
#[derive(Clone, Debug)]
pub enum StepEffect {
    /// Nothing else.
    None,
    /// Register a wait for an event (a `wait_for_event` step starting).
    RegisterWait(NewWait),
    /// Record an event and start a child run (an `invoke` step starting).
    StartChild {
        /// The child's event.
        event: Box<Event>,
        /// The child run.
        run: Box<NewRun>,
    },
    /// Remove the step's wait (a wait that timed out or was settled here).
    DropWait,
}

/// The answer to a lease-holding write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordAck {
    /// Written.
    Recorded,
    /// Written, but the run has been cancelled: start no further step.
    Cancelled,
    /// Not written: this node no longer holds the run.
    LeaseLost,
}

/// Step records.
#[async_trait]
pub trait JournalStore: Send + Sync {
    /// Inserts or replaces a step record (and applies its effect) if `lease` holds.
    async fn record_step(
        &self,
        lease: &Lease,
        step: &StepRecord,
        effect: StepEffect,
        now: Timestamp,
    ) -> Result<RecordAck, StoreError>;

    /// Settles a waiting `wait_for_event` step whose timeout passed: if it is still
    /// waiting, it completes with `null` and its wait is removed. Returns the step as
    /// it now stands (an event may have matched first).
    async fn settle_wait_timeout(
        &self,
        lease: &Lease,
        step_id: &str,
        now: Timestamp,
    ) -> Result<(RecordAck, Option<StepRecord>), StoreError>;

    /// A run's steps in the order they started.
    async fn load_journal(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError>;
}
