//! Reading events from a stream with constant memory: NDJSON (one event per line), or JSON
//! documents — an event object, possibly pretty-printed over several lines, or an array of
//! events, whose items are read one at a time. Every event keeps its origin (event number and
//! line) so problems can say where they are; a bad item is reported and reading goes on.
//!
//! No item is ever held beyond `max_event_bytes`: the rest of an over-long line (or array item) is
//! skipped as it streams by, and the item is reported as too long with its first bytes. Bytes
//! that are not UTF-8 are reported per item too, never as the end of the input.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead};
use std::sync::Arc;

use hardal_core::Event;
use hardal_core::event::ParseError;
use serde_json::error::Category;

/// How much of an item that cannot be read is kept for its report (a dead letter, a message).
pub const EXCERPT_BYTES: usize = 1024;

/// The default largest event, in bytes: far above any real event, far below what would hurt.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1_000_000;

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

/// One line as read, within the size bound.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line's bytes, without the line break (not yet checked for UTF-8).
    Bytes(Vec<u8>),
    /// The line was longer than the bound: its length, and its first bytes.
    TooLong { bytes: u64, start: Vec<u8> },
}

/// Reads lines of at most `max` bytes from a stream; longer lines are skipped as they stream by.
/// Keeps count of the bytes consumed and, optionally, a running hash of them (for the resume
/// check of `hardal send`).
pub struct LineReader<R> {
    input: R,
    max: usize,
    line: u64,
    bytes: u64,
    hasher: Option<xxhash_rust::xxh3::Xxh3>,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(input: R, max: usize) -> LineReader<R> {
        LineReader {
            input,
            max,
            line: 0,
            bytes: 0,
            hasher: None,
        }
    }

    /// Also hashes every byte read (see [`LineReader::hash`]).
    pub fn hashing(mut self) -> LineReader<R> {
        self.hasher = Some(xxhash_rust::xxh3::Xxh3::new());
        self
    }

    /// The number of the last line read (1-based).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hash of every byte consumed so far (0 when not hashing).
    pub fn hash(&self) -> u64 {
        self.hasher.as_ref().map_or(0, |h| h.digest())
    }

    /// Consumes leading white space (counting the lines it ends) and returns the first other
    /// byte without consuming it.
    pub fn skip_whitespace(&mut self) -> io::Result<Option<u8>> {
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let Some(&byte) = available.first() else {
                return Ok(None);
            };
            if !byte.is_ascii_whitespace() {
                return Ok(Some(byte));
            }
            if byte == b'\n' {
                self.line += 1;
            }
            self.next_byte()?;
        }
    }

    /// The next byte, for readers that look inside lines (an array of events on one line). Line
    /// counting is theirs; bytes and the hash are kept here.
    pub fn next_byte(&mut self) -> io::Result<Option<u8>> {
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let Some(&byte) = available.first() else {
                return Ok(None);
            };
            if let Some(hasher) = &mut self.hasher {
                hasher.update(&[byte]);
            }
            self.input.consume(1);
            self.bytes += 1;
            return Ok(Some(byte));
        }
    }

    /// The next line, or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut kept = Vec::new();
        Ok(self.append_line(&mut kept)?.map(|appended| match appended {
            Appended::Line => Line::Bytes(kept),
            Appended::TooLong { bytes } => Line::TooLong { bytes, start: kept },
        }))
    }

    /// The next line appended to `out` (without its line break; for a line over the bound, its
    /// first [`EXCERPT_BYTES`]), or `None` at the end of the input. The lines of a chunk share one
    /// buffer this way, instead of a vector each.
    pub fn append_line(&mut self, out: &mut Vec<u8>) -> io::Result<Option<Appended>> {
        let start = out.len();
        let mut total: u64 = 0;
        let mut any = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            any = true;
            let (used, done) = match memchr::memchr(b'\n', available) {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            let content = &available[..used - usize::from(done)];
            let room = (self.max + 1).saturating_sub(out.len() - start);
            out.extend_from_slice(&content[..content.len().min(room)]);
            total += content.len() as u64;
            if let Some(hasher) = &mut self.hasher {
                hasher.update(&available[..used]);
            }
            self.input.consume(used);
            self.bytes += used as u64;
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line += 1;
        if out.len() > start && out.last() == Some(&b'\r') && total <= self.max as u64 + 1 {
            out.pop();
            total -= 1;
        }
        if total > self.max as u64 {
            out.truncate(start + EXCERPT_BYTES);
            return Ok(Some(Appended::TooLong { bytes: total }));
        }
        Ok(Some(Appended::Line))
    }
}

/// What [`LineReader::append_line`] appended.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// The whole line.
    Line,
    /// The first bytes of a line longer than the bound, which was `bytes` long.
    TooLong { bytes: u64 },
}

/// Why a line's bytes are not an event, or the event.
pub fn parse_line(bytes: &[u8]) -> Result<Event, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not valid UTF-8 at byte {} of the line; events must be UTF-8 JSON",
            e.valid_up_to() + 1
        )
    })?;
    parse_text(text)
}

/// Parses one event from JSON text; the error says what is wrong and at which column.
pub fn parse_text(text: &str) -> Result<Event, String> {
    Event::parse(text).map_err(describe)
}

/// [`parse_text`] of a text the caller keeps too: the event shares it rather than copying it.
pub fn parse_shared(text: &Arc<str>) -> Result<Event, String> {
    Event::parse_shared(text).map_err(describe)
}

/// What is wrong with a text that is not an event, and at which column.
fn describe(error: ParseError) -> String {
    match error {
        ParseError::Syntax(e) => {
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            format!("not valid JSON at column {}: {message}", e.column())
        }
        ParseError::NotAnObject(found) => {
            format!("an event must be a JSON object, found {found}")
        }
    }
}

/// The reason for a line over the size bound.
pub fn too_long(bytes: u64, max: usize) -> String {
    format!(
        "the event is {bytes} bytes, more than the largest allowed ({max} bytes); it was skipped"
    )
}

/// Reads every event of an input text (a convenience over [`EventReader`] for whole texts).
pub fn read_events(text: &str) -> Vec<InputItem> {
    EventReader::new(text.as_bytes(), DEFAULT_MAX_EVENT_BYTES)
        .collect::<io::Result<Vec<_>>>()
        .expect("reading from memory cannot fail")
}

/// The events of a stream, one at a time, in constant memory.
pub struct EventReader<R> {
    lines: LineReader<R>,
    max: usize,
    number: usize,
    /// Lines read ahead while looking for the end of a document, to be read again as NDJSON
    /// when they turn out not to be one.
    replay: VecDeque<(usize, Line)>,
    started: bool,
    array: Option<ArrayItems>,
    finished: bool,
}

impl<R: BufRead> EventReader<R> {
    pub fn new(input: R, max_event_bytes: usize) -> EventReader<R> {
        EventReader {
            lines: LineReader::new(input, max_event_bytes),
            max: max_event_bytes,
            number: 0,
            replay: VecDeque::new(),
            started: false,
            array: None,
            finished: false,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<(usize, Line)>> {
        if let Some(replayed) = self.replay.pop_front() {
            return Ok(Some(replayed));
        }
        Ok(self
            .lines
            .next_line()?
            .map(|line| (self.lines.line() as usize, line)))
    }

    fn origin(&mut self, line: usize) -> Origin {
        self.number += 1;
        Origin {
            number: self.number,
            line,
        }
    }

    fn item(&mut self) -> io::Result<Option<InputItem>> {
        if let Some(array) = &mut self.array {
            match array.next(&mut self.lines, self.max)? {
                Some((line, result)) => {
                    let origin = self.origin(line);
                    return Ok(Some(
                        result
                            .and_then(|bytes| parse_line(&bytes))
                            .map(|event| (origin, event))
                            .map_err(|message| (origin, message)),
                    ));
                }
                None => {
                    // Lines consumed inside the array were counted by it; what follows the `]`
                    // on its line is read next, as that line.
                    let array = self.array.take().expect("matched above");
                    self.lines.line = array.line.saturating_sub(1) as u64;
                }
            }
        }
        if !self.started {
            self.started = true;
            // An input whose first text is `[` is an array of events, read item by item.
            if self.lines.skip_whitespace()? == Some(b'[') {
                self.lines.next_byte()?;
                self.array = Some(ArrayItems::new(self.lines.line() as usize + 1));
                return self.item();
            }
        }
        loop {
            let Some((line_no, line)) = self.next_line()? else {
                return Ok(None);
            };
            let bytes = match line {
                Line::TooLong { bytes, .. } => {
                    let origin = self.origin(line_no);
                    return Ok(Some(Err((origin, too_long(bytes, self.max)))));
                }
                Line::Bytes(bytes) => bytes,
            };
            if bytes.trim_ascii().is_empty() {
                continue;
            }
            return Ok(Some(self.document(line_no, bytes)?));
        }
    }

    /// One NDJSON line, or a document that starts on this line and spans the next ones.
    fn document(&mut self, line_no: usize, bytes: Vec<u8>) -> io::Result<InputItem> {
        let origin = self.origin(line_no);
        let first = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(_) => {
                return Ok(parse_line(&bytes)
                    .map(|e| (origin, e))
                    .map_err(|m| (origin, m)));
            }
        };
        match hardal_core::event::parse_event(first) {
            Ok(_) => {
                return Ok(parse_text(first)
                    .map(|e| (origin, e))
                    .map_err(|m| (origin, m)));
            }
            Err(e) if e.classify() != Category::Eof => {
                return Ok(Err((
                    origin,
                    parse_text(first).expect_err("it failed above"),
                )));
            }
            Err(_) => {}
        }
        // The line ends before the value does: a pretty-printed document. Gather lines until it
        // parses, within the size bound; if it never does, the lines are read again as NDJSON.
        let mut text = first.to_owned();
        let mut gathered: Vec<(usize, Line)> = Vec::new();
        while let Some((next_no, next)) = self.next_line()? {
            let Line::Bytes(next_bytes) = &next else {
                gathered.push((next_no, next));
                break;
            };
            let Ok(next_text) = std::str::from_utf8(next_bytes) else {
                gathered.push((next_no, next));
                break;
            };
            if text.len() + next_text.len() + 1 > self.max {
                gathered.push((next_no, next));
                break;
            }
            text.push('\n');
            text.push_str(next_text);
            gathered.push((next_no, next));
            match hardal_core::event::parse_event(&text) {
                Ok(_) => {
                    return Ok(parse_text(&text)
                        .map(|e| (origin, e))
                        .map_err(|m| (origin, m)));
                }
                Err(e) if e.classify() == Category::Eof => continue,
                Err(_) => break,
            }
        }
        self.replay.extend(gathered);
        Ok(Err((
            origin,
            parse_text(first).expect_err("it failed above"),
        )))
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = io::Result<InputItem>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.item() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

/// An item of an array of events: its first line, and its bytes or why they cannot be had.
type ArrayItem = (usize, Result<Vec<u8>, String>);

/// The items of a top-level JSON array, found by bracket depth as the bytes stream by (the text of
/// one item at a time is kept, up to the size bound), so that a minified array on one line of
/// any length is read item by item.
struct ArrayItems {
    /// The line of the byte being scanned.
    line: usize,
    ended: bool,
}

impl ArrayItems {
    /// Starts reading after the opening `[`, which stands on `line`.
    fn new(line: usize) -> ArrayItems {
        ArrayItems { line, ended: false }
    }

    fn next_byte<R: BufRead>(&mut self, lines: &mut LineReader<R>) -> io::Result<Option<u8>> {
        let byte = lines.next_byte()?;
        if byte == Some(b'\n') {
            self.line += 1;
        }
        Ok(byte)
    }

    /// The next item: its first line and its bytes (or why it cannot be read). `None` after the
    /// closing bracket; text after it is read as further events by the caller.
    fn next<R: BufRead>(
        &mut self,
        lines: &mut LineReader<R>,
        max: usize,
    ) -> io::Result<Option<ArrayItem>> {
        if self.ended {
            return Ok(None);
        }
        let mut item: Vec<u8> = Vec::new();
        let mut size: u64 = 0;
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut start_line = None;
        loop {
            let Some(byte) = self.next_byte(lines)? else {
                self.ended = true;
                let line = start_line.unwrap_or(self.line);
                return Ok(Some((
                    line,
                    Err("the array of events is not closed with `]`".into()),
                )));
            };
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
            } else {
                match byte {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => depth -= 1,
                    b',' | b']' if depth == 0 => {
                        let empty = item.trim_ascii().is_empty();
                        if byte == b']' {
                            self.ended = true;
                            if empty {
                                return Ok(None);
                            }
                        } else if empty {
                            // `[,` or `,,`: an elision, which JSON does not have.
                            return Ok(Some((
                                self.line,
                                Err("an empty item in the array of events".into()),
                            )));
                        }
                        let line = start_line.unwrap_or(self.line);
                        if size > max as u64 {
                            return Ok(Some((line, Err(too_long(size, max)))));
                        }
                        return Ok(Some((line, Ok(item))));
                    }
                    _ => {}
                }
            }
            if start_line.is_none() && !byte.is_ascii_whitespace() {
                start_line = Some(self.line);
            }
            size += 1;
            if item.len() <= max {
                item.push(byte);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Appended, EventReader, Line, LineReader, read_events};

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
        check("{\n  \"a\": 1\n}\n{\"b\":\n 2}", &["1:1 ok", "2:4 ok"]);
        check(
            "\n[\n {\"a\":1},\n 2,\n {\"b\":2}\n]",
            &[
                "1:3 ok",
                "2:4 an event must be a JSON object, found a number",
                "3:5 ok",
            ],
        );
        check(
            "[{\"a\":\"],[\"}, {\"b\":[1,{\"c\":\"\\\"]\"}]}]\n{\"after\":1}",
            &["1:1 ok", "2:1 ok", "3:2 ok"],
        );
        check("[]", &[]);
        check(
            "[{\"a\":1}] {\"b\":2}\n{\"c\":3}",
            &["1:1 ok", "2:1 ok", "3:2 ok"],
        );
        check(
            "[{\"a\":1},,{\"b\":2}]",
            &[
                "1:1 ok",
                "2:1 an empty item in the array of events",
                "3:1 ok",
            ],
        );
        check(
            "[{\"a\":1},\n{\"b\":",
            &["1:1 ok", "2:2 the array of events is not closed with `]`"],
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

    #[test]
    fn bad_bytes_and_long_lines_are_reported_per_item_and_reading_goes_on() {
        let mut input = b"{\"a\":1}\n{\"b\":\"\xff\xfe\"}\n".to_vec();
        input.extend_from_slice(format!("{{\"big\":\"{}\"}}\n", "x".repeat(100)).as_bytes());
        input.extend_from_slice(b"{\"c\":3}\r\n");
        let got: Vec<String> = EventReader::new(&input[..], 64)
            .map(|item| match item.unwrap() {
                Ok((o, _)) => format!("{}:{} ok", o.number, o.line),
                Err((o, m)) => format!("{}:{} {m}", o.number, o.line),
            })
            .collect();
        assert_eq!(
            got,
            [
                "1:1 ok",
                "2:2 not valid UTF-8 at byte 7 of the line; events must be UTF-8 JSON",
                "3:3 the event is 110 bytes, more than the largest allowed (64 bytes); it was skipped",
                "4:4 ok"
            ]
        );
    }

    #[test]
    fn a_one_line_array_longer_than_the_bound_is_read_item_by_item() {
        let items: Vec<String> = (0..1000).map(|i| format!("{{\"i\":{i}}}")).collect();
        let input = format!("[{}]", items.join(","));
        let read: Vec<_> = EventReader::new(input.as_bytes(), 64)
            .map(|item| item.unwrap().unwrap())
            .collect();
        assert_eq!(read.len(), 1000);
        assert_eq!(read[999].1.as_value()["i"], 999);
        assert!(read.iter().all(|(origin, _)| origin.line == 1));
    }

    #[test]
    fn a_line_reader_holds_no_more_than_its_bound() {
        let long = "y".repeat(10_000);
        let input = format!("ab\r\n{long}\ncd");
        let mut reader =
            LineReader::new(std::io::BufReader::with_capacity(16, input.as_bytes()), 100).hashing();
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Bytes(b"ab".to_vec()))
        );
        let Some(Line::TooLong { bytes, start }) = reader.next_line().unwrap() else {
            panic!("the long line is too long");
        };
        assert_eq!((bytes, start.len()), (10_000, 101));
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Bytes(b"cd".to_vec()))
        );
        assert_eq!(reader.next_line().unwrap(), None);
        assert_eq!((reader.line(), reader.bytes()), (3, input.len() as u64));
        assert_eq!(reader.hash(), xxhash_rust::xxh3::xxh3_64(input.as_bytes()));
    }

    #[test]
    fn lines_appended_to_one_buffer_keep_to_their_own_bytes() {
        let long = "y".repeat(150);
        let input = format!("\nab\r\n{long}\ncd");
        let mut reader =
            LineReader::new(std::io::BufReader::with_capacity(16, input.as_bytes()), 100);
        // What the buffer holds already is an earlier line's: an empty line does not take its
        // carriage return for its own.
        let mut out = b"x\r".to_vec();
        let mut appended = Vec::new();
        while let Some(what) = reader.append_line(&mut out).unwrap() {
            appended.push((what, out.len()));
        }
        assert_eq!(
            appended,
            [
                (Appended::Line, 2),
                (Appended::Line, 4),
                (Appended::TooLong { bytes: 150 }, 105),
                (Appended::Line, 107),
            ]
        );
        assert_eq!(out, format!("x\rab{}cd", &long[..101]).into_bytes());
        assert_eq!(reader.line(), 4);
    }
}
