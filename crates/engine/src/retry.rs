//! The retry schedule.
//!
//! After the *n*-th failed attempt of a step (n = 1, 2, …) the next attempt waits a
//! random delay drawn uniformly from `[d/2, d]`, where
//! `d = min(max_delay, base × factor^(n−1))` ("equal jitter": the delay always grows,
//! and concurrent retries spread out). With the defaults (base 1 s, factor 2, cap
//! 10 min) the waits are 0.5–1 s, 1–2 s, 2–4 s, 4–8 s, … up to 5–10 min. A failure
//! carrying a retry-after time waits until that time instead (capped at 24 h). A step
//! gets `retries + 1` attempts in all; then the step fails with its last error.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::failure::RetryDirective;
use crate::time::Timestamp;

/// The longest a retry-after may push the next attempt out.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Exponential backoff with equal jitter (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Nominal delay after the first failure.
    #[serde(with = "crate::duration")]
    pub base: Duration,
    /// Growth factor per further failure.
    pub factor: f64,
    /// Cap on the nominal delay.
    #[serde(with = "crate::duration")]
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The nominal (un-jittered) delay after failure number `n` (1-based).
    pub fn nominal(&self, n: u32) -> Duration {
        let exp = n.saturating_sub(1).min(64) as i32;
        let secs = self.base.as_secs_f64() * self.factor.max(1.0).powi(exp);
        let capped = secs.min(self.max_delay.as_secs_f64());
        Duration::from_secs_f64(capped.max(0.0))
    }

    /// A jittered delay after failure number `n` (1-based), in `[nominal/2, nominal]`.
    pub fn delay(&self, n: u32, rng: &mut impl Rng) -> Duration {
        let d = self.nominal(n);
        let half = d / 2;
        let spread = d.saturating_sub(half);
        half + spread.mul_f64(rng.random::<f64>())
    }

    /// When the next attempt may start, after failure number `n` ended at `now`.
    pub fn next_attempt_at(&self, n: u32, now: Timestamp, directive: RetryDirective) -> Timestamp {
        match directive {
            RetryDirective::After(d) => now.plus(d.min(MAX_RETRY_AFTER)),
            RetryDirective::At(t) => t.max(now).min(now.plus(MAX_RETRY_AFTER)),
            RetryDirective::Retry | RetryDirective::Never => now.plus(self.delay(n, &mut rand::rng())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_schedule_doubles_from_one_second_up_to_ten_minutes() {
        let p = RetryPolicy::default();
        let nominal: Vec<u64> = (1..=12).map(|n| p.nominal(n).as_secs()).collect();
        assert_eq!(nominal, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
    }

    #[test]
    fn retry_after_wins_over_backoff_and_is_capped() {
        let p = RetryPolicy::default();
        let now = Timestamp::from_millis(1_000_000);
        let at = p.next_attempt_at(1, now, RetryDirective::After(Duration::from_secs(30)));
        assert_eq!(at, now.plus(Duration::from_secs(30)));
        let far = p.next_attempt_at(1, now, RetryDirective::After(Duration::from_secs(1 << 30)));
        assert_eq!(far, now.plus(MAX_RETRY_AFTER));
        let past = p.next_attempt_at(1, now, RetryDirective::At(Timestamp::from_millis(5)));
        assert_eq!(past, now);
    }

    proptest! {
        #[test]
        fn jittered_delay_stays_within_half_to_full_nominal(n in 1u32..40, seed in any::<u64>()) {
            use rand::SeedableRng;
            let p = RetryPolicy::default();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let d = p.delay(n, &mut rng);
            let nominal = p.nominal(n);
            prop_assert!(d >= nominal / 2, "{d:?} < half of {nominal:?}");
            prop_assert!(d <= nominal, "{d:?} > {nominal:?}");
        }

        #[test]
        fn nominal_never_shrinks(n in 1u32..60) {
            let p = RetryPolicy::default();
            prop_assert!(p.nominal(n + 1) >= p.nominal(n));
        }
    }
}
