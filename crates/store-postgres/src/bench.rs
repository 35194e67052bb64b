//! The raw baseline for `learnflow bench engine` on PostgreSQL: single-row inserts,
//! each in its own transaction and committed, on the same server and database.

use std::time::{Duration, Instant};

use crate::pool::PgFailure;

/// Commits `n` single-row inserts one by one into a scratch table (in the URL's
/// `search_path`); returns the time of each insert-and-commit. Blocking: call it from
/// a blocking thread.
pub fn raw_commit_baseline(url: &str, n: usize) -> Result<Vec<Duration>, PgFailure> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS bench_raw (id BIGSERIAL PRIMARY KEY, run TEXT NOT NULL, step TEXT NOT NULL, \
         output JSONB NOT NULL)",
    )?;
    let insert = client.prepare("INSERT INTO bench_raw (run, step, output) VALUES ($1, $2, $3)")?;
    let output = serde_json::Value::Null;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        let mut tx = client.transaction()?;
        tx.execute(
            &insert,
            &[&"01JBENCHRAWRUN000000000000", &format!("step-{i}"), &output],
        )?;
        tx.commit()?;
        times.push(t0.elapsed());
    }
    client.batch_execute("DROP TABLE bench_raw")?;
    Ok(times)
}
