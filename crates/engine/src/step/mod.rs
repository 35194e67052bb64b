//! Steps: the unit of durability and retry. `ctx` is the API function code calls
//! (`ctx.run`, `ctx.sleep`, `ctx.wait_for_event`, `ctx.invoke`); `journal` is what
//! gets recorded.

pub(crate) mod ctx;
pub mod journal;

pub(crate) use ctx::Outcome;
pub use ctx::{Ctx, MAX_SLEEP, MAX_STEP_NAME_LEN, MAX_STEP_OUTPUT_BYTES};
pub use journal::{Attempt, StepKind, StepRecord, StepStatus};
