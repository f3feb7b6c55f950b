//! `Event`: one Hardal event, a JSON object, with path lookup.

use serde_json::{Map, Value};

use crate::path::Path;

/// One event as Hardal holds it (`id`, `event_name`, `created_at`, `user_id`, `user`, `page`,
/// `properties`, …). Any JSON object is an event; which fields exist is the templates' business.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    value: Value,
}

impl Event {
    /// Wraps a JSON value; anything but an object is refused with the JSON type that was found.
    pub fn from_value(value: Value) -> Result<Event, String> {
        match value {
            Value::Object(_) => Ok(Event { value }),
            other => Err(format!(
                "an event must be a JSON object, found {}",
                json_type(&other)
            )),
        }
    }

    pub fn from_map(map: Map<String, Value>) -> Event {
        Event {
            value: Value::Object(map),
        }
    }

    /// The value at `path`; `None` when absent or JSON `null` (both count as missing).
    pub fn get(&self, path: &Path) -> Option<&Value> {
        path.lookup(&self.value)
    }

    /// The value at a top-level key, `None` when absent or `null`.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    pub fn event_name(&self) -> Option<&str> {
        self.field("event_name").and_then(Value::as_str)
    }

    /// The key that orders this event among its user's events: `user_id`, else `user.email`.
    /// Events with neither belong to no user and may be delivered in any order.
    pub fn user_key(&self) -> Option<String> {
        let scalar = |v: &Value| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        self.field("user_id").and_then(scalar).or_else(|| {
            self.field("user")
                .and_then(|u| u.get("email"))
                .and_then(scalar)
        })
    }

    pub fn as_value(&self) -> &Value {
        &self.value
    }

    pub fn into_value(self) -> Value {
        self.value
    }
}

/// The JSON type of a value, as error messages name it.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Event;

    #[test]
    fn only_objects_are_events() {
        assert!(Event::from_value(json!({"event_name": "x"})).is_ok());
        assert_eq!(
            Event::from_value(json!([1])).unwrap_err(),
            "an event must be a JSON object, found an array"
        );
    }

    #[test]
    fn user_key_prefers_user_id_then_email() {
        let key = |v| Event::from_value(v).unwrap().user_key();
        assert_eq!(
            key(json!({"user_id": "u1", "user": {"email": "a@b.co"}})),
            Some("u1".into())
        );
        assert_eq!(key(json!({"user_id": 7})), Some("7".into()));
        assert_eq!(
            key(json!({"user_id": null, "user": {"email": "a@b.co"}})),
            Some("a@b.co".into())
        );
        assert_eq!(key(json!({"user": {}})), None);
    }
}
