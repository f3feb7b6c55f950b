//! Where a field is, and what the rules did to it: every repair and every left-out field becomes
//! a [`Note`]; with `on_invalid_field: reject` an invalid field refuses the event instead, with a
//! reason that names the field (with its event index) and the rule.

use std::borrow::Cow;

use hardal_core::value::Value;
use hardal_core::{Note, NoteAction, Notes};

use super::kinds::{Invalid, attribute_field, param_field};

/// The part of a user object a field is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Identifiers,
    CustomIdentifiers,
    Attributes,
    CustomAttributes,
    /// `events.<i>.<key>` (`event_name`, `timestamp`).
    Event,
    Params,
    CustomParams,
}

impl Section {
    fn prefix(self) -> &'static str {
        match self {
            Section::Identifiers => "identifiers",
            Section::CustomIdentifiers => "identifiers.custom",
            Section::Attributes => "attributes",
            Section::CustomAttributes => "attributes.custom",
            Section::Event => "events",
            Section::Params => "events.event_params",
            Section::CustomParams => "events.event_params.custom",
        }
    }

    pub(crate) fn custom(self) -> Section {
        match self {
            Section::Attributes => Section::CustomAttributes,
            Section::Params => Section::CustomParams,
            other => other,
        }
    }
}

/// A field: its section, the index of its event (for events), and its key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    pub section: Section,
    pub event: usize,
    pub key: &'a str,
}

impl Place<'_> {
    /// The field without indexes, for counting: `events.event_params.unit_price`. A field
    /// Insider knows has its name spelled out already: most notes are on such fields, and every
    /// event has some.
    pub(crate) fn field(&self) -> Cow<'static, str> {
        let known = match (self.section, self.key) {
            (Section::Attributes, key) => attribute_field(key),
            (Section::Params, key) => param_field(key),
            (Section::Identifiers, "email") => Some("identifiers.email"),
            (Section::Identifiers, "phone_number") => Some("identifiers.phone_number"),
            (Section::Identifiers, "uuid") => Some("identifiers.uuid"),
            (Section::Event, "event_name") => Some("events.event_name"),
            (Section::Event, "timestamp") => Some("events.timestamp"),
            _ => None,
        };
        if let Some(field) = known {
            return Cow::Borrowed(field);
        }
        // Joined by hand rather than with `format!`: this runs for every note on a custom field.
        let prefix = self.section.prefix();
        let mut field = String::with_capacity(prefix.len() + 1 + self.key.len());
        field.push_str(prefix);
        field.push('.');
        field.push_str(self.key);
        Cow::Owned(field)
    }

    /// The field with its event index, for refusals: `events.0.event_params.unit_price`.
    pub(crate) fn indexed(&self) -> String {
        match self.section {
            Section::Event => format!("events.{}.{}", self.event, self.key),
            Section::Params => format!("events.{}.event_params.{}", self.event, self.key),
            Section::CustomParams => {
                format!("events.{}.event_params.custom.{}", self.event, self.key)
            }
            _ => self.field().into_owned(),
        }
    }
}

/// The notes of one event, and whether invalid fields are left out or refuse the event.
#[derive(Debug)]
pub(crate) struct Log<'n> {
    pub notes: &'n mut Vec<Note>,
    pub reject_invalid: bool,
    /// How much is noted (left-out fields always are: the rules read them).
    pub detail: Notes,
}

impl Log<'_> {
    pub(crate) fn repaired(
        &mut self,
        place: Place<'_>,
        rule: &'static str,
        before: &Value,
        after: &Value,
    ) {
        let detail = match self.detail {
            Notes::LeftOut => return,
            Notes::Counted => String::new(),
            Notes::Detailed => {
                // Written into one string: repairs are common, and this runs for each of them.
                let mut detail = String::with_capacity(32);
                push_short(&mut detail, before);
                detail.push_str(" → ");
                push_short(&mut detail, after);
                detail
            }
        };
        self.note(NoteAction::Repaired, place.field(), rule, detail);
    }

    /// A missing required value derived from others.
    pub(crate) fn derived(&mut self, place: Place<'_>, rule: &'static str, value: &Value) {
        let detail = match self.detail {
            Notes::LeftOut => return,
            Notes::Counted => String::new(),
            Notes::Detailed => format!("missing → {}", short(value)),
        };
        self.note(NoteAction::Repaired, place.field(), rule, detail);
    }

    pub(crate) fn note(
        &mut self,
        action: NoteAction,
        field: impl Into<Cow<'static, str>>,
        rule: impl Into<Cow<'static, str>>,
        detail: String,
    ) {
        self.notes.push(Note {
            action,
            field: field.into(),
            rule: rule.into(),
            detail,
        });
    }

    /// An invalid value: left out with a note, or (rejecting) the refusal of the event.
    pub(crate) fn invalid(
        &mut self,
        place: Place<'_>,
        rule: &Invalid,
        value: &Value,
    ) -> Result<(), String> {
        let detail = format!("{} is {}", short(value), rule.explain);
        if self.reject_invalid {
            return Err(format!("{}: {detail}", place.indexed()));
        }
        self.note(NoteAction::Dropped, place.field(), rule.name, detail);
        Ok(())
    }

    /// A field left out for a reason other than its type (nesting, a name already taken):
    /// noted, or (rejecting) the refusal of the event.
    pub(crate) fn left_out(
        &mut self,
        place: Place<'_>,
        rule: &'static str,
        detail: String,
    ) -> Result<(), String> {
        if self.reject_invalid {
            return Err(format!("{}: {detail}", place.indexed()));
        }
        self.note(NoteAction::Dropped, place.field(), rule, detail);
        Ok(())
    }
}

/// The most characters of a value a message quotes.
const SHORT: usize = 60;

/// A value quoted for a message, cut short.
pub(crate) fn short(value: &Value) -> String {
    let mut text = String::new();
    push_short(&mut text, value);
    text
}

/// Appends a value as compact JSON, cut short after [`SHORT`] characters.
fn push_short(out: &mut String, value: &Value) {
    use std::fmt::Write as _;
    let start = out.len();
    match value {
        // Text that needs no escaping is quoted directly: most repaired values are such text.
        Value::String(text)
            if !text
                .bytes()
                .any(|b| b == b'"' || b == b'\\' || b.is_ascii_control()) =>
        {
            out.push('"');
            out.push_str(text);
            out.push('"');
        }
        _ => {
            let _ = write!(out, "{value}");
        }
    }
    if out.len() - start > SHORT
        && let Some((cut, _)) = out[start..].char_indices().nth(SHORT)
    {
        out.truncate(start + cut);
        out.push('…');
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{Place, Section};

    #[test]
    fn a_field_is_named_the_same_whether_insider_knows_it_or_not() {
        // (section, key, whether its name is spelled out already)
        let cases = [
            (Section::Identifiers, "email", true),
            (Section::Identifiers, "uuid", true),
            (Section::CustomIdentifiers, "hardal_id", false),
            (Section::Attributes, "email_optin", true),
            (Section::Attributes, "static_segment_id", true),
            (Section::Attributes, "favourite_colour", false),
            (Section::CustomAttributes, "email", false),
            (Section::Event, "timestamp", true),
            (Section::Params, "unit_sale_price", true),
            (Section::Params, "promotion_discount", true),
            (Section::Params, "coupon", false),
            (Section::CustomParams, "currency", false),
        ];
        for (section, key, known) in cases {
            let place = Place {
                section,
                event: 3,
                key,
            };
            let field = place.field();
            assert_eq!(field, format!("{}.{key}", section.prefix()));
            assert_eq!(matches!(field, Cow::Borrowed(_)), known, "{field}");
        }
    }
}
