//! What GA4's validation server (`/debug/mp/collect`) flags in a Measurement Protocol payload, as
//! validation messages (`fieldPath`, `description`, `validationCode`). This is an independent
//! reading of Google's documentation, deliberately not shared with `hardal-ga4`, so that each
//! checks the other.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Map, Value};

/// One validation message, in the shape GA4's validation server answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ValidationMessage {
    #[serde(rename = "fieldPath")]
    pub field_path: String,
    pub description: String,
    #[serde(rename = "validationCode")]
    pub validation_code: String,
}

fn message(path: impl Into<String>, code: &str, description: String) -> ValidationMessage {
    ValidationMessage {
        field_path: path.into(),
        description,
        validation_code: code.to_owned(),
    }
}

const RESERVED_EVENTS: &[&str] = &[
    "ad_activeview",
    "ad_click",
    "ad_exposure",
    "ad_impression",
    "ad_query",
    "ad_reward",
    "adunit_exposure",
    "app_background",
    "app_clear_data",
    "app_exception",
    "app_install",
    "app_remove",
    "app_store_refund",
    "app_store_subscription_cancel",
    "app_store_subscription_convert",
    "app_store_subscription_renew",
    "app_update",
    "app_upgrade",
    "dynamic_link_app_open",
    "dynamic_link_app_update",
    "dynamic_link_first_open",
    "error",
    "firebase_campaign",
    "firebase_in_app_message_action",
    "firebase_in_app_message_dismiss",
    "firebase_in_app_message_impression",
    "first_open",
    "first_visit",
    "in_app_purchase",
    "notification_dismiss",
    "notification_foreground",
    "notification_open",
    "notification_receive",
    "os_update",
    "session_start",
    "session_start_with_rollout",
    "user_engagement",
];
const RESERVED_PREFIXES: &[&str] = &["_", "firebase_", "ga_", "google_", "gtag."];
const RESERVED_USER_PROPERTIES: &[&str] = &[
    "first_open_time",
    "first_visit_time",
    "last_deep_link_referrer",
    "user_id",
    "first_open_after_install",
];
const WINDOW: Duration = Duration::from_secs(72 * 3600);

/// Whether `name` is a GA4 name: starts with a letter, then letters, digits and `_`.
fn well_formed(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(char::is_alphabetic) && chars.all(|c| c.is_alphanumeric() || c == '_')
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Longest value a parameter may have.
fn value_limit(param: &str) -> usize {
    match param {
        "page_location" => 1000,
        "page_referrer" => 420,
        "page_title" => 300,
        _ => 100,
    }
}

/// Every validation message for `body`, received at `now`.
pub fn validate(body: &Map<String, Value>, now: SystemTime) -> Vec<ValidationMessage> {
    let mut out = Vec::new();
    match body.get("client_id") {
        Some(Value::String(id)) if !id.is_empty() => {}
        _ => out.push(message(
            "client_id",
            "VALUE_REQUIRED",
            "client_id is required for web streams".into(),
        )),
    }
    if let Some(user_id) = body.get("user_id") {
        match user_id.as_str() {
            Some(id) if chars(id) <= 256 => {}
            _ => out.push(message(
                "user_id",
                "VALUE_INVALID",
                "user_id is a string of at most 256 characters".into(),
            )),
        }
    }
    if let Some(consent) = body.get("consent") {
        validate_consent(consent, &mut out);
    }
    if let Some(properties) = body.get("user_properties") {
        validate_user_properties(properties, &mut out);
    }
    if let Some(micros) = body.get("timestamp_micros") {
        validate_timestamp("timestamp_micros", micros, now, &mut out);
    }
    match body.get("events") {
        Some(Value::Array(events)) if !events.is_empty() => {
            if events.len() > 25 {
                out.push(message(
                    "events",
                    "EXCEEDED_MAX_ENTITIES",
                    format!(
                        "A request can have at most 25 events; it has {}.",
                        events.len()
                    ),
                ));
            }
            for (i, event) in events.iter().enumerate() {
                validate_event(i, event, now, &mut out);
            }
        }
        _ => out.push(message(
            "events",
            "VALUE_REQUIRED",
            "events is a non-empty array".into(),
        )),
    }
    out
}

fn validate_consent(consent: &Value, out: &mut Vec<ValidationMessage>) {
    let Some(consent) = consent.as_object() else {
        out.push(message(
            "consent",
            "VALUE_INVALID",
            "consent is an object".into(),
        ));
        return;
    };
    for (key, value) in consent {
        let path = format!("consent.{key}");
        if key != "ad_user_data" && key != "ad_personalization" {
            out.push(message(
                path,
                "NAME_INVALID",
                format!("Unknown consent field [{key}]."),
            ));
        } else if !matches!(value.as_str(), Some("GRANTED" | "DENIED")) {
            out.push(message(
                path,
                "VALUE_INVALID",
                format!("Consent [{key}] is GRANTED or DENIED, not {value}."),
            ));
        }
    }
}

fn validate_user_properties(properties: &Value, out: &mut Vec<ValidationMessage>) {
    let Some(properties) = properties.as_object() else {
        out.push(message(
            "user_properties",
            "VALUE_INVALID",
            "user_properties is an object".into(),
        ));
        return;
    };
    if properties.len() > 25 {
        out.push(message(
            "user_properties",
            "EXCEEDED_MAX_ENTITIES",
            format!("At most 25 user properties; got {}.", properties.len()),
        ));
    }
    for (name, property) in properties {
        let path = format!("user_properties.{name}");
        if RESERVED_USER_PROPERTIES.contains(&name.as_str())
            || ["_", "firebase_", "ga_", "google_"]
                .iter()
                .any(|p| name.starts_with(p))
        {
            out.push(message(
                &path,
                "NAME_RESERVED",
                format!("User property name [{name}] is reserved."),
            ));
        } else if !well_formed(name) || chars(name) > 24 {
            out.push(message(
                &path,
                "NAME_INVALID",
                format!("User property name [{name}] is invalid."),
            ));
        }
        match property.get("value") {
            Some(Value::String(v)) if chars(v) > 36 => out.push(message(
                &path,
                "VALUE_OUT_OF_BOUNDS",
                format!("User property [{name}] value is longer than 36 characters."),
            )),
            Some(Value::String(_) | Value::Number(_) | Value::Bool(_)) => {}
            _ => out.push(message(
                &path,
                "VALUE_INVALID",
                format!("User property [{name}] has no value."),
            )),
        }
    }
}

fn validate_timestamp(
    path: &str,
    micros: &Value,
    now: SystemTime,
    out: &mut Vec<ValidationMessage>,
) {
    let Some(micros) = micros.as_u64() else {
        out.push(message(
            path,
            "VALUE_INVALID",
            "timestamp_micros is a number of microseconds".into(),
        ));
        return;
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
    if now.duration_since(at).is_ok_and(|age| age > WINDOW) {
        out.push(message(
            path,
            "VALUE_OUT_OF_BOUNDS",
            "timestamp_micros is more than 72 hours in the past.".into(),
        ));
    }
    if at
        .duration_since(now)
        .is_ok_and(|ahead| ahead > Duration::from_secs(15 * 60))
    {
        out.push(message(
            path,
            "VALUE_OUT_OF_BOUNDS",
            "timestamp_micros is in the future.".into(),
        ));
    }
}

fn validate_event(i: usize, event: &Value, now: SystemTime, out: &mut Vec<ValidationMessage>) {
    let path = format!("events[{i}]");
    let Some(event) = event.as_object() else {
        out.push(message(
            path,
            "VALUE_INVALID",
            format!("Event at index: [{i}] is not an object."),
        ));
        return;
    };
    let name = event.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        out.push(message(
            format!("{path}.name"),
            "VALUE_REQUIRED",
            format!("Event at index: [{i}] has no name."),
        ));
    } else if !well_formed(name) || chars(name) > 40 {
        out.push(message(
            format!("{path}.name"),
            "NAME_INVALID",
            format!("Event at index: [{i}] has invalid name [{name}]. Names must start with an alphabetic character."),
        ));
    } else if RESERVED_EVENTS.contains(&name)
        || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
    {
        out.push(message(
            format!("{path}.name"),
            "NAME_RESERVED",
            format!("Event at index: [{i}] has reserved name [{name}]."),
        ));
    }
    if let Some(micros) = event.get("timestamp_micros") {
        validate_timestamp(&format!("{path}.timestamp_micros"), micros, now, out);
    }
    let empty = Map::new();
    let params = match event.get("params") {
        None => &empty,
        Some(Value::Object(params)) => params,
        Some(_) => {
            out.push(message(
                format!("{path}.params"),
                "VALUE_INVALID",
                "params is an object".into(),
            ));
            &empty
        }
    };
    if params.len() > 25 {
        out.push(message(
            format!("{path}.params"),
            "EXCEEDED_MAX_ENTITIES",
            format!(
                "Event at index: [{i}] has {} params; at most 25.",
                params.len()
            ),
        ));
    }
    for (key, value) in params {
        let param_path = format!("{path}.params.{key}");
        if RESERVED_PREFIXES.iter().any(|p| key.starts_with(p)) {
            out.push(message(
                &param_path,
                "NAME_RESERVED",
                format!("Param [{key}] has a reserved prefix."),
            ));
        } else if !well_formed(key) || chars(key) > 40 {
            out.push(message(
                &param_path,
                "NAME_INVALID",
                format!("Param [{key}] has an invalid name."),
            ));
        }
        match value {
            Value::String(text) if chars(text) > value_limit(key) => out.push(message(
                &param_path,
                "VALUE_OUT_OF_BOUNDS",
                format!(
                    "Param [{key}] value is longer than {} characters.",
                    value_limit(key)
                ),
            )),
            Value::Array(items) if key == "items" => validate_items(&param_path, items, out),
            Value::Array(_) | Value::Object(_) | Value::Null => out.push(message(
                &param_path,
                "VALUE_INVALID",
                format!("Param [{key}] is not a string or a number."),
            )),
            _ => {}
        }
    }
    if params.contains_key("value") && !params.contains_key("currency") {
        out.push(message(
            format!("{path}.params.currency"),
            "VALUE_REQUIRED",
            "currency is required when value is set.".into(),
        ));
    }
    if name == "purchase" && !params.contains_key("transaction_id") {
        out.push(message(
            format!("{path}.params.transaction_id"),
            "VALUE_REQUIRED",
            "purchase requires transaction_id.".into(),
        ));
    }
}

fn validate_items(path: &str, items: &[Value], out: &mut Vec<ValidationMessage>) {
    for (j, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{j}]");
        let Some(item) = item.as_object() else {
            out.push(message(
                item_path,
                "VALUE_INVALID",
                "an item is an object".into(),
            ));
            continue;
        };
        if !item.contains_key("item_id") && !item.contains_key("item_name") {
            out.push(message(
                &item_path,
                "VALUE_REQUIRED",
                "Item requires item_id or item_name.".into(),
            ));
        }
        for (key, value) in item {
            match value {
                Value::String(text) if chars(text) > 100 => out.push(message(
                    format!("{item_path}.{key}"),
                    "VALUE_OUT_OF_BOUNDS",
                    format!("Item param [{key}] value is longer than 100 characters."),
                )),
                Value::Array(_) | Value::Object(_) | Value::Null => out.push(message(
                    format!("{item_path}.{key}"),
                    "VALUE_INVALID",
                    format!("Item param [{key}] is not a string or a number."),
                )),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(body: Value) -> Vec<String> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_734_600_000);
        validate(body.as_object().unwrap(), now)
            .into_iter()
            .map(|m| format!("{} {}", m.field_path, m.validation_code))
            .collect()
    }

    #[test]
    fn flags_what_the_validation_server_flags() {
        assert_eq!(
            codes(
                json!({"client_id": "c", "events": [{"name": "purchase", "params": {"transaction_id": "T", "value": 1, "currency": "TRY"}}]})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            codes(json!({"events": [
                {"name": "_badEventName", "params": {}},
                {"name": "session_start"},
                {"name": "ok", "params": {"google_x": 1, "long": "x".repeat(101), "value": 3}},
                {"name": "ok", "timestamp_micros": 1_734_000_000_000_000u64}
            ]})),
            [
                "client_id VALUE_REQUIRED",
                "events[0].name NAME_INVALID",
                "events[1].name NAME_RESERVED",
                "events[2].params.google_x NAME_RESERVED",
                "events[2].params.long VALUE_OUT_OF_BOUNDS",
                "events[2].params.currency VALUE_REQUIRED",
                "events[3].timestamp_micros VALUE_OUT_OF_BOUNDS",
            ]
        );
    }
}
