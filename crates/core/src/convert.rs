//! Conversions of JSON values to the types APIs expect, shared by the template filters and by
//! destinations' field rules (Insider's), so that `"19.90"`, `"true"` or an epoch time are read
//! the same way everywhere.

use serde_json::{Number, Value};

/// The text of a scalar: strings as they are, numbers and booleans as JSON text; `None` for
/// objects, arrays and null.
pub fn to_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A number, or numeric text (trimmed) read as an integer if it is one, else as a finite float.
pub fn to_number(value: &Value) -> Option<Value> {
    match value {
        Value::Number(_) => Some(value.clone()),
        Value::String(s) => parse_number(s).map(Value::Number),
        _ => None,
    }
}

/// RFC 3339 in UTC with `Z`, from RFC 3339 with any offset, a date, a date-time without offset
/// (read as UTC), or epoch seconds or milliseconds (number or numeric text).
pub fn to_timestamp(value: &Value) -> Option<String> {
    crate::template::timestamp::normalize(value)
}

/// The instant a timestamp value names (any shape [`to_timestamp`] reads).
pub fn to_system_time(value: &Value) -> Option<std::time::SystemTime> {
    crate::template::timestamp::to_system_time(value)
}

/// Whether `text` is already what [`to_timestamp`] writes (`2024-12-19T09:45:39Z` or with
/// milliseconds), so it can be kept without rewriting.
pub fn is_canonical_timestamp(text: &str) -> bool {
    crate::template::timestamp::is_canonical(text)
}

/// Parses trimmed text as an integer if it is one, else as a finite float.
pub fn parse_number(text: &str) -> Option<Number> {
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(u.into());
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(Number::from_f64)
}

/// Integral numbers (and numeric strings) as a JSON integer.
pub fn to_integer(value: &Value) -> Option<Value> {
    let number = match value {
        Value::Number(n) => n.clone(),
        Value::String(s) => parse_number(s)?,
        _ => return None,
    };
    if number.is_i64() || number.is_u64() {
        return Some(Value::Number(number));
    }
    let float = number.as_f64()?;
    // The bounds keep the cast exact: every integral f64 strictly inside them fits an i64.
    let in_range = (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&float);
    (float.fract() == 0.0 && in_range).then(|| Value::from(float as i64))
}

pub fn to_boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" => Some(true),
            "false" | "0" | "no" | "n" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}
