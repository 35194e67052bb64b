//! Concurrency slots in the database, so a function's limits hold across every node:
//! a step attempt holds one row per pool; the pools it needs are locked (advisory
//! locks, in sorted order so two takers never deadlock) while it counts the other
//! holders.

use learnflow_engine::ids::NodeId;
use learnflow_engine::schedule::concurrency::SlotRequest;
use learnflow_engine::Timestamp;

use crate::events::{advisory_lock, lock};
use crate::fail::{col, corrupt, Fail};
use crate::pool::Tx;

/// A pool's key in the `slots` table.
pub(crate) fn pool_key(r: &SlotRequest) -> Result<String, Fail> {
    serde_json::to_string(&r.key).map_err(|e| corrupt(format!("slot key: {e}")))
}

pub(crate) fn take_slots(
    tx: &mut Tx<'_>,
    node: &NodeId,
    holder: &str,
    pools: &[(String, i64)],
    now: Timestamp,
    ttl_ms: i64,
) -> Result<bool, Fail> {
    for (pool, _) in pools {
        advisory_lock(tx, lock::SLOT_POOL, pool)?;
    }
    for (pool, limit) in pools {
        let r = tx.query_one(
            "SELECT COUNT(*) FROM slots WHERE pool = $1 AND holder <> $2 AND expires_at >= $3",
            &[pool, &holder, &now.millis()],
        )?;
        if col::<i64>(&r, 0)? >= *limit {
            return Ok(false);
        }
    }
    for (pool, _) in pools {
        tx.execute(
            "INSERT INTO slots (pool, holder, node, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (pool, holder) DO UPDATE SET node = EXCLUDED.node, expires_at = EXCLUDED.expires_at",
            &[pool, &holder, &node.as_str(), &(now.millis() + ttl_ms)],
        )?;
    }
    Ok(true)
}

pub(crate) fn give_back_slots(tx: &mut Tx<'_>, holder: &str) -> Result<(), Fail> {
    tx.execute("DELETE FROM slots WHERE holder = $1", &[&holder])?;
    Ok(())
}
