//! Where each value of a configuration text stands, so every diagnostic can say `line:column`.
//! serde_json keeps no spans, so one pass over the text (which already parsed) records the offset
//! of every value and member key by JSON pointer, and notices duplicate keys, which serde_json
//! silently resolves to the last one. Looking a pointer up is then a hash lookup, and turning many
//! offsets into positions is one more pass: validation stays linear in the size of the text
//! however many problems it reports.

use std::collections::HashMap;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// What to point at for a pointer that names an object member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Value,
    Key,
}

/// The offsets of every value (and member key) of a JSON text, by JSON pointer.
pub struct SourceMap<'s> {
    source: &'s str,
    spans: HashMap<String, Span>,
    /// Members whose key appeared earlier in the same object: (pointer, first key, this key).
    duplicates: Vec<(String, usize, usize)>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    key: Option<usize>,
    value: usize,
}

impl<'s> SourceMap<'s> {
    /// Maps a JSON text. Text that is not JSON maps as far as it goes.
    pub fn new(source: &'s str) -> SourceMap<'s> {
        let mut map = SourceMap {
            source,
            spans: HashMap::new(),
            duplicates: Vec::new(),
        };
        let mut scanner = Scanner {
            text: source.as_bytes(),
            at: 0,
        };
        scanner.skip_ws();
        let mut pointer = String::new();
        scanner.value(&mut pointer, None, &mut map);
        map
    }

    /// The offset of the value (or member key) at `pointer`, or of the deepest existing ancestor
    /// when the pointer leads nowhere (a missing required member points at its object).
    pub fn offset(&self, pointer: &str, target: Target) -> usize {
        let mut pointer = pointer;
        let mut first = true;
        loop {
            if let Some(span) = self.spans.get(pointer) {
                return match (first, target, span.key) {
                    (true, Target::Key, Some(key)) => key,
                    _ => span.value,
                };
            }
            first = false;
            match pointer.rfind('/') {
                Some(cut) => pointer = &pointer[..cut],
                None => return 0,
            }
        }
    }

    /// Every member whose key repeats an earlier key of its object: its pointer, and the
    /// positions of the first key and of this one.
    pub fn duplicate_keys(&self) -> Vec<(String, Position, Position)> {
        let offsets: Vec<usize> = self
            .duplicates
            .iter()
            .flat_map(|(_, first, again)| [*first, *again])
            .collect();
        let positions = self.positions(&offsets);
        self.duplicates
            .iter()
            .zip(positions.chunks(2))
            .map(|((pointer, _, _), pair)| (pointer.clone(), pair[0], pair[1]))
            .collect()
    }

    /// The positions of byte offsets, in one pass over the text.
    pub fn positions(&self, offsets: &[usize]) -> Vec<Position> {
        let mut order: Vec<usize> = (0..offsets.len()).collect();
        order.sort_by_key(|&i| offsets[i]);
        let mut positions = vec![Position { line: 1, column: 1 }; offsets.len()];
        let (mut line, mut column) = (1usize, 1usize);
        let mut chars = self.source.char_indices().peekable();
        for i in order {
            let target = offsets[i].min(self.source.len());
            while let Some(&(offset, c)) = chars.peek() {
                if offset >= target {
                    break;
                }
                if c == '\n' {
                    line += 1;
                    column = 1;
                } else {
                    column += 1;
                }
                chars.next();
            }
            positions[i] = Position { line, column };
        }
        positions
    }
}

/// The position of the value (or member key) at `pointer` in `source`.
pub fn locate(source: &str, pointer: &str, target: Target) -> Position {
    let map = SourceMap::new(source);
    map.positions(&[map.offset(pointer, target)])[0]
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    /// Records the value at `self.at` under `pointer` (with its member key's offset, if any),
    /// then its members or items. Returns `None` where the text stops being JSON.
    fn value(
        &mut self,
        pointer: &mut String,
        key: Option<usize>,
        map: &mut SourceMap,
    ) -> Option<()> {
        map.spans.insert(
            pointer.clone(),
            Span {
                key,
                value: self.at,
            },
        );
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut seen: HashMap<String, usize> = HashMap::new();
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b'}' => {
                            self.at += 1;
                            return Some(());
                        }
                        b',' => {
                            self.at += 1;
                            continue;
                        }
                        _ => {}
                    }
                    let key_start = self.at;
                    let name = self.string()?;
                    self.skip_ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.at += 1;
                    self.skip_ws();
                    let length = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                    if let Some(&first) = seen.get(&name) {
                        map.duplicates.push((pointer.clone(), first, key_start));
                    } else {
                        seen.insert(name, key_start);
                    }
                    let found = self.value(pointer, Some(key_start), map);
                    pointer.truncate(length);
                    found?;
                }
            }
            b'[' => {
                self.at += 1;
                let mut index = 0usize;
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        b',' => {
                            self.at += 1;
                            continue;
                        }
                        _ => {}
                    }
                    let length = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&index.to_string());
                    let found = self.value(pointer, None, map);
                    pointer.truncate(length);
                    found?;
                    index += 1;
                }
            }
            b'"' => self.skip_string(),
            _ => {
                while matches!(self.peek(), Some(b) if !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                {
                    self.at += 1;
                }
                Some(())
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Reads a string token (with `self.at` on its opening quote) and decodes it.
    fn string(&mut self) -> Option<String> {
        let start = self.at;
        self.skip_string()?;
        serde_json::from_slice(&self.text[start..self.at]).ok()
    }

    fn skip_string(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                _ => self.at += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Position, SourceMap, Target, locate};

    const SOURCE: &str = r#"{
  "destinations": [
    {"id": "a", "type": "x"},
    {
      "id": "b",
      "odd/key": {"n": [1, {"deep": "ş"}, 3]},
      "headers": {"X-Token": "${TOKEN}"}
    }
  ]
}"#;

    fn check(pointer: &str, target: Target, line: usize, column: usize) {
        assert_eq!(
            locate(SOURCE, pointer, target),
            Position { line, column },
            "{pointer}"
        );
    }

    #[test]
    fn locates_values_keys_and_missing_paths() {
        check("", Target::Value, 1, 1);
        check("/destinations", Target::Value, 2, 19);
        check("/destinations/0", Target::Value, 3, 5);
        check("/destinations/0/type", Target::Value, 3, 25);
        check("/destinations/0/type", Target::Key, 3, 17);
        check("/destinations/1/id", Target::Value, 5, 13);
        check("/destinations/1/odd~1key/n/1/deep", Target::Value, 6, 37);
        check("/destinations/1/odd~1key/n/2", Target::Value, 6, 43);
        check("/destinations/1/headers/X-Token", Target::Value, 7, 30);
        // Missing members and indexes point at the deepest existing ancestor.
        check("/destinations/1/nope", Target::Value, 4, 5);
        check("/destinations/7", Target::Value, 2, 19);
    }

    #[test]
    fn duplicate_keys_point_at_both_occurrences() {
        let source = "{\"a\": 1,\n \"b\": {\"x\": 1, \"x\": 2},\n \"a\": 3}";
        let map = SourceMap::new(source);
        let found: Vec<String> = map
            .duplicate_keys()
            .into_iter()
            .map(|(pointer, first, again)| {
                format!(
                    "{pointer} {}:{} {}:{}",
                    first.line, first.column, again.line, again.column
                )
            })
            .collect();
        assert_eq!(found, ["/b/x 2:8 2:16", "/a 1:2 3:2"]);
    }

    #[test]
    fn positions_of_many_offsets_come_from_one_pass() {
        let source = "ab\nşc\n\nd";
        let map = SourceMap::new(source);
        let positions = map.positions(&[8, 0, 3, 5, 100]);
        let shown: Vec<(usize, usize)> = positions.iter().map(|p| (p.line, p.column)).collect();
        assert_eq!(shown, [(4, 1), (1, 1), (2, 1), (2, 2), (4, 2)]);
    }
}
