//! The sync queue: an import's new objects are queued in spans (one key
//! per import batch), changed objects on keys of their own; delta sync
//! drains both, full sync drops the spans, and an object that fails stays
//! queued.

use super::support::{hr_feed, inbound, Harness, System};
use crate::model::CsKey;
use crate::store::keys;
use crate::StepKind::{DeltaSync, FullImport, FullSync};

fn hr_in() -> super::support::RuleBuilder {
    inbound("hr-in", "hr")
        .project()
        .join("employeeId", "employeeId")
        .flow("employeeId", "employeeId")
        .flow(
            "displayName",
            r#"IIF(name == "Bad", Error("bad name"), name)"#,
        )
}

/// The sync queue's entries of `hr`: (objects on their own keys, spans).
fn queue(h: &Harness) -> (Vec<u64>, Vec<(u64, u64)>) {
    let store = h.engine.store();
    let conn = store.lookup("hr").expect("hr");
    let mut own = Vec::new();
    store
        .for_each_prefix(&keys::conn_prefix(keys::tag::SYNC_QUEUE, conn), |k, _| {
            own.push(keys::decode_cs_keyed(k).expect("queue key").id);
            Ok(())
        })
        .expect("scan");
    let mut spans = Vec::new();
    store
        .for_each_prefix(&keys::conn_prefix(keys::tag::SYNC_SPAN, conn), |k, v| {
            let (first, last) = keys::decode_queue_span(k, v).expect("span");
            spans.push((first.id, last));
            Ok(())
        })
        .expect("scan");
    (own, spans)
}

fn workers(hr: &System, n: usize, bad: &[usize]) {
    for i in 0..n {
        let id = format!("E{i:05}");
        let name = if bad.contains(&i) { "Bad" } else { "Ann" };
        hr.put("worker", &id, &[("employeeId", &id), ("name", name)]);
    }
}

#[test]
fn an_imports_new_objects_are_queued_in_one_span_per_batch_and_a_delta_sync_drains_them() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![hr_in()], usize::MAX);
    workers(&hr, 2500, &[]);
    h.run("hr", FullImport);
    let (own, spans) = queue(&h);
    assert!(
        own.is_empty(),
        "new objects have no keys of their own: {own:?}"
    );
    // The import commits 1,000 objects a batch: three spans, in sequence.
    assert_eq!(spans.len(), 3, "{spans:?}");
    assert_eq!(spans.iter().map(|(f, l)| l - f + 1).sum::<u64>(), 2500);
    h.assert_consistent();

    let run = h.run("hr", DeltaSync);
    assert_eq!(run.counters.projections, 2500);
    assert_eq!(
        queue(&h),
        (vec![], vec![]),
        "the delta sync drained the spans"
    );
    assert_eq!(h.mv_all().len(), 2500);
    h.assert_consistent();
}

#[test]
fn an_object_that_fails_in_a_span_stays_queued_on_its_own_key_and_is_retried() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![hr_in()], usize::MAX);
    workers(&hr, 1200, &[7, 1100]);
    h.run("hr", FullImport);
    let run = h.run("hr", DeltaSync);
    assert_eq!(run.counters.projections, 1198);
    let failed: Vec<u64> = ["E00007", "E01100"]
        .iter()
        .map(|a| h.cs("hr", a).expect("object").key.id)
        .collect();
    assert_eq!(queue(&h), (failed.clone(), vec![]));
    h.assert_consistent();

    // Fixed at the source: the next import and delta sync bring them in.
    for a in ["E00007", "E01100"] {
        hr.put("worker", a, &[("employeeId", a), ("name", "Ann")]);
    }
    h.run("hr", FullImport);
    h.run("hr", DeltaSync);
    assert_eq!(queue(&h), (vec![], vec![]));
    assert_eq!(h.mv_all().len(), 1200);
    h.assert_consistent();
}

#[test]
fn a_full_sync_drops_the_spans_and_keeps_what_failed_queued() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![hr_in()], usize::MAX);
    workers(&hr, 1500, &[3]);
    h.run("hr", FullImport);
    assert_eq!(queue(&h).1.len(), 2);
    h.run("hr", FullSync);
    let bad = h.cs("hr", "E00003").expect("object").key.id;
    assert_eq!(queue(&h), (vec![bad], vec![]));
    assert_eq!(h.mv_all().len(), 1499);
    h.assert_consistent();
    // A delta sync after it visits the failed object only.
    let run = h.run("hr", DeltaSync);
    assert_eq!(h.errors(&run).len(), 1);
    assert_eq!(run.counters.projections, 0);
}

#[test]
fn a_span_left_over_objects_that_were_synced_costs_a_visit_and_changes_nothing() {
    let hr = hr_feed();
    let h = Harness::new(&[&hr], vec![hr_in()], usize::MAX);
    workers(&hr, 10, &[]);
    h.run("hr", FullImport);
    let (_, spans) = queue(&h);
    h.run("hr", FullSync);
    // As a full sync killed before it dropped the span would leave it.
    let store = h.engine.store();
    let conn = store.lookup("hr").expect("hr");
    let mut txn = store.begin();
    for (first, last) in spans {
        let (k, v) = keys::queue_span(keys::tag::SYNC_SPAN, CsKey { conn, id: first }, last);
        txn.put_raw(k, v);
    }
    store.commit(txn).expect("commit");
    h.assert_consistent();
    let run = h.run("hr", DeltaSync);
    assert_eq!(run.counters, Default::default());
    assert_eq!(queue(&h), (vec![], vec![]));
    h.assert_consistent();
}

#[test]
fn a_delta_syncs_reader_ahead_reads_the_next_batchs_objects_their_metaverse_objects_and_their_other_objects(
) {
    use std::time::{Duration, Instant};

    use crate::model::{CsObject, CsState, Link, LinkKind, MvObject};

    let (store, gets) = super::support::recording_store();
    let (hr, ad, user) = (store.intern("hr"), store.intern("ad"), store.intern("user"));
    let (source, target) = (CsKey { conn: hr, id: 1 }, CsKey { conn: ad, id: 2 });
    let mut txn = store.begin();
    for key in [source, target] {
        let mut cs = CsObject::new(key, user, CsState::Present);
        cs.link = Some(Link {
            mv: 7,
            kind: LinkKind::Projected,
            rule: user,
        });
        txn.save_cs(None, Some(&cs)).expect("save");
    }
    let mv = MvObject {
        id: 7,
        object_type: user,
        attrs: Vec::new(),
        links: vec![source, target],
    };
    txn.save_mv(None, Some(&mv)).expect("save");
    txn.put_raw(keys::cs_keyed(keys::tag::SYNC_QUEUE, source), Vec::new());
    store.commit(txn).expect("commit");
    gets.lock().expect("lock").clear();

    let wanted = [
        keys::cs_keyed(keys::tag::CS, source),
        keys::mv(7),
        keys::cs_keyed(keys::tag::CS, target),
    ];
    let all_read = || {
        let gets = gets.lock().expect("lock");
        wanted.iter().all(|k| gets.contains(k))
    };
    let queue = keys::conn_prefix(keys::tag::SYNC_QUEUE, hr);
    crate::sync::with_reader_ahead(&store, &queue, |ahead| {
        // The batch before ends before the queue's first entry.
        ahead(queue.clone());
        let started = Instant::now();
        while !all_read() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert!(all_read(), "read: {:?}", gets.lock().expect("lock"));
}
