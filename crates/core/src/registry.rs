//! The destination plugin registry. Each destination crate submits one `DestinationPlugin` with
//! [`register_destination!`](crate::register_destination); the runner finds every linked kind
//! through `inventory` without naming them.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::consent::Purpose;
use crate::destination::Destination;
use crate::error::ConfigError;

/// A destination kind: its name, a one-line description, its configuration's JSON Schema and the
/// factory that builds a destination from a configuration that passed that schema.
pub struct DestinationPlugin {
    pub kind: &'static str,
    pub description: &'static str,
    /// What the kind is for (marketing, analytics, a webhook), which decides its consent
    /// default (see [`crate::consent`]).
    pub purpose: Purpose,
    /// The schema of the kind's own fields (without the runner's `id` and `type`).
    pub config_schema: fn() -> schemars::Schema,
    /// Builds a destination; errors are located by JSON pointers relative to the destination
    /// object, and every problem found is reported, not only the first.
    pub build: BuildFn,
    /// Built-in mappings the kind ships as readable files: (name, file text).
    pub presets: &'static [(&'static str, &'static str)],
}

/// A kind's factory: destination `id` and configuration in, a destination or every problem out.
pub type BuildFn = fn(id: &str, config: &Value) -> Result<Box<dyn Destination>, Vec<ConfigError>>;

inventory::collect!(DestinationPlugin);

impl DestinationPlugin {
    /// Every linked kind, sorted by name.
    pub fn all() -> Vec<&'static DestinationPlugin> {
        let mut plugins: Vec<_> = inventory::iter::<DestinationPlugin>.into_iter().collect();
        plugins.sort_by_key(|p| p.kind);
        plugins
    }

    pub fn find(kind: &str) -> Option<&'static DestinationPlugin> {
        inventory::iter::<DestinationPlugin>
            .into_iter()
            .find(|p| p.kind == kind)
    }
}

/// The JSON Schema of a configuration type: draft 2020-12, subschemas inlined so the runner can
/// embed it in its own schema.
pub fn schema_for<T: schemars::JsonSchema>() -> schemars::Schema {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
    });
    settings.into_generator().into_root_schema_for::<T>()
}

/// The members of a destination object that belong to the runner, not to the kind.
pub const RUNNER_FIELDS: [&str; 4] = ["id", "type", "delivery", "consent"];

/// Deserializes a destination's configuration (already checked against its schema), without the
/// runner's own fields ([`RUNNER_FIELDS`]).
pub fn parse_config<T: DeserializeOwned>(config: &Value) -> Result<T, Vec<ConfigError>> {
    let mut own = config.clone();
    if let Value::Object(map) = &mut own {
        for field in RUNNER_FIELDS {
            map.remove(field);
        }
    }
    serde_json::from_value(own).map_err(|e| vec![ConfigError::new("", e.to_string())])
}

/// Registers a destination kind. `build` is `fn(&str, Config) -> Result<D, Vec<ConfigError>>`
/// where `Config: DeserializeOwned + JsonSchema` and `D: Destination`; `purpose` is a
/// [`Purpose`] (`Marketing`, `Analytics` or `Webhook`), which decides the kind's consent default.
///
/// ```text
/// hardal_core::register_destination! {
///     kind: "custom_api",
///     description: "Any HTTP JSON API, configured with a request template.",
///     purpose: Webhook,
///     config: CustomApiConfig,
///     build: CustomApi::build,
/// }
/// ```
#[macro_export]
macro_rules! register_destination {
    (kind: $kind:expr, description: $description:expr, purpose: $purpose:ident,
     config: $config:ty, build: $build:path $(,)?) => {
        $crate::register_destination! {
            kind: $kind, description: $description, purpose: $purpose, config: $config,
            build: $build, presets: &[],
        }
    };
    (kind: $kind:expr, description: $description:expr, purpose: $purpose:ident,
     config: $config:ty, build: $build:path, presets: $presets:expr $(,)?) => {
        $crate::inventory::submit! {
            $crate::registry::DestinationPlugin {
                kind: $kind,
                description: $description,
                purpose: $crate::consent::Purpose::$purpose,
                config_schema: || $crate::registry::schema_for::<$config>(),
                build: |id, value| {
                    let config: $config = $crate::registry::parse_config(value)?;
                    let destination = $build(id, config)?;
                    Ok(::std::boxed::Box::new(destination))
                },
                presets: $presets,
            }
        }
    };
}
