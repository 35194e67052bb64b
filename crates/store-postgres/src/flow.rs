//! Throttle state (GCRA) and idempotency keys, serialised across nodes with advisory
//! locks so a limit holds for all of them together.

use learnflow_engine::ids::RunId;
use learnflow_engine::schedule::throttle;
use learnflow_engine::store::{BatchReservation, DebounceReservation, ThrottleReservation};
use learnflow_engine::Timestamp;

use crate::events::{advisory_lock, lock};
use crate::fail::{col, Fail};
use crate::pool::Tx;

/// Reserves a start slot; returns the earliest start time.
pub(crate) fn reserve_throttle(
    tx: &mut Tx<'_>,
    t: &ThrottleReservation,
    now: Timestamp,
) -> Result<Timestamp, Fail> {
    advisory_lock(tx, lock::THROTTLE, &t.key)?;
    let tat = throttle_tat(tx, &t.key)?;
    let (start, new_tat) = throttle::reserve(tat, now, t.interval_ms, t.burst);
    tx.execute(
        "INSERT INTO throttle (key, tat) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET tat = EXCLUDED.tat",
        &[&t.key, &new_tat.millis()],
    )?;
    Ok(start)
}

/// A rate limit's check under the key's lock: the key's new TAT when the run may start
/// now, `None` when it is over the limit. Nothing is written (see [`set_tat`]).
pub(crate) fn check_rate(
    tx: &mut Tx<'_>,
    t: &ThrottleReservation,
    now: Timestamp,
) -> Result<Option<Timestamp>, Fail> {
    advisory_lock(tx, lock::THROTTLE, &t.key)?;
    let tat = throttle_tat(tx, &t.key)?;
    Ok(throttle::admit(tat, now, t.interval_ms, t.burst))
}

/// Stores a key's TAT (its lock taken by [`check_rate`]).
pub(crate) fn set_tat(tx: &mut Tx<'_>, key: &str, tat: Timestamp) -> Result<(), Fail> {
    tx.execute(
        "INSERT INTO throttle (key, tat) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET tat = EXCLUDED.tat",
        &[&key, &tat.millis()],
    )?;
    Ok(())
}

/// Folds an event into its debounce key's run if that run has not started (under the
/// key's lock, the run row locked against a claim): the run gets the event and starts
/// `period` from now (no later than `timeout` after the first event). Returns the
/// run's id, or `None` when a new run is needed.
pub(crate) fn fold_debounce(
    tx: &mut Tx<'_>,
    d: &DebounceReservation,
    event_seq: i64,
    now: Timestamp,
) -> Result<Option<String>, Fail> {
    advisory_lock(tx, lock::THROTTLE, &format!("debounce\u{1f}{}", d.key))?;
    let Some(row) = tx.query_opt(
        "SELECT d.run_seq, d.first_at, r.id FROM debounce d JOIN runs r ON r.seq = d.run_seq
         WHERE d.key = $1 AND r.status = 'queued' AND r.started_at IS NULL AND r.lease_owner IS NULL
         FOR UPDATE OF r",
        &[&d.key],
    )?
    else {
        return Ok(None);
    };
    let (run_seq, first_at, id): (i64, i64, String) = (col(&row, 0)?, col(&row, 1)?, col(&row, 2)?);
    let mut at = now.millis().saturating_add(d.period_ms);
    if let Some(t) = d.timeout_ms {
        at = at.min(first_at.saturating_add(t));
    }
    tx.execute(
        "UPDATE runs SET event_seq = $1, available_at = $2 WHERE seq = $3",
        &[&event_seq, &at, &run_seq],
    )?;
    Ok(Some(id))
}

/// Makes `run_seq` the debounce key's waiting run (its lock taken by
/// [`fold_debounce`]).
pub(crate) fn start_debounce(
    tx: &mut Tx<'_>,
    d: &DebounceReservation,
    run_seq: i64,
    now: Timestamp,
) -> Result<(), Fail> {
    tx.execute(
        "INSERT INTO debounce (key, run_seq, first_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET run_seq = EXCLUDED.run_seq, first_at = EXCLUDED.first_at",
        &[&d.key, &run_seq, &now.millis()],
    )?;
    Ok(())
}

/// Adds an event to its key's open batch (a run that has not started and is not
/// full; under the key's lock, the run row locked against a claim); a batch that
/// becomes full is due now. Returns the run's id, or `None` when a new batch is
/// needed.
pub(crate) fn add_to_batch(
    tx: &mut Tx<'_>,
    b: &BatchReservation,
    event_seq: i64,
    now: Timestamp,
) -> Result<Option<String>, Fail> {
    advisory_lock(tx, lock::THROTTLE, &format!("batch\u{1f}{}", b.key))?;
    let max = i32::try_from(b.max_size).unwrap_or(i32::MAX);
    let Some(row) = tx.query_opt(
        "SELECT b.run_seq, b.size, r.id FROM batches b JOIN runs r ON r.seq = b.run_seq
         WHERE b.key = $1 AND b.size < $2
           AND r.status = 'queued' AND r.started_at IS NULL AND r.lease_owner IS NULL
         FOR UPDATE OF r",
        &[&b.key, &max],
    )?
    else {
        return Ok(None);
    };
    let (run_seq, size, id): (i64, i32, String) = (col(&row, 0)?, col(&row, 1)?, col(&row, 2)?);
    tx.execute(
        "INSERT INTO batch_events (run_seq, ord, event_seq) VALUES ($1, $2, $3)",
        &[&run_seq, &size, &event_seq],
    )?;
    tx.execute("UPDATE batches SET size = size + 1 WHERE key = $1", &[&b.key])?;
    if size + 1 >= max {
        tx.execute(
            "UPDATE runs SET available_at = $1 WHERE seq = $2",
            &[&now.millis(), &run_seq],
        )?;
    }
    Ok(Some(id))
}

/// Opens a batch for `run_seq` with its first event (its lock taken by
/// [`add_to_batch`]).
pub(crate) fn open_batch(
    tx: &mut Tx<'_>,
    b: &BatchReservation,
    run_seq: i64,
    event_seq: i64,
) -> Result<(), Fail> {
    tx.execute(
        "INSERT INTO batches (key, run_seq, size) VALUES ($1, $2, 1)
         ON CONFLICT (key) DO UPDATE SET run_seq = EXCLUDED.run_seq, size = 1",
        &[&b.key, &run_seq],
    )?;
    tx.execute(
        "INSERT INTO batch_events (run_seq, ord, event_seq) VALUES ($1, 0, $2)",
        &[&run_seq, &event_seq],
    )?;
    Ok(())
}

/// The events of a run's batch in order; the run's own event if it has none.
pub(crate) fn batch_events(tx: &mut Tx<'_>, run: &str) -> Result<Vec<learnflow_engine::Event>, Fail> {
    let mut seqs = Vec::new();
    for r in tx.query(
        "SELECT be.event_seq FROM batch_events be JOIN runs r ON r.seq = be.run_seq
         WHERE r.id = $1 ORDER BY be.ord",
        &[&run],
    )? {
        seqs.push(col::<i64>(&r, 0)?);
    }
    if seqs.is_empty() {
        for r in tx.query("SELECT event_seq FROM runs WHERE id = $1", &[&run])? {
            seqs.push(col::<i64>(&r, 0)?);
        }
    }
    seqs.into_iter()
        .map(|seq| crate::rows::event_by_seq(tx, seq))
        .collect()
}

/// The singleton key's run if it has not ended (under the key's lock).
pub(crate) fn active_singleton(tx: &mut Tx<'_>, key: &str) -> Result<Option<String>, Fail> {
    advisory_lock(tx, lock::THROTTLE, &format!("singleton\u{1f}{key}"))?;
    tx.query_opt(
        "SELECT r.id FROM singleton s JOIN runs r ON r.seq = s.run_seq
         WHERE s.key = $1 AND r.status NOT IN ('completed', 'failed', 'cancelled')",
        &[&key],
    )?
    .map(|r| col::<String>(&r, 0))
    .transpose()
}

/// Makes `run_seq` the singleton key's run (its lock taken by [`active_singleton`]).
pub(crate) fn set_singleton(tx: &mut Tx<'_>, key: &str, run_seq: i64) -> Result<(), Fail> {
    tx.execute(
        "INSERT INTO singleton (key, run_seq) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET run_seq = EXCLUDED.run_seq",
        &[&key, &run_seq],
    )?;
    Ok(())
}

pub(crate) fn throttle_tat(tx: &mut Tx<'_>, key: &str) -> Result<Option<Timestamp>, Fail> {
    tx.query_opt("SELECT tat FROM throttle WHERE key = $1", &[&key])?
        .map(|r| col::<i64>(&r, 0).map(Timestamp::from_millis))
        .transpose()
}

/// Takes an idempotency key for `run`; returns the run that already holds it (used
/// after `horizon`), if any.
pub(crate) fn claim_idempotency_key(
    tx: &mut Tx<'_>,
    key: &str,
    run: &RunId,
    now: Timestamp,
    horizon: i64,
) -> Result<Option<String>, Fail> {
    advisory_lock(tx, lock::IDEMPOTENCY, key)?;
    if let Some(r) = tx.query_opt(
        "SELECT run_id, created_at FROM idempotency WHERE key = $1",
        &[&key],
    )? {
        let (previous, at): (String, i64) = (col(&r, 0)?, col(&r, 1)?);
        if at > horizon {
            return Ok(Some(previous));
        }
    }
    tx.execute(
        "INSERT INTO idempotency (key, run_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET run_id = EXCLUDED.run_id, created_at = EXCLUDED.created_at",
        &[&key, &run.as_str(), &now.millis()],
    )?;
    Ok(None)
}

/// The flow-control steps in one transaction, for [`learnflow_engine::store::admit_run`].
pub(crate) struct Flow<'t, 'c>(pub(crate) &'t mut Tx<'c>);

impl learnflow_engine::store::FlowTx for Flow<'_, '_> {
    type Error = Fail;

    fn add_to_batch(
        &mut self,
        b: &BatchReservation,
        event_seq: i64,
        now: Timestamp,
    ) -> Result<Option<String>, Fail> {
        add_to_batch(self.0, b, event_seq, now)
    }

    fn open_batch(&mut self, b: &BatchReservation, run_seq: i64, event_seq: i64) -> Result<(), Fail> {
        open_batch(self.0, b, run_seq, event_seq)
    }

    fn fold_debounce(
        &mut self,
        d: &DebounceReservation,
        event_seq: i64,
        now: Timestamp,
    ) -> Result<Option<String>, Fail> {
        fold_debounce(self.0, d, event_seq, now)
    }

    fn start_debounce(&mut self, d: &DebounceReservation, run_seq: i64, now: Timestamp) -> Result<(), Fail> {
        start_debounce(self.0, d, run_seq, now)
    }

    fn active_singleton(&mut self, key: &str) -> Result<Option<String>, Fail> {
        active_singleton(self.0, key)
    }

    fn set_singleton(&mut self, key: &str, run_seq: i64) -> Result<(), Fail> {
        set_singleton(self.0, key, run_seq)
    }

    fn check_rate(&mut self, r: &ThrottleReservation, now: Timestamp) -> Result<Option<Timestamp>, Fail> {
        check_rate(self.0, r, now)
    }

    fn set_tat(&mut self, key: &str, tat: Timestamp) -> Result<(), Fail> {
        set_tat(self.0, key, tat)
    }

    fn claim_idempotency_key(
        &mut self,
        key: &str,
        run: &RunId,
        now: Timestamp,
        horizon: i64,
    ) -> Result<Option<String>, Fail> {
        claim_idempotency_key(self.0, key, run, now, horizon)
    }

    fn reserve_throttle(&mut self, t: &ThrottleReservation, now: Timestamp) -> Result<Timestamp, Fail> {
        reserve_throttle(self.0, t, now)
    }

    fn insert_run(
        &mut self,
        run: &learnflow_engine::store::NewRun,
        event_seq: i64,
        available_at: Timestamp,
        now: Timestamp,
    ) -> Result<i64, Fail> {
        crate::runs::insert_run(self.0, run, event_seq, available_at, now)
    }
}
