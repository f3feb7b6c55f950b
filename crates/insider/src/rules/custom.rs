//! Custom attributes and parameters hold scalars and lists of scalars. A nested object is
//! flattened into `parent_child` keys, up to three keys deep; what cannot be sent that way (lists
//! of objects or of lists, deeper nesting, a flattened name that is already taken) is left out
//! with a note — never lost without a word.

use hardal_core::convert;
use hardal_core::value::{Map, Value};

use super::log::{Log, Place, Section, short};

/// The most keys a flattened name joins (`a_b_c`).
pub(crate) const MAX_DEPTH: usize = 3;

pub(crate) fn check(
    custom: &mut Map<'_>,
    section: Section,
    event: usize,
    log: &mut Log<'_>,
) -> Result<(), String> {
    if custom.values().all(is_flat) {
        return Ok(());
    }
    let members = std::mem::take(custom);
    // Values written flat come first, so a key the data states itself wins over a flattened one.
    let mut nested = Vec::new();
    for (key, value) in members {
        match value {
            Value::Object(_) => nested.push((key, value)),
            Value::Array(ref items) if !items.iter().all(is_scalar) => {
                let what = if items.iter().any(Value::is_object) {
                    "a list of objects"
                } else {
                    "a list of lists"
                };
                let place = Place {
                    section,
                    event,
                    key: &key,
                };
                log.left_out(
                    place,
                    "list of objects or lists",
                    format!("{} is {what}, which Insider cannot store", short(&value)),
                )?;
            }
            scalar => {
                custom.insert(key, scalar);
            }
        }
    }
    for (key, value) in nested {
        let place = Place {
            section,
            event,
            key: &key,
        };
        let mut added = Vec::new();
        flatten(custom, &key, &value, 1, place, log, &mut added)?;
        if !added.is_empty() {
            log.repaired(
                place,
                "nested object flattened",
                &value,
                &Value::from(added.join(", ")),
            );
        }
    }
    Ok(())
}

fn flatten<'a>(
    out: &mut Map<'a>,
    name: &str,
    value: &Value<'a>,
    depth: usize,
    place: Place<'_>,
    log: &mut Log<'_>,
    added: &mut Vec<String>,
) -> Result<(), String> {
    let Value::Object(members) = value else {
        unreachable!("only objects are flattened")
    };
    for (key, member) in members.iter() {
        let flat = format!("{name}_{key}");
        match member {
            Value::Null => {}
            Value::String(s) if convert::trim(s).is_empty() => {}
            Value::Object(_) if depth + 1 < MAX_DEPTH => {
                flatten(out, &flat, member, depth + 1, place, log, added)?;
            }
            Value::Object(_) => log.left_out(
                place,
                "nested deeper than 3 levels",
                format!(
                    "{flat}: {} is nested deeper than {MAX_DEPTH} levels",
                    short(member)
                ),
            )?,
            Value::Array(items) if !items.iter().all(is_scalar) => log.left_out(
                place,
                "list of objects or lists",
                format!(
                    "{flat}: {} is a list of objects or lists, which Insider cannot store",
                    short(member)
                ),
            )?,
            _ if out.contains_key(&flat) => log.left_out(
                place,
                "flattened name already taken",
                format!(
                    "{flat}: {} would replace the value already under that name",
                    short(member)
                ),
            )?,
            _ => {
                out.insert(flat.clone(), member.clone());
                added.push(flat);
            }
        }
    }
    Ok(())
}

fn is_scalar(value: &Value) -> bool {
    !value.is_object() && !value.is_array()
}

fn is_flat(value: &Value) -> bool {
    match value {
        Value::Object(_) => false,
        Value::Array(items) => items.iter().all(is_scalar),
        _ => true,
    }
}
