//! What the server keeps besides the engine's runs and the pipeline's library: users
//! and their API tokens (hashed), webhooks, and the progress log that SSE streams
//! read (so a reconnecting client gets what it missed, whichever node ran the step).
//!
//! Two backends behave alike behind [`ServerDb`]: a SQLite file (one node) and
//! PostgreSQL (several nodes sharing the tables); [`ServerDb::open`] and
//! [`ServerDb::open_postgres`] choose.

mod postgres;
mod sqlite;

use std::path::Path;

use learnflow_store_postgres::{OpError, PgFailure, PgPool};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Why the server's database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite said no.
    #[error("server database error: {0}")]
    Sqlite(String),
    /// PostgreSQL said no (transient failures were retried first).
    #[error("server database error: {0}")]
    Postgres(PgFailure),
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

impl DbError {
    fn name_taken(name: &str) -> Self {
        DbError::Conflict(format!("a user named '{name}' already exists"))
    }
}

impl From<PgFailure> for DbError {
    fn from(f: PgFailure) -> Self {
        DbError::Postgres(f)
    }
}

impl OpError for DbError {
    fn failure(&self) -> Option<&PgFailure> {
        match self {
            DbError::Postgres(f) => Some(f),
            _ => None,
        }
    }
}

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

/// The server's tables, in SQLite or PostgreSQL.
#[derive(Clone)]
pub struct ServerDb {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::SqliteDb),
    Postgres(postgres::PostgresDb),
}

/// Runs `$call` on whichever backend holds the tables.
macro_rules! on_backend {
    ($self:ident, $db:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($db) => $call.await,
            Backend::Postgres($db) => $call.await,
        }
    };
}

impl ServerDb {
    /// Opens (and migrates) the server tables in the SQLite file `path` (the same file
    /// as the store by default).
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Ok(ServerDb {
            backend: Backend::Sqlite(sqlite::SqliteDb::open(path)?),
        })
    }

    /// The server tables in `pool`'s database (its `search_path`), created or
    /// upgraded as the component `server`, for nodes sharing one PostgreSQL.
    pub async fn open_postgres(pool: PgPool) -> Result<Self, DbError> {
        Ok(ServerDb {
            backend: Backend::Postgres(postgres::PostgresDb::open(pool).await?),
        })
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
        let (u, hash, now) = (user.clone(), token_hash(&token), now_ms());
        on_backend!(self, db => db.insert_user(u, hash, now))?;
        Ok((user, token))
    }

    /// Number of users.
    pub async fn user_count(&self) -> Result<u64, DbError> {
        on_backend!(self, db => db.user_count())
    }

    /// The user a token belongs to.
    pub async fn user_by_token(&self, token: &str) -> Result<Option<User>, DbError> {
        let hash = token_hash(token);
        on_backend!(self, db => db.user_by_token_hash(hash))
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
        on_backend!(self, db => db.insert_webhook(h))?;
        Ok(hook)
    }

    /// A user's webhooks, oldest first.
    pub async fn webhooks(&self, user_id: &str) -> Result<Vec<Webhook>, DbError> {
        let user_id = user_id.to_string();
        on_backend!(self, db => db.webhooks(user_id))
    }

    /// One webhook of a user.
    pub async fn webhook(&self, user_id: &str, id: &str) -> Result<Option<Webhook>, DbError> {
        Ok(self.webhooks(user_id).await?.into_iter().find(|h| h.id == id))
    }

    /// Removes a user's webhook; false when there was none.
    pub async fn delete_webhook(&self, user_id: &str, id: &str) -> Result<bool, DbError> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        on_backend!(self, db => db.delete_webhook(user_id, id))
    }

    /// Appends progress entries in one transaction; returns the last seq written. A
    /// document's entries become visible in seq order on every node, so a stream
    /// reading after its last seq misses none.
    pub async fn append_progress(&self, rows: Vec<NewProgress>) -> Result<Option<i64>, DbError> {
        if rows.is_empty() {
            return Ok(None);
        }
        on_backend!(self, db => db.append_progress(rows))
    }

    /// A document's progress entries after `after`, oldest first.
    pub async fn progress_after(
        &self,
        document_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ProgressRow>, DbError> {
        let document_id = document_id.to_string();
        on_backend!(self, db => db.progress_after(document_id, after, limit))
    }

    /// Keeps a synced Inngest app's register body (replacing an earlier one).
    pub async fn put_inngest_app(&self, url: &str, body: &str, at: i64) -> Result<(), DbError> {
        let (url, body) = (url.to_string(), body.to_string());
        on_backend!(self, db => db.put_inngest_app(url, body, at))
    }

    /// Every synced Inngest app: `(url, register body)`.
    pub async fn inngest_apps(&self) -> Result<Vec<(String, String)>, DbError> {
        on_backend!(self, db => db.inngest_apps())
    }

    /// Forgets a document's progress.
    pub async fn delete_progress(&self, document_id: &str) -> Result<(), DbError> {
        let document_id = document_id.to_string();
        on_backend!(self, db => db.delete_progress(document_id))
    }
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
