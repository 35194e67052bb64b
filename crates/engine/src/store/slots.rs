//! Concurrency slots held in the store, for stores shared by several nodes.

use async_trait::async_trait;

use super::StoreError;
use crate::ids::NodeId;
use crate::schedule::concurrency::SlotRequest;
use crate::time::Timestamp;

/// Concurrency slots every node sees. A store that keeps them (PostgreSQL) makes a
/// function's `concurrency` limits hold across all processes together; a store that
/// does not (the default, SQLite) leaves each process's own limiter alone in charge.
#[async_trait]
pub trait SlotStore: Send + Sync {
    /// Whether this store keeps slots for all nodes.
    fn shares_slots(&self) -> bool {
        false
    }

    /// Takes one slot of every pool in `requests` for `holder` (a step attempt), all or
    /// none: only if each pool has fewer other holders than its limit. Taking again
    /// what `holder` already holds succeeds. The slots live until given back, or
    /// until `node` stops renewing them with its heartbeat (`now + ttl_ms`).
    async fn take_slots(
        &self,
        _node: &NodeId,
        _holder: &str,
        _requests: &[SlotRequest],
        _now: Timestamp,
        _ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Gives back every slot `holder` holds.
    async fn give_back_slots(&self, _holder: &str) -> Result<(), StoreError> {
        Ok(())
    }
}
