//! The semantics of the operators, shared with the functions that compare
//! values (Switch, Contains).

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::functions::{describe, parse_datetime_str, parse_int, text, FnError};
use crate::Value;

/// Orders two values as the comparison operators do:
/// - values of the same type compare naturally (strings case-sensitively,
///   by code point; lists item by item);
/// - an integer and a string holding an integer compare numerically;
/// - a date-time and a string holding a date-time compare as instants;
/// - null equals null;
/// - anything else compares by its text (null as "", so `x == ""` holds
///   for a missing `x`).
pub(crate) fn compare(a: &Value, b: &Value) -> Ordering {
    use Value::*;
    match (a, b) {
        (Null, Null) => Ordering::Equal,
        (Str(x), Str(y)) => x.cmp(y),
        (Int(x), Int(y)) => x.cmp(y),
        (Bool(x), Bool(y)) => x.cmp(y),
        (Bytes(x), Bytes(y)) => x.cmp(y),
        (Ref(x), Ref(y)) => x.cmp(y),
        (DateTime(x), DateTime(y)) => x.cmp(y),
        (List(x), List(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| compare(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Int(x), Str(s)) => match parse_int(s) {
            Some(y) => x.cmp(&y),
            None => text(a).cmp(&text(b)),
        },
        (Str(s), Int(y)) => match parse_int(s) {
            Some(x) => x.cmp(y),
            None => text(a).cmp(&text(b)),
        },
        (DateTime(x), Str(s)) => match parse_datetime_str(s) {
            Some(y) => x.cmp(&y),
            None => text(a).cmp(&text(b)),
        },
        (Str(s), DateTime(y)) => match parse_datetime_str(s) {
            Some(x) => x.cmp(y),
            None => text(a).cmp(&text(b)),
        },
        _ => text(a).cmp(&text(b)),
    }
}

/// Equality as `==` sees it (see [`compare`]).
pub(crate) fn equals(a: &Value, b: &Value) -> bool {
    compare(a, b).is_eq()
}

/// `+`: integers add (overflow is an error); anything else concatenates
/// text, null acting as the empty string, except that null + null is null.
pub(crate) fn add(left: Cow<'_, Value>, right: Cow<'_, Value>) -> Result<Value, FnError> {
    match (&*left, &*right) {
        (Value::Int(a), Value::Int(b)) => a.checked_add(*b).map(Value::Int).ok_or_else(|| {
            FnError::new("overflow", format!("{a} + {b} overflows a 64-bit integer"))
        }),
        (Value::Null, Value::Null) => Ok(Value::Null),
        _ => {
            let mut out = match left {
                Cow::Owned(Value::Str(s)) => s,
                other => text(&other).into_owned(),
            };
            out.push_str(&text(&right));
            Ok(Value::Str(out))
        }
    }
}

/// `&`: text concatenation, whatever the types (null as the empty string;
/// null & null is null).
pub(crate) fn concat(left: Cow<'_, Value>, right: Cow<'_, Value>) -> Value {
    if left.is_null() && right.is_null() {
        return Value::Null;
    }
    let mut out = match left {
        Cow::Owned(Value::Str(s)) => s,
        other => text(&other).into_owned(),
    };
    out.push_str(&text(&right));
    Value::Str(out)
}

/// Binary `-` and `*`: integers (or strings holding integers); null on
/// either side gives null; overflow and non-numbers are errors.
pub(crate) fn arithmetic(multiply: bool, left: &Value, right: &Value) -> Result<Value, FnError> {
    let symbol = if multiply { "*" } else { "-" };
    let number = |v: &Value| match v {
        Value::Int(n) => Some(*n),
        Value::Str(s) => parse_int(s),
        _ => None,
    };
    if left.is_null() || right.is_null() {
        return Ok(Value::Null);
    }
    let (Some(a), Some(b)) = (number(left), number(right)) else {
        return Err(FnError::new(
            "type-mismatch",
            format!(
                "cannot compute {} {symbol} {}: `{symbol}` needs integers",
                describe(left),
                describe(right)
            ),
        ));
    };
    let result = if multiply {
        a.checked_mul(b)
    } else {
        a.checked_sub(b)
    };
    result.map(Value::Int).ok_or_else(|| {
        FnError::new(
            "overflow",
            format!("{a} {symbol} {b} overflows a 64-bit integer"),
        )
    })
}

/// Unary `-`: negates an integer or a string holding one; null stays null.
pub(crate) fn negate(value: &Value) -> Result<Value, FnError> {
    let n = match value {
        Value::Null => return Ok(Value::Null),
        Value::Int(n) => Some(*n),
        Value::Str(s) => parse_int(s),
        _ => None,
    };
    match n {
        Some(n) => n
            .checked_neg()
            .map(Value::Int)
            .ok_or_else(|| FnError::new("overflow", format!("-({n}) overflows a 64-bit integer"))),
        None => Err(FnError::new(
            "type-mismatch",
            format!("cannot negate {}: `-` needs an integer", describe(value)),
        )),
    }
}
