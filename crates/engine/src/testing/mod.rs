//! The store conformance suite: the engine's behaviour, tested once against the
//! [`Store`] trait. Every store crate runs all of it with one line:
//!
//! ```text
//! learnflow_engine::store_conformance_suite!(|| async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteStore::open(dir.path().join("t.db")).unwrap();
//!     Some((std::sync::Arc::new(store) as std::sync::Arc<dyn learnflow_engine::Store>, dir))
//! });
//! ```
//!
//! The factory returns a fresh store and a guard kept alive for the test's duration,
//! or `None` when its backend cannot run here (a store that needs a server skips only
//! outside CI, and says so loudly).
//! Tests use a [`TestClock`], so sleeps, backoff, throttles and timeouts take no real
//! time.

// Each test function is named for the behaviour it checks.
#[allow(missing_docs)]
pub mod suite;

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Engine, EngineConfig};
use crate::ids::RunId;
use crate::run::{RunDetail, RunStatus};
use crate::store::Store;
use crate::time::{TestClock, Timestamp};

/// Where test clocks start: 2027-01-15T08:00:00Z.
pub const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

/// An engine on a test clock, started.
pub struct Harness {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Its clock.
    pub clock: Arc<TestClock>,
    /// Its store.
    pub store: Arc<dyn Store>,
}

impl Harness {
    /// A started engine on `store` with a fresh test clock.
    pub async fn start(store: Arc<dyn Store>) -> Harness {
        Self::start_with(store, Arc::new(TestClock::new(T0)), EngineConfig::default()).await
    }

    /// A started engine with a given clock and config.
    pub async fn start_with(
        store: Arc<dyn Store>,
        clock: Arc<TestClock>,
        mut config: EngineConfig,
    ) -> Harness {
        config.poll_interval = config.poll_interval.min(Duration::from_millis(100));
        let engine = Engine::builder(store.clone())
            .clock(clock.clone())
            .config(config)
            .build();
        engine.start().await.expect("engine starts");
        Harness {
            engine: Arc::new(engine),
            clock,
            store,
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// Polls (in real time, up to 20 s) until the run's status satisfies `pred`.
    pub async fn wait_until(&self, run: &RunId, what: &str, pred: impl Fn(&RunDetail) -> bool) -> RunDetail {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let detail = self.engine.get_run(run).await.expect("run exists");
            if pred(&detail) {
                return detail;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for run {run} to be {what}; it is {} with steps {:#?}",
                detail.run.status,
                detail.steps
            );
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }

    /// Waits until the run is in `status`.
    pub async fn wait_status(&self, run: &RunId, status: RunStatus) -> RunDetail {
        self.wait_until(run, status.as_str(), |d| d.run.status == status)
            .await
    }

    /// Waits until the run has ended.
    pub async fn finished(&self, run: &RunId) -> RunDetail {
        self.wait_until(run, "finished", |d| d.run.status.is_terminal())
            .await
    }
}

/// Generates one `#[tokio::test]` per conformance test for a store factory.
#[macro_export]
macro_rules! store_conformance_suite {
    ($make:expr) => {
        $crate::store_conformance_suite!(@tests $make;
            steps_run_in_order_and_results_are_recorded,
            a_recorded_step_is_not_run_again_after_a_suspension,
            parallel_steps_run_concurrently,
            a_failing_step_is_retried_with_backoff_and_every_attempt_is_kept,
            exhausted_retries_fail_the_run_with_the_last_error,
            a_non_retriable_error_fails_the_run_at_once,
            retry_after_sets_the_next_attempt_time,
            a_caught_step_failure_lets_the_function_go_on,
            a_panicking_step_is_retried_and_reported,
            an_error_outside_steps_retries_the_function,
            sleep_is_durable_and_holds_no_concurrency_slot,
            sleep_until_wakes_at_the_given_time,
            wait_for_event_resumes_on_a_matching_event_only,
            wait_for_event_times_out_with_none,
            invoke_returns_the_child_result_and_its_failure,
            invoke_of_an_unknown_function_fails_the_step,
            cancel_stops_the_run_before_its_next_step,
            cancel_on_event_cancels_matching_runs,
            replay_from_the_failed_step_reuses_earlier_results,
            replay_from_start_runs_everything_again,
            concurrency_limits_hold_per_key_and_per_function,
            runs_waiting_for_a_slot_start_in_order,
            throttle_delays_runs_but_drops_none,
            rate_limit_skips_runs_over_the_limit,
            batches_gather_events_into_one_run,
            shared_concurrency_limits_span_functions,
            singleton_skips_or_replaces_the_active_run,
            cron_ticks_start_one_run_each_across_nodes,
            debounce_starts_one_run_with_the_last_event,
            priority_moves_runs_ahead_for_slots_and_starts,
            a_repeated_event_id_within_24h_starts_nothing,
            one_event_starts_every_function_it_matches,
            idempotency_key_allows_one_run_per_key,
            finish_timeout_cancels_a_run,
            start_timeout_cancels_a_run_that_never_started,
            bad_input_gets_a_clear_error,
            an_empty_step_name_fails_the_run_clearly,
            a_changed_step_path_fails_with_non_determinism,
            runs_can_be_listed_filtered_paged_and_counted,
            runs_belong_to_the_user_of_their_event,
            a_node_that_lost_its_lease_cannot_record,
            another_engine_resumes_runs_after_a_shutdown,
            dead_process_runs_are_taken_over_at_start,
            oversized_step_output_fails_the_step,
            a_wait_survives_a_restart,
            invoke_with_a_timeout_fails_when_the_child_is_late,
            repeated_step_names_get_numbered_ids,
            a_step_that_changes_kind_fails_with_non_determinism,
            send_events_starts_other_functions_once,
            replay_from_the_failed_step_skips_steps_that_handled_the_failure,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                // `None`: the factory's backend is not available here (it says so).
                let Some((store, _guard)) = ($make)().await else { return };
                $crate::testing::suite::$name(store).await;
            }
        )*
    };
}
