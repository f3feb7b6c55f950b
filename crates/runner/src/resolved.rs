//! Which events of an ordered stream (input lines, spool sequence numbers) are resolved for one
//! destination: a watermark below which everything is, plus the resolved ranges above it. Retries
//! resolve events out of order, and this is both exact and small; it folds into the watermark as
//! the gaps fill.

use std::collections::BTreeMap;

/// Which events are resolved for one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedSet {
    /// Every event below this one is resolved (numbers count from 1).
    pub watermark: u64,
    /// Resolved ranges `[start, end)` above the watermark, by start; never overlapping or
    /// touching (they are merged as they arrive).
    pub ranges: BTreeMap<u64, u64>,
}

impl ResolvedSet {
    pub fn new() -> ResolvedSet {
        ResolvedSet {
            watermark: 1,
            ranges: BTreeMap::new(),
        }
    }

    pub fn contains(&self, line: u64) -> bool {
        line < self.watermark
            || self
                .ranges
                .range(..=line)
                .next_back()
                .is_some_and(|(_, end)| line < *end)
    }

    /// Adds `[start, end)`, merging it with the ranges it overlaps or touches, and folds what
    /// reaches the watermark into it.
    pub fn insert(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        if let Some((&before, &before_end)) = self.ranges.range(..=start).next_back()
            && before_end >= start
        {
            start = before;
            end = end.max(before_end);
        }
        let touched: Vec<u64> = self.ranges.range(start..=end).map(|(s, _)| *s).collect();
        for key in touched {
            let other_end = self.ranges.remove(&key).expect("listed above");
            end = end.max(other_end);
        }
        self.ranges.insert(start, end);
        while let Some((&first, &first_end)) = self.ranges.first_key_value() {
            if first > self.watermark {
                break;
            }
            self.watermark = self.watermark.max(first_end);
            self.ranges.remove(&first);
        }
    }
}

/// Sorted, distinct lines as ranges `[start, end)`.
pub fn to_ranges(lines: &mut [u64]) -> Vec<(u64, u64)> {
    lines.sort_unstable();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &line in lines.iter() {
        match ranges.last_mut() {
            Some((_, end)) if *end >= line => *end = (*end).max(line + 1),
            _ => ranges.push((line, line + 1)),
        }
    }
    ranges
}
