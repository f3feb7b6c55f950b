//! The ga4 destination against the conformance kit: the example events and the limits fixture,
//! moved to the last hour (the kit maps as of now, and GA4 takes only the last 72 hours).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

fn recent(text: &str) -> Vec<Value> {
    let hour_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    text.lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            event["created_at"] = json!(hour_ago);
            event
        })
        .collect()
}

#[test]
fn ga4_keeps_the_destination_contract() {
    // Linking the crate registers the kind.
    let _ = hardal_ga4::Ga4::build;
    let mut events = recent(include_str!("../../../examples/events.ndjson"));
    events.extend(recent(include_str!("fixtures/limits.ndjson")));
    let config = json!({"measurement_id": "G-CONFORM", "api_secret": "s3cr3t-api-secret-for-conformance",
                        "base_url": "https://www.google-analytics.com", "max_events_per_request": 5});
    hardal_conformance::check("ga4", &config, &events);
}
