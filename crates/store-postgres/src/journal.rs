//! Step records.

use learnflow_engine::step::{StepRecord, StepStatus};
use learnflow_engine::store::{Lease, RecordAck, StepEffect};
use learnflow_engine::Timestamp;
use serde_json::Value;

use crate::fail::Fail;
use crate::pool::Tx;
use crate::rows::{insert_event, step_of, upsert_step};
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
