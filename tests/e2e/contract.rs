//! The connector contract through the binary, against the `fault` test
//! system (cargo feature `testkit`): a system that assigns its anchors,
//! needs a password and fails on demand. Secrets never reach any output;
//! a batch cut short keeps the rest pending; a kill between the system
//! applying an add and the store recording it creates one object, not two;
//! an expired watermark says so and can fall back to a full import; an
//! empty source deletes nothing; a half-written change line waits.

use std::process::Output;

use serde_json::Value;

use crate::harness::{describe, flat, hr_csv, stderr, stdout, worker, Env, Worker};

const SECRET: &str = "Corr3ct-Horse-Battery-Staple";
const PASSWORD_VAR: &str = "MVSYNC_TEST_DIR_PASSWORD";

const CONFIG: &str = r#"
[store]
path = "state/mvsync.db"

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"
change_file = "data/hr-changes.csv"

[connectors.dir]
type = "fault"
path = "data/dir.json"
object_type = "account"
key = "uid"
password = { env = "MVSYNC_TEST_DIR_PASSWORD" }

[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hr"
mv_object_type = "person"
join = [ { cs = "employeeId", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "employeeId"
displayName = 'Join(" ", firstName, lastName)'

[[rules]]
name = "dir-out"
direction = "outbound"
connector = "dir"
mv_object_type = "person"
cs_object_type = "account"
provision = true
deprovision = "delete"
[rules.flows]
uid = "Lower(employeeId)"
cn = "displayName"

[run_profiles.full]
steps = [
  { connector = "hr", step = "full-import" },
  { connector = "hr", step = "full-sync" },
  { connector = "dir", step = "export" },
  { connector = "dir", step = "full-import" },
]

[run_profiles.delta]
steps = [
  { connector = "dir", step = "delta-import" },
]

[run_profiles.delta-or-full]
steps = [
  { connector = "dir", step = "delta-import", fallback = "full-import" },
]
"#;

fn five() -> Vec<Worker> {
    ["Ann", "Bob", "Cy", "Di", "Ed"]
        .iter()
        .enumerate()
        .map(|(i, n)| worker(&format!("E{}", i + 1), n, "Tester"))
        .collect()
}

fn setup(workers: &[Worker]) -> Env {
    let mut env = Env::new(CONFIG);
    env.set_var(PASSWORD_VAR, SECRET);
    env.write("data/hr.csv", &hr_csv(workers));
    env.write(
        "data/dir.json",
        &format!("{{\"password\": \"{SECRET}\", \"objects\": {{}}, \"next\": 0}}"),
    );
    env
}

/// `mvsync args` with the given fault switches.
fn run(env: &Env, faults: &[(&str, &str)], args: &[&str]) -> Output {
    env.command(args)
        .envs(faults.iter().copied())
        .output()
        .expect("run mvsync")
}

/// The objects the system holds, by uid.
fn system_uids(env: &Env) -> Vec<String> {
    let state: Value = serde_json::from_slice(&env.bytes("data/dir.json")).expect("state");
    let mut uids: Vec<String> = state["objects"]
        .as_object()
        .expect("objects")
        .values()
        .map(|o| o["uid"].as_str().unwrap_or_default().to_owned())
        .collect();
    uids.sort();
    uids
}

fn pending(env: &Env) -> Vec<(String, String)> {
    let preview = env.json(&["preview", "dir"]);
    let mut out: Vec<(String, String)> = preview
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            let uid = c["attributes"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["name"] == "uid"))
                .and_then(|a| a["new"].as_str())
                .or(c["object"].as_str())
                .unwrap_or_default()
                .to_owned();
            (uid, c["operation"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_connector_secret_reaches_no_output_log_history_or_file() {
    let env = setup(&five());
    let mut seen = String::new();
    let mut record = |out: Output| {
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    };
    for args in [
        &["validate"][..],
        &["-vv", "test-connection", "dir"],
        &["-vv", "run", "full"],
        &["preview"],
        &["preview", "--format", "json"],
        &["show", "mv", "1"],
        &["show", "mv", "1", "--format", "json"],
        &["show", "cs", "dir", "g-1"],
        &["show", "cs", "dir", "g-1", "--format", "json"],
        &["history"],
        &["history", "--format", "json"],
        &["history", "1"],
        &["check"],
        &["preview", "object", "hr", "E1"],
    ] {
        let out = run(&env, &[], args);
        assert_eq!(out.status.code(), Some(0), "{args:?}:\n{}", describe(&out));
        record(out);
    }
    // A refused password: the error names where the password came from, never it.
    env.write(
        "data/dir.json",
        &String::from_utf8_lossy(&env.bytes("data/dir.json")).replace(SECRET, "something-else"),
    );
    let out = run(&env, &[], &["-vv", "test-connection", "dir"]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert!(
        stderr(&out).contains("invalid credentials") && stderr(&out).contains(PASSWORD_VAR),
        "{}",
        describe(&out)
    );
    record(out);
    let out = run(&env, &[], &["-vv", "run", "full"]);
    record(out);
    assert!(seen.contains("g-1"), "the commands ran: {seen}");
    assert!(!seen.contains(SECRET), "the secret was printed:\n{seen}");
    for entry in walk(&env.path("state")) {
        let bytes = std::fs::read(&entry).expect("read");
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the secret",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    assert!(!out.is_empty() || dir.is_dir());
    out
}

#[test]
fn a_secret_written_in_the_configuration_is_refused_and_not_repeated() {
    let env = setup(&five());
    for written in [
        format!("password = \"{SECRET}\""),
        format!("password = {{ value = \"{SECRET}\" }}"),
        format!("password = {{ env = \"{SECRET}\", file = \"x\" }}"),
    ] {
        env.write(
            "mvsync.toml",
            &CONFIG.replace(
                "password = { env = \"MVSYNC_TEST_DIR_PASSWORD\" }",
                &written,
            ),
        );
        for args in [&["validate"][..], &["run", "full"]] {
            let out = run(&env, &[], args);
            assert_eq!(out.status.code(), Some(2), "{written}: {}", describe(&out));
            let text = flat(&stderr(&out));
            assert!(
                text.contains("never written in the configuration"),
                "{written}: {text}"
            );
            assert!(
                !stderr(&out).contains(SECRET) && !stdout(&out).contains(SECRET),
                "{written}: the error repeats the secret:\n{}",
                describe(&out)
            );
        }
    }
}

#[test]
fn an_export_cut_short_keeps_what_was_applied_and_the_rest_pending() {
    let env = setup(&five());
    let out = run(&env, &[("MVSYNC_FAULT_DROP_AFTER", "2")], &["run", "full"]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert!(
        flat(&stderr(&out)).contains("3 change(s) of the batch have no known outcome"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        system_uids(&env),
        ["e1", "e2"],
        "the first two were applied"
    );
    let left: Vec<String> = pending(&env).into_iter().map(|(uid, _)| uid).collect();
    assert_eq!(left, ["e3", "e4", "e5"], "the rest stay pending adds");
    let applied = env.json(&["show", "cs", "dir", "g-1"]);
    assert!(
        applied["escrow"].to_string().contains("e1"),
        "the applied add is in escrow: {applied}"
    );
    env.ok(&["run", "full"]);
    assert_eq!(system_uids(&env), ["e1", "e2", "e3", "e4", "e5"]);
    assert!(pending(&env).is_empty());
    env.ok(&["check"]);
}

#[test]
fn a_kill_between_the_system_applying_an_add_and_the_store_recording_it_creates_one_object() {
    let env = setup(&five());
    let out = run(
        &env,
        &[("MVSYNC_FAULT_CRASH_AFTER_APPLY", "1")],
        &["run", "full"],
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "the process died: {}",
        describe(&out)
    );
    assert_eq!(system_uids(&env).len(), 5, "the system applied the batch");
    env.ok(&["run", "full"]);
    assert_eq!(
        system_uids(&env),
        ["e1", "e2", "e3", "e4", "e5"],
        "no object was created twice"
    );
    assert!(pending(&env).is_empty());
    let history = env.json(&["history"]).to_string();
    assert!(history.contains("\"Interrupted\""), "{history}");
    env.ok(&["check"]);
}

#[test]
fn an_expired_watermark_says_so_and_the_profile_can_fall_back_to_a_full_import() {
    let env = setup(&five());
    env.ok(&["run", "full"]);
    let expired = [("MVSYNC_FAULT_EXPIRED", "1")];
    let out = run(&env, &expired, &["run", "delta"]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    let text = flat(&stderr(&out));
    assert!(
        text.contains("no longer honours the stored watermark")
            && text.contains("mvsync import dir --full"),
        "{text}"
    );
    let out = run(&env, &expired, &["run", "delta-or-full"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stdout(&out).contains("full-import dir"),
        "{}",
        describe(&out)
    );
}

#[test]
fn an_empty_source_file_is_refused_at_import_and_deletes_nothing() {
    let env = setup(&five());
    env.ok(&["run", "full"]);
    env.write("data/hr.csv", &hr_csv(&[]));
    let out = run(&env, &[], &["run", "full"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert!(
        flat(&stderr(&out)).contains("full import of 'hr' would delete 5 of its 5 objects"),
        "{}",
        describe(&out)
    );
    assert!(pending(&env).is_empty(), "nothing to delete is pending");
    assert_eq!(system_uids(&env).len(), 5);
    let person = env.json(&["show", "mv", "1"]);
    assert!(
        person.to_string().contains("Ann"),
        "the metaverse keeps its people: {person}"
    );
    // A good file afterwards finds everything in place.
    env.write("data/hr.csv", &hr_csv(&five()));
    env.ok(&["run", "full"]);
    assert!(pending(&env).is_empty());
}

#[test]
fn a_change_line_still_being_written_waits_for_its_line_end() {
    let env = setup(&five());
    env.ok(&["run", "full"]);
    let header = hr_csv(&[]).trim_end().to_owned() + ",changeType\n";
    let row = |w: &Worker| w.cells().join(",");
    let six = worker("E6", "Flo", "Tester");
    let partial = format!("{header}{},add", row(&six));
    // The writer has not finished the line: "Tester,...,ad" could be cut anywhere.
    env.write("data/hr-changes.csv", &partial[..partial.len() - 2]);
    env.ok(&["import", "hr", "--delta"]);
    let out = run(&env, &[], &["show", "cs", "hr", "E6"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the cut line was imported: {}",
        describe(&out)
    );
    env.write("data/hr-changes.csv", &format!("{partial}\n"));
    env.ok(&["import", "hr", "--delta"]);
    let staged = env.json(&["show", "cs", "hr", "E6"]).to_string();
    assert!(
        staged.contains("Flo") && staged.contains("Tester"),
        "{staged}"
    );
}

#[test]
fn test_connection_reads_a_csv_source_and_changes_nothing() {
    let env = setup(&five());
    let before = env.bytes("data/hr.csv");
    let out = env.ok(&["test-connection", "hr"]);
    assert!(
        stdout(&out).contains("read the header of data/hr.csv")
            && stdout(&out).contains("connection ok"),
        "{}",
        describe(&out)
    );
    assert_eq!(env.bytes("data/hr.csv"), before);
    assert!(!env.path("state").exists(), "no store is opened");
    std::fs::remove_file(env.path("data/hr.csv")).expect("remove");
    let out = run(&env, &[], &["test-connection", "hr"]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert!(stderr(&out).contains("data/hr.csv"), "{}", describe(&out));
    let out = run(&env, &[], &["test-connection", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("configured connectors: dir, hr"),
        "{}",
        describe(&out)
    );
}
