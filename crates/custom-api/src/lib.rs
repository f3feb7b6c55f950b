//! hardal-custom-api: the `custom_api` destination. It accepts Hardal's Custom API destination
//! fields as Hardal's users write them (`endpoint_url`, `request_method`, `content_type`,
//! `headers`, `request_format`), adds per-event-type `mappings`, and can merge many events into
//! one request by concatenating the array at a JSON pointer (for Insider, `/users`). An optional
//! `erasure` block is the request that erases a user.

mod config;
mod destination;
mod erasure;

pub use config::{BatchConfig, CustomApiConfig, ErasureConfig, MappingConfig};
pub use destination::CustomApi;

hardal_core::register_destination! {
    kind: "custom_api",
    description: "Any HTTP JSON API, configured like Hardal's Custom API destination: a URL, headers and a request_format template.",
    config: CustomApiConfig,
    build: CustomApi::build,
}
