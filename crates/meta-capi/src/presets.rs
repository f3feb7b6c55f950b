//! The presets: built-in mappings written in the template language, kept as JSON files in
//! `presets/` so users can read, copy and change them (`hardal presets --kind meta_capi NAME`).

use hardal_core::WhenConfig;
use serde_json::Value;

use crate::config::PresetName;

/// Every preset file: (name, text).
pub const PRESET_FILES: [(&str, &str); 7] = [
    ("purchase", include_str!("../presets/purchase.json")),
    ("view_item", include_str!("../presets/view_item.json")),
    ("add_to_cart", include_str!("../presets/add_to_cart.json")),
    (
        "begin_checkout",
        include_str!("../presets/begin_checkout.json"),
    ),
    ("sign_up", include_str!("../presets/sign_up.json")),
    ("page_view", include_str!("../presets/page_view.json")),
    ("custom", include_str!("../presets/custom.json")),
];

/// A preset file: which events it selects and the server event template.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetFile {
    pub when: WhenConfig,
    pub event: Value,
}

/// The parsed preset file of `name`.
pub fn preset(name: PresetName) -> PresetFile {
    let (_, text) = PRESET_FILES
        .iter()
        .find(|(n, _)| *n == name.as_str())
        .expect("every preset has a file");
    serde_json::from_str(text).expect("preset files are valid (tested)")
}
