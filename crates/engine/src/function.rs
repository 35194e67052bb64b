//! Functions: their configuration (serde data), the builder users write, and the
//! compiled form the engine runs (expressions parsed once, at registration).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EngineError;
use crate::event::{Event, MAX_EVENT_NAME_LEN};
use crate::expr::{Expr, Scope};
use crate::failure::Failure;
use crate::retry::RetryPolicy;
use crate::step::Ctx;

/// Default number of retries per step (so four attempts in all).
pub const DEFAULT_RETRIES: u32 = 3;
/// Most retries a function may ask for.
pub const MAX_RETRIES: u32 = 100;
/// Longest accepted function id.
pub const MAX_FUNCTION_ID_LEN: usize = 128;

/// What starts a function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The event name; one ending in `*` matches every name with that prefix
    /// (`app/user.*` matches `app/user.created`).
    pub event: String,
    /// Optional filter over the event (`event.data.size > 10`).
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_expr: Option<String>,
}

/// A concurrency limit: at most `limit` steps of this function execute at once,
/// per distinct value of `key` when one is given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencyLimit {
    /// Most steps executing at once.
    pub limit: u32,
    /// Expression over `event` whose value partitions the limit (`event.data.userId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Shared by every function whose shared limit's key has the same value (so
    /// `"'openai'"` caps calls to one provider across functions); needs a key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

/// The function id of shared concurrency pools (see [`ConcurrencyLimit::shared`]).
pub const SHARED_POOL: &str = "*shared*";

/// A throttle on run starts: GCRA with emission interval `period / limit`; up to
/// `burst` runs may start back to back after a quiet spell. Runs over the limit wait
/// in the queue; none is dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    /// Runs per period.
    pub limit: u32,
    /// The period.
    #[serde(with = "crate::duration")]
    pub period: Duration,
    /// Runs that may start at once after a quiet spell (default 1).
    #[serde(default = "one")]
    pub burst: u32,
    /// Expression over `event` partitioning the throttle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn one() -> u32 {
    1
}

/// Debounce: a run starts only once `period` passed without another matching event
/// (per `key` value and user), with the last event received; `timeout` bounds the wait
/// from the first event. Events folded into a waiting run start no run of their own.
/// Invoked runs are not debounced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Debounce {
    /// Quiet time before the run starts.
    #[serde(with = "crate::duration")]
    pub period: Duration,
    /// Expression over `event` partitioning the debounce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Longest wait from the first event.
    #[serde(
        default,
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

/// Batching: events (per `key` value and user) are gathered into one run, which starts
/// when `max_size` events are in or `timeout` after the first; its code reads them
/// with [`crate::Ctx::events`]. Events folded into a run start no run of their own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Most events in one run.
    pub max_size: u32,
    /// Longest wait from the first event.
    #[serde(with = "crate::duration")]
    pub timeout: Duration,
    /// Expression over `event` partitioning the batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Singleton: at most one run of the function (per `key` value) at a time. A new
/// event either starts nothing while one runs (`Skip`) or cancels the running one and
/// starts (`Cancel`). Invoked runs are exempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Singleton {
    /// Expression over `event` partitioning it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What a new event does while a run is active.
    pub mode: SingletonMode,
}

/// See [`Singleton`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SingletonMode {
    /// The new event starts no run.
    Skip,
    /// The active run is cancelled and the new one starts.
    Cancel,
}

/// A rate limit on run starts: at most `limit` runs start per `period` (GCRA with a
/// burst of `limit`: after a quiet spell `limit` may start at once, then they come
/// back at one per `period / limit`). Events over the limit start no run: the run is
/// skipped, not delayed. Invoked runs are not rate limited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Runs per period.
    pub limit: u32,
    /// The period.
    #[serde(with = "crate::duration")]
    pub period: Duration,
    /// Expression over `event` partitioning the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Cancel a run when a matching event arrives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelOn {
    /// The event name.
    pub event: String,
    /// Match over `event` (the run's event) and `async` (the incoming one).
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_expr: Option<String>,
    /// Only events arriving within this long of the run's creation cancel it.
    #[serde(
        default,
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

/// Run timeouts: cancel a run not started within `start` of being queued, or not
/// finished within `finish` of starting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Longest a run may wait in the queue before its first step.
    #[serde(
        default,
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<Duration>,
    /// Longest a run may take from its start to its end.
    #[serde(
        default,
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finish: Option<Duration>,
}

/// Everything about a function except its code: plain data, so it can come from
/// a config file or an SDK's registration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionConfig {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Events that start it.
    pub triggers: Vec<Trigger>,
    /// Cron schedules that start it (5 fields, or 6 with seconds first; an optional
    /// `TZ=Area/City ` prefix, UTC otherwise), each tick once across all nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cron: Vec<String>,
    /// Retries per step after the first attempt.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Backoff between attempts.
    #[serde(default)]
    pub backoff: RetryPolicy,
    /// Concurrency limits (all apply).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concurrency: Vec<ConcurrencyLimit>,
    /// Throttle on run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    /// Rate limit on run starts (runs over it are skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Debounce of run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce: Option<Debounce>,
    /// One run at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singleton: Option<Singleton>,
    /// Many events per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
    /// Events that cancel a run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancel_on: Vec<CancelOn>,
    /// Run timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Expression over `event`: a second event with the same value within 24 h starts
    /// no second run of this function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<String>,
    /// Expression over `event` giving the seconds (−600…600) a run moves ahead of
    /// runs queued after it, to start and to get concurrency slots (Inngest's
    /// `priority.run`); a negative value delays it. Not a number: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

fn default_retries() -> u32 {
    DEFAULT_RETRIES
}

impl FunctionConfig {
    /// A config with an id and defaults everywhere else.
    pub fn new(id: impl Into<String>) -> Self {
        FunctionConfig {
            id: id.into(),
            name: None,
            triggers: Vec::new(),
            cron: Vec::new(),
            retries: DEFAULT_RETRIES,
            backoff: RetryPolicy::default(),
            concurrency: Vec::new(),
            throttle: None,
            rate_limit: None,
            debounce: None,
            singleton: None,
            batch: None,
            cancel_on: Vec::new(),
            timeouts: Timeouts::default(),
            idempotency: None,
            priority: None,
        }
    }
}

/// The code of a function.
pub trait Handler: Send + Sync + 'static {
    /// Runs (or replays) the function body.
    fn call(&self, ctx: Ctx) -> BoxFuture<'static, Result<Value, Failure>>;
}

struct HandlerFn<F>(F);

impl<F, Fut, T> Handler for HandlerFn<F>
where
    F: Fn(Ctx) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, Failure>> + Send + 'static,
    T: Serialize,
{
    fn call(&self, ctx: Ctx) -> BoxFuture<'static, Result<Value, Failure>> {
        (self.0)(ctx)
            .map(|out| {
                out.and_then(|v| {
                    serde_json::to_value(v).map_err(|e| {
                        Failure::non_retriable(format!("function output is not serialisable: {e}"))
                    })
                })
            })
            .boxed()
    }
}

/// A function ready to register: config plus code.
#[derive(Clone)]
pub struct FunctionDef {
    /// The configuration.
    pub config: FunctionConfig,
    /// The code.
    pub handler: Arc<dyn Handler>,
}

impl std::fmt::Debug for FunctionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionDef")
            .field("config", &self.config)
            .finish()
    }
}

impl FunctionDef {
    /// A function from a config and a handler object.
    pub fn new(config: FunctionConfig, handler: Arc<dyn Handler>) -> Self {
        FunctionDef { config, handler }
    }
}

/// Builds a [`FunctionDef`]:
///
/// ```
/// use learnflow_engine::{Ctx, Function};
/// let f = Function::new("process-document")
///     .on_event("document.uploaded")
///     .retries(3)
///     .concurrency(5, Some("event.data.userId"))
///     .idempotency("event.data.documentId")
///     .handler(|ctx: Ctx| async move {
///         let text = ctx.run("extract", || async { Ok("…".to_string()) }).await?;
///         Ok(text.len())
///     });
/// ```
#[derive(Clone, Debug)]
pub struct Function {
    config: FunctionConfig,
}

impl Function {
    /// Starts a function with this id.
    pub fn new(id: impl Into<String>) -> Self {
        Function {
            config: FunctionConfig::new(id),
        }
    }

    /// Starts from a full config.
    pub fn from_config(config: FunctionConfig) -> Self {
        Function { config }
    }

    /// Display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = Some(name.into());
        self
    }

    /// Triggered by every event with this name.
    pub fn on_event(mut self, event: impl Into<String>) -> Self {
        self.config.triggers.push(Trigger {
            event: event.into(),
            if_expr: None,
        });
        self
    }

    /// Started on a cron schedule (`"0 * * * *"`, `"TZ=Europe/Paris 0 9 * * 1-5"`).
    pub fn on_cron(mut self, schedule: impl Into<String>) -> Self {
        self.config.cron.push(schedule.into());
        self
    }

    /// Triggered by events with this name for which `if_expr` holds.
    pub fn on_event_if(mut self, event: impl Into<String>, if_expr: impl Into<String>) -> Self {
        self.config.triggers.push(Trigger {
            event: event.into(),
            if_expr: Some(if_expr.into()),
        });
        self
    }

    /// Retries per step.
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.retries = retries;
        self
    }

    /// Backoff schedule.
    pub fn backoff(mut self, policy: RetryPolicy) -> Self {
        self.config.backoff = policy;
        self
    }

    /// Adds a concurrency limit.
    pub fn concurrency(mut self, limit: u32, key: Option<&str>) -> Self {
        self.config.concurrency.push(ConcurrencyLimit {
            limit,
            key: key.map(str::to_string),
            shared: false,
        });
        self
    }

    /// Adds a concurrency limit shared with every function whose shared limit's key
    /// evaluates to the same value.
    pub fn concurrency_shared(mut self, limit: u32, key: impl Into<String>) -> Self {
        self.config.concurrency.push(ConcurrencyLimit {
            limit,
            key: Some(key.into()),
            shared: true,
        });
        self
    }

    /// Sets the throttle.
    pub fn throttle(mut self, limit: u32, period: Duration, burst: u32, key: Option<&str>) -> Self {
        self.config.throttle = Some(Throttle {
            limit,
            period,
            burst,
            key: key.map(str::to_string),
        });
        self
    }

    /// Sets the rate limit: at most `limit` runs per `period` (per `key` value); the
    /// rest are skipped.
    pub fn rate_limit(mut self, limit: u32, period: Duration, key: Option<&str>) -> Self {
        self.config.rate_limit = Some(RateLimit {
            limit,
            period,
            key: key.map(str::to_string),
        });
        self
    }

    /// Debounces runs: one starts after `period` without another event (per `key`
    /// value), with the last event; at the latest `timeout` after the first.
    pub fn debounce(mut self, period: Duration, key: Option<&str>, timeout: Option<Duration>) -> Self {
        self.config.debounce = Some(Debounce {
            period,
            key: key.map(str::to_string),
            timeout,
        });
        self
    }

    /// Gathers events into runs of up to `max_size`, started at the latest `timeout`
    /// after the first (per `key` value).
    pub fn batch(mut self, max_size: u32, timeout: Duration, key: Option<&str>) -> Self {
        self.config.batch = Some(Batch {
            max_size,
            timeout,
            key: key.map(str::to_string),
        });
        self
    }

    /// Makes the function a singleton (per `key` value).
    pub fn singleton(mut self, key: Option<&str>, mode: SingletonMode) -> Self {
        self.config.singleton = Some(Singleton {
            key: key.map(str::to_string),
            mode,
        });
        self
    }

    /// Cancels runs when `event` arrives and `if_expr` matches.
    pub fn cancel_on(mut self, event: impl Into<String>, if_expr: Option<&str>) -> Self {
        self.config.cancel_on.push(CancelOn {
            event: event.into(),
            if_expr: if_expr.map(str::to_string),
            timeout: None,
        });
        self
    }

    /// Like [`Function::cancel_on`], for events arriving within `timeout` of the run's
    /// creation only.
    pub fn cancel_on_within(
        mut self,
        event: impl Into<String>,
        if_expr: Option<&str>,
        timeout: Duration,
    ) -> Self {
        self.config.cancel_on.push(CancelOn {
            event: event.into(),
            if_expr: if_expr.map(str::to_string),
            timeout: Some(timeout),
        });
        self
    }

    /// Sets the timeouts.
    pub fn timeouts(mut self, start: Option<Duration>, finish: Option<Duration>) -> Self {
        self.config.timeouts = Timeouts { start, finish };
        self
    }

    /// Sets the idempotency key expression.
    pub fn idempotency(mut self, key: impl Into<String>) -> Self {
        self.config.idempotency = Some(key.into());
        self
    }

    /// Sets the priority expression (seconds a run moves ahead, −600…600).
    pub fn priority(mut self, expr: impl Into<String>) -> Self {
        self.config.priority = Some(expr.into());
        self
    }

    /// Attaches the code.
    pub fn handler<F, Fut, T>(self, f: F) -> FunctionDef
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, Failure>> + Send + 'static,
        T: Serialize + 'static,
    {
        FunctionDef {
            config: self.config,
            handler: Arc::new(HandlerFn(f)),
        }
    }
}

/// A registered function: config checked and expressions parsed.
pub(crate) struct CompiledFunction {
    pub config: FunctionConfig,
    pub handler: Arc<dyn Handler>,
    pub triggers: Vec<(String, Option<Expr>)>,
    pub concurrency: Vec<(u32, Option<Expr>, bool)>,
    pub throttle: Option<(Throttle, Option<Expr>)>,
    pub rate_limit: Option<(RateLimit, Option<Expr>)>,
    pub debounce: Option<(Debounce, Option<Expr>)>,
    pub singleton: Option<(SingletonMode, Option<Expr>)>,
    pub batch: Option<(Batch, Option<Expr>)>,
    pub cancel_on: Vec<(String, Option<Expr>)>,
    pub idempotency: Option<Expr>,
    pub priority: Option<Expr>,
    pub crons: Vec<CronSchedule>,
}

/// A parsed cron schedule.
pub(crate) struct CronSchedule {
    /// As written.
    pub source: String,
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl CronSchedule {
    /// Parses `"[TZ=Zone ]fields"`.
    pub fn parse(source: &str) -> Result<Self, String> {
        let text = source.trim();
        let (tz, fields) = match text.strip_prefix("TZ=").or_else(|| text.strip_prefix("CRON_TZ=")) {
            Some(rest) => {
                let (zone, fields) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| format!("cron '{source}': no schedule after the time zone"))?;
                let tz: chrono_tz::Tz = zone
                    .parse()
                    .map_err(|_| format!("cron '{source}': unknown time zone '{zone}'"))?;
                (tz, fields.trim())
            }
            None => (chrono_tz::Tz::UTC, text),
        };
        let cron: croner::Cron = fields.parse().map_err(|e| format!("cron '{source}': {e}"))?;
        Ok(CronSchedule {
            source: source.to_string(),
            cron,
            tz,
        })
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: crate::time::Timestamp) -> Option<crate::time::Timestamp> {
        use chrono::TimeZone;
        let at = chrono::Utc.timestamp_millis_opt(t.millis()).single()?;
        let next = self
            .cron
            .find_next_occurrence(&at.with_timezone(&self.tz), false)
            .ok()?;
        Some(crate::time::Timestamp::from_millis(next.timestamp_millis()))
    }
}

/// The furthest a priority moves a run, in seconds.
pub const MAX_PRIORITY_SECS: i64 = 600;

fn parse_field(id: &str, field: &str, src: &str, roots: &[&str]) -> Result<Expr, EngineError> {
    Expr::parse(src, roots).map_err(|source| EngineError::InvalidExpression {
        function: id.to_string(),
        field: field.to_string(),
        source,
    })
}

fn invalid(id: &str, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidFunction {
        id: id.to_string(),
        reason: reason.into(),
    }
}

/// Whether trigger `pattern` (a name, or a prefix ending in `*`) covers `name`.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn check_event_name(id: &str, what: &str, name: &str) -> Result<(), EngineError> {
    if name.trim().is_empty() {
        return Err(invalid(id, format!("{what} event name must not be empty")));
    }
    if name.len() > MAX_EVENT_NAME_LEN {
        return Err(invalid(
            id,
            format!("{what} event name is longer than {MAX_EVENT_NAME_LEN} bytes"),
        ));
    }
    Ok(())
}

impl CompiledFunction {
    /// Checks a definition and parses its expressions; the error names the field and
    /// the column of the problem.
    pub fn compile(def: FunctionDef) -> Result<Self, EngineError> {
        let c = &def.config;
        let id = c.id.as_str();
        if id.trim().is_empty() {
            return Err(invalid(id, "function id must not be empty"));
        }
        if id.len() > MAX_FUNCTION_ID_LEN
            || !id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.:/".contains(ch))
        {
            return Err(invalid(
                id,
                format!(
                    "function id must be 1-{MAX_FUNCTION_ID_LEN} characters of letters, digits and - _ . : /"
                ),
            ));
        }
        if c.retries > MAX_RETRIES {
            return Err(invalid(
                id,
                format!("retries is {}; the most is {MAX_RETRIES}", c.retries),
            ));
        }
        if c.backoff.factor.is_nan() || c.backoff.factor < 1.0 {
            return Err(invalid(id, "backoff factor must be at least 1"));
        }
        let mut triggers = Vec::new();
        for (i, t) in c.triggers.iter().enumerate() {
            check_event_name(id, "trigger", &t.event)?;
            if t.event.trim() == "*" || t.event.trim_end_matches('*').contains('*') {
                return Err(invalid(
                    id,
                    format!(
                        "trigger '{}': '*' may only end a name that has a prefix before it",
                        t.event
                    ),
                ));
            }
            let expr = match &t.if_expr {
                Some(src) => Some(parse_field(id, &format!("triggers[{i}].if"), src, &["event"])?),
                None => None,
            };
            triggers.push((t.event.trim().to_string(), expr));
        }
        let mut concurrency = Vec::new();
        for (i, lim) in c.concurrency.iter().enumerate() {
            if lim.limit == 0 {
                return Err(invalid(id, format!("concurrency[{i}].limit must be at least 1")));
            }
            let expr = match &lim.key {
                Some(src) => Some(parse_field(
                    id,
                    &format!("concurrency[{i}].key"),
                    src,
                    &["event"],
                )?),
                None => None,
            };
            if lim.shared && expr.is_none() {
                return Err(invalid(
                    id,
                    format!("concurrency[{i}]: a shared limit needs a key"),
                ));
            }
            concurrency.push((lim.limit, expr, lim.shared));
        }
        let throttle = match &c.throttle {
            Some(t) => {
                if t.limit == 0 || t.burst == 0 {
                    return Err(invalid(id, "throttle limit and burst must be at least 1"));
                }
                if t.period.is_zero() {
                    return Err(invalid(id, "throttle period must be longer than zero"));
                }
                let key = match &t.key {
                    Some(src) => Some(parse_field(id, "throttle.key", src, &["event"])?),
                    None => None,
                };
                Some((t.clone(), key))
            }
            None => None,
        };
        let rate_limit = match &c.rate_limit {
            Some(r) => {
                if r.limit == 0 {
                    return Err(invalid(id, "rate_limit limit must be at least 1"));
                }
                if r.period.is_zero() {
                    return Err(invalid(id, "rate_limit period must be longer than zero"));
                }
                let key = match &r.key {
                    Some(src) => Some(parse_field(id, "rate_limit.key", src, &["event"])?),
                    None => None,
                };
                Some((r.clone(), key))
            }
            None => None,
        };
        let debounce = match &c.debounce {
            Some(d) => {
                if d.period.is_zero() {
                    return Err(invalid(id, "debounce period must be longer than zero"));
                }
                if d.timeout.is_some_and(|t| t < d.period) {
                    return Err(invalid(
                        id,
                        "debounce timeout must not be shorter than its period",
                    ));
                }
                let key = match &d.key {
                    Some(src) => Some(parse_field(id, "debounce.key", src, &["event"])?),
                    None => None,
                };
                Some((d.clone(), key))
            }
            None => None,
        };
        let mut cancel_on = Vec::new();
        for (i, co) in c.cancel_on.iter().enumerate() {
            check_event_name(id, "cancel_on", &co.event)?;
            let expr = match &co.if_expr {
                Some(src) => Some(parse_field(
                    id,
                    &format!("cancel_on[{i}].if"),
                    src,
                    &["event", "async"],
                )?),
                None => None,
            };
            cancel_on.push((co.event.trim().to_string(), expr));
        }
        let idempotency = match &c.idempotency {
            Some(src) => Some(parse_field(id, "idempotency", src, &["event"])?),
            None => None,
        };
        let singleton = match &c.singleton {
            Some(s) => {
                let key = match &s.key {
                    Some(src) => Some(parse_field(id, "singleton.key", src, &["event"])?),
                    None => None,
                };
                Some((s.mode, key))
            }
            None => None,
        };
        let batch = match &c.batch {
            Some(b) => {
                if b.max_size == 0 {
                    return Err(invalid(id, "batch max_size must be at least 1"));
                }
                if b.timeout.is_zero() {
                    return Err(invalid(id, "batch timeout must be longer than zero"));
                }
                let key = match &b.key {
                    Some(src) => Some(parse_field(id, "batch.key", src, &["event"])?),
                    None => None,
                };
                Some((b.clone(), key))
            }
            None => None,
        };
        let mut crons = Vec::new();
        for (i, src) in c.cron.iter().enumerate() {
            crons.push(CronSchedule::parse(src).map_err(|e| invalid(id, format!("cron[{i}]: {e}")))?);
        }
        let priority = match &c.priority {
            Some(src) => Some(parse_field(id, "priority", src, &["event"])?),
            None => None,
        };
        Ok(CompiledFunction {
            config: def.config.clone(),
            handler: def.handler,
            triggers,
            concurrency,
            throttle,
            rate_limit,
            debounce,
            singleton,
            batch,
            cancel_on,
            idempotency,
            priority,
            crons,
        })
    }

    /// The seconds a run for this event moves ahead (its priority), −600…600.
    pub fn priority_secs(&self, event_value: &Value) -> i64 {
        let Some(expr) = &self.priority else { return 0 };
        let scope = crate::expr::Scope::new().with("event", event_value);
        match expr.eval(&scope).as_f64() {
            Some(secs) if secs.is_finite() => {
                (secs.round() as i64).clamp(-MAX_PRIORITY_SECS, MAX_PRIORITY_SECS)
            }
            _ => 0,
        }
    }

    /// A run's place among waiters for concurrency slots: 0 without a priority, else
    /// its creation time minus its priority (so it goes ahead of runs created up to
    /// that many seconds after it).
    pub fn slot_score(&self, created_at: crate::time::Timestamp, event: &Event) -> i64 {
        if self.priority.is_none() {
            return 0;
        }
        created_at
            .millis()
            .saturating_sub(self.priority_secs(&event.to_expr_value()).saturating_mul(1000))
    }

    /// Whether `event` starts this function.
    pub fn is_triggered_by(&self, event: &Event, event_value: &Value) -> bool {
        self.triggers.iter().any(|(name, cond)| {
            name_matches(name, &event.name)
                && cond
                    .as_ref()
                    .is_none_or(|e| e.matches(&Scope::new().with("event", event_value)))
        })
    }
}

#[cfg(test)]
mod cron_tests {
    use super::CronSchedule;
    use crate::time::Timestamp;

    #[test]
    fn cron_schedules_tick_in_their_time_zone() {
        // 2027-01-15T08:00:00Z, a Friday.
        let t0 = Timestamp::from_millis(1_800_000_000_000);
        let utc = CronSchedule::parse("0 9 * * *").unwrap();
        assert_eq!(
            utc.next_after(t0).unwrap().to_rfc3339(),
            "2027-01-15T09:00:00.000Z"
        );
        // 09:00 in Paris is 08:00 UTC in January: strictly after t0, so the next day.
        let paris = CronSchedule::parse("TZ=Europe/Paris 0 9 * * *").unwrap();
        assert_eq!(
            paris.next_after(t0).unwrap().to_rfc3339(),
            "2027-01-16T08:00:00.000Z"
        );
        let seconds = CronSchedule::parse("*/2 * * * * *").unwrap();
        assert_eq!(
            seconds.next_after(t0).unwrap().to_rfc3339(),
            "2027-01-15T08:00:02.000Z"
        );
        assert!(CronSchedule::parse("TZ=Mars/Olympus 0 9 * * *")
            .err()
            .unwrap()
            .contains("time zone"));
        assert!(CronSchedule::parse("61 * * * *").is_err());
        assert!(CronSchedule::parse("TZ=UTC").is_err());
    }
}
