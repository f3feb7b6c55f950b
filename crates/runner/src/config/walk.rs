//! A walk over a configuration value guided by its JSON Schema: each value is visited together
//! with the schemas that describe it, so checks can ask "is this a secret?" or "is this a
//! template?" from the schema's annotations instead of from hard-coded field names.

use serde_json::Value;

/// Visits `value` and, while `visit` returns true, its members and items, each with the schemas
/// that apply to it (following `properties`, `additionalProperties`, `items`, `allOf`, `anyOf`
/// and `oneOf`) and its JSON pointer.
pub fn walk(
    value: &mut Value,
    schemas: &[&Value],
    pointer: &str,
    visit: &mut dyn FnMut(&mut Value, &[&Value], &str) -> bool,
) {
    let schemas = expand(schemas);
    if !visit(value, &schemas, pointer) {
        return;
    }
    match value {
        Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                let children: Vec<&Value> = schemas
                    .iter()
                    .filter_map(|s| {
                        s.get("properties")
                            .and_then(|p| p.get(key))
                            .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                    })
                    .collect();
                let child = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                walk(member, &children, &child, visit);
            }
        }
        Value::Array(items) => {
            let children: Vec<&Value> = schemas.iter().filter_map(|s| s.get("items")).collect();
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &children, &format!("{pointer}/{i}"), visit);
            }
        }
        _ => {}
    }
}

/// True when one of the schemas carries `keyword: true`.
pub fn annotated(schemas: &[&Value], keyword: &str) -> bool {
    schemas
        .iter()
        .any(|s| s.get(keyword) == Some(&Value::Bool(true)))
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
