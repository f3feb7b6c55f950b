//! The `insider` configuration. Doc comments become the descriptions of the generated JSON
//! Schema, so they are written for the people who fill in the configuration.

use std::collections::BTreeMap;

use hardal_core::{Secret, WhenConfig};
use serde_json::Value;

/// Insider's upsert endpoint.
pub const UPSERT_URL: &str = "https://unification.useinsider.com/api/user/v1/upsert";
/// Insider's documented limits.
pub const MAX_USERS: usize = 1000;
pub const MAX_BYTES: usize = 5_000_000;
pub const REQUESTS_PER_MINUTE: u32 = 25_000;
/// Insider's documented limits of the Delete User Profile and Delete User's PII Data APIs.
pub const DELETE_REQUESTS_PER_MINUTE: u32 = 10_000;
pub const ANONYMIZE_REQUESTS_PER_MINUTE: u32 = 500;

/// Insider's Unified Customer Database (user upsert API): events and attributes mapped by presets
/// and your own mappings, made to follow Insider's field rules, and batched up to Insider's limits.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsiderConfig {
    /// Your Insider partner (account) name, in lower case (sent as `X-PARTNER-NAME`).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_.-]*$"))]
    pub partner_name: String,
    /// Your UCD API key (sent as `X-REQUEST-TOKEN`), usually `${INSIDER_REQUEST_TOKEN}`.
    pub request_token: Secret,
    /// The upsert URL; change it only to point at a test server such as the simulator.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Which presets map events that none of your `mappings` selects, tried in this order.
    #[serde(default = "all_presets")]
    pub presets: Vec<PresetName>,
    /// Your own mappings, tried before the presets: each renders one Insider user object (or an
    /// array of them) for the events its `when` selects.
    #[serde(default)]
    pub mappings: Vec<UserMappingConfig>,
    /// The Insider event name a preset sends instead of its own, e.g. `{"registration":
    /// "registration"}` to keep the seed's custom `registration` event instead of Insider's
    /// `sign_up_confirmation`.
    #[serde(default)]
    pub event_names: BTreeMap<PresetName, String>,
    /// What an invalid field does: `drop` (the default) leaves it out of what is sent, with a
    /// note in the summary, and sends the rest; `reject` refuses the whole event, naming the field
    /// and the rule. Values with one meaning are repaired either way (`USA` → `US`).
    #[serde(default)]
    pub on_invalid_field: OnInvalidField,
    /// Whether user attributes are sent: `always` (the default), or `never` — for a backfill of
    /// old events run after live data started flowing, so that old values never overwrite newer
    /// ones.
    #[serde(default)]
    pub send_attributes: SendAttributes,
    /// Days Insider keeps events of a name, where your account keeps them longer (or shorter)
    /// than Insider's defaults (purchase 730; page, cart and wishlist events 90; sign_up_confirmation
    /// 365; custom events 90), e.g. `{"purchase": 1095}`. Older events are not sent and counted as
    /// expired.
    #[serde(default)]
    pub retention_days: BTreeMap<String, RetentionDays>,
    /// Tell Insider not to trigger journeys for this data (`skip_hook`), e.g. for backfills.
    #[serde(default)]
    pub skip_hook: bool,
    /// Append array attributes instead of replacing them. Off by default (`not_append: true`),
    /// which also makes retries safe.
    #[serde(default)]
    pub append_arrays: bool,
    /// Which identifiers to send: `email`, `phone_number`, `uuid`, and custom identifiers (such as
    /// `hardal_id`) that are defined in your Insider account.
    #[serde(default = "default_identifiers")]
    pub identifiers: Vec<String>,
    /// The country calling code (e.g. `90`) for phone numbers written without one (`0532 123 45 67`).
    /// Without it such numbers cannot be made E.164 and their events are rejected.
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,2}$"))]
    pub phone_country_code: Option<String>,
    /// Most users in one request (Insider allows 1,000).
    #[serde(default = "default_max_users")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_users_per_request: usize,
    /// Most body bytes in one request (Insider allows 5,000,000).
    #[serde(default = "default_max_bytes")]
    #[schemars(range(min = 1000, max = 5_000_000))]
    pub max_bytes_per_request: usize,
    /// Requests per minute hardal may send (Insider allows 25,000 per partner, shared with the
    /// attribute-delete API).
    #[serde(default = "default_rate")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub requests_per_minute: u32,
    /// What erasing a user (`hardal forget`) asks of Insider: `delete` (the default) removes the
    /// user's profile and its data (Insider's Delete User Profile API, 10,000 requests a minute);
    /// `anonymize` removes the user's personal data and identifiers but keeps an anonymous
    /// profile (Insider's Delete User's PII Data API, 500 requests a minute). Both go to the
    /// `endpoint`'s host with the same headers.
    #[serde(default)]
    pub erasure: ErasureMode,
}

/// Which of Insider's erasure APIs `hardal forget` uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureMode {
    /// `POST /api/user/v1/delete`: the profile and its data are deleted.
    #[default]
    Delete,
    /// `POST /api/user/v1/anonymize`: personal data is deleted, an anonymous profile stays.
    Anonymize,
}

/// What an invalid field does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalidField {
    /// Leave the field out, note it, and send the rest.
    #[default]
    Drop,
    /// Refuse the event, naming the field and the rule.
    Reject,
}

/// Whether user attributes are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendAttributes {
    /// Attributes and events.
    #[default]
    Always,
    /// Events only: profiles are left as they are.
    Never,
}

/// Days an event is kept (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct RetentionDays(#[schemars(range(min = 1, max = 36500))] pub u32);

/// A built-in mapping.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PresetName {
    /// One Insider `purchase` event per product line (GA4 `items[]`, `products[]` or flat
    /// properties); order-level properties under each line's `custom`.
    Purchase,
    /// Product viewed: `product_detail_page_view`, one per product.
    ProductView,
    /// Added to cart: `item_added_to_cart`, one per product line.
    AddToCart,
    /// Removed from cart: `item_removed_from_cart`, one per product line.
    RemoveFromCart,
    /// Cart viewed: `cart_page_view`, one per product line.
    CartView,
    /// Checkout started or a checkout step: `checkout_page_view`, one per product line.
    Checkout,
    /// Product list or category viewed: `listing_page_view`.
    ListingView,
    /// Home page viewed: `homepage_view`.
    Homepage,
    /// Sign-ups, as Insider's `sign_up_confirmation` event.
    Registration,
    /// Attributes only, no event.
    Identify,
    /// Every other event, under its own (normalized) name.
    Default,
}

impl PresetName {
    pub const ALL: [PresetName; 11] = [
        PresetName::Purchase,
        PresetName::ProductView,
        PresetName::AddToCart,
        PresetName::RemoveFromCart,
        PresetName::CartView,
        PresetName::Checkout,
        PresetName::ListingView,
        PresetName::Homepage,
        PresetName::Registration,
        PresetName::Identify,
        PresetName::Default,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PresetName::Purchase => "purchase",
            PresetName::ProductView => "product_view",
            PresetName::AddToCart => "add_to_cart",
            PresetName::RemoveFromCart => "remove_from_cart",
            PresetName::CartView => "cart_view",
            PresetName::Checkout => "checkout",
            PresetName::ListingView => "listing_view",
            PresetName::Homepage => "homepage",
            PresetName::Registration => "registration",
            PresetName::Identify => "identify",
            PresetName::Default => "default",
        }
    }

    /// The Insider event a preset sends, before any renaming; `None` for presets that send no
    /// event (`identify`) or keep the event's own name (`default`).
    pub fn event_name(self) -> Option<&'static str> {
        Some(match self {
            PresetName::Purchase => "purchase",
            PresetName::ProductView => "product_detail_page_view",
            PresetName::AddToCart => "item_added_to_cart",
            PresetName::RemoveFromCart => "item_removed_from_cart",
            PresetName::CartView => "cart_page_view",
            PresetName::Checkout => "checkout_page_view",
            PresetName::ListingView => "listing_page_view",
            PresetName::Homepage => "homepage_view",
            PresetName::Registration => "sign_up_confirmation",
            PresetName::Identify | PresetName::Default => return None,
        })
    }
}

/// One of your own mappings.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserMappingConfig {
    /// Which events this mapping selects, e.g. `{"event_name": "wishlist_add"}`.
    pub when: WhenConfig,
    /// A template of one Insider user object (`identifiers`, `attributes`, `events`), or of an
    /// array of them. Insider's field rules are applied to what it renders.
    #[schemars(extend("x-hardal-template" = true))]
    pub user: Value,
}

fn default_endpoint() -> String {
    UPSERT_URL.to_owned()
}

fn all_presets() -> Vec<PresetName> {
    PresetName::ALL.to_vec()
}

fn default_identifiers() -> Vec<String> {
    ["email", "phone_number", "uuid"].map(String::from).to_vec()
}

fn default_max_users() -> usize {
    MAX_USERS
}

fn default_max_bytes() -> usize {
    MAX_BYTES
}

fn default_rate() -> u32 {
    REQUESTS_PER_MINUTE
}
