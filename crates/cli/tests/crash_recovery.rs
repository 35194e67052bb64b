//! A durable run survives SIGKILL at any point.
//!
//! The child process is the real `learnflow demo`: four runs of a pipeline with a
//! step, three parallel steps, a durable sleep and a step that fails once and is
//! retried. Each step body appends `start`/`end` lines to a log file (the external
//! record). The test kills the child with SIGKILL mid-step, during the parallel
//! steps, during the sleep, during a retry backoff and at an arbitrary moment,
//! restarting it each time on the same database. After each kill it notes which
//! steps the database had recorded and how often each had run; at the end every run
//! must be complete, and no step recorded before a kill may have run again after it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use learnflow_engine::store::{JournalStore, RunStore};
use learnflow_engine::{RunFilter, RunStatus, StepStatus};
use learnflow_store_sqlite::SqliteStore;

const BIN: &str = env!("CARGO_BIN_EXE_learnflow");
const RUNS: usize = 4;
const STEPS: [&str; 6] = [
    "extract",
    "analyze-1",
    "analyze-2",
    "analyze-3",
    "cool-down",
    "summarize",
];

type Key = (String, String);

fn spawn(dir: &Path, log: &Path) -> Child {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args([
            "demo",
            "--runs",
            &RUNS.to_string(),
            "--step-ms",
            "250",
            "--sleep-ms",
            "1500",
        ])
        .args(["--batch-id", "crash", "--quiet", "--log"])
        .arg(log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("learnflow starts")
}

fn read_log(log: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            Some((
                p.next()?.to_string(),
                p.next()?.to_string(),
                p.next()?.to_string(),
            ))
        })
        .collect()
}

/// How many times each step body ran to its end.
fn ends(log: &Path) -> BTreeMap<Key, usize> {
    let mut out = BTreeMap::new();
    for (what, ev, step) in read_log(log) {
        if what == "end" {
            *out.entry((ev, step)).or_default() += 1;
        }
    }
    out
}

/// Steps whose body started and has not ended (in the latest process).
fn in_flight(log: &Path) -> BTreeSet<Key> {
    let mut open = BTreeSet::new();
    for (what, ev, step) in read_log(log) {
        match what.as_str() {
            "start" => {
                open.insert((ev, step));
            }
            "end" | "failed" => {
                open.remove(&(ev, step));
            }
            _ => {}
        }
    }
    open
}

struct Snapshot {
    completed: BTreeSet<Key>,
    statuses: Vec<RunStatus>,
}

async fn snapshot(db: &Path) -> Snapshot {
    let store = SqliteStore::open(db).expect("database opens");
    let page = store
        .list_runs(&RunFilter {
            function_id: Some("demo-pipeline".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .expect("runs listed");
    let mut completed = BTreeSet::new();
    let mut statuses = Vec::new();
    for r in page.runs {
        statuses.push(r.status);
        for s in store.load_journal(&r.id).await.expect("journal") {
            if s.status == StepStatus::Completed {
                completed.insert((r.event_id.clone(), s.step_id));
            }
        }
    }
    Snapshot { completed, statuses }
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL sent");
    let status = child.wait().expect("child reaped");
    assert!(
        !status.success(),
        "the child had already finished before the kill"
    );
}

/// Polls `cond` every 5 ms for up to 60 s.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never saw: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_results_survive_sigkill_and_no_recorded_step_runs_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let log: PathBuf = dir.join("steps.log");
    let db = dir.join("learnflow.db");
    let mut snapshots: Vec<(String, Snapshot, BTreeMap<Key, usize>)> = Vec::new();

    // 1. Mid-step: while the first "extract" bodies run.
    let child = spawn(&dir, &log);
    wait_for("an extract step in flight", || {
        in_flight(&log).iter().any(|(_, s)| s == "extract")
    })
    .await;
    kill(child);
    snapshots.push(("mid-step".into(), snapshot(&db).await, ends(&log)));

    // 2. During the parallel steps.
    let child = spawn(&dir, &log);
    wait_for("parallel analyze steps in flight", || {
        in_flight(&log)
            .iter()
            .filter(|(_, s)| s.starts_with("analyze-"))
            .count()
            >= 2
    })
    .await;
    kill(child);
    snapshots.push(("parallel steps".into(), snapshot(&db).await, ends(&log)));

    // 3. During the durable sleep.
    let child = spawn(&dir, &log);
    let mut sleeping = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sleeping {
        assert!(Instant::now() < deadline, "never saw a sleeping run");
        sleeping = snapshot(&db).await.statuses.contains(&RunStatus::Sleeping);
        if !sleeping {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    kill(child);
    let snap = snapshot(&db).await;
    assert!(
        snap.statuses.contains(&RunStatus::Sleeping),
        "killed while a run slept"
    );
    snapshots.push(("sleep".into(), snap, ends(&log)));

    // 4. During the retry backoff of "summarize" (its first attempt fails).
    let failures_before = read_log(&log).iter().filter(|l| l.0 == "failed").count();
    let child = spawn(&dir, &log);
    wait_for("a failed summarize attempt", || {
        read_log(&log).iter().filter(|l| l.0 == "failed").count() > failures_before
    })
    .await;
    kill(child);
    snapshots.push(("retry backoff".into(), snapshot(&db).await, ends(&log)));

    // 5. At an arbitrary moment between steps.
    let child = spawn(&dir, &log);
    let ends_before: usize = ends(&log).values().sum();
    wait_for("one more step to end", || {
        ends(&log).values().sum::<usize>() > ends_before
    })
    .await;
    kill(child);
    snapshots.push(("between steps".into(), snapshot(&db).await, ends(&log)));

    // Finally, let it finish.
    let mut child = spawn(&dir, &log);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the last run of the demo did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "the final demo process failed: {status}");

    let last = snapshot(&db).await;
    assert_eq!(
        last.statuses.len(),
        RUNS,
        "no run was lost and none was duplicated"
    );
    assert!(
        last.statuses.iter().all(|s| *s == RunStatus::Completed),
        "{:?}",
        last.statuses
    );
    let final_ends = ends(&log);
    let events: BTreeSet<&String> = last.completed.iter().map(|(e, _)| e).collect();
    assert_eq!(events.len(), RUNS);
    for ev in &events {
        for step in STEPS {
            assert!(
                last.completed.contains(&((*ev).clone(), step.to_string())),
                "{ev}/{step} not recorded"
            );
        }
    }
    let mut recorded_at_some_kill = 0;
    for (point, snap, counts) in &snapshots {
        for key in &snap.completed {
            if key.1 == "cool-down" {
                continue; // a sleep has no body
            }
            recorded_at_some_kill += 1;
            assert_eq!(
                final_ends.get(key),
                counts.get(key),
                "step {key:?} was recorded before the kill at '{point}' and ran again afterwards"
            );
        }
    }
    assert!(
        recorded_at_some_kill > 0,
        "the kills all happened before anything was recorded"
    );
}
