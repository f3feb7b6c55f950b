//! `Path`: a dot-separated address into an event (`user.email`, `properties.items.0.price`,
//! `properties."first name"`), shared by templates and conditions.

use serde_json::Value;

/// A compiled path. TODO(template helper): implement parsing and lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    segments: Vec<String>,
}

impl Path {
    /// Parses a path; the error says what is wrong and where in the text.
    pub fn parse(text: &str) -> Result<Path, String> {
        Ok(Path {
            segments: text.split('.').map(str::to_owned).collect(),
        })
    }

    /// The value at this path below `root`; `None` when absent or `null`.
    pub fn lookup<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        let mut current = root;
        for segment in &self.segments {
            current = match current {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        (!current.is_null()).then_some(current)
    }
}
