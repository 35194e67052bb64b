//! Flow-control state: throttles (GCRA) and idempotency keys.

use async_trait::async_trait;

use super::StoreError;
use crate::time::Timestamp;

/// A run's claim on a throttle, resolved by the store when the run is created
/// (see [`crate::schedule::throttle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleReservation {
    /// Throttle key (function id plus key value).
    pub key: String,
    /// Emission interval: period divided by limit, in milliseconds.
    pub interval_ms: i64,
    /// Runs that may start back to back.
    pub burst: u32,
}

/// Flow-control state.
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// The throttle's theoretical arrival time for a key, if it has one.
    async fn throttle_tat(&self, key: &str) -> Result<Option<Timestamp>, StoreError>;
}
