//! Safe by default: the deletion threshold, staging mode, and one writer per store.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{
    code, describe, flat, many_workers, operations, stderr, stdout, worker, Env, Setup, Worker,
    APP_CSV,
};

fn five() -> Vec<Worker> {
    ["Ada", "Grace", "Alan", "Edsger", "Barbara"]
        .iter()
        .enumerate()
        .map(|(i, name)| worker(&format!("E{}", i + 1), name, "Tester"))
        .collect()
}

#[test]
fn deletion_threshold_blocks_an_export_until_allowed() {
    let env = Setup {
        threshold: 2,
        ..Setup::default()
    }
    .env(&five());
    env.ok(&["run", "full"]);
    let exported = env.bytes(APP_CSV);
    env.write_hr(&five()[..2]);

    // The import refuses first: a source that lost most of its objects
    // stages no delete at all.
    let out = env.expect(&["run", "full"], 4);
    let message = flat(&stderr(&out));
    assert!(
        message.contains("full import of 'hr' would delete 3 of its 5 objects"),
        "{}",
        describe(&out)
    );
    assert!(operations(&env.preview()).is_empty(), "nothing is pending");
    env.ok(&["import", "hr", "--allow-deletes", "3"]);
    env.ok(&["sync", "hr", "--allow-deletes", "3"]);

    // The export threshold still guards the target.
    let out = env.expect(&["export", "app"], 4);
    let message = flat(&stderr(&out));
    assert!(message.contains("deletion threshold"), "{}", describe(&out));
    assert!(
        message
            .split(|c: char| !c.is_ascii_digit())
            .any(|n| n == "2"),
        "names the threshold, 2: {}",
        describe(&out)
    );
    assert_eq!(
        env.bytes(APP_CSV),
        exported,
        "a refused export changes nothing"
    );
    let deletes = ["e3", "e4", "e5"].map(|a| (a.to_owned(), "delete".to_owned()));
    assert_eq!(
        operations(&env.preview()),
        deletes,
        "the deletes stay pending"
    );

    env.ok(&["run", "full", "--allow-deletes", "3"]);
    let left: Vec<String> = env
        .app_rows()
        .iter()
        .map(|r| r["accountName"].clone())
        .collect();
    assert_eq!(left, ["e1", "e2"]);
    assert_eq!(env.preview(), Vec::<serde_json::Value>::new());
}

#[test]
fn second_writer_fails_at_once_naming_the_holder() {
    let env = Setup::default().env(&many_workers(20_000));
    let lock = env.path("state/mvsync.db.lock");
    // A bounded number of tries: the first run could, on a very fast
    // machine, finish before the second command starts.
    for attempt in 1..=3 {
        std::fs::remove_dir_all(env.path("state")).ok();
        let mut first = env.spawn(&["run", "full"], Stdio::null());
        let holder = format!("mvsync run full (pid {}", first.id());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&holder)) {
            assert!(
                Instant::now() < deadline,
                "the first run never took the lock"
            );
            assert!(
                first.try_wait().expect("poll").is_none(),
                "the first run ended before taking the lock"
            );
            std::thread::sleep(Duration::from_millis(10));
        }

        let started = Instant::now();
        let second = env.mvsync(&["run", "full"]);
        let took = started.elapsed();
        let first_still_running = first.try_wait().expect("poll").is_none();
        first.kill().ok();
        first.wait().ok();
        if !first_still_running && code(&second) == 0 {
            eprintln!(
                "attempt {attempt}: the first run finished before the second started; trying again"
            );
            continue;
        }
        assert_eq!(code(&second), 1, "{}", describe(&second));
        let message = flat(&stderr(&second));
        assert!(message.contains("in use by"), "{}", describe(&second));
        assert!(
            message.contains(&holder),
            "names the holder `{holder}`: {}",
            describe(&second)
        );
        assert!(
            took < Duration::from_secs(5),
            "it fails at once, not after {took:?}"
        );
        return;
    }
    panic!("the first run always finished before a second command could start");
}

#[test]
fn staging_mode_imports_and_syncs_but_never_exports() {
    let config = Setup::default()
        .config()
        .replace("[engine]\n", "[engine]\nstaging = true\n");
    let env = Env::new(&config);
    env.write_hr(&five());
    // The target system exists and is empty.
    let empty = "accountName,displayName,department,manager,enabled\n";
    env.write(APP_CSV, empty);
    let out = env.ok(&["run", "full"]);
    assert!(
        stdout(&out).contains("export app: skipped"),
        "the export step says it was skipped:\n{}",
        stdout(&out)
    );
    assert!(stdout(&out)
        .contains("staging mode: nothing was exported; 5 pending export(s) kept for review"));
    assert_eq!(
        env.bytes(APP_CSV),
        empty.as_bytes(),
        "nothing reaches the connected system"
    );
    assert_eq!(env.preview().len(), 5, "the pending adds stay for review");
    let export_runs: Vec<_> = env
        .history()
        .into_iter()
        .filter(|r| r["step"] == "Export")
        .collect();
    assert_eq!(export_runs.len(), 1);
    assert_eq!(
        export_runs[0]["status"]["Skipped"]
            .as_str()
            .map(|s| s.starts_with("staging mode")),
        Some(true)
    );
}

#[test]
fn read_only_commands_never_create_a_store() {
    let env = Setup::default().env(&five());
    for args in [
        &["check"][..],
        &["history"],
        &["preview"],
        &["show", "mv", "1"],
    ] {
        let out = env.expect(args, 1);
        assert!(
            stderr(&out).contains("there is no store at"),
            "{args:?}: {}",
            describe(&out)
        );
    }
    assert!(!env.path("state").exists(), "no store was created");
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).expect("read")));
        }
    }
    out.sort();
    out
}

#[cfg(unix)]
#[test]
fn read_only_commands_work_for_a_user_who_may_only_read_the_store() {
    use std::os::unix::fs::PermissionsExt;
    // Dropping to another user needs root (CI runs as root).
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        // CI runs as root: there the test must run, never skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "this test needs root to run mvsync as another user, and CI must run it"
        );
        eprintln!("skipped: needs root to run mvsync as another user");
        return;
    }
    let env = Setup::default().env(&five());
    env.ok(&["run", "full"]);
    // Everyone may read (and enter) the folder; only root may write it.
    fn open_for_reading(path: &std::path::Path) {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        if path.is_dir() {
            for entry in std::fs::read_dir(path).expect("read dir").flatten() {
                open_for_reading(&entry.path());
            }
        }
    }
    // The binary too, where the other user can reach it whatever the
    // permissions of the folders above the build.
    let bin = env.path("mvsync-bin");
    std::fs::copy(crate::harness::BIN, &bin).expect("copy the binary");
    open_for_reading(env.root());
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let before = snapshot(&env.path("state"));
    for args in [
        &["history"][..],
        &["check"],
        &["preview"],
        &["show", "cs", "hr", "E1"],
    ] {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .args(args)
            .current_dir(env.root())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .expect("run setpriv");
        assert_eq!(code(&out), 0, "{args:?} as nobody:\n{}", describe(&out));
        if args == ["history"] {
            assert!(stdout(&out).contains("full-import"), "{}", describe(&out));
        }
    }
    assert_eq!(
        snapshot(&env.path("state")),
        before,
        "the store (and its lock file) are untouched"
    );
}
