//! The conformance tests. Each takes a fresh store; see [`crate::store_conformance_suite`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::{Harness, T0};
use crate::engine::EngineConfig;
use crate::error::EngineError;
use crate::event::{EventInput, MAX_EVENT_BYTES};
use crate::failure::Failure;
use crate::function::Function;
use crate::ids::{NodeId, RunId};
use crate::run::{ReplayFrom, RunFilter, RunStatus};
use crate::step::{Ctx, StepKind, StepStatus};
use crate::store::{AppendEvent, Lease, NewRun, NodeInfo, RecordAck, RunOutcome, Store};
use crate::time::TestClock;

const HOUR: Duration = Duration::from_secs(3600);

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

async fn send(h: &Harness, name: &str, data: Value) -> RunId {
    let r = h
        .engine
        .send(EventInput::new(name, data))
        .await
        .expect("event accepted");
    assert_eq!(r.runs.len(), 1, "expected one run for '{name}', got {:?}", r.runs);
    r.runs[0].clone()
}

/// Gives the engine a moment of real time (for "nothing happens" checks).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(60)).await;
}

pub async fn steps_run_in_order_and_results_are_recorded(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("three-steps")
                .on_event("t.go")
                .handler(|ctx: Ctx| async move {
                    let a: i64 = ctx.run("a", || async { Ok(1) }).await?;
                    let b: i64 = ctx.run("b", || async move { Ok(a + 1) }).await?;
                    let c: String = ctx.run("c", || async move { Ok(format!("{a}-{b}")) }).await?;
                    Ok(json!({ "a": a, "b": b, "c": c }))
                }),
        )
        .unwrap();
    let run = send(&h, "t.go", json!({ "x": 1 })).await;
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Completed);
    assert_eq!(d.run.output, Some(json!({ "a": 1, "b": 2, "c": "1-2" })));
    assert_eq!(d.event.data, json!({ "x": 1 }));
    let ids: Vec<&str> = d.steps.iter().map(|s| s.step_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    for s in &d.steps {
        assert_eq!(s.status, StepStatus::Completed);
        assert_eq!(s.kind, StepKind::Run);
        assert_eq!(s.attempts.len(), 1);
        assert!(s.attempts[0].error.is_none());
        assert!(s.ended_at.is_some());
    }
    assert_eq!(d.steps[2].output, Some(json!("1-2")));
    assert!(d.run.started_at.is_some() && d.run.ended_at.is_some());
}

pub async fn a_recorded_step_is_not_run_again_after_a_suspension(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let (a, b) = (counter(), counter());
    let (a2, b2) = (a.clone(), b.clone());
    h.engine
        .register(Function::new("nap").on_event("t.nap").handler(move |ctx: Ctx| {
            let (a, b) = (a2.clone(), b2.clone());
            async move {
                let x: usize = ctx.run("a", || async { Ok(a.fetch_add(1, SeqCst) + 1) }).await?;
                ctx.sleep("nap", HOUR).await?;
                let y: usize = ctx.run("b", || async { Ok(b.fetch_add(1, SeqCst) + 1) }).await?;
                Ok(json!([x, y]))
            }
        }))
        .unwrap();
    let run = send(&h, "t.nap", json!({})).await;
    let d = h.wait_status(&run, RunStatus::Sleeping).await;
    assert_eq!(a.load(SeqCst), 1);
    let nap = d
        .steps
        .iter()
        .find(|s| s.step_id == "nap")
        .expect("sleep recorded");
    assert_eq!(nap.status, StepStatus::Sleeping);
    assert_eq!(nap.kind, StepKind::Sleep);
    assert_eq!(nap.wake_at, Some(T0.plus(HOUR)));
    assert_eq!(d.run.available_at, Some(T0.plus(HOUR)));
    h.advance(HOUR + Duration::from_secs(1));
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Completed);
    assert_eq!(d.run.output, Some(json!([1, 1])));
    assert_eq!(a.load(SeqCst), 1, "step 'a' ran again after the sleep");
    assert_eq!(b.load(SeqCst), 1);
}

pub async fn parallel_steps_run_concurrently(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    h.engine
        .register(
            Function::new("fan-out")
                .on_event("t.fan")
                .handler(move |ctx: Ctx| {
                    let barrier = barrier.clone();
                    async move {
                        let step = |name: &'static str, v: i64| {
                            let barrier = barrier.clone();
                            let ctx = ctx.clone();
                            async move {
                                ctx.run(name, || {
                                    let barrier = barrier.clone();
                                    async move {
                                        tokio::time::timeout(Duration::from_secs(10), barrier.wait())
                                            .await
                                            .map_err(|_| {
                                                Failure::non_retriable("steps did not run in parallel")
                                            })?;
                                        Ok(v)
                                    }
                                })
                                .await
                            }
                        };
                        let (x, y, z) = tokio::join!(step("p1", 1), step("p2", 2), step("p3", 3));
                        Ok(x? + y? + z?)
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.fan", json!({})).await;
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Completed, "{:?}", d.run.error);
    assert_eq!(d.run.output, Some(json!(6)));
    assert_eq!(d.steps.len(), 3);
}

pub async fn a_failing_step_is_retried_with_backoff_and_every_attempt_is_kept(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let n = counter();
    let n2 = n.clone();
    h.engine
        .register(
            Function::new("flaky")
                .on_event("t.flaky")
                .retries(3)
                .handler(move |ctx: Ctx| {
                    let n = n2.clone();
                    async move {
                        let v: usize = ctx
                            .run("flaky", || async {
                                let k = n.fetch_add(1, SeqCst) + 1;
                                if k < 3 {
                                    Err(Failure::retriable(format!("boom {k}")))
                                } else {
                                    Ok(k)
                                }
                            })
                            .await?;
                        Ok(v)
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.flaky", json!({})).await;
    let d = h
        .wait_until(&run, "retrying once", |d| {
            d.run.status == RunStatus::Queued && d.steps.first().is_some_and(|s| s.attempts.len() == 1)
        })
        .await;
    let step = &d.steps[0];
    assert_eq!(step.status, StepStatus::Retrying);
    let wait = step.wake_at.expect("next attempt time").since(T0).as_millis();
    assert!(
        (500..=1000).contains(&wait),
        "first backoff {wait} ms is outside 0.5–1 s"
    );
    assert_eq!(
        d.run.available_at, step.wake_at,
        "the run is due when the step is"
    );
    assert_eq!(step.attempts[0].error.as_ref().unwrap().message, "boom 1");
    h.advance(Duration::from_secs(1));
    let d = h
        .wait_until(&run, "retrying twice", |d| {
            d.steps.first().is_some_and(|s| s.attempts.len() == 2)
        })
        .await;
    let wait = d.steps[0]
        .wake_at
        .unwrap()
        .since(T0.plus(Duration::from_secs(1)))
        .as_millis();
    assert!(
        (1000..=2000).contains(&wait),
        "second backoff {wait} ms is outside 1–2 s"
    );
    h.advance(Duration::from_secs(2));
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Completed);
    assert_eq!(d.run.output, Some(json!(3)));
    let attempts = &d.steps[0].attempts;
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts.iter().map(|a| a.number).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(attempts[1].error.as_ref().unwrap().message, "boom 2");
    assert!(attempts[2].error.is_none());
    assert_eq!(n.load(SeqCst), 3);
}

pub async fn exhausted_retries_fail_the_run_with_the_last_error(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let n = counter();
    let n2 = n.clone();
    h.engine
        .register(
            Function::new("doomed")
                .on_event("t.doomed")
                .retries(2)
                .handler(move |ctx: Ctx| {
                    let n = n2.clone();
                    async move {
                        ctx.run("always-fails", || async {
                            let k = n.fetch_add(1, SeqCst) + 1;
                            Err::<(), _>(Failure::retriable(format!("attempt {k} failed")))
                        })
                        .await?;
                        Ok(())
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.doomed", json!({})).await;
    let d = loop {
        let d = h.engine.get_run(&run).await.unwrap();
        if d.run.status.is_terminal() {
            break d;
        }
        h.advance(Duration::from_secs(60));
        settle().await;
    };
    assert_eq!(d.run.status, RunStatus::Failed);
    let err = d.run.error.expect("error kept");
    assert_eq!(err.name, "StepFailed");
    assert!(err.message.contains("attempt 3 failed"), "{}", err.message);
    assert_eq!(d.steps[0].status, StepStatus::Failed);
    assert_eq!(d.steps[0].attempts.len(), 3, "retries: 2 means three attempts");
    assert_eq!(n.load(SeqCst), 3);
}

pub async fn a_non_retriable_error_fails_the_run_at_once(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("fatal")
                .on_event("t.fatal")
                .retries(5)
                .handler(|ctx: Ctx| async move {
                    ctx.run("bad-input", || async {
                        Err::<(), _>(Failure::non_retriable("the PDF is encrypted"))
                    })
                    .await?;
                    Ok(())
                }),
        )
        .unwrap();
    let run = send(&h, "t.fatal", json!({})).await;
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Failed);
    assert_eq!(d.steps[0].attempts.len(), 1);
    assert!(d.run.error.unwrap().message.contains("the PDF is encrypted"));
}

pub async fn retry_after_sets_the_next_attempt_time(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let n = counter();
    let n2 = n.clone();
    h.engine
        .register(
            Function::new("rate-limited")
                .on_event("t.429")
                .handler(move |ctx: Ctx| {
                    let n = n2.clone();
                    async move {
                        ctx.run("call", || async {
                            if n.fetch_add(1, SeqCst) == 0 {
                                Err(Failure::retry_after(
                                    "429 Too Many Requests",
                                    Duration::from_secs(30),
                                ))
                            } else {
                                Ok("ok".to_string())
                            }
                        })
                        .await
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.429", json!({})).await;
    let d = h
        .wait_until(&run, "retrying", |d| {
            d.steps.first().is_some_and(|s| s.attempts.len() == 1)
        })
        .await;
    assert_eq!(d.steps[0].wake_at, Some(T0.plus(Duration::from_secs(30))));
    h.advance(Duration::from_secs(29));
    settle().await;
    assert_eq!(n.load(SeqCst), 1, "retried before its retry-after time");
    h.advance(Duration::from_secs(2));
    let d = h.finished(&run).await;
    assert_eq!(d.run.output, Some(json!("ok")));
}

pub async fn a_caught_step_failure_lets_the_function_go_on(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("catcher")
                .on_event("t.catch")
                .retries(0)
                .handler(|ctx: Ctx| async move {
                    let caught = match ctx
                        .run("boom", || async { Err::<(), _>(Failure::retriable("kaboom")) })
                        .await
                    {
                        Ok(()) => "no error".to_string(),
                        Err(f) => f.message,
                    };
                    let after: String = ctx.run("after", || async { Ok("went on".to_string()) }).await?;
                    Ok(json!({ "caught": caught, "after": after }))
                }),
        )
        .unwrap();
    let run = send(&h, "t.catch", json!({})).await;
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Completed);
    assert_eq!(
        d.run.output,
        Some(json!({ "caught": "step 'boom' failed: kaboom", "after": "went on" }))
    );
    assert_eq!(d.steps[0].status, StepStatus::Failed);
}

pub async fn a_panicking_step_is_retried_and_reported(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let n = counter();
    let n2 = n.clone();
    h.engine
        .register(
            Function::new("panicky")
                .on_event("t.panic")
                .retries(1)
                .handler(move |ctx: Ctx| {
                    let n = n2.clone();
                    async move {
                        ctx.run("explode", || async {
                            if n.fetch_add(1, SeqCst) == 0 {
                                panic!("index out of bounds in the parser");
                            }
                            Ok(7)
                        })
                        .await
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.panic", json!({})).await;
    h.wait_until(&run, "retrying", |d| {
        d.steps.first().is_some_and(|s| s.attempts.len() == 1)
    })
    .await;
    h.advance(Duration::from_secs(2));
    let d = h.finished(&run).await;
    assert_eq!(d.run.output, Some(json!(7)));
    let first = d.steps[0].attempts[0].error.clone().expect("panic recorded");
    assert_eq!(first.name, "Panic");
    assert!(
        first.message.contains("index out of bounds in the parser"),
        "{}",
        first.message
    );
}

pub async fn an_error_outside_steps_retries_the_function(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let (a, tries) = (counter(), counter());
    let (a2, t2) = (a.clone(), tries.clone());
    h.engine
        .register(
            Function::new("outside")
                .on_event("t.outside")
                .retries(2)
                .handler(move |ctx: Ctx| {
                    let (a, tries) = (a2.clone(), t2.clone());
                    async move {
                        ctx.run("a", || async { Ok(a.fetch_add(1, SeqCst)) }).await?;
                        if tries.fetch_add(1, SeqCst) == 0 {
                            return Err(Failure::retriable("transient failure outside any step"));
                        }
                        Ok(ctx.attempt())
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.outside", json!({})).await;
    let d = h
        .wait_until(&run, "queued for a retry", |d| d.run.attempt == 1)
        .await;
    assert_eq!(d.run.status, RunStatus::Queued);
    h.advance(Duration::from_secs(2));
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Completed);
    assert_eq!(d.run.output, Some(json!(1)));
    assert_eq!(a.load(SeqCst), 1, "the recorded step was not run again");
}

pub async fn sleep_is_durable_and_holds_no_concurrency_slot(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("sleepy")
                .on_event("t.sleepy")
                .concurrency(1, None)
                .handler(|ctx: Ctx| async move {
                    ctx.run("before", || async { Ok(()) }).await?;
                    ctx.sleep("rest", HOUR).await?;
                    ctx.run("after", || async { Ok(()) }).await?;
                    Ok(())
                }),
        )
        .unwrap();
    let r1 = send(&h, "t.sleepy", json!({})).await;
    let r2 = send(&h, "t.sleepy", json!({})).await;
    // Both get past "before" although the limit is 1: a sleeping run holds no slot.
    h.wait_status(&r1, RunStatus::Sleeping).await;
    h.wait_status(&r2, RunStatus::Sleeping).await;
    assert!(
        h.engine.concurrency_usage().is_empty(),
        "no slot is held while sleeping"
    );
    h.advance(HOUR);
    assert_eq!(h.finished(&r1).await.run.status, RunStatus::Completed);
    assert_eq!(h.finished(&r2).await.run.status, RunStatus::Completed);
}

pub async fn sleep_until_wakes_at_the_given_time(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("alarm")
                .on_event("t.alarm")
                .handler(|ctx: Ctx| async move {
                    ctx.sleep_until("until-ten", T0.plus(2 * HOUR)).await?;
                    Ok("awake")
                }),
        )
        .unwrap();
    let run = send(&h, "t.alarm", json!({})).await;
    let d = h.wait_status(&run, RunStatus::Sleeping).await;
    assert_eq!(d.run.available_at, Some(T0.plus(2 * HOUR)));
    h.advance(HOUR);
    settle().await;
    assert_eq!(
        h.engine.get_run(&run).await.unwrap().run.status,
        RunStatus::Sleeping
    );
    h.advance(HOUR);
    assert_eq!(h.finished(&run).await.run.output, Some(json!("awake")));
}

fn approval_function() -> crate::function::FunctionDef {
    Function::new("review")
        .on_event("doc.uploaded")
        .handler(|ctx: Ctx| async move {
            let ev = ctx
                .wait_for_event(
                    "approval",
                    "plan.approved",
                    Some("async.data.doc == event.data.doc"),
                    HOUR,
                )
                .await?;
            Ok(json!({ "approved_by": ev.map(|e| e.data["by"].clone()) }))
        })
}

pub async fn wait_for_event_resumes_on_a_matching_event_only(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine.register(approval_function()).unwrap();
    let run = send(&h, "doc.uploaded", json!({ "doc": "d1" })).await;
    let d = h.wait_status(&run, RunStatus::Waiting).await;
    assert_eq!(d.steps[0].kind, StepKind::WaitForEvent);
    assert_eq!(d.steps[0].status, StepStatus::Waiting);
    let receipt = h
        .engine
        .send(EventInput::new(
            "plan.approved",
            json!({ "doc": "d2", "by": "mallory" }),
        ))
        .await
        .unwrap();
    assert!(receipt.resumed.is_empty(), "{receipt:?}");
    settle().await;
    assert_eq!(
        h.engine.get_run(&run).await.unwrap().run.status,
        RunStatus::Waiting
    );
    let receipt = h
        .engine
        .send(EventInput::new(
            "plan.approved",
            json!({ "doc": "d1", "by": "ada" }),
        ))
        .await
        .unwrap();
    assert_eq!(
        receipt.resumed,
        vec![run.clone()],
        "the receipt names the resumed run"
    );
    let d = h.finished(&run).await;
    assert_eq!(d.run.output, Some(json!({ "approved_by": "ada" })));
    assert_eq!(d.steps[0].status, StepStatus::Completed);
}

pub async fn wait_for_event_times_out_with_none(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine.register(approval_function()).unwrap();
    let run = send(&h, "doc.uploaded", json!({ "doc": "d1" })).await;
    h.wait_status(&run, RunStatus::Waiting).await;
    h.advance(HOUR + Duration::from_secs(1));
    let d = h.finished(&run).await;
    assert_eq!(d.run.output, Some(json!({ "approved_by": null })));
    assert_eq!(d.steps[0].output, Some(Value::Null));
    // A late event does nothing.
    h.engine
        .send(EventInput::new(
            "plan.approved",
            json!({ "doc": "d1", "by": "late" }),
        ))
        .await
        .unwrap();
    settle().await;
    assert_eq!(
        h.engine.get_run(&run).await.unwrap().run.output,
        Some(json!({ "approved_by": null }))
    );
}

pub async fn invoke_returns_the_child_result_and_its_failure(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(Function::new("double").handler(|ctx: Ctx| async move {
            let n = ctx.event().data["n"].as_i64().unwrap_or(0);
            ctx.run("times-two", || async move { Ok(n * 2) }).await
        }))
        .unwrap();
    h.engine
        .register(Function::new("broken").retries(0).handler(|ctx: Ctx| async move {
            ctx.run("fail", || async {
                Err::<(), _>(Failure::non_retriable("child says no"))
            })
            .await
        }))
        .unwrap();
    h.engine
        .register(
            Function::new("parent")
                .on_event("t.parent")
                .handler(|ctx: Ctx| async move {
                    let doubled: i64 = ctx
                        .invoke("call-double", "double", json!({ "n": 21 }), None)
                        .await?;
                    let failed = ctx
                        .invoke::<Value>("call-broken", "broken", json!({}), None)
                        .await
                        .err()
                        .map(|f| f.message);
                    Ok(json!({ "doubled": doubled, "failed": failed }))
                }),
        )
        .unwrap();
    let run = send(&h, "t.parent", json!({})).await;
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Completed, "{:?}", d.run.error);
    let out = d.run.output.unwrap();
    assert_eq!(out["doubled"], 42);
    assert!(out["failed"].as_str().unwrap().contains("child says no"), "{out}");
    let step = &d.steps[0];
    assert_eq!(step.kind, StepKind::Invoke);
    let child_id = RunId(
        step.detail.as_ref().unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let child = h.engine.get_run(&child_id).await.unwrap();
    assert_eq!(child.run.function_id, "double");
    assert_eq!(child.run.parent.as_ref().unwrap().run_id, run);
    assert_eq!(child.event.data, json!({ "n": 21 }));
}

pub async fn invoke_of_an_unknown_function_fails_the_step(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("lost")
                .on_event("t.lost")
                .handler(|ctx: Ctx| async move {
                    let r = ctx
                        .invoke::<Value>("call", "no-such-function", json!({}), None)
                        .await;
                    Ok(r.err().map(|f| f.message))
                }),
        )
        .unwrap();
    let run = send(&h, "t.lost", json!({})).await;
    let d = h.finished(&run).await;
    let msg = d.run.output.unwrap();
    assert!(
        msg.as_str()
            .unwrap()
            .contains("unknown function id 'no-such-function'"),
        "{msg}"
    );
    assert_eq!(d.steps[0].status, StepStatus::Failed);
}

pub async fn cancel_stops_the_run_before_its_next_step(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let gate = Arc::new(Notify::new());
    let started = Arc::new(AtomicBool::new(false));
    let next = counter();
    let (g2, s2, n2) = (gate.clone(), started.clone(), next.clone());
    h.engine
        .register(
            Function::new("cancellable")
                .on_event("t.cancel")
                .handler(move |ctx: Ctx| {
                    let (gate, started, next) = (g2.clone(), s2.clone(), n2.clone());
                    async move {
                        ctx.run("slow", || async {
                            started.store(true, SeqCst);
                            gate.notified().await;
                            Ok(())
                        })
                        .await?;
                        ctx.run("next", || async { Ok(next.fetch_add(1, SeqCst)) })
                            .await?;
                        Ok(())
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.cancel", json!({})).await;
    while !started.load(SeqCst) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    h.engine.cancel(&run).await.unwrap();
    gate.notify_one();
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Cancelled);
    assert_eq!(d.run.error.as_ref().unwrap().message, "cancelled by request");
    settle().await;
    assert_eq!(next.load(SeqCst), 0, "a step started after the cancel");
    let err = h.engine.cancel(&run).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::InvalidRunState {
                status: RunStatus::Cancelled,
                ..
            }
        ),
        "{err}"
    );
    let err = h.engine.cancel(&RunId::from("01NOSUCHRUN")).await.unwrap_err();
    assert!(matches!(err, EngineError::RunNotFound(_)), "{err}");
}

pub async fn cancel_on_event_cancels_matching_runs(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("long")
                .on_event("doc.uploaded")
                .cancel_on("doc.deleted", Some("async.data.doc == event.data.doc"))
                .handler(|ctx: Ctx| async move {
                    ctx.sleep("wait", HOUR).await?;
                    Ok(())
                }),
        )
        .unwrap();
    let r1 = send(&h, "doc.uploaded", json!({ "doc": "d1" })).await;
    let r2 = send(&h, "doc.uploaded", json!({ "doc": "d2" })).await;
    h.wait_status(&r1, RunStatus::Sleeping).await;
    h.wait_status(&r2, RunStatus::Sleeping).await;
    h.engine
        .send(EventInput::new("doc.deleted", json!({ "doc": "d1" })))
        .await
        .unwrap();
    let d = h.finished(&r1).await;
    assert_eq!(d.run.status, RunStatus::Cancelled);
    assert!(d.run.error.unwrap().message.contains("doc.deleted"));
    assert_eq!(
        h.engine.get_run(&r2).await.unwrap().run.status,
        RunStatus::Sleeping
    );
    h.advance(HOUR);
    assert_eq!(h.finished(&r2).await.run.status, RunStatus::Completed);
    // A cancel_on with a timeout only listens that long.
    h.engine
        .register(
            Function::new("windowed")
                .on_event("job.started")
                .cancel_on_within("job.stop", None, Duration::from_secs(600))
                .handler(|ctx: Ctx| async move { ctx.sleep("wait", HOUR).await }),
        )
        .unwrap();
    let early = send(&h, "job.started", json!({})).await;
    h.wait_status(&early, RunStatus::Sleeping).await;
    h.advance(Duration::from_secs(300));
    h.engine
        .send(EventInput::new("job.stop", json!({})))
        .await
        .unwrap();
    assert_eq!(h.finished(&early).await.run.status, RunStatus::Cancelled);
    let late = send(&h, "job.started", json!({})).await;
    h.wait_status(&late, RunStatus::Sleeping).await;
    h.advance(Duration::from_secs(601));
    h.engine
        .send(EventInput::new("job.stop", json!({})))
        .await
        .unwrap();
    settle().await;
    assert_eq!(
        h.engine.get_run(&late).await.unwrap().run.status,
        RunStatus::Sleeping,
        "a stop after the window does not cancel"
    );
    h.advance(HOUR);
    assert_eq!(h.finished(&late).await.run.status, RunStatus::Completed);
}

fn replayable(a: Arc<AtomicUsize>, fail: Arc<AtomicBool>) -> crate::function::FunctionDef {
    Function::new("replayable")
        .on_event("t.replay")
        .retries(0)
        .handler(move |ctx: Ctx| {
            let (a, fail) = (a.clone(), fail.clone());
            async move {
                let x: usize = ctx
                    .run("a", || async { Ok(a.fetch_add(1, SeqCst) + 100) })
                    .await?;
                ctx.run("b", || async {
                    if fail.load(SeqCst) {
                        Err(Failure::non_retriable("b is broken"))
                    } else {
                        Ok(())
                    }
                })
                .await?;
                let y: String = ctx.run("c", || async { Ok("done".to_string()) }).await?;
                Ok(json!([x, y]))
            }
        })
}

pub async fn replay_from_the_failed_step_reuses_earlier_results(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let (a, fail) = (counter(), Arc::new(AtomicBool::new(true)));
    h.engine.register(replayable(a.clone(), fail.clone())).unwrap();
    let run = send(&h, "t.replay", json!({ "k": 1 })).await;
    assert_eq!(h.finished(&run).await.run.status, RunStatus::Failed);
    fail.store(false, SeqCst);
    let again = h.engine.replay(&run, ReplayFrom::FailedStep).await.unwrap();
    assert_ne!(again, run);
    let d = h.finished(&again).await;
    assert_eq!(d.run.status, RunStatus::Completed, "{:?}", d.run.error);
    assert_eq!(d.run.output, Some(json!([100, "done"])));
    assert_eq!(a.load(SeqCst), 1, "step 'a' was run again instead of reused");
    assert_eq!(d.run.replay_of.as_ref(), Some(&run));
    assert_eq!(d.event.data, json!({ "k": 1 }));
    let err = h.engine.replay(&again, ReplayFrom::Start).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::InvalidRunState {
                status: RunStatus::Completed,
                ..
            }
        ),
        "{err}"
    );
    let err = h
        .engine
        .replay(&RunId::from("01NOSUCHRUN"), ReplayFrom::Start)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::RunNotFound(_)));
}

pub async fn replay_from_start_runs_everything_again(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let (a, fail) = (counter(), Arc::new(AtomicBool::new(true)));
    h.engine.register(replayable(a.clone(), fail.clone())).unwrap();
    let run = send(&h, "t.replay", json!({})).await;
    assert_eq!(h.finished(&run).await.run.status, RunStatus::Failed);
    fail.store(false, SeqCst);
    let again = h.engine.replay(&run, ReplayFrom::Start).await.unwrap();
    let d = h.finished(&again).await;
    assert_eq!(d.run.output, Some(json!([101, "done"])));
    assert_eq!(a.load(SeqCst), 2);
}

pub async fn concurrency_limits_hold_per_key_and_per_function(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let running: Arc<Mutex<std::collections::HashMap<String, usize>>> = Default::default();
    let peaks: Arc<Mutex<(usize, std::collections::HashMap<String, usize>)>> = Default::default();
    let (r2, p2) = (running.clone(), peaks.clone());
    h.engine
        .register(
            Function::new("limited")
                .on_event("t.limited")
                .concurrency(3, None)
                .concurrency(1, Some("event.data.user"))
                .handler(move |ctx: Ctx| {
                    let (running, peaks) = (r2.clone(), p2.clone());
                    async move {
                        let user = ctx.event().data["user"].as_str().unwrap_or_default().to_string();
                        for i in 0..3 {
                            ctx.run(&format!("work-{i}"), || async {
                                {
                                    let mut r = running.lock();
                                    *r.entry(user.clone()).or_default() += 1;
                                    let total: usize = r.values().sum();
                                    let mut p = peaks.lock();
                                    p.0 = p.0.max(total);
                                    let mine = r[&user];
                                    let e = p.1.entry(user.clone()).or_default();
                                    *e = (*e).max(mine);
                                }
                                tokio::time::sleep(Duration::from_millis(4)).await;
                                *running.lock().get_mut(&user).unwrap() -= 1;
                                Ok(())
                            })
                            .await?;
                        }
                        Ok(())
                    }
                }),
        )
        .unwrap();
    let mut runs = Vec::new();
    for i in 0..12 {
        let user = ["a", "b", "c", "d"][i % 4];
        runs.push(send(&h, "t.limited", json!({ "user": user })).await);
    }
    for r in &runs {
        assert_eq!(h.finished(r).await.run.status, RunStatus::Completed);
    }
    let p = peaks.lock();
    assert!(
        p.0 <= 3,
        "{} steps of the function ran at once; the limit is 3",
        p.0
    );
    assert!(
        p.0 >= 2,
        "steps of different users never overlapped (peak {})",
        p.0
    );
    for (user, peak) in &p.1 {
        assert_eq!(*peak, 1, "user {user} had {peak} steps at once; the limit is 1");
    }
}

pub async fn runs_waiting_for_a_slot_start_in_order(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let order: Arc<Mutex<Vec<i64>>> = Default::default();
    let gate = Arc::new(Notify::new());
    let (o2, g2) = (order.clone(), gate.clone());
    h.engine
        .register(
            Function::new("serial")
                .on_event("t.serial")
                .concurrency(1, None)
                .handler(move |ctx: Ctx| {
                    let (order, gate) = (o2.clone(), g2.clone());
                    async move {
                        let i = ctx.event().data["i"].as_i64().unwrap_or(-1);
                        ctx.run("work", || async {
                            order.lock().push(i);
                            if i == 0 {
                                gate.notified().await;
                            }
                            Ok(())
                        })
                        .await
                    }
                }),
        )
        .unwrap();
    let mut runs = Vec::new();
    for i in 0..8 {
        runs.push(send(&h, "t.serial", json!({ "i": i })).await);
    }
    // Hold the slot until all seven others are waiting for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while h.engine.concurrency_usage().first().map(|u| u.waiting) != Some(7) {
        if std::time::Instant::now() >= deadline {
            let mut states = Vec::new();
            for r in &runs {
                let d = h.engine.get_run(r).await.unwrap();
                states.push((d.run.status, d.steps.len()));
            }
            panic!(
                "runs never queued: {:?}; runs: {states:?}",
                h.engine.concurrency_usage()
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let usage = &h.engine.functions()[0].concurrency;
    assert_eq!((usage[0].in_use, usage[0].limit, usage[0].waiting), (1, 1, 7));
    gate.notify_one();
    for r in &runs {
        h.finished(r).await;
    }
    assert_eq!(*order.lock(), (0..8).collect::<Vec<i64>>());
}

/// Waits until the first concurrency pool has `(in use, waiting)`.
async fn wait_usage(h: &Harness, want: (u32, usize)) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while h
        .engine
        .concurrency_usage()
        .first()
        .map(|u| (u.in_use, u.waiting))
        != Some(want)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            h.engine.concurrency_usage()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub async fn priority_moves_runs_ahead_for_slots_and_starts(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let order: Arc<Mutex<Vec<i64>>> = Default::default();
    let gate = Arc::new(Notify::new());
    let (o2, g2) = (order.clone(), gate.clone());
    h.engine
        .register(
            Function::new("prioritised")
                .on_event("t.prio")
                .concurrency(1, None)
                .priority("event.data.boost")
                .handler(move |ctx: Ctx| {
                    let (order, gate) = (o2.clone(), g2.clone());
                    async move {
                        let i = ctx.event().data["i"].as_i64().unwrap_or(-1);
                        ctx.run("work", || async {
                            order.lock().push(i);
                            if i == 0 {
                                gate.notified().await;
                            }
                            Ok(())
                        })
                        .await
                    }
                }),
        )
        .unwrap();
    let first = send(&h, "t.prio", json!({ "i": 0 })).await;
    wait_usage(&h, (1, 0)).await;
    // Created in order 1, 2, 3, 4; 3 moves 120 s ahead, 4 30 s; a non-number is 0.
    let mut runs = vec![first];
    for (i, boost) in [(1, json!(0)), (2, json!("high")), (3, json!(120)), (4, json!(30))] {
        runs.push(send(&h, "t.prio", json!({ "i": i, "boost": boost })).await);
    }
    wait_usage(&h, (1, 4)).await;
    gate.notify_one();
    for r in &runs {
        h.finished(r).await;
    }
    assert_eq!(*order.lock(), vec![0, 3, 4, 1, 2]);
    // A negative priority delays the start; more than 600 s counts as 600.
    let late = send(&h, "t.prio", json!({ "i": 5, "boost": -30 })).await;
    let d = h.engine.get_run(&late).await.unwrap();
    assert_eq!(d.run.available_at, Some(T0.plus(Duration::from_secs(30))));
    let early = send(&h, "t.prio", json!({ "i": 6, "boost": 1e9 })).await;
    h.finished(&early).await;
    assert_eq!(d.run.status, RunStatus::Queued);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.finished(&late).await.run.status, RunStatus::Completed);
    let err = h
        .engine
        .register(
            Function::new("bad-prio")
                .on_event("t.prio")
                .priority("event.data.boost >")
                .handler(|_ctx: Ctx| async move { Ok(()) }),
        )
        .unwrap_err();
    assert!(err.to_string().contains("priority"), "{err}");
}

pub async fn throttle_delays_runs_but_drops_none(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("throttled")
                .on_event("t.throttled")
                .throttle(2, Duration::from_secs(10), 1, Some("event.data.user"))
                .handler(|ctx: Ctx| async move { ctx.run("work", || async { Ok(()) }).await }),
        )
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(send(&h, "t.throttled", json!({ "user": "u1" })).await);
    }
    let other = send(&h, "t.throttled", json!({ "user": "u2" })).await;
    assert_eq!(h.finished(&runs[0]).await.run.status, RunStatus::Completed);
    assert_eq!(
        h.finished(&other).await.run.status,
        RunStatus::Completed,
        "keys are throttled apart"
    );
    for (i, r) in runs.iter().enumerate().skip(1) {
        let d = h.engine.get_run(r).await.unwrap();
        assert_eq!(d.run.status, RunStatus::Queued);
        assert_eq!(
            d.run.available_at,
            Some(T0.plus(Duration::from_secs(5 * i as u64))),
            "run {i}"
        );
    }
    h.advance(Duration::from_secs(5));
    assert_eq!(h.finished(&runs[1]).await.run.status, RunStatus::Completed);
    settle().await;
    assert_eq!(
        h.engine.get_run(&runs[2]).await.unwrap().run.status,
        RunStatus::Queued
    );
    h.advance(Duration::from_secs(15));
    for r in &runs {
        assert_eq!(h.finished(r).await.run.status, RunStatus::Completed);
    }
    let tat = h.store.throttle_tat("throttled\u{1f}u1").await.unwrap();
    assert_eq!(tat, Some(T0.plus(Duration::from_secs(25))));
}

pub async fn debounce_starts_one_run_with_the_last_event(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("debounced")
                .on_event("t.deb")
                .debounce(
                    Duration::from_secs(10),
                    Some("event.data.k"),
                    Some(Duration::from_secs(12)),
                )
                .handler(|ctx: Ctx| async move {
                    let n = ctx.event().data["n"].clone();
                    ctx.run("work", || {
                        let n = n.clone();
                        async move { Ok(n) }
                    })
                    .await
                }),
        )
        .unwrap();
    let send_n = |k: &str, n: u32| {
        let e = EventInput::new("t.deb", json!({ "k": k, "n": n }));
        let engine = h.engine.clone();
        async move { engine.send(e).await.unwrap() }
    };
    let first = send_n("a", 1).await;
    let run = first.runs[0].clone();
    let at = |secs: u64| Some(T0.plus(Duration::from_secs(secs)));
    assert_eq!(h.engine.get_run(&run).await.unwrap().run.available_at, at(10));
    // Each further event within the period folds into the waiting run and moves its
    // start to `period` later, never past `timeout` from the first event.
    h.advance(Duration::from_secs(1));
    let second = send_n("a", 2).await;
    assert!(second.runs.is_empty(), "{second:?}");
    assert!(
        second.skipped[0]
            .reason
            .contains(&format!("debounced: run {run}")),
        "{:?}",
        second.skipped
    );
    assert_eq!(h.engine.get_run(&run).await.unwrap().run.available_at, at(11));
    h.advance(Duration::from_secs(2));
    assert!(send_n("a", 3).await.runs.is_empty());
    let d = h.engine.get_run(&run).await.unwrap();
    assert_eq!(d.run.available_at, at(12), "capped by the timeout");
    assert_eq!(d.event.data["n"], 3, "the run carries the last event");
    // Another key has its own run.
    let other = send_n("b", 9).await;
    assert_eq!(other.runs.len(), 1);
    h.advance(Duration::from_secs(8));
    settle().await;
    assert_eq!(
        h.engine.get_run(&run).await.unwrap().run.status,
        RunStatus::Queued
    );
    h.advance(Duration::from_secs(1));
    let done = h.finished(&run).await;
    assert_eq!(done.run.output, Some(json!(3)));
    // Once it started, the next event starts a new run.
    let next = send_n("a", 4).await;
    assert_eq!(next.runs.len(), 1, "{next:?}");
    assert_ne!(next.runs[0], run);
    h.advance(Duration::from_secs(10));
    assert_eq!(h.finished(&next.runs[0]).await.run.output, Some(json!(4)));
    assert_eq!(h.finished(&other.runs[0]).await.run.output, Some(json!(9)));
}

pub async fn cron_ticks_start_one_run_each_across_nodes(store: Arc<dyn Store>) {
    let h = Harness::start(store.clone()).await;
    // A second node on the same store and clock: both see every tick.
    let other = Harness::start_with(store, h.clock.clone(), EngineConfig::default()).await;
    let ticked = || {
        Function::new("every-minute")
            .on_cron("* * * * *")
            .handler(|ctx: Ctx| async move {
                let e = ctx.event().clone();
                ctx.run("tick", || {
                    let e = e.clone();
                    async move {
                        Ok(json!({ "name": e.name, "at": e.data["scheduledAt"], "cron": e.data["cron"] }))
                    }
                })
                .await
            })
    };
    h.engine.register(ticked()).unwrap();
    other.engine.register(ticked()).unwrap();
    let runs = |h: &Harness| {
        let engine = h.engine.clone();
        async move {
            engine
                .list_runs(&RunFilter {
                    function_id: Some("every-minute".into()),
                    ..Default::default()
                })
                .await
                .unwrap()
                .runs
        }
    };
    settle().await;
    assert!(runs(&h).await.is_empty(), "no tick yet");
    h.advance(Duration::from_secs(60));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while runs(&h).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the tick started no run");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = runs(&h).await[0].id.clone();
    let done = h.finished(&first).await;
    let at = T0.plus(Duration::from_secs(60)).to_rfc3339();
    assert_eq!(
        done.run.output,
        Some(json!({ "name": crate::event::CRON_EVENT, "at": at, "cron": "* * * * *" }))
    );
    settle().await;
    assert_eq!(runs(&h).await.len(), 1, "one run per tick, however many nodes");
    // Two ticks passed while the nodes were behind: only the latest starts a run.
    h.advance(Duration::from_secs(120));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while runs(&h).await.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second tick started no run"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let latest = runs(&h).await[0].id.clone();
    let done = h.finished(&latest).await;
    assert_eq!(
        done.run.output.unwrap()["at"],
        T0.plus(Duration::from_secs(180)).to_rfc3339()
    );
    settle().await;
    assert_eq!(runs(&h).await.len(), 2);
    let err = h
        .engine
        .register(
            Function::new("bad-cron")
                .on_cron("every tuesday")
                .handler(|_ctx: Ctx| async move { Ok(()) }),
        )
        .unwrap_err();
    assert!(err.to_string().contains("cron[0]"), "{err}");
    other.engine.shutdown().await;
}

pub async fn singleton_skips_or_replaces_the_active_run(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("solo")
                .on_event("t.solo")
                .singleton(Some("event.data.k"), crate::function::SingletonMode::Skip)
                .handler(|ctx: Ctx| async move { ctx.sleep("nap", HOUR).await }),
        )
        .unwrap();
    h.engine
        .register(
            Function::new("latest")
                .on_event("t.latest")
                .singleton(None, crate::function::SingletonMode::Cancel)
                .handler(|ctx: Ctx| async move { ctx.sleep("nap", HOUR).await }),
        )
        .unwrap();
    let first = send(&h, "t.solo", json!({ "k": "a" })).await;
    h.wait_status(&first, RunStatus::Sleeping).await;
    let again = h
        .engine
        .send(EventInput::new("t.solo", json!({ "k": "a" })))
        .await
        .unwrap();
    assert!(again.runs.is_empty(), "{again:?}");
    assert!(
        again.skipped[0]
            .reason
            .contains(&format!("singleton: run {first}")),
        "{:?}",
        again.skipped
    );
    let other_key = send(&h, "t.solo", json!({ "k": "b" })).await;
    h.wait_status(&other_key, RunStatus::Sleeping).await;
    h.advance(HOUR);
    h.finished(&first).await;
    h.finished(&other_key).await;
    // Once it ended, the next event starts a run again.
    let next = send(&h, "t.solo", json!({ "k": "a" })).await;
    assert_ne!(next, first);
    // Cancel mode: the new event's run replaces the active one.
    let old = send(&h, "t.latest", json!({})).await;
    h.wait_status(&old, RunStatus::Sleeping).await;
    let new = send(&h, "t.latest", json!({})).await;
    let d = h.finished(&old).await;
    assert_eq!(d.run.status, RunStatus::Cancelled);
    assert!(
        d.run.error.unwrap().message.contains("singleton"),
        "the reason names the singleton"
    );
    assert_eq!(
        h.wait_status(&new, RunStatus::Sleeping).await.run.status,
        RunStatus::Sleeping
    );
}

pub async fn shared_concurrency_limits_span_functions(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let gate = Arc::new(Notify::new());
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    for id in ["calls-a", "calls-b"] {
        let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
        h.engine
            .register(
                Function::new(id)
                    .on_event("t.shared")
                    .concurrency_shared(1, "event.data.p")
                    .handler(move |ctx: Ctx| {
                        let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
                        async move {
                            ctx.run("call", || async {
                                let now = running.fetch_add(1, SeqCst) + 1;
                                peak.fetch_max(now, SeqCst);
                                gate.notified().await;
                                running.fetch_sub(1, SeqCst);
                                Ok(())
                            })
                            .await
                        }
                    }),
            )
            .unwrap();
    }
    // One event starts both functions: one holds the shared slot, the other waits.
    let r = h
        .engine
        .send(EventInput::new("t.shared", json!({ "p": "x" })))
        .await
        .unwrap();
    assert_eq!(r.runs.len(), 2);
    wait_usage(&h, (1, 1)).await;
    let pool = h.engine.concurrency_usage()[0].key.clone();
    assert_eq!(pool.function_id, crate::function::SHARED_POOL);
    gate.notify_one();
    wait_usage(&h, (1, 0)).await;
    gate.notify_one();
    for id in &r.runs {
        assert_eq!(h.finished(id).await.run.status, RunStatus::Completed);
    }
    assert_eq!(peak.load(SeqCst), 1, "never both at once");
    let err = h
        .engine
        .register(
            Function::new("no-key")
                .on_event("t.shared")
                .concurrency_shared(1, "")
                .handler(|_ctx: Ctx| async move { Ok(()) }),
        )
        .unwrap_err();
    assert!(err.to_string().contains("concurrency"), "{err}");
}

pub async fn batches_gather_events_into_one_run(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("batched")
                .on_event("t.batch")
                .batch(3, Duration::from_secs(10), Some("event.data.k"))
                .handler(|ctx: Ctx| async move {
                    let events = ctx.events().await?;
                    let ns: Vec<Value> = events.iter().map(|e| e.data["n"].clone()).collect();
                    ctx.run("count", || {
                        let ns = ns.clone();
                        async move { Ok(json!(ns)) }
                    })
                    .await
                }),
        )
        .unwrap();
    let batch = |k: &str, n: u32| {
        let e = EventInput::new("t.batch", json!({ "k": k, "n": n }));
        let engine = h.engine.clone();
        async move { engine.send(e).await.unwrap() }
    };
    let first = batch("a", 1).await;
    let run = first.runs[0].clone();
    let second = batch("a", 2).await;
    assert!(second.runs.is_empty());
    assert!(
        second.skipped[0]
            .reason
            .contains(&format!("batched into run {run}")),
        "{:?}",
        second.skipped
    );
    let other = batch("b", 9).await;
    assert_eq!(other.runs.len(), 1, "another key, another batch");
    settle().await;
    assert_eq!(
        h.engine.get_run(&run).await.unwrap().run.status,
        RunStatus::Queued
    );
    // The third event fills the batch: it starts at once, with all three in order.
    assert!(batch("a", 3).await.runs.is_empty());
    let done = h.finished(&run).await;
    assert_eq!(done.run.output, Some(json!([1, 2, 3])));
    // A new batch; this one starts when its timeout passes.
    let next = batch("a", 4).await.runs[0].clone();
    assert_ne!(next, run);
    h.advance(Duration::from_secs(10));
    assert_eq!(h.finished(&next).await.run.output, Some(json!([4])));
    assert_eq!(h.finished(&other.runs[0]).await.run.output, Some(json!([9])));
    let err = h
        .engine
        .register(
            Function::new("bad-batch")
                .on_event("t.batch")
                .batch(0, Duration::from_secs(1), None)
                .handler(|_ctx: Ctx| async move { Ok(()) }),
        )
        .unwrap_err();
    assert!(err.to_string().contains("batch"), "{err}");
}

pub async fn rate_limit_skips_runs_over_the_limit(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("limited-rate")
                .on_event("t.rate")
                .rate_limit(2, Duration::from_secs(10), Some("event.data.user"))
                .idempotency("event.data.n")
                .handler(|ctx: Ctx| async move { ctx.run("work", || async { Ok(()) }).await }),
        )
        .unwrap();
    let sent = |user: &str, n: u32| {
        let e = EventInput::new("t.rate", json!({ "user": user, "n": format!("{user}-{n}") }));
        let engine = h.engine.clone();
        async move { engine.send(e).await.unwrap() }
    };
    // Two may start at once; the third within the period is skipped, with the reason.
    let a = sent("u1", 1).await;
    let b = sent("u1", 2).await;
    let c = sent("u1", 3).await;
    assert_eq!((a.runs.len(), b.runs.len(), c.runs.len()), (1, 1, 0));
    assert!(c.skipped[0].reason.contains("rate limited"), "{:?}", c.skipped);
    // Other keys have their own limit; an idempotency skip does not use up the limit.
    assert_eq!(sent("u2", 1).await.runs.len(), 1);
    assert_eq!(sent("u2", 1).await.runs.len(), 0, "same idempotency key");
    assert_eq!(sent("u2", 2).await.runs.len(), 1);
    // Every run that started is not delayed.
    for r in [&a.runs[0], &b.runs[0]] {
        assert_eq!(h.finished(r).await.run.status, RunStatus::Completed);
    }
    // One more may start per period / limit (5 s).
    h.advance(Duration::from_secs(5));
    assert_eq!(sent("u1", 4).await.runs.len(), 1);
    assert_eq!(sent("u1", 5).await.runs.len(), 0);
    // An invalid rate limit is refused at registration.
    let err = h
        .engine
        .register(
            Function::new("bad-rate")
                .on_event("t.rate")
                .rate_limit(0, Duration::from_secs(1), None)
                .handler(|_ctx: Ctx| async move { Ok(()) }),
        )
        .unwrap_err();
    assert!(err.to_string().contains("rate_limit"), "{err}");
}

pub async fn a_repeated_event_id_within_24h_starts_nothing(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("once")
                .on_event("t.once")
                .handler(|_ctx: Ctx| async move { Ok(()) }),
        )
        .unwrap();
    let first = h
        .engine
        .send(EventInput::new("t.once", json!({})).with_id("evt-1"))
        .await
        .unwrap();
    assert_eq!(
        (first.duplicate, first.runs.len(), first.event_id.as_str()),
        (false, 1, "evt-1")
    );
    let again = h
        .engine
        .send(EventInput::new("t.once", json!({})).with_id("evt-1"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert!(again.runs.is_empty());
    h.advance(Duration::from_secs(24 * 3600 + 60));
    let later = h
        .engine
        .send(EventInput::new("t.once", json!({})).with_id("evt-1"))
        .await
        .unwrap();
    assert!(!later.duplicate);
    assert_eq!(later.runs.len(), 1);
}

pub async fn one_event_starts_every_function_it_matches(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let noop = |_ctx: Ctx| async move { Ok(()) };
    h.engine
        .register(Function::new("all").on_event("t.x").handler(noop))
        .unwrap();
    h.engine
        .register(
            Function::new("big")
                .on_event_if("t.x", "event.data.n > 5")
                .handler(noop),
        )
        .unwrap();
    h.engine
        .register(Function::new("other").on_event("t.y").handler(noop))
        .unwrap();
    let r = h
        .engine
        .send(EventInput::new("t.x", json!({ "n": 10 })))
        .await
        .unwrap();
    let mut fns = Vec::new();
    for id in &r.runs {
        fns.push(h.finished(id).await.run.function_id);
    }
    fns.sort();
    assert_eq!(fns, ["all", "big"]);
    let r = h
        .engine
        .send(EventInput::new("t.x", json!({ "n": 1 })))
        .await
        .unwrap();
    assert_eq!(r.runs.len(), 1);
    assert_eq!(h.finished(&r.runs[0]).await.run.function_id, "all");
    let r = h
        .engine
        .send(EventInput::new("t.nothing", json!({})))
        .await
        .unwrap();
    assert!(r.runs.is_empty() && !r.duplicate);
    // A trigger ending in `*` matches every name with that prefix.
    h.engine
        .register(Function::new("any-user-event").on_event("user.*").handler(noop))
        .unwrap();
    for (name, starts) in [
        ("user.created", 1),
        ("user.", 1),
        ("users.created", 0),
        ("user", 0),
    ] {
        let r = h.engine.send(EventInput::new(name, json!({}))).await.unwrap();
        assert_eq!(r.runs.len(), starts, "{name}");
    }
    for bad in ["*", "a*b*", "*.created"] {
        let err = h
            .engine
            .register(Function::new("bad-wildcard").on_event(bad).handler(noop))
            .unwrap_err();
        assert!(err.to_string().contains("'*'"), "{bad}: {err}");
    }
}

pub async fn idempotency_key_allows_one_run_per_key(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("per-doc")
                .on_event("doc.uploaded")
                .idempotency("event.data.documentId")
                .handler(|_ctx: Ctx| async move { Ok(()) }),
        )
        .unwrap();
    let a = h
        .engine
        .send(EventInput::new("doc.uploaded", json!({ "documentId": "d1" })))
        .await
        .unwrap();
    let b = h
        .engine
        .send(EventInput::new("doc.uploaded", json!({ "documentId": "d1" })))
        .await
        .unwrap();
    let c = h
        .engine
        .send(EventInput::new("doc.uploaded", json!({ "documentId": "d2" })))
        .await
        .unwrap();
    assert_eq!(a.runs.len(), 1);
    assert!(b.runs.is_empty() && !b.duplicate);
    assert!(b.skipped[0].reason.contains("idempotency key"), "{:?}", b.skipped);
    assert_eq!(c.runs.len(), 1);
}

pub async fn finish_timeout_cancels_a_run(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("slowpoke")
                .on_event("t.slow")
                .timeouts(None, Some(HOUR))
                .handler(|ctx: Ctx| async move {
                    ctx.sleep("too-long", 2 * HOUR).await?;
                    Ok(())
                }),
        )
        .unwrap();
    let run = send(&h, "t.slow", json!({})).await;
    h.wait_status(&run, RunStatus::Sleeping).await;
    h.advance(HOUR + Duration::from_secs(1));
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Cancelled);
    let err = d.run.error.unwrap();
    assert_eq!(err.name, "Timeout");
    assert!(err.message.contains("finish timeout"), "{}", err.message);
}

pub async fn start_timeout_cancels_a_run_that_never_started(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("impatient")
                .on_event("t.impatient")
                .throttle(1, HOUR, 1, None)
                .timeouts(Some(Duration::from_secs(600)), None)
                .handler(|_ctx: Ctx| async move { Ok(()) }),
        )
        .unwrap();
    let first = send(&h, "t.impatient", json!({})).await;
    let second = send(&h, "t.impatient", json!({})).await;
    assert_eq!(h.finished(&first).await.run.status, RunStatus::Completed);
    h.advance(Duration::from_secs(601));
    let d = h.finished(&second).await;
    assert_eq!(d.run.status, RunStatus::Cancelled);
    assert!(d.run.error.unwrap().message.contains("start timeout"));
}

pub async fn bad_input_gets_a_clear_error(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let noop = |_ctx: Ctx| async move { Ok(()) };
    let err = h
        .engine
        .register(
            Function::new("bad-key")
                .on_event("x")
                .concurrency(1, Some("event.data.user =="))
                .handler(noop),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("concurrency[0].key") && msg.contains("column 19"),
        "{msg}"
    );
    let err = h
        .engine
        .register(
            Function::new("bad-if")
                .on_event_if("x", "event.data.a = 1")
                .handler(noop),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("triggers[0].if") && err.to_string().contains("=="),
        "{err}"
    );
    let err = h
        .engine
        .register(
            Function::new("bad-root")
                .on_event("x")
                .idempotency("user.id")
                .handler(noop),
        )
        .unwrap_err();
    assert!(err.to_string().contains("unknown name 'user'"), "{err}");
    let err = h
        .engine
        .register(Function::new("").on_event("x").handler(noop))
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidFunction { .. }), "{err}");
    let err = h
        .engine
        .register(
            Function::new("zero")
                .on_event("x")
                .concurrency(0, None)
                .handler(noop),
        )
        .unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");

    h.engine
        .register(Function::new("sink").on_event("x").handler(noop))
        .unwrap();
    let err = h
        .engine
        .send(EventInput::new("x", json!("not an object")))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("data must be a JSON object, got a string"),
        "{err}"
    );
    let err = h
        .engine
        .send_many(vec![
            EventInput::new("x", json!({})),
            EventInput::new("", json!({})),
        ])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("event #1"), "{err}");
    let big = "x".repeat(MAX_EVENT_BYTES + 1);
    let err = h
        .engine
        .send(EventInput::new("x", json!({ "blob": big })))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::EventTooLarge { .. }), "{err}");
    assert!(
        h.engine
            .list_runs(&RunFilter::default())
            .await
            .unwrap()
            .runs
            .is_empty(),
        "a rejected batch started nothing"
    );
    let err = h.engine.get_run(&RunId::from("01NOSUCHRUN")).await.unwrap_err();
    assert_eq!(err.to_string(), "run '01NOSUCHRUN' not found");

    h.engine
        .register(
            Function::new("bad-wait")
                .on_event("t.bad-wait")
                .handler(|ctx: Ctx| async move {
                    ctx.wait_for_event("w", "e", Some("async.data.x >"), HOUR).await?;
                    Ok(())
                }),
        )
        .unwrap();
    let run = send(&h, "t.bad-wait", json!({})).await;
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Failed);
    assert!(d.run.error.unwrap().message.contains("invalid match expression"));
}

pub async fn an_empty_step_name_fails_the_run_clearly(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("nameless")
                .on_event("t.nameless")
                .handler(|ctx: Ctx| async move { ctx.run("  ", || async { Ok(()) }).await }),
        )
        .unwrap();
    let run = send(&h, "t.nameless", json!({})).await;
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Failed);
    assert_eq!(d.run.error.unwrap().message, "step name must not be empty");
}

pub async fn a_changed_step_path_fails_with_non_determinism(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let variant = Arc::new(AtomicBool::new(false));
    let b = counter();
    let (v2, b2) = (variant.clone(), b.clone());
    h.engine
        .register(
            Function::new("shifty")
                .on_event("t.shifty")
                .handler(move |ctx: Ctx| {
                    let (variant, b) = (v2.clone(), b2.clone());
                    async move {
                        if variant.load(SeqCst) {
                            ctx.run("b", || async { Ok(b.fetch_add(1, SeqCst)) }).await?;
                        } else {
                            ctx.run("a", || async { Ok(0) }).await?;
                        }
                        ctx.sleep("pause", HOUR).await?;
                        Ok(())
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.shifty", json!({})).await;
    h.wait_status(&run, RunStatus::Sleeping).await;
    variant.store(true, SeqCst);
    h.advance(HOUR);
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Failed);
    let err = d.run.error.unwrap();
    assert_eq!(err.name, "NonDeterminism");
    assert!(
        err.message.contains("\"a\"") && err.message.contains("\"b\""),
        "{}",
        err.message
    );
    assert_eq!(b.load(SeqCst), 0, "the new step ran before the check");
}

pub async fn runs_can_be_listed_filtered_paged_and_counted(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let noop = |_ctx: Ctx| async move { Ok(()) };
    h.engine
        .register(Function::new("lister").on_event("t.list").handler(noop))
        .unwrap();
    h.engine
        .register(Function::new("other").on_event("t.other").handler(noop))
        .unwrap();
    let mut mine = Vec::new();
    for i in 0..7 {
        let r = h
            .engine
            .send(EventInput::new("t.list", json!({ "i": i })).with_id(format!("list-{i}")))
            .await
            .unwrap();
        mine.push(r.runs[0].clone());
    }
    for _ in 0..3 {
        send(&h, "t.other", json!({})).await;
    }
    for r in &mine {
        h.finished(r).await;
    }
    let mut filter = RunFilter {
        function_id: Some("lister".into()),
        limit: Some(3),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = h.engine.list_runs(&filter).await.unwrap();
        pages += 1;
        assert!(page.runs.len() <= 3);
        seen.extend(page.runs.iter().map(|r| r.id.clone()));
        match page.next_cursor {
            Some(c) => filter.before_seq = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    mine.reverse();
    assert_eq!(seen, mine, "newest first, every run once");
    let by_event = h
        .engine
        .list_runs(&RunFilter {
            event_id: Some("list-3".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_event.runs.len(), 1);
    assert_eq!(by_event.runs[0].event_id, "list-3");
    let failed = h
        .engine
        .list_runs(&RunFilter {
            statuses: vec![RunStatus::Failed],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(failed.runs.is_empty());
    let later = h
        .engine
        .list_runs(&RunFilter {
            since: Some(T0.plus(HOUR)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(later.runs.is_empty());
    let counts = h.engine.count_runs(&RunFilter::default()).await.unwrap();
    let completed = counts
        .iter()
        .find(|(s, _)| *s == RunStatus::Completed)
        .map(|c| c.1);
    let total: u64 = counts.iter().map(|c| c.1).sum();
    assert_eq!(total, 10);
    assert!(completed.unwrap_or(0) >= 7);
}

pub async fn runs_belong_to_the_user_of_their_event(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("owned")
                .on_event("t.owned")
                .retries(0)
                .handler(|ctx: Ctx| async move {
                    if ctx.event().data["fail"] == json!(true) {
                        return Err(Failure::non_retriable("asked to fail"));
                    }
                    Ok(())
                }),
        )
        .unwrap();
    let mut ada = Vec::new();
    for i in 0..3 {
        let mut e = EventInput::new("t.owned", json!({ "i": i, "fail": i == 2 }));
        e.user = Some(json!({ "id": "ada" }));
        ada.push(h.engine.send(e).await.unwrap().runs[0].clone());
    }
    let mut e = EventInput::new("t.owned", json!({}));
    e.user = Some(json!({ "id": "bob" }));
    let bob = h.engine.send(e).await.unwrap().runs[0].clone();
    let anonymous = send(&h, "t.owned", json!({})).await;
    for r in ada.iter().chain([&bob, &anonymous]) {
        h.finished(r).await;
    }
    let of = |owner: &str| RunFilter {
        owner: Some(owner.into()),
        ..Default::default()
    };
    let listed: Vec<RunId> = h
        .engine
        .list_runs(&of("ada"))
        .await
        .unwrap()
        .runs
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut expected = ada.clone();
    expected.reverse();
    assert_eq!(listed, expected, "only ada's runs, newest first");
    let bobs = h.engine.list_runs(&of("bob")).await.unwrap().runs;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].owner.as_deref(), Some("bob"));
    let total: u64 = h
        .engine
        .count_runs(&of("ada"))
        .await
        .unwrap()
        .iter()
        .map(|c| c.1)
        .sum();
    assert_eq!(total, 3);
    let none = h.engine.get_run(&anonymous).await.unwrap().run;
    assert_eq!(none.owner, None);
    // A replay belongs to the same user.
    let replay = h.engine.replay(&ada[2], ReplayFrom::Start).await.unwrap();
    assert_eq!(
        h.engine.get_run(&replay).await.unwrap().run.owner.as_deref(),
        Some("ada")
    );
    assert_eq!(h.engine.list_runs(&of("ada")).await.unwrap().runs.len(), 4);
}

pub async fn a_node_that_lost_its_lease_cannot_record(store: Arc<dyn Store>) {
    let now = T0;
    let event = EventInput::new("t.lease", json!({})).into_event(now).unwrap();
    let run_id = RunId::generate();
    store
        .append_events(
            vec![AppendEvent {
                event,
                runs: vec![NewRun::new(run_id.clone(), "leased", now)],
            }],
            now,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let (a, b) = (NodeId("node-a".to_string()), NodeId("node-b".to_string()));
    let claimed = store
        .claim_due(&a, &["leased".to_string()], now, 10, 30_000)
        .await
        .unwrap();
    assert_eq!(claimed.runs.len(), 1);
    assert_eq!(claimed.runs[0].run.status, RunStatus::Running);
    let seq = claimed.runs[0].run.seq;
    let none = store
        .claim_due(&b, &["leased".to_string()], now, 10, 30_000)
        .await
        .unwrap();
    assert!(none.runs.is_empty(), "a leased run was claimed twice");
    // A's lease runs out; B takes over.
    let later = now.plus(Duration::from_secs(31));
    assert_eq!(store.reclaim_expired(&b, later).await.unwrap(), 1);
    let taken = store
        .claim_due(&b, &["leased".to_string()], later, 10, 30_000)
        .await
        .unwrap();
    assert_eq!(taken.runs.len(), 1);
    let step = crate::step::StepRecord {
        step_id: "s".into(),
        name: "s".into(),
        kind: StepKind::Run,
        status: StepStatus::Completed,
        output: Some(json!(1)),
        error: None,
        attempts: vec![],
        started_at: later,
        ended_at: Some(later),
        wake_at: None,
        detail: None,
    };
    let lease_a = Lease {
        run_id: run_id.clone(),
        run_seq: seq,
        node: a,
    };
    let lease_b = Lease {
        node: b,
        ..lease_a.clone()
    };
    let ack = store
        .record_step(&lease_a, &step, crate::store::StepEffect::None, later)
        .await
        .unwrap();
    assert_eq!(ack, RecordAck::LeaseLost);
    let ack = store
        .record_step(&lease_b, &step, crate::store::StepEffect::None, later)
        .await
        .unwrap();
    assert_eq!(ack, RecordAck::Recorded);
    let fin = store
        .finish_run(&lease_a, RunOutcome::Completed(json!(0)), later)
        .await
        .unwrap();
    assert_eq!(fin.ack, RecordAck::LeaseLost);
    let fin = store
        .finish_run(&lease_b, RunOutcome::Completed(json!(1)), later)
        .await
        .unwrap();
    assert_eq!(fin.ack, RecordAck::Recorded);
    let d = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(d.run.status, RunStatus::Completed);
    assert_eq!(d.run.output, Some(json!(1)));
    assert_eq!(d.steps.len(), 1);
}

fn resumable(
    a: Arc<AtomicUsize>,
    b: Arc<AtomicUsize>,
    gate: Option<Arc<Notify>>,
) -> crate::function::FunctionDef {
    Function::new("resumable")
        .on_event("t.resume")
        .handler(move |ctx: Ctx| {
            let (a, b, gate) = (a.clone(), b.clone(), gate.clone());
            async move {
                ctx.run("a", || async { Ok(a.fetch_add(1, SeqCst)) }).await?;
                ctx.sleep("nap", HOUR).await?;
                ctx.run("b", || async {
                    b.fetch_add(1, SeqCst);
                    if let Some(g) = &gate {
                        g.notified().await;
                    }
                    Ok(())
                })
                .await?;
                Ok("resumed")
            }
        })
}

pub async fn another_engine_resumes_runs_after_a_shutdown(store: Arc<dyn Store>) {
    let clock = Arc::new(TestClock::new(T0));
    let (a, b) = (counter(), counter());
    let gate = Arc::new(Notify::new());
    let h1 = Harness::start_with(store.clone(), clock.clone(), EngineConfig::default()).await;
    h1.engine
        .register(resumable(a.clone(), b.clone(), Some(gate)))
        .unwrap();
    let sleeper = send(&h1, "t.resume", json!({})).await;
    h1.wait_status(&sleeper, RunStatus::Sleeping).await;
    h1.advance(HOUR);
    // Now "b" is executing on engine 1 and blocks; shut engine 1 down mid-step.
    while b.load(SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    h1.engine.shutdown().await;
    let d = h1.engine.get_run(&sleeper).await.unwrap();
    assert_eq!(
        d.run.status,
        RunStatus::Queued,
        "the interrupted run went back to the queue"
    );
    let h2 = Harness::start_with(store, clock, EngineConfig::default()).await;
    h2.engine.register(resumable(a.clone(), b.clone(), None)).unwrap();
    let d = h2.finished(&sleeper).await;
    assert_eq!(d.run.status, RunStatus::Completed);
    assert_eq!(d.run.output, Some(json!("resumed")));
    assert_eq!(a.load(SeqCst), 1, "recorded step 'a' ran again");
    assert_eq!(
        b.load(SeqCst),
        2,
        "the interrupted step 'b' runs again (at least once)"
    );
}

pub async fn dead_process_runs_are_taken_over_at_start(store: Arc<dyn Store>) {
    let now = T0;
    let me = crate::node::current_node(now);
    let dead = NodeInfo {
        id: NodeId("dead-node".to_string()),
        pid: u32::MAX - 7,
        ..me
    };
    store.register_node(&dead).await.unwrap();
    let event = EventInput::new("t.resume", json!({})).into_event(now).unwrap();
    let run_id = RunId::generate();
    store
        .append_events(
            vec![AppendEvent {
                event,
                runs: vec![NewRun::new(run_id.clone(), "resumable", now)],
            }],
            now,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let claimed = store
        .claim_due(&dead.id, &["resumable".to_string()], now, 1, 3_600_000)
        .await
        .unwrap();
    assert_eq!(claimed.runs.len(), 1, "the dead node held the run");
    let h = Harness::start(store).await;
    let (a, b) = (counter(), counter());
    h.engine.register(resumable(a, b, None)).unwrap();
    h.wait_status(&run_id, RunStatus::Sleeping).await;
    h.advance(HOUR);
    assert_eq!(h.finished(&run_id).await.run.status, RunStatus::Completed);
    assert!(
        h.store.nodes().await.unwrap().iter().all(|n| n.id != dead.id),
        "the dead node was forgotten"
    );
}

pub async fn oversized_step_output_fails_the_step(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("huge")
                .on_event("t.huge")
                .handler(|ctx: Ctx| async move {
                    ctx.run("blob", || async {
                        Ok("x".repeat(crate::step::MAX_STEP_OUTPUT_BYTES + 10))
                    })
                    .await
                    .map(|s| s.len())
                }),
        )
        .unwrap();
    let run = send(&h, "t.huge", json!({})).await;
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Failed);
    assert_eq!(d.steps[0].attempts.len(), 1, "an oversized output is not retried");
    assert!(d.run.error.unwrap().message.contains("the limit is"));
}

pub async fn a_wait_survives_a_restart(store: Arc<dyn Store>) {
    let clock = Arc::new(TestClock::new(T0));
    let h1 = Harness::start_with(store.clone(), clock.clone(), EngineConfig::default()).await;
    h1.engine.register(approval_function()).unwrap();
    let run = send(&h1, "doc.uploaded", json!({ "doc": "d9" })).await;
    h1.wait_status(&run, RunStatus::Waiting).await;
    h1.engine.shutdown().await;
    drop(h1);
    let h2 = Harness::start_with(store, clock, EngineConfig::default()).await;
    h2.engine.register(approval_function()).unwrap();
    h2.engine
        .send(EventInput::new(
            "plan.approved",
            json!({ "doc": "d9", "by": "grace" }),
        ))
        .await
        .unwrap();
    let d = h2.finished(&run).await;
    assert_eq!(d.run.output, Some(json!({ "approved_by": "grace" })));
}

pub async fn invoke_with_a_timeout_fails_when_the_child_is_late(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(Function::new("sluggish").handler(|ctx: Ctx| async move {
            ctx.sleep("long", 2 * HOUR).await?;
            Ok(1)
        }))
        .unwrap();
    h.engine
        .register(
            Function::new("caller")
                .on_event("t.caller")
                .handler(|ctx: Ctx| async move {
                    let r = ctx.invoke::<i64>("call", "sluggish", json!({}), Some(HOUR)).await;
                    Ok(r.err().map(|f| f.message))
                }),
        )
        .unwrap();
    let run = send(&h, "t.caller", json!({})).await;
    let d = h.wait_status(&run, RunStatus::Waiting).await;
    assert_eq!(d.steps[0].status, StepStatus::Invoking);
    assert_eq!(d.steps[0].wake_at, Some(T0.plus(HOUR)));
    h.advance(HOUR + Duration::from_secs(1));
    let d = h.finished(&run).await;
    let msg = d.run.output.unwrap();
    assert!(
        msg.as_str()
            .unwrap()
            .contains("did not finish before the timeout"),
        "{msg}"
    );
}

pub async fn repeated_step_names_get_numbered_ids(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    h.engine
        .register(
            Function::new("looper")
                .on_event("t.loop")
                .handler(|ctx: Ctx| async move {
                    let mut total = 0;
                    for i in 1..=3 {
                        total += ctx.run("inc", || async move { Ok(i) }).await?;
                    }
                    ctx.sleep("nap", HOUR).await?;
                    total += ctx.run("inc", || async { Ok(10) }).await?;
                    Ok(total)
                }),
        )
        .unwrap();
    let run = send(&h, "t.loop", json!({})).await;
    h.wait_status(&run, RunStatus::Sleeping).await;
    h.advance(HOUR);
    let d = h.finished(&run).await;
    assert_eq!(
        d.run.output,
        Some(json!(16)),
        "replayed ids map to the same results"
    );
    let ids: Vec<&str> = d.steps.iter().map(|s| s.step_id.as_str()).collect();
    assert_eq!(ids, ["inc", "inc:1", "inc:2", "nap", "inc:3"]);
    assert!(d.steps.iter().all(|s| s.name == "inc" || s.name == "nap"));
}

pub async fn a_step_that_changes_kind_fails_with_non_determinism(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let variant = Arc::new(AtomicBool::new(false));
    let v2 = variant.clone();
    h.engine
        .register(
            Function::new("morph")
                .on_event("t.morph")
                .handler(move |ctx: Ctx| {
                    let variant = v2.clone();
                    async move {
                        ctx.sleep("nap", HOUR).await?;
                        if variant.load(SeqCst) {
                            ctx.sleep("x", HOUR).await?;
                        } else {
                            ctx.run("x", || async { Ok(()) }).await?;
                        }
                        ctx.sleep("nap2", HOUR).await?;
                        Ok(())
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.morph", json!({})).await;
    h.wait_status(&run, RunStatus::Sleeping).await;
    h.advance(HOUR);
    // Past step x and suspended again (so the next hour replays the code).
    h.wait_until(&run, "past step x", |d| {
        d.steps.len() == 3 && d.run.status == RunStatus::Sleeping
    })
    .await;
    variant.store(true, SeqCst);
    h.advance(HOUR);
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Failed);
    let err = d.run.error.unwrap();
    assert_eq!(err.name, "NonDeterminism");
    assert!(err.message.contains("recorded as a run step"), "{}", err.message);
}

pub async fn send_events_starts_other_functions_once(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let received = counter();
    let r2 = received.clone();
    h.engine
        .register(
            Function::new("listener")
                .on_event("t.notified")
                .handler(move |ctx: Ctx| {
                    let received = r2.clone();
                    async move {
                        received.fetch_add(1, SeqCst);
                        Ok(ctx.event().data["doc"].clone())
                    }
                }),
        )
        .unwrap();
    h.engine
        .register(
            Function::new("notifier")
                .on_event("t.notify")
                .handler(|ctx: Ctx| async move {
                    let ids = ctx
                        .send_events(
                            "notify",
                            vec![EventInput::new("t.notified", json!({ "doc": "d1" }))],
                        )
                        .await?;
                    ctx.sleep("then-rest", HOUR).await?;
                    Ok(ids)
                }),
        )
        .unwrap();
    let run = send(&h, "t.notify", json!({})).await;
    h.wait_status(&run, RunStatus::Sleeping).await;
    h.advance(HOUR);
    let d = h.finished(&run).await;
    let ids = d.run.output.unwrap();
    assert_eq!(
        ids,
        json!([format!("{run}-notify-0")]),
        "the id is derived from run and step"
    );
    let listener = h
        .engine
        .list_runs(&RunFilter {
            function_id: Some("listener".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listener.runs.len(),
        1,
        "the replay after the sleep did not send again"
    );
    assert_eq!(
        h.finished(&listener.runs[0].id).await.run.output,
        Some(json!("d1"))
    );
    assert_eq!(received.load(SeqCst), 1);
}

pub async fn replay_from_the_failed_step_skips_steps_that_handled_the_failure(store: Arc<dyn Store>) {
    let h = Harness::start(store).await;
    let (a, cleanup) = (counter(), counter());
    let fail = Arc::new(AtomicBool::new(true));
    let (a2, c2, f2) = (a.clone(), cleanup.clone(), fail.clone());
    h.engine
        .register(
            Function::new("with-cleanup")
                .on_event("t.cleanup")
                .retries(0)
                .handler(move |ctx: Ctx| {
                    let (a, cleanup, fail) = (a2.clone(), c2.clone(), f2.clone());
                    async move {
                        ctx.run("a", || async { Ok(a.fetch_add(1, SeqCst)) }).await?;
                        let b = ctx
                            .run("b", || async {
                                if fail.load(SeqCst) {
                                    Err(Failure::non_retriable("b is broken"))
                                } else {
                                    Ok(())
                                }
                            })
                            .await;
                        if let Err(f) = b {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            ctx.run("mark-failed", || async { Ok(cleanup.fetch_add(1, SeqCst)) })
                                .await?;
                            return Err(f);
                        }
                        Ok("done")
                    }
                }),
        )
        .unwrap();
    let run = send(&h, "t.cleanup", json!({})).await;
    let d = h.finished(&run).await;
    assert_eq!(d.run.status, RunStatus::Failed);
    assert!(d.steps.iter().any(|s| s.step_id == "mark-failed"));
    fail.store(false, SeqCst);
    let again = h.engine.replay(&run, ReplayFrom::FailedStep).await.unwrap();
    let d = h.finished(&again).await;
    assert_eq!(d.run.status, RunStatus::Completed, "{:?}", d.run.error);
    assert_eq!(a.load(SeqCst), 1, "'a' was reused");
    assert_eq!(
        cleanup.load(SeqCst),
        1,
        "the cleanup step is not part of the replay"
    );
    assert!(!d.steps.iter().any(|s| s.step_id == "mark-failed"));
}
