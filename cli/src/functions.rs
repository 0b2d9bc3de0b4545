//! `mvsync functions [NAME]`: the expression language's functions, from the
//! same `FunctionDef` table the tests run (signature, summary, examples with
//! their results). Needs no configuration.

use rules::functions::{function, functions, suggest, FunctionDef};

use crate::output::{json, ListFormat as Format};

/// One function as `--format json` prints it.
#[derive(serde::Serialize)]
struct Entry<'a> {
    name: &'a str,
    signature: &'a str,
    summary: String,
    examples: Vec<Example<'a>>,
}

#[derive(serde::Serialize)]
struct Example<'a> {
    expression: &'a str,
    result: &'a str,
}

fn entry(def: &'static FunctionDef) -> Entry<'static> {
    Entry {
        name: def.name,
        signature: def.signature,
        summary: one_line(def.summary),
        examples: def
            .examples
            .iter()
            .map(|(expression, result)| Example { expression, result })
            .collect(),
    }
}

/// The summary with its source line breaks folded.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first sentence of a summary, for the list.
fn first_sentence(text: &str) -> String {
    let text = one_line(text);
    match text.find(". ") {
        Some(i) => text[..=i].to_owned(),
        None => text,
    }
}

/// Functions as CSV: name, signature, summary.
fn csv_rows(defs: impl Iterator<Item = &'static FunctionDef>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["name", "signature", "summary"]);
    for def in defs {
        let _ = w.write_record([def.name, def.signature, &one_line(def.summary)]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Prints the list, or one function; `Err` names an unknown function.
pub(crate) fn command(name: Option<&str>, format: Format) -> Result<String, String> {
    match name {
        None => Ok(match format {
            Format::Json => json(&functions().iter().map(entry).collect::<Vec<_>>()),
            Format::Csv => csv_rows(functions().iter()),
            Format::Table => {
                let mut out = String::new();
                for def in functions() {
                    out.push_str(&format!(
                        "{:<24} {}\n",
                        def.signature.split('(').next().unwrap_or(def.name),
                        first_sentence(def.summary)
                    ));
                }
                out.push_str(&format!(
                    "\n{} functions; `mvsync functions NAME` shows one with its examples.\n",
                    functions().len()
                ));
                out
            }
        }),
        Some(name) => {
            let def = function(name).ok_or_else(|| {
                let hint = suggest(name)
                    .map(|s| format!("; did you mean {s}?"))
                    .unwrap_or_default();
                format!("there is no function {name}{hint} (`mvsync functions` lists them)")
            })?;
            Ok(match format {
                Format::Json => json(&entry(def)),
                Format::Csv => csv_rows(std::iter::once(def)),
                Format::Table => {
                    let mut out = format!(
                        "{}\n\n{}\n\nExamples:\n",
                        def.signature,
                        one_line(def.summary)
                    );
                    for (expression, result) in def.examples {
                        out.push_str(&format!("  {expression}\n    → {result}\n"));
                    }
                    out
                }
            })
        }
    }
}
