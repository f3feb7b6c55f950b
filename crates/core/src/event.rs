//! `Event`: one Hardal event, a JSON object, with path lookup.
//!
//! An event keeps its text and a tree of it ([`crate::value::Value`]) whose keys and strings
//! borrow from that text wherever the text holds them unescaped: parsing allocates little more
//! than one vector per object and array, instead of a string per key and value and a hash index
//! per object. Code that wants a `serde_json::Value` gets one built once, on first use.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::path::Path;
use crate::value::Value as Tree;

self_cell::self_cell!(
    /// The text of an event and the tree that borrows from it.
    struct Parsed {
        owner: Arc<str>,
        #[covariant]
        dependent: Tree,
    }
);

/// One event as Hardal holds it (`id`, `event_name`, `created_at`, `user_id`, `user`, `page`,
/// `properties`, …). Any JSON object is an event; which fields exist is the templates' business.
pub struct Event {
    parsed: Parsed,
    json: OnceLock<Value>,
}

/// Why a text is not an event.
#[derive(Debug)]
pub enum ParseError {
    /// Not JSON (serde_json's error names the line and column).
    Syntax(serde_json::Error),
    /// JSON, but not an object: the type that was found.
    NotAnObject(&'static str),
}

impl Event {
    /// Parses an event from its JSON text. Integers too large for 64 bits become strings of
    /// their exact digits (see [`keep_big_integers`]).
    pub fn parse(text: &str) -> Result<Event, ParseError> {
        Event::parse_owner(exact_text(text).into())
    }

    /// Parses an event from a text its caller keeps as well (an input line, kept for a dead
    /// letter): the event shares that text instead of copying it.
    pub fn parse_shared(text: &Arc<str>) -> Result<Event, ParseError> {
        Event::parse_owner(match exact_text(text) {
            Cow::Borrowed(_) => Arc::clone(text),
            Cow::Owned(rewritten) => rewritten.into(),
        })
    }

    fn parse_owner(text: Arc<str>) -> Result<Event, ParseError> {
        let parsed = Parsed::try_new(text, |text| tree(text)).map_err(ParseError::Syntax)?;
        match parsed.borrow_dependent() {
            Tree::Object(_) => Ok(Event {
                parsed,
                json: OnceLock::new(),
            }),
            other => Err(ParseError::NotAnObject(tree_type(other))),
        }
    }

    /// Wraps a JSON value; anything but an object is refused with the JSON type that was found.
    pub fn from_value(value: Value) -> Result<Event, String> {
        match value {
            Value::Object(_) => Ok(Event::owned(Tree::from(value))),
            other => Err(format!(
                "an event must be a JSON object, found {}",
                json_type(&other)
            )),
        }
    }

    pub fn from_map(map: Map<String, Value>) -> Event {
        Event::owned(Tree::from(Value::Object(map)))
    }

    /// An event whose tree owns everything it holds.
    fn owned(tree: Tree<'static>) -> Event {
        Event {
            parsed: Parsed::new(Arc::from(""), |_| tree),
            json: OnceLock::new(),
        }
    }

    /// The event as a tree that borrows from its text.
    pub fn tree(&self) -> &Tree<'_> {
        self.parsed.borrow_dependent()
    }

    /// The value at `path`; `None` when absent or JSON `null` (both count as missing).
    pub fn get(&self, path: &Path) -> Option<&Tree<'_>> {
        path.lookup(self.tree())
    }

    /// The value at a top-level key, `None` when absent or `null`.
    pub fn field(&self, key: &str) -> Option<&Tree<'_>> {
        self.tree()
            .as_object()
            .and_then(|members| members.get(key))
            .filter(|v| !v.is_null())
    }

    pub fn event_name(&self) -> Option<&str> {
        self.field("event_name").and_then(Tree::as_str)
    }

    /// The event name as messages quote it: JSON text, or `(none)`.
    pub fn quoted_name(&self) -> String {
        self.field("event_name")
            .map_or("(none)".to_owned(), Tree::to_string)
    }

    /// The key that orders this event among its user's events: `user_id`, else `user.email`.
    /// Events with neither belong to no user and may be delivered in any order.
    pub fn user_key(&self) -> Option<String> {
        let scalar = |v: &Tree| match v {
            Tree::String(s) if !s.is_empty() => Some(s.to_string()),
            Tree::Number(n) => Some(n.to_string()),
            _ => None,
        };
        self.field("user_id").and_then(scalar).or_else(|| {
            self.field("user")
                .and_then(|u| u.as_object()?.get("email"))
                .and_then(scalar)
        })
    }

    /// The event as a `serde_json::Value`, built on first use.
    pub fn as_value(&self) -> &Value {
        self.json.get_or_init(|| self.tree().to_json())
    }

    pub fn into_value(self) -> Value {
        match self.json.into_inner() {
            Some(value) => value,
            None => self.parsed.borrow_dependent().to_json(),
        }
    }
}

impl Clone for Event {
    fn clone(&self) -> Event {
        Event::owned(self.tree().to_owned_static())
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        self.tree() == other.tree()
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Event").field(self.tree()).finish()
    }
}

/// The JSON type of a tree value, as error messages name it.
fn tree_type(value: &Tree) -> &'static str {
    match value {
        Tree::Null => "null",
        Tree::Bool(_) => "a boolean",
        Tree::Number(_) => "a number",
        Tree::String(_) => "a string",
        Tree::Array(_) => "an array",
        Tree::Object(_) => "an object",
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

/// Parses one JSON value from text as events are parsed: equivalent to
/// `serde_json::from_str::<Value>`, except that integers too large for 64 bits become strings of
/// their exact digits (see [`keep_big_integers`]).
pub fn parse_event(text: &str) -> Result<Value, serde_json::Error> {
    tree(&exact_text(text)).map(|tree| tree.to_json())
}

/// The tree of a JSON text, borrowing its keys and strings wherever they need no unescaping.
fn tree(text: &str) -> Result<Tree<'_>, serde_json::Error> {
    match crate::quick_json::parse(text) {
        Some(tree) => Ok(tree),
        None => serde_tree(text),
    }
}

/// The tree of a JSON text as serde_json reads it.
pub(crate) fn serde_tree(text: &str) -> Result<Tree<'_>, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let tree = TreeSeed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(tree)
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
///
/// Every event is checked, so not every byte is: any 19 consecutive positions include a multiple
/// of 19, so a run of 19 digits covers one. Only those positions are looked at, and the run
/// around a digit found there is measured.
pub(crate) fn has_long_digit_run(text: &str) -> bool {
    const LONG: usize = 19;
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_digit() {
            at += LONG;
            continue;
        }
        let start = bytes[..at]
            .iter()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |p| p + 1);
        let end = bytes[at..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(bytes.len(), |p| at + p);
        if end - start >= LONG {
            return true;
        }
        // A later run starts after `end`, so it covers a multiple of LONG beyond it.
        at = (end / LONG + 1) * LONG;
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

/// Builds a tree from a deserializer, borrowing text from its input where it can.
struct TreeSeed;

impl<'de> serde::de::DeserializeSeed<'de> for TreeSeed {
    type Value = Tree<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Tree<'de>, D::Error> {
        deserializer.deserialize_any(TreeSeed)
    }
}

impl<'de> serde::de::Visitor<'de> for TreeSeed {
    type Value = Tree<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tree<'de>, E> {
        Ok(Tree::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Tree<'de>, E> {
        Ok(Tree::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Tree<'de>, E> {
        Ok(Tree::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Tree<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Tree::Null, Tree::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Tree<'de>, E> {
        Ok(Tree::Null)
    }

    fn visit_none<E>(self) -> Result<Tree<'de>, E> {
        Ok(Tree::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Tree<'de>, D::Error> {
        deserializer.deserialize_any(TreeSeed)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tree<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element_seed(TreeSeed)? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Tree<'de>, A::Error> {
        let mut members = crate::value::Map::with_capacity(8);
        while let Some(key) = access.next_key_seed(KeySeed)? {
            let value = access.next_value_seed(TreeSeed)?;
            // A key given twice keeps its first place and its last value, as serde_json's map.
            members.insert(key, value);
        }
        Ok(Tree::Object(members))
    }
}

/// An object's key, borrowed from the input where it needs no unescaping.
struct KeySeed;

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(KeySeed)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use serde_json::json;

    use super::{Event, Tree};

    #[test]
    fn an_event_parsed_from_shared_text_shares_it_unless_it_rewrites_it() {
        let text: Arc<str> = Arc::from(r#"{"a":"b"}"#);
        let event = Event::parse_shared(&text).unwrap();
        assert_eq!(Arc::strong_count(&text), 2);
        assert_eq!(event.field("a").and_then(|v| v.as_str()), Some("b"));
        drop(event);
        // An integer beyond 64 bits is rewritten as its digits: the event holds the new text.
        let big: Arc<str> = Arc::from(r#"{"n":123456789012345678901234}"#);
        let event = Event::parse_shared(&big).unwrap();
        assert_eq!(Arc::strong_count(&big), 1);
        assert_eq!(
            event.field("n").and_then(|v| v.as_str()),
            Some("123456789012345678901234")
        );
    }

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
    fn events_parse_as_serde_json_parses_them() {
        for text in [
            r#"{"a": "plain", "b": "esc\"aped\n\u00e9", "c": [1, -2, 2.5, true, null, {"d": {}}]}"#,
            r#"{"k": 1, "k": 2, "j": 3}"#,
            r#"{"\u0041": "key escaped", "A": "same key written plainly"}"#,
            r#"{"big": 1e300, "n": 18446744073709551615, "neg": -9223372036854775808}"#,
            r#"{"é": "ü", "emoji": "😀", "empty": "", "nested": [[[]]]}"#,
        ] {
            let event = Event::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            let expected: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(event.as_value(), &expected, "{text}");
            assert_eq!(event.tree().to_string(), expected.to_string(), "{text}");
            assert_eq!(event.clone().into_value(), expected, "{text}");
        }
        // Keys and strings without escapes are not copied out of the text.
        let event = Event::parse(r#"{"plain": "text", "esc\"": "a\tb"}"#).unwrap();
        let members: Vec<_> = event.tree().as_object().unwrap().iter().collect();
        assert!(matches!(
            event.field("plain"),
            Some(Tree::String(Cow::Borrowed("text")))
        ));
        assert_eq!(members[1].0, "esc\"");
        assert!(matches!(members[1].1, Tree::String(Cow::Owned(s)) if s == "a\tb"));
    }

    #[test]
    fn long_digit_runs_are_found_wherever_they_are() {
        let every_byte = |text: &str| {
            let mut run = 0;
            text.bytes().any(|b| {
                run = if b.is_ascii_digit() { run + 1 } else { 0 };
                run >= 19
            })
        };
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut found = [0; 2];
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Texts mostly of digits, with runs of every length at every offset.
            let len = (seed % 80) as usize;
            let sparse = [0x7, 0xf, 0x1f, 0x3f][(seed >> 62) as usize];
            let text: String = (0..len)
                .map(|i| {
                    if (seed >> (i % 58)) & sparse == 0 {
                        'x'
                    } else {
                        '7'
                    }
                })
                .collect();
            let long = every_byte(&text);
            assert_eq!(super::has_long_digit_run(&text), long, "{text}");
            found[usize::from(long)] += 1;
        }
        assert!(found[0] > 1000 && found[1] > 1000, "{found:?}");
        for (text, long) in [
            ("", false),
            ("1234567890123456789", true),
            ("123456789012345678", false),
            ("x1234567890123456789", true),
            ("123456789012345678x1234567890123456789", true),
            ("12345678901234567x1234567890123456", false),
        ] {
            assert_eq!(super::has_long_digit_run(text), long, "{text}");
        }
    }

    #[test]
    fn texts_that_are_not_events_say_why() {
        assert!(matches!(
            Event::parse("[1]"),
            Err(super::ParseError::NotAnObject("an array"))
        ));
        assert!(matches!(
            Event::parse("{\"a\": }"),
            Err(super::ParseError::Syntax(_))
        ));
        assert!(matches!(
            Event::parse("{} {}"),
            Err(super::ParseError::Syntax(_))
        ));
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
