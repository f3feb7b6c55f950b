//! `Path`: a dot-separated address into an event (`user.email`, `properties.items.0.price`,
//! `properties."first name"`), shared by templates and conditions.
//!
//! Syntax: keys separated by `.`. An unquoted key is any run of characters other than `.`, `"`,
//! `\`, `|`, `?`, whitespace and control characters. A key in double quotes may hold anything;
//! inside quotes `\"` and `\\` escape. An unquoted key made only of ASCII digits also indexes
//! arrays (and still works as the object key `"0"`); a quoted key is always an object key.

use std::fmt;

use crate::value::Value;

/// A compiled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    segments: Vec<Segment>,
}

/// One key of a path. The array index is parsed once, when the path is compiled, so that a lookup
/// never parses or allocates.
#[derive(Debug, Clone)]
struct Segment {
    key: String,
    index: Option<usize>,
    quoted: bool,
}

/// Two keys are the same when they address the same values: whether a key was quoted only
/// matters for digits (a quoted `"0"` never indexes an array), and that is in `index`.
impl PartialEq for Segment {
    fn eq(&self, other: &Segment) -> bool {
        self.key == other.key && self.index == other.index
    }
}

impl Eq for Segment {}

/// Why a path could not be parsed: what is wrong and the byte offset (into the text that was
/// being parsed) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathSyntaxError {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

impl PathSyntaxError {
    /// The message with a 1-based character position, counted in `text`.
    pub(crate) fn describe(&self, text: &str) -> String {
        format!(
            "{} at character {}",
            self.message,
            char_position(text, self.offset)
        )
    }
}

/// The 1-based character position of a byte offset, for messages people read.
pub(crate) fn char_position(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(offset, |head| head.chars().count())
        + 1
}

/// True for characters an unquoted key may hold.
pub(crate) fn is_key_char(c: char) -> bool {
    !matches!(c, '.' | '"' | '\\' | '|' | '?') && !c.is_whitespace() && !c.is_control()
}

impl Path {
    /// Parses a path; the error says what is wrong and where in the text.
    pub fn parse(text: &str) -> Result<Path, String> {
        let (path, end) = parse_prefix(text, 0).map_err(|e| e.describe(text))?;
        match text[end..].chars().next() {
            None => Ok(path),
            Some(c) => Err(format!(
                "unexpected {c:?} at character {} (keys are separated by '.'; quote odd keys: \"first name\")",
                char_position(text, end)
            )),
        }
    }

    /// The value at this path below `root`; `None` when absent or `null`.
    pub fn lookup<'a, 'v>(&self, root: &'a Value<'v>) -> Option<&'a Value<'v>> {
        let mut current = root;
        for segment in &self.segments {
            current = match current {
                Value::Object(map) => map.get(&segment.key)?,
                Value::Array(items) => items.get(segment.index?)?,
                _ => return None,
            };
        }
        (!current.is_null()).then_some(current)
    }

    /// The path cut into at most `pieces` consecutive paths, each of one key but the last,
    /// which holds the rest: looking them up one after the other is looking up the whole path.
    pub(crate) fn split(&self, pieces: usize) -> Vec<Path> {
        let single = self.segments.len().min(pieces.saturating_sub(1));
        let mut split: Vec<Path> = self.segments[..single]
            .iter()
            .map(|segment| Path {
                segments: vec![segment.clone()],
            })
            .collect();
        if single < self.segments.len() {
            split.push(self.without_first(single));
        }
        split
    }

    /// The key of a path of exactly one key.
    pub(crate) fn only_key(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [segment] => Some(&segment.key),
            _ => None,
        }
    }

    /// The first key, and whether it was written in quotes.
    pub(crate) fn first_key(&self) -> Option<(&str, bool)> {
        self.segments.first().map(|s| (s.key.as_str(), s.quoted))
    }

    /// The path without its first `count` keys (an empty path addresses the root itself).
    pub(crate) fn without_first(&self, count: usize) -> Path {
        Path {
            segments: self.segments.iter().skip(count).cloned().collect(),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// True for the empty path, which only templates build internally (it addresses the root).
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

/// Parses a path starting at byte `start` of `text`, stopping before the first character that
/// cannot continue it; returns the path and the byte offset where it stopped.
pub(crate) fn parse_prefix(text: &str, start: usize) -> Result<(Path, usize), PathSyntaxError> {
    let mut segments = Vec::new();
    let mut pos = start;
    loop {
        let (segment, end) = parse_segment(text, pos)?;
        segments.push(segment);
        pos = end;
        if text[pos..].starts_with('.') {
            pos += 1;
        } else {
            return Ok((Path { segments }, pos));
        }
    }
}

fn parse_segment(text: &str, start: usize) -> Result<(Segment, usize), PathSyntaxError> {
    let rest = &text[start..];
    if rest.starts_with('"') {
        let (key, end) = parse_quoted(text, start)?;
        return Ok((
            Segment {
                key,
                index: None,
                quoted: true,
            },
            end,
        ));
    }
    let length: usize = rest
        .chars()
        .take_while(|&c| is_key_char(c))
        .map(char::len_utf8)
        .sum();
    if length == 0 {
        let message = match rest.chars().next() {
            None => "expected a key, found the end".to_owned(),
            Some('.') => "empty key".to_owned(),
            Some(c) => format!("expected a key, found {c:?}"),
        };
        return Err(PathSyntaxError {
            offset: start,
            message,
        });
    }
    let key = &rest[..length];
    let index = if key.bytes().all(|b| b.is_ascii_digit()) {
        key.parse().ok()
    } else {
        None
    };
    Ok((
        Segment {
            key: key.to_owned(),
            index,
            quoted: false,
        },
        start + length,
    ))
}

/// Parses a double-quoted string starting at byte `start` (which holds the opening quote);
/// `\"` and `\\` are the only escapes. Returns the unescaped text and the offset after the quote.
pub(crate) fn parse_quoted(text: &str, start: usize) -> Result<(String, usize), PathSyntaxError> {
    let mut out = String::new();
    let mut chars = text[start..].char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + i + 1)),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                Some((_, e)) => {
                    return Err(PathSyntaxError {
                        offset: start + i,
                        message: format!("unknown escape \\{e} (only \\\" and \\\\ are escapes)"),
                    });
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(PathSyntaxError {
        offset: start,
        message: "unclosed quote".to_owned(),
    })
}

/// Writes `text` in double quotes with `"` and `\` escaped.
pub(crate) fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for Path {
    /// Prints the path so that `Path::parse` reads it back to an equal path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            let digits = segment.key.bytes().all(|b| b.is_ascii_digit());
            let needs_quotes = segment.key.is_empty()
                || !segment.key.chars().all(is_key_char)
                || (segment.quoted && digits);
            if needs_quotes {
                write_quoted(f, &segment.key)?;
            } else {
                f.write_str(&segment.key)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::Path;

    fn event() -> Value {
        json!({
            "user": {"email": "a@b.co", "nothing": null},
            "properties": {
                "items": [{"price": 1.5}, {"price": 2}],
                "first name": "Ada",
                "0": "zero-key",
                "odd\"quote": 1,
            },
            "odd.key": {"x": true},
            "list": [[10, 11]],
        })
    }

    fn check(path: &str, expected: Option<Value>) {
        let parsed = Path::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let event = crate::value::Value::from(event());
        assert_eq!(
            parsed.lookup(&event).map(crate::value::Value::to_json),
            expected,
            "lookup of {path}"
        );
        let printed = parsed.to_string();
        assert_eq!(
            Path::parse(&printed).as_ref(),
            Ok(&parsed),
            "display of {path} is {printed}"
        );
    }

    #[test]
    fn lookups() {
        let table: &[(&str, Option<Value>)] = &[
            ("user.email", Some(json!("a@b.co"))),
            ("user", Some(json!({"email": "a@b.co", "nothing": null}))),
            ("user.nothing", None),
            ("user.nothing.deeper", None),
            ("user.absent", None),
            ("user.email.x", None),
            ("properties.items.0.price", Some(json!(1.5))),
            ("properties.items.1.price", Some(json!(2))),
            ("properties.items.2.price", None),
            ("properties.items.x", None),
            ("properties.0", Some(json!("zero-key"))),
            ("properties.\"first name\"", Some(json!("Ada"))),
            ("properties.\"odd\\\"quote\"", Some(json!(1))),
            ("\"odd.key\".x", Some(json!(true))),
            ("list.0.1", Some(json!(11))),
            ("list.\"0\"", None),
            ("properties.items.01", Some(json!({"price": 2}))),
        ];
        for (path, expected) in table {
            check(path, expected.clone());
        }
    }

    #[test]
    fn syntax_errors_say_what_and_where() {
        let table = [
            ("", "expected a key, found the end at character 1"),
            ("a..b", "empty key at character 3"),
            ("a.", "expected a key, found the end at character 3"),
            (".a", "empty key at character 1"),
            ("a b", "unexpected ' ' at character 2"),
            ("\"abc", "unclosed quote at character 1"),
            (
                "a.\"x\\n\"",
                "unknown escape \\n (only \\\" and \\\\ are escapes) at character 5",
            ),
            ("a|b", "unexpected '|' at character 2"),
            ("\"a\"b", "unexpected 'b' at character 4"),
        ];
        for (text, expected) in table {
            let error = Path::parse(text).expect_err(text);
            assert!(
                error.starts_with(expected),
                "{text:?}: got {error:?}, want {expected:?}"
            );
        }
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        let table = [
            ("user.email", "user.email"),
            ("properties.\"first name\"", "properties.\"first name\""),
            ("\"plain\".x", "plain.x"),
            ("a.\"0\"", "a.\"0\""),
            ("a.\"\"", "a.\"\""),
            ("\"a\\\\b\"", "\"a\\\\b\""),
        ];
        for (text, expected) in table {
            assert_eq!(
                Path::parse(text).map(|p| p.to_string()),
                Ok(expected.to_owned())
            );
        }
    }
}
