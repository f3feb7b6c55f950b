//! The request-level rules of an upsert body: JSON, the `users` array and its limits, `skip_hook`.
//!
//! A body that breaks one of these is answered 400 as a whole, the way Insider answers malformed and
//! oversized requests; only a well-formed batch goes on to per-user validation.

use crate::lite::Lite;

/// The most users Insider takes in one request.
pub const MAX_USERS: usize = 1_000;
/// The largest body Insider takes, "5 MB" read as decimal bytes.
pub const MAX_BODY_BYTES: usize = 5_000_000;

/// Why a whole request is refused with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    /// Not JSON, not an object, no `users` array or an empty one: Insider's documented message.
    #[error("users must be defined: bad request")]
    UsersUndefined,
    #[error("users must contain at most {MAX_USERS} items, got {0}: bad request")]
    TooManyUsers(usize),
    #[error("request body must be at most {MAX_BODY_BYTES} bytes, got {0}: bad request")]
    TooLarge(usize),
    #[error("skip_hook must be a boolean: bad request")]
    SkipHookNotBoolean,
    #[error("unknown top-level key {0}; a request holds users and skip_hook: bad request")]
    UnknownKey(String),
    #[error("content type must be application/json: bad request")]
    NotJson,
}

/// Parses a body of at most [`MAX_BODY_BYTES`] into its user objects, which borrow from it.
pub fn parse_users(body: &[u8]) -> Result<Vec<Lite<'_>>, BadRequest> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BadRequest::TooLarge(body.len()));
    }
    let Ok(Lite::Object(members)) = Lite::parse(body) else {
        return Err(BadRequest::UsersUndefined);
    };
    if let Some((key, _)) = members
        .iter()
        .find(|(key, _)| key != "users" && key != "skip_hook")
    {
        return Err(BadRequest::UnknownKey(key.to_string()));
    }
    let mut users = None;
    // The last occurrence of a repeated key wins, as it does for `serde_json::Value`.
    for (key, value) in members {
        match (key.as_ref(), value) {
            ("skip_hook", Lite::Bool(_)) => {}
            ("skip_hook", _) => return Err(BadRequest::SkipHookNotBoolean),
            (_, Lite::Array(items)) => users = Some(items),
            _ => users = None,
        }
    }
    let users = users.ok_or(BadRequest::UsersUndefined)?;
    match users.len() {
        0 => Err(BadRequest::UsersUndefined),
        n if n > MAX_USERS => Err(BadRequest::TooManyUsers(n)),
        _ => Ok(users),
    }
}

/// Whether a `Content-Type` header value names JSON (`application/json`, any parameters, or a
/// `+json` suffix type).
pub fn is_json_content_type(value: &str) -> bool {
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
        || media
            .rsplit_once('+')
            .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_level_rules() {
        let user = r#"{"identifiers":{"uuid":"u"},"attributes":{"name":"A"}}"#;
        let many = format!(r#"{{"users":[{}]}}"#, vec![user; 1001].join(","));
        let cases: Vec<(&str, String, Result<usize, BadRequest>)> = vec![
            ("one user", format!(r#"{{"users":[{user}]}}"#), Ok(1)),
            (
                "skip_hook",
                format!(r#"{{"skip_hook":true,"users":[{user}]}}"#),
                Ok(1),
            ),
            ("not json", "{".into(), Err(BadRequest::UsersUndefined)),
            ("array", "[]".into(), Err(BadRequest::UsersUndefined)),
            ("no users", "{}".into(), Err(BadRequest::UsersUndefined)),
            (
                "users not array",
                r#"{"users":{}}"#.into(),
                Err(BadRequest::UsersUndefined),
            ),
            (
                "empty users",
                r#"{"users":[]}"#.into(),
                Err(BadRequest::UsersUndefined),
            ),
            ("1001 users", many, Err(BadRequest::TooManyUsers(1001))),
            (
                "skip_hook string",
                format!(r#"{{"skip_hook":"yes","users":[{user}]}}"#),
                Err(BadRequest::SkipHookNotBoolean),
            ),
            (
                "unknown key",
                format!(r#"{{"user":1,"users":[{user}]}}"#),
                Err(BadRequest::UnknownKey("user".into())),
            ),
        ];
        for (name, body, expected) in cases {
            assert_eq!(
                parse_users(body.as_bytes()).map(|users| users.len()),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn json_content_types() {
        let cases = [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/vnd.api+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("", false),
        ];
        for (value, expected) in cases {
            assert_eq!(is_json_content_type(value), expected, "{value}");
        }
    }
}
