//! Evaluates a syntax tree against one object.
//!
//! Literals are borrowed from the tree, not copied; argument values of calls
//! live on one stack allocated per evaluation, and functions move them out
//! instead of cloning.

use std::borrow::Cow;

use super::{ops, BinaryOp, Form, Kind, Node, UnaryOp};
use crate::functions::{Args, FnError};
use crate::{Env, EvalError, Value};

/// An environment with one more variable bound (Select, Where, With).
struct Bound<'a> {
    inner: &'a dyn Env,
    name: &'a str,
    value: Value,
}

impl<'a> Bound<'a> {
    fn new(inner: &'a dyn Env, var: &'a Node, value: Value) -> Bound<'a> {
        let name = match &var.kind {
            Kind::Var(name) => &**name,
            _ => "",
        };
        Bound { inner, name, value }
    }
}

impl Env for Bound<'_> {
    fn attribute(&self, name: &str) -> Result<Value, crate::ReadError> {
        self.inner.attribute(name)
    }
    fn now(&self) -> i64 {
        self.inner.now()
    }
    fn value_in_use(&self, candidate: &Value) -> Option<bool> {
        self.inner.value_in_use(candidate)
    }
    fn random(&self) -> Option<u128> {
        self.inner.random()
    }
    fn variable(&self, name: &str) -> Option<Value> {
        if name == self.name {
            Some(self.value.clone())
        } else {
            self.inner.variable(name)
        }
    }
}

fn at(node: &Node) -> impl FnOnce(FnError) -> EvalError + '_ {
    move |e| EvalError {
        code: e.code,
        message: e.message,
        span: node.span.clone(),
    }
}

pub(super) fn eval<'e>(
    node: &'e Node,
    env: &dyn Env,
    stack: &mut Vec<Cow<'e, Value>>,
) -> Result<Cow<'e, Value>, EvalError> {
    Ok(match &node.kind {
        Kind::Literal(value) => Cow::Borrowed(value),
        Kind::Missing => Cow::Owned(Value::Null),
        Kind::Var(name) => Cow::Owned(env.variable(name).ok_or_else(|| EvalError {
            code: "unbound-variable",
            message: format!("`${name}` is not bound"),
            span: node.span.clone(),
        })?),
        Kind::Call(call) if call.form == Form::With => {
            let value = eval(&call.args[1], env, stack)?.into_owned();
            let bound = Bound::new(env, &call.args[0], value);
            Cow::Owned(eval(&call.args[2], &bound, &mut Vec::new())?.into_owned())
        }
        Kind::Call(call) if matches!(call.form, Form::Select | Form::Where) => {
            let source = eval(&call.args[1], env, stack)?.into_owned();
            let keep_only = call.form == Form::Where;
            let mut out = Vec::new();
            for item in source.items() {
                let bound = Bound::new(env, &call.args[0], item.clone());
                let result = eval(&call.args[2], &bound, &mut Vec::new())?.into_owned();
                if keep_only {
                    if result.truthy() {
                        out.push(item.clone());
                    }
                } else {
                    out.push(result);
                }
            }
            Cow::Owned(Value::list(out))
        }
        Kind::Attribute(name) => Cow::Owned(env.attribute(name).map_err(|e| EvalError {
            code: "attribute-read-failed",
            message: e.to_string(),
            span: node.span.clone(),
        })?),
        Kind::Unary(UnaryOp::Not, operand) => {
            Cow::Owned(Value::Bool(!eval(operand, env, stack)?.truthy()))
        }
        Kind::Unary(UnaryOp::Neg, operand) => {
            let value = eval(operand, env, stack)?;
            Cow::Owned(ops::negate(&value).map_err(at(node))?)
        }
        Kind::Binary(BinaryOp::And, left, right) => Cow::Owned(Value::Bool(
            eval(left, env, stack)?.truthy() && eval(right, env, stack)?.truthy(),
        )),
        Kind::Binary(BinaryOp::Or, left, right) => Cow::Owned(Value::Bool(
            eval(left, env, stack)?.truthy() || eval(right, env, stack)?.truthy(),
        )),
        Kind::Binary(BinaryOp::Add, left, right) => {
            let left = eval(left, env, stack)?;
            let right = eval(right, env, stack)?;
            Cow::Owned(ops::add(left, right).map_err(at(node))?)
        }
        Kind::Binary(BinaryOp::Concat, left, right) => {
            let left = eval(left, env, stack)?;
            let right = eval(right, env, stack)?;
            Cow::Owned(ops::concat(left, right))
        }
        Kind::Binary(op @ (BinaryOp::Sub | BinaryOp::Mul), left, right) => {
            let left = eval(left, env, stack)?;
            let right = eval(right, env, stack)?;
            Cow::Owned(ops::arithmetic(*op == BinaryOp::Mul, &left, &right).map_err(at(node))?)
        }
        Kind::Binary(op, left, right) => {
            let left = eval(left, env, stack)?;
            let right = eval(right, env, stack)?;
            let order = ops::compare(&left, &right);
            Cow::Owned(Value::Bool(match op {
                BinaryOp::Eq => order.is_eq(),
                BinaryOp::Ne => order.is_ne(),
                BinaryOp::Lt => order.is_lt(),
                BinaryOp::Le => order.is_le(),
                BinaryOp::Gt => order.is_gt(),
                BinaryOp::Ge => order.is_ge(),
                BinaryOp::And
                | BinaryOp::Or
                | BinaryOp::Add
                | BinaryOp::Concat
                | BinaryOp::Sub
                | BinaryOp::Mul => false,
            }))
        }
        // IIF and Switch evaluate only the branch they take, so a branch
        // that fails (Error) or skips the flow (IgnoreAttributeFlow,
        // IgnoreObjectFlow) acts only when it is chosen.
        Kind::Call(call) if call.form == Form::Iif => {
            let chosen = if eval(&call.args[0], env, stack)?.truthy() {
                1
            } else {
                2
            };
            eval(&call.args[chosen], env, stack)?
        }
        Kind::Call(call) if call.form == Form::SwitchConditions => {
            for condition in (0..call.args.len()).step_by(2) {
                if eval(&call.args[condition], env, stack)?.truthy() {
                    return eval(&call.args[condition + 1], env, stack);
                }
            }
            Cow::Owned(Value::Null)
        }
        Kind::Call(call) if call.form == Form::Switch => {
            let source = eval(&call.args[0], env, stack)?;
            let mut chosen = 1;
            for key in (2..call.args.len()).step_by(2) {
                let candidate = eval(&call.args[key], env, stack)?;
                if ops::equals(&source, &candidate) {
                    chosen = key + 1;
                    break;
                }
            }
            eval(&call.args[chosen], env, stack)?
        }
        Kind::Call(call) => {
            let base = stack.len();
            for arg in &call.args {
                let value = eval(arg, env, stack)?;
                stack.push(value);
            }
            let result = match stack.get_mut(base..) {
                Some(values) => (call.def.eval)(&mut Args::new(values, &call.prepared), env),
                None => Ok(Value::Null),
            };
            stack.truncate(base);
            Cow::Owned(result.map_err(at(node))?)
        }
    })
}
