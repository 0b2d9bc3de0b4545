//! Failing loudly and precisely: each bad input names the file, line and
//! column (or the object) of the problem, with the documented exit code.

use serde_json::Value;

use crate::harness::{describe, flat, hr_csv, line_col, staff, stderr, stdout, worker, Env, Setup};

/// Imports `hr_text` as the HR file after a clean `run full`; the import
/// must complete with per-object errors, which are returned as
/// `(code, identifier, message)`.
fn import_with_errors(hr_text: &str) -> (Env, Vec<(String, String, String)>) {
    let env = Setup::default().env(&staff());
    env.ok(&["run", "full"]);
    env.write("data/hr.csv", hr_text);
    let out = env.expect(&["import", "hr"], 3);
    assert!(
        stdout(&out).contains("bad-input data/hr.csv:"),
        "the errors are printed:\n{}",
        describe(&out)
    );
    let field = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
    let errors = env
        .run_errors(&env.last_run())
        .iter()
        .map(|e| {
            (
                field(e, "code"),
                field(e, "identifier"),
                field(e, "message"),
            )
        })
        .collect();
    (env, errors)
}

/// The HR file with `line` inserted after the first two workers (it is line 4).
fn with_line_4(line: &str, rest: &[crate::harness::Worker]) -> String {
    let text = hr_csv(&staff()[..2]);
    let tail = hr_csv(rest);
    let tail = tail.split_once('\n').map_or("", |(_, rows)| rows);
    format!("{text}{line}\n{tail}")
}

#[test]
fn malformed_row_is_an_object_error_at_its_line_and_column() {
    let bad = "E9,Bad,Row,,Engineering,Employee,Active,,surplus";
    // E3 is missing and E4 follows the bad row.
    let (env, errors) =
        import_with_errors(&with_line_4(bad, &[worker("E4", "Katherine", "Johnson")]));
    let column = bad.rfind(',').map_or(0, |i| bad[..i].chars().count() + 2);
    let location = format!("data/hr.csv:4:{column}");
    let bad_input: Vec<&(String, String, String)> =
        errors.iter().filter(|e| e.0 == "bad-input").collect();
    assert_eq!(bad_input.len(), 1, "{errors:?}");
    assert_eq!(bad_input[0].1, location, "{errors:?}");
    assert!(bad_input[0].2.contains("expected 8 fields"), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.0 == "deletes-not-staged"),
        "{errors:?}"
    );

    // Staged objects are intact, the rows around the bad one are read, and
    // nothing was staged as a delete (E3 is not in the file).
    assert_eq!(env.show_cs("hr", "E1")["anchor"], "E1");
    assert_eq!(env.show_cs("hr", "E4")["pending_import"][0], "add");
    assert_eq!(
        env.show_cs("hr", "E3")["pending_import"],
        Value::Null,
        "no delete staged for E3"
    );
}

#[test]
fn duplicate_anchor_is_an_object_error_at_the_second_row() {
    let duplicate = "E2,Grace,Duplicate,,Engineering,Employee,Active,";
    let (_env, errors) = import_with_errors(&with_line_4(duplicate, &staff()[2..]));
    let bad_input: Vec<&(String, String, String)> =
        errors.iter().filter(|e| e.0 == "bad-input").collect();
    assert_eq!(bad_input.len(), 1, "{errors:?}");
    assert_eq!(bad_input[0].1, "data/hr.csv:4:1", "{errors:?}");
    assert!(
        bad_input[0].2.contains("duplicate anchor") && bad_input[0].2.contains("\"E2\""),
        "{errors:?}"
    );
    assert!(
        bad_input[0].2.contains("line 3"),
        "names the first occurrence: {errors:?}"
    );
}

#[test]
fn missing_anchor_column_fails_the_step_naming_file_and_column() {
    let env = Setup::default().env(&staff());
    env.write("data/hr.csv", "id,firstName,lastName\nE1,Ada,Lovelace\n");
    let out = env.expect(&["import", "hr"], 5);
    let message = flat(&stderr(&out));
    assert!(
        message.contains("data/hr.csv"),
        "names the file: {}",
        describe(&out)
    );
    assert!(
        message.contains("employeeId"),
        "names the missing column: {}",
        describe(&out)
    );
}

/// A config error: `validate` and `run` both exit 2 and report the
/// position of byte `at` in the file plus every `mention`.
fn assert_config_error(config: &str, at: usize, mentions: &[&str]) {
    let env = Env::new(config);
    let (line, column) = line_col(config, at);
    let location = format!("mvsync.toml:{line}:{column}:");
    for args in [&["validate"][..], &["run", "full"]] {
        let out = env.expect(args, 2);
        let message = flat(&stderr(&out));
        assert!(
            message.contains(&location),
            "`mvsync {}` must report {location}\n{}",
            args.join(" "),
            describe(&out)
        );
        for m in mentions {
            assert!(
                message.contains(m),
                "`mvsync {}` must mention {m:?}\n{}",
                args.join(" "),
                describe(&out)
            );
        }
    }
    assert!(
        !env.path("state").exists(),
        "a bad configuration touches no store"
    );
}

/// The default configuration with `from` replaced by `to`, and the offset
/// of `marker` (which must be inside `to`) in the result.
fn broken(from: &str, to: &str, marker: &str) -> (String, usize) {
    let good = Setup::default().config();
    assert!(good.contains(from), "the template holds {from:?}");
    let text = good.replacen(from, to, 1);
    let at =
        text.find(to).expect("replaced") + to.find(marker).expect("marker inside the replacement");
    (text, at)
}

#[test]
fn unknown_connector_in_a_run_profile() {
    let step = r#"{ connector = "app", step = "export" },"#;
    let (config, at) = broken(
        step,
        r#"{ connector = "ldap", step = "export" },"#,
        r#""ldap""#,
    );
    assert_config_error(&config, at, &["ldap"]);
}

#[test]
fn toml_syntax_error() {
    let (config, at) = broken(
        r#"anchor = "employeeId""#,
        r#"anchor = = "employeeId""#,
        r#"= ""#,
    );
    assert_config_error(&config, at, &[]);
}

#[test]
fn expression_syntax_error_points_at_the_character() {
    let (config, at) = broken(
        r#"department = "department""#,
        r#"department = 'department $ "x"'"#,
        "$",
    );
    assert_config_error(&config, at, &["$"]);
}

#[test]
fn unknown_function_is_named() {
    let (config, at) = broken("Lower(employeeId)", "Lowercase(employeeId)", "Lowercase");
    assert_config_error(&config, at, &["Lowercase"]);
}

#[test]
fn control_characters_in_data_are_printed_escaped_in_tables() {
    const RED: &str = "\u{1b}[31mred\u{1b}[0m";
    let workers = [
        worker("E1", "Ada", "Lovelace").department(RED),
        worker("E2", "Grace", "\u{202e}reppoH"),
        worker("E3", "Alan", "Turing").department("Research\nLab"),
    ];
    let env = Setup::default().env(&workers);
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    let outputs = [
        env.ok(&["show", "cs", "hr", "E1"]),
        env.ok(&["show", "cs", "app", "e1"]),
        env.ok(&["preview"]),
        env.ok(&["show", "cs", "hr", "E2"]),
        env.ok(&["show", "cs", "hr", "E3"]),
    ];
    for (i, out) in outputs.iter().enumerate() {
        let text = stdout(out);
        assert!(
            !out.stdout.contains(&0x1b) && !text.contains('\u{202e}'),
            "no raw ESC or bidi override in output {i}:\n{}",
            describe(out)
        );
        let want = match i {
            0..=2 => r"\u{1b}[31mred\u{1b}[0m",
            3 => r"\u{202e}reppoH",
            _ => r"Research\nLab",
        };
        assert!(
            text.contains(want),
            "{want} in output {i}:\n{}",
            describe(out)
        );
    }
    // The newline stays inside its cell: one table line holds the whole value.
    let preview = stdout(&outputs[2]);
    assert!(
        preview.lines().any(|l| l.contains(r"Research\nLab")),
        "{preview}"
    );
    // JSON keeps the exact value.
    let hologram = env.show_cs("hr", "E1")["hologram"].clone();
    let department = hologram
        .as_array()
        .and_then(|pairs| pairs.iter().find(|p| p[0] == "department"))
        .map(|p| p[1].clone());
    assert_eq!(department, Some(Value::from(RED)), "{hologram}");
}
