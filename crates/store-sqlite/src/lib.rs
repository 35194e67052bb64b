//! # learnflow-store-sqlite: the embedded default store
//!
//! [`SqliteStore`] keeps everything the engine persists (events, runs, the step
//! journal, wake-up times, waits, throttle and idempotency state, nodes) in one SQLite
//! file in WAL mode. Its module tree mirrors the engine's `store` trait, table by
//! table.
//!
//! Writes go through one writer thread that commits concurrent operations together
//! (group commit): a step's result is acknowledged only after its transaction has
//! committed, with `synchronous=FULL` by default (an fsync per group), so a result the
//! engine has seen survives a crash of the process or of the machine. Reads use a
//! small pool of separate connections and never wait for the writer.
//!
//! Several processes may open the same file (SQLite serialises their writes); each
//! holds leases on the runs it executes. Concurrency limits are per process with this
//! store.

#![warn(missing_docs)]

mod bench;
mod error;
mod events;
mod flow;
mod journal;
mod leases;
mod readers;
mod rows;
mod runs;
pub mod schema;
mod timers;
mod waits;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use learnflow_engine::event::Event;
use learnflow_engine::failure::ErrorInfo;
use learnflow_engine::ids::{NodeId, RunId};
use learnflow_engine::run::{ReplayFrom, RunDetail, RunFilter, RunPage, RunStatus};
use learnflow_engine::step::StepRecord;
use learnflow_engine::store::{
    AppendEvent, AppendOutcome, CancelResult, CancelledRun, ClaimBatch, EventStore, FinishOutcome, FlowStore,
    JournalStore, Lease, LeaseStore, NodeInfo, RecordAck, ReplayOutcome, RunOutcome, RunStore, SlotStore,
    StepEffect, Store, StoreError, StoreErrorKind, SuspendOutcome, TimerStore, WaitResolution, WaitStore,
};
use learnflow_engine::Timestamp;
use readers::Pool;
use rusqlite::{Connection, OpenFlags};

pub use bench::raw_commit_baseline;
use error::map_err;
use writer::Writer;

/// How hard SQLite works to make a commit durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is fsynced; survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, may lose the last
    /// commits on power loss.
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// Options for opening a store.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Commit durability.
    pub durability: Durability,
    /// Read connections kept open.
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            readers: 4,
        }
    }
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<Pool>,
}

/// Opens a connection with LearnFlow's settings.
pub(crate) fn connect(
    path: &Path,
    durability: Durability,
    read_only: bool,
) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Unavailable,
            format!("cannot open SQLite database {}: {e}", path.display()),
        )
    })?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(map_err)?;
    let pragmas = format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;",
        durability.pragma()
    );
    conn.execute_batch(&pragmas).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens with options.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!("cannot create directory {}: {e}", dir.display()),
                )
            })?;
        }
        let conn = connect(&path, options.durability, false)?;
        schema::migrate(&conn)?;
        let readers = Arc::new(Pool::new(
            path.clone(),
            options.durability,
            options.readers.max(1),
        ));
        Ok(SqliteStore {
            writer: Writer::start(conn),
            readers,
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            let out = f(&conn);
            pool.put(conn);
            out
        })
        .await
        .map_err(|e| StoreError::new(StoreErrorKind::Unavailable, format!("reader task failed: {e}")))?
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append_events(
        &self,
        batch: Vec<AppendEvent>,
        now: Timestamp,
        dedupe_window: Duration,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        self.writer
            .write(move |c| events::append_events(c, batch, now, dedupe_window))
            .await
    }

    async fn batch_events(&self, run: &RunId) -> Result<Vec<Event>, StoreError> {
        let run = run.as_str().to_string();
        self.read(move |c| flow::batch_events(c, &run)).await
    }
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn get_run(&self, id: &RunId) -> Result<Option<RunDetail>, StoreError> {
        let id = id.clone();
        self.read(move |c| runs::get_run(c, &id)).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        let filter = filter.clone();
        self.read(move |c| runs::list_runs(c, &filter)).await
    }

    async fn count_runs(&self, filter: &RunFilter) -> Result<Vec<(RunStatus, u64)>, StoreError> {
        let filter = filter.clone();
        self.read(move |c| runs::count_runs(c, &filter)).await
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
        self.writer
            .write(move |c| runs::suspend_run(c, &lease, status, wake_at, &watched))
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
        self.writer
            .write(move |c| runs::retry_run(c, &lease, attempt, at, &error))
            .await
    }

    async fn finish_run(
        &self,
        lease: &Lease,
        outcome: RunOutcome,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let lease = lease.clone();
        self.writer
            .write(move |c| runs::finish_run(c, &lease, &outcome, now))
            .await
    }

    async fn cancel_run(
        &self,
        id: &RunId,
        reason: &ErrorInfo,
        now: Timestamp,
    ) -> Result<CancelResult, StoreError> {
        let (id, reason) = (id.clone(), reason.clone());
        self.writer
            .write(move |c| runs::cancel_run(c, &id, &reason, now))
            .await
    }

    async fn release_run(&self, lease: &Lease, now: Timestamp) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.writer
            .write(move |c| runs::release_run(c, &lease, now))
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
        self.writer
            .write(move |c| runs::create_replay(c, &source, new_id, from, now))
            .await
    }
}

#[async_trait]
impl JournalStore for SqliteStore {
    async fn record_step(
        &self,
        lease: &Lease,
        step: &StepRecord,
        effect: StepEffect,
        now: Timestamp,
    ) -> Result<RecordAck, StoreError> {
        let (lease, step) = (lease.clone(), step.clone());
        self.writer
            .write(move |c| journal::record_step(c, &lease, &step, effect, now))
            .await
    }

    async fn settle_wait_timeout(
        &self,
        lease: &Lease,
        step_id: &str,
        now: Timestamp,
    ) -> Result<(RecordAck, Option<StepRecord>), StoreError> {
        let (lease, step_id) = (lease.clone(), step_id.to_string());
        self.writer
            .write(move |c| journal::settle_wait_timeout(c, &lease, &step_id, now))
            .await
    }

    async fn load_journal(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        let id = run_id.clone();
        self.read(move |c| match rows::run_by_id(c, &id)? {
            Some(run) => rows::steps_of(c, run.seq),
            None => Ok(Vec::new()),
        })
        .await
    }
}

#[async_trait]
impl TimerStore for SqliteStore {
    async fn claim_due(
        &self,
        node: &NodeId,
        function_ids: &[String],
        now: Timestamp,
        limit: usize,
        lease_ttl_ms: i64,
    ) -> Result<ClaimBatch, StoreError> {
        let (node, functions) = (node.clone(), function_ids.to_vec());
        self.writer
            .write(move |c| timers::claim_due(c, &node, &functions, now, limit, lease_ttl_ms))
            .await
    }

    async fn expire_deadlines(&self, now: Timestamp) -> Result<Vec<CancelledRun>, StoreError> {
        self.writer.write(move |c| timers::expire_deadlines(c, now)).await
    }
}

#[async_trait]
impl WaitStore for SqliteStore {
    async fn resolve_wait(
        &self,
        wait_id: &str,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<WaitResolution>, StoreError> {
        let (wait_id, event) = (wait_id.to_string(), event.clone());
        self.writer
            .write(move |c| waits::resolve_wait(c, &wait_id, &event, now))
            .await
    }
}

#[async_trait]
impl FlowStore for SqliteStore {
    async fn throttle_tat(&self, key: &str) -> Result<Option<Timestamp>, StoreError> {
        let key = key.to_string();
        self.read(move |c| flow::throttle_tat(c, &key)).await
    }
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn register_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        let node = node.clone();
        self.writer.write(move |c| leases::register_node(c, &node)).await
    }

    async fn heartbeat(&self, node: &NodeId, now: Timestamp, lease_ttl_ms: i64) -> Result<u64, StoreError> {
        let node = node.clone();
        self.writer
            .write(move |c| leases::heartbeat(c, &node, now, lease_ttl_ms))
            .await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        self.read(leases::nodes).await
    }

    async fn release_node(&self, node: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        let node = node.clone();
        self.writer
            .write(move |c| leases::release_node(c, &node, now))
            .await
    }

    async fn reclaim_expired(&self, except: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        let except = except.clone();
        self.writer
            .write(move |c| leases::reclaim_expired(c, &except, now))
            .await
    }
}

/// Slots stay in each process's limiter: concurrency limits are per process on SQLite.
impl SlotStore for SqliteStore {}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
