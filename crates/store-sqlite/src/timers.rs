//! When runs are due: claims with leases, and run deadlines.

use learnflow_engine::failure::ErrorInfo;
use learnflow_engine::ids::NodeId;
use learnflow_engine::store::{CancelResult, CancelledRun, ClaimBatch, ClaimedRun, StoreError};
use learnflow_engine::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::map_err;
use crate::rows::{event_by_seq, run_row, steps_of, RunRow, RUN_COLUMNS};

pub(crate) fn claim_due(
    conn: &Connection,
    node: &NodeId,
    function_ids: &[String],
    now: Timestamp,
    limit: usize,
    lease_ttl_ms: i64,
) -> Result<ClaimBatch, StoreError> {
    let functions = serde_json::to_string(function_ids).unwrap_or_else(|_| "[]".into());
    let sql = format!(
        "UPDATE runs SET status = 'running', lease_owner = ?1, lease_expires = ?2, available_at = NULL,
                start_deadline = NULL,
                finish_deadline = CASE WHEN started_at IS NULL AND finish_timeout IS NOT NULL
                                       THEN ?3 + finish_timeout ELSE finish_deadline END,
                started_at = COALESCE(started_at, ?3)
         WHERE seq IN (SELECT seq FROM runs
                       WHERE available_at <= ?3 AND status IN ('queued', 'sleeping', 'waiting')
                         AND function_id IN (SELECT value FROM json_each(?4))
                       ORDER BY available_at, seq LIMIT ?5)
         RETURNING {RUN_COLUMNS}, event_seq"
    );
    let rows: Vec<(RunRow, i64)> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(
                params![
                    node.as_str(),
                    now.millis() + lease_ttl_ms,
                    now.millis(),
                    functions,
                    limit as i64
                ],
                |r| Ok((run_row(r)?, r.get(17)?)),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(map_err)?;
    let mut runs = Vec::with_capacity(rows.len());
    for (row, event_seq) in rows {
        let run = row.decode()?;
        let event = event_by_seq(conn, event_seq)?;
        let journal = steps_of(conn, run.seq)?;
        runs.push(ClaimedRun { run, event, journal });
    }
    runs.sort_by_key(|c| c.run.seq);
    let next_wake: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(t) FROM (
                SELECT MIN(available_at) AS t FROM runs
                 WHERE available_at IS NOT NULL AND status IN ('queued', 'sleeping', 'waiting')
                   AND function_id IN (SELECT value FROM json_each(?1))
                UNION ALL SELECT MIN(start_deadline) FROM runs WHERE start_deadline IS NOT NULL
                UNION ALL SELECT MIN(finish_deadline) FROM runs WHERE finish_deadline IS NOT NULL)",
        )
        .and_then(|mut s| s.query_row([functions], |r| r.get(0)).optional())
        .map(Option::flatten)
        .map_err(map_err)?;
    Ok(ClaimBatch {
        runs,
        next_wake: next_wake.map(Timestamp::from_millis),
    })
}

pub(crate) fn expire_deadlines(conn: &Connection, now: Timestamp) -> Result<Vec<CancelledRun>, StoreError> {
    let mut due: Vec<(i64, &'static str)> = Vec::new();
    for (sql, why) in [
        (
            "SELECT seq FROM runs WHERE start_deadline IS NOT NULL AND start_deadline <= ?1 AND status = 'queued'",
            "the run did not start before its start timeout",
        ),
        (
            "SELECT seq FROM runs WHERE finish_deadline IS NOT NULL AND finish_deadline <= ?1
               AND status NOT IN ('completed', 'failed', 'cancelled')",
            "the run did not finish before its finish timeout",
        ),
    ] {
        let seqs: Vec<i64> = conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_map([now.millis()], |r| r.get(0))?.collect::<Result<Vec<_>, _>>())
            .map_err(map_err)?;
        due.extend(seqs.into_iter().map(|s| (s, why)));
    }
    let mut out = Vec::new();
    for (seq, why) in due {
        let reason = ErrorInfo::new("Timeout", why);
        if let Some(run) = crate::rows::run_by_seq(conn, seq)? {
            if let CancelResult::Cancelled {
                function_id,
                lease_owner,
                parent,
                ..
            } = crate::runs::cancel_seq(conn, seq, &reason, now)?
            {
                out.push(CancelledRun {
                    run_id: run.id,
                    function_id,
                    lease_owner,
                    parent: parent.map(|p| *p),
                    reason,
                });
            }
        }
    }
    Ok(out)
}
