//! The custom_api destination as data: configuration and events in, request bodies and verdicts out.

use expect_test::{Expect, expect};
use hardal_core::{Destination, Event, HttpResponse, MapContext, Mapped, Outcome, Record, Verdict};
use hardal_custom_api::{CustomApi, CustomApiConfig};
use serde_json::{Value, json};

/// A fixed moment of mapping, so results never depend on when the tests run.
fn context() -> MapContext {
    MapContext::at(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600))
}

fn build(config: Value) -> CustomApi {
    let config: CustomApiConfig = serde_json::from_value(config).unwrap();
    CustomApi::build("test", config).unwrap()
}

/// Maps every event, sends each event's records as one request (as `hardal render` does), and
/// prints one line per event: the body, `skipped: reason` or `error: message`.
fn check(config: Value, events: &[Value], expected: Expect) {
    let destination = build(config);
    let mut actual = String::new();
    for event in events {
        let event = Event::from_value(event.clone()).unwrap();
        let line = match destination.map(&event, &context()) {
            Ok(Mapped {
                outcome: Outcome::Records(records),
                ..
            }) => {
                let batch: Vec<&Record> = records.iter().collect();
                String::from_utf8(
                    destination
                        .encode(
                            &batch,
                            &hardal_core::SendContext::first(std::time::UNIX_EPOCH),
                        )
                        .body,
                )
                .unwrap()
            }
            Ok(Mapped {
                outcome: Outcome::Skipped(reason) | Outcome::Expired(reason),
                ..
            }) => format!("skipped: {reason}"),
            Err(e) => format!("error: {e}"),
        };
        actual.push_str(&line);
        actual.push('\n');
    }
    expected.assert_eq(&actual);
}

#[test]
fn mappings_are_tried_in_order_then_request_format() {
    check(
        json!({
            "endpoint_url": "https://api.example/collect",
            "mappings": [
                {"when": {"event_name": ["purchase", "order_completed"]},
                 "request_format": {"kind": "order", "id": "##properties.order_id ?? id##"}},
                {"when": {"properties.items": {"exists": true}},
                 "request_format": {"kind": "items", "n": "##properties.items.0.quantity | integer##"}}
            ],
            "request_format": {"kind": "other", "name": "##event_name##"}
        }),
        &[
            json!({"id": "e1", "event_name": "purchase", "properties": {"order_id": "O-1", "items": []}}),
            json!({"id": "e2", "event_name": "order_completed"}),
            json!({"id": "e3", "event_name": "add_to_cart", "properties": {"items": [{"quantity": "2"}]}}),
            json!({"id": "e4", "event_name": "page_view"}),
        ],
        expect![[r#"
            {"kind":"order","id":"O-1"}
            {"kind":"order","id":"e2"}
            {"kind":"items","n":2}
            {"kind":"other","name":"page_view"}
        "#]],
    );
}

#[test]
fn events_no_mapping_selects_are_skipped_and_bad_values_are_errors() {
    check(
        json!({
            "endpoint_url": "https://api.example/collect",
            "mappings": [{"when": {"event_name": "purchase"},
                          "request_format": {"price": "##properties.price | number##"}}]
        }),
        &[
            json!({"event_name": "page_view"}),
            json!({"event_name": "purchase", "properties": {"price": "12,50"}}),
            json!({"event_name": "purchase", "properties": {}}),
        ],
        expect![[r#"
            skipped: no mapping selects event_name "page_view"
            error: properties.price | number: cannot convert "12,50" to a number (at /mappings/0/request_format/price)
            skipped: every placeholder of the body was missing
        "#]],
    );
}

#[test]
fn batching_concatenates_the_array_and_counts_bytes_exactly() {
    let destination = build(json!({
        "endpoint_url": "https://api.example/upsert",
        "request_format": {"skip_hook": true, "users": [{"identifiers": {"uuid": "##user_id | string##"}}]},
        "batch": {"array_pointer": "/users", "max_items": 2, "max_bytes": 1000}
    }));
    let records: Vec<Record> = (1..=3)
        .flat_map(|i| {
            match destination
                .map(
                    &Event::from_value(json!({"user_id": i})).unwrap(),
                    &context(),
                )
                .unwrap()
            {
                Mapped {
                    outcome: Outcome::Records(records),
                    ..
                } => records,
                skipped => panic!("{skipped:?}"),
            }
        })
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].order_key.as_deref(), Some("1"));
    let batch: Vec<&Record> = records[..2].iter().collect();
    let body = destination
        .encode(
            &batch,
            &hardal_core::SendContext::first(std::time::UNIX_EPOCH),
        )
        .body;
    assert_eq!(
        String::from_utf8(body.clone()).unwrap(),
        r#"{"skip_hook":true,"users":[{"identifiers":{"uuid":"1"}},{"identifiers":{"uuid":"2"}}]}"#
    );
    let payload: usize = batch.iter().map(|r| r.payload.len()).sum();
    assert_eq!(destination.body_size(2, payload), body.len());
    let limits = destination.batch_limits();
    assert_eq!((limits.max_records, limits.max_bytes), (2, 1000));
}

#[test]
fn batching_refuses_an_item_larger_than_max_bytes() {
    let destination = build(json!({
        "endpoint_url": "https://api.example/upsert",
        "request_format": {"users": ["##name##"]},
        "batch": {"max_bytes": 100}
    }));
    let event = Event::from_value(json!({"name": "x".repeat(200)})).unwrap();
    let error = destination.map(&event, &context()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "one item is 202 bytes, more than batch.max_bytes (100) allows (at /request_format)"
    );
}

#[test]
fn batching_needs_a_constant_envelope() {
    let config: CustomApiConfig = serde_json::from_value(json!({
        "endpoint_url": "https://api.example/upsert",
        "request_format": {"source": "##event_name##", "users": []},
        "batch": {}
    }))
    .unwrap();
    let errors = CustomApi::build("test", config).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "/request_format: with batch, placeholders may appear only inside `/users`"
    );
}

#[test]
fn headers_and_method_are_configuration_only() {
    let destination = build(json!({
        "endpoint_url": "https://api.example/x",
        "request_method": "PUT",
        "headers": {"X-REQUEST-TOKEN": "secret-token", "X-PARTNER-NAME": "brand"},
        "request_format": {"a": "##a##"}
    }));
    let Mapped {
        outcome: Outcome::Records(records),
        ..
    } = destination
        .map(&Event::from_value(json!({"a": 1})).unwrap(), &context())
        .unwrap()
    else {
        panic!("mapped");
    };
    let request = destination.encode(
        &records.iter().collect::<Vec<_>>(),
        &hardal_core::SendContext::first(std::time::UNIX_EPOCH),
    );
    assert_eq!(request.method.as_str(), "PUT");
    assert_eq!(request.url, "https://api.example/x");
    let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Content-Type", "X-PARTNER-NAME", "X-REQUEST-TOKEN"]);
    assert!(
        !format!("{request:?}").contains("secret-token"),
        "a header value leaked into Debug"
    );
}

#[test]
fn every_record_of_a_request_gets_the_status_verdict() {
    let destination = build(json!({"endpoint_url": "https://x/", "request_format": {}}));
    let response = HttpResponse {
        status: 429,
        headers: vec![("retry-after".into(), "3".into())],
        body: vec![],
    };
    let records = [Record::new("{}"), Record::new("{}")];
    let verdicts = destination.judge(&[&records[0], &records[1]], &response);
    assert_eq!(verdicts.len(), 2);
    assert!(
        verdicts
            .iter()
            .all(|v| matches!(v, Verdict::Retry { after: Some(_), .. }))
    );
    let response = HttpResponse {
        status: 422,
        headers: vec![],
        body: b"{\"error\":\"bad field\"}".to_vec(),
    };
    assert_eq!(
        destination.judge(&[&records[0]], &response),
        [Verdict::Rejected {
            reason: "HTTP 422: {\"error\":\"bad field\"}".into()
        }]
    );
}
