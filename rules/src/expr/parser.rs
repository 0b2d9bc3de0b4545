//! Builds the syntax tree from tokens (precedence climbing), resolving
//! function names, checking arities and running the functions' parse-time
//! preparation on constant arguments.

use super::lexer::{lex, Tok, Token};
use super::{BinaryOp, Call, Form, Kind, Node, UnaryOp};
use crate::functions::{self, Prepared};
use crate::{ParseError, Span, Value};

/// The deepest nesting accepted. It bounds the recursion of the parser, the
/// evaluator, the printer and `Drop`, so that no input can overflow the stack.
pub(super) const MAX_DEPTH: usize = 256;

static NULL: Value = Value::Null;

fn error(code: &'static str, message: impl Into<String>, span: Span) -> ParseError {
    ParseError {
        code,
        message: message.into(),
        span,
    }
}

/// Parses a whole expression.
pub(super) fn parse(src: &str) -> Result<Node, ParseError> {
    let tokens = lex(src)?;
    let eof = Token {
        tok: Tok::Eof,
        span: src.len()..src.len(),
    };
    let mut parser = Parser {
        tokens: tokens.into_iter(),
        peeked: None,
        eof,
        depth: 0,
    };
    let node = parser.expr(0)?;
    check_variables(&node, &mut Vec::new())?;
    let rest = parser.next();
    if rest.tok != Tok::Eof {
        return Err(error(
            "unexpected-token",
            format!(
                "expected an operator or the end of the expression, found {}",
                rest.tok.describe()
            ),
            rest.span,
        ));
    }
    Ok(node)
}

/// Every `$variable` is bound by an enclosing Select, Where or With, whose
/// first argument is a variable.
fn check_variables<'n>(node: &'n Node, bound: &mut Vec<&'n str>) -> Result<(), ParseError> {
    match &node.kind {
        Kind::Var(name) if !bound.contains(&&**name) => Err(error(
            "unbound-variable",
            format!("`${name}` is not bound here: variables are introduced by Select, Where and With (`Select($item, [proxyAddresses], Lower($item))`)"),
            node.span.clone(),
        )),
        Kind::Call(call) if matches!(call.form, Form::Select | Form::Where | Form::With) => {
            let Some(Kind::Var(name)) = call.args.first().map(|a| &a.kind) else {
                let at = call.args.first().map_or(node.span.clone(), |a| a.span.clone());
                return Err(error(
                    "unbound-variable",
                    format!("{}: the first argument names the variable, as `$item`", call.def.name),
                    at,
                ));
            };
            // The values (With's value, Select's and Where's list) are
            // computed outside the binding; the last argument inside it.
            for arg in call.args.iter().take(2).skip(1) {
                check_variables(arg, bound)?;
            }
            bound.push(name);
            for arg in call.args.iter().skip(2) {
                check_variables(arg, bound)?;
            }
            bound.pop();
            Ok(())
        }
        Kind::Call(call) => call.args.iter().try_for_each(|a| check_variables(a, bound)),
        Kind::Unary(_, operand) => check_variables(operand, bound),
        Kind::Binary(_, left, right) => {
            check_variables(left, bound)?;
            check_variables(right, bound)
        }
        _ => Ok(()),
    }
}

struct Parser<'s> {
    tokens: std::vec::IntoIter<Token<'s>>,
    peeked: Option<Token<'s>>,
    eof: Token<'s>,
    depth: usize,
}

fn binary_op(tok: &Tok<'_>) -> Option<BinaryOp> {
    Some(match tok {
        Tok::OrOr => BinaryOp::Or,
        Tok::AndAnd => BinaryOp::And,
        Tok::EqEq => BinaryOp::Eq,
        Tok::NotEq => BinaryOp::Ne,
        Tok::Lt => BinaryOp::Lt,
        Tok::Le => BinaryOp::Le,
        Tok::Gt => BinaryOp::Gt,
        Tok::Ge => BinaryOp::Ge,
        Tok::Amp => BinaryOp::Concat,
        Tok::Plus => BinaryOp::Add,
        Tok::Minus => BinaryOp::Sub,
        Tok::Star => BinaryOp::Mul,
        _ => return None,
    })
}

/// An error for `found` where `expected` was expected.
fn unexpected(found: &Token<'_>, expected: &str) -> ParseError {
    if found.tok == Tok::Eof {
        error(
            "unexpected-end",
            format!("expected {expected}, found the end of the expression"),
            found.span.clone(),
        )
    } else {
        error(
            "unexpected-token",
            format!("expected {expected}, found {}", found.tok.describe()),
            found.span.clone(),
        )
    }
}

/// Bare words the Entra references use as constants, read as strings.
pub(super) const ENUM_WORDS: &[&str] = &[
    "vbTextCompare",
    "vbBinaryCompare",
    "UTF8",
    "UTF16",
    "ASCII",
    "Unicode",
    "CaseSensitive",
    "CaseInsensitive",
];

fn is_keyword(name: &str, keyword: &str) -> bool {
    name.eq_ignore_ascii_case(keyword)
}

impl<'s> Parser<'s> {
    fn peek(&mut self) -> &Token<'s> {
        if self.peeked.is_none() {
            self.peeked = self.tokens.next();
        }
        self.peeked.as_ref().unwrap_or(&self.eof)
    }

    fn next(&mut self) -> Token<'s> {
        match self.peeked.take() {
            Some(token) => token,
            None => self.tokens.next().unwrap_or_else(|| self.eof.clone()),
        }
    }

    /// Goes one level deeper, failing past [`MAX_DEPTH`].
    fn descend(&mut self, at: Span) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error(
                "too-deep",
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
                at,
            ));
        }
        Ok(())
    }

    /// An expression whose binary operators all bind at least as tightly as
    /// `min_precedence`.
    fn expr(&mut self, min_precedence: u8) -> Result<Node, ParseError> {
        let saved = self.depth;
        let at = self.peek().span.clone();
        self.descend(at)?;
        let mut left = self.unary()?;
        while let Some(op) = binary_op(&self.peek().tok) {
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            let op_span = self.next().span;
            // Each operator of a left-leaning chain adds a level to the tree.
            self.descend(op_span)?;
            let right = self.expr(precedence + 1)?;
            let span = left.span.start..right.span.end;
            left = Node::new(Kind::Binary(op, Box::new(left), Box::new(right)), span);
        }
        self.depth = saved;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        let op = match self.peek().tok {
            Tok::Bang => UnaryOp::Not,
            Tok::Minus => UnaryOp::Neg,
            _ => return self.primary(),
        };
        let op_span = self.next().span;
        if op == UnaryOp::Neg {
            if let Tok::Decimal(digits) = self.peek().tok {
                // A negative decimal is its text too.
                let literal = self.next();
                let span = op_span.start..literal.span.end;
                return Ok(Node::new(
                    Kind::Literal(Value::Str(format!("-{digits}"))),
                    span,
                ));
            }
            if let Tok::Int(magnitude) = self.peek().tok {
                // A negative literal, so that i64::MIN can be written.
                let literal = self.next();
                let span = op_span.start..literal.span.end;
                return match 0i64.checked_sub_unsigned(magnitude) {
                    Some(value) => Ok(Node::new(Kind::Literal(Value::Int(value)), span)),
                    None => Err(error(
                        "int-overflow",
                        format!(
                            "integer -{magnitude} is too small: integers are 64-bit, at least {}",
                            i64::MIN
                        ),
                        span,
                    )),
                };
            }
        }
        let saved = self.depth;
        self.descend(op_span.clone())?;
        let operand = self.unary()?;
        self.depth = saved;
        let span = op_span.start..operand.span.end;
        Ok(Node::new(Kind::Unary(op, Box::new(operand)), span))
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let token = self.next();
        let kind = match token.tok {
            Tok::Int(n) => match i64::try_from(n) {
                Ok(value) => Kind::Literal(Value::Int(value)),
                Err(_) => {
                    return Err(error(
                        "int-overflow",
                        format!(
                            "integer {n} is too large: integers are 64-bit, at most {}",
                            i64::MAX
                        ),
                        token.span,
                    ))
                }
            },
            Tok::Decimal(d) => Kind::Literal(Value::Str(d.to_owned())),
            Tok::Str(s) => Kind::Literal(Value::Str(s)),
            Tok::Attr(name) => Kind::Attribute(name.into()),
            Tok::Var(name) => Kind::Var(name.into()),
            Tok::Ident(name) => {
                if self.peek().tok == Tok::LParen {
                    return self.call(name, token.span);
                }
                // Entra's keywords: a call without parentheses.
                if is_keyword(name, "IgnoreAttributeFlow") || is_keyword(name, "IgnoreObjectFlow") {
                    let def = functions::function(name).ok_or_else(|| {
                        error(
                            "unknown-function",
                            format!("unknown function `{name}`"),
                            token.span.clone(),
                        )
                    })?;
                    return Ok(Node::new(
                        Kind::Call(Call::new(def, Vec::new(), Prepared::none())),
                        token.span,
                    ));
                }
                // The enumeration words the references pass bare
                // (`InStr(a, b, 1, vbTextCompare)`, `ConvertFromBase64(x, UTF8)`).
                if ENUM_WORDS.iter().any(|w| is_keyword(name, w)) {
                    return Ok(Node::new(
                        Kind::Literal(Value::Str(name.to_owned())),
                        token.span,
                    ));
                }
                if is_keyword(name, "null") {
                    Kind::Literal(Value::Null)
                } else if is_keyword(name, "true") {
                    Kind::Literal(Value::Bool(true))
                } else if is_keyword(name, "false") {
                    Kind::Literal(Value::Bool(false))
                } else {
                    Kind::Attribute(name.into())
                }
            }
            Tok::LParen => {
                let inner = self.expr(0)?;
                let close = self.next();
                if close.tok != Tok::RParen {
                    return Err(unexpected(&close, "`)` to close the parenthesis"));
                }
                return Ok(Node::new(inner.kind, token.span.start..close.span.end));
            }
            _ => return Err(unexpected(&token, "an expression")),
        };
        Ok(Node::new(kind, token.span))
    }

    fn call(&mut self, name: &str, name_span: Span) -> Result<Node, ParseError> {
        let Some(def) = functions::function(name) else {
            let hint = functions::suggest(name)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(error(
                "unknown-function",
                format!("unknown function `{name}`{hint}"),
                name_span,
            ));
        };
        self.next(); // `(`
        let mut args = Vec::new();
        let end = if self.peek().tok == Tok::RParen {
            self.next().span.end
        } else {
            loop {
                // An empty slot: `f(a, , c)`, `f(a, )`, `f(, b)`.
                if matches!(self.peek().tok, Tok::Comma | Tok::RParen) {
                    let at = self.peek().span.start;
                    args.push(Node::new(Kind::Missing, at..at));
                } else {
                    args.push(self.expr(0)?);
                }
                let separator = self.next();
                match separator.tok {
                    Tok::Comma => continue,
                    Tok::RParen => break separator.span.end,
                    _ => {
                        return Err(unexpected(
                            &separator,
                            &format!("`,` or `)` in the arguments of {}", def.name),
                        ))
                    }
                }
            }
        };
        let span = name_span.start..end;
        // Entra Connect's Switch takes condition/value pairs: told from
        // provisioning's Switch(source, default, key, value…) by a first
        // argument that is a condition.
        let def = if def.name == "Switch"
            && args
                .first()
                .is_some_and(|a| a.value_type() == Some(crate::ValueType::Boolean))
        {
            &functions::SWITCH_CONDITIONS
        } else {
            def
        };
        if !def.accepts(args.len()) {
            return Err(error(
                "arity",
                format!(
                    "{} takes {}, found {}: {}",
                    def.name,
                    def.arity_text(),
                    args.len(),
                    def.signature
                ),
                span,
            ));
        }
        let prepared = match def.prepare {
            None => Prepared::none(),
            Some(prepare) => {
                let constants: Vec<Option<&Value>> = args
                    .iter()
                    .map(|arg| match &arg.kind {
                        Kind::Literal(value) => Some(value),
                        // An empty slot is a written null: not given.
                        Kind::Missing => Some(&NULL),
                        _ => None,
                    })
                    .collect();
                prepare(&constants).map_err(|e| {
                    let at = e
                        .arg
                        .and_then(|i| args.get(i))
                        .map_or_else(|| span.clone(), |arg| arg.span.clone());
                    error(e.code, format!("{}: {}", def.name, e.message), at)
                })?
            }
        };
        Ok(Node::new(Kind::Call(Call::new(def, args, prepared)), span))
    }
}
