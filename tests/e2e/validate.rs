//! `mvsync validate`, data-driven: `configs/validate/` holds one
//! configuration per kind of problem. Each file ends with a comment block
//! pinning the exit code and every `FILE:LINE:COL: message` line (and the
//! summary) that `validate` prints, in order. A new case costs one file;
//! `UPDATE_EXPECT=1 cargo test -p mvsync-tests --test e2e validate::` rewrites the
//! blocks from the actual output (review the diff before committing).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::harness::{describe, stderr, stdout, Env, Setup};

/// The first line of a file's expected block.
const MARKER: &str = "# --- expected `mvsync validate` output: exit code, then each line (UPDATE_EXPECT=1 rewrites this block)";

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/configs/validate")
}

/// One configuration and what `validate` must print for it.
struct Case {
    name: String,
    path: PathBuf,
    text: String,
    /// `(exit code, lines)`; `None` when the file has no block yet.
    expected: Option<(i32, Vec<String>)>,
}

fn cases() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("read configs/validate")
        .map(|e| e.expect("folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a case");
            let expected = text.split_once(MARKER).map(|(_, block)| {
                let mut lines = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("# "))
                    .map(str::to_owned);
                let code = lines
                    .next()
                    .and_then(|l| l.strip_prefix("exit ").and_then(|c| c.parse().ok()))
                    .unwrap_or_else(|| {
                        panic!("{}: the block starts with `# exit N`", path.display())
                    });
                (code, lines.collect())
            });
            Case {
                name: path
                    .file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
                path,
                text,
                expected,
            }
        })
        .collect()
}

/// The lines `validate` printed that name the file: each finding's
/// headline (without miette's `×`/`⚠` mark) and the summary.
fn reported(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .chain(stdout(out).lines())
        .map(|l| {
            let l = l.trim_start();
            l.strip_prefix("× ")
                .or_else(|| l.strip_prefix("⚠ "))
                .unwrap_or(l)
                .to_owned()
        })
        .filter(|l| l.starts_with("mvsync.toml:"))
        .collect()
}

/// `(line, column)` of a finding line, `None` for the summary.
fn position(line: &str) -> Option<(usize, usize)> {
    let mut parts = line.strip_prefix("mvsync.toml:")?.splitn(3, ':');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn is_warning(line: &str) -> bool {
    line.contains(": warning: ")
}

fn rewrite(case: &Case, code: i32, lines: &[String]) {
    let body = case
        .text
        .split_once(MARKER)
        .map_or(case.text.as_str(), |(b, _)| b);
    let mut text = body.trim_end().to_owned();
    text.push_str("\n\n");
    text.push_str(MARKER);
    text.push_str(&format!("\n# exit {code}\n"));
    for l in lines {
        text.push_str(&format!("# {l}\n"));
    }
    std::fs::write(&case.path, text).expect("rewrite a case");
}

#[test]
fn each_broken_config_reports_exactly_its_problems() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    let mut kinds = 0;
    for case in cases() {
        let env = Env::new(&case.text);
        let out = env.mvsync(&["validate"]);
        let code = crate::harness::code(&out);
        let lines = reported(&out);
        if update {
            rewrite(&case, code, &lines);
            continue;
        }
        let Some((want_code, want_lines)) = &case.expected else {
            failures.push(format!(
                "{}: no expected block; run with UPDATE_EXPECT=1",
                case.name
            ));
            continue;
        };
        if (code, &lines) != (*want_code, want_lines) {
            failures.push(format!(
                "{}: expected exit {want_code} and\n  {}\ngot\n{}",
                case.name,
                want_lines.join("\n  "),
                describe(&out)
            ));
        }
        if code == 2 {
            kinds += 1;
            assert!(
                lines
                    .iter()
                    .any(|l| position(l).is_some() && !is_warning(l)),
                "{}: an invalid configuration reports an error\n{}",
                case.name,
                describe(&out)
            );
        }
        let positions: Vec<(usize, usize)> = lines.iter().filter_map(|l| position(l)).collect();
        assert!(
            positions.windows(2).all(|w| w[0] <= w[1]),
            "{}: findings in file order\n{}",
            case.name,
            describe(&out)
        );
        assert!(
            !env.path("state").exists(),
            "{}: validate touches no store",
            case.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        update || kinds >= 10,
        "one broken configuration per error kind, at least 10: {kinds}"
    );
}

#[test]
fn several_errors_are_all_reported_in_file_order() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "many-errors")
        .expect("configs/validate/many-errors.toml");
    let out = Env::new(&case.text).expect(&["validate"], 2);
    let lines = reported(&out);
    let errors = lines
        .iter()
        .filter(|l| position(l).is_some() && !is_warning(l))
        .count();
    assert!(errors >= 5, "every error at once:\n{}", describe(&out));
    assert!(
        lines.iter().any(|l| is_warning(l)),
        "warnings beside errors:\n{}",
        describe(&out)
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some(format!("mvsync.toml: invalid ({errors} errors, 1 warning)").as_str()),
        "{}",
        describe(&out)
    );
}

#[test]
fn errors_block_every_command_and_warnings_print_only_under_validate() {
    for case in cases() {
        let Some((code, lines)) = &case.expected else {
            continue;
        };
        let env = Env::new(&case.text);
        if *code == 2 {
            let out = env.expect(&["check"], 2);
            assert!(
                stderr(&out).contains("mvsync.toml:"),
                "{}: the errors are reported\n{}",
                case.name,
                describe(&out)
            );
            assert!(
                !env.path("state").exists(),
                "{}: an invalid configuration opens no store",
                case.name
            );
        } else if lines.iter().any(|l| is_warning(l)) {
            // The configuration loads (no store yet, which `check` reports).
            let out = env.expect(&["check"], 1);
            assert!(
                stderr(&out).contains("there is no store"),
                "{}: the configuration loads\n{}",
                case.name,
                describe(&out)
            );
            assert!(
                !stderr(&out).contains("warning"),
                "{}: warnings only under validate\n{}",
                case.name,
                describe(&out)
            );
        }
    }
}

#[test]
fn quickstart_validates_clean() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/quickstart/mvsync.toml");
    let config = config.to_string_lossy().into_owned();
    let env = Env::empty();
    let out = env.ok(&["-c", &config, "validate"]);
    assert_eq!(stderr(&out), "", "no warnings\n{}", describe(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{config}: valid (3 connectors, 3 rules, 2 run profiles)\n  \
             rule 'app-out' → app: provisions every object in scope; leaving scope: delete; metaverse object deleted: delete (as deprovision)\n"
        )
    );
}

#[test]
fn the_test_configuration_validates_clean() {
    let env = Env::new(&Setup::default().config());
    let out = env.ok(&["validate"]);
    assert_eq!(stderr(&out), "", "no warnings\n{}", describe(&out));
    assert_eq!(
        stdout(&out),
        "mvsync.toml: valid (2 connectors, 2 rules, 2 run profiles)\n  \
         rule 'app-out' → app: provisions every object in scope; leaving scope: delete; metaverse object deleted: delete (as deprovision)\n"
    );
}

// ------------------------------------------- errors of the TOML's shape

/// `template` with each `(from, to)` replaced once, and the `FILE:LINE:COL`
/// of each `(marker, in)` pair: `marker`'s first occurrence inside the
/// first occurrence of `in` (a replacement) in the result.
fn planted(template: &str, edits: &[(&str, &str)], at: &[(&str, &str)]) -> (String, Vec<String>) {
    let mut text = template.to_owned();
    for (from, to) in edits {
        assert!(text.contains(from), "the template holds {from:?}");
        text = text.replacen(from, to, 1);
    }
    let places = at
        .iter()
        .map(|(marker, inside)| {
            let start = text.find(inside).expect("a replacement");
            let offset = start + inside.find(marker).expect("marker inside the replacement");
            let (line, col) = crate::harness::line_col(&text, offset);
            format!("mvsync.toml:{line}:{col}")
        })
        .collect();
    (text, places)
}

#[test]
fn every_shape_error_at_once_each_at_its_key_in_plain_words() {
    // An unknown key in a rule, a wrong value type under [engine] and a
    // bad value in a run-profile step: serde alone stops at the first.
    let (text, at) = planted(
        &Setup::default().config(),
        &[
            ("deletion_threshold = 500", r#"deletion_threshold = "500""#),
            ("precedence = 10", "precedense = 10"),
            (
                r#"{ connector = "app", step = "export" },"#,
                r#"{ connector = "app", step = 3 },"#,
            ),
        ],
        &[
            (r#""500""#, r#"deletion_threshold = "500""#),
            ("precedense", "precedense = 10"),
            ("3", r#"step = 3 }"#),
        ],
    );
    let out = Env::new(&text).expect(&["validate"], 2);
    assert_eq!(
        reported(&out),
        [
            format!(r#"{}: expected a whole number, found the string "500""#, at[0]),
            format!(
                "{}: unknown key `precedense`; expected one of: name, direction, connector, mv_object_type, cs_object_type, precedence, scope, join, project, flows, provision, deprovision, deprovision_on_delete, skip_out_of_scope_deletions, unique_in",
                at[1]
            ),
            format!("{}: expected a string, found the whole number 3", at[2]),
            "mvsync.toml: invalid (3 errors, 0 warnings)".to_owned(),
        ],
        "{}",
        describe(&out)
    );
    // The report keeps its snippet and caret.
    assert!(
        stderr(&out).contains(r#"deletion_threshold = "500""#),
        "{}",
        describe(&out)
    );
}

#[test]
fn two_shape_errors_in_one_rule_and_its_expression_error_are_reported_together() {
    let (text, at) = planted(
        &Setup::default().config(),
        &[
            ("provision = true", "provision = 1"),
            ("deprovision = ", "deprovison = "),
            ("Lower(employeeId)", "Lowr(employeeId)"),
        ],
        &[
            ("1", "provision = 1"),
            ("deprovison", "deprovison = "),
            ("Lowr", "Lowr(employeeId)"),
        ],
    );
    let out = Env::new(&text).expect(&["validate"], 2);
    let lines = reported(&out);
    assert_eq!(
        lines,
        [
            format!(
                "{}: expected true, false or an expression string (provision while it holds), found the whole number 1",
                at[0]
            ),
            format!(
                "{}: unknown key `deprovison`; expected one of: name, direction, connector, mv_object_type, cs_object_type, precedence, scope, join, project, flows, provision, deprovision, deprovision_on_delete, skip_out_of_scope_deletions, unique_in",
                at[1]
            ),
            format!(
                "{}: rule 'app-out', flow to 'accountName': unknown function `Lowr`; did you mean `Lower`? [unknown-function]",
                at[2]
            ),
            "mvsync.toml: invalid (3 errors, 0 warnings)".to_owned(),
        ],
        "{}",
        describe(&out)
    );
    // Every command refuses the file with the same errors.
    let out = Env::new(&text).expect(&["check"], 2);
    let message = crate::harness::flat(&stderr(&out));
    for place in &at {
        assert!(
            message.contains(place.as_str()),
            "{place}\n{}",
            describe(&out)
        );
    }
}

#[test]
fn what_cannot_be_read_is_reported_once_not_again_by_what_names_it() {
    // Neither connector can be read (an unknown type, a bad delimiter) nor
    // the inbound rule (its metaverse type is a number): the rule and the
    // steps naming the connectors are not also reported as naming
    // unconfigured connectors, nor the outbound rule as one whose type no
    // inbound rule projects.
    let (text, at) = planted(
        &Setup::default().config(),
        &[
            (
                "[connectors.app]\ntype = \"csv\"",
                "[connectors.app]\ntype = \"cvs\"",
            ),
            (
                "[connectors.hr]\ntype = \"csv\"",
                "[connectors.hr]\ntype = \"csv\"\ndelimiter = \";;\"",
            ),
            (
                "mv_object_type = \"person\"\nprecedence",
                "mv_object_type = 7\nprecedence",
            ),
        ],
        &[
            ("\"cvs\"", "type = \"cvs\""),
            ("\";;\"", "delimiter = \";;\""),
            ("7", "mv_object_type = 7"),
        ],
    );
    let out = Env::new(&text).expect(&["validate"], 2);
    let mut lines = reported(&out);
    // The connector types are listed after "csv" (test builds have more).
    let unknown_type = format!(r#"{}: unknown value "cvs"; expected one of: "csv""#, at[0]);
    if lines.get(1).is_some_and(|l| l.starts_with(&unknown_type)) {
        lines[1] = unknown_type.clone();
    }
    assert_eq!(
        lines,
        [
            format!(
                r#"{}: invalid delimiter ";;": expected one ASCII character other than a quote or a line break"#,
                at[1]
            ),
            unknown_type,
            format!("{}: expected a string, found the whole number 7", at[2]),
            "mvsync.toml: invalid (3 errors, 0 warnings)".to_owned(),
        ],
        "{}",
        describe(&out)
    );
}

#[test]
fn what_cannot_be_read_causes_no_false_follow_up_errors() {
    // Each case: an edit of the test configuration, the value it plants,
    // and the one error `validate` must report. Without the value left out
    // by the error, the checks after reading would also report: no flow to
    // the provisioned anchor, a provisioning rule without cs_object_type,
    // a run profile without steps, an outbound type no rule projects.
    let cases = [
        (
            "accountName = { expr = 'Lower(employeeId)', initial_only = true }",
            "accountName = 5",
            "5",
            "expected an expression string or a table { expr = \"...\", initial_only = true }, found the whole number 5",
        ),
        (
            "cs_object_type = \"account\"",
            "cs_object_type = 5",
            "5",
            "expected a string, found the whole number 5",
        ),
        (
            "[run_profiles.delta]\nsteps = [",
            "[run_profiles.delta]\nsteps = [\n  1,",
            "1,",
            "expected a table, found the whole number 1",
        ),
        (
            "direction = \"inbound\"",
            "direction = [\"inbound\"]",
            "[",
            "expected a string, found a list",
        ),
    ];
    for (from, to, marker, message) in cases {
        let (mut text, at) = planted(&Setup::default().config(), &[(from, to)], &[(marker, to)]);
        if from.starts_with("[run_profiles.delta]") {
            // Every step of the profile is unreadable.
            let start = text.find("[run_profiles.delta]").expect("the profile");
            let steps = text[start..].find("  {").expect("a step") + start;
            text.replace_range(steps.., "]\n");
        }
        let out = Env::new(&text).expect(&["validate"], 2);
        assert_eq!(
            reported(&out),
            [
                format!("{}: {message}", at[0]),
                "mvsync.toml: invalid (1 error, 0 warnings)".to_owned(),
            ],
            "{to}\n{}",
            describe(&out)
        );
    }
}
