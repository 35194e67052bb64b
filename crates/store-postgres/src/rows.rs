//! Row decoding and encoding shared by the table modules.

use learnflow_engine::event::Event;
use learnflow_engine::failure::ErrorInfo;
use learnflow_engine::ids::{NodeId, RunId};
use learnflow_engine::run::{ParentRef, RunRecord, RunStatus};
use learnflow_engine::step::{StepKind, StepRecord, StepStatus};
use learnflow_engine::Timestamp;
use postgres::Row;
use serde_json::Value;

use crate::fail::{col, corrupt, Fail};
use crate::pool::Tx;

/// The run columns, in the order [`decode_run`] reads them.
macro_rules! run_columns {
    () => {
        "seq, id, function_id, (SELECT id FROM events WHERE events.seq = runs.event_seq), \
         status, attempt, created_at, started_at, ended_at, available_at, output, error, replay_of, \
         parent_run, parent_step, lease_owner, owner"
    };
}
pub(crate) use run_columns;

/// Number of columns [`run_columns!`] yields.
pub(crate) const RUN_COLUMN_COUNT: usize = 17;

pub(crate) fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_millis)
}

pub(crate) fn error_json(e: &ErrorInfo) -> Value {
    serde_json::to_value(e).unwrap_or_else(|_| serde_json::json!({"name": "Error", "message": e.message}))
}

pub(crate) fn parse_error(v: Option<Value>) -> Result<Option<ErrorInfo>, Fail> {
    v.map(|v| serde_json::from_value(v).map_err(|e| corrupt(format!("stored error: {e}"))))
        .transpose()
}

/// Decodes a run from [`run_columns!`].
pub(crate) fn decode_run(r: &Row) -> Result<RunRecord, Fail> {
    let status: String = col(r, 4)?;
    let status: RunStatus = status.parse().map_err(corrupt)?;
    let parent_run: Option<String> = col(r, 13)?;
    let parent_step: Option<String> = col(r, 14)?;
    let event_id: Option<String> = col(r, 3)?;
    let attempt: i32 = col(r, 5)?;
    Ok(RunRecord {
        seq: col(r, 0)?,
        id: RunId(col(r, 1)?),
        function_id: col(r, 2)?,
        event_id: event_id.unwrap_or_default(),
        status,
        attempt: u32::try_from(attempt).unwrap_or(0),
        created_at: Timestamp::from_millis(col(r, 6)?),
        started_at: ts(col(r, 7)?),
        ended_at: ts(col(r, 8)?),
        available_at: ts(col(r, 9)?),
        output: col(r, 10)?,
        error: parse_error(col(r, 11)?)?,
        replay_of: col::<Option<String>>(r, 12)?.map(RunId),
        parent: match (parent_run, parent_step) {
            (Some(run), Some(step)) => Some(ParentRef {
                run_id: RunId(run),
                step_id: step,
            }),
            _ => None,
        },
        lease_owner: col::<Option<String>>(r, 15)?.map(NodeId),
        owner: col(r, 16)?,
    })
}

/// A run by id, its row locked until the transaction ends.
pub(crate) fn lock_run_by_id(tx: &mut Tx<'_>, id: &RunId) -> Result<Option<RunRecord>, Fail> {
    tx.query_opt(
        concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1 FOR UPDATE"),
        &[&id.as_str()],
    )?
    .map(|r| decode_run(&r))
    .transpose()
}

/// A run by sequence number, its row locked until the transaction ends.
pub(crate) fn lock_run_by_seq(tx: &mut Tx<'_>, seq: i64) -> Result<Option<RunRecord>, Fail> {
    tx.query_opt(
        concat!("SELECT ", run_columns!(), " FROM runs WHERE seq = $1 FOR UPDATE"),
        &[&seq],
    )?
    .map(|r| decode_run(&r))
    .transpose()
}

/// A run by id (no lock).
pub(crate) fn run_by_id(tx: &mut Tx<'_>, id: &RunId) -> Result<Option<RunRecord>, Fail> {
    tx.query_opt(
        concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1"),
        &[&id.as_str()],
    )?
    .map(|r| decode_run(&r))
    .transpose()
}

/// An event by its sequence number.
pub(crate) fn event_by_seq(tx: &mut Tx<'_>, seq: i64) -> Result<Event, Fail> {
    let r = tx.query_one(
        "SELECT id, name, data, \"user\", ts FROM events WHERE seq = $1",
        &[&seq],
    )?;
    Ok(Event {
        id: col(&r, 0)?,
        name: col(&r, 1)?,
        data: col(&r, 2)?,
        user: col(&r, 3)?,
        ts: Timestamp::from_millis(col(&r, 4)?),
    })
}

/// Inserts an event; returns its sequence number.
pub(crate) fn insert_event(tx: &mut Tx<'_>, e: &Event, now: Timestamp) -> Result<i64, Fail> {
    let r = tx.query_one(
        "INSERT INTO events (id, name, data, \"user\", ts, received_at) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING seq",
        &[&e.id, &e.name, &e.data, &e.user, &e.ts.millis(), &now.millis()],
    )?;
    col(&r, 0)
}

macro_rules! step_columns {
    () => {
        "step_id, name, kind, status, output, error, attempts, started_at, ended_at, wake_at, detail"
    };
}

fn decode_step(r: &Row) -> Result<StepRecord, Fail> {
    let kind: String = col(r, 2)?;
    let status: String = col(r, 3)?;
    let attempts: Value = col(r, 6)?;
    Ok(StepRecord {
        step_id: col(r, 0)?,
        name: col(r, 1)?,
        kind: StepKind::parse(&kind).ok_or_else(|| corrupt(format!("step kind '{kind}'")))?,
        status: StepStatus::parse(&status).ok_or_else(|| corrupt(format!("step status '{status}'")))?,
        output: col(r, 4)?,
        error: parse_error(col(r, 5)?)?,
        attempts: serde_json::from_value(attempts).map_err(|e| corrupt(format!("step attempts: {e}")))?,
        started_at: Timestamp::from_millis(col(r, 7)?),
        ended_at: ts(col(r, 8)?),
        wake_at: ts(col(r, 9)?),
        detail: col(r, 10)?,
    })
}

/// All steps of a run, in the order they were first recorded.
pub(crate) fn steps_of(tx: &mut Tx<'_>, run_seq: i64) -> Result<Vec<StepRecord>, Fail> {
    tx.query(
        concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE run_seq = $1 ORDER BY pos"
        ),
        &[&run_seq],
    )?
    .iter()
    .map(decode_step)
    .collect()
}

/// One step of a run.
pub(crate) fn step_of(tx: &mut Tx<'_>, run_seq: i64, step_id: &str) -> Result<Option<StepRecord>, Fail> {
    tx.query_opt(
        concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE run_seq = $1 AND step_id = $2"
        ),
        &[&run_seq, &step_id],
    )?
    .map(|r| decode_step(&r))
    .transpose()
}

/// Inserts or updates a step (keeping its original position).
/// The columns a `steps` row is written with (run seq first), for `INSERT`s.
macro_rules! step_columns {
    () => {
        "(run_seq, step_id, name, kind, status, output, error, attempts, started_at, ended_at, wake_at, detail)"
    };
}
pub(crate) use step_columns;

/// A step written again replaces every column but its key.
macro_rules! step_conflict {
    () => {
        "ON CONFLICT (run_seq, step_id) DO UPDATE SET \
         name = EXCLUDED.name, kind = EXCLUDED.kind, status = EXCLUDED.status, output = EXCLUDED.output, \
         error = EXCLUDED.error, attempts = EXCLUDED.attempts, started_at = EXCLUDED.started_at, \
         ended_at = EXCLUDED.ended_at, wake_at = EXCLUDED.wake_at, detail = EXCLUDED.detail"
    };
}
pub(crate) use step_conflict;

pub(crate) fn upsert_step(tx: &mut Tx<'_>, run_seq: i64, s: &StepRecord) -> Result<(), Fail> {
    let attempts = serde_json::to_value(&s.attempts).map_err(|e| corrupt(format!("attempts: {e}")))?;
    tx.execute(
        concat!(
            "INSERT INTO steps ",
            step_columns!(),
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ",
            step_conflict!()
        ),
        &[
            &run_seq,
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
    Ok(())
}
