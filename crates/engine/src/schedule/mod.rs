//! Scheduling: the dispatcher that claims due runs, concurrency slots for executing
//! steps, and the throttle on run starts.

pub mod concurrency;
pub(crate) mod cron;
pub(crate) mod dispatcher;
pub(crate) mod shared_slots;
pub mod throttle;
