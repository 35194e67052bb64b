//! The engine's error type: each variant names the offending value and says what to fix.

use crate::expr::ExprError;
use crate::run::RunStatus;
use crate::store::StoreError;

/// Errors from the engine's API.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A function option holds an expression that does not parse.
    #[error("function '{function}': invalid expression in {field}: {source}")]
    InvalidExpression {
        /// The function id.
        function: String,
        /// Which option (`concurrency[0].key`, `triggers[1].if`, …).
        field: String,
        /// The parse error with its column.
        #[source]
        source: ExprError,
    },
    /// A function definition is not acceptable.
    #[error("invalid function '{id}': {reason}")]
    InvalidFunction {
        /// The function id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// No function with this id is registered.
    #[error("unknown function id '{0}'")]
    UnknownFunction(String),
    /// The event is malformed.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The event is bigger than the limit.
    #[error("event '{name}' is {size} bytes; the limit is {limit} bytes")]
    EventTooLarge {
        /// Event name.
        name: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No run with this id exists.
    #[error("run '{0}' not found")]
    RunNotFound(String),
    /// The run is in a state that does not allow the action.
    #[error("cannot {action} run '{run}': it is {status}")]
    InvalidRunState {
        /// The run id.
        run: String,
        /// Its current status.
        status: RunStatus,
        /// What was asked.
        action: &'static str,
    },
    /// The engine has not been started, or has been shut down.
    #[error("the engine is not running (call start() first, or it was shut down)")]
    NotRunning,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
