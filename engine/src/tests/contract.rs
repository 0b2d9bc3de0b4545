//! The connector contract as the engine honours it: failure kinds (retry,
//! join on already-exists, not-found), partial batches, in-flight adds of
//! system-assigned anchors, expired watermarks, bad items that cannot pin a
//! watermark, the import and sync deletion thresholds, DNs compared in
//! any escaping form, and the start and end of an export run.

use std::sync::Arc;

use super::support::{
    connector_info, hr_feed, inbound, object_type, outbound, Harness, RuleBuilder, System,
};
use crate::history::RunStatus;
use crate::model::{CsState, PendingExport};
use crate::StepKind::{DeltaImport, Export, FullImport, FullSync};
use crate::{EngineError, ExportOp, ImportEvent, StepOptions};

/// HR projecting people provisioned to `target` by `out`.
fn hr_to(target: &Arc<System>, out: RuleBuilder) -> (Harness, Arc<System>) {
    let hr = hr_feed();
    let h = Harness::new(
        &[&hr, target],
        vec![
            inbound("hr-in", "hr")
                .project()
                .join("employeeId", "employeeId")
                .flow("employeeId", "employeeId")
                .flow("displayName", "name"),
            out,
        ],
        500,
    );
    (h, hr)
}

/// HR projecting five people provisioned to a Graph-like target (no DNs,
/// the system assigns anchors).
fn hr_to_graph() -> (Harness, Arc<System>, Arc<System>) {
    let graph = System::new(
        "graph",
        connector_info(object_type("user", None, &[]), false),
    );
    let (h, hr) = hr_to(
        &graph,
        outbound("graph-out", "graph", "user")
            .flow("employeeId", "employeeId")
            .flow("displayName", "displayName"),
    );
    for (id, name) in [
        ("E1", "Ann"),
        ("E2", "Bob"),
        ("E3", "Cy"),
        ("E4", "Di"),
        ("E5", "Ed"),
    ] {
        hr.put("worker", id, &[("employeeId", id), ("name", name)]);
    }
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    (h, hr, graph)
}

fn pending_adds(h: &Harness) -> usize {
    h.cs_all("graph")
        .iter()
        .filter(|o| matches!(o.pending_export, Some(PendingExport::Add { .. })))
        .count()
}

#[test]
fn retryable_failures_are_retried_within_the_run() {
    let (h, _, graph) = hr_to_graph();
    // Two adds are "busy" once each, then go through (3 attempts allowed).
    graph.state().busy.insert(String::new(), 2);
    let run = h.run("graph", Export);
    assert_eq!(run.status, RunStatus::Success, "{:?}", h.errors(&run));
    assert_eq!(run.counters.export_adds, 5);
    assert_eq!(graph.state().objects.len(), 5);
}

#[test]
fn a_failure_that_stays_retryable_is_kept_pending_with_its_code() {
    let (h, _, graph) = hr_to_graph();
    graph.state().busy.insert(String::new(), 100);
    let run = h.run("graph", Export);
    assert_eq!(run.status, RunStatus::CompletedWithErrors);
    let errors = h.errors(&run);
    assert_eq!(errors.len(), 5);
    assert!(errors.iter().all(|e| e.code == "export-retryable"
        && e.system_code.as_deref() == Some("LDAP 51 busy")
        && e.message.contains("gave up after 3 attempt(s)")));
    assert_eq!(pending_adds(&h), 5, "kept for the next run");
    assert!(
        h.cs_all("graph")
            .iter()
            .all(|o| o.state == CsState::InFlight),
        "a retryable failure may have been a timeout: looked up before the next send"
    );
    graph.state().busy.clear();
    assert_eq!(h.run("graph", Export).counters.export_adds, 5);
    h.assert_consistent();
}

#[test]
fn an_add_that_finds_the_object_already_there_joins_it() {
    let dir = System::new(
        "dir",
        connector_info(object_type("account", Some("uid"), &[]), false),
    );
    let (h, hr) = hr_to(
        &dir,
        outbound("dir-out", "dir", "account")
            .flow("uid", "employeeId")
            .flow("displayName", "displayName"),
    );
    hr.put("worker", "E1", &[("employeeId", "E1"), ("name", "Ann")]);
    hr.put("worker", "E2", &[("employeeId", "E2"), ("name", "Bob")]);
    // The target already holds E2's account, made by hand.
    dir.put("account", "E2", &[("uid", "E2"), ("displayName", "B. Old")]);
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    let run = h.run("dir", Export);
    assert_eq!(run.status, RunStatus::Success, "{:?}", h.errors(&run));
    assert_eq!(
        (run.counters.export_adds, run.counters.export_adopted),
        (1, 1)
    );
    assert_eq!(dir.state().objects.len(), 2, "no second E2");
    // The next import brings in what it holds; sync stages the difference.
    h.steps(&[("dir", FullImport), ("dir", FullSync)]);
    assert_eq!(h.run("dir", Export).counters.export_updates, 1);
    assert_eq!(
        dir.attr("E2", "displayName"),
        Some(rules::Value::from("Bob"))
    );
    h.assert_consistent();
}

#[test]
fn a_batch_cut_short_keeps_the_applied_in_escrow_and_the_rest_pending() {
    let (h, _, graph) = hr_to_graph();
    graph.state().drop_after = Some(2);
    let err = h
        .try_run("graph", Export, &StepOptions::default())
        .expect_err("the connection dropped");
    assert!(matches!(err, EngineError::Connector { .. }), "{err}");
    assert!(err.to_string().contains("3 change(s)"), "{err}");
    assert_eq!(graph.state().objects.len(), 2);
    let objects = h.cs_all("graph");
    let applied: Vec<_> = objects
        .iter()
        .filter(|o| o.state == CsState::Added)
        .collect();
    assert_eq!(applied.len(), 2);
    assert!(applied
        .iter()
        .all(|o| !o.escrow.is_empty() && o.anchor.is_some()));
    assert_eq!(pending_adds(&h), 3);
    // The unknown ones are in flight: the next export looks them up first.
    assert_eq!(
        objects
            .iter()
            .filter(|o| o.state == CsState::InFlight)
            .count(),
        3
    );
    assert_eq!(h.run("graph", Export).counters.export_adds, 3);
    assert_eq!(graph.state().objects.len(), 5);
    assert_eq!(graph.state().lookups, 3);
    h.assert_consistent();
}

#[test]
fn an_add_whose_answer_was_lost_is_found_not_created_again() {
    let (h, _, graph) = hr_to_graph();
    graph.state().lose_answers = true;
    assert!(h.try_run("graph", Export, &StepOptions::default()).is_err());
    assert_eq!(graph.state().objects.len(), 5, "the system applied them");
    assert!(h
        .cs_all("graph")
        .iter()
        .all(|o| o.state == CsState::InFlight));
    let run = h.run("graph", Export);
    assert_eq!(run.counters.export_adds, 5, "recorded as applied");
    assert_eq!(graph.state().objects.len(), 5, "and not created twice");
    let sent_twice = graph
        .state()
        .exported
        .iter()
        .filter(|c| matches!(c.op, ExportOp::Add { .. }))
        .count();
    assert_eq!(sent_twice, 5, "no add was sent again");
    assert_eq!(h.run("graph", FullImport).counters.confirmed, 5);
    h.assert_consistent();
}

#[test]
fn a_not_found_delete_is_done() {
    let (h, hr, graph) = hr_to_graph();
    h.steps(&[("graph", Export), ("graph", FullImport)]);
    let gone = h.target_of("hr", "E1", "graph").anchor.unwrap();
    hr.remove("E1");
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    graph.remove(&gone);
    let run = h.run("graph", Export);
    assert_eq!(run.status, RunStatus::Success, "{:?}", h.errors(&run));
    assert_eq!(run.counters.export_deletes, 1);
    h.assert_consistent();
}

#[test]
fn an_expired_watermark_is_its_own_error_and_stages_nothing() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![], 500);
    hr.put("worker", "E1", &[("employeeId", "E1")]);
    h.run("hr", FullImport);
    hr.state().watermark_expired = true;
    hr.state().delta = vec![ImportEvent::Delete {
        anchor: "E1".into(),
    }];
    let err = h
        .try_run("hr", DeltaImport, &StepOptions::default())
        .expect_err("expired");
    assert!(matches!(err, EngineError::WatermarkExpired { .. }), "{err}");
    assert!(err.to_string().contains("full import"), "{err}");
}

#[test]
fn a_bad_item_holds_the_watermark_three_times_then_lets_later_changes_through() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![], 500);
    hr.put("worker", "E1", &[("employeeId", "E1")]);
    h.run("hr", FullImport);
    let mut codes = Vec::new();
    for _ in 0..4 {
        hr.state().bad_items = 1;
        let run = h.run("hr", DeltaImport);
        codes.push(
            h.errors(&run)
                .iter()
                .map(|e| e.code.clone())
                .collect::<Vec<_>>(),
        );
    }
    let given = hr.state().watermarks_given.clone();
    assert_eq!(given[0], given[1], "held back once");
    assert_eq!(given[1], given[2], "held back twice");
    assert_ne!(given[2], given[3], "the third moved past the bad item");
    assert_eq!(codes[2], ["bad-input", "bad-input-skipped"]);
    assert_eq!(
        codes[3],
        ["bad-input", "warning"],
        "the count starts again (the watermark held back is a warning)"
    );
}

#[test]
fn a_full_import_over_the_deletion_threshold_stages_no_delete() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![], 2);
    for id in ["E1", "E2", "E3", "E4", "E5"] {
        hr.put("worker", id, &[("employeeId", id)]);
    }
    h.run("hr", FullImport);
    for id in ["E1", "E2", "E3"] {
        hr.remove(id);
    }
    let err = h
        .try_run("hr", FullImport, &StepOptions::default())
        .expect_err("three deletes, threshold two");
    assert!(
        matches!(
            err,
            EngineError::ImportDeletionThreshold {
                deletes: 3,
                total: 5,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        h.cs_all("hr").iter().all(
            |o| !matches!(&o.pending_import, Some(p) if p.kind == crate::model::ImportKind::Delete)
        ),
        "nothing staged as deleted"
    );
    let allowed = StepOptions {
        allow_deletes: Some(3),
    };
    let run = h.try_run("hr", FullImport, &allowed).expect("allowed");
    assert_eq!(run.counters.import_deletes, 3);
}

/// An in-memory directory whose DNs come back in another escaping form.
#[test]
fn a_dn_in_another_escaping_form_is_the_same_object() {
    let ad = System::new("ad", connector_info(object_type("user", None, &[]), true));
    let h = Harness::new(&[&ad], vec![], 500);
    ad.put("user", "g1", &[("cn", "x")]);
    ad.state().objects.get_mut("g1").unwrap().dn = Some("CN=Müller\\, José,OU=Users".into());
    h.run("ad", FullImport);
    ad.state().objects.get_mut("g1").unwrap().dn = Some("cn=müller\\2C josé, ou=users".into());
    h.run("ad", FullImport);
    assert_eq!(h.cs_all("ad").len(), 1, "not a new object");
    let txn = h.engine.store().begin();
    let conn = h.engine.store().lookup("ad").unwrap();
    assert!(txn
        .by_dn(conn, "CN=\"Müller, José\",OU=Users")
        .unwrap()
        .is_some());
}

#[test]
fn a_sync_that_would_delete_more_metaverse_objects_than_the_threshold_stops() {
    let hr = hr_feed();
    let h = Harness::new(
        &[&hr],
        vec![inbound("hr-in", "hr")
            .project()
            .join("employeeId", "employeeId")
            .flow("employeeId", "employeeId")],
        2,
    );
    for id in ["E1", "E2", "E3", "E4", "E5"] {
        hr.put("worker", id, &[("employeeId", id)]);
    }
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    for id in ["E1", "E2", "E3"] {
        hr.remove(id);
    }
    let allow = |n| StepOptions {
        allow_deletes: Some(n),
    };
    h.try_run("hr", FullImport, &allow(3))
        .expect("import allowed");
    let err = h
        .try_run("hr", FullSync, &StepOptions::default())
        .expect_err("over the threshold");
    assert!(
        matches!(
            err,
            EngineError::SyncDeletionThreshold {
                deletes: 3,
                deleted: 0,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(h.mv_all().len(), 5, "nothing was deleted");
    h.assert_consistent();
    let run = h.try_run("hr", FullSync, &allow(3)).expect("allowed");
    assert_eq!(run.counters.mv_deletes, 3);
    assert_eq!(h.mv_all().len(), 2);
    h.assert_consistent();
}

#[test]
fn a_run_killed_mid_step_is_interrupted_with_what_it_committed() {
    let hr = hr_feed();
    for i in 0..2500 {
        let id = format!("E{i:04}");
        hr.put("worker", &id, &[("employeeId", &id)]);
    }
    let kv = Arc::new(crate::store::MemKv::default());
    // Batches: open, run record, two import batches of 1,000; then it dies.
    let (store, _) = super::support::crashing_store(&kv, 4).expect("store");
    let h = Harness::on_store(store, &[&hr], vec![], 5000).expect("engine");
    assert!(h
        .try_run("hr", FullImport, &StepOptions::default())
        .is_err());
    drop(h);
    let (store, _) = super::support::crashing_store(&kv, usize::MAX).expect("store");
    let h = Harness::on_store(store, &[&hr], vec![], 5000).expect("engine");
    let runs = h.engine.history().expect("history");
    let killed = runs.last().expect("the killed run");
    assert_eq!(killed.status, RunStatus::Interrupted);
    assert!(
        killed.counters.import_adds >= 1000 && killed.counters.import_adds < 2500,
        "the record says what it committed: {:?}",
        killed.counters
    );
    assert!(killed.written.keys > 0);
    assert_eq!(h.cs_all("hr").len() as u64, killed.counters.import_adds);
}

#[test]
fn an_add_that_timed_out_is_looked_up_before_it_is_retried() {
    let (h, _, graph) = hr_to_graph();
    // Every add is applied, but answered as a timeout.
    graph.state().timeouts.insert(String::new(), 5);
    let run = h.run("graph", Export);
    assert_eq!(run.status, RunStatus::Success, "{:?}", h.errors(&run));
    assert_eq!(run.counters.export_adds, 5);
    assert_eq!(graph.state().objects.len(), 5, "no add was applied twice");
    assert_eq!(graph.state().lookups, 5);
    h.assert_consistent();
}

#[test]
fn a_connector_hears_an_export_run_start_only_when_there_is_something_to_send() {
    let (h, _, graph) = hr_to_graph();
    h.run("graph", Export);
    assert_eq!(
        graph.state().export_calls,
        ["starting", "batch", "finished"],
        "told before the first batch, so it can prepare meanwhile"
    );
    graph.state().export_calls.clear();
    let run = h.run("graph", Export);
    assert_eq!(run.counters.export_adds, 0);
    assert_eq!(graph.state().export_calls, ["finished"]);
}
