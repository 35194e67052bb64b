//! # learnflow-engine: LearnFlow's durable execution engine
//!
//! Event-triggered functions made of steps that are persisted, retried on their own
//! with backoff, never redone once recorded, and resumed after a crash; with durable
//! sleeps, waits for events, invokes, per-key concurrency, throttling, cancel and
//! replay. The engine knows nothing of HTTP, SQL or AI: it talks to a [`Store`]
//! (SQLite and PostgreSQL implementations live in their own crates) and runs Rust
//! functions registered in-process.
//!
//! ## Map
//!
//! | module | owns |
//! |---|---|
//! | [`engine`] | the public [`Engine`]: register, send, read, cancel, replay, watch |
//! | [`event`] | events, their limits and dedupe window |
//! | [`function`] | function configuration (serde data), the builder, handlers |
//! | [`expr`] | the expression language of keys, filters and matches |
//! | [`step`] | [`Ctx`] (`run`, `sleep`, `wait_for_event`, `invoke`) and the journal |
//! | [`run`] | run records, the lifecycle state machine, the driver |
//! | [`schedule`] | the dispatcher, concurrency slots, the throttle |
//! | [`retry`] | the backoff schedule |
//! | [`store`] | the store trait, split by table |
//! | [`watch`] | live updates |
//! | [`time`] | timestamps and the injected clock |
//! | [`testing`] | the conformance suite every store must pass |
//!
//! ## Guarantees
//!
//! * A step's result is committed to the store before the code after it runs; a
//!   recorded step never runs again for its run, whatever crashes.
//! * A step runs at least once: an attempt interrupted by a crash runs again.
//! * Code between steps must be deterministic; a replay that takes another path
//!   fails the run with a `NonDeterminism` error before any new step runs.
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn learnflow_engine::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! use learnflow_engine::{Ctx, Engine, EventInput, Function};
//! use serde_json::json;
//!
//! let engine = Engine::builder(store).build();
//! engine.register(
//!     Function::new("greet")
//!         .on_event("user.signed_up")
//!         .retries(3)
//!         .concurrency(5, Some("event.data.team"))
//!         .handler(|ctx: Ctx| async move {
//!             let name: String = ctx.run("look-up", || async { Ok("Ada".to_string()) }).await?;
//!             ctx.sleep("wait-a-day", std::time::Duration::from_secs(86_400)).await?;
//!             ctx.run("send-mail", || async { Ok(()) }).await?;
//!             Ok(json!({ "greeted": name }))
//!         }),
//! )?;
//! engine.start().await?;
//! engine.send(EventInput::new("user.signed_up", json!({ "team": "t1" }))).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod duration;
pub mod engine;
pub mod error;
pub mod event;
pub mod expr;
pub mod failure;
pub mod function;
pub mod ids;
pub mod node;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod step;
pub mod store;
pub mod testing;
pub mod time;
pub mod watch;

pub use engine::{Engine, EngineBuilder, EngineConfig, FunctionInfo, SendReceipt};
pub use error::EngineError;
pub use event::{Event, EventInput};
pub use failure::{ErrorInfo, Failure, RetryDirective};
pub use function::{Function, FunctionConfig, FunctionDef, Handler};
pub use ids::{NodeId, RunId};
pub use retry::RetryPolicy;
pub use run::{ReplayFrom, RunDetail, RunFilter, RunPage, RunRecord, RunStatus};
pub use step::{Ctx, StepKind, StepRecord, StepStatus};
pub use store::{Store, StoreError, StoreErrorKind};
pub use time::{Clock, SystemClock, TestClock, Timestamp};
pub use watch::{RunUpdate, UpdateKind};
