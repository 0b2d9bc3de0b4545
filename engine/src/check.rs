//! `mvsync check`: verifies every store invariant and lists each violation.
//!
//! Reads the whole store, one record at a time: each object is checked
//! against what it points to (its link, its index and queue entries), and
//! each index and queue entry against the object it names, by point
//! look-ups. Memory holds one object, the queue spans (one per import
//! batch that added objects, one per sync batch and connector that
//! provisioned) and the violations found, never a connector
//! space.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::model::{CsKey, CsObject, Sym};
use crate::store::{keys, Store, StoreError, Txn};

/// Checks links (both ways), the anchor, DN, join and unique-value
/// indexes against the objects, and the sync and export queues against
/// the objects' flags.
pub fn check(store: &Store) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let txn = store.begin();
    let spans = [
        queue_spans(store, keys::tag::SYNC_SPAN, &mut problems)?,
        queue_spans(store, keys::tag::EXPORT_SPAN, &mut problems)?,
    ];
    check_cs_objects(store, &txn, &spans, &mut problems)?;
    let join_entries = check_mv_objects(store, &txn, &mut problems)?;
    check_out_of_line(store, &txn, &mut problems)?;
    check_indexes(store, &txn, &mut problems)?;
    check_queues(store, &txn, &mut problems)?;
    check_join_entries(store, &txn, join_entries, &mut problems)?;
    check_unique_entries(store, &txn, &mut problems)?;
    Ok(problems)
}

/// The spans of a queue (first id to last id, by connector): one per
/// import batch that added objects, or per sync batch and connector that
/// provisioned, so a few thousand at most at 1M identities.
type Spans = HashMap<Sym, BTreeMap<u64, u64>>;

fn queue_spans(store: &Store, tag: u8, problems: &mut Vec<String>) -> Result<Spans, StoreError> {
    let mut spans = Spans::new();
    let what = if tag == keys::tag::SYNC_SPAN {
        "sync"
    } else {
        "export"
    };
    store.for_each_prefix(&[tag], |k, v| {
        match keys::decode_queue_span(k, v) {
            Some((first, last)) => {
                spans.entry(first.conn).or_default().insert(first.id, last);
            }
            None => problems.push(format!("bad {what}-queue span {k:?} = {v:?}")),
        }
        Ok(())
    })?;
    Ok(spans)
}

/// Whether a span of `spans` covers `key`.
fn in_span(spans: &Spans, key: CsKey) -> bool {
    spans.get(&key.conn).is_some_and(|s| {
        s.range(..=key.id)
            .next_back()
            .is_some_and(|(_, last)| key.id <= *last)
    })
}

/// The anchor and DN index keys an object must have, with what they are.
fn index_keys(o: &CsObject) -> Vec<(Vec<u8>, &'static str, String)> {
    let anchor = o
        .anchor
        .as_deref()
        .map(|a| (keys::anchor(o.key.conn, a), "anchor", a.to_string()));
    let dn =
        o.dn.as_deref()
            .map(|d| (keys::dn(o.key.conn, d), "DN", d.to_string()));
    anchor.into_iter().chain(dn).collect()
}

/// The unique-value index keys an object must have.
fn unique_keys(store: &Store, o: &CsObject) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    let conn = o.key.conn;
    for attr in store.unique_attrs(conn) {
        for v in o.held_values(attr) {
            out.insert(keys::unique(conn, attr, &v, o.key.id));
        }
    }
    out
}

/// Each connector-space object: stored under its own key, its link
/// answered, its anchor and DN indexed to it (or held by another object
/// too), its pending changes queued, its unique values indexed.
fn check_cs_objects(
    store: &Store,
    txn: &Txn<'_>,
    spans: &[Spans; 2],
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    store.for_each_prefix(&[keys::tag::CS], |k, v| {
        let o = match (keys::decode_cs_keyed(k), store.decode_cs(k, v)) {
            (Some(key), Ok(o)) if o.key == key => o,
            (Some(key), Ok(o)) => {
                problems.push(format!(
                    "cs object stored under {key:?} says it is {:?}",
                    o.key
                ));
                return Ok(());
            }
            (_, Err(e)) => {
                problems.push(e.to_string());
                return Ok(());
            }
            (None, _) => {
                problems.push(format!("bad cs key {k:?}"));
                return Ok(());
            }
        };
        let key = o.key;
        if let Some(link) = o.link {
            match txn.mv(link.mv)? {
                None => problems.push(format!(
                    "cs:{} links to missing metaverse object mv:{}",
                    key.id, link.mv
                )),
                Some(mv) if !mv.links.contains(&key) => problems.push(format!(
                    "cs:{} links to mv:{}, which does not link back",
                    key.id, link.mv
                )),
                _ => {}
            }
        }
        for (index_key, what, value) in index_keys(&o) {
            let indexed = store
                .get_raw(&index_key)?
                .and_then(|id| <[u8; 8]>::try_from(id.as_slice()).ok())
                .map(u64::from_be_bytes);
            match indexed {
                Some(id) if id == key.id => {}
                Some(other) => {
                    let holder = txn.cs(CsKey {
                        conn: key.conn,
                        id: other,
                    })?;
                    let same = holder
                        .is_some_and(|h| index_keys(&h).iter().any(|(k2, _, _)| *k2 == index_key));
                    problems.push(if same {
                        format!(
                            "cs:{} and cs:{other} hold the same {what} {value:?}",
                            key.id
                        )
                    } else {
                        format!("{what} {:?} has no index entry", index_text(&index_key))
                    });
                }
                None => problems.push(format!(
                    "{what} {:?} has no index entry",
                    index_text(&index_key)
                )),
            }
        }
        for (tag, what, pending) in [
            (
                keys::tag::SYNC_QUEUE,
                "sync queue",
                o.pending_import.is_some() && !in_span(&spans[0], key),
            ),
            (
                keys::tag::EXPORT_QUEUE,
                "export queue",
                o.pending_export.is_some() && !in_span(&spans[1], key),
            ),
        ] {
            if pending && store.get_raw(&keys::cs_keyed(tag, key))?.is_none() {
                problems.push(format!(
                    "cs:{} has a pending change but is not in the {what}",
                    key.id
                ));
            }
        }
        for k in unique_keys(store, &o) {
            if store.get_raw(&k)?.is_none() {
                problems.push(format!(
                    "a held value {k:?} is missing from the unique-value index"
                ));
            }
        }
        Ok(())
    })
}

/// The connector of a key that starts with tag and connector (anchor,
/// DN and unique-value index entries).
fn conn_of(key: &[u8]) -> Option<Sym> {
    let conn = key.get(1..5)?.try_into().ok()?;
    Some(Sym(u32::from_be_bytes(conn)))
}

/// The text of an anchor or DN index key (after the tag and connector).
fn index_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key.get(5..).unwrap_or_default()).into_owned()
}

/// Each metaverse object: its links answered, one per connector, and its
/// indexed values in the join index. Returns how many of the join
/// entries the objects call for were found.
fn check_mv_objects(
    store: &Store,
    txn: &Txn<'_>,
    problems: &mut Vec<String>,
) -> Result<u64, StoreError> {
    let mut expected = 0u64;
    store.for_each_prefix(&[keys::tag::MV], |k, v| {
        let mv = match (keys::decode_mv(k), store.decode_mv(k, v)) {
            (Some(id), Ok(o)) if o.id == id => o,
            (_, Err(e)) => {
                problems.push(e.to_string());
                return Ok(());
            }
            _ => {
                problems.push(format!("bad metaverse entry {k:?}"));
                return Ok(());
            }
        };
        let id = mv.id;
        let mut conns = HashSet::new();
        for key in &mv.links {
            if !conns.insert(key.conn) {
                problems.push(format!("mv:{id} links two objects of one connector"));
            }
            match txn.cs(*key)? {
                None => problems.push(format!("mv:{id} links to missing cs:{}", key.id)),
                Some(cs) if cs.link.map(|l| l.mv) != Some(id) => problems.push(format!(
                    "mv:{id} links to cs:{}, which does not link back",
                    key.id
                )),
                _ => {}
            }
        }
        for k in store.join_entries(&mv) {
            if store.get_raw(&k)?.is_some() {
                expected += 1;
            } else {
                problems.push(format!(
                    "metaverse value {k:?} is missing from the join index"
                ));
            }
        }
        Ok(())
    })?;
    Ok(expected)
}

/// Every out-of-line list value belongs to a stored object.
fn check_out_of_line(
    store: &Store,
    txn: &Txn<'_>,
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    let mut orphans: BTreeSet<String> = BTreeSet::new();
    store.for_each_prefix(&[keys::tag::LARGE_CS], |k, _| {
        match keys::decode_cs_keyed(k) {
            Some(key)
                if store
                    .get_raw(&keys::cs_keyed(keys::tag::CS, key))?
                    .is_some() => {}
            Some(key) => {
                orphans.insert(format!("cs:{}", key.id));
            }
            None => {
                orphans.insert(format!("bad key {k:?}"));
            }
        }
        Ok(())
    })?;
    store.for_each_prefix(&[keys::tag::LARGE_MV], |k, _| {
        match keys::decode_mv(k) {
            Some(id) if txn.mv(id)?.is_some() => {}
            Some(id) => {
                orphans.insert(format!("mv:{id}"));
            }
            None => {
                orphans.insert(format!("bad key {k:?}"));
            }
        }
        Ok(())
    })?;
    if !orphans.is_empty() {
        let list: Vec<String> = orphans.into_iter().collect();
        problems.push(format!(
            "out-of-line attribute values of objects that are not stored: {}",
            list.join(", ")
        ));
    }
    Ok(())
}

/// Each anchor and DN index entry points at an object that holds it.
fn check_indexes(
    store: &Store,
    txn: &Txn<'_>,
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    for (tag, what) in [(keys::tag::ANCHOR, "anchor"), (keys::tag::DN, "DN")] {
        store.for_each_prefix(&[tag], |k, v| {
            let id = <[u8; 8]>::try_from(v).map(u64::from_be_bytes).ok();
            let conn = conn_of(k);
            let target = match (conn, id) {
                (Some(conn), Some(id)) => txn.cs(CsKey { conn, id })?,
                _ => None,
            };
            let holds = target.is_some_and(|o| index_keys(&o).iter().any(|(ik, _, _)| ik == k));
            if !holds {
                problems.push(format!(
                    "{what} index entry {:?} points at no object holding it",
                    index_text(k)
                ));
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Each queue entry names an object with something pending. (A span
/// may cover objects that have nothing pending: a sync that visits them
/// leaves the span to the step that drops it.)
fn check_queues(
    store: &Store,
    txn: &Txn<'_>,
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    for (tag, what, has) in [
        (
            keys::tag::SYNC_QUEUE,
            "sync queue",
            (|o: &CsObject| o.pending_import.is_some()) as fn(&CsObject) -> bool,
        ),
        (keys::tag::EXPORT_QUEUE, "export queue", |o: &CsObject| {
            o.pending_export.is_some()
        }),
    ] {
        store.for_each_prefix(&[tag], |k, _| {
            match keys::decode_cs_keyed(k) {
                Some(key) if txn.cs(key)?.as_ref().is_some_and(has) => {}
                Some(key) => problems.push(format!(
                    "{what} holds cs:{}, which has nothing pending",
                    key.id
                )),
                None => problems.push(format!("bad {what} entry {k:?}")),
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Each join index entry is a value its metaverse object holds. The
/// objects' entries that were found (`check_mv_objects`) are in the index:
/// when it holds exactly as many, it holds nothing else, and only an index
/// with more is searched for the strays (a group's member references make
/// many entries of one object: its entries are kept while they come).
fn check_join_entries(
    store: &Store,
    txn: &Txn<'_>,
    expected: u64,
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    let mut found = 0u64;
    store.for_each_prefix(&[keys::tag::JOIN], |_, _| {
        found += 1;
        Ok(())
    })?;
    if found == expected {
        return Ok(());
    }
    let mut last: Option<(u64, BTreeSet<Vec<u8>>)> = None;
    store.for_each_prefix(&[keys::tag::JOIN], |k, _| {
        let held = match keys::decode_join_mv(k) {
            Some(id) => {
                if last.as_ref().is_none_or(|(cached, _)| *cached != id) {
                    let entries = txn
                        .mv(id)?
                        .map(|mv| store.join_entries(&mv))
                        .unwrap_or_default();
                    last = Some((id, entries));
                }
                last.as_ref()
                    .is_some_and(|(_, entries)| entries.contains(k))
            }
            None => false,
        };
        if !held {
            problems.push(format!("join index entry {k:?} matches no metaverse value"));
        }
        Ok(())
    })
}

/// Each unique-value index entry is a value its object holds.
fn check_unique_entries(
    store: &Store,
    txn: &Txn<'_>,
    problems: &mut Vec<String>,
) -> Result<(), StoreError> {
    store.for_each_prefix(&[keys::tag::UNIQUE], |k, _| {
        let conn = conn_of(k);
        let id = k
            .get(k.len().saturating_sub(8)..)
            .and_then(|t| <[u8; 8]>::try_from(t).ok())
            .map(u64::from_be_bytes);
        let held = match (conn, id) {
            (Some(conn), Some(id)) => txn
                .cs(CsKey { conn, id })?
                .is_some_and(|o| unique_keys(store, &o).contains(k)),
            _ => false,
        };
        if !held {
            problems.push(format!(
                "unique-value index entry {k:?} matches no object's value"
            ));
        }
        Ok(())
    })
}
