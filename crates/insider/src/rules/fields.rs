//! Attributes and event parameters, in place: Insider's keys converted to their types (repaired
//! with a note, or left out with a note when invalid), other keys moved under `custom`, Insider's
//! keys found under `custom` lifted out of it (a value at the top level wins), blanks left out.

use hardal_core::convert;
use hardal_core::value::{Map, Value};

use super::custom;
use super::kinds::{Coerced, Kind, coerce};
use super::log::{Log, Place, Section, short};

pub(crate) fn check(
    fields: &mut Map<'_>,
    section: Section,
    event: usize,
    kind_of: fn(&str) -> Option<Kind>,
    phone_country_code: Option<&str>,
    log: &mut Log<'_>,
) -> Result<(), String> {
    let mut custom = match fields.shift_remove("custom") {
        Some(Value::Object(members)) => members,
        Some(other) if !is_blank(&other) => {
            let place = Place {
                section,
                event,
                key: "custom",
            };
            log.left_out(
                place,
                "not an object",
                format!("{} is not an object of custom fields", short(&other)),
            )?;
            Map::new()
        }
        _ => Map::new(),
    };
    fields.retain(|_, value| !is_blank(value));
    custom.retain(|_, value| !is_blank(value));
    // A key written both at the top level and under `custom` keeps one value — the one under
    // `custom` for custom keys, the top-level one for Insider's keys; the other, when it differs,
    // is left out with a note rather than lost without a word. The members are moved, not
    // copied and removed one by one: this runs for every user object and every event in it.
    for (key, value) in moved_out(fields, |key| kind_of(key).is_none()) {
        if kind_of(&key).is_some() {
            fields.insert(key, value);
            continue;
        }
        match custom.get(&key) {
            None => {
                custom.insert(key, value);
            }
            Some(kept) if *kept == value => {}
            Some(kept) => {
                let detail = format!(
                    "{} is kept under custom; {} is left out",
                    short(kept),
                    short(&value)
                );
                let place = Place {
                    section: section.custom(),
                    event,
                    key: &key,
                };
                log.left_out(place, "written twice", detail)?;
            }
        }
    }
    for (key, value) in moved_out(&mut custom, |key| kind_of(key).is_some()) {
        if kind_of(&key).is_none() {
            custom.insert(key, value);
            continue;
        }
        match fields.get(&key) {
            None => {
                fields.insert(key, value);
            }
            Some(kept) if *kept == value => {}
            Some(kept) => {
                let detail = format!(
                    "{} is kept; {} under custom is left out",
                    short(kept),
                    short(&value)
                );
                let place = Place {
                    section,
                    event,
                    key: &key,
                };
                log.left_out(place, "written twice", detail)?;
            }
        }
    }
    let mut invalid = Vec::new();
    for (key, value) in fields.iter_mut() {
        let kind = kind_of(key).expect("unknown keys were moved under custom");
        let place = Place {
            section,
            event,
            key,
        };
        match coerce(value, kind, phone_country_code) {
            Coerced::Kept => {}
            Coerced::Repaired(new, rule) => {
                log.repaired(place, rule, value, &new);
                *value = new;
            }
            Coerced::Invalid(rule) => {
                log.invalid(place, rule, value)?;
                invalid.push(key.to_owned());
            }
        }
    }
    for key in invalid {
        fields.shift_remove(&key);
    }
    custom::check(&mut custom, section.custom(), event, log)?;
    if !custom.is_empty() {
        fields.insert("custom", Value::Object(custom));
    }
    Ok(())
}

/// All members of `map` to go through again when any of them satisfies `moves` (then `map` is
/// left empty, with room for them all and `custom`), else none; the caller puts back those that
/// stay.
fn moved_out<'a>(map: &mut Map<'a>, moves: impl Fn(&str) -> bool) -> Map<'a> {
    if map.keys().any(moves) {
        let len = map.len();
        std::mem::replace(map, Map::with_capacity(len + 1))
    } else {
        Map::new()
    }
}

pub(crate) fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => convert::trim(s).is_empty(),
        _ => false,
    }
}
