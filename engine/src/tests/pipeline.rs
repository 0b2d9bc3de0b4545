//! The pipeline through [`Engine::run_step`]: import diffing and
//! watermarks, join, precedence and recall, provisioning and export with
//! escrow, the deletion threshold, reference resolution and idempotence.
//! Connected systems are the in-memory doubles of `support`.

use std::sync::Arc;

use rules::Value;

use std::sync::atomic::Ordering;

use super::support::{
    connector_info, counting_store, crashing_store, hr_feed, inbound, object_type, outbound,
    Harness, RuleBuilder, System,
};
use crate::history::{Counters, RunStatus};
use crate::model::{CsState, ImportKind, PendingExport};
use crate::store::{keys, MemKv};
use crate::StepKind::{DeltaImport, DeltaSync, Export, FullImport, FullSync};
use crate::{AttrOp, EngineError, ExportOp, ImportEvent, RefKind, StepKind, StepOptions};

// ------------------------------------------------------------ fixtures

/// A directory with DNs and system-assigned anchors; manager holds a DN.
pub(super) fn ad() -> Arc<System> {
    System::new(
        "ad",
        connector_info(object_type("user", None, &[("manager", RefKind::Dn)]), true),
    )
}

/// Graph-like: no DNs, the system assigns anchors on add, manager holds an anchor.
fn graph() -> Arc<System> {
    System::new(
        "graph",
        connector_info(
            object_type("user", None, &[("manager", RefKind::Anchor)]),
            false,
        ),
    )
}

pub(super) fn hr_in() -> RuleBuilder {
    inbound("hr-in", "hr")
        .precedence(10)
        .project()
        .join("employeeId", "employeeId")
        .flow("employeeId", "employeeId")
        .flow("displayName", "name")
        .flow("manager", "managerId")
}

pub(super) fn ad_out() -> RuleBuilder {
    outbound("ad-out", "ad", "user")
        .flow("dn", r#""CN=" + employeeId + ",OU=Users""#)
        .flow("displayName", "displayName")
        .flow("employeeID", "employeeId")
        .flow("manager", "manager")
}

fn graph_out() -> RuleBuilder {
    outbound("graph-out", "graph", "user")
        .flow("employeeId", "employeeId")
        .flow("manager", "manager")
}

fn worker(hr: &System, id: &str, name: &str, manager: Option<&str>) {
    let mut attrs = vec![("employeeId", id), ("name", name)];
    attrs.extend(manager.map(|m| ("managerId", m)));
    hr.put("worker", id, &attrs);
}

/// HR projecting people that are provisioned to AD.
fn hr_to_ad(deletion_threshold: usize) -> (Harness, Arc<System>, Arc<System>) {
    let (hr, ad) = (hr_feed(), ad());
    let h = Harness::new(&[&hr, &ad], vec![hr_in(), ad_out()], deletion_threshold);
    (h, hr, ad)
}

/// Import and sync a source, then export to a target (not yet confirmed).
const PROVISIONED: [(&str, StepKind); 3] = [("hr", FullImport), ("hr", FullSync), ("ad", Export)];

/// Import and sync a source, export to a target and confirm by importing it back.
const ROUND_TRIP: [(&str, StepKind); 5] = [
    ("hr", FullImport),
    ("hr", FullSync),
    ("ad", Export),
    ("ad", FullImport),
    ("ad", FullSync),
];

/// E1 Ann provisioned from HR and exported to AD (`guid-1`), not yet confirmed.
fn ann_exported_to_ad() -> (Harness, Arc<System>) {
    let (h, hr, ad) = hr_to_ad(500);
    worker(&hr, "E1", "Ann", None);
    h.steps(&PROVISIONED);
    (h, ad)
}

fn counters(f: impl FnOnce(&mut Counters)) -> Counters {
    let mut c = Counters::default();
    f(&mut c);
    c
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn pending_kind(h: &Harness, conn: &str, anchor: &str) -> Option<ImportKind> {
    h.cs(conn, anchor)
        .expect("object exists")
        .pending_import
        .map(|p| p.kind)
}

fn watermark(h: &Harness, conn: &str) -> Option<String> {
    let store = h.engine.store();
    store
        .begin()
        .watermark(store.lookup(conn).expect("conn"))
        .expect("store")
}

fn error_codes(h: &Harness, run: &crate::RunRecord) -> Vec<String> {
    h.errors(run).into_iter().map(|e| e.code).collect()
}

// ------------------------------------------------------------ import

#[test]
fn full_import_stages_adds_updates_and_deletes_for_unseen_objects() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![], 500);
    for id in ["E1", "E2", "E3"] {
        worker(&hr, id, id, None);
    }
    let first = h.run("hr", FullImport);
    assert_eq!(first.counters, counters(|c| c.import_adds = 3));
    h.run("hr", FullSync);

    worker(&hr, "E2", "renamed", None);
    hr.remove("E3");
    worker(&hr, "E4", "E4", None);
    let second = h.run("hr", FullImport);
    assert_eq!(
        second.counters,
        counters(|c| {
            c.import_adds = 1;
            c.import_updates = 1;
            c.import_deletes = 1;
        })
    );
    assert_eq!(pending_kind(&h, "hr", "E1"), None);
    assert_eq!(pending_kind(&h, "hr", "E2"), Some(ImportKind::Update));
    assert_eq!(pending_kind(&h, "hr", "E3"), Some(ImportKind::Delete));
    assert_eq!(pending_kind(&h, "hr", "E4"), Some(ImportKind::Add));
    h.assert_consistent();

    h.run("hr", FullSync);
    assert!(
        h.cs("hr", "E3").is_none(),
        "a synced delete removes the object"
    );
    assert_eq!(h.cs_all("hr").len(), 3);
    h.assert_consistent();
}

#[test]
fn reimporting_identical_data_stages_nothing() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![], 500);
    worker(&hr, "E1", "Ann", None);
    worker(&hr, "E2", "Bob", None);
    h.run("hr", FullImport);
    // Before sync, the staged adds stay as they are.
    assert_eq!(h.run("hr", FullImport).counters, Counters::default());
    h.run("hr", FullSync);
    assert_eq!(h.run("hr", FullImport).counters, Counters::default());
    assert!(h.cs_all("hr").iter().all(|o| o.pending_import.is_none()));
    h.assert_consistent();
}

#[test]
fn delta_import_applies_adds_updates_and_deletes_and_stores_the_watermark() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![], 500);
    worker(&hr, "E1", "Ann", None);
    worker(&hr, "E2", "Bob", None);
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    assert_eq!(watermark(&h, "hr").as_deref(), Some("w1"));

    hr.state().delta = vec![
        ImportEvent::Object(crate::ImportedObject {
            anchor: "E3".into(),
            object_type: "worker".into(),
            dn: None,
            attributes: vec![("employeeId".into(), s("E3")), ("name".into(), s("Cy"))],
        }),
        ImportEvent::Partial {
            anchor: "E1".into(),
            object_type: "worker".into(),
            dn: None,
            changes: vec![("name".into(), AttrOp::Replace(s("Anna")))],
        },
        ImportEvent::Delete {
            anchor: "E2".into(),
        },
    ];
    let run = h.run("hr", StepKind::DeltaImport);
    assert_eq!(
        run.counters,
        counters(|c| {
            c.import_adds = 1;
            c.import_updates = 1;
            c.import_deletes = 1;
        })
    );
    assert_eq!(hr.state().watermarks_given, vec![Some("w1".to_string())]);
    assert_eq!(watermark(&h, "hr").as_deref(), Some("w2"));

    h.run("hr", StepKind::DeltaSync);
    let e1 = h.cs("hr", "E1").expect("E1");
    let name = h.engine.store().lookup("name").expect("interned");
    let id = h.engine.store().lookup("employeeId").expect("interned");
    assert_eq!(e1.hologram.get(name), Some(&s("Anna")));
    assert_eq!(
        e1.hologram.get(id),
        Some(&s("E1")),
        "a partial change keeps the other attributes"
    );
    assert!(h.cs("hr", "E2").is_none());
    assert!(h.cs("hr", "E3").is_some());
    h.assert_consistent();
}

#[test]
fn a_bad_item_does_not_advance_the_watermark() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![], 500);
    worker(&hr, "E1", "Ann", None);
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);

    hr.state().bad_items = 1;
    hr.state().delta = vec![ImportEvent::Delete {
        anchor: "E1".into(),
    }];
    let run = h.run("hr", StepKind::DeltaImport);
    assert_eq!(run.status, RunStatus::CompletedWithErrors);
    assert_eq!(
        error_codes(&h, &run),
        ["bad-input", "warning"],
        "the watermark held back is a warning"
    );
    assert_eq!(
        run.counters.import_deletes, 1,
        "the good items are still staged"
    );
    assert_eq!(watermark(&h, "hr").as_deref(), Some("w1"));

    // The next delta import reads again from the old watermark.
    h.run("hr", StepKind::DeltaImport);
    assert_eq!(
        hr.state().watermarks_given,
        vec![Some("w1".to_string()), Some("w1".to_string())]
    );
    assert_eq!(watermark(&h, "hr").as_deref(), Some("w3"));
    h.assert_consistent();
}

#[test]
fn full_import_with_a_bad_item_stages_no_deletes() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![], 500);
    worker(&hr, "E1", "Ann", None);
    worker(&hr, "E2", "Bob", None);
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);

    hr.remove("E2");
    hr.state().bad_items = 1;
    let run = h.run("hr", FullImport);
    assert_eq!(run.counters.import_deletes, 0);
    assert_eq!(pending_kind(&h, "hr", "E2"), None);
    assert_eq!(
        error_codes(&h, &run),
        ["bad-input", "warning", "deletes-not-staged"]
    );
    assert_eq!(watermark(&h, "hr").as_deref(), Some("w1"));
    h.assert_consistent();
}

// ------------------------------------------------------------ join

/// HR projects people with an employeeId and a mail; AD objects only join.
fn join_setup(ad_users: &[(&str, Option<&str>, &str)]) -> Harness {
    let (hr, ad) = (hr_feed(), ad());
    for (id, mail) in [
        ("E1", "ann@x"),
        ("E2", "bob@x"),
        ("E3", "team@x"),
        ("E4", "team@x"),
    ] {
        hr.put("worker", id, &[("employeeId", id), ("mail", mail)]);
    }
    for (anchor, number, mail) in ad_users {
        let mut attrs = vec![("mail", *mail)];
        attrs.extend(number.map(|n| ("employeeNumber", n)));
        ad.put("user", anchor, &attrs);
    }
    let rules = vec![
        inbound("hr-in", "hr")
            .project()
            .flow("employeeId", "employeeId")
            .flow("mail", "mail"),
        inbound("ad-in", "ad")
            .join("employeeNumber", "employeeId")
            .join("mail", "mail")
            .flow("account", "mail"),
    ];
    let h = Harness::new(&[&hr, &ad], rules, 500);
    h.steps(&[("hr", FullImport), ("hr", FullSync), ("ad", FullImport)]);
    h
}

#[test]
fn join_takes_the_first_criterion_with_exactly_one_candidate() {
    let h = join_setup(&[
        // employeeNumber says E1, mail says E2: the first criterion wins.
        ("u1", Some("E1"), "bob@x"),
        // employeeNumber matches nobody: the mail joins E2.
        ("u2", Some("E9"), "bob@x"),
    ]);
    let run = h.run("ad", FullSync);
    assert_eq!(
        run.counters,
        counters(|c| {
            c.joins = 2;
            c.flow_updates = 2;
        })
    );
    assert_eq!(h.mv_of("ad", "u1").id, h.mv_of("hr", "E1").id);
    assert_eq!(h.mv_of("ad", "u2").id, h.mv_of("hr", "E2").id);
    assert_eq!(h.mv_attr("hr", "E2", "account"), Some(s("bob@x")));
    h.assert_consistent();
}

#[test]
fn two_candidates_are_an_ambiguous_join_and_nothing_is_joined() {
    let h = join_setup(&[("u3", None, "team@x")]);
    let mv_before = h.mv_all();
    for _ in 0..2 {
        let run = h.run("ad", FullSync);
        assert_eq!(
            run.counters,
            counters(|c| c.errors = 1),
            "only the error counts"
        );
        assert_eq!(error_codes(&h, &run), ["ambiguous-join"]);
        let u3 = h.cs("ad", "u3").expect("u3");
        assert!(u3.link.is_none());
        let error = u3.error.expect("an error on the object");
        assert_eq!(error.code, "ambiguous-join");
        let (e3, e4) = (h.mv_of("hr", "E3").id, h.mv_of("hr", "E4").id);
        assert!(
            error.message.contains(&format!("mv:{e3}, mv:{e4}")),
            "{}",
            error.message
        );
        assert_eq!(h.mv_all(), mv_before, "the metaverse is untouched");
    }
    h.assert_consistent();
}

// ------------------------------------------------------------ precedence

/// HR (precedence 10) and a CRM (precedence 20) both supply displayName;
/// people are provisioned to AD.
fn precedence_setup(hr_null_wins: bool) -> (Harness, Arc<System>) {
    let (hr, ad) = (hr_feed(), ad());
    let crm = System::new(
        "crm",
        connector_info(object_type("contact", Some("id"), &[]), false),
    );
    worker(&hr, "E1", "Ann from HR", None);
    crm.put(
        "contact",
        "C1",
        &[("id", "C1"), ("employeeId", "E1"), ("name", "Ann from CRM")],
    );
    let hr_rule = inbound("hr-in", "hr")
        .precedence(10)
        .project()
        .flow("employeeId", "employeeId");
    let hr_rule = if hr_null_wins {
        hr_rule.flow_null_wins("displayName", "name")
    } else {
        hr_rule.flow("displayName", "name")
    };
    let crm_rule = inbound("crm-in", "crm")
        .precedence(20)
        .join("employeeId", "employeeId")
        .flow("employeeId", "employeeId")
        .flow("displayName", "name");
    let h = Harness::new(&[&hr, &ad, &crm], vec![crm_rule, hr_rule, ad_out()], 500);
    h.steps(&[
        ("hr", FullImport),
        ("hr", FullSync),
        ("crm", FullImport),
        ("crm", FullSync),
    ]);
    h.steps(&[("ad", Export), ("ad", FullImport), ("ad", FullSync)]);
    assert_eq!(
        h.mv_attr("hr", "E1", "displayName"),
        Some(s("Ann from HR")),
        "the lower precedence wins"
    );
    assert_eq!(ad.attr("guid-1", "displayName"), Some(s("Ann from HR")));
    (h, hr)
}

#[test]
fn when_the_winning_source_goes_the_next_one_takes_over() {
    let (h, hr) = precedence_setup(false);
    hr.remove("E1");
    h.run("hr", FullImport);
    let run = h.run("hr", FullSync);
    assert_eq!(run.counters.disconnects, 1);
    assert_eq!(
        run.counters.mv_deletes, 0,
        "the CRM still sources the person"
    );
    assert_eq!(run.counters.exports_staged, 1);
    assert_eq!(
        h.mv_attr("crm", "C1", "displayName"),
        Some(s("Ann from CRM"))
    );
    let target = h.target_of("crm", "C1", "ad");
    assert_eq!(
        h.pending_update(&target),
        [(
            "displayName".to_string(),
            AttrOp::Replace(s("Ann from CRM"))
        )]
    );
    h.assert_consistent();
}

#[test]
fn an_authoritative_null_clears_the_value() {
    for (null_wins, expected) in [(true, None), (false, Some(s("Ann from CRM")))] {
        let (h, hr) = precedence_setup(null_wins);
        hr.set_attr("E1", "name", Value::Null);
        h.steps(&[("hr", FullImport), ("hr", FullSync)]);
        assert_eq!(
            h.mv_attr("hr", "E1", "displayName"),
            expected,
            "null wins: {null_wins}"
        );
        let target = h.target_of("hr", "E1", "ad");
        let change = match &expected {
            None => AttrOp::Clear,
            Some(v) => AttrOp::Replace(v.clone()),
        };
        assert_eq!(
            h.pending_update(&target),
            [("displayName".to_string(), change)]
        );
        h.assert_consistent();
    }
}

// ------------------------------------------------------------ provisioning, export, escrow

#[test]
fn projection_provisioning_and_export_are_confirmed_by_the_next_import() {
    let (h, hr, ad) = hr_to_ad(500);
    worker(&hr, "E1", "Ann", None);
    h.run("hr", FullImport);
    let sync = h.run("hr", FullSync);
    assert_eq!(
        sync.counters,
        counters(|c| {
            c.projections = 1;
            c.flow_updates = 1;
            c.provisioned = 1;
            c.exports_staged = 1;
        })
    );
    let target = h.target_of("hr", "E1", "ad");
    assert_eq!(target.state, CsState::Provisioned);
    assert_eq!(target.dn.as_deref(), Some("CN=E1,OU=Users"));
    assert!(matches!(
        target.pending_export,
        Some(PendingExport::Add { .. })
    ));

    let export = h.run("ad", Export);
    assert_eq!(export.counters, counters(|c| c.export_adds = 1));
    let target = h.target_of("hr", "E1", "ad");
    assert_eq!(target.state, CsState::Added);
    assert_eq!(
        target.anchor.as_deref(),
        Some("guid-1"),
        "export learns the system-assigned anchor"
    );
    assert!(target.pending_export.is_none());
    assert!(!target.escrow.is_empty());
    assert_eq!(ad.attr("guid-1", "displayName"), Some(s("Ann")));

    let import = h.run("ad", FullImport);
    assert_eq!(import.counters.confirmed, 1);
    assert_eq!(import.counters.errors, 0);
    let target = h.target_of("hr", "E1", "ad");
    assert!(target.escrow.is_empty());
    assert_eq!(target.state, CsState::Present);
    assert!(target.error.is_none());

    assert_eq!(h.run("ad", FullSync).counters.exports_staged, 0);
    assert!(h.engine.preview(None).expect("preview").is_empty());
    h.assert_consistent();
}

#[test]
fn a_confirming_import_settles_the_export_and_leaves_the_sync_nothing_to_do() {
    let (h, hr, _ad) = hr_to_ad(500);
    worker(&hr, "E1", "Ann", None);
    worker(&hr, "E2", "Bob", None);
    h.steps(&PROVISIONED);

    let import = h.run("ad", FullImport);
    assert_eq!(
        import.counters,
        counters(|c| c.confirmed = 2),
        "no inbound rule reads ad, so confirming stages nothing"
    );
    let target = h.target_of("hr", "E1", "ad");
    assert!(target.pending_import.is_none());
    assert!(target.escrow.is_empty());
    assert_eq!(target.state, CsState::Present);
    assert_eq!(h.hologram_attr(&target, "displayName"), Some(s("Ann")));

    let sync = h.run("ad", DeltaSync);
    assert_eq!(sync.counters, Counters::default());
    assert_eq!(sync.written.keys, 0, "the delta sync has nothing queued");
    assert_eq!(
        h.run("ad", FullSync).written.keys,
        1,
        "the first full sync of ad writes only the sync basis that names it"
    );
    assert_eq!(h.run("ad", FullSync).written.keys, 0);
    assert!(h.engine.preview(None).expect("preview").is_empty());
    h.assert_consistent();
}

#[test]
fn a_confirming_import_is_synced_when_an_inbound_rule_reads_the_target() {
    let (hr, ad) = (hr_feed(), ad());
    let ad_in = inbound("ad-in", "ad")
        .precedence(20)
        .join("employeeID", "employeeId")
        .flow("adName", "displayName");
    let h = Harness::new(&[&hr, &ad], vec![hr_in(), ad_out(), ad_in], 500);
    worker(&hr, "E1", "Ann", None);
    h.steps(&PROVISIONED);
    assert_eq!(h.mv_attr("hr", "E1", "adName"), None);

    let import = h.run("ad", FullImport);
    assert_eq!(import.counters.confirmed, 1);
    assert_eq!(import.counters.import_updates, 1);
    h.run("ad", DeltaSync);
    assert_eq!(h.mv_attr("hr", "E1", "adName"), Some(s("Ann")));
    h.assert_consistent();
}

#[test]
fn a_confirming_import_with_other_changes_is_staged() {
    let (h, ad) = ann_exported_to_ad();
    ad.set_attr("guid-1", "description", s("set by the directory"));

    let import = h.run("ad", FullImport);
    assert_eq!(import.counters.confirmed, 1);
    assert_eq!(import.counters.import_updates, 1);
    assert_eq!(pending_kind(&h, "ad", "guid-1"), Some(ImportKind::Update));
    h.run("ad", DeltaSync);
    let target = h.cs("ad", "guid-1").expect("target");
    assert_eq!(
        h.hologram_attr(&target, "description"),
        Some(s("set by the directory"))
    );
    h.assert_consistent();
}

#[test]
fn a_reimported_value_that_differs_from_the_escrow_is_reported() {
    let (h, ad) = ann_exported_to_ad();
    ad.set_attr("guid-1", "displayName", s("Ann (renamed by policy)"));

    let import = h.run("ad", FullImport);
    assert_eq!(import.counters.confirmed, 0);
    let errors = h.errors(&import);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, "exported-change-not-reimported");
    assert!(
        errors[0]
            .message
            .contains("displayName: exported 'Ann', imported 'Ann (renamed by policy)'"),
        "{}",
        errors[0].message
    );
    let target = h.target_of("hr", "E1", "ad");
    assert_eq!(
        target.error.map(|e| e.code).as_deref(),
        Some("exported-change-not-reimported")
    );
    assert!(target.escrow.is_empty());

    // The next sync puts the value back.
    assert_eq!(h.run("ad", FullSync).counters.exports_staged, 1);
    let target = h.target_of("hr", "E1", "ad");
    assert_eq!(
        h.pending_update(&target),
        [("displayName".to_string(), AttrOp::Replace(s("Ann")))]
    );
    h.assert_consistent();
}

#[test]
fn an_export_failure_keeps_the_pending_export_and_records_the_error() {
    let (h, hr, ad) = hr_to_ad(500);
    worker(&hr, "E1", "Ann", None);
    worker(&hr, "E2", "Bob", None);
    ad.state().failing.insert("CN=E2,OU=Users".into());
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);

    let export = h.run("ad", Export);
    assert_eq!(export.status, RunStatus::CompletedWithErrors);
    assert_eq!(
        export.counters,
        counters(|c| {
            c.export_adds = 1;
            c.errors = 1;
        })
    );
    assert_eq!(error_codes(&h, &export), ["export-error"]);
    let failed = h.target_of("hr", "E2", "ad");
    assert_eq!(failed.state, CsState::Provisioned);
    assert!(matches!(
        failed.pending_export,
        Some(PendingExport::Add { .. })
    ));
    assert_eq!(
        failed.error.map(|e| e.code).as_deref(),
        Some("export-error")
    );
    assert_eq!(h.target_of("hr", "E1", "ad").state, CsState::Added);
    h.assert_consistent();

    ad.state().failing.clear();
    assert_eq!(
        h.run("ad", Export).counters,
        counters(|c| c.export_adds = 1)
    );
    assert!(h.engine.preview(Some("ad")).expect("preview").is_empty());
    assert!(h.target_of("hr", "E2", "ad").error.is_none());
    h.assert_consistent();
}

#[test]
fn the_deletion_threshold_refuses_and_allow_deletes_permits() {
    let (h, hr, ad) = hr_to_ad(1);
    worker(&hr, "E1", "Ann", None);
    worker(&hr, "E2", "Bob", None);
    h.steps(&ROUND_TRIP);
    assert_eq!(ad.state().objects.len(), 2);

    hr.remove("E1");
    hr.remove("E2");
    let allow = StepOptions {
        allow_deletes: Some(2),
    };
    h.try_run("hr", FullImport, &allow).expect("import allowed");
    h.try_run("hr", FullSync, &allow).expect("sync allowed");
    let pending_deletes = || {
        h.cs_all("ad")
            .iter()
            .filter(|o| o.pending_export == Some(PendingExport::Delete))
            .count()
    };
    assert_eq!(pending_deletes(), 2);

    let err = h
        .try_run("ad", Export, &StepOptions::default())
        .expect_err("over the threshold");
    assert!(
        matches!(
            err,
            EngineError::DeletionThreshold {
                deletes: 2,
                threshold: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        h.engine
            .history()
            .expect("history")
            .last()
            .map(|r| &r.status),
        Some(RunStatus::StoppedByThreshold(_))
    ));
    assert_eq!(ad.state().objects.len(), 2, "nothing was exported");
    assert!(ad.state().exported.iter().all(|c| c.op != ExportOp::Delete));
    assert_eq!(pending_deletes(), 2, "the deletes stay pending");

    let allowed = StepOptions {
        allow_deletes: Some(2),
    };
    let run = h.try_run("ad", Export, &allowed).expect("allowed");
    assert_eq!(run.counters, counters(|c| c.export_deletes = 2));
    assert!(ad.state().objects.is_empty());
    assert_eq!(h.run("ad", FullImport).counters.confirmed, 2);
    assert!(h.cs_all("ad").is_empty());
    h.assert_consistent();
}

#[test]
fn a_changed_dn_is_exported_as_a_move_and_confirmed() {
    let (hr, ad) = (hr_feed(), ad());
    let rule = outbound("ad-out", "ad", "user")
        .flow("dn", r#""CN=" + displayName + ",OU=Users""#)
        .flow("displayName", "displayName");
    let h = Harness::new(&[&hr, &ad], vec![hr_in(), rule], 500);
    worker(&hr, "E1", "Ann", None);
    h.steps(&ROUND_TRIP);

    worker(&hr, "E1", "Anna", None);
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    let target = h.target_of("hr", "E1", "ad");
    match &target.pending_export {
        Some(PendingExport::Update { new_dn, .. }) => {
            assert_eq!(new_dn.as_deref(), Some("CN=Anna,OU=Users"))
        }
        other => panic!("expected a move, found {other:?}"),
    }
    let export = h.run("ad", Export);
    assert_eq!(export.counters, counters(|c| c.export_renames = 1));
    assert!(
        ad.state().exported.iter().all(|c| c.op != ExportOp::Delete),
        "a move, never delete + add"
    );
    assert_eq!(
        ad.state().objects["guid-1"].dn.as_deref(),
        Some("CN=Anna,OU=Users")
    );
    assert_eq!(h.run("ad", FullImport).counters.confirmed, 1);
    assert_eq!(h.run("ad", FullSync).counters.exports_staged, 0);
    let target = h.target_of("hr", "E1", "ad");
    assert_eq!(target.dn.as_deref(), Some("CN=Anna,OU=Users"));
    assert!(target.error.is_none());
    h.assert_consistent();
}

// ------------------------------------------------------------ references

/// A report imported (and synced) before its manager; `target` and its
/// outbound rule say how the target writes references.
fn report_before_manager(target: Arc<System>, rule: RuleBuilder) -> Harness {
    let hr = hr_feed();
    // E1 sorts first, so it is imported and synced first.
    worker(&hr, "E1", "Rae Report", Some("E2"));
    worker(&hr, "E2", "Max Manager", None);
    let h = Harness::new(&[&hr, &target], vec![hr_in(), rule], 500);
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    let manager = h.mv_of("hr", "E2").id;
    assert_eq!(h.mv_attr("hr", "E1", "manager"), Some(Value::Ref(manager)));
    let mut waiting = 0;
    h.engine
        .store()
        .for_each_prefix(&[keys::tag::WAITING], |_, _| {
            waiting += 1;
            Ok(())
        })
        .expect("store");
    assert_eq!(waiting, 0, "every waiting reference resolved");
    h
}

/// Waiting references in the store.
fn waiting_count(h: &Harness) -> usize {
    let mut waiting = 0;
    h.engine
        .store()
        .for_each_prefix(&[keys::tag::WAITING], |_, _| {
            waiting += 1;
            Ok(())
        })
        .expect("store");
    waiting
}

fn delta_worker(hr: &System, id: &str, name: &str, manager: Option<&str>) {
    let mut attributes = vec![("employeeId".into(), s(id)), ("name".into(), s(name))];
    attributes.extend(manager.map(|m| ("managerId".into(), s(m))));
    hr.state()
        .delta
        .push(ImportEvent::Object(crate::ImportedObject {
            anchor: id.into(),
            object_type: "worker".into(),
            dn: None,
            attributes,
        }));
}

#[test]
fn a_delta_sync_resolves_a_reference_when_its_target_arrives() {
    let (h, hr, ad) = hr_to_ad(500);
    worker(&hr, "E1", "Rae Report", Some("E2"));
    h.steps(&ROUND_TRIP);
    assert_eq!(h.mv_attr("hr", "E1", "manager"), None);
    assert_eq!(waiting_count(&h), 1);

    delta_worker(&hr, "E2", "Max Manager", None);
    h.steps(&[("hr", DeltaImport), ("hr", DeltaSync)]);
    let manager = h.mv_of("hr", "E2").id;
    assert_eq!(h.mv_attr("hr", "E1", "manager"), Some(Value::Ref(manager)));
    assert_eq!(waiting_count(&h), 0);
    h.run("ad", Export);
    let e1 = ad.anchor_where("employeeID", "E1").expect("E1 in ad");
    assert_eq!(ad.attr(&e1, "manager"), Some(s("CN=E2,OU=Users")));
    h.assert_consistent();
}

#[test]
fn a_delta_sync_exports_a_reference_once_its_target_is_provisioned() {
    let (hr, ad) = (hr_feed(), ad());
    let rules = vec![
        hr_in().flow("department", "department"),
        ad_out().scope(r#"department != "Board""#),
    ];
    let h = Harness::new(&[&hr, &ad], rules, 500);
    hr.put(
        "worker",
        "E1",
        &[
            ("employeeId", "E1"),
            ("name", "Rae"),
            ("managerId", "E2"),
            ("department", "Sales"),
        ],
    );
    hr.put(
        "worker",
        "E2",
        &[
            ("employeeId", "E2"),
            ("name", "Max"),
            ("department", "Board"),
        ],
    );
    h.steps(&ROUND_TRIP);
    let e1 = ad.anchor_where("employeeID", "E1").expect("E1 in ad");
    assert_eq!(ad.attr(&e1, "manager"), None, "E2 has no object in ad yet");
    assert_eq!(waiting_count(&h), 1);

    hr.state().delta.push(ImportEvent::Partial {
        anchor: "E2".into(),
        object_type: "worker".into(),
        dn: None,
        changes: vec![("department".into(), AttrOp::Replace(s("Sales")))],
    });
    h.steps(&[("hr", DeltaImport), ("hr", DeltaSync), ("ad", Export)]);
    assert_eq!(ad.attr(&e1, "manager"), Some(s("CN=E2,OU=Users")));
    assert_eq!(waiting_count(&h), 0);
    h.assert_consistent();
}

#[test]
fn a_waiting_dn_reference_resolves_whatever_case_the_arriving_object_writes() {
    let dir = System::new(
        "dir",
        connector_info(object_type("user", None, &[("manager", RefKind::Dn)]), true),
    );
    let rule = inbound("dir-in", "dir")
        .project()
        .flow("uid", "uid")
        .flow("manager", "manager");
    let h = Harness::new(&[&dir], vec![rule], 500);
    dir.put("user", "U1", &[("uid", "U1"), ("manager", "cn=u2,ou=test")]);
    h.steps(&[("dir", FullImport), ("dir", FullSync)]);
    assert_eq!(waiting_count(&h), 1);

    dir.state()
        .delta
        .push(ImportEvent::Object(crate::ImportedObject {
            anchor: "U2".into(),
            object_type: "user".into(),
            dn: Some("CN=U2,OU=Test".into()),
            attributes: vec![("uid".into(), s("U2"))],
        }));
    h.steps(&[("dir", DeltaImport), ("dir", DeltaSync)]);
    let u2 = h.mv_of("dir", "U2").id;
    assert_eq!(h.mv_attr("dir", "U1", "manager"), Some(Value::Ref(u2)));
    assert_eq!(waiting_count(&h), 0);
    h.assert_consistent();
}

#[test]
fn a_delta_sync_killed_before_its_waiting_pass_ends_is_finished_by_the_next_sync() {
    let (hr, ad) = (hr_feed(), ad());
    let boot = |kv: &Arc<MemKv>, batches: usize| {
        let (store, _) = crashing_store(kv, batches)?;
        Harness::on_store(store, &[&hr, &ad], vec![hr_in(), ad_out()], 500).ok()
    };
    let mut interrupted = 0;
    for budget in 0..12 {
        *hr.state() = Default::default();
        *ad.state() = Default::default();
        let kv = Arc::new(MemKv::default());
        let h = boot(&kv, usize::MAX).expect("engine");
        worker(&hr, "E1", "Rae", Some("E2"));
        h.steps(&ROUND_TRIP);
        delta_worker(&hr, "E2", "Max", None);
        h.run("hr", DeltaImport);
        drop(h);

        let killed = boot(&kv, budget).is_none_or(|h| !h.try_steps(&[("hr", DeltaSync)]));
        let h = boot(&kv, usize::MAX).expect("engine");
        if killed
            && h.mv_attr("hr", "E1", "manager").is_none()
            && h.cs("hr", "E2").is_some_and(|c| c.pending_import.is_none())
        {
            // E2 was synced, the pass that resolves E1's reference was not.
            interrupted += 1;
        }
        h.run("hr", DeltaSync);
        let manager = h.mv_of("hr", "E2").id;
        assert_eq!(
            h.mv_attr("hr", "E1", "manager"),
            Some(Value::Ref(manager)),
            "killed after {budget} batches"
        );
        assert_eq!(waiting_count(&h), 0, "killed after {budget} batches");
        h.assert_consistent();
    }
    assert!(
        interrupted > 0,
        "some kill fell between the object batch and the pass"
    );
}

#[test]
fn a_delta_sync_reads_only_the_waiting_references_its_changes_can_resolve() {
    const DANGLING: usize = 300;
    let (hr, ad) = (hr_feed(), ad());
    let (store, reads) = counting_store();
    let h = Harness::on_store(store, &[&hr, &ad], vec![hr_in(), ad_out()], 500).expect("engine");
    for i in 0..DANGLING {
        // Each reports to a manager no feed will ever bring.
        worker(
            &hr,
            &format!("E{i:03}"),
            "Worker",
            Some(&format!("GONE{i}")),
        );
    }
    h.steps(&ROUND_TRIP);
    assert_eq!(waiting_count(&h), DANGLING);

    hr.state().delta.push(ImportEvent::Partial {
        anchor: "E007".into(),
        object_type: "worker".into(),
        dn: None,
        changes: vec![("name".into(), AttrOp::Replace(s("Renamed")))],
    });
    h.run("hr", DeltaImport);
    reads.store(0, Ordering::SeqCst);
    let sync = h.run("hr", DeltaSync);
    let delta_reads = reads.load(Ordering::SeqCst);
    assert_eq!(sync.counters.flow_updates, 1);
    assert!(
        delta_reads < 60,
        "a one-object delta sync read {delta_reads} times with {DANGLING} references waiting"
    );

    // A full sync reads every waiting reference: the bound above is not loose.
    reads.store(0, Ordering::SeqCst);
    h.run("hr", FullSync);
    assert!(reads.load(Ordering::SeqCst) > DANGLING);
    assert_eq!(waiting_count(&h), DANGLING);
    h.assert_consistent();
}

/// The adds the target received, as (anchor or DN, manager value).
fn exported_adds(target: &System) -> Vec<(String, Option<Value>)> {
    target
        .state()
        .exported
        .iter()
        .filter_map(|c| match &c.op {
            ExportOp::Add { attributes } => Some((
                c.dn.clone().or(c.anchor.clone()).unwrap_or_default(),
                attributes
                    .iter()
                    .find(|(n, _)| n == "manager")
                    .map(|(_, v)| v.clone()),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_manager_synced_after_its_report_is_resolved_and_exported_first_by_dn() {
    let ad = ad();
    let h = report_before_manager(Arc::clone(&ad), ad_out());
    let run = h.run("ad", Export);
    assert_eq!(run.counters, counters(|c| c.export_adds = 2));
    assert_eq!(
        exported_adds(&ad),
        [
            ("CN=E2,OU=Users".to_string(), None),
            ("CN=E1,OU=Users".to_string(), Some(s("CN=E2,OU=Users")))
        ]
    );
    assert_eq!(h.run("ad", FullImport).counters.confirmed, 2);
    assert_eq!(h.run("ad", FullSync).counters.exports_staged, 0);
    h.assert_consistent();
}

/// The changes the target received, as (operation, DN, manager value).
fn exported_managers(target: &System) -> Vec<(&'static str, String, Option<Value>)> {
    target
        .state()
        .exported
        .iter()
        .map(|c| {
            let dn = c.dn.clone().unwrap_or_default();
            match &c.op {
                ExportOp::Add { attributes } => (
                    "add",
                    dn,
                    attributes
                        .iter()
                        .find(|(n, _)| n == "manager")
                        .map(|(_, v)| v.clone()),
                ),
                ExportOp::Update { changes, .. } => (
                    "update",
                    dn,
                    changes
                        .iter()
                        .find(|(n, _)| n == "manager")
                        .and_then(|(_, op)| match op {
                            AttrOp::Replace(v) => Some(v.clone()),
                            _ => None,
                        }),
                ),
                ExportOp::Delete => ("delete", dn, None),
            }
        })
        .collect()
}

#[test]
fn a_report_whose_managers_add_is_in_a_later_chunk_is_added_without_it_and_given_it_after() {
    let ad = ad();
    let mut h = report_before_manager(Arc::clone(&ad), ad_out());
    // One pending change a chunk: the report (synced first) is ordered
    // before its manager's add is seen.
    h.engine.export_chunk = 1;
    let run = h.run("ad", Export);
    assert_eq!(
        run.counters,
        counters(|c| {
            c.export_adds = 2;
            c.export_updates = 1;
        }),
        "{:?}",
        h.errors(&run)
    );
    assert_eq!(
        exported_managers(&ad),
        [
            ("add", "CN=E1,OU=Users".to_string(), None),
            ("add", "CN=E2,OU=Users".to_string(), None),
            (
                "update",
                "CN=E1,OU=Users".to_string(),
                Some(s("CN=E2,OU=Users"))
            ),
        ]
    );
    assert_eq!(h.run("ad", FullImport).counters.confirmed, 2);
    assert_eq!(h.run("ad", FullSync).counters.exports_staged, 0);
    h.assert_consistent();
}

/// Rae reports to Max; then Max is renamed to Maxine and reports to Nia,
/// new. Rae's reference to Max (text in this system) is staged with the
/// rename. Exported `chunk` changes at a time, with the employee ids given
/// (ids sort in provisioning order), the target must get Nia, then Max's
/// rename, then Rae's reference to the new DN.
fn a_waiting_rename_and_its_referrer(chunk: usize, rae: &str, max: &str) {
    let (hr, ad) = (hr_feed(), ad());
    let rule = outbound("ad-out", "ad", "user")
        .flow("dn", r#""CN=" + displayName + ",OU=Users""#)
        .flow("manager", "manager");
    let mut h = Harness::new(&[&hr, &ad], vec![hr_in(), rule], 500);
    worker(&hr, rae, "Rae", Some(max));
    worker(&hr, max, "Max", None);
    h.steps(&ROUND_TRIP);
    worker(&hr, max, "Maxine", Some("E9"));
    worker(&hr, "E9", "Nia", None);
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    h.engine.export_chunk = chunk;
    let before = ad.state().exported.len();
    let run = h.run("ad", Export);
    assert!(h.errors(&run).is_empty(), "{:?}", h.errors(&run));
    assert_eq!(
        exported_managers(&ad)[before..],
        [
            ("add", "CN=Nia,OU=Users".to_string(), None),
            (
                "update",
                "CN=Max,OU=Users".to_string(),
                Some(s("CN=Nia,OU=Users"))
            ),
            (
                "update",
                "CN=Rae,OU=Users".to_string(),
                Some(s("CN=Maxine,OU=Users"))
            ),
        ],
        "chunks of {chunk}, Rae {rae}, Max {max}"
    );
    assert_eq!(h.run("ad", FullImport).counters.confirmed, 3);
    assert_eq!(h.run("ad", FullSync).counters.exports_staged, 0);
    h.assert_consistent();
}

#[test]
fn a_rename_that_waits_for_a_later_chunk_takes_the_referrers_of_its_new_dn_with_it() {
    // Rae and Max in one chunk, Nia's add in the next.
    a_waiting_rename_and_its_referrer(2, "E1", "E2");
    // Rae, Max and Nia in three chunks: Rae waits for Max's rename, which
    // waits for Nia; among the waiting, Rae still follows Max.
    a_waiting_rename_and_its_referrer(1, "E1", "E2");
    // Max's chunk before Rae's: Rae waits for the rename held back before it.
    a_waiting_rename_and_its_referrer(1, "E2", "E1");
}

#[test]
fn a_split_add_that_fails_is_not_sent_again_in_the_references_pass() {
    let ad = ad();
    let mut h = report_before_manager(Arc::clone(&ad), ad_out());
    h.engine.export_chunk = 1;
    ad.state().failing.insert("CN=E1,OU=Users".into());
    let run = h.run("ad", Export);
    assert_eq!(h.errors(&run).len(), 1, "{:?}", h.errors(&run));
    assert_eq!(run.counters.export_adds, 1);
    assert_eq!(run.counters.export_updates, 0);
    // The add stays pending, whole, for the next run.
    ad.state().failing.clear();
    let again = h.run("ad", Export);
    assert!(h.errors(&again).is_empty(), "{:?}", h.errors(&again));
    assert_eq!(
        exported_managers(&ad).last(),
        Some(&(
            "add",
            "CN=E1,OU=Users".to_string(),
            Some(s("CN=E2,OU=Users"))
        ))
    );
}

#[test]
fn export_progress_counts_the_whole_queue_across_chunks_and_passes() {
    let ad = ad();
    let mut h = report_before_manager(Arc::clone(&ad), ad_out());
    h.engine.export_chunk = 1;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    h.engine.set_progress(Arc::new(move |_, done, total| {
        sink.lock().expect("progress").push((done, total));
    }));
    h.run("ad", Export);
    // Two adds in two chunks, then the split report's references, counted
    // as soon as the report is split.
    assert_eq!(
        *seen.lock().expect("progress"),
        [(1, Some(3)), (2, Some(3)), (3, Some(3))]
    );
}

#[test]
fn an_update_that_references_an_add_of_a_later_chunk_waits_for_it() {
    let (mut h, hr, ad) = hr_to_ad(500);
    worker(&hr, "E1", "Rae Report", None);
    h.steps(&ROUND_TRIP);
    // A new manager, provisioned after the report: a higher id.
    worker(&hr, "E3", "Nia New", None);
    worker(&hr, "E1", "Rae Report", Some("E3"));
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    h.engine.export_chunk = 1;
    let before = ad.state().exported.len();
    let run = h.run("ad", Export);
    assert_eq!(
        run.counters,
        counters(|c| {
            c.export_adds = 1;
            c.export_updates = 1;
        }),
        "{:?}",
        h.errors(&run)
    );
    assert_eq!(
        exported_managers(&ad)[before..],
        [
            ("add", "CN=E3,OU=Users".to_string(), None),
            (
                "update",
                "CN=E1,OU=Users".to_string(),
                Some(s("CN=E3,OU=Users"))
            ),
        ]
    );
    assert_eq!(h.run("ad", FullImport).counters.confirmed, 2);
    assert_eq!(h.run("ad", FullSync).counters.exports_staged, 0);
    h.assert_consistent();
}

#[test]
fn a_manager_synced_after_its_report_is_resolved_and_exported_first_by_anchor() {
    let dir = System::new(
        "dir",
        connector_info(
            object_type("account", Some("uid"), &[("manager", RefKind::Anchor)]),
            false,
        ),
    );
    let rule = outbound("dir-out", "dir", "account")
        .flow("uid", "employeeId")
        .flow("manager", "manager");
    let h = report_before_manager(Arc::clone(&dir), rule);
    h.run("dir", Export);
    assert_eq!(
        exported_adds(&dir),
        [("E2".to_string(), None), ("E1".to_string(), Some(s("E2")))]
    );
    assert_eq!(h.run("dir", FullImport).counters.confirmed, 2);
    assert_eq!(h.run("dir", FullSync).counters.exports_staged, 0);
    h.assert_consistent();
}

#[test]
fn a_manager_added_in_the_same_batch_gets_its_system_assigned_anchor_before_the_report_refers_to_it(
) {
    let graph = graph();
    let h = report_before_manager(Arc::clone(&graph), graph_out());
    let run = h.run("graph", Export);
    assert_eq!(
        run.counters,
        counters(|c| c.export_adds = 2),
        "{:?}",
        h.errors(&run)
    );
    let manager = graph
        .anchor_where("employeeId", "E2")
        .expect("manager added");
    let report = graph
        .anchor_where("employeeId", "E1")
        .expect("report added");
    assert_eq!(graph.attr(&report, "manager"), Some(s(&manager)));
    assert_eq!(h.run("graph", FullImport).counters.confirmed, 2);
    assert_eq!(h.run("graph", FullSync).counters.exports_staged, 0);
    h.assert_consistent();
}

#[test]
fn a_reference_cycle_is_added_first_and_its_references_set_in_a_second_pass() {
    let hr = hr_feed();
    worker(&hr, "E1", "Ann", Some("E2"));
    worker(&hr, "E2", "Bob", Some("E1"));
    let graph = graph();
    let h = Harness::new(&[&hr, &graph], vec![hr_in(), graph_out()], 500);
    h.steps(&[("hr", FullImport), ("hr", FullSync)]);
    let run = h.run("graph", Export);
    assert_eq!(
        run.counters,
        counters(|c| {
            c.export_adds = 2;
            c.export_updates = 2;
        }),
        "{:?}",
        h.errors(&run)
    );
    let ops: Vec<&str> = graph
        .state()
        .exported
        .iter()
        .map(|c| match c.op {
            ExportOp::Add { .. } => "add",
            _ => "update",
        })
        .collect();
    assert_eq!(ops, ["add", "add", "update", "update"]);
    let ann = graph.anchor_where("employeeId", "E1").expect("E1 added");
    let bob = graph.anchor_where("employeeId", "E2").expect("E2 added");
    assert_eq!(graph.attr(&ann, "manager"), Some(s(&bob)));
    assert_eq!(graph.attr(&bob, "manager"), Some(s(&ann)));
    assert_eq!(h.run("graph", FullImport).counters.confirmed, 2);
    assert_eq!(h.run("graph", FullSync).counters.exports_staged, 0);
    h.assert_consistent();
}

// ------------------------------------------------------------ idempotence

#[test]
fn a_second_full_sync_stages_nothing() {
    let (h, hr, _ad) = hr_to_ad(500);
    worker(&hr, "E1", "Rae Report", Some("E2"));
    worker(&hr, "E2", "Max Manager", None);
    h.run("hr", FullImport);
    assert!(h.run("hr", FullSync).counters.exports_staged > 0);
    let again = h.run("hr", FullSync);
    assert_eq!(
        again.counters,
        Counters::default(),
        "nothing changes before export"
    );
    h.steps(&ROUND_TRIP[2..]);
    assert_eq!(
        h.run("hr", FullSync).counters,
        Counters::default(),
        "nothing changes after export"
    );
    assert_eq!(h.run("ad", FullSync).counters, Counters::default());
    assert!(h.engine.preview(None).expect("preview").is_empty());
    h.assert_consistent();
}

/// A manager renamed in AD-like systems, with a report, by a DN flow.
fn manager_renamed(rewrites: bool) -> (Harness, Arc<System>, Arc<System>) {
    let hr = hr_feed();
    let mut info = connector_info(object_type("user", None, &[("manager", RefKind::Dn)]), true);
    info.rewrites_dn_references = rewrites;
    let ad = System::new("ad", info);
    worker(&hr, "E1", "Rae Report", Some("E2"));
    worker(&hr, "E2", "Max Manager", None);
    let rule = outbound("ad-out", "ad", "user")
        .flow("dn", r#""CN=" + displayName + ",OU=Users""#)
        .flow("employeeID", "employeeId")
        .flow("manager", "manager");
    let h = Harness::new(&[&hr, &ad], vec![hr_in(), rule], 500);
    h.steps(&[
        ("hr", FullImport),
        ("hr", FullSync),
        ("ad", Export),
        ("ad", FullImport),
        ("ad", DeltaSync),
    ]);
    worker(&hr, "E2", "Max Major", None);
    h.steps(&[("hr", FullImport), ("hr", DeltaSync)]);
    (h, hr, ad)
}

#[test]
fn a_rename_in_a_system_that_keeps_dn_references_as_text_updates_the_referrers_in_the_same_run() {
    let (h, _hr, ad) = manager_renamed(false);
    let run = h.run("ad", Export);
    assert_eq!(
        (run.counters.export_renames, run.counters.export_updates),
        (1, 1),
        "the rename, then the report"
    );
    let report = ad.anchor_where("employeeID", "E1").expect("report");
    assert_eq!(
        ad.attr(&report, "manager"),
        Some(s("CN=Max Major,OU=Users"))
    );
    assert_eq!(h.run("ad", FullImport).counters.confirmed, 2);
    assert_eq!(h.run("ad", DeltaSync).counters.exports_staged, 0);
    h.assert_consistent();
}

#[test]
fn a_rename_in_a_system_that_rewrites_dn_references_exports_no_referrer_update_and_imports_clean() {
    let (h, _hr, ad) = manager_renamed(true);
    let run = h.run("ad", Export);
    assert_eq!(
        (run.counters.export_renames, run.counters.export_updates),
        (1, 0),
        "the rename only: the system rewrites the report's manager"
    );
    let report = ad.anchor_where("employeeID", "E1").expect("report");
    assert_eq!(
        ad.attr(&report, "manager"),
        Some(s("CN=Max Major,OU=Users"))
    );
    let import = h.run("ad", FullImport);
    assert!(h.errors(&import).is_empty(), "{:?}", h.errors(&import));
    assert_eq!(import.counters.confirmed, 1);
    assert_eq!(
        import.counters.import_updates, 0,
        "the report is as expected"
    );
    assert_eq!(h.run("ad", DeltaSync).counters.exports_staged, 0);
    h.assert_consistent();
}
