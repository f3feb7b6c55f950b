//! The `meta_capi` destination end to end as data: configuration and fixture events in, request
//! bodies (or skips, expiries and refusals) out, reviewed in `tests/snapshots/`.

use expect_test::expect_file;
use hardal_core::{Destination, Event, MapContext, Mapped, Outcome, Record, SendContext};
use hardal_meta_capi::{MetaCapi, MetaCapiConfig, PRESET_FILES};
use serde_json::{Value, json};

/// A fixed moment of mapping, so results never depend on when the tests run:
/// 2024-12-26T12:00:00Z, a week after the first example events.
fn context() -> MapContext {
    MapContext::at(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_735_214_400))
}

fn build(extra: Value) -> MetaCapi {
    let mut config = json!({"pixel_id": "1234567890", "access_token": "tok",
                            "base_url": "http://127.0.0.1:9"});
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let config: MetaCapiConfig = serde_json::from_value(config).unwrap();
    MetaCapi::build("meta", config).unwrap()
}

/// One block per event: a title line, the notes, then the request body pretty-printed, or the
/// skip, expiry or refusal.
fn render(destination: &MetaCapi, events: &[Value]) -> String {
    let mut out = String::new();
    for (i, event) in events.iter().enumerate() {
        out.push_str(&format!(
            "## {} {} {}\n",
            i + 1,
            event["id"],
            event["event_name"]
        ));
        let mapped = destination.map(&Event::from_value(event.clone()).unwrap(), &context());
        if let Ok(mapped) = &mapped {
            for note in &mapped.notes {
                out.push_str(&format!("note: {note}\n"));
            }
        }
        match mapped {
            Ok(Mapped {
                outcome: Outcome::Records(records),
                ..
            }) => {
                let batch: Vec<&Record> = records.iter().collect();
                let request = destination.encode(&batch, &SendContext::first(context().now));
                let body: Value = serde_json::from_slice(&request.body).unwrap();
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
            Err(error) => out.push_str(&format!("refused: {error}\n")),
        }
    }
    out
}

fn example_events() -> Vec<Value> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/events.ndjson");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The example events as a web SDK would send them: with the browser's user agent and address,
/// Meta's cookie and the page (most examples carry none, and Meta needs the user agent and the
/// URL of website events).
fn example_events_from_browsers() -> Vec<Value> {
    example_events()
        .into_iter()
        .map(|mut event| {
            event["context"] = json!({"user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
                                      "ip": "203.0.113.7", "fbp": "fb.1.1734600000000.1098115397"});
            if event["page"]["url"].is_null() {
                event["page"]["url"] = json!("https://shop.example/");
            }
            event
        })
        .collect()
}

#[test]
fn example_events_as_they_are() {
    // Website events without a user agent are refused by name; old ones expire.
    let destination = build(json!({}));
    expect_file!["snapshots/examples.txt"].assert_eq(&render(&destination, &example_events()));
}

#[test]
fn example_events_from_browsers_by_preset() {
    let destination = build(json!({}));
    expect_file!["snapshots/browsers.txt"]
        .assert_eq(&render(&destination, &example_events_from_browsers()));
}

#[test]
fn options_and_your_mappings() {
    let destination = build(json!({
        "action_source": "system_generated",
        "test_event_code": "TEST123",
        "partner_agent": "hardal-1.0",
        "phone_country_code": "90",
        "presets": ["purchase", "sign_up"],
        "mappings": [{"when": {"event_name": "newsletter_subscribe"},
                      "event": {"event_name": "Subscribe", "event_time": "##created_at##",
                                "event_id": "##id##", "action_source": "email",
                                "user_data": {"em": "##user.email##", "external_id": "##user_id##"},
                                "custom_data": {"list": "##properties.list##"}}}]
    }));
    let fixtures = vec![
        json!({"id": "o1", "event_name": "identify", "created_at": "2024-12-26T10:00:00Z", "user_id": "u42",
               "user": {"email": "ada@example.com", "phone": "0532 123 45 67"}}),
        json!({"id": "o2", "event_name": "newsletter_subscribe", "created_at": "2024-12-26T10:00:00Z",
               "user_id": "u300", "user": {"email": " Émile.Dupont@Example.FR "},
               "properties": {"list": "weekly"}}),
        json!({"id": "o3", "event_name": "purchase", "created_at": "2024-12-26T10:00:00Z", "user_id": "u77",
               "user": {"email": "mehmet@example.com.tr", "phone": "0532 123 45 67", "name": "Mehmet",
                        "surname": "Yılmaz", "city": "İstanbul", "zip": "34000", "country": "Türkiye"},
               "properties": {"currency": "try", "order_id": "ORD-1",
                              "items": [{"item_id": "A", "price": "10.5", "quantity": "2"},
                                        {"item_name": "no id", "price": 3},
                                        {"item_id": "B", "price": 4, "item_category": ["x", "y"]}]}}),
        json!({"id": "o4", "event_name": "purchase", "created_at": "2024-12-26T10:00:00Z", "user_id": "u78",
               "user": {"email": "kemal(at)example.com"}, "properties": {"currency": "EUR"}}),
        json!({"id": "o5", "event_name": "sign_up", "created_at": "2024-12-26T10:00:00Z",
               "user": {"email": "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F"},
               "properties": {"registration_method": "google"}}),
    ];
    expect_file!["snapshots/options.txt"].assert_eq(&render(&destination, &fixtures));
}

#[test]
fn preset_files_are_what_presets_list() {
    let plugin = hardal_core::DestinationPlugin::find("meta_capi").unwrap();
    let listed: Vec<&str> = plugin.presets.iter().map(|(name, _)| *name).collect();
    let files: Vec<&str> = PRESET_FILES.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, files);
    for (name, text) in PRESET_FILES {
        let file: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            file["when"].is_object() && file["event"].is_object(),
            "{name}"
        );
        hardal_core::Template::compile(&file["event"]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

#[test]
fn the_access_token_is_a_query_parameter_and_nowhere_else() {
    let destination = build(json!({"access_token": "a b&c", "base_url": "https://graph.example/"}));
    let events = example_events_from_browsers();
    let mapped = destination
        .map(&Event::from_value(events[6].clone()).unwrap(), &context())
        .unwrap();
    let records = mapped.into_records().unwrap();
    let batch: Vec<&Record> = records.iter().collect();
    let request = destination.encode(&batch, &SendContext::first(context().now));
    assert_eq!(
        request.url,
        "https://graph.example/v25.0/1234567890/events?access_token=a%20b%26c"
    );
    assert_eq!(
        destination.endpoint(),
        Some("https://graph.example/v25.0/1234567890/events")
    );
    assert!(!String::from_utf8_lossy(&request.body).contains("a b&c"));
}
