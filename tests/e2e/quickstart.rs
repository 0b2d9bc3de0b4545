//! samples/quickstart, run as its README says, on a copy (the repository is
//! never written), and its previews pinned as snapshots.

use std::path::Path;

use crate::harness::{stdout, Env};

const CONFIG: &str = "samples/quickstart/mvsync.toml";
const ACCOUNTS: &str = "samples/quickstart/state/app-accounts.csv";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            // state/ is what a run leaves behind: a fresh clone has none.
            if entry.file_name() != "state" {
                copy_dir(&source, &target);
            }
        } else {
            std::fs::copy(&source, &target).expect("copy file");
        }
    }
}

/// A copy of the sample, laid out as in the repository.
pub(crate) fn quickstart() -> Env {
    let env = Env::empty();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/quickstart");
    copy_dir(&sample, &env.path("samples/quickstart"));
    env
}

/// `mvsync -c samples/quickstart/mvsync.toml args`, run from the copy's root, as the README does.
fn qs(env: &Env, args: &[&str], code: i32) -> String {
    let args: Vec<&str> = ["-c", CONFIG].iter().chain(args).copied().collect();
    stdout(&env.expect(&args, code))
}

/// HR drops its change feed (the README's delta step).
fn deliver_changes(env: &Env) {
    std::fs::copy(
        env.path("samples/quickstart/data/hr-changes.csv"),
        env.path("samples/quickstart/state/hr-changes.csv"),
    )
    .expect("copy the change feed");
}

#[test]
fn quickstart_runs_end_to_end() {
    let env = quickstart();
    qs(&env, &["validate"], 0);
    insta::assert_snapshot!("quickstart_run_full_output", qs(&env, &["run", "full"], 0));
    let accounts = env.csv_rows(ACCOUNTS);
    assert_eq!(
        accounts.len(),
        21,
        "21 workers in scope (the intern is not)"
    );
    let e1001 = accounts
        .iter()
        .find(|r| r["accountName"] == "e1001")
        .expect("José's account");
    assert_eq!(e1001["displayName"], "Pepe García", "the phone book wins");
    assert_eq!(e1001["manager"], "e1000");
    qs(&env, &["check"], 0);
    assert!(qs(&env, &["preview"], 0).contains("no pending exports"));

    deliver_changes(&env);
    qs(&env, &["run", "delta"], 0);
    let after = env.csv_rows(ACCOUNTS);
    let account = |name: &str| {
        after
            .iter()
            .find(|r| r["accountName"] == name)
            .unwrap_or_else(|| panic!("{name} exported"))
    };
    assert_eq!(after.len(), 22, "the joiner has an account");
    assert_eq!(account("e1022")["displayName"], "Åsa Lindqvist");
    assert_eq!(
        account("e1006")["department"],
        "Marketing",
        "the mover moved"
    );
    assert_eq!(account("e1012")["enabled"], "no", "the leaver is disabled");
    qs(&env, &["check"], 0);
}

#[test]
fn quickstart_previews() {
    let env = quickstart();
    for step in [
        ["import", "hr"],
        ["sync", "hr"],
        ["import", "phonebook"],
        ["sync", "phonebook"],
    ] {
        qs(&env, &step, 0);
    }
    insta::assert_snapshot!(
        "quickstart_initial_preview_table",
        qs(&env, &["preview", "app"], 0)
    );

    qs(&env, &["run", "full"], 0);
    deliver_changes(&env);
    qs(&env, &["import", "hr", "--delta"], 0);
    qs(&env, &["sync", "hr", "--delta"], 0);
    insta::assert_snapshot!("quickstart_delta_preview_table", qs(&env, &["preview"], 0));
    insta::assert_snapshot!(
        "quickstart_delta_preview_json",
        qs(&env, &["preview", "--format", "json"], 0)
    );
}

#[test]
fn run_without_a_profile_lists_the_profiles_with_their_steps() {
    let env = quickstart();
    let out = qs(&env, &["run"], 0);
    assert!(
        out.starts_with("run profiles (mvsync run PROFILE):\n"),
        "{out}"
    );
    assert!(
        out.contains("  delta\n    1. hr delta-import\n    2. hr delta-sync\n    3. app export\n"),
        "{out}"
    );
    assert!(out.contains("  full\n    1. hr full-import\n"), "{out}");
    assert!(
        !env.path("samples/quickstart/state").exists() && !env.path("state").exists(),
        "listing opens no store"
    );
}

#[test]
fn completions_for_each_shell_name_the_subcommands_and_need_no_configuration() {
    let env = Env::empty();
    for (shell, marker) in [
        ("bash", "_mvsync()"),
        ("zsh", "#compdef mvsync"),
        ("fish", "complete -c mvsync"),
    ] {
        let script = stdout(&env.ok(&["completions", shell]));
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in ["preview", "test-connection", "completions"] {
            assert!(script.contains(sub), "{shell} lacks {sub}");
        }
    }
    let out = env.expect(&["completions", "tcsh"], 2);
    assert!(
        crate::harness::stderr(&out).contains("invalid value 'tcsh'"),
        "{}",
        crate::harness::describe(&out)
    );
}
