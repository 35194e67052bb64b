//! Two engines (two nodes) on one PostgreSQL database share the work, and a
//! function's concurrency limits hold across both together.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use learnflow_engine::{Ctx, Engine, EngineConfig, EventInput, Function, RunStatus, Store};
use learnflow_store_postgres::PostgresStore;
use parking_lot::Mutex;
use serde_json::json;

use learnflow_store_postgres::testing::TestDb;

#[derive(Default)]
struct Record {
    running: HashMap<String, usize>,
    total: usize,
    peak_total: usize,
    peak_user: HashMap<String, usize>,
    by_node: HashMap<&'static str, usize>,
}

fn limited(node: &'static str, record: Arc<Mutex<Record>>) -> learnflow_engine::FunctionDef {
    Function::new("limited")
        .on_event("t.limited")
        .concurrency(3, None)
        .concurrency(1, Some("event.data.user"))
        .handler(move |ctx: Ctx| {
            let record = record.clone();
            async move {
                let user = ctx.event().data["user"].as_str().unwrap_or_default().to_string();
                for i in 0..3 {
                    ctx.run(&format!("work-{i}"), || async {
                        {
                            let mut r = record.lock();
                            *r.running.entry(user.clone()).or_default() += 1;
                            r.total += 1;
                            r.peak_total = r.peak_total.max(r.total);
                            let mine = r.running[&user];
                            let e = r.peak_user.entry(user.clone()).or_default();
                            *e = (*e).max(mine);
                            *r.by_node.entry(node).or_default() += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(15)).await;
                        let mut r = record.lock();
                        if let Some(n) = r.running.get_mut(&user) {
                            *n -= 1;
                        }
                        r.total -= 1;
                        Ok(())
                    })
                    .await?;
                }
                Ok(())
            }
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_runs_and_limits_hold_across_them() {
    let Some(db) = TestDb::new() else { return };
    let record: Arc<Mutex<Record>> = Default::default();
    let config = EngineConfig {
        poll_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    let mut engines = Vec::new();
    for node in ["a", "b"] {
        let store = PostgresStore::connect(&db.url, 8).await.expect("store opens");
        let engine = Engine::builder(Arc::new(store) as Arc<dyn Store>)
            .config(config.clone())
            .build();
        engine.register(limited(node, record.clone())).unwrap();
        engine.start().await.unwrap();
        engines.push(engine);
    }
    let mut runs = Vec::new();
    for i in 0..24 {
        let user = ["u1", "u2", "u3", "u4"][i % 4];
        let receipt = engines[i % 2]
            .send(EventInput::new("t.limited", json!({ "user": user })))
            .await
            .unwrap();
        runs.extend(receipt.runs);
    }
    assert_eq!(runs.len(), 24);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for run in &runs {
        loop {
            let d = engines[0].get_run(run).await.unwrap();
            if d.run.status.is_terminal() {
                assert_eq!(d.run.status, RunStatus::Completed, "{:?}", d.run.error);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "run {run} did not finish");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for e in &engines {
        e.shutdown().await;
    }
    let r = record.lock();
    assert!(
        r.peak_total <= 3,
        "{} steps ran at once across nodes; the limit is 3",
        r.peak_total
    );
    for (user, peak) in &r.peak_user {
        assert_eq!(
            *peak, 1,
            "user {user} had {peak} steps at once across nodes; the limit is 1"
        );
    }
    assert_eq!(
        r.by_node.values().sum::<usize>(),
        72,
        "every step ran exactly once: {:?}",
        r.by_node
    );
    assert!(r.by_node.len() == 2, "both nodes executed steps: {:?}", r.by_node);
}

/// A throttle holds across nodes: runs sent through two engines at once start one
/// emission interval apart, not two at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_holds_across_nodes() {
    let Some(db) = TestDb::new() else { return };
    let starts: Arc<Mutex<Vec<std::time::Instant>>> = Default::default();
    let config = EngineConfig {
        poll_interval: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    let mut engines = Vec::new();
    for _ in 0..2 {
        let store = PostgresStore::connect(&db.url, 8).await.expect("store opens");
        let engine = Engine::builder(Arc::new(store) as Arc<dyn Store>)
            .config(config.clone())
            .build();
        let s = starts.clone();
        engine
            .register(
                Function::new("throttled")
                    .on_event("t.throttled")
                    .throttle(10, Duration::from_secs(1), 1, None)
                    .handler(move |ctx: Ctx| {
                        let s = s.clone();
                        async move {
                            ctx.run("start", || async {
                                s.lock().push(std::time::Instant::now());
                                Ok(())
                            })
                            .await?;
                            Ok(())
                        }
                    }),
            )
            .unwrap();
        engine.start().await.unwrap();
        engines.push(engine);
    }
    let (a, b) = (&engines[0], &engines[1]);
    let mut runs = Vec::new();
    for _ in 0..4 {
        let (ra, rb) = tokio::join!(
            a.send(EventInput::new("t.throttled", json!({}))),
            b.send(EventInput::new("t.throttled", json!({})))
        );
        runs.extend(ra.unwrap().runs);
        runs.extend(rb.unwrap().runs);
    }
    assert_eq!(runs.len(), 8);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for run in &runs {
        while !a.get_run(run).await.unwrap().run.status.is_terminal() {
            assert!(std::time::Instant::now() < deadline, "run {run} did not finish");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for e in &engines {
        e.shutdown().await;
    }
    let mut s = starts.lock().clone();
    s.sort();
    assert_eq!(s.len(), 8);
    // 10 per second with no burst: the i-th start is due 100 ms × i after the first's
    // due time; polling may start any run a little late (the slack), but if each node
    // kept its own throttle, two runs would share a slot and the last would come ~400 ms
    // early.
    let slack = Duration::from_millis(60);
    for (i, t) in s.iter().enumerate() {
        let due = Duration::from_millis(100 * i as u64);
        assert!(
            *t - s[0] + slack >= due,
            "throttled run {i} started {:?} after the first; due {due:?} after",
            *t - s[0]
        );
    }
}
