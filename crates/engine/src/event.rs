//! Events: what triggers functions, resumes waits and cancels runs.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::EngineError;
use crate::ids::new_ulid;
use crate::time::Timestamp;

/// Largest accepted event, as serialised JSON (`name`, `data`, `user` together).
pub const MAX_EVENT_BYTES: usize = 512 * 1024;
/// Longest accepted event name.
pub const MAX_EVENT_NAME_LEN: usize = 256;
/// Longest accepted event id.
pub const MAX_EVENT_ID_LEN: usize = 256;
/// An event whose `id` was already seen within this window starts nothing new.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// The name of the event an invoked function receives.
pub const INVOKED_EVENT: &str = "learnflow/function.invoked";
/// The name of the event a cron schedule starts a run with; its data is
/// `{cron, scheduledAt, fireAt}`.
pub const CRON_EVENT: &str = "learnflow/scheduled.timer";

/// An event as a caller sends it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventInput {
    /// Event name, such as `document.uploaded`.
    pub name: String,
    /// Payload: must be a JSON object.
    #[serde(default = "empty_object")]
    pub data: Value,
    /// Idempotency id: a second event with the same id within 24 h starts nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the event happened (defaults to the time it is received).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<Timestamp>,
    /// Who sent it (any JSON object; defaults to `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Value>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl EventInput {
    /// An event with a name and data, no id.
    pub fn new(name: impl Into<String>, data: Value) -> Self {
        EventInput {
            name: name.into(),
            data,
            ..Default::default()
        }
    }

    /// Sets the idempotency id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Checks the event and gives it an id and a time.
    pub fn into_event(self, now: Timestamp) -> Result<Event, EngineError> {
        let name = self.name.trim().to_string();
        if name.is_empty() {
            return Err(EngineError::InvalidEvent("event name must not be empty".into()));
        }
        if name.len() > MAX_EVENT_NAME_LEN {
            return Err(EngineError::InvalidEvent(format!(
                "event name is {} bytes long; the limit is {MAX_EVENT_NAME_LEN}",
                name.len()
            )));
        }
        // `null` data is no data, like data left out.
        let data = if self.data.is_null() {
            empty_object()
        } else {
            self.data
        };
        if !data.is_object() {
            return Err(EngineError::InvalidEvent(format!(
                "event '{name}': data must be a JSON object, got {}",
                json_type(&data)
            )));
        }
        let user = self.user.unwrap_or_else(empty_object);
        if !user.is_object() {
            return Err(EngineError::InvalidEvent(format!(
                "event '{name}': user must be a JSON object, got {}",
                json_type(&user)
            )));
        }
        let id = match self.id {
            Some(id) if id.trim().is_empty() => {
                return Err(EngineError::InvalidEvent(format!(
                    "event '{name}': id must not be empty when given"
                )))
            }
            Some(id) if id.len() > MAX_EVENT_ID_LEN => {
                return Err(EngineError::InvalidEvent(format!(
                    "event '{name}': id is {} bytes long; the limit is {MAX_EVENT_ID_LEN}",
                    id.len()
                )))
            }
            Some(id) => id,
            None => new_ulid(),
        };
        let size = name.len() + json_len(&data) + json_len(&user);
        if size > MAX_EVENT_BYTES {
            return Err(EngineError::EventTooLarge {
                name,
                size,
                limit: MAX_EVENT_BYTES,
            });
        }
        Ok(Event {
            id,
            name,
            data,
            user,
            ts: self.ts.unwrap_or(now),
        })
    }
}

/// A received event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The event's id (the caller's idempotency id, or a generated ULID).
    pub id: String,
    /// Event name.
    pub name: String,
    /// Payload (a JSON object).
    pub data: Value,
    /// Sender information (a JSON object).
    pub user: Value,
    /// When it happened.
    pub ts: Timestamp,
}

impl Event {
    /// The user the event was sent for (`user.id`, when a string): runs it starts
    /// belong to that user.
    pub fn owner(&self) -> Option<&str> {
        self.user
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The event as the JSON value expressions see as `event` or `async`
    /// (`ts` as milliseconds so it compares as a number).
    pub fn to_expr_value(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "data": self.data,
            "user": self.user,
            "ts": self.ts.millis(),
        })
    }
}

/// The JSON type name of a value, for error messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_events_with_the_reason() {
        let now = Timestamp::from_millis(5);
        let err = EventInput::new("", json!({})).into_event(now).unwrap_err();
        assert!(err.to_string().contains("name must not be empty"), "{err}");
        let err = EventInput::new("a", json!([1])).into_event(now).unwrap_err();
        assert!(
            err.to_string()
                .contains("data must be a JSON object, got an array"),
            "{err}"
        );
        let big = "x".repeat(MAX_EVENT_BYTES);
        let err = EventInput::new("a", json!({ "s": big }))
            .into_event(now)
            .unwrap_err();
        assert!(matches!(err, EngineError::EventTooLarge { .. }), "{err}");
        let err = EventInput::new("a", json!({}))
            .with_id(" ")
            .into_event(now)
            .unwrap_err();
        assert!(err.to_string().contains("id must not be empty"), "{err}");
    }

    #[test]
    fn fills_in_id_and_time() {
        let e = EventInput::new(" a.b ", json!({"x": 1}))
            .into_event(Timestamp::from_millis(7))
            .unwrap();
        assert_eq!(e.name, "a.b");
        assert_eq!(e.ts, Timestamp::from_millis(7));
        assert_eq!(e.id.len(), 26);
        assert_eq!(e.to_expr_value()["data"]["x"], 1);
    }

    #[test]
    fn null_data_is_no_data_and_other_non_objects_are_refused() {
        let now = Timestamp::from_millis(1);
        let e = EventInput::new("x", Value::Null).into_event(now).unwrap();
        assert_eq!(e.data, json!({}));
        let err = EventInput::new("x", json!(3)).into_event(now).unwrap_err();
        assert!(err.to_string().contains("data must be a JSON object"), "{err}");
    }
}
