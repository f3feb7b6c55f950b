//! Rendering a compiled template against an event: the single rendering path behind both
//! `Template::render` and `Template::render_json`.
//!
//! The result is a [`Rendered`] tree that borrows event values and template constants instead of
//! copying them; it is turned into a `Value` only when a caller asks for one, and otherwise written
//! straight out as compact JSON.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::error::MappingError;

use super::filter::to_text;
use super::{Constant, Each, Expr, Member, Node, Operand, TextPart};

/// A rendered (never missing) value.
pub(super) enum Rendered<'a> {
    /// A constant subtree of the template, already serialized.
    Const(&'a Constant),
    /// A value borrowed from the event or the template, or computed by a filter or text.
    Value(Cow<'a, Value>),
    /// The members that were not missing, in template order.
    Object(Vec<(&'a Member, Rendered<'a>)>),
    Array(Vec<Rendered<'a>>),
}

/// What placeholders can address while rendering: the event and the current item of each
/// enclosing `each`, outermost first.
struct Scope<'a> {
    event: &'a Value,
    items: Vec<&'a Value>,
}

type Outcome<'a> = Result<Option<Rendered<'a>>, MappingError>;

/// Renders `root` against an event value; `Ok(None)` when it is missing.
pub(super) fn render<'a>(root: &'a Node, event: &'a Value) -> Outcome<'a> {
    let mut scope = Scope {
        event,
        items: Vec::new(),
    };
    root.render(&mut scope)
}

impl Node {
    fn render<'a>(&'a self, scope: &mut Scope<'a>) -> Outcome<'a> {
        match self {
            Node::Const(constant) => Ok(Some(Rendered::Const(constant))),
            Node::Whole { expr, pointer } => {
                Ok(expr.evaluate(scope, pointer)?.map(Rendered::Value))
            }
            Node::Text { parts, pointer } => render_text(parts, scope, pointer),
            Node::Object(members) => {
                let mut rendered = Vec::with_capacity(members.len());
                for member in members {
                    if let Some(value) = member.node.render(scope)? {
                        rendered.push((member, value));
                    }
                }
                // An object whose every member is missing is missing itself, so missing data never
                // produces an empty object.
                Ok((!rendered.is_empty()).then_some(Rendered::Object(rendered)))
            }
            Node::Array(elements) => {
                let mut rendered = Vec::with_capacity(elements.len());
                for element in elements {
                    match element {
                        // An each loop inside an array contributes its elements to that array.
                        Node::Each(each) => each.render_into(scope, &mut rendered)?,
                        other => rendered.extend(other.render(scope)?),
                    }
                }
                Ok((!rendered.is_empty()).then_some(Rendered::Array(rendered)))
            }
            Node::Each(each) => {
                let mut rendered = Vec::new();
                each.render_into(scope, &mut rendered)?;
                Ok((!rendered.is_empty()).then_some(Rendered::Array(rendered)))
            }
        }
    }
}

impl Each {
    /// Appends one rendered body per item of the source; bodies that are missing are dropped.
    fn render_into<'a>(
        &'a self,
        scope: &mut Scope<'a>,
        out: &mut Vec<Rendered<'a>>,
    ) -> Result<(), MappingError> {
        let Some(source) = self
            .source
            .iter()
            .find_map(|operand| operand.resolve(scope))
        else {
            return Ok(());
        };
        let items = match source {
            Value::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        for item in items {
            scope.items.push(item);
            let rendered = self.body.render(scope);
            scope.items.pop();
            out.extend(rendered?);
        }
        Ok(())
    }
}

impl Operand {
    fn resolve<'a>(&'a self, scope: &Scope<'a>) -> Option<&'a Value> {
        match self {
            Operand::Event(path) => path.lookup(scope.event),
            Operand::Item { depth, path } => path.lookup(scope.items.get(*depth)?),
            Operand::Literal(value) => Some(value),
        }
    }
}

impl Expr {
    /// The first operand that is not missing, through every filter; `None` when missing.
    fn evaluate<'a>(
        &'a self,
        scope: &Scope<'a>,
        pointer: &str,
    ) -> Result<Option<Cow<'a, Value>>, MappingError> {
        let mut value = self
            .operands
            .iter()
            .find_map(|o| o.resolve(scope))
            .map(Cow::Borrowed);
        for applied in &self.filters {
            value = applied.filter.apply(value).map_err(|reason| {
                MappingError::new(pointer, format!("{}: {reason}", applied.label))
            })?;
        }
        if self.required && value.is_none() {
            return Err(MappingError::new(
                pointer,
                format!("{}: a required value is missing", self.label),
            ));
        }
        Ok(value)
    }
}

fn render_text<'a>(parts: &'a [TextPart], scope: &Scope<'a>, pointer: &str) -> Outcome<'a> {
    let mut text = String::new();
    for part in parts {
        match part {
            TextPart::Literal(literal) => text.push_str(literal),
            TextPart::Placeholder(expr) => {
                // Any missing placeholder makes the whole string missing: half a sentence is
                // worse than none.
                let Some(value) = expr.evaluate(scope, pointer)? else {
                    return Ok(None);
                };
                match value.as_ref() {
                    Value::String(s) => text.push_str(s),
                    Value::Number(n) => {
                        let _ = write!(text, "{n}");
                    }
                    other => text.push_str(&to_text(other)),
                }
            }
        }
    }
    Ok(Some(Rendered::Value(Cow::Owned(Value::String(text)))))
}

impl Rendered<'_> {
    /// The rendered value as an owned `Value`.
    pub(super) fn into_value(self) -> Value {
        match self {
            Rendered::Const(constant) => constant.value.clone(),
            Rendered::Value(value) => value.into_owned(),
            Rendered::Object(members) => Value::Object(
                members
                    .into_iter()
                    .map(|(member, value)| (member.key.to_string(), value.into_value()))
                    .collect::<Map<String, Value>>(),
            ),
            Rendered::Array(elements) => {
                Value::Array(elements.into_iter().map(Rendered::into_value).collect())
            }
        }
    }

    /// Appends compact JSON, byte for byte what `serde_json::to_vec(&self.into_value())` gives.
    pub(super) fn write_json(&self, out: &mut Vec<u8>) -> Result<(), MappingError> {
        match self {
            Rendered::Const(constant) => out.extend_from_slice(&constant.json),
            Rendered::Value(value) => serde_json::to_writer(&mut *out, value.as_ref())
                .map_err(|e| MappingError::new("", format!("cannot write JSON: {e}")))?,
            Rendered::Object(members) => {
                out.push(b'{');
                for (i, (member, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&member.key_json);
                    value.write_json(out)?;
                }
                out.push(b'}');
            }
            Rendered::Array(elements) => {
                out.push(b'[');
                for (i, element) in elements.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    element.write_json(out)?;
                }
                out.push(b']');
            }
        }
        Ok(())
    }
}
