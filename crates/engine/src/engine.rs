//! [`Engine`]: the public face of the engine: register functions, send events, read,
//! cancel and replay runs, watch progress.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::AbortHandle;

use crate::error::EngineError;
use crate::event::{Event, EventInput, DEDUPE_WINDOW};
use crate::expr::Scope;
use crate::failure::ErrorInfo;
use crate::function::{CompiledFunction, FunctionConfig, FunctionDef};
use crate::ids::{new_ulid, NodeId, RunId};
use crate::run::driver::Driver;
use crate::run::{ReplayFrom, RunDetail, RunFilter, RunPage, RunRecord, RunStatus};
use crate::schedule::concurrency::{ConcurrencyLimiter, SlotKey, SlotRequest, SlotUsage};
use crate::schedule::{dispatcher, throttle};
use crate::step::ctx::{Fatal, RunEnv};
use crate::step::{Ctx, Outcome, MAX_STEP_OUTPUT_BYTES};
use crate::store::{
    AppendEvent, BatchReservation, CancelResult, ClaimedRun, DebounceReservation, Lease, NewRun, NewWait,
    NodeInfo, ParentWake, RecordAck, ReplayOutcome, RunOutcome, SkippedRun, Store, SuspendOutcome,
    ThrottleReservation, WaitResolution,
};
use crate::time::{duration_millis, Clock, SystemClock, Timestamp};
use crate::watch::{RunUpdate, UpdateKind, WATCH_CAPACITY};

/// Tuning knobs. The defaults suit one process on a small machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// Most runs this node executes at once (runs parked on sleeps and waits do not
    /// count; runs waiting for a concurrency slot do).
    pub max_active_runs: usize,
    /// Most runs claimed in one store round trip.
    pub claim_batch: usize,
    /// How long a claim on a run lasts without a heartbeat; after that another node
    /// may take the run over.
    #[serde(with = "crate::duration")]
    pub lease_ttl: Duration,
    /// How often the node renews its leases.
    #[serde(with = "crate::duration")]
    pub heartbeat_interval: Duration,
    /// How often the node looks for due work it was not told about (runs queued by
    /// another process, expired leases, deadlines).
    #[serde(with = "crate::duration")]
    pub poll_interval: Duration,
    /// A run whose next wake-up is this close stays in memory instead of suspending.
    #[serde(with = "crate::duration")]
    pub suspend_grace: Duration,
    /// Window for event-id and idempotency-key dedupe.
    #[serde(with = "crate::duration")]
    pub dedupe_window: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_active_runs: 4096,
            claim_batch: 256,
            lease_ttl: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            suspend_grace: Duration::from_millis(50),
            dedupe_window: DEDUPE_WINDOW,
        }
    }
}

/// What happened to one sent event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// The event id (given or generated).
    pub event_id: String,
    /// The id was already seen within 24 h: nothing was started.
    pub duplicate: bool,
    /// Runs started.
    pub runs: Vec<RunId>,
    /// Functions the event matched that started no run, and why.
    #[serde(skip)]
    pub skipped: Vec<SkippedRun>,
    /// Runs whose `wait_for_event` step this event resumed.
    #[serde(skip)]
    pub resumed: Vec<RunId>,
}

/// A registered function as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionInfo {
    /// Its configuration.
    pub config: FunctionConfig,
    /// Current concurrency use per pool.
    pub concurrency: Vec<SlotUsage>,
}

pub(crate) struct Core {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub node: NodeInfo,
    pub config: EngineConfig,
    registry: RwLock<HashMap<String, Arc<CompiledFunction>>>,
    pub limiter: Arc<ConcurrencyLimiter>,
    pub wake: Notify,
    local: Mutex<HashMap<RunId, Ctx>>,
    tasks: Mutex<HashMap<RunId, AbortHandle>>,
    watch: broadcast::Sender<RunUpdate>,
    pub active: AtomicUsize,
}

impl Core {
    pub fn publish(&self, run_id: &RunId, function_id: &str, kind: UpdateKind) {
        if self.watch.receiver_count() == 0 {
            return;
        }
        let _ = self.watch.send(RunUpdate {
            run_id: run_id.clone(),
            function_id: function_id.to_string(),
            at: self.clock.now(),
            kind,
        });
    }

    pub fn wake_dispatcher(&self) {
        self.wake.notify_one();
    }

    pub fn function(&self, id: &str) -> Option<Arc<CompiledFunction>> {
        self.registry.read().get(id).cloned()
    }

    pub fn function_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.registry.read().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The registered functions with cron schedules.
    pub fn cron_functions(&self) -> Vec<Arc<CompiledFunction>> {
        self.registry
            .read()
            .values()
            .filter(|f| !f.crons.is_empty())
            .cloned()
            .collect()
    }

    /// The run `function` gets for `event`: keys, throttle, deadlines and `cancel_on`
    /// waits evaluated now.
    pub fn new_run(&self, function: &CompiledFunction, event: &Event, now: Timestamp) -> NewRun {
        let value = event.to_expr_value();
        let scope = Scope::new().with("event", &value);
        let id = RunId::generate();
        let fid = &function.config.id;
        let mut run = NewRun::new(id.clone(), fid.clone(), now);
        run.owner = event.owner().map(str::to_string);
        run.idempotency_key = function
            .idempotency
            .as_ref()
            .map(|e| format!("{fid}\u{1f}{}", e.key(&scope)));
        run.throttle = function.throttle.as_ref().map(|(t, key)| ThrottleReservation {
            key: format!(
                "{fid}\u{1f}{}",
                key.as_ref().map(|k| k.key(&scope)).unwrap_or_default()
            ),
            interval_ms: throttle::interval_ms(t.limit, t.period),
            burst: t.burst,
        });
        run.rate_limit = function.rate_limit.as_ref().map(|(r, key)| ThrottleReservation {
            key: format!(
                "{fid}\u{1e}rate\u{1f}{}",
                key.as_ref().map(|k| k.key(&scope)).unwrap_or_default()
            ),
            interval_ms: throttle::interval_ms(r.limit, r.period),
            burst: r.limit,
        });
        run.debounce = function.debounce.as_ref().map(|(d, key)| DebounceReservation {
            key: format!(
                "{fid}\u{1f}{}\u{1f}{}",
                run.owner.as_deref().unwrap_or_default(),
                key.as_ref().map(|k| k.key(&scope)).unwrap_or_default()
            ),
            period_ms: duration_millis(d.period),
            timeout_ms: d.timeout.map(duration_millis),
        });
        run.singleton = function.singleton.as_ref().map(|(mode, key)| {
            (
                format!(
                    "{fid}\u{1f}{}",
                    key.as_ref().map(|k| k.key(&scope)).unwrap_or_default()
                ),
                *mode == crate::function::SingletonMode::Cancel,
            )
        });
        run.batch = function.batch.as_ref().map(|(b, key)| BatchReservation {
            key: format!(
                "{fid}\u{1f}{}\u{1f}{}",
                run.owner.as_deref().unwrap_or_default(),
                key.as_ref().map(|k| k.key(&scope)).unwrap_or_default()
            ),
            max_size: b.max_size,
            timeout_ms: duration_millis(b.timeout),
        });
        if let Some(b) = run.batch.as_ref().filter(|b| b.max_size > 1) {
            run.available_at = now.plus(Duration::from_millis(b.timeout_ms.max(0) as u64));
        }
        if let Some(d) = &run.debounce {
            run.available_at = now.plus(Duration::from_millis(d.period_ms.max(0) as u64));
        }
        let ahead = function.priority_secs(&value);
        if ahead != 0 {
            run.available_at =
                Timestamp::from_millis(now.millis().saturating_sub(ahead.saturating_mul(1000)));
        }
        run.start_deadline = function.config.timeouts.start.map(|d| now.plus(d));
        run.finish_timeout_ms = function.config.timeouts.finish.map(duration_millis);
        run.cancel_waits = function
            .cancel_on
            .iter()
            .zip(&function.config.cancel_on)
            .map(|((name, expr), co)| NewWait {
                id: new_ulid(),
                run_id: id.clone(),
                step_id: None,
                event_name: name.clone(),
                expr: expr.as_ref().map(|e| e.source().to_string()),
                expires_at: co.timeout.map(|t| now.plus(t)),
            })
            .collect();
        run
    }

    fn slot_requests(&self, function: &CompiledFunction, event: &Event) -> Vec<SlotRequest> {
        let value = event.to_expr_value();
        let scope = Scope::new().with("event", &value);
        function
            .concurrency
            .iter()
            .enumerate()
            .map(|(i, (limit, key, shared))| SlotRequest {
                key: SlotKey {
                    function_id: if *shared {
                        crate::function::SHARED_POOL.to_string()
                    } else {
                        function.config.id.clone()
                    },
                    limit_index: if *shared { 0 } else { i },
                    key: key.as_ref().map(|k| k.key(&scope)),
                },
                limit: *limit,
            })
            .collect()
    }

    fn local_run(&self, id: &RunId) -> Option<Ctx> {
        self.local.lock().get(id).cloned()
    }

    /// Passes a step settled by the store to the run if this node executes it, and
    /// wakes the dispatcher if the run was queued.
    pub fn deliver(
        &self,
        run_id: &RunId,
        step: crate::step::StepRecord,
        queued: bool,
        owner: Option<&NodeId>,
    ) {
        if owner == Some(&self.node.id) {
            if let Some(ctx) = self.local_run(run_id) {
                ctx.inner.state.lock().settle_from_outside(step);
            }
        }
        if queued {
            self.wake_dispatcher();
        }
    }

    fn deliver_parent(&self, parent: Option<ParentWake>) {
        if let Some(p) = parent {
            self.deliver(&p.run_id, p.step, p.queued, p.lease_owner.as_ref());
        }
    }

    pub fn after_cancel(
        &self,
        run_id: &RunId,
        function_id: &str,
        owner: Option<&NodeId>,
        reason: &ErrorInfo,
        parent: Option<ParentWake>,
    ) {
        if owner == Some(&self.node.id) {
            if let Some(ctx) = self.local_run(run_id) {
                ctx.inner.state.lock().cancel(reason.clone());
            }
        }
        self.publish(
            run_id,
            function_id,
            UpdateKind::Cancelled {
                reason: reason.clone(),
            },
        );
        self.deliver_parent(parent);
    }

    pub(crate) async fn cancel_run(&self, id: &RunId, reason: ErrorInfo) -> Result<(), EngineError> {
        match self.store.cancel_run(id, &reason, self.clock.now()).await? {
            CancelResult::NotFound => Err(EngineError::RunNotFound(id.to_string())),
            CancelResult::AlreadyEnded(status) => Err(EngineError::InvalidRunState {
                run: id.to_string(),
                status,
                action: "cancel",
            }),
            CancelResult::Cancelled {
                function_id,
                lease_owner,
                parent,
                ..
            } => {
                self.after_cancel(
                    id,
                    &function_id,
                    lease_owner.as_ref(),
                    &reason,
                    parent.map(|p| *p),
                );
                Ok(())
            }
        }
    }

    /// Sends several events in one store transaction. All are checked first: one bad
    /// event sends none.
    pub(crate) async fn send_many(&self, inputs: Vec<EventInput>) -> Result<Vec<SendReceipt>, EngineError> {
        let core = self;
        let now = core.clock.now();
        let many = inputs.len() > 1;
        let events = inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| {
                input.into_event(now).map_err(|e| match e {
                    EngineError::InvalidEvent(msg) if many => {
                        EngineError::InvalidEvent(format!("event #{i}: {msg}"))
                    }
                    other => other,
                })
            })
            .collect::<Result<Vec<Event>, EngineError>>()?;
        let functions: Vec<Arc<CompiledFunction>> = core.registry.read().values().cloned().collect();
        let batch: Vec<AppendEvent> = events
            .iter()
            .map(|event| {
                let value = event.to_expr_value();
                AppendEvent {
                    event: event.clone(),
                    runs: functions
                        .iter()
                        .filter(|f| f.is_triggered_by(event, &value))
                        .map(|f| core.new_run(f, event, now))
                        .collect(),
                }
            })
            .collect();
        let outcomes = core.append(batch, now).await?;
        let mut receipts = Vec::with_capacity(outcomes.len());
        for (event, out) in events.iter().zip(outcomes) {
            let mut resumed = Vec::new();
            if !out.waits.is_empty() {
                let incoming = event.to_expr_value();
                for cand in out.waits {
                    resumed.extend(core.offer_to_wait(event, &incoming, cand).await?);
                }
            }
            receipts.push(SendReceipt {
                event_id: out.event_id,
                duplicate: out.duplicate,
                runs: out.created,
                skipped: out.skipped,
                resumed,
            });
        }
        Ok(receipts)
    }

    /// Appends events with their runs, then announces the runs created, cancels the
    /// singleton runs they replace and wakes the dispatcher.
    pub(crate) async fn append(
        &self,
        batch: Vec<AppendEvent>,
        now: Timestamp,
    ) -> Result<Vec<crate::store::AppendOutcome>, EngineError> {
        let function_of: HashMap<RunId, String> = batch
            .iter()
            .flat_map(|a| a.runs.iter().map(|r| (r.id.clone(), r.function_id.clone())))
            .collect();
        let outcomes = self
            .store
            .append_events(batch, now, self.config.dedupe_window)
            .await?;
        let mut started = false;
        for out in &outcomes {
            for id in &out.created {
                started = true;
                let f = function_of.get(id).map(String::as_str).unwrap_or_default();
                self.publish(id, f, UpdateKind::Queued);
            }
            for old in &out.superseded {
                let reason = ErrorInfo::new(
                    "Cancelled",
                    format!("replaced by a run for event {} (singleton)", out.event_id),
                );
                match self.cancel_run(old, reason).await {
                    Ok(()) | Err(EngineError::InvalidRunState { .. }) | Err(EngineError::RunNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if started {
            self.wake_dispatcher();
        }
        Ok(outcomes)
    }

    async fn offer_to_wait(
        &self,
        event: &Event,
        incoming: &serde_json::Value,
        cand: crate::store::WaitCandidate,
    ) -> Result<Option<RunId>, EngineError> {
        let core = self;
        let own = cand.run_event.to_expr_value();
        let scope = Scope::new().with("event", &own).with("async", incoming);
        let matched = match &cand.wait.expr {
            None => true,
            Some(src) => match crate::expr::Expr::parse(src, &["event", "async"]) {
                Ok(e) => e.matches(&scope),
                Err(e) => {
                    tracing::warn!(wait = %cand.wait.id, "stored wait expression no longer parses: {e}");
                    false
                }
            },
        };
        if !matched {
            return Ok(None);
        }
        // A cancel_on window that has closed.
        if cand.wait.step_id.is_none() && cand.wait.expires_at.is_some_and(|t| t < self.clock.now()) {
            return Ok(None);
        }
        match &cand.wait.step_id {
            None => {
                let reason = ErrorInfo::new(
                    "Cancelled",
                    format!("cancelled by event '{}' (id {})", event.name, event.id),
                );
                match core.cancel_run(&cand.wait.run_id, reason).await {
                    Ok(()) | Err(EngineError::InvalidRunState { .. }) | Err(EngineError::RunNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Some(_) => {
                if let Some(WaitResolution {
                    run_id,
                    step,
                    queued,
                    lease_owner,
                }) = core
                    .store
                    .resolve_wait(&cand.wait.id, event, core.clock.now())
                    .await?
                {
                    core.deliver(&run_id, step, queued, lease_owner.as_ref());
                    return Ok(Some(run_id));
                }
            }
        }
        Ok(None)
    }

    /// Starts executing a claimed run on this node. The returned receiver fires once
    /// the run's code has been polled for the first time, so its first steps have
    /// asked for their concurrency slots: the dispatcher waits for it to start runs of
    /// limited functions strictly in order.
    pub fn spawn_run(self: &Arc<Self>, claimed: ClaimedRun) -> tokio::sync::oneshot::Receiver<()> {
        self.active.fetch_add(1, Ordering::SeqCst);
        let run_id = claimed.run.id.clone();
        let core = self.clone();
        let (first_poll, polled) = tokio::sync::oneshot::channel();
        let mut tasks = self.tasks.lock();
        let handle = tokio::spawn(async move {
            let id = claimed.run.id.clone();
            execute_run(core.clone(), claimed, first_poll).await;
            core.tasks.lock().remove(&id);
            core.active.fetch_sub(1, Ordering::SeqCst);
            core.wake_dispatcher();
        });
        tasks.insert(run_id, handle.abort_handle());
        polled
    }

    /// Whether the function has concurrency limits (its runs start in order).
    pub fn is_limited(&self, function_id: &str) -> bool {
        self.function(function_id)
            .is_some_and(|f| !f.concurrency.is_empty())
    }
}

/// Executes one claimed run until it ends, suspends or stops on this node.
async fn execute_run(core: Arc<Core>, claimed: ClaimedRun, first_poll: tokio::sync::oneshot::Sender<()>) {
    let mut first_poll = Some(first_poll);
    let run = claimed.run;
    let lease = Lease {
        run_id: run.id.clone(),
        run_seq: run.seq,
        node: core.node.id.clone(),
    };
    let Some(function) = core.function(&run.function_id) else {
        drop(first_poll);
        let err = ErrorInfo::new(
            "UnknownFunction",
            format!("function '{}' is not registered", run.function_id),
        );
        finish(&core, &lease, &run, RunOutcome::Failed(err)).await;
        return;
    };
    core.publish(&run.id, &run.function_id, UpdateKind::Started);
    let slots = core.slot_requests(&function, &claimed.event);
    let mut journal = claimed.journal;
    loop {
        let env = RunEnv {
            core: core.clone(),
            lease: lease.clone(),
            run: run.clone(),
            event: claimed.event.clone(),
            retries: function.config.retries,
            backoff: function.config.backoff.clone(),
            slots: slots.clone(),
            slot_score: function.slot_score(run.created_at, &claimed.event),
        };
        let ctx = Ctx::new(env, journal);
        core.local.lock().insert(run.id.clone(), ctx.clone());
        let code = function.handler.call(ctx.clone());
        let mut driver = std::pin::pin!(Driver::new(
            code,
            ctx,
            core.clock.clone(),
            core.config.suspend_grace
        ));
        let outcome = match std::future::poll_fn(|cx| Poll::Ready(driver.as_mut().poll(cx))).await {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => {
                if let Some(tx) = first_poll.take() {
                    let _ = tx.send(());
                }
                driver.await
            }
        };
        if let Some(tx) = first_poll.take() {
            let _ = tx.send(());
        }
        core.local.lock().remove(&run.id);
        let now = core.clock.now();
        match outcome {
            Outcome::Returned(Ok(output)) => {
                let size = serde_json::to_vec(&output).map(|b| b.len()).unwrap_or(0);
                let outcome = if size > MAX_STEP_OUTPUT_BYTES {
                    RunOutcome::Failed(ErrorInfo::new(
                        "OutputTooLarge",
                        format!("the function returned {size} bytes; the limit is {MAX_STEP_OUTPUT_BYTES}"),
                    ))
                } else {
                    RunOutcome::Completed(output)
                };
                finish(&core, &lease, &run, outcome).await;
            }
            Outcome::Returned(Err(failure)) => {
                let retry_fn =
                    failure.is_retriable() && failure.step.is_none() && run.attempt < function.config.retries;
                if retry_fn {
                    let next_at =
                        function
                            .config
                            .backoff
                            .next_attempt_at(run.attempt + 1, now, failure.retry);
                    let info = failure.to_info();
                    match core
                        .store
                        .retry_run(&lease, run.attempt + 1, next_at, &info, now)
                        .await
                    {
                        Ok(RecordAck::Recorded) => {
                            core.publish(
                                &run.id,
                                &run.function_id,
                                UpdateKind::Retrying { error: info, next_at },
                            );
                            core.wake_dispatcher();
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(run = %run.id, "could not queue the run for retry: {e}"),
                    }
                } else {
                    finish(&core, &lease, &run, RunOutcome::Failed(failure.to_info())).await;
                }
            }
            Outcome::Suspend {
                status,
                wake_at,
                watched,
            } => {
                match core
                    .store
                    .suspend_run(&lease, status, wake_at, &watched, now)
                    .await
                {
                    Ok(SuspendOutcome::Suspended) => {
                        let kind = if status == RunStatus::Waiting {
                            UpdateKind::Waiting { until: wake_at }
                        } else {
                            UpdateKind::Sleeping { until: wake_at }
                        };
                        core.publish(&run.id, &run.function_id, kind);
                        core.wake_dispatcher();
                    }
                    Ok(SuspendOutcome::Woken) => match core.store.load_journal(&run.id).await {
                        Ok(j) => {
                            journal = j;
                            continue;
                        }
                        Err(e) => {
                            tracing::error!(run = %run.id, "could not reload the journal: {e}");
                            release(&core, &lease).await;
                        }
                    },
                    Ok(SuspendOutcome::Cancelled | SuspendOutcome::LeaseLost) => {}
                    Err(e) => {
                        tracing::error!(run = %run.id, "could not suspend the run: {e}");
                        release(&core, &lease).await;
                    }
                }
            }
            Outcome::Cancelled => {}
            Outcome::Fatal(Fatal::NonDeterminism(msg)) => {
                tracing::warn!(run = %run.id, "non-determinism: {msg}");
                finish(
                    &core,
                    &lease,
                    &run,
                    RunOutcome::Failed(ErrorInfo::new("NonDeterminism", msg)),
                )
                .await;
            }
            Outcome::Fatal(Fatal::LeaseLost) => {
                tracing::warn!(run = %run.id, "lost the lease on the run; another node has it now");
            }
            Outcome::Fatal(Fatal::Store(e)) => {
                tracing::error!(run = %run.id, "store failure while executing: {e}");
                release(&core, &lease).await;
            }
        }
        break;
    }
}

async fn finish(core: &Arc<Core>, lease: &Lease, run: &RunRecord, outcome: RunOutcome) {
    let update = match &outcome {
        RunOutcome::Completed(v) => UpdateKind::Completed { output: v.clone() },
        RunOutcome::Failed(e) => UpdateKind::Failed { error: e.clone() },
    };
    match core.store.finish_run(lease, outcome, core.clock.now()).await {
        Ok(out) => {
            if out.ack == RecordAck::Recorded {
                core.publish(&run.id, &run.function_id, update);
            }
            core.deliver_parent(out.parent);
        }
        Err(e) => {
            tracing::error!(run = %run.id, "could not record the run's end: {e}");
            release(core, lease).await;
        }
    }
}

async fn release(core: &Arc<Core>, lease: &Lease) {
    if let Err(e) = core.store.release_run(lease, core.clock.now()).await {
        tracing::error!(run = %lease.run_id, "could not release the run: {e}");
    }
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
}

impl EngineBuilder {
    /// Uses this clock (a [`crate::time::TestClock`] in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses this configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The engine (register functions, then [`Engine::start`]).
    pub fn build(self) -> Engine {
        let (watch, _) = broadcast::channel(WATCH_CAPACITY);
        let node = crate::node::current_node(self.clock.now());
        Engine {
            core: Arc::new(Core {
                store: self.store,
                clock: self.clock,
                node,
                config: self.config,
                registry: RwLock::new(HashMap::new()),
                limiter: ConcurrencyLimiter::new(),
                wake: Notify::new(),
                local: Mutex::new(HashMap::new()),
                tasks: Mutex::new(HashMap::new()),
                watch,
                active: AtomicUsize::new(0),
            }),
            background: Mutex::new(None),
        }
    }
}

struct Background {
    stop: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

/// The durable execution engine of one process (a node).
pub struct Engine {
    core: Arc<Core>,
    background: Mutex<Option<Background>>,
}

impl Engine {
    /// Starts building an engine on a store.
    pub fn builder(store: Arc<dyn Store>) -> EngineBuilder {
        EngineBuilder {
            store,
            clock: Arc::new(SystemClock),
            config: EngineConfig::default(),
        }
    }

    /// Registers (or replaces) a function. Its options are checked and its
    /// expressions parsed now; an error names the option and the column.
    pub fn register(&self, def: FunctionDef) -> Result<(), EngineError> {
        let compiled = CompiledFunction::compile(def)?;
        let id = compiled.config.id.clone();
        self.core.registry.write().insert(id, Arc::new(compiled));
        self.core.wake_dispatcher();
        Ok(())
    }

    /// Registers several functions, all or none: every definition is checked before
    /// any is registered.
    pub fn register_all(&self, defs: Vec<FunctionDef>) -> Result<(), EngineError> {
        let compiled = defs
            .into_iter()
            .map(CompiledFunction::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let mut registry = self.core.registry.write();
        for c in compiled {
            registry.insert(c.config.id.clone(), Arc::new(c));
        }
        drop(registry);
        self.core.wake_dispatcher();
        Ok(())
    }

    /// Removes a function: new events no longer start it, and runs of it claimed from
    /// now on fail as `UnknownFunction`. Returns whether it was registered.
    pub fn unregister(&self, id: &str) -> bool {
        self.core.registry.write().remove(id).is_some()
    }

    /// The registered functions with their current concurrency use.
    pub fn functions(&self) -> Vec<FunctionInfo> {
        let usage = self.core.limiter.usage();
        let mut out: Vec<FunctionInfo> = self
            .core
            .registry
            .read()
            .values()
            .map(|f| FunctionInfo {
                config: f.config.clone(),
                concurrency: usage
                    .iter()
                    .filter(|u| u.key.function_id == f.config.id)
                    .cloned()
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.config.id.cmp(&b.config.id));
        out
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.core.node.id
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.core.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.core.clock
    }

    /// Starts executing: records the node, takes over the runs of dead processes on
    /// this host, and starts the dispatcher and the heartbeat.
    pub async fn start(&self) -> Result<(), EngineError> {
        if self.background.lock().is_some() {
            return Ok(());
        }
        let core = &self.core;
        core.store.register_node(&core.node).await?;
        for other in core.store.nodes().await? {
            if other.id != core.node.id && crate::node::is_certainly_dead(&other, &core.node.host) {
                let n = core.store.release_node(&other.id, core.clock.now()).await?;
                tracing::info!(node = %other.id, pid = other.pid, runs = n, "took over the runs of a dead process");
            }
        }
        let (stop, stop_rx) = watch::channel(false);
        let dispatcher = tokio::spawn(dispatcher::run(core.clone(), stop_rx.clone()));
        let crons = tokio::spawn(crate::schedule::cron::run(core.clone(), stop_rx.clone()));
        let heartbeat = tokio::spawn(dispatcher::heartbeat(core.clone(), stop_rx));
        *self.background.lock() = Some(Background {
            stop,
            handles: vec![dispatcher, heartbeat, crons],
        });
        Ok(())
    }

    /// Stops executing: stops claiming, interrupts the runs in progress (steps not yet
    /// recorded will run again) and hands them back to the store.
    pub async fn shutdown(&self) {
        self.shutdown_gracefully(Duration::ZERO).await;
    }

    /// Stops claiming new work, lets the runs in progress go on for up to `grace`
    /// (they may finish, or park on a sleep or wait), then stops like
    /// [`Engine::shutdown`]. Nothing is lost either way: what did not finish resumes
    /// on the next start or on another node.
    pub async fn shutdown_gracefully(&self, grace: Duration) {
        let bg = self.background.lock().take();
        let Some(bg) = bg else { return };
        let _ = bg.stop.send(true);
        for h in bg.handles {
            let _ = h.await;
        }
        // Leases last `lease_ttl` without heartbeats: a grace period longer than that
        // lets another node take the runs over meanwhile (their writes would then fail).
        let grace = grace.min(self.core.config.lease_ttl / 2);
        let deadline = tokio::time::Instant::now() + grace;
        while self.core.active.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tasks: Vec<AbortHandle> = self.core.tasks.lock().drain().map(|(_, h)| h).collect();
        for t in &tasks {
            t.abort();
        }
        // Let aborted tasks drop their futures before the leases go.
        for _ in 0..100 {
            if self.core.active.load(Ordering::SeqCst) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Err(e) = self
            .core
            .store
            .release_node(&self.core.node.id, self.core.clock.now())
            .await
        {
            tracing::error!("could not release this node's runs: {e}");
        }
    }

    /// Sends one event: records it and starts every function it triggers.
    pub async fn send(&self, event: EventInput) -> Result<SendReceipt, EngineError> {
        let mut receipts = self.send_many(vec![event]).await?;
        receipts
            .pop()
            .ok_or_else(|| EngineError::InvalidEvent("no event".into()))
    }

    /// Sends several events in one store transaction. All are checked first: one bad
    /// event sends none.
    pub async fn send_many(&self, inputs: Vec<EventInput>) -> Result<Vec<SendReceipt>, EngineError> {
        self.core.send_many(inputs).await
    }

    /// A run with its event and step journal.
    pub async fn get_run(&self, id: &RunId) -> Result<RunDetail, EngineError> {
        self.core
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| EngineError::RunNotFound(id.to_string()))
    }

    /// A page of runs, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<RunPage, EngineError> {
        Ok(self.core.store.list_runs(filter).await?)
    }

    /// Run counts per state.
    pub async fn count_runs(&self, filter: &RunFilter) -> Result<Vec<(RunStatus, u64)>, EngineError> {
        Ok(self.core.store.count_runs(filter).await?)
    }

    /// Cancels a run that has not ended; it stops before its next step.
    pub async fn cancel(&self, id: &RunId) -> Result<(), EngineError> {
        self.core
            .cancel_run(id, ErrorInfo::new("Cancelled", "cancelled by request"))
            .await
    }

    /// Replays a failed or cancelled run as a new run with the same event; returns
    /// the new run's id.
    pub async fn replay(&self, id: &RunId, from: ReplayFrom) -> Result<RunId, EngineError> {
        let core = &self.core;
        match core
            .store
            .create_replay(id, RunId::generate(), from, core.clock.now())
            .await?
        {
            ReplayOutcome::Created(run) => {
                core.publish(&run.id, &run.function_id, UpdateKind::Queued);
                core.wake_dispatcher();
                Ok(run.id)
            }
            ReplayOutcome::NotFound => Err(EngineError::RunNotFound(id.to_string())),
            ReplayOutcome::WrongState(status) => Err(EngineError::InvalidRunState {
                run: id.to_string(),
                status,
                action: "replay",
            }),
        }
    }

    /// Live updates of every run.
    pub fn subscribe(&self) -> broadcast::Receiver<RunUpdate> {
        self.core.watch.subscribe()
    }

    /// Waits until the run has ended and returns it.
    pub async fn wait_for_run(&self, id: &RunId) -> Result<RunRecord, EngineError> {
        let mut rx = self.subscribe();
        loop {
            let run = self.get_run(id).await?.run;
            if run.status.is_terminal() {
                return Ok(run);
            }
            let until_update = async {
                loop {
                    match rx.recv().await {
                        Ok(u) if &u.run_id == id && u.kind.is_terminal() => return,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => {
                            futures::future::pending::<()>().await;
                        }
                    }
                }
            };
            // Also look again now and then: another process may finish it.
            let _ = tokio::time::timeout(Duration::from_millis(250), until_update).await;
        }
    }

    /// Current concurrency use per pool.
    pub fn concurrency_usage(&self) -> Vec<SlotUsage> {
        self.core.limiter.usage()
    }

    /// Runs this node is executing now.
    pub fn active_runs(&self) -> usize {
        self.core.active.load(Ordering::SeqCst)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(bg) = self.background.lock().take() {
            let _ = bg.stop.send(true);
            for t in self.core.tasks.lock().drain() {
                t.1.abort();
            }
        }
    }
}
