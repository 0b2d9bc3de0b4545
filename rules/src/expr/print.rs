//! The canonical printing of a syntax tree: what `Display` for `Expr`
//! writes. Parsing the output gives back an equal tree.

use std::fmt::{self, Write as _};

use super::{Kind, Node, UnaryOp, UNARY_PRECEDENCE};
use crate::Value;

pub(super) fn write_node(node: &Node, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match &node.kind {
        Kind::Literal(value) => write_literal(value, f),
        Kind::Missing => Ok(()),
        Kind::Var(name) => write!(f, "${name}"),
        Kind::Attribute(name) if is_bare_name(name) => f.write_str(name),
        Kind::Attribute(name) => write!(f, "[{name}]"),
        Kind::Unary(op, operand) => {
            f.write_str(op.symbol())?;
            // `-(5)` must not print as `-5`, which parses as a literal.
            let literal_int = matches!(operand.kind, Kind::Literal(Value::Int(_)));
            let parens =
                operand.precedence() < UNARY_PRECEDENCE || (*op == UnaryOp::Neg && literal_int);
            write_wrapped(operand, parens, f)
        }
        Kind::Binary(op, left, right) => {
            // Left-associative: parenthesise a right operand of equal precedence.
            write_wrapped(left, left.precedence() < op.precedence(), f)?;
            write!(f, " {} ", op.symbol())?;
            write_wrapped(right, right.precedence() <= op.precedence(), f)
        }
        Kind::Call(call) => {
            f.write_str(call.def.name)?;
            f.write_char('(')?;
            for (i, arg) in call.args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_node(arg, f)?;
            }
            f.write_char(')')
        }
    }
}

fn write_wrapped(node: &Node, parens: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if parens {
        f.write_char('(')?;
        write_node(node, f)?;
        f.write_char(')')
    } else {
        write_node(node, f)
    }
}

fn write_literal(value: &Value, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match value {
        Value::Null => f.write_str("null"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Int(i) => write!(f, "{i}"),
        Value::Str(s) => write_string(s, f),
        // Not produced by the parser; printed as the string it renders to.
        other => write_string(&other.to_string(), f),
    }
}

fn write_string(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Whether an attribute name can be written without brackets: an
/// identifier that is not a keyword.
pub(super) fn is_bare_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && ![
            "null",
            "true",
            "false",
            "IgnoreAttributeFlow",
            "IgnoreObjectFlow",
        ]
        .iter()
        .chain(super::parser::ENUM_WORDS)
        .any(|k| name.eq_ignore_ascii_case(k))
}
