//! GA4's documented limits and reserved names, as data (sources in
//! `docs/reference/ga4-measurement-protocol.md`). GA4 answers 2xx to a request that breaks them and
//! silently drops what is wrong, so hardal checks them before sending.

use std::time::Duration;

/// Events in one request.
pub const MAX_EVENTS: usize = 25;
/// Bytes of one POST body ("must be smaller than 130kB"); kept a little under.
pub const MAX_BODY_BYTES: usize = 130_000;
/// Characters of an event name and of a parameter name.
pub const MAX_NAME_CHARS: usize = 40;
/// Parameters of one event.
pub const MAX_PARAMS: usize = 25;
/// Characters of a parameter value, except the ones in [`LONG_PARAMS`].
pub const MAX_VALUE_CHARS: usize = 100;
/// Parameters GA4 allows longer values for: (name, characters).
pub const LONG_PARAMS: [(&str, usize); 3] = [
    ("page_location", 1000),
    ("page_referrer", 420),
    ("page_title", 300),
];
/// Item-scoped custom parameters per item (besides the standard item parameters).
pub const MAX_ITEM_CUSTOM_PARAMS: usize = 27;
/// Items of one event.
pub const MAX_ITEMS: usize = 200;
/// User properties of one request.
pub const MAX_USER_PROPERTIES: usize = 25;
/// Characters of a user property name.
pub const MAX_USER_PROPERTY_NAME_CHARS: usize = 24;
/// Characters of a user property value.
pub const MAX_USER_PROPERTY_VALUE_CHARS: usize = 36;
/// Characters of a `user_id`.
pub const MAX_USER_ID_CHARS: usize = 256;
/// How far back `timestamp_micros` may go.
pub const BACKDATE_WINDOW: Duration = Duration::from_secs(72 * 3600);
/// How far ahead of the time of mapping an event's time may be and still be read as clock skew
/// (sent without `timestamp_micros`, so GA4 uses the time it arrives).
pub const FUTURE_SKEW: Duration = Duration::from_secs(15 * 60);

/// Event names the Measurement Protocol reserves (GA4 drops events of these names).
pub const RESERVED_EVENT_NAMES: [&str; 37] = [
    "ad_activeview",
    "ad_click",
    "ad_exposure",
    "ad_impression",
    "ad_query",
    "ad_reward",
    "adunit_exposure",
    "app_background",
    "app_clear_data",
    "app_exception",
    "app_install",
    "app_remove",
    "app_store_refund",
    "app_store_subscription_cancel",
    "app_store_subscription_convert",
    "app_store_subscription_renew",
    "app_update",
    "app_upgrade",
    "dynamic_link_app_open",
    "dynamic_link_app_update",
    "dynamic_link_first_open",
    "error",
    "firebase_campaign",
    "firebase_in_app_message_action",
    "firebase_in_app_message_dismiss",
    "firebase_in_app_message_impression",
    "first_open",
    "first_visit",
    "in_app_purchase",
    "notification_dismiss",
    "notification_foreground",
    "notification_open",
    "notification_receive",
    "os_update",
    "session_start",
    "session_start_with_rollout",
    "user_engagement",
];

/// Prefixes no event or parameter name may start with.
pub const RESERVED_PREFIXES: [&str; 5] = ["_", "firebase_", "ga_", "google_", "gtag."];

/// User property names GA4 reserves.
pub const RESERVED_USER_PROPERTIES: [&str; 5] = [
    "first_open_time",
    "first_visit_time",
    "last_deep_link_referrer",
    "user_id",
    "first_open_after_install",
];

/// Prefixes no user property name may start with.
pub const RESERVED_USER_PROPERTY_PREFIXES: [&str; 4] = ["_", "firebase_", "ga_", "google_"];

/// The longest value `param` may have.
pub fn max_value_chars(param: &str) -> usize {
    LONG_PARAMS
        .iter()
        .find(|(name, _)| *name == param)
        .map_or(MAX_VALUE_CHARS, |(_, chars)| *chars)
}

/// The reserved prefix `name` starts with, if any.
pub fn reserved_prefix<'a>(name: &str, prefixes: &[&'a str]) -> Option<&'a str> {
    prefixes.iter().copied().find(|p| name.starts_with(p))
}
