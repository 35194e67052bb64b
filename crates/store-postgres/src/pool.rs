//! A small pool of blocking PostgreSQL connections, used from async code through
//! `spawn_blocking`, with transactions that survive a restarted server.
//!
//! Every operation runs as one transaction. A failure that leaves the outcome certain
//! (the connection broke before `COMMIT` was sent, a serialization failure, a
//! deadlock) is retried with backoff for up to [`PgPool::retry_for`], reconnecting as
//! needed, so a PostgreSQL restart of a few seconds is invisible to callers. A failure
//! of the `COMMIT` itself is ambiguous (the server may have committed): it is
//! reported as [`FailureKind::Ambiguous`] and never retried blindly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};
use tokio::sync::Semaphore;

/// What kind of database failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The server cannot be reached, is shutting down, or the transaction lost a
    /// serialization race or a deadlock: nothing was written, trying again is safe.
    Transient,
    /// The `COMMIT` failed on a broken connection: the outcome is unknown.
    Ambiguous,
    /// A uniqueness or foreign-key violation.
    Constraint,
    /// Anything else (a bad statement, bad data).
    Other,
}

/// A failed database operation.
#[derive(Clone, Debug, thiserror::Error)]
#[error("PostgreSQL: {message}")]
pub struct PgFailure {
    /// The kind.
    pub kind: FailureKind,
    /// Details.
    pub message: String,
}

impl PgFailure {
    /// A failure of a kind.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        PgFailure {
            kind,
            message: message.into(),
        }
    }
}

impl From<postgres::Error> for PgFailure {
    fn from(e: postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            let kind = match code {
                // serialization_failure, deadlock_detected, admin/crash shutdown,
                // cannot_connect_now (the server is starting), too many connections
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300" => FailureKind::Transient,
                c if c.starts_with("08") => FailureKind::Transient,
                c if c.starts_with("23") => FailureKind::Constraint,
                _ => FailureKind::Other,
            };
            return PgFailure::new(kind, format!("{code}: {}", db.message()));
        }
        // No server error: the connection is closed or could not be made.
        PgFailure::new(FailureKind::Transient, e.to_string())
    }
}

/// Errors an operation can fail with: a database failure, or the caller's own.
pub trait OpError: From<PgFailure> + Send + 'static {
    /// The database failure inside, if this is one.
    fn failure(&self) -> Option<&PgFailure>;
}

impl OpError for PgFailure {
    fn failure(&self) -> Option<&PgFailure> {
        Some(self)
    }
}

/// A connection with its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// An open transaction with a statement cache: the same SQL text is prepared once per
/// connection. (For [`PgPool::statement`], a connection in autocommit mode: each
/// statement is its own transaction.)
pub struct Tx<'a> {
    tx: Session<'a>,
    statements: &'a mut HashMap<&'static str, Statement>,
}

enum Session<'a> {
    Transaction(postgres::Transaction<'a>),
    Autocommit(&'a mut Client),
}

impl Session<'_> {
    fn client(&mut self) -> &mut dyn ClientLike {
        match self {
            Session::Transaction(t) => t,
            Session::Autocommit(c) => *c,
        }
    }
}

/// What a transaction and a bare client share.
trait ClientLike {
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error>;
    fn query(&mut self, s: &str, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error>;
    fn query_stmt(&mut self, s: &Statement, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error>;
    fn query_opt(&mut self, s: &Statement, p: &[&(dyn ToSql + Sync)])
        -> Result<Option<Row>, postgres::Error>;
    fn query_one(&mut self, s: &Statement, p: &[&(dyn ToSql + Sync)]) -> Result<Row, postgres::Error>;
    fn execute(&mut self, s: &Statement, p: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error>;
    fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error>;
}

macro_rules! client_like {
    ($t:ty) => {
        impl ClientLike for $t {
            fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
                <$t>::prepare(self, sql)
            }
            fn query(&mut self, s: &str, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error> {
                <$t>::query(self, s, p)
            }
            fn query_stmt(
                &mut self,
                s: &Statement,
                p: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<Row>, postgres::Error> {
                <$t>::query(self, s, p)
            }
            fn query_opt(
                &mut self,
                s: &Statement,
                p: &[&(dyn ToSql + Sync)],
            ) -> Result<Option<Row>, postgres::Error> {
                <$t>::query_opt(self, s, p)
            }
            fn query_one(
                &mut self,
                s: &Statement,
                p: &[&(dyn ToSql + Sync)],
            ) -> Result<Row, postgres::Error> {
                <$t>::query_one(self, s, p)
            }
            fn execute(&mut self, s: &Statement, p: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error> {
                <$t>::execute(self, s, p)
            }
            fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
                <$t>::batch_execute(self, sql)
            }
        }
    };
}

client_like!(postgres::Transaction<'_>);
client_like!(Client);

impl Tx<'_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, PgFailure> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.client().prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    /// Rows of a query.
    pub fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgFailure> {
        let s = self.statement(sql)?;
        Ok(self.tx.client().query_stmt(&s, params)?)
    }

    /// At most one row.
    pub fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, PgFailure> {
        let s = self.statement(sql)?;
        Ok(self.tx.client().query_opt(&s, params)?)
    }

    /// Exactly one row.
    pub fn query_one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, PgFailure> {
        let s = self.statement(sql)?;
        Ok(self.tx.client().query_one(&s, params)?)
    }

    /// Rows affected.
    pub fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, PgFailure> {
        let s = self.statement(sql)?;
        Ok(self.tx.client().execute(&s, params)?)
    }

    /// A statement built at run time (not cached).
    pub fn query_dynamic(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgFailure> {
        Ok(self.tx.client().query(sql, params)?)
    }

    /// Several statements without parameters.
    pub fn batch(&mut self, sql: &str) -> Result<(), PgFailure> {
        Ok(self.tx.client().batch_execute(sql)?)
    }
}

struct Inner {
    config: Config,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    retry_for: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing a blocking client blocks; the last pool handle may be dropped on an
        // async task, so idle connections are closed on a thread of their own.
        let idle = std::mem::take(&mut *self.idle.lock());
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("learnflow-pg-close".into())
                .spawn(move || drop(idle));
        }
    }
}

/// A pool of connections to one database.
#[derive(Clone)]
pub struct PgPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool").finish_non_exhaustive()
    }
}

impl PgPool {
    /// A pool of at most `size` connections to `url` (`postgres://user@host:port/db`,
    /// libpq style options such as `options=-csearch_path%3Dx` included). Connects
    /// lazily; [`PgPool::check`] tries a connection now.
    pub fn new(url: &str, size: usize) -> Result<Self, PgFailure> {
        let mut config: Config = url
            .parse()
            .map_err(|e| PgFailure::new(FailureKind::Other, format!("bad database URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("learnflow");
        Ok(PgPool {
            inner: Arc::new(Inner {
                config,
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(size.max(1)),
                retry_for: Duration::from_secs(60),
            }),
        })
    }

    /// How long transient failures are retried (default 60 s).
    pub fn retry_for(&self) -> Duration {
        self.inner.retry_for
    }

    /// Connects once, to report a bad URL or an unreachable server at start-up.
    pub async fn check(&self) -> Result<(), PgFailure> {
        self.with_client(|c| c.simple_query("SELECT 1").map(|_| ()).map_err(PgFailure::from))
            .await
    }

    fn connect(&self) -> Result<Conn, PgFailure> {
        let client = self.inner.config.connect(NoTls)?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn checkout(&self) -> Result<Conn, PgFailure> {
        loop {
            let Some(conn) = self.inner.idle.lock().pop() else {
                return self.connect();
            };
            if !conn.client.is_closed() {
                return Ok(conn);
            }
        }
    }

    fn checkin(&self, conn: Conn) {
        if !conn.client.is_closed() {
            self.inner.idle.lock().push(conn);
        }
    }

    /// Runs `f` on a connection outside any transaction (for `LISTEN`, DDL, tools).
    /// Not retried.
    pub async fn with_client<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: OpError,
        F: FnOnce(&mut Client) -> Result<R, E> + Send + 'static,
    {
        self.blocking(move |pool| {
            let mut conn = pool.checkout()?;
            let out = f(&mut conn.client);
            pool.checkin(conn);
            out
        })
        .await
    }

    /// Runs `job` on a blocking thread once a connection permit is free.
    async fn blocking<R, E, J>(&self, job: J) -> Result<R, E>
    where
        R: Send + 'static,
        E: OpError,
        J: FnOnce(&PgPool) -> Result<R, E> + Send + 'static,
    {
        let _permit = self.inner.permits.acquire().await.map_err(|_| {
            E::from(PgFailure::new(
                FailureKind::Transient,
                "the connection pool is closed",
            ))
        })?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || job(&pool))
            .await
            .map_err(|e| {
                E::from(PgFailure::new(
                    FailureKind::Other,
                    format!("database task failed: {e}"),
                ))
            })?
    }

    /// Runs `f` in a transaction and commits it, retrying transient failures (see the
    /// module docs). `f` may run more than once and must not have effects outside the
    /// transaction.
    pub async fn tx<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: OpError,
        F: FnMut(&mut Tx<'_>) -> Result<R, E> + Send + 'static,
    {
        self.blocking(move |pool| pool.retrying(f, Self::attempt)).await
    }

    /// Runs `f`, which must issue exactly one statement, in autocommit mode: one round
    /// trip instead of `BEGIN`, the statement and `COMMIT`. Retried like [`PgPool::tx`]
    /// when the connection could not be had or the statement lost a deadlock or
    /// serialization race; a connection that broke while the statement was in flight
    /// is reported as [`FailureKind::Ambiguous`].
    pub async fn statement<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: OpError,
        F: FnMut(&mut Tx<'_>) -> Result<R, E> + Send + 'static,
    {
        self.blocking(move |pool| pool.retrying(f, Self::attempt_autocommit))
            .await
    }

    fn attempt_autocommit<R, E, F>(&self, f: &mut F) -> Result<R, E>
    where
        E: OpError,
        F: FnMut(&mut Tx<'_>) -> Result<R, E>,
    {
        self.on_connection(|Conn { client, statements }| {
            let mut t = Tx {
                tx: Session::Autocommit(client),
                statements,
            };
            f(&mut t).map_err(|e| match e.failure() {
                // No server answer: the statement may or may not have been applied.
                Some(p) if p.kind == FailureKind::Transient && !p.message.contains(": ") => {
                    E::from(PgFailure::new(
                        FailureKind::Ambiguous,
                        format!("the statement's outcome is unknown: {}", p.message),
                    ))
                }
                _ => e,
            })
        })
    }

    /// Runs `body` on a pooled connection, kept afterwards if it still answers (a
    /// statement that failed on bad data leaves it fine: the transaction rolled back).
    fn on_connection<R, E: OpError>(&self, body: impl FnOnce(&mut Conn) -> Result<R, E>) -> Result<R, E> {
        let mut conn = self.checkout()?;
        let out = body(&mut conn);
        if out.is_ok() || conn.client.is_valid(Duration::from_secs(2)).is_ok() {
            self.checkin(conn);
        }
        out
    }

    fn retrying<R, E, F>(&self, mut f: F, attempt: fn(&Self, &mut F) -> Result<R, E>) -> Result<R, E>
    where
        E: OpError,
        F: FnMut(&mut Tx<'_>) -> Result<R, E>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(25);
        loop {
            let err = match attempt(self, &mut f) {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            let transient = err.failure().is_some_and(|f| f.kind == FailureKind::Transient);
            if !transient || started.elapsed() >= self.inner.retry_for {
                return Err(err);
            }
            if let Some(f) = err.failure() {
                tracing::debug!("retrying a transaction after: {}", f.message);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    fn attempt<R, E, F>(&self, f: &mut F) -> Result<R, E>
    where
        E: OpError,
        F: FnMut(&mut Tx<'_>) -> Result<R, E>,
    {
        self.on_connection(|Conn { client, statements }| {
            let tx = client.transaction().map_err(PgFailure::from)?;
            let mut t = Tx {
                tx: Session::Transaction(tx),
                statements,
            };
            let r = f(&mut t)?;
            let Session::Transaction(tx) = t.tx else {
                unreachable!("a transaction session")
            };
            match tx.commit() {
                Ok(()) => Ok(r),
                Err(e) if e.as_db_error().is_none() => Err(E::from(PgFailure::new(
                    FailureKind::Ambiguous,
                    format!("the commit's outcome is unknown: {e}"),
                ))),
                Err(e) => Err(E::from(PgFailure::from(e))),
            }
        })
    }
}
