//! Flow-control state: throttles (GCRA), rate limits, idempotency keys, debounce,
//! batches and singletons, and the order a store applies them in ([`admit_run`]).

use async_trait::async_trait;

use super::StoreError;
use crate::time::Timestamp;

/// A run's claim on a throttle, resolved by the store when the run is created
/// (see [`crate::schedule::throttle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleReservation {
    /// Throttle key (function id plus key value).
    pub key: String,
    /// Emission interval: period divided by limit, in milliseconds.
    pub interval_ms: i64,
    /// Runs that may start back to back.
    pub burst: u32,
}

/// Flow-control state.
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// The throttle's theoretical arrival time for a key, if it has one.
    async fn throttle_tat(&self, key: &str) -> Result<Option<Timestamp>, StoreError>;
}

/// The flow-control steps of creating one run, as a store performs them inside the
/// transaction that appends its event. [`admit_run`] calls them in the one order
/// every store follows and words the reasons a run is not created.
pub trait FlowTx {
    /// The store's error.
    type Error;
    /// Adds the event to the key's open batch; that run's id, if there is one.
    fn add_to_batch(
        &mut self,
        b: &super::BatchReservation,
        event_seq: i64,
        now: Timestamp,
    ) -> Result<Option<String>, Self::Error>;
    /// Opens a batch for a new run with its first event.
    fn open_batch(
        &mut self,
        b: &super::BatchReservation,
        run_seq: i64,
        event_seq: i64,
    ) -> Result<(), Self::Error>;
    /// Folds the event into the key's waiting debounced run; its id, if there is one.
    fn fold_debounce(
        &mut self,
        d: &super::DebounceReservation,
        event_seq: i64,
        now: Timestamp,
    ) -> Result<Option<String>, Self::Error>;
    /// Makes a new run the key's waiting debounced run.
    fn start_debounce(
        &mut self,
        d: &super::DebounceReservation,
        run_seq: i64,
        now: Timestamp,
    ) -> Result<(), Self::Error>;
    /// The singleton key's run if it has not ended.
    fn active_singleton(&mut self, key: &str) -> Result<Option<String>, Self::Error>;
    /// Makes a new run the singleton key's run.
    fn set_singleton(&mut self, key: &str, run_seq: i64) -> Result<(), Self::Error>;
    /// The rate limit key's new TAT if a run may start now (nothing written).
    fn check_rate(
        &mut self,
        r: &ThrottleReservation,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, Self::Error>;
    /// Stores a key's TAT.
    fn set_tat(&mut self, key: &str, tat: Timestamp) -> Result<(), Self::Error>;
    /// Takes an idempotency key; the run already holding it (since `horizon`), if any.
    fn claim_idempotency_key(
        &mut self,
        key: &str,
        run: &crate::ids::RunId,
        now: Timestamp,
        horizon: i64,
    ) -> Result<Option<String>, Self::Error>;
    /// Reserves a throttle start slot; the earliest start.
    fn reserve_throttle(&mut self, t: &ThrottleReservation, now: Timestamp)
        -> Result<Timestamp, Self::Error>;
    /// Inserts the run; its seq.
    fn insert_run(
        &mut self,
        run: &super::NewRun,
        event_seq: i64,
        available_at: Timestamp,
        now: Timestamp,
    ) -> Result<i64, Self::Error>;
}

/// What [`admit_run`] did with a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Created; `replaces` is a singleton's active run the engine is to cancel.
    Created {
        /// The singleton run it replaces.
        replaces: Option<crate::ids::RunId>,
    },
    /// Not created, and why.
    Skipped(super::SkippedRun),
}

/// Creates `run` for the event at `event_seq` unless flow control says otherwise:
/// batching and debounce fold the event into a waiting run, a singleton skips (or
/// replaces) its active run, a rate limit skips, an idempotency key already used
/// skips; a throttle only delays. `horizon` bounds the idempotency window.
pub fn admit_run<T: FlowTx>(
    tx: &mut T,
    run: &super::NewRun,
    event_seq: i64,
    now: Timestamp,
    horizon: i64,
) -> Result<Admission, T::Error> {
    let skip = |reason: String| {
        Ok(Admission::Skipped(super::SkippedRun {
            function_id: run.function_id.clone(),
            reason,
        }))
    };
    if let Some(b) = &run.batch {
        if let Some(open) = tx.add_to_batch(b, event_seq, now)? {
            return skip(format!("batched into run {open}"));
        }
    }
    if let Some(d) = &run.debounce {
        if let Some(waiting) = tx.fold_debounce(d, event_seq, now)? {
            return skip(format!("debounced: run {waiting} will start with this event"));
        }
    }
    let mut replaces = None;
    if let Some((key, cancel)) = &run.singleton {
        if let Some(active) = tx.active_singleton(key)? {
            if !cancel {
                return skip(format!("singleton: run {active} is still active"));
            }
            replaces = Some(crate::ids::RunId::from(active.as_str()));
        }
    }
    let rate = match &run.rate_limit {
        Some(r) => match tx.check_rate(r, now)? {
            Some(tat) => Some((r, tat)),
            None => return skip("rate limited: the function's rate limit allows no more runs now".into()),
        },
        None => None,
    };
    if let Some(key) = &run.idempotency_key {
        if let Some(previous) = tx.claim_idempotency_key(key, &run.id, now, horizon)? {
            return skip(format!(
                "idempotency key already used by run {previous} within the last 24 h"
            ));
        }
    }
    if let Some((r, tat)) = rate {
        tx.set_tat(&r.key, tat)?;
    }
    let mut available_at = run.available_at;
    if let Some(t) = &run.throttle {
        available_at = available_at.max(tx.reserve_throttle(t, now)?);
    }
    let seq = tx.insert_run(run, event_seq, available_at, now)?;
    if let Some(b) = &run.batch {
        tx.open_batch(b, seq, event_seq)?;
    }
    if let Some(d) = &run.debounce {
        tx.start_debounce(d, seq, now)?;
    }
    if let Some((key, _)) = &run.singleton {
        tx.set_singleton(key, seq)?;
    }
    Ok(Admission::Created { replaces })
}
