//! Who is to be erased, as `POST /v1/privacy/erasure` and `hardal forget` take it:
//! `{"user_id": …, "email": …, "phone": …, "custom": {"K": …}}`, each a string or an array of
//! strings (numbers are read as their digits). The backlog keeps this JSON only while the job is
//! pending, to resume it after a crash.

use std::collections::BTreeMap;

use hardal_core::Path;
use hardal_core::erasure::Identifiers;
use serde::{Deserialize, Deserializer, Serialize};

/// The identifiers of one erasure request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Who {
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub user_id: Vec<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub email: Vec<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub phone: Vec<String>,
    /// An event path (`properties.customer_no`) and the values it holds for this user.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, Many>,
}

/// Values of one custom identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Many(#[serde(deserialize_with = "one_or_many")] pub Vec<String>);

/// A string, a number, or an array of them.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    let value = serde_json::Value::deserialize(deserializer)?;
    let scalar = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(D::Error::custom(format!(
            "an identifier is a string or a number, not {}",
            hardal_core::event::json_type(other)
        ))),
    };
    match &value {
        serde_json::Value::Array(items) => items.iter().map(scalar).collect(),
        serde_json::Value::Null => Ok(Vec::new()),
        other => Ok(vec![scalar(other)?]),
    }
}

impl Who {
    /// Parses a request body, checking that it names someone and that custom keys are paths.
    pub fn parse(text: &str) -> Result<Who, String> {
        let who: Who = serde_json::from_str(text).map_err(|e| {
            format!(
                "the body is not an erasure request (`user_id`, `email`, `phone`, `custom`): {e}"
            )
        })?;
        who.check()?;
        Ok(who)
    }

    /// Values must not be blank, custom keys must be event paths, and someone must be named.
    pub fn check(&self) -> Result<(), String> {
        let blank = |values: &[String]| values.iter().any(|v| v.trim().is_empty());
        if blank(&self.user_id)
            || blank(&self.email)
            || blank(&self.phone)
            || self.custom.values().any(|v| blank(&v.0))
        {
            return Err("an identifier is empty".into());
        }
        for key in self.custom.keys() {
            Path::parse(key)
                .map_err(|e| format!("custom identifier `{key}` is not an event path: {e}"))?;
        }
        if self.identifiers().is_empty() {
            return Err("name the user to erase: `user_id`, `email`, `phone` or `custom`".into());
        }
        self.identifiers()
            .check()
            .map_err(|problems| problems.join("; "))
    }

    /// The identifiers as core hashes and destinations read them.
    pub fn identifiers(&self) -> Identifiers {
        Identifiers {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            custom: self
                .custom
                .iter()
                .flat_map(|(key, values)| values.0.iter().map(|v| (key.clone(), v.clone())))
                .collect(),
        }
    }

    /// Every plain value, to keep them out of anything stored or printed (a destination's
    /// answer may quote one).
    pub fn values(&self) -> Vec<&str> {
        self.user_id
            .iter()
            .chain(&self.email)
            .chain(&self.phone)
            .chain(self.custom.values().flat_map(|v| &v.0))
            .map(String::as_str)
            .collect()
    }

    /// Replaces every plain value in `text` (case-insensitively) with `[identifier]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for value in self.values() {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let lower = text.to_lowercase();
            if lower.len() != text.len() {
                text = text.replace(value, "[identifier]");
                continue;
            }
            let needle = value.to_lowercase();
            let mut out = String::with_capacity(text.len());
            let mut at = 0;
            while let Some(found) = lower[at..].find(&needle) {
                out.push_str(&text[at..at + found]);
                out.push_str("[identifier]");
                at += found + needle.len();
            }
            out.push_str(&text[at..]);
            text = out;
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::Who;

    #[test]
    fn identifiers_are_strings_numbers_or_arrays_of_them() {
        let who = Who::parse(
            r#"{"user_id": 42, "email": ["A@b.co", "c@d.co"], "custom": {"properties.no": "7"}}"#,
        )
        .unwrap();
        assert_eq!(who.user_id, ["42"]);
        assert_eq!(who.email, ["A@b.co", "c@d.co"]);
        assert_eq!(
            who.identifiers().custom,
            [("properties.no".into(), "7".into())]
        );
        assert_eq!(
            Who::parse(&serde_json::to_string(&who).unwrap()).unwrap(),
            who
        );
        for bad in [
            r#"{}"#,
            r#"{"email": ""}"#,
            r#"{"mail": "a"}"#,
            r#"{"user_id": {}}"#,
        ] {
            assert!(Who::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scrubbing_leaves_no_identifier_in_any_case() {
        let who = Who::parse(r#"{"email": "Ada@Example.com", "user_id": "u-1"}"#).unwrap();
        assert_eq!(
            who.scrub("user ada@example.COM (u-1) not found"),
            "user [identifier] ([identifier]) not found"
        );
    }
}
