//! Conditions (`when`) and ordered mappings: the first mapping whose condition holds maps the
//! event; an event no mapping matches is skipped. TODO(template helper): implement.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ConfigError;
use crate::event::Event;

/// A `when` condition as written in a configuration: path → expected value, list of values
/// (any of), or `{"exists": bool}`. Every key must hold.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(extend("x-hardal-condition" = true))]
pub struct WhenConfig(pub BTreeMap<String, Value>);

/// A compiled condition.
#[derive(Debug, Clone)]
pub struct Condition {}

impl Condition {
    pub fn compile(_config: &WhenConfig) -> Result<Condition, Vec<ConfigError>> {
        Ok(Condition {})
    }

    /// A condition that holds for every event.
    pub fn always() -> Condition {
        Condition {}
    }

    pub fn matches(&self, _event: &Event) -> bool {
        true
    }
}

/// One mapping: a condition and what maps the events it selects (usually a `Template`).
#[derive(Debug, Clone)]
pub struct Mapping<T> {
    pub when: Condition,
    pub target: T,
}

/// Mappings tried in order; the first match wins.
#[derive(Debug, Clone)]
pub struct Mappings<T>(pub Vec<Mapping<T>>);

impl<T> Mappings<T> {
    pub fn select(&self, event: &Event) -> Option<&T> {
        self.0
            .iter()
            .find(|m| m.when.matches(event))
            .map(|m| &m.target)
    }
}
