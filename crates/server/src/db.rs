//! What the server keeps besides the engine's runs and the pipeline's library: users
//! and their API tokens (hashed), webhooks, and the progress log that SSE streams
//! read (so a reconnecting client gets what it missed, whichever node ran the step).

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Why the server's database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite said no.
    #[error("server database error: {0}")]
    Sqlite(String),
    /// A name that is taken.
    #[error("{0}")]
    Conflict(String),
    /// The schema is newer than this binary.
    #[error("the server tables have schema version {found}, newer than this binary knows ({known}); use a newer learnflow")]
    TooNew {
        /// In the database.
        found: i64,
        /// Known here.
        known: i64,
    },
}

fn db(e: rusqlite::Error) -> DbError {
    DbError::Sqlite(e.to_string())
}

/// The server's migrations, in order (versioned in `server_schema`).
const MIGRATIONS: &[&str] = &[r#"
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
"#];

/// A user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// Stable id (`usr_…`).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Sees everyone's runs and the functions' concurrency keys.
    pub admin: bool,
}

/// A webhook target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Webhook {
    /// Id (`whk_…`).
    pub id: String,
    /// Owner.
    #[serde(skip)]
    pub user_id: String,
    /// Where deliveries go.
    pub url: String,
    /// HMAC key (shown once, at creation).
    #[serde(skip)]
    pub secret: String,
    /// Created, in Unix milliseconds.
    pub created_at: i64,
}

/// One progress entry of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressRow {
    /// Position in the log (the SSE event id).
    pub seq: i64,
    /// The document.
    pub document_id: String,
    /// What happened (`step.completed`, `completed`, …).
    pub kind: String,
    /// The event body.
    pub body: Value,
}

/// A progress entry to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewProgress {
    /// The document.
    pub document_id: String,
    /// Its owner.
    pub user_id: String,
    /// The run.
    pub run_id: String,
    /// When, in Unix milliseconds.
    pub at: i64,
    /// What happened.
    pub kind: String,
    /// The event body.
    pub body: Value,
}

/// The SHA-256 of a token: what the database keeps (tokens are 256-bit random, so a
/// fast hash is enough; nothing guessable is stored).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (`lf_` + 64 hex digits).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("lf_{}", hex::encode(bytes))
}

fn now_ms() -> i64 {
    learnflow_engine::Timestamp::now_utc().millis()
}

/// The server's tables in a SQLite file (the same file as the store by default).
#[derive(Clone)]
pub struct ServerDb {
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

impl ServerDb {
    /// Opens (and migrates) the server tables in `path`.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let write = open_conn(path)?;
        migrate(&write)?;
        let read = open_conn(path)?;
        Ok(ServerDb {
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

    /// Creates a user and a first token; returns both (the token is not stored).
    pub async fn create_user(&self, name: &str, admin: bool) -> Result<(User, String), DbError> {
        let name = name.trim().to_string();
        if name.is_empty() || name.len() > 100 {
            return Err(DbError::Conflict(
                "a user name must be 1 to 100 characters".into(),
            ));
        }
        let user = User {
            id: format!("usr_{}", ulid::Ulid::new().to_string().to_lowercase()),
            name,
            admin,
        };
        let token = new_token();
        let (u, hash) = (user.clone(), token_hash(&token));
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
                return Err(DbError::Conflict(format!(
                    "a user named '{}' already exists",
                    u.name
                )));
            }
            tx.execute(
                "INSERT INTO users (id, name, admin, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![u.id, u.name, u.admin, now_ms()],
            )
            .map_err(db)?;
            tx.execute(
                "INSERT INTO api_tokens (hash, user_id, created_at) VALUES (?1, ?2, ?3)",
                params![hash, u.id, now_ms()],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await?;
        Ok((user, token))
    }

    /// Number of users.
    pub async fn user_count(&self) -> Result<u64, DbError> {
        self.with_read(|c| {
            c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(db)
        })
        .await
    }

    /// The user a token belongs to.
    pub async fn user_by_token(&self, token: &str) -> Result<Option<User>, DbError> {
        let hash = token_hash(token);
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

    /// Registers a webhook; the secret is generated here.
    pub async fn add_webhook(&self, user_id: &str, url: &str) -> Result<Webhook, DbError> {
        let hook = Webhook {
            id: format!("whk_{}", ulid::Ulid::new().to_string().to_lowercase()),
            user_id: user_id.to_string(),
            url: url.to_string(),
            secret: format!("whsec_{}", hex::encode(rand::random::<[u8; 24]>())),
            created_at: now_ms(),
        };
        let h = hook.clone();
        self.with_write(move |c| {
            c.execute(
                "INSERT INTO webhooks (id, user_id, url, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![h.id, h.user_id, h.url, h.secret, h.created_at],
            )
            .map(|_| ())
            .map_err(db)
        })
        .await?;
        Ok(hook)
    }

    /// A user's webhooks.
    pub async fn webhooks(&self, user_id: &str) -> Result<Vec<Webhook>, DbError> {
        let user_id = user_id.to_string();
        self.with_read(move |c| {
            c.prepare_cached(
                "SELECT id, user_id, url, secret, created_at FROM webhooks WHERE user_id = ?1 ORDER BY created_at",
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

    /// One webhook of a user.
    pub async fn webhook(&self, user_id: &str, id: &str) -> Result<Option<Webhook>, DbError> {
        Ok(self.webhooks(user_id).await?.into_iter().find(|h| h.id == id))
    }

    /// Removes a user's webhook; false when there was none.
    pub async fn delete_webhook(&self, user_id: &str, id: &str) -> Result<bool, DbError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
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

    /// Appends progress entries in one transaction; returns the last seq written.
    pub async fn append_progress(&self, rows: Vec<NewProgress>) -> Result<Option<i64>, DbError> {
        if rows.is_empty() {
            return Ok(None);
        }
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

    /// A document's progress entries after `after`, oldest first.
    pub async fn progress_after(
        &self,
        document_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ProgressRow>, DbError> {
        let document_id = document_id.to_string();
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

    /// Forgets a document's progress.
    pub async fn delete_progress(&self, document_id: &str) -> Result<(), DbError> {
        let document_id = document_id.to_string();
        self.with_write(move |c| {
            c.execute("DELETE FROM progress WHERE document_id = ?1", [document_id])
                .map(|_| ())
                .map_err(db)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_stored_hashed_and_find_their_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let db = ServerDb::open(&path).unwrap();
        let (ada, token) = db.create_user("ada", false).await.unwrap();
        assert_eq!(db.user_by_token(&token).await.unwrap(), Some(ada.clone()));
        assert_eq!(db.user_by_token("lf_wrong").await.unwrap(), None);
        assert!(db.create_user("ada", true).await.is_err(), "names are unique");
        let raw = std::fs::read(&path).unwrap();
        let needle = token.as_bytes();
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "the token itself is not in the database file"
        );
        // Reopening migrates nothing and keeps the data.
        drop(db);
        let db = ServerDb::open(&path).unwrap();
        assert_eq!(db.user_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn progress_reads_after_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let db = ServerDb::open(&dir.path().join("s.db")).unwrap();
        let row = |doc: &str, kind: &str| NewProgress {
            document_id: doc.into(),
            user_id: "u".into(),
            run_id: "r".into(),
            at: 1,
            kind: kind.into(),
            body: serde_json::json!({ "kind": kind }),
        };
        let last = db
            .append_progress(vec![row("d1", "a"), row("d2", "x"), row("d1", "b")])
            .await
            .unwrap()
            .unwrap();
        let all = db.progress_after("d1", 0, 10).await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(all[1].seq, last);
        let after = db.progress_after("d1", all[0].seq, 10).await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].body["kind"], "b");
    }
}
