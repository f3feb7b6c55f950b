//! Errors shared by every part of the mapping pipeline: configuration problems located by a JSON
//! pointer, and mapping problems of one event located by the template position that failed.

/// A problem in a configuration value, located by the JSON pointer of the offending value relative
/// to the value that was being compiled (`""` is that value itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct ConfigError {
    pub pointer: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// Re-locates the error below `prefix`, a JSON pointer such as `/request_format`.
    pub fn under(mut self, prefix: &str) -> Self {
        self.pointer = format!("{prefix}{}", self.pointer);
        self
    }
}

/// Re-locates every error of a list below `prefix`.
pub fn under_all(errors: Vec<ConfigError>, prefix: &str) -> Vec<ConfigError> {
    errors.into_iter().map(|e| e.under(prefix)).collect()
}

/// A destination URL from configuration, trimmed; an error at `pointer` unless the URL parser
/// that the HTTP client uses accepts it as an http(s) URL with a host.
pub fn http_url(url: &str, pointer: &str) -> Result<String, ConfigError> {
    let url = url.trim();
    let fail = |why: String| ConfigError::new(pointer, format!("`{url}` {why}"));
    let parsed = url::Url::parse(url).map_err(|e| fail(format!("is not a valid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(fail("is not an http:// or https:// URL".into()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(fail("has no host".into()));
    }
    if parsed.password().is_some() || !parsed.username().is_empty() {
        // Credentials in a URL end up in logs and error messages; headers are the secret place.
        return Err(fail(
            "carries credentials; put them in a header (a secret) instead".into(),
        ));
    }
    Ok(url.to_owned())
}

/// Whether a URL sends in the clear to a host other than this machine (worth a warning: the
/// token travels unencrypted).
pub fn is_plain_http_off_loopback(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url.trim()) else {
        return false;
    };
    let loopback = match parsed.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    parsed.scheme() == "http" && !loopback
}

/// Headers that describe the connection or the message framing: the HTTP client sets them, and
/// a configured value would corrupt requests (a wrong `Content-Length`) or the connection.
const FRAMING_HEADERS: [&str; 9] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "host",
];

/// Checks a configured header: a valid HTTP field name, a value without control characters
/// (CR and LF above all: they would let a value start a header of its own), and not a framing or
/// hop-by-hop header. Errors are at `pointer` and never quote the value. (Empty secrets are the
/// runner's to refuse: it knows whether secrets are needed at all.)
pub fn check_header(name: &str, value: &str, pointer: &str) -> Result<(), ConfigError> {
    let fail = |why: String| Err(ConfigError::new(pointer, why));
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return fail(format!(
            "`{}` is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)",
            name.escape_debug()
        ));
    }
    if FRAMING_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return fail(format!(
            "`{name}` is set by the HTTP client for every request and cannot be configured"
        ));
    }
    if value.contains(['\r', '\n']) || http::HeaderValue::from_str(value).is_err() {
        return fail(format!(
            "the value of `{name}` is not a valid HTTP header value (line breaks and other control characters are not allowed)"
        ));
    }
    Ok(())
}

/// Why one event could not be mapped: the template position (a JSON pointer into the template, or
/// a destination-specific field name) and what went wrong there. Never contains secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at {pointer})")]
pub struct MappingError {
    pub pointer: String,
    pub message: String,
}

impl MappingError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        MappingError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check_header, http_url, is_plain_http_off_loopback};

    #[test]
    fn urls_a_real_parser_rejects_are_refused() {
        let check = |url: &str| match http_url(url, "/endpoint") {
            Ok(url) => format!("ok {url}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(check(" https://api.example/x "), "ok https://api.example/x");
        assert_eq!(
            check("http://127.0.0.1:9/upsert"),
            "ok http://127.0.0.1:9/upsert"
        );
        assert_eq!(
            check("https://exa mple.com/"),
            "/endpoint: `https://exa mple.com/` is not a valid URL: invalid international domain name"
        );
        assert_eq!(
            check("http://[::1/"),
            "/endpoint: `http://[::1/` is not a valid URL: invalid IPv6 address"
        );
        assert_eq!(
            check("ftp://host/"),
            "/endpoint: `ftp://host/` is not an http:// or https:// URL"
        );
        assert_eq!(
            check("https://user:pw@host/"),
            "/endpoint: `https://user:pw@host/` carries credentials; put them in a header (a secret) instead"
        );
        assert!(check("http://").contains("is not a valid URL"));
    }

    #[test]
    fn plain_http_is_flagged_only_off_this_machine() {
        assert!(is_plain_http_off_loopback("http://api.example/x"));
        assert!(!is_plain_http_off_loopback("https://api.example/x"));
        assert!(!is_plain_http_off_loopback("http://127.0.0.1:8080/x"));
        assert!(!is_plain_http_off_loopback("http://localhost/x"));
        assert!(!is_plain_http_off_loopback("http://[::1]:80/x"));
    }

    #[test]
    fn headers_must_be_valid_http_and_not_framing() {
        let check = |name: &str, value: &str| match check_header(name, value, "/headers/x") {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.message,
        };
        assert_eq!(check("X-REQUEST-TOKEN", "abc 123"), "ok");
        assert!(check("X Token", "a").contains("not a valid HTTP header name"));
        assert!(check("X-A\r\nX-B", "a").contains("not a valid HTTP header name"));
        assert!(check("X-Token", "a\r\nX-Evil: 1").contains("line breaks"));
        assert!(check("X-Token", "a\nb").contains("line breaks"));
        assert!(check("X-Token", "a\u{0}b").contains("not a valid HTTP header value"));
        assert!(check("Content-Length", "10").contains("cannot be configured"));
        assert!(check("transfer-encoding", "chunked").contains("cannot be configured"));
        assert!(check("Connection", "close").contains("cannot be configured"));
        // The value is never quoted: it is a secret.
        assert!(!check("X-Token", "s3cret\n").contains("s3cret"));
    }
}
