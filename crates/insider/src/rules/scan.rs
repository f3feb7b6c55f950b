//! Member lookups by scanning. The objects the rules work on are small (a user object has at most
//! five members, an event three), and comparing a few keys is cheaper than hashing one with the
//! map's SipHash, which every `get`, `contains_key` and `shift_remove` of `serde_json::Map` does.

use serde_json::{Map, Value};

/// Objects up to this many members are scanned; larger ones are looked up by hash.
const SCAN_UP_TO: usize = 16;

pub(crate) trait Scan {
    fn member(&self, key: &str) -> Option<&Value>;
    fn member_mut(&mut self, key: &str) -> Option<&mut Value>;
    fn has(&self, key: &str) -> bool {
        self.member(key).is_some()
    }
    /// `shift_remove`, without hashing when the key is absent (most often it is).
    fn take(&mut self, key: &str) -> Option<Value>;
}

impl Scan for Map<String, Value> {
    fn member(&self, key: &str) -> Option<&Value> {
        if self.len() > SCAN_UP_TO {
            return self.get(key);
        }
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn member_mut(&mut self, key: &str) -> Option<&mut Value> {
        if self.len() > SCAN_UP_TO {
            return self.get_mut(key);
        }
        self.iter_mut().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        if self.len() <= SCAN_UP_TO && !self.has(key) {
            return None;
        }
        self.shift_remove(key)
    }
}
