//! Nodes and their leases. A node's heartbeat extends the leases of its running runs
//! and of the concurrency slots its steps hold; another node takes over runs whose lease
//! has expired (the engine's `lease_ttl`, 30 s by default).

use learnflow_engine::ids::NodeId;
use learnflow_engine::store::NodeInfo;
use learnflow_engine::Timestamp;

use crate::fail::{col, Fail};
use crate::pool::Tx;

pub(crate) fn register_node(tx: &mut Tx<'_>, n: &NodeInfo) -> Result<(), Fail> {
    tx.execute(
        "INSERT INTO nodes (id, host, pid, proc_start, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, proc_start = EXCLUDED.proc_start,
           started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at",
        &[
            &n.id.as_str(),
            &n.host,
            &i32::try_from(n.pid).unwrap_or(i32::MAX),
            &i64::try_from(n.proc_start).unwrap_or(i64::MAX),
            &n.started_at.millis(),
            &n.heartbeat_at.millis(),
        ],
    )?;
    Ok(())
}

pub(crate) fn heartbeat(tx: &mut Tx<'_>, node: &NodeId, now: Timestamp, ttl: i64) -> Result<u64, Fail> {
    tx.execute(
        "UPDATE nodes SET heartbeat_at = $2 WHERE id = $1",
        &[&node.as_str(), &now.millis()],
    )?;
    // Rows being written right now are skipped rather than waited for: their writer
    // holds the lease anyway, and the next beat extends them.
    let n = tx.execute(
        "UPDATE runs SET lease_expires = $2
         WHERE seq IN (SELECT seq FROM runs WHERE lease_owner = $1 AND status = 'running'
                       FOR UPDATE SKIP LOCKED)",
        &[&node.as_str(), &(now.millis() + ttl)],
    )?;
    tx.execute(
        "UPDATE slots SET expires_at = $2 WHERE node = $1",
        &[&node.as_str(), &(now.millis() + ttl)],
    )?;
    Ok(n)
}

pub(crate) fn nodes(tx: &mut Tx<'_>) -> Result<Vec<NodeInfo>, Fail> {
    tx.query(
        "SELECT id, host, pid, proc_start, started_at, heartbeat_at FROM nodes ORDER BY started_at",
        &[],
    )?
    .iter()
    .map(|r| {
        Ok(NodeInfo {
            id: NodeId(col(r, 0)?),
            host: col(r, 1)?,
            pid: u32::try_from(col::<i32>(r, 2)?).unwrap_or(0),
            proc_start: u64::try_from(col::<i64>(r, 3)?).unwrap_or(0),
            started_at: Timestamp::from_millis(col(r, 4)?),
            heartbeat_at: Timestamp::from_millis(col(r, 5)?),
        })
    })
    .collect()
}

pub(crate) fn release_node(tx: &mut Tx<'_>, node: &NodeId, now: Timestamp) -> Result<u64, Fail> {
    let n = tx.execute(
        "UPDATE runs SET status = 'queued', available_at = $2, lease_owner = NULL, lease_expires = NULL
         WHERE lease_owner = $1 AND status = 'running'",
        &[&node.as_str(), &now.millis()],
    )?;
    tx.execute("DELETE FROM slots WHERE node = $1", &[&node.as_str()])?;
    tx.execute("DELETE FROM nodes WHERE id = $1", &[&node.as_str()])?;
    Ok(n)
}

pub(crate) fn reclaim_expired(tx: &mut Tx<'_>, except: &NodeId, now: Timestamp) -> Result<u64, Fail> {
    let n = tx.execute(
        "UPDATE runs SET status = 'queued', available_at = $2, lease_owner = NULL, lease_expires = NULL
         WHERE seq IN (SELECT seq FROM runs
                       WHERE status = 'running' AND lease_expires < $2 AND lease_owner IS NOT NULL
                         AND lease_owner <> $1
                       FOR UPDATE SKIP LOCKED)",
        &[&except.as_str(), &now.millis()],
    )?;
    tx.execute(
        "DELETE FROM slots WHERE expires_at < $1 AND node <> $2",
        &[&now.millis(), &except.as_str()],
    )?;
    Ok(n)
}
