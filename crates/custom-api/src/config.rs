//! The `custom_api` configuration. Doc comments become the descriptions of the generated JSON
//! Schema, so they are written for the people who fill in the configuration.

use std::collections::BTreeMap;

use hardal_core::{HttpMethod, Secret, WhenConfig};
use serde_json::Value;

/// A Custom API destination: every event that a mapping (or `request_format`) selects becomes a
/// JSON request body sent to `endpoint_url`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomApiConfig {
    /// A name for people, shown in logs (Hardal's "endpoint_label").
    pub endpoint_label: Option<String>,
    /// Hardal's identifier of the endpoint; kept for reference, the runner's `id` names the destination.
    pub endpoint_id: Option<String>,
    /// The URL every request is sent to (http or https). Event data never changes it.
    pub endpoint_url: String,
    /// The HTTP method.
    #[serde(default)]
    pub request_method: HttpMethod,
    /// The Content-Type header of every request. Bodies are always JSON.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Headers sent with every request. Values are secrets: they may be `${NAME}` to read an
    /// environment variable, and they are never printed.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// The request body template used for events that no entry of `mappings` selects. Without
    /// it, such events are skipped.
    #[schemars(extend("x-hardal-template" = true))]
    pub request_format: Option<Value>,
    /// Per-event-type templates, tried in order before `request_format`; the first whose `when`
    /// holds maps the event.
    #[serde(default)]
    pub mappings: Vec<MappingConfig>,
    /// Merge the bodies of many events into one request by concatenating the array at
    /// `array_pointer`. Without it, every event is sent in a request of its own.
    pub batch: Option<BatchConfig>,
    /// The request that erases a user here (`hardal forget`). Without it, erasing reports that
    /// this destination cannot erase and names the identifiers to erase by hand.
    pub erasure: Option<ErasureConfig>,
}

/// How a user is erased: one request per identifier set (the first user id, email and phone
/// given, then the second of each, …), with the body rendered from the identifiers.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureConfig {
    /// The URL erasure requests are sent to (http or https). Identifiers never change it: they go
    /// in the body only.
    pub endpoint_url: String,
    /// The HTTP method.
    #[serde(default)]
    pub request_method: HttpMethod,
    /// Headers of erasure requests, as `headers` (values are secrets and may be `${NAME}`);
    /// without it, the destination's `headers` are sent.
    pub headers: Option<BTreeMap<String, Secret>>,
    /// The body template. Its placeholders read the identifiers: `##user_id##`, `##email##`,
    /// `##phone##` and `##custom.KEY##` (each `--custom KEY=VALUE`; a dotted key is read as
    /// `##custom."properties.loyalty_id"##` or `##custom.properties.loyalty_id##`). A
    /// placeholder without a value is left out, as in event templates.
    #[schemars(extend("x-hardal-template" = true))]
    pub request_format: Value,
}

/// One entry of `mappings`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Which events this mapping selects, e.g. `{"event_name": ["purchase", "order_completed"]}`.
    pub when: WhenConfig,
    /// The request body template for the selected events.
    #[schemars(extend("x-hardal-template" = true))]
    pub request_format: Value,
}

/// Batching of many events into one request.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// JSON pointer of the array whose items are concatenated, e.g. `/users`. Everything outside
    /// it must be the same for every event (no placeholders).
    #[serde(default = "default_array_pointer")]
    pub array_pointer: String,
    /// Most array items in one request.
    #[serde(default = "default_max_items")]
    #[schemars(range(min = 1))]
    pub max_items: usize,
    /// Most body bytes in one request.
    #[serde(default = "default_max_bytes")]
    #[schemars(range(min = 64))]
    pub max_bytes: usize,
}

fn default_content_type() -> String {
    "application/json".to_owned()
}

fn default_array_pointer() -> String {
    "/users".to_owned()
}

fn default_max_items() -> usize {
    1000
}

fn default_max_bytes() -> usize {
    5_000_000
}
