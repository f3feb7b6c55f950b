//! Meta's rules for one rendered server event, applied before sending so that Meta never refuses
//! a whole request for it: required fields, `event_time` as Unix seconds and within Meta's seven
//! days, `action_source`, the website requirements (`event_source_url`, `client_user_agent`),
//! customer information normalized and hashed, and `custom_data` (`value`, `currency`,
//! `contents`) in the types Meta takes. Optional values that cannot be made right are left out
//! with a note; a missing requirement refuses the event, naming the field and the rule.

use std::time::{Duration, SystemTime};

use hardal_core::convert;
use hardal_core::{MapContext, Note, NoteAction, Notes};
use serde_json::{Map, Value};

use crate::config::ActionSource;
use crate::normalize::{self, HASHED, PLAIN};

/// Meta refuses a request holding any event older than this.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 86_400);

/// The rule an event older than [`MAX_AGE`] expires by.
pub const EXPIRY_RULE: &str = "Meta refuses events older than 7 days";

/// The settings the rules read.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    pub action_source: ActionSource,
    pub normalize: normalize::Settings,
}

/// A checked event, or the reason it is not sent.
#[derive(Debug)]
pub enum Checked {
    Event(Map<String, Value>),
    Expired(String),
}

/// A refusal: the field and what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub message: String,
}

fn refuse(field: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Where notes go, and how much they say.
struct Noter<'a> {
    notes: &'a mut Vec<Note>,
    level: Notes,
}

impl Noter<'_> {
    fn note(
        &mut self,
        action: NoteAction,
        field: &str,
        rule: &'static str,
        detail: impl FnOnce() -> String,
    ) {
        let wanted = match self.level {
            Notes::Detailed | Notes::Counted => true,
            Notes::LeftOut => action == NoteAction::Dropped,
        };
        if !wanted {
            return;
        }
        let detail = match (self.level, action) {
            (Notes::Detailed, _) | (Notes::Counted, NoteAction::Dropped) => detail(),
            _ => String::new(),
        };
        let note = Note {
            action,
            field: field.to_owned().into(),
            rule: rule.into(),
            detail,
        };
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

/// Applies Meta's rules to one rendered server event.
pub fn check_event(
    event: Value,
    settings: &RuleSettings,
    context: &MapContext,
    notes: &mut Vec<Note>,
) -> Result<Checked, Refusal> {
    let Value::Object(mut event) = event else {
        return Err(refuse("", "a server event must be an object"));
    };
    let mut noter = Noter {
        notes,
        level: context.notes,
    };
    drop_empty(&mut event);

    match event.get("event_name") {
        Some(Value::String(name)) if !name.trim().is_empty() => {}
        Some(other) => {
            return Err(refuse(
                "event_name",
                format!("must be a non-empty string, not {other}"),
            ));
        }
        None => return Err(refuse("event_name", "is required")),
    }

    let time = event
        .get("event_time")
        .ok_or_else(|| refuse("event_time", "is required (the event has no time)"))?;
    let at = convert::to_system_time(time)
        .ok_or_else(|| refuse("event_time", format!("{time} is not a timestamp")))?;
    if context
        .now
        .duration_since(at)
        .is_ok_and(|age| age > MAX_AGE)
    {
        return Ok(Checked::Expired(EXPIRY_RULE.to_owned()));
    }
    let seconds = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => since.as_secs(),
        Err(_) => return Err(refuse("event_time", "is before 1970")),
    };
    event.insert("event_time".into(), Value::from(seconds));

    if let Some(id) = event.get("event_id") {
        match convert::to_text(id) {
            Some(text) => {
                event.insert("event_id".into(), Value::String(text));
            }
            None => return Err(refuse("event_id", format!("{id} is not a string"))),
        }
    }

    let action_source = match event.get("action_source") {
        None => {
            // After the event's identity, where Meta's examples write it.
            let at = ["event_id", "event_time", "event_name"]
                .iter()
                .find_map(|key| event.keys().position(|k| k == key))
                .map_or(0, |i| i + 1);
            event.shift_insert(
                at,
                "action_source".into(),
                Value::String(settings.action_source.as_str().to_owned()),
            );
            settings.action_source.as_str().to_owned()
        }
        Some(Value::String(source)) if is_action_source(source) => source.clone(),
        Some(other) => {
            return Err(refuse(
                "action_source",
                format!("{other} is not one of Meta's action sources"),
            ));
        }
    };
    let website = action_source == "website";
    match event.get("event_source_url") {
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(refuse("event_source_url", format!("{other} is not a URL")));
        }
        None if website => {
            return Err(refuse(
                "event_source_url",
                "is required for website events (the page URL, e.g. page.url)",
            ));
        }
        None => {}
    }

    // Taken out and put back in place, so the body keeps the order the template writes.
    let user_data = match event.get_mut("user_data").map(Value::take) {
        Some(Value::Object(user_data)) => user_data,
        None => Map::new(),
        Some(other) => return Err(refuse("user_data", format!("{other} is not an object"))),
    };
    let user_data = check_user_data(user_data, &settings.normalize, &mut noter);
    if website && !user_data.contains_key("client_user_agent") {
        return Err(refuse(
            "user_data.client_user_agent",
            "is required for website events (the browser's user agent, e.g. context.user_agent)",
        ));
    }
    if user_data.is_empty() {
        return Err(refuse(
            "user_data",
            "holds no customer information; Meta needs at least one parameter",
        ));
    }
    event.insert("user_data".into(), Value::Object(user_data));

    if let Some(custom) = event.get_mut("custom_data").map(Value::take) {
        let Value::Object(custom) = custom else {
            return Err(refuse("custom_data", format!("{custom} is not an object")));
        };
        let is_purchase = event["event_name"] == "Purchase";
        let custom = check_custom_data(custom, is_purchase, &mut noter)?;
        if custom.is_empty() {
            event.shift_remove("custom_data");
        } else {
            event.insert("custom_data".into(), Value::Object(custom));
        }
    } else if event["event_name"] == "Purchase" {
        return Err(refuse("custom_data", "a Purchase needs value and currency"));
    }
    Ok(Checked::Event(event))
}

fn is_action_source(source: &str) -> bool {
    matches!(
        source,
        "website"
            | "app"
            | "email"
            | "phone_call"
            | "chat"
            | "physical_store"
            | "system_generated"
            | "business_messaging"
            | "other"
    )
}

/// Removes nulls, empty strings, empty arrays and empty objects, at any depth: missing data is
/// left out, never sent as an empty value Meta would read.
fn drop_empty(object: &mut Map<String, Value>) {
    object.retain(|_, value| {
        match value {
            Value::Object(inner) => drop_empty(inner),
            Value::Array(items) => {
                for item in items.iter_mut() {
                    if let Value::Object(inner) = item {
                        drop_empty(inner);
                    }
                }
                items.retain(|item| !is_empty(item));
            }
            _ => {}
        }
        !is_empty(value)
    });
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        _ => false,
    }
}

/// The customer information: the hashed parameters normalized and hashed (each a list of
/// hashes, as Meta's examples send them), the plain ones kept as text, others passed as given.
fn check_user_data(
    user_data: Map<String, Value>,
    settings: &normalize::Settings,
    noter: &mut Noter<'_>,
) -> Map<String, Value> {
    let mut out = Map::with_capacity(user_data.len());
    for (key, value) in user_data {
        let field = format!("user_data.{key}");
        if HASHED.contains(&key.as_str()) {
            let values = match value {
                Value::Array(items) => items,
                single => vec![single],
            };
            let mut hashes: Vec<Value> = Vec::with_capacity(values.len());
            for value in values {
                let Some(text) = convert::to_text(&value) else {
                    noter.note(NoteAction::Dropped, &field, "not text", || {
                        format!("{value} is not text")
                    });
                    continue;
                };
                match normalize::hash(&key, &text, settings) {
                    Ok(hash) => {
                        let hash = Value::String(hash);
                        if !hashes.contains(&hash) {
                            hashes.push(hash);
                        }
                    }
                    Err(rule) => noter.note(NoteAction::Dropped, &field, rule, || {
                        format!("{value}: {rule}")
                    }),
                }
            }
            if !hashes.is_empty() {
                out.insert(key, Value::Array(hashes));
            }
        } else if PLAIN.contains(&key.as_str()) {
            match value {
                Value::String(text) => {
                    out.insert(key, Value::String(text.trim().to_owned()));
                }
                other => noter.note(NoteAction::Dropped, &field, "not text", || {
                    format!("{other} is not text")
                }),
            }
        } else {
            out.insert(key, value);
        }
    }
    out
}

/// `custom_data`: `value` a number, `currency` an ISO 4217 code, `contents` objects with an `id`;
/// a Purchase needs `value` and `currency` (the value is the sum of its priced contents when the
/// event gives none).
fn check_custom_data(
    mut custom: Map<String, Value>,
    is_purchase: bool,
    noter: &mut Noter<'_>,
) -> Result<Map<String, Value>, Refusal> {
    if let Some(value) = custom.get("value") {
        match convert::to_number(value) {
            Some(number) => {
                custom.insert("value".into(), number);
            }
            None => {
                let shown = value.to_string();
                custom.shift_remove("value");
                noter.note(
                    NoteAction::Dropped,
                    "custom_data.value",
                    "not a number",
                    || format!("{shown} is not a number"),
                );
            }
        }
    }
    if let Some(currency) = custom.get("currency") {
        match currency.as_str().map(str::trim) {
            Some(code) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) => {
                let code = code.to_ascii_uppercase();
                custom.insert("currency".into(), Value::String(code));
            }
            _ => {
                let shown = currency.to_string();
                custom.shift_remove("currency");
                noter.note(
                    NoteAction::Dropped,
                    "custom_data.currency",
                    "not an ISO 4217 code",
                    || format!("{shown} is not an ISO 4217 currency code"),
                );
            }
        }
    }
    if let Some(contents) = custom.get_mut("contents").map(Value::take) {
        let items = match contents {
            Value::Array(items) => items,
            single @ Value::Object(_) => vec![single],
            other => {
                noter.note(
                    NoteAction::Dropped,
                    "custom_data.contents",
                    "not a list",
                    || format!("{other} is not a list of contents"),
                );
                Vec::new()
            }
        };
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            if let Some(item) = check_content(item, noter) {
                kept.push(Value::Object(item));
            }
        }
        if kept.is_empty() {
            custom.shift_remove("contents");
        } else {
            custom.insert("contents".into(), Value::Array(kept));
        }
    }
    if !custom.contains_key("contents")
        && custom.get("content_type") == Some(&Value::from("product"))
    {
        // A content type describes the contents; without any it says nothing.
        custom.shift_remove("content_type");
    }
    if is_purchase {
        if !custom.contains_key("value")
            && let Some(total) = contents_total(&custom)
        {
            noter.note(
                NoteAction::Repaired,
                "custom_data.value",
                "purchase value from its contents",
                || format!("value {total} is the sum of item_price × quantity"),
            );
            custom.insert("value".into(), total);
        }
        for required in ["value", "currency"] {
            if !custom.contains_key(required) {
                return Err(refuse(
                    &format!("custom_data.{required}"),
                    "is required for a Purchase",
                ));
            }
        }
    }
    Ok(custom)
}

/// One `contents` item: an `id` (text), `quantity` an integer, `item_price` a number; without an
/// id the item is left out.
fn check_content(item: Value, noter: &mut Noter<'_>) -> Option<Map<String, Value>> {
    let Value::Object(mut item) = item else {
        noter.note(
            NoteAction::Dropped,
            "custom_data.contents",
            "not an object",
            || format!("{item} is not a content object"),
        );
        return None;
    };
    match item.get("id").and_then(convert::to_text) {
        Some(id) if !id.trim().is_empty() => {
            item.insert("id".into(), Value::String(id));
        }
        _ => {
            noter.note(NoteAction::Dropped, "custom_data.contents", "no id", || {
                format!("{} has no id", Value::Object(item.clone()))
            });
            return None;
        }
    }
    for (key, integer) in [("quantity", true), ("item_price", false)] {
        if let Some(value) = item.get(key) {
            let converted = if integer {
                convert::to_integer(value)
            } else {
                convert::to_number(value)
            };
            match converted {
                Some(number) => {
                    item.insert(key.into(), number);
                }
                None => {
                    let shown = value.to_string();
                    item.shift_remove(key);
                    let field = format!("custom_data.contents.{key}");
                    noter.note(NoteAction::Dropped, &field, "not a number", || {
                        format!("{shown} is not a number")
                    });
                }
            }
        }
    }
    for key in ["title", "category", "brand", "description"] {
        if let Some(value) = item.get(key)
            && !value.is_string()
        {
            let shown = value.to_string();
            item.shift_remove(key);
            let field = format!("custom_data.contents.{key}");
            noter.note(NoteAction::Dropped, &field, "not text", || {
                format!("{shown} is not text")
            });
        }
    }
    Some(item)
}

/// The sum of `item_price × quantity` (quantity 1 when absent) over the contents, when every
/// item has a price; rounded to cents so float sums read as money.
fn contents_total(custom: &Map<String, Value>) -> Option<Value> {
    let items = custom.get("contents")?.as_array()?;
    let mut total = 0.0;
    for item in items {
        let price = item.get("item_price")?.as_f64()?;
        let quantity = item.get("quantity").and_then(Value::as_f64).unwrap_or(1.0);
        total += price * quantity;
    }
    let cents = (total * 100.0).round() / 100.0;
    serde_json::Number::from_f64(cents).map(Value::Number)
}
