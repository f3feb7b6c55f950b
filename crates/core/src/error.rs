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

/// A destination URL from configuration, trimmed; an error at `pointer` unless it is http(s).
pub fn http_url(url: &str, pointer: &str) -> Result<String, ConfigError> {
    let url = url.trim();
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_owned())
    } else {
        Err(ConfigError::new(
            pointer,
            format!("`{url}` is not an http:// or https:// URL"),
        ))
    }
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
