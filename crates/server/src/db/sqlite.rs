//! The server's tables in SQLite: one writer connection and one reader, in WAL mode.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;

use super::{DbError, NewProgress, ProgressRow, User, Webhook};

fn db(e: rusqlite::Error) -> DbError {
    DbError::Sqlite(e.to_string())
}

/// The server's migrations, in order (versioned in `server_schema`).
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    admin       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE api_tokens (
    hash        TEXT    PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL
);
CREATE TABLE webhooks (
    id          TEXT    PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX webhooks_by_user ON webhooks(user_id);
CREATE TABLE progress (
    seq          INTEGER PRIMARY KEY,
    document_id  TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    run_id       TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    body         TEXT    NOT NULL
);
CREATE INDEX progress_by_document ON progress(document_id, seq);
"#,
    // 2: synced Inngest SDK apps (their last register body), re-registered at start.
    r#"
CREATE TABLE inngest_apps (
    url        TEXT    PRIMARY KEY,
    body       TEXT    NOT NULL,
    synced_at  INTEGER NOT NULL
);
"#,
];

/// The server's tables in a SQLite file.
#[derive(Clone)]
pub(super) struct SqliteDb {
    write: Arc<Mutex<Connection>>,
    read: Arc<Mutex<Connection>>,
}

fn open_conn(path: &Path) -> Result<Connection, DbError> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    c.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
    c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(db)?;
    Ok(c)
}

impl SqliteDb {
    pub(super) fn open(path: &Path) -> Result<Self, DbError> {
        let write = open_conn(path)?;
        migrate(&write)?;
        let read = open_conn(path)?;
        Ok(SqliteDb {
            write: Arc::new(Mutex::new(write)),
            read: Arc::new(Mutex::new(read)),
        })
    }

    async fn with_write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let conn = self.write.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock()))
            .await
            .map_err(|e| DbError::Sqlite(format!("database task failed: {e}")))?
    }

    async fn with_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let conn = self.read.clone();
        tokio::task::spawn_blocking(move || f(&conn.lock()))
            .await
            .map_err(|e| DbError::Sqlite(format!("database task failed: {e}")))?
    }

    pub(super) async fn insert_user(&self, u: User, hash: String, now: i64) -> Result<(), DbError> {
        self.with_write(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
            let taken: bool = tx
                .query_row("SELECT 1 FROM users WHERE name = ?1", [&u.name], |_| Ok(()))
                .optional()
                .map_err(db)?
                .is_some();
            if taken {
                return Err(DbError::name_taken(&u.name));
            }
            tx.execute(
                "INSERT INTO users (id, name, admin, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![u.id, u.name, u.admin, now],
            )
            .map_err(db)?;
            tx.execute(
                "INSERT INTO api_tokens (hash, user_id, created_at) VALUES (?1, ?2, ?3)",
                params![hash, u.id, now],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    pub(super) async fn user_count(&self) -> Result<u64, DbError> {
        self.with_read(|c| {
            c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(db)
        })
        .await
    }

    pub(super) async fn user_by_token_hash(&self, hash: String) -> Result<Option<User>, DbError> {
        self.with_read(move |c| {
            c.prepare_cached(
                "SELECT u.id, u.name, u.admin FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
            )
            .and_then(|mut s| {
                s.query_row([hash], |r| {
                    Ok(User {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        admin: r.get(2)?,
                    })
                })
                .optional()
            })
            .map_err(db)
        })
        .await
    }

    pub(super) async fn insert_webhook(&self, h: Webhook) -> Result<(), DbError> {
        self.with_write(move |c| {
            c.execute(
                "INSERT INTO webhooks (id, user_id, url, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![h.id, h.user_id, h.url, h.secret, h.created_at],
            )
            .map(|_| ())
            .map_err(db)
        })
        .await
    }

    pub(super) async fn webhooks(&self, user_id: String) -> Result<Vec<Webhook>, DbError> {
        self.with_read(move |c| {
            c.prepare_cached(
                "SELECT id, user_id, url, secret, created_at FROM webhooks WHERE user_id = ?1 ORDER BY created_at, id",
            )
            .and_then(|mut s| {
                s.query_map([user_id], |r| {
                    Ok(Webhook {
                        id: r.get(0)?,
                        user_id: r.get(1)?,
                        url: r.get(2)?,
                        secret: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })?
                .collect()
            })
            .map_err(db)
        })
        .await
    }

    pub(super) async fn delete_webhook(&self, user_id: String, id: String) -> Result<bool, DbError> {
        self.with_write(move |c| {
            c.execute(
                "DELETE FROM webhooks WHERE id = ?1 AND user_id = ?2",
                params![id, user_id],
            )
            .map(|n| n > 0)
            .map_err(db)
        })
        .await
    }

    pub(super) async fn append_progress(&self, rows: Vec<NewProgress>) -> Result<Option<i64>, DbError> {
        self.with_write(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO progress (document_id, user_id, run_id, at, kind, body)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(db)?;
                for r in &rows {
                    stmt.execute(params![
                        r.document_id,
                        r.user_id,
                        r.run_id,
                        r.at,
                        r.kind,
                        r.body.to_string()
                    ])
                    .map_err(db)?;
                }
            }
            let last = tx.last_insert_rowid();
            tx.commit().map_err(db)?;
            Ok(Some(last))
        })
        .await
    }

    pub(super) async fn progress_after(
        &self,
        document_id: String,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ProgressRow>, DbError> {
        self.with_read(move |c| {
            let rows: Vec<(i64, String, String, String)> = c
                .prepare_cached(
                    "SELECT seq, document_id, kind, body FROM progress
                     WHERE document_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )
                .and_then(|mut s| {
                    s.query_map(params![document_id, after, limit], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect()
                })
                .map_err(db)?;
            Ok(rows
                .into_iter()
                .map(|(seq, document_id, kind, body)| ProgressRow {
                    seq,
                    document_id,
                    kind,
                    body: serde_json::from_str(&body).unwrap_or(Value::Null),
                })
                .collect())
        })
        .await
    }

    pub(super) async fn delete_progress(&self, document_id: String) -> Result<(), DbError> {
        self.with_write(move |c| {
            c.execute("DELETE FROM progress WHERE document_id = ?1", [document_id])
                .map(|_| ())
                .map_err(db)
        })
        .await
    }
}

impl SqliteDb {
    pub(super) async fn put_inngest_app(&self, url: String, body: String, at: i64) -> Result<(), DbError> {
        self.with_write(move |c| {
            c.execute(
                "INSERT INTO inngest_apps (url, body, synced_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(url) DO UPDATE SET body = excluded.body, synced_at = excluded.synced_at",
                rusqlite::params![url, body, at],
            )
            .map(|_| ())
            .map_err(db)
        })
        .await
    }

    pub(super) async fn inngest_apps(&self) -> Result<Vec<(String, String)>, DbError> {
        self.with_write(move |c| {
            let mut st = c
                .prepare("SELECT url, body FROM inngest_apps ORDER BY synced_at, url")
                .map_err(db)?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db);
            rows
        })
        .await
    }
}

fn migrate(c: &Connection) -> Result<(), DbError> {
    c.execute_batch("CREATE TABLE IF NOT EXISTS server_schema (version INTEGER NOT NULL)")
        .map_err(db)?;
    let current: i64 = c
        .query_row("SELECT COALESCE(MAX(version), 0) FROM server_schema", [], |r| {
            r.get(0)
        })
        .map_err(db)?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(DbError::TooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        c.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; DELETE FROM server_schema; INSERT INTO server_schema VALUES ({version}); COMMIT;"
        ))
        .map_err(|e| {
            let _ = c.execute_batch("ROLLBACK");
            db(e)
        })?;
    }
    Ok(())
}
