//! `mvsync check` finds each kind of broken invariant, reading the store
//! one record at a time.

use std::collections::BTreeSet;

use rules::Value;

use crate::check::check;
use crate::model::{CsKey, CsObject, CsState, Link, LinkKind, MvAttr, MvObject, PendingExport};
use crate::store::{keys, Store};

/// A store with one linked pair: cs:1 of `ad` (anchor, DN, a pending
/// delete, queued by an export span as a new object is) and mv:1 (an
/// indexed `mail`).
fn consistent() -> (Store, CsKey) {
    let store = Store::memory();
    let ad = store.intern("ad");
    let mail = store.intern("mail");
    let rule = store.intern("r");
    store
        .ensure_join_index(&BTreeSet::from([mail]))
        .expect("index");
    let key = CsKey { conn: ad, id: 1 };
    let mut cs = CsObject::new(key, store.intern("user"), CsState::Present);
    cs.anchor = Some("a1".into());
    cs.dn = Some("CN=A,DC=corp".into());
    cs.link = Some(Link {
        mv: 1,
        kind: LinkKind::Projected,
        rule,
    });
    cs.pending_export = Some(PendingExport::Delete);
    let mv = MvObject {
        id: 1,
        object_type: store.intern("person"),
        attrs: vec![MvAttr {
            name: mail,
            value: Value::from("x@corp"),
            connector: ad,
            rule,
        }],
        links: vec![key],
    };
    let mut txn = store.begin();
    txn.save_cs(None, Some(&cs)).expect("save cs");
    txn.save_mv(None, Some(&mv)).expect("save mv");
    store.commit(txn).expect("commit");
    (store, key)
}

/// `check` names each of `expected` (a part of its message).
fn assert_named(store: &Store, expected: &[&str]) {
    let problems = check(store).expect("check").join("\n");
    for expected in expected {
        assert!(
            problems.contains(expected),
            "{expected}\nnot in:\n{problems}"
        );
    }
}

#[test]
fn a_consistent_store_has_no_problem() {
    let (store, _) = consistent();
    assert_eq!(check(&store).expect("check"), Vec::<String>::new());
}

#[test]
fn every_kind_of_broken_index_queue_and_link_is_named() {
    let (store, key) = consistent();
    let mail = store.intern("mail");
    let mut txn = store.begin();
    // The anchor's index entry lost; a DN entry for an object that is not there.
    txn.delete_raw(keys::anchor(key.conn, "a1"));
    txn.put_raw(
        keys::dn(key.conn, "CN=Ghost,DC=corp"),
        7u64.to_be_bytes().to_vec(),
    );
    // The export queue lost the object; the sync queue names one with nothing pending.
    txn.delete_raw(keys::queue_span(keys::tag::EXPORT_SPAN, key, key.id).0);
    txn.put_raw(keys::cs_keyed(keys::tag::SYNC_QUEUE, key), Vec::new());
    // The join index: the real value lost, a value nobody holds added
    // (as many entries as expected: the count alone cannot tell).
    txn.delete_raw(keys::join(mail, b"x@corp", 1));
    txn.put_raw(keys::join(mail, b"y@corp", 1), Vec::new());
    // A unique-value entry for an object that does not hold it.
    txn.put_raw(keys::unique(key.conn, mail, "z", 1), Vec::new());
    // A metaverse object that links to a missing connector-space object.
    let ghost = MvObject {
        id: 2,
        object_type: store.intern("person"),
        attrs: Vec::new(),
        links: vec![CsKey {
            conn: key.conn,
            id: 9,
        }],
    };
    txn.save_mv(None, Some(&ghost)).expect("save mv");
    store.commit(txn).expect("commit");

    assert_named(
        &store,
        &[
            "anchor \"a1\" has no index entry",
            "DN index entry \"cn=ghost,dc=corp\" points at no object holding it",
            "cs:1 has a pending change but is not in the export queue",
            "sync queue holds cs:1, which has nothing pending",
            "is missing from the join index",
            "matches no metaverse value",
            "unique-value index entry",
            "mv:2 links to missing cs:9",
        ],
    );
}

#[test]
fn a_pending_import_is_queued_by_a_span_or_its_own_key_and_a_bad_span_is_named() {
    let (store, key) = consistent();
    let mut cs = store.begin().cs(key).expect("read").expect("object");
    cs.pending_import = Some(crate::model::PendingImport {
        kind: crate::model::ImportKind::Update,
        attrs: Default::default(),
        dn: None,
    });
    let mut txn = store.begin();
    let before = txn.cs(key).expect("read");
    txn.save_cs(before.as_ref(), Some(&cs)).expect("save");
    store.commit(txn).expect("commit");
    assert_eq!(check(&store).expect("check"), Vec::<String>::new());

    // Its own key replaced by a span that covers it: still queued.
    let mut txn = store.begin();
    txn.delete_raw(keys::cs_keyed(keys::tag::SYNC_QUEUE, key));
    let (k, v) = keys::queue_span(
        keys::tag::SYNC_SPAN,
        CsKey {
            conn: key.conn,
            id: 0,
        },
        5,
    );
    txn.put_raw(k, v);
    store.commit(txn).expect("commit");
    assert_eq!(check(&store).expect("check"), Vec::<String>::new());

    // A span whose value is not a whole id covers nothing, and is named.
    let mut txn = store.begin();
    let (k, _) = keys::queue_span(
        keys::tag::SYNC_SPAN,
        CsKey {
            conn: key.conn,
            id: 0,
        },
        5,
    );
    txn.put_raw(k, 0u64.to_be_bytes()[..4].to_vec());
    store.commit(txn).expect("commit");
    assert_named(
        &store,
        &[
            "bad sync-queue span",
            "cs:1 has a pending change but is not in the sync queue",
        ],
    );
}

#[test]
fn a_pending_export_is_queued_by_a_span_or_its_own_key_and_a_bad_span_is_named() {
    let (store, key) = consistent();
    let span = |first: u64, last: u64| {
        keys::queue_span(
            keys::tag::EXPORT_SPAN,
            CsKey {
                conn: key.conn,
                id: first,
            },
            last,
        )
    };
    assert!(
        store.get_raw(&span(1, 1).0).expect("read").is_some(),
        "a new object's pending export is queued by a span"
    );

    // The span replaced by the object's own key: still queued.
    let mut txn = store.begin();
    txn.delete_raw(span(1, 1).0);
    txn.queue_export(key);
    store.commit(txn).expect("commit");
    assert_eq!(check(&store).expect("check"), Vec::<String>::new());

    // The key replaced by a wider span: still queued.
    let mut txn = store.begin();
    txn.delete_raw(keys::cs_keyed(keys::tag::EXPORT_QUEUE, key));
    let (k, v) = span(0, 5);
    txn.put_raw(k, v);
    store.commit(txn).expect("commit");
    assert_eq!(check(&store).expect("check"), Vec::<String>::new());

    // A span whose value is not a whole id covers nothing, and is named.
    let mut txn = store.begin();
    txn.put_raw(span(0, 5).0, 0u64.to_be_bytes()[..4].to_vec());
    store.commit(txn).expect("commit");
    assert_named(
        &store,
        &[
            "bad export-queue span",
            "cs:1 has a pending change but is not in the export queue",
        ],
    );
}
