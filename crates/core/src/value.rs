//! `Value`: a JSON value that borrows its text from the template and the event it was rendered
//! from, for destinations whose rules rework every rendered object (Insider's).
//!
//! Rendering into a `serde_json::Value` copies every key and string and hashes every key into an
//! index map, on every event; the rules then look members up by hash again. The objects these
//! rules work on are small (a user object has at most five members, an event three, attributes a
//! few dozen), so here an object is a vector of members in order, found by comparing keys, and
//! keys and strings stay borrowed until a rule rewrites them. It behaves as `serde_json`'s
//! `preserve_order` map does where the rules can tell (insertion keeps an existing key's place,
//! `shift_remove` keeps the order of the rest, equality ignores order) and serializes to exactly
//! the bytes `serde_json` writes for the same value.

use std::borrow::Cow;
use std::fmt;
use std::hash::BuildHasher;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;

/// A JSON value whose keys and strings may be borrowed for `'a`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Map<'a>),
}

/// A JSON object: members in order, keys unique.
#[derive(Debug, Clone, Default)]
pub struct Map<'a> {
    members: Vec<(Cow<'a, str>, Value<'a>)>,
    /// Positions by key, kept for objects larger than [`INDEX_FROM`] once a member is inserted:
    /// building a large object (an event's thousands of custom properties) stays linear.
    index: Option<Box<Index>>,
}

/// Objects up to this many members are searched by comparing keys.
pub(crate) const INDEX_FROM: usize = 32;

/// Member positions by key hash. The hash is keyed at random (SipHash), so an event cannot
/// choose keys that collide.
#[derive(Clone)]
struct Index {
    positions: hashbrown::HashTable<usize>,
    hasher: std::hash::RandomState,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Index")
    }
}

impl Index {
    fn of(members: &[(Cow<'_, str>, Value<'_>)]) -> Index {
        let mut index = Index {
            positions: hashbrown::HashTable::with_capacity(members.len()),
            hasher: std::hash::RandomState::new(),
        };
        for i in 0..members.len() {
            index.add(members, i);
        }
        index
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, members: &[(Cow<'_, str>, Value<'_>)], key: &str) -> Option<usize> {
        self.positions
            .find(self.hash(key), |&i| members[i].0 == key)
            .copied()
    }

    /// Indexes the member at `position`, whose key is in no other member.
    fn add(&mut self, members: &[(Cow<'_, str>, Value<'_>)], position: usize) {
        let hash = self.hash(&members[position].0);
        let Index { positions, hasher } = self;
        positions.insert_unique(hash, position, |&i| hasher.hash_one(&*members[i].0));
    }

    /// Forgets the member at `position`, which has just been removed, and moves the later ones
    /// one place forward.
    fn remove(&mut self, key: &str, position: usize) {
        if let Ok(entry) = self
            .positions
            .find_entry(self.hash(key), |&i| i == position)
        {
            entry.remove();
        }
        for i in self.positions.iter_mut() {
            if *i > position {
                *i -= 1;
            }
        }
    }
}

impl<'a> Value<'a> {
    /// The same value, borrowing every key and string of `value`.
    pub fn borrowed(value: &'a serde_json::Value) -> Value<'a> {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(Cow::Borrowed(s)),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Value::borrowed).collect())
            }
            serde_json::Value::Object(members) => Value::Object(Map::from_members(
                members
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Value::borrowed(v)))
                    .collect(),
            )),
        }
    }

    /// The same value as a `serde_json::Value`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.clone().into_owned()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(map.to_json()),
        }
    }

    /// The same value, owning everything it holds.
    pub fn to_owned_static(&self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Number(n) => Value::Number(n.clone()),
            Value::String(s) => Value::String(Cow::Owned(s.to_string())),
            Value::Array(items) => Value::Array(items.iter().map(Value::to_owned_static).collect()),
            Value::Object(map) => Value::Object(Map::from_members(
                map.members
                    .iter()
                    .map(|(k, v)| (Cow::Owned(k.to_string()), v.to_owned_static()))
                    .collect(),
            )),
        }
    }

    /// The same value, borrowing every key and string from this one (no text is copied).
    ///
    /// Inlined for the scalars most values are, which are then built where they go.
    #[inline(always)]
    pub fn reborrow(&self) -> Value<'_> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Number(n) => Value::Number(n.clone()),
            Value::String(s) => Value::String(Cow::Borrowed(s)),
            _ => self.reborrow_container(),
        }
    }

    #[inline(never)]
    fn reborrow_container(&self) -> Value<'_> {
        match self {
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => self.reborrow(),
            Value::Array(items) => Value::Array(items.iter().map(Value::reborrow).collect()),
            Value::Object(map) => Value::Object(Map::from_members(
                map.members
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(&**k), v.reborrow()))
                    .collect(),
            )),
        }
    }

    /// The same value as a `serde_json::Value`, moving what it owns.
    pub fn into_json(self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Number(n) => serde_json::Value::Number(n),
            Value::String(s) => serde_json::Value::String(s.into_owned()),
            Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(Value::into_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_json()))
                    .collect(),
            ),
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value<'a>>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map<'a>> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Map<'a>> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Value::Number(_))
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }
}

impl From<serde_json::Value> for Value<'static> {
    fn from(value: serde_json::Value) -> Value<'static> {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(Cow::Owned(s)),
            serde_json::Value::Array(items) => {
                Value::Array(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(members) => Value::Object(Map::from_members(
                members
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Value::from(v)))
                    .collect(),
            )),
        }
    }
}

impl From<String> for Value<'_> {
    fn from(text: String) -> Self {
        Value::String(Cow::Owned(text))
    }
}

impl<'a> Map<'a> {
    pub fn new() -> Map<'a> {
        Map::default()
    }

    pub fn with_capacity(members: usize) -> Map<'a> {
        Map::from_members(Vec::with_capacity(members))
    }

    /// Members whose keys are known to be unique (those of another object).
    pub(crate) fn from_members(members: Vec<(Cow<'a, str>, Value<'a>)>) -> Map<'a> {
        Map {
            members,
            index: None,
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Inlined: the rules and the templates look keys up by the hundred per event.
    #[inline]
    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.find(&self.members, key),
            None => self.members.iter().position(|(k, _)| same_key(k, key)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.position(key).map(|i| &self.members[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<'a>> {
        self.position(key).map(|i| &mut self.members[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key`; an existing member keeps its place and its old value is returned.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Value<'a>) -> Option<Value<'a>> {
        let key = key.into();
        if self.index.is_none() && self.members.len() >= INDEX_FROM {
            self.index = Some(Box::new(Index::of(&self.members)));
        }
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.members[i].1, value)),
            None => {
                self.push(key, value);
                None
            }
        }
    }

    /// Appends a member whose key is not there yet.
    fn push(&mut self, key: Cow<'a, str>, value: Value<'a>) {
        self.members.push((key, value));
        if let Some(index) = &mut self.index {
            index.add(&self.members, self.members.len() - 1);
        }
    }

    /// Appends a member whose key the caller knows is not there yet (a template's own keys).
    pub(crate) fn push_new(&mut self, key: &'a str, value: Value<'a>) {
        debug_assert!(!self.contains_key(key), "{key} is already a member");
        self.push(Cow::Borrowed(key), value);
    }

    /// Removes `key`, keeping the order of the other members.
    pub fn shift_remove(&mut self, key: &str) -> Option<Value<'a>> {
        let i = self.position(key)?;
        if let Some(index) = &mut self.index {
            index.remove(key, i);
        }
        Some(self.members.remove(i).1)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Value<'a>) -> bool) {
        let len = self.members.len();
        self.members.retain_mut(|(k, v)| keep(k, v));
        if self.members.len() != len {
            // Positions moved; the next insertion indexes again if the object is still large.
            self.index = None;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.members.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Value<'a>)> {
        self.members.iter_mut().map(|(k, v)| (&**k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(k, _)| k.as_ref())
    }

    pub fn values(&self) -> impl Iterator<Item = &Value<'a>> {
        self.members.iter().map(|(_, v)| v)
    }

    /// The same object as a `serde_json` map.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.members
            .iter()
            .map(|(k, v)| (k.clone().into_owned(), v.to_json()))
            .collect()
    }
}

impl<'a> IntoIterator for Map<'a> {
    type Item = (Cow<'a, str>, Value<'a>);
    type IntoIter = std::vec::IntoIter<(Cow<'a, str>, Value<'a>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.into_iter()
    }
}

/// As for `serde_json`'s maps, the order of members does not make two objects different.
impl PartialEq for Map<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .members
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|o| o == v))
    }
}

impl Value<'_> {
    /// Appends compact JSON: the bytes `serde_json::to_writer` writes for this value, written
    /// directly rather than through a `Serializer` (every user object of every event is written).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Number(n) => {
                serde_json::to_writer(&mut *out, n).expect("writing to a Vec cannot fail")
            }
            Value::String(s) => write_str(s, out),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Value::Object(map) => map.write_json(out),
        }
    }
}

impl Map<'_> {
    /// Appends compact JSON (see [`Value::write_json`]).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(key, out);
            out.push(b':');
            value.write_json(out);
        }
        out.push(b'}');
    }
}

/// A JSON string as `serde_json` writes it: `"` and `\` escaped with a backslash, the control
/// characters with a short escape where JSON has one and `\u00XX` otherwise, everything else
/// (DEL and all of Unicode included) as it is.
fn write_str(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    if !needs_escaping(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    let mut unicode = *b"\\u0000";
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                unicode[4] = HEX[usize::from(byte >> 4)];
                unicode[5] = HEX[usize::from(byte & 0xf)];
                &unicode
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any byte of `bytes` is escaped in JSON. Most text needs none, and most of it is short
/// (keys, names, codes), so the check reads whole words rather than bytes: 16 bytes at a time
/// without a branch per byte (the compiler makes vector instructions of it), and what is left
/// as one or two overlapping words (a byte looked at twice changes nothing).
fn needs_escaping(bytes: &[u8]) -> bool {
    let escaped = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let sixteen = |chunk: &[u8]| chunk.iter().fold(false, |any, &b| any | escaped(b));
    let len = bytes.len();
    match len {
        16.. => {
            let mut chunks = bytes.chunks_exact(16);
            chunks.any(sixteen) || (!chunks.remainder().is_empty() && sixteen(&bytes[len - 16..]))
        }
        8.. => escaped_in_word(word(bytes, 0)) || escaped_in_word(word(bytes, len - 8)),
        4.. => escaped_in_word(half_word(bytes, 0)) || escaped_in_word(half_word(bytes, len - 4)),
        _ => bytes.iter().any(|&b| escaped(b)),
    }
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The 8 bytes of `bytes` from `at`, as one word whose lowest byte is the first.
#[inline]
pub(crate) fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The 4 bytes of `bytes` from `at`, as a word whose other 4 bytes are spaces (never escaped).
fn half_word(bytes: &[u8], at: usize) -> u64 {
    let mut word = [b' '; 8];
    word[..4].copy_from_slice(&bytes[at..at + 4]);
    u64::from_le_bytes(word)
}

/// Whether any byte of the word is below 0x20, `"` or `\`.
fn escaped_in_word(word: u64) -> bool {
    escapes_in_word(word) != 0
}

/// The high bit of the bytes of the word that are below 0x20, `"` or `\`. Subtracting 1 (or
/// 0x20) from every byte borrows into the high bit exactly of the bytes that were 0 (below 0x20)
/// — and of bytes above such a byte, but only when there is one: the lowest bit set marks the
/// first such byte exactly, and the word has one if and only if a bit is set.
#[inline]
pub(crate) fn escapes_in_word(word: u64) -> u64 {
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGHS;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    control | quote | backslash
}

/// Key equality for the short keys objects have, compared in line rather than with a call to
/// `memcmp`: most comparisons are of keys of other lengths; keys of the same length are compared
/// as one or two overlapping words, and only keys longer than 16 bytes byte by byte.
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let len = a.len();
    if len != b.len() {
        return false;
    }
    match len {
        17.. => a == b,
        8.. => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        4.. => half_word(a, 0) == half_word(b, 0) && half_word(a, len - 4) == half_word(b, len - 4),
        _ => a.iter().zip(b).all(|(x, y)| x == y),
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => n.serialize(serializer),
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(map) => map.serialize(serializer),
        }
    }
}

impl Serialize for Map<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in &self.members {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

/// Compact JSON, as `serde_json::Value` displays.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::new();
        self.write_json(&mut text);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn building_a_large_object_stays_linear() {
        // 200,000 distinct keys: searched one by one, inserting them all would take minutes.
        let mut map = Map::new();
        for i in 0..200_000 {
            map.insert(format!("key {i}"), Value::Null);
        }
        assert_eq!(map.len(), 200_000);
        assert!(map.contains_key("key 199999") && !map.contains_key("key 200000"));
    }

    /// Every length from 0 to 40, with each byte that matters at each position, against the
    /// byte-by-byte definitions.
    #[test]
    fn word_checks_answer_as_byte_checks() {
        let escaped = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
        let special = [
            0x00, 0x01, 0x1f, 0x20, 0x21, b'"', b'\\', b'#', b'[', b']', 0x7f, 0x80, 0xc3, 0xff,
        ];
        for len in 0..=40 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(!needs_escaping(&base), "{len}");
            for at in 0..len {
                for &byte in &special {
                    let mut bytes = base.clone();
                    bytes[at] = byte;
                    assert_eq!(
                        needs_escaping(&bytes),
                        bytes.iter().any(escaped),
                        "byte {byte:#x} at {at} of {len}"
                    );
                    // `same_key` on text: the special bytes as the characters they start.
                    let key = String::from_utf8_lossy(&bytes).into_owned();
                    let other = String::from_utf8_lossy(&base).into_owned();
                    assert_eq!(same_key(&key, &other), key == other, "{key:?} {other:?}");
                    assert!(same_key(&key, &key.clone()));
                }
            }
        }
        assert!(!same_key("email", "emails") && !same_key("", "a") && same_key("", ""));
    }

    /// Any two bytes that matter at any two places of a word: the lowest bit found marks the
    /// first byte that needs escaping.
    #[test]
    fn the_lowest_escape_found_is_the_first() {
        let escaped = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
        let special = [
            0x00, 0x01, 0x1f, 0x20, 0x21, b'"', b'\\', b'#', b']', 0x7f, 0x80, 0xc3, 0xff, b'a',
        ];
        for (i, j) in (0..8).flat_map(|i| (i..8).map(move |j| (i, j))) {
            for (&x, &y) in special
                .iter()
                .flat_map(|x| special.iter().map(move |y| (x, y)))
            {
                let mut bytes = *b"abcdefgh";
                bytes[i] = x;
                bytes[j] = y;
                let found = escapes_in_word(word(&bytes, 0));
                let first = (found != 0).then(|| found.trailing_zeros() as usize / 8);
                assert_eq!(first, bytes.iter().position(escaped), "{bytes:?}");
            }
        }
    }

    #[test]
    fn serializes_as_serde_json_does() {
        let json = json!({"a": "x\"\u{1}é\n", "n": [1, -2, 2.5, 1e300, 18446744073709551615u64],
            "o": {"t": true, "f": false, "z": null}, "e": {}, "l": []});
        let value = Value::borrowed(&json);
        assert_eq!(serde_json::to_string(&value).unwrap(), json.to_string());
        let mut written = Vec::new();
        value.write_json(&mut written);
        assert_eq!(String::from_utf8(written).unwrap(), json.to_string());
        assert_eq!(value.to_string(), json.to_string());
        assert_eq!(value.to_json(), json);
        assert_eq!(Value::from(json.clone()), value);
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let texts = (0u32..0x300)
            .filter_map(char::from_u32)
            .chain(['\u{2028}', '\u{fffd}', '😀'])
            .map(|c| format!("a{c}b{c}"))
            .chain(["".to_owned(), "\\\"\\".to_owned()]);
        for text in texts {
            let mut written = Vec::new();
            Value::String(Cow::Borrowed(&text)).write_json(&mut written);
            assert_eq!(written, serde_json::to_vec(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn objects_behave_as_ordered_serde_json_maps() {
        let mut ours = Map::new();
        let mut theirs = serde_json::Map::new();
        for (key, n) in [("b", 1), ("a", 2), ("c", 3), ("a", 4)] {
            ours.insert(key, Value::Number(n.into()));
            theirs.insert(key.into(), json!(n));
        }
        ours.shift_remove("b");
        theirs.shift_remove("b");
        ours.insert("b", Value::Null);
        theirs.insert("b".into(), json!(null));
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            json!(theirs).to_string()
        );
        // Large objects are indexed; they behave as small ones do.
        let mut ours = Map::new();
        let mut theirs = serde_json::Map::new();
        let keys = (0..100).map(|i| format!("k{}", (i * 7) % 100));
        for (i, key) in keys.chain(["k1".into(), "k3".into()]).enumerate() {
            ours.insert(key.clone(), Value::Number(i.into()));
            theirs.insert(key, json!(i));
        }
        for key in ["k2", "k0", "absent"] {
            let removed = ours.shift_remove(key).map(|v| v.to_json());
            assert_eq!(removed, theirs.shift_remove(key));
        }
        ours.insert("k2", Value::Null);
        theirs.insert("k2".into(), json!(null));
        ours.retain(|k, _| k != "k5");
        theirs.retain(|k, _| k != "k5");
        ours.insert("k5", Value::Bool(true));
        theirs.insert("k5".into(), json!(true));
        for key in ["k1", "k2", "k3", "k5", "k0", "k99", "k100"] {
            assert_eq!(ours.get(key).map(Value::to_json).as_ref(), theirs.get(key));
        }
        assert_eq!(ours.to_json(), theirs);
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            json!(theirs).to_string()
        );
        let mut ours = Map::new();
        for (key, n) in [("b", 1), ("a", 2), ("c", 3)] {
            ours.insert(key, Value::Number(n.into()));
        }
        let mut reordered = Map::new();
        for (k, v) in ours.iter().collect::<Vec<_>>().into_iter().rev() {
            reordered.insert(k.to_owned(), v.clone());
        }
        assert_eq!(reordered, ours, "order does not count in equality");
        reordered.insert("a", Value::Bool(true));
        assert_ne!(reordered, ours);
    }
}
