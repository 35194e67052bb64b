//! Throttle state (GCRA) and idempotency keys.

use learnflow_engine::ids::RunId;
use learnflow_engine::schedule::throttle;
use learnflow_engine::store::{BatchReservation, DebounceReservation, StoreError, ThrottleReservation};
use learnflow_engine::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::map_err;

/// Reserves a start slot; returns the earliest start time.
pub(crate) fn reserve_throttle(
    conn: &Connection,
    t: &ThrottleReservation,
    now: Timestamp,
) -> Result<Timestamp, StoreError> {
    let tat = throttle_tat(conn, &t.key)?;
    let (start, new_tat) = throttle::reserve(tat, now, t.interval_ms, t.burst);
    conn.prepare_cached(
        "INSERT INTO throttle (key, tat) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET tat = excluded.tat",
    )
    .and_then(|mut s| s.execute(params![t.key, new_tat.millis()]))
    .map_err(map_err)?;
    Ok(start)
}

/// A rate limit's check: the key's new TAT when the run may start now, `None` when it
/// is over the limit. Nothing is written (see [`set_tat`]).
pub(crate) fn check_rate(
    conn: &Connection,
    t: &ThrottleReservation,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    let tat = throttle_tat(conn, &t.key)?;
    Ok(throttle::admit(tat, now, t.interval_ms, t.burst))
}

/// Stores a key's TAT.
pub(crate) fn set_tat(conn: &Connection, key: &str, tat: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO throttle (key, tat) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET tat = excluded.tat",
    )
    .and_then(|mut s| s.execute(params![key, tat.millis()]))
    .map_err(map_err)?;
    Ok(())
}

/// Folds an event into its debounce key's run if that run has not started: the run
/// gets the event and starts `period` from now (no later than `timeout` after the
/// first event). Returns the run's id, or `None` when a new run is needed.
pub(crate) fn fold_debounce(
    conn: &Connection,
    d: &DebounceReservation,
    event_seq: i64,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let waiting: Option<(i64, i64, String)> = conn
        .prepare_cached(
            "SELECT d.run_seq, d.first_at, r.id FROM debounce d JOIN runs r ON r.seq = d.run_seq
             WHERE d.key = ?1 AND r.status = 'queued' AND r.started_at IS NULL AND r.lease_owner IS NULL",
        )
        .and_then(|mut s| {
            s.query_row([&d.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(map_err)?;
    let Some((run_seq, first_at, id)) = waiting else {
        return Ok(None);
    };
    let mut at = now.millis().saturating_add(d.period_ms);
    if let Some(t) = d.timeout_ms {
        at = at.min(first_at.saturating_add(t));
    }
    conn.prepare_cached("UPDATE runs SET event_seq = ?1, available_at = ?2 WHERE seq = ?3")
        .and_then(|mut s| s.execute(params![event_seq, at, run_seq]))
        .map_err(map_err)?;
    Ok(Some(id))
}

/// Makes `run_seq` the debounce key's waiting run.
pub(crate) fn start_debounce(
    conn: &Connection,
    d: &DebounceReservation,
    run_seq: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO debounce (key, run_seq, first_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(key) DO UPDATE SET run_seq = excluded.run_seq, first_at = excluded.first_at",
    )
    .and_then(|mut s| s.execute(params![d.key, run_seq, now.millis()]))
    .map_err(map_err)?;
    Ok(())
}

/// Adds an event to its key's open batch (a run that has not started and is not
/// full); a batch that becomes full is due now. Returns the run's id, or `None` when a
/// new batch is needed.
pub(crate) fn add_to_batch(
    conn: &Connection,
    b: &BatchReservation,
    event_seq: i64,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let open: Option<(i64, i64, String)> = conn
        .prepare_cached(
            "SELECT b.run_seq, b.size, r.id FROM batches b JOIN runs r ON r.seq = b.run_seq
             WHERE b.key = ?1 AND b.size < ?2
               AND r.status = 'queued' AND r.started_at IS NULL AND r.lease_owner IS NULL",
        )
        .and_then(|mut s| {
            s.query_row(params![b.key, b.max_size], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(map_err)?;
    let Some((run_seq, size, id)) = open else {
        return Ok(None);
    };
    conn.prepare_cached("INSERT INTO batch_events (run_seq, ord, event_seq) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![run_seq, size, event_seq]))
        .map_err(map_err)?;
    conn.prepare_cached("UPDATE batches SET size = size + 1 WHERE key = ?1")
        .and_then(|mut s| s.execute([&b.key]))
        .map_err(map_err)?;
    if size + 1 >= i64::from(b.max_size) {
        conn.prepare_cached("UPDATE runs SET available_at = ?1 WHERE seq = ?2")
            .and_then(|mut s| s.execute(params![now.millis(), run_seq]))
            .map_err(map_err)?;
    }
    Ok(Some(id))
}

/// Opens a batch for `run_seq` with its first event.
pub(crate) fn open_batch(
    conn: &Connection,
    b: &BatchReservation,
    run_seq: i64,
    event_seq: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO batches (key, run_seq, size) VALUES (?1, ?2, 1)
         ON CONFLICT(key) DO UPDATE SET run_seq = excluded.run_seq, size = 1",
    )
    .and_then(|mut s| s.execute(params![b.key, run_seq]))
    .map_err(map_err)?;
    conn.prepare_cached("INSERT INTO batch_events (run_seq, ord, event_seq) VALUES (?1, 0, ?2)")
        .and_then(|mut s| s.execute(params![run_seq, event_seq]))
        .map_err(map_err)?;
    Ok(())
}

/// The events of a run's batch in order; the run's own event if it has none.
pub(crate) fn batch_events(conn: &Connection, run: &str) -> Result<Vec<learnflow_engine::Event>, StoreError> {
    let seqs: Vec<i64> = conn
        .prepare_cached(
            "SELECT be.event_seq FROM batch_events be JOIN runs r ON r.seq = be.run_seq
             WHERE r.id = ?1 ORDER BY be.ord",
        )
        .and_then(|mut s| s.query_map([run], |r| r.get(0))?.collect::<Result<Vec<_>, _>>())
        .map_err(map_err)?;
    let seqs = if seqs.is_empty() {
        conn.prepare_cached("SELECT event_seq FROM runs WHERE id = ?1")
            .and_then(|mut s| s.query_map([run], |r| r.get(0))?.collect::<Result<Vec<_>, _>>())
            .map_err(map_err)?
    } else {
        seqs
    };
    seqs.into_iter()
        .map(|seq| crate::rows::event_by_seq(conn, seq))
        .collect()
}

/// The singleton key's run if it has not ended.
pub(crate) fn active_singleton(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached(
        "SELECT r.id FROM singleton s JOIN runs r ON r.seq = s.run_seq
         WHERE s.key = ?1 AND r.status NOT IN ('completed', 'failed', 'cancelled')",
    )
    .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
    .map_err(map_err)
}

/// Makes `run_seq` the singleton key's run.
pub(crate) fn set_singleton(conn: &Connection, key: &str, run_seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO singleton (key, run_seq) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET run_seq = excluded.run_seq",
    )
    .and_then(|mut s| s.execute(params![key, run_seq]))
    .map_err(map_err)?;
    Ok(())
}

pub(crate) fn throttle_tat(conn: &Connection, key: &str) -> Result<Option<Timestamp>, StoreError> {
    conn.prepare_cached("SELECT tat FROM throttle WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get::<_, i64>(0)).optional())
        .map(|v| v.map(Timestamp::from_millis))
        .map_err(map_err)
}

/// Takes an idempotency key for `run`; returns the run that already holds it (used
/// after `horizon`), if any.
pub(crate) fn claim_idempotency_key(
    conn: &Connection,
    key: &str,
    run: &RunId,
    now: Timestamp,
    horizon: i64,
) -> Result<Option<String>, StoreError> {
    let held: Option<(String, i64)> = conn
        .prepare_cached("SELECT run_id, created_at FROM idempotency WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(map_err)?;
    if let Some((previous, at)) = held {
        if at > horizon {
            return Ok(Some(previous));
        }
    }
    conn.prepare_cached(
        "INSERT INTO idempotency (key, run_id, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(key) DO UPDATE SET run_id = excluded.run_id, created_at = excluded.created_at",
    )
    .and_then(|mut s| s.execute(params![key, run.as_str(), now.millis()]))
    .map_err(map_err)?;
    Ok(None)
}

/// The flow-control steps on one connection, for [`learnflow_engine::store::admit_run`].
pub(crate) struct Flow<'c>(pub(crate) &'c Connection);

impl learnflow_engine::store::FlowTx for Flow<'_> {
    type Error = StoreError;

    fn add_to_batch(
        &mut self,
        b: &BatchReservation,
        event_seq: i64,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        add_to_batch(self.0, b, event_seq, now)
    }

    fn open_batch(&mut self, b: &BatchReservation, run_seq: i64, event_seq: i64) -> Result<(), StoreError> {
        open_batch(self.0, b, run_seq, event_seq)
    }

    fn fold_debounce(
        &mut self,
        d: &DebounceReservation,
        event_seq: i64,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        fold_debounce(self.0, d, event_seq, now)
    }

    fn start_debounce(
        &mut self,
        d: &DebounceReservation,
        run_seq: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        start_debounce(self.0, d, run_seq, now)
    }

    fn active_singleton(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        active_singleton(self.0, key)
    }

    fn set_singleton(&mut self, key: &str, run_seq: i64) -> Result<(), StoreError> {
        set_singleton(self.0, key, run_seq)
    }

    fn check_rate(
        &mut self,
        r: &ThrottleReservation,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        check_rate(self.0, r, now)
    }

    fn set_tat(&mut self, key: &str, tat: Timestamp) -> Result<(), StoreError> {
        set_tat(self.0, key, tat)
    }

    fn claim_idempotency_key(
        &mut self,
        key: &str,
        run: &RunId,
        now: Timestamp,
        horizon: i64,
    ) -> Result<Option<String>, StoreError> {
        claim_idempotency_key(self.0, key, run, now, horizon)
    }

    fn reserve_throttle(&mut self, t: &ThrottleReservation, now: Timestamp) -> Result<Timestamp, StoreError> {
        reserve_throttle(self.0, t, now)
    }

    fn insert_run(
        &mut self,
        run: &learnflow_engine::store::NewRun,
        event_seq: i64,
        available_at: Timestamp,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        crate::runs::insert_run(self.0, run, event_seq, available_at, now)
    }
}
