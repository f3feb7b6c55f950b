//! The `insider` destination end to end as data: configuration and fixture events in, request
//! bodies (or skips and rejections) out, reviewed in `tests/snapshots/`.

use expect_test::expect_file;
use hardal_core::{
    Destination, Event, MapContext, Mapped, Outcome, Record, registry::DestinationPlugin,
};
use hardal_insider::{Insider, InsiderConfig, PRESET_FILES};
use serde_json::{Value, json};

/// A fixed moment of mapping, so results never depend on when the tests run.
fn context() -> MapContext {
    MapContext {
        now: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600),
    }
}

fn build(config: Value) -> Insider {
    let config: InsiderConfig = serde_json::from_value(config).unwrap();
    Insider::build("insider", config).unwrap()
}

fn base() -> Value {
    json!({"partner_name": "mybrand", "request_token": "tok", "endpoint": "http://127.0.0.1:9/upsert"})
}

fn with(extra: Value) -> Value {
    let mut config = base();
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config
}

/// One block per event: a title line, then each request body pretty-printed, or the skip or
/// rejection reason.
fn render(destination: &Insider, events: &[Value]) -> String {
    let mut out = String::new();
    for (i, event) in events.iter().enumerate() {
        out.push_str(&format!("## {} {}\n", i + 1, event["event_name"]));
        match destination.map(&Event::from_value(event.clone()).unwrap(), &context()) {
            Ok(Mapped {
                outcome: Outcome::Records(records),
                ..
            }) => {
                let batch: Vec<&Record> = records.iter().collect();
                let body: Value = serde_json::from_slice(&destination.encode(&batch).body).unwrap();
                out.push_str(&serde_json::to_string_pretty(&body).unwrap());
                out.push('\n');
            }
            Ok(Mapped {
                outcome: Outcome::Skipped(reason),
                ..
            }) => out.push_str(&format!("skipped: {reason}\n")),
            Ok(Mapped {
                outcome: Outcome::Expired(rule),
                ..
            }) => out.push_str(&format!("expired: {rule}\n")),
            Err(error) => out.push_str(&format!("rejected: {error}\n")),
        }
    }
    out
}

fn fixtures() -> Vec<Value> {
    let user = json!({"email": "ada@example.com", "name": "Ada", "country": "tr", "language": "tr-TR", "email_optin": "true"});
    vec![
        // purchase, GA4 items[]
        json!({"id": "e1", "event_name": "purchase", "created_at": "2024-12-19T12:45:39.659+03:00", "user_id": "u1", "user": user,
               "properties": {"transaction_id": "T-1", "currency": "try", "value": 120.5,
                              "items": [{"item_id": "SKU-1", "item_name": "Mug", "item_category": "Kitchen", "price": "60.25", "quantity": "2"},
                                        {"item_id": 77, "item_name": "Spoon", "price": 5, "quantity": 1, "currency": "EUR"}]}}),
        // purchase, products[] and an order id, epoch milliseconds
        json!({"id": "e2", "event_name": "Order Completed", "created_at": 1734601200000i64, "user_id": 42, "user": {"email": "b@example.com"},
               "properties": {"order_id": "O-9", "currency": "USD",
                              "products": [{"product_id": "P-1", "name": "Book", "category": "Books", "price": 10, "sale_price": 8, "quantity": 3,
                                            "url": "https://shop/p/1", "image_url": "https://cdn/p/1.jpg"}]}}),
        // purchase, the seed's flat properties, no order id (the event id groups it)
        json!({"id": "e3", "event_name": "purchase", "created_at": "1734601200", "user_id": "u3",
               "properties": {"product_id": "SKU-3", "product_name": "Tea", "price": "19.90", "currency": "TRY", "quantity": "3"}}),
        // purchase missing its currency: rejected by hardal, not sent to be rejected by Insider
        json!({"id": "e4", "event_name": "purchase", "created_at": "2024-12-19T09:00:00Z", "user_id": "u4",
               "properties": {"product_id": "SKU-4", "price": 1}}),
        // registration
        json!({"id": "e5", "event_name": "sign_up", "created_at": "2024-12-20T08:15:00Z", "user_id": "u5",
               "user": {"email": "c@example.com", "name": "Zoë", "email_optin": "0"}, "properties": {"registration_method": "google"}}),
        // identify: attributes only
        json!({"id": "e6", "event_name": "identify", "created_at": "2024-12-20T08:15:00Z", "user_id": "u6",
               "user": {"email": "d@example.com", "phone": "+90 532 123 45 67", "birthday": "1990-12-10", "sms_optin": "false", "surname": ""}}),
        // default: any other event, properties under custom, page fields as parameters
        json!({"id": "e7", "event_name": "Product Viewed", "created_at": "2024-12-20T12:00:00Z", "user_id": "u7",
               "page": {"url": "https://shop/p/1", "referrer": ""}, "properties": {"product_id": "P-1", "currency": "eur", "rating": 4.5, "tags": ["a", "b"], "dims": {"w": 1}}}),
        // anonymous: no identifier at all
        json!({"id": "e8", "event_name": "page_view", "created_at": "2024-12-20T12:00:00Z", "page": {"url": "https://shop/"}}),
    ]
}

#[test]
fn presets_with_defaults() {
    let destination = build(base());
    expect_file!["snapshots/defaults.txt"].assert_eq(&render(&destination, &fixtures()));
}

#[test]
fn renamed_events_skip_hook_appending_and_custom_identifiers() {
    let destination = build(with(json!({
        "event_names": {"registration": "sign_up_confirmation"},
        "skip_hook": true,
        "append_arrays": true,
        "identifiers": ["uuid", "hardal_id"],
        "presets": ["registration", "purchase"]
    })));
    expect_file!["snapshots/options.txt"].assert_eq(&render(&destination, &fixtures()));
}

#[test]
fn user_mappings_come_before_presets_and_follow_the_same_rules() {
    let destination = build(with(json!({
        "mappings": [
            {"when": {"event_name": "purchase"},
             "user": {"identifiers": {"uuid": "##user_id##"},
                      "events": [{"event_name": "Big Purchase", "timestamp": "##created_at##",
                                  "event_params": {"event_group_id": "##id##", "currency": "##properties.currency##",
                                                   "unit_sale_price": "##properties.value ?? 0##", "quantity": 1, "channel": "web"}}]}},
            {"when": {"event_name": "identify"},
             "user": [{"identifiers": {"uuid": "##user_id##"}, "attributes": {"birthday": "##user.birthday##"}},
                      {"identifiers": {"email": "##user.email##"}, "attributes": {"sms_optin": "##user.sms_optin##"}}]}
        ]
    })));
    expect_file!["snapshots/mappings.txt"].assert_eq(&render(&destination, &fixtures()));
}

#[test]
fn bad_configurations_report_every_problem() {
    let config: InsiderConfig = serde_json::from_value(with(json!({
        "endpoint": "ftp://x",
        "event_names": {"default": "x", "purchase": "Big Buy"},
        "presets": ["purchase", "purchase"],
        "identifiers": ["custom"],
        "mappings": [{"when": {"event_name": null}, "user": {"identifiers": {"uuid": "##user_id"}}}]
    })))
    .unwrap();
    let errors: Vec<String> = Insider::build("i", config)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    expect_test::expect![[r###"
        /endpoint: `ftp://x` is not an http:// or https:// URL
        /mappings/0/when/event_name: null never matches (missing and null are the same); use {"exists": false}
        /mappings/0/user/identifiers/uuid: unclosed "##" in "##user_id" (at character 1); write #### for a literal ##
        /event_names/purchase: `Big Buy` is not an Insider event name (lower case letters, digits and _)
        /event_names/default: only the purchase and registration presets send a named event
        /presets/1: preset `purchase` is listed twice
        /identifiers/0: `custom` is not an identifier name
    "###]]
    .assert_eq(&(errors.join("\n") + "\n"));
}

#[test]
fn preset_files_are_valid_and_listed_by_the_plugin() {
    for (name, text) in PRESET_FILES {
        let file: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        hardal_core::Template::compile(&file["user"]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let when: hardal_core::WhenConfig = serde_json::from_value(file["when"].clone()).unwrap();
        hardal_core::Condition::compile(&when).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    let plugin = DestinationPlugin::find("insider").expect("registered");
    assert_eq!(
        plugin.presets.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["purchase", "registration", "identify", "default"]
    );
}

#[test]
fn batches_never_exceed_the_user_or_byte_limit() {
    // Users of very different sizes, up to ~300 KB each, packed greedily as the runner does.
    let destination = build(with(json!({"max_users_per_request": 1000})));
    let mut records = Vec::new();
    for i in 0..2500u32 {
        let blob = "x".repeat(((i * 7919) % 300) as usize * if i % 50 == 0 { 1000 } else { 1 });
        let event = json!({"event_name": "note", "created_at": "2024-12-19T09:00:00Z", "user_id": format!("u{i}"),
                           "properties": {"blob": blob}});
        match destination
            .map(&Event::from_value(event).unwrap(), &context())
            .unwrap()
        {
            Mapped {
                outcome: Outcome::Records(r),
                ..
            } => records.extend(r),
            other => panic!("{other:?}"),
        }
    }
    let limits = destination.batch_limits();
    let (mut start, mut requests) = (0, 0);
    while start < records.len() {
        let (mut end, mut bytes) = (start, 0);
        while end < records.len()
            && (end == start || destination.fits(end - start, bytes, records[end].payload.len()))
        {
            bytes += records[end].payload.len();
            end += 1;
        }
        let batch: Vec<&Record> = records[start..end].iter().collect();
        let body = destination.encode(&batch).body;
        assert_eq!(
            body.len(),
            destination.body_size(batch.len(), bytes),
            "exact size"
        );
        assert!(body.len() <= limits.max_bytes && batch.len() <= limits.max_records);
        if end < records.len() {
            // Greedy and tight: the next record would not have fit.
            assert!(!destination.fits(batch.len(), bytes, records[end].payload.len()));
        }
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["users"].as_array().unwrap().len(), batch.len());
        start = end;
        requests += 1;
    }
    assert!(
        requests >= 3,
        "the large users must have forced byte-limited requests ({requests})"
    );
}

#[test]
fn a_user_larger_than_a_request_is_rejected_not_sent() {
    let destination = build(with(json!({"max_bytes_per_request": 1000})));
    let event = json!({"event_name": "note", "created_at": "2024-12-19T09:00:00Z", "user_id": "u", "properties": {"blob": "x".repeat(2000)}});
    let error = destination
        .map(&Event::from_value(event).unwrap(), &context())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("more than one request may carry (1000)"),
        "{error}"
    );
}
