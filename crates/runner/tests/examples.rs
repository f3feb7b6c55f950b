//! Every example configuration loads, and renders every example event to the reviewed snapshot
//! in `tests/snapshots/<config>.txt` (update with `UPDATE_EXPECT=1 cargo test`).

use std::path::Path;

use hardal_core::Destination;
use hardal_runner::config::load_str;
use hardal_runner::{input, render};

#[test]
fn every_example_config_renders_every_example_event() {
    // A fixed time of mapping, a week after the example events (most are from December 2024;
    // one is older than Insider keeps it), so the snapshots do not change with the date.
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_735_689_600);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let events = std::fs::read_to_string(examples.join("events.ndjson")).unwrap();
    let mut configs: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    configs.sort();
    assert!(!configs.is_empty());
    for config_path in configs {
        let source = std::fs::read_to_string(&config_path).unwrap();
        let config = load_str(&source, &|_| Some("example-secret".to_owned()))
            .unwrap_or_else(|d| panic!("{}: {d:?}", config_path.display()));
        let destinations: Vec<(&dyn Destination, &hardal_core::Consent)> = config
            .destinations
            .iter()
            .map(|d| d.as_ref())
            .zip(&config.consent)
            .collect();
        let mut snapshot = String::new();
        for item in input::read_events(&events) {
            let (origin, event) = item.as_ref().expect("example events are valid");
            let (mut out, mut messages) = (Vec::new(), Vec::new());
            render::render(
                &destinations,
                [Ok(item.clone())],
                now,
                &mut out,
                &mut messages,
            )
            .unwrap();
            snapshot.push_str(&format!(
                "## {origin}: {} {}\n",
                event.as_value()["id"].as_str().unwrap_or("?"),
                event.event_name().unwrap_or("?")
            ));
            snapshot.push_str(&String::from_utf8(messages).unwrap());
            for line in String::from_utf8(out).unwrap().lines() {
                let body: serde_json::Value = serde_json::from_str(line).expect("bodies are JSON");
                snapshot.push_str(&serde_json::to_string_pretty(&body).unwrap());
                snapshot.push('\n');
            }
        }
        let stem = config_path
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        expect_test::expect_file![format!("snapshots/{stem}.txt")].assert_eq(&snapshot);
        // Secrets never appear in what a destination renders.
        assert!(
            !snapshot.contains("example-secret"),
            "{stem}: a secret leaked into a body"
        );
    }
}
