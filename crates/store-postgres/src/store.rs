//! [`PostgresStore`]: the engine's store on PostgreSQL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use learnflow_engine::event::Event;
use learnflow_engine::failure::ErrorInfo;
use learnflow_engine::ids::{NodeId, RunId};
use learnflow_engine::run::{ReplayFrom, RunDetail, RunFilter, RunPage, RunStatus};
use learnflow_engine::schedule::concurrency::SlotRequest;
use learnflow_engine::step::StepRecord;
use learnflow_engine::store::{
    AppendEvent, AppendOutcome, CancelResult, CancelledRun, ClaimBatch, EventStore, FinishOutcome, FlowStore,
    JournalStore, Lease, LeaseStore, NodeInfo, RecordAck, ReplayOutcome, RunOutcome, RunStore, SlotStore,
    StepEffect, Store, StoreError, StoreErrorKind, SuspendOutcome, TimerStore, WaitResolution, WaitStore,
};
use learnflow_engine::Timestamp;
use parking_lot::Mutex;

use crate::fail::Fail;
use crate::pool::{FailureKind, PgPool, Tx};
use crate::schema::SchemaError;

/// The store on PostgreSQL, for one node or several sharing the database.
///
/// Runs are claimed with `FOR UPDATE SKIP LOCKED` and leased to the claiming node;
/// every lease-holding write locks the run's row and checks the lease in the same
/// transaction. Event-id dedupe, idempotency keys, throttles and concurrency slots are
/// serialised with advisory locks, so their limits hold for all nodes together.
/// Transient failures (a restarting server) are retried by the [`PgPool`]; a claim
/// whose commit had an unknown outcome is queued again on the next claim.
pub struct PostgresStore {
    pool: PgPool,
    claims: AtomicU64,
    lost_claims: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn schema_error(e: SchemaError) -> StoreError {
    let kind = match &e {
        SchemaError::Db(_) => StoreErrorKind::Unavailable,
        SchemaError::NoVector | SchemaError::TooNew { .. } => StoreErrorKind::Incompatible,
    };
    StoreError::new(kind, e.to_string())
}

impl PostgresStore {
    /// Connects to `url` with a pool of `pool_size` connections and migrates the
    /// engine's tables.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let pool = PgPool::new(url, pool_size)
            .map_err(|e| StoreError::new(StoreErrorKind::Unavailable, e.to_string()))?;
        Self::open(pool).await
    }

    /// The store on an existing pool; migrates the engine's tables.
    pub async fn open(pool: PgPool) -> Result<Self, StoreError> {
        crate::schema::migrate(&pool).await.map_err(schema_error)?;
        Ok(PostgresStore {
            pool,
            claims: AtomicU64::new(0),
            lost_claims: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The connection pool (shared with the library and the server's tables).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One transaction; a failure of its commit is reported as such.
    async fn tx<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnMut(&mut Tx<'_>) -> Result<R, Fail> + Send + 'static,
    {
        self.pool.tx(f).await.map_err(StoreError::from)
    }

    /// One transaction that is safe to apply twice (a read, an idempotent update):
    /// a commit with an unknown outcome is simply tried again.
    async fn tx_again<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnMut(&mut Tx<'_>) -> Result<R, Fail> + Send + Clone + 'static,
    {
        let mut tries = 0;
        loop {
            match self.pool.tx(f.clone()).await {
                Err(Fail::Pg(p)) if p.kind == FailureKind::Ambiguous && tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other.map_err(StoreError::from),
            }
        }
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append_events(
        &self,
        batch: Vec<AppendEvent>,
        now: Timestamp,
        dedupe_window: Duration,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        self.tx(move |tx| crate::events::append_events(tx, &batch, now, dedupe_window))
            .await
    }

    async fn batch_events(&self, run: &RunId) -> Result<Vec<Event>, StoreError> {
        let run = run.as_str().to_string();
        self.tx_again(move |tx| crate::flow::batch_events(tx, &run)).await
    }
}

#[async_trait]
impl RunStore for PostgresStore {
    async fn get_run(&self, id: &RunId) -> Result<Option<RunDetail>, StoreError> {
        let id = id.clone();
        self.tx_again(move |tx| crate::runs::get_run(tx, &id)).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        let filter = filter.clone();
        self.tx_again(move |tx| crate::runs::list_runs(tx, &filter)).await
    }

    async fn count_runs(&self, filter: &RunFilter) -> Result<Vec<(RunStatus, u64)>, StoreError> {
        let filter = filter.clone();
        self.tx_again(move |tx| crate::runs::count_runs(tx, &filter))
            .await
    }

    async fn suspend_run(
        &self,
        lease: &Lease,
        status: RunStatus,
        wake_at: Option<Timestamp>,
        watched: &[String],
        _now: Timestamp,
    ) -> Result<SuspendOutcome, StoreError> {
        let (lease, watched) = (lease.clone(), watched.to_vec());
        self.tx(move |tx| crate::runs::suspend_run(tx, &lease, status, wake_at, &watched))
            .await
    }

    async fn retry_run(
        &self,
        lease: &Lease,
        attempt: u32,
        at: Timestamp,
        error: &ErrorInfo,
        _now: Timestamp,
    ) -> Result<RecordAck, StoreError> {
        let (lease, error) = (lease.clone(), error.clone());
        self.tx(move |tx| crate::runs::retry_run(tx, &lease, attempt, at, &error))
            .await
    }

    async fn finish_run(
        &self,
        lease: &Lease,
        outcome: RunOutcome,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let lease = lease.clone();
        self.tx(move |tx| crate::runs::finish_run(tx, &lease, &outcome, now))
            .await
    }

    async fn cancel_run(
        &self,
        id: &RunId,
        reason: &ErrorInfo,
        now: Timestamp,
    ) -> Result<CancelResult, StoreError> {
        let (id, reason) = (id.clone(), reason.clone());
        self.tx(move |tx| crate::runs::cancel_run(tx, &id, &reason, now))
            .await
    }

    async fn release_run(&self, lease: &Lease, now: Timestamp) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.tx_again(move |tx| crate::runs::release_run(tx, &lease, now))
            .await
    }

    async fn create_replay(
        &self,
        source: &RunId,
        new_id: RunId,
        from: ReplayFrom,
        now: Timestamp,
    ) -> Result<ReplayOutcome, StoreError> {
        let source = source.clone();
        self.tx(move |tx| crate::runs::create_replay(tx, &source, &new_id, from, now))
            .await
    }
}

#[async_trait]
impl JournalStore for PostgresStore {
    async fn record_step(
        &self,
        lease: &Lease,
        step: &StepRecord,
        effect: StepEffect,
        now: Timestamp,
    ) -> Result<RecordAck, StoreError> {
        let (lease, step) = (lease.clone(), step.clone());
        if matches!(effect, StepEffect::None) {
            // The common case, in one round trip; safe to apply again when the first
            // try's outcome is unknown.
            let mut tries = 0;
            loop {
                let (lease, step) = (lease.clone(), step.clone());
                match self
                    .pool
                    .statement(move |tx| crate::journal::record_step_alone(tx, &lease, &step))
                    .await
                {
                    Err(Fail::Pg(p)) if p.kind == FailureKind::Ambiguous && tries < 5 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => return other.map_err(StoreError::from),
                }
            }
        }
        self.tx(move |tx| crate::journal::record_step(tx, &lease, &step, &effect, now))
            .await
    }

    async fn settle_wait_timeout(
        &self,
        lease: &Lease,
        step_id: &str,
        now: Timestamp,
    ) -> Result<(RecordAck, Option<StepRecord>), StoreError> {
        let (lease, step_id) = (lease.clone(), step_id.to_string());
        self.tx(move |tx| crate::journal::settle_wait_timeout(tx, &lease, &step_id, now))
            .await
    }

    async fn load_journal(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        let id = run_id.clone();
        self.tx_again(move |tx| match crate::rows::run_by_id(tx, &id)? {
            Some(run) => crate::rows::steps_of(tx, run.seq),
            None => Ok(Vec::new()),
        })
        .await
    }
}

#[async_trait]
impl TimerStore for PostgresStore {
    async fn claim_due(
        &self,
        node: &NodeId,
        function_ids: &[String],
        now: Timestamp,
        limit: usize,
        lease_ttl_ms: i64,
    ) -> Result<ClaimBatch, StoreError> {
        let (node, functions) = (node.clone(), function_ids.to_vec());
        let token = format!("{node}:{}", self.claims.fetch_add(1, Ordering::Relaxed));
        let lost: Vec<String> = self.lost_claims.lock().clone();
        let claim_token = token.clone();
        let result = self
            .pool
            .tx(move |tx| {
                if !lost.is_empty() {
                    crate::timers::release_lost_claims(tx, &node, &lost, now)?;
                }
                crate::timers::claim_due(tx, &node, &functions, now, limit, lease_ttl_ms, &claim_token)
                    .map(|batch| (batch, lost.len()))
            })
            .await;
        match result {
            Ok((batch, released)) => {
                self.lost_claims.lock().drain(..released);
                Ok(batch)
            }
            Err(Fail::Pg(p)) if p.kind == FailureKind::Ambiguous => {
                tracing::warn!("a claim's commit had an unknown outcome; its runs are queued again");
                self.lost_claims.lock().push(token);
                Err(StoreError::from(Fail::Pg(p)))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn expire_deadlines(&self, now: Timestamp) -> Result<Vec<CancelledRun>, StoreError> {
        self.tx(move |tx| crate::timers::expire_deadlines(tx, now)).await
    }
}

#[async_trait]
impl WaitStore for PostgresStore {
    async fn resolve_wait(
        &self,
        wait_id: &str,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<WaitResolution>, StoreError> {
        let (wait_id, event) = (wait_id.to_string(), event.clone());
        self.tx(move |tx| crate::waits::resolve_wait(tx, &wait_id, &event, now))
            .await
    }
}

#[async_trait]
impl FlowStore for PostgresStore {
    async fn throttle_tat(&self, key: &str) -> Result<Option<Timestamp>, StoreError> {
        let key = key.to_string();
        self.tx_again(move |tx| crate::flow::throttle_tat(tx, &key)).await
    }
}

#[async_trait]
impl LeaseStore for PostgresStore {
    async fn register_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        let node = node.clone();
        self.tx_again(move |tx| crate::leases::register_node(tx, &node))
            .await
    }

    async fn heartbeat(&self, node: &NodeId, now: Timestamp, lease_ttl_ms: i64) -> Result<u64, StoreError> {
        let node = node.clone();
        self.tx_again(move |tx| crate::leases::heartbeat(tx, &node, now, lease_ttl_ms))
            .await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        self.tx_again(crate::leases::nodes).await
    }

    async fn release_node(&self, node: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        let node = node.clone();
        self.tx_again(move |tx| crate::leases::release_node(tx, &node, now))
            .await
    }

    async fn reclaim_expired(&self, except: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        let except = except.clone();
        self.tx_again(move |tx| crate::leases::reclaim_expired(tx, &except, now))
            .await
    }
}

#[async_trait]
impl SlotStore for PostgresStore {
    fn shares_slots(&self) -> bool {
        true
    }

    async fn take_slots(
        &self,
        node: &NodeId,
        holder: &str,
        requests: &[SlotRequest],
        now: Timestamp,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut pools = requests
            .iter()
            .map(|r| Ok((crate::slots::pool_key(r)?, i64::from(r.limit.max(1)))))
            .collect::<Result<Vec<_>, Fail>>()
            .map_err(StoreError::from)?;
        pools.sort();
        pools.dedup_by(|a, b| a.0 == b.0);
        let (node, holder) = (node.clone(), holder.to_string());
        // Taking again what the holder already holds succeeds, so a retried commit
        // with an unknown outcome is harmless.
        self.tx_again(move |tx| crate::slots::take_slots(tx, &node, &holder, &pools, now, ttl_ms))
            .await
    }

    async fn give_back_slots(&self, holder: &str) -> Result<(), StoreError> {
        let holder = holder.to_string();
        self.tx_again(move |tx| crate::slots::give_back_slots(tx, &holder))
            .await
    }
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
}
