//! The closed set of template filters (`##path | number##`): what each one converts, and the
//! message when a value cannot be converted.

use std::borrow::Cow;

use crate::convert;
use crate::value::{Map, Value};

/// A filter that transforms a value. `required` is not here: it changes what missing means for
/// the whole expression, so the compiler records it as a flag on the expression instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Filter {
    String,
    Number,
    Integer,
    Boolean,
    Lower,
    Upper,
    Trim,
    Timestamp,
    Json,
    /// `without(KEY, …)`: an object less these top-level keys (e.g. an order's properties less
    /// its product lines); anything but an object passes unchanged.
    Without(Box<[Box<str>]>),
}

/// What a filter name means when it is written in a placeholder.
pub(super) enum FilterName {
    Transform(Filter),
    Required,
}

/// Every filter name, in the order error messages list them.
pub(super) const FILTER_NAMES: &[&str] = &[
    "string",
    "number",
    "integer",
    "boolean",
    "lower",
    "upper",
    "trim",
    "timestamp",
    "json",
    "without(KEY, …)",
    "required",
];

impl FilterName {
    /// The filter `name`; `arguments` are the keys written in parentheses after it, which only
    /// `without` takes (and needs).
    pub(super) fn parse(
        name: &str,
        arguments: Option<Vec<Box<str>>>,
    ) -> Result<FilterName, String> {
        match (name, arguments) {
            ("without", Some(mut keys)) => {
                keys.sort_by(|a, b| by_length(a, b));
                keys.dedup();
                return Ok(FilterName::Transform(Filter::Without(keys.into())));
            }
            ("without", None) => {
                return Err("`without` needs the keys to leave out: without(KEY, …)".to_owned());
            }
            (_, Some(_)) => return Err(format!("the filter {name:?} takes no arguments")),
            (_, None) => {}
        }
        let filter = match name {
            "string" => Filter::String,
            "number" => Filter::Number,
            "integer" => Filter::Integer,
            "boolean" => Filter::Boolean,
            "lower" => Filter::Lower,
            "upper" => Filter::Upper,
            "trim" => Filter::Trim,
            "timestamp" => Filter::Timestamp,
            "json" => Filter::Json,
            "required" => return Ok(FilterName::Required),
            _ => {
                return Err(format!(
                    "unknown filter {name:?} (known filters: {})",
                    FILTER_NAMES.join(", ")
                ));
            }
        };
        Ok(FilterName::Transform(filter))
    }
}

/// A filter's result: `Ok(None)` is missing; `Err` is the reason, without the expression.
pub(super) type Filtered<'a> = Result<Option<Cow<'a, Value<'a>>>, String>;

impl Filter {
    /// Applies the filter. Missing passes through every filter; the converting filters also treat
    /// a blank string as missing, because there is nothing in it to convert.
    pub(super) fn apply<'a>(&self, value: Option<Cow<'a, Value<'a>>>) -> Filtered<'a> {
        let Some(value) = value else { return Ok(None) };
        let converting = matches!(
            self,
            Filter::Number | Filter::Integer | Filter::Boolean | Filter::Timestamp
        );
        if converting && value.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Ok(None);
        }
        let owned = |v: Value<'a>| Ok(Some(Cow::Owned(v)));
        match self {
            Filter::String => match value.as_ref() {
                Value::String(_) => Ok(Some(value)),
                other => owned(Value::from(to_text(other))),
            },
            Filter::Number => match value.as_ref() {
                Value::Number(_) => Ok(Some(value)),
                Value::String(s) => match convert::parse_number(s) {
                    Some(n) => owned(Value::Number(n)),
                    None => Err(cannot(&value, "a number")),
                },
                _ => Err(cannot(&value, "a number")),
            },
            Filter::Integer => match convert::integer(value.as_ref()) {
                Some(n) => owned(Value::Number(n)),
                None => Err(cannot(&value, "an integer")),
            },
            Filter::Boolean => match convert::to_boolean(value.as_ref()) {
                Some(b) => owned(Value::Bool(b)),
                None => Err(cannot(&value, "a boolean")),
            },
            Filter::Lower | Filter::Upper | Filter::Trim => {
                let text = match value.as_ref() {
                    Value::String(s) => &**s,
                    Value::Number(_) | Value::Bool(_) => &to_text(&value),
                    _ => return Err(format!("cannot change the case or trim {}", quote(&value))),
                };
                let changed = match self {
                    Filter::Lower => text.to_lowercase(),
                    Filter::Upper => text.to_uppercase(),
                    _ => text.trim().to_owned(),
                };
                owned(Value::from(changed))
            }
            Filter::Timestamp => match convert::to_timestamp(value.as_ref()) {
                Some(text) => owned(Value::from(text)),
                None => Err(cannot(&value, "a timestamp")),
            },
            Filter::Json => owned(Value::from(value.to_string())),
            Filter::Without(keys) => {
                // Keys sorted by length, then bytes: found by binary search that mostly compares
                // lengths (a preset leaves out dozens of keys from every line of every order).
                let left_out = |key: &str| keys.binary_search_by(|k| by_length(k, key)).is_ok();
                let leaves_out = |map: &Map<'_>| map.keys().any(&left_out);
                match value {
                    // The rest borrows from the event: no key or string is copied.
                    Cow::Borrowed(Value::Object(map)) if leaves_out(map) => {
                        owned(Value::Object(Map::from_members(
                            map.iter()
                                .filter(|(k, _)| !left_out(k))
                                .map(|(k, v)| (Cow::Borrowed(k), v.reborrow()))
                                .collect(),
                        )))
                    }
                    Cow::Owned(Value::Object(map)) if leaves_out(&map) => owned(Value::Object(
                        Map::from_members(map.into_iter().filter(|(k, _)| !left_out(k)).collect()),
                    )),
                    value => Ok(Some(value)),
                }
            }
        }
    }
}

/// Orders keys by length, then by bytes.
fn by_length(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The text of a value inside a string: strings raw, everything else as compact JSON.
pub(super) fn to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn cannot(value: &Value, target: &str) -> String {
    format!("cannot convert {} to {target}", quote(value))
}

/// A value as compact JSON for a message, cut short so one odd event cannot flood a log.
pub(super) fn quote(value: &Value) -> String {
    const LIMIT: usize = 60;
    let text = value.to_string();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
