//! Registered waits for events.

use learnflow_engine::event::Event;
use learnflow_engine::run::RunStatus;
use learnflow_engine::step::StepStatus;
use learnflow_engine::store::{NewWait, WaitResolution};
use learnflow_engine::Timestamp;

use crate::fail::{col, corrupt, Fail};
use crate::pool::Tx;
use crate::rows::{lock_run_by_seq, step_of, upsert_step};

pub(crate) fn insert_wait(tx: &mut Tx<'_>, run_seq: i64, w: &NewWait, now: Timestamp) -> Result<(), Fail> {
    tx.execute(
        "INSERT INTO waits (id, run_seq, step_id, event_name, expr, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &w.id,
            &run_seq,
            &w.step_id,
            &w.event_name,
            &w.expr,
            &w.expires_at.map(Timestamp::millis),
            &now.millis(),
        ],
    )?;
    Ok(())
}

pub(crate) fn delete_step_wait(tx: &mut Tx<'_>, run_seq: i64, step_id: &str) -> Result<(), Fail> {
    tx.execute(
        "DELETE FROM waits WHERE run_seq = $1 AND step_id = $2",
        &[&run_seq, &step_id],
    )?;
    Ok(())
}

pub(crate) fn resolve_wait(
    tx: &mut Tx<'_>,
    wait_id: &str,
    event: &Event,
    now: Timestamp,
) -> Result<Option<WaitResolution>, Fail> {
    // The run's row first, then the wait: the same order as every lease-holding write,
    // so the two never deadlock.
    let Some(r) = tx.query_opt("SELECT run_seq FROM waits WHERE id = $1", &[&wait_id])? else {
        return Ok(None);
    };
    let Some(run) = lock_run_by_seq(tx, col(&r, 0)?)? else {
        return Ok(None);
    };
    let Some(r) = tx.query_opt("DELETE FROM waits WHERE id = $1 RETURNING step_id", &[&wait_id])? else {
        return Ok(None);
    };
    let Some(step_id) = col::<Option<String>>(&r, 0)? else {
        return Ok(None);
    };
    if run.status.is_terminal() {
        return Ok(None);
    }
    let Some(mut step) = step_of(tx, run.seq, &step_id)? else {
        return Ok(None);
    };
    if step.status != StepStatus::Waiting {
        return Ok(None);
    }
    step.status = StepStatus::Completed;
    step.output = Some(serde_json::to_value(event).map_err(|e| corrupt(format!("event: {e}")))?);
    step.ended_at = Some(now);
    upsert_step(tx, run.seq, &step)?;
    let queued = matches!(run.status, RunStatus::Sleeping | RunStatus::Waiting);
    if queued {
        crate::runs::wake_run(tx, run.seq, now)?;
    }
    Ok(Some(WaitResolution {
        run_id: run.id,
        step,
        queued,
        lease_owner: run.lease_owner,
    }))
}
