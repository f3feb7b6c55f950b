//! Meta's documented rules for a Conversions API request, read independently of the
//! `hardal-meta-capi` crate (so that each checks the other): the request's shape, then every
//! server event. Meta refuses the whole request when any one event breaks a rule, with an
//! answer that does not say which event; [`check_request`] finds the first broken rule.
//!
//! The rules: `data` holds 1 to 1,000 events; `event_name`, `event_time` (Unix seconds, at most
//! 7 days old) and `action_source` (one of Meta's values) are required; `website` events need
//! `event_source_url` and `user_data.client_user_agent`; `user_data` holds at least one
//! parameter; contact information (`em`, `ph`, `fn`, `ln`, `ct`, `st`, `zp`, `country`, `db`,
//! `ge`) is accepted only hashed (64 lower-case hex digits); `client_ip_address`,
//! `client_user_agent`, `fbc`, `fbp` are text; a `Purchase` carries a numeric `value` and a
//! three-letter `currency`; `contents` items have an `id`.
//!
//! The subcodes and titles of the answers are this stand-in's own (Meta's pages do not list
//! them); their shape is the Graph API error's.

use std::time::{Duration, SystemTime};

use serde_json::Value;

/// Most events in one request.
pub const MAX_EVENTS: usize = 1_000;
/// Oldest event Meta takes.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 86_400);

/// Top-level keys a request may carry besides `data`.
const BODY_KEYS: [&str; 7] = [
    "data",
    "test_event_code",
    "partner_agent",
    "namespace_id",
    "upload_id",
    "upload_tag",
    "upload_source",
];

const ACTION_SOURCES: [&str; 9] = [
    "website",
    "app",
    "email",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
];

/// Parameters Meta takes only hashed.
const HASHED: [&str; 10] = [
    "em", "ph", "fn", "ln", "ct", "st", "zp", "country", "db", "ge",
];
/// Parameters Meta takes as plain text.
const PLAIN: [&str; 4] = ["client_ip_address", "client_user_agent", "fbc", "fbp"];

/// Why a request is refused: an invalid parameter, as Meta's 400 says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The event at fault, when one is (the answer does not say it; the stand-in logs it).
    pub index: Option<usize>,
    pub subcode: u32,
    pub title: &'static str,
    pub message: String,
}

fn invalid(index: Option<usize>, subcode: u32, title: &'static str, message: String) -> Invalid {
    Invalid {
        index,
        subcode,
        title,
        message,
    }
}

/// The events of a well-formed request, or why the request is refused.
pub fn check_request(body: &Value, now: SystemTime) -> Result<Vec<Value>, Invalid> {
    let Some(members) = body.as_object() else {
        return Err(invalid(
            None,
            2804001,
            "Invalid Request",
            "the body is not a JSON object".into(),
        ));
    };
    if let Some(key) = members.keys().find(|k| !BODY_KEYS.contains(&k.as_str())) {
        return Err(invalid(
            None,
            2804001,
            "Invalid Request",
            format!("unknown parameter `{key}`"),
        ));
    }
    // Meta's own examples post `data` as a JSON string (form encoding); JSON bodies carry the array.
    let data = match members.get("data") {
        Some(Value::Array(events)) => events.clone(),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(events)) => events,
            _ => {
                return Err(invalid(
                    None,
                    2804001,
                    "Invalid Request",
                    "data is not a list of events".into(),
                ));
            }
        },
        _ => {
            return Err(invalid(
                None,
                2804001,
                "Invalid Request",
                "data is required: a list of events".into(),
            ));
        }
    };
    if data.is_empty() || data.len() > MAX_EVENTS {
        return Err(invalid(
            None,
            2804002,
            "Too Many Events",
            format!(
                "data must hold 1 to {MAX_EVENTS} events, not {}",
                data.len()
            ),
        ));
    }
    for (index, event) in data.iter().enumerate() {
        check_event(event, now)
            .map_err(|(subcode, title, message)| invalid(Some(index), subcode, title, message))?;
    }
    Ok(data)
}

type Broken = (u32, &'static str, String);

fn check_event(event: &Value, now: SystemTime) -> Result<(), Broken> {
    let missing = |field: &str| (2804010, "Missing Parameter", format!("{field} is required"));
    let Some(event) = event.as_object() else {
        return Err((2804011, "Invalid Event", "an event is not an object".into()));
    };
    match event.get("event_name") {
        Some(Value::String(name)) if !name.trim().is_empty() => {}
        _ => return Err(missing("event_name")),
    }
    let Some(time) = event.get("event_time") else {
        return Err(missing("event_time"));
    };
    let Some(seconds) = time.as_u64() else {
        return Err((
            2804012,
            "Invalid Event Time",
            format!("event_time {time} is not Unix seconds"),
        ));
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
    if now.duration_since(at).is_ok_and(|age| age > MAX_AGE) {
        return Err((
            2804003,
            "Event Timestamp Too Old",
            "The timestamp for this event is more than 7 days in the past.".into(),
        ));
    }
    let source = match event.get("action_source") {
        Some(Value::String(source)) if ACTION_SOURCES.contains(&source.as_str()) => source.as_str(),
        Some(other) => {
            return Err((
                2804013,
                "Invalid Action Source",
                format!("{other} is not an action source"),
            ));
        }
        None => return Err(missing("action_source")),
    };
    let user_data = match event.get("user_data") {
        Some(Value::Object(user_data)) if !user_data.is_empty() => user_data,
        _ => {
            return Err((
                2804014,
                "Missing User Data",
                "user_data needs at least one customer information parameter".into(),
            ));
        }
    };
    if source == "website" {
        if !event.get("event_source_url").is_some_and(Value::is_string) {
            return Err(missing("event_source_url (for website events)"));
        }
        if !user_data
            .get("client_user_agent")
            .is_some_and(Value::is_string)
        {
            return Err(missing("user_data.client_user_agent (for website events)"));
        }
    }
    for (key, value) in user_data {
        if HASHED.contains(&key.as_str()) {
            let values: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            for value in values {
                if !value.as_str().is_some_and(is_sha256) {
                    return Err((
                        2804015,
                        "Unhashed Customer Information",
                        format!(
                            "user_data.{key} must be a SHA-256 hash (64 lower-case hex digits), not {value}"
                        ),
                    ));
                }
            }
        } else if PLAIN.contains(&key.as_str()) && !value.is_string() {
            return Err((
                2804016,
                "Invalid User Data",
                format!("user_data.{key} must be text"),
            ));
        }
    }
    if let Some(custom) = event.get("custom_data") {
        let Some(custom) = custom.as_object() else {
            return Err((
                2804017,
                "Invalid Custom Data",
                "custom_data is not an object".into(),
            ));
        };
        if let Some(value) = custom.get("value")
            && !value.is_number()
        {
            return Err((
                2804017,
                "Invalid Custom Data",
                format!("value {value} is not a number"),
            ));
        }
        if let Some(currency) = custom.get("currency")
            && !currency
                .as_str()
                .is_some_and(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err((
                2804017,
                "Invalid Custom Data",
                format!("currency {currency} is not a currency code"),
            ));
        }
        if let Some(contents) = custom.get("contents") {
            let ok = contents.as_array().is_some_and(|items| {
                items
                    .iter()
                    .all(|item| item.get("id").is_some_and(Value::is_string))
            });
            if !ok {
                return Err((
                    2804017,
                    "Invalid Custom Data",
                    "every contents item needs an id".into(),
                ));
            }
        }
    }
    if event["event_name"] == "Purchase" {
        let custom = event.get("custom_data");
        let has = |key: &str| custom.and_then(|c| c.get(key)).is_some();
        if !has("value") || !has("currency") {
            return Err((
                2804018,
                "Missing Purchase Value",
                "a Purchase needs value and currency".into(),
            ));
        }
    }
    Ok(())
}

/// 64 lower-case hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HASH: &str = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f";

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn good() -> Value {
        json!({"event_name": "Purchase", "event_time": 1_800_000_000u64 - 3600, "action_source": "website",
               "event_source_url": "https://shop.example/", "event_id": "e1",
               "user_data": {"em": [HASH], "client_user_agent": "UA"},
               "custom_data": {"value": 12.5, "currency": "EUR", "contents": [{"id": "SKU", "quantity": 1}]}})
    }

    fn with(change: impl FnOnce(&mut Value)) -> Value {
        let mut event = good();
        change(&mut event);
        event
    }

    #[test]
    fn each_rule_refuses_the_request() {
        let cases: Vec<(&str, Value, Option<u32>)> = vec![
            ("good", good(), None),
            (
                "no name",
                with(|e| {
                    e.as_object_mut().unwrap().remove("event_name");
                }),
                Some(2804010),
            ),
            (
                "old",
                with(|e| e["event_time"] = json!(1_800_000_000u64 - 8 * 86_400)),
                Some(2804003),
            ),
            (
                "time text",
                with(|e| e["event_time"] = json!("2024-01-01")),
                Some(2804012),
            ),
            (
                "source",
                with(|e| e["action_source"] = json!("web")),
                Some(2804013),
            ),
            (
                "no url",
                with(|e| {
                    e.as_object_mut().unwrap().remove("event_source_url");
                }),
                Some(2804010),
            ),
            (
                "no ua",
                with(|e| {
                    e["user_data"]
                        .as_object_mut()
                        .unwrap()
                        .remove("client_user_agent");
                }),
                Some(2804010),
            ),
            (
                "plain email",
                with(|e| e["user_data"]["em"] = json!("a@b.co")),
                Some(2804015),
            ),
            (
                "upper hash",
                with(|e| e["user_data"]["em"] = json!(HASH.to_uppercase())),
                Some(2804015),
            ),
            (
                "value text",
                with(|e| e["custom_data"]["value"] = json!("12.5")),
                Some(2804017),
            ),
            (
                "no currency",
                with(|e| {
                    e["custom_data"].as_object_mut().unwrap().remove("currency");
                }),
                Some(2804018),
            ),
            (
                "content id",
                with(|e| e["custom_data"]["contents"] = json!([{"quantity": 1}])),
                Some(2804017),
            ),
            (
                "other source needs no url",
                with(|e| {
                    e["action_source"] = json!("other");
                    e.as_object_mut().unwrap().remove("event_source_url");
                }),
                None,
            ),
        ];
        for (name, event, expected) in cases {
            let body = json!({"data": [good(), event]});
            let got = check_request(&body, now()).err();
            assert_eq!(got.as_ref().map(|i| i.subcode), expected, "{name}: {got:?}");
            if let Some(invalid) = got {
                assert_eq!(invalid.index, Some(1), "{name}");
            }
        }
    }

    #[test]
    fn request_shape() {
        let many: Vec<Value> = (0..1001).map(|_| good()).collect();
        let cases = [
            (json!({"data": []}), Some(2804002)),
            (json!({"data": many}), Some(2804002)),
            (
                json!({"data": [good()], "access_token": "x"}),
                Some(2804001),
            ),
            (json!({"events": [good()]}), Some(2804001)),
            (
                json!({"data": serde_json::to_string(&vec![good()]).unwrap()}),
                None,
            ),
            (
                json!({"data": [good()], "test_event_code": "TEST1", "partner_agent": "hardal"}),
                None,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                check_request(&body, now()).err().map(|i| i.subcode),
                expected,
                "{body}"
            );
        }
    }
}
