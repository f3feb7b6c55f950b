//! The configured secrets of a destination, found the way the runner finds them (values the
//! kind's schema marks `writeOnly`), and the assertion that they stay out of what is shown.

use serde_json::Value;

/// The secret values of one destination's configuration.
#[derive(Debug, Default)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// Every non-empty string of `config` that `schema` marks `writeOnly`, following
    /// `properties`, `additionalProperties`, `items`, `allOf`, `anyOf` and `oneOf`.
    pub fn of(schema: &Value, config: &Value) -> Secrets {
        let mut values = Vec::new();
        collect(config, &[schema], &mut values);
        values.sort();
        values.dedup();
        Secrets { values }
    }

    /// The secret values found.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Panics when a secret occurs in `text`; `what` names the text.
    pub fn assert_absent(&self, text: &[u8], what: &str) {
        for secret in &self.values {
            let found = text
                .windows(secret.len())
                .any(|window| window == secret.as_bytes());
            assert!(
                !found,
                "{what} shows a configured secret (the value at a `writeOnly` field): {}",
                String::from_utf8_lossy(text).replace(secret.as_str(), "[the secret]")
            );
        }
    }

    /// Panics when a secret occurs in a URL anywhere but in its query: a query parameter is
    /// where APIs such as GA4 take keys, and the runner redacts it wherever a URL is shown; the
    /// host and the path are shown, compared and logged as addresses.
    pub fn assert_absent_from_url(&self, url: &str, what: &str) {
        let without_query = match url::Url::parse(url) {
            Ok(mut parsed) => {
                parsed.set_query(None);
                parsed.to_string()
            }
            Err(_) => url.to_owned(),
        };
        self.assert_absent(
            without_query.as_bytes(),
            &format!("{what} (outside its query)"),
        );
    }
}

fn collect(value: &Value, schemas: &[&Value], out: &mut Vec<String>) {
    let schemas = expand(schemas);
    let secret = schemas
        .iter()
        .any(|s| s.get("writeOnly") == Some(&Value::Bool(true)));
    match value {
        Value::String(text) if secret && !text.is_empty() => out.push(text.clone()),
        Value::Object(members) => {
            for (key, member) in members {
                let children: Vec<&Value> = schemas
                    .iter()
                    .filter_map(|s| {
                        s.get("properties")
                            .and_then(|p| p.get(key))
                            .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                    })
                    .collect();
                collect(member, &children, out);
            }
        }
        Value::Array(items) => {
            let children: Vec<&Value> = schemas.iter().filter_map(|s| s.get("items")).collect();
            for item in items {
                collect(item, &children, out);
            }
        }
        _ => {}
    }
}

/// The schemas and, recursively, the members of their `allOf` / `anyOf` / `oneOf`.
fn expand<'a>(schemas: &[&'a Value]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = schemas.to_vec();
    while let Some(schema) = stack.pop() {
        out.push(schema);
        for keyword in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(members)) = schema.get(keyword) {
                stack.extend(members.iter());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Secrets;

    #[test]
    fn secrets_are_the_write_only_values() {
        let schema = json!({"properties": {
            "token": {"anyOf": [{"type": "string", "writeOnly": true}, {"type": "null"}]},
            "name": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string", "writeOnly": true}},
            "list": {"type": "array", "items": {"type": "string", "writeOnly": true}}
        }});
        let config = json!({"token": "t0k", "name": "shown", "headers": {"A": "h1", "B": ""},
                            "list": ["l1"]});
        assert_eq!(Secrets::of(&schema, &config).values(), ["h1", "l1", "t0k"]);
    }

    #[test]
    #[should_panic(expected = "a URL (outside its query) shows a configured secret")]
    fn a_secret_in_a_path_is_caught() {
        let secrets = Secrets::of(
            &json!({"properties": {"key": {"writeOnly": true}}}),
            &json!({"key": "s3cr3t"}),
        );
        secrets.assert_absent_from_url("https://api.example/collect?key=s3cr3t", "a URL");
        secrets.assert_absent_from_url("https://api.example/s3cr3t/collect", "a URL");
    }
}
