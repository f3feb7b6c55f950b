//! Finds where a JSON pointer's value (or member key) stands in the configuration text, so every
//! diagnostic can say `line:column`. serde_json does not keep spans, and the config is small, so
//! this re-scans the text of a document that already parsed.

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

/// The position of the value (or member key) at `pointer`, or of the deepest existing ancestor
/// when the pointer leads nowhere (e.g. a missing required member points at its object).
pub fn locate(source: &str, pointer: &str, target: Target) -> Position {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut scanner = Scanner {
        text: source.as_bytes(),
        at: 0,
    };
    scanner.skip_ws();
    let offset = scanner.find(&tokens, target).unwrap_or(scanner.at);
    position_of(source, offset)
}

/// The position of a byte offset.
pub fn position_of(source: &str, offset: usize) -> Position {
    let before = &source[..offset.min(source.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    /// With `self.at` on a value, descends along `tokens`; returns the offset found, leaving
    /// `self.at` on the deepest value reached when the path ends early.
    fn find(&mut self, tokens: &[String], target: Target) -> Option<usize> {
        let Some((token, rest)) = tokens.split_first() else {
            return Some(self.at);
        };
        match self.peek()? {
            b'{' => {
                let object_start = self.at;
                self.at += 1;
                loop {
                    self.skip_ws();
                    if self.peek()? == b'}' {
                        self.at = object_start;
                        return None;
                    }
                    let key_start = self.at;
                    let key = self.string()?;
                    self.skip_ws();
                    self.at += 1; // the colon
                    self.skip_ws();
                    if key == *token {
                        if rest.is_empty() && target == Target::Key {
                            return Some(key_start);
                        }
                        return self.find(rest, target);
                    }
                    self.skip_value()?;
                    self.skip_ws();
                    if self.peek()? == b',' {
                        self.at += 1;
                    }
                }
            }
            b'[' => {
                let wanted: usize = token.parse().ok()?;
                let array_start = self.at;
                self.at += 1;
                for index in 0.. {
                    self.skip_ws();
                    if self.peek()? == b']' {
                        self.at = array_start;
                        return None;
                    }
                    if index == wanted {
                        return self.find(rest, target);
                    }
                    self.skip_value()?;
                    self.skip_ws();
                    if self.peek()? == b',' {
                        self.at += 1;
                    }
                }
                None
            }
            _ => None,
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

    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => self.skip_string()?,
                b'{' | b'[' => {
                    depth += 1;
                    self.at += 1;
                }
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    self.at += 1;
                }
                b',' | b'}' | b']' if depth == 0 => return Some(()),
                _ => self.at += 1,
            }
            if depth == 0 && matches!(self.peek(), Some(b',' | b'}' | b']') | None) {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Position, Target, locate};

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
}
