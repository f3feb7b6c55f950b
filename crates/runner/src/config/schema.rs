//! The runner configuration's JSON Schema: the runner's own fields, generated from `RunnerConfig`
//! by schemars, with one `if type == kind then <kind's schema>` branch per registered destination
//! kind. `cargo xtask schemas` writes these to `schemas/`; a test keeps the files fresh.

use std::borrow::Cow;

use hardal_core::DestinationPlugin;
use serde_json::{Map, Value, json};

/// The hardal configuration file.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerConfig {
    /// Where events go. Every event is offered to every destination.
    #[schemars(length(min = 1))]
    pub destinations: Vec<DestinationEntry>,
    /// How events are delivered: batching time, concurrency, retries (for every destination;
    /// each may change them in its own `delivery`).
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

/// Delivery settings. At the top level they apply to every destination; a destination's own
/// `delivery` object changes them for that destination only. Rate limits and batch sizes are the
/// destinations' own (e.g. Insider's `requests_per_minute`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Requests in flight at once, per destination.
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: usize,
    /// How long a partly filled batch waits for more events before it is sent, in milliseconds.
    #[schemars(range(min = 0, max = 60_000))]
    pub linger_ms: u64,
    /// Attempts per record, the first send included, before its event is dead-lettered.
    #[schemars(range(min = 1, max = 1000))]
    pub max_attempts: u32,
    /// Seconds after a record's first attempt after which it is dead-lettered instead of retried
    /// (at most 30 days).
    #[schemars(range(min = 0, max = 2_592_000))]
    pub max_retry_seconds: u64,
    /// The first retry delay in milliseconds; it doubles with every attempt (full jitter) unless
    /// the destination answered with Retry-After.
    #[schemars(range(min = 0, max = 3_600_000))]
    pub backoff_initial_ms: u64,
    /// The longest retry delay in milliseconds (at most a day).
    #[schemars(range(min = 0, max = 86_400_000))]
    pub backoff_max_ms: u64,
    /// The longest wait for one response, in milliseconds (above zero, at most an hour); a
    /// request that takes longer is retried.
    #[schemars(range(min = 1, max = 3_600_000))]
    pub request_timeout_ms: u64,
    /// Most records held in memory per destination; reading waits while a destination is this
    /// far behind, so memory stays bounded however large the input.
    #[schemars(range(min = 1, max = 10_000_000))]
    pub max_pending_records: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            concurrency: 4,
            linger_ms: 200,
            max_attempts: 10,
            max_retry_seconds: 900,
            backoff_initial_ms: 500,
            backoff_max_ms: 60_000,
            request_timeout_ms: 30_000,
            max_pending_records: 20_000,
        }
    }
}

/// One destination: `id`, `type` (a registered kind) and the kind's own fields.
#[derive(Debug, serde::Deserialize)]
pub struct DestinationEntry {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

const ID_DESCRIPTION: &str = "A name for this destination, unique in the file; used in logs, dead letters and `--destination`.";
const ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]*$";

impl schemars::JsonSchema for DestinationEntry {
    fn schema_name() -> Cow<'static, str> {
        "Destination".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let plugins = DestinationPlugin::all();
        let kinds: Vec<&str> = plugins.iter().map(|p| p.kind).collect();
        let branches: Vec<Value> = plugins
            .iter()
            .map(|plugin| {
                json!({
                    "if": {"properties": {"type": {"const": plugin.kind}}, "required": ["type"]},
                    "then": kind_schema(plugin),
                })
            })
            .collect();
        let schema = json!({
            "type": "object",
            "description": "A destination: `id`, `type` and the fields of that type.",
            "required": ["id", "type"],
            "properties": {
                "id": {"type": "string", "pattern": ID_PATTERN, "description": ID_DESCRIPTION},
                "type": {"enum": kinds, "description": "The destination kind; `hardal list` shows them."},
            },
            "allOf": branches,
        });
        schemars::Schema::try_from(schema).expect("an object is a schema")
    }
}

/// A kind's own schema with the runner's `id`, `type` and `delivery` members added, so that its
/// `additionalProperties: false` still accepts them.
pub fn kind_schema(plugin: &DestinationPlugin) -> Value {
    let mut schema = (plugin.config_schema)().to_value();
    let object = schema
        .as_object_mut()
        .expect("destination configs are objects");
    object.remove("$schema");
    object.insert("title".into(), Value::String(plugin.kind.to_owned()));
    object.insert(
        "description".into(),
        Value::String(plugin.description.to_owned()),
    );
    let properties = object
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .expect("properties is an object");
    properties.insert(
        "id".into(),
        json!({"type": "string", "pattern": ID_PATTERN, "description": ID_DESCRIPTION}),
    );
    properties.insert(
        "type".into(),
        json!({"const": plugin.kind, "description": "The destination kind."}),
    );
    let mut delivery = hardal_core::registry::schema_for::<DeliveryConfig>().to_value();
    if let Some(object) = delivery.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
        object.insert(
            "description".into(),
            Value::String(
                "This destination's own delivery settings, on top of the file's `delivery`.".into(),
            ),
        );
    }
    properties.insert("delivery".into(), delivery);
    schema
}

/// The schema of the whole configuration file.
pub fn runner_schema() -> Value {
    let mut schema = hardal_core::registry::schema_for::<RunnerConfig>().to_value();
    schema["title"] = Value::String("hardal configuration".into());
    schema
}

/// The schema of one kind as a standalone document (what `hardal schema --kind` prints).
pub fn standalone_kind_schema(plugin: &DestinationPlugin) -> Value {
    let mut schema = kind_schema(plugin);
    if let Some(object) = schema.as_object_mut() {
        let mut with_dialect = Map::new();
        with_dialect.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        with_dialect.extend(std::mem::take(object));
        *object = with_dialect;
    }
    schema
}

/// Every schema file of `schemas/`, as (file name, pretty JSON with a final newline).
pub fn schema_files() -> Vec<(String, String)> {
    let pretty = |v: &Value| {
        format!(
            "{}\n",
            serde_json::to_string_pretty(v).expect("serializable")
        )
    };
    let mut files = vec![("hardal.schema.json".to_owned(), pretty(&runner_schema()))];
    for plugin in DestinationPlugin::all() {
        files.push((
            format!("{}.schema.json", plugin.kind),
            pretty(&standalone_kind_schema(plugin)),
        ));
    }
    files
}
