//! Consent Mode, as Hardal's destinations have it: a destination whose mode is `required`
//! forwards only events that carry the user's consent; the others are skipped (counted, never
//! sent, never dead-lettered). This module is the pure part: the configuration, each kind's
//! default purpose, and the check of one event. The runner applies the check before it maps an
//! event for a destination, and hands the consent it found to `map` in the `MapContext`, so
//! that a destination with a consent field of its own (GA4) can fill it.

use serde_json::Value;

use crate::error::ConfigError;
use crate::event::Event;
use crate::path::Path;
use crate::value::Value as Tree;

/// Why a destination did not map an event: its consent mode requires consent the event does
/// not carry. The skip reason `send`, `serve` and `render` count apart from other skips.
pub const NO_CONSENT: &str = "no consent";

/// What a destination kind is for, which decides its consent default: Hardal's marketing and
/// analytics destinations have Consent Mode on, its custom webhooks have it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Advertising and marketing platforms (Insider, Meta): consent category `marketing`.
    Marketing,
    /// Analytics (GA4): consent category `analytics`.
    Analytics,
    /// A webhook to any API: consent mode off unless configured.
    Webhook,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Marketing => "marketing",
            Purpose::Analytics => "analytics",
            Purpose::Webhook => "webhook",
        }
    }

    /// The key read from the map form of consent (`{"marketing": true}`) unless configured.
    pub fn category(self) -> &'static str {
        match self {
            Purpose::Marketing | Purpose::Webhook => "marketing",
            Purpose::Analytics => "analytics",
        }
    }

    /// Whether a destination of this purpose must say what it does with consent: a
    /// configuration written before Consent Mode existed forwarded every event, and Hardal's
    /// default would forward only some, so neither may be assumed without a word.
    pub fn consent_must_be_configured(self) -> bool {
        !matches!(self, Purpose::Webhook)
    }
}

/// A destination's `consent` member.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentConfig {
    /// `required`: forward only events that carry consent (Hardal's Consent Mode); the others
    /// are counted as skipped (`no consent`), never sent. `off`: forward every event.
    pub mode: ConsentMode,
    /// Where an event carries consent, tried in order; the first present decides (Hardal's
    /// `properties.consent`, then a top-level `consent`).
    #[serde(default = "default_paths")]
    #[schemars(length(min = 1))]
    pub paths: Vec<String>,
    /// When the consent found is an object (`{"marketing": true, "analytics": false}`), the key
    /// read from it. Default: `marketing`, or `analytics` for analytics destinations (GA4).
    #[schemars(length(min = 1))]
    pub category: Option<String>,
    /// The values that mean consent was given (strings compared without regard to case or
    /// surrounding spaces). Any other value means it was refused.
    #[serde(default = "default_granted")]
    #[schemars(length(min = 1))]
    pub granted: Vec<Value>,
}

/// Whether consent is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    Required,
    Off,
}

fn default_paths() -> Vec<String> {
    vec!["properties.consent".to_owned(), "consent".to_owned()]
}

fn default_granted() -> Vec<Value> {
    vec![Value::String("true".to_owned()), Value::Bool(true)]
}

/// The consent an event carries for one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConsentState {
    /// A value that means consent was given.
    Granted,
    /// A value that does not.
    Denied,
    /// No consent field at all (nor the category's key, in the map form).
    #[default]
    Absent,
}

/// A destination's compiled consent settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Consent {
    mode: ConsentMode,
    paths: Vec<Path>,
    category: String,
    granted: Vec<Value>,
}

impl Consent {
    /// Consent mode off: every event is forwarded (its consent is still read for `MapContext`).
    pub fn off(purpose: Purpose) -> Consent {
        Consent {
            mode: ConsentMode::Off,
            paths: compile_paths(&default_paths()).expect("the default paths parse"),
            category: purpose.category().to_owned(),
            granted: default_granted(),
        }
    }

    /// Compiles a `consent` member; errors point below it (`/paths/1`).
    pub fn compile(config: &ConsentConfig, purpose: Purpose) -> Result<Consent, Vec<ConfigError>> {
        Ok(Consent {
            mode: config.mode,
            paths: compile_paths(&config.paths)?,
            category: config
                .category
                .clone()
                .unwrap_or_else(|| purpose.category().to_owned()),
            granted: config.granted.clone(),
        })
    }

    pub fn mode(&self) -> ConsentMode {
        self.mode
    }

    /// The consent `event` carries: the first of `paths` present decides; an object there is
    /// read at the category's key.
    pub fn state(&self, event: &Event) -> ConsentState {
        let Some(found) = self.paths.iter().find_map(|path| event.get(path)) else {
            return ConsentState::Absent;
        };
        let value = match found {
            Tree::Object(map) => match map.get(&self.category) {
                None | Some(Tree::Null) => return ConsentState::Absent,
                Some(value) => value,
            },
            value => value,
        };
        if self.granted.iter().any(|granted| same(granted, value)) {
            ConsentState::Granted
        } else {
            ConsentState::Denied
        }
    }

    /// The consent to map `event` with, or `None` when the destination may not map it at all.
    pub fn check(&self, event: &Event) -> Option<ConsentState> {
        let state = self.state(event);
        match (self.mode, state) {
            (ConsentMode::Off, state) | (ConsentMode::Required, state @ ConsentState::Granted) => {
                Some(state)
            }
            (ConsentMode::Required, _) => None,
        }
    }
}

fn compile_paths(paths: &[String]) -> Result<Vec<Path>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut compiled = Vec::new();
    for (i, text) in paths.iter().enumerate() {
        match Path::parse(text) {
            Ok(path) => compiled.push(path),
            Err(message) => errors.push(ConfigError::new(
                format!("/paths/{i}"),
                format!("`{text}` is not a path: {message}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(compiled)
    } else {
        Err(errors)
    }
}

/// Whether an event's value is the configured granted value: strings without regard to case
/// and surrounding spaces (`"True"` is Hardal's `"true"`), numbers by value, the rest exactly.
fn same(granted: &Value, value: &Tree) -> bool {
    match (granted, value) {
        (Value::String(a), Tree::String(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        (Value::Number(a), Tree::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Bool(a), Tree::Bool(b)) => a == b,
        (Value::Null, Tree::Null) => true,
        (a, b) => *a == b.to_json(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn consent(config: Value, purpose: Purpose) -> Consent {
        let config: ConsentConfig = serde_json::from_value(config).unwrap();
        Consent::compile(&config, purpose).unwrap()
    }

    fn event(text: &str) -> Event {
        Event::from_value(serde_json::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn the_state_of_each_form_of_consent() {
        use ConsentState::{Absent, Denied, Granted};
        use Purpose::{Analytics, Marketing};
        // (the destination's purpose, the event, the consent it carries), with the default
        // settings of `{"mode": "required"}`.
        let cases = [
            // Hardal's field, and the top-level one.
            (Marketing, r#"{"properties": {"consent": "true"}}"#, Granted),
            (Marketing, r#"{"consent": "true"}"#, Granted),
            (Marketing, r#"{"consent": true}"#, Granted),
            (Marketing, r#"{"consent": " TRUE "}"#, Granted),
            (Marketing, r#"{"consent": "false"}"#, Denied),
            (Marketing, r#"{"consent": false}"#, Denied),
            (Marketing, r#"{"consent": "granted"}"#, Denied),
            (Marketing, r#"{"consent": ""}"#, Denied),
            // Values of other types are never taken for the string "true".
            (Marketing, r#"{"consent": 1}"#, Denied),
            (Marketing, r#"{"consent": ["true"]}"#, Denied),
            // Absent: no field, or null.
            (Marketing, r#"{"event_name": "x"}"#, Absent),
            (Marketing, r#"{"consent": null}"#, Absent),
            (Marketing, r#"{"properties": {"consent": null}}"#, Absent),
            // The first present path decides, even when a later one would grant.
            (
                Marketing,
                r#"{"properties":{"consent":"false"},"consent":"true"}"#,
                Denied,
            ),
            (
                Marketing,
                r#"{"properties": {}, "consent": "true"}"#,
                Granted,
            ),
            // The map form is read at the purpose's category.
            (
                Marketing,
                r#"{"consent":{"marketing":true,"analytics":false}}"#,
                Granted,
            ),
            (
                Analytics,
                r#"{"consent":{"marketing":true,"analytics":false}}"#,
                Denied,
            ),
            (
                Analytics,
                r#"{"properties":{"consent":{"analytics":"true"}}}"#,
                Granted,
            ),
            (Analytics, r#"{"consent": {"marketing": true}}"#, Absent),
            (
                Marketing,
                r#"{"consent": {"ad_user_data": "GRANTED"}}"#,
                Absent,
            ),
        ];
        for (purpose, text, expected) in cases {
            let consent = consent(json!({"mode": "required"}), purpose);
            let found = consent.state(&event(text));
            assert_eq!(found, expected, "{purpose:?} {text}");
        }
    }

    #[test]
    fn configured_paths_category_and_granted_values() {
        use ConsentState::{Absent, Denied, Granted};
        let config = json!({"mode": "required", "paths": ["ctx.\"ad storage\""],
                            "category": "ads", "granted": ["yes", 1, "granted"]});
        let cases = [
            (r#"{"ctx": {"ad storage": "Yes"}}"#, Granted),
            (r#"{"ctx": {"ad storage": 1.0}}"#, Granted),
            (r#"{"ctx": {"ad storage": {"ads": "granted"}}}"#, Granted),
            (r#"{"ctx": {"ad storage": "true"}}"#, Denied),
            (r#"{"ctx": {"ad storage": true}}"#, Denied),
            // The default paths are not read once others are configured.
            (r#"{"consent": "true"}"#, Absent),
        ];
        let consent = consent(config, Purpose::Marketing);
        for (text, expected) in cases {
            assert_eq!(consent.state(&event(text)), expected, "{text}");
        }
    }

    #[test]
    fn required_mode_maps_only_granted_events_and_off_maps_every_event() {
        use ConsentState::{Absent, Denied, Granted};
        let required = consent(json!({"mode": "required"}), Purpose::Marketing);
        let off = consent(json!({"mode": "off"}), Purpose::Marketing);
        // (the event, what `required` maps it with, what `off` maps it with)
        let cases = [
            (r#"{"consent": "true"}"#, Some(Granted), Some(Granted)),
            (r#"{"consent": "false"}"#, None, Some(Denied)),
            ("{}", None, Some(Absent)),
        ];
        for (value, with_required, with_off) in cases {
            let e = event(value);
            assert_eq!(required.check(&e), with_required, "required: {value}");
            assert_eq!(off.check(&e), with_off, "off: {value}");
            assert_eq!(
                Consent::off(Purpose::Webhook).check(&e),
                with_off,
                "default off: {value}"
            );
        }
    }

    #[test]
    fn a_path_that_does_not_parse_is_located() {
        let config: ConsentConfig =
            serde_json::from_value(json!({"mode": "off", "paths": ["consent", "a..b"]})).unwrap();
        let errors = Consent::compile(&config, Purpose::Marketing).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pointer, "/paths/1");
    }
}
