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
