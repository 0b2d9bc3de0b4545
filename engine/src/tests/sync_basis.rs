//! A full sync of a pure target reads, and does not evaluate, the objects
//! that a full sync under the same rules has evaluated and that nothing has
//! changed since (`sync::basis`).
//!
//! The probe: a target object's hologram is changed behind the engine's
//! back. An evaluation would stage an export to put it back; a skipped
//! object stages nothing. So each test that expects an evaluation sees the
//! export, and the one that expects a skip does not.

use std::sync::Arc;

use rules::Value;

use super::pipeline::{ad, ad_out, hr_in};
use super::support::{hr_feed, inbound, Harness, RuleBuilder, System};
use crate::model::CsObject;
use crate::store::keys;
use crate::StepKind::{DeltaSync, Export, FullImport, FullSync};

/// Two workers provisioned to AD, exported and confirmed: nothing to do.
fn settled(rules: Vec<RuleBuilder>) -> (Harness, Arc<System>) {
    let (hr, ad) = (hr_feed(), ad());
    let h = Harness::new(&[&hr, &ad], rules, 500);
    for (id, name) in [("E1", "Ann"), ("E2", "Bob")] {
        hr.put("worker", id, &[("employeeId", id), ("name", name)]);
    }
    h.steps(&[
        ("hr", FullImport),
        ("hr", FullSync),
        ("ad", Export),
        ("ad", FullImport),
    ]);
    (h, hr)
}

/// E1's AD object.
fn ann_in_ad(h: &Harness) -> CsObject {
    h.target_of("hr", "E1", "ad")
}

/// Changes E1's AD object's displayName in the store, as no sync would.
fn drift(h: &Harness) {
    let store = h.engine.store();
    let before = ann_in_ad(h);
    let mut after = before.clone();
    after
        .hologram
        .set(store.intern("displayName"), Value::from("Drifted"));
    let mut txn = store.begin();
    txn.save_cs(Some(&before), Some(&after)).expect("save");
    store.commit(txn).expect("commit");
}

/// Whether the full sync of `conn` put E1's displayName back.
fn full_sync_repairs(h: &Harness, conn: &str) -> bool {
    drift(h);
    h.run(conn, FullSync);
    ann_in_ad(h).pending_export.is_some()
}

#[test]
fn a_full_sync_of_a_pure_target_reads_what_the_sources_full_sync_evaluated() {
    let (h, _) = settled(vec![hr_in(), ad_out()]);
    assert!(
        !full_sync_repairs(&h, "ad"),
        "E1 was evaluated by hr's full sync under the same rules"
    );
    assert!(ann_in_ad(&h).error.is_none());
    // Its own full sync completed: a second one reads too.
    assert!(!full_sync_repairs(&h, "ad"));
}

#[test]
fn a_full_sync_of_a_source_evaluates_every_object() {
    let (h, _) = settled(vec![hr_in(), ad_out()]);
    assert!(full_sync_repairs(&h, "hr"));
}

#[test]
fn a_sync_under_another_configuration_makes_the_next_full_sync_evaluate() {
    let (h, _) = settled(vec![hr_in(), ad_out()]);
    // As the last sync step would leave it under other rules.
    let store = h.engine.store();
    let mut txn = store.begin();
    txn.put_raw(
        keys::SYNC_BASIS.to_vec(),
        crate::store::codec::encode(&crate::sync::Basis {
            fingerprint: [7; 32],
            evaluated: [store.lookup("hr").expect("hr")].into(),
        })
        .expect("encode"),
    );
    store.commit(txn).expect("commit");
    assert!(full_sync_repairs(&h, "ad"));
}

#[test]
fn rules_that_read_the_clock_make_every_object_evaluated() {
    let (h, _) = settled(vec![
        hr_in(),
        ad_out().scope(r#"FormatDateTime(Now(), "%Y") > "2000""#),
    ]);
    assert!(full_sync_repairs(&h, "ad"));
}

#[test]
fn a_target_with_an_inbound_rule_is_evaluated() {
    let ad_in = inbound("ad-in", "ad")
        .precedence(20)
        .join("employeeID", "employeeId")
        .flow("adName", "displayName");
    let (h, _) = settled(vec![hr_in(), ad_out(), ad_in]);
    // The confirming import staged what the inbound rule reads: synced.
    h.run("ad", DeltaSync);
    assert!(ann_in_ad(&h).pending_import.is_none());
    assert!(full_sync_repairs(&h, "ad"));
}

#[test]
fn an_object_whose_source_failed_is_evaluated() {
    let (h, _) = settled(vec![hr_in(), ad_out()]);
    let store = h.engine.store();
    let before = h.cs("hr", "E1").expect("E1");
    let mut after = before.clone();
    after.error = Some(crate::model::ObjectError {
        system_code: None,
        run: 1,
        code: "flow-error".into(),
        message: "probe".into(),
    });
    let mut txn = store.begin();
    txn.save_cs(Some(&before), Some(&after)).expect("save");
    store.commit(txn).expect("commit");
    assert!(full_sync_repairs(&h, "ad"));
}

#[test]
fn the_fingerprint_follows_the_rules() {
    let config = |rules: Vec<RuleBuilder>| crate::setup::EngineConfig {
        rules: rules.into_iter().map(RuleBuilder::build).collect(),
        ..Default::default()
    };
    let store = crate::store::Store::memory();
    let print = |c| crate::setup::Model::new(&c, &store).fingerprint;
    assert_eq!(
        print(config(vec![hr_in(), ad_out()])),
        print(config(vec![hr_in(), ad_out()]))
    );
    assert_ne!(
        print(config(vec![hr_in(), ad_out()])),
        print(config(vec![hr_in(), ad_out().flow("title", "title")]))
    );
}

#[test]
fn a_delta_sync_that_removes_an_object_makes_the_next_full_sync_of_a_target_evaluate() {
    a_removal_by(DeltaSync, false);
}

#[test]
fn a_full_sync_that_removes_an_object_does_not_vouch_for_its_connector() {
    // With no basis before it, the full sync of hr would otherwise make
    // one that names hr.
    a_removal_by(FullSync, true);
}

/// Ann's manager Bob leaves HR, synced by `step` (after the basis was
/// forgotten, with `forgotten`); then AD's full sync must clear Ann's manager.
fn a_removal_by(step: crate::StepKind, forgotten: bool) {
    let (hr, ad) = (hr_feed(), ad());
    let h = Harness::new(&[&hr, &ad], vec![hr_in(), ad_out()], 500);
    hr.put(
        "worker",
        "E1",
        &[("employeeId", "E1"), ("name", "Ann"), ("managerId", "E2")],
    );
    hr.put("worker", "E2", &[("employeeId", "E2"), ("name", "Bob")]);
    h.steps(&[
        ("hr", FullImport),
        ("hr", FullSync),
        ("ad", Export),
        ("ad", FullImport),
        ("ad", FullSync),
    ]);
    let ann = ann_in_ad(&h);
    assert!(ann.pending_export.is_none());
    assert!(format!("{:?}", ann.hologram).contains("CN=E2,OU=Users"));

    // Bob leaves: his AD object is deprovisioned, and nothing revisits Ann,
    // whose AD object still names him.
    hr.remove("E2");
    if forgotten {
        let store = h.engine.store();
        let mut txn = store.begin();
        crate::sync::Basis::forget(&mut txn);
        store.commit(txn).expect("commit");
    }
    h.steps(&[("hr", FullImport), ("hr", step)]);
    assert!(ann_in_ad(&h).pending_export.is_none());
    h.run("ad", FullSync);
    let manager = h.engine.store().intern("manager");
    let staged = ann_in_ad(&h).pending_export;
    assert!(
        matches!(&staged, Some(crate::model::PendingExport::Update { changes, .. })
            if changes.iter().any(|(a, op)| *a == manager && *op == crate::AttrOp::Clear)),
        "Ann's manager is cleared by the full sync of ad: {staged:?}"
    );
}
