//! Concurrency slots: how many steps execute at once, per function and per key.
//!
//! A step takes one slot of every limit of its function before it executes and gives
//! them back when it ends. Waiters are served in priority order (older runs first,
//! then the order the run reached its steps), so waiting runs start in order and runs
//! that have started finish before new ones take over. A waiter takes all its slots at
//! once or none, so two limits can never deadlock. Sleeping and waiting runs execute
//! no step and hold no slot.
//!
//! This limiter holds the slots of one process. (Several processes sharing a database
//! need the slots in the store; the PostgreSQL store adds that.)

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use serde::Serialize;

/// One concurrency limit's slot pool: a function's limit, or one key's share of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SlotKey {
    /// The function.
    pub function_id: String,
    /// Which of the function's limits (index into its `concurrency` list).
    pub limit_index: usize,
    /// The key's value, for keyed limits.
    pub key: Option<String>,
}

/// A request for one slot of a pool with a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRequest {
    /// The pool.
    pub key: SlotKey,
    /// Its limit.
    pub limit: u32,
}

/// Order among waiters, smaller first: the run's priority score (0 unless its
/// function has a priority), its seq, and the step's order within the run.
pub type Priority = (i64, i64, u64);

/// Current use of one pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlotUsage {
    /// The pool.
    pub key: SlotKey,
    /// Slots in use.
    pub in_use: u32,
    /// The limit.
    pub limit: u32,
    /// Steps waiting for a slot.
    pub waiting: usize,
}

#[derive(Default)]
struct Pool {
    limit: u32,
    in_use: u32,
    queue: BTreeSet<(Priority, u64)>,
}

struct Waiter {
    requests: Vec<SlotRequest>,
    priority: Priority,
    granted: bool,
    waker: Option<Waker>,
}

#[derive(Default)]
struct State {
    pools: HashMap<SlotKey, Pool>,
    waiters: HashMap<u64, Waiter>,
    next_id: u64,
}

impl State {
    fn fits(&self, requests: &[SlotRequest]) -> bool {
        requests
            .iter()
            .all(|r| self.pools.get(&r.key).is_none_or(|p| p.in_use < r.limit.max(1)))
    }

    fn take(&mut self, requests: &[SlotRequest]) {
        for r in requests {
            let pool = self.pools.entry(r.key.clone()).or_default();
            pool.limit = r.limit;
            pool.in_use += 1;
        }
    }

    fn give_back(&mut self, requests: &[SlotRequest]) {
        for r in requests {
            if let Some(pool) = self.pools.get_mut(&r.key) {
                pool.in_use = pool.in_use.saturating_sub(1);
            }
        }
        for r in requests {
            self.grant_waiters(&r.key);
        }
        for r in requests {
            if self
                .pools
                .get(&r.key)
                .is_some_and(|p| p.in_use == 0 && p.queue.is_empty())
            {
                self.pools.remove(&r.key);
            }
        }
    }

    /// Grants queued waiters of `key`, in priority order, while slots are free.
    fn grant_waiters(&mut self, key: &SlotKey) {
        let candidates: Vec<(Priority, u64)> = match self.pools.get(key) {
            Some(p) => p.queue.iter().copied().collect(),
            None => return,
        };
        for (prio, id) in candidates {
            let full = self.pools.get(key).is_none_or(|p| p.in_use >= p.limit.max(1));
            if full {
                break;
            }
            let Some(requests) = self
                .waiters
                .get(&id)
                .filter(|w| !w.granted)
                .map(|w| w.requests.clone())
            else {
                continue;
            };
            if !self.fits(&requests) {
                continue;
            }
            self.take(&requests);
            for r in &requests {
                if let Some(pool) = self.pools.get_mut(&r.key) {
                    pool.queue.remove(&(prio, id));
                }
            }
            if let Some(w) = self.waiters.get_mut(&id) {
                w.granted = true;
                if let Some(waker) = w.waker.take() {
                    waker.wake();
                }
            }
        }
    }

    fn has_earlier_waiter(&self, requests: &[SlotRequest], priority: Priority) -> bool {
        requests.iter().any(|r| {
            self.pools
                .get(&r.key)
                .and_then(|p| p.queue.first())
                .is_some_and(|(p, _)| *p < priority)
        })
    }
}

/// The slots of one process.
#[derive(Default)]
pub struct ConcurrencyLimiter {
    state: Mutex<State>,
}

impl ConcurrencyLimiter {
    /// An empty limiter.
    pub fn new() -> Arc<Self> {
        Arc::new(ConcurrencyLimiter::default())
    }

    /// Waits for one slot of every pool in `requests`; the slots are held until the
    /// returned [`Permit`] is dropped. Dropping the future gives up the place in line.
    pub fn acquire(self: &Arc<Self>, requests: Vec<SlotRequest>, priority: Priority) -> Acquire {
        Acquire {
            limiter: self.clone(),
            requests: Some(requests),
            priority,
            waiter: None,
        }
    }

    /// Current use of every pool in use or waited for.
    pub fn usage(&self) -> Vec<SlotUsage> {
        let st = self.state.lock();
        let mut out: Vec<SlotUsage> = st
            .pools
            .iter()
            .map(|(k, p)| SlotUsage {
                key: k.clone(),
                in_use: p.in_use,
                limit: p.limit,
                waiting: p.queue.len(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

/// Slots held; given back on drop.
pub struct Permit {
    limiter: Arc<ConcurrencyLimiter>,
    requests: Vec<SlotRequest>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.requests.is_empty() {
            self.limiter.state.lock().give_back(&self.requests);
        }
    }
}

/// The future of [`ConcurrencyLimiter::acquire`].
pub struct Acquire {
    limiter: Arc<ConcurrencyLimiter>,
    requests: Option<Vec<SlotRequest>>,
    priority: Priority,
    waiter: Option<u64>,
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let this = &mut *self;
        let limiter = this.limiter.clone();
        let mut st = limiter.state.lock();
        match this.waiter {
            None => {
                let requests = this.requests.take().unwrap_or_default();
                if requests.is_empty() {
                    return Poll::Ready(Permit {
                        limiter: limiter.clone(),
                        requests,
                    });
                }
                if st.fits(&requests) && !st.has_earlier_waiter(&requests, this.priority) {
                    st.take(&requests);
                    return Poll::Ready(Permit {
                        limiter: limiter.clone(),
                        requests,
                    });
                }
                let id = st.next_id;
                st.next_id += 1;
                for r in &requests {
                    let pool = st.pools.entry(r.key.clone()).or_default();
                    pool.limit = r.limit;
                    pool.queue.insert((this.priority, id));
                }
                st.waiters.insert(
                    id,
                    Waiter {
                        requests,
                        priority: this.priority,
                        granted: false,
                        waker: Some(cx.waker().clone()),
                    },
                );
                this.waiter = Some(id);
                Poll::Pending
            }
            Some(id) => {
                let granted = st.waiters.get(&id).is_some_and(|w| w.granted);
                if granted {
                    let w = st.waiters.remove(&id);
                    this.waiter = None;
                    let requests = w.map(|w| w.requests).unwrap_or_default();
                    return Poll::Ready(Permit {
                        limiter: limiter.clone(),
                        requests,
                    });
                }
                if let Some(w) = st.waiters.get_mut(&id) {
                    w.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(id) = self.waiter.take() else { return };
        let mut st = self.limiter.state.lock();
        let Some(w) = st.waiters.remove(&id) else { return };
        if w.granted {
            // Granted but never picked up: give the slots back.
            st.give_back(&w.requests);
        } else {
            for r in &w.requests {
                if let Some(pool) = st.pools.get_mut(&r.key) {
                    pool.queue.remove(&(w.priority, id));
                }
            }
            for r in &w.requests {
                st.grant_waiters(&r.key);
                if st
                    .pools
                    .get(&r.key)
                    .is_some_and(|p| p.in_use == 0 && p.queue.is_empty())
                {
                    st.pools.remove(&r.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn req(f: &str, key: Option<&str>, limit: u32) -> SlotRequest {
        SlotRequest {
            key: SlotKey {
                function_id: f.into(),
                limit_index: usize::from(key.is_some()),
                key: key.map(str::to_string),
            },
            limit,
        }
    }

    #[tokio::test]
    async fn holds_the_limit_and_serves_waiters_in_priority_order() {
        let lim = ConcurrencyLimiter::new();
        let first = lim.acquire(vec![req("f", None, 1)], (0, 0, 0)).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Queue in reverse priority order; they must be served 1, 2, 3.
        for p in [3i64, 1, 2] {
            let lim = lim.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = lim.acquire(vec![req("f", None, 1)], (0, p, 0)).await;
                order.lock().push(p);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(lim.usage()[0].waiting, 3);
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock(), vec![1, 2, 3]);
        assert!(lim.usage().is_empty(), "pools are dropped when idle");
    }

    #[tokio::test]
    async fn keyed_and_function_limits_both_hold() {
        let lim = ConcurrencyLimiter::new();
        let running = Arc::new(AtomicUsize::new(0));
        let peak_a = Arc::new(AtomicUsize::new(0));
        let peak_all = Arc::new(AtomicUsize::new(0));
        let running_a = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..40u64 {
            let user = if i % 2 == 0 { "a" } else { "b" };
            let lim = lim.clone();
            let (running, running_a, peak_a, peak_all) = (
                running.clone(),
                running_a.clone(),
                peak_a.clone(),
                peak_all.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _p = lim
                    .acquire(vec![req("f", None, 3), req("f", Some(user), 2)], (0, i as i64, 0))
                    .await;
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak_all.fetch_max(now, Ordering::SeqCst);
                if user == "a" {
                    let a = running_a.fetch_add(1, Ordering::SeqCst) + 1;
                    peak_a.fetch_max(a, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                if user == "a" {
                    running_a.fetch_sub(1, Ordering::SeqCst);
                }
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak_all.load(Ordering::SeqCst), 3);
        assert_eq!(peak_a.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_the_line() {
        let lim = ConcurrencyLimiter::new();
        let held = lim.acquire(vec![req("f", None, 1)], (0, 0, 0)).await;
        let mut waiting = Box::pin(lim.acquire(vec![req("f", None, 1)], (0, 1, 0)));
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(waiting);
        drop(held);
        // The slot is free again: a later request gets it at once.
        let again = lim.acquire(vec![req("f", None, 1)], (0, 2, 0));
        tokio::time::timeout(Duration::from_secs(1), again)
            .await
            .expect("slot free");
    }
}
