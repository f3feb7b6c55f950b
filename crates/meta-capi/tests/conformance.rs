//! The meta_capi destination against the conformance kit over the example events (moved to the
//! last hours and given a browser's user agent, as website events need).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

fn recent_example_events() -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let seconds = hour_ago
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::read_to_string(root.join("examples/events.ndjson"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            event["created_at"] = json!(seconds);
            event["context"] = json!({"user_agent": "Mozilla/5.0", "ip": "203.0.113.7"});
            event
        })
        .collect()
}

#[test]
fn meta_capi_conforms() {
    // Naming something of the crate links it, which registers the kind.
    let _ = hardal_meta_capi::PRESET_FILES;
    let config = json!({"pixel_id": "1234567890", "access_token": "s3cr3t-t0ken-for-conformance",
                        "test_event_code": "TEST1", "max_events_per_request": 5});
    hardal_conformance::check("meta_capi", &config, &recent_example_events());
}
