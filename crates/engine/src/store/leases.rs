//! Nodes sharing a store, and their leases.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::ids::NodeId;
use crate::time::Timestamp;

/// A node (engine process) known to the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id.
    pub id: NodeId,
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// Process start time (jiffies since boot on Linux; 0 if unknown), to tell a
    /// reused pid from the original process.
    pub proc_start: u64,
    /// When the node started.
    pub started_at: Timestamp,
    /// Its last heartbeat.
    pub heartbeat_at: Timestamp,
}

/// Nodes and leases.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Records a node.
    async fn register_node(&self, node: &NodeInfo) -> Result<(), StoreError>;
    /// Marks the node alive and extends its runs' leases to `now + lease_ttl_ms`.
    async fn heartbeat(&self, node: &NodeId, now: Timestamp, lease_ttl_ms: i64) -> Result<u64, StoreError>;
    /// All recorded nodes.
    async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError>;
    /// Forgets a node and queues the runs it held again; returns how many.
    async fn release_node(&self, node: &NodeId, now: Timestamp) -> Result<u64, StoreError>;
    /// Queues again the runs whose lease expired, except those held by `except`;
    /// returns how many.
    async fn reclaim_expired(&self, except: &NodeId, now: Timestamp) -> Result<u64, StoreError>;
}
