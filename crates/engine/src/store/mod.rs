//! The store: everything the engine persists, behind one object-safe trait split by
//! table, so "where is X persisted" has one answer:
//!
//! | module     | owns                                                             |
//! |------------|------------------------------------------------------------------|
//! | `events`   | received events, event-id dedupe, run creation for an event      |
//! | `runs`     | run rows: status, output/error, suspend, finish, cancel, replay  |
//! | `journal`  | step records (results, errors, attempts)                         |
//! | `timers`   | when runs are due: claims with leases, run deadlines             |
//! | `waits`    | registered waits for events (steps and `cancel_on`)              |
//! | `flow`     | throttle state and idempotency keys                              |
//! | `leases`   | nodes sharing the store and their heartbeats                     |
//! | `slots`    | concurrency slots shared by every node (stores that keep them)    |
//!
//! Every method is one atomic unit: it commits entirely or not at all. Methods that
//! act for a run being executed take a [`Lease`] and refuse (`LeaseLost`) when the
//! calling node no longer holds it, so two nodes never both record a step.
//! Implementations: `SqliteStore` (crate `learnflow-store-sqlite`) and `PostgresStore`
//! (crate `learnflow-store-postgres`); the conformance
//! suite in [`crate::testing`] holds them to the same behaviour.

mod events;
mod flow;
mod journal;
mod leases;
mod runs;
mod slots;
mod timers;
mod waits;

pub use events::{AppendEvent, AppendOutcome, EventStore, SkippedRun, WaitCandidate};
pub use flow::{admit_run, Admission, FlowStore, FlowTx, ThrottleReservation};
pub use journal::{JournalStore, RecordAck, StepEffect};
pub use leases::{LeaseStore, NodeInfo};
pub use runs::{
    BatchReservation, CancelResult, DebounceReservation, FinishOutcome, NewRun, ParentWake, ReplayOutcome,
    RunOutcome, RunStore, SuspendOutcome,
};
pub use slots::SlotStore;
pub use timers::{CancelledRun, ClaimBatch, ClaimedRun, TimerStore};
pub use waits::{NewWait, WaitResolution, WaitStore};

use std::fmt;

use crate::ids::{NodeId, RunId};

/// A node's hold on a run it is executing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The run.
    pub run_id: RunId,
    /// The run's store sequence number.
    pub run_seq: i64,
    /// The holder.
    pub node: NodeId,
}

/// What kind of store failure happened: it tells the caller what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// A uniqueness or state conflict: the write lost a race; re-read and decide.
    Conflict,
    /// The thing does not exist.
    NotFound,
    /// The store cannot be reached or is busy or full: try again later.
    Unavailable,
    /// The database schema is newer than this binary, or otherwise unusable.
    Incompatible,
    /// Stored data could not be decoded.
    Corrupt,
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreErrorKind::Conflict => "conflict",
            StoreErrorKind::NotFound => "not found",
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Incompatible => "incompatible",
            StoreErrorKind::Corrupt => "corrupt data",
        })
    }
}

/// A store failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("store error ({kind}): {message}")]
pub struct StoreError {
    /// The kind.
    pub kind: StoreErrorKind,
    /// Details.
    pub message: String,
}

impl StoreError {
    /// An error of a kind.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }
}

/// The whole store.
pub trait Store:
    EventStore + RunStore + JournalStore + TimerStore + WaitStore + FlowStore + LeaseStore + SlotStore
{
    /// A short name of the backend (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
}
