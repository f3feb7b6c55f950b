//! Tables keyed by numbers handed out in sequence (record ids, input lines, backlog sequence
//! numbers), laid out in that sequence. A general hash scatters consecutive numbers over the
//! whole table, so every record the engine touches — when it is batched, when its answer comes —
//! is a cache miss; kept in key order, records accepted together sit together in memory, as they
//! are batched and resolved together. The keys come from the engine, never from outside, so
//! nothing can pick keys that collide.

use std::hash::{BuildHasher, Hasher};

/// A hash map keyed by sequential numbers.
pub type NumberedMap<V> = std::collections::HashMap<u64, V, Numbered>;

/// Builds [`NumberedHasher`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Numbered;

impl BuildHasher for Numbered {
    type Hasher = NumberedHasher;

    fn build_hasher(&self) -> NumberedHasher {
        NumberedHasher(0)
    }
}

/// The hash of a number is the number itself in its low bits — the table's slot is the number
/// modulo its size, so a window of consecutive numbers fills consecutive slots without
/// collisions — with a multiplicative hash in its top seven bits, which the table compares
/// before it compares keys.
#[derive(Debug, Default)]
pub struct NumberedHasher(u64);

const TOP_SEVEN: u64 = 0x7f << 57;

impl Hasher for NumberedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n ^ (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) & TOP_SEVEN);
    }

    /// Only numbers are keys here; anything else is hashed byte by byte (FNV-1a).
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::{Numbered, TOP_SEVEN};

    /// Consecutive numbers keep their order in the low bits and differ in the top bits that
    /// the table compares first.
    #[test]
    fn consecutive_numbers_are_consecutive_slots_with_varied_tags() {
        let hashes: Vec<u64> = (1000..1016).map(|n: u64| Numbered.hash_one(n)).collect();
        let slots: Vec<u64> = hashes.iter().map(|h| h & 0xffff).collect();
        assert_eq!(slots, (1000..1016).collect::<Vec<u64>>());
        let mut tags: Vec<u64> = hashes.iter().map(|h| (h & TOP_SEVEN) >> 57).collect();
        tags.sort_unstable();
        tags.dedup();
        assert!(tags.len() > 8, "{tags:?}");
    }
}
