//! Regular expressions: RegexReplace.
//!
//! A literal pattern is compiled once, when the expression is parsed, and an
//! invalid one is a parse error (`bad-regex`). A pattern computed at run time
//! is compiled on first use and kept in a small per-thread cache.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

use super::util::{map_text, text};
use super::{Args, FnError, FunctionDef, PrepareError, Prepared};
use crate::{Env, Value, ValueType};

pub(super) const REGEX_REPLACE: FunctionDef = FunctionDef {
    name: "RegexReplace",
    returns: Some(ValueType::String),
    signature: "RegexReplace(value, pattern, replacement)",
    min_args: 3,
    max_args: Some(3),
    pairs: false,
    summary: "The value with every match of the regular expression replaced. Syntax is Rust's \
              `regex` crate (no look-around or back-references; `(?i)` for case-insensitive); \
              the replacement may refer to groups as `$1` or `${name}` (`$$` for a dollar). A \
              literal pattern that does not compile is a parse error. Elementwise; null stays \
              null.",
    examples: &[
        ("RegexReplace(employeeId, \"^0+\", \"\")", "42"),
        ("RegexReplace(\"Jo  Ann\", \"\\\\s+\", \" \")", "Jo Ann"),
        (
            "RegexReplace(mail, \"^([^@]+)@.*$\", \"$1@fabrikam.com\")",
            "jose.muller@fabrikam.com",
        ),
        ("RegexReplace(\"O'Brien\", \"[^A-Za-z]\", \"\")", "OBrien"),
        (
            "RegexReplace(proxyAddresses, \"(?i)^smtp:\", \"\")",
            "jose.muller@contoso.com; jm@contoso.com",
        ),
        ("RegexReplace(missing, \"a\", \"b\")", "null"),
    ],
    eval: regex_replace,
    prepare: Some(prepare_regex_replace),
};

fn prepare_regex_replace(constants: &[Option<&Value>]) -> Result<Prepared, PrepareError> {
    match constants.get(1).copied().flatten() {
        Some(pattern) => compile(&text(pattern))
            .map(Prepared::new)
            .map_err(|message| PrepareError {
                arg: Some(1),
                code: "bad-regex",
                message,
            }),
        None => Ok(Prepared::none()),
    }
}

fn regex_replace(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let value = args.take(0);
    if value.is_null() {
        return Ok(Value::Null);
    }
    let dynamic;
    let regex = match args.prepared::<Regex>() {
        Some(regex) => regex,
        None => {
            dynamic = cached(&text(args.get(1)), "RegexReplace")?;
            &dynamic
        }
    };
    let replacement = text(args.get(2));
    map_text(value, |s| {
        Ok(Value::Str(match regex.replace_all(&s, &*replacement) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(replaced) => replaced,
        }))
    })
}

pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("invalid regular expression: {e}"))
}

/// Compiled run-time patterns, per thread; cleared when it grows past
/// `CACHE_LIMIT` so a pattern built from data cannot grow it without bound.
const CACHE_LIMIT: usize = 64;

thread_local! {
    static CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// A run-time pattern, compiled once per thread; `function` names the
/// caller in errors.
pub(super) fn cached(pattern: &str, function: &str) -> Result<Regex, FnError> {
    CACHE.with(|cache| {
        if let Some(regex) = cache.borrow().get(pattern) {
            return Ok(regex.clone());
        }
        let regex = compile(pattern)
            .map_err(|message| FnError::new("bad-regex", format!("{function}: {message}")))?;
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), regex.clone());
        Ok(regex)
    })
}

#[cfg(test)]
mod tests {
    use crate::functions::tests::eval_str as eval;
    use crate::Expr;

    #[test]
    fn literal_patterns_are_checked_at_parse_time() {
        let err = Expr::parse("RegexReplace(x, \"(a\", \"\")").expect_err("an error");
        assert_eq!(err.code, "bad-regex");
        assert_eq!(err.span, 16..20);
        assert!(
            err.message
                .starts_with("RegexReplace: invalid regular expression"),
            "{}",
            err.message
        );
    }

    #[test]
    fn dynamic_patterns_compile_at_run_time() {
        assert_eq!(
            eval("RegexReplace(\"a1b2\", Join(\"\", \"[\", \"0-9\", \"]\"), \"#\")"),
            "a#b#"
        );
        // Second use hits the cache.
        assert_eq!(
            eval("RegexReplace(\"c3\", Join(\"\", \"[\", \"0-9\", \"]\"), \"#\")"),
            "c#"
        );
        assert!(eval("RegexReplace(\"a\", Join(\"\", \"(\"), \"\")")
            .starts_with("error: RegexReplace: invalid regular expression"));
    }

    #[test]
    fn unicode_and_no_match() {
        assert_eq!(
            eval("RegexReplace(\"Zoë Ñú\", \"\\\\p{M}|[^\\\\p{L} ]\", \"\")"),
            "Zoë Ñú"
        );
        assert_eq!(eval("RegexReplace(\"日本語\", \"本\", \"-\")"), "日-語");
        assert_eq!(eval("RegexReplace(\"abc\", \"x\", \"y\")"), "abc");
        assert_eq!(eval("RegexReplace(\"abc\", \"b\", null)"), "ac");
    }
}
