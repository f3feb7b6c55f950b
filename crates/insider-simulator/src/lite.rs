//! A borrowed, allocation-light JSON value, the form in which request bodies are validated.
//!
//! Parsing a 1,000-user body into `serde_json::Value` costs several milliseconds, most of it in
//! allocating strings and hashing object keys. [`Lite`] borrows unescaped strings from the body and
//! keeps objects as small vectors, which makes parsing a few times faster; a user becomes a
//! `serde_json::Value` only when it is recorded.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// A JSON number as the parser saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A JSON value borrowing its strings from the parsed text where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Lite<'a> {
    Null,
    Bool(bool),
    Number(Num),
    String(Cow<'a, str>),
    Array(Vec<Lite<'a>>),
    /// Members in document order; a repeated key is found at its last occurrence, as
    /// `serde_json::Value` keeps the last one.
    Object(Vec<(Cow<'a, str>, Lite<'a>)>),
}

impl<'a> Lite<'a> {
    pub fn parse(text: &'a [u8]) -> Result<Lite<'a>, serde_json::Error> {
        serde_json::from_slice(text)
    }

    pub fn get(&self, key: &str) -> Option<&Lite<'a>> {
        match self {
            Lite::Object(members) => members
                .iter()
                .rev()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Lite::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Lite<'a>]> {
        match self {
            Lite::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(Cow<'a, str>, Lite<'a>)]> {
        match self {
            Lite::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Lite::String(_))
    }

    pub fn is_boolean(&self) -> bool {
        matches!(self, Lite::Bool(_))
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Lite::Number(_))
    }

    pub fn is_integer(&self) -> bool {
        matches!(self, Lite::Number(Num::U64(_) | Num::I64(_)))
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Lite::Object(_))
    }

    /// The same data as a `serde_json::Value`, for recording.
    pub fn to_value(&self) -> Value {
        match self {
            Lite::Null => Value::Null,
            Lite::Bool(b) => Value::Bool(*b),
            Lite::Number(Num::U64(n)) => Value::from(*n),
            Lite::Number(Num::I64(n)) => Value::from(*n),
            Lite::Number(Num::F64(n)) => Value::from(*n),
            Lite::String(s) => Value::String(s.to_string()),
            Lite::Array(items) => Value::Array(items.iter().map(Lite::to_value).collect()),
            Lite::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for Lite<'_> {
    /// Compact JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl Serialize for Lite<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Lite::Null => serializer.serialize_unit(),
            Lite::Bool(b) => serializer.serialize_bool(*b),
            Lite::Number(Num::U64(n)) => serializer.serialize_u64(*n),
            Lite::Number(Num::I64(n)) => serializer.serialize_i64(*n),
            Lite::Number(Num::F64(n)) => serializer.serialize_f64(*n),
            Lite::String(s) => serializer.serialize_str(s),
            Lite::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Lite::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Lite<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LiteVisitor)
    }
}

/// A string that borrows from the input when the parser allows it.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct LiteVisitor;

impl<'de> Visitor<'de> for LiteVisitor {
    type Value = Lite<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Lite<'de>, E> {
        Ok(Lite::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Lite<'de>, E> {
        Ok(Lite::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Lite<'de>, E> {
        Ok(Lite::Number(Num::U64(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Lite<'de>, E> {
        Ok(Lite::Number(Num::I64(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Lite<'de>, E> {
        Ok(Lite::Number(Num::F64(v)))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Lite<'de>, E> {
        Ok(Lite::String(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Lite<'de>, E> {
        Ok(Lite::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Lite<'de>, E> {
        Ok(Lite::String(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lite<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Lite::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lite<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((Key(key), value)) = map.next_entry::<Key<'de>, Lite<'de>>()? {
            members.push((key, value));
        }
        Ok(Lite::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_value() {
        let cases = [
            r#"{"a":1,"b":-2,"c":1.5,"d":"x\"y","e":[true,null],"f":{}}"#,
            r#"[]"#,
            r#""plain""#,
            r#"{"z":1,"a":2}"#,
        ];
        for text in cases {
            let lite = Lite::parse(text.as_bytes()).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(lite.to_value(), value, "{text}");
            assert_eq!(lite.to_string(), value.to_string(), "{text}");
        }
    }

    #[test]
    fn unescaped_strings_are_borrowed_and_repeated_keys_resolve_to_the_last() {
        let lite = Lite::parse(br#"{"k":"plain","e":"a\nb","k":"last"}"#).unwrap();
        assert!(matches!(lite.get("e"), Some(Lite::String(Cow::Owned(_)))));
        assert!(matches!(
            lite.get("k"),
            Some(Lite::String(Cow::Borrowed("last")))
        ));
        assert!(lite.get("missing").is_none());
    }

    #[test]
    fn integers_and_floats_stay_apart() {
        let cases = [("1", true), ("-1", true), ("1.0", false), ("1e3", false)];
        for (text, integer) in cases {
            let lite = Lite::parse(text.as_bytes()).unwrap();
            assert_eq!(lite.is_integer(), integer, "{text}");
            assert!(lite.is_number());
        }
    }
}
