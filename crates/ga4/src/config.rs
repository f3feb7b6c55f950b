//! The `ga4` configuration. Doc comments become the descriptions of the generated JSON Schema, so
//! they are written for the people who fill in the configuration.

use hardal_core::{Secret, WhenConfig};
use serde_json::{Value, json};

use crate::limits;

/// Google's collection host; `https://region1.google-analytics.com` collects in the EU.
pub const BASE_URL: &str = "https://www.google-analytics.com";

/// Google Analytics 4 through the Measurement Protocol (`/mp/collect`): Hardal events mapped to
/// GA4's recommended events (purchase, view_item, add_to_cart, begin_checkout, sign_up, page_view)
/// or custom events, checked against GA4's limits before sending (GA4 answers 2xx even to what it
/// throws away), one `client_id` per request.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ga4Config {
    /// The web stream's measurement ID (`G-XXXXXXXXXX`), under Admin > Data streams.
    #[schemars(regex(pattern = r"^[A-Za-z0-9-]{1,64}$"))]
    pub measurement_id: String,
    /// A Measurement Protocol API secret of the stream (Admin > Data streams > Measurement
    /// Protocol API secrets), usually `${GA4_API_SECRET}`. It travels in the URL; hardal never
    /// shows it.
    pub api_secret: Secret,
    /// Where `/mp/collect` is: Google's host, `https://region1.google-analytics.com` to collect in
    /// the EU, or a test server such as the simulator.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The `client_id` of every event: a template of one string. Events of one `client_id` share
    /// a request; events without one are refused. By default Hardal's `user_id`, else its
    /// `session_id`.
    #[serde(default = "default_client_id")]
    #[schemars(extend("x-hardal-template" = true))]
    pub client_id: Value,
    /// The `user_id` sent with every event (GA4's User-ID; never personal data such as an email):
    /// a template of one string, or `null` to send none. By default Hardal's `user_id`.
    #[serde(default = "default_user_id")]
    #[schemars(extend("x-hardal-template" = true))]
    pub user_id: Value,
    /// GA4 user properties: a template of an object from property name to value (names up to 24
    /// characters, values up to 36). By default the user's language and country.
    #[serde(default = "default_user_properties")]
    #[schemars(extend("x-hardal-template" = true))]
    pub user_properties: Value,
    /// GA4's `consent` object: a template of an object with `ad_user_data` and
    /// `ad_personalization`, each `GRANTED` or `DENIED` (booleans and `granted`/`denied` in any
    /// case are read too). Sent only when the event carries consent. By default the event's
    /// `consent.ad_user_data` and `consent.ad_personalization`.
    #[serde(default = "default_consent")]
    #[schemars(extend("x-hardal-template" = true))]
    pub consent: Value,
    /// Which presets map events that none of your `mappings` selects, tried in this order.
    #[serde(default = "all_presets")]
    pub presets: Vec<PresetName>,
    /// Your own mappings, tried before the presets: each renders one GA4 event object (`name`,
    /// `params`) for the events its `when` selects. GA4's limits are applied to what it renders.
    #[serde(default)]
    pub mappings: Vec<EventMappingConfig>,
    /// Most events in one request (GA4 allows 25).
    #[serde(default = "default_max_events")]
    #[schemars(range(min = 1, max = 25))]
    pub max_events_per_request: usize,
}

/// One of your own mappings.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventMappingConfig {
    /// Which events this mapping selects, e.g. `{"event_name": "wishlist_add"}`.
    pub when: WhenConfig,
    /// A template of one GA4 event, `{"name": …, "params": {…}}`. GA4's limits are applied to
    /// what it renders.
    #[schemars(extend("x-hardal-template" = true))]
    pub event: Value,
}

/// A built-in mapping.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PresetName {
    /// Orders: GA4's `purchase` with `transaction_id`, `value`, `currency` and `items`.
    Purchase,
    /// Product viewed: `view_item`.
    ViewItem,
    /// Added to cart: `add_to_cart`.
    AddToCart,
    /// Checkout started: `begin_checkout`.
    BeginCheckout,
    /// Sign-ups: `sign_up` with `method`.
    SignUp,
    /// Page viewed: `page_view` with `page_location`, `page_title`, `page_referrer`.
    PageView,
    /// Every other event, as a custom event of its own name (made a valid GA4 name) with its
    /// properties as parameters.
    Default,
}

impl PresetName {
    pub const ALL: [PresetName; 7] = [
        PresetName::Purchase,
        PresetName::ViewItem,
        PresetName::AddToCart,
        PresetName::BeginCheckout,
        PresetName::SignUp,
        PresetName::PageView,
        PresetName::Default,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PresetName::Purchase => "purchase",
            PresetName::ViewItem => "view_item",
            PresetName::AddToCart => "add_to_cart",
            PresetName::BeginCheckout => "begin_checkout",
            PresetName::SignUp => "sign_up",
            PresetName::PageView => "page_view",
            PresetName::Default => "default",
        }
    }
}

fn default_base_url() -> String {
    BASE_URL.to_owned()
}

fn default_client_id() -> Value {
    json!("##user_id ?? session_id | string##")
}

fn default_user_id() -> Value {
    json!("##user_id | string##")
}

fn default_user_properties() -> Value {
    json!({"language": "##user.language##", "country": "##user.country##"})
}

fn default_consent() -> Value {
    json!({
        "ad_user_data": "##consent.ad_user_data##",
        "ad_personalization": "##consent.ad_personalization##"
    })
}

fn all_presets() -> Vec<PresetName> {
    PresetName::ALL.to_vec()
}

fn default_max_events() -> usize {
    limits::MAX_EVENTS
}
