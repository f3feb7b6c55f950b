//! The insider destination against the conformance kit over the example events.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

/// The example events, moved to the last hours (as `cargo xtask demo` does), so that Insider's
/// retention keeps them whenever the test runs.
fn recent_example_events() -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let stamp = time::OffsetDateTime::from(hour_ago)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    std::fs::read_to_string(root.join("examples/events.ndjson"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            event["created_at"] = json!(stamp);
            event
        })
        .collect()
}

#[test]
fn insider_keeps_the_destination_contract() {
    // Linking the crate registers the kind.
    let _ = hardal_insider::Insider::build;
    let config = json!({"partner_name": "mybrand", "request_token": "s3cr3t-t0ken-for-conformance",
                        "endpoint": "https://unification.useinsider.com/api/user/v1/upsert",
                        "max_users_per_request": 5});
    hardal_conformance::check("insider", &config, &recent_example_events());
}
