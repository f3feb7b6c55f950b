//! One Insider event of a user object: its name made an Insider system name, its timestamp RFC
//! 3339 in UTC, Insider's retention for its type, its parameters, and the parameters Insider
//! requires (`purchase`, `cart_page_view`): a missing `event_group_id` is derived, a missing
//! `unit_sale_price` taken from `unit_price`; what cannot be derived leaves this event out (or,
//! when it was the only one, refuses the event).

use std::borrow::Cow;

use hardal_core::NoteAction;
use hardal_core::value::{Map, Value};

use super::fields::{self, is_blank};
use super::kinds::{Coerced, Kind, coerce, param_kind};
use super::log::{Log, Place, Section};
use super::{CheckContext, RuleSettings};

/// Events Insider requires parameters for, and which.
pub(crate) const REQUIRED_PARAMS: [(&str, &[&str]); 2] = [
    (
        "purchase",
        &["event_group_id", "currency", "unit_sale_price", "quantity"],
    ),
    (
        "cart_page_view",
        &["event_group_id", "currency", "unit_sale_price"],
    ),
];

/// What became of one event.
pub(crate) enum Fate {
    Send,
    /// Older than Insider keeps events of its type: the rule.
    Expired(String),
    /// A required parameter could not be derived: the reason, should the whole event be refused.
    LeftOut(String),
}

pub(crate) fn check<'a>(
    event: &mut Value<'a>,
    index: usize,
    settings: &RuleSettings,
    context: &CheckContext<'_>,
    log: &mut Log<'_>,
) -> Result<Fate, String> {
    let Value::Object(event) = event else {
        return Err(format!(
            "events.{index}: must be an object, found {}",
            super::log::short(event)
        ));
    };
    if let Some(key) = event
        .keys()
        .find(|k| !matches!(*k, "event_name" | "timestamp" | "event_params"))
    {
        return Err(format!(
            "events.{index}.{key}: not a field of an Insider event (event_name, timestamp, event_params)"
        ));
    }
    let place = |key| Place {
        section: Section::Event,
        event: index,
        key,
    };
    // The name the template wrote is borrowed, not copied: a preset's constant name costs nothing.
    let name: Cow<'a, str> = match event.get_mut("event_name") {
        Some(Value::String(name)) if is_event_name(name) => name.clone(),
        Some(value) => {
            let name = hardal_core::convert::to_text(value)
                .map(|n| normalize_event_name(&n))
                .unwrap_or_default();
            if !name.is_empty() {
                let new = Value::from(name.clone());
                log.repaired(place("event_name"), "to lower snake case", value, &new);
                *value = new;
            }
            Cow::Owned(name)
        }
        None => Cow::Borrowed(""),
    };
    if name.is_empty() {
        return Err(format!("events.{index}.event_name: is required"));
    }
    let timestamp = match event.get_mut("timestamp") {
        Some(timestamp) if !is_blank(timestamp) => timestamp,
        _ => return Err(format!("events.{index}.timestamp: is required")),
    };
    match coerce(timestamp, Kind::Timestamp, None) {
        Coerced::Kept => {}
        Coerced::Repaired(new, rule) => {
            log.repaired(place("timestamp"), rule, timestamp, &new);
            *timestamp = new;
        }
        // An event cannot be sent without its time, whatever `on_invalid_field` says.
        Coerced::Invalid(rule) => {
            return Err(format!(
                "events.{index}.timestamp: {} is {}",
                super::log::short(timestamp),
                rule.explain
            ));
        }
    }
    let at = timestamp.as_str().unwrap_or_default();
    if let Some(rule) = settings.retention.expired(&name, at, context.now) {
        log.note(
            NoteAction::Expired,
            "events",
            rule.clone(),
            format!("{name} of {at} is older than Insider keeps it"),
        );
        return Ok(Fate::Expired(rule));
    }
    match event.get_mut("event_params") {
        Some(Value::Object(params)) => {
            fields::check(
                params,
                Section::Params,
                index,
                param_kind,
                settings.phone_country_code.as_deref(),
                log,
            )?;
        }
        None | Some(Value::Null) => {}
        Some(other) => {
            return Err(format!(
                "events.{index}.event_params: must be an object, found {}",
                super::log::short(other)
            ));
        }
    }
    if let Some((_, required)) = REQUIRED_PARAMS.iter().find(|(event, _)| *event == name) {
        // `event_params` is an object or null by now: null makes room for what is derived.
        if !event.get("event_params").is_some_and(Value::is_object) {
            event.insert("event_params", Value::Object(Map::new()));
        }
        let Some(Value::Object(params)) = event.get_mut("event_params") else {
            unreachable!("event_params was made an object")
        };
        for param in *required {
            if params.contains_key(param) {
                continue;
            }
            let place = Place {
                section: Section::Params,
                event: index,
                key: param,
            };
            let derived = match *param {
                "event_group_id" => Some((
                    Value::from((context.group_id)()),
                    "derived from the user, time and content",
                )),
                "unit_sale_price" => params
                    .get("unit_price")
                    .map(|price| (price.clone(), "taken from unit_price")),
                _ => None,
            };
            match derived {
                Some((value, rule)) => {
                    log.derived(place, rule, &value);
                    params.insert(*param, value);
                }
                None => {
                    let reason = format!(
                        "events.{index}.event_params.{param}: is required on a {name} event"
                    );
                    if log.reject_invalid {
                        return Err(reason);
                    }
                    log.note(
                        NoteAction::Dropped,
                        "events",
                        format!("{name} without {param}"),
                        format!(
                            "{name} event {} left out: no valid {param}, which Insider requires",
                            index + 1
                        ),
                    );
                    return Ok(Fate::LeftOut(reason));
                }
            }
        }
    }
    if event
        .get("event_params")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        event.shift_remove("event_params");
    }
    Ok(Fate::Send)
}

/// Whether a name is already an Insider event name (`^[a-z0-9][a-z0-9_]*$` with no doubled or
/// trailing `_`), so it needs no normalizing.
fn is_event_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0] != b'_'
        && bytes[bytes.len() - 1] != b'_'
        && !bytes.windows(2).any(|pair| pair == b"__")
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// `Order Completed` → `order_completed`, `checkoutStarted` → `checkout_started`,
/// `HTMLPageViewed` → `html_page_viewed`: lower case, a word boundary before an upper-case letter
/// that follows a lower-case letter or digit (or that starts a word after an acronym), and every
/// run of other characters one `_`.
pub fn normalize_event_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && i > 0 && !out.is_empty() && !out.ends_with('_') {
                let previous = chars[i - 1];
                let next_is_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
                if previous.is_ascii_lowercase()
                    || previous.is_ascii_digit()
                    || (previous.is_ascii_uppercase() && next_is_lower)
                {
                    out.push('_');
                }
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}
