//! Identifiers: only Insider's keys (`email`, `phone_number`, `uuid`) and the custom identifiers
//! the configuration names are sent, each converted to Insider's form. An invalid identifier is
//! left out with a note when another valid identifier remains; when none would remain the event is
//! refused, naming the identifier and the rule (as it is whenever invalid fields are rejected).

use hardal_core::value::{Map, Value};

use super::RuleSettings;
use super::fields::is_blank;
use super::kinds::{Coerced, Invalid, Kind, coerce};
use super::log::{Log, Place, Section, short};

pub const STANDARD_IDENTIFIERS: [&str; 3] = ["email", "phone_number", "uuid"];

static NOT_IDENTIFIER: Invalid = Invalid {
    name: "not an Insider identifier",
    explain: "not an Insider identifier (email, phone_number, uuid, custom) nor a configured custom identifier",
};

static CUSTOM_NOT_OBJECT: Invalid = Invalid {
    name: "not an object",
    explain: "not an object of custom identifiers",
};

/// An identifier that cannot be sent, waiting to learn whether another one remains.
struct Pending<'a, 'v> {
    section: Section,
    key: String,
    rule: &'a Invalid,
    value: Value<'v>,
}

/// Checks `identifiers` in place. After it, the object holds only valid identifiers (possibly
/// none, when there were none to begin with).
pub(crate) fn check(
    identifiers: &mut Map<'_>,
    settings: &RuleSettings,
    log: &mut Log<'_>,
) -> Result<(), String> {
    let mut pending = Vec::new();
    let mut custom = match identifiers.shift_remove("custom") {
        Some(Value::Object(members)) => members,
        Some(other) if !is_blank(&other) => {
            pending.push(Pending {
                section: Section::Identifiers,
                key: "custom".into(),
                rule: &CUSTOM_NOT_OBJECT,
                value: other,
            });
            Map::new()
        }
        _ => Map::new(),
    };
    custom.retain(|name, value| {
        !is_blank(value) && settings.custom_identifiers.iter().any(|c| c == name)
    });
    identifiers.retain(|_, value| !is_blank(value));
    let moved: Vec<String> = identifiers
        .keys()
        .filter(|key| !STANDARD_IDENTIFIERS.contains(key))
        .map(str::to_owned)
        .collect();
    for key in moved {
        let value = identifiers.shift_remove(&key).expect("listed above");
        if settings.custom_identifiers.contains(&key) {
            custom.insert(key, value);
        } else {
            pending.push(Pending {
                section: Section::Identifiers,
                key,
                rule: &NOT_IDENTIFIER,
                value,
            });
        }
    }
    identifiers.retain(|key, _| settings.standard_identifiers.iter().any(|s| s == key));
    let phone_country_code = settings.phone_country_code.as_deref();
    for (section, members) in [
        (Section::Identifiers, &mut *identifiers),
        (Section::CustomIdentifiers, &mut custom),
    ] {
        let mut invalid = Vec::new();
        for (key, value) in members.iter_mut() {
            let kind = match (section, key) {
                (Section::Identifiers, "email") => Kind::Email,
                (Section::Identifiers, "phone_number") => Kind::Phone,
                _ => Kind::String,
            };
            match coerce(value, kind, phone_country_code) {
                Coerced::Kept => {}
                Coerced::Repaired(new, rule) => {
                    let place = Place {
                        section,
                        event: 0,
                        key,
                    };
                    log.repaired(place, rule, value, &new);
                    *value = new;
                }
                Coerced::Invalid(rule) => invalid.push((key.to_owned(), rule)),
            }
        }
        for (key, rule) in invalid {
            let value = members.shift_remove(&key).expect("listed above");
            pending.push(Pending {
                section,
                key,
                rule,
                value,
            });
        }
    }
    if !custom.is_empty() {
        identifiers.insert("custom", Value::Object(custom));
    }
    if identifiers.is_empty() && !log.reject_invalid {
        // Nothing valid would remain: refused, with the first identifier's reason.
        if let Some(first) = pending.first() {
            return Err(format!(
                "{}.{}: {} is {}",
                prefix(first.section),
                first.key,
                short(&first.value),
                first.rule.explain
            ));
        }
    }
    for p in &pending {
        let place = Place {
            section: p.section,
            event: 0,
            key: &p.key,
        };
        log.invalid(place, p.rule, &p.value)?;
    }
    Ok(())
}

fn prefix(section: Section) -> &'static str {
    match section {
        Section::CustomIdentifiers => "identifiers.custom",
        _ => "identifiers",
    }
}
