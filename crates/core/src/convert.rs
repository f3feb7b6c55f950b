//! Conversions of JSON values to the types APIs expect, shared by the template filters and by
//! destinations' field rules (Insider's), so that `"19.90"`, `"true"` or an epoch time are read
//! the same way everywhere. They read scalars, so they take any value type hardal renders
//! ([`AsScalar`]): `serde_json`'s and the borrowed [`crate::value::Value`].

use serde_json::{Number, Value};

/// A value as the conversions see it.
pub enum Scalar<'v> {
    Null,
    Bool(bool),
    Number(&'v Number),
    String(&'v str),
    /// An array or an object.
    Compound,
}

/// A value type the conversions read.
pub trait AsScalar {
    fn scalar(&self) -> Scalar<'_>;
}

impl AsScalar for Value {
    fn scalar(&self) -> Scalar<'_> {
        match self {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::Number(n),
            Value::String(s) => Scalar::String(s),
            Value::Array(_) | Value::Object(_) => Scalar::Compound,
        }
    }
}

impl AsScalar for crate::value::Value<'_> {
    fn scalar(&self) -> Scalar<'_> {
        use crate::value::Value as V;
        match self {
            V::Null => Scalar::Null,
            V::Bool(b) => Scalar::Bool(*b),
            V::Number(n) => Scalar::Number(n),
            V::String(s) => Scalar::String(s),
            V::Array(_) | V::Object(_) => Scalar::Compound,
        }
    }
}

/// The text of a scalar: strings as they are, numbers and booleans as JSON text; `None` for
/// objects, arrays and null.
pub fn to_text<V: AsScalar + ?Sized>(value: &V) -> Option<String> {
    match value.scalar() {
        Scalar::String(s) => Some(s.to_owned()),
        Scalar::Number(n) => Some(n.to_string()),
        Scalar::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A number, or numeric text (trimmed) read as an integer if it is one, else as a finite float.
pub fn to_number(value: &Value) -> Option<Value> {
    number(value).map(Value::Number)
}

/// [`to_number`] of any value type.
pub fn number<V: AsScalar + ?Sized>(value: &V) -> Option<Number> {
    match value.scalar() {
        Scalar::Number(n) => Some(n.clone()),
        Scalar::String(s) => parse_number(s),
        _ => None,
    }
}

/// RFC 3339 in UTC with `Z`, from RFC 3339 with any offset, a date, a date-time without offset
/// (read as UTC), or epoch seconds or milliseconds (number or numeric text).
pub fn to_timestamp<V: AsScalar + ?Sized>(value: &V) -> Option<String> {
    crate::template::timestamp::normalize(value.scalar())
}

/// The instant a timestamp value names (any shape [`to_timestamp`] reads).
pub fn to_system_time<V: AsScalar + ?Sized>(value: &V) -> Option<std::time::SystemTime> {
    crate::template::timestamp::to_system_time(value.scalar())
}

/// Whether `text` is already what [`to_timestamp`] writes (`2024-12-19T09:45:39Z` or with
/// milliseconds), so it can be kept without rewriting.
pub fn is_canonical_timestamp(text: &str) -> bool {
    crate::template::timestamp::is_canonical(text)
}

/// `text.trim()`, answered without decoding a character when `text` starts and ends with a
/// visible ASCII character, as almost every value does: the rules trim every string they check.
pub fn trim(text: &str) -> &str {
    let visible =
        |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii() && !char::from(b).is_whitespace());
    let bytes = text.as_bytes();
    if visible(bytes.first()) && visible(bytes.last()) {
        text
    } else {
        text.trim()
    }
}

/// Parses trimmed text as an integer if it is one, else as a finite float.
pub fn parse_number(text: &str) -> Option<Number> {
    let text = trim(text);
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
    integer(value).map(Value::Number)
}

/// [`to_integer`] of any value type.
pub fn integer<V: AsScalar + ?Sized>(value: &V) -> Option<Number> {
    let number = number(value)?;
    if number.is_i64() || number.is_u64() {
        return Some(number);
    }
    let float = number.as_f64()?;
    // The bounds keep the cast exact: every integral f64 strictly inside them fits an i64.
    let in_range = (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&float);
    (float.fract() == 0.0 && in_range).then(|| Number::from(float as i64))
}

pub fn to_boolean<V: AsScalar + ?Sized>(value: &V) -> Option<bool> {
    match value.scalar() {
        Scalar::Bool(b) => Some(b),
        Scalar::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Scalar::String(s) => match trim(s).to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" => Some(true),
            "false" | "0" | "no" | "n" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    /// Every ASCII byte and some Unicode spaces, alone, before and after text: as `str::trim`.
    #[test]
    fn trim_answers_as_str_trim() {
        let mut edges: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        edges.extend(["\u{a0}", "\u{85}", "\u{2028}", "\u{3000}", "é", ""].map(String::from));
        for a in &edges {
            for b in &edges {
                for middle in ["", "x", " ", "a b"] {
                    let text = format!("{a}{middle}{b}");
                    assert_eq!(super::trim(&text), text.trim(), "{text:?}");
                }
            }
        }
    }
}
