//! Conditions (`when`) and ordered mappings: the first mapping whose condition holds maps the
//! event; an event no mapping matches is skipped.
//!
//! A condition is written as an object from path to matcher: a scalar (equality), a list of
//! scalars (any of) or `{"exists": bool}`. Every key must hold.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use crate::error::ConfigError;
use crate::event::{Event, json_type};
use crate::path::Path;
use crate::template::pointer_token;
use crate::value::Value as Tree;

/// A `when` condition as written in a configuration: path → expected value, list of values
/// (any of), or `{"exists": bool}`. Every key must hold.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(transparent)]
pub struct WhenConfig(pub BTreeMap<String, Value>);

impl JsonSchema for WhenConfig {
    fn schema_name() -> Cow<'static, str> {
        "WhenConfig".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Selects events: every key is a path into the event and every matcher must hold. \
                A scalar matches by equality, a list of scalars matches any of them, \
                {\"exists\": true|false} tests whether the path holds a non-null value.",
            "type": "object",
            "x-hardal-condition": true,
            "additionalProperties": {
                "oneOf": [
                    {"description": "Equal to this value.", "type": ["string", "number", "boolean"]},
                    {
                        "description": "Equal to any of these values.",
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": ["string", "number", "boolean"]}
                    },
                    {
                        "description": "Whether the path holds a value (null counts as absent).",
                        "type": "object",
                        "properties": {"exists": {"type": "boolean"}},
                        "required": ["exists"],
                        "additionalProperties": false
                    }
                ]
            }
        })
    }
}

/// A compiled condition.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone)]
struct Clause {
    path: Path,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Equals(Value),
    /// Any of these values. Strings are kept apart from the rest, sorted by length and then by
    /// bytes, and found by binary search that mostly compares lengths: a preset's `when` lists
    /// dozens of event names, and every event that reaches the last preset is tested against all
    /// of them.
    AnyOf {
        strings: Vec<String>,
        others: Vec<Value>,
    },
    Exists(bool),
}

impl Condition {
    /// Compiles a `when` object, reporting every bad path and matcher with the JSON pointer of
    /// its key (`/properties.items`).
    pub fn compile(config: &WhenConfig) -> Result<Condition, Vec<ConfigError>> {
        let mut clauses = Vec::new();
        let mut errors = Vec::new();
        for (key, matcher) in &config.0 {
            let pointer = format!("/{}", pointer_token(key));
            let path = Path::parse(key).map_err(|e| format!("bad path {key:?}: {e}"));
            let test = compile_test(matcher);
            match (path, test) {
                (Ok(path), Ok(test)) => clauses.push(Clause { path, test }),
                (path, test) => {
                    errors.extend(
                        path.err()
                            .into_iter()
                            .chain(test.err())
                            .map(|message| ConfigError::new(pointer.clone(), message)),
                    );
                }
            }
        }
        if errors.is_empty() {
            Ok(Condition { clauses })
        } else {
            Err(errors)
        }
    }

    /// A condition that holds for every event.
    pub fn always() -> Condition {
        Condition::default()
    }

    /// True when the condition has no clauses and so holds for every event.
    pub fn is_always(&self) -> bool {
        self.clauses.is_empty()
    }

    pub fn matches(&self, event: &Event) -> bool {
        self.clauses.iter().all(|clause| {
            let value = event.get(&clause.path);
            match &clause.test {
                Test::Exists(wanted) => value.is_some() == *wanted,
                Test::Equals(expected) => value.is_some_and(|v| json_equal(v, expected)),
                Test::AnyOf { strings, others } => value.is_some_and(|v| match v {
                    Tree::String(text) => strings
                        .binary_search_by(|option| by_length(option, text))
                        .is_ok(),
                    _ => others.iter().any(|option| json_equal(v, option)),
                }),
            }
        })
    }
}

fn compile_test(matcher: &Value) -> Result<Test, String> {
    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match matcher {
        v if scalar(v) => Ok(Test::Equals(v.clone())),
        Value::Array(options) if options.is_empty() => {
            Err("an empty list matches nothing; list at least one value".to_owned())
        }
        Value::Array(options) => match options.iter().find(|v| !scalar(v)) {
            Some(bad) => Err(format!(
                "a list matches any of its values, which must be strings, numbers or booleans; found {}",
                json_type(bad)
            )),
            None => {
                let (mut strings, mut others) = (Vec::new(), Vec::new());
                for option in options {
                    match option {
                        Value::String(text) => strings.push(text.clone()),
                        other => others.push(other.clone()),
                    }
                }
                strings.sort_by(|a, b| by_length(a, b));
                strings.dedup();
                Ok(Test::AnyOf { strings, others })
            }
        },
        Value::Object(map) => match (map.len(), map.get("exists")) {
            (1, Some(Value::Bool(wanted))) => Ok(Test::Exists(*wanted)),
            _ => Err(format!(
                "an object matcher must be {{\"exists\": true}} or {{\"exists\": false}}, found {matcher}"
            )),
        },
        _ => Err(
            "null never matches (missing and null are the same); use {\"exists\": false}"
                .to_owned(),
        ),
    }
}

/// Orders strings by length, then by bytes: comparing lengths settles most comparisons.
fn by_length(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// JSON equality where numbers compare by value (`1` equals `1.0`) and types never mix
/// (`"1"` is not `1`).
fn json_equal(left: &Tree, right: &Value) -> bool {
    match (left, right) {
        (Tree::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (a.as_u64(), b.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => a.as_f64() == b.as_f64(),
            },
        },
        (Tree::String(a), Value::String(b)) => a == b,
        (Tree::Bool(a), Value::Bool(b)) => a == b,
        // What a condition compares with is always a string, number or boolean.
        _ => false,
    }
}

/// One mapping: a condition and what maps the events it selects (usually a `Template`).
#[derive(Debug, Clone)]
pub struct Mapping<T> {
    pub when: Condition,
    pub target: T,
}

impl<T> Mapping<T> {
    pub fn new(when: Condition, target: T) -> Mapping<T> {
        Mapping { when, target }
    }

    /// A mapping that applies to every event.
    pub fn always(target: T) -> Mapping<T> {
        Mapping {
            when: Condition::always(),
            target,
        }
    }
}

/// Mappings tried in order; the first match wins.
#[derive(Debug, Clone)]
pub struct Mappings<T>(pub Vec<Mapping<T>>);

impl<T> Mappings<T> {
    pub fn new(mappings: Vec<Mapping<T>>) -> Mappings<T> {
        Mappings(mappings)
    }

    pub fn select(&self, event: &Event) -> Option<&T> {
        self.0
            .iter()
            .find(|m| m.when.matches(event))
            .map(|m| &m.target)
    }

    /// The position of the first mapping that matches, for reports that name it.
    pub fn select_index(&self, event: &Event) -> Option<usize> {
        self.0.iter().position(|m| m.when.matches(event))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Condition, Mapping, Mappings, WhenConfig};
    use crate::event::Event;

    fn when(value: Value) -> WhenConfig {
        serde_json::from_value(value).expect("a when object")
    }

    fn check(condition: Value, event: Value, expected: bool) {
        let compiled = Condition::compile(&when(condition.clone()))
            .unwrap_or_else(|e| panic!("{condition}: {e:?}"));
        let event = Event::from_value(event.clone()).expect("an object");
        assert_eq!(
            compiled.matches(&event),
            expected,
            "{condition} on {event:?}"
        );
    }

    #[test]
    fn matching() {
        let purchase = json!({
            "event_name": "purchase", "count": 1, "flag": true, "code": "1", "nothing": null,
            "properties": {"items": [{"price": 2.0}], "first name": "Ada"},
        });
        let table = [
            (json!({}), true),
            (json!({"event_name": "purchase"}), true),
            (json!({"event_name": "page_view"}), false),
            (json!({"event_name": ["page_view", "purchase"]}), true),
            (json!({"event_name": ["page_view", "signup"]}), false),
            (json!({"count": 1}), true),
            (json!({"count": 1.0}), true),
            (json!({"count": "1"}), false),
            (json!({"code": 1}), false),
            (json!({"code": "1"}), true),
            (json!({"flag": true}), true),
            (json!({"flag": "true"}), false),
            (json!({"properties.items.0.price": 2}), true),
            (json!({"properties.\"first name\"": "Ada"}), true),
            (json!({"properties.items": {"exists": true}}), true),
            (json!({"properties.products": {"exists": true}}), false),
            (json!({"properties.products": {"exists": false}}), true),
            (json!({"nothing": {"exists": false}}), true),
            (json!({"nothing": {"exists": true}}), false),
            (json!({"absent": "x"}), false),
            (json!({"absent": ["x"]}), false),
            (json!({"event_name": "purchase", "count": 2}), false),
            (json!({"event_name": "purchase", "count": [2, 1]}), true),
        ];
        for (condition, expected) in table {
            check(condition, purchase.clone(), expected);
        }
    }

    #[test]
    fn every_bad_key_is_reported_with_its_pointer() {
        let config = when(json!({
            "a..b": "x",
            "ok": null,
            "list": [],
            "mixed": ["a", {"b": 1}],
            "exists": {"exists": "yes"},
            "extra": {"exists": true, "other": 1},
            "path/with~odd": [[1]],
            "fine": ["a", 1, true],
        }));
        let errors = Condition::compile(&config).expect_err("bad config");
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/a..b",
                "/exists",
                "/extra",
                "/list",
                "/mixed",
                "/ok",
                "/path~1with~0odd"
            ]
        );
        assert!(
            errors[0].message.contains("empty key at character 3"),
            "{errors:?}"
        );
        assert!(errors[5].message.contains("exists\": false"), "{errors:?}");
    }

    #[test]
    fn first_matching_mapping_wins() {
        let compile = |v: Value| Condition::compile(&when(v)).expect("valid");
        let mappings = Mappings::new(vec![
            Mapping::new(compile(json!({"event_name": "purchase"})), "purchase"),
            Mapping::new(
                compile(json!({"user.email": {"exists": true}})),
                "known user",
            ),
            Mapping::always("anything"),
        ]);
        let select = |v: Value| {
            mappings
                .select(&Event::from_value(v).expect("object"))
                .copied()
        };
        assert_eq!(
            select(json!({"event_name": "purchase", "user": {"email": "a"}})),
            Some("purchase")
        );
        assert_eq!(
            select(json!({"event_name": "view", "user": {"email": "a"}})),
            Some("known user")
        );
        assert_eq!(select(json!({"event_name": "view"})), Some("anything"));
        let only_purchases = Mappings::new(vec![Mapping::new(
            compile(json!({"event_name": "purchase"})),
            1,
        )]);
        assert_eq!(
            only_purchases.select(&Event::from_value(json!({})).expect("object")),
            None
        );
        assert_eq!(
            mappings.select_index(&Event::from_value(json!({})).expect("object")),
            Some(2)
        );
    }

    #[test]
    fn schema_accepts_the_three_matcher_shapes() {
        let schema = schemars::schema_for!(WhenConfig);
        let text = serde_json::to_string(&schema).expect("serializable");
        assert!(text.contains("\"exists\""), "{text}");
        assert!(text.contains("\"additionalProperties\":false"), "{text}");
        assert!(text.contains("\"x-hardal-condition\":true"), "{text}");
    }
}
