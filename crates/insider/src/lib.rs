//! hardal-insider: the `insider` destination for Insider's UCD user upsert API. Events are mapped
//! by your own mappings, then by presets (purchase, registration, identify, default) written in the
//! template language; every user object is then made to follow Insider's field rules, batched up to
//! Insider's limits, and Insider's answers (including HTTP 200 with per-user failures) are judged
//! per user.

mod config;
mod destination;
mod judge;
mod presets;
mod rules;

pub use config::{InsiderConfig, PresetName, UserMappingConfig};
pub use destination::Insider;
pub use judge::judge;
pub use presets::PRESET_FILES;
pub use rules::{Checked, RuleSettings, check_user, normalize_event_name};

hardal_core::register_destination! {
    kind: "insider",
    description: "Insider's Unified Customer Database (user upsert API), with presets and Insider's field rules.",
    config: InsiderConfig,
    build: Insider::build,
    presets: &PRESET_FILES,
}
