//! hardal-fuzz: every fuzz target of hardal as a plain function of bytes.
//!
//! The fuzzer project in `fuzz/` (cargo fuzz, libFuzzer) wraps each function in a thin binary, and
//! `tests/corpus.rs` replays the committed corpora through the same functions as ordinary tests, so
//! what the fuzzer learned keeps being checked in CI without a fuzzer.
//!
//! A target must return normally on every input: a panic is a finding. Where a cheap property holds
//! for every input (two parsers agree, two renderers agree, one verdict per record, a diagnostic
//! points into the text), the target asserts it, so a wrong answer is a finding too.
//!
//! How bytes become inputs (status codes, headers, record counts) is in [`input`]; [`seeds`] builds
//! the starting corpora from the project's own examples.

pub mod input;
pub mod seeds;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use hardal_core::{Destination, Event, HttpResponse, Template, Verdict};
use hardal_custom_api::{CustomApi, CustomApiConfig};
use hardal_runner::config::DeliveryConfig;
use hardal_runner::delivery::retry::{Decision, RetryPolicy};
use hardal_runner::send::checkpoint::{Checkpoint, Handled, Progress};
use hardal_runner::send::summary::Totals;
use serde_json::Value;

/// A fuzz target: any bytes in, a panic for a finding.
pub type Target = fn(&[u8]);

/// Every target by name, as the fuzzer binaries, `cargo xtask fuzz` and the replay test know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("event_line", event_line),
    ("config_load", config_load),
    ("template", template),
    ("judge_insider", judge_insider),
    ("judge_custom_api", judge_custom_api),
    ("retry_after", retry_after),
    ("checkpoint_open", checkpoint_open),
];

/// One NDJSON line, as bytes. Invariant: `parse_line` accepts exactly the lines serde_json reads
/// as a JSON object, and reads the same value (integers beyond 64 bits, which serde_json rounds,
/// are kept as their digits and so compared as such).
pub fn event_line(data: &[u8]) {
    let parsed = hardal_runner::input::parse_line(data);
    let reference = std::str::from_utf8(data)
        .ok()
        .map(|text| serde_json::from_str::<Value>(&hardal_core::event::keep_big_integers(text)));
    match (parsed, reference) {
        (Ok(event), Some(Ok(value @ Value::Object(_)))) => assert_eq!(
            event.as_value(),
            &value,
            "parse_line read another value than serde_json"
        ),
        (Ok(event), other) => panic!("parse_line accepted {event:?}; serde_json: {other:?}"),
        (Err(message), Some(Ok(value @ Value::Object(_)))) => {
            panic!("parse_line refused a JSON object ({message}): {value}")
        }
        (Err(message), _) => assert!(!message.is_empty(), "an error must say something"),
    }
}

/// A configuration file. Invariant: a refused configuration has at least one diagnostic, every
/// diagnostic points into the text (1-based line at most one past the last newline, column at
/// least 1 and at most one past the end of its line) and they come sorted by position.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A couple of names are "set", so that both resolved secrets and missing variables occur.
    let lookup = |name: &str| match name {
        "INSIDER_REQUEST_TOKEN" | "TOKEN" => Some("fuzz-token".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let Err(diagnostics) = hardal_runner::config::load_str(text, &lookup) else {
        return;
    };
    assert!(!diagnostics.is_empty(), "refused without a diagnostic");
    let lines: Vec<&str> = text.split('\n').collect();
    for d in &diagnostics {
        let (line, column) = (d.position.line, d.position.column);
        assert!(
            (1..=lines.len()).contains(&line),
            "line {line} of a {}-line text: {d:?}",
            lines.len()
        );
        let length = lines[line - 1].len();
        assert!(
            (1..=length + 1).contains(&column),
            "column {column} of a {length}-byte line: {d:?}"
        );
        assert!(!d.message.is_empty(), "a diagnostic without a message");
    }
    assert!(
        diagnostics.is_sorted_by_key(|d| d.position),
        "diagnostics out of order: {diagnostics:?}"
    );
}

/// A template and an event: the first line is the template (JSON, or else the line itself as a
/// string template), the rest the event (an object, or any other JSON value put under `x`).
/// Invariants: every compile error points at a value of the template; `render_json` writes
/// exactly `serde_json::to_vec` of what `render` returns, and fails alike.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template_text, event_text) = text.split_once('\n').unwrap_or((text, ""));
    let source = serde_json::from_str::<Value>(template_text)
        .unwrap_or_else(|_| Value::String(template_text.to_owned()));
    let template = match Template::compile(&source) {
        Ok(template) => template,
        Err(errors) => {
            assert!(!errors.is_empty(), "compile failed without an error");
            for e in &errors {
                assert!(
                    source.pointer(&e.pointer).is_some(),
                    "error at {:?}, which is not in the template: {e}",
                    e.pointer
                );
            }
            return;
        }
    };
    let event = match serde_json::from_str::<Value>(event_text) {
        Ok(value @ Value::Object(_)) => value,
        Ok(other) => serde_json::json!({ "x": other }),
        Err(_) => Value::Object(Default::default()),
    };
    let event = Event::from_value(event).expect("an object is an event");

    let rendered = template.render(&event);
    let mut bytes = Vec::new();
    let written = template.render_json(&event, &mut bytes);
    match (rendered, written) {
        (Ok(Some(value)), Ok(true)) => {
            let expected = serde_json::to_vec(&value).expect("a Value serializes");
            assert!(
                serde_json::from_slice::<Value>(&bytes).is_ok(),
                "render_json wrote invalid JSON: {}",
                String::from_utf8_lossy(&bytes)
            );
            assert_eq!(
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&expected),
                "render_json and render disagree"
            );
        }
        (Ok(None), Ok(false)) => assert!(bytes.is_empty(), "missing, yet bytes were written"),
        (Err(left), Err(right)) => assert_eq!(left, right, "the two renderers fail differently"),
        (left, right) => panic!("render gave {left:?}, render_json gave {right:?}"),
    }
}

/// Insider's answer to a request of 1..=1000 users. Invariants: one verdict per user; an answer
/// that is not 2xx gives every user the verdict of its status.
pub fn judge_insider(data: &[u8]) {
    let (records, response) = input::judged_response(data);
    let verdicts = hardal_insider::judge(records, &response);
    check_verdicts(records, &response, &verdicts);
}

/// A `custom_api` destination's judging of any answer. Invariants: one verdict per record, each
/// the verdict of the status.
pub fn judge_custom_api(data: &[u8]) {
    static DESTINATION: OnceLock<CustomApi> = OnceLock::new();
    let destination = DESTINATION.get_or_init(|| {
        let config: CustomApiConfig = serde_json::from_value(serde_json::json!({
            "endpoint_url": "http://127.0.0.1:9/collect",
            "request_format": {"users": [{"id": "##user_id##"}]},
            "batch": {"array_pointer": "/users"},
        }))
        .expect("a valid custom_api configuration");
        CustomApi::build("fuzz", config).expect("a valid custom_api destination")
    });
    let (records, response) = input::judged_response(data);
    let owned = vec![hardal_core::Record::new(b"{}".to_vec()); records];
    let verdicts = destination.judge(&owned.iter().collect::<Vec<_>>(), &response);
    check_verdicts(records, &response, &verdicts);
    let expected = response.status_verdict();
    assert!(
        verdicts.iter().all(|v| *v == expected),
        "custom_api judges by status alone"
    );
}

fn check_verdicts(records: usize, response: &HttpResponse, verdicts: &[Verdict]) {
    assert_eq!(verdicts.len(), records, "one verdict per record");
    if !(200..300).contains(&response.status) {
        let expected = response.status_verdict();
        assert!(
            verdicts.iter().all(|v| *v == expected),
            "a non-2xx answer judges every record by its status"
        );
    }
}

/// A `Retry-After` header fed to the runner's retry policy at `Instant::now()`. Invariants: a
/// retry is never scheduled before now, and never past the retry budget.
pub fn retry_after(data: &[u8]) {
    let input = input::RetryInput::from_bytes(data);
    let response = HttpResponse {
        status: 429,
        headers: vec![("retry-after".to_owned(), input.header.clone())],
        body: Vec::new(),
    };
    let after = response.retry_after();

    let policy = RetryPolicy::from_config(&DeliveryConfig::default());
    let now = Instant::now();
    // The first attempt lies `elapsed` before now (as the engine's records do), or at now when the
    // clock has not run that long.
    let first_attempt = now.checked_sub(input.elapsed).unwrap_or(now);
    let decision = policy.decide(
        input.attempts,
        first_attempt,
        now,
        after,
        SystemTime::now(),
        input.random,
    );
    if let Decision::RetryAt(at) = decision {
        assert!(at >= now, "a retry scheduled in the past");
        assert!(
            at.duration_since(first_attempt) <= policy.max_elapsed,
            "a retry scheduled past the budget"
        );
    }
}

/// The checkpoint store opened from arbitrary bytes. It must answer `Ok` or `Err`; when it opens,
/// recording lines must mark them resolved, and the store must open again afterwards with them.
pub fn checkpoint_open(data: &[u8]) {
    let scratch = Scratch::new();
    std::fs::write(&scratch.path, data).expect("writing the scratch checkpoint");
    let destinations = ["a".to_owned()];
    let open = || Checkpoint::open(&scratch.path, "input", &destinations, false);
    let Ok((mut checkpoint, resume)) = open() else {
        return;
    };
    assert_eq!(
        resume.resolved.len(),
        destinations.len(),
        "one resolved set per destination"
    );
    let recorded = [1, 2, 3, 5, 8, 9, 10];
    let mut progress = Progress {
        lines: vec![recorded.to_vec()],
        totals: vec![Totals::default()],
        handled: Handled {
            bytes: 100,
            hash: 7,
        },
    };
    let written = checkpoint.record(&mut progress).is_ok();
    drop(checkpoint);
    if written && let Ok((_, again)) = open() {
        for line in recorded {
            assert!(
                again.resolved[0].contains(line),
                "line {line} was recorded, yet is not resolved after a reopen"
            );
        }
        assert_eq!(
            again.handled,
            Some(Handled {
                bytes: 100,
                hash: 7
            })
        );
    }
}

/// A fresh path for a checkpoint file, and its SQLite companions removed when done.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // Memory-backed when the system has it: SQLite syncs the file on every commit, and disk
        // syncs would dominate each execution.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("hardal-fuzz-{}-{n}.db", std::process::id()));
        let scratch = Scratch { path };
        scratch.remove();
        scratch
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}
