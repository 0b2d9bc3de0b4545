//! `mvsync check`: verifies every store invariant and lists each violation.
//!
//! Reads the whole store: it is the one operation allowed to.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::model::{CsKey, CsObject, MvId, MvObject};
use crate::store::{keys, Store, StoreError};

/// Checks links (both ways), the anchor, DN and join indexes against the
/// objects, and the sync and export queues against the objects' flags.
pub fn check(store: &Store) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let mut cs_objects: BTreeMap<CsKey, CsObject> = BTreeMap::new();
    store.for_each_prefix(&[keys::tag::CS], |k, v| {
        match (keys::decode_cs_keyed(k), store.decode_cs(k, v)) {
            (Some(key), Ok(o)) if o.key == key => {
                cs_objects.insert(key, o);
            }
            (Some(key), Ok(o)) => problems.push(format!(
                "cs object stored under {key:?} says it is {:?}",
                o.key
            )),
            (_, Err(e)) => problems.push(e.to_string()),
            (None, _) => problems.push(format!("bad cs key {k:?}")),
        }
        Ok(())
    })?;
    let mut mv_objects: BTreeMap<MvId, MvObject> = BTreeMap::new();
    store.for_each_prefix(&[keys::tag::MV], |k, v| {
        match (keys::decode_mv(k), store.decode_mv(k, v)) {
            (Some(id), Ok(o)) if o.id == id => {
                mv_objects.insert(id, o);
            }
            (_, Err(e)) => problems.push(e.to_string()),
            _ => problems.push(format!("bad metaverse entry {k:?}")),
        }
        Ok(())
    })?;

    // Links, both ways.
    for (key, cs) in &cs_objects {
        if let Some(link) = cs.link {
            match mv_objects.get(&link.mv) {
                None => problems.push(format!(
                    "cs:{} links to missing metaverse object mv:{}",
                    key.id, link.mv
                )),
                Some(mv) if !mv.links.contains(key) => problems.push(format!(
                    "cs:{} links to mv:{}, which does not link back",
                    key.id, link.mv
                )),
                _ => {}
            }
        }
    }
    for (id, mv) in &mv_objects {
        let mut conns = HashSet::new();
        for key in &mv.links {
            if !conns.insert(key.conn) {
                problems.push(format!("mv:{id} links two objects of one connector"));
            }
            match cs_objects.get(key) {
                None => problems.push(format!("mv:{id} links to missing cs:{}", key.id)),
                Some(cs) if cs.link.map(|l| l.mv) != Some(*id) => problems.push(format!(
                    "mv:{id} links to cs:{}, which does not link back",
                    key.id
                )),
                _ => {}
            }
        }
    }

    // Every out-of-line list value belongs to a stored object.
    let mut orphans: BTreeSet<String> = BTreeSet::new();
    store.for_each_prefix(&[keys::tag::LARGE_CS], |k, _| {
        match keys::decode_cs_keyed(k) {
            Some(key) if cs_objects.contains_key(&key) => {}
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
            Some(id) if mv_objects.contains_key(&id) => {}
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

    // An anchor or DN identifies one object per connector.
    let mut owners: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for o in cs_objects.values() {
        let anchor = o
            .anchor
            .as_deref()
            .map(|a| (keys::anchor(o.key.conn, a), "anchor", a.to_string()));
        let dn =
            o.dn.as_deref()
                .map(|d| (keys::dn(o.key.conn, d), "DN", d.to_string()));
        for (k, what, value) in anchor.into_iter().chain(dn) {
            if let Some(other) = owners.insert(k, o.key.id) {
                problems.push(format!(
                    "cs:{} and cs:{other} hold the same {what} {value:?}",
                    o.key.id
                ));
            }
        }
    }

    // Anchor and DN indexes.
    let expected_anchor: BTreeSet<Vec<u8>> = cs_objects
        .values()
        .filter_map(|o| o.anchor.as_deref().map(|a| keys::anchor(o.key.conn, a)))
        .collect();
    let expected_dn: BTreeSet<Vec<u8>> = cs_objects
        .values()
        .filter_map(|o| o.dn.as_deref().map(|d| keys::dn(o.key.conn, d)))
        .collect();
    for (tag, expected, what) in [
        (keys::tag::ANCHOR, &expected_anchor, "anchor"),
        (keys::tag::DN, &expected_dn, "DN"),
    ] {
        let mut found = BTreeSet::new();
        store.for_each_prefix(&[tag], |k, v| {
            let id = <[u8; 8]>::try_from(v).map(u64::from_be_bytes).ok();
            let conn = keys::decode_cs_keyed(&[k, &[0u8; 8][..]].concat()).map(|c| c.conn);
            let target = match (conn, id) {
                (Some(conn), Some(id)) => cs_objects.get(&CsKey { conn, id }),
                _ => None,
            };
            let matches = target.is_some_and(|o| match tag {
                keys::tag::ANCHOR => {
                    o.anchor.as_deref().map(|a| keys::anchor(o.key.conn, a)) == Some(k.to_vec())
                }
                _ => o.dn.as_deref().map(|d| keys::dn(o.key.conn, d)) == Some(k.to_vec()),
            });
            if !matches {
                problems.push(format!(
                    "{what} index entry {:?} points at no object holding it",
                    String::from_utf8_lossy(&k[5..])
                ));
            }
            found.insert(k.to_vec());
            Ok(())
        })?;
        for missing in expected.difference(&found) {
            problems.push(format!(
                "{what} {:?} has no index entry",
                String::from_utf8_lossy(&missing[5..])
            ));
        }
    }

    // Queues match flags.
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
        let mut queued = BTreeSet::new();
        store.for_each_prefix(&[tag], |k, _| {
            match keys::decode_cs_keyed(k) {
                Some(key) if cs_objects.get(&key).is_some_and(has) => {
                    queued.insert(key);
                }
                Some(key) => problems.push(format!(
                    "{what} holds cs:{}, which has nothing pending",
                    key.id
                )),
                None => problems.push(format!("bad {what} entry {k:?}")),
            }
            Ok(())
        })?;
        for (key, o) in &cs_objects {
            if has(o) && !queued.contains(key) {
                problems.push(format!(
                    "cs:{} has a pending change but is not in the {what}",
                    key.id
                ));
            }
        }
    }

    // Join index matches the indexed metaverse attributes (and references).
    let mut expected_join = BTreeSet::new();
    for mv in mv_objects.values() {
        expected_join.extend(store.join_entries(mv));
    }
    let mut found_join = BTreeSet::new();
    store.for_each_prefix(&[keys::tag::JOIN], |k, _| {
        found_join.insert(k.to_vec());
        Ok(())
    })?;
    for k in found_join.difference(&expected_join) {
        problems.push(format!("join index entry {k:?} matches no metaverse value"));
    }
    for k in expected_join.difference(&found_join) {
        problems.push(format!(
            "metaverse value {k:?} is missing from the join index"
        ));
    }

    // Unique-value index matches the values objects hold.
    let mut expected_unique = BTreeSet::new();
    for (conn, attr) in store.unique_tracked() {
        for o in cs_objects.values().filter(|o| o.key.conn == conn) {
            for v in o.held_values(attr) {
                expected_unique.insert(keys::unique(conn, attr, &v, o.key.id));
            }
        }
    }
    let mut found_unique = BTreeSet::new();
    store.for_each_prefix(&[keys::tag::UNIQUE], |k, _| {
        found_unique.insert(k.to_vec());
        Ok(())
    })?;
    for k in found_unique.difference(&expected_unique) {
        problems.push(format!(
            "unique-value index entry {k:?} matches no object's value"
        ));
    }
    for k in expected_unique.difference(&found_unique) {
        problems.push(format!(
            "a held value {k:?} is missing from the unique-value index"
        ));
    }
    Ok(problems)
}
