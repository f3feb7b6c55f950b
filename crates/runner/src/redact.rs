//! Keeping configured secrets out of everything hardal prints or stores. A server may echo our
//! request headers in an error body, a redirect's Location may carry them, a reqwest error may
//! quote them: every reason that came from outside passes through the [`Redactor`] before it
//! reaches a dead letter, a log line, a summary or `--json`.

use std::borrow::Cow;
use std::sync::Arc;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not redacted: they cannot be secret, and replacing every `1` or
/// `on` in a message would make it unreadable.
const MIN_SECRET_CHARS: usize = 4;

/// Replaces every configured secret value (and its JSON-escaped form) with `[redacted]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so that a secret containing another is replaced whole.
    needles: Arc<Vec<String>>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut needles: Vec<String> = Vec::new();
        for secret in secrets {
            if secret.trim().chars().count() < MIN_SECRET_CHARS {
                continue;
            }
            let escaped = serde_json::to_string(&secret).expect("a string serializes");
            let escaped = escaped[1..escaped.len() - 1].to_owned();
            if escaped != secret {
                needles.push(escaped);
            }
            needles.push(secret);
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor {
            needles: Arc::new(needles),
        }
    }

    /// `text` without any secret.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut text = Cow::Borrowed(text);
        for needle in self.needles.iter() {
            if text.contains(needle.as_str()) {
                text = Cow::Owned(text.replace(needle.as_str(), REDACTED));
            }
        }
        text
    }

    /// Redacts `text` in place.
    pub fn scrub(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.redact(text) {
            *text = clean;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Redactor;

    #[test]
    fn secrets_and_their_escaped_forms_are_replaced() {
        let redactor = Redactor::new([
            "tok-123".to_owned(),
            "Bearer tok-123".to_owned(),
            "a\"b\\c".to_owned(),
            "on".to_owned(),
        ]);
        assert_eq!(
            redactor.redact("echo: Authorization: Bearer tok-123, X-Token: tok-123"),
            "echo: Authorization: [redacted], X-Token: [redacted]"
        );
        assert_eq!(
            redactor.redact(r#"{"header":"a\"b\\c"}"#),
            r#"{"header":"[redacted]"}"#
        );
        assert_eq!(redactor.redact("raw a\"b\\c"), "raw [redacted]");
        // Too short to be a secret: left alone.
        assert_eq!(redactor.redact("turned on"), "turned on");
        let mut text = "x tok-123".to_owned();
        redactor.scrub(&mut text);
        assert_eq!(text, "x [redacted]");
    }
}
