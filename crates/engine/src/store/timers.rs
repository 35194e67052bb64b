//! When runs are due: claiming them with leases, and run deadlines.

use async_trait::async_trait;

use super::{ParentWake, StoreError};
use crate::event::Event;
use crate::failure::ErrorInfo;
use crate::ids::{NodeId, RunId};
use crate::run::RunRecord;
use crate::step::StepRecord;
use crate::time::Timestamp;

/// A run a node has claimed, with what it needs to execute it.
#[derive(Clone, Debug)]
pub struct ClaimedRun {
    /// The run (status now running, lease held).
    pub run: RunRecord,
    /// Its event.
    pub event: Event,
    /// Its journal.
    pub journal: Vec<StepRecord>,
}

/// Claimed runs and when to look again.
#[derive(Clone, Debug, Default)]
pub struct ClaimBatch {
    /// The runs claimed, due order.
    pub runs: Vec<ClaimedRun>,
    /// The earliest time another run of these functions (or a deadline) is due.
    pub next_wake: Option<Timestamp>,
}

/// A run cancelled because a deadline passed.
#[derive(Clone, Debug, PartialEq)]
pub struct CancelledRun {
    /// The run.
    pub run_id: RunId,
    /// Its function.
    pub function_id: String,
    /// The node executing it, if any.
    pub lease_owner: Option<NodeId>,
    /// Its parent, woken.
    pub parent: Option<ParentWake>,
    /// Which deadline passed.
    pub reason: ErrorInfo,
}

/// Due runs and deadlines.
#[async_trait]
pub trait TimerStore: Send + Sync {
    /// Claims up to `limit` runs of `function_ids` that are due at `now` (queued,
    /// sleeping or waiting with `available_at <= now`), oldest due first, leasing them
    /// to `node` until `now + lease_ttl_ms`. A first claim sets `started_at` and the
    /// finish deadline.
    async fn claim_due(
        &self,
        node: &NodeId,
        function_ids: &[String],
        now: Timestamp,
        limit: usize,
        lease_ttl_ms: i64,
    ) -> Result<ClaimBatch, StoreError>;

    /// Cancels runs whose start or finish deadline has passed.
    async fn expire_deadlines(&self, now: Timestamp) -> Result<Vec<CancelledRun>, StoreError>;
}
