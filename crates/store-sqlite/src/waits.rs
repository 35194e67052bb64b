//! Registered waits for events.

use learnflow_engine::event::Event;
use learnflow_engine::run::RunStatus;
use learnflow_engine::step::StepStatus;
use learnflow_engine::store::{NewWait, StoreError, WaitResolution};
use learnflow_engine::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{corrupt, map_err};
use crate::rows::{run_by_seq, step_of, upsert_step};

pub(crate) fn insert_wait(
    conn: &Connection,
    run_seq: i64,
    w: &NewWait,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO waits (id, run_seq, step_id, event_name, expr, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            w.id,
            run_seq,
            w.step_id,
            w.event_name,
            w.expr,
            w.expires_at.map(Timestamp::millis),
            now.millis()
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

pub(crate) fn delete_step_wait(conn: &Connection, run_seq: i64, step_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM waits WHERE run_seq = ?1 AND step_id = ?2")
        .and_then(|mut s| s.execute(params![run_seq, step_id]))
        .map_err(map_err)?;
    Ok(())
}

pub(crate) fn resolve_wait(
    conn: &Connection,
    wait_id: &str,
    event: &Event,
    now: Timestamp,
) -> Result<Option<WaitResolution>, StoreError> {
    let row: Option<(i64, Option<String>)> = conn
        .prepare_cached("DELETE FROM waits WHERE id = ?1 RETURNING run_seq, step_id")
        .and_then(|mut s| s.query_row([wait_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(map_err)?;
    let Some((run_seq, Some(step_id))) = row else {
        return Ok(None);
    };
    let Some(run) = run_by_seq(conn, run_seq)? else {
        return Ok(None);
    };
    if run.status.is_terminal() {
        return Ok(None);
    }
    let Some(mut step) = step_of(conn, run_seq, &step_id)? else {
        return Ok(None);
    };
    if step.status != StepStatus::Waiting {
        return Ok(None);
    }
    step.status = StepStatus::Completed;
    step.output = Some(serde_json::to_value(event).map_err(|e| corrupt(format!("event: {e}")))?);
    step.ended_at = Some(now);
    upsert_step(conn, run_seq, &step)?;
    let queued = matches!(run.status, RunStatus::Sleeping | RunStatus::Waiting);
    if queued {
        crate::runs::wake_run(conn, run_seq, now)?;
    }
    Ok(Some(WaitResolution {
        run_id: run.id,
        step,
        queued,
        lease_owner: run.lease_owner,
    }))
}
