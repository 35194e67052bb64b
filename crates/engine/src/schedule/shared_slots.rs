//! Concurrency slots in a store shared by several nodes (see
//! [`crate::store::SlotStore`]): taken after the process's own
//! [`ConcurrencyLimiter`](super::concurrency::ConcurrencyLimiter) has granted its
//! permit, so a limit holds across every node.

use std::sync::Arc;

use super::concurrency::SlotRequest;

/// Slots held in a store shared by several nodes,
/// taken after the process's own limiter has granted its [`Permit`]. Given back with
/// [`SharedSlots::give_back`]; if dropped without it (a cancelled or halted step), a
/// background task gives them back.
pub(crate) struct SharedSlots {
    store: Option<Arc<dyn crate::store::Store>>,
    holder: String,
}

impl SharedSlots {
    /// Waits until the store grants one slot of every pool in `requests` to `holder`,
    /// polling (10 ms, doubling to 200 ms) while other nodes hold them. Store failures
    /// are retried the same way.
    pub(crate) async fn take(
        store: Arc<dyn crate::store::Store>,
        clock: Arc<dyn crate::time::Clock>,
        node: crate::ids::NodeId,
        holder: String,
        requests: Vec<SlotRequest>,
        ttl_ms: i64,
    ) -> SharedSlots {
        let mut pause = std::time::Duration::from_millis(10);
        loop {
            match store
                .take_slots(&node, &holder, &requests, clock.now(), ttl_ms)
                .await
            {
                Ok(true) => {
                    return SharedSlots {
                        store: Some(store),
                        holder,
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(holder, "could not take concurrency slots: {e}"),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(200));
        }
    }

    /// Gives the slots back now.
    pub(crate) async fn give_back(mut self) {
        if let Some(store) = self.store.take() {
            give_back(store, std::mem::take(&mut self.holder)).await;
        }
    }
}

async fn give_back(store: Arc<dyn crate::store::Store>, holder: String) {
    let mut pause = std::time::Duration::from_millis(50);
    for _ in 0..20 {
        match store.give_back_slots(&holder).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(holder, "could not give back concurrency slots: {e}"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
    // The slots expire once this node stops renewing them; until then they count.
    tracing::error!(holder, "gave up giving back concurrency slots");
}

impl Drop for SharedSlots {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            let holder = std::mem::take(&mut self.holder);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(give_back(store, holder));
            }
        }
    }
}
