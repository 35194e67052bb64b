//! Time: the [`Timestamp`] type and the injected [`Clock`].
//!
//! Every time the engine reads ("now") or waits for ("sleep until") goes through a
//! [`Clock`], so tests can drive sleeps, backoff, throttles and timeouts with a
//! [`TestClock`] instead of waiting in real time.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, in milliseconds since the Unix epoch (UTC).
///
/// Serialised as an RFC 3339 string with milliseconds (`2026-11-26T16:34:54.123Z`);
/// deserialised from such a string or from an integer number of milliseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The current wall-clock time (use a [`Clock`] inside the engine).
    pub fn now_utc() -> Self {
        Timestamp(Utc::now().timestamp_millis())
    }

    /// This time plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// This time minus `d` (saturating).
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_millis(d)))
    }

    /// How long after `earlier` this time is; zero if it is not after it.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// RFC 3339 text with milliseconds, in UTC.
    pub fn to_rfc3339(self) -> String {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => self.0.to_string(),
        }
    }

    /// Parses RFC 3339 text.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| Timestamp(dt.timestamp_millis()))
    }
}

/// Milliseconds in a duration, saturating at `i64::MAX`.
pub fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_millis())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Millis(i64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Millis(ms) => Ok(Timestamp(ms)),
            Repr::Text(s) => Timestamp::parse_rfc3339(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 timestamp '{s}'"))),
        }
    }
}

/// The source of "now" and of timed waits.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// A future that completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()>;
}

/// The real wall clock, sleeping with tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now_utc()
    }

    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                let now = Timestamp::now_utc();
                if now >= deadline {
                    return;
                }
                // Sleep at most a minute at a time so wall-clock jumps are noticed.
                let wait = deadline.since(now).min(Duration::from_secs(60));
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// A clock that only moves when a test tells it to.
///
/// Sleepers wake as soon as [`TestClock::advance`] or [`TestClock::set`] moves the time
/// past their deadline, so a test of a one-hour sleep takes microseconds.
#[derive(Debug)]
pub struct TestClock {
    now: AtomicI64,
    tick: tokio::sync::watch::Sender<i64>,
}

impl TestClock {
    /// A test clock starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        let (tick, _) = tokio::sync::watch::channel(start.0);
        TestClock {
            now: AtomicI64::new(start.0),
            tick,
        }
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: Duration) {
        let next = self.now.fetch_add(duration_millis(d), Ordering::SeqCst) + duration_millis(d);
        self.tick.send_replace(next);
    }

    /// Sets the time (it may only move forward; earlier values are ignored).
    pub fn set(&self, t: Timestamp) {
        let prev = self.now.fetch_max(t.0, Ordering::SeqCst);
        self.tick.send_replace(prev.max(t.0));
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        let mut rx = self.tick.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= deadline.0 {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The clock is gone: nothing will ever wake us.
                    futures::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_through_json() {
        let t = Timestamp::from_millis(1_764_000_000_123);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2025-11-24T16:00:00.123Z\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        let from_int: Timestamp = serde_json::from_str("1764000000123").unwrap();
        assert_eq!(from_int, t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[tokio::test]
    async fn test_clock_wakes_sleepers_when_advanced() {
        let clock = std::sync::Arc::new(TestClock::new(Timestamp::from_millis(1_000)));
        let sleeper = clock.sleep_until(Timestamp::from_millis(61_000));
        let handle = tokio::spawn(sleeper);
        tokio::task::yield_now().await;
        assert!(!handle.is_finished());
        clock.advance(Duration::from_secs(30));
        tokio::task::yield_now().await;
        assert!(!handle.is_finished());
        clock.advance(Duration::from_secs(30));
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("sleeper woke")
            .unwrap();
    }
}
