//! hardal-ga4: the `ga4` destination for Google Analytics 4's Measurement Protocol
//! (`POST {base_url}/mp/collect?measurement_id=…&api_secret=…`). Events are mapped by your own
//! mappings, then by presets for GA4's recommended events (purchase, view_item, add_to_cart,
//! begin_checkout, sign_up, page_view) and custom events; GA4's limits and reserved names are
//! applied before sending (GA4 answers 2xx even to payloads it drops), each repair or left-out
//! field noted with the validation code GA4's validation server would give; events older than
//! GA4's 72-hour window are expired; one request carries the events of one `client_id`, at most 25.

mod config;
mod destination;
pub mod limits;
mod presets;
pub mod rules;

pub use config::{BASE_URL, EventMappingConfig, Ga4Config, PresetName};
pub use destination::{COLLECT_PATH, Ga4, encode_body, judge};
pub use presets::PRESET_FILES;

hardal_core::register_destination! {
    kind: "ga4",
    description: "Google Analytics 4 through the Measurement Protocol: GA4's recommended events, GA4's limits checked before sending, one client_id per request.",
    purpose: Analytics,
    config: Ga4Config,
    build: Ga4::build,
    presets: &PRESET_FILES,
}
