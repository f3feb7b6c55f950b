//! Mapping speed of the `insider` destination on the events `cargo xtask bench send` generates
//! (a page view, a purchase with two lines, a cart addition, an identify), as `hardal send` maps
//! them: parsed from their text, notes counted. For quick iteration on the send path's CPU cost
//! without the release build of the whole runner.

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hardal_core::{Destination, Event, MapContext, Notes};
use hardal_insider::{Insider, InsiderConfig};

/// 2025-01-01T00:00:00Z, an hour after the events' time.
const NOW: u64 = 1_735_689_600;

const EVENTS: [(&str, &str); 4] = [
    (
        "page_view",
        r#"{"id":"e1","event_name":"page_view","created_at":1735686000000,"user_id":"u67574","user":{"email":"user67574@example.com","name":"User 67574","country":"tr","language":"tr-TR","email_optin":true},"session_id":"s49857","page":{"url":"https://shop.example/p/576","title":"Product 1","referrer":"https://www.google.com/"},"properties":{"page_type":"product","position":1}}"#,
    ),
    (
        "purchase",
        r#"{"id":"e6","event_name":"purchase","created_at":1735686000222,"user_id":"u1001","user":{"email":"user1001@example.com","name":"User 1001","country":"tr","language":"tr-TR","email_optin":"false"},"properties":{"transaction_id":"T-6","currency":"TRY","value":"120.50","items":[{"item_id":"SKU-17","item_name":"Mug","item_category":"Kitchen","price":"60.25","quantity":"2"},{"item_id":"SKU-4090","item_name":"Tea","item_category":"Food","price":19.9,"quantity":1}]}}"#,
    ),
    (
        "add_to_cart",
        r#"{"id":"e0","event_name":"add_to_cart","created_at":1735686000111,"user_id":"u86951","user":{"email":"user86951@example.com","name":"User 86951","country":"tr","language":"tr-TR","email_optin":"false"},"properties":{"currency":"EUR","value":12.0,"product_id":"SKU-135"}}"#,
    ),
    (
        "identify",
        r#"{"id":"e9","event_name":"identify","created_at":1735686000333,"user_id":"anon-49","properties":{}}"#,
    ),
];

fn map(c: &mut Criterion) {
    let config: InsiderConfig = serde_json::from_value(serde_json::json!({
        "partner_name": "bench", "request_token": "tok", "endpoint": "http://127.0.0.1:9/upsert"
    }))
    .expect("a valid configuration");
    let destination = Insider::build("insider", config).expect("builds");
    let context = MapContext {
        notes: Notes::Counted,
        ..MapContext::at(UNIX_EPOCH + Duration::from_secs(NOW))
    };
    let mut group = c.benchmark_group("insider");
    group.throughput(Throughput::Elements(1));
    for (name, text) in EVENTS {
        group.bench_function(format!("parse {name}"), |b| {
            b.iter(|| Event::parse(black_box(text)).expect("valid JSON"))
        });
        let event = Event::parse(text).unwrap();
        group.bench_function(format!("map {name}"), |b| {
            b.iter(|| destination.map(black_box(&event), &context).expect("maps"))
        });
    }
    group.finish();
}

criterion_group!(benches, map);
criterion_main!(benches);
