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

/// Applies Insider's rules to one rendered user object. The object is changed in place: most of
/// what presets render is already right, and rebuilding every map would cost more than the
/// checks themselves.
pub fn check_user(user: Value, settings: &RuleSettings) -> Result<Checked, String> {
    let Value::Object(mut user) = user else {
        return Err(format!(
            "a user object must be a JSON object, found {}",
            short(&user)
        ));
    };
    if let Some(key) = user.keys().find(|k| {
        !matches!(
            k.as_str(),
            "identifiers" | "insider_id" | "attributes" | "events" | "not_append"
        )
    }) {
        return Err(format!(
            "{key}: not a field of an Insider user object (identifiers, attributes, events)"
        ));
    }
    match user.get_mut("identifiers") {
        Some(Value::Object(identifiers)) => {
            check_identifiers(identifiers, settings)?;
            if identifiers.is_empty() {
                user.shift_remove("identifiers");
            }
        }
        Some(other) => {
            return Err(format!(
                "identifiers: must be an object, found {}",
                short(other)
            ));
        }
        None => {}
    }
    if let Some(id) = user.get_mut("insider_id") {
        *id = Value::String(convert::to_text(id).ok_or("insider_id: must be a string")?);
    }
    if !user.contains_key("identifiers") && !user.contains_key("insider_id") {
        return Ok(Checked::Nothing(
            "no identifier to send (email, phone_number, uuid or a configured custom identifier)"
                .into(),
        ));
    }

    match user.get_mut("attributes") {
        Some(Value::Object(attributes)) => {
            check_fields(attributes, &"attributes", attribute_kind, settings)?;
            if attributes.is_empty() {
                user.shift_remove("attributes");
            }
        }
        Some(other) => {
            return Err(format!(
                "attributes: must be an object, found {}",
                short(other)
            ));
        }
        None => {}
    }

    if let Some(events) = user.get_mut("events") {
        if events.is_object() {
            *events = Value::Array(vec![std::mem::take(events)]);
        }
        let Value::Array(list) = events else {
            return Err(format!("events: must be an array, found {}", short(events)));
        };
        for (i, event) in list.iter_mut().enumerate() {
            check_event(event, i, settings)?;
        }
        if list.is_empty() {
            user.shift_remove("events");
        }
    }

    if !user.contains_key("attributes") && !user.contains_key("events") {
        return Ok(Checked::Nothing(
            "neither attributes nor events to send".into(),
        ));
    }
    user.shift_remove("not_append");
    if settings.not_append {
        user.insert("not_append".into(), Value::Bool(true));
    }
    Ok(Checked::User(user))
}

fn check_identifiers(
    identifiers: &mut Map<String, Value>,
    settings: &RuleSettings,
) -> Result<(), String> {
    let mut custom = match identifiers.shift_remove("custom") {
        Some(Value::Object(members)) => members,
        Some(other) if !is_blank(&other) => {
            return Err(format!(
                "identifiers.custom: must be an object, found {}",
                short(&other)
            ));
        }
        _ => Map::new(),
    };
    custom.retain(|name, value| !is_blank(value) && settings.custom_identifiers.contains(name));
    identifiers.retain(|_, value| !is_blank(value));
    let moved: Vec<String> = identifiers
        .keys()
        .filter(|key| !STANDARD_IDENTIFIERS.contains(&key.as_str()))
        .cloned()
        .collect();
    for key in moved {
        if !settings.custom_identifiers.contains(&key) {
            return Err(format!(
                "identifiers.{key}: not an Insider identifier (email, phone_number, uuid, custom) nor a configured custom identifier"
            ));
        }
        let value = identifiers.shift_remove(&key).expect("listed above");
        custom.insert(key, value);
    }
    identifiers.retain(|key, _| settings.standard_identifiers.iter().any(|s| s == key));
    for (key, value) in identifiers.iter_mut() {
        let kind = match key.as_str() {
            "email" => Kind::Email,
            "phone_number" => Kind::Phone,
            _ => Kind::String,
        };
        *value = coerce(
            std::mem::take(value),
            kind,
            At(&"identifiers", key),
            settings,
        )?;
    }
    for (name, value) in custom.iter_mut() {
        *value = coerce(
            std::mem::take(value),
            Kind::String,
            At(&"identifiers.custom", name),
            settings,
        )?;
    }
    if !custom.is_empty() {
        identifiers.insert("custom".into(), Value::Object(custom));
    }
    Ok(())
}

/// Checks attributes or event parameters in place: known keys coerced to their type, unknown
/// keys moved under `custom`, known keys found under `custom` lifted out of it (a value at the top
/// level wins), blanks left out.
fn check_fields(
    fields: &mut Map<String, Value>,
    path: &dyn std::fmt::Display,
    kind_of: fn(&str) -> Option<Kind>,
    settings: &RuleSettings,
) -> Result<(), String> {
    let mut custom = match fields.shift_remove("custom") {
        Some(Value::Object(members)) => members,
        Some(other) if !is_blank(&other) => {
            return Err(format!(
                "{path}.custom: must be an object, found {}",
                short(&other)
            ));
        }
        _ => Map::new(),
    };
    fields.retain(|_, value| !is_blank(value));
    custom.retain(|_, value| !is_blank(value));
    let unknown: Vec<String> = fields
        .keys()
        .filter(|key| kind_of(key).is_none())
        .cloned()
        .collect();
    for key in unknown {
        let value = fields.shift_remove(&key).expect("listed above");
        custom.entry(key).or_insert(value);
    }
    let known: Vec<String> = custom
        .keys()
        .filter(|key| kind_of(key).is_some())
        .cloned()
        .collect();
    for key in known {
        let value = custom.shift_remove(&key).expect("listed above");
        fields.entry(key).or_insert(value);
    }
    for (key, value) in fields.iter_mut() {
        let kind = kind_of(key).expect("unknown keys were moved under custom");
        *value = coerce(std::mem::take(value), kind, At(path, key), settings)?;
    }
    // Insider's custom fields hold scalars and arrays of scalars; nested objects have no place
    // there and are left out rather than sent to be dropped silently.
    custom.retain(|_, value| is_custom_value(value));
    if !custom.is_empty() {
        fields.insert("custom".into(), Value::Object(custom));
    }
    Ok(())
}

fn check_event(event: &mut Value, index: usize, settings: &RuleSettings) -> Result<(), String> {
    let Value::Object(event) = event else {
        return Err(format!(
            "events.{index}: must be an object, found {}",
            short(event)
        ));
    };
    if let Some(key) = event
        .keys()
        .find(|k| !matches!(k.as_str(), "event_name" | "timestamp" | "event_params"))
    {
        return Err(format!(
            "events.{index}.{key}: not a field of an Insider event (event_name, timestamp, event_params)"
        ));
    }
    let name = match event.get_mut("event_name") {
        Some(Value::String(name)) if is_event_name(name) => name.clone(),
        Some(value) => {
            let name = convert::to_text(value)
                .map(|n| normalize_event_name(&n))
                .unwrap_or_default();
            *value = Value::String(name.clone());
            name
        }
        None => String::new(),
    };
    if name.is_empty() {
        return Err(format!("events.{index}.event_name: is required"));
    }
    match event.get_mut("timestamp") {
        Some(timestamp) if !is_blank(timestamp) => {
            *timestamp = coerce(
                std::mem::take(timestamp),
                Kind::Timestamp,
                At(&EventPath(index, ""), "timestamp"),
                settings,
            )?;
        }
        _ => return Err(format!("events.{index}.timestamp: is required")),
    }
    match event.get_mut("event_params") {
        Some(Value::Object(params)) => {
            check_fields(
                params,
                &EventPath(index, "event_params"),
                param_kind,
                settings,
            )?;
            if params.is_empty() {
                event.shift_remove("event_params");
            }
        }
        None => {}
        Some(Value::Null) => {
            event.shift_remove("event_params");
        }
        Some(other) => {
            return Err(format!(
                "events.{index}.event_params: must be an object, found {}",
                short(other)
            ));
        }
    }
    if let Some((_, required)) = REQUIRED_PARAMS.iter().find(|(event, _)| *event == name) {
        let params = event.get("event_params").and_then(Value::as_object);
        for param in *required {
            if !params.is_some_and(|p| p.contains_key(*param)) {
                return Err(format!(
                    "events.{index}.event_params.{param}: is required on a {name} event"
                ));
            }
        }
    }
    Ok(())
}

/// Whether a name is already an Insider event name (`^[a-z0-9][a-z0-9_]*$` with no doubled or
/// trailing `_`), so it needs no normalizing.
fn is_event_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0] != b'_'
        && bytes[bytes.len() - 1] != b'_'
        && !name.contains("__")
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
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
struct At<'a>(&'a dyn std::fmt::Display, &'a str);

/// `events.<index>` or `events.<index>.<part>`, formatted only for messages.
struct EventPath(usize, &'static str);

impl std::fmt::Display for EventPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            "" => write!(f, "events.{}", self.0),
            part => write!(f, "events.{}.{part}", self.0),
        }
    }
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
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
        (Kind::Email, Value::String(s)) => s.trim().len() == s.len() && is_email(s),
        (Kind::Country, Value::String(s)) => upper(s, 2),
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
        _ => false,
    }
}

fn coerce(
    value: Value,
    kind: Kind,
    path: At<'_>,
    settings: &RuleSettings,
) -> Result<Value, String> {
    if already_canonical(&value, kind) {
        return Ok(value);
    }
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
    if !letters(&language, 2) {
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
