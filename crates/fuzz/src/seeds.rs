//! The starting corpora, built from the project's own material: the example events and
//! configurations, every linked kind's presets, the documented Insider answers and Retry-After forms, and
//! real checkpoint stores. `cargo xtask fuzz seeds` writes them to `fuzz/corpus/<target>/seed-*`;
//! the fuzzer grows the corpora from there.

use hardal_runner::send::checkpoint::{Checkpoint, Handled, Progress};
use hardal_runner::send::summary::Totals;
use serde_json::Value;

use crate::input::{RetryInput, encode_response};

const EVENTS: &str = include_str!("../../../examples/events.ndjson");
const CONFIG_CUSTOM_API: &str = include_str!("../../../examples/custom-api-insider.json");

/// One seed: its file name (without the `seed-` prefix) and bytes.
pub type Seed = (String, Vec<u8>);

/// The seeds of `target`, or `None` for a name that is not a target.
pub fn for_target(target: &str) -> Option<Vec<Seed>> {
    Some(match target {
        "event_line" => event_line(),
        "config_load" => config_load(),
        "template" => template(),
        "retry_after" => retry_after(),
        "checkpoint_open" => checkpoint_open(),
        judge if crate::judge::targets().iter().any(|t| t == judge) => self::judge(),
        _ => return None,
    })
}

/// Every example configuration (`examples/*.json`) by file stem, in name order.
fn example_configs() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut configs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("the examples directory")
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let stem = p
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a UTF-8 name");
            let text = std::fs::read_to_string(&p).expect("a readable example");
            (stem.to_owned(), text)
        })
        .collect();
    configs.sort();
    configs
}

fn named(items: impl IntoIterator<Item = (impl Into<String>, impl Into<Vec<u8>>)>) -> Vec<Seed> {
    items
        .into_iter()
        .map(|(name, bytes)| (name.into(), bytes.into()))
        .collect()
}

fn event_lines() -> impl Iterator<Item = &'static str> + Clone {
    EVENTS.lines().filter(|l| !l.trim().is_empty())
}

fn event_line() -> Vec<Seed> {
    let mut seeds: Vec<Seed> = event_lines()
        .enumerate()
        .map(|(i, line)| (format!("example-{:02}", i + 1), line.into()))
        .collect();
    seeds.extend(named([
        ("empty-object", "{}"),
        ("array", "[1,2]"),
        ("truncated", "{\"event_name\":\"purchase\",\"user\":{"),
        ("duplicate-key", "{\"a\":1,\"a\":{\"b\":[true,null]}}"),
        (
            "escapes",
            "{\"k\\u00e9y\":\"\\ud83d\\ude00 \\\" \\\\\",\"n\":-0.0e-3}",
        ),
        ("trailing", "{\"a\":1} x"),
    ]));
    seeds
}

/// Every example configuration, and hand-written ones with mistakes.
fn config_load() -> Vec<Seed> {
    let mut seeds = named(example_configs());
    seeds.extend(named([
        (
            "insider-mappings",
            r###"{"destinations":[{"id":"ins","type":"insider","consent":{"mode":"off"},"partner_name":"p","request_token":"${TOKEN}",
  "mappings":[{"when":{"event_name":"signup"},"user":{"identifiers":{"uuid":"##user_id##"}}}],"event_names":{"purchase":"buy"}}],
 "delivery":{"concurrency":2,"max_attempts":3,"backoff_initial_ms":10}}"###,
        ),
        (
            "custom-api-batch",
            r###"{"destinations":[{"id":"c","type":"custom_api","endpoint_url":"http://127.0.0.1:9/x",
  "headers":{"Authorization":"Bearer ${MISSING}"},
  "mappings":[{"when":{"properties.items":{"exists":true}},"request_format":{"users":["##each properties.items as i##"]}}],
  "batch":{"array_pointer":"/users","max_items":10,"max_bytes":64}}]}"###,
        ),
        (
            "template-errors",
            "{\n  \"destinations\": [\n    {\"id\": \"é\", \"type\": \"custom_api\",\n     \"endpoint_url\": \"ftp://x\",\n     \"request_format\": {\"a\": \"##user. | nope##\"}}\n  ]\n}",
        ),
        (
            "not-json",
            "{\n  \"destinations\": [\n    {\"id\": \"x\",\n",
        ),
        (
            "unknown-kind",
            r###"{"destinations":[{"id":"x","type":"mystery"}],"extra":1}"###,
        ),
    ]));
    seeds
}

/// A template on the first line (every linked kind's presets without their `when`, and more),
/// an example event after it.
fn template() -> Vec<Seed> {
    let presets = hardal_core::DestinationPlugin::all()
        .into_iter()
        .flat_map(|plugin| plugin.presets.iter().map(move |p| (plugin.kind, p)))
        .map(|(kind, (name, text))| {
            let mut preset: Value = serde_json::from_str(text).expect("presets are JSON");
            if let Some(fields) = preset.as_object_mut() {
                fields.remove("when");
            }
            (format!("preset-{kind}-{name}"), preset.to_string())
        });
    let custom_api: Value = serde_json::from_str(CONFIG_CUSTOM_API).expect("examples are JSON");
    let request_format = custom_api["destinations"][0]["request_format"].to_string();
    let strings = [
        (
            "text",
            r###""Order ##properties.order_id## (##properties.total##)""###,
        ),
        (
            "filters",
            r###"{"n":"##properties.price | number##","i":"##properties.quantity | integer##","b":"##user.email_optin | boolean##","t":"##created_at | timestamp##","s":"##user.name | string | trim | upper | lower##","j":"##properties | json##","r":"##user.email ?? \"none\" | required##"}"###,
        ),
        (
            "quoted",
            r###"["##properties.\"first name\"##","Issue ####42","##items.0.price##"]"###,
        ),
        ("bare-string", "##user.country ?? \"TR\" | lower##"),
    ];
    let mut events = event_lines().cycle();
    presets
        .chain(std::iter::once(("custom-api".to_owned(), request_format)))
        .chain(strings.map(|(n, t)| (n.to_owned(), t.to_owned())))
        .map(|(name, template)| {
            let event = events.next().expect("the examples have events");
            (name, format!("{template}\n{event}").into_bytes())
        })
        .collect()
}

/// The answers of Insider's documentation and of `crates/insider/tests/judge.rs`.
fn judge() -> Vec<Seed> {
    let partial = r###"{"data":{"successful":{"count":1},"fail":{"count":2,"errors":{"users.1.events.0.event_params.*.required":["event_group_id parameter is required on purchase event"],"users.1.identifiers.*.regexp(^\\+[1-9]\\d{6,14}$)":["user has an invalid phone number: 12345"],"users.2.attributes.email_optin.type(bool)":"email_optin must be a boolean"}}}}"###;
    named([
        (
            "success",
            encode_response(
                200,
                2,
                &[],
                br###"{"data":{"successful":{"count":2},"fail":{}}}"###,
            ),
        ),
        (
            "partial-failure",
            encode_response(200, 3, &[], partial.as_bytes()),
        ),
        (
            "unattributed-failure",
            encode_response(
                200,
                2,
                &[],
                br###"{"data":{"successful":{"count":0},"fail":{"count":2}}}"###,
            ),
        ),
        ("not-json-200", encode_response(200, 1, &[], b"OK")),
        (
            "bad-request",
            encode_response(
                400,
                1,
                &[],
                br###"{"error":"users must be defined: bad request"}"###,
            ),
        ),
        (
            "unauthorized",
            encode_response(401, 1, &[], br###"{"error":"unauthorized"}"###),
        ),
        ("forbidden", encode_response(403, 1, &[], b"forbidden")),
        (
            "throttled",
            encode_response(
                429,
                1,
                &[("Retry-After", "12"), ("Content-Type", "application/json")],
                br###"{"error":"rejected: too many requests"}"###,
            ),
        ),
        (
            "unavailable-date",
            encode_response(
                503,
                4,
                &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
                b"oops",
            ),
        ),
        ("origin-timeout", encode_response(524, 1000, &[], b"")),
    ])
}

fn retry_after() -> Vec<Seed> {
    named([
        ("seconds", RetryInput::encode(1, 0, "12")),
        ("zero", RetryInput::encode(2, 40, "0")),
        ("spaces", RetryInput::encode(3, 0, "  7 ")),
        (
            "past-date",
            RetryInput::encode(1, 0, "Wed, 21 Oct 2015 07:28:00 GMT"),
        ),
        (
            "future-date",
            RetryInput::encode(4, 8, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ),
        (
            "rfc850-date",
            RetryInput::encode(1, 0, "Sunday, 06-Nov-94 08:49:37 GMT"),
        ),
        (
            "asctime-date",
            RetryInput::encode(1, 0, "Sun Nov  6 08:49:37 1994"),
        ),
        ("words", RetryInput::encode(5, 100, "soon")),
        ("over-budget", RetryInput::encode(9, 880, "60")),
        ("last-attempt", RetryInput::encode(10, 0, "1")),
    ])
}

/// Real stores: new, with a run, with resolved lines, with a second run and destination, and one
/// rewritten with small pages so that mutations land in table data more often.
fn checkpoint_open() -> Vec<Seed> {
    let dir = std::env::temp_dir().join(format!("hardal-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let store = |name: &str, build: &dyn Fn(&std::path::Path)| {
        let path = dir.join(format!("{name}.db"));
        build(&path);
        let bytes = std::fs::read(&path).expect("the store was written");
        (name.to_owned(), bytes)
    };
    let record = |path: &std::path::Path, input: &str, destinations: &[String], lines: &[u64]| {
        let (mut checkpoint, _) =
            Checkpoint::open(path, input, destinations, false).expect("a new store opens");
        let mut progress = Progress {
            lines: destinations.iter().map(|_| lines.to_vec()).collect(),
            totals: destinations.iter().map(|_| Totals::default()).collect(),
            handled: Handled {
                bytes: 10 * lines.len() as u64,
                hash: 42,
            },
        };
        checkpoint.record(&mut progress).expect("recording");
    };
    let a = ["a".to_owned()];
    let seeds = vec![
        ("empty".to_owned(), Vec::new()),
        store("new-run", &|p| record(p, "run", &a, &[])),
        store("resolved", &|p| record(p, "run", &a, &[1, 2, 3, 7, 8, 20])),
        store("two-runs", &|p| {
            record(p, "other", &["a".to_owned(), "b".to_owned()], &[1, 5]);
            record(p, "run", &a, &[2, 3]);
        }),
        store("small-pages", &|p| {
            record(p, "run", &a, &[1, 4, 5, 9]);
            let connection = rusqlite::Connection::open(p).expect("reopening");
            connection
                .execute_batch("PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM;")
                .expect("rewriting with small pages");
        }),
    ];
    let _ = std::fs::remove_dir_all(&dir);
    seeds
}
