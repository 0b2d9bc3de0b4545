//! The registry's own tests: every example of every function, and the
//! consistency of the table.

use super::{example_env, function, functions, suggest};
use crate::{Expr, Value};

/// Renders a result the way example tables write it: `Display`, `null` for
/// null, `error: <message>` for an evaluation error.
pub(crate) fn render(result: Result<Value, crate::EvalError>) -> String {
    match result {
        Ok(Value::Null) => "null".to_owned(),
        Ok(value) => value.to_string(),
        Err(e) => format!("error: {}", e.message),
    }
}

/// Parses and evaluates `src` in [`example_env`], rendered as [`render`]
/// does; a parse error renders as `parse error: <code>: <message>`.
pub(crate) fn eval_str(src: &str) -> String {
    match Expr::parse(src) {
        Ok(expr) => render(expr.eval(&example_env())),
        Err(e) => format!("parse error: {}: {}", e.code, e.message),
    }
}

#[test]
fn every_example_evaluates_as_documented() {
    let mut failures = Vec::new();
    let mut checked = 0;
    // Entra Connect's Switch form is not in the registry (it is written
    // `Switch`), but its examples are run too.
    for def in functions().iter().chain([&super::SWITCH_CONDITIONS]) {
        assert!(!def.examples.is_empty(), "{} has no examples", def.name);
        for (src, expected) in def.examples {
            let expr = match Expr::parse(src) {
                Ok(expr) => expr,
                Err(e) => {
                    failures.push(format!(
                        "{}: `{src}` does not parse: {}: {}",
                        def.name, e.code, e.message
                    ));
                    continue;
                }
            };
            if !expr.calls(def.name) {
                failures.push(format!("{}: example `{src}` does not call it", def.name));
            }
            let got = render(expr.eval(&example_env()));
            if got != *expected {
                failures.push(format!(
                    "{}: `{src}`\n    expected: {expected}\n    got:      {got}",
                    def.name
                ));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} example(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 100, "only {checked} examples");
}

#[test]
fn examples_survive_printing() {
    for def in functions() {
        for (src, _) in def.examples {
            let Ok(expr) = Expr::parse(src) else { continue };
            let printed = expr.to_string();
            let reparsed = Expr::parse(&printed).unwrap_or_else(|e| panic!("`{printed}`: {e}"));
            assert_eq!(reparsed, expr, "`{src}` printed as `{printed}`");
            assert_eq!(reparsed.to_string(), printed);
        }
    }
}

#[test]
fn registry_is_sorted_unique_and_consistent() {
    let names: Vec<&str> = functions().iter().map(|f| f.name).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_ascii_lowercase());
    sorted.dedup_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(names, sorted);
    for def in functions() {
        assert!(
            def.max_args.is_none_or(|max| max >= def.min_args),
            "{}",
            def.name
        );
        assert!(def.signature.starts_with(def.name), "{}", def.name);
        assert!(!def.summary.is_empty(), "{}", def.name);
        assert!(def.accepts(def.min_args), "{}", def.name);
        assert!(std::ptr::eq(
            function(&def.name.to_ascii_uppercase()).map_or(std::ptr::null(), |f| f),
            def
        ));
    }
}

#[test]
fn the_required_functions_exist() {
    for name in [
        "Coalesce",
        "IIF",
        "Join",
        "Lower",
        "Upper",
        "Trim",
        "Left",
        "Right",
        "Mid",
        "Replace",
        "Switch",
        "IsPresent",
        "IsNullOrEmpty",
        "NormalizeDiacritics",
        "StripSpaces",
        "Split",
        "Contains",
        "StartsWith",
        "EndsWith",
        "RegexReplace",
        "Word",
        "Append",
        "Truncate",
        "FormatDateTime",
        "DateAdd",
        "Now",
        "ToBase64",
        "FromBase64",
        "GuidToImmutableId",
        "EscapeDN",
        "ParentDN",
        "RDN",
        "BitAnd",
        "BitOr",
        "Count",
        "Item",
        "First",
        "ToString",
        "ToInt",
        "ToBool",
        "SelectUniqueValue",
        "UniqueNumbered",
    ] {
        assert_eq!(function(name).map(|f| f.name), Some(name));
    }
    assert!(function("NoSuchThing").is_none());
}

#[test]
fn arity_text_and_suggestions() {
    let text = |name| function(name).map(|f| f.arity_text());
    assert_eq!(text("Left").as_deref(), Some("2 arguments"));
    assert_eq!(text("Now").as_deref(), Some("0 arguments"));
    assert_eq!(text("IsPresent").as_deref(), Some("1 argument"));
    assert_eq!(text("FormatDateTime").as_deref(), Some("2 to 4 arguments"));
    assert_eq!(text("InStr").as_deref(), Some("2 to 4 arguments"));
    assert_eq!(text("Coalesce").as_deref(), Some("at least 1 argument"));
    assert_eq!(text("Switch").as_deref(), Some("4, 6, 8, ... arguments"));
    let switch =
        function("Switch").map(|f| (f.accepts(4), f.accepts(5), f.accepts(6), f.accepts(3)));
    assert_eq!(switch, Some((true, false, true, false)));
    assert_eq!(suggest("Lowr"), Some("Lower"));
    assert_eq!(suggest("selectuniquevalues"), Some("SelectUniqueValue"));
    assert_eq!(suggest("Frobnicate"), None);
}

/// Every function whose summary says "Elementwise; null stays null" keeps
/// that promise for null, empty, multi-valued and non-ASCII input: null
/// gives null, and a list gives the list of each item's result (or the
/// first item's error), whatever the other arguments are (taken from the
/// function's first example).
#[test]
fn elementwise_functions_keep_their_promise_for_null_empty_lists_and_non_ascii() {
    let items = [
        Value::str("Zoë Ørsted"),
        Value::str(""),
        Value::str("日本 x"),
    ];
    let mut checked = 0;
    for def in functions() {
        if !def.summary.contains("Elementwise; null stays null") {
            continue;
        }
        // The call's shape from the first example whose first argument can be
        // replaced: `F(x, rest…)`.
        let Some((example, _)) = def
            .examples
            .iter()
            .find(|(src, _)| src.starts_with(def.name) && Expr::parse(src).is_ok())
        else {
            continue;
        };
        let inner = &example[def.name.len() + 1..example.len() - 1];
        let rest = split_top_level(inner);
        let call = |arg: &str| {
            let mut args = vec![arg.to_owned()];
            args.extend(rest.iter().skip(1).cloned());
            format!("{}({})", def.name, args.join(", "))
        };
        let env = |v: Value| {
            let mut e = example_env();
            e.attributes.insert("x".to_owned(), v);
            e
        };
        let run = |src: &str, v: Value| match Expr::parse(src) {
            Ok(expr) => render(expr.eval(&env(v))),
            Err(e) => format!("parse error: {}", e.message),
        };
        let src = call("x");
        assert_eq!(run(&src, Value::Null), "null", "{src} with x null");
        let each: Vec<String> = items.iter().map(|i| run(&src, i.clone())).collect();
        let whole = run(&src, Value::list(items.clone()));
        match each.iter().find(|r| r.starts_with("error")) {
            Some(first_error) => assert_eq!(&whole, first_error, "{src} over a list"),
            None => {
                let expected: Vec<&str> = each
                    .iter()
                    .map(String::as_str)
                    .filter(|r| *r != "null")
                    .collect();
                assert_eq!(
                    whole,
                    if expected.is_empty() {
                        "null".to_owned()
                    } else {
                        expected.join("; ")
                    },
                    "{src} over a list"
                );
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 40,
        "only {checked} elementwise functions checked"
    );
}

/// The top-level arguments of a call's argument text.
fn split_top_level(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut depth, mut quote) = (0i32, None::<char>);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                if let Some(s) = out.last_mut() {
                    s.push(c);
                    s.extend(chars.next());
                }
                continue;
            }
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(s) = out.last_mut() {
            s.push(c);
        }
    }
    out.into_iter().map(|s| s.trim().to_owned()).collect()
}

mod properties {
    use proptest::prelude::*;

    use crate::functions::functions;
    use crate::{Expr, MapEnv, Value};

    fn arb_single() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::Str),
            "[a-z0-9 ,=\\\\%-]{0,12}".prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            (-30i64..30).prop_map(Value::Int),
            any::<bool>().prop_map(Value::Bool),
            prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
            any::<u64>().prop_map(Value::Ref),
            any::<i64>().prop_map(Value::DateTime),
            (-4_000_000_000_000_000i64..4_000_000_000_000_000).prop_map(Value::DateTime),
        ]
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => arb_single(),
            1 => Just(Value::Null),
            1 => prop::collection::vec(arb_single(), 1..4).prop_map(Value::List),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Every function, called with arbitrary values of every type
        /// (through attributes, so nothing is checked at parse time),
        /// returns a value or an error and never panics.
        #[test]
        fn functions_never_panic_on_arbitrary_arguments(
            index in any::<prop::sample::Index>(),
            values in prop::collection::vec(arb_value(), 6),
            taken in prop::option::of(prop::collection::btree_set(arb_single(), 0..4)),
        ) {
            let def = &functions()[index.index(functions().len())];
            let argc = (def.min_args..=def.min_args + 4).find(|&n| def.accepts(n) && n <= 6);
            let Some(argc) = argc else { return Ok(()) };
            let mut names: Vec<String> = (0..argc).map(|i| format!("a{i}")).collect();
            // Select, Where and With take a variable first, bound in the rest.
            if ["Select", "Where", "With"].contains(&def.name) {
                names[0] = "$v".to_owned();
                names[2] = format!("Coalesce($v, {})", names[2]);
            }
            let src = format!("{}({})", def.name, names.join(", "));
            let expr = Expr::parse(&src).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            let mut env = MapEnv::new(names.iter().cloned().zip(values));
            env.taken = taken;
            let _ = expr.eval(&env);
        }
    }
}
