//! hardal-meta-capi: the `meta_capi` destination for Meta's Conversions API. Events are mapped by
//! your own mappings, then by presets (Purchase, ViewContent, AddToCart, InitiateCheckout,
//! CompleteRegistration, PageView, and a custom event for everything else) written in the
//! template language; the customer information of every server event is normalized and SHA-256
//! hashed the way Meta specifies, Meta's own rules are applied before sending (events older than
//! seven days expire, website events need a URL and a user agent), events are batched up to
//! 1,000 a request, and Meta's answers are judged — a request Meta refuses as a whole for one
//! event it does not name is split until that event stands alone.

mod config;
mod country;
mod destination;
mod judge;
pub mod normalize;
mod presets;
mod rules;

pub use config::{ActionSource, EventMappingConfig, MetaCapiConfig, PresetName};
pub use destination::MetaCapi;
pub use judge::judge;
pub use presets::PRESET_FILES;

hardal_core::register_destination! {
    kind: "meta_capi",
    description: "Meta's Conversions API (server events for a pixel / dataset), with presets, hashed customer information and Meta's event rules.",
    purpose: Marketing,
    config: MetaCapiConfig,
    build: MetaCapi::build,
    presets: &PRESET_FILES,
}
