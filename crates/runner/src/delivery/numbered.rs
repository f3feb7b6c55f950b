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
///
/// NATS backlog keys are a message's stream sequence above [`BLOCK_BITS`] bits and the event's
/// index in it below, so their low bits are mostly 0 to a few: taken as they are, a table of up
/// to 4,096 slots would pile every message's events onto the same handful of slots. A hash of
/// the bits above is therefore XORed into the low ones. That is a bijection on every aligned
/// block of numbers, so consecutive numbers still fill neighbouring slots, and numbers below
/// 4,096 keep their own value.
#[derive(Debug, Default)]
pub struct NumberedHasher(u64);

const TOP_SEVEN: u64 = 0x7f << 57;

/// The low bits into which a hash of the bits above is mixed (the NATS backlog's index bits).
const BLOCK_BITS: u32 = 12;

impl Hasher for NumberedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        let block = (n >> BLOCK_BITS).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - BLOCK_BITS);
        self.0 = n ^ block ^ (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) & TOP_SEVEN);
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

    use super::{BLOCK_BITS, Numbered, TOP_SEVEN};

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
        // Larger numbers: every aligned group of 8 still lands on one aligned group of 8 slots.
        for start in (1 << 20..(1 << 20) + 64).step_by(8) {
            let mut slots: Vec<u64> = (start..start + 8)
                .map(|n: u64| Numbered.hash_one(n) & 0xfff)
                .collect();
            slots.sort_unstable();
            assert_eq!(slots[7] - slots[0], 7, "{slots:?}");
            assert_eq!(slots[0] % 8, 0, "{slots:?}");
        }
    }

    /// NATS backlog keys (a message's stream sequence shifted above the event's index in it):
    /// 400 messages of 6 events spread over a 4,096-slot table, rather than piling onto the
    /// slots of indexes 0 to 5.
    #[test]
    fn keys_with_an_index_in_their_low_bits_spread_over_the_table() {
        let mut per_slot = vec![0u32; 4096];
        for stream_seq in 5_000u64..5_400 {
            for index in 0..6 {
                let key = stream_seq << BLOCK_BITS | index;
                per_slot[(Numbered.hash_one(key) & 0xfff) as usize] += 1;
            }
        }
        let most = per_slot.iter().max().copied().unwrap_or(0);
        assert!(most <= 8, "{most} keys share one slot");
    }
}
