//! Insider's field rules, applied to every user object the destination renders (presets and your
//! own mappings alike): identifiers limited to Insider's keys and checked, attributes and event
//! parameters coerced to Insider's types, unknown keys moved under `custom`, event names
//! normalized, required purchase parameters checked. A user object Insider would reject is never
//! sent: the event is rejected here, with a reason that names the field and the rule.

use hardal_core::convert;
use serde_json::{Map, Value};

/// What the rules need from the destination's configuration.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    /// Standard identifiers to send (`email`, `phone_number`, `uuid`).
    pub standard_identifiers: Vec<String>,
    /// Custom identifiers to send (e.g. `hardal_id`).
    pub custom_identifiers: Vec<String>,
    /// `not_append: true` on every user object.
    pub not_append: bool,
    /// Country calling code for national phone numbers (`0532…` → `+90532…`).
    pub phone_country_code: Option<String>,
}

/// The outcome of applying the rules to one rendered user object.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// A user object Insider accepts.
    User(Map<String, Value>),
    /// Nothing to send (no identifier, or neither attributes nor events).
    Nothing(String),
}

pub const STANDARD_IDENTIFIERS: [&str; 3] = ["email", "phone_number", "uuid"];

/// Events Insider requires parameters for, and which.
const REQUIRED_PARAMS: [(&str, &[&str]); 2] = [
    (
        "purchase",
        &["event_group_id", "currency", "unit_sale_price", "quantity"],
    ),
    (
        "cart_page_view",
        &["event_group_id", "currency", "unit_sale_price"],
    ),
];

#[derive(Clone, Copy)]
enum Kind {
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

fn attribute_kind(key: &str) -> Option<Kind> {
    Some(match key {
        "email" => Kind::Email,
        "phone_number" => Kind::Phone,
        "uuid" | "name" | "surname" | "gender" | "city" | "lo" => Kind::String,
        "email_optin" | "sms_optin" | "whatsapp_optin" | "gdpr_optin" => Kind::Boolean,
        "age" => Kind::Number,
        "birthday" => Kind::Timestamp,
        "language" => Kind::Language,
        "country" => Kind::Country,
        "list_id" | "static_segment_id" => Kind::Numbers,
        _ => return None,
    })
}

fn param_kind(key: &str) -> Option<Kind> {
    Some(match key {
        "event_group_id" | "product_id" | "name" | "url" | "product_image_url" | "locale"
        | "color" | "size" | "promotion_name" | "referrer" => Kind::String,
        "taxonomy" => Kind::Strings,
        "currency" => Kind::Currency,
        "quantity" => Kind::Integer,
        "unit_price" | "unit_sale_price" | "shipping_cost" | "promotion_discount" => Kind::Number,
        _ => return None,
    })
}

/// Applies Insider's rules to one rendered user object.
pub fn check_user(user: Value, settings: &RuleSettings) -> Result<Checked, String> {
    let Value::Object(mut user) = user else {
        return Err(format!(
            "a user object must be a JSON object, found {}",
            short(&user)
        ));
    };
    let mut out = Map::new();

    let identifiers = match user.remove("identifiers") {
        Some(Value::Object(identifiers)) => check_identifiers(identifiers, settings)?,
        Some(other) => {
            return Err(format!(
                "identifiers: must be an object, found {}",
                short(&other)
            ));
        }
        None => Map::new(),
    };
    let insider_id = user.remove("insider_id");
    if identifiers.is_empty() && insider_id.is_none() {
        return Ok(Checked::Nothing(
            "no identifier to send (email, phone_number, uuid or a configured custom identifier)"
                .into(),
        ));
    }
    if !identifiers.is_empty() {
        out.insert("identifiers".into(), Value::Object(identifiers));
    }
    if let Some(id) = insider_id {
        out.insert(
            "insider_id".into(),
            Value::String(convert::to_text(&id).ok_or("insider_id: must be a string")?),
        );
    }

    if let Some(attributes) = user.remove("attributes") {
        let Value::Object(attributes) = attributes else {
            return Err(format!(
                "attributes: must be an object, found {}",
                short(&attributes)
            ));
        };
        let attributes = check_fields(attributes, "attributes", attribute_kind, settings)?;
        if !attributes.is_empty() {
            out.insert("attributes".into(), Value::Object(attributes));
        }
    }

    if let Some(events) = user.remove("events") {
        let events = match events {
            Value::Array(events) => events,
            single @ Value::Object(_) => vec![single],
            other => return Err(format!("events: must be an array, found {}", short(&other))),
        };
        let mut checked = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            checked.push(Value::Object(check_event(event, i, settings)?));
        }
        if !checked.is_empty() {
            out.insert("events".into(), Value::Array(checked));
        }
    }

    user.remove("not_append");
    if let Some((key, _)) = user.iter().next() {
        return Err(format!(
            "{key}: not a field of an Insider user object (identifiers, attributes, events)"
        ));
    }
    if !out.contains_key("attributes") && !out.contains_key("events") {
        return Ok(Checked::Nothing(
            "neither attributes nor events to send".into(),
        ));
    }
    if settings.not_append {
        out.insert("not_append".into(), Value::Bool(true));
    }
    Ok(Checked::User(out))
}

fn check_identifiers(
    identifiers: Map<String, Value>,
    settings: &RuleSettings,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut custom = Map::new();
    for (key, value) in identifiers {
        if is_blank(&value) {
            continue;
        }
        let path = At("identifiers", &key);
        match key.as_str() {
            "custom" => {
                let Value::Object(members) = value else {
                    return Err(format!(
                        "{path}: must be an object, found {}",
                        short(&value)
                    ));
                };
                for (name, value) in members {
                    if is_blank(&value) || !settings.custom_identifiers.contains(&name) {
                        continue;
                    }
                    let text = convert::to_text(&value).ok_or_else(|| {
                        format!("{path}.{name}: must be a string, found {}", short(&value))
                    })?;
                    custom.insert(name, Value::String(text));
                }
            }
            standard if STANDARD_IDENTIFIERS.contains(&standard) => {
                if !settings.standard_identifiers.iter().any(|s| s == standard) {
                    continue;
                }
                let kind = match standard {
                    "email" => Kind::Email,
                    "phone_number" => Kind::Phone,
                    _ => Kind::String,
                };
                let value = coerce(value, kind, path, settings)?;
                out.insert(key, value);
            }
            other if settings.custom_identifiers.iter().any(|c| c == other) => {
                let text = convert::to_text(&value)
                    .ok_or_else(|| format!("{path}: must be a string, found {}", short(&value)))?;
                custom.insert(key, Value::String(text));
            }
            _ => {
                return Err(format!(
                    "{path}: not an Insider identifier (email, phone_number, uuid, custom) nor a configured custom identifier"
                ));
            }
        }
    }
    if !custom.is_empty() {
        out.insert("custom".into(), Value::Object(custom));
    }
    Ok(out)
}

/// Checks attributes or event parameters: known keys coerced to their type, unknown keys moved
/// under `custom`, known keys found under `custom` lifted out of it, blanks left out.
fn check_fields(
    fields: Map<String, Value>,
    path: &str,
    kind_of: fn(&str) -> Option<Kind>,
    settings: &RuleSettings,
) -> Result<Map<String, Value>, String> {
    let mut known = Map::new();
    let mut custom = Map::new();
    let mut place =
        |key: String, value: Value, known: &mut Map<String, Value>| -> Result<(), String> {
            if is_blank(&value) {
                return Ok(());
            }
            match kind_of(&key) {
                Some(kind) => {
                    let value = coerce(value, kind, At(path, &key), settings)?;
                    known.entry(key).or_insert(value);
                }
                // Insider's custom fields hold scalars and arrays of scalars; nested objects have
                // no place there and are left out rather than sent to be dropped silently.
                None if is_custom_value(&value) => {
                    custom.insert(key, value);
                }
                None => {}
            }
            Ok(())
        };
    let mut nested = None;
    for (key, value) in fields {
        if key == "custom" {
            nested = Some(value);
            continue;
        }
        place(key, value, &mut known)?;
    }
    match nested {
        Some(Value::Object(members)) => {
            for (key, value) in members {
                place(key, value, &mut known)?;
            }
        }
        Some(other) if !is_blank(&other) => {
            return Err(format!(
                "{path}.custom: must be an object, found {}",
                short(&other)
            ));
        }
        _ => {}
    }
    if !custom.is_empty() {
        known.insert("custom".into(), Value::Object(custom));
    }
    Ok(known)
}

fn check_event(
    event: Value,
    index: usize,
    settings: &RuleSettings,
) -> Result<Map<String, Value>, String> {
    let path = format!("events.{index}");
    let Value::Object(mut event) = event else {
        return Err(format!(
            "{path}: must be an object, found {}",
            short(&event)
        ));
    };
    let mut out = Map::new();
    let name = event
        .remove("event_name")
        .and_then(|n| convert::to_text(&n))
        .map(|n| normalize_event_name(&n))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{path}.event_name: is required"))?;
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "{path}.event_name: `{name}` must start with a letter or digit"
        ));
    }
    out.insert("event_name".into(), Value::String(name.clone()));
    let timestamp = event
        .remove("timestamp")
        .filter(|t| !is_blank(t))
        .ok_or_else(|| format!("{path}.timestamp: is required"))?;
    out.insert(
        "timestamp".into(),
        coerce(
            timestamp,
            Kind::Timestamp,
            At(&path, "timestamp"),
            settings,
        )?,
    );
    let params = match event.remove("event_params") {
        Some(Value::Object(params)) => check_fields(
            params,
            &format!("{path}.event_params"),
            param_kind,
            settings,
        )?,
        None | Some(Value::Null) => Map::new(),
        Some(other) => {
            return Err(format!(
                "{path}.event_params: must be an object, found {}",
                short(&other)
            ));
        }
    };
    if let Some((_, required)) = REQUIRED_PARAMS.iter().find(|(event, _)| *event == name) {
        for param in *required {
            if !params.contains_key(*param) {
                return Err(format!(
                    "{path}.event_params.{param}: is required on a {name} event"
                ));
            }
        }
    }
    if !params.is_empty() {
        out.insert("event_params".into(), Value::Object(params));
    }
    if let Some((key, _)) = event.iter().next() {
        return Err(format!(
            "{path}.{key}: not a field of an Insider event (event_name, timestamp, event_params)"
        ));
    }
    Ok(out)
}

/// `Order Completed` → `order_completed`: lower case, every run of other characters one `_`.
pub fn normalize_event_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// A field's dotted path for messages, formatted only when a message is needed.
#[derive(Clone, Copy)]
struct At<'a>(&'a str, &'a str);

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

fn coerce(value: Value, kind: Kind, path: At<'_>, settings: &RuleSettings) -> Result<Value, String> {
    let fail = |rule: &str| format!("{path}: {} {rule}", short(&value));
    Ok(match kind {
        Kind::String => {
            Value::String(convert::to_text(&value).ok_or_else(|| fail("is not a string"))?)
        }
        Kind::Boolean => {
            Value::Bool(convert::to_boolean(&value).ok_or_else(|| fail("is not a boolean"))?)
        }
        Kind::Number => convert::to_number(&value).ok_or_else(|| fail("is not a number"))?,
        Kind::Integer => {
            convert::to_integer(&value).ok_or_else(|| fail("is not a whole number"))?
        }
        Kind::Timestamp => Value::String(
            convert::to_timestamp(&value)
                .ok_or_else(|| fail("is not an RFC 3339 date-time or epoch time"))?,
        ),
        Kind::Email => {
            let text = convert::to_text(&value).ok_or_else(|| fail("is not a string"))?;
            let text = text.trim();
            if !is_email(text) {
                return Err(fail("is not an email address (Insider: ^.+@.+\\..+$)"));
            }
            Value::String(text.to_owned())
        }
        Kind::Phone => Value::String(
            normalize_phone(&value, settings.phone_country_code.as_deref()).ok_or_else(|| {
                fail(
                    "is not an E.164 phone number with country code (Insider: ^\\+[1-9]\\d{6,14}$)",
                )
            })?,
        ),
        Kind::Language => Value::String(
            normalize_language(&value)
                .ok_or_else(|| fail("is not a language locale such as en_US"))?,
        ),
        Kind::Country => {
            let text = convert::to_text(&value).unwrap_or_default();
            let text = text.trim();
            if text.len() != 2 || !text.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(fail("is not an ISO 3166-1 alpha-2 country code"));
            }
            Value::String(text.to_ascii_uppercase())
        }
        Kind::Currency => {
            let text = convert::to_text(&value).unwrap_or_default();
            let text = text.trim();
            if text.len() != 3 || !text.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(fail("is not an ISO 4217 currency code"));
            }
            Value::String(text.to_ascii_uppercase())
        }
        Kind::Strings => {
            let items = match &value {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            let texts: Option<Vec<Value>> = items
                .iter()
                .filter(|v| !is_blank(v))
                .map(|v| convert::to_text(v).map(Value::String))
                .collect();
            Value::Array(texts.ok_or_else(|| fail("is not a list of strings"))?)
        }
        Kind::Numbers => {
            let items = match &value {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            let numbers: Option<Vec<Value>> = items.iter().map(convert::to_number).collect();
            Value::Array(numbers.ok_or_else(|| fail("is not a list of numbers"))?)
        }
    })
}

fn is_email(text: &str) -> bool {
    // Insider's rule is ^.+@.+\..+$: some `@` with text before it, and a `.` after it with text
    // on both sides.
    text.match_indices('@').any(|(at, _)| {
        let domain = &text[at + 1..];
        at > 0
            && domain
                .char_indices()
                .skip(1)
                .any(|(i, c)| c == '.' && i + 1 < domain.len())
    })
}

/// E.164 from common ways of writing a phone number: spaces, dashes, dots, slashes and
/// parentheses dropped, a leading `00` read as `+`, a national number (leading `0`) prefixed with
/// the configured country code. Without a configured code such a number cannot be made E.164
/// without guessing the country, so it is refused.
pub fn normalize_phone(value: &Value, country_code: Option<&str>) -> Option<String> {
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
    let text = convert::to_text(value)?;
    let mut parts = text.trim().split(['-', '_']);
    let language = parts.next()?.to_ascii_lowercase();
    let region = parts.next_back().map(str::to_ascii_uppercase);
    let letters = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_alphabetic());
    if !(letters(&language, 2) || letters(&language, 3)) {
        return None;
    }
    match region {
        None => Some(language),
        Some(region) if letters(&region, 2) => Some(format!("{language}_{region}")),
        Some(_) => None,
    }
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn is_custom_value(value: &Value) -> bool {
    match value {
        Value::Object(_) => false,
        Value::Array(items) => items.iter().all(|v| !v.is_object() && !v.is_array()),
        _ => true,
    }
}

/// A value quoted for a reason, cut short.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
