//! [`Ctx`]: the API a function's code uses, and the per-run state it shares with the
//! driver.
//!
//! Each execution of a run calls the function from the start. Every step call gets an
//! id (its name, plus `:n` when the name repeats) and looks in the journal first:
//!
//! * recorded as completed or failed: return the recorded result at once, without
//!   running anything (this is how a replay after a crash skips finished work);
//! * not recorded: the step is *new*. New steps wait until the driver has finished
//!   polling the code once (so every branch that replays from the journal has caught
//!   up), then the driver checks that no recorded step was skipped (a code change
//!   that takes another path fails the run with a non-determinism error before the
//!   new step runs) and lets them all go at once: parallel steps run in parallel;
//! * a step that must wait (sleep, wait for an event, invoke, retry backoff) *parks*.
//!   When nothing executes any more and everything left is parked, the driver
//!   suspends the run: it is written back to the store with its wake-up time and the
//!   code is dropped; it is replayed when due.
//!
//! A `run` step takes its concurrency slots just before executing and gives them back
//! right after; its result is written to the journal before the code continues.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures::FutureExt;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::Core;
use crate::event::{json_type, Event, EventInput, INVOKED_EVENT};
use crate::expr::Expr;
use crate::failure::{ErrorInfo, Failure};
use crate::ids::{new_ulid, RunId};
use crate::retry::RetryPolicy;
use crate::run::{ParentRef, RunRecord, RunStatus};
use crate::schedule::concurrency::SlotRequest;
use crate::schedule::shared_slots::SharedSlots;
use crate::step::journal::{Attempt, StepKind, StepRecord, StepStatus};
use crate::store::{Lease, NewWait, RecordAck, StepEffect, StoreError};
use crate::time::{duration_millis, Timestamp};
use crate::watch::UpdateKind;

/// Largest step output, as serialised JSON.
pub const MAX_STEP_OUTPUT_BYTES: usize = 4 * 1024 * 1024;
/// Longest step name.
pub const MAX_STEP_NAME_LEN: usize = 256;
/// Longest sleep, wait or invoke timeout.
pub const MAX_SLEEP: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// Why a parked step waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParkKind {
    Sleep,
    Retry,
    Wait,
    Invoke,
}

pub(crate) struct Parked {
    kind: ParkKind,
    wake_at: Option<Timestamp>,
    resolved: bool,
    waker: Option<Waker>,
}

/// Something that stops the run's execution on this node.
#[derive(Debug)]
pub(crate) enum Fatal {
    NonDeterminism(String),
    LeaseLost,
    Store(StoreError),
}

/// What the driver does after an execution.
#[derive(Debug)]
pub(crate) enum Outcome {
    Returned(Result<Value, Failure>),
    Suspend {
        status: RunStatus,
        wake_at: Option<Timestamp>,
        watched: Vec<String>,
    },
    Cancelled,
    Fatal(Fatal),
}

/// The state of one execution, shared by the step futures and the driver.
pub(crate) struct RunState {
    pub journal: HashMap<String, StepRecord>,
    occurrences: HashMap<String, u32>,
    visited: HashSet<String>,
    /// How many journal entries the code has reached in this execution.
    visited_recorded: usize,
    pending_new: Vec<(String, Waker)>,
    granted: HashSet<String>,
    executing: usize,
    parked: HashMap<String, Parked>,
    cancel_wakers: HashMap<String, Waker>,
    pub cancelled: Option<ErrorInfo>,
    fatal: Option<Fatal>,
    next_order: u64,
    pub driver_waker: Option<Waker>,
}

impl RunState {
    pub fn new(journal: Vec<StepRecord>) -> Self {
        RunState {
            journal: journal.into_iter().map(|s| (s.step_id.clone(), s)).collect(),
            occurrences: HashMap::new(),
            visited: HashSet::new(),
            visited_recorded: 0,
            pending_new: Vec::new(),
            granted: HashSet::new(),
            executing: 0,
            parked: HashMap::new(),
            cancel_wakers: HashMap::new(),
            cancelled: None,
            fatal: None,
            next_order: 0,
            driver_waker: None,
        }
    }

    /// Called by the driver after each poll of the code that returned `Pending`:
    /// grants new steps (after the non-determinism check), or decides to stop.
    /// `Err(outcome)` ends the execution; `Ok(true)` means poll again now.
    pub fn after_poll(&mut self, now: Timestamp, grace: Duration) -> Result<bool, Outcome> {
        if let Some(f) = self.fatal.take() {
            return Err(Outcome::Fatal(f));
        }
        if !self.pending_new.is_empty() && self.cancelled.is_none() {
            if self.visited_recorded < self.journal.len() {
                let skipped = self.unvisited();
                let new: Vec<&str> = self.pending_new.iter().map(|(id, _)| id.as_str()).collect();
                return Err(Outcome::Fatal(Fatal::NonDeterminism(format!(
                    "the code reached new step(s) {new:?} but never reached recorded step(s) {skipped:?}: \
                     the function took a different path than when those steps ran \
                     (code between steps must be deterministic)"
                ))));
            }
            for (id, waker) in self.pending_new.drain(..) {
                self.granted.insert(id);
                waker.wake();
            }
            return Ok(true);
        }
        if self.executing > 0 {
            return Ok(false);
        }
        if self.cancelled.is_some() {
            return Err(Outcome::Cancelled);
        }
        if self.parked.is_empty() || self.parked.values().any(|p| p.resolved) {
            return Ok(false);
        }
        let wake_at = self.parked.values().filter_map(|p| p.wake_at).min();
        let all_timed = self.parked.values().all(|p| p.wake_at.is_some());
        if all_timed && wake_at.is_some_and(|w| w <= now.plus(grace)) {
            // Due very soon: wait in memory rather than suspend and reclaim.
            return Ok(false);
        }
        let status = if self
            .parked
            .values()
            .any(|p| matches!(p.kind, ParkKind::Wait | ParkKind::Invoke))
        {
            RunStatus::Waiting
        } else if self.parked.values().any(|p| p.kind == ParkKind::Sleep) {
            RunStatus::Sleeping
        } else {
            RunStatus::Queued
        };
        let watched = self
            .parked
            .iter()
            .filter(|(_, p)| matches!(p.kind, ParkKind::Wait | ParkKind::Invoke))
            .map(|(id, _)| id.clone())
            .collect();
        Err(Outcome::Suspend {
            status,
            wake_at,
            watched,
        })
    }

    /// Keeps a step record (new or updated) in the in-memory journal.
    pub fn remember(&mut self, step: StepRecord) {
        let id = step.step_id.clone();
        if self.journal.insert(id.clone(), step).is_none() && self.visited.contains(&id) {
            self.visited_recorded += 1;
        }
    }

    /// Recorded steps the code has not reached in this execution.
    pub fn unvisited(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .journal
            .keys()
            .filter(|k| !self.visited.contains(*k))
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// A step settled elsewhere (an event matched a wait, an invoked run ended).
    pub fn settle_from_outside(&mut self, step: StepRecord) {
        let id = step.step_id.clone();
        self.remember(step);
        if let Some(p) = self.parked.get_mut(&id) {
            p.resolved = true;
            if let Some(w) = p.waker.take() {
                w.wake();
            }
        }
        if let Some(w) = &self.driver_waker {
            w.wake_by_ref();
        }
    }

    /// The run was cancelled: no further step starts.
    pub fn cancel(&mut self, reason: ErrorInfo) {
        if self.cancelled.is_none() {
            self.cancelled = Some(reason);
        }
        for (_, w) in self.cancel_wakers.drain() {
            w.wake();
        }
        for p in self.parked.values_mut() {
            if let Some(w) = p.waker.take() {
                w.wake();
            }
        }
        if let Some(w) = &self.driver_waker {
            w.wake_by_ref();
        }
    }
}

/// What a step needs from the run being executed.
pub(crate) struct RunEnv {
    pub core: Arc<Core>,
    pub lease: Lease,
    pub run: RunRecord,
    pub event: Event,
    pub retries: u32,
    pub backoff: RetryPolicy,
    pub slots: Vec<SlotRequest>,
    /// The run's place among waiters for slots (see `CompiledFunction::slot_score`).
    pub slot_score: i64,
}

pub(crate) struct CtxInner {
    pub state: Mutex<RunState>,
    pub env: RunEnv,
}

/// The handle function code uses to run durable steps.
///
/// Cheap to clone. Steps may be awaited together (`tokio::join!`,
/// `futures::future::join_all`) to run in parallel.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) inner: Arc<CtxInner>,
}

/// The step is stopped for good on this node (cancel, lost lease, store failure):
/// its future never completes and the driver ends the execution.
async fn halt<T>() -> T {
    futures::future::pending::<T>().await
}

struct ExecGuard<'a>(&'a Mutex<RunState>);

impl<'a> ExecGuard<'a> {
    fn new(state: &'a Mutex<RunState>) -> Self {
        state.lock().executing += 1;
        ExecGuard(state)
    }
}

impl Drop for ExecGuard<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.executing = s.executing.saturating_sub(1);
    }
}

struct ParkGuard<'a>(&'a Mutex<RunState>, &'a str);

impl Drop for ParkGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().parked.remove(self.1);
    }
}

struct GrantGuard<'a>(&'a Mutex<RunState>, &'a str);

impl Drop for GrantGuard<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.pending_new.retain(|(id, _)| id != self.1);
        s.granted.remove(self.1);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

enum Lookup {
    New,
    Found(Box<StepRecord>),
}

impl Ctx {
    pub(crate) fn new(env: RunEnv, journal: Vec<StepRecord>) -> Self {
        Ctx {
            inner: Arc::new(CtxInner {
                state: Mutex::new(RunState::new(journal)),
                env,
            }),
        }
    }

    /// The event that started this run.
    pub fn event(&self) -> &Event {
        &self.inner.env.event
    }

    /// The events of this run: the events gathered into it for a function with
    /// batching, else just [`Ctx::event`].
    pub async fn events(&self) -> Result<Vec<Event>, Failure> {
        let env = self.env();
        let batched = env
            .core
            .function(&env.run.function_id)
            .is_some_and(|f| f.batch.is_some());
        if !batched {
            return Ok(vec![env.event.clone()]);
        }
        env.core
            .store
            .batch_events(&env.run.id)
            .await
            .map_err(|e| Failure::retriable(format!("reading the run's batched events: {e}")))
    }

    /// This run's id.
    pub fn run_id(&self) -> &RunId {
        &self.inner.env.run.id
    }

    /// The function being run.
    pub fn function_id(&self) -> &str {
        &self.inner.env.run.function_id
    }

    /// The function-level attempt (0 unless code outside steps failed before).
    pub fn attempt(&self) -> u32 {
        self.inner.env.run.attempt
    }

    /// For executors that keep their own memo of a run (such as the Inngest gateway,
    /// whose app replays its code from the memo it is sent): the run's settled steps,
    /// in the order they ended, marked as reached so the run may go on to new steps
    /// without revisiting them. Steps still in progress (a wait, a retry) are left to
    /// be reached again the usual way.
    pub fn adopt_settled(&self) -> Vec<StepRecord> {
        let mut s = self.inner.state.lock();
        let mut settled: Vec<StepRecord> = s
            .journal
            .values()
            .filter(|r| r.status.is_settled())
            .cloned()
            .collect();
        settled.sort_by(|a, b| {
            (a.ended_at.unwrap_or(a.started_at), &a.step_id)
                .cmp(&(b.ended_at.unwrap_or(b.started_at), &b.step_id))
        });
        for r in &settled {
            if s.visited.insert(r.step_id.clone()) {
                s.visited_recorded += 1;
            }
        }
        settled
    }

    /// Whether the run has steps in progress (waiting for a retry, a sleep, an event or
    /// a child run), so an executor knows whether anything is pending besides new work.
    pub fn has_unsettled_steps(&self) -> bool {
        self.inner
            .state
            .lock()
            .journal
            .values()
            .any(|r| !r.status.is_settled())
    }

    fn env(&self) -> &RunEnv {
        &self.inner.env
    }

    fn now(&self) -> Timestamp {
        self.env().core.clock.now()
    }

    fn publish(&self, kind: UpdateKind) {
        let env = self.env();
        env.core.publish(&env.run.id, &env.run.function_id, kind);
    }

    /// Assigns the next id for `name` in this execution.
    fn next_id(&self, name: &str) -> Result<String, Failure> {
        if name.trim().is_empty() {
            return Err(Failure::non_retriable("step name must not be empty").named("InvalidStep"));
        }
        if name.len() > MAX_STEP_NAME_LEN {
            return Err(Failure::non_retriable(format!(
                "step name '{}…' is {} bytes long; the limit is {MAX_STEP_NAME_LEN}",
                name.chars().take(40).collect::<String>(),
                name.len()
            ))
            .named("InvalidStep"));
        }
        let mut s = self.inner.state.lock();
        let mut n = *s.occurrences.get(name).unwrap_or(&0);
        let id = loop {
            let candidate = if n == 0 {
                name.to_string()
            } else {
                format!("{name}:{n}")
            };
            n += 1;
            if !s.visited.contains(&candidate) {
                break candidate;
            }
        };
        s.occurrences.insert(name.to_string(), n);
        s.visited.insert(id.clone());
        if s.journal.contains_key(&id) {
            s.visited_recorded += 1;
        }
        Ok(id)
    }

    fn lookup(&self, id: &str, kind: StepKind) -> Option<Lookup> {
        let mut s = self.inner.state.lock();
        match s.journal.get(id) {
            None => Some(Lookup::New),
            Some(rec) if rec.kind == kind => Some(Lookup::Found(Box::new(rec.clone()))),
            Some(rec) => {
                let msg = format!(
                    "step '{id}' was recorded as a {} step but the code now calls it as a {} step \
                     (the function changed between executions)",
                    rec.kind.as_str(),
                    kind.as_str()
                );
                s.fatal = Some(Fatal::NonDeterminism(msg));
                if let Some(w) = &s.driver_waker {
                    w.wake_by_ref();
                }
                None
            }
        }
    }

    /// Waits until the driver lets a new step go (see the module documentation).
    async fn await_grant(&self, id: &str) {
        let _guard = GrantGuard(&self.inner.state, id);
        std::future::poll_fn(|cx| {
            let mut s = self.inner.state.lock();
            if s.granted.remove(id) {
                return Poll::Ready(());
            }
            match s.pending_new.iter_mut().find(|(p, _)| p == id) {
                Some((_, w)) => *w = cx.waker().clone(),
                None => s.pending_new.push((id.to_string(), cx.waker().clone())),
            }
            Poll::Pending
        })
        .await;
    }

    /// Never returns once the run is cancelled.
    async fn halt_if_cancelled(&self) {
        let cancelled = self.inner.state.lock().cancelled.is_some();
        if cancelled {
            halt::<()>().await;
        }
    }

    /// Parks until `wake_at` passes or the step is settled from outside. Returns
    /// `true` when settled from outside.
    async fn park(&self, id: &str, kind: ParkKind, wake_at: Option<Timestamp>) -> bool {
        {
            let mut s = self.inner.state.lock();
            s.parked.insert(
                id.to_string(),
                Parked {
                    kind,
                    wake_at,
                    resolved: false,
                    waker: None,
                },
            );
        }
        let _guard = ParkGuard(&self.inner.state, id);
        let mut timer = wake_at.map(|t| self.env().core.clock.sleep_until(t));
        std::future::poll_fn(|cx| {
            {
                let mut s = self.inner.state.lock();
                if let Some(p) = s.parked.get_mut(id) {
                    if p.resolved {
                        return Poll::Ready(true);
                    }
                    p.waker = Some(cx.waker().clone());
                }
            }
            if let Some(t) = timer.as_mut() {
                if t.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Writes a step record; on a lost lease or a store failure the step halts.
    async fn write(&self, rec: &StepRecord, effect: StepEffect) {
        let env = self.env();
        let now = self.now();
        match env.core.store.record_step(&env.lease, rec, effect, now).await {
            Ok(RecordAck::Recorded) => {
                self.inner.state.lock().remember(rec.clone());
            }
            Ok(RecordAck::Cancelled) => {
                let mut s = self.inner.state.lock();
                s.remember(rec.clone());
                s.cancel(ErrorInfo::new("Cancelled", "the run was cancelled"));
            }
            Ok(RecordAck::LeaseLost) => self.fail_execution(Fatal::LeaseLost).await,
            Err(e) => self.fail_execution(Fatal::Store(e)).await,
        }
    }

    async fn fail_execution(&self, fatal: Fatal) {
        {
            let mut s = self.inner.state.lock();
            s.fatal.get_or_insert(fatal);
            if let Some(w) = &s.driver_waker {
                w.wake_by_ref();
            }
        }
        halt::<()>().await
    }

    fn new_record(&self, id: &str, name: &str, kind: StepKind, status: StepStatus) -> StepRecord {
        StepRecord {
            step_id: id.to_string(),
            name: name.to_string(),
            kind,
            status,
            output: None,
            error: None,
            attempts: Vec::new(),
            started_at: self.now(),
            ended_at: None,
            wake_at: None,
            detail: None,
        }
    }

    /// Runs `f` as a durable step named `name` and returns its result.
    ///
    /// The result is written to the journal before this returns; once written the
    /// step never runs again for this run: a replay returns the recorded value. An
    /// error is retried with backoff up to the function's `retries`; when retries are
    /// exhausted (or the error is non-retriable) this returns a `StepFailed` failure,
    /// which the code may handle or propagate with `?` to fail the run.
    pub fn run<'a, T, F, Fut>(
        &'a self,
        name: &str,
        mut f: F,
    ) -> impl Future<Output = Result<T, Failure>> + Send + 'a
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        F: FnMut() -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Failure>> + Send + 'a,
    {
        self.run_attempt(name, move |_| f())
    }

    /// Like [`Ctx::run`], with `f` told which attempt of the step it is (0 for the
    /// first; counted across suspensions and restarts, from the journal).
    pub fn run_attempt<'a, T, F, Fut>(
        &'a self,
        name: &str,
        mut f: F,
    ) -> impl Future<Output = Result<T, Failure>> + Send + 'a
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        F: FnMut(u32) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Failure>> + Send + 'a,
    {
        let id = self.next_id(name);
        let name = name.to_string();
        async move {
            let id = id?;
            let mut rec = match self.lookup(&id, StepKind::Run) {
                None => halt().await,
                Some(Lookup::Found(rec)) => match rec.status {
                    StepStatus::Completed => {
                        return serde_json::from_value(rec.output.unwrap_or(Value::Null)).map_err(|e| {
                            Failure::non_retriable(format!(
                                "step '{id}': the recorded result does not fit the type the code expects: {e}"
                            ))
                        });
                    }
                    StepStatus::Failed => {
                        let err = rec.error.unwrap_or_else(|| ErrorInfo::new("Error", "failed"));
                        return Err(Failure::step_failed(&id, &err));
                    }
                    _ => *rec,
                },
                Some(Lookup::New) => {
                    self.await_grant(&id).await;
                    self.new_record(&id, &name, StepKind::Run, StepStatus::Retrying)
                }
            };
            let order = {
                let mut s = self.inner.state.lock();
                s.next_order += 1;
                s.next_order
            };
            loop {
                if rec.status == StepStatus::Retrying {
                    if let Some(at) = rec.wake_at {
                        if at > self.now() {
                            self.park(&id, ParkKind::Retry, Some(at)).await;
                        }
                    }
                }
                self.halt_if_cancelled().await;
                let _exec = ExecGuard::new(&self.inner.state);
                let env = self.env();
                let _permit = if env.slots.is_empty() {
                    None
                } else {
                    let acquire = env
                        .core
                        .limiter
                        .acquire(env.slots.clone(), (env.slot_score, env.run.seq, order));
                    Some(self.unless_cancelled(&id, acquire).await)
                };
                let mut shared = if env.slots.is_empty() || !env.core.store.shares_slots() {
                    None
                } else {
                    let take = SharedSlots::take(
                        env.core.store.clone(),
                        env.core.clock.clone(),
                        env.core.node.id.clone(),
                        format!("{}/{}/{}", env.run.id, id, rec.attempts.len()),
                        env.slots.clone(),
                        duration_millis(env.core.config.lease_ttl),
                    );
                    Some(self.unless_cancelled(&id, take).await)
                };
                self.halt_if_cancelled().await;
                let number = rec.attempts.len() as u32;
                self.publish(UpdateKind::StepStarted {
                    step_id: id.clone(),
                    attempt: number,
                });
                let started_at = self.now();
                let t0 = Instant::now();
                let result = match std::panic::catch_unwind(AssertUnwindSafe(|| f(number))) {
                    Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
                    Err(p) => Err(p),
                };
                let duration_us = t0.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
                let ended_at = self.now();
                if let Some(slots) = shared.take() {
                    slots.give_back().await;
                }
                let outcome = match result {
                    Ok(Ok(value)) => match serde_json::to_vec(&value) {
                        Ok(bytes) if bytes.len() > MAX_STEP_OUTPUT_BYTES => {
                            Err(Failure::non_retriable(format!(
                                "step '{id}' returned {} bytes; the limit is {MAX_STEP_OUTPUT_BYTES}",
                                bytes.len()
                            )))
                        }
                        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                            Ok(json) => Ok((value, json)),
                            Err(e) => Err(Failure::non_retriable(format!("step '{id}' output: {e}"))),
                        },
                        Err(e) => Err(Failure::non_retriable(format!(
                            "step '{id}' returned a value that cannot be serialised: {e}"
                        ))),
                    },
                    Ok(Err(failure)) => Err(failure),
                    Err(panic) => Err(Failure::retriable(format!(
                        "step '{id}' panicked: {}",
                        panic_message(&*panic)
                    ))
                    .named("Panic")),
                };
                if rec.attempts.is_empty() {
                    rec.started_at = started_at;
                }
                match outcome {
                    Ok((value, json)) => {
                        rec.attempts.push(Attempt {
                            number,
                            started_at,
                            duration_us,
                            error: None,
                        });
                        rec.status = StepStatus::Completed;
                        rec.output = Some(json);
                        rec.error = None;
                        rec.ended_at = Some(ended_at);
                        rec.wake_at = None;
                        self.write(&rec, StepEffect::None).await;
                        self.publish(UpdateKind::StepCompleted { step_id: id.clone() });
                        return Ok(value);
                    }
                    Err(failure) => {
                        let info = failure.to_info();
                        rec.attempts.push(Attempt {
                            number,
                            started_at,
                            duration_us,
                            error: Some(info.clone()),
                        });
                        if !failure.is_retriable() || number >= env.retries {
                            rec.status = StepStatus::Failed;
                            rec.error = Some(info.clone());
                            rec.ended_at = Some(ended_at);
                            rec.wake_at = None;
                            self.write(&rec, StepEffect::None).await;
                            self.publish(UpdateKind::StepFailed {
                                step_id: id.clone(),
                                error: info.clone(),
                            });
                            return Err(Failure::step_failed(&id, &info));
                        }
                        let next_at = env.backoff.next_attempt_at(number + 1, ended_at, failure.retry);
                        rec.status = StepStatus::Retrying;
                        rec.error = Some(info.clone());
                        rec.wake_at = Some(next_at);
                        self.write(&rec, StepEffect::None).await;
                        self.publish(UpdateKind::StepRetrying {
                            step_id: id.clone(),
                            attempt: number,
                            error: info,
                            next_at,
                        });
                    }
                }
            }
        }
    }

    /// Awaits `fut` unless the run is cancelled first (then never returns).
    async fn unless_cancelled<F: Future>(&self, id: &str, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            {
                let mut s = self.inner.state.lock();
                if s.cancelled.is_some() {
                    return Poll::Pending;
                }
                s.cancel_wakers.insert(id.to_string(), cx.waker().clone());
            }
            fut.as_mut().poll(cx)
        })
        .await
    }

    /// Sleeps durably for `duration` (measured from the first time the code reaches
    /// this step). The run holds no worker and no concurrency slot meanwhile.
    pub fn sleep<'a>(
        &'a self,
        name: &str,
        duration: Duration,
    ) -> impl Future<Output = Result<(), Failure>> + Send + 'a {
        let until = if duration > MAX_SLEEP {
            Err(Failure::non_retriable(format!(
                "step '{name}': sleep of {} is longer than the limit of one year",
                crate::duration::format(duration)
            )))
        } else {
            Ok(self.now().plus(duration))
        };
        self.sleep_step(name, until)
    }

    /// Sleeps durably until `until`.
    pub fn sleep_until<'a>(
        &'a self,
        name: &str,
        until: Timestamp,
    ) -> impl Future<Output = Result<(), Failure>> + Send + 'a {
        let limit = self.now().plus(MAX_SLEEP);
        let until = if until > limit {
            Err(Failure::non_retriable(format!(
                "step '{name}': sleep until {until} is more than a year away"
            )))
        } else {
            Ok(until)
        };
        self.sleep_step(name, until)
    }

    fn sleep_step<'a>(
        &'a self,
        name: &str,
        until: Result<Timestamp, Failure>,
    ) -> impl Future<Output = Result<(), Failure>> + Send + 'a {
        let id = self.next_id(name);
        let name = name.to_string();
        async move {
            let id = id?;
            let mut rec = match self.lookup(&id, StepKind::Sleep) {
                None => halt().await,
                Some(Lookup::Found(rec)) if rec.status == StepStatus::Completed => return Ok(()),
                Some(Lookup::Found(rec)) => *rec,
                Some(Lookup::New) => {
                    let until = until?;
                    self.await_grant(&id).await;
                    let _exec = ExecGuard::new(&self.inner.state);
                    let mut rec = self.new_record(&id, &name, StepKind::Sleep, StepStatus::Sleeping);
                    rec.wake_at = Some(until);
                    rec.detail = Some(json!({ "until": until }));
                    self.write(&rec, StepEffect::None).await;
                    rec
                }
            };
            self.park(&id, ParkKind::Sleep, rec.wake_at).await;
            self.halt_if_cancelled().await;
            let _exec = ExecGuard::new(&self.inner.state);
            rec.status = StepStatus::Completed;
            rec.output = Some(Value::Null);
            rec.ended_at = Some(self.now());
            self.write(&rec, StepEffect::None).await;
            self.publish(UpdateKind::StepCompleted { step_id: id });
            Ok(())
        }
    }

    /// Waits durably for an event named `event_name` for which `match_expr` holds
    /// (`event` is this run's event, `async` the candidate), for at most `timeout`.
    /// Returns `None` on timeout. Only events sent after the wait began can match.
    pub fn wait_for_event<'a>(
        &'a self,
        name: &str,
        event_name: &str,
        match_expr: Option<&str>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<Event>, Failure>> + Send + 'a {
        let id = self.next_id(name);
        let name = name.to_string();
        let event_name = event_name.trim().to_string();
        let checked = match match_expr.map(|src| Expr::parse(src, &["event", "async"])) {
            Some(Err(e)) => Err(Failure::non_retriable(format!(
                "step '{name}': invalid match expression: {e}"
            ))),
            _ if event_name.is_empty() => Err(Failure::non_retriable(format!(
                "step '{name}': the awaited event name must not be empty"
            ))),
            _ if timeout > MAX_SLEEP => Err(Failure::non_retriable(format!(
                "step '{name}': wait timeout is longer than the limit of one year"
            ))),
            _ => Ok(match_expr.map(str::to_string)),
        };
        async move {
            let id = id?;
            let mut rec = match self.lookup(&id, StepKind::WaitForEvent) {
                None => halt().await,
                Some(Lookup::Found(rec)) if rec.status.is_settled() => return decode_event(&id, rec.output),
                Some(Lookup::Found(rec)) => *rec,
                Some(Lookup::New) => {
                    let expr = checked?;
                    self.await_grant(&id).await;
                    let _exec = ExecGuard::new(&self.inner.state);
                    let expires_at = self.now().plus(timeout);
                    let mut rec = self.new_record(&id, &name, StepKind::WaitForEvent, StepStatus::Waiting);
                    rec.wake_at = Some(expires_at);
                    rec.detail = Some(json!({ "event": event_name, "if": expr, "timeout_at": expires_at }));
                    let wait = NewWait {
                        id: new_ulid(),
                        run_id: self.run_id().clone(),
                        step_id: Some(id.clone()),
                        event_name: event_name.clone(),
                        expr,
                        expires_at: Some(expires_at),
                    };
                    self.write(&rec, StepEffect::RegisterWait(wait)).await;
                    rec
                }
            };
            let settled = self.park(&id, ParkKind::Wait, rec.wake_at).await;
            if settled {
                let out = self
                    .inner
                    .state
                    .lock()
                    .journal
                    .get(&id)
                    .and_then(|r| r.output.clone());
                self.publish(UpdateKind::StepCompleted { step_id: id.clone() });
                return decode_event(&id, out);
            }
            self.halt_if_cancelled().await;
            let _exec = ExecGuard::new(&self.inner.state);
            let env = self.env();
            match env
                .core
                .store
                .settle_wait_timeout(&env.lease, &id, self.now())
                .await
            {
                Ok((RecordAck::LeaseLost, _)) => {
                    self.fail_execution(Fatal::LeaseLost).await;
                    halt().await
                }
                Ok((ack, step)) => {
                    let step = step.unwrap_or_else(|| {
                        rec.status = StepStatus::Completed;
                        rec.output = Some(Value::Null);
                        rec.clone()
                    });
                    let out = step.output.clone();
                    {
                        let mut s = self.inner.state.lock();
                        s.remember(step);
                        if ack == RecordAck::Cancelled {
                            s.cancel(ErrorInfo::new("Cancelled", "the run was cancelled"));
                        }
                    }
                    self.publish(UpdateKind::StepCompleted { step_id: id.clone() });
                    decode_event(&id, out)
                }
                Err(e) => {
                    self.fail_execution(Fatal::Store(e)).await;
                    halt().await
                }
            }
        }
    }

    /// Sends events as a durable step (like Inngest's `step.sendEvent`): they are sent
    /// once, and a replay returns the recorded event ids. Events without an id get one
    /// derived from the run and step, so a send repeated after a crash is deduplicated.
    /// Returns the event ids.
    pub fn send_events<'a>(
        &'a self,
        name: &str,
        events: Vec<EventInput>,
    ) -> impl Future<Output = Result<Vec<String>, Failure>> + Send + 'a {
        let base = format!("{}-{}", self.run_id(), name);
        let events: Vec<EventInput> = events
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                if e.id.is_none() {
                    e.id = Some(format!("{base}-{i}"));
                }
                e
            })
            .collect();
        let core = self.env().core.clone();
        self.run(name, move || {
            let (core, events) = (core.clone(), events.clone());
            async move {
                let receipts = core.send_many(events).await.map_err(|e| match e {
                    crate::error::EngineError::InvalidEvent(_)
                    | crate::error::EngineError::EventTooLarge { .. } => {
                        Failure::non_retriable(e.to_string())
                    }
                    other => Failure::retriable(other.to_string()),
                })?;
                Ok(receipts.into_iter().map(|r| r.event_id).collect::<Vec<String>>())
            }
        })
    }

    /// Invokes function `function_id` with `data` (a JSON object) as a step and
    /// returns its result; its failure comes back as a `StepFailed` failure.
    pub fn invoke<'a, T>(
        &'a self,
        name: &str,
        function_id: &str,
        data: Value,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<T, Failure>> + Send + 'a
    where
        T: DeserializeOwned + Send + 'a,
    {
        let id = self.next_id(name);
        let name = name.to_string();
        let function_id = function_id.to_string();
        async move {
            let id = id?;
            let rec = match self.lookup(&id, StepKind::Invoke) {
                None => halt().await,
                Some(Lookup::Found(rec)) if rec.status.is_settled() => return decode_settled(&id, *rec),
                Some(Lookup::Found(rec)) => *rec,
                Some(Lookup::New) => {
                    self.await_grant(&id).await;
                    let _exec = ExecGuard::new(&self.inner.state);
                    self.start_invoke(&id, &name, &function_id, data, timeout).await?
                }
            };
            let settled = self.park(&id, ParkKind::Invoke, rec.wake_at).await;
            if settled {
                let rec = self.inner.state.lock().journal.get(&id).cloned();
                if let Some(rec) = rec.filter(|r| r.status.is_settled()) {
                    return decode_settled(&id, rec);
                }
            }
            self.halt_if_cancelled().await;
            let _exec = ExecGuard::new(&self.inner.state);
            let mut rec = rec;
            let err = ErrorInfo::new(
                "Timeout",
                format!("invoked function '{function_id}' did not finish before the timeout"),
            );
            rec.status = StepStatus::Failed;
            rec.error = Some(err.clone());
            rec.ended_at = Some(self.now());
            self.write(&rec, StepEffect::None).await;
            Err(Failure::step_failed(&id, &err))
        }
    }

    async fn start_invoke(
        &self,
        id: &str,
        name: &str,
        function_id: &str,
        data: Value,
        timeout: Option<Duration>,
    ) -> Result<StepRecord, Failure> {
        let env = self.env();
        let now = self.now();
        let mut rec = self.new_record(id, name, StepKind::Invoke, StepStatus::Invoking);
        let problem = if !data.is_object() {
            Some(format!(
                "invoke data must be a JSON object, got {}",
                json_type(&data)
            ))
        } else if timeout.is_some_and(|t| t > MAX_SLEEP) {
            Some("invoke timeout is longer than the limit of one year".to_string())
        } else {
            None
        };
        let function = env.core.function(function_id);
        let (Some(function), None) = (function, problem.clone()) else {
            let msg = problem.unwrap_or_else(|| format!("unknown function id '{function_id}'"));
            let err = ErrorInfo::new("InvalidInvoke", msg);
            rec.status = StepStatus::Failed;
            rec.error = Some(err.clone());
            rec.ended_at = Some(now);
            self.write(&rec, StepEffect::None).await;
            return Err(Failure::step_failed(id, &err));
        };
        let event = Event {
            id: new_ulid(),
            name: INVOKED_EVENT.to_string(),
            data,
            user: env.event.user.clone(),
            ts: now,
        };
        let mut child = env.core.new_run(&function, &event, now);
        child.parent = Some(ParentRef {
            run_id: env.run.id.clone(),
            step_id: id.to_string(),
        });
        child.idempotency_key = None;
        rec.wake_at = timeout.map(|t| now.plus(t));
        rec.detail = Some(json!({ "function_id": function_id, "run_id": child.id }));
        let child_id = child.id.clone();
        self.write(
            &rec,
            StepEffect::StartChild {
                event: Box::new(event),
                run: Box::new(child),
            },
        )
        .await;
        env.core.publish(&child_id, function_id, UpdateKind::Queued);
        env.core.wake_dispatcher();
        Ok(rec)
    }
}

fn decode_event(id: &str, out: Option<Value>) -> Result<Option<Event>, Failure> {
    match out {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| Failure::non_retriable(format!("step '{id}': recorded event is malformed: {e}"))),
    }
}

fn decode_settled<T: DeserializeOwned>(id: &str, rec: StepRecord) -> Result<T, Failure> {
    if rec.status == StepStatus::Failed {
        let err = rec.error.unwrap_or_else(|| ErrorInfo::new("Error", "failed"));
        return Err(Failure::step_failed(id, &err));
    }
    serde_json::from_value(rec.output.unwrap_or(Value::Null)).map_err(|e| {
        Failure::non_retriable(format!(
            "step '{id}': the recorded result does not fit the type the code expects: {e}"
        ))
    })
}
