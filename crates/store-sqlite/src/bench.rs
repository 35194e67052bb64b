//! The raw baseline for `learnflow bench engine`: single-row inserts, each committed
//! the way the writer commits a group (`BEGIN IMMEDIATE` … `COMMIT`, same pragmas, same
//! file).

use std::path::Path;
use std::time::{Duration, Instant};

use learnflow_engine::store::StoreError;

use crate::error::map_err;
use crate::{connect, Durability};

/// Commits `n` single-row inserts one by one into a scratch table of the database at
/// `path`; returns the time of each commit.
pub fn raw_commit_baseline(
    path: &Path,
    durability: Durability,
    n: usize,
) -> Result<Vec<Duration>, StoreError> {
    let conn = connect(path, durability, false)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, run TEXT NOT NULL, step TEXT NOT NULL, output TEXT NOT NULL)",
    )
    .map_err(map_err)?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        conn.prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(map_err)?;
        conn.prepare_cached("INSERT INTO bench_raw (run, step, output) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| {
                s.execute(rusqlite::params![
                    "01JBENCHRAWRUN000000000000",
                    format!("step-{i}"),
                    "null"
                ])
            })
            .map_err(map_err)?;
        conn.prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map_err(map_err)?;
        times.push(t0.elapsed());
    }
    conn.execute_batch("DROP TABLE bench_raw").map_err(map_err)?;
    Ok(times)
}
