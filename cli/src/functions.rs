//! `mvsync functions [NAME]`: the expression language's functions, from the
//! same `FunctionDef` table the tests run (signature, summary, examples with
//! their results). Needs no configuration.

use rules::functions::{function, functions, suggest, FunctionDef};

use crate::output::{json, Format};

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

/// Prints the list, or one function; `Err` names an unknown function.
pub(crate) fn command(name: Option<&str>, format: Format) -> Result<String, String> {
    match name {
        None => Ok(match format {
            Format::Json => json(&functions().iter().map(entry).collect::<Vec<_>>()),
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
