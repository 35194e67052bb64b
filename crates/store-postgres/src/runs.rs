//! Run rows. Every write for a run first locks its row (`FOR UPDATE`), which
//! serialises writers of one run across nodes the way the SQLite store's single writer
//! does in one process.

use learnflow_engine::failure::ErrorInfo;
use learnflow_engine::ids::RunId;
use learnflow_engine::run::{ReplayFrom, RunDetail, RunFilter, RunPage, RunStatus};
use learnflow_engine::step::StepStatus;
use learnflow_engine::store::{
    CancelResult, FinishOutcome, Lease, NewRun, ParentWake, RecordAck, ReplayOutcome, RunOutcome,
    SuspendOutcome,
};
use learnflow_engine::Timestamp;
use postgres::types::ToSql;

use crate::fail::{col, corrupt, Fail};
use crate::pool::Tx;
use crate::rows::{
    decode_run, error_json, event_by_seq, lock_run_by_id, lock_run_by_seq, run_by_id, run_columns, step_of,
    steps_of, upsert_step,
};

/// Inserts a run (and its `cancel_on` waits); returns its sequence number.
pub(crate) fn insert_run(
    tx: &mut Tx<'_>,
    run: &NewRun,
    event_seq: i64,
    available_at: Timestamp,
    now: Timestamp,
) -> Result<i64, Fail> {
    let r = tx.query_one(
        "INSERT INTO runs (id, function_id, event_seq, status, attempt, created_at, available_at, start_deadline,
                           finish_timeout, replay_of, parent_run, parent_step, owner)
         VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING seq",
        &[
            &run.id.as_str(),
            &run.function_id,
            &event_seq,
            &now.millis(),
            &available_at.millis(),
            &run.start_deadline.map(Timestamp::millis),
            &run.finish_timeout_ms,
            &run.replay_of.as_ref().map(RunId::as_str),
            &run.parent.as_ref().map(|p| p.run_id.as_str()),
            &run.parent.as_ref().map(|p| p.step_id.as_str()),
            &run.owner,
        ],
    )?;
    let seq: i64 = col(&r, 0)?;
    for w in &run.cancel_waits {
        crate::waits::insert_wait(tx, seq, w, now)?;
    }
    Ok(seq)
}

/// The state of a run as a lease-holding write sees it.
pub(crate) enum LeaseCheck {
    Held,
    Cancelled,
    Lost,
}

/// Locks the run's row and tells whether `lease` still holds it.
pub(crate) fn check_lease(tx: &mut Tx<'_>, lease: &Lease) -> Result<LeaseCheck, Fail> {
    let row = tx.query_opt(
        "SELECT status, lease_owner FROM runs WHERE seq = $1 FOR UPDATE",
        &[&lease.run_seq],
    )?;
    let Some(row) = row else {
        return Ok(LeaseCheck::Lost);
    };
    let (status, owner): (String, Option<String>) = (col(&row, 0)?, col(&row, 1)?);
    Ok(
        if status == "running" && owner.as_deref() == Some(lease.node.as_str()) {
            LeaseCheck::Held
        } else if status == "cancelled" {
            LeaseCheck::Cancelled
        } else {
            LeaseCheck::Lost
        },
    )
}

/// Settles the parent's invoke step when a child run ends.
pub(crate) fn settle_parent(
    tx: &mut Tx<'_>,
    parent_run: Option<String>,
    parent_step: Option<String>,
    outcome: &RunOutcome,
    child: &RunId,
    now: Timestamp,
) -> Result<Option<ParentWake>, Fail> {
    let (Some(parent_run), Some(parent_step)) = (parent_run, parent_step) else {
        return Ok(None);
    };
    let Some(parent) = lock_run_by_id(tx, &RunId(parent_run))? else {
        return Ok(None);
    };
    let Some(mut step) = step_of(tx, parent.seq, &parent_step)? else {
        return Ok(None);
    };
    if step.status != StepStatus::Invoking {
        return Ok(None);
    }
    outcome.settle_invoke_step(&mut step, child, now);
    upsert_step(tx, parent.seq, &step)?;
    let queued = matches!(parent.status, RunStatus::Sleeping | RunStatus::Waiting);
    if queued {
        wake_run(tx, parent.seq, now)?;
    }
    Ok(Some(ParentWake {
        run_id: parent.id,
        step,
        queued,
        lease_owner: parent.lease_owner,
    }))
}

/// Queues a parked run now.
pub(crate) fn wake_run(tx: &mut Tx<'_>, seq: i64, now: Timestamp) -> Result<(), Fail> {
    tx.execute(
        "UPDATE runs SET status = 'queued', available_at = $2 WHERE seq = $1 AND status IN ('sleeping', 'waiting')",
        &[&seq, &now.millis()],
    )?;
    Ok(())
}

pub(crate) fn get_run(tx: &mut Tx<'_>, id: &RunId) -> Result<Option<RunDetail>, Fail> {
    let Some(run) = run_by_id(tx, id)? else {
        return Ok(None);
    };
    let r = tx.query_one("SELECT event_seq FROM runs WHERE seq = $1", &[&run.seq])?;
    let event = event_by_seq(tx, col(&r, 0)?)?;
    let steps = steps_of(tx, run.seq)?;
    Ok(Some(RunDetail { run, event, steps }))
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn filter_sql(filter: &RunFilter, with_status: bool) -> (String, Params) {
    let mut clauses = Vec::new();
    let mut args: Params = Vec::new();
    if let Some(f) = &filter.function_id {
        args.push(Box::new(f.clone()));
        clauses.push(format!("function_id = ${}", args.len()));
    }
    if with_status && !filter.statuses.is_empty() {
        let list: Vec<String> = filter.statuses.iter().map(|s| s.as_str().to_string()).collect();
        args.push(Box::new(list));
        clauses.push(format!("status = ANY(${})", args.len()));
    }
    if let Some(t) = filter.since {
        args.push(Box::new(t.millis()));
        clauses.push(format!("created_at >= ${}", args.len()));
    }
    if let Some(t) = filter.until {
        args.push(Box::new(t.millis()));
        clauses.push(format!("created_at < ${}", args.len()));
    }
    if let Some(o) = &filter.owner {
        args.push(Box::new(o.clone()));
        clauses.push(format!("owner = ${}", args.len()));
    }
    if let Some(e) = &filter.event_id {
        args.push(Box::new(e.clone()));
        clauses.push(format!(
            "event_seq IN (SELECT seq FROM events WHERE id = ${})",
            args.len()
        ));
    }
    if with_status {
        if let Some(c) = filter.before_seq {
            args.push(Box::new(c));
            clauses.push(format!("seq < ${}", args.len()));
        }
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, args)
}

fn refs(args: &Params) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect()
}

pub(crate) fn list_runs(tx: &mut Tx<'_>, filter: &RunFilter) -> Result<RunPage, Fail> {
    let (clause, args) = filter_sql(filter, true);
    let limit = i64::from(filter.page_size());
    let sql = format!(
        "SELECT {} FROM runs {clause} ORDER BY seq DESC LIMIT {}",
        run_columns!(),
        limit + 1
    );
    let rows = tx.query_dynamic(&sql, &refs(&args))?;
    let mut runs = rows.iter().map(decode_run).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if runs.len() as i64 > limit {
        runs.truncate(limit as usize);
        runs.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(RunPage { runs, next_cursor })
}

pub(crate) fn count_runs(tx: &mut Tx<'_>, filter: &RunFilter) -> Result<Vec<(RunStatus, u64)>, Fail> {
    let (clause, args) = filter_sql(filter, false);
    let sql = format!("SELECT status, COUNT(*) FROM runs {clause} GROUP BY status");
    let rows = tx.query_dynamic(&sql, &refs(&args))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (status, n): (String, i64) = (col(&r, 0)?, col(&r, 1)?);
        if let Ok(st) = status.parse() {
            out.push((st, n.max(0) as u64));
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn suspend_run(
    tx: &mut Tx<'_>,
    lease: &Lease,
    status: RunStatus,
    wake_at: Option<Timestamp>,
    watched: &[String],
) -> Result<SuspendOutcome, Fail> {
    match check_lease(tx, lease)? {
        LeaseCheck::Held => {}
        LeaseCheck::Cancelled => return Ok(SuspendOutcome::Cancelled),
        LeaseCheck::Lost => return Ok(SuspendOutcome::LeaseLost),
    }
    for step_id in watched {
        if step_of(tx, lease.run_seq, step_id)?.is_some_and(|s| s.status.is_settled()) {
            return Ok(SuspendOutcome::Woken);
        }
    }
    tx.execute(
        "UPDATE runs SET status = $2, available_at = $3, lease_owner = NULL, lease_expires = NULL WHERE seq = $1",
        &[&lease.run_seq, &status.as_str(), &wake_at.map(Timestamp::millis)],
    )?;
    Ok(SuspendOutcome::Suspended)
}

pub(crate) fn retry_run(
    tx: &mut Tx<'_>,
    lease: &Lease,
    attempt: u32,
    at: Timestamp,
    error: &ErrorInfo,
) -> Result<RecordAck, Fail> {
    match check_lease(tx, lease)? {
        LeaseCheck::Held => {}
        LeaseCheck::Cancelled => return Ok(RecordAck::Cancelled),
        LeaseCheck::Lost => return Ok(RecordAck::LeaseLost),
    }
    let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
    tx.execute(
        "UPDATE runs SET status = 'queued', attempt = $2, available_at = $3, error = $4,
                         lease_owner = NULL, lease_expires = NULL WHERE seq = $1",
        &[&lease.run_seq, &attempt, &at.millis(), &error_json(error)],
    )?;
    Ok(RecordAck::Recorded)
}

/// Ends a run with a status and output/error; clears its waits and settles its parent.
fn end_run(
    tx: &mut Tx<'_>,
    seq: i64,
    status: RunStatus,
    outcome: &RunOutcome,
    now: Timestamp,
) -> Result<Option<ParentWake>, Fail> {
    let (output, error) = match outcome {
        RunOutcome::Completed(v) => (Some(v.clone()), None),
        RunOutcome::Failed(e) => (None, Some(error_json(e))),
    };
    let r = tx.query_one(
        "UPDATE runs SET status = $2, output = $3, error = $4, ended_at = $5, available_at = NULL,
                         start_deadline = NULL, finish_deadline = NULL, lease_owner = NULL, lease_expires = NULL
         WHERE seq = $1 RETURNING id, parent_run, parent_step",
        &[&seq, &status.as_str(), &output, &error, &now.millis()],
    )?;
    let (id, parent_run, parent_step): (String, Option<String>, Option<String>) =
        (col(&r, 0)?, col(&r, 1)?, col(&r, 2)?);
    tx.execute("DELETE FROM waits WHERE run_seq = $1", &[&seq])?;
    settle_parent(tx, parent_run, parent_step, outcome, &RunId(id), now)
}

pub(crate) fn finish_run(
    tx: &mut Tx<'_>,
    lease: &Lease,
    outcome: &RunOutcome,
    now: Timestamp,
) -> Result<FinishOutcome, Fail> {
    let ack = match check_lease(tx, lease)? {
        LeaseCheck::Held => RecordAck::Recorded,
        LeaseCheck::Cancelled => RecordAck::Cancelled,
        LeaseCheck::Lost => RecordAck::LeaseLost,
    };
    if ack != RecordAck::Recorded {
        return Ok(FinishOutcome { ack, parent: None });
    }
    let status = match outcome {
        RunOutcome::Completed(_) => RunStatus::Completed,
        RunOutcome::Failed(_) => RunStatus::Failed,
    };
    let parent = end_run(tx, lease.run_seq, status, outcome, now)?;
    Ok(FinishOutcome { ack, parent })
}

pub(crate) fn cancel_seq(
    tx: &mut Tx<'_>,
    seq: i64,
    reason: &ErrorInfo,
    now: Timestamp,
) -> Result<CancelResult, Fail> {
    let Some(run) = lock_run_by_seq(tx, seq)? else {
        return Ok(CancelResult::NotFound);
    };
    if run.status.is_terminal() {
        return Ok(CancelResult::AlreadyEnded(run.status));
    }
    let parent = end_run(
        tx,
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
    tx: &mut Tx<'_>,
    id: &RunId,
    reason: &ErrorInfo,
    now: Timestamp,
) -> Result<CancelResult, Fail> {
    match tx.query_opt("SELECT seq FROM runs WHERE id = $1", &[&id.as_str()])? {
        None => Ok(CancelResult::NotFound),
        Some(r) => cancel_seq(tx, col(&r, 0)?, reason, now),
    }
}

pub(crate) fn release_run(tx: &mut Tx<'_>, lease: &Lease, now: Timestamp) -> Result<(), Fail> {
    tx.execute(
        "UPDATE runs SET status = 'queued', available_at = $3, lease_owner = NULL, lease_expires = NULL
         WHERE seq = $1 AND lease_owner = $2 AND status = 'running'",
        &[&lease.run_seq, &lease.node.as_str(), &now.millis()],
    )?;
    Ok(())
}

pub(crate) fn create_replay(
    tx: &mut Tx<'_>,
    source: &RunId,
    new_id: &RunId,
    from: ReplayFrom,
    now: Timestamp,
) -> Result<ReplayOutcome, Fail> {
    let Some(r) = tx.query_opt(
        "SELECT seq, status, function_id, event_seq, finish_timeout, owner FROM runs WHERE id = $1",
        &[&source.as_str()],
    )?
    else {
        return Ok(ReplayOutcome::NotFound);
    };
    let old_seq: i64 = col(&r, 0)?;
    let status: String = col(&r, 1)?;
    let status: RunStatus = status.parse().map_err(corrupt)?;
    if !matches!(status, RunStatus::Failed | RunStatus::Cancelled) {
        return Ok(ReplayOutcome::WrongState(status));
    }
    let mut run = NewRun::new(new_id.clone(), col::<String>(&r, 2)?, now);
    run.replay_of = Some(source.clone());
    run.finish_timeout_ms = col(&r, 4)?;
    run.owner = col(&r, 5)?;
    let seq = insert_run(tx, &run, col(&r, 3)?, now, now)?;
    if from == ReplayFrom::FailedStep {
        let kept = learnflow_engine::run::steps_kept_for_replay(steps_of(tx, old_seq)?);
        for s in &kept {
            upsert_step(tx, seq, s)?;
        }
    }
    match lock_run_by_seq(tx, seq)? {
        Some(r) => Ok(ReplayOutcome::Created(Box::new(r))),
        None => Ok(ReplayOutcome::NotFound),
    }
}
