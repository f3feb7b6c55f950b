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

    /// The event name as messages quote it: JSON text, or `(none)`.
    pub fn quoted_name(&self) -> String {
        self.field("event_name")
            .map_or("(none)".to_owned(), Value::to_string)
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

/// Parses one event from JSON text. Equivalent to `serde_json::from_str::<Value>` followed by
/// [`Event::from_value`], but objects start with room for a typical event's keys, which spares
/// the map the first rounds of regrowth on every event of a backfill.
pub fn parse_event(text: &str) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = SizedValue.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A `Value` deserializer that pre-sizes objects.
struct SizedValue;

impl<'de> serde::de::DeserializeSeed<'de> for SizedValue {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(SizedValue)
    }
}

impl<'de> serde::de::Visitor<'de> for SizedValue {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(SizedValue)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element_seed(SizedValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::with_capacity(8);
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(SizedValue)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
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
