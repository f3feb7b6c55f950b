//! Insider's field rules, applied in place to every user object the destination renders (presets
//! and your own mappings alike), in this order: repair what has one meaning (types, formats,
//! country names, a derivable required parameter), leave out what is invalid and optional (with a
//! note), and refuse the event only when nothing valid would remain or a required parameter
//! cannot be derived. With `on_invalid_field: reject` an invalid field refuses the event instead,
//! with a reason that names the field and the rule. Events older than Insider keeps them are not
//! sent.
//!
//! Most of what presets render is already right, so every check has a fast path that neither
//! allocates nor rewrites, and notes are only allocated when something is noted.

mod custom;
mod events;
mod fields;
mod identifiers;
mod kinds;
mod log;

use std::time::SystemTime;

use hardal_core::value::{Map, Value};
use hardal_core::{Note, NoteAction, convert};

use crate::retention::Retention;

pub use events::normalize_event_name;
pub use identifiers::STANDARD_IDENTIFIERS;
pub(crate) use kinds::normalize_phone;

use events::Fate;
use log::Log;

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
    /// Refuse an event with an invalid field instead of leaving the field out.
    pub reject_invalid: bool,
    /// Send attributes (`send_attributes: always`); `false` sends events only.
    pub send_attributes: bool,
    /// How long Insider keeps events, per event name.
    pub retention: Retention,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            standard_identifiers: STANDARD_IDENTIFIERS.map(String::from).to_vec(),
            custom_identifiers: Vec::new(),
            not_append: true,
            phone_country_code: None,
            reject_invalid: false,
            send_attributes: true,
            retention: Retention::default(),
        }
    }
}

/// What the rules need to know about the moment and the source event.
pub struct CheckContext<'a> {
    /// The time of mapping, for retention.
    pub now: SystemTime,
    /// The derived `event_group_id` of the source event, for events that require one and lack it.
    pub group_id: &'a dyn Fn() -> String,
    /// How much is noted.
    pub notes: hardal_core::Notes,
}

/// The outcome of applying the rules to one rendered user object.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked<'a> {
    /// A user object Insider accepts.
    User(Map<'a>),
    /// Nothing to send (no identifier, or neither attributes nor events).
    Nothing(String),
    /// Nothing to send because every event is older than Insider keeps it (and there are no
    /// attributes to send): the rule that applied.
    Expired(String),
}

/// Applies Insider's rules to one rendered user object, adding a note to `notes` for every
/// repair, left-out field and expired event. `Err` is the refusal of the event, naming the field
/// and the rule.
pub fn check_user<'a>(
    user: Value<'a>,
    settings: &RuleSettings,
    context: &CheckContext<'_>,
    notes: &mut Vec<Note>,
) -> Result<Checked<'a>, String> {
    let Value::Object(mut user) = user else {
        return Err(format!(
            "a user object must be a JSON object, found {}",
            log::short(&user)
        ));
    };
    if let Some(key) = user.keys().find(|k| {
        !matches!(
            *k,
            "identifiers" | "insider_id" | "attributes" | "events" | "not_append"
        )
    }) {
        return Err(format!(
            "{key}: not a field of an Insider user object (identifiers, attributes, events)"
        ));
    }
    let noted_before = notes.len();
    let mut log = Log {
        notes,
        reject_invalid: settings.reject_invalid,
        detail: context.notes,
    };
    if !settings.send_attributes {
        user.shift_remove("attributes");
    }
    match user.get_mut("identifiers") {
        Some(Value::Object(identifiers)) => {
            identifiers::check(identifiers, settings, &mut log)?;
            if identifiers.is_empty() {
                user.shift_remove("identifiers");
            }
        }
        Some(other) => {
            return Err(format!(
                "identifiers: must be an object, found {}",
                log::short(other)
            ));
        }
        None => {}
    }
    if let Some(id) = user.get_mut("insider_id") {
        *id = Value::from(convert::to_text(id).ok_or("insider_id: must be a string")?);
    }
    if !user.contains_key("identifiers") && !user.contains_key("insider_id") {
        return Ok(Checked::Nothing(
            "no identifier to send (email, phone_number, uuid or a configured custom identifier)"
                .into(),
        ));
    }

    match user.get_mut("attributes") {
        Some(Value::Object(attributes)) => {
            fields::check(
                attributes,
                log::Section::Attributes,
                0,
                kinds::attribute_kind,
                settings.phone_country_code.as_deref(),
                &mut log,
            )?;
            if attributes.is_empty() {
                user.shift_remove("attributes");
            }
        }
        Some(other) => {
            return Err(format!(
                "attributes: must be an object, found {}",
                log::short(other)
            ));
        }
        None => {}
    }

    let (mut expired, mut left_out) = (None, None);
    if let Some(events) = user.get_mut("events") {
        if events.is_object() {
            *events = Value::Array(vec![std::mem::take(events)]);
        }
        let Value::Array(list) = events else {
            return Err(format!(
                "events: must be an array, found {}",
                log::short(events)
            ));
        };
        // The indexes of events not sent, in order (allocated only when there are any).
        let mut unsent = Vec::new();
        for (i, event) in list.iter_mut().enumerate() {
            match events::check(event, i, settings, context, &mut log)? {
                Fate::Send => {}
                Fate::Expired(rule) => {
                    expired.get_or_insert(rule);
                    unsent.push(i);
                }
                Fate::LeftOut(reason) => {
                    left_out.get_or_insert(reason);
                    unsent.push(i);
                }
            }
        }
        if !unsent.is_empty() {
            let mut index = 0;
            list.retain(|_| {
                let sent = unsent.binary_search(&index).is_err();
                index += 1;
                sent
            });
        }
        if list.is_empty() {
            user.shift_remove("events");
        }
    }

    if !user.contains_key("events") {
        // No event is sent: one of them could not be (refused, to be fixed and sent again whole),
        // or all were too old (expired, unless attributes remain to be sent).
        if let Some(reason) = left_out {
            return Err(reason);
        }
        if let Some(rule) = expired
            && !user.contains_key("attributes")
        {
            return Ok(Checked::Expired(rule));
        }
    }
    if !user.contains_key("attributes") && !user.contains_key("events") {
        let dropped = log.notes[noted_before..]
            .iter()
            .find(|n| n.action == NoteAction::Dropped);
        if let Some(note) = dropped {
            return Err(format!(
                "nothing valid to send: {}: {}",
                note.field, note.detail
            ));
        }
        return Ok(Checked::Nothing(
            "neither attributes nor events to send".into(),
        ));
    }
    user.shift_remove("not_append");
    if settings.not_append {
        user.insert("not_append", Value::Bool(true));
    }
    Ok(Checked::User(user))
}
