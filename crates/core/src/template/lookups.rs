//! The event paths a template reads, each key of each path looked up at most once per event.
//!
//! A preset reads the same objects again and again: Insider's `default` reads `user.…` about
//! twenty times and `properties.…` about as often, and reads `user.email` and `user_id` twice.
//! Compiling gives every distinct path prefix a slot (`user`, `user.email`, `properties`, …),
//! each slot naming its parent slot and the one key below it; rendering fills a slot the first
//! time a placeholder needs it and answers from it after that.
//!
//! The children of one object are found in one pass: the first time a placeholder needs a key of
//! a small object (fewer members than a map indexes), every member of that object is looked up,
//! by its key, in a table of the keys the template reads below it, filling all of their slots
//! at once. Looking up twenty keys in a user object of six members is then six hash lookups, not
//! twenty scans of the members that mostly end at the last one (most keys a preset tries are
//! absent). Other lookups stay lazy: an array's elements, the rest of a path cut at
//! [`MAX_DEPTH`], and an object with a single key read below it.
//!
//! An `each` loop's item is read the same way, through slots of its own: the paths below the item
//! (`item.product_id ?? item.sku ?? item.id`) have their slots in the loop, filled afresh for
//! every item.

use std::cell::Cell;

use rustc_hash::FxHashMap;

use crate::path::Path;
use crate::value::{INDEX_FROM, Map, Value as Tree};

/// Every distinct prefix of the event paths of one template.
#[derive(Debug, Clone, Default)]
pub(super) struct Lookups {
    steps: Vec<Step>,
    /// Per parent — the event at 0, the slot `i` at `i + 1` — its children that are one object
    /// key.
    children: Vec<Children>,
}

/// The children of one parent that are one object key.
#[derive(Debug, Clone, Default)]
struct Children {
    /// Their slots by key (a quoted and an unquoted `"0"` are two slots of one key).
    by_key: FxHashMap<Box<str>, Vec<usize>>,
    /// Every one of those slots, to mark them all missing before the members are looked at
    /// without walking the table.
    slots: Vec<usize>,
}

/// One prefix: the key below its parent prefix (the event itself when `parent` is `None`).
#[derive(Debug, Clone)]
struct Step {
    parent: Option<usize>,
    /// One key; for the prefix at [`MAX_DEPTH`], all the keys left.
    key: Path,
}

/// The most slots one path is cut into. Filling a slot fills its parent first, so this bounds
/// that recursion whatever length of path a configuration writes.
const MAX_DEPTH: usize = 16;

/// The slot of one path: `None` addresses the event itself.
pub(super) type Slot = Option<usize>;

impl Lookups {
    /// The slot of `path`, adding a slot for each of its prefixes not seen before.
    pub(super) fn add(&mut self, path: &Path) -> Slot {
        let mut parent = None;
        for key in path.split(MAX_DEPTH) {
            // A key is found through its parent's table, so compiling many paths stays linear;
            // only the rest of a cut path is searched for among all slots.
            let at = parent.map_or(0, |p| p + 1);
            let found = match key.only_key() {
                Some(name) => self
                    .children
                    .get(at)
                    .and_then(|children| children.by_key.get(name))
                    .and_then(|slots| slots.iter().find(|&&slot| self.steps[slot].key == key))
                    .copied(),
                None => self
                    .steps
                    .iter()
                    .position(|step| step.parent == parent && step.key == key),
            };
            parent = Some(found.unwrap_or_else(|| {
                let slot = self.steps.len();
                if let Some(name) = key.only_key() {
                    if self.children.len() <= at {
                        self.children.resize_with(at + 1, Children::default);
                    }
                    let children = &mut self.children[at];
                    children.by_key.entry(name.into()).or_default().push(slot);
                    children.slots.push(slot);
                }
                self.steps.push(Step { parent, key });
                slot
            }));
        }
        parent
    }

    /// The children of `parent` found together, when at least two keys are read below it.
    fn siblings(&self, parent: Slot) -> Option<&Children> {
        let at = parent.map_or(0, |p| p + 1);
        self.children
            .get(at)
            .filter(|children| children.by_key.len() >= 2)
    }
}

/// What one slot holds while rendering one event.
#[derive(Clone, Copy)]
enum Found<'a> {
    NotYet,
    Missing,
    Value(&'a Tree<'a>),
}

/// The slots of one rendering (of the event, or of one loop's item: `event` is then the item).
pub(super) struct Memo<'a> {
    lookups: &'a Lookups,
    event: &'a Tree<'a>,
    found: Vec<Cell<Found<'a>>>,
}

impl<'a> Memo<'a> {
    pub(super) fn new(lookups: &'a Lookups, event: &'a Tree<'a>) -> Memo<'a> {
        Memo {
            lookups,
            event,
            found: vec![Cell::new(Found::NotYet); lookups.steps.len()],
        }
    }

    /// The same slots, emptied, for another value (a loop's next item): its slots are allocated
    /// once per loop, not once per item.
    pub(super) fn reset(&mut self, event: &'a Tree<'a>) {
        self.event = event;
        for found in &self.found {
            found.set(Found::NotYet);
        }
    }

    /// The value at a slot; `None` when absent or `null`, as [`Path::lookup`] answers.
    ///
    /// Inlined where placeholders are resolved: most calls find the slot filled already, and
    /// the call would cost more than that.
    #[inline]
    pub(super) fn get(&self, slot: Slot) -> Option<&'a Tree<'a>> {
        let Some(index) = slot else {
            return (!self.event.is_null()).then_some(self.event);
        };
        match self.found[index].get() {
            Found::Value(value) => Some(value),
            Found::Missing => None,
            Found::NotYet => self.look_up(index),
        }
    }

    /// Fills an empty slot.
    #[inline(never)]
    fn look_up(&self, index: usize) -> Option<&'a Tree<'a>> {
        let slot = Some(index);
        let step = &self.lookups.steps[index];
        // A `null` parent has no members, so stopping at it answers as a whole-path lookup does.
        let parent = self.get(step.parent);
        if let Some(Tree::Object(members)) = parent
            && members.len() < INDEX_FROM
            && step.key.only_key().is_some()
            && let Some(siblings) = self.lookups.siblings(step.parent)
        {
            self.fill(siblings, members);
            return self.get(slot);
        }
        let value = parent.and_then(|parent| step.key.lookup(parent));
        self.found[index].set(value.map_or(Found::Missing, Found::Value));
        value
    }

    /// Fills the slots of every key read below one object from one pass over its members.
    fn fill(&self, siblings: &Children, members: &'a Map<'a>) {
        for &slot in &siblings.slots {
            self.found[slot].set(Found::Missing);
        }
        for (key, value) in members.iter() {
            if let Some(slots) = siblings.by_key.get(key)
                && !value.is_null()
            {
                for &slot in slots {
                    self.found[slot].set(Found::Value(value));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slots of `paths`, added in order, with each path.
    fn slots_of(paths: &[&str]) -> (Lookups, Vec<(Path, Slot)>) {
        let mut lookups = Lookups::default();
        let slots = paths
            .iter()
            .map(|text| {
                let path = Path::parse(text).unwrap();
                let slot = lookups.add(&path);
                (path, slot)
            })
            .collect();
        (lookups, slots)
    }

    /// Each case: the paths a template reads, an event, and what every path finds in it.
    #[test]
    fn a_slot_finds_what_the_whole_path_finds() {
        let event: serde_json::Value = serde_json::json!({
            "user": {"email": "a@example.com", "name": null, "tags": ["x", {"k": 1}]},
            "0": "zero key",
            "properties": {"value": 12.5, "items": [{"price": 3}, {"price": null}]},
            "nothing": null
        });
        let tree = Tree::borrowed(&event);
        let paths = [
            "user.email",
            "user.name",
            "user.name.first",
            "user",
            "user.tags.0",
            "user.tags.1.k",
            "user.tags.2",
            "properties.items.0.price",
            "properties.items.1.price",
            "properties.value",
            "properties.value.x",
            "nothing",
            "nothing.below",
            "absent.below",
            "0",
            "\"0\"",
            "user.email",
        ];
        let (lookups, slots) = slots_of(&paths);
        // A repeated path and shared prefixes take no new slots.
        assert_eq!(slots[0].1, slots[16].1);
        assert_eq!(lookups.steps.len(), 23);
        let memo = Memo::new(&lookups, &tree);
        // Twice: the second pass answers from the filled slots.
        for _ in 0..2 {
            for (path, slot) in &slots {
                assert_eq!(memo.get(*slot), path.lookup(&tree), "{path:?}");
            }
        }
        assert_eq!(memo.get(None), Some(&tree));
    }

    /// Keys read below objects of every size, found together or one by one, as the whole path
    /// finds them: objects up to [`INDEX_FROM`] members are filled in one pass.
    #[test]
    fn keys_read_together_are_found_as_one_by_one() {
        for size in [0, 1, 2, 31, 32, 40] {
            let members: serde_json::Map<String, serde_json::Value> = (0..size)
                .map(|i| {
                    (
                        format!("k{i}"),
                        if i == 1 {
                            serde_json::Value::Null
                        } else {
                            i.into()
                        },
                    )
                })
                .collect();
            let event = serde_json::json!({ "o": members, "n": 1 });
            let tree = Tree::borrowed(&event);
            let texts = [
                "o.k0",
                "o.k1",
                "o.k30",
                "o.k39",
                "o.absent",
                "o.k0.deeper",
                "n",
                "o",
            ];
            let (lookups, slots) = slots_of(&texts);
            let memo = Memo::new(&lookups, &tree);
            for (path, slot) in slots.iter().rev() {
                assert_eq!(memo.get(*slot), path.lookup(&tree), "{path:?} in {size}");
            }
        }
    }

    /// 100,000 paths below one parent: searched one by one among all slots, adding them would
    /// take minutes.
    #[test]
    fn adding_many_paths_stays_linear() {
        let mut lookups = Lookups::default();
        let slots: Vec<Slot> = (0..100_000)
            .map(|i| lookups.add(&Path::parse(&format!("o.k{i}")).unwrap()))
            .collect();
        assert_eq!(lookups.steps.len(), 100_001);
        assert_eq!(
            lookups.add(&Path::parse("o.k99999").unwrap()),
            slots[99_999]
        );
    }

    /// A path longer than [`MAX_DEPTH`] keys takes that many slots, and renders from them as the
    /// whole path finds; one of 100,000 keys does not exhaust the stack.
    #[test]
    fn a_long_path_takes_a_bounded_number_of_slots() {
        let mut event = serde_json::json!("deep");
        for _ in 0..40 {
            event = serde_json::json!({"a": event});
        }
        let tree = Tree::borrowed(&event);
        for (keys, expected) in [(40, Some("deep")), (39, None), (41, None), (100_000, None)] {
            let path = Path::parse(&vec!["a"; keys].join(".")).unwrap();
            let mut lookups = Lookups::default();
            let slot = lookups.add(&path);
            assert_eq!(lookups.steps.len(), MAX_DEPTH);
            let memo = Memo::new(&lookups, &tree);
            assert_eq!(memo.get(slot), path.lookup(&tree), "{keys} keys");
            assert_eq!(
                memo.get(slot).and_then(Tree::as_str),
                expected,
                "{keys} keys"
            );
        }
    }
}
