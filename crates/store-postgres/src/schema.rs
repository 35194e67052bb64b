//! The PostgreSQL schema and its migrations, versioned in `learnflow_schema`.

use tokio_postgres::Client;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// No connection.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// The server has no pgvector.
    #[error(
        "this PostgreSQL server has no pgvector extension (needed for vector search); install pgvector \
         (https://github.com/pgvector/pgvector) or use scripts/pg.sh, which runs PostgreSQL 16 with it"
    )]
    NoVector,
    /// The database was migrated by a newer binary.
    #[error("the database has schema version {found}, newer than this binary knows ({known}); use a newer learnflow")]
    TooNew {
        /// In the database.
        found: i32,
        /// Known here.
        known: i32,
    },
    /// A statement failed.
    #[error("PostgreSQL error while migrating: {0}")]
    Sql(String),
}

fn sql(e: tokio_postgres::Error) -> SchemaError {
    SchemaError::Sql(match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    })
}

/// Migrations, in order; the schema version is the number applied. Times are Unix
/// milliseconds (`BIGINT`), JSON is `JSONB`, as in the SQLite store.
const MIGRATIONS: &[&str] = &[r#"
CREATE EXTENSION IF NOT EXISTS vector;

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
    owner            TEXT
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
"#];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// A key for `pg_advisory_xact_lock`: one node migrates at a time.
const MIGRATION_LOCK: i64 = 0x4c46_4d49_4752; // "LFMIGR"

/// Brings the database (the connection's `search_path`) up to [`SCHEMA_VERSION`];
/// refuses a newer schema and a server without pgvector. Safe to call from several
/// nodes at once.
pub async fn migrate(client: &mut Client) -> Result<i32, SchemaError> {
    let has_vector = client
        .query_opt("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'", &[])
        .await
        .map_err(sql)?
        .is_some();
    if !has_vector {
        return Err(SchemaError::NoVector);
    }
    let tx = client.transaction().await.map_err(sql)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(sql)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS learnflow_schema (version INTEGER NOT NULL)")
        .await
        .map_err(sql)?;
    let current: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM learnflow_schema", &[])
        .await
        .map_err(sql)?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(SchemaError::TooNew {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (i, statements) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(statements).await.map_err(sql)?;
        let version = i as i32 + 1;
        tx.execute("DELETE FROM learnflow_schema", &[])
            .await
            .map_err(sql)?;
        tx.execute("INSERT INTO learnflow_schema (version) VALUES ($1)", &[&version])
            .await
            .map_err(sql)?;
        tracing::info!(version, "applied PostgreSQL schema migration");
    }
    tx.commit().await.map_err(sql)?;
    Ok(SCHEMA_VERSION)
}
