//! Compiling a template: finding placeholders in strings, parsing their expressions
//! (`path ?? "literal" | filter`) and `##each … as …##` keys, and collecting every problem with
//! the JSON pointer of the string it is in.

use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::path::{self, Path, PathSyntaxError, char_position};

use super::filter::FilterName;
use super::lookups::Lookups;
use super::{AppliedFilter, Each, Expr, Member, Node, Operand, TextPart};

/// Compiles a template value, or returns every problem found in it.
pub(super) fn compile(value: &Value) -> Result<(Node, Lookups), Vec<ConfigError>> {
    let mut compiler = Compiler {
        errors: Vec::new(),
        paths: Paths::default(),
    };
    let root = compiler.node(value, "");
    if compiler.errors.is_empty() {
        Ok((root, compiler.paths.event))
    } else {
        Err(compiler.errors)
    }
}

/// Escapes an object key as one RFC 6901 JSON pointer token.
pub(crate) fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

struct Compiler {
    errors: Vec<ConfigError>,
    paths: Paths,
}

/// What the paths of placeholders are compiled against.
#[derive(Default)]
struct Paths {
    /// The enclosing `each` loops, outermost first: each one's item name, and the slots of the
    /// paths read below its item so far.
    items: Vec<(String, Lookups)>,
    /// The slots of the event paths compiled so far.
    event: Lookups,
}

impl Compiler {
    fn error(&mut self, pointer: &str, message: String) {
        self.errors.push(ConfigError::new(pointer, message));
    }

    fn node(&mut self, value: &Value, pointer: &str) -> Node {
        match value {
            Value::String(text) => self.string(text, pointer),
            Value::Array(elements) => {
                let nodes = elements
                    .iter()
                    .enumerate()
                    .map(|(i, element)| self.node(element, &format!("{pointer}/{i}")))
                    .collect();
                Node::array(nodes)
            }
            Value::Object(map) => self.object(map, pointer),
            scalar => Node::constant(scalar.clone()),
        }
    }

    fn object(&mut self, map: &Map<String, Value>, pointer: &str) -> Node {
        let each_keys: Vec<&String> = map.keys().filter(|k| is_each_key(k)).collect();
        match each_keys.as_slice() {
            [] => {
                let members = map
                    .iter()
                    .map(|(key, value)| {
                        let node = self.node(value, &format!("{pointer}/{}", pointer_token(key)));
                        Member::new(key, node)
                    })
                    .collect();
                Node::object(members)
            }
            [key] if map.len() == 1 => {
                let key_pointer = format!("{pointer}/{}", pointer_token(key));
                self.each(key, &map[key.as_str()], &key_pointer)
            }
            _ => {
                let others: Vec<String> = map
                    .keys()
                    .filter(|k| !is_each_key(k) || each_keys.len() > 1)
                    .map(|k| format!("{k:?}"))
                    .collect();
                self.error(
                    pointer,
                    format!(
                        "an object with an \"##each … as …##\" key must have no other keys; found {}",
                        others.join(", ")
                    ),
                );
                // The members are still checked, so their own problems are reported too.
                for (key, value) in map {
                    let member_pointer = format!("{pointer}/{}", pointer_token(key));
                    if is_each_key(key) {
                        self.each(key, value, &member_pointer);
                    } else {
                        self.node(value, &member_pointer);
                    }
                }
                Node::constant(Value::Null)
            }
        }
    }

    fn each(&mut self, key: &str, body: &Value, pointer: &str) -> Node {
        let parsed = parse_each_key(key, &mut self.paths);
        match parsed {
            Ok((source, name)) => {
                self.paths.items.push((name, Lookups::default()));
                let body = self.node(body, pointer);
                let (_, item) = self.paths.items.pop().expect("pushed above");
                Node::Each(Box::new(Each { source, body, item }))
            }
            Err(message) => {
                self.error(pointer, format!("in {key:?}: {message}"));
                // The body is still checked, so its own problems are reported in the same pass.
                self.paths.items.push((String::new(), Lookups::default()));
                self.node(body, pointer);
                self.paths.items.pop();
                Node::constant(Value::Null)
            }
        }
    }

    fn string(&mut self, text: &str, pointer: &str) -> Node {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut pos = 0;
        let mut failed = false;
        while let Some(found) = text[pos..].find("##") {
            let open = pos + found;
            literal.push_str(&text[pos..open]);
            // `####` is the escape for a literal `##`.
            if text[open + 2..].starts_with("##") {
                literal.push_str("##");
                pos = open + 4;
                continue;
            }
            let inner_start = open + 2;
            let close = match find_close(text, inner_start) {
                Ok(close) => close,
                Err(reason) => {
                    let position = char_position(text, open);
                    let tail = shorten(&text[open..]);
                    self.error(pointer, format!("{reason} in {tail:?} (at character {position}); write #### for a literal ##"));
                    failed = true;
                    break;
                }
            };
            let source = &text[inner_start..close];
            match parse_expr(source, &mut self.paths) {
                Ok(expr) => {
                    if !literal.is_empty() {
                        parts.push(TextPart::Literal(std::mem::take(&mut literal).into()));
                    }
                    parts.push(TextPart::Placeholder(expr));
                }
                Err(message) => {
                    self.error(pointer, format!("in \"##{source}##\": {message}"));
                    failed = true;
                }
            }
            pos = close + 2;
        }
        if failed {
            return Node::constant(Value::Null);
        }
        if pos < text.len() {
            literal.push_str(&text[pos..]);
        }
        if !literal.is_empty() {
            parts.push(TextPart::Literal(literal.into()));
        }
        if parts.len() > 1 {
            return Node::Text {
                parts,
                pointer: pointer.into(),
            };
        }
        match parts.pop() {
            Some(TextPart::Placeholder(expr)) => Node::Whole {
                expr: Box::new(expr),
                pointer: pointer.into(),
            },
            Some(TextPart::Literal(only)) => Node::constant(Value::String(only.into())),
            None => Node::constant(Value::String(String::new())),
        }
    }
}

/// Text for a message, cut short.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// True for keys that are meant as an each loop: `##each` followed by a space or the closing `##`.
fn is_each_key(key: &str) -> bool {
    key.strip_prefix("##each")
        .is_some_and(|rest| rest.starts_with("##") || rest.starts_with(char::is_whitespace))
}

/// The byte offset of the `##` that closes a placeholder whose text starts at `start`; `##`
/// inside a quoted key or literal does not close it. Escapes inside quotes are only skipped
/// here; the expression parser judges them and says what is wrong.
fn find_close(text: &str, start: usize) -> Result<usize, &'static str> {
    let bytes = text.as_bytes();
    let mut pos = start;
    let mut quote_start = None;
    while pos < bytes.len() {
        match (quote_start, bytes[pos]) {
            (Some(_), b'\\') => pos += 1,
            (Some(_), b'"') => quote_start = None,
            (None, b'"') => quote_start = Some(pos),
            (None, b'#') if bytes.get(pos + 1) == Some(&b'#') => return Ok(pos),
            _ => {}
        }
        pos += 1;
    }
    Err(if quote_start.is_some() {
        "unclosed quote"
    } else {
        "unclosed \"##\""
    })
}

/// A cursor over the text of one placeholder.
struct Cursor<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> Cursor<'t> {
    fn rest(&self) -> &'t str {
        &self.text[self.pos..]
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.pos += token.len();
        }
        found
    }

    /// A run of identifier characters (`[A-Za-z0-9_]`).
    fn word(&mut self) -> &'t str {
        let rest = self.rest();
        let length = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        self.pos += length;
        &rest[..length]
    }

    fn position(&self) -> usize {
        char_position(self.text, self.pos)
    }

    fn unexpected(&self) -> String {
        match self.rest().chars().next() {
            Some(c) => format!("unexpected {c:?} at character {}", self.position()),
            None => "unexpected end".to_owned(),
        }
    }

    fn path_error(&self, error: PathSyntaxError) -> String {
        format!("bad path: {}", error.describe(self.text))
    }
}

/// Parses `operand (?? operand)*`, resolving item names against the enclosing loops.
fn parse_operands(cursor: &mut Cursor<'_>, paths: &mut Paths) -> Result<Vec<Operand>, String> {
    let mut operands = Vec::new();
    loop {
        cursor.skip_whitespace();
        if cursor.at_end() {
            return Err(if operands.is_empty() {
                "empty placeholder".to_owned()
            } else {
                "\"??\" must be followed by a path or a literal".to_owned()
            });
        }
        if cursor.rest().starts_with(['|', '?']) {
            return Err(format!(
                "expected a path or a literal, {}",
                cursor.unexpected()
            ));
        }
        operands.push(parse_operand(cursor, paths)?);
        cursor.skip_whitespace();
        if !cursor.eat("??") {
            return Ok(operands);
        }
    }
}

fn parse_operand(cursor: &mut Cursor<'_>, paths: &mut Paths) -> Result<Operand, String> {
    let rest = cursor.rest();
    if rest.starts_with('"') {
        let (text, end) =
            path::parse_quoted(cursor.text, cursor.pos).map_err(|e| cursor.path_error(e))?;
        // A quoted string followed by `.` is the first key of a path; alone it is a literal.
        if !cursor.text[end..].starts_with('.') {
            cursor.pos = end;
            return Ok(Operand::Literal(crate::value::Value::from(text)));
        }
    } else {
        let run_length = rest.find(|c: char| c.is_whitespace() || c == '|' || c == '?');
        let run = &rest[..run_length.unwrap_or(rest.len())];
        let literal = match run {
            "true" => Some(crate::value::Value::Bool(true)),
            "false" => Some(crate::value::Value::Bool(false)),
            _ => run
                .parse::<serde_json::Number>()
                .ok()
                .map(crate::value::Value::Number),
        };
        if let Some(literal) = literal {
            cursor.pos += run.len();
            return Ok(Operand::Literal(literal));
        }
    }
    let (path, end) =
        path::parse_prefix(cursor.text, cursor.pos).map_err(|e| cursor.path_error(e))?;
    cursor.pos = end;
    Ok(resolve(path, paths))
}

/// A path whose unquoted first key names an enclosing loop's item addresses that item (the
/// innermost loop wins), and any other path the event, each through its slot.
fn resolve(path: Path, paths: &mut Paths) -> Operand {
    let depth = match path.first_key() {
        Some((key, false)) => paths.items.iter().rposition(|(name, _)| name == key),
        _ => None,
    };
    match depth {
        Some(depth) => Operand::Item {
            depth,
            slot: paths.items[depth].1.add(&path.without_first(1)),
        },
        None => Operand::Event(paths.event.add(&path)),
    }
}

/// Parses the text of one placeholder (between the `##`).
fn parse_expr(text: &str, paths: &mut Paths) -> Result<Expr, String> {
    let mut cursor = Cursor { text, pos: 0 };
    let operands = parse_operands(&mut cursor, paths)?;
    let mut filters = Vec::new();
    let mut required = false;
    while cursor.eat("|") {
        cursor.skip_whitespace();
        let name = cursor.word();
        if name.is_empty() {
            return Err(format!(
                "expected a filter name after \"|\", {}",
                cursor.unexpected()
            ));
        }
        cursor.skip_whitespace();
        let arguments = if cursor.eat("(") {
            Some(parse_keys(&mut cursor)?)
        } else {
            None
        };
        match FilterName::parse(name, arguments)? {
            FilterName::Required => required = true,
            FilterName::Transform(filter) => {
                let label = text[..cursor.pos].trim().into();
                filters.push(AppliedFilter { filter, label });
            }
        }
        cursor.skip_whitespace();
    }
    if !cursor.at_end() {
        if cursor.rest().starts_with("??") {
            return Err("\"??\" after a filter: filters apply to the whole fallback chain, so they come last".to_owned());
        }
        return Err(cursor.unexpected());
    }
    Ok(Expr {
        operands,
        filters,
        required,
        label: text.trim().into(),
    })
}

/// Parses the keys of `without(KEY, …)` after its `(`, through the `)`: identifiers or quoted
/// keys, separated by commas, at least one.
fn parse_keys(cursor: &mut Cursor<'_>) -> Result<Vec<Box<str>>, String> {
    let mut keys = Vec::new();
    loop {
        cursor.skip_whitespace();
        let key: Box<str> = if cursor.rest().starts_with('"') {
            let (text, end) =
                path::parse_quoted(cursor.text, cursor.pos).map_err(|e| cursor.path_error(e))?;
            cursor.pos = end;
            text.into()
        } else {
            cursor.word().into()
        };
        if key.is_empty() {
            return Err(format!(
                "expected a key in without(…), {}",
                cursor.unexpected()
            ));
        }
        keys.push(key);
        cursor.skip_whitespace();
        if cursor.eat(")") {
            return Ok(keys);
        }
        if !cursor.eat(",") {
            return Err(format!(
                "expected \",\" or \")\" in without(…), {}",
                cursor.unexpected()
            ));
        }
    }
}

/// Parses an each key, `##each SOURCE as NAME##`, into its source operands and item name.
fn parse_each_key(key: &str, paths: &mut Paths) -> Result<(Vec<Operand>, String), String> {
    const SHAPE: &str = "expected \"##each PATH as NAME##\"";
    let inner = key
        .strip_prefix("##each")
        .and_then(|rest| rest.strip_suffix("##"))
        .ok_or_else(|| format!("{SHAPE}: missing the closing \"##\""))?;
    let mut cursor = Cursor {
        text: inner,
        pos: 0,
    };
    let source = parse_operands(&mut cursor, paths).map_err(|m| format!("{SHAPE}: {m}"))?;
    cursor.skip_whitespace();
    if cursor.rest().starts_with('|') {
        return Err(
            "filters are not allowed on an each source (it must be the event's own value)"
                .to_owned(),
        );
    }
    if cursor.at_end() {
        return Err(format!("{SHAPE}: missing \"as NAME\""));
    }
    let followed_by_space =
        |c: &Cursor<'_>| c.at_end() || c.rest().starts_with(char::is_whitespace);
    if cursor.word() != "as" || !followed_by_space(&cursor) {
        return Err(format!(
            "{SHAPE}: expected \"as\" at character {}",
            cursor.position()
        ));
    }
    cursor.skip_whitespace();
    let name_start = cursor.pos;
    let name = cursor.word();
    let valid = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    cursor.skip_whitespace();
    if !valid || !cursor.at_end() {
        let written = inner[name_start..].trim();
        return Err(format!(
            "the item name must be an identifier ([A-Za-z_][A-Za-z0-9_]*), found {written:?}"
        ));
    }
    Ok((source, name.to_owned()))
}
