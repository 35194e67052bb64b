//! When runs are due: claims with leases (`FOR UPDATE SKIP LOCKED`, so nodes claiming
//! at the same moment take different runs without waiting for each other), and run
//! deadlines.

use learnflow_engine::failure::ErrorInfo;
use learnflow_engine::ids::NodeId;
use learnflow_engine::store::{CancelResult, CancelledRun, ClaimBatch, ClaimedRun};
use learnflow_engine::Timestamp;

use crate::fail::{col, Fail};
use crate::pool::Tx;
use crate::rows::{decode_run, event_by_seq, run_columns, steps_of, RUN_COLUMN_COUNT};

pub(crate) fn claim_due(
    tx: &mut Tx<'_>,
    node: &NodeId,
    function_ids: &[String],
    now: Timestamp,
    limit: usize,
    lease_ttl_ms: i64,
    token: &str,
) -> Result<ClaimBatch, Fail> {
    let functions = function_ids.to_vec();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = tx.query(
        concat!(
            "UPDATE runs SET status = 'running', lease_owner = $1, lease_expires = $2, available_at = NULL,
                    claim_token = $6,
                    start_deadline = NULL,
                    finish_deadline = CASE WHEN started_at IS NULL AND finish_timeout IS NOT NULL
                                           THEN $3 + finish_timeout ELSE finish_deadline END,
                    started_at = COALESCE(started_at, $3)
             WHERE seq IN (SELECT seq FROM runs
                           WHERE available_at <= $3 AND status IN ('queued', 'sleeping', 'waiting')
                             AND function_id = ANY($4)
                           ORDER BY available_at, seq LIMIT $5
                           FOR UPDATE SKIP LOCKED)
             RETURNING ",
            run_columns!(),
            ", event_seq"
        ),
        &[
            &node.as_str(),
            &(now.millis() + lease_ttl_ms),
            &now.millis(),
            &functions,
            &limit,
            &token,
        ],
    )?;
    let mut runs = Vec::with_capacity(rows.len());
    for row in rows {
        let run = decode_run(&row)?;
        let event = event_by_seq(tx, col(&row, RUN_COLUMN_COUNT)?)?;
        let journal = steps_of(tx, run.seq)?;
        runs.push(ClaimedRun { run, event, journal });
    }
    runs.sort_by_key(|c| c.run.seq);
    let next_wake: Option<i64> = col(
        &tx.query_one(
            "SELECT LEAST(
                (SELECT MIN(available_at) FROM runs
                  WHERE available_at IS NOT NULL AND status IN ('queued', 'sleeping', 'waiting')
                    AND function_id = ANY($1)),
                (SELECT MIN(start_deadline) FROM runs WHERE start_deadline IS NOT NULL),
                (SELECT MIN(finish_deadline) FROM runs WHERE finish_deadline IS NOT NULL))",
            &[&functions],
        )?,
        0,
    )?;
    Ok(ClaimBatch {
        runs,
        next_wake: next_wake.map(Timestamp::from_millis),
    })
}

/// Queues again the runs of claims whose commit had an unknown outcome: if they were
/// committed, this node holds runs it never started.
pub(crate) fn release_lost_claims(
    tx: &mut Tx<'_>,
    node: &NodeId,
    tokens: &[String],
    now: Timestamp,
) -> Result<u64, Fail> {
    Ok(tx.execute(
        "UPDATE runs SET status = 'queued', available_at = $3, lease_owner = NULL, lease_expires = NULL
         WHERE claim_token = ANY($2) AND lease_owner = $1 AND status = 'running'",
        &[&node.as_str(), &tokens, &now.millis()],
    )?)
}

pub(crate) fn expire_deadlines(tx: &mut Tx<'_>, now: Timestamp) -> Result<Vec<CancelledRun>, Fail> {
    let mut due: Vec<(i64, &'static str)> = Vec::new();
    for r in tx.query(
        "SELECT seq FROM runs WHERE start_deadline IS NOT NULL AND start_deadline <= $1 AND status = 'queued'",
        &[&now.millis()],
    )? {
        due.push((col(&r, 0)?, "the run did not start before its start timeout"));
    }
    for r in tx.query(
        "SELECT seq FROM runs WHERE finish_deadline IS NOT NULL AND finish_deadline <= $1
           AND status NOT IN ('completed', 'failed', 'cancelled')",
        &[&now.millis()],
    )? {
        due.push((col(&r, 0)?, "the run did not finish before its finish timeout"));
    }
    let mut out = Vec::new();
    for (seq, why) in due {
        let reason = ErrorInfo::new("Timeout", why);
        let run_id = match crate::rows::lock_run_by_seq(tx, seq)? {
            Some(run) => run.id,
            None => continue,
        };
        if let CancelResult::Cancelled {
            function_id,
            lease_owner,
            parent,
            ..
        } = crate::runs::cancel_seq(tx, seq, &reason, now)?
        {
            out.push(CancelledRun {
                run_id,
                function_id,
                lease_owner,
                parent: parent.map(|p| *p),
                reason,
            });
        }
    }
    Ok(out)
}
