//! Function configs as the SDK syncs them, and their mapping onto engine functions.
//! An option the engine cannot honour yet is refused with its name, never ignored.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// The body of `POST /fn/register` (and of an in-band sync answer).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// The app's serve URL.
    pub url: String,
    /// The app's id.
    #[serde(alias = "app_id")]
    pub app_name: String,
    /// Its functions.
    #[serde(default)]
    pub functions: Vec<FunctionConfig>,
    /// `js:v4.24.0`.
    #[serde(default)]
    pub sdk: Option<String>,
    /// `express`, …
    #[serde(default)]
    pub framework: Option<String>,
}

/// One function as the SDK describes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionConfig {
    /// Composite id, `<appId>-<fnId>`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Event (or cron) triggers.
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// The single `step` entry: where to call and the retries.
    #[serde(default)]
    pub steps: std::collections::BTreeMap<String, StepConfig>,
    /// Every other option, checked one by one.
    #[serde(flatten)]
    pub options: serde_json::Map<String, Value>,
}

/// A trigger.
#[derive(Clone, Debug, Deserialize)]
pub struct Trigger {
    /// Event name (may end in `*`).
    #[serde(default)]
    pub event: Option<String>,
    /// CEL filter over `event`.
    #[serde(default)]
    pub expression: Option<String>,
    /// Cron schedule (`TZ=Zone ` prefix allowed).
    #[serde(default)]
    pub cron: Option<String>,
}

/// `steps.step`.
#[derive(Clone, Debug, Deserialize)]
pub struct StepConfig {
    /// `{type: "http", url}`.
    pub runtime: Runtime,
    /// `{attempts}`: despite the name, the number of retries.
    #[serde(default)]
    pub retries: Option<Retries>,
}

/// Where the step runs.
#[derive(Clone, Debug, Deserialize)]
pub struct Runtime {
    /// `http`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The call URL (`…?fnId=<id>&stepId=step`).
    pub url: String,
}

/// Retries of a function.
#[derive(Clone, Debug, Deserialize)]
pub struct Retries {
    /// Retries after the first attempt.
    #[serde(default)]
    pub attempts: Option<u32>,
}

/// Inngest's default when the app sets no `retries`: 4 retries (5 attempts), as its
/// own server does.
pub const DEFAULT_RETRIES: u32 = 4;
/// Inngest's maximum.
pub const MAX_RETRIES: u32 = 20;

/// What the executor needs about a synced function.
#[derive(Clone, Debug)]
pub struct SyncedFunction {
    /// Composite id (the engine function id too).
    pub id: String,
    /// The call URL with `stepId=step`.
    pub url: String,
    /// Retries per step and per function.
    pub retries: u32,
    /// Event names it is triggered by (for the SDK's own event validation).
    pub events: Vec<String>,
    /// It has concurrency limits: its steps must only run inside engine steps (which
    /// hold the slots), never during a discovery call.
    pub limited: bool,
}

/// A duration in Inngest's time-string form (`"1m"`, `"2s"`, `"1h30m"`, `"1w"`).
pub fn parse_time(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("an empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            unit = "ms".into();
        }
        let n: f64 = num.parse().map_err(|_| format!("bad duration '{text}'"))?;
        num.clear();
        let secs = match unit.as_str() {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86_400.0,
            "w" => n * 604_800.0,
            _ => return Err(format!("bad duration '{text}': unknown unit '{unit}'")),
        };
        total += Duration::from_secs_f64(secs);
    }
    if !num.is_empty() {
        return Err(format!("bad duration '{text}': a number without a unit"));
    }
    Ok(total)
}

fn check_expr(what: &str, expr: &str) -> Result<String, String> {
    // The engine's expression language is the part of CEL these filters use (field
    // paths, literals, comparisons, && || !, c ? a : b); anything else is refused at
    // registration.
    learnflow_engine::expr::Expr::parse(expr, &["event", "async"])
        .map(|_| expr.to_string())
        .map_err(|e| format!("{what} '{expr}' is not supported: {e}"))
}

impl FunctionConfig {
    /// The function's settings and its engine definition (without the handler), or
    /// every reason it cannot run on LearnFlow.
    pub fn plan(&self) -> Result<(SyncedFunction, learnflow_engine::Function), Vec<String>> {
        let mut problems = Vec::new();
        let id = &self.id;
        let step = self.steps.get("step").or_else(|| self.steps.values().next());
        let Some(step) = step else {
            return Err(vec![format!("function '{id}' has no step URL")]);
        };
        if step.runtime.kind.as_deref().is_some_and(|k| k != "http") {
            problems.push(format!(
                "function '{id}': runtime '{}' is not supported (only http)",
                step.runtime.kind.as_deref().unwrap_or("")
            ));
        }
        let retries = step
            .retries
            .as_ref()
            .and_then(|r| r.attempts)
            .unwrap_or(DEFAULT_RETRIES)
            .min(MAX_RETRIES);
        let mut f = learnflow_engine::Function::new(id.clone())
            .name(self.name.clone().unwrap_or_else(|| id.clone()))
            .retries(retries);
        let mut events = Vec::new();
        let mut limited = false;
        for t in &self.triggers {
            match (&t.event, &t.cron) {
                (Some(e), _) => {
                    events.push(e.clone());
                    f = match &t.expression {
                        Some(x) => match check_expr("trigger expression", x) {
                            Ok(x) => f.on_event_if(e.clone(), x),
                            Err(p) => {
                                problems.push(format!("function '{id}': {p}"));
                                f
                            }
                        },
                        None => f.on_event(e.clone()),
                    };
                }
                (None, Some(c)) => {
                    // Checked by the engine at registration (a bad one fails the sync).
                    events.push(crate::exec::SDK_CRON_EVENT.to_string());
                    f = f.on_cron(c.clone());
                }
                (None, None) => {
                    problems.push(format!("function '{id}': a trigger with neither event nor cron"))
                }
            }
        }
        for (key, value) in &self.options {
            match key.as_str() {
                "concurrency" => {
                    let list: Vec<Value> = match value {
                        Value::Number(_) => vec![serde_json::json!({ "limit": value })],
                        Value::Object(_) => vec![value.clone()],
                        Value::Array(a) => a.clone(),
                        _ => {
                            problems.push(format!("function '{id}': bad concurrency {value}"));
                            vec![]
                        }
                    };
                    for c in list {
                        let limit = c["limit"].as_u64().unwrap_or(0);
                        // One LearnFlow server is one environment of one account: both
                        // wider scopes share the limit across functions by key value.
                        let shared = match c["scope"].as_str() {
                            None | Some("fn") => false,
                            Some("env" | "account") => true,
                            Some(other) => {
                                problems
                                    .push(format!("function '{id}': unknown concurrency scope '{other}'"));
                                continue;
                            }
                        };
                        if shared && c["key"].as_str().is_none() {
                            problems.push(format!(
                                "function '{id}': a concurrency scope other than fn needs a key"
                            ));
                            continue;
                        }
                        if limit == 0 {
                            continue; // 0 = unlimited in Inngest
                        }
                        let key = c["key"].as_str();
                        if let Some(k) = key {
                            if let Err(p) = check_expr("concurrency key", k) {
                                problems.push(format!("function '{id}': {p}"));
                                continue;
                            }
                        }
                        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
                        f = match (shared, key) {
                            (true, Some(k)) => f.concurrency_shared(limit, k),
                            _ => f.concurrency(limit, key),
                        };
                        limited = true;
                    }
                }
                "throttle" => {
                    let limit = value["limit"].as_u64().unwrap_or(0);
                    match value["period"].as_str().map(parse_time) {
                        Some(Ok(period)) if limit > 0 => {
                            let burst = value["burst"].as_u64().unwrap_or(1).max(1);
                            f = f.throttle(
                                u32::try_from(limit).unwrap_or(u32::MAX),
                                period,
                                u32::try_from(burst).unwrap_or(u32::MAX),
                                value["key"].as_str(),
                            );
                        }
                        _ => problems.push(format!("function '{id}': bad throttle {value}")),
                    }
                }
                "idempotency" => match value.as_str() {
                    Some(k) => match check_expr("idempotency key", k) {
                        Ok(k) => f = f.idempotency(k),
                        Err(p) => problems.push(format!("function '{id}': {p}")),
                    },
                    None => problems.push(format!("function '{id}': bad idempotency {value}")),
                },
                "cancel" => {
                    for c in value.as_array().cloned().unwrap_or_default() {
                        let Some(event) = c["event"].as_str() else {
                            problems.push(format!("function '{id}': a cancel without an event"));
                            continue;
                        };
                        let timeout = match &c["timeout"] {
                            Value::Null => None,
                            Value::String(t) => match parse_time(t) {
                                Ok(t) => Some(t),
                                Err(e) => {
                                    problems.push(format!("function '{id}': cancelOn timeout: {e}"));
                                    continue;
                                }
                            },
                            other => {
                                problems.push(format!("function '{id}': bad cancelOn timeout {other}"));
                                continue;
                            }
                        };
                        let cond = c["if"].as_str();
                        if let Some(x) = cond {
                            if let Err(p) = check_expr("cancel condition", x) {
                                problems.push(format!("function '{id}': {p}"));
                                continue;
                            }
                        }
                        f = match timeout {
                            Some(t) => f.cancel_on_within(event.to_string(), cond, t),
                            None => f.cancel_on(event.to_string(), cond),
                        };
                    }
                }
                "timeouts" => {
                    let get = |k: &str| value[k].as_str().map(parse_time).transpose();
                    match (get("start"), get("finish")) {
                        (Ok(start), Ok(finish)) => f = f.timeouts(start, finish),
                        _ => problems.push(format!("function '{id}': bad timeouts {value}")),
                    }
                }
                "rateLimit" => {
                    let limit = value["limit"].as_u64().unwrap_or(0);
                    let key = value["key"].as_str();
                    if let Some(Err(p)) = key.map(|k| check_expr("rateLimit key", k)) {
                        problems.push(format!("function '{id}': {p}"));
                        continue;
                    }
                    match value["period"].as_str().map(parse_time) {
                        Some(Ok(period)) if limit > 0 && period <= Duration::from_secs(86_400) => {
                            f = f.rate_limit(u32::try_from(limit).unwrap_or(u32::MAX), period, key);
                        }
                        _ => problems.push(format!(
                            "function '{id}': bad rateLimit {value} (limit ≥ 1, period up to 24h)"
                        )),
                    }
                }
                "priority" => match value["run"].as_str() {
                    Some(x) => match check_expr("priority", x) {
                        Ok(x) => f = f.priority(x),
                        Err(p) => problems.push(format!("function '{id}': {p}")),
                    },
                    None if value.is_null() || value.get("run").is_some_and(Value::is_null) => {}
                    None => problems.push(format!("function '{id}': bad priority {value}")),
                },
                "debounce" => {
                    let key = value["key"].as_str();
                    if let Some(Err(p)) = key.map(|k| check_expr("debounce key", k)) {
                        problems.push(format!("function '{id}': {p}"));
                        continue;
                    }
                    let period = value["period"].as_str().map(parse_time);
                    let timeout = value["timeout"].as_str().map(parse_time).transpose();
                    let week = Duration::from_secs(7 * 86_400);
                    match (period, timeout) {
                        (Some(Ok(p)), Ok(t)) if !p.is_zero() && p <= week && t.is_none_or(|t| t >= p) => {
                            f = f.debounce(p, key, t);
                        }
                        _ => problems.push(format!(
                            "function '{id}': bad debounce {value} (period up to 7d, timeout not shorter)"
                        )),
                    }
                }
                "singleton" => {
                    let key = value["key"].as_str();
                    if let Some(Err(p)) = key.map(|k| check_expr("singleton key", k)) {
                        problems.push(format!("function '{id}': {p}"));
                        continue;
                    }
                    let mode = match value["mode"].as_str() {
                        Some("skip") => learnflow_engine::function::SingletonMode::Skip,
                        Some("cancel") => learnflow_engine::function::SingletonMode::Cancel,
                        _ => {
                            problems.push(format!(
                                "function '{id}': bad singleton {value} (mode skip or cancel)"
                            ));
                            continue;
                        }
                    };
                    f = f.singleton(key, mode);
                }
                "batchEvents" => {
                    let size = value["maxSize"].as_u64().unwrap_or(0);
                    let key = value["key"].as_str();
                    if let Some(Err(p)) = key.map(|k| check_expr("batchEvents key", k)) {
                        problems.push(format!("function '{id}': {p}"));
                        continue;
                    }
                    if value.get("if").is_some_and(|v| !v.is_null()) {
                        problems.push(format!("function '{id}': batchEvents 'if' is not supported yet"));
                        continue;
                    }
                    match value["timeout"].as_str().map(parse_time) {
                        Some(Ok(t)) if (1..=10_000).contains(&size) && !t.is_zero() => {
                            f = f.batch(u32::try_from(size).unwrap_or(u32::MAX), t, key);
                        }
                        _ => problems.push(format!(
                            "function '{id}': bad batchEvents {value} (maxSize 1–10000, a timeout)"
                        )),
                    }
                }
                _ => problems.push(format!("function '{id}': unknown option '{key}'")),
            }
        }
        if events.is_empty() && problems.is_empty() {
            problems.push(format!("function '{id}' has no event or cron trigger"));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok((
            SyncedFunction {
                id: id.clone(),
                url: step.runtime.url.clone(),
                retries,
                events,
                limited,
            },
            f,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_strings_parse_as_inngest_writes_them() {
        assert_eq!(parse_time("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_time("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_time("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_time("1w1d").unwrap(), Duration::from_secs(8 * 86_400));
        assert_eq!(parse_time("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_time("").is_err());
        assert!(parse_time("5").is_err());
        assert!(parse_time("5y").is_err());
    }

    fn config(extra: Value) -> FunctionConfig {
        let mut v = serde_json::json!({
            "id": "app-f",
            "name": "f",
            "triggers": [{"event": "t/e"}],
            "steps": {"step": {"id": "step", "name": "step",
                "runtime": {"type": "http", "url": "http://127.0.0.1:1/api/inngest?fnId=app-f&stepId=step"},
                "retries": {"attempts": 1}}}
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn supported_options_map_and_others_are_named() {
        let (f, _) = config(serde_json::json!({
            "concurrency": [{"limit": 2, "key": "event.data.userId"}],
            "throttle": {"limit": 10, "period": "1m"},
            "idempotency": "event.data.id",
            "cancel": [{"event": "t/cancel", "if": "event.data.id == async.data.id"}, {"event": "t/stop", "timeout": "10m"}],
            "timeouts": {"finish": "1h"}
        }))
        .plan()
        .unwrap();
        assert_eq!(f.retries, 1);
        assert_eq!(f.events, vec!["t/e".to_string()]);
        let (_, def) = config(serde_json::json!({"cancel": [{"event": "t/stop", "timeout": "10m"}]}))
            .plan()
            .unwrap();
        let def = def.handler(|_ctx| async { Ok(()) });
        assert_eq!(def.config.cancel_on[0].timeout, Some(Duration::from_secs(600)));
        let (_, def) =
            config(serde_json::json!({"rateLimit": {"limit": 3, "period": "1m", "key": "event.data.u"}}))
                .plan()
                .unwrap();
        let rate = def
            .handler(|_ctx| async { Ok(()) })
            .config
            .rate_limit
            .expect("rateLimit maps to the engine's rate limit");
        assert_eq!((rate.limit, rate.period), (3, Duration::from_secs(60)));
        assert_eq!(rate.key.as_deref(), Some("event.data.u"));
        let (_, def) = config(serde_json::json!({"priority": {"run": "event.data.boost"}}))
            .plan()
            .unwrap();
        let def = def.handler(|_ctx| async { Ok(()) });
        assert_eq!(def.config.priority.as_deref(), Some("event.data.boost"));
        // Inngest's docs write priorities with CEL's conditional.
        let (_, def) = config(serde_json::json!({"priority": {"run": "event.data.plan == 'pro' ? 60 : 0"}}))
            .plan()
            .unwrap();
        assert!(def.handler(|_ctx| async { Ok(()) }).config.priority.is_some());
        let err = config(serde_json::json!({"priority": {"run": "event.data.n * 2"}}))
            .plan()
            .unwrap_err();
        assert!(err[0].contains("priority"), "{err:?}");
        let (_, def) = config(serde_json::json!({"singleton": {"key": "event.data.u", "mode": "cancel"}}))
            .plan()
            .unwrap();
        let s = def
            .handler(|_ctx| async { Ok(()) })
            .config
            .singleton
            .expect("singleton maps");
        assert_eq!(s.mode, learnflow_engine::function::SingletonMode::Cancel);
        let err = config(serde_json::json!({"singleton": {"mode": "queue"}}))
            .plan()
            .unwrap_err();
        assert!(err[0].contains("bad singleton"), "{err:?}");
        let err = config(serde_json::json!({"rateLimit": {"limit": 1, "period": "2d"}}))
            .plan()
            .unwrap_err();
        assert!(err[0].contains("bad rateLimit"), "{err:?}");
        let (_, def) =
            config(serde_json::json!({"debounce": {"period": "5s", "key": "event.data.u", "timeout": "1m"}}))
                .plan()
                .unwrap();
        let d = def
            .handler(|_ctx| async { Ok(()) })
            .config
            .debounce
            .expect("debounce maps");
        assert_eq!(
            (d.period, d.timeout, d.key.as_deref()),
            (
                Duration::from_secs(5),
                Some(Duration::from_secs(60)),
                Some("event.data.u")
            )
        );
        let (_, def) = config(
            serde_json::json!({"batchEvents": {"maxSize": 10, "timeout": "5s", "key": "event.data.u"}}),
        )
        .plan()
        .unwrap();
        let b = def
            .handler(|_ctx| async { Ok(()) })
            .config
            .batch
            .expect("batchEvents maps");
        assert_eq!((b.max_size, b.timeout), (10, Duration::from_secs(5)));
        let err = config(serde_json::json!({
            "batchEvents": {"maxSize": 10, "timeout": "5s", "if": "event.data.x == 1"},
            "debounce": {"period": "5s", "timeout": "1s"}
        }))
        .plan()
        .unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err.iter().any(|e| e.contains("batchEvents 'if'")), "{err:?}");
        assert!(err.iter().any(|e| e.contains("bad debounce")), "{err:?}");
        let err = config(serde_json::json!({"batchEvents": {"maxSize": 0, "timeout": "5s"}}))
            .plan()
            .unwrap_err();
        assert!(err[0].contains("bad batchEvents"), "{err:?}");
        let (_, def) =
            config(serde_json::json!({"concurrency": {"limit": 1, "scope": "account", "key": "\"openai\""}}))
                .plan()
                .unwrap();
        let c = &def.handler(|_ctx| async { Ok(()) }).config.concurrency[0];
        assert!(c.shared && c.key.as_deref() == Some("\"openai\""), "{c:?}");
        let err = config(serde_json::json!({"concurrency": {"limit": 1, "scope": "env"}}))
            .plan()
            .unwrap_err();
        assert!(err[0].contains("needs a key"), "{err:?}");
        let err = config(serde_json::json!({"idempotency": "event.data.id ==="}))
            .plan()
            .unwrap_err();
        assert!(err[0].contains("idempotency key"), "{err:?}");
    }
}
