//! Choosing what maps an event, for destinations with mappings and presets: the user's mappings
//! in order, then the presets in their configured order. Presets select by event name alone (or select every event, like `default`), so they are
//! found with one hash lookup of the name: testing each preset's list in turn would compare every
//! event that reaches `default` with every name of every preset.

use crate::condition::Mappings;
use crate::{Event, WhenConfig};
use rustc_hash::FxHashMap;
use serde_json::Value;

#[derive(Debug)]
pub struct Selector<T> {
    mappings: Mappings<T>,
    presets: Vec<T>,
    /// Event name → the first preset (in configured order) that lists it.
    by_name: FxHashMap<String, usize>,
    /// The first preset that selects every event.
    always: Option<usize>,
}

impl<T> Selector<T> {
    /// `presets` in configured order, each with its `when`, which must select by `event_name`
    /// (a name or a list of names) or select everything (`{}`), as every built-in preset does.
    pub fn new(mappings: Mappings<T>, presets: Vec<(WhenConfig, T)>) -> Selector<T> {
        let mut selector = Selector {
            mappings,
            presets: Vec::with_capacity(presets.len()),
            by_name: FxHashMap::default(),
            always: None,
        };
        for (i, (when, target)) in presets.into_iter().enumerate() {
            let names = match when.0.iter().next() {
                None => {
                    selector.always.get_or_insert(i);
                    Vec::new()
                }
                Some((key, value)) if key == "event_name" && when.0.len() == 1 => match value {
                    Value::String(name) => vec![name.clone()],
                    Value::Array(names) => names
                        .iter()
                        .map(|n| {
                            n.as_str()
                                .expect("preset names are strings (tested)")
                                .to_owned()
                        })
                        .collect(),
                    _ => panic!("a preset selects by a list of event names (tested)"),
                },
                Some(_) => panic!("a preset selects by event_name only (tested)"),
            };
            for name in names {
                selector.by_name.entry(name).or_insert(i);
            }
            selector.presets.push(target);
        }
        selector
    }

    /// The preset that selects every event (`default`), when it is configured.
    pub fn fallback(&self) -> Option<&T> {
        self.always.map(|i| &self.presets[i])
    }

    pub fn select(&self, event: &Event) -> Option<&T> {
        if let Some(target) = self.mappings.select(event) {
            return Some(target);
        }
        let named = event
            .event_name()
            .and_then(|name| self.by_name.get(name))
            .copied();
        [named, self.always]
            .into_iter()
            .flatten()
            .min()
            .map(|i| &self.presets[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn when(value: Value) -> WhenConfig {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn presets_are_tried_in_their_configured_order() {
        let event = |name: &str| Event::from_value(json!({"event_name": name})).unwrap();
        let named = || when(json!({"event_name": ["purchase", "Order Completed"]}));
        let selector = Selector::new(
            Mappings::new(vec![]),
            vec![
                (named(), "purchase"),
                (when(json!({})), "default"),
                (when(json!({"event_name": "purchase"})), "later"),
            ],
        );
        let picked: Vec<Option<&&str>> = ["purchase", "Order Completed", "other"]
            .iter()
            .map(|n| selector.select(&event(n)))
            .collect();
        assert_eq!(
            picked,
            [Some(&"purchase"), Some(&"purchase"), Some(&"default")]
        );
        // `default` listed first selects everything.
        let selector = Selector::new(
            Mappings::new(vec![]),
            vec![(when(json!({})), "default"), (named(), "purchase")],
        );
        assert_eq!(selector.select(&event("purchase")), Some(&"default"));
        // Without `default`, an unlisted name selects nothing; a non-string name never matches.
        let selector = Selector::new(Mappings::new(vec![]), vec![(named(), "purchase")]);
        assert_eq!(selector.select(&event("other")), None);
        assert_eq!(
            selector.select(&Event::from_value(json!({"event_name": 7})).unwrap()),
            None
        );
    }
}
