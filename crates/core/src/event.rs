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

/// Parses one event from JSON text. Equivalent to `serde_json::from_str::<Value>`, except that
/// integers too large for 64 bits become strings of their exact digits (see
/// [`keep_big_integers`]), and objects start with room for a typical event's keys, which spares
/// the map the first rounds of regrowth on every event of a backfill.
pub fn parse_event(text: &str) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let text = exact_text(text);
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let value = SizedValue.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Checks that [`parse_event`] would accept `text`, without building anything: the same
/// parser walks the same text with the same nesting limit and string checks (a lone surrogate
/// such as `"\ud800"` fails here as there), but keeps no value. Ingestion runs it on every event,
/// where building the value would only be thrown away.
pub fn check_event_syntax(text: &str) -> Result<(), serde_json::Error> {
    use serde::de::DeserializeSeed;
    let text = exact_text(text);
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    Walk.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// A visitor that accepts any JSON value and keeps none of it (see [`check_event_syntax`]).
/// Keys and strings are still decoded by the parser, which is what checks their escapes.
struct Walk;

impl<'de> serde::de::DeserializeSeed<'de> for Walk {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(Walk)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Walk)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Walk)?.is_some() {
            map.next_value_seed(Walk)?;
        }
        Ok(())
    }
}

/// The text every reader of an event parses: as it is, or with integers beyond 64 bits rewritten
/// as strings of their exact digits ([`keep_big_integers`]) when it might hold one.
pub(crate) fn exact_text(text: &str) -> std::borrow::Cow<'_, str> {
    if has_long_digit_run(text) {
        std::borrow::Cow::Owned(keep_big_integers(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Whether the text holds 19 or more digits in a row: the shortest integer that may not fit 64
/// bits. Almost no event does, so the exact-digits rewrite below runs only when one might.
pub(crate) fn has_long_digit_run(text: &str) -> bool {
    let mut run = 0;
    for byte in text.bytes() {
        if byte.is_ascii_digit() {
            run += 1;
            if run >= 19 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Rewrites integer literals that fit neither `i64` nor `u64` into JSON strings of their digits.
/// serde_json would read them as floats and drop digits (`12345678901234567890123` becomes
/// `1.2345678901234568e22`); such numbers are almost always identifiers (user ids, order ids),
/// and two users whose ids round to the same float would merge. Text that is not valid JSON is
/// left for the parser to report.
pub fn keep_big_integers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let (mut copied, mut at) = (0, 0);
    let mut in_string = false;
    while at < bytes.len() {
        let byte = bytes[at];
        if in_string {
            match byte {
                b'\\' => at += 1,
                b'"' => in_string = false,
                _ => {}
            }
            at += 1;
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = at;
                at += 1;
                while at < bytes.len() && bytes[at].is_ascii_digit() {
                    at += 1;
                }
                let is_float = at < bytes.len() && matches!(bytes[at], b'.' | b'e' | b'E');
                let literal = &text[start..at];
                let fits = literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok();
                let digits = literal.strip_prefix('-').unwrap_or(literal);
                let is_integer = !digits.is_empty() && (digits == "0" || !digits.starts_with('0'));
                if !is_float && !fits && is_integer {
                    out.push_str(&text[copied..start]);
                    out.push('"');
                    out.push_str(literal);
                    out.push('"');
                    copied = at;
                }
                // A float's fraction and exponent hold no quotes; skipping them whole is enough.
                while at < bytes.len()
                    && matches!(bytes[at], b'.' | b'e' | b'E' | b'+' | b'-' | b'0'..=b'9')
                {
                    at += 1;
                }
            }
            _ => at += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
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
    fn integers_beyond_64_bits_keep_every_digit_as_text() {
        let check = |text: &str, expected: serde_json::Value| {
            assert_eq!(super::parse_event(text).unwrap(), expected, "{text}");
        };
        check(
            r#"{"user_id": 12345678901234567890123, "n": 18446744073709551615}"#,
            json!({"user_id": "12345678901234567890123", "n": 18446744073709551615_u64}),
        );
        check(
            r#"{"a": [-99999999999999999999, 1.5e300, 12345678901234567890.5]}"#,
            json!({"a": ["-99999999999999999999", 1.5e300, 12345678901234567890.5]}),
        );
        // Digits inside strings, escaped quotes included, are never touched.
        check(
            r#"{"s": "\"12345678901234567890123", "t": 1}"#,
            json!({"s": "\"12345678901234567890123", "t": 1}),
        );
        let user = super::parse_event(r#"{"user_id": 98765432109876543210987}"#).unwrap();
        assert_eq!(
            Event::from_value(user).unwrap().user_key().as_deref(),
            Some("98765432109876543210987")
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
