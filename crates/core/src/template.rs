//! The template language: a JSON value with `##…##` placeholders, compiled once and rendered
//! against events. TODO(template helper): implement.

use serde_json::Value;

use crate::error::{ConfigError, MappingError};
use crate::event::Event;

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    source: Value,
}

impl Template {
    /// Compiles a template, reporting every problem with the JSON pointer of the bad string.
    pub fn compile(value: &Value) -> Result<Template, Vec<ConfigError>> {
        Ok(Template {
            source: value.clone(),
        })
    }

    /// Renders against an event; `Ok(None)` when the whole template is missing.
    pub fn render(&self, _event: &Event) -> Result<Option<Value>, MappingError> {
        Ok(Some(self.source.clone()))
    }

    /// Renders as compact JSON appended to `out`; `Ok(false)` (nothing appended) when missing.
    pub fn render_json(&self, event: &Event, out: &mut Vec<u8>) -> Result<bool, MappingError> {
        match self.render(event)? {
            Some(v) => {
                serde_json::to_writer(out, &v).expect("writing to a Vec cannot fail");
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// True when the template holds no placeholder: it renders to the same value for every event.
    pub fn is_constant(&self) -> bool {
        false
    }
}
