//! Rendering a compiled template against an event: the single rendering path behind both
//! `Template::render` and `Template::render_json`.
//!
//! The walk is generic over what it builds ([`Output`]): a [`Rendered`] tree that borrows event
//! values and template constants instead of copying them, written straight out as compact JSON;
//! a `serde_json::Value`, built directly, without the borrowed tree in between; or a
//! [`Tree`] (`crate::value::Value`) that borrows keys and strings and keeps members in a vector, for
//! destinations whose rules rework every rendered object.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::error::MappingError;
use crate::value::{Map as TreeMap, Value as Tree};

use super::filter::to_text;
use super::lookups::Memo;
use super::{Constant, Each, Expr, Member, Node, Operand, Template, TextPart};

/// A rendered (never missing) value.
pub(super) enum Rendered<'a> {
    /// A constant subtree of the template, already serialized.
    Const(&'a Constant),
    /// A value borrowed from the event or the template, or computed by a filter or text.
    Value(Cow<'a, Tree<'a>>),
    /// The members that were not missing, in template order.
    Object(Vec<(&'a Member, Rendered<'a>)>),
    Array(Vec<Rendered<'a>>),
}

/// What rendering builds: one value per node that is not missing.
pub(super) trait Output<'a>: Sized {
    /// An object under construction.
    type Members;

    fn constant(constant: &'a Constant) -> Self;
    fn value(value: Cow<'a, Tree<'a>>) -> Self;
    fn object(members: usize) -> Self::Members;
    fn member(object: &mut Self::Members, member: &'a Member, value: Self);
    /// The object, or `None` when no member was rendered: an object whose every member is
    /// missing is missing itself, so missing data never produces an empty object.
    fn finish(object: Self::Members) -> Option<Self>;
    fn array(elements: Vec<Self>) -> Self;
}

impl<'a> Output<'a> for Rendered<'a> {
    type Members = Vec<(&'a Member, Rendered<'a>)>;

    fn constant(constant: &'a Constant) -> Self {
        Rendered::Const(constant)
    }

    fn value(value: Cow<'a, Tree<'a>>) -> Self {
        Rendered::Value(value)
    }

    fn object(members: usize) -> Self::Members {
        Vec::with_capacity(members)
    }

    fn member(object: &mut Self::Members, member: &'a Member, value: Self) {
        object.push((member, value));
    }

    fn finish(object: Self::Members) -> Option<Self> {
        (!object.is_empty()).then_some(Rendered::Object(object))
    }

    fn array(elements: Vec<Self>) -> Self {
        Rendered::Array(elements)
    }
}

impl<'a> Output<'a> for Value {
    type Members = Map<String, Value>;

    fn constant(constant: &'a Constant) -> Self {
        constant.value.clone()
    }

    fn value(value: Cow<'a, Tree<'a>>) -> Self {
        match value {
            Cow::Borrowed(value) => value.to_json(),
            Cow::Owned(value) => value.into_json(),
        }
    }

    fn object(members: usize) -> Self::Members {
        Map::with_capacity(members)
    }

    fn member(object: &mut Self::Members, member: &'a Member, value: Self) {
        // `String::from`, not `to_string`: the latter goes through `Display` for a `Box<str>`.
        object.insert(String::from(&*member.key), value);
    }

    fn finish(object: Self::Members) -> Option<Self> {
        (!object.is_empty()).then_some(Value::Object(object))
    }

    fn array(elements: Vec<Self>) -> Self {
        Value::Array(elements)
    }
}

impl<'a> Output<'a> for Tree<'a> {
    type Members = TreeMap<'a>;

    fn constant(constant: &'a Constant) -> Self {
        Tree::borrowed(&constant.value)
    }

    fn value(value: Cow<'a, Tree<'a>>) -> Self {
        match value {
            Cow::Borrowed(value) => value.reborrow(),
            Cow::Owned(value) => value,
        }
    }

    fn object(members: usize) -> Self::Members {
        // Room for one more: the rules that rework these objects add a member to most of them
        // (Insider's `not_append` to every user, `custom` back to fields they sorted), and a full
        // vector would be copied into one twice its size for it.
        TreeMap::with_capacity(members + 1)
    }

    fn member(object: &mut Self::Members, member: &'a Member, value: Self) {
        // A template object's keys are unique: they come from one JSON object.
        object.push_new(&member.key, value);
    }

    fn finish(object: Self::Members) -> Option<Self> {
        (!object.is_empty()).then_some(Tree::Object(object))
    }

    fn array(elements: Vec<Self>) -> Self {
        Tree::Array(elements)
    }
}

/// What placeholders can address while rendering: the event and the current item of each
/// enclosing `each`, outermost first, each through the slots of the paths read below it.
struct Scope<'a> {
    event: Memo<'a>,
    items: Vec<Memo<'a>>,
}

type Outcome<O> = Result<Option<O>, MappingError>;

/// Renders a template against an event value; `Ok(None)` when it is missing.
pub(super) fn render<'a, O: Output<'a>>(template: &'a Template, event: &'a Tree<'a>) -> Outcome<O> {
    let mut scope = Scope {
        event: Memo::new(&template.lookups, event),
        items: Vec::new(),
    };
    template.root.render(&mut scope)
}

impl Node {
    fn render<'a, O: Output<'a>>(&'a self, scope: &mut Scope<'a>) -> Outcome<O> {
        match self {
            Node::Const(constant) => Ok(Some(O::constant(constant))),
            Node::Whole { expr, pointer } => Ok(expr.evaluate(scope, pointer)?.map(O::value)),
            Node::Text { parts, pointer } => Ok(render_text(parts, scope, pointer)?.map(O::value)),
            Node::Object(members) => {
                let mut object = O::object(members.len());
                for member in members {
                    member.node.render_member::<O>(member, scope, &mut object)?;
                }
                Ok(O::finish(object))
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
                Ok((!rendered.is_empty()).then(|| O::array(rendered)))
            }
            Node::Each(each) => {
                let mut rendered = Vec::new();
                each.render_into(scope, &mut rendered)?;
                Ok((!rendered.is_empty()).then(|| O::array(rendered)))
            }
        }
    }

    /// Renders this node as `member` of an object under construction, adding it unless it is
    /// missing. A constant or a plain placeholder (no filter, not required) — most members of a
    /// preset — is built where it is added: returned from a call, every rendered value was
    /// written to the stack and read back at once, wider than written, and those loads stalled
    /// (a store is not forwarded to a wider load): the hottest instructions of the walk.
    #[inline(always)]
    fn render_member<'a, O: Output<'a>>(
        &'a self,
        member: &'a Member,
        scope: &mut Scope<'a>,
        object: &mut O::Members,
    ) -> Result<(), MappingError> {
        let value = match self {
            Node::Const(constant) => O::constant(constant),
            Node::Whole { expr, .. } if expr.is_plain() => match expr.first(scope) {
                Some(value) => O::value(Cow::Borrowed(value)),
                None => return Ok(()),
            },
            Node::Whole { expr, pointer } => match expr.evaluate(scope, pointer)? {
                Some(value) => O::value(value),
                None => return Ok(()),
            },
            other => match other.render(scope)? {
                Some(value) => value,
                None => return Ok(()),
            },
        };
        O::member(object, member, value);
        Ok(())
    }
}

impl Each {
    /// Appends one rendered body per item of the source; bodies that are missing are dropped.
    fn render_into<'a, O: Output<'a>>(
        &'a self,
        scope: &mut Scope<'a>,
        out: &mut Vec<O>,
    ) -> Result<(), MappingError> {
        let Some(source) = self
            .source
            .iter()
            .find_map(|operand| operand.resolve(scope))
        else {
            return Ok(());
        };
        let items = match source {
            Tree::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        let mut slots: Option<Memo<'a>> = None;
        for item in items {
            let memo = match slots.take() {
                Some(mut memo) => {
                    memo.reset(item);
                    memo
                }
                None => Memo::new(&self.item, item),
            };
            scope.items.push(memo);
            let rendered = self.body.render(scope);
            slots = scope.items.pop();
            out.extend(rendered?);
        }
        Ok(())
    }
}

impl Operand {
    fn resolve<'a>(&'a self, scope: &Scope<'a>) -> Option<&'a Tree<'a>> {
        match self {
            Operand::Event(slot) => scope.event.get(*slot),
            Operand::Item { depth, slot } => scope.items.get(*depth)?.get(*slot),
            Operand::Literal(value) => Some(value),
        }
    }
}

impl Expr {
    /// Without filters and not required: the expression is its first operand that is present.
    #[inline(always)]
    fn is_plain(&self) -> bool {
        self.filters.is_empty() && !self.required
    }

    /// The first operand that is not missing.
    #[inline(always)]
    fn first<'a>(&'a self, scope: &Scope<'a>) -> Option<&'a Tree<'a>> {
        self.operands.iter().find_map(|o| o.resolve(scope))
    }

    /// The first operand that is not missing, through every filter; `None` when missing.
    #[inline]
    fn evaluate<'a>(
        &'a self,
        scope: &Scope<'a>,
        pointer: &str,
    ) -> Result<Option<Cow<'a, Tree<'a>>>, MappingError> {
        let mut value = self.first(scope).map(Cow::Borrowed);
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

fn render_text<'a>(
    parts: &'a [TextPart],
    scope: &Scope<'a>,
    pointer: &str,
) -> Outcome<Cow<'a, Tree<'a>>> {
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
                    Tree::String(s) => text.push_str(s),
                    Tree::Number(n) => {
                        let _ = write!(text, "{n}");
                    }
                    other => text.push_str(&to_text(other)),
                }
            }
        }
    }
    Ok(Some(Cow::Owned(Tree::from(text))))
}

impl Rendered<'_> {
    /// Appends compact JSON, byte for byte what `serde_json::to_vec` gives for the same template
    /// rendered as a `Value`.
    pub(super) fn write_json(&self, out: &mut Vec<u8>) -> Result<(), MappingError> {
        match self {
            Rendered::Const(constant) => out.extend_from_slice(&constant.json),
            Rendered::Value(value) => value.write_json(out),
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
