//! The server's tables in PostgreSQL, shared by every node (component `server` in
//! `learnflow_schema`).
//!
//! The progress log's `seq` is a `BIGSERIAL`, used as the SSE event id by every node.
//! A sequence hands out numbers when rows are inserted, not when they commit, so two
//! concurrent appends could become visible out of order, and a stream that has read
//! past the later one would never see the earlier. Appends therefore take a
//! transaction lock per document first: a document's entries commit in `seq` order,
//! which is all a stream (one document, `seq > last id`) relies on.

use learnflow_store_postgres::{migrate_set, FailureKind, PgFailure, PgPool, SchemaError, Tx};
use postgres::types::FromSql;
use postgres::Row;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{DbError, NewProgress, ProgressRow, User, Webhook};

/// The server's migrations, in order. Times are Unix milliseconds.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    admin       BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE TABLE api_tokens (
    hash        TEXT    PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users(id),
    created_at  BIGINT  NOT NULL
);
CREATE TABLE webhooks (
    id          TEXT    PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX webhooks_by_user ON webhooks(user_id);
CREATE TABLE progress (
    seq          BIGSERIAL PRIMARY KEY,
    document_id  TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    run_id       TEXT    NOT NULL,
    at           BIGINT  NOT NULL,
    kind         TEXT    NOT NULL,
    body         JSONB   NOT NULL
);
CREATE INDEX progress_by_document ON progress(document_id, seq);
"#,
    // 2: synced Inngest SDK apps (their last register body), re-registered at start.
    r#"
CREATE TABLE inngest_apps (
    url        TEXT   PRIMARY KEY,
    body       TEXT   NOT NULL,
    synced_at  BIGINT NOT NULL
);
"#,
];

/// A key class for `pg_advisory_xact_lock(class, key)`: appends to one document's
/// progress.
const PROGRESS_LOCK: i32 = 0x4c46_5052; // "LFPR"

/// The server's tables on a pool.
#[derive(Clone)]
pub(super) struct PostgresDb {
    pool: PgPool,
}

/// Column `i` of a row, or why it cannot be read.
fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, DbError> {
    row.try_get(i)
        .map_err(|e| DbError::Postgres(PgFailure::new(FailureKind::Other, format!("column {i}: {e}"))))
}

/// The lock key of a document's progress.
fn progress_lock_key(document_id: &str) -> i32 {
    let digest = Sha256::digest(document_id.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

impl PostgresDb {
    pub(super) async fn open(pool: PgPool) -> Result<Self, DbError> {
        migrate_set(&pool, "server", MIGRATIONS)
            .await
            .map_err(|e| match e {
                SchemaError::TooNew { found, known, .. } => DbError::TooNew {
                    found: i64::from(found),
                    known: i64::from(known),
                },
                SchemaError::Db(f) => DbError::Postgres(f),
                other => DbError::Postgres(PgFailure::new(FailureKind::Other, other.to_string())),
            })?;
        Ok(PostgresDb { pool })
    }

    pub(super) async fn insert_user(&self, u: User, hash: String, now: i64) -> Result<(), DbError> {
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                if tx
                    .query_opt("SELECT 1 FROM users WHERE name = $1", &[&u.name])?
                    .is_some()
                {
                    return Err(DbError::name_taken(&u.name));
                }
                // Another node may take the name between the check and the insert.
                tx.execute(
                    "INSERT INTO users (id, name, admin, created_at) VALUES ($1, $2, $3, $4)",
                    &[&u.id, &u.name, &u.admin, &now],
                )
                .map_err(|f| match f.kind {
                    FailureKind::Constraint => DbError::name_taken(&u.name),
                    _ => DbError::Postgres(f),
                })?;
                tx.execute(
                    "INSERT INTO api_tokens (hash, user_id, created_at) VALUES ($1, $2, $3)",
                    &[&hash, &u.id, &now],
                )?;
                Ok(())
            })
            .await
    }

    pub(super) async fn user_count(&self) -> Result<u64, DbError> {
        self.pool
            .tx(|tx: &mut Tx<'_>| {
                let n: i64 = col(&tx.query_one("SELECT count(*) FROM users", &[])?, 0)?;
                Ok(n.max(0) as u64)
            })
            .await
    }

    pub(super) async fn user_by_token_hash(&self, hash: String) -> Result<Option<User>, DbError> {
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                tx.query_opt(
                    "SELECT u.id, u.name, u.admin FROM api_tokens t JOIN users u ON u.id = t.user_id \
                     WHERE t.hash = $1",
                    &[&hash],
                )?
                .map(|r| {
                    Ok(User {
                        id: col(&r, 0)?,
                        name: col(&r, 1)?,
                        admin: col(&r, 2)?,
                    })
                })
                .transpose()
            })
            .await
    }

    pub(super) async fn insert_webhook(&self, h: Webhook) -> Result<(), DbError> {
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                tx.execute(
                    "INSERT INTO webhooks (id, user_id, url, secret, created_at) VALUES ($1, $2, $3, $4, $5)",
                    &[&h.id, &h.user_id, &h.url, &h.secret, &h.created_at],
                )?;
                Ok(())
            })
            .await
    }

    pub(super) async fn webhooks(&self, user_id: String) -> Result<Vec<Webhook>, DbError> {
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                tx.query(
                    "SELECT id, user_id, url, secret, created_at FROM webhooks WHERE user_id = $1 \
                     ORDER BY created_at, id COLLATE \"C\"",
                    &[&user_id],
                )?
                .iter()
                .map(|r| {
                    Ok(Webhook {
                        id: col(r, 0)?,
                        user_id: col(r, 1)?,
                        url: col(r, 2)?,
                        secret: col(r, 3)?,
                        created_at: col(r, 4)?,
                    })
                })
                .collect()
            })
            .await
    }

    pub(super) async fn delete_webhook(&self, user_id: String, id: String) -> Result<bool, DbError> {
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                let n = tx.execute(
                    "DELETE FROM webhooks WHERE id = $1 AND user_id = $2",
                    &[&id, &user_id],
                )?;
                Ok(n > 0)
            })
            .await
    }

    pub(super) async fn append_progress(&self, rows: Vec<NewProgress>) -> Result<Option<i64>, DbError> {
        let mut keys: Vec<i32> = rows.iter().map(|r| progress_lock_key(&r.document_id)).collect();
        // Always in the same order, so appends of several documents cannot deadlock.
        keys.sort_unstable();
        keys.dedup();
        let (mut docs, mut users, mut runs, mut ats, mut kinds, mut bodies) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for r in rows {
            docs.push(r.document_id);
            users.push(r.user_id);
            runs.push(r.run_id);
            ats.push(r.at);
            kinds.push(r.kind);
            bodies.push(r.body);
        }
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                for key in &keys {
                    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&PROGRESS_LOCK, key])?;
                }
                let seqs = tx.query(
                    "INSERT INTO progress (document_id, user_id, run_id, at, kind, body) \
                     SELECT d, u, r, a, k, b \
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::jsonb[]) \
                          WITH ORDINALITY AS x(d, u, r, a, k, b, n) \
                     ORDER BY n \
                     RETURNING seq",
                    &[&docs, &users, &runs, &ats, &kinds, &bodies],
                )?;
                let mut last = None;
                for r in &seqs {
                    last = last.max(Some(col::<i64>(r, 0)?));
                }
                Ok(last)
            })
            .await
    }

    pub(super) async fn progress_after(
        &self,
        document_id: String,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ProgressRow>, DbError> {
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                tx.query(
                    "SELECT seq, document_id, kind, body FROM progress \
                     WHERE document_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&document_id, &after, &i64::from(limit)],
                )?
                .iter()
                .map(|r| {
                    Ok(ProgressRow {
                        seq: col(r, 0)?,
                        document_id: col(r, 1)?,
                        kind: col(r, 2)?,
                        body: col::<Value>(r, 3)?,
                    })
                })
                .collect()
            })
            .await
    }

    pub(super) async fn delete_progress(&self, document_id: String) -> Result<(), DbError> {
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                tx.execute("DELETE FROM progress WHERE document_id = $1", &[&document_id])?;
                Ok(())
            })
            .await
    }

    pub(super) async fn put_inngest_app(&self, url: String, body: String, at: i64) -> Result<(), DbError> {
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                tx.execute(
                    "INSERT INTO inngest_apps (url, body, synced_at) VALUES ($1, $2, $3)
                     ON CONFLICT (url) DO UPDATE SET body = EXCLUDED.body, synced_at = EXCLUDED.synced_at",
                    &[&url, &body, &at],
                )?;
                Ok(())
            })
            .await
    }

    pub(super) async fn inngest_apps(&self) -> Result<Vec<(String, String)>, DbError> {
        self.pool
            .tx(move |tx: &mut Tx<'_>| {
                Ok(tx
                    .query("SELECT url, body FROM inngest_apps ORDER BY synced_at, url", &[])?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect())
            })
            .await
    }
}
