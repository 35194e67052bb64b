//! Run rows.

use learnflow_engine::failure::ErrorInfo;
use learnflow_engine::ids::RunId;
use learnflow_engine::run::{ReplayFrom, RunDetail, RunFilter, RunPage, RunStatus};
use learnflow_engine::step::StepStatus;
use learnflow_engine::store::{
    CancelResult, FinishOutcome, Lease, NewRun, ParentWake, RecordAck, ReplayOutcome, RunOutcome, StoreError,
    SuspendOutcome,
};
use learnflow_engine::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::map_err;
use crate::rows::{
    error_text, event_by_seq, json_text, run_by_id, run_by_seq, run_row, step_of, steps_of, upsert_step,
    RunRow, RUN_COLUMNS,
};

/// Inserts a run (and its `cancel_on` waits); returns its sequence number.
pub(crate) fn insert_run(
    conn: &Connection,
    run: &NewRun,
    event_seq: i64,
    available_at: Timestamp,
    now: Timestamp,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO runs (id, function_id, event_seq, status, attempt, created_at, available_at, start_deadline,
                           finish_timeout, replay_of, parent_run, parent_step, owner)
         VALUES (?1, ?2, ?3, 'queued', 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .and_then(|mut s| {
        s.execute(params![
            run.id.as_str(),
            run.function_id,
            event_seq,
            now.millis(),
            available_at.millis(),
            run.start_deadline.map(Timestamp::millis),
            run.finish_timeout_ms,
            run.replay_of.as_ref().map(RunId::as_str),
            run.parent.as_ref().map(|p| p.run_id.as_str().to_string()),
            run.parent.as_ref().map(|p| p.step_id.clone()),
            run.owner,
        ])
    })
    .map_err(map_err)?;
    let seq = conn.last_insert_rowid();
    for w in &run.cancel_waits {
        crate::waits::insert_wait(conn, seq, w, now)?;
    }
    Ok(seq)
}

/// The state of a run as a lease-holding write sees it.
pub(crate) enum LeaseCheck {
    Held,
    Cancelled,
    Lost,
}

pub(crate) fn check_lease(conn: &Connection, lease: &Lease) -> Result<LeaseCheck, StoreError> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT status, lease_owner FROM runs WHERE seq = ?1")
        .and_then(|mut s| {
            s.query_row([lease.run_seq], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(map_err)?;
    Ok(match row {
        Some((status, owner)) if status == "running" && owner.as_deref() == Some(lease.node.as_str()) => {
            LeaseCheck::Held
        }
        Some((status, _)) if status == "cancelled" => LeaseCheck::Cancelled,
        _ => LeaseCheck::Lost,
    })
}

/// Settles the parent's invoke step when a child run ends.
pub(crate) fn settle_parent(
    conn: &Connection,
    parent_run: Option<String>,
    parent_step: Option<String>,
    outcome: &RunOutcome,
    child: &RunId,
    now: Timestamp,
) -> Result<Option<ParentWake>, StoreError> {
    let (Some(parent_run), Some(parent_step)) = (parent_run, parent_step) else {
        return Ok(None);
    };
    let Some(parent) = run_by_id(conn, &RunId(parent_run))? else {
        return Ok(None);
    };
    let Some(mut step) = step_of(conn, parent.seq, &parent_step)? else {
        return Ok(None);
    };
    if step.status != StepStatus::Invoking {
        return Ok(None);
    }
    outcome.settle_invoke_step(&mut step, child, now);
    upsert_step(conn, parent.seq, &step)?;
    let queued = matches!(parent.status, RunStatus::Sleeping | RunStatus::Waiting);
    if queued {
        wake_run(conn, parent.seq, now)?;
    }
    Ok(Some(ParentWake {
        run_id: parent.id,
        step,
        queued,
        lease_owner: parent.lease_owner,
    }))
}

/// Queues a parked run now.
pub(crate) fn wake_run(conn: &Connection, seq: i64, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE runs SET status = 'queued', available_at = ?2 WHERE seq = ?1 AND status IN ('sleeping', 'waiting')",
    )
    .and_then(|mut s| s.execute(params![seq, now.millis()]))
    .map_err(map_err)?;
    Ok(())
}

pub(crate) fn get_run(conn: &Connection, id: &RunId) -> Result<Option<RunDetail>, StoreError> {
    let Some(run) = run_by_id(conn, id)? else {
        return Ok(None);
    };
    let event_seq: i64 = conn
        .prepare_cached("SELECT event_seq FROM runs WHERE seq = ?1")
        .and_then(|mut s| s.query_row([run.seq], |r| r.get(0)))
        .map_err(map_err)?;
    let event = event_by_seq(conn, event_seq)?;
    let steps = steps_of(conn, run.seq)?;
    Ok(Some(RunDetail { run, event, steps }))
}

fn filter_sql(filter: &RunFilter, with_status: bool) -> (String, Vec<SqlValue>) {
    let mut clauses = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(f) = &filter.function_id {
        args.push(SqlValue::Text(f.clone()));
        clauses.push(format!("function_id = ?{}", args.len()));
    }
    if with_status && !filter.statuses.is_empty() {
        let list: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        clauses.push(format!("status IN ({})", list.join(", ")));
    }
    if let Some(t) = filter.since {
        args.push(SqlValue::Integer(t.millis()));
        clauses.push(format!("created_at >= ?{}", args.len()));
    }
    if let Some(t) = filter.until {
        args.push(SqlValue::Integer(t.millis()));
        clauses.push(format!("created_at < ?{}", args.len()));
    }
    if let Some(o) = &filter.owner {
        args.push(SqlValue::Text(o.clone()));
        clauses.push(format!("owner = ?{}", args.len()));
    }
    if let Some(e) = &filter.event_id {
        args.push(SqlValue::Text(e.clone()));
        clauses.push(format!(
            "event_seq IN (SELECT seq FROM events WHERE id = ?{})",
            args.len()
        ));
    }
    if with_status {
        if let Some(c) = filter.before_seq {
            args.push(SqlValue::Integer(c));
            clauses.push(format!("seq < ?{}", args.len()));
        }
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, args)
}

pub(crate) fn list_runs(conn: &Connection, filter: &RunFilter) -> Result<RunPage, StoreError> {
    let (clause, args) = filter_sql(filter, true);
    let limit = i64::from(filter.page_size());
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs {clause} ORDER BY seq DESC LIMIT {}",
        limit + 1
    );
    let rows: Vec<RunRow> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(args), run_row)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(map_err)?;
    let mut runs = rows
        .into_iter()
        .map(RunRow::decode)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if runs.len() as i64 > limit {
        runs.truncate(limit as usize);
        runs.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(RunPage { runs, next_cursor })
}

pub(crate) fn count_runs(conn: &Connection, filter: &RunFilter) -> Result<Vec<(RunStatus, u64)>, StoreError> {
    let (clause, args) = filter_sql(filter, false);
    let sql = format!("SELECT status, COUNT(*) FROM runs {clause} GROUP BY status");
    let rows: Vec<(String, i64)> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(map_err)?;
    let mut out: Vec<(RunStatus, u64)> = rows
        .into_iter()
        .filter_map(|(s, n)| s.parse().ok().map(|st| (st, n.max(0) as u64)))
        .collect();
    out.sort();
    Ok(out)
}

pub(crate) fn suspend_run(
    conn: &Connection,
    lease: &Lease,
    status: RunStatus,
    wake_at: Option<Timestamp>,
    watched: &[String],
) -> Result<SuspendOutcome, StoreError> {
    match check_lease(conn, lease)? {
        LeaseCheck::Held => {}
        LeaseCheck::Cancelled => return Ok(SuspendOutcome::Cancelled),
        LeaseCheck::Lost => return Ok(SuspendOutcome::LeaseLost),
    }
    for step_id in watched {
        if step_of(conn, lease.run_seq, step_id)?.is_some_and(|s| s.status.is_settled()) {
            return Ok(SuspendOutcome::Woken);
        }
    }
    conn.prepare_cached(
        "UPDATE runs SET status = ?2, available_at = ?3, lease_owner = NULL, lease_expires = NULL WHERE seq = ?1",
    )
    .and_then(|mut s| s.execute(params![lease.run_seq, status.as_str(), wake_at.map(Timestamp::millis)]))
    .map_err(map_err)?;
    Ok(SuspendOutcome::Suspended)
}

pub(crate) fn retry_run(
    conn: &Connection,
    lease: &Lease,
    attempt: u32,
    at: Timestamp,
    error: &ErrorInfo,
) -> Result<RecordAck, StoreError> {
    match check_lease(conn, lease)? {
        LeaseCheck::Held => {}
        LeaseCheck::Cancelled => return Ok(RecordAck::Cancelled),
        LeaseCheck::Lost => return Ok(RecordAck::LeaseLost),
    }
    conn.prepare_cached(
        "UPDATE runs SET status = 'queued', attempt = ?2, available_at = ?3, error = ?4,
                         lease_owner = NULL, lease_expires = NULL WHERE seq = ?1",
    )
    .and_then(|mut s| s.execute(params![lease.run_seq, attempt, at.millis(), error_text(error)]))
    .map_err(map_err)?;
    Ok(RecordAck::Recorded)
}

/// Ends a run with a status and output/error; clears its waits and settles its parent.
fn end_run(
    conn: &Connection,
    seq: i64,
    status: RunStatus,
    outcome: &RunOutcome,
    now: Timestamp,
) -> Result<Option<ParentWake>, StoreError> {
    let (output, error) = match outcome {
        RunOutcome::Completed(v) => (Some(json_text(v)), None),
        RunOutcome::Failed(e) => (None, Some(error_text(e))),
    };
    let (id, parent_run, parent_step): (String, Option<String>, Option<String>) = conn
        .prepare_cached(
            "UPDATE runs SET status = ?2, output = ?3, error = ?4, ended_at = ?5, available_at = NULL,
                             start_deadline = NULL, finish_deadline = NULL, lease_owner = NULL, lease_expires = NULL
             WHERE seq = ?1 RETURNING id, parent_run, parent_step",
        )
        .and_then(|mut s| {
            s.query_row(params![seq, status.as_str(), output, error, now.millis()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
        })
        .map_err(map_err)?;
    conn.prepare_cached("DELETE FROM waits WHERE run_seq = ?1")
        .and_then(|mut s| s.execute([seq]))
        .map_err(map_err)?;
    settle_parent(conn, parent_run, parent_step, outcome, &RunId(id), now)
}

pub(crate) fn finish_run(
    conn: &Connection,
    lease: &Lease,
    outcome: &RunOutcome,
    now: Timestamp,
) -> Result<FinishOutcome, StoreError> {
    match check_lease(conn, lease)? {
        LeaseCheck::Held => {}
        LeaseCheck::Cancelled => {
            return Ok(FinishOutcome {
                ack: RecordAck::Cancelled,
                parent: None,
            })
        }
        LeaseCheck::Lost => {
            return Ok(FinishOutcome {
                ack: RecordAck::LeaseLost,
                parent: None,
            })
        }
    }
    let status = match outcome {
        RunOutcome::Completed(_) => RunStatus::Completed,
        RunOutcome::Failed(_) => RunStatus::Failed,
    };
    let parent = end_run(conn, lease.run_seq, status, outcome, now)?;
    Ok(FinishOutcome {
        ack: RecordAck::Recorded,
        parent,
    })
}

pub(crate) fn cancel_seq(
    conn: &Connection,
    seq: i64,
    reason: &ErrorInfo,
    now: Timestamp,
) -> Result<CancelResult, StoreError> {
    let Some(run) = run_by_seq(conn, seq)? else {
        return Ok(CancelResult::NotFound);
    };
    if run.status.is_terminal() {
        return Ok(CancelResult::AlreadyEnded(run.status));
    }
    let parent = end_run(
        conn,
        seq,
        RunStatus::Cancelled,
        &RunOutcome::Failed(reason.clone()),
        now,
    )?;
    Ok(CancelResult::Cancelled {
        function_id: run.function_id,
        previous: run.status,
        lease_owner: run.lease_owner,
        parent: parent.map(Box::new),
    })
}

pub(crate) fn cancel_run(
    conn: &Connection,
    id: &RunId,
    reason: &ErrorInfo,
    now: Timestamp,
) -> Result<CancelResult, StoreError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM runs WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)).optional())
        .map_err(map_err)?;
    match seq {
        None => Ok(CancelResult::NotFound),
        Some(seq) => cancel_seq(conn, seq, reason, now),
    }
}

pub(crate) fn release_run(conn: &Connection, lease: &Lease, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE runs SET status = 'queued', available_at = ?3, lease_owner = NULL, lease_expires = NULL
         WHERE seq = ?1 AND lease_owner = ?2 AND status = 'running'",
    )
    .and_then(|mut s| s.execute(params![lease.run_seq, lease.node.as_str(), now.millis()]))
    .map_err(map_err)?;
    Ok(())
}

pub(crate) fn create_replay(
    conn: &Connection,
    source: &RunId,
    new_id: RunId,
    from: ReplayFrom,
    now: Timestamp,
) -> Result<ReplayOutcome, StoreError> {
    #[allow(clippy::type_complexity)]
    let row: Option<(i64, String, String, i64, Option<i64>, Option<String>)> = conn
        .prepare_cached(
            "SELECT seq, status, function_id, event_seq, finish_timeout, owner FROM runs WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([source.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .optional()
        })
        .map_err(map_err)?;
    let Some((old_seq, status, function_id, event_seq, finish_timeout, owner)) = row else {
        return Ok(ReplayOutcome::NotFound);
    };
    let status: RunStatus = status.parse().map_err(crate::error::corrupt)?;
    if !matches!(status, RunStatus::Failed | RunStatus::Cancelled) {
        return Ok(ReplayOutcome::WrongState(status));
    }
    let mut run = NewRun::new(new_id.clone(), function_id, now);
    run.replay_of = Some(source.clone());
    run.finish_timeout_ms = finish_timeout;
    run.owner = owner;
    let seq = insert_run(conn, &run, event_seq, now, now)?;
    if from == ReplayFrom::FailedStep {
        let kept = learnflow_engine::run::steps_kept_for_replay(steps_of(conn, old_seq)?);
        for s in &kept {
            upsert_step(conn, seq, s)?;
        }
    }
    match run_by_seq(conn, seq)? {
        Some(r) => Ok(ReplayOutcome::Created(Box::new(r))),
        None => Ok(ReplayOutcome::NotFound),
    }
}
