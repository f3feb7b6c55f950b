//! Reading events: NDJSON (one event per line), or one JSON document holding an event object or
//! an array of events. Every event keeps its origin (event number and line) so problems can say
//! where they are; a bad line is reported and reading goes on.

use std::fmt;

use hardal_core::Event;
use serde_json::Value;

use crate::config::{Target, locate};

/// Where an event came from: its 1-based number among the input's events and its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub number: usize,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {} (line {})", self.number, self.line)
    }
}

/// One input item: an event, or why that item is not one.
pub type InputItem = Result<(Origin, Event), (Origin, String)>;

/// Reads all events of an input text.
pub fn read_events(text: &str) -> Vec<InputItem> {
    let first_line = |offset: usize| text[..offset].matches('\n').count() + 1;
    let start = text.len() - text.trim_start().len();
    if start == text.len() {
        return Vec::new();
    }
    // A whole document (an event, or an array of events, possibly pretty-printed) comes first;
    // anything that is not one document is read as NDJSON.
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let line = locate(text, &format!("/{i}"), Target::Value).line;
                let origin = Origin {
                    number: i + 1,
                    line,
                };
                Event::from_value(item)
                    .map(|e| (origin, e))
                    .map_err(|m| (origin, m))
            })
            .collect(),
        Ok(value @ Value::Object(_)) => {
            let origin = Origin {
                number: 1,
                line: first_line(start),
            };
            vec![
                Event::from_value(value)
                    .map(|e| (origin, e))
                    .map_err(|m| (origin, m)),
            ]
        }
        _ => read_ndjson(text),
    }
}

fn read_ndjson(text: &str) -> Vec<InputItem> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .enumerate()
        .map(|(number, (index, line))| {
            let origin = Origin {
                number: number + 1,
                line: index + 1,
            };
            parse_line(line)
                .map(|e| (origin, e))
                .map_err(|m| (origin, m))
        })
        .collect()
}

/// Parses one NDJSON line into an event; the error says what is wrong and at which column.
pub fn parse_line(line: &str) -> Result<Event, String> {
    let value: Value = hardal_core::event::parse_event(line).map_err(|e| {
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        format!("not valid JSON at column {}: {message}", e.column())
    })?;
    Event::from_value(value)
}

#[cfg(test)]
mod tests {
    use super::read_events;

    /// Renders each item as `number:line ok` or `number:line error`.
    fn check(input: &str, expected: &[&str]) {
        let got: Vec<String> = read_events(input)
            .into_iter()
            .map(|item| match item {
                Ok((o, _)) => format!("{}:{} ok", o.number, o.line),
                Err((o, m)) => format!("{}:{} {m}", o.number, o.line),
            })
            .collect();
        assert_eq!(got, expected, "input: {input:?}");
    }

    #[test]
    fn reads_ndjson_documents_and_arrays() {
        check("", &[]);
        check("  \n", &[]);
        check("{\"a\":1}\n\n{\"b\":2}\n", &["1:1 ok", "2:3 ok"]);
        check("{\n  \"a\": 1\n}\n", &["1:1 ok"]);
        check(
            "\n[\n {\"a\":1},\n 2,\n {\"b\":2}\n]",
            &[
                "1:3 ok",
                "2:4 an event must be a JSON object, found a number",
                "3:5 ok",
            ],
        );
        check(
            "{\"a\":1}\n{\"a\":\n[1]\n{\"c\":3}",
            &[
                "1:1 ok",
                "2:2 not valid JSON at column 5: EOF while parsing a value",
                "3:3 an event must be a JSON object, found an array",
                "4:4 ok",
            ],
        );
    }
}
