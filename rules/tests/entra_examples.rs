//! The documented examples of Microsoft's expression references (Entra
//! provisioning, cloud sync, Entra Connect sync rules), data-driven:
//! `entra_examples.toml` holds each example as printed (expression, inputs,
//! documented output). Every example of a function mvsync has must give
//! the documented result; where the page contradicts its own definition,
//! the row's `expect` says what the definition gives and its note says why.
//!
//! Results are compared as the page prints them: booleans without regard
//! to case (`True`), date-times in the pages' `M/d/yyyy h:mm:ss tt`, lists
//! as `["a", "b"]` or one value a line.

use std::collections::BTreeMap;

use rules::{Expr, MapEnv, Value};

#[derive(serde::Deserialize)]
struct File {
    example: Vec<Example>,
}

#[derive(serde::Deserialize)]
struct Example {
    source: String,
    function: String,
    expression: String,
    #[serde(default)]
    inputs: BTreeMap<String, toml::Value>,
    output: Option<String>,
    #[serde(default)]
    output_null: bool,
    /// What the function's definition gives where the page's example
    /// contradicts it (the note says why).
    expect: Option<String>,
    /// Why the example is not run: a function mvsync does not have, or an
    /// example without a documented result.
    skip: Option<String>,
    #[serde(default)]
    note: String,
}

fn value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::str(s),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Array(items) => Value::list(items.iter().map(value)),
        other => Value::str(other.to_string()),
    }
}

/// The result as the pages print it.
fn printed(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Value::DateTime(us) => chrono::DateTime::from_timestamp_micros(*us)
            .map(|d| d.format("%-m/%-d/%Y %-I:%M:%S %p").to_string())
            .unwrap_or_default(),
        Value::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| format!("\"{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn same(got: &str, want: &str) -> bool {
    got == want
        || got.eq_ignore_ascii_case(want)
            && matches!(want.to_ascii_lowercase().as_str(), "true" | "false")
}

#[test]
fn every_documented_example_gives_the_documented_result() {
    let text = include_str!("entra_examples.toml");
    let file: File = toml::from_str(text).expect("entra_examples.toml parses");
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ex in &file.example {
        if let Some(why) = &ex.skip {
            skipped
                .entry(why.clone())
                .or_default()
                .push(format!("{} {}", ex.source, ex.function));
            continue;
        }
        let want = match (&ex.expect, &ex.output, ex.output_null) {
            (Some(e), _, _) => e.clone(),
            (None, Some(o), _) => o.clone(),
            (None, None, true) => "null".to_owned(),
            (None, None, false) => {
                failures.push(format!(
                    "{} {}: `{}` has no documented output and no skip",
                    ex.source, ex.function, ex.expression
                ));
                continue;
            }
        };
        ran += 1;
        let expr = match Expr::parse(&ex.expression) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!(
                    "{} {}: `{}` does not parse: {}: {}",
                    ex.source, ex.function, ex.expression, e.code, e.message
                ));
                continue;
            }
        };
        let mut env = MapEnv::new(ex.inputs.iter().map(|(k, v)| (k.as_str(), value(v))));
        // 2024-03-15T09:30:00Z, for examples that read the clock.
        env.now = 1_710_495_000_000_000;
        let got = match expr.eval(&env) {
            Ok(v) => printed(&v),
            // "The attribute is dropped from the flow": the pages print null.
            Err(e) if e.code == rules::functions::IGNORE_ATTRIBUTE_FLOW => "null".to_owned(),
            Err(e) => format!("error: {}", e.message),
        };
        if !same(&got, &want) {
            failures.push(format!(
                "{} {}: `{}`\n    documented: {want}\n    got:        {got}\n    note: {}",
                ex.source, ex.function, ex.expression, ex.note
            ));
        }
    }
    let skipped_text: String = skipped
        .iter()
        .map(|(why, rows)| format!("  {why}: {}\n", rows.join(", ")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {ran} documented examples fail:\n{}\n(skipped:\n{skipped_text})",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran >= 150, "only {ran} examples ran");
}
