//! Throttle state (GCRA) and idempotency keys, serialised across nodes with advisory
//! locks so a limit holds for all of them together.

use learnflow_engine::ids::RunId;
use learnflow_engine::schedule::throttle;
use learnflow_engine::store::ThrottleReservation;
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
