//! The README's engine example, compiled and run: `cargo run -p learnflow --example quickstart`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use learnflow_engine::{Ctx, Engine, EventInput, Failure, Function};
use learnflow_store_sqlite::SqliteStore;
use serde_json::json;

/// Calls to the "provider" (state outside the function: the function itself is
/// re-executed from the start after every suspension, so it must not keep such state).
static QUIZ_CALLS: AtomicUsize = AtomicUsize::new(0);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("learnflow-quickstart-{}", std::process::id()));
    let engine = Engine::builder(Arc::new(SqliteStore::open(dir.join("learnflow.db"))?)).build();
    engine.register(Function::new("embed-document").handler(|ctx: Ctx| async move {
        let words = ctx.event().data["text"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .count();
        ctx.run("count", || async move { Ok(json!({ "words": words })) })
            .await
    }))?;
    engine.register(
        Function::new("process-document")
            .on_event("document.uploaded") // or .on_event_if(name, "event.data.size > 0")
            .retries(3)
            .concurrency(5, Some("event.data.userId")) // per key
            .concurrency(50, None) // per function
            .throttle(100, Duration::from_secs(60), 1, Some("event.data.userId"))
            .cancel_on(
                "document.deleted",
                Some("async.data.documentId == event.data.documentId"),
            )
            .timeouts(None, Some(Duration::from_secs(3600)))
            .idempotency("event.data.documentId")
            .handler(|ctx: Ctx| async move {
                let text: String = ctx
                    .run("extract", || async { Ok("a short document".to_string()) })
                    .await?;
                // Parallel steps; the quiz step's first call is rate limited and retried.
                let (a, b) = tokio::join!(
                    ctx.run("agent-summary", || async { Ok(1) }),
                    ctx.run("agent-quiz", || async {
                        if QUIZ_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
                            Err(Failure::retry_after(
                                "429 from the provider",
                                Duration::from_millis(200),
                            ))
                        } else {
                            Ok(2)
                        }
                    }),
                );
                let approval = ctx
                    .wait_for_event(
                        "review",
                        "plan.approved",
                        Some("async.data.documentId == event.data.documentId"),
                        Duration::from_millis(300),
                    )
                    .await?; // Option<Event>: None on timeout
                ctx.sleep("cool-down", Duration::from_millis(100)).await?;
                let child: serde_json::Value = ctx
                    .invoke("embed", "embed-document", json!({ "text": text }), None)
                    .await?;
                Ok(json!({ "a": a?, "b": b?, "approved": approval.is_some(), "child": child }))
            }),
    )?;
    engine.start().await?;
    let receipt = engine
        .send(EventInput::new(
            "document.uploaded",
            json!({ "documentId": "d1", "userId": "u1" }),
        ))
        .await?;
    let run = engine.wait_for_run(&receipt.runs[0]).await?;
    let detail = engine.get_run(&run.id).await?;
    println!("{} {}", detail.run.status, detail.run.output.unwrap_or_default());
    if let Some(e) = &detail.run.error {
        println!("  error: {e}");
    }
    for s in &detail.steps {
        println!(
            "  {:<14} {:<15} {:<10} attempts={}",
            s.step_id,
            s.kind.as_str(),
            s.status.as_str(),
            s.attempts.len()
        );
        for a in s.attempts.iter().filter(|a| a.error.is_some()) {
            println!(
                "      attempt {}: {}",
                a.number,
                a.error.as_ref().map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }
    engine.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
