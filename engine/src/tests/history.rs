//! Run history: statuses as a step ends, and retention.

use crate::history::{self, RunError, RunLog, RunStatus, StepKind};
use crate::store::Store;

const DAY: i64 = 86_400_000_000;

/// A finished run started at `day` (in days since the epoch), with one
/// per-object error.
fn run(store: &Store, day: i64) -> u64 {
    let mut log =
        RunLog::start(store, Some("p"), StepKind::FullImport, "hr", day * DAY).expect("start");
    let mut txn = store.begin();
    log.error(
        &mut txn,
        RunError {
            object: None,
            identifier: "hr.csv:2:1".into(),
            code: "bad-input".into(),
            message: "x".into(),
            system_code: None,
        },
    )
    .expect("error");
    store.commit(txn).expect("commit");
    log.finish(store, RunStatus::Success, day * DAY + 1)
        .expect("finish")
        .id
}

#[test]
fn prune_deletes_runs_and_their_errors_older_than_the_cutoff_only() {
    let store = Store::memory();
    let old: Vec<u64> = (0..300).map(|d| run(&store, d)).collect();
    let kept = run(&store, 1000);
    assert_eq!(history::prune(&store, 999 * DAY).expect("prune"), 300);
    let left: Vec<u64> = history::runs(&store)
        .expect("runs")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, vec![kept]);
    assert!(history::run(&store, old[0]).expect("read").is_none());
    let (_, errors) = history::run(&store, kept).expect("read").expect("kept");
    assert_eq!(errors.len(), 1);
    let mut stray = 0;
    store
        .for_each_prefix(&[crate::store::keys::tag::RUN_ERROR], |_, _| {
            stray += 1;
            Ok(())
        })
        .expect("scan");
    assert_eq!(stray, 1, "the pruned runs' errors went with them");
    assert_eq!(history::prune(&store, 999 * DAY).expect("prune"), 0);
}

#[test]
fn a_run_in_progress_stops_pruning() {
    let store = Store::memory();
    let _running = RunLog::start(&store, None, StepKind::Export, "app", 0).expect("start");
    run(&store, 1);
    assert_eq!(history::prune(&store, 10 * DAY).expect("prune"), 0);
}

#[test]
fn warnings_make_a_run_complete_with_warnings_and_errors_outrank_them() {
    let store = Store::memory();
    let mut log = RunLog::start(&store, None, StepKind::DeltaImport, "hr", 0).expect("start");
    let mut txn = store.begin();
    log.warning(&mut txn, "hr", "the watermark was not advanced".into())
        .expect("warning");
    store.commit(txn).expect("commit");
    let record = log.finish(&store, RunStatus::Success, 1).expect("finish");
    assert_eq!(record.status, RunStatus::CompletedWithWarnings);
    assert_eq!(record.counters.errors, 0);
    let (_, listed) = history::run(&store, record.id).expect("read").expect("run");
    assert_eq!(listed[0].code, "warning");
    let errored = run(&store, 2);
    let (record, _) = history::run(&store, errored).expect("read").expect("run");
    assert_eq!(record.status, RunStatus::CompletedWithErrors);
}
