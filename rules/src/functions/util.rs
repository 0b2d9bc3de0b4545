//! Helpers shared by the function units: argument coercions and the
//! elementwise application of a function to multi-valued arguments.

use std::borrow::Cow;

use super::FnError;
use crate::Value;

/// The text of a value as string functions see it: strings as they are,
/// null as the empty string, anything else rendered with `Display`.
pub(crate) fn text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Str(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

/// Converts a value to owned text without copying an owned string.
pub(crate) fn into_text(value: Value) -> String {
    match value {
        Value::Str(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Applies `f` to a single value, or to every item of a list (collecting
/// the results into a list, dropping nulls). Null stays null.
pub(crate) fn map_items(
    value: Value,
    mut f: impl FnMut(Value) -> Result<Value, FnError>,
) -> Result<Value, FnError> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(f(item)?);
            }
            Ok(Value::list(out))
        }
        single => f(single),
    }
}

/// Like [`map_items`], for functions of text: every non-null item is
/// converted to text first (non-strings through `Display`).
pub(crate) fn map_text(
    value: Value,
    mut f: impl FnMut(String) -> Result<Value, FnError>,
) -> Result<Value, FnError> {
    map_items(value, |item| f(into_text(item)))
}

/// Parses an integer written in a string, ignoring surrounding whitespace.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

/// An integer argument: an integer, or a string holding one. `what` names
/// the argument in errors ("Left: count must be …").
pub(crate) fn int_arg(value: &Value, function: &str, what: &str) -> Result<i64, FnError> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Str(s) => parse_int(s).ok_or_else(|| {
            FnError::bad_argument(format!(
                "{function}: {what} must be an integer, found \"{s}\""
            ))
        }),
        Value::Null => Err(FnError::bad_argument(format!(
            "{function}: {what} must be an integer, found null"
        ))),
        other => Err(FnError::bad_argument(format!(
            "{function}: {what} must be an integer, found {}",
            describe(other)
        ))),
    }
}

/// A count argument: a non-negative integer that fits a `usize`.
pub(crate) fn count_arg(value: &Value, function: &str, what: &str) -> Result<usize, FnError> {
    let n = int_arg(value, function, what)?;
    usize::try_from(n).map_err(|_| {
        FnError::bad_argument(format!(
            "{function}: {what} must not be negative, found {n}"
        ))
    })
}

/// A short description of a value for error messages: its type and, for
/// short values, the value itself.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Str(s) => format!("\"{s}\""),
        Value::Int(i) => format!("the integer {i}"),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Bytes(b) => format!("{} bytes of binary", b.len()),
        Value::Ref(id) => format!("the reference {id}"),
        Value::DateTime(_) => format!("the date-time {value}"),
        Value::List(items) => format!("a list of {} values", items.len()),
    }
}

/// The first `n` characters of `s`, in place.
pub(crate) fn keep_first_chars(mut s: String, n: usize) -> String {
    if let Some((cut, _)) = s.char_indices().nth(n) {
        s.truncate(cut);
    }
    s
}

/// Levenshtein distance between two short ASCII-ish strings, by characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_first_chars_never_splits_a_character() {
        assert_eq!(keep_first_chars("Zoë".into(), 3), "Zoë");
        assert_eq!(keep_first_chars("Zoë".into(), 2), "Zo");
        assert_eq!(keep_first_chars("日本語".into(), 1), "日");
        assert_eq!(keep_first_chars(String::new(), 4), "");
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("lowr", "lower"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }

    #[test]
    fn int_arg_accepts_numeric_strings_only() {
        assert_eq!(int_arg(&Value::from(" 12 "), "F", "n"), Ok(12));
        assert!(int_arg(&Value::from("x"), "F", "n").is_err());
        assert!(int_arg(&Value::Null, "F", "n").is_err());
        assert_eq!(
            count_arg(&Value::Int(-1), "F", "n").map_err(|e| e.code),
            Err("bad-argument")
        );
    }
}
