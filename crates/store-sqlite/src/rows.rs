//! Row decoding and encoding shared by the table modules.

use learnflow_engine::event::Event;
use learnflow_engine::failure::ErrorInfo;
use learnflow_engine::ids::{NodeId, RunId};
use learnflow_engine::run::{ParentRef, RunRecord, RunStatus};
use learnflow_engine::step::{StepKind, StepRecord, StepStatus};
use learnflow_engine::store::StoreError;
use learnflow_engine::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::Value;

use crate::error::{corrupt, map_err};

/// The run columns, in the order [`run_from_row`] reads them (prefix `r.`-free).
pub(crate) const RUN_COLUMNS: &str =
    "seq, id, function_id, (SELECT id FROM events WHERE events.seq = runs.event_seq), \
     status, attempt, created_at, started_at, ended_at, available_at, output, error, replay_of, parent_run, \
     parent_step, lease_owner, owner";

pub(crate) fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_millis)
}

pub(crate) fn json_text(v: &Value) -> String {
    v.to_string()
}

pub(crate) fn parse_json(text: Option<String>) -> Result<Option<Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(format!("stored JSON: {e}"))))
        .transpose()
}

pub(crate) fn error_text(e: &ErrorInfo) -> String {
    serde_json::to_string(e).unwrap_or_else(|_| format!("{{\"name\":\"Error\",\"message\":{:?}}}", e.message))
}

pub(crate) fn parse_error(text: Option<String>) -> Result<Option<ErrorInfo>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(format!("stored error: {e}"))))
        .transpose()
}

/// Raw run columns (decoded in a second pass so JSON errors map to store errors).
pub(crate) struct RunRow {
    seq: i64,
    id: String,
    function_id: String,
    event_id: Option<String>,
    status: String,
    attempt: i64,
    created_at: i64,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    available_at: Option<i64>,
    output: Option<String>,
    error: Option<String>,
    replay_of: Option<String>,
    parent_run: Option<String>,
    parent_step: Option<String>,
    lease_owner: Option<String>,
    owner: Option<String>,
}

pub(crate) fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        function_id: r.get(2)?,
        event_id: r.get(3)?,
        status: r.get(4)?,
        attempt: r.get(5)?,
        created_at: r.get(6)?,
        started_at: r.get(7)?,
        ended_at: r.get(8)?,
        available_at: r.get(9)?,
        output: r.get(10)?,
        error: r.get(11)?,
        replay_of: r.get(12)?,
        parent_run: r.get(13)?,
        parent_step: r.get(14)?,
        lease_owner: r.get(15)?,
        owner: r.get(16)?,
    })
}

impl RunRow {
    pub(crate) fn decode(self) -> Result<RunRecord, StoreError> {
        let status: RunStatus = self.status.parse().map_err(corrupt)?;
        Ok(RunRecord {
            id: RunId(self.id),
            seq: self.seq,
            function_id: self.function_id,
            event_id: self.event_id.unwrap_or_default(),
            status,
            attempt: u32::try_from(self.attempt).unwrap_or(0),
            created_at: Timestamp::from_millis(self.created_at),
            started_at: ts(self.started_at),
            ended_at: ts(self.ended_at),
            available_at: ts(self.available_at),
            output: parse_json(self.output)?,
            error: parse_error(self.error)?,
            replay_of: self.replay_of.map(RunId),
            parent: match (self.parent_run, self.parent_step) {
                (Some(run), Some(step)) => Some(ParentRef {
                    run_id: RunId(run),
                    step_id: step,
                }),
                _ => None,
            },
            lease_owner: self.lease_owner.map(NodeId),
            owner: self.owner,
        })
    }
}

/// A run by id.
pub(crate) fn run_by_id(conn: &Connection, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
    let row = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([id.as_str()], run_row).optional())
        .map_err(map_err)?;
    row.map(RunRow::decode).transpose()
}

/// A run by sequence number.
pub(crate) fn run_by_seq(conn: &Connection, seq: i64) -> Result<Option<RunRecord>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE seq = ?1");
    let row = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([seq], run_row).optional())
        .map_err(map_err)?;
    row.map(RunRow::decode).transpose()
}

/// An event by its sequence number.
pub(crate) fn event_by_seq(conn: &Connection, seq: i64) -> Result<Event, StoreError> {
    let row = conn
        .prepare_cached("SELECT id, name, data, user, ts FROM events WHERE seq = ?1")
        .and_then(|mut s| {
            s.query_row([seq], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
        })
        .map_err(map_err)?;
    let (id, name, data, user, ts) = row;
    Ok(Event {
        id,
        name,
        data: serde_json::from_str(&data).map_err(|e| corrupt(format!("event data: {e}")))?,
        user: serde_json::from_str(&user).map_err(|e| corrupt(format!("event user: {e}")))?,
        ts: Timestamp::from_millis(ts),
    })
}

/// Inserts an event; returns its sequence number.
pub(crate) fn insert_event(conn: &Connection, e: &Event, now: Timestamp) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (id, name, data, user, ts, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(rusqlite::params![
            e.id,
            e.name,
            json_text(&e.data),
            json_text(&e.user),
            e.ts.millis(),
            now.millis()
        ])
    })
    .map_err(map_err)?;
    Ok(conn.last_insert_rowid())
}

pub(crate) const STEP_COLUMNS: &str =
    "step_id, name, kind, status, output, error, attempts, started_at, ended_at, wake_at, detail";

type StepRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn step_row(r: &Row<'_>) -> rusqlite::Result<StepRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn decode_step(row: StepRow) -> Result<StepRecord, StoreError> {
    let (step_id, name, kind, status, output, error, attempts, started_at, ended_at, wake_at, detail) = row;
    Ok(StepRecord {
        kind: StepKind::parse(&kind).ok_or_else(|| corrupt(format!("step kind '{kind}'")))?,
        status: StepStatus::parse(&status).ok_or_else(|| corrupt(format!("step status '{status}'")))?,
        output: parse_json(output)?,
        error: parse_error(error)?,
        attempts: serde_json::from_str(&attempts).map_err(|e| corrupt(format!("step attempts: {e}")))?,
        started_at: Timestamp::from_millis(started_at),
        ended_at: ts(ended_at),
        wake_at: ts(wake_at),
        detail: parse_json(detail)?,
        step_id,
        name,
    })
}

/// All steps of a run, in the order they were first recorded.
pub(crate) fn steps_of(conn: &Connection, run_seq: i64) -> Result<Vec<StepRecord>, StoreError> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_seq = ?1 ORDER BY rowid");
    let rows = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_map([run_seq], step_row)?.collect::<Result<Vec<_>, _>>())
        .map_err(map_err)?;
    rows.into_iter().map(decode_step).collect()
}

/// One step of a run.
pub(crate) fn step_of(
    conn: &Connection,
    run_seq: i64,
    step_id: &str,
) -> Result<Option<StepRecord>, StoreError> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_seq = ?1 AND step_id = ?2");
    let row = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(rusqlite::params![run_seq, step_id], step_row)
                .optional()
        })
        .map_err(map_err)?;
    row.map(decode_step).transpose()
}

/// Inserts or updates a step (keeping its original position).
pub(crate) fn upsert_step(conn: &Connection, run_seq: i64, s: &StepRecord) -> Result<(), StoreError> {
    let attempts = serde_json::to_string(&s.attempts).map_err(|e| corrupt(format!("attempts: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO steps (run_seq, step_id, name, kind, status, output, error, attempts, started_at, ended_at, wake_at, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(run_seq, step_id) DO UPDATE SET
           name = excluded.name, kind = excluded.kind, status = excluded.status, output = excluded.output,
           error = excluded.error, attempts = excluded.attempts, started_at = excluded.started_at,
           ended_at = excluded.ended_at, wake_at = excluded.wake_at, detail = excluded.detail",
    )
    .and_then(|mut st| {
        st.execute(rusqlite::params![
            run_seq,
            s.step_id,
            s.name,
            s.kind.as_str(),
            s.status.as_str(),
            s.output.as_ref().map(json_text),
            s.error.as_ref().map(error_text),
            attempts,
            s.started_at.millis(),
            s.ended_at.map(Timestamp::millis),
            s.wake_at.map(Timestamp::millis),
            s.detail.as_ref().map(json_text),
        ])
    })
    .map_err(map_err)?;
    Ok(())
}
