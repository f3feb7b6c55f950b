//! Counting what destinations changed in the events of a `hardal send`, per field and rule,
//! without writing a key per note per event: the mapping threads turn each note into the number
//! of its kind (its action, field and rule) and drop the note where it was made; the books count
//! numbers, and the summary's keys (`repaired attributes.country: alpha-3 code to alpha-2`) are
//! written once per kind and write to the checkpoint.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use hardal_core::{Note, NoteAction};
use rustc_hash::FxHashMap as HashMap;
use smallvec::SmallVec;

use super::summary::Totals;

/// A kind of note: what happened, to which field, by which rule.
type Kind = (NoteAction, Cow<'static, str>, Cow<'static, str>);

/// The kinds of note seen in a run, numbered in the order they were first seen; shared by the
/// mapping threads (which number them) and the books (which write their keys).
#[derive(Debug, Default)]
pub struct NoteKinds {
    kinds: Mutex<Kinds>,
}

#[derive(Debug, Default)]
struct Kinds {
    numbers: HashMap<Kind, u32>,
    /// Per number: the key its changes are counted under in [`Totals::field_changes`].
    keys: Vec<String>,
}

impl NoteKinds {
    /// The number of a kind, numbering it if it is new.
    fn number(&self, kind: Kind) -> u32 {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(number) = kinds.numbers.get(&kind) {
            return *number;
        }
        let number = u32::try_from(kinds.keys.len()).expect("fewer than 2^32 kinds of note");
        let (action, field, rule) = &kind;
        kinds
            .keys
            .push(format!("{} {field}: {rule}", action.as_str()));
        kinds.numbers.insert(kind, number);
        number
    }
}

/// A mapping thread's numbering of notes: the kinds it has seen are looked up without a lock.
pub struct Numbering {
    kinds: Arc<NoteKinds>,
    seen: HashMap<Kind, u32>,
}

impl Numbering {
    pub fn new(kinds: Arc<NoteKinds>) -> Numbering {
        Numbering {
            kinds,
            seen: HashMap::default(),
        }
    }

    /// An event's notes as numbers (their details are not counted).
    pub fn count(&mut self, notes: Vec<Note>) -> CountedNotes {
        let mut counted = CountedNotes {
            kinds: SmallVec::with_capacity(notes.len()),
            actions: 0,
        };
        for note in notes {
            counted.actions |= action_bit(note.action);
            let kind = (note.action, note.field, note.rule);
            let number = match self.seen.get(&kind) {
                Some(number) => *number,
                None => {
                    let number = self.kinds.number(kind.clone());
                    self.seen.insert(kind, number);
                    number
                }
            };
            counted.kinds.push(number);
        }
        counted
    }
}

/// The notes of one event for one destination, counted: the number of each note's kind, and
/// which actions occurred. An event's few notes are kept inline: the delivery thread frees what
/// the mapping threads allocated, which costs both sides more than an allocation of their own.
#[derive(Debug, Default)]
pub struct CountedNotes {
    kinds: SmallVec<[u32; 6]>,
    actions: u8,
}

fn action_bit(action: NoteAction) -> u8 {
    match action {
        NoteAction::Repaired => 1,
        NoteAction::Dropped => 2,
        NoteAction::Expired => 4,
    }
}

/// Per destination, the changes of the events it finished since they were last added into its
/// totals.
pub struct Changes {
    kinds: Arc<NoteKinds>,
    /// Per destination, per kind of note: how many notes of it.
    counts: Vec<Vec<u64>>,
}

impl Changes {
    pub fn new(kinds: Arc<NoteKinds>, destinations: usize) -> Changes {
        Changes {
            kinds,
            counts: vec![Vec::new(); destinations],
        }
    }

    /// Counts what a destination changed in one event: per kind of note here, and the events
    /// with a field repaired, with a field left out and partly expired in each of `totals` (the
    /// backfill's and the run's).
    pub fn add(&mut self, lane: usize, notes: &CountedNotes, totals: [&mut Totals; 2]) {
        let counts = &mut self.counts[lane];
        for &kind in &notes.kinds {
            let kind = kind as usize;
            if counts.len() <= kind {
                counts.resize(kind + 1, 0);
            }
            counts[kind] += 1;
        }
        for totals in totals {
            totals.repaired += u64::from(notes.actions & 1 != 0);
            totals.fields_dropped += u64::from(notes.actions & 2 != 0);
            totals.partly_expired += u64::from(notes.actions & 4 != 0);
        }
    }

    /// Adds the changes counted so far into every destination's totals (the backfill's and the
    /// run's), under their keys: before the totals are written or reported.
    pub fn settle(&mut self, totals: &mut [Totals], this_run: &mut [Totals]) {
        if self.counts.iter().flatten().all(|count| *count == 0) {
            return;
        }
        let kinds = self.kinds.kinds.lock().unwrap_or_else(|e| e.into_inner());
        for (lane, counts) in self.counts.iter_mut().enumerate() {
            for (kind, count) in counts.iter_mut().enumerate() {
                if *count == 0 {
                    continue;
                }
                let key = &kinds.keys[kind];
                for totals in [&mut totals[lane], &mut this_run[lane]] {
                    match totals.field_changes.get_mut(key) {
                        Some(total) => *total += *count,
                        None => {
                            totals.field_changes.insert(key.clone(), *count);
                        }
                    }
                }
                *count = 0;
            }
        }
    }
}

impl crate::delivery::Carried for CountedNotes {}
