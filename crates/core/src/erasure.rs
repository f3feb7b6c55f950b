//! Erasure: who is to be forgotten (`Identifiers`), the hashes that stand for them where hardal
//! must remember a user without keeping the user's data (suppression lists, audit records), the
//! same hashes computed from an event, and what a destination answers when asked to erase a user
//! (`Erasure`: the requests to send, or what the operator must do instead).
//!
//! Both sides normalize the same way, so an operator's `--email " Ada@Example.com"` and an event's
//! `"user": {"email": "ada@example.com"}` give the same hash: emails trimmed and lower-cased;
//! phone numbers as their digits, an international prefix (`+` or `00`) dropped, a national
//! number (one leading `0`) kept as written, since its country is unknown; user ids and custom
//! values trimmed, numbers as their JSON text; custom keys as their canonical path text.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};

use crate::destination::HttpRequest;
use crate::event::{Event, exact_text};
use crate::path::Path;
use crate::value::Value as Tree;

/// The domain-separation prefix of every identifier hash; a new normalization gets a new version.
const DOMAIN: &str = "hardal-erasure-v1";

/// The identifiers of one user to be forgotten, as the operator gave them. Any number of each;
/// every one of them names the same person.
///
/// `Debug` prints counts only, so an identifier never reaches a log through it.
#[derive(Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifiers {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_id: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone: Vec<String>,
    /// `(K, V)`: the event's value at path `K` is `V` (e.g. `("properties.loyalty_id", "L-9")`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<(String, String)>,
}

impl fmt::Debug for Identifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Identifiers {{ user_id: {}, email: {}, phone: {}, custom: {} }}",
            self.user_id.len(),
            self.email.len(),
            self.phone.len(),
            self.custom.len()
        )
    }
}

impl Identifiers {
    /// True when no identifier is given (nothing can be erased).
    pub fn is_empty(&self) -> bool {
        self.user_id.is_empty()
            && self.email.is_empty()
            && self.phone.is_empty()
            && self.custom.is_empty()
    }

    /// Checks what would make a hash match nothing: empty values, a phone number without digits,
    /// a custom key that is not a path. Each problem names the field, never the value.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.is_empty() {
            problems
                .push("no identifier: give a user id, an email, a phone or a custom K=V".into());
        }
        for (i, v) in self.user_id.iter().enumerate() {
            if v.trim().is_empty() {
                problems.push(format!("user_id {}: empty", i + 1));
            }
        }
        for (i, v) in self.email.iter().enumerate() {
            if normalize_email(v).is_none() {
                problems.push(format!("email {}: empty", i + 1));
            }
        }
        for (i, v) in self.phone.iter().enumerate() {
            if normalize_phone(v).is_none() {
                problems.push(format!("phone {}: no digits", i + 1));
            }
        }
        for (key, value) in &self.custom {
            if let Err(e) = Path::parse(key) {
                problems.push(format!("custom key `{key}` is not a path: {e}"));
            }
            if value.trim().is_empty() {
                problems.push(format!("custom `{key}`: empty value"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The custom keys as paths, for [`event_identifier_hashes`]; keys that are not paths are left
    /// out ([`Identifiers::check`] reports them).
    pub fn custom_paths(&self) -> Vec<Path> {
        let mut paths: Vec<Path> = Vec::new();
        for (key, _) in &self.custom {
            if let Ok(path) = Path::parse(key)
                && !paths.contains(&path)
            {
                paths.push(path);
            }
        }
        paths
    }

    /// One SHA-256 hex per identifier, normalized and domain-separated
    /// (`hardal-erasure-v1\0email\0a@b.co`), sorted and without repeats: what suppression lists
    /// store. Values that normalize to nothing are left out.
    pub fn hashes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in &self.user_id {
            out.extend(hash_user_id(v));
        }
        for v in &self.email {
            out.extend(normalize_email(v).map(|e| hash_field("email", &e)));
        }
        for v in &self.phone {
            out.extend(normalize_phone(v).map(|p| hash_field("phone", &p)));
        }
        for (key, value) in &self.custom {
            let key = Path::parse(key).map_or_else(|_| key.clone(), |p| p.to_string());
            out.extend(hash_custom(&key, value));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// One SHA-256 hex for the whole set (over the sorted hashes): what an audit record stores.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"hardal-erasure-digest-v1");
        for hash in self.hashes() {
            hasher.update(b"\0");
            hasher.update(hash.as_bytes());
        }
        hex(&hasher.finalize())
    }
}

/// An email as both sides compare it: trimmed and lower-cased; `None` when nothing is left.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    (!email.is_empty()).then_some(email)
}

/// A phone number as both sides compare it: its digits, without an international prefix (`+` or
/// `00`), so `+90 532 123 45 67`, `0090 532 1234567` and `905321234567` are one number. A
/// national number (`0532 123 45 67`) keeps its leading `0`: its country is unknown here, and
/// guessing one could suppress another person. `None` without digits.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let international = raw.starts_with('+') || digits.starts_with("00");
    let digits = if international {
        digits.trim_start_matches('0')
    } else {
        digits.as_str()
    };
    (!digits.is_empty()).then(|| digits.to_owned())
}

fn hash_field(kind: &str, normalized: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [DOMAIN, kind] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    hasher.update(normalized.as_bytes());
    hex(&hasher.finalize())
}

fn hash_user_id(raw: &str) -> Option<String> {
    let id = raw.trim();
    (!id.is_empty()).then(|| hash_field("user_id", id))
}

/// `key` is the canonical path text; the key goes in as its own part so that `a` = `b.c` and
/// `a.b` = `c` never meet.
fn hash_custom(key: &str, raw: &str) -> Option<String> {
    let value = raw.trim();
    if value.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    for part in [DOMAIN, "custom", key] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    hasher.update(value.as_bytes());
    Some(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

/// The identifier hashes of an event's own user: `user_id`, `user.email`, `user.phone`,
/// `user.phone_number`, and the value at each of `custom_paths` (the custom keys of the
/// suppressions in force), normalized as [`Identifiers::hashes`] does. Only strings and numbers
/// count. An event of a suppressed user shares at least one hash with the suppression list.
pub fn event_identifier_hashes(event: &Event, custom_paths: &[Path]) -> Vec<String> {
    let user = event.field("user").and_then(Tree::as_object);
    let mut ids = EventIds {
        user_id: scalar(event.field("user_id")),
        email: scalar(user.and_then(|u| u.get("email"))),
        phone: scalar(user.and_then(|u| u.get("phone"))),
        phone_number: scalar(user.and_then(|u| u.get("phone_number"))),
    }
    .hashes();
    for path in custom_paths {
        if let Some(value) = scalar(event.get(path)) {
            ids.extend(hash_custom(&path.to_string(), &value));
        }
    }
    ids
}

/// [`event_identifier_hashes`] on an event's JSON text, for ingestion, which does not build a
/// value: without custom paths only the four identifier fields are read and everything else is
/// skipped unbuilt. Gives the same hashes as the value form for any text `parse_event` accepts.
pub fn event_identifier_hashes_text(
    text: &str,
    custom_paths: &[Path],
) -> Result<Vec<String>, serde_json::Error> {
    if !custom_paths.is_empty() {
        let event = Event::from_value(crate::event::parse_event(text)?)
            .map_err(serde::de::Error::custom)?;
        return Ok(event_identifier_hashes(&event, custom_paths));
    }
    let text = exact_text(text);
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let ids = TopLevel.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(ids.hashes())
}

/// An event's identifier values, as found (not yet normalized).
#[derive(Default)]
struct EventIds<'a> {
    user_id: Option<Cow<'a, str>>,
    email: Option<Cow<'a, str>>,
    phone: Option<Cow<'a, str>>,
    phone_number: Option<Cow<'a, str>>,
}

impl EventIds<'_> {
    fn hashes(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(4);
        out.extend(self.user_id.as_deref().and_then(hash_user_id));
        out.extend(
            self.email
                .as_deref()
                .and_then(normalize_email)
                .map(|e| hash_field("email", &e)),
        );
        for phone in [&self.phone, &self.phone_number] {
            if let Some(p) = phone.as_deref().and_then(normalize_phone) {
                let hash = hash_field("phone", &p);
                if !out.contains(&hash) {
                    out.push(hash);
                }
            }
        }
        out
    }
}

/// A string as it is, a number as its JSON text; anything else is no identifier.
fn scalar<'a>(value: Option<&'a Tree<'_>>) -> Option<Cow<'a, str>> {
    match value? {
        Tree::String(s) => Some(Cow::Borrowed(s)),
        Tree::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// Reads the top level of an event's text: `user_id` and `user`, the rest skipped. A repeated
/// key counts by its last value, as the value parser keeps it.
struct TopLevel;

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum TopKey {
    UserId,
    User,
    #[serde(other)]
    Other,
}

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum UserKey {
    Email,
    Phone,
    PhoneNumber,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for TopLevel {
    type Value = EventIds<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = EventIds<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ids = EventIds::default();
        while let Some(key) = map.next_key::<TopKey>()? {
            match key {
                TopKey::UserId => ids.user_id = map.next_value_seed(Scalar)?,
                TopKey::User => {
                    let user = map.next_value_seed(UserObject)?;
                    (ids.email, ids.phone, ids.phone_number) = user;
                }
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ids)
    }
}

/// The `user` member: its `email`, `phone` and `phone_number`; a `user` that is no object has none.
struct UserObject;

type UserIds<'a> = (
    Option<Cow<'a, str>>,
    Option<Cow<'a, str>>,
    Option<Cow<'a, str>>,
);

impl<'de> DeserializeSeed<'de> for UserObject {
    type Value = UserIds<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UserObject {
    type Value = UserIds<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ids: UserIds<'de> = (None, None, None);
        while let Some(key) = map.next_key::<UserKey>()? {
            match key {
                UserKey::Email => ids.0 = map.next_value_seed(Scalar)?,
                UserKey::Phone => ids.1 = map.next_value_seed(Scalar)?,
                UserKey::PhoneNumber => ids.2 = map.next_value_seed(Scalar)?,
                UserKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ids)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok((None, None, None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok((None, None, None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok((None, None, None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok((None, None, None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok((None, None, None))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok((None, None, None))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok((None, None, None))
    }
}

/// A value read as [`scalar`] reads it, borrowing the text when it holds no escapes.
struct Scalar;

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // The same text the value parser's number would print.
        Ok(serde_json::Number::from_f64(v).map(|n| Cow::Owned(n.to_string())))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// What a destination answers when asked to erase a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erasure {
    /// Requests to send, in order; each answer is judged with `Destination::judge_erasure`.
    Requests(Vec<ErasureRequest>),
    /// The destination cannot erase through hardal: what the operator must do, and with which
    /// identifier fields (names, never values).
    Unsupported { how: String },
}

/// One erasure request and what it asks for, in words for the audit record
/// (`delete user profile by email`); `what` never holds an identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRequest {
    pub what: String,
    pub request: HttpRequest,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(
        user_id: &[&str],
        email: &[&str],
        phone: &[&str],
        custom: &[(&str, &str)],
    ) -> Identifiers {
        Identifiers {
            user_id: user_id.iter().map(|s| s.to_string()).collect(),
            email: email.iter().map(|s| s.to_string()).collect(),
            phone: phone.iter().map(|s| s.to_string()).collect(),
            custom: custom
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn normalization_as_data() {
        for (raw, expected) in [
            ("ada@example.com", Some("ada@example.com")),
            ("  Ada@Example.COM \n", Some("ada@example.com")),
            ("ÇAĞLA@örnek.com.tr", Some("çağla@örnek.com.tr")),
            ("   ", None),
        ] {
            assert_eq!(normalize_email(raw).as_deref(), expected, "email {raw:?}");
        }
        for (raw, expected) in [
            ("+90 532 123 45 67", Some("905321234567")),
            ("+90 (532) 123-45-67", Some("905321234567")),
            ("0090 532 1234567", Some("905321234567")),
            ("905321234567", Some("905321234567")),
            // National: the country is unknown, so the leading 0 stays and it matches only itself.
            ("0532 123 45 67", Some("05321234567")),
            ("+", None),
            ("call me", None),
        ] {
            assert_eq!(normalize_phone(raw).as_deref(), expected, "phone {raw:?}");
        }
    }

    #[test]
    fn hashes_are_domain_separated_sha256() {
        // sha256("hardal-erasure-v1\0email\0ada@example.com"), computed independently with
        // `printf 'hardal-erasure-v1\0email\0ada@example.com' | sha256sum`.
        let hashes = ids(&[], &[" ADA@example.com"], &[], &[]).hashes();
        expect_test::expect![[r#"
            [
                "fcb23995dd6eabdb63dbeb3dc978087abc0aa9bc8ec573ac9e8b3f4931f34bb3",
            ]
        "#]]
        .assert_debug_eq(&hashes);
        // The same text as a user id or a phone is another identifier.
        let as_user_id = ids(&["ada@example.com"], &[], &[], &[]).hashes();
        assert_ne!(hashes, as_user_id);
        // Custom keys are canonical paths and kept apart from their values.
        assert_eq!(
            ids(&[], &[], &[], &[("properties.\"loyalty_id\"", " L-9 ")]).hashes(),
            ids(&[], &[], &[], &[("properties.loyalty_id", "L-9")]).hashes()
        );
        assert_ne!(
            ids(&[], &[], &[], &[("a", "b\0c")]).hashes(),
            ids(&[], &[], &[], &[("a.b", "c")]).hashes()
        );
    }

    #[test]
    fn hashes_are_sorted_and_unique_and_the_digest_ignores_order() {
        let a = ids(
            &["u42"],
            &["ada@example.com", "ADA@example.com"],
            &["+90 532 123 45 67", "0090 5321234567"],
            &[],
        );
        let b = ids(&["u42"], &["ada@example.com"], &["905321234567"], &[]);
        assert_eq!(a.hashes().len(), 3);
        assert_eq!(a.hashes(), b.hashes());
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 64);
        assert_ne!(a.digest(), ids(&["u43"], &[], &[], &[]).digest());
        assert!(!a.hashes().contains(&a.digest()));
    }

    #[test]
    fn debug_shows_no_identifier() {
        let who = ids(&["u42"], &["ada@example.com"], &[], &[("k", "secret-v")]);
        let printed = format!("{who:?}");
        assert_eq!(
            printed,
            "Identifiers { user_id: 1, email: 1, phone: 0, custom: 1 }"
        );
    }

    #[test]
    fn check_names_the_field_never_the_value() {
        assert!(ids(&["u42"], &[], &[], &[]).check().is_ok());
        let problems = ids(&[" "], &[""], &["no digits"], &[("a b", "v"), ("k", " ")])
            .check()
            .unwrap_err();
        expect_test::expect![[r#"
            [
                "user_id 1: empty",
                "email 1: empty",
                "phone 1: no digits",
                "custom key `a b` is not a path: unexpected ' ' at character 2 (keys are separated by '.'; quote odd keys: \"first name\")",
                "custom `k`: empty value",
            ]
        "#]]
        .assert_debug_eq(&problems);
        assert!(Identifiers::default().check().is_err());
    }

    /// The person the operator names and the person events carry give the same hashes.
    #[test]
    fn the_event_side_hashes_like_the_operator_side() {
        let loyalty = Path::parse("properties.loyalty_id").unwrap();
        let cases: [(serde_json::Value, Identifiers); 6] = [
            (
                json!({"user_id": "u42", "user": {"email": "Ada@Example.com"}}),
                ids(&["u42"], &["ada@example.com"], &[], &[]),
            ),
            (
                json!({"user_id": 42, "user": {"phone": "+90 532 123 45 67"}}),
                ids(&["42"], &[], &["905321234567"], &[]),
            ),
            (
                json!({"user": {"phone_number": "0090 532 123 4567", "phone": "+905321234567"}}),
                ids(&[], &[], &["+90 532 1234567"], &[]),
            ),
            (
                json!({"user_id": 1.5, "properties": {"loyalty_id": "L-9"}}),
                ids(&["1.5"], &[], &[], &[("properties.loyalty_id", "L-9")]),
            ),
            (
                json!({"user_id": " ", "user": "ada@example.com", "properties": {"loyalty_id": 7}}),
                ids(&[], &[], &[], &[("properties.loyalty_id", "7")]),
            ),
            (
                json!({"user_id": null, "user": {"email": true, "phone": ["1"]}}),
                Identifiers::default(),
            ),
        ];
        for (event, who) in cases {
            let text = event.to_string();
            let event = Event::from_value(event).unwrap();
            let mut from_event = event_identifier_hashes(&event, std::slice::from_ref(&loyalty));
            from_event.sort();
            assert_eq!(from_event, who.hashes(), "{text}");
            // The text form agrees, with and without the custom path.
            let mut from_text =
                event_identifier_hashes_text(&text, std::slice::from_ref(&loyalty)).unwrap();
            from_text.sort();
            assert_eq!(from_text, from_event, "{text}");
            let mut plain = event_identifier_hashes(&event, &[]);
            plain.sort();
            let mut plain_text = event_identifier_hashes_text(&text, &[]).unwrap();
            plain_text.sort();
            assert_eq!(plain_text, plain, "{text}");
        }
    }

    #[test]
    fn the_text_form_reads_like_the_value_parser() {
        for text in [
            // Escapes, repeated keys (the last counts), big integers, numbers as floats.
            r#"{"user_id":"u\u0034\u0032","user":{"email":"a@b.co","email":"c@d.co"}}"#,
            r#"{"user_id":"u1","user_id":null,"user":{"email":"a@b.co"}}"#,
            r#"{"user_id":123456789012345678901234567890}"#,
            r#"{"user_id":1e3,"user":{"phone":12345678}}"#,
            r#"{"user":null,"user_id":-7,"items":[{"user_id":"x"}]}"#,
        ] {
            let event = Event::from_value(crate::event::parse_event(text).unwrap()).unwrap();
            let mut expected = event_identifier_hashes(&event, &[]);
            expected.sort();
            let mut got = event_identifier_hashes_text(text, &[]).unwrap();
            got.sort();
            assert_eq!(got, expected, "{text}");
            assert!(!got.is_empty(), "{text}");
        }
        assert!(event_identifier_hashes_text("[1]", &[]).is_err());
        assert!(event_identifier_hashes_text("{", &[]).is_err());
    }

    #[test]
    fn identifiers_round_trip_through_json() {
        let who = ids(&["u42"], &["ada@example.com"], &[], &[("k", "v")]);
        let text = serde_json::to_string(&who).unwrap();
        assert_eq!(
            text,
            r#"{"user_id":["u42"],"email":["ada@example.com"],"custom":[["k","v"]]}"#
        );
        assert_eq!(serde_json::from_str::<Identifiers>(&text).unwrap(), who);
    }
}
