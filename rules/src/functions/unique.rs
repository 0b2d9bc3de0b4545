//! Unique value generation: SelectUniqueValue, UniqueNumbered.
//!
//! Uniqueness is asked of the environment ([`Env::value_in_use`]), which
//! knows the target connector space(s) and the values chosen earlier in the
//! run. Where uniqueness has no meaning (scoping, inbound flows) the
//! environment answers `None` and these functions fail with `not-outbound`.
//! When every candidate is taken they fail with `no-unique-value`.

use super::util::{count_arg, describe, keep_first_chars};
use super::{Args, FnError, FunctionDef};
use crate::{Env, Value, ValueType};

fn not_outbound(function: &str) -> FnError {
    FnError::new(
        "not-outbound",
        format!("{function} can only be used in an outbound flow"),
    )
}

/// Asks the environment whether `candidate` is free.
fn is_free(env: &dyn Env, candidate: &Value, function: &str) -> Result<bool, FnError> {
    match env.value_in_use(candidate) {
        Some(in_use) => Ok(!in_use),
        None => Err(not_outbound(function)),
    }
}

pub(super) const SELECT_UNIQUE_VALUE: FunctionDef = FunctionDef {
    name: "SelectUniqueValue",
    returns: Some(ValueType::String),
    signature: "SelectUniqueValue(candidate1, candidate2, ...)",
    min_args: 1,
    max_args: None,
    pairs: false,
    summary: "The first candidate not already in use in the target system, skipping null and \
              empty candidates; a multi-valued argument offers each of its items in turn. Only \
              in outbound flows (mark the flow initial_only so the value sticks). An error \
              naming the candidates when all are taken.",
    examples: &[
        ("SelectUniqueValue(\"jmuller\", \"jose.muller\", \"jomuller\")", "jomuller"),
        (
            "SelectUniqueValue(Lower(Left(NormalizeDiacritics(givenName), 1) + NormalizeDiacritics(sn)), Lower(NormalizeDiacritics(givenName) + NormalizeDiacritics(sn)))",
            "josemuller",
        ),
        ("SelectUniqueValue(missing, \"\", \"jdoe\")", "jdoe"),
        (
            "SelectUniqueValue(\"jmuller\", \"mullerj\")",
            "error: SelectUniqueValue: every candidate is already in use: \"jmuller\", \"mullerj\"",
        ),
    ],
    eval: select_unique_value,
    prepare: None,
};

fn select_unique_value(args: &mut Args<'_, '_>, env: &dyn Env) -> Result<Value, FnError> {
    let mut found = None;
    'search: for (arg, value) in args.iter().enumerate() {
        for (position, candidate) in value.items().iter().enumerate() {
            if candidate.is_null_or_empty() {
                continue;
            }
            if is_free(env, candidate, "SelectUniqueValue")? {
                found = Some((arg, position));
                break 'search;
            }
        }
    }
    if let Some((arg, position)) = found {
        return Ok(match args.take(arg) {
            Value::List(items) => items.into_iter().nth(position).unwrap_or(Value::Null),
            single => single,
        });
    }
    let tried: Vec<String> = args
        .iter()
        .flat_map(Value::items)
        .filter(|candidate| !candidate.is_null_or_empty())
        .map(describe)
        .collect();
    if tried.is_empty() {
        return Err(FnError::new(
            "no-unique-value",
            "SelectUniqueValue: every candidate is null or empty",
        ));
    }
    Err(FnError::new(
        "no-unique-value",
        format!(
            "SelectUniqueValue: every candidate is already in use: {}",
            tried.join(", ")
        ),
    ))
}

/// UniqueNumbered tries `base`, `base2`, …, up to this number.
const MAX_NUMBER: usize = 9999;

pub(super) const UNIQUE_NUMBERED: FunctionDef = FunctionDef {
    name: "UniqueNumbered",
    returns: Some(ValueType::String),
    signature: "UniqueNumbered(base, maxLength)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The first of `base`, `base2`, `base3`, … up to `base9999` not already in use in \
              the target system, the base cut (by characters) so that the whole value fits in \
              `maxLength` characters. Null for a null or empty base. Only in outbound flows; an \
              error when every number is taken or the number no longer fits.",
    examples: &[
        ("UniqueNumbered(\"jmuller\", 20)", "jmuller3"),
        ("UniqueNumbered(\"jmuller\", 7)", "jmulle2"),
        ("UniqueNumbered(\"jdoe\", 20)", "jdoe"),
        ("UniqueNumbered(missing, 20)", "null"),
    ],
    eval: unique_numbered,
    prepare: None,
};

fn unique_numbered(args: &mut Args<'_, '_>, env: &dyn Env) -> Result<Value, FnError> {
    let max_len = count_arg(args.get(1), "UniqueNumbered", "maxLength")?;
    let base = match args.get(0) {
        Value::Null => return Ok(Value::Null),
        Value::Str(s) if s.is_empty() => return Ok(Value::Null),
        Value::Str(s) => s.as_str(),
        other => {
            return Err(FnError::bad_argument(format!(
                "UniqueNumbered: the base must be a single string, found {}",
                describe(other)
            )))
        }
    };
    if max_len == 0 {
        return Err(FnError::bad_argument(
            "UniqueNumbered: maxLength must be at least 1",
        ));
    }
    let mut candidate = String::with_capacity(base.len() + 4);
    for number in 1..=MAX_NUMBER {
        let suffix = if number == 1 {
            String::new()
        } else {
            number.to_string()
        };
        let room = max_len.saturating_sub(suffix.len());
        if room == 0 {
            return Err(FnError::new(
                "no-unique-value",
                format!(
                    "UniqueNumbered: no free value for \"{base}\" fits in {max_len} characters"
                ),
            ));
        }
        candidate.clear();
        match base.char_indices().nth(room) {
            Some((cut, _)) => candidate.push_str(&base[..cut]),
            None => candidate.push_str(base),
        }
        candidate.push_str(&suffix);
        let value = Value::Str(candidate);
        if is_free(env, &value, "UniqueNumbered")? {
            return Ok(value);
        }
        candidate = match value {
            Value::Str(s) => s,
            _ => String::new(),
        };
    }
    Err(FnError::new(
        "no-unique-value",
        format!(
            "UniqueNumbered: \"{}\" and its numbered forms up to {MAX_NUMBER} are all in use",
            keep_first_chars(base.to_owned(), max_len)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::{Expr, MapEnv, Value};

    fn eval_in(src: &str, taken: Option<BTreeSet<Value>>) -> Result<Value, (&'static str, String)> {
        let mut env = MapEnv::new([("givenName", Value::from("Zoë"))]);
        env.taken = taken;
        Expr::parse(src)
            .map_err(|e| (e.code, e.message))?
            .eval(&env)
            .map_err(|e| (e.code, e.message))
    }

    fn taken(values: &[&str]) -> Option<BTreeSet<Value>> {
        Some(values.iter().map(|v| Value::from(*v)).collect())
    }

    #[test]
    fn outside_outbound_flows_is_an_error() {
        let err = eval_in("SelectUniqueValue(\"a\")", None).expect_err("an error");
        assert_eq!(
            err,
            (
                "not-outbound",
                "SelectUniqueValue can only be used in an outbound flow".into()
            )
        );
        let err = eval_in("UniqueNumbered(\"a\", 5)", None).expect_err("an error");
        assert_eq!(err.0, "not-outbound");
    }

    #[test]
    fn select_unique_value_skips_empty_and_flattens_lists() {
        assert_eq!(
            eval_in(
                "SelectUniqueValue(null, \"\", Split(\"a,b,c\", \",\"))",
                taken(&["a", "b"])
            ),
            Ok(Value::from("c"))
        );
        assert_eq!(
            eval_in("SelectUniqueValue(givenName)", taken(&[])),
            Ok(Value::from("Zoë"))
        );
        assert_eq!(
            eval_in("SelectUniqueValue(7)", taken(&[])),
            Ok(Value::Int(7))
        );
        assert_eq!(
            eval_in("SelectUniqueValue(null, \"\")", taken(&[])),
            Err((
                "no-unique-value",
                "SelectUniqueValue: every candidate is null or empty".into()
            ))
        );
    }

    #[test]
    fn unique_numbered_counts_up_and_truncates_by_characters() {
        let all: Vec<String> = std::iter::once("zoë".to_owned())
            .chain((2..=10).map(|n| format!("zo{n}")))
            .chain(std::iter::once("z10".to_owned()))
            .collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        // "zoë" taken, then "zo2".."zo9" (base cut to 2 chars), "z10" taken, then "z11".
        assert_eq!(
            eval_in("UniqueNumbered(\"zoë\", 3)", taken(&refs)),
            Ok(Value::from("z11"))
        );
        assert_eq!(
            eval_in("UniqueNumbered(\"zoë\", 3)", taken(&["zoë"])),
            Ok(Value::from("zo2"))
        );
        assert_eq!(
            eval_in("UniqueNumbered(\"日本語\", 2)", taken(&["日本"])),
            Ok(Value::from("日2"))
        );
        let err = eval_in("UniqueNumbered(\"ab\", 1)", taken(&["a"])).expect_err("an error");
        assert_eq!(err.0, "no-unique-value");
        assert!(err.1.contains("fits in 1 characters"), "{}", err.1);
        assert_eq!(
            eval_in("UniqueNumbered(\"\", 5)", taken(&[])),
            Ok(Value::Null)
        );
        assert_eq!(
            eval_in("UniqueNumbered(\"a\", 0)", taken(&[]))
                .expect_err("an error")
                .0,
            "bad-argument"
        );
        assert_eq!(
            eval_in("UniqueNumbered(Split(\"a,b\", \",\"), 5)", taken(&[]))
                .expect_err("an error")
                .0,
            "bad-argument"
        );
    }

    #[test]
    fn unique_numbered_gives_up_after_9999() {
        let mut all: Vec<String> = vec!["u".into()];
        all.extend((2..=9999).map(|n| format!("u{n}")));
        let set: BTreeSet<Value> = all.into_iter().map(Value::from).collect();
        let err = eval_in("UniqueNumbered(\"u\", 10)", Some(set)).expect_err("an error");
        assert_eq!(
            err,
            (
                "no-unique-value",
                "UniqueNumbered: \"u\" and its numbered forms up to 9999 are all in use".into()
            )
        );
    }
}
