//! hardal-insider: the `insider` destination for Insider's UCD user upsert API. Events are mapped
//! by your own mappings, then by presets (purchase, the commerce events, registration, identify,
//! default) written in the template language; every user object is then made to follow Insider's
//! field rules (repairing what has one meaning, leaving out invalid optional fields with a note),
//! events older than Insider keeps them are held back, user objects are batched up to Insider's
//! limits, and Insider's answers (including HTTP 200 with per-user failures) are judged per user.
//! Erasing a user asks Insider's delete (or anonymize) API, one request per identifier.

mod config;
mod country;
mod destination;
mod erasure;
pub mod group_id;
mod judge;
mod presets;
pub mod retention;
mod rules;

pub use config::{
    ErasureMode, InsiderConfig, OnInvalidField, PresetName, RetentionDays, SendAttributes,
    UserMappingConfig,
};
pub use destination::Insider;
pub use erasure::judge_erasure;
pub use judge::judge;
pub use presets::PRESET_FILES;
pub use retention::Retention;
pub use rules::{CheckContext, Checked, RuleSettings, check_user, normalize_event_name};

hardal_core::register_destination! {
    kind: "insider",
    description: "Insider's Unified Customer Database (user upsert API), with presets and Insider's field rules.",
    config: InsiderConfig,
    build: Insider::build,
    presets: &PRESET_FILES,
}
