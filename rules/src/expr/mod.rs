//! Expressions: the small language of flows, scoping filters and join
//! criteria. This module owns the syntax tree, the lexer and parser, the
//! canonical printer and the evaluator; the functions a call can name live
//! in [`crate::functions`].
//!
//! ```text
//! expr    := or
//! or      := and ("||" and)*
//! and     := cmp ("&&" cmp)*
//! cmp     := cat (("==" | "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") cat)*
//! cat     := add ("&" add)*                          text concatenation
//! add     := mul (("+" | "-") mul)*
//! mul     := unary ("*" unary)*
//! unary   := ("!" | "-") unary | primary
//! primary := INT | "&H" HEX | DECIMAL | STRING | "true" | "false" | "null"
//!          | NAME "(" [arg ("," arg)*] ")"          function call
//!          | NAME | "[" any characters but "]" "]"   attribute
//!          | "(" expr ")"
//! arg     := expr | (nothing)                        an empty slot
//!          | "$" NAME                                a variable (Select, Where, With)
//! ```
//!
//! The VBScript forms the Entra references use are accepted beside the
//! C-like ones: `=` and `<>` compare, `&` concatenates, `&H1F` is
//! hexadecimal. An empty argument slot (`Replace(x, "a", , , "b", , )`)
//! means the argument is not given: it evaluates to null, and the printer
//! prints it as an empty slot again. A decimal number (`1.5`) is a string
//! holding its text (values have no fractional type; functions that read
//! numbers parse it). The printer writes the C-like forms.
//!
//! An expression is parsed once, when the configuration is loaded: unknown
//! functions, wrong arities and invalid literal regexes and formats are
//! reported then, with the span of the offending text. Evaluation walks the
//! tree without re-parsing or re-compiling anything.
//!
//! Invariant: a tree is only ever built by the parser (or by tests), so
//! literals hold only null, strings, integers and booleans.

use std::fmt;
use std::str::FromStr;

use crate::functions::{FunctionDef, Prepared};
use crate::{Env, EvalError, ParseError, Span, Value, ValueType};

mod eval;
mod lexer;
pub(crate) mod ops;
mod parser;
mod print;
#[cfg(test)]
mod tests;

/// A parsed expression: the syntax tree and the text it was parsed from.
///
/// Equality compares trees only: `Lower( x )` equals `lower(x)`.
#[derive(Clone, Debug)]
pub struct Expr {
    root: Node,
    source: String,
    /// The most argument values pending at once during evaluation, so the
    /// evaluator allocates its argument stack once.
    stack: usize,
    /// Whether it calls a function that generates a value (see
    /// [`Expr::generates`]), found once at parse: sync asks for every flow
    /// of every object.
    generates: bool,
}

/// The functions whose value is generated once, at provisioning, and then
/// kept: a unique value, a unique number, a GUID.
const GENERATORS: [&str; 3] = ["SelectUniqueValue", "UniqueNumbered", "Guid"];

impl Expr {
    /// Parses an expression. Errors carry a code and the byte span of the
    /// offending text: `unexpected-token`, `unexpected-end`,
    /// `unexpected-character`, `unterminated-string`, `bad-escape`,
    /// `unterminated-attribute`, `empty-attribute`, `int-overflow`,
    /// `too-deep` (more than 256 levels of nesting), `unknown-function`
    /// (span on the name), `arity` (span on the call), and errors a
    /// function reports on a constant argument, such as `bad-regex` and
    /// `bad-format` (span on the argument).
    pub fn parse(src: &str) -> Result<Expr, ParseError> {
        let root = parser::parse(src)?;
        Ok(Expr::from_tree(root, src.to_owned()))
    }

    fn from_tree(root: Node, source: String) -> Expr {
        let mut expr = Expr {
            stack: root.stack_need(),
            root,
            source,
            generates: false,
        };
        expr.generates = GENERATORS.iter().any(|f| expr.calls(f));
        expr
    }

    /// Whether it calls a function whose value is generated once, at
    /// provisioning, and then kept (`SelectUniqueValue`, `UniqueNumbered`,
    /// `Guid`).
    pub fn generates(&self) -> bool {
        self.generates
    }

    /// Evaluates the expression against one object.
    pub fn eval(&self, env: &dyn Env) -> Result<Value, EvalError> {
        let mut stack = Vec::with_capacity(self.stack);
        eval::eval(&self.root, env, &mut stack).map(std::borrow::Cow::into_owned)
    }

    /// The attribute names the expression reads, sorted and deduplicated.
    pub fn attributes(&self) -> Vec<&str> {
        let mut names = Vec::new();
        self.root.visit(&mut |node| {
            if let Kind::Attribute(name) = &node.kind {
                names.push(&**name);
            }
        });
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The attribute name when the whole expression is a bare attribute
    /// reference, such as `mail` or `[mS-DS-ConsistencyGuid]`.
    pub fn as_attribute(&self) -> Option<&str> {
        match &self.root.kind {
            Kind::Attribute(name) => Some(name),
            _ => None,
        }
    }

    /// The value when the whole expression is a literal, such as `512`,
    /// `"Employee"`, `-1` or `null`.
    pub fn as_constant(&self) -> Option<&Value> {
        match &self.root.kind {
            Kind::Literal(value) => Some(value),
            _ => None,
        }
    }

    /// The type of value the expression gives (each value, when it gives a
    /// list), where that is known without data: a literal, a comparison or
    /// logical operator (boolean), `+` (an integer when both sides are, else
    /// a string) and calls of functions that declare what they return.
    /// `None` for attributes and for functions that return one of their
    /// arguments (`IIF`, `Coalesce`, `Item`, ...).
    pub fn value_type(&self) -> Option<ValueType> {
        self.root.value_type()
    }

    /// Forms that parse but may not mean what their author meant, for
    /// `validate`: a Switch in provisioning's form `Switch(source, default,
    /// key, value, …)` with a boolean key reads as the inverse of Entra
    /// Connect's `Switch(condition, value, …)` (`Switch([isEnabled],
    /// "Enabled", True, "Disabled")` gives "Disabled" for an enabled
    /// account). Each with its span in the source.
    pub fn lints(&self) -> Vec<(Span, String)> {
        let mut out = Vec::new();
        self.root.visit(&mut |node| {
            let Kind::Call(call) = &node.kind else {
                return;
            };
            let provisioning_switch = call.def.name == "Switch"
                && !std::ptr::eq(call.def, &crate::functions::SWITCH_CONDITIONS);
            let boolean_key = call
                .args
                .iter()
                .skip(2)
                .step_by(2)
                .any(|k| matches!(k.kind, Kind::Literal(Value::Bool(_))));
            if provisioning_switch && boolean_key {
                out.push((
                    node.span.clone(),
                    "this Switch reads as Switch(source, default, key, value, …) because its first argument is not a condition; for Entra Connect's Switch(condition, value, …) write the first argument as a condition (`[isEnabled] = True`)".to_owned(),
                ));
            }
        });
        out
    }

    /// Whether the expression calls the named function anywhere (the name
    /// matched case-insensitively), e.g. `calls("SelectUniqueValue")`.
    pub fn calls(&self, function: &str) -> bool {
        let mut found = false;
        self.root.visit(&mut |node| {
            if let Kind::Call(call) = &node.kind {
                found |= call.def.name.eq_ignore_ascii_case(function);
            }
        });
        found
    }

    /// The span of the whole expression within [`Expr::source`] (without
    /// surrounding whitespace).
    pub fn span(&self) -> Span {
        self.root.span.clone()
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl Eq for Expr {}

impl FromStr for Expr {
    type Err = ParseError;

    fn from_str(src: &str) -> Result<Expr, ParseError> {
        Expr::parse(src)
    }
}

impl fmt::Display for Expr {
    /// The canonical form: canonical function names, double-quoted strings,
    /// single spaces around binary operators and parentheses only where
    /// precedence needs them. Parsing it gives an equal expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        print::write_node(&self.root, f)
    }
}

/// A node of the syntax tree and the source span it was parsed from.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) span: Span,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Literal(Value),
    /// An empty argument slot: the argument is not given (null).
    Missing,
    /// A variable bound by Select, Where or With (`$item`).
    Var(Box<str>),
    Attribute(Box<str>),
    Unary(UnaryOp, Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    Call(Call),
}

/// A function call, resolved to its definition at parse time.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) def: &'static FunctionDef,
    pub(crate) args: Vec<Node>,
    pub(crate) prepared: Prepared,
    /// How the evaluator runs it, decided once here so that evaluation
    /// compares no names.
    pub(crate) form: Form,
}

/// How a call is evaluated: most evaluate every argument first; IIF and
/// the Switches evaluate only the branch they take; Select, Where and With
/// bind a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    Eager,
    Iif,
    Switch,
    SwitchConditions,
    Select,
    Where,
    With,
}

impl Call {
    pub(crate) fn new(def: &'static FunctionDef, args: Vec<Node>, prepared: Prepared) -> Call {
        let form = match def.name {
            _ if std::ptr::eq(def, &crate::functions::SWITCH_CONDITIONS) => Form::SwitchConditions,
            "IIF" => Form::Iif,
            "Switch" => Form::Switch,
            "Select" => Form::Select,
            "Where" => Form::Where,
            "With" => Form::With,
            _ => Form::Eager,
        };
        Call {
            def,
            args,
            prepared,
            form,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
    Add,
    Sub,
    Mul,
}

/// The precedence of unary operators; binary ones are below, primaries above.
pub(crate) const UNARY_PRECEDENCE: u8 = 7;
/// The precedence of literals, attributes, calls and parenthesised expressions.
pub(crate) const PRIMARY_PRECEDENCE: u8 = 8;

impl BinaryOp {
    /// Binding strength: higher binds tighter. All binary operators are
    /// left-associative.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => 3,
            BinaryOp::Concat => 4,
            BinaryOp::Add | BinaryOp::Sub => 5,
            BinaryOp::Mul => 6,
        }
    }

    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Concat => "&",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
        }
    }
}

impl UnaryOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Not => "!",
            UnaryOp::Neg => "-",
        }
    }
}

impl Node {
    pub(crate) fn new(kind: Kind, span: Span) -> Node {
        Node { kind, span }
    }

    fn value_type(&self) -> Option<ValueType> {
        match &self.kind {
            Kind::Literal(v) => v.items().first().and_then(Value::value_type),
            Kind::Attribute(_) | Kind::Missing | Kind::Var(_) => None,
            Kind::Binary(BinaryOp::Concat, ..) => Some(ValueType::String),
            Kind::Binary(BinaryOp::Sub | BinaryOp::Mul, ..) => Some(ValueType::Integer),
            Kind::Unary(UnaryOp::Not, _) => Some(ValueType::Boolean),
            Kind::Unary(UnaryOp::Neg, _) => Some(ValueType::Integer),
            Kind::Binary(BinaryOp::Add, l, r) => match (l.value_type(), r.value_type()) {
                (Some(ValueType::Integer), Some(ValueType::Integer)) => Some(ValueType::Integer),
                (Some(ValueType::Integer), None)
                | (None, Some(ValueType::Integer))
                | (None, None) => None,
                _ => Some(ValueType::String),
            },
            Kind::Binary(..) => Some(ValueType::Boolean),
            Kind::Call(call) => call.def.returns,
        }
    }

    pub(crate) fn precedence(&self) -> u8 {
        match &self.kind {
            Kind::Binary(op, ..) => op.precedence(),
            Kind::Unary(..) => UNARY_PRECEDENCE,
            Kind::Literal(_)
            | Kind::Attribute(_)
            | Kind::Call(_)
            | Kind::Missing
            | Kind::Var(_) => PRIMARY_PRECEDENCE,
        }
    }

    /// Calls `f` on this node and every node below it, parents first.
    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        f(self);
        match &self.kind {
            Kind::Literal(_) | Kind::Attribute(_) | Kind::Missing | Kind::Var(_) => {}
            Kind::Unary(_, operand) => operand.visit(f),
            Kind::Binary(_, left, right) => {
                left.visit(f);
                right.visit(f);
            }
            Kind::Call(call) => call.args.iter().for_each(|arg| arg.visit(f)),
        }
    }

    /// The most argument values pending at once while evaluating this node.
    fn stack_need(&self) -> usize {
        match &self.kind {
            Kind::Literal(_) | Kind::Attribute(_) | Kind::Missing | Kind::Var(_) => 0,
            Kind::Unary(_, operand) => operand.stack_need(),
            Kind::Binary(_, left, right) => left.stack_need().max(right.stack_need()),
            Kind::Call(call) => call
                .args
                .iter()
                .enumerate()
                .map(|(i, arg)| i + arg.stack_need())
                .max()
                .unwrap_or(0)
                .max(call.args.len()),
        }
    }
}

impl PartialEq for Node {
    /// Structural equality, ignoring spans and prepared state.
    fn eq(&self, other: &Self) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Literal(a), Kind::Literal(b)) => a == b,
            (Kind::Attribute(a), Kind::Attribute(b)) => a == b,
            (Kind::Missing, Kind::Missing) => true,
            (Kind::Var(a), Kind::Var(b)) => a == b,
            (Kind::Unary(op_a, a), Kind::Unary(op_b, b)) => op_a == op_b && a == b,
            (Kind::Binary(op_a, la, ra), Kind::Binary(op_b, lb, rb)) => {
                op_a == op_b && la == lb && ra == rb
            }
            (Kind::Call(a), Kind::Call(b)) => a.def.name == b.def.name && a.args == b.args,
            _ => false,
        }
    }
}
