//! The `hardal` binary end to end: exit statuses, stdout and stderr of each command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hardal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(args)
        .current_dir(root())
        .env_remove("INSIDER_REQUEST_TOKEN")
        .output()
        .expect("hardal runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn render_prints_one_typed_body_per_event_without_credentials() {
    let output = hardal(&[
        "render",
        "--config",
        "examples/custom-api-insider.json",
        "examples/events.ndjson",
    ]);
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let bodies: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<Value> = std::fs::read_to_string(root().join("examples/events.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bodies.len(), events.len());
    for (body, event) in bodies.iter().zip(&events) {
        let user = &body["users"][0];
        // `##properties##` is the properties object itself, not a string.
        assert_eq!(
            user["events"][0]["event_params"], event["properties"],
            "{event}"
        );
        // A boolean stays a boolean; a string stays a string; a missing one is absent.
        match &event["user"]["email_optin"] {
            Value::Null => assert!(user["attributes"].get("email_optin").is_none()),
            value => assert_eq!(&user["attributes"]["email_optin"], value),
        }
        // A user with no name gets no `name` key at all, never "" or null.
        match &event["user"]["name"] {
            Value::Null => assert!(user["attributes"].get("name").is_none(), "{body}"),
            name => assert_eq!(&user["attributes"]["name"], name),
        }
    }
    assert!(text(&output.stderr).contains(&format!(
        "rendered {n} events: {n} bodies, 0 skipped, 0 expired, 0 repaired, 0 with fields left out, 0 errors",
        n = events.len()
    )));
}

#[test]
fn render_reports_bad_lines_with_their_numbers_and_fails() {
    let dir = std::env::temp_dir().join(format!("hardal-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.ndjson");
    std::fs::write(
        &events,
        "{\"event_name\":\"a\",\"user\":{\"email\":\"a@b.co\"}}\nnot json\n[1]\n",
    )
    .unwrap();
    let output = hardal(&[
        "render",
        "--config",
        "examples/custom-api-insider.json",
        events.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout).lines().count(), 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("event 2 (line 2): not valid JSON at column 2"),
        "{stderr}"
    );
    assert!(
        stderr.contains("event 3 (line 3): an event must be a JSON object, found an array"),
        "{stderr}"
    );
}

#[test]
fn validate_reports_every_mistake_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("hardal-cli-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bad.json");
    std::fs::write(
        &config,
        r###"{"destinations": [{
  "id": "i", "type": "custom_api",
  "endpoint_urll": "https://example.invalid/",
  "request_method": 7,
  "headers": {"X-REQUEST-TOKEN": "${INSIDER_REQUEST_TOKEN}"},
  "request_format": {"users": [{"identifiers": {"email": "##user.email"}}]}
}]}"###,
    )
    .unwrap();
    let output = hardal(&["validate", "--config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let path = config.display();
    for expected in [
        format!(
            "{path}:3:3: /destinations/0/endpoint_urll: unknown field `endpoint_urll`; did you mean `endpoint_url`?"
        ),
        format!("{path}:4:21: /destinations/0/request_method: 7 is not of type \"string\""),
        format!(
            "{path}:5:34: /destinations/0/headers/X-REQUEST-TOKEN: environment variable INSIDER_REQUEST_TOKEN is not set"
        ),
        format!(
            "{path}:6:58: /destinations/0/request_format/users/0/identifiers/email: unclosed \"##\" in \"##user.email\""
        ),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn validate_accepts_the_example_when_the_token_is_set() {
    let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["validate", "--config", "examples/custom-api-insider.json"])
        .current_dir(root())
        .env("INSIDER_REQUEST_TOKEN", "t")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("valid; destinations: insider-integration (custom_api)"));
}

#[test]
fn list_and_schema() {
    // One line per linked kind, in the registry's order, with its description.
    let list = hardal(&["list"]);
    assert!(list.status.success());
    let listed: Vec<(String, String)> = text(&list.stdout)
        .lines()
        .map(|line| {
            let (kind, description) = line.split_once("  ").expect("kind, then description");
            (kind.to_owned(), description.trim().to_owned())
        })
        .collect();
    let registered: Vec<(String, String)> = hardal_core::DestinationPlugin::all()
        .iter()
        .map(|p| (p.kind.to_owned(), p.description.to_owned()))
        .collect();
    assert_eq!(listed, registered);

    let schema = hardal(&["schema"]);
    let printed: Value = serde_json::from_slice(&schema.stdout).unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/hardal.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, committed);

    let unknown = hardal(&["schema", "--kind", "webhook"]);
    assert_eq!(unknown.status.code(), Some(1));
    let known = hardal_runner::linked_kinds().join(", ");
    assert!(
        text(&unknown.stderr).contains(&format!(
            "unknown destination kind `webhook`; known kinds: {known}\n"
        )),
        "{}",
        text(&unknown.stderr)
    );
}
