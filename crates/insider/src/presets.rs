//! The presets: built-in mappings written in the template language, kept as JSON files in
//! `presets/` so users can read, copy and change them (`hardal presets --kind insider NAME`).

use hardal_core::WhenConfig;
use serde_json::Value;

use crate::config::PresetName;

/// Every preset file: (name, text).
pub const PRESET_FILES: [(&str, &str); 11] = [
    ("purchase", include_str!("../presets/purchase.json")),
    ("product_view", include_str!("../presets/product_view.json")),
    ("add_to_cart", include_str!("../presets/add_to_cart.json")),
    (
        "remove_from_cart",
        include_str!("../presets/remove_from_cart.json"),
    ),
    ("cart_view", include_str!("../presets/cart_view.json")),
    ("checkout", include_str!("../presets/checkout.json")),
    ("listing_view", include_str!("../presets/listing_view.json")),
    ("homepage", include_str!("../presets/homepage.json")),
    ("registration", include_str!("../presets/registration.json")),
    ("identify", include_str!("../presets/identify.json")),
    ("default", include_str!("../presets/default.json")),
];

/// A preset file: which events it selects and the user object template.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetFile {
    pub when: WhenConfig,
    pub user: Value,
}

/// The parsed preset file of `name`.
pub fn preset(name: PresetName) -> PresetFile {
    let (_, text) = PRESET_FILES
        .iter()
        .find(|(n, _)| *n == name.as_str())
        .expect("every preset has a file");
    serde_json::from_str(text).expect("preset files are valid (tested)")
}
