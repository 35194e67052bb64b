//! Nodes and their leases.

use learnflow_engine::ids::NodeId;
use learnflow_engine::store::{NodeInfo, StoreError};
use learnflow_engine::Timestamp;
use rusqlite::{params, Connection};

use crate::error::map_err;

pub(crate) fn register_node(conn: &Connection, n: &NodeInfo) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO nodes (id, host, pid, proc_start, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            n.id.as_str(),
            n.host,
            n.pid,
            n.proc_start as i64,
            n.started_at.millis(),
            n.heartbeat_at.millis()
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

pub(crate) fn heartbeat(
    conn: &Connection,
    node: &NodeId,
    now: Timestamp,
    ttl: i64,
) -> Result<u64, StoreError> {
    conn.prepare_cached("UPDATE nodes SET heartbeat_at = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![node.as_str(), now.millis()]))
        .map_err(map_err)?;
    let n = conn
        .prepare_cached("UPDATE runs SET lease_expires = ?2 WHERE lease_owner = ?1 AND status = 'running'")
        .and_then(|mut s| s.execute(params![node.as_str(), now.millis() + ttl]))
        .map_err(map_err)?;
    Ok(n as u64)
}

pub(crate) fn nodes(conn: &Connection) -> Result<Vec<NodeInfo>, StoreError> {
    conn.prepare_cached(
        "SELECT id, host, pid, proc_start, started_at, heartbeat_at FROM nodes ORDER BY started_at",
    )
    .and_then(|mut s| {
        s.query_map([], |r| {
            Ok(NodeInfo {
                id: NodeId(r.get(0)?),
                host: r.get(1)?,
                pid: r.get(2)?,
                proc_start: r.get::<_, i64>(3)?.max(0) as u64,
                started_at: Timestamp::from_millis(r.get(4)?),
                heartbeat_at: Timestamp::from_millis(r.get(5)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()
    })
    .map_err(map_err)
}

pub(crate) fn release_node(conn: &Connection, node: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE runs SET status = 'queued', available_at = ?2, lease_owner = NULL, lease_expires = NULL
             WHERE lease_owner = ?1 AND status = 'running'",
        )
        .and_then(|mut s| s.execute(params![node.as_str(), now.millis()]))
        .map_err(map_err)?;
    conn.prepare_cached("DELETE FROM nodes WHERE id = ?1")
        .and_then(|mut s| s.execute([node.as_str()]))
        .map_err(map_err)?;
    Ok(n as u64)
}

pub(crate) fn reclaim_expired(conn: &Connection, except: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE runs SET status = 'queued', available_at = ?2, lease_owner = NULL, lease_expires = NULL
             WHERE status = 'running' AND lease_expires < ?2 AND lease_owner IS NOT NULL AND lease_owner != ?1",
        )
        .and_then(|mut s| s.execute(params![except.as_str(), now.millis()]))
        .map_err(map_err)?;
    Ok(n as u64)
}
