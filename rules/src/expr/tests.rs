//! Tests of the parser, printer and evaluator. Function behaviour is tested
//! beside each function.

use proptest::prelude::*;

use super::{BinaryOp, Call, Kind, Node, UnaryOp};
use crate::functions::{example_env, functions, tests::render, Prepared};
use crate::{Expr, MapEnv, ParseError, Value};

fn parse(src: &str) -> Expr {
    Expr::parse(src).unwrap_or_else(|e| panic!("`{src}` should parse: {}: {}", e.code, e.message))
}

fn parse_err(src: &str) -> ParseError {
    Expr::parse(src).expect_err("should not parse")
}

fn canon(src: &str) -> String {
    parse(src).to_string()
}

fn eval(src: &str) -> String {
    render(parse(src).eval(&example_env()))
}

fn eval_with(src: &str, attributes: &[(&str, Value)]) -> String {
    let env = MapEnv::new(attributes.iter().map(|(k, v)| (*k, v.clone())));
    render(parse(src).eval(&env))
}

// ---------------------------------------------------------------- parsing

#[test]
fn precedence_and_associativity() {
    assert_eq!(canon("a||b&&c"), "a || b && c");
    assert_eq!(canon("(a || b) && c"), "(a || b) && c");
    assert_eq!(canon("a && b || c && d"), "a && b || c && d");
    assert_eq!(
        canon("a + b == c + d && e != f"),
        "a + b == c + d && e != f"
    );
    assert_eq!(canon("(a + b) + c"), "a + b + c");
    assert_eq!(canon("a + (b + c)"), "a + (b + c)");
    assert_eq!(canon("a == (b == c)"), "a == (b == c)");
    assert_eq!(canon("!a == b"), "!a == b");
    assert_eq!(canon("!(a == b)"), "!(a == b)");
    assert_eq!(canon("-x + 1"), "-x + 1");
    assert_eq!(canon("-(x + 1)"), "-(x + 1)");
    assert_eq!(canon("((((a))))"), "a");
    assert_eq!(canon("- 5"), "-5");
    assert_eq!(canon("-(5)"), "-(5)");
    assert_eq!(canon("--5"), "-(-5)");
    assert_eq!(canon("!!x"), "!!x");

    let tree = parse("a || b && c == d + e");
    let Kind::Binary(BinaryOp::Or, _, right) = &tree.root.kind else {
        panic!("{tree:?}")
    };
    let Kind::Binary(BinaryOp::And, _, right) = &right.kind else {
        panic!("{tree:?}")
    };
    let Kind::Binary(BinaryOp::Eq, _, right) = &right.kind else {
        panic!("{tree:?}")
    };
    assert!(matches!(right.kind, Kind::Binary(BinaryOp::Add, ..)));

    let tree = parse("a < b < c");
    let Kind::Binary(BinaryOp::Lt, left, _) = &tree.root.kind else {
        panic!("{tree:?}")
    };
    assert!(
        matches!(left.kind, Kind::Binary(BinaryOp::Lt, ..)),
        "comparisons are left-associative"
    );
}

#[test]
fn entra_syntax_parses_to_the_canonical_forms() {
    assert_eq!(canon("[Active] = \"1\""), "Active == \"1\"");
    assert_eq!(canon("a <> b"), "a != b");
    assert_eq!(
        canon("Trim([givenName]) & \" \" & Trim([sn])"),
        "Trim(givenName) & \" \" & Trim(sn)"
    );
    assert_eq!(
        canon("a & b + c"),
        "a & b + c",
        "`+` binds tighter than `&`"
    );
    assert_eq!(canon("(a & b) + c"), "(a & b) + c");
    assert_eq!(
        canon("a & b = c"),
        "a & b == c",
        "`&` binds tighter than a comparison"
    );
    assert_eq!(canon("a - b - c"), "a - b - c");
    assert_eq!(canon("a - (b - c)"), "a - (b - c)");
    assert_eq!(canon("a + b * c"), "a + b * c");
    assert_eq!(canon("(a + b) * c"), "(a + b) * c");
    assert_eq!(
        canon("BitAnd([userAccountControl], &H2)"),
        "BitAnd(userAccountControl, 2)"
    );
    assert_eq!(canon("1.25"), "\"1.25\"");
    assert_eq!(
        canon("Replace([mail], \"@contoso.com\", , ,\"\", ,)"),
        "Replace(mail, \"@contoso.com\", , , \"\", , )"
    );
    assert_eq!(
        canon("Switch([Active], , \"1\", \"False\")"),
        "Switch(Active, , \"1\", \"False\")"
    );
    for src in [
        "Replace(mail, \"@contoso.com\", , , \"\", , )",
        "Switch(Active, , \"1\", \"False\")",
    ] {
        assert_eq!(
            parse(&canon(src)),
            parse(src),
            "{src} reparses to the same tree"
        );
    }
}

#[test]
fn variables_are_bound_by_select_where_and_with_only() {
    assert_eq!(
        canon("Select($item,[proxyAddresses],Lower($item))"),
        "Select($item, proxyAddresses, Lower($item))"
    );
    let e = parse_err("Lower($item)");
    assert_eq!((e.code, e.span), ("unbound-variable", 6..11));
    let e = parse_err("Select(x, proxyAddresses, x)");
    assert_eq!(e.code, "unbound-variable");
    // With's value is outside its own binding; nested bindings see both.
    assert_eq!(parse_err("With($a, $a, 1)").code, "unbound-variable");
    assert_eq!(
        eval("With($domain, \"@contoso.com\", Select($p, proxyAddresses, IIF(EndsWith($p, $domain), $p, null)))"),
        "SMTP:jose.muller@contoso.com; smtp:jm@contoso.com"
    );
    assert_eq!(
        eval("Where($v, Split(\"a,,b\", \",\"), IsPresent($v))"),
        "a; b"
    );
}

#[test]
fn review_regressions_of_the_entra_forms() {
    // A bracketed attribute named like a keyword or an enumeration word
    // prints bracketed, so it reparses as an attribute.
    for src in ["[ASCII]", "[utf8]", "[IgnoreObjectFlow]", "[vbTextCompare]"] {
        assert_eq!(
            parse(&canon(src)),
            parse(src),
            "{src} prints as {}",
            canon(src)
        );
    }
    assert_eq!(eval("-1.5"), "-1.5");
    // Join's Entra Connect form is decided when parsed: a null or single
    // value keeps it.
    assert_eq!(eval("Join(missing, \",\")"), "null");
    assert_eq!(eval("Join(sn, \",\")"), "Müller");
    // The long Replace's mode comes from the slots written, not from values.
    assert_eq!(eval("Replace(\"a-b\", , \"-\", , missing, , )"), "ab");
    // Guid is visible through a variable binding.
    let mut env = crate::functions::example_env();
    env.random = Some(1);
    let guid = parse("With($x, 1, Guid())")
        .eval(&env)
        .map(|v| v.to_string());
    assert_eq!(guid.as_deref().map(str::len), Ok(36));
    assert_eq!(eval("DateDiff(\"w\", \"2024-03-01\", \"2024-03-15\")"), "2");
}

#[test]
fn entra_operators_evaluate_as_documented() {
    assert_eq!(eval("\"a\" & 1 & true"), "a1true");
    assert_eq!(eval("null & null"), "null");
    assert_eq!(eval("null & \"x\""), "x");
    assert_eq!(eval("7 - 10"), "-3");
    assert_eq!(eval("\"7\" * 6"), "42");
    assert_eq!(eval("&H10 + &hff"), "271");
    assert_eq!(eval("null - 1"), "null");
    assert_eq!(eval("department = \"Sales\""), "true");
    assert_eq!(eval("department <> \"Sales\""), "false");
    assert_eq!(
        eval("9223372036854775807 * 2"),
        "error: 9223372036854775807 * 2 overflows a 64-bit integer"
    );
    assert!(eval("\"a\" - 1").starts_with("error: cannot compute"));
    assert_eq!(
        eval("Coalesce(, \"second\")"),
        "second",
        "an empty slot is not given: null"
    );
}

#[test]
fn literals_and_attributes() {
    assert_eq!(parse("42").as_constant(), Some(&Value::Int(42)));
    assert_eq!(parse(" -42 ").as_constant(), Some(&Value::Int(-42)));
    assert_eq!(
        parse("-9223372036854775808").as_constant(),
        Some(&Value::Int(i64::MIN))
    );
    assert_eq!(parse("'it\\'s'").as_constant(), Some(&Value::from("it's")));
    assert_eq!(
        parse("\"tab\\there\"").as_constant(),
        Some(&Value::from("tab\there"))
    );
    assert_eq!(parse("TRUE").as_constant(), Some(&Value::Bool(true)));
    assert_eq!(parse("false").as_constant(), Some(&Value::Bool(false)));
    assert_eq!(parse("Null").as_constant(), Some(&Value::Null));
    assert_eq!(parse("\"\"").as_constant(), Some(&Value::from("")));
    assert_eq!(parse("mail").as_constant(), None);

    assert_eq!(parse("mail").as_attribute(), Some("mail"));
    assert_eq!(
        parse(" [mS-DS-ConsistencyGuid] ").as_attribute(),
        Some("mS-DS-ConsistencyGuid")
    );
    assert_eq!(parse("[名前]").as_attribute(), Some("名前"));
    assert_eq!(parse("[true]").as_attribute(), Some("true"));
    assert_eq!(parse("(mail)").as_attribute(), Some("mail"));
    assert_eq!(parse("Lower(mail)").as_attribute(), None);
    // A function's name without parentheses is an attribute.
    assert_eq!(parse("Lower").as_attribute(), Some("Lower"));
}

#[test]
fn printing_is_canonical() {
    assert_eq!(
        canon("lower( [givenName] )+'.'+UPPER(sn)"),
        "Lower(givenName) + \".\" + Upper(sn)"
    );
    assert_eq!(canon("[mS-DS-ConsistencyGuid]"), "[mS-DS-ConsistencyGuid]");
    assert_eq!(canon("[null] == null"), "[null] == null");
    assert_eq!(canon("'a\"b\\\\c\\nd'"), "\"a\\\"b\\\\c\\nd\"");
    assert_eq!(canon("iif(x,1,-1)"), "IIF(x, 1, -1)");
    assert_eq!(canon("now()"), "Now()");
    assert_eq!(parse("lower(x)"), parse("Lower( x )"));
    assert_ne!(parse("Lower(x)"), parse("Upper(x)"));
    assert_ne!(parse("1"), parse("\"1\""));
    assert_eq!(
        "Lower(x)"
            .parse::<Expr>()
            .map(|e| e.to_string())
            .ok()
            .as_deref(),
        Some("Lower(x)")
    );
}

#[test]
fn accessors() {
    let expr = parse("Join(\" \", givenName, Coalesce(nickname, sn, givenName)) == [given name]");
    assert_eq!(
        expr.attributes(),
        vec!["given name", "givenName", "nickname", "sn"]
    );
    assert!(expr.calls("coalesce"));
    assert!(expr.calls("JOIN"));
    assert!(!expr.calls("SelectUniqueValue"));
    assert_eq!(
        expr.source(),
        "Join(\" \", givenName, Coalesce(nickname, sn, givenName)) == [given name]"
    );
    assert_eq!(expr.span(), 0..expr.source().len());
    assert!(parse("\"x\"").attributes().is_empty());
    assert!(parse("IIF(a, SelectUniqueValue(b), c)").calls("SelectUniqueValue"));
}

#[test]
fn unknown_function_points_at_the_name() {
    let err = parse_err("Lowr(x)");
    assert_eq!((err.code, err.span.clone()), ("unknown-function", 0..4));
    assert_eq!(
        err.message,
        "unknown function `Lowr`; did you mean `Lower`?"
    );
    let err = parse_err("x + Frobnicate(y)");
    assert_eq!((err.code, err.span.clone()), ("unknown-function", 4..14));
    assert_eq!(err.message, "unknown function `Frobnicate`");
    // Reported before any error in the arguments.
    assert_eq!(parse_err("Lowr(,)").code, "unknown-function");
}

#[test]
fn arity_points_at_the_call() {
    let err = parse_err("Left(x)");
    assert_eq!((err.code, err.span.clone()), ("arity", 0..7));
    assert_eq!(
        err.message,
        "Left takes 2 arguments, found 1: Left(value, count)"
    );
    let err = parse_err("a + Now(1)");
    assert_eq!((err.code, err.span.clone()), ("arity", 4..10));
    let err = parse_err("Switch(x, \"d\", \"k\")");
    assert_eq!(err.code, "arity");
    assert!(
        err.message.contains("4, 6, 8, ... arguments"),
        "{}",
        err.message
    );
    assert_eq!(
        parse_err("Coalesce()").message,
        "Coalesce takes at least 1 argument, found 0: Coalesce(value1, value2, ...)"
    );
    assert!(parse_err("FormatDateTime(x)")
        .message
        .contains("2 to 4 arguments"));
}

#[test]
fn syntax_errors_say_what_was_expected() {
    let cases: &[(&str, &str, std::ops::Range<usize>, &str)] = &[
        ("\"abc", "unterminated-string", 0..4, "unterminated string: expected a closing \""),
        ("", "unexpected-end", 0..0, "expected an expression, found the end of the expression"),
        ("   ", "unexpected-end", 3..3, "expected an expression, found the end of the expression"),
        ("a +", "unexpected-end", 3..3, "expected an expression, found the end of the expression"),
        ("(a", "unexpected-end", 2..2, "expected `)` to close the parenthesis, found the end of the expression"),
        ("(a b)", "unexpected-token", 3..4, "expected `)` to close the parenthesis, found `b`"),
        ("a b", "unexpected-token", 2..3, "expected an operator or the end of the expression, found `b`"),
        ("a)", "unexpected-token", 1..2, "expected an operator or the end of the expression, found `)`"),
        ("Left(x 1)", "unexpected-token", 7..8, "expected `,` or `)` in the arguments of Left, found `1`"),
        ("Left(x,", "unexpected-end", 7..7, "expected an expression, found the end of the expression"),
        ("Left(x, 1, )", "arity", 0..12, "Left takes 2 arguments, found 3: Left(value, count)"),
        ("Left(x", "unexpected-end", 6..6, "expected `,` or `)` in the arguments of Left, found the end of the expression"),
        ("* 2", "unexpected-token", 0..1, "expected an expression, found `*`"),
        ("a | b", "unexpected-character", 2..3, "unexpected `|`: write `||` for a logical or"),
        ("a & ", "unexpected-end", 4..4, "expected an expression, found the end of the expression"),
        ("9223372036854775808", "int-overflow", 0..19, "integer 9223372036854775808 is too large: integers are 64-bit, at most 9223372036854775807"),
        ("-9223372036854775809", "int-overflow", 0..20, "integer -9223372036854775809 is too small: integers are 64-bit, at least -9223372036854775808"),
        ("é + 1", "unexpected-character", 0..2, "unexpected character `é`: names with characters other than ASCII letters, digits and `_` must be bracketed, as in [name]"),
        ("\"é\" + ü", "unexpected-character", 7..9, "unexpected character `ü`: names with characters other than ASCII letters, digits and `_` must be bracketed, as in [name]"),
        ("x ==", "unexpected-end", 4..4, "expected an expression, found the end of the expression"),
        ("[x", "unterminated-attribute", 0..2, "unterminated attribute name: expected a closing `]`"),
        ("x(1)", "unknown-function", 0..1, "unknown function `x`"),
        ("true(1)", "unknown-function", 0..4, "unknown function `true`"),
        ("\"a\\xb\"", "bad-escape", 2..4, "unknown escape `\\x`: expected one of \\\" \\' \\\\ \\n \\r \\t"),
    ];
    for (src, code, span, message) in cases {
        let err = parse_err(src);
        assert_eq!(
            (err.code, err.span.clone(), err.message.as_str()),
            (*code, span.clone(), *message),
            "`{src}`"
        );
    }
}

#[test]
fn nesting_is_bounded_without_overflowing_the_stack() {
    for src in [
        "(".repeat(100_000) + "a" + &")".repeat(100_000),
        "!".repeat(100_000) + "a",
        "-".repeat(100_000) + "a",
        "a".to_owned() + &" + a".repeat(100_000),
        "Lower(".repeat(100_000) + "a" + &")".repeat(100_000),
        "(".repeat(100_000),
    ] {
        assert_eq!(parse_err(&src).code, "too-deep");
    }
    // Realistic depths are fine, and evaluate.
    let deep = "Lower(".repeat(100) + "\"A\"" + &")".repeat(100);
    assert_eq!(eval(&deep), "a");
    let long = "1".to_owned() + &" + 1".repeat(200);
    assert_eq!(eval(&long), "201");
}

// ------------------------------------------------------------- evaluation

#[test]
fn addition_and_concatenation() {
    assert_eq!(eval("1 + 2"), "3");
    assert_eq!(eval("-1 + -2"), "-3");
    assert_eq!(eval("\"a\" + 1"), "a1");
    assert_eq!(eval("1 + \"1\""), "11");
    assert_eq!(eval("givenName + \" \" + sn"), "José Müller");
    assert_eq!(eval("missing + \"x\""), "x");
    assert_eq!(eval("\"x\" + missing"), "x");
    assert_eq!(eval("missing + missing"), "null");
    assert_eq!(eval("missing + \"\""), "");
    assert_eq!(eval("true + 1"), "true1");
    assert_eq!(
        eval("proxyAddresses + \"!\""),
        "SMTP:jose.muller@contoso.com; smtp:jm@contoso.com!"
    );
    assert_eq!(
        eval("9223372036854775807 + 1"),
        "error: 9223372036854775807 + 1 overflows a 64-bit integer"
    );
}

#[test]
fn comparisons() {
    assert_eq!(eval("workerType == \"Employee\""), "true");
    assert_eq!(eval("workerType == \"employee\""), "false");
    assert_eq!(eval("workerType != \"Contractor\""), "true");
    assert_eq!(eval("userAccountControl == 514"), "true");
    assert_eq!(eval("userAccountControl == \"514\""), "true");
    assert_eq!(eval("employeeId == 42"), "true");
    assert_eq!(eval("employeeId == \"42\""), "false");
    assert_eq!(eval("\"10\" > 9"), "true");
    assert_eq!(eval("\"10\" > \"9\""), "false");
    assert_eq!(eval("\"abc\" < 5"), "false");
    assert_eq!(eval("missing == null"), "true");
    assert_eq!(eval("missing == \"\""), "true");
    assert_eq!(eval("nickname == null"), "true");
    assert_eq!(eval("missing != null"), "false");
    assert_eq!(eval("missing == 0"), "false");
    assert_eq!(eval("true == \"true\""), "true");
    assert_eq!(eval("true > false"), "true");
    assert_eq!(eval("hireDate < Now()"), "true");
    assert_eq!(eval("hireDate == \"2021-06-01T10:00:00+02:00\""), "true");
    assert_eq!(eval("hireDate >= \"2021-06-01\""), "true");
    assert_eq!(eval("hireDate < \"2021-06-01\""), "false");
    assert_eq!(eval("\"é\" > \"z\""), "true");
    assert_eq!(eval("\"a\" <= \"a\""), "true");
    assert_eq!(
        eval("Split(\"1,2\", \",\") == Split(\"1,2\", \",\")"),
        "true"
    );
    assert_eq!(eval("Split(\"1,2\", \",\") == \"1; 2\""), "true");
    assert_eq!(
        eval("ToInt(Split(\"1,2\", \",\")) == Split(\"1,2\", \",\")"),
        "true"
    );
}

#[test]
fn logic_and_negation() {
    assert_eq!(
        eval("workerType == \"Employee\" && department == \"Sales\""),
        "true"
    );
    assert_eq!(eval("missing || \"x\""), "true");
    assert_eq!(eval("\"false\" || 0"), "false");
    assert_eq!(eval("!missing"), "true");
    assert_eq!(eval("!\"Employee\""), "false");
    assert_eq!(eval("!!userAccountControl"), "true");
    assert_eq!(eval("-userAccountControl"), "-514");
    assert_eq!(eval("-employeeId"), "-42");
    assert_eq!(eval("-missing"), "null");
    assert_eq!(
        eval("-(-9223372036854775808)"),
        "error: -(-9223372036854775808) overflows a 64-bit integer"
    );
    assert_eq!(
        eval("-givenName"),
        "error: cannot negate \"José\": `-` needs an integer"
    );
    // Short-circuit: the right side is not evaluated.
    assert_eq!(eval("false && ToInt(\"x\")"), "false");
    assert_eq!(eval("true || ToInt(\"x\")"), "true");
    assert_eq!(
        eval("true && ToInt(\"x\")"),
        "error: ToInt: \"x\" is not an integer"
    );
}

#[test]
fn attributes_are_read_from_the_environment() {
    let attrs = [
        ("a-b", Value::from("x")),
        ("名前", Value::from("ü")),
        ("n", Value::Int(3)),
    ];
    assert_eq!(eval_with("[a-b] + [名前] + n", &attrs), "xü3");
    assert_eq!(eval_with("absent", &attrs), "null");
    assert_eq!(eval_with("Now()", &attrs), "1970-01-01T00:00:00Z");
    assert_eq!(eval_with("\"lit\"", &attrs), "lit");
}

#[test]
fn evaluation_errors_span_the_failing_call() {
    let expr = parse("Lower(\"A\") + ToInt(\"x\")");
    let err = expr.eval(&example_env()).expect_err("ToInt fails");
    assert_eq!((err.code, err.span), ("bad-argument", 13..23));
    let expr = parse("1 + (9223372036854775807 + 1)");
    let err = expr.eval(&example_env()).expect_err("overflow");
    assert_eq!((err.code, err.span), ("overflow", 4..29));
    let expr = parse("SelectUniqueValue(\"a\")");
    let err = expr.eval(&MapEnv::default()).expect_err("not outbound");
    assert_eq!((err.code, err.span), ("not-outbound", 0..22));
}

#[test]
fn expressions_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expr>();
}

#[test]
fn function_names_are_case_insensitive_and_branches_lazy() {
    assert_eq!(eval("lower(UPPER(\"x\"))"), "x");
    // IIF and Switch evaluate only the branch they take (so that
    // `IIF(IsPresent(x), x, Error("…"))` and IgnoreAttributeFlow in a branch
    // act only when chosen); every other call evaluates all its arguments.
    assert_eq!(eval("IIF(true, 1, ToInt(\"x\"))"), "1");
    assert_eq!(
        eval("IIF(false, 1, ToInt(\"x\"))"),
        "error: ToInt: \"x\" is not an integer"
    );
    assert_eq!(
        eval("Switch(\"a\", Error(\"no\"), \"a\", 1, \"b\", Error(\"no\"))"),
        "1"
    );
    assert_eq!(
        eval("Switch(\"z\", Error(\"no match\"), \"a\", 1)"),
        "error: no match"
    );
    assert_eq!(
        eval("Coalesce(1, ToInt(\"x\"))"),
        "error: ToInt: \"x\" is not an integer"
    );
}

#[test]
fn design_brief_examples() {
    let env = example_env();
    let run = |src: &str| render(parse(src).eval(&env));
    assert_eq!(
        run("Coalesce(preferredName, Join(\" \", givenName, sn))"),
        "José Müller"
    );
    assert_eq!(run("status != \"Terminated\""), "true");
    assert_eq!(
        run("Join(\",\", \"CN=\" + EscapeDN(displayName), Switch(city, \"OU=Users,DC=corp,DC=example\", \"Dallas\", \"OU=Dallas,OU=Users,DC=corp,DC=example\"))"),
        "CN=Müller\\, José,OU=Dallas,OU=Users,DC=corp,DC=example"
    );
    assert_eq!(
        run("SelectUniqueValue(Lower(Left(NormalizeDiacritics(givenName), 1) + NormalizeDiacritics(sn)), Lower(NormalizeDiacritics(givenName) + \".\" + NormalizeDiacritics(sn)))"),
        "error: SelectUniqueValue: every candidate is already in use: \"jmuller\", \"jose.muller\""
    );
    assert_eq!(run("IIF(accountEnabled, 512, 514)"), "514");
}

// ------------------------------------------------------------- properties

/// The functions random trees may call: those without parse-time checks of
/// constant arguments (which random literals would fail).
fn callable() -> Vec<&'static crate::functions::FunctionDef> {
    functions()
        .iter()
        // Select, Where and With need a variable first.
        .filter(|f| f.prepare.is_none() && !["Select", "Where", "With"].contains(&f.name))
        .collect()
}

fn arb_attribute() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{0,8}",
        "[^\\]]{1,8}",
        Just("null".to_owned()),
        Just("True".to_owned())
    ]
}

fn arb_tree() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        any::<String>().prop_map(Value::Str),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
    .prop_map(|v| Node::new(Kind::Literal(v), 0..0))
    .boxed();
    let leaf = prop_oneof![
        3 => leaf,
        1 => arb_attribute().prop_map(|name| Node::new(Kind::Attribute(name.into()), 0..0)),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            (
                prop_oneof![Just(UnaryOp::Not), Just(UnaryOp::Neg)],
                inner.clone()
            )
                .prop_map(|(op, operand)| Node::new(Kind::Unary(op, Box::new(operand)), 0..0)),
            (
                prop::sample::select(vec![
                    BinaryOp::Or,
                    BinaryOp::And,
                    BinaryOp::Eq,
                    BinaryOp::Ne,
                    BinaryOp::Lt,
                    BinaryOp::Le,
                    BinaryOp::Gt,
                    BinaryOp::Ge,
                    BinaryOp::Concat,
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                ]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, l, r)| Node::new(Kind::Binary(op, Box::new(l), Box::new(r)), 0..0)),
            (
                any::<prop::sample::Index>(),
                prop::collection::vec(prop::option::weighted(0.85, inner), 0..6)
            )
                .prop_filter_map(
                    "no function takes that many arguments",
                    |(index, args)| {
                        // An empty slot (`f(a, , c)`); a lone one would
                        // print as `f()`, a call without arguments.
                        if args.len() == 1 && args[0].is_none() {
                            return None;
                        }
                        let args: Vec<Node> = args
                            .into_iter()
                            .map(|a| a.unwrap_or_else(|| Node::new(Kind::Missing, 0..0)))
                            .collect();
                        let fitting: Vec<_> = callable()
                            .into_iter()
                            .filter(|f| f.accepts(args.len()))
                            .collect();
                        if fitting.is_empty() {
                            return None;
                        }
                        let def = fitting[index.index(fitting.len())];
                        Some(Node::new(
                            Kind::Call(Call::new(def, args, Prepared::none())),
                            0..0,
                        ))
                    }
                ),
        ]
    })
}

/// Strings made of the language's tokens, more likely than random text to
/// get deep into the parser.
fn arb_token_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "(",
        ")",
        ",",
        "+",
        "-",
        "!",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "=",
        "&",
        "|",
        "\"s\"",
        "'é'",
        "\"",
        "'",
        "\\",
        "[a b]",
        "[",
        "]",
        "12",
        "-9223372036854775808",
        "99999999999999999999",
        "x",
        "null",
        "true",
        "Lower",
        "Left",
        "Join",
        "Switch",
        "RegexReplace",
        "\"(\"",
        "FormatDateTime",
        "\"%Y\"",
        "DateAdd",
        "\"d\"",
        "é",
        "日本",
        " ",
        "\t",
        "\n",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|parts| parts.concat())
}

fn check_error_span(src: &str, err: &ParseError) -> Result<(), TestCaseError> {
    prop_assert!(
        err.span.start <= err.span.end && err.span.end <= src.len(),
        "{err:?} in {src:?}"
    );
    prop_assert!(
        src.is_char_boundary(err.span.start) && src.is_char_boundary(err.span.end),
        "{err:?} in {src:?}"
    );
    prop_assert!(!err.message.is_empty());
    Ok(())
}

/// Whatever parses prints canonically, reparses to the same tree, and
/// evaluates without panicking.
fn check_parsed(src: &str) -> Result<(), TestCaseError> {
    match Expr::parse(src) {
        Err(err) => check_error_span(src, &err),
        Ok(expr) => {
            let printed = expr.to_string();
            let reparsed = Expr::parse(&printed);
            prop_assert!(
                reparsed.as_ref().is_ok_and(|r| *r == expr),
                "{src:?} printed as {printed:?}: {reparsed:?}"
            );
            let _ = expr.eval(&example_env());
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(src in any::<String>()) {
        check_parsed(&src)?;
    }

    #[test]
    fn parse_never_panics_on_token_soup(src in arb_token_soup()) {
        check_parsed(&src)?;
    }

    #[test]
    fn printing_then_parsing_gives_the_same_tree(tree in arb_tree()) {
        let expr = Expr::from_tree(tree, String::new());
        let printed = expr.to_string();
        match Expr::parse(&printed) {
            Ok(reparsed) => {
                prop_assert_eq!(&reparsed, &expr, "printed as {}", printed);
                prop_assert_eq!(reparsed.to_string(), printed);
            }
            Err(err) => prop_assert!(false, "{printed:?} does not parse: {err:?}"),
        }
    }
}

#[test]
fn value_types_are_known_for_literals_operators_and_declared_functions() {
    use crate::ValueType::{Boolean, DateTime, Integer, String};
    let ty = |src: &str| Expr::parse(src).expect("parses").value_type();
    assert_eq!(ty("\"a\""), Some(String));
    assert_eq!(ty("512"), Some(Integer));
    assert_eq!(ty("a == b"), Some(Boolean));
    assert_eq!(ty("!a"), Some(Boolean));
    assert_eq!(ty("1 + 2"), Some(Integer));
    assert_eq!(ty("1 + a"), None, "a null `a` makes it the string \"1\"");
    assert_eq!(ty("\"x\" + a"), Some(String));
    assert_eq!(ty("Count(a)"), Some(Integer));
    assert_eq!(ty("Now()"), Some(DateTime));
    assert_eq!(ty("Lower(a)"), Some(String));
    assert_eq!(ty("IIF(a, 1, 2)"), None);
    assert_eq!(ty("a"), None);
}

/// An environment whose every read fails, as a store failure would.
struct FailingEnv;

impl crate::Env for FailingEnv {
    fn attribute(&self, name: &str) -> Result<Value, crate::ReadError> {
        Err(crate::ReadError {
            attribute: name.to_owned(),
            message: "I/O error".to_owned(),
        })
    }

    fn now(&self) -> i64 {
        0
    }

    fn value_in_use(&self, _candidate: &Value) -> Option<bool> {
        None
    }
}

#[test]
fn a_failed_attribute_read_fails_the_evaluation_instead_of_reading_null() {
    // Each would be decided by a null: out of scope, the fallback value.
    for text in [
        "status == \"Active\"",
        "IsPresent(status)",
        "Coalesce(status, \"none\")",
        "!IsNullOrEmpty(status) || true",
    ] {
        let expr = Expr::parse(text).expect("parses");
        let err = expr.eval(&FailingEnv).expect_err(text);
        assert_eq!(err.code, "attribute-read-failed", "{text}");
        assert!(err.message.contains("status"), "{text}: {}", err.message);
    }
}
