//! `${NAME}` environment references. They are allowed only in secret values (schema `writeOnly`,
//! which every header value and token is), so that event templates and URLs never pick up
//! environment contents; an unset variable is a configuration error that names it.

use hardal_core::ConfigError;
use serde_json::Value;

use super::walk::{annotated, walk};

/// Replaces every `${NAME}` in the secret strings of `value` (described by `schema`) with the
/// variable's value from `lookup`; reports unset variables, empty secrets and references outside
/// secrets, and collects every secret value in `secrets` (for redaction).
pub fn resolve(
    value: &mut Value,
    schema: &Value,
    pointer: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
    secrets: &mut Vec<String>,
) {
    walk(value, &[schema], pointer, &mut |value, schemas, pointer| {
        let Value::String(text) = value else {
            return true;
        };
        let secret = annotated(schemas, "writeOnly");
        if !secret {
            if text.contains("${") {
                errors.push(ConfigError::new(
                    pointer,
                    "`${NAME}` environment references are allowed only in secret and header values",
                ));
            }
            return false;
        }
        let referenced = text.contains("${");
        match substitute(text, lookup, secrets) {
            Ok(resolved) => *text = resolved,
            Err(message) => {
                errors.push(ConfigError::new(pointer, message));
                return false;
            }
        }
        secrets.push(text.clone());
        if text.trim().is_empty() {
            // An empty token can never authenticate; sending with it only earns 401s.
            errors.push(ConfigError::new(
                pointer,
                if referenced {
                    "this secret is empty: its environment variable is set to an empty value"
                } else {
                    "this secret is empty"
                },
            ));
        }
        false
    });
}

/// `text` with every `${NAME}` replaced; each variable's value is also added to `used` (a
/// server may echo the token without the `Bearer ` around it).
fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    used: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("`${` is not closed by `}`")?;
        let name = &after[..end];
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`${{{name}}}` is not a valid environment variable reference"
            ));
        }
        match lookup(name) {
            Some(value) => {
                out.push_str(&value);
                used.push(value);
            }
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::resolve;

    #[test]
    fn resolves_secrets_and_refuses_references_elsewhere() {
        let schema = json!({
            "type": "object",
            "properties": {
                "token": {"anyOf": [{"type": "string", "writeOnly": true}, {"type": "null"}]},
                "headers": {"type": "object", "additionalProperties": {"type": "string", "writeOnly": true}},
                "url": {"type": "string"},
                "list": {"type": "array", "items": {"type": "string", "writeOnly": true}}
            }
        });
        let mut value = json!({
            "token": "${TOKEN}",
            "headers": {"Authorization": "Bearer ${TOKEN}", "X-Missing": "${NOT_SET}", "X-Bad": "${1x}"},
            "url": "https://${HOST}/",
            "list": ["a${TOKEN}b${TOKEN}", "${EMPTY}", " "]
        });
        let lookup = |name: &str| match name {
            "TOKEN" => Some("t0k".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let (mut errors, mut secrets) = (Vec::new(), Vec::new());
        resolve(
            &mut value,
            &schema,
            "/destinations/0",
            &lookup,
            &mut errors,
            &mut secrets,
        );
        assert_eq!(
            secrets,
            [
                "t0k",
                "t0k",
                "t0k",
                "Bearer t0k",
                "t0k",
                "t0k",
                "at0kbt0k",
                "",
                "",
                " "
            ]
        );
        assert_eq!(value["token"], "t0k");
        assert_eq!(value["headers"]["Authorization"], "Bearer t0k");
        assert_eq!(value["list"][0], "at0kbt0k");
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "/destinations/0/headers/X-Missing: environment variable NOT_SET is not set",
                "/destinations/0/headers/X-Bad: `${1x}` is not a valid environment variable reference",
                "/destinations/0/url: `${NAME}` environment references are allowed only in secret and header values",
                "/destinations/0/list/1: this secret is empty: its environment variable is set to an empty value",
                "/destinations/0/list/2: this secret is empty",
            ]
        );
    }
}
