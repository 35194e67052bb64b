//! Run rows.

use async_trait::async_trait;
use serde_json::Value;

use super::{Lease, NewWait, RecordAck, StoreError, ThrottleReservation};
use crate::failure::ErrorInfo;
use crate::ids::{NodeId, RunId};
use crate::run::{ParentRef, ReplayFrom, RunDetail, RunFilter, RunPage, RunRecord, RunStatus};
use crate::step::StepRecord;
use crate::time::Timestamp;

/// A run to create.
#[derive(Clone, Debug)]
pub struct NewRun {
    /// Its id.
    pub id: RunId,
    /// Its function.
    pub function_id: String,
    /// Earliest start (the throttle may push it later).
    pub available_at: Timestamp,
    /// Throttle to reserve a start slot from.
    pub throttle: Option<ThrottleReservation>,
    /// Rate limit to pass (with a burst of its limit); a run over it is skipped. Only
    /// checked for runs started by events.
    pub rate_limit: Option<ThrottleReservation>,
    /// Debounce: fold the event into this key's waiting run, if there is one. Only
    /// for runs started by events.
    pub debounce: Option<DebounceReservation>,
    /// Singleton key and whether a new event cancels the active run (else it is
    /// skipped). Only for runs started by events.
    pub singleton: Option<(String, bool)>,
    /// Batching: add the event to this key's open batch, if there is one. Only for
    /// runs started by events.
    pub batch: Option<BatchReservation>,
    /// Idempotency key (function id plus key value).
    pub idempotency_key: Option<String>,
    /// Cancel if not started by then.
    pub start_deadline: Option<Timestamp>,
    /// Cancel if not finished this long after starting.
    pub finish_timeout_ms: Option<i64>,
    /// `cancel_on` waits to register.
    pub cancel_waits: Vec<NewWait>,
    /// The invoking run.
    pub parent: Option<ParentRef>,
    /// The run it replays.
    pub replay_of: Option<RunId>,
    /// The user it belongs to (the event's `user.id`), for scoping reads.
    pub owner: Option<String>,
}

impl NewRun {
    /// A plain run due at `now`.
    pub fn new(id: RunId, function_id: impl Into<String>, now: Timestamp) -> Self {
        NewRun {
            id,
            function_id: function_id.into(),
            available_at: now,
            throttle: None,
            rate_limit: None,
            debounce: None,
            singleton: None,
            batch: None,
            idempotency_key: None,
            start_deadline: None,
            finish_timeout_ms: None,
            cancel_waits: Vec::new(),
            parent: None,
            replay_of: None,
            owner: None,
        }
    }
}

/// A run's debounce, resolved by the store when its event is appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebounceReservation {
    /// Debounce key (function id, user and key value).
    pub key: String,
    /// Quiet time, in milliseconds.
    pub period_ms: i64,
    /// Longest wait from the first event, in milliseconds.
    pub timeout_ms: Option<i64>,
}

/// A run's batch, resolved by the store when its event is appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchReservation {
    /// Batch key (function id, user and key value).
    pub key: String,
    /// Most events in the run.
    pub max_size: u32,
    /// Longest wait from the first event, in milliseconds.
    pub timeout_ms: i64,
}

/// A run's final result.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// Returned this value.
    Completed(Value),
    /// Failed with this error.
    Failed(ErrorInfo),
}

impl RunOutcome {
    /// Settles the parent's invoke step with this outcome of its child run `child`
    /// (the same in every store).
    pub fn settle_invoke_step(&self, step: &mut StepRecord, child: &RunId, now: crate::time::Timestamp) {
        match self {
            RunOutcome::Completed(v) => {
                step.status = crate::step::StepStatus::Completed;
                step.output = Some(v.clone());
            }
            RunOutcome::Failed(e) => {
                step.status = crate::step::StepStatus::Failed;
                step.error = Some(ErrorInfo {
                    name: e.name.clone(),
                    message: format!("invoked run {child} failed: {}", e.message),
                    step: e.step.clone(),
                });
            }
        }
        step.ended_at = Some(now);
    }
}

/// A parent run whose invoke step was settled by its child ending.
#[derive(Clone, Debug, PartialEq)]
pub struct ParentWake {
    /// The parent run.
    pub run_id: RunId,
    /// The settled invoke step.
    pub step: StepRecord,
    /// The parent was parked and is now queued.
    pub queued: bool,
    /// The node executing the parent, if any.
    pub lease_owner: Option<NodeId>,
}

/// The answer to [`RunStore::suspend_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuspendOutcome {
    /// Parked; the lease is released.
    Suspended,
    /// Not parked: a watched step has already settled, keep going.
    Woken,
    /// The run was cancelled.
    Cancelled,
    /// This node no longer holds the run.
    LeaseLost,
}

/// The answer to [`RunStore::finish_run`].
#[derive(Clone, Debug, PartialEq)]
pub struct FinishOutcome {
    /// What happened to the write.
    pub ack: RecordAck,
    /// The parent woken by this run's end, for invoked runs.
    pub parent: Option<ParentWake>,
}

/// The answer to [`RunStore::cancel_run`].
#[derive(Clone, Debug, PartialEq)]
pub enum CancelResult {
    /// No such run.
    NotFound,
    /// It had already ended.
    AlreadyEnded(RunStatus),
    /// Cancelled.
    Cancelled {
        /// Its function.
        function_id: String,
        /// Its state before.
        previous: RunStatus,
        /// The node that was executing it.
        lease_owner: Option<NodeId>,
        /// The parent woken, for invoked runs.
        parent: Option<Box<ParentWake>>,
    },
}

/// The answer to [`RunStore::create_replay`].
#[derive(Clone, Debug, PartialEq)]
pub enum ReplayOutcome {
    /// The new run.
    Created(Box<RunRecord>),
    /// No such run.
    NotFound,
    /// Only failed or cancelled runs can be replayed.
    WrongState(RunStatus),
}

/// Run rows.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// A run with its event and journal.
    async fn get_run(&self, id: &RunId) -> Result<Option<RunDetail>, StoreError>;
    /// A page of runs, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<RunPage, StoreError>;
    /// Run counts per state for the filter (its `statuses` and paging are ignored).
    async fn count_runs(&self, filter: &RunFilter) -> Result<Vec<(RunStatus, u64)>, StoreError>;
    /// Parks a running run as `status` (sleeping, waiting or queued) due again at
    /// `wake_at`, releasing the lease, unless one of the `watched` steps has settled
    /// meanwhile (then `Woken`, nothing changes).
    async fn suspend_run(
        &self,
        lease: &Lease,
        status: RunStatus,
        wake_at: Option<Timestamp>,
        watched: &[String],
        now: Timestamp,
    ) -> Result<SuspendOutcome, StoreError>;
    /// Queues a running run for function-level attempt `attempt` at `at`.
    async fn retry_run(
        &self,
        lease: &Lease,
        attempt: u32,
        at: Timestamp,
        error: &ErrorInfo,
        now: Timestamp,
    ) -> Result<RecordAck, StoreError>;
    /// Ends a running run; settles and wakes its parent's invoke step.
    async fn finish_run(
        &self,
        lease: &Lease,
        outcome: RunOutcome,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError>;
    /// Cancels a run that has not ended: removes its waits, settles its parent's
    /// invoke step with the error.
    async fn cancel_run(
        &self,
        id: &RunId,
        reason: &ErrorInfo,
        now: Timestamp,
    ) -> Result<CancelResult, StoreError>;
    /// Gives a running run back to the queue (due now), for example at shutdown.
    async fn release_run(&self, lease: &Lease, now: Timestamp) -> Result<(), StoreError>;
    /// Creates a new run replaying a failed or cancelled one with the same event;
    /// with [`ReplayFrom::FailedStep`] it copies the records of the steps that completed
    /// before the first failed step ended (not those of steps that handled the failure).
    async fn create_replay(
        &self,
        source: &RunId,
        new_id: RunId,
        from: ReplayFrom,
        now: Timestamp,
    ) -> Result<ReplayOutcome, StoreError>;
}
