//! Step records.

use learnflow_engine::step::{StepRecord, StepStatus};
use learnflow_engine::store::{Lease, RecordAck, StepEffect};
use learnflow_engine::Timestamp;
use serde_json::Value;

use crate::fail::{col, corrupt, Fail};
use crate::pool::Tx;
use crate::rows::{error_json, insert_event, step_of, upsert_step};
use crate::runs::{check_lease, insert_run, LeaseCheck};

pub(crate) fn record_step(
    tx: &mut Tx<'_>,
    lease: &Lease,
    step: &StepRecord,
    effect: &StepEffect,
    now: Timestamp,
) -> Result<RecordAck, Fail> {
    let ack = match check_lease(tx, lease)? {
        LeaseCheck::Held => RecordAck::Recorded,
        LeaseCheck::Cancelled => RecordAck::Cancelled,
        LeaseCheck::Lost => return Ok(RecordAck::LeaseLost),
    };
    upsert_step(tx, lease.run_seq, step)?;
    if ack == RecordAck::Recorded {
        match effect {
            StepEffect::None => {}
            StepEffect::RegisterWait(w) => crate::waits::insert_wait(tx, lease.run_seq, w, now)?,
            StepEffect::StartChild { event, run } => {
                let event_seq = insert_event(tx, event, now)?;
                let mut available_at = run.available_at;
                if let Some(t) = &run.throttle {
                    available_at = available_at.max(crate::flow::reserve_throttle(tx, t, now)?);
                }
                insert_run(tx, run, event_seq, available_at, now)?;
            }
            StepEffect::DropWait => crate::waits::delete_step_wait(tx, lease.run_seq, &step.step_id)?,
        }
    }
    Ok(ack)
}

/// [`record_step`] without an effect, as one statement (one round trip in autocommit
/// mode): the run's row is locked and the lease checked in the same statement that
/// writes the step. Applying it twice gives the same result.
pub(crate) fn record_step_alone(tx: &mut Tx<'_>, lease: &Lease, s: &StepRecord) -> Result<RecordAck, Fail> {
    let attempts = serde_json::to_value(&s.attempts).map_err(|e| corrupt(format!("attempts: {e}")))?;
    let row = tx.query_opt(
        concat!(
            "WITH run AS (SELECT status, lease_owner FROM runs WHERE seq = $1 FOR UPDATE), \
             up AS (INSERT INTO steps ",
            crate::rows::step_columns!(),
            " SELECT $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM run \
               WHERE (run.status = 'running' AND run.lease_owner = $2) OR run.status = 'cancelled' ",
            crate::rows::step_conflict!(),
            " RETURNING 1) \
             SELECT status, lease_owner, (SELECT COUNT(*) FROM up) FROM run"
        ),
        &[
            &lease.run_seq,
            &lease.node.as_str(),
            &s.step_id,
            &s.name,
            &s.kind.as_str(),
            &s.status.as_str(),
            &s.output,
            &s.error.as_ref().map(error_json),
            &attempts,
            &s.started_at.millis(),
            &s.ended_at.map(Timestamp::millis),
            &s.wake_at.map(Timestamp::millis),
            &s.detail,
        ],
    )?;
    let Some(row) = row else {
        return Ok(RecordAck::LeaseLost);
    };
    let (status, owner): (String, Option<String>) = (col(&row, 0)?, col(&row, 1)?);
    Ok(
        if status == "running" && owner.as_deref() == Some(lease.node.as_str()) {
            RecordAck::Recorded
        } else if status == "cancelled" {
            RecordAck::Cancelled
        } else {
            RecordAck::LeaseLost
        },
    )
}

pub(crate) fn settle_wait_timeout(
    tx: &mut Tx<'_>,
    lease: &Lease,
    step_id: &str,
    now: Timestamp,
) -> Result<(RecordAck, Option<StepRecord>), Fail> {
    let ack = match check_lease(tx, lease)? {
        LeaseCheck::Held => RecordAck::Recorded,
        LeaseCheck::Cancelled => RecordAck::Cancelled,
        LeaseCheck::Lost => return Ok((RecordAck::LeaseLost, None)),
    };
    let Some(mut step) = step_of(tx, lease.run_seq, step_id)? else {
        return Ok((ack, None));
    };
    if step.status == StepStatus::Waiting {
        step.status = StepStatus::Completed;
        step.output = Some(Value::Null);
        step.ended_at = Some(now);
        upsert_step(tx, lease.run_seq, &step)?;
        crate::waits::delete_step_wait(tx, lease.run_seq, step_id)?;
    }
    Ok((ack, Some(step)))
}
