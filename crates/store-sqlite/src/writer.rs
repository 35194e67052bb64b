//! The writer: one thread owns the write connection and commits operations in
//! groups. Operations that arrive while a commit is in progress are run together in
//! the next transaction (each inside its own savepoint, so one failing operation
//! leaves the others intact) and acknowledged only after that transaction commits.
//! With `synchronous=FULL` that is one fsync for the whole group.

use std::sync::mpsc;
use std::thread::JoinHandle;

use learnflow_engine::store::{StoreError, StoreErrorKind};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::map_err;

/// Most operations in one transaction.
const MAX_GROUP: usize = 2048;
/// How long the writer looks for more work before it sleeps.
const SPIN: std::time::Duration = std::time::Duration::from_micros(SPIN_US);
const SPIN_US: u64 = 50;

trait Job: Send {
    fn execute(&mut self, conn: &Connection);
    fn complete(&mut self, commit_error: Option<&StoreError>);
}

struct Op<R, F> {
    f: Option<F>,
    result: Option<Result<R, StoreError>>,
    tx: Option<oneshot::Sender<Result<R, StoreError>>>,
}

impl<R, F> Job for Op<R, F>
where
    R: Send,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send,
{
    fn execute(&mut self, conn: &Connection) {
        let Some(f) = self.f.take() else { return };
        let result = savepoint(conn, f);
        self.result = Some(result);
    }

    fn complete(&mut self, commit_error: Option<&StoreError>) {
        let out = match (self.result.take(), commit_error) {
            (Some(Ok(_)), Some(e)) => Err(e.clone()),
            (Some(r), _) => r,
            (None, Some(e)) => Err(e.clone()),
            (None, None) => Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "operation was not executed",
            )),
        };
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(out);
        }
    }
}

fn savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    conn.prepare_cached("SAVEPOINT op")
        .and_then(|mut s| s.execute([]))
        .map_err(map_err)?;
    match f(conn) {
        Ok(r) => {
            conn.prepare_cached("RELEASE op")
                .and_then(|mut s| s.execute([]))
                .map_err(map_err)?;
            Ok(r)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO op; RELEASE op");
            Err(e)
        }
    }
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub fn start(conn: Connection) -> Self {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("learnflow-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .ok();
        Writer { tx: Some(tx), thread }
    }

    /// Runs `f` in the next group transaction and returns its result once committed.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Op {
            f: Some(f),
            result: None,
            tx: Some(tx),
        });
        let stopped = || StoreError::new(StoreErrorKind::Unavailable, "the SQLite writer has stopped");
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    loop {
        // A sequential run sends its next write a few microseconds after the last
        // commit: look for it briefly before sleeping, which saves a thread wake-up.
        let spin_until = std::time::Instant::now() + SPIN;
        let mut spins = 0u32;
        let first = loop {
            match rx.try_recv() {
                Ok(j) => break Some(j),
                Err(mpsc::TryRecvError::Disconnected) => break None,
                Err(mpsc::TryRecvError::Empty) => {
                    spins = spins.wrapping_add(1);
                    // Read the clock only now and then: it costs more than a try_recv.
                    if spins.is_multiple_of(32) && std::time::Instant::now() >= spin_until {
                        break rx.recv().ok();
                    }
                    std::hint::spin_loop();
                }
            }
        };
        let Some(first) = first else { return };
        jobs.push(first);
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let begin = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(map_err);
        let commit_error = match begin {
            Err(e) => Some(e),
            Ok(_) => {
                for j in jobs.iter_mut() {
                    j.execute(&conn);
                }
                match conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([])) {
                    Ok(_) => None,
                    Err(e) => {
                        let _ = conn.execute_batch("ROLLBACK");
                        Some(map_err(e))
                    }
                }
            }
        };
        if let Some(e) = &commit_error {
            tracing::error!("SQLite transaction failed: {e}");
        }
        for mut j in jobs.drain(..) {
            j.complete(commit_error.as_ref());
        }
    }
}
