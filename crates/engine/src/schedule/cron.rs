//! Cron triggers: every node watches the registered schedules and, at each tick,
//! appends a [`CRON_EVENT`] for the function with an id made of the function, the
//! schedule and the tick time. The store's event-id dedupe then lets exactly one node
//! start the run, however many are running. Ticks missed while no node was running
//! are not made up for; a node that falls behind fires only the latest missed tick
//! of each schedule.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use crate::engine::Core;
use crate::event::{Event, CRON_EVENT};
use crate::function::CompiledFunction;
use crate::store::AppendEvent;
use crate::time::Timestamp;

/// How often the schedules are looked at again in real time (new registrations).
const RESCAN: Duration = Duration::from_secs(1);

/// Fires cron ticks until `stop` turns true.
pub(crate) async fn run(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let mut since = core.clock.now();
    loop {
        if *stop.borrow() {
            return;
        }
        let now = core.clock.now();
        let functions = core.cron_functions();
        let mut next: Option<Timestamp> = None;
        for f in &functions {
            for (i, schedule) in f.crons.iter().enumerate() {
                if let Some(tick) = latest_tick(schedule, since, now) {
                    if let Err(e) = fire(&core, f, i, tick, now).await {
                        tracing::warn!(function = %f.config.id, cron = %schedule.source, "could not start a cron run: {e}");
                    }
                }
                if let Some(t) = schedule.next_after(now) {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
        }
        since = now;
        let wake = next.unwrap_or_else(|| now.plus(Duration::from_secs(60)));
        tokio::select! {
            _ = core.clock.sleep_until(wake) => {}
            _ = tokio::time::sleep(RESCAN) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The last tick in `(since, now]`, if any.
fn latest_tick(
    schedule: &crate::function::CronSchedule,
    since: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut tick = schedule.next_after(since).filter(|t| *t <= now)?;
    // A node that slept long: skip ahead to the latest tick (bounded walk).
    for _ in 0..10_000 {
        match schedule.next_after(tick) {
            Some(t) if t <= now => tick = t,
            _ => break,
        }
    }
    Some(tick)
}

async fn fire(
    core: &Arc<Core>,
    function: &CompiledFunction,
    index: usize,
    tick: Timestamp,
    now: Timestamp,
) -> Result<(), crate::error::EngineError> {
    let fid = &function.config.id;
    let at = tick.to_rfc3339();
    let event = Event {
        id: format!("cron:{fid}:{index}:{}", tick.millis()),
        name: CRON_EVENT.to_string(),
        data: json!({ "cron": function.crons[index].source, "scheduledAt": at, "fireAt": at }),
        user: serde_json::Value::Null,
        ts: tick,
    };
    let run = core.new_run(function, &event, now);
    let outcomes = core
        .append(
            vec![AppendEvent {
                event,
                runs: vec![run],
            }],
            now,
        )
        .await?;
    for id in outcomes.iter().flat_map(|o| &o.created) {
        tracing::debug!(function = %fid, run = %id, tick = %at, "cron tick");
    }
    Ok(())
}
