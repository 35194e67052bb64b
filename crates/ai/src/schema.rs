//! JSON Schema validation of model outputs.

use serde_json::Value;

/// A compiled JSON Schema.
pub struct Validator {
    inner: jsonschema::Validator,
    /// The schema itself.
    pub schema: Value,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("schema", &self.schema).finish()
    }
}

impl Validator {
    /// Compiles a schema; the error says what is wrong with it.
    pub fn new(schema: &Value) -> Result<Self, String> {
        let inner = jsonschema::validator_for(schema).map_err(|e| format!("invalid JSON Schema: {e}"))?;
        Ok(Validator {
            inner,
            schema: schema.clone(),
        })
    }

    /// Compiles a schema given as JSON text.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let schema: Value = serde_json::from_str(text).map_err(|e| format!("schema is not JSON: {e}"))?;
        Self::new(&schema)
    }

    /// Checks an instance; the error lists up to five problems with their paths.
    pub fn validate(&self, instance: &Value) -> Result<(), String> {
        let errors: Vec<String> = self
            .inner
            .iter_errors(instance)
            .take(5)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("at {path}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// Finds the JSON object in a model's answer: the whole text, or the body of a
/// ```json fence, or the outermost `{…}` span.
pub fn extract_json(text: &str) -> Result<Value, String> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return Ok(v);
    }
    if let Some(start) = t.find("```") {
        let after = &t[start + 3..];
        let after = after.strip_prefix("json").unwrap_or(after);
        if let Some(end) = after.find("```") {
            if let Ok(v) = serde_json::from_str::<Value>(after[..end].trim()) {
                return Ok(v);
            }
        }
    }
    if let (Some(a), Some(b)) = (t.find('{'), t.rfind('}')) {
        if a < b {
            if let Ok(v) = serde_json::from_str::<Value>(&t[a..=b]) {
                return Ok(v);
            }
        }
    }
    let preview: String = t.chars().take(120).collect();
    Err(format!("the answer is not a JSON object: {preview:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_with_paths() {
        let v = Validator::new(&json!({
            "type": "object", "required": ["items"], "additionalProperties": false,
            "properties": { "items": { "type": "array", "minItems": 1, "items": { "type": "string" } } }
        }))
        .unwrap();
        assert!(v.validate(&json!({ "items": ["a"] })).is_ok());
        let err = v.validate(&json!({ "items": [1] })).unwrap_err();
        assert!(err.contains("/items/0"), "{err}");
        assert!(v.validate(&json!({ "items": [], "extra": 1 })).is_err());
        assert!(Validator::new(&json!({ "type": 5 })).is_err());
    }

    #[test]
    fn finds_json_in_model_answers() {
        assert_eq!(extract_json(r#"{"a":1}"#).unwrap(), json!({ "a": 1 }));
        assert_eq!(
            extract_json("Sure!\n```json\n{\"a\":2}\n```").unwrap(),
            json!({ "a": 2 })
        );
        assert_eq!(extract_json("Here: {\"a\":3} done").unwrap(), json!({ "a": 3 }));
        assert!(extract_json("no json here")
            .unwrap_err()
            .contains("not a JSON object"));
    }
}
