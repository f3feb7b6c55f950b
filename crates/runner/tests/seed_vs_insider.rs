//! The seed's request format sent through `custom_api`, beside the `insider` kind, for every
//! example event, against the Insider simulator. The report is a reviewed snapshot that the README
//! quotes (a test keeps the README's copy identical).

use std::path::Path;

use hardal_core::{Destination, MapContext, Mapped, Outcome, Record};
use hardal_insider_simulator::{Simulator, SimulatorConfig};
use hardal_runner::config::load_str;
use hardal_runner::input::read_events;
use hardal_runner::transport::Transport;
use serde_json::Value;
/// A fixed moment of mapping, so results never depend on when the tests run: 2025-01-01, a week
/// after the example events.
fn context() -> MapContext {
    MapContext::at(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_735_689_600))
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Loads an example configuration pointed at the simulator.
fn destination(file: &str, sim: &Simulator) -> Box<dyn Destination> {
    let text = std::fs::read_to_string(root().join("examples").join(file))
        .unwrap()
        .replace(
            "https://unification.useinsider.com/api/user/v1/upsert",
            &sim.upsert_url(),
        )
        .replace("your_partner_name", "mybrand");
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value["destinations"][0]["endpoint"] = Value::String(sim.upsert_url());
    if value["destinations"][0]["type"] == "custom_api" {
        value["destinations"][0]
            .as_object_mut()
            .unwrap()
            .remove("endpoint");
    }
    let mut config = load_str(&value.to_string(), &|_| Some("tok".to_owned())).unwrap();
    config.destinations.remove(0)
}

/// One line per example event: what the simulator answered for the body the destination sent,
/// or why hardal itself did not send it.
fn report(
    destination: &dyn Destination,
    runtime: &tokio::runtime::Runtime,
) -> (String, usize, usize) {
    let transport = Transport::new().unwrap();
    let events = std::fs::read_to_string(root().join("examples/events.ndjson")).unwrap();
    let (mut text, mut refused_by_simulator, mut count) = (String::new(), 0, 0);
    for item in read_events(&events) {
        count += 1;
        let (origin, event) = item.unwrap();
        let title = format!(
            "{} {} ({})",
            origin.number,
            event.as_value()["id"].as_str().unwrap_or("(no id)"),
            event.event_name().unwrap()
        );
        let records = match destination.map(&event, &context()) {
            Ok(Mapped {
                outcome: Outcome::Records(records),
                ..
            }) => records,
            Ok(Mapped {
                outcome: Outcome::Skipped(reason),
                ..
            }) => {
                text.push_str(&format!("{title}: skipped by hardal: {reason}\n"));
                continue;
            }
            Ok(Mapped {
                outcome: Outcome::Expired(rule),
                ..
            }) => {
                text.push_str(&format!(
                    "{title}: not sent by hardal: older than Insider keeps it ({rule})\n"
                ));
                continue;
            }
            Err(error) => {
                text.push_str(&format!("{title}: rejected by hardal: {error}\n"));
                continue;
            }
        };
        let batch: Vec<&Record> = records.iter().collect();
        let response = runtime
            .block_on(transport.send(
                destination.encode(
                    &batch,
                    &hardal_core::SendContext::first(std::time::UNIX_EPOCH),
                ),
                std::time::Duration::from_secs(5),
            ))
            .unwrap();
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        match body["data"]["fail"]["errors"].as_object() {
            Some(errors) if !errors.is_empty() => {
                refused_by_simulator += 1;
                text.push_str(&format!("{title}: REJECTED by Insider (HTTP 200):\n"));
                for (key, messages) in errors {
                    let messages: Vec<&str> = messages
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    text.push_str(&format!("    {key}: {}\n", messages.join("; ")));
                }
            }
            _ => text.push_str(&format!("{title}: accepted\n")),
        }
    }
    (text, refused_by_simulator, count)
}

#[test]
fn the_seed_format_is_refused_where_the_insider_kind_delivers() {
    let sim = Simulator::start(SimulatorConfig::new("mybrand", "tok")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (seed, seed_refused, events) = report(
        destination("custom-api-insider.json", &sim).as_ref(),
        &runtime,
    );
    let (insider, insider_refused, _) =
        report(destination("insider.json", &sim).as_ref(), &runtime);
    // Every event the insider kind sends is accepted; the rest hardal rejects itself, with a reason.
    assert_eq!(insider_refused, 0, "{insider}");
    assert!(
        seed_refused > 10,
        "the seed's format should fail most events:\n{seed}"
    );
    let snapshot = format!(
        "# The seed's request format through custom_api ({seed_refused} of {events} refused by Insider)\n{seed}\n\
         # The insider kind with defaults (0 refused by Insider)\n{insider}"
    );
    expect_test::expect_file!["snapshots/seed-vs-insider.txt"].assert_eq(&snapshot);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(&snapshot),
        "README.md must quote tests/snapshots/seed-vs-insider.txt as it is"
    );
}
