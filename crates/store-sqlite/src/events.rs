//! Received events and the runs they start.

use std::time::Duration;

use learnflow_engine::ids::RunId;
use learnflow_engine::store::{
    admit_run, Admission, AppendEvent, AppendOutcome, NewWait, StoreError, WaitCandidate,
};
use learnflow_engine::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::map_err;
use crate::rows::{event_by_seq, insert_event};

pub(crate) fn append_events(
    conn: &Connection,
    batch: Vec<AppendEvent>,
    now: Timestamp,
    window: Duration,
) -> Result<Vec<AppendOutcome>, StoreError> {
    let horizon = now.minus(window).millis();
    let mut out = Vec::with_capacity(batch.len());
    for AppendEvent { event, runs } in batch {
        let seen: Option<i64> = conn
            .prepare_cached("SELECT seq FROM events WHERE id = ?1 AND received_at > ?2 LIMIT 1")
            .and_then(|mut s| s.query_row(params![event.id, horizon], |r| r.get(0)).optional())
            .map_err(map_err)?;
        if seen.is_some() {
            out.push(AppendOutcome {
                event_id: event.id,
                duplicate: true,
                created: Vec::new(),
                skipped: Vec::new(),
                waits: Vec::new(),
                superseded: Vec::new(),
            });
            continue;
        }
        let event_seq = insert_event(conn, &event, now)?;
        let mut created = Vec::new();
        let mut skipped = Vec::new();
        let mut superseded = Vec::new();
        let mut flow = crate::flow::Flow(conn);
        for run in runs {
            match admit_run(&mut flow, &run, event_seq, now, horizon)? {
                Admission::Created { replaces } => {
                    created.push(run.id.clone());
                    superseded.extend(replaces);
                }
                Admission::Skipped(why) => skipped.push(why),
            }
        }
        let waits = wait_candidates(conn, &event.name, event_seq)?;
        out.push(AppendOutcome {
            event_id: event.id,
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
fn wait_candidates(conn: &Connection, name: &str, event_seq: i64) -> Result<Vec<WaitCandidate>, StoreError> {
    type Row = (
        String,
        i64,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<i64>,
        i64,
    );
    let rows: Vec<Row> = conn
        .prepare_cached(
            "SELECT w.id, w.run_seq, r.id, w.step_id, w.event_name, w.expr, w.expires_at, r.event_seq
             FROM waits w JOIN runs r ON r.seq = w.run_seq
             WHERE w.event_name = ?1 AND r.event_seq != ?2
             ORDER BY w.created_at, w.id",
        )
        .and_then(|mut s| {
            s.query_map(params![name, event_seq], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(map_err)?;
    rows.into_iter()
        .map(
            |(id, _run_seq, run_id, step_id, event_name, expr, expires_at, run_event_seq)| {
                Ok(WaitCandidate {
                    wait: NewWait {
                        id,
                        run_id: RunId(run_id),
                        step_id,
                        event_name,
                        expr,
                        expires_at: expires_at.map(Timestamp::from_millis),
                    },
                    run_event: event_by_seq(conn, run_event_seq)?,
                })
            },
        )
        .collect()
}
