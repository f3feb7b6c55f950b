//! Insider's types for default attributes and event parameters, and the conversion of one value
//! into its type: kept when already in Insider's form (the common case, without allocating),
//! repaired when it has exactly one meaning in that type (`"true"` → `true`, `USA` → `US`), or
//! invalid, with the rule it breaks.

use hardal_core::convert;
use hardal_core::value::Value;

use crate::country;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Boolean,
    Number,
    Integer,
    Timestamp,
    Email,
    Phone,
    Language,
    Country,
    Currency,
    Strings,
    Numbers,
}

/// Defines, from one table of the keys Insider knows, `$kind(key)`: the key's type, and
/// `$field(key)`: its field's name in notes (`attributes.email`), spelled out once, so that a note
/// on a field Insider knows borrows its name instead of joining it anew for every event.
macro_rules! known_keys {
    ($kind:ident, $field:ident, $prefix:literal, { $($($key:literal)|+ => $type:ident,)* }) => {
        pub(crate) fn $kind(key: &str) -> Option<Kind> {
            Some(match key {
                $($($key)|+ => Kind::$type,)*
                _ => return None,
            })
        }

        pub(crate) fn $field(key: &str) -> Option<&'static str> {
            Some(match key {
                $($($key => concat!($prefix, ".", $key),)+)*
                _ => return None,
            })
        }
    };
}

known_keys!(attribute_kind, attribute_field, "attributes", {
    "email" => Email,
    "phone_number" => Phone,
    "uuid" | "name" | "surname" | "gender" | "city" | "lo" => String,
    "email_optin" | "sms_optin" | "whatsapp_optin" | "gdpr_optin" => Boolean,
    "age" => Number,
    "birthday" => Timestamp,
    "language" => Language,
    "country" => Country,
    "list_id" | "static_segment_id" => Numbers,
});

known_keys!(param_kind, param_field, "events.event_params", {
    "event_group_id" | "product_id" | "name" | "url" | "product_image_url" | "locale"
        | "color" | "size" | "promotion_name" | "referrer" => String,
    "taxonomy" => Strings,
    "currency" => Currency,
    "quantity" => Integer,
    "unit_price" | "unit_sale_price" | "shipping_cost" | "promotion_discount" => Number,
});

/// A rule a value can break: a short name that is the same for every event (for counting) and
/// the explanation a message gives after the value (`"x" is not an email address (…)`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub name: &'static str,
    pub explain: &'static str,
}

const fn invalid(name: &'static str, explain: &'static str) -> Invalid {
    Invalid { name, explain }
}

pub(crate) static NOT_STRING: Invalid = invalid("not a string", "not a string");
static NOT_BOOLEAN: Invalid = invalid("not a boolean", "not a boolean");
static NOT_NUMBER: Invalid = invalid("not a number", "not a number");
static NOT_INTEGER: Invalid = invalid("not a whole number", "not a whole number");
static NOT_TIMESTAMP: Invalid =
    invalid("not a date-time", "not an RFC 3339 date-time or epoch time");
static NOT_EMAIL: Invalid = invalid(
    "not an email address",
    "not an email address (Insider: ^.+@.+\\..+$)",
);
static NOT_PHONE: Invalid = invalid(
    "not an E.164 phone number",
    "not an E.164 phone number with country code (Insider: ^\\+[1-9]\\d{6,14}$)",
);
static NOT_LANGUAGE: Invalid = invalid(
    "not a language locale",
    "not a language locale such as en_US",
);
static NOT_COUNTRY: Invalid = invalid(
    "not a country",
    "not a country (an ISO 3166-1 alpha-2 or alpha-3 code or an English country name)",
);
static NOT_CURRENCY: Invalid = invalid("not a currency code", "not an ISO 4217 currency code");
static NOT_STRINGS: Invalid = invalid("not a list of strings", "not a list of strings");
static NOT_NUMBERS: Invalid = invalid("not a list of numbers", "not a list of numbers");

/// What became of one value.
#[derive(Debug, PartialEq)]
pub(crate) enum Coerced {
    /// Already in Insider's form; left as it is.
    Kept,
    /// Rewritten into the one form it means, by the named rule.
    Repaired(Value<'static>, &'static str),
    /// No form of this type; the value breaks the rule.
    Invalid(&'static Invalid),
}

/// Converts `value` into `kind`. `phone_country_code` makes national phone numbers E.164.
pub(crate) fn coerce(value: &Value, kind: Kind, phone_country_code: Option<&str>) -> Coerced {
    if already_canonical(value, kind) {
        return Coerced::Kept;
    }
    let repaired = |new: Value<'static>, rule| {
        if new == *value {
            Coerced::Kept
        } else {
            Coerced::Repaired(new, rule)
        }
    };
    match kind {
        Kind::String => match convert::to_text(value) {
            Some(text) => repaired(Value::from(text), "to text"),
            None => Coerced::Invalid(&NOT_STRING),
        },
        Kind::Boolean => match convert::to_boolean(value) {
            Some(b) => repaired(Value::Bool(b), "to boolean"),
            None => Coerced::Invalid(&NOT_BOOLEAN),
        },
        Kind::Number => match convert::number(value).map(Value::Number) {
            Some(n) => repaired(n, "text to number"),
            None => Coerced::Invalid(&NOT_NUMBER),
        },
        Kind::Integer => match convert::integer(value).map(Value::Number) {
            Some(n) => repaired(n, "to whole number"),
            None => Coerced::Invalid(&NOT_INTEGER),
        },
        Kind::Timestamp => match convert::to_timestamp(value) {
            Some(text) => repaired(Value::from(text), "to RFC 3339 in UTC"),
            None => Coerced::Invalid(&NOT_TIMESTAMP),
        },
        Kind::Email => match convert::to_text(value) {
            Some(text) if is_email(convert::trim(&text)) => repaired(
                Value::from(convert::trim(&text).to_owned()),
                "white space trimmed",
            ),
            _ => Coerced::Invalid(&NOT_EMAIL),
        },
        Kind::Phone => match normalize_phone(value, phone_country_code) {
            Some(phone) => repaired(Value::from(phone), "to E.164"),
            None => Coerced::Invalid(&NOT_PHONE),
        },
        Kind::Language => match normalize_language(value) {
            Some(locale) => repaired(Value::from(locale), "to a locale such as en_US"),
            None => Coerced::Invalid(&NOT_LANGUAGE),
        },
        Kind::Country => match value.as_str().and_then(country::to_alpha2) {
            Some((alpha2, rule)) => repaired(Value::from(alpha2), rule),
            None => Coerced::Invalid(&NOT_COUNTRY),
        },
        Kind::Currency => {
            let text = convert::to_text(value).unwrap_or_default();
            let text = convert::trim(&text);
            if text.len() == 3 && text.chars().all(|c| c.is_ascii_alphabetic()) {
                repaired(Value::from(text.to_ascii_uppercase()), "upper case")
            } else {
                Coerced::Invalid(&NOT_CURRENCY)
            }
        }
        Kind::Strings => strings(value),
        Kind::Numbers => {
            let items = match value {
                Value::Array(items) => items.as_slice(),
                single => std::slice::from_ref(single),
            };
            match items
                .iter()
                .map(|item| convert::number(item).map(Value::Number))
                .collect::<Option<_>>()
            {
                Some(numbers) => repaired(Value::Array(numbers), "to a list of numbers"),
                None => Coerced::Invalid(&NOT_NUMBERS),
            }
        }
    }
}

/// A list of strings from a single value, a list, or lists of lists (a list-valued category in a
/// template's `["##item.category##"]`): one flat list, blanks left out.
fn strings(value: &Value) -> Coerced {
    fn flatten(
        value: &Value,
        out: &mut Vec<Value<'static>>,
        nested: &mut bool,
        depth: usize,
    ) -> bool {
        match value {
            Value::Array(items) => {
                *nested |= depth > 0;
                items
                    .iter()
                    .all(|item| flatten(item, out, nested, depth + 1))
            }
            Value::Null => true,
            Value::String(s) if convert::trim(s).is_empty() => true,
            scalar => match convert::to_text(scalar) {
                Some(text) => {
                    out.push(Value::from(text));
                    true
                }
                None => false,
            },
        }
    }
    let (mut out, mut nested) = (Vec::new(), false);
    if !flatten(value, &mut out, &mut nested, 0) {
        return Coerced::Invalid(&NOT_STRINGS);
    }
    let rule = if nested {
        "nested lists flattened"
    } else {
        "to a list of strings"
    };
    let new = Value::Array(out);
    if new == *value {
        Coerced::Kept
    } else {
        Coerced::Repaired(new, rule)
    }
}

/// Values already in Insider's form are kept as they are: most fields of most events need no
/// conversion, and keeping them saves an allocation per field.
fn already_canonical(value: &Value, kind: Kind) -> bool {
    let upper = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_uppercase());
    match (kind, value) {
        (Kind::String, Value::String(_))
        | (Kind::Boolean, Value::Bool(_))
        | (Kind::Number, Value::Number(_)) => true,
        (Kind::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Kind::Email, Value::String(s)) => convert::trim(s).len() == s.len() && is_email(s),
        (Kind::Country, Value::String(s)) => country::is_alpha2(s),
        (Kind::Currency, Value::String(s)) => upper(s, 3),
        (Kind::Language, Value::String(s)) => match s.split_once('_') {
            None => s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase()),
            Some((language, region)) => {
                language.len() == 2
                    && language.bytes().all(|b| b.is_ascii_lowercase())
                    && upper(region, 2)
            }
        },
        (Kind::Timestamp, Value::String(s)) => convert::is_canonical_timestamp(s),
        (Kind::Phone, Value::String(s)) => s.strip_prefix('+').is_some_and(|digits| {
            (7..=15).contains(&digits.len())
                && !digits.starts_with('0')
                && digits.bytes().all(|b| b.is_ascii_digit())
        }),
        (Kind::Strings, Value::Array(items)) => items
            .iter()
            .all(|v| v.as_str().is_some_and(|s| !convert::trim(s).is_empty())),
        (Kind::Numbers, Value::Array(items)) => items.iter().all(Value::is_number),
        _ => false,
    }
}

pub(crate) fn is_email(text: &str) -> bool {
    // Insider's rule is ^.+@.+\..+$: some `@` with text before it, and a `.` after it with text
    // on both sides. The first `@` that has text before it is the one to look after: any later
    // one has less text after it. A `.` is one byte and never part of another character, so
    // bytes can be searched.
    let bytes = text.as_bytes();
    let Some(at) = bytes.iter().skip(1).position(|b| *b == b'@') else {
        return false;
    };
    let domain = &bytes[at + 2..];
    domain.len() >= 3 && domain[1..domain.len() - 1].contains(&b'.')
}

/// E.164 from common ways of writing a phone number: spaces, dashes, dots, slashes and
/// parentheses dropped, a leading `00` read as `+`, a national number (leading `0`) prefixed with
/// the configured country code. Without a configured code such a number cannot be made E.164
/// without guessing the country, so it is invalid.
pub fn normalize_phone<V: convert::AsScalar + ?Sized>(
    value: &V,
    country_code: Option<&str>,
) -> Option<String> {
    let text = convert::to_text(value)?;
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '(' | ')' | '\u{a0}'))
        .collect();
    let national = |code: &str| {
        compact
            .strip_prefix('0')
            .map(|rest| format!("{code}{rest}"))
    };
    let digits = match compact
        .strip_prefix('+')
        .or_else(|| compact.strip_prefix("00"))
    {
        Some(international) => international.to_owned(),
        None => national(country_code?)?,
    };
    let valid = (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    valid.then(|| format!("+{digits}"))
}

/// `en-US`, `en_us`, `EN` → `en_US`, `en_US`, `en`.
pub fn normalize_language(value: &Value) -> Option<String> {
    // The common case, `tr-TR`, written straight into its form.
    if let Some(text) = value.as_str()
        && let [a, b, b'-', c, d] = text.as_bytes()
        && [a, b].iter().all(|x| x.is_ascii_lowercase())
        && [c, d].iter().all(|x| x.is_ascii_uppercase())
    {
        let mut locale = String::with_capacity(5);
        locale.push_str(&text[..2]);
        locale.push('_');
        locale.push_str(&text[3..]);
        return Some(locale);
    }
    let text = convert::to_text(value)?;
    let mut parts = convert::trim(&text).split(['-', '_']);
    let language = parts.next()?.to_ascii_lowercase();
    let region = parts.next_back().map(str::to_ascii_uppercase);
    let letters = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_alphabetic());
    if !letters(&language, 2) {
        return None;
    }
    match region {
        None => Some(language),
        Some(region) if letters(&region, 2) => Some(format!("{language}_{region}")),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    /// Insider's rule, `^.+@.+\..+$`, as it reads: the reference the quick check must agree with.
    fn by_the_rule(text: &str) -> bool {
        text.match_indices('@').any(|(at, _)| {
            let domain = &text[at + 1..];
            at > 0
                && domain
                    .char_indices()
                    .skip(1)
                    .any(|(i, c)| c == '.' && i + 1 < domain.len())
        })
    }

    #[test]
    fn emails_are_checked_as_insiders_rule_reads() {
        // Every text of up to seven characters from these, multi-byte ones included.
        let alphabet = ['a', '@', '.', 'é', '∂'];
        let mut texts = vec![String::new()];
        let mut checked = 0;
        for _ in 0..7 {
            let mut longer = Vec::new();
            for text in &texts {
                for c in alphabet {
                    let mut next = text.clone();
                    next.push(c);
                    assert_eq!(super::is_email(&next), by_the_rule(&next), "{next:?}");
                    checked += usize::from(by_the_rule(&next));
                    longer.push(next);
                }
            }
            texts = longer;
        }
        assert!(checked > 1000, "the texts hold emails too ({checked})");
        for (text, email) in [
            ("a@b.c", true),
            ("@b.c", false),
            ("a@.c", false),
            ("a@b.", false),
        ] {
            assert_eq!(super::is_email(text), email, "{text}");
        }
    }
}
