//! The schema and its migrations, versioned with `PRAGMA user_version`.

use learnflow_engine::store::{StoreError, StoreErrorKind};
use rusqlite::Connection;

use crate::error::map_err;

/// Migrations, in order; the schema version is the number applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    user         TEXT    NOT NULL,
    ts           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX events_by_id ON events(id, received_at);

CREATE TABLE runs (
    seq              INTEGER PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    function_id      TEXT    NOT NULL,
    event_seq        INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    ended_at         INTEGER,
    available_at     INTEGER,
    start_deadline   INTEGER,
    finish_timeout   INTEGER,
    finish_deadline  INTEGER,
    lease_owner      TEXT,
    lease_expires    INTEGER,
    output           TEXT,
    error            TEXT,
    replay_of        TEXT,
    parent_run       TEXT,
    parent_step      TEXT
);
CREATE INDEX runs_due        ON runs(available_at) WHERE available_at IS NOT NULL;
CREATE INDEX runs_start_by   ON runs(start_deadline) WHERE start_deadline IS NOT NULL;
CREATE INDEX runs_finish_by  ON runs(finish_deadline) WHERE finish_deadline IS NOT NULL;
CREATE INDEX runs_leased     ON runs(lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX runs_by_fn      ON runs(function_id, seq);
CREATE INDEX runs_by_status  ON runs(status, seq);
CREATE INDEX runs_by_event   ON runs(event_seq);
CREATE INDEX runs_by_created ON runs(created_at);

CREATE TABLE steps (
    run_seq     INTEGER NOT NULL,
    step_id     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    output      TEXT,
    error       TEXT,
    attempts    TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    wake_at     INTEGER,
    detail      TEXT
);
CREATE UNIQUE INDEX steps_by_run ON steps(run_seq, step_id);

CREATE TABLE waits (
    id          TEXT    PRIMARY KEY,
    run_seq     INTEGER NOT NULL,
    step_id     TEXT,
    event_name  TEXT    NOT NULL,
    expr        TEXT,
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX waits_by_event ON waits(event_name);
CREATE INDEX waits_by_run   ON waits(run_seq);

CREATE TABLE throttle (
    key  TEXT    PRIMARY KEY,
    tat  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE idempotency (
    key         TEXT    PRIMARY KEY,
    run_id      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE nodes (
    id            TEXT    PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    proc_start    INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // 2: runs belong to a user (the event's user.id) so reads can be scoped.
    r#"
ALTER TABLE runs ADD COLUMN owner TEXT;
UPDATE runs SET owner = (SELECT json_extract(user, '$.id') FROM events WHERE events.seq = runs.event_seq);
CREATE INDEX runs_by_owner ON runs(owner, seq);
"#,
    // 3: debounced functions: each key's run that is still waiting to start.
    r#"
CREATE TABLE debounce (
    key      TEXT    PRIMARY KEY,
    run_seq  INTEGER NOT NULL,
    first_at INTEGER NOT NULL
);
"#,
    // 4: singleton functions: each key's latest run.
    r#"
CREATE TABLE singleton (
    key     TEXT    PRIMARY KEY,
    run_seq INTEGER NOT NULL
);
"#,
    // 5: batched functions: each key's open batch, and the events of every batch.
    r#"
CREATE TABLE batches (
    key     TEXT    PRIMARY KEY,
    run_seq INTEGER NOT NULL,
    size    INTEGER NOT NULL
);
CREATE TABLE batch_events (
    run_seq   INTEGER NOT NULL,
    ord       INTEGER NOT NULL,
    event_seq INTEGER NOT NULL,
    PRIMARY KEY (run_seq, ord)
);
"#,
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`]; refuses a newer one.
pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(map_err)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::new(
            StoreErrorKind::Incompatible,
            format!(
                "the database has schema version {current}, newer than this binary knows ({SCHEMA_VERSION}); \
                 use a newer learnflow"
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {version}; COMMIT;"
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            map_err(e)
        })?;
        tracing::info!(version, "applied SQLite schema migration");
    }
    Ok(())
}
