//! Rendering speed of the seed's request format for a realistic Hardal purchase event: from an
//! already parsed `Event`, and from NDJSON bytes (parse, wrap, render).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hardal_core::{Event, Template};
use serde_json::{Value, json};

fn seed_request_format() -> Value {
    json!({"users": [{
        "identifiers": {"email": "##user.email##", "uuid": "##user_id##", "custom": {"hardal_id": "##user_id##"}},
        "attributes": {"email_optin": "##user.email_optin##", "name": "##user.name##", "country": "##user.country##",
                       "language": "##user.language##", "custom": {"source": "hardal_analytics"}},
        "events": [{"event_name": "##event_name##", "timestamp": "##created_at##", "event_params": "##properties##"}],
    }]})
}

const EVENT: &str = r#"{"id":"5f0c8a1e-2b7d-4c1e-9a3f-1d2e3f4a5b6c","event_name":"purchase","created_at":"2024-12-19T09:45:39.659Z","user_id":"u42","session_id":"s1","user":{"email":"ada@example.com","name":"Ada","country":"TR","language":"tr-TR","email_optin":true},"page":{"url":"https://shop.example/checkout","title":"Checkout","referrer":"https://google.com/"},"properties":{"transaction_id":"T-1","currency":"TRY","value":120.5,"items":[{"item_id":"SKU-1","item_name":"Mug","item_category":"Kitchen","price":60.25,"quantity":2}]}}"#;

fn render(c: &mut Criterion) {
    let template = Template::compile(&seed_request_format()).expect("the seed template is valid");
    let event =
        Event::from_value(serde_json::from_str(EVENT).expect("valid JSON")).expect("an object");
    let mut out = Vec::with_capacity(1024);

    let mut group = c.benchmark_group("seed_request_format");
    group.throughput(Throughput::Elements(1));
    group.bench_function("render_json from Event", |b| {
        b.iter(|| {
            out.clear();
            template
                .render_json(black_box(&event), &mut out)
                .expect("renders")
        })
    });
    group.bench_function("render to Value from Event", |b| {
        b.iter(|| template.render(black_box(&event)).expect("renders"))
    });
    group.bench_function("render_json from NDJSON bytes", |b| {
        b.iter(|| {
            out.clear();
            // hardal's own ingest path: UTF-8 check, then the pre-sizing event parser.
            let text = std::str::from_utf8(black_box(EVENT.as_bytes())).expect("UTF-8");
            let value: Value = hardal_core::event::parse_event(text).expect("valid JSON");
            let event = Event::from_value(value).expect("an object");
            template.render_json(&event, &mut out).expect("renders")
        })
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
