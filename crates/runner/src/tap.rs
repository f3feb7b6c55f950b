//! `hardal tap`: connects to a running `hardal serve` (`GET /v1/tap` on its tap listener) and
//! prints what the service does with the events asked about — each event as received, each
//! destination's record, each verdict — as they happen, either as the service's NDJSON lines
//! (`--json`) or one readable line each. The filters travel in the query and are applied by the
//! service; see `serve/tap.rs` for the lines themselves.

use std::future::Future;
use std::io::{self, Write};
use std::time::Duration;

use serde_json::Value;

/// The environment variable `hardal tap` reads its token from (a token on the command line
/// would show in the process list).
pub const TOKEN_VARIABLE: &str = "HARDAL_TAP_TOKEN";

/// What to tap and how to print it.
#[derive(Debug, Clone)]
pub struct TapOptions {
    /// The tap listener of the service, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    pub token: String,
    pub destinations: Vec<String>,
    pub event_names: Vec<String>,
    pub users: Vec<String>,
    /// The share of events to see, in (0, 1].
    pub sample: Option<f64>,
    /// Print the service's lines as they come (NDJSON) rather than readable lines.
    pub json: bool,
}

/// Why a tap ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The service closed the stream (it is stopping).
    Closed,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Whatever read the output went away (`hardal tap | head`).
    OutputClosed,
}

/// Why a tap failed.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error("`{url}` is not the address of a tap (e.g. http://127.0.0.1:8081): {reason}")]
    Url { url: String, reason: String },
    #[error("cannot reach the tap at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the service refused the tap (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the tap's stream broke off: {0}")]
    Broken(String),
    #[error("cannot write the output: {0}")]
    Output(io::Error),
}

/// Taps the service until it closes the stream, `interrupt` completes, or the output goes
/// away; every line is written (and flushed) as it arrives.
pub async fn tap(
    options: &TapOptions,
    out: &mut dyn Write,
    interrupt: impl Future<Output = ()>,
) -> Result<Ended, TapError> {
    let url = address(options)?;
    // Errors name the address without the query (it may name a user).
    let mut shown = url.clone();
    shown.set_query(None);
    let shown = shown.to_string();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| TapError::Connect {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
    let mut response = client
        .get(url)
        .bearer_auth(&options.token)
        .send()
        .await
        .map_err(|e| TapError::Connect {
            url: shown.clone(),
            reason: without_url(e),
        })?;
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(text);
        return Err(TapError::Refused { status, message });
    }
    tokio::pin!(interrupt);
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk.map_err(|e| TapError::Broken(without_url(e)))?,
            () = &mut interrupt => return Ok(Ended::Interrupted),
        };
        let Some(chunk) = chunk else {
            return Ok(Ended::Closed);
        };
        pending.extend_from_slice(&chunk);
        let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let complete: Vec<u8> = pending.drain(..=end).collect();
        let written = complete
            .split(|b| *b == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .try_for_each(|line| write_line(out, line, options.json))
            .and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Ended::OutputClosed),
            Err(e) => return Err(TapError::Output(e)),
        }
    }
}

/// The URL of `GET /v1/tap` with the filters in its query.
fn address(options: &TapOptions) -> Result<reqwest::Url, TapError> {
    let wrong = |reason: String| TapError::Url {
        url: options.url.clone(),
        reason,
    };
    let mut url = reqwest::Url::parse(&format!("{}/v1/tap", options.url.trim_end_matches('/')))
        .map_err(|e| wrong(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(wrong("the scheme is http or https".to_owned()));
    }
    {
        let mut query = url.query_pairs_mut();
        for destination in &options.destinations {
            query.append_pair("destination", destination);
        }
        for name in &options.event_names {
            query.append_pair("event_name", name);
        }
        for user in &options.users {
            query.append_pair("user", user);
        }
        if let Some(sample) = options.sample {
            query.append_pair("sample", &sample.to_string());
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

/// A reqwest error without the URL it quotes (the query may name a user).
fn without_url(error: reqwest::Error) -> String {
    use std::error::Error as _;
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Writes one of the service's lines: as it came, or readable.
fn write_line(out: &mut dyn Write, line: &[u8], json: bool) -> io::Result<()> {
    if json {
        out.write_all(line)?;
        return out.write_all(b"\n");
    }
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        out.write_all(line)?;
        return out.write_all(b"\n");
    };
    writeln!(out, "{}", readable(&value))
}

/// One line for people: time, what happened, destination, event name, user, event id, and the
/// event, record or reasons.
pub fn readable(line: &Value) -> String {
    let text = |key: &str| line[key].as_str().unwrap_or_default();
    // `2026-12-06T16:21:36.123456Z` → `16:21:36.123`.
    let time: String = text("time")
        .split_once('T')
        .map_or("", |(_, t)| t)
        .chars()
        .take(12)
        .collect();
    let or = |key: &str, none: &'static str| {
        let found = text(key);
        if found.is_empty() {
            none.to_owned()
        } else {
            found.to_owned()
        }
    };
    let about = || {
        format!(
            "{:<12} {} {} {}",
            or("destination", "-"),
            or("event_name", "(no name)"),
            or("user", "(no user)"),
            text("event_id")
        )
    };
    let listed = |key: &str| {
        line[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    };
    match text("type") {
        "tapping" => format!(
            "{time} tapping       destinations: {}; event names: {}; users: {}; sample: {}",
            listed("destinations"),
            none_is_all(&listed("event_names")),
            none_is_all(&listed("users")),
            line["sample"]
        ),
        "dropped" => format!(
            "{time} DROPPED       {} lines: this tap reads slower than events pass (the service holds a bounded number per tap)",
            line["count"]
        ),
        "received" => format!("{time} received      {}  {}", about(), line["event"]),
        "record" => {
            let notes = listed("notes");
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  notes: {notes}")
            };
            format!(
                "{time} record        {}  {}{notes}",
                about(),
                line["record"]
            )
        }
        "verdict" => {
            let reasons = listed("reasons");
            let reasons = if reasons.is_empty() {
                String::new()
            } else {
                format!("  {reasons}")
            };
            format!("{time} {:<13} {}{reasons}", text("verdict"), about())
        }
        _ => line.to_string(),
    }
}

fn none_is_all(listed: &str) -> &str {
    if listed.is_empty() { "all" } else { listed }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{TapOptions, address, readable};

    #[test]
    fn filters_travel_in_the_query() {
        let mut options = TapOptions {
            url: "http://127.0.0.1:8081/".to_owned(),
            token: String::new(),
            destinations: vec!["insider".to_owned()],
            event_names: vec!["purchase".to_owned()],
            users: vec!["a b&c".to_owned()],
            sample: Some(0.25),
            json: false,
        };
        assert_eq!(
            address(&options).unwrap().as_str(),
            "http://127.0.0.1:8081/v1/tap?destination=insider&event_name=purchase&user=a+b%26c&sample=0.25"
        );
        options.destinations.clear();
        options.event_names.clear();
        options.users.clear();
        options.sample = None;
        assert_eq!(
            address(&options).unwrap().as_str(),
            "http://127.0.0.1:8081/v1/tap"
        );
        options.url = "ftp://x".to_owned();
        assert!(address(&options).is_err());
    }

    #[test]
    fn lines_read_as_what_happened_to_which_event() {
        let verdict = json!({"type": "verdict", "time": "2026-12-06T16:21:36.123456Z",
            "event_id": "00ff", "event_name": "purchase", "user": "alice",
            "destination": "insider", "verdict": "rejected", "reasons": ["HTTP 400", "bad"]});
        assert_eq!(
            readable(&verdict),
            "16:21:36.123 rejected      insider      purchase alice 00ff  HTTP 400; bad"
        );
        let dropped = json!({"type": "dropped", "time": "2026-12-06T16:21:36Z", "count": 3});
        assert!(readable(&dropped).contains("DROPPED       3 lines"));
    }
}
