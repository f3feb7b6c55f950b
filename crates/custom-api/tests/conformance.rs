//! The custom_api destination against the conformance kit, unbatched and batched, with a secret
//! header, over the example events.

use serde_json::{Value, json};

fn example_events() -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join("examples/events.ndjson"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn custom_api_keeps_the_destination_contract() {
    // Linking the crate registers the kind.
    let _ = hardal_custom_api::CustomApi::build;
    let user = json!({"identifiers": {"uuid": "##user_id##", "email": "##user.email##"},
                      "events": [{"event_name": "##event_name##", "timestamp": "##created_at##",
                                  "event_params": "##properties##"}]});
    let base = json!({
        "endpoint_url": "https://api.example/upsert",
        "headers": {"X-REQUEST-TOKEN": "s3cr3t-t0ken-for-conformance"},
        "request_format": {"users": [user]}
    });
    hardal_conformance::check("custom_api", &base, &example_events());
    let mut batched = base.clone();
    // Small limits, so that random runs of records fill requests both ways.
    batched["batch"] = json!({"array_pointer": "/users", "max_items": 7, "max_bytes": 4000});
    hardal_conformance::check("custom_api", &batched, &example_events());
}
