//! Running mvsync unattended: exit codes per outcome, run history with its
//! statuses, filters and retention, and SIGTERM during a long step.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{code, many_workers, staff, stderr, Env, Setup};

fn statuses(env: &Env, args: &[&str]) -> Vec<String> {
    let mut all = vec!["history"];
    all.extend_from_slice(args);
    match env.json(&all) {
        Value::Array(runs) => runs.iter().map(|r| r["status"].to_string()).collect(),
        other => panic!("a list of runs: {other}"),
    }
}

#[test]
fn each_outcome_has_its_exit_code() {
    let env = Setup {
        threshold: 1,
        ..Setup::default()
    }
    .env(&staff());
    env.expect(&["run", "full"], 0);

    // 4: a deletion threshold stopped the step.
    env.write_hr(&staff()[..1]);
    env.ok(&["import", "hr", "--allow-deletes", "5"]);
    env.ok(&["sync", "hr", "--allow-deletes", "5"]);
    let out = env.expect(&["export", "app"], 4);
    assert!(
        stderr(&out).contains("deletion threshold"),
        "{}",
        stderr(&out)
    );
    assert!(statuses(&env, &[])
        .last()
        .is_some_and(|s| s.contains("StoppedByThreshold")));

    // 5: the connected system failed (here its file cannot be read).
    std::fs::remove_file(env.path("data/hr.csv")).expect("remove the HR file");
    std::fs::create_dir(env.path("data/hr.csv")).expect("a folder in its place");
    env.expect(&["import", "hr"], 5);

    // 2: the configuration is wrong.
    let broken = Env::new("[store]\npath = 3\n");
    assert_eq!(code(&broken.mvsync(&["run", "full"])), 2);

    // 3: completed with per-object errors.
    let env = Setup::default().env(&staff());
    let mut text = std::fs::read_to_string(env.path("data/hr.csv")).expect("the HR file");
    text.push_str("E9,only,three\n");
    env.write("data/hr.csv", &text);
    env.expect(&["import", "hr"], 3);
}

#[test]
fn history_filters_by_profile_status_connector_and_date() {
    let env = Setup::default().env(&staff());
    env.ok(&["run", "full"]);
    env.ok(&["import", "hr"]);
    let all = env.history();
    assert_eq!(all.len(), 6);
    let listed = |args: &[&str]| -> usize {
        let mut a = vec!["history"];
        a.extend_from_slice(args);
        env.json(&a).as_array().map_or(0, Vec::len)
    };
    assert_eq!(listed(&["--profile", "full"]), 5);
    assert_eq!(listed(&["--connector", "hr"]), 3);
    assert_eq!(listed(&["--status", "success"]), 6);
    assert_eq!(listed(&["--status", "failed"]), 0);
    assert_eq!(listed(&["--since", "2000-01-01"]), 6);
    assert_eq!(listed(&["--until", "2000-01-01"]), 0);
    assert_eq!(listed(&["--since", "2999-01-01T00:00:00Z"]), 0);
    let out = env.expect(&["history", "--status", "fine"], 2);
    assert!(
        stderr(&out).contains("expected one of: in-progress, success"),
        "{}",
        stderr(&out)
    );
    let out = env.expect(&["history", "--since", "yesterday"], 2);
    assert!(
        stderr(&out).contains("not a date (YYYY-MM-DD)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn retention_keeps_recent_runs_and_is_configured_in_days() {
    let env = Setup::default().env(&staff());
    env.ok(&["run", "full"]);
    let config = std::fs::read_to_string(env.path("mvsync.toml")).expect("the config");
    env.write(
        "mvsync.toml",
        &config.replace("[engine]\n", "[engine]\nhistory_retention_days = 1\n"),
    );
    // Runs finished today are kept by a day's retention (pruning by age
    // is tested in the engine, with its clock).
    env.ok(&["import", "hr"]);
    assert_eq!(env.history().len(), 6);
    env.write(
        "mvsync.toml",
        &config.replace(
            "[engine]\n",
            "[engine]\nhistory_retention_days = \"a week\"\n",
        ),
    );
    let out = env.expect(&["import", "hr"], 2);
    assert!(
        stderr(&out).contains("history_retention_days"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sigterm_during_a_long_sync_stops_it_cleanly_and_a_rerun_completes() {
    let env = Setup::default().env(&many_workers(40_000));
    env.ok(&["import", "hr"]);
    let mut child = env
        .command(&["-vv", "sync", "hr", "--full"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mvsync");
    // Once the sync has committed a batch or two.
    let stderr_pipe = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut batches = 0;
        for line in std::io::BufReader::new(stderr_pipe)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("sync batch committed") {
                batches += 1;
                if batches == 2 {
                    let _ = tx.send(());
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the sync committed two batches");
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let status = child.wait().expect("wait for mvsync");
    assert_eq!(status.code(), Some(6), "stopped by the operator");
    let last = env.last_run();
    assert_eq!(last["status"], "Stopped", "{last}");
    let projected = last["counters"]["projections"].as_u64().unwrap_or(0);
    assert!(
        projected > 0 && projected < 40_000,
        "stopped part-way: {projected}"
    );
    env.ok(&["check"]);

    env.ok(&["sync", "hr", "--full"]);
    let rest = env.last_run()["counters"]["projections"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(projected + rest, 40_000, "nothing lost, nothing twice");
    env.ok(&["check"]);
}

/// The test setup with `schedules` appended.
fn scheduled(schedules: &str) -> Env {
    let setup = Setup::default();
    let config = format!("{}\n{schedules}", setup.config());
    let env = Env::new(&config);
    env.write_hr(&staff());
    env
}

#[test]
fn the_scheduler_runs_two_profiles_on_a_fast_schedule_without_overlap() {
    let env = scheduled(
        "[schedules.full]\ncron = \"*/2 * * * * *\"\n[schedules.delta]\ncron = \"* * * * * *\"\n",
    );
    let mut child = env
        .command(&["schedule"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mvsync schedule");
    std::thread::sleep(Duration::from_secs(6));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let out = {
        let status = child.wait().expect("wait");
        let mut text = String::new();
        use std::io::Read;
        if let Some(mut o) = child.stdout.take() {
            o.read_to_string(&mut text).expect("stdout");
        }
        assert_eq!(status.code(), Some(0), "a clean stop: {text}");
        text
    };
    assert!(
        out.contains("stopped on request; the scheduler ends"),
        "{out}"
    );
    let runs = env.history();
    let profiles: Vec<&str> = runs.iter().filter_map(|r| r["profile"].as_str()).collect();
    let starts = |p: &str| out.matches(&format!("run profile '{p}' started")).count();
    assert!(
        starts("full") >= 2 && starts("delta") >= 2,
        "both ran again and again:\n{out}"
    );
    assert_eq!(profiles.len(), runs.len(), "every run belongs to a profile");
    // Never two at once: each step starts after the one before ended.
    for pair in runs.windows(2) {
        let ended = pair[0]["finished"].as_i64().expect("finished");
        let started = pair[1]["started"].as_i64().expect("started");
        assert!(started >= ended, "overlap: {} and {}", pair[0], pair[1]);
    }
    assert!(
        out.contains("nothing to import, sync or export"),
        "an idle cycle says so:\n{out}"
    );
    env.ok(&["check"]);
}

#[test]
fn schedule_once_runs_what_is_due_and_exits() {
    let env = scheduled("[schedules.full]\ncron = \"0 2 * * *\"\n");
    let out = env.ok(&["schedule", "--once"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("run profile 'full' has not run yet: running it now"),
        "{text}"
    );
    assert_eq!(env.history().len(), 5);
    // Run at most once a day: not due again now.
    let out = env.ok(&["schedule", "--once"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing is due"));
    assert_eq!(env.history().len(), 5);
    // A compaction killed between its renames left the store aside: the
    // scheduler puts it back and still finds nothing due.
    std::fs::rename(env.path("state/mvsync.db"), env.path("state/mvsync.db.old")).expect("aside");
    let out = env.ok(&["schedule", "--once"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing is due"));
    assert_eq!(env.history().len(), 5);
    assert!(!env.path("state/mvsync.db.old").exists());

    let broken = scheduled(
        "[schedules.full]\ncron = \"every night\"\n[schedules.nightly]\ncron = \"0 2 * * *\"\n",
    );
    let out = broken.expect(&["schedule", "--once"], 2);
    let err = crate::harness::flat(&stderr(&out));
    assert!(
        err.contains("`cron` of schedule 'full' is not a cron expression"),
        "{err}"
    );
    assert!(
        err.contains("schedule for run profile 'nightly', which is not configured"),
        "{err}"
    );
}

/// The `app-out` rule's display name flow, made wrong by a bad change.
fn with_display_flow(env: &Env, flow: &str) {
    let config = std::fs::read_to_string(env.path("mvsync.toml")).expect("the config");
    let rule = config.find("name = \"app-out\"").expect("the app-out rule");
    let start = rule
        + config[rule..]
            .find("\ndisplayName = ")
            .expect("app-out's displayName flow")
        + 1;
    let end = start + config[start..].find('\n').expect("a line end");
    env.write(
        "mvsync.toml",
        &format!("{}displayName = {flow}{}", &config[..start], &config[end..]),
    );
}

fn audit_lines(env: &Env, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    match env.json(&all) {
        Value::Array(items) => items,
        other => panic!("a JSON array: {other}"),
    }
}

#[test]
fn the_audit_log_records_every_exported_change_old_to_new_and_no_secret() {
    let setup = Setup {
        extra: "",
        ..Setup::default()
    };
    let config = setup
        .config()
        .replace(
            "columns = [\"accountName\", \"displayName\", \"department\", \"manager\", \"enabled\"]",
            "columns = [\"accountName\", \"displayName\", \"department\", \"manager\", \"enabled\", \"initialPassword\"]",
        )
        .replace(
            "enabled = 'IIF(active, \"yes\", \"no\")'",
            "enabled = 'IIF(active, \"yes\", \"no\")'\ninitialPassword = { expr = '\"Welcome-\" + employeeId + \"!\"', initial_only = true }",
        );
    let env = Env::new(&config);
    env.write_hr(&staff());
    env.ok(&["run", "full"]);
    let entries = audit_lines(&env, &[]);
    assert_eq!(entries.len(), 3, "three accounts added: {entries:#?}");
    for e in &entries {
        assert_eq!(e["operation"], "add");
        assert_eq!(e["result"], "applied");
        assert_eq!(e["connector"], "app");
        let password = e["changes"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["attribute"] == "initialPassword"))
            .expect("the password column was exported");
        assert_eq!(password["new"], "<redacted>");
    }
    let text = std::fs::read_to_string(env.path("state/mvsync.db.audit.jsonl")).expect("the log");
    assert!(!text.contains("Welcome-"), "no secret in the audit log");

    with_display_flow(&env, "'Upper(displayName)'");
    env.ok(&["run", "full"]);
    let run = last_export_run(&env);
    let changed = audit_lines(&env, &["--run", &run.to_string()]);
    assert_eq!(changed.len(), 3);
    let ada = audit_lines(&env, &["--object", "e1"]);
    assert_eq!(ada.len(), 2, "the add and the update of e1");
    assert_eq!(ada[1]["changes"][0]["attribute"], "displayName");
    assert_eq!(ada[1]["changes"][0]["old"], "Ada Lovelace");
    assert_eq!(ada[1]["changes"][0]["new"], "ADA LOVELACE");
    assert_eq!(audit_lines(&env, &["--since", "2999-01-01"]).len(), 0);
    let csv = crate::harness::stdout(&env.ok(&["audit", "--format", "csv", "--object", "e1"]));
    assert!(
        csv.starts_with(
            "time,run,connector,object,anchor,dn,operation,new_dn,attribute,old,new,result,error\n"
        ),
        "{csv}"
    );
    assert!(
        csv.contains(",displayName,Ada Lovelace,ADA LOVELACE,applied,"),
        "{csv}"
    );
}

#[test]
fn a_bad_rule_change_exported_to_csv_is_reverted_to_the_byte() {
    let env = Setup::default().env(&staff());
    env.ok(&["run", "full"]);
    let before = env.bytes("state/app.csv");
    with_display_flow(&env, "'Upper(displayName)'");
    env.ok(&["run", "full"]);
    assert_ne!(
        env.bytes("state/app.csv"),
        before,
        "the bad change reached the file"
    );
    let run = last_export_run(&env);

    // The rule is fixed, then the run is reverted and exported.
    with_display_flow(&env, "\"displayName\"");
    let out = env.ok(&["revert", &run.to_string()]);
    assert!(
        crate::harness::stdout(&out).contains("3 change(s) staged"),
        "{}",
        crate::harness::stdout(&out)
    );
    let preview = env.preview();
    assert_eq!(preview.len(), 3, "{preview:#?}");
    env.ok(&["export", "app"]);
    assert_eq!(
        env.bytes("state/app.csv"),
        before,
        "byte-identical to before the bad run"
    );
    env.ok(&["run", "full"]);
    assert_eq!(env.bytes("state/app.csv"), before, "and it stays so");
    env.ok(&["check"]);
}

#[test]
fn after_a_revert_the_full_sync_of_the_target_stages_the_rules_values_again() {
    let env = Setup::default().env(&staff());
    env.ok(&["run", "full"]);
    with_display_flow(&env, "'Upper(displayName)'");
    env.ok(&["run", "full"]);
    let upper = env.bytes("state/app.csv");
    let run = last_export_run(&env);
    env.ok(&["revert", &run.to_string()]);
    env.ok(&["export", "app"]);
    env.ok(&["import", "app", "--full"]);
    assert!(
        env.preview().is_empty(),
        "the revert is exported and confirmed"
    );

    // The rule still says upper case: the target's full sync, which read
    // what hr's full sync evaluated, evaluates the reverted objects again.
    env.ok(&["sync", "app", "--full"]);
    assert_eq!(env.preview().len(), 3, "{:#?}", env.preview());
    env.ok(&["export", "app"]);
    assert_eq!(env.bytes("state/app.csv"), upper);
    env.ok(&["check"]);
}

#[test]
fn revert_leaves_objects_changed_since_alone_unless_forced() {
    let env = Setup::default().env(&staff());
    env.ok(&["run", "full"]);
    with_display_flow(&env, "'Upper(displayName)'");
    env.ok(&["run", "full"]);
    let bad = last_export_run(&env);
    // A later run changes Ada again.
    let mut workers = staff();
    workers[0] = crate::harness::worker("E1", "Ada", "King").email("ada@example.org");
    env.write_hr(&workers);
    env.ok(&["run", "full"]);
    let out = env.ok(&["revert", &bad.to_string()]);
    let text = crate::harness::stdout(&out);
    assert!(
        text.contains("left alone: app cs:") && text.contains("(e1): changed again by run"),
        "{text}"
    );
    assert!(text.contains("2 change(s) staged"), "{text}");
    let out = env.ok(&["revert", &bad.to_string(), "--force"]);
    assert!(crate::harness::stdout(&out).contains("3 change(s) staged"));
    let out = env.expect(&["revert", "999"], 1);
    assert!(
        stderr(&out).contains("run 999 exported no change"),
        "{}",
        stderr(&out)
    );
}

/// The id of the newest export run.
fn last_export_run(env: &Env) -> u64 {
    env.history()
        .iter()
        .rev()
        .find(|r| r["step"] == "Export")
        .and_then(|r| r["id"].as_u64())
        .expect("an export run")
}

#[test]
fn progress_is_line_based_off_a_terminal_and_listings_come_as_csv_json_or_tables() {
    let env = Setup::default().env(&many_workers(3000));
    let mut import = env.command(&["import", "hr"]);
    import.env("MVSYNC_PROGRESS_SECS", "0");
    let out = import.output().expect("run mvsync");
    assert!(out.status.success());
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(
        lines.len() >= 2
            && lines
                .iter()
                .all(|l| l.contains(" full-import hr: ") && l.ends_with("/s")),
        "plain progress lines: {err}"
    );
    let mut export = env.command(&["run", "full"]);
    export.env("MVSYNC_PROGRESS_SECS", "0");
    let out = export.output().expect("run mvsync");
    assert!(
        stderr(&out).lines().any(|l| l.starts_with("progress: ")
            && l.contains(" export app: ")
            && l.contains("s left")),
        "an export knows its total: {}",
        stderr(&out)
    );
    // -q: errors only.
    let mut quiet = env.command(&["-q", "import", "hr"]);
    quiet.env("MVSYNC_PROGRESS_SECS", "0");
    let out = quiet.output().expect("run mvsync");
    assert_eq!(stderr(&out), "", "nothing but errors on stderr");
    // JSON log lines.
    let out = env.mvsync(&["-v", "--log-format", "json", "import", "hr"]);
    let err = stderr(&out);
    let logged: Vec<&str> = err.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!logged.is_empty(), "{err}");
    for l in logged {
        let v: Value = serde_json::from_str(l).expect("a JSON log line");
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{l}"
        );
    }

    let history = crate::harness::stdout(&env.ok(&["history", "--format", "csv"]));
    let mut rows = csv::Reader::from_reader(history.as_bytes());
    assert_eq!(rows.records().count(), env.history().len());
    let env = Setup::default().env(&staff());
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    let preview = crate::harness::stdout(&env.ok(&["preview", "--format", "csv"]));
    let mut rows = csv::Reader::from_reader(preview.as_bytes());
    let header = rows.headers().expect("a header").clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        [
            "connector",
            "object",
            "object_type",
            "operation",
            "dn",
            "new_dn",
            "attribute",
            "old",
            "new"
        ]
    );
    let adds = rows
        .records()
        .filter_map(Result::ok)
        .filter(|r| &r[3] == "add" && &r[6] == "displayName")
        .count();
    assert_eq!(adds, 3);

    let page = crate::harness::stdout(&env.ok(&["man"]));
    assert!(
        page.contains(".TH mvsync 1") && page.contains("schedule"),
        "{page}"
    );
}

#[test]
fn the_scheduler_writes_and_serves_prometheus_metrics() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let env = scheduled(&format!(
        "[schedules.full]\ncron = \"0 2 * * *\"\n\n[metrics]\nfile = \"state/mvsync.prom\"\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    env.ok(&["schedule", "--once"]);
    let text = std::fs::read_to_string(env.path("state/mvsync.prom")).expect("the metrics file");
    for expected in [
        "# TYPE mvsync_run_duration_seconds gauge",
        "mvsync_step_objects{profile=\"full\",connector=\"app\",step=\"export\",counter=\"export-adds\"} 3",
        // A step's own counters are there at zero, so series stay put.
        "mvsync_step_objects{profile=\"full\",connector=\"app\",step=\"export\",counter=\"export-deletes\"} 0",
        "mvsync_step_objects{profile=\"full\",connector=\"hr\",step=\"full-import\",counter=\"import-deletes\"} 0",
        "mvsync_pending_exports{connector=\"app\"} 0",
        "mvsync_quarantined{connector=\"app\"} 0",
        "mvsync_run_failed{profile=\"full\"} 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("step=\"export\",counter=\"import-adds\""),
        "no other step's counters: {text}"
    );
    // Served while the scheduler runs, after its first run. A profile that
    // has never run runs at once; the daily cron keeps a second run, whose
    // counters would be zero, from replacing the first while the test reads.
    let env = scheduled(&format!(
        "[schedules.full]\ncron = \"0 2 * * *\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    let mut child = env
        .command(&["schedule"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mvsync schedule");
    let mut served = String::new();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        served.clear();
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
            let _ = s.read_to_string(&mut served);
            if served.contains("export-adds") {
                break;
            }
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(served.starts_with("HTTP/1.1 200 OK"), "{served}");
    assert!(served.contains("text/plain; version=0.0.4"), "{served}");
    assert!(
        served.contains("mvsync_step_objects{profile=\"full\",connector=\"app\",step=\"export\",counter=\"export-adds\"} 3"),
        "the metrics of the run: {served}"
    );

    let outside =
        scheduled("[schedules.full]\ncron = \"0 2 * * *\"\n[metrics]\nlisten = \"0.0.0.0:9464\"\n");
    let out = outside.expect(&["schedule", "--once"], 2);
    assert!(crate::harness::flat(&stderr(&out)).contains("is not a loopback address"));
}

#[test]
fn revert_deletes_what_a_run_added_and_creates_again_what_it_deleted() {
    let env = Setup::default().env(&staff());
    env.ok(&["run", "full"]);
    let accounts = |env: &Env| {
        let mut names: Vec<String> = env
            .app_rows()
            .iter()
            .map(|r| r["accountName"].clone())
            .collect();
        names.sort();
        names
    };
    assert_eq!(accounts(&env), ["e1", "e2", "e3"]);
    // A run that deletes Alan's account and adds Dana's.
    let mut workers = staff();
    workers.remove(2);
    workers.push(crate::harness::worker("E4", "Dana", "Scully"));
    env.write_hr(&workers);
    env.ok(&["run", "full", "--allow-deletes", "1"]);
    assert_eq!(accounts(&env), ["e1", "e2", "e4"]);
    let run = last_export_run(&env);
    let out = env.ok(&["revert", &run.to_string()]);
    let text = crate::harness::stdout(&out);
    assert!(
        text.contains("(e4): delete") && text.contains("add again"),
        "{text}"
    );
    env.ok(&["export", "app", "--allow-deletes", "1"]);
    assert_eq!(
        accounts(&env),
        ["e1", "e2", "e3"],
        "Dana's account gone, Alan's back"
    );
    let back = env.app_row("e3");
    assert_eq!(back["displayName"], "Alan Turing");
    env.ok(&["check"]);
}

#[test]
fn progress_is_a_bar_on_a_terminal() {
    let env = Setup::default().env(&many_workers(20_000));
    // util-linux `script` runs mvsync on a pseudo-terminal.
    let out = std::process::Command::new("script")
        .args([
            "-qfec",
            &format!("{} import hr", crate::harness::BIN),
            "/dev/null",
        ])
        .current_dir(env.root())
        .env_remove("MVSYNC_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run `script` (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("full-import hr") && text.contains("objects"),
        "a progress bar: {text:?}"
    );
    assert!(
        text.contains('\u{1b}'),
        "drawn with terminal controls: {text:?}"
    );
    assert!(
        !text.contains("progress: run"),
        "no plain lines on a terminal: {text:?}"
    );
    assert!(
        text.contains("run 1 full-import hr: success (import-adds=20000)"),
        "{text}"
    );
}

/// Every file under `dir`, with its size.
fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read the store folder")
        .map(|e| {
            let e = e.expect("an entry");
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                disk_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[test]
fn compact_rewrites_a_churned_store_keeping_every_object_and_run() {
    let env = Setup::default().env(&many_workers(300));
    env.ok(&["run", "full"]);
    // Churn: every worker's department changes, round after round.
    for round in 0..6 {
        let workers: Vec<_> = many_workers(300)
            .into_iter()
            .map(|w| w.department(&format!("Dept {round}")))
            .collect();
        env.write_hr(&workers);
        env.ok(&["run", "full"]);
    }
    let history = env.history();
    let object = env.show_cs("app", "e000150");
    let store = env.path("state/mvsync.db");
    let before = disk_bytes(&store);

    let out = env.ok(&["compact"]);
    let said = crate::harness::stdout(&out);
    assert!(
        said.starts_with("compacted ") && said.contains(" → ") && said.contains(" keys)"),
        "{said}"
    );
    let after = disk_bytes(&store);
    assert!(after < before, "{before} → {after} bytes");
    for left in [
        "mvsync.db.compacting",
        "mvsync.db.compacted",
        "mvsync.db.old",
    ] {
        assert!(
            !env.path(&format!("state/{left}")).exists(),
            "{left} is left"
        );
    }
    env.ok(&["check"]);
    assert_eq!(env.history(), history);
    assert_eq!(env.show_cs("app", "e000150"), object);
    // And it goes on working: nothing is pending, a run changes nothing.
    assert!(env.preview().is_empty());
    env.ok(&["run", "full"]);
    assert_eq!(env.show_cs("app", "e000150"), object);
}

#[test]
fn a_store_path_ending_in_a_slash_keeps_the_audit_log_beside_the_store_through_compaction() {
    let env = Setup::default().env(&staff());
    let config = std::fs::read_to_string(env.path("mvsync.toml")).expect("the config");
    let slashed = config.replacen("\"state/mvsync.db\"", "\"state/mvsync.db/\"", 1);
    assert_ne!(slashed, config, "the store's path is in the config");
    env.write("mvsync.toml", &slashed);
    env.ok(&["run", "full"]);
    let audit = env.path("state/mvsync.db.audit.jsonl");
    let logged = std::fs::read(&audit).expect("the audit log beside the store");
    assert!(!logged.is_empty());
    env.ok(&["compact"]);
    assert_eq!(std::fs::read(&audit).expect("still there"), logged);

    // A file someone put in the store's folder stops the compaction.
    std::fs::write(env.path("state/mvsync.db/notes.txt"), "mine").expect("write");
    let out = env.mvsync(&["compact"]);
    assert!(!out.status.success());
    let said = crate::harness::stderr(&out);
    assert!(
        said.contains("notes.txt is in the store's folder"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("state/mvsync.db/notes.txt")).expect("kept"),
        "mine"
    );
    env.ok(&["check"]);
}
