//! A parser for the JSON that events almost always are, straight into the borrowed tree
//! ([`crate::value::Value`]), without serde's visitor in between; serde_json parses the rest.
//!
//! Parsing was the largest single cost of an event on the send path (about a fifth of its
//! instructions), most of it in serde's generic calls around each key and value. This parser
//! handles objects, arrays, literals, strings without escapes and plain non-negative integers
//! itself. A string with an escape and any other number are handed to serde_json one at a
//! time (so their decoding is serde_json's own), and anything unexpected (a syntax error,
//! nesting deeper than [`MAX_DEPTH`]) makes it give up: the caller then parses the whole text
//! with serde_json, which builds the same tree or reports the error with its line and column.
//!
//! Invariant: when [`parse`] returns a tree, serde_json's parse of the same text returns an equal
//! one (the fuzz target `event_line` and the tests below check it).

use std::borrow::Cow;

use crate::value::{self, INDEX_FROM, Map, Value as Tree};

/// Nesting deeper than this is left to serde_json, which has its own limit (128) and error.
const MAX_DEPTH: usize = 100;

/// The tree of `text`, or `None` when serde_json has to say what it is.
pub(crate) fn parse(text: &str) -> Option<Tree<'_>> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
        // Room for the members of an event's usual objects at once, as they nest.
        members: Vec::with_capacity(32),
        items: Vec::new(),
    };
    let tree = parser.value(0)?;
    parser.skip_space();
    (parser.at == parser.bytes.len()).then_some(tree)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// The members of the objects open, innermost last. An object takes its own off the end when
    /// it closes, so each is allocated once, at its size.
    members: Vec<(Cow<'a, str>, Tree<'a>)>,
    /// The same for the elements of the arrays open.
    items: Vec<Tree<'a>>,
}

impl<'a> Parser<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte that is not white space, consumed.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_space();
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn value(&mut self, depth: usize) -> Option<Tree<'a>> {
        match self.next_token()? {
            b'"' => self.string().map(Tree::String),
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b't' => self.literal(b"rue", Tree::Bool(true)),
            b'f' => self.literal(b"alse", Tree::Bool(false)),
            b'n' => self.literal(b"ull", Tree::Null),
            b'0'..=b'9' | b'-' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, rest: &[u8], value: Tree<'a>) -> Option<Tree<'a>> {
        let end = self.at + rest.len();
        (self.bytes.get(self.at..end)? == rest).then(|| {
            self.at = end;
            value
        })
    }

    /// A string whose opening quote was just read.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        let mut at = start;
        loop {
            // Eight bytes at a time while none of them is a quote, a backslash or a control
            // character; then straight to the first that is.
            if at + 8 <= self.bytes.len() {
                let found = value::escapes_in_word(value::word(self.bytes, at));
                if found == 0 {
                    at += 8;
                    continue;
                }
                at += found.trailing_zeros() as usize / 8;
            }
            match *self.bytes.get(at)? {
                b'"' => {
                    self.at = at + 1;
                    // Both ends are ASCII quotes, so both are character boundaries.
                    return Some(Cow::Borrowed(&self.text[start..at]));
                }
                b'\\' => return self.escaped_string(start),
                0..=0x1f => return None,
                // Only in the last 7 bytes of the text.
                _ => at += 1,
            }
        }
    }

    /// A string with an escape, from just after its opening quote: decoded by serde_json.
    fn escaped_string(&mut self, start: usize) -> Option<Cow<'a, str>> {
        let mut at = start;
        loop {
            match *self.bytes.get(at)? {
                b'"' => break,
                b'\\' => at += 2,
                0..=0x1f => return None,
                _ => at += 1,
            }
        }
        let decoded = serde_json::from_str::<String>(&self.text[start - 1..=at]).ok()?;
        self.at = at + 1;
        Some(Cow::Owned(decoded))
    }

    /// A number whose first byte was just read. Integers of up to 19 digits without a sign are
    /// read here (they always fit 64 bits); serde_json reads any other number, so that floats,
    /// negative zero and numbers out of range are what it makes of them.
    fn number(&mut self) -> Option<Tree<'a>> {
        let start = self.at - 1;
        let mut at = start;
        while let Some(b'0'..=b'9') = self.bytes.get(at) {
            at += 1;
        }
        let digits = &self.bytes[start..at];
        let plain = (1..=19).contains(&digits.len())
            && (digits[0] != b'0' || digits.len() == 1)
            && !matches!(self.bytes.get(at), Some(b'.' | b'e' | b'E' | b'-' | b'+'));
        if plain {
            let n = digits
                .iter()
                .fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'));
            self.at = at;
            return Some(Tree::Number(n.into()));
        }
        // After a number, JSON allows only white space, `,`, `]` and `}`: none of these bytes.
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.bytes.get(at) {
            at += 1;
        }
        let value = crate::event::serde_tree(&self.text[start..at]).ok()?;
        self.at = at;
        Some(value)
    }

    /// After an opening bracket: `None` when nested deeper than [`MAX_DEPTH`], else whether the
    /// container is empty (its `close` is consumed then).
    fn opens_empty(&mut self, depth: usize, close: u8) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        let empty = self.bytes.get(self.at) == Some(&close);
        self.at += usize::from(empty);
        Some(empty)
    }

    /// An object whose `{` was just read.
    fn object(&mut self, depth: usize) -> Option<Tree<'a>> {
        if self.opens_empty(depth, b'}')? {
            return Some(Tree::Object(Map::new()));
        }
        let start = self.members.len();
        loop {
            if self.next_token()? != b'"' {
                return None;
            }
            let key = self.string()?;
            if self.next_token()? != b':' {
                return None;
            }
            let value = self.value(depth)?;
            self.members.push((key, value));
            match self.next_token()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        let members = take_from(&mut self.members, start);
        if members.len() < INDEX_FROM && unique_keys(&members) {
            return Some(Tree::Object(Map::from_members(members)));
        }
        // A key given twice keeps its first place and its last value, and a large object is
        // indexed, exactly as inserting member by member does.
        let mut map = Map::with_capacity(members.len());
        for (key, value) in members {
            map.insert(key, value);
        }
        Some(Tree::Object(map))
    }

    /// An array whose `[` was just read.
    fn array(&mut self, depth: usize) -> Option<Tree<'a>> {
        if self.opens_empty(depth, b']')? {
            return Some(Tree::Array(Vec::new()));
        }
        let start = self.items.len();
        loop {
            let item = self.value(depth)?;
            self.items.push(item);
            match self.next_token()? {
                b',' => {}
                b']' => break,
                _ => return None,
            }
        }
        Some(Tree::Array(take_from(&mut self.items, start)))
    }
}

/// The elements of `stack` from `start` on, taken off it into a vector of their size, so that a
/// tree holds no more memory than its members need, however long it is kept.
fn take_from<T>(stack: &mut Vec<T>, start: usize) -> Vec<T> {
    if start > 0 {
        return stack.split_off(start);
    }
    // `split_off(0)` would hand over the whole buffer, room and all.
    let mut taken = Vec::with_capacity(stack.len());
    taken.append(stack);
    taken
}

/// Whether no key repeats. Keys are first sorted into 64 buckets by length and first and last
/// byte, and compared only within a bucket, so that an object of distinct keys costs one pass.
fn unique_keys(members: &[(Cow<'_, str>, Tree<'_>)]) -> bool {
    let bucket = |key: &str| {
        let bytes = key.as_bytes();
        let (first, last) = (bytes.first().copied(), bytes.last().copied());
        (bytes.len() as u32 + 3 * u32::from(first.unwrap_or(0)) + 5 * u32::from(last.unwrap_or(0)))
            % 64
    };
    let mut seen = 0u64;
    for (i, (key, _)) in members.iter().enumerate() {
        let bit = 1u64 << bucket(key);
        if seen & bit != 0 && members[..i].iter().any(|(other, _)| other == key) {
            return false;
        }
        seen |= bit;
    }
    true
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::event::serde_tree;

    /// `text` through both parsers: the quick one must give serde_json's tree or give up.
    fn check(text: &str) -> Option<Tree<'_>> {
        let quick = parse(text);
        if let Some(tree) = &quick {
            assert_eq!(
                Ok::<_, String>(tree),
                serde_tree(text).as_ref().map_err(ToString::to_string),
                "{text:?}"
            );
        }
        quick
    }

    #[test]
    fn events_of_the_usual_shape_are_read_quickly_and_as_serde_json_reads_them() {
        for text in [
            r#"{"id":"e0","event_name":"add_to_cart","created_at":1796632282712,"user_id":"u951","user":{"email":"user951@example.com","name":"User 951","email_optin":"false"},"properties":{"currency":"EUR","value":12.0,"product_id":"SKU-135"}}"#,
            " { \"a\" :\t[ 1 , -2 , 3.5e2 , -0 , 0 , true , false , null , [ ] , { } ] }\r\n",
            r#"{"escaped":"a\"b\\c\u00e9\ud83d\ude00\n","long text without escapes at all":"ğüşıöç 中文"}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"max":18446744073709551615,"over":18446744073709551616,"nineteen":9999999999999999999}"#,
            r#"{"small":-1e-400,"neg":-9223372036854775808,"exact":0.1}"#,
            "[\"\u{7f}\"]",
            "12",
            "\"text\"",
        ] {
            assert!(check(text).is_some(), "{text:?} was left to serde_json");
        }
    }

    #[test]
    fn what_is_not_json_is_left_to_serde_json() {
        for text in [
            "",
            " ",
            "{",
            "{\"a\":1,}",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1 \"b\":2}",
            "{1:2}",
            "[01]",
            "[1.]",
            "[-]",
            "[1-2]",
            "[1e400]",
            "[+1]",
            "[.5]",
            "[tru]",
            "[truex]",
            "[nul]",
            "\"unterminated",
            "\"a\u{1}b\"",
            "\"a\\\u{1}b\"",
            "\"\\ud800\"",
            "\"\\x\"",
            "{} {}",
            "{}x",
            "[1]]",
        ] {
            assert!(check(text).is_none(), "{text:?} was read quickly");
            assert!(serde_tree(text).is_err(), "{text:?} is JSON");
        }
    }

    #[test]
    fn deep_nesting_is_left_to_serde_json() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(check(&nested(MAX_DEPTH)).is_some());
        assert!(check(&nested(MAX_DEPTH + 1)).is_none());
        assert!(serde_tree(&nested(MAX_DEPTH + 1)).is_ok());
        assert!(check(&nested(100_000)).is_none());
    }

    #[test]
    fn large_objects_are_indexed_as_when_built_member_by_member() {
        for size in [31, 32, 33, 100] {
            let text = format!(
                "{{{}}}",
                (0..size)
                    .map(|i| format!("\"k{i}\":{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let tree = check(&text).expect("read quickly");
            let map = tree.as_object().unwrap();
            assert_eq!(
                map.get(&format!("k{}", size - 1)),
                Some(&Tree::Number((size - 1).into()))
            );
            assert_eq!(map.get("absent"), None);
        }
    }

    /// Keys that share a bucket (same length, first and last byte) but differ, and ones that
    /// repeat, wherever they are.
    #[test]
    fn repeated_keys_are_found_in_every_bucket() {
        for text in [
            r#"{"ab":1,"aab":2,"axb":3}"#,
            r#"{"axb":1,"ayb":2,"axb":3}"#,
            r#"{"":1,"":2}"#,
            r#"{"a":1,"b":2,"c":3,"d":4,"a":5}"#,
        ] {
            let tree = check(text).expect("read quickly");
            let keys: Vec<_> = tree.as_object().unwrap().keys().collect();
            let mut unique = keys.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(keys.len(), unique.len(), "{text}");
        }
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            "[a-c\"\\\\\u{1}\u{e9} ]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::vec(("[a-c]{0,2}", inner), 0..6).prop_map(|members| {
                    serde_json::Value::Object(members.into_iter().collect())
                }),
            ]
        })
    }

    proptest! {
        /// Any JSON, pretty or compact, with one byte changed or not: the same answer as
        /// serde_json's whenever the quick parser answers, and an answer for all JSON it wrote.
        #[test]
        fn any_text_reads_as_serde_json_reads_it(
            value in json(),
            pretty in any::<bool>(),
            edit in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
        ) {
            let mut text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            if edit.is_none() {
                prop_assert!(check(&text).is_some(), "{text:?} was left to serde_json");
            }
            if let Some((at, byte)) = edit {
                let mut bytes = text.into_bytes();
                if !bytes.is_empty() {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                let Ok(edited) = String::from_utf8(bytes) else { return Ok(()) };
                text = edited;
            }
            check(&text);
        }
    }
}
