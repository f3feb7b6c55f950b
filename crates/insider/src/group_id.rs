//! A stable `event_group_id` for events that need one (a purchase, a cart view) but carry neither
//! an order or transaction id nor an event `id`: derived from the user, the time and the event's
//! content, so that a re-run or a retry of the same event gives the same id — and Insider, which
//! stores identical events once, stores it once — while different purchases get different ids.
//!
//! The hash is 128-bit FNV-1a over a canonical form of those parts (object keys sorted, so the
//! order keys were written in does not matter). It is written here, not taken from the standard
//! library, because its value must never change between runs, processes, builds or Rust versions.

use hardal_core::value::Value;
use hardal_core::{Event, convert};

const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// Which parts of the event make up the id; the prefix makes derived ids recognisable.
pub const PREFIX: &str = "hardal-";

/// The derived id of `event`: `hardal-` and 32 hexadecimal digits.
pub fn derive(event: &Event) -> String {
    let mut hash = Fnv(OFFSET);
    // A version, so that a future change of the recipe cannot collide with today's ids.
    hash.text("hardal event_group_id v1");
    hash.text(event.user_key().as_deref().unwrap_or(""));
    let created_at = event.field("created_at");
    let timestamp = created_at.and_then(convert::to_timestamp);
    match (&timestamp, created_at) {
        (Some(utc), _) => hash.text(utc),
        (None, Some(raw)) => hash.value(raw),
        (None, None) => hash.text(""),
    }
    hash.text(event.event_name().unwrap_or(""));
    match event.field("properties") {
        Some(properties) => hash.value(properties),
        None => hash.text(""),
    }
    format!("{PREFIX}{:032x}", hash.0)
}

struct Fnv(u128);

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u128::from(*byte);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    /// A length-prefixed string, so that `("ab", "c")` and `("a", "bc")` differ.
    fn text(&mut self, text: &str) {
        self.bytes(&(text.len() as u64).to_le_bytes());
        self.bytes(text.as_bytes());
    }

    /// A JSON value in canonical form: a type tag, then the content; object members by key.
    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.bytes(b"n"),
            Value::Bool(b) => self.bytes(if *b { b"t" } else { b"f" }),
            Value::Number(n) => {
                self.bytes(b"#");
                self.text(&n.to_string());
            }
            Value::String(s) => {
                self.bytes(b"s");
                self.text(s);
            }
            Value::Array(items) => {
                self.bytes(b"[");
                self.bytes(&(items.len() as u64).to_le_bytes());
                items.iter().for_each(|item| self.value(item));
            }
            Value::Object(members) => {
                let mut sorted: Vec<(&str, &Value)> = members.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                self.bytes(b"{");
                self.bytes(&(sorted.len() as u64).to_le_bytes());
                for (key, member) in sorted {
                    self.text(key);
                    self.value(member);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(value: serde_json::Value) -> String {
        derive(&Event::from_value(value).unwrap())
    }

    #[test]
    fn the_same_purchase_gets_the_same_id_and_others_differ() {
        let purchase = json!({"event_name": "purchase", "created_at": "2024-12-19T12:45:39+03:00", "user_id": "u1",
                              "session_id": "s1", "properties": {"currency": "TRY", "items": [{"item_id": "A", "price": 5}]}});
        let base = id(purchase.clone());
        // A fixed value: the recipe must never change between runs, builds or versions.
        assert_eq!(base, "hardal-023129cb2f4a7db68bf03be8c8001283");
        // Key order, the timestamp's form and the session do not make it another purchase.
        let same = json!({"user_id": "u1", "session_id": "s2", "created_at": 1734601539000i64, "event_name": "purchase",
                          "properties": {"items": [{"price": 5, "item_id": "A"}], "currency": "TRY"}});
        assert_eq!(id(same), base);
        for other in [
            json!({"event_name": "purchase", "created_at": "2024-12-19T12:45:39+03:00", "user_id": "u2",
                   "properties": {"currency": "TRY", "items": [{"item_id": "A", "price": 5}]}}),
            json!({"event_name": "purchase", "created_at": "2024-12-19T12:45:40+03:00", "user_id": "u1",
                   "properties": {"currency": "TRY", "items": [{"item_id": "A", "price": 5}]}}),
            json!({"event_name": "purchase", "created_at": "2024-12-19T12:45:39+03:00", "user_id": "u1",
                   "properties": {"currency": "TRY", "items": [{"item_id": "A", "price": 6}]}}),
            json!({"event_name": "purchase", "created_at": "2024-12-19T12:45:39+03:00", "user_id": "u1",
                   "properties": {"currency": "TRY", "items": [{"item_id": "A", "price": "5"}]}}),
        ] {
            assert_ne!(id(other.clone()), base, "{other}");
        }
    }
}
