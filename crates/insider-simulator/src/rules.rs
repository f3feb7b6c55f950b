//! Validation of one user object by Insider's documented rules.
//!
//! [`validate_user`] returns the broken rules of a user as [`Violation`]s whose `path` is the part of
//! Insider's error key after `users.<index>.`, for example `events.0.event_params.*.required` or
//! `identifiers.*.regexp(^\+[1-9]\d{6,14}$)`. A valid user costs no allocation: keys and messages
//! are only built for rules that are broken.
//!
//! Where Insider silently drops data (an unknown attribute, a mistyped value) the simulator rejects
//! the user instead, so a test catches the mistake that production would hide.

use serde_json::Value;

use crate::lite::Lite;
use crate::patterns;

/// One broken rule of a user object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The error key without its `users.<index>.` prefix.
    pub path: String,
    /// A human message naming the offending field and showing its value.
    pub message: String,
}

/// The keys a user object may hold.
const USER_KEYS: &str = "identifiers,insider_id,attributes,events,not_append";
/// The keys an event may hold.
const EVENT_KEYS: &str = "event_name,timestamp,event_params";
/// The identifier keys Insider knows.
const IDENTIFIER_KEYS: &str = "email,phone_number,uuid,custom";

/// The JSON type (or shape) a default attribute or event parameter must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Str,
    Number,
    Integer,
    Object,
    NumberArray,
    StringArray,
    Email,
    Phone,
    BirthdayZ,
    Language,
    Country,
    Currency,
}

impl Kind {
    /// Checks a value; on failure returns the rule (as it appears in the error key) and a phrase
    /// that completes "`<field>` must be ...".
    fn check(self, value: &Lite<'_>) -> Result<(), (String, &'static str)> {
        let string = value.as_str();
        let ok = match self {
            Kind::Bool => value.is_boolean(),
            Kind::Str => value.is_string(),
            Kind::Number => value.is_number(),
            Kind::Integer => value.is_integer(),
            Kind::Object => value.is_object(),
            Kind::NumberArray => value
                .as_array()
                .is_some_and(|items| items.iter().all(Lite::is_number)),
            Kind::StringArray => value
                .as_array()
                .is_some_and(|items| items.iter().all(Lite::is_string)),
            Kind::Email => string.is_some_and(patterns::is_email),
            Kind::Phone => string.is_some_and(patterns::is_phone),
            Kind::BirthdayZ => string.is_some_and(patterns::is_rfc3339_utc_z),
            Kind::Language => string.is_some_and(patterns::is_language),
            Kind::Country => string.is_some_and(patterns::is_country),
            Kind::Currency => string.is_some_and(patterns::is_currency),
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            Kind::Bool => ("type(bool)".into(), "a boolean"),
            Kind::Str => ("type(string)".into(), "a string"),
            Kind::Number => ("type(number)".into(), "a number"),
            Kind::Integer => ("type(integer)".into(), "an integer"),
            Kind::Object => ("type(object)".into(), "an object"),
            Kind::NumberArray => ("type(array[number])".into(), "an array of numbers"),
            Kind::StringArray => ("type(array[string])".into(), "an array of strings"),
            Kind::Email => (regexp(patterns::EMAIL), "an e-mail address"),
            Kind::Phone => (regexp(patterns::PHONE), "an E.164 phone number"),
            Kind::BirthdayZ => (
                "datetime(rfc3339,Z)".into(),
                "an RFC 3339 date-time in UTC ending in Z",
            ),
            Kind::Language => (regexp(patterns::LANGUAGE), "a locale such as en_US"),
            Kind::Country => (
                regexp(patterns::COUNTRY),
                "an ISO 3166-1 alpha-2 country code",
            ),
            Kind::Currency => (regexp(patterns::CURRENCY), "an ISO 4217 currency code"),
        })
    }
}

/// The default attributes and their kinds; anything else belongs under `attributes.custom`.
fn attribute_kind(key: &str) -> Option<Kind> {
    Some(match key {
        "email" => Kind::Email,
        "phone_number" => Kind::Phone,
        "uuid" | "name" | "surname" | "gender" | "city" | "lo" => Kind::Str,
        "email_optin" | "sms_optin" | "whatsapp_optin" | "gdpr_optin" => Kind::Bool,
        "age" => Kind::Number,
        "birthday" => Kind::BirthdayZ,
        "language" => Kind::Language,
        "country" => Kind::Country,
        "list_id" | "static_segment_id" => Kind::NumberArray,
        "custom" => Kind::Object,
        _ => return None,
    })
}

/// The default event parameters and their kinds; anything else belongs under `event_params.custom`.
fn param_kind(key: &str) -> Option<Kind> {
    Some(match key {
        "event_group_id" | "product_id" | "name" | "url" | "product_image_url" | "locale"
        | "color" | "size" | "promotion_name" | "referrer" => Kind::Str,
        "taxonomy" => Kind::StringArray,
        "currency" => Kind::Currency,
        "quantity" => Kind::Integer,
        "unit_price" | "unit_sale_price" | "shipping_cost" | "promotion_discount" => Kind::Number,
        "custom" => Kind::Object,
        _ => return None,
    })
}

/// The parameters an event of this name must carry.
fn required_params(event_name: &str) -> &'static [&'static str] {
    match event_name {
        "purchase" => &["event_group_id", "currency", "unit_sale_price", "quantity"],
        "cart_page_view" => &["event_group_id", "currency", "unit_sale_price"],
        _ => &[],
    }
}

fn regexp(pattern: &str) -> String {
    format!("regexp({pattern})")
}

/// Shows an offending value in a message: strings as they are (as Insider's own example does),
/// anything else as compact JSON, cut short so a huge value cannot bloat the response.
fn shown(value: &Lite<'_>) -> String {
    const MAX: usize = 120;
    let text = match value {
        Lite::String(s) => s.to_string(),
        other => other.to_string(),
    };
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Collects violations of one user.
struct Check {
    found: Vec<Violation>,
}

impl Check {
    fn add(&mut self, path: String, message: String) {
        self.found.push(Violation { path, message });
    }
}

/// Validates one user object, as parsed from a request body; an empty result means Insider would
/// accept it.
pub fn validate_user(user: &Lite<'_>) -> Vec<Violation> {
    let mut check = Check { found: Vec::new() };
    let Some(members) = user.as_object() else {
        check.add(
            "type(object)".into(),
            format!("user must be an object: {}", shown(user)),
        );
        return check.found;
    };
    for (key, _) in members {
        if !USER_KEYS.split(',').any(|known| known == key.as_ref()) {
            check.add(
                format!("{key}.in({USER_KEYS})"),
                format!("{key} is not a user field; a user holds {USER_KEYS}"),
            );
        }
    }
    if let Some(insider_id) = user.get("insider_id")
        && !insider_id.is_string()
    {
        check.add(
            "insider_id.type(string)".into(),
            format!("insider_id must be a string: {}", shown(insider_id)),
        );
    }
    match (user.get("identifiers"), user.get("insider_id")) {
        (Some(identifiers), _) => check_identifiers(&mut check, identifiers),
        (None, Some(_)) => {}
        (None, None) => check.add(
            "identifiers.required".into(),
            "identifiers is required".into(),
        ),
    }
    let attributes = user.get("attributes");
    // An empty events array carries nothing, so it does not satisfy "attributes or events".
    let events = user
        .get("events")
        .filter(|events| events.as_array().is_none_or(|items| !items.is_empty()));
    if attributes.is_none() && events.is_none() {
        check.add(
            "attributes.required_without(events)".into(),
            "user must have attributes or events".into(),
        );
    }
    if let Some(attributes) = attributes {
        check_attributes(&mut check, attributes);
    }
    if let Some(events) = user.get("events") {
        check_events(&mut check, events);
    }
    if let Some(not_append) = user.get("not_append")
        && !not_append.is_boolean()
    {
        check.add(
            "not_append.type(bool)".into(),
            format!("not_append must be a boolean: {}", shown(not_append)),
        );
    }
    check.found
}

/// [`validate_user`] for a user already held as a `serde_json::Value`, for callers outside the
/// server (a destination's own tests, say).
pub fn validate_value(user: &Value) -> Vec<Violation> {
    let text = user.to_string();
    match Lite::parse(text.as_bytes()) {
        Ok(user) => validate_user(&user),
        // A `Value` always writes valid JSON, so this cannot happen; say so rather than panic.
        Err(error) => vec![Violation {
            path: "type(object)".into(),
            message: format!("user is not valid JSON: {error}"),
        }],
    }
}

fn check_identifiers(check: &mut Check, identifiers: &Lite<'_>) {
    let Some(identifiers) = identifiers.as_object() else {
        check.add(
            "identifiers.type(object)".into(),
            format!("identifiers must be an object: {}", shown(identifiers)),
        );
        return;
    };
    // Insider's own example keys identifier errors with `*` instead of the identifier's name, so
    // the message carries the name.
    let mut count = 0;
    for (key, value) in identifiers {
        match key.as_ref() {
            "email" => {
                count += 1;
                if Kind::Email.check(value).is_err() {
                    check.add(
                        format!("identifiers.*.{}", regexp(patterns::EMAIL)),
                        format!("user has an invalid email: {}", shown(value)),
                    );
                }
            }
            "phone_number" => {
                count += 1;
                if Kind::Phone.check(value).is_err() {
                    check.add(
                        format!("identifiers.*.{}", regexp(patterns::PHONE)),
                        format!("user has an invalid phone number: {}", shown(value)),
                    );
                }
            }
            "uuid" => {
                count += 1;
                if !value.is_string() {
                    check.add(
                        "identifiers.*.type(string)".into(),
                        format!("user has an invalid uuid: {}", shown(value)),
                    );
                }
            }
            "custom" => check_custom_identifiers(check, value, &mut count),
            other => check.add(
                format!("identifiers.*.in({IDENTIFIER_KEYS})"),
                format!("user has an unknown identifier: {other}"),
            ),
        }
    }
    if count == 0
        && check
            .found
            .iter()
            .all(|v| !v.path.starts_with("identifiers"))
    {
        check.add(
            "identifiers.*.required".into(),
            "user must have at least one identifier".into(),
        );
    }
}

fn check_custom_identifiers(check: &mut Check, custom: &Lite<'_>, count: &mut usize) {
    let Some(custom) = custom.as_object() else {
        check.add(
            "identifiers.custom.type(object)".into(),
            format!("custom identifiers must be an object: {}", shown(custom)),
        );
        return;
    };
    for (name, value) in custom {
        *count += 1;
        if !value.is_string() {
            check.add(
                "identifiers.custom.*.type(string)".into(),
                format!(
                    "custom identifier {name} must be a string: {}",
                    shown(value)
                ),
            );
        }
    }
}

fn check_attributes(check: &mut Check, attributes: &Lite<'_>) {
    let Some(attributes) = attributes.as_object() else {
        check.add(
            "attributes.type(object)".into(),
            format!("attributes must be an object: {}", shown(attributes)),
        );
        return;
    };
    if attributes.is_empty() {
        check.add(
            "attributes.min(1)".into(),
            "attributes must hold at least one attribute".into(),
        );
    }
    for (key, value) in attributes {
        match attribute_kind(key) {
            Some(kind) => check_typed(check, "attributes", key, kind, value),
            None => check.add(
                format!("attributes.{key}.unknown_default_attribute"),
                format!(
                    "{key} is not a default attribute; custom attributes belong under attributes.custom"
                ),
            ),
        }
    }
}

/// Checks one typed field and reports it under `<prefix>.<key>.<rule>`.
fn check_typed(check: &mut Check, prefix: &str, key: &str, kind: Kind, value: &Lite<'_>) {
    if let Err((rule, expected)) = kind.check(value) {
        let message = match kind {
            // The phrasing of Insider's example for identifiers, reused for the same data here.
            Kind::Email => format!("user has an invalid email: {}", shown(value)),
            Kind::Phone => format!("user has an invalid phone number: {}", shown(value)),
            _ => format!("{key} must be {expected}: {}", shown(value)),
        };
        check.add(format!("{prefix}.{key}.{rule}"), message);
    }
}

fn check_events(check: &mut Check, events: &Lite<'_>) {
    let Some(events) = events.as_array() else {
        check.add(
            "events.type(array)".into(),
            format!("events must be an array: {}", shown(events)),
        );
        return;
    };
    for (index, event) in events.iter().enumerate() {
        check_event(check, index, event);
    }
}

fn check_event(check: &mut Check, index: usize, event: &Lite<'_>) {
    let Some(members) = event.as_object() else {
        check.add(
            format!("events.{index}.type(object)"),
            format!("event must be an object: {}", shown(event)),
        );
        return;
    };
    for (key, _) in members {
        if !EVENT_KEYS.split(',').any(|known| known == key.as_ref()) {
            check.add(
                format!("events.{index}.{key}.in({EVENT_KEYS})"),
                format!("{key} is not an event field; an event holds {EVENT_KEYS}"),
            );
        }
    }
    let name = match event.get("event_name") {
        None => {
            check.add(
                format!("events.{index}.event_name.required"),
                "event_name is required".into(),
            );
            None
        }
        Some(Lite::String(name)) if patterns::is_event_name(name) => Some(name.as_ref()),
        Some(other) => {
            check.add(
                format!("events.{index}.event_name.{}", regexp(patterns::EVENT_NAME)),
                format!("event has an invalid event_name: {}", shown(other)),
            );
            None
        }
    };
    match event.get("timestamp") {
        None => check.add(
            format!("events.{index}.timestamp.required"),
            "timestamp is required".into(),
        ),
        Some(Lite::String(ts)) if patterns::is_rfc3339(ts) => {}
        Some(other) => check.add(
            format!("events.{index}.timestamp.datetime(rfc3339)"),
            format!("timestamp must be an RFC 3339 date-time: {}", shown(other)),
        ),
    }
    let params = match event.get("event_params") {
        None => None,
        Some(params @ Lite::Object(_)) => Some(params),
        Some(other) => {
            check.add(
                format!("events.{index}.event_params.type(object)"),
                format!("event_params must be an object: {}", shown(other)),
            );
            return;
        }
    };
    if let Some(params) = params {
        check_params(check, index, params);
    }
    if let Some(name) = name {
        for required in required_params(name) {
            if params.is_none_or(|params| params.get(required).is_none()) {
                check.add(
                    format!("events.{index}.event_params.*.required"),
                    format!("{required} parameter is required on {name} event"),
                );
            }
        }
    }
}

fn check_params(check: &mut Check, index: usize, params: &Lite<'_>) {
    for (key, value) in params.as_object().unwrap_or_default() {
        match param_kind(key) {
            Some(kind) => {
                check_typed(check, &format!("events.{index}.event_params"), key, kind, value)
            }
            None => check.add(
                format!("events.{index}.event_params.{key}.unknown_default_param"),
                format!(
                    "{key} is not a default event parameter; custom parameters belong under event_params.custom"
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_examples_give_documented_keys() {
        let cases = [
            (
                json!({"identifiers": {"email": "a@b.co"},
                       "events": [{"event_name": "purchase", "timestamp": "2024-01-01T00:00:00Z",
                                   "event_params": {"currency": "TRY", "unit_sale_price": 1, "quantity": 1}}]}),
                "events.0.event_params.*.required",
                "event_group_id parameter is required on purchase event",
            ),
            (
                json!({"identifiers": {"phone_number": "12345"}, "attributes": {"name": "A"}}),
                r"identifiers.*.regexp(^\+[1-9]\d{6,14}$)",
                "user has an invalid phone number: 12345",
            ),
        ];
        for (user, path, message) in cases {
            let found = validate_value(&user);
            assert_eq!(
                found,
                vec![Violation {
                    path: path.into(),
                    message: message.into()
                }],
                "{user}"
            );
        }
    }

    #[test]
    fn a_valid_user_has_no_violations() {
        let user = json!({
            "identifiers": {"email": "a@b.co", "custom": {"hardal_id": "u1"}},
            "attributes": {"email_optin": true, "age": 30, "birthday": "1993-03-12T00:00:00Z",
                           "language": "en_US", "country": "TR", "list_id": [1, 2],
                           "custom": {"tier": "gold"}},
            "events": [{"event_name": "cart_page_view", "timestamp": "2024-01-01T03:00:00+03:00",
                        "event_params": {"event_group_id": "o1", "currency": "TRY",
                                         "unit_sale_price": 9.5, "taxonomy": ["a"]}}],
            "not_append": true
        });
        assert_eq!(validate_value(&user), vec![]);
    }
}
