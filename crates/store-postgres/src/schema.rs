//! The PostgreSQL schema and its migrations, versioned per component in
//! `learnflow_schema` (the engine's tables here; the library and the server bring
//! their own sets through [`migrate_set`]).

use crate::pool::{OpError, PgFailure, PgPool, Tx};

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The server has no pgvector.
    #[error(
        "this PostgreSQL server has no pgvector extension (needed for vector search); install pgvector \
         (https://github.com/pgvector/pgvector) or use scripts/pg.sh, which runs PostgreSQL 16 with it"
    )]
    NoVector,
    /// The database was migrated by a newer binary.
    #[error(
        "the database has schema version {found} of '{component}', newer than this binary knows ({known}); \
         use a newer learnflow"
    )]
    TooNew {
        /// Which set of tables.
        component: String,
        /// In the database.
        found: i32,
        /// Known here.
        known: i32,
    },
    /// The database failed or could not be reached.
    #[error("{0}")]
    Db(#[from] PgFailure),
}

impl OpError for SchemaError {
    fn failure(&self) -> Option<&PgFailure> {
        match self {
            SchemaError::Db(f) => Some(f),
            _ => None,
        }
    }
}

/// Migrations, in order; the schema version is the number applied. Times are Unix
/// milliseconds (`BIGINT`), JSON is `JSONB`, as in the SQLite store.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

CREATE TABLE events (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    data         JSONB  NOT NULL,
    "user"       JSONB  NOT NULL,
    ts           BIGINT NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX events_by_id ON events(id, received_at);

CREATE TABLE runs (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT   NOT NULL UNIQUE,
    function_id      TEXT   NOT NULL,
    event_seq        BIGINT NOT NULL REFERENCES events(seq),
    status           TEXT   NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    ended_at         BIGINT,
    available_at     BIGINT,
    start_deadline   BIGINT,
    finish_timeout   BIGINT,
    finish_deadline  BIGINT,
    lease_owner      TEXT,
    lease_expires    BIGINT,
    output           JSONB,
    error            JSONB,
    replay_of        TEXT,
    parent_run       TEXT,
    parent_step      TEXT,
    owner            TEXT,
    claim_token      TEXT
);
CREATE INDEX runs_due        ON runs(available_at) WHERE available_at IS NOT NULL;
CREATE INDEX runs_start_by   ON runs(start_deadline) WHERE start_deadline IS NOT NULL;
CREATE INDEX runs_finish_by  ON runs(finish_deadline) WHERE finish_deadline IS NOT NULL;
CREATE INDEX runs_leased     ON runs(lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX runs_by_fn      ON runs(function_id, seq);
CREATE INDEX runs_by_status  ON runs(status, seq);
CREATE INDEX runs_by_event   ON runs(event_seq);
CREATE INDEX runs_by_created ON runs(created_at);
CREATE INDEX runs_by_owner   ON runs(owner, seq);

CREATE TABLE steps (
    run_seq     BIGINT NOT NULL REFERENCES runs(seq),
    step_id     TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    output      JSONB,
    error       JSONB,
    attempts    JSONB  NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    wake_at     BIGINT,
    detail      JSONB,
    pos         BIGSERIAL,
    PRIMARY KEY (run_seq, step_id)
);

CREATE TABLE waits (
    id          TEXT   PRIMARY KEY,
    run_seq     BIGINT NOT NULL REFERENCES runs(seq),
    step_id     TEXT,
    event_name  TEXT   NOT NULL,
    expr        TEXT,
    expires_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX waits_by_event ON waits(event_name);
CREATE INDEX waits_by_run   ON waits(run_seq);

CREATE TABLE throttle (
    key  TEXT   PRIMARY KEY,
    tat  BIGINT NOT NULL
);

CREATE TABLE idempotency (
    key         TEXT   PRIMARY KEY,
    run_id      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE nodes (
    id            TEXT    PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    proc_start    BIGINT  NOT NULL,
    started_at    BIGINT  NOT NULL,
    heartbeat_at  BIGINT  NOT NULL
);

-- Concurrency slots held by executing steps, shared by every node: a step takes one
-- row per pool it needs; rows of a node that stops heartbeating expire.
CREATE TABLE slots (
    pool        TEXT   NOT NULL,
    holder      TEXT   NOT NULL,
    node        TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (pool, holder)
);
CREATE INDEX slots_by_node ON slots(node);
CREATE INDEX slots_by_holder ON slots(holder);
"#,
    // 2: debounced functions: each key's run that is still waiting to start.
    r#"
CREATE TABLE debounce (
    key      TEXT   PRIMARY KEY,
    run_seq  BIGINT NOT NULL,
    first_at BIGINT NOT NULL
);
"#,
    // 3: singleton functions: each key's latest run.
    r#"
CREATE TABLE singleton (
    key     TEXT   PRIMARY KEY,
    run_seq BIGINT NOT NULL
);
"#,
    // 4: batched functions: each key's open batch, and the events of every batch.
    r#"
CREATE TABLE batches (
    key     TEXT   PRIMARY KEY,
    run_seq BIGINT NOT NULL,
    size    INTEGER NOT NULL
);
CREATE TABLE batch_events (
    run_seq   BIGINT  NOT NULL,
    ord       INTEGER NOT NULL,
    event_seq BIGINT  NOT NULL,
    PRIMARY KEY (run_seq, ord)
);
"#,
];

/// The engine's schema version this binary writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// A key for `pg_advisory_xact_lock`: one node migrates at a time.
const MIGRATION_LOCK: i64 = 0x4c46_4d49_4752; // "LFMIGR"

/// Brings the engine's tables (in the connection's `search_path`) up to
/// [`SCHEMA_VERSION`]; refuses a newer schema and a server without pgvector. Safe to
/// call from several nodes at once.
pub async fn migrate(pool: &PgPool) -> Result<i32, SchemaError> {
    let has_vector = pool
        .tx(|tx: &mut Tx<'_>| {
            Ok::<_, SchemaError>(
                tx.query_opt("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'", &[])?
                    .is_some(),
            )
        })
        .await?;
    if !has_vector {
        return Err(SchemaError::NoVector);
    }
    migrate_set(pool, "engine", MIGRATIONS).await
}

/// Brings one component's tables up to `migrations.len()`, each migration once, under
/// an advisory lock; refuses a database whose version of the component is newer.
pub async fn migrate_set(
    pool: &PgPool,
    component: &'static str,
    migrations: &'static [&'static str],
) -> Result<i32, SchemaError> {
    let known = migrations.len() as i32;
    pool.tx(move |tx: &mut Tx<'_>| {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch(
            "CREATE TABLE IF NOT EXISTS learnflow_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
        )?;
        let current: i32 = tx
            .query_opt("SELECT version FROM learnflow_schema WHERE component = $1", &[&component])?
            .map_or(0, |r| r.get(0));
        if current > known {
            return Err(SchemaError::TooNew {
                component: component.to_string(),
                found: current,
                known,
            });
        }
        for (i, statements) in migrations.iter().enumerate().skip(current as usize) {
            tx.batch(statements)?;
            let version = i as i32 + 1;
            tx.execute(
                "INSERT INTO learnflow_schema (component, version) VALUES ($1, $2) \
                 ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                &[&component, &version],
            )?;
            tracing::info!(component, version, "applied PostgreSQL schema migration");
        }
        Ok(known)
    })
    .await
}
