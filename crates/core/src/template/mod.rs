//! The template language: a JSON value with `##…##` placeholders, compiled once and rendered
//! against events.
//!
//! Compiling turns the JSON into a tree of [`Node`]s: constant subtrees are built and serialized
//! once, placeholders become parsed expressions, and `##each … as …##` objects become loops.
//! Rendering walks that tree, building either a `serde_json::Value` or a `Rendered` value that
//! borrows from the event wherever it can and is written straight out as JSON. Both outputs share
//! that single rendering path, so they cannot disagree.

mod filter;
mod lookups;
mod parse;
mod render;
pub(crate) mod timestamp;

use serde_json::Value;

use crate::error::{ConfigError, MappingError};
use crate::event::Event;

use filter::Filter;

pub(crate) use parse::pointer_token;

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Node,
    lookups: lookups::Lookups,
}

impl Template {
    /// Compiles a template, reporting every problem with the JSON pointer of the bad string.
    pub fn compile(value: &Value) -> Result<Template, Vec<ConfigError>> {
        parse::compile(value).map(|(root, lookups)| Template { root, lookups })
    }

    /// Renders against an event; `Ok(None)` when the whole template is missing.
    pub fn render(&self, event: &Event) -> Result<Option<Value>, MappingError> {
        render::render(self, event.tree())
    }

    /// Renders against an event into a value that borrows from the template and the event
    /// (see [`crate::value`]); `Ok(None)` when the whole template is missing. It equals what
    /// [`Template::render`] returns.
    pub fn render_borrowed<'a>(
        &'a self,
        event: &'a Event,
    ) -> Result<Option<crate::value::Value<'a>>, MappingError> {
        render::render(self, event.tree())
    }

    /// Renders as compact JSON appended to `out`; `Ok(false)` (nothing appended) when missing.
    /// The bytes equal `serde_json::to_vec` of what [`Template::render`] returns.
    pub fn render_json(&self, event: &Event, out: &mut Vec<u8>) -> Result<bool, MappingError> {
        match render::render::<render::Rendered>(self, event.tree())? {
            Some(rendered) => {
                rendered.write_json(out)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// True when the template holds no placeholder: it renders to the same value for every event.
    pub fn is_constant(&self) -> bool {
        matches!(self.root, Node::Const(_))
    }
}

/// One compiled template value.
#[derive(Debug, Clone)]
enum Node {
    /// A subtree without placeholders, built and serialized once.
    Const(Box<Constant>),
    /// A string that is exactly one placeholder: the value keeps its JSON type.
    Whole { expr: Box<Expr>, pointer: Box<str> },
    /// A string mixing text and placeholders: renders to a string.
    Text {
        parts: Vec<TextPart>,
        pointer: Box<str>,
    },
    /// An object with at least one non-constant member.
    Object(Vec<Member>),
    /// An array with at least one non-constant element.
    Array(Vec<Node>),
    /// `{"##each SOURCE as NAME##": body}`.
    Each(Box<Each>),
}

#[derive(Debug, Clone)]
struct Constant {
    value: Value,
    json: Box<[u8]>,
}

#[derive(Debug, Clone)]
struct Member {
    key: Box<str>,
    /// The key as JSON followed by `:`, written as is when serializing.
    key_json: Box<[u8]>,
    node: Node,
}

#[derive(Debug, Clone)]
enum TextPart {
    Literal(Box<str>),
    Placeholder(Expr),
}

#[derive(Debug, Clone)]
struct Each {
    source: Vec<Operand>,
    body: Node,
    /// The slots of the paths its body reads below its item.
    item: lookups::Lookups,
}

/// `a ?? b ?? "literal" | filter | filter`.
#[derive(Debug, Clone)]
struct Expr {
    operands: Vec<Operand>,
    filters: Vec<AppliedFilter>,
    required: bool,
    /// The expression as written, for error messages.
    label: Box<str>,
}

#[derive(Debug, Clone)]
struct AppliedFilter {
    filter: Filter,
    /// The expression as written up to and including this filter, for error messages.
    label: Box<str>,
}

#[derive(Debug, Clone)]
enum Operand {
    /// A path into the event, by its slot (see [`lookups`]).
    Event(lookups::Slot),
    /// A path below the item of the enclosing `each` number `depth` (0 is the outermost), by
    /// its slot among that loop's item paths.
    Item {
        depth: usize,
        slot: lookups::Slot,
    },
    Literal(crate::value::Value<'static>),
}

impl Node {
    fn constant(value: Value) -> Node {
        let json = serde_json::to_vec(&value)
            .unwrap_or_default()
            .into_boxed_slice();
        Node::Const(Box::new(Constant { value, json }))
    }

    fn as_constant(&self) -> Option<&Value> {
        match self {
            Node::Const(constant) => Some(&constant.value),
            _ => None,
        }
    }

    /// An array node; folded into a constant when every element is one.
    fn array(elements: Vec<Node>) -> Node {
        match elements
            .iter()
            .map(|n| n.as_constant().cloned())
            .collect::<Option<Vec<_>>>()
        {
            Some(values) => Node::constant(Value::Array(values)),
            None => Node::Array(elements),
        }
    }

    /// An object node; folded into a constant when every member is one.
    fn object(members: Vec<Member>) -> Node {
        let constant: Option<serde_json::Map<String, Value>> = members
            .iter()
            .map(|m| Some((m.key.to_string(), m.node.as_constant()?.clone())))
            .collect();
        match constant {
            Some(map) => Node::constant(Value::Object(map)),
            None => Node::Object(members),
        }
    }
}

impl Member {
    fn new(key: &str, node: Node) -> Member {
        let mut key_json = serde_json::to_vec(key).unwrap_or_default();
        key_json.push(b':');
        Member {
            key: key.into(),
            key_json: key_json.into_boxed_slice(),
            node,
        }
    }
}

#[cfg(test)]
mod tests;
