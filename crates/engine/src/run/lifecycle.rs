//! The run state machine.
//!
//! | from \ to  | queued | running | sleeping | waiting | completed | failed | cancelled |
//! |------------|--------|---------|----------|---------|-----------|--------|-----------|
//! | queued     |        | claim   |          |         |           |        | cancel    |
//! | running    | retry, lease lost | | suspend | suspend | return  | error  | cancel    |
//! | sleeping   | wake   | claim   |          |         |           |        | cancel    |
//! | waiting    | wake   | claim   |          |         |           |        | cancel    |
//! | completed, failed, cancelled: terminal, no way out                                 |
//!
//! *claim*: a node takes the run when it is due (`available_at` passed) and holds a
//! lease on it. *suspend*: every branch of the code is parked on a sleep, a wait, an
//! invoke or a retry backoff and no step executes; the run releases its lease and
//! becomes due again at its earliest wake-up time. *wake*: an awaited event or an
//! invoked run's result arrived. Replays do not move a run: they create a new one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Waiting for its start (or its next attempt).
    Queued,
    /// A node is executing it.
    Running,
    /// Parked on a durable timer.
    Sleeping,
    /// Parked on an event or an invoked run.
    Waiting,
    /// Returned a value.
    Completed,
    /// Ended with an error.
    Failed,
    /// Stopped by a cancel.
    Cancelled,
}

/// Every state, in lifecycle order.
pub const ALL_STATUSES: [RunStatus; 7] = [
    RunStatus::Queued,
    RunStatus::Running,
    RunStatus::Sleeping,
    RunStatus::Waiting,
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::Cancelled,
];

/// A state change the lifecycle does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a run cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// Current state.
    pub from: RunStatus,
    /// Requested state.
    pub to: RunStatus,
}

impl RunStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Sleeping => "sleeping",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Completed, failed or cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    /// Queued, sleeping or waiting: not executing, not finished.
    pub fn is_parked(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Sleeping | RunStatus::Waiting)
    }

    /// Checks a state change against the table in the module documentation.
    pub fn check_transition(self, to: RunStatus) -> Result<(), IllegalTransition> {
        use RunStatus::*;
        let ok = match (self, to) {
            (from, _) if from.is_terminal() => false,
            (_, Cancelled) => true,
            (Queued, Running) => true,
            (Running, Queued | Sleeping | Waiting | Completed | Failed) => true,
            (Sleeping | Waiting, Queued | Running) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_STATUSES
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown run status '{s}' (expected one of: queued, running, sleeping, waiting, completed, failed, cancelled)"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_have_no_way_out() {
        for from in [RunStatus::Completed, RunStatus::Failed, RunStatus::Cancelled] {
            for to in ALL_STATUSES {
                assert!(from.check_transition(to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_table_allows_the_documented_moves() {
        use RunStatus::*;
        let allowed = [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, Queued),
            (Running, Sleeping),
            (Running, Waiting),
            (Running, Completed),
            (Running, Failed),
            (Running, Cancelled),
            (Sleeping, Queued),
            (Sleeping, Running),
            (Sleeping, Cancelled),
            (Waiting, Queued),
            (Waiting, Running),
            (Waiting, Cancelled),
        ];
        for from in ALL_STATUSES {
            for to in ALL_STATUSES {
                let expected = allowed.contains(&(from, to));
                assert_eq!(from.check_transition(to).is_ok(), expected, "{from} -> {to}");
            }
        }
        assert_eq!(
            Queued.check_transition(Completed).unwrap_err().to_string(),
            "a run cannot go from queued to completed"
        );
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATUSES {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), s);
        }
        assert!("paused"
            .parse::<RunStatus>()
            .unwrap_err()
            .contains("unknown run status 'paused'"));
    }
}
