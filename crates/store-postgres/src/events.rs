//! Received events and the runs they start.

use std::time::Duration;

use learnflow_engine::ids::RunId;
use learnflow_engine::store::{admit_run, Admission, AppendEvent, AppendOutcome, NewWait, WaitCandidate};
use learnflow_engine::Timestamp;

use crate::fail::{col, Fail};
use crate::pool::Tx;
use crate::rows::{event_by_seq, insert_event};

/// Advisory-lock classes (the first key of `pg_advisory_xact_lock(int, int)`), so
/// concurrent nodes serialise on one event id, throttle key, idempotency key or slot
/// pool without locking whole tables.
pub(crate) mod lock {
    pub(crate) const EVENT_ID: i32 = 1;
    pub(crate) const THROTTLE: i32 = 2;
    pub(crate) const IDEMPOTENCY: i32 = 3;
    pub(crate) const SLOT_POOL: i32 = 4;
}

/// Holds the advisory lock of `(class, key)` until the transaction ends.
pub(crate) fn advisory_lock(tx: &mut Tx<'_>, class: i32, key: &str) -> Result<(), Fail> {
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&class, &key])?;
    Ok(())
}

pub(crate) fn append_events(
    tx: &mut Tx<'_>,
    batch: &[AppendEvent],
    now: Timestamp,
    window: Duration,
) -> Result<Vec<AppendOutcome>, Fail> {
    let horizon = now.minus(window).millis();
    let mut out = Vec::with_capacity(batch.len());
    for AppendEvent { event, runs } in batch {
        advisory_lock(tx, lock::EVENT_ID, &event.id)?;
        let seen = tx.query_opt(
            "SELECT seq FROM events WHERE id = $1 AND received_at > $2 LIMIT 1",
            &[&event.id, &horizon],
        )?;
        if seen.is_some() {
            out.push(AppendOutcome {
                event_id: event.id.clone(),
                duplicate: true,
                created: Vec::new(),
                skipped: Vec::new(),
                waits: Vec::new(),
                superseded: Vec::new(),
            });
            continue;
        }
        let event_seq = insert_event(tx, event, now)?;
        let mut created = Vec::new();
        let mut skipped = Vec::new();
        let mut superseded = Vec::new();
        let mut flow = crate::flow::Flow(tx);
        for run in runs {
            match admit_run(&mut flow, run, event_seq, now, horizon)? {
                Admission::Created { replaces } => {
                    created.push(run.id.clone());
                    superseded.extend(replaces);
                }
                Admission::Skipped(why) => skipped.push(why),
            }
        }
        let waits = wait_candidates(tx, &event.name, event_seq)?;
        out.push(AppendOutcome {
            event_id: event.id.clone(),
            duplicate: false,
            created,
            skipped,
            waits,
            superseded,
        });
    }
    Ok(out)
}

/// Waits on `name` of runs other than those this event (`event_seq`) started.
fn wait_candidates(tx: &mut Tx<'_>, name: &str, event_seq: i64) -> Result<Vec<WaitCandidate>, Fail> {
    let rows = tx.query(
        "SELECT w.id, r.id, w.step_id, w.event_name, w.expr, w.expires_at, r.event_seq
         FROM waits w JOIN runs r ON r.seq = w.run_seq
         WHERE w.event_name = $1 AND r.event_seq <> $2
         ORDER BY w.created_at, w.id",
        &[&name, &event_seq],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let run_event_seq: i64 = col(&r, 6)?;
        out.push(WaitCandidate {
            wait: NewWait {
                id: col(&r, 0)?,
                run_id: RunId(col(&r, 1)?),
                step_id: col(&r, 2)?,
                event_name: col(&r, 3)?,
                expr: col(&r, 4)?,
                expires_at: col::<Option<i64>>(&r, 5)?.map(Timestamp::from_millis),
            },
            run_event: event_by_seq(tx, run_event_seq)?,
        });
    }
    Ok(out)
}
