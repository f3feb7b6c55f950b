//! GA4's rules, applied to what a mapping rendered before anything is sent: GA4 answers 2xx to
//! any payload and silently drops what breaks its rules, so hardal repairs what has one meaning
//! (a name with spaces, a value too long, numeric text), leaves out what cannot be sent (with a
//! note), and refuses an event only when nothing valid would remain. Every note names the field
//! and the `validationCode` GA4's validation server (`/debug/mp/collect`) would give.

use hardal_core::{ConsentState, Note, NoteAction, Notes};
use serde_json::{Map, Value};

use crate::limits::{self, RESERVED_EVENT_NAMES, RESERVED_PREFIXES};

/// GA4's validation codes (the `validationCode` of a validation message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ValueInvalid,
    ValueRequired,
    NameInvalid,
    NameReserved,
    ValueOutOfBounds,
    ExceededMaxEntities,
    NameDuplicated,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ValueInvalid => "VALUE_INVALID",
            Code::ValueRequired => "VALUE_REQUIRED",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameReserved => "NAME_RESERVED",
            Code::ValueOutOfBounds => "VALUE_OUT_OF_BOUNDS",
            Code::ExceededMaxEntities => "EXCEEDED_MAX_ENTITIES",
            Code::NameDuplicated => "NAME_DUPLICATED",
        }
    }
}

/// The key of a mapping's `params` whose object is spread into the parameters (after the named
/// ones, which win): the event's leftover properties become custom parameters.
pub const SPREAD_KEY: &str = "...";

/// Item parameters GA4 defines; any other item parameter is a custom one, of which an item may
/// carry [`limits::MAX_ITEM_CUSTOM_PARAMS`].
const STANDARD_ITEM_PARAMS: [&str; 22] = [
    "item_id",
    "item_name",
    "affiliation",
    "coupon",
    "discount",
    "index",
    "item_brand",
    "item_category",
    "item_category2",
    "item_category3",
    "item_category4",
    "item_category5",
    "item_list_id",
    "item_list_name",
    "item_variant",
    "location_id",
    "price",
    "quantity",
    "promotion_id",
    "promotion_name",
    "creative_name",
    "creative_slot",
];

/// Parameters GA4 reads as numbers (event level and item level).
const NUMERIC_PARAMS: [&str; 7] = [
    "value", "tax", "shipping", "price", "quantity", "discount", "index",
];

/// Events GA4 requires a `transaction_id` for.
const NEEDS_TRANSACTION_ID: [&str; 2] = ["purchase", "refund"];

/// Collects notes as `context.notes` asks: details only where they are used.
pub struct Log<'a> {
    pub notes: &'a mut Vec<Note>,
    pub mode: Notes,
}

impl Log<'_> {
    /// Notes that `field` was repaired or left out under `code`; `detail` is this event's case and
    /// is only worked out when it is kept.
    pub fn note(
        &mut self,
        action: NoteAction,
        field: &str,
        code: Code,
        rule: &str,
        detail: impl FnOnce() -> String,
    ) {
        let keep_detail = match self.mode {
            Notes::Detailed => true,
            Notes::Counted => action != NoteAction::Repaired,
            Notes::LeftOut => {
                if action == NoteAction::Repaired {
                    return;
                }
                true
            }
        };
        let code = code.as_str();
        self.notes.push(Note {
            action,
            field: field.to_owned().into(),
            rule: format!("{code}: {rule}").into(),
            detail: if keep_detail {
                format!("{code}: {}", detail())
            } else {
                String::new()
            },
        });
    }
}

/// Why an event cannot be sent at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// A name as GA4 takes it: letters (any script), digits and `_`, starting with a letter, without a
/// reserved prefix, at most `max` characters. Returns the repaired name and what was repaired
/// (`None` when nothing was), or `None` when nothing of the name remains.
pub fn repair_name(
    raw: &str,
    max: usize,
    prefixes: &[&str],
) -> Option<(String, Option<(Code, String)>)> {
    // Reserved prefixes are read on the name as given (`gtag.` holds a character that is
    // replaced below) and again once the name is made valid.
    let mut reserved = None;
    let mut text = raw.trim();
    while let Some(prefix) = limits::reserved_prefix(text, prefixes).filter(|p| *p != "_") {
        reserved.get_or_insert(prefix);
        text = &text[prefix.len()..];
    }
    let mut name = String::with_capacity(text.len());
    let mut invalid = false;
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            name.push(c);
        } else {
            invalid = true;
            if !name.ends_with('_') {
                name.push('_');
            }
        }
    }
    loop {
        // A leading `_` is reserved too, but it is first of all not a letter: GA4 calls it
        // NAME_INVALID, and so does the note.
        if let Some(prefix) = limits::reserved_prefix(&name, prefixes).filter(|p| *p != "_") {
            reserved.get_or_insert(prefix);
            name.drain(..prefix.len());
            continue;
        }
        // A name starts with a letter: leading digits and underscores go.
        let start = name
            .char_indices()
            .find(|(_, c)| c.is_alphabetic())
            .map_or(name.len(), |(i, _)| i);
        if start == 0 {
            break;
        }
        invalid = true;
        name.drain(..start);
    }
    while name.ends_with('_') && name.len() > 1 && invalid {
        name.pop();
    }
    if name.is_empty() {
        return None;
    }
    let long = name.chars().count() > max;
    if long {
        name = name.chars().take(max).collect();
    }
    let what = match (reserved, invalid, long) {
        (Some(prefix), _, _) => Some((
            Code::NameReserved,
            format!("the prefix `{prefix}` is reserved"),
        )),
        (None, true, _) => Some((
            Code::NameInvalid,
            "names hold letters, digits and _ and start with a letter".to_owned(),
        )),
        (None, false, true) => Some((
            Code::NameInvalid,
            format!("names are at most {max} characters"),
        )),
        (None, false, false) => None,
    };
    Some((name, what))
}

/// Checks one rendered GA4 event (`{"name", "params"}`) in place of GA4's validation: the checked
/// event object, or why it cannot be sent.
pub fn check_event(rendered: Value, log: &mut Log<'_>) -> Result<Map<String, Value>, Refusal> {
    let Value::Object(mut rendered) = rendered else {
        return Err(Refusal(format!(
            "VALUE_INVALID: a GA4 event is an object with name and params, not {}",
            hardal_core::event::json_type(&rendered)
        )));
    };
    let raw_name = match rendered.remove("name") {
        Some(Value::String(name)) => name,
        Some(other) => hardal_core::convert::to_text(&other)
            .ok_or_else(|| Refusal("VALUE_INVALID: the event name is not a string".to_owned()))?,
        None => return Err(Refusal("VALUE_REQUIRED: the event has no name".to_owned())),
    };
    let name = event_name(&raw_name, log)?;
    let params = match rendered.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params,
        Some(other) => {
            log.note(
                NoteAction::Dropped,
                "params",
                Code::ValueInvalid,
                "params is an object",
                || format!("params was {}", hardal_core::event::json_type(&other)),
            );
            Map::new()
        }
    };
    let params = check_params(&name, params, log)?;
    let mut event = Map::with_capacity(2);
    event.insert("name".into(), Value::String(name));
    event.insert("params".into(), Value::Object(params));
    Ok(event)
}

/// The event name GA4 takes for `raw`, noted when repaired or renamed.
fn event_name(raw: &str, log: &mut Log<'_>) -> Result<String, Refusal> {
    let Some((mut name, repaired)) = repair_name(raw, limits::MAX_NAME_CHARS, &RESERVED_PREFIXES)
    else {
        return Err(Refusal(format!(
            "NAME_INVALID: `{raw}` has no letter to start a GA4 event name with"
        )));
    };
    if let Some((code, rule)) = repaired {
        log.note(NoteAction::Repaired, "name", code, &rule, || {
            format!("`{raw}` is not a GA4 event name ({rule}); sent as `{name}`")
        });
    }
    if RESERVED_EVENT_NAMES.contains(&name.as_str()) {
        let renamed: String = format!("hardal_{name}")
            .chars()
            .take(limits::MAX_NAME_CHARS)
            .collect();
        log.note(
            NoteAction::Repaired,
            "name",
            Code::NameReserved,
            "reserved event names are renamed with the prefix hardal_",
            || format!("`{name}` is reserved by GA4; sent as `{renamed}`"),
        );
        name = renamed;
    }
    Ok(name)
}

/// The parameters GA4 takes: named ones first, then the spread ones, each name and value checked,
/// at most [`limits::MAX_PARAMS`].
fn check_params(
    event: &str,
    mut rendered: Map<String, Value>,
    log: &mut Log<'_>,
) -> Result<Map<String, Value>, Refusal> {
    let spread = rendered.remove(SPREAD_KEY);
    let mut entries: Vec<(String, Value, bool)> =
        rendered.into_iter().map(|(k, v)| (k, v, false)).collect();
    match spread {
        Some(Value::Object(extra)) => entries.extend(extra.into_iter().map(|(k, v)| (k, v, true))),
        None | Some(Value::Null) => {}
        Some(other) => log.note(
            NoteAction::Dropped,
            "params",
            Code::ValueInvalid,
            "only an object spreads into params",
            || format!("`...` rendered {}", hardal_core::event::json_type(&other)),
        ),
    }
    let mut params = Map::new();
    let mut over = Vec::new();
    for (raw_key, value, spread) in entries {
        if value.is_null() {
            continue;
        }
        let Some((key, repaired)) =
            repair_name(&raw_key, limits::MAX_NAME_CHARS, &RESERVED_PREFIXES)
        else {
            log.note(
                NoteAction::Dropped,
                "params",
                Code::NameInvalid,
                "parameter names start with a letter",
                || format!("`{raw_key}` has no letter to start a parameter name with"),
            );
            continue;
        };
        if params.contains_key(&key) {
            // A spread property that a named parameter already set is expected (the presets
            // name the properties they read); only a clash between two names is noted.
            if !spread || key != raw_key {
                log.note(
                    NoteAction::Dropped,
                    &format!("params.{key}"),
                    Code::NameDuplicated,
                    "a parameter name appears once",
                    || format!("`{raw_key}` would be sent as `{key}`, which is already set"),
                );
            }
            continue;
        }
        if let Some((code, rule)) = repaired {
            log.note(
                NoteAction::Repaired,
                &format!("params.{key}"),
                code,
                &rule,
                || format!("parameter `{raw_key}` sent as `{key}` ({rule})"),
            );
        }
        let field = format!("params.{key}");
        let value = if key == "items" {
            match check_items(value, log) {
                Some(items) => items,
                None => continue,
            }
        } else {
            match check_value(&key, value, &field, log) {
                Some(value) => value,
                None => continue,
            }
        };
        if params.len() == limits::MAX_PARAMS {
            over.push(key);
            continue;
        }
        params.insert(key, value);
    }
    if !over.is_empty() {
        log.note(
            NoteAction::Dropped,
            "params",
            Code::ExceededMaxEntities,
            &format!("an event has at most {} parameters", limits::MAX_PARAMS),
            || {
                format!(
                    "{} parameters over the limit left out: {}",
                    over.len(),
                    over.join(", ")
                )
            },
        );
    }
    check_currency(&mut params, log);
    if NEEDS_TRANSACTION_ID.contains(&event) && !params.contains_key("transaction_id") {
        return Err(Refusal(format!(
            "VALUE_REQUIRED: GA4 needs a transaction_id for {event} (none of the mapping's sources was set)"
        )));
    }
    Ok(params)
}

/// GA4 requires `currency` whenever `value` is set: a value without a currency is left out, since
/// GA4 would not count it as revenue anyway.
fn check_currency(params: &mut Map<String, Value>, log: &mut Log<'_>) {
    if params.contains_key("value") && !params.contains_key("currency") {
        params.remove("value");
        log.note(
            NoteAction::Dropped,
            "params.value",
            Code::ValueRequired,
            "value needs currency",
            || "value left out: the event has no currency".to_owned(),
        );
    }
}

/// A scalar parameter value as GA4 takes it: numbers for numeric parameters, ISO 4217 currency
/// codes, strings cut to their limit; `None` when it is left out (noted).
fn check_value(key: &str, value: Value, field: &str, log: &mut Log<'_>) -> Option<Value> {
    match value {
        Value::Object(_) | Value::Array(_) => {
            log.note(
                NoteAction::Dropped,
                field,
                Code::ValueInvalid,
                "parameter values are strings or numbers",
                || {
                    format!(
                        "`{key}` is {}, which GA4 does not take as a parameter value",
                        hardal_core::event::json_type(&value)
                    )
                },
            );
            None
        }
        _ if NUMERIC_PARAMS.contains(&key) => match hardal_core::convert::to_number(&value) {
            Some(number) if value.is_number() => Some(number),
            Some(number) => {
                log.note(
                    NoteAction::Repaired,
                    field,
                    Code::ValueInvalid,
                    "numeric text to number",
                    || format!("`{key}` {value} sent as {number}"),
                );
                Some(number)
            }
            None => {
                log.note(
                    NoteAction::Dropped,
                    field,
                    Code::ValueInvalid,
                    "not a number",
                    || format!("`{key}` {value} is not a number"),
                );
                None
            }
        },
        Value::String(text) if key == "currency" => {
            let code = text.trim().to_ascii_uppercase();
            if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
                if code != text {
                    log.note(
                        NoteAction::Repaired,
                        field,
                        Code::ValueInvalid,
                        "currency codes are ISO 4217, in capitals",
                        || format!("currency `{text}` sent as `{code}`"),
                    );
                }
                Some(Value::String(code))
            } else {
                log.note(
                    NoteAction::Dropped,
                    field,
                    Code::ValueInvalid,
                    "not an ISO 4217 currency code",
                    || format!("currency `{text}` is not a three-letter code"),
                );
                None
            }
        }
        Value::String(text) => {
            let max = limits::max_value_chars(key);
            let chars = text.chars().count();
            if chars > max {
                let cut: String = text.chars().take(max).collect();
                log.note(
                    NoteAction::Repaired,
                    field,
                    Code::ValueOutOfBounds,
                    &format!("values are at most {max} characters, the rest is cut"),
                    || format!("`{key}` cut from {chars} to {max} characters"),
                );
                Some(Value::String(cut))
            } else if text.is_empty() {
                None
            } else {
                Some(Value::String(text))
            }
        }
        other => Some(other),
    }
}

/// The `items` array GA4 takes: objects with an `item_id` or an `item_name`, checked like
/// parameters, at most [`limits::MAX_ITEMS`]; `None` when no item remains.
fn check_items(value: Value, log: &mut Log<'_>) -> Option<Value> {
    let items = match value {
        Value::Array(items) => items,
        Value::Object(item) => vec![Value::Object(item)],
        other => {
            log.note(
                NoteAction::Dropped,
                "params.items",
                Code::ValueInvalid,
                "items is an array of objects",
                || format!("items was {}", hardal_core::event::json_type(&other)),
            );
            return None;
        }
    };
    let total = items.len();
    let mut checked = Vec::with_capacity(total.min(limits::MAX_ITEMS));
    for (index, item) in items.into_iter().enumerate() {
        let Value::Object(item) = item else {
            log.note(
                NoteAction::Dropped,
                "params.items",
                Code::ValueInvalid,
                "an item is an object",
                || format!("item {index} is {}", hardal_core::event::json_type(&item)),
            );
            continue;
        };
        if item.is_empty() {
            continue;
        }
        if checked.len() == limits::MAX_ITEMS {
            log.note(
                NoteAction::Dropped,
                "params.items",
                Code::ExceededMaxEntities,
                &format!("an event has at most {} items", limits::MAX_ITEMS),
                || format!("{} items over the limit left out", total - index),
            );
            break;
        }
        if let Some(item) = check_item(index, item, log) {
            checked.push(Value::Object(item));
        }
    }
    (!checked.is_empty()).then_some(Value::Array(checked))
}

fn check_item(
    index: usize,
    item: Map<String, Value>,
    log: &mut Log<'_>,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut custom = 0usize;
    for (raw_key, value) in item {
        if value.is_null() {
            continue;
        }
        let Some((key, repaired)) =
            repair_name(&raw_key, limits::MAX_NAME_CHARS, &RESERVED_PREFIXES)
        else {
            log.note(
                NoteAction::Dropped,
                "params.items",
                Code::NameInvalid,
                "item parameter names start with a letter",
                || format!("item {index}: `{raw_key}` has no letter to start a name with"),
            );
            continue;
        };
        let field = format!("params.items.{key}");
        if out.contains_key(&key) {
            log.note(
                NoteAction::Dropped,
                &field,
                Code::NameDuplicated,
                "a parameter name appears once",
                || format!("item {index}: `{raw_key}` would be sent as `{key}`, already set"),
            );
            continue;
        }
        if let Some((code, rule)) = repaired {
            log.note(NoteAction::Repaired, &field, code, &rule, || {
                format!("item {index}: `{raw_key}` sent as `{key}` ({rule})")
            });
        }
        if !STANDARD_ITEM_PARAMS.contains(&key.as_str()) {
            if custom == limits::MAX_ITEM_CUSTOM_PARAMS {
                log.note(
                    NoteAction::Dropped,
                    &field,
                    Code::ExceededMaxEntities,
                    &format!(
                        "an item has at most {} custom parameters",
                        limits::MAX_ITEM_CUSTOM_PARAMS
                    ),
                    || format!("item {index}: `{key}` over the limit left out"),
                );
                continue;
            }
            custom += 1;
        }
        if let Some(value) = check_value(&key, value, &field, log) {
            out.insert(key, value);
        }
    }
    if !out.contains_key("item_id") && !out.contains_key("item_name") {
        if !out.is_empty() {
            log.note(
                NoteAction::Dropped,
                "params.items",
                Code::ValueRequired,
                "an item needs item_id or item_name",
                || format!("item {index} has neither item_id nor item_name"),
            );
        }
        return None;
    }
    Some(out)
}

/// GA4's `user_properties` (`{"name": {"value": …}}`) from a rendered object of name → value.
pub fn check_user_properties(rendered: Option<Value>, log: &mut Log<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    let rendered = match rendered {
        None | Some(Value::Null) => return out,
        Some(Value::Object(map)) => map,
        Some(other) => {
            log.note(
                NoteAction::Dropped,
                "user_properties",
                Code::ValueInvalid,
                "user_properties is an object",
                || {
                    format!(
                        "user_properties rendered {}",
                        hardal_core::event::json_type(&other)
                    )
                },
            );
            return out;
        }
    };
    for (raw_name, value) in rendered {
        if value.is_null() {
            continue;
        }
        let field = format!("user_properties.{raw_name}");
        let repaired = repair_name(
            &raw_name,
            limits::MAX_USER_PROPERTY_NAME_CHARS,
            &limits::RESERVED_USER_PROPERTY_PREFIXES,
        );
        let Some((name, repaired)) = repaired else {
            log.note(
                NoteAction::Dropped,
                &field,
                Code::NameInvalid,
                "user property names start with a letter",
                || format!("`{raw_name}` has no letter to start a name with"),
            );
            continue;
        };
        if limits::RESERVED_USER_PROPERTIES.contains(&name.as_str()) {
            log.note(
                NoteAction::Dropped,
                &field,
                Code::NameReserved,
                "reserved user property name",
                || format!("`{name}` is reserved by GA4"),
            );
            continue;
        }
        if let Some((code, rule)) = repaired {
            log.note(NoteAction::Repaired, &field, code, &rule, || {
                format!("user property `{raw_name}` sent as `{name}` ({rule})")
            });
        }
        let value = match value {
            Value::String(text) => {
                let max = limits::MAX_USER_PROPERTY_VALUE_CHARS;
                let chars = text.chars().count();
                if chars > max {
                    log.note(
                        NoteAction::Repaired,
                        &field,
                        Code::ValueOutOfBounds,
                        &format!(
                            "user property values are at most {max} characters, the rest is cut"
                        ),
                        || format!("`{name}` cut from {chars} to {max} characters"),
                    );
                    Value::String(text.chars().take(max).collect())
                } else if text.is_empty() {
                    continue;
                } else {
                    Value::String(text)
                }
            }
            Value::Number(_) | Value::Bool(_) => value,
            other => {
                log.note(
                    NoteAction::Dropped,
                    &field,
                    Code::ValueInvalid,
                    "user property values are strings or numbers",
                    || format!("`{name}` is {}", hardal_core::event::json_type(&other)),
                );
                continue;
            }
        };
        if out.len() == limits::MAX_USER_PROPERTIES {
            log.note(
                NoteAction::Dropped,
                &field,
                Code::ExceededMaxEntities,
                &format!(
                    "a request has at most {} user properties",
                    limits::MAX_USER_PROPERTIES
                ),
                || format!("`{name}` over the limit left out"),
            );
            continue;
        }
        let mut wrapped = Map::with_capacity(1);
        wrapped.insert("value".into(), value);
        out.insert(name, Value::Object(wrapped));
    }
    out
}

/// The consent settings GA4 takes: `ad_user_data` and `ad_personalization`, each `GRANTED` or
/// `DENIED`.
pub fn check_consent(rendered: Option<Value>, log: &mut Log<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    let rendered = match rendered {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => return out,
        Some(other) => {
            log.note(
                NoteAction::Dropped,
                "consent",
                Code::ValueInvalid,
                "consent is an object",
                || format!("consent rendered {}", hardal_core::event::json_type(&other)),
            );
            return out;
        }
    };
    for (key, value) in rendered {
        if value.is_null() {
            continue;
        }
        let field = format!("consent.{key}");
        if key != "ad_user_data" && key != "ad_personalization" {
            log.note(
                NoteAction::Dropped,
                &field,
                Code::NameInvalid,
                "consent has ad_user_data and ad_personalization",
                || format!("`{key}` is not a GA4 consent setting"),
            );
            continue;
        }
        let text = value.as_str().map(|s| s.trim().to_ascii_uppercase());
        let status = match (text.as_deref(), hardal_core::convert::to_boolean(&value)) {
            (Some("GRANTED"), _) | (_, Some(true)) => "GRANTED",
            (Some("DENIED"), _) | (_, Some(false)) => "DENIED",
            _ => {
                log.note(
                    NoteAction::Dropped,
                    &field,
                    Code::ValueInvalid,
                    "consent is GRANTED or DENIED",
                    || format!("`{key}` {value} is neither granted nor denied"),
                );
                continue;
            }
        };
        if value.as_str() != Some(status) {
            log.note(
                NoteAction::Repaired,
                &field,
                Code::ValueInvalid,
                "consent is GRANTED or DENIED",
                || format!("`{key}` {value} sent as {status}"),
            );
        }
        out.insert(key, Value::String(status.to_owned()));
    }
    out
}

/// The settings of GA4's `consent` that the rendered template left unset, taken from the consent
/// the runner read in the event (Hardal's `consent: "true"` grants both, any other value denies
/// both); what the template rendered stays, and an event without consent leaves them to GA4.
pub fn fill_consent(consent: &mut Map<String, Value>, state: ConsentState) {
    let status = match state {
        ConsentState::Granted => "GRANTED",
        ConsentState::Denied => "DENIED",
        ConsentState::Absent => return,
    };
    for key in ["ad_user_data", "ad_personalization"] {
        consent
            .entry(key)
            .or_insert_with(|| Value::String(status.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_repaired_into_what_ga4_takes() {
        let (x41, x40, s40) = ("x".repeat(41), "x".repeat(40), "ş".repeat(40));
        let cases = [
            ("purchase", "purchase", ""),
            ("Order Completed", "Order_Completed", "NAME_INVALID"),
            ("checkout-step (2)", "checkout_step_2", "NAME_INVALID"),
            ("_internal", "internal", "NAME_INVALID"),
            ("google_campaign", "campaign", "NAME_RESERVED"),
            ("ga_google_x", "x", "NAME_RESERVED"),
            ("gtag.config", "config", "NAME_RESERVED"),
            ("2fa", "fa", "NAME_INVALID"),
            ("Ödeme Başladı", "Ödeme_Başladı", "NAME_INVALID"),
            (x41.as_str(), x40.as_str(), "NAME_INVALID"),
            (s40.as_str(), s40.as_str(), ""),
        ];
        for (raw, name, code) in cases {
            let (got, what) = repair_name(raw, 40, &RESERVED_PREFIXES).unwrap();
            assert_eq!(got, name, "{raw}");
            assert_eq!(what.map_or("", |(c, _)| c.as_str()), code, "{raw}");
        }
        for nothing in ["", "1234", "___", "google_", " - "] {
            assert_eq!(
                repair_name(nothing, 40, &RESERVED_PREFIXES),
                None,
                "{nothing:?}"
            );
        }
    }

    #[test]
    fn consent_is_filled_from_the_events_consent_where_the_template_left_it_unset() {
        use serde_json::json;
        // (what the template rendered, the event's consent, GA4's consent object)
        let cases = [
            (
                json!({}),
                ConsentState::Granted,
                json!({"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"}),
            ),
            (
                json!({}),
                ConsentState::Denied,
                json!({"ad_user_data": "DENIED", "ad_personalization": "DENIED"}),
            ),
            (json!({}), ConsentState::Absent, json!({})),
            (
                json!({"ad_personalization": "DENIED"}),
                ConsentState::Granted,
                json!({"ad_user_data": "GRANTED", "ad_personalization": "DENIED"}),
            ),
            (
                json!({"ad_user_data": "GRANTED"}),
                ConsentState::Absent,
                json!({"ad_user_data": "GRANTED"}),
            ),
        ];
        for (rendered, state, expected) in cases {
            let Value::Object(mut consent) = rendered.clone() else {
                unreachable!()
            };
            fill_consent(&mut consent, state);
            assert_eq!(Value::Object(consent), expected, "{rendered} {state:?}");
        }
    }
}
