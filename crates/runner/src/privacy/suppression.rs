//! The suppression list in memory: the hashes of erased users' identifiers, shared by ingestion
//! (which drops their new events) and delivery (which drops their events before dispatch).
//!
//! An empty list costs one atomic load per event. A non-empty one costs, per event, the hashes
//! of its own identifiers (core's `event_identifier_hashes`, with the custom paths the list
//! names) and a set lookup each. The generation counts changes, so that delivery can tell
//! whether events mapped earlier were checked against the list as it is now.

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hardal_core::{Event, Path};

use crate::backlog::SuppressionEntry;

#[derive(Default)]
struct Inner {
    hashes: HashSet<String>,
    /// The custom identifier paths named by entries (each once).
    paths: Vec<Path>,
}

impl Inner {
    fn insert(&mut self, entries: &[SuppressionEntry]) {
        for entry in entries {
            self.hashes.insert(entry.hash.clone());
            if let Some(path) = entry.path.as_deref().and_then(|p| Path::parse(p).ok())
                && !self.paths.contains(&path)
            {
                self.paths.push(path);
            }
        }
    }
}

/// The suppression list in memory.
#[derive(Default)]
pub struct Suppression {
    /// 0 while the list is empty; grows with every change.
    generation: AtomicU64,
    inner: RwLock<Inner>,
}

impl Suppression {
    pub fn new(entries: &[SuppressionEntry]) -> Suppression {
        let suppression = Suppression::default();
        suppression.add(entries);
        suppression
    }

    /// Adds entries (a new erasure job's).
    pub fn add(&self, entries: &[SuppressionEntry]) {
        if entries.is_empty() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.insert(entries);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Replaces the list with `entries`, read from the backlog after old entries were pruned,
    /// unless the list changed since `generation` (an erasure added to it meanwhile, which
    /// `entries` may lack): then nothing changes and the caller reads the backlog again.
    pub fn replace_if_unchanged(&self, entries: &[SuppressionEntry], generation: u64) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if self.generation() != generation {
            return false;
        }
        *inner = Inner::default();
        inner.insert(entries);
        self.generation.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Replaces the list (after old entries were pruned).
    pub fn replace(&self, entries: &[SuppressionEntry]) {
        {
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            *inner = Inner::default();
        }
        self.add(entries);
    }

    /// Changes so far; 0 while nothing was ever suppressed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// How many identifiers are suppressed.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .hashes
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.generation() == 0 || self.len() == 0
    }

    /// Whether an event belongs to a suppressed user.
    pub fn matches(&self, event: &Event) -> bool {
        if self.generation() == 0 {
            return false;
        }
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        if inner.hashes.is_empty() {
            return false;
        }
        hardal_core::erasure::event_identifier_hashes(event, &inner.paths)
            .iter()
            .any(|hash| inner.hashes.contains(hash))
    }

    /// Whether an event's text belongs to a suppressed user (text that is no event does not);
    /// without custom identifiers, only the user's fields are read from the text.
    pub fn matches_text(&self, text: &str) -> bool {
        if self.generation() == 0 {
            return false;
        }
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        if inner.hashes.is_empty() {
            return false;
        }
        hardal_core::erasure::event_identifier_hashes_text(text, &inner.paths)
            .is_ok_and(|hashes| hashes.iter().any(|hash| inner.hashes.contains(hash)))
    }
}
