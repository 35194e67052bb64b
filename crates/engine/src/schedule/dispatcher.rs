//! The dispatcher: claims due runs from the store and starts them, and the heartbeat
//! that keeps this node's leases alive.
//!
//! It wakes when told (an event queued runs, a run suspended or ended, a wait
//! resolved), when the earliest known wake-up time comes, and every `poll_interval`
//! to catch work queued by other processes, expired leases and deadlines.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::engine::Core;
use crate::time::{duration_millis, Timestamp};

/// The dispatcher loop; ends when `stop` turns true.
pub(crate) async fn run(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let mut next_maintenance = Timestamp::EPOCH;
    let lease_ttl = duration_millis(core.config.lease_ttl);
    loop {
        if *stop.borrow() {
            return;
        }
        let now = core.clock.now();
        if now >= next_maintenance {
            maintain(&core, now).await;
            next_maintenance = now.plus(core.config.poll_interval);
        }
        let capacity = core
            .config
            .max_active_runs
            .saturating_sub(core.active.load(Ordering::SeqCst));
        let mut next_wake = None;
        if capacity > 0 {
            let want = capacity.min(core.config.claim_batch.max(1));
            let functions = core.function_ids();
            match core
                .store
                .claim_due(&core.node.id, &functions, now, want, lease_ttl)
                .await
            {
                Ok(batch) => {
                    let full = batch.runs.len() == want;
                    next_wake = batch.next_wake;
                    for claimed in batch.runs {
                        let limited = core.is_limited(&claimed.run.function_id);
                        let polled = core.spawn_run(claimed);
                        if limited {
                            // Start limited runs strictly in order: the next one may
                            // ask for a slot only after this one has.
                            let _ = polled.await;
                        }
                    }
                    if full {
                        tokio::task::yield_now().await;
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!("could not claim due runs: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let deadline = next_wake.map_or(next_maintenance, |w| w.min(next_maintenance));
        tokio::select! {
            _ = core.wake.notified() => {}
            _ = core.clock.sleep_until(deadline) => {}
            // Real time, too: a test clock that stands still must not stall polling.
            _ = tokio::time::sleep(core.config.poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Expired leases of other nodes and passed deadlines.
async fn maintain(core: &Arc<Core>, now: Timestamp) {
    match core.store.reclaim_expired(&core.node.id, now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(runs = n, "took over runs whose lease expired"),
        Err(e) => tracing::warn!("could not reclaim expired leases: {e}"),
    }
    match core.store.expire_deadlines(now).await {
        Ok(cancelled) => {
            for c in cancelled {
                core.after_cancel(
                    &c.run_id,
                    &c.function_id,
                    c.lease_owner.as_ref(),
                    &c.reason,
                    c.parent,
                );
            }
        }
        Err(e) => tracing::warn!("could not expire deadlines: {e}"),
    }
}

/// Renews this node's leases every `heartbeat_interval` (real time).
pub(crate) async fn heartbeat(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let ttl = duration_millis(core.config.lease_ttl);
    let mut tick = tokio::time::interval(core.config.heartbeat_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = core.store.heartbeat(&core.node.id, core.clock.now(), ttl).await {
                    tracing::warn!("heartbeat failed: {e}");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
