//! The driver: polls a run's code and, after every poll, lets the run state decide
//! whether to let new steps go, to keep waiting, or to end this execution
//! (returned, suspended, cancelled, or stopped by a fatal condition).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::failure::Failure;
use crate::step::ctx::Fatal;
use crate::step::{Ctx, Outcome};
use crate::time::Clock;

/// One execution of a run's code.
pub(crate) struct Driver {
    code: BoxFuture<'static, Result<Value, Failure>>,
    ctx: Ctx,
    clock: Arc<dyn Clock>,
    grace: Duration,
}

impl Driver {
    pub fn new(
        code: BoxFuture<'static, Result<Value, Failure>>,
        ctx: Ctx,
        clock: Arc<dyn Clock>,
        grace: Duration,
    ) -> Self {
        Driver {
            code,
            ctx,
            clock,
            grace,
        }
    }
}

impl Future for Driver {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = &mut *self;
        loop {
            this.ctx.inner.state.lock().driver_waker = Some(cx.waker().clone());
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| this.code.as_mut().poll(cx)));
            match polled {
                Err(panic) => {
                    let msg = if let Some(s) = panic.downcast_ref::<&str>() {
                        (*s).to_string()
                    } else if let Some(s) = panic.downcast_ref::<String>() {
                        s.clone()
                    } else {
                        "non-string panic payload".to_string()
                    };
                    return Poll::Ready(Outcome::Returned(Err(Failure::retriable(format!(
                        "the function panicked outside a step: {msg}"
                    ))
                    .named("Panic"))));
                }
                Ok(Poll::Ready(result)) => {
                    let state = this.ctx.inner.state.lock();
                    if result.is_ok() {
                        let skipped = state.unvisited();
                        if !skipped.is_empty() {
                            return Poll::Ready(Outcome::Fatal(Fatal::NonDeterminism(format!(
                                "the function returned without reaching recorded step(s) {skipped:?}: \
                                 it took a different path than when those steps ran"
                            ))));
                        }
                    }
                    return Poll::Ready(Outcome::Returned(result));
                }
                Ok(Poll::Pending) => {}
            }
            let now = this.clock.now();
            let decision = this.ctx.inner.state.lock().after_poll(now, this.grace);
            match decision {
                Ok(true) => continue,
                Ok(false) => return Poll::Pending,
                Err(outcome) => return Poll::Ready(outcome),
            }
        }
    }
}
