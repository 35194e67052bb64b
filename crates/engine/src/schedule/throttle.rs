//! Throttle: GCRA (the generic cell rate algorithm) in its queueing form.
//!
//! A throttle of `limit` runs per `period` has an emission interval
//! `T = ceil(period / limit)` and a burst tolerance `τ = (burst − 1)·T`. Each key keeps
//! one number, its theoretical arrival time (TAT). A run arriving at `now` starts at
//! `start = max(now, TAT − τ)` and moves the TAT to `max(TAT, start) + T`. So after a
//! quiet spell up to `burst` runs start at once, and from then on one run per `T`:
//! never more than `limit` per `period` in the long run, and no run is dropped, only
//! delayed.

use std::time::Duration;

use crate::time::{duration_millis, Timestamp};

/// The emission interval of `limit` per `period`, in milliseconds (rounded up, at
/// least 1).
pub fn interval_ms(limit: u32, period: Duration) -> i64 {
    let limit = i64::from(limit.max(1));
    let p = duration_millis(period).max(1);
    ((p + limit - 1) / limit).max(1)
}

/// One GCRA reservation: returns `(start, new_tat)` for a run arriving at `now`.
pub fn reserve(
    tat: Option<Timestamp>,
    now: Timestamp,
    interval_ms: i64,
    burst: u32,
) -> (Timestamp, Timestamp) {
    let tat = tat.unwrap_or(now).millis();
    let tau = interval_ms.saturating_mul(i64::from(burst.max(1)) - 1);
    let start = now.millis().max(tat.saturating_sub(tau));
    let new_tat = tat.max(start).saturating_add(interval_ms);
    (Timestamp::from_millis(start), Timestamp::from_millis(new_tat))
}

/// A rate limit's check: the new TAT when a run arriving at `now` may start at once,
/// or `None` when it is over the limit (and is to be skipped, leaving the TAT as it is).
pub fn admit(tat: Option<Timestamp>, now: Timestamp, interval_ms: i64, burst: u32) -> Option<Timestamp> {
    let (start, new_tat) = reserve(tat, now, interval_ms, burst);
    (start <= now).then_some(new_tat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schedule(arrivals: &[i64], interval: i64, burst: u32) -> Vec<i64> {
        let mut tat = None;
        arrivals
            .iter()
            .map(|&a| {
                let (start, next) = reserve(tat, Timestamp::from_millis(a), interval, burst);
                tat = Some(next);
                start.millis()
            })
            .collect()
    }

    #[test]
    fn spaces_runs_by_the_interval() {
        // 2 per 10 s, burst 1: five runs at t=0 start 5 s apart.
        let t = interval_ms(2, Duration::from_secs(10));
        assert_eq!(t, 5_000);
        assert_eq!(
            schedule(&[0, 0, 0, 0, 0], t, 1),
            vec![0, 5_000, 10_000, 15_000, 20_000]
        );
    }

    #[test]
    fn burst_lets_several_start_at_once_after_a_quiet_spell() {
        let t = 5_000;
        assert_eq!(schedule(&[0, 0, 0, 0, 0], t, 3), vec![0, 0, 0, 5_000, 10_000]);
        // After a long pause the burst is available again.
        assert_eq!(
            schedule(&[0, 0, 0, 100_000, 100_000, 100_000, 100_000], t, 3),
            vec![0, 0, 0, 100_000, 100_000, 100_000, 105_000]
        );
    }

    proptest! {
        /// However runs arrive, no window of `k·T` holds more than `k + burst − 1`
        /// starts, no run starts before it arrives, and starts keep arrival order.
        #[test]
        fn never_exceeds_the_rate(mut arrivals in proptest::collection::vec(0i64..200_000, 1..60),
                                  interval in 1i64..20_000, burst in 1u32..5) {
            arrivals.sort();
            let starts = schedule(&arrivals, interval, burst);
            for (a, s) in arrivals.iter().zip(&starts) {
                prop_assert!(s >= a);
            }
            for w in starts.windows(2) {
                prop_assert!(w[1] >= w[0]);
            }
            for i in 0..starts.len() {
                for j in i..starts.len() {
                    let span = starts[j] - starts[i];
                    let allowed = span / interval + i64::from(burst);
                    prop_assert!((j - i + 1) as i64 <= allowed,
                        "{} starts within {span} ms (interval {interval}, burst {burst})", j - i + 1);
                }
            }
        }
    }
}
