//! Large multi-valued attributes, stored out of line.
//!
//! A group of 100,000 members must not cost a 100,000-value rewrite when one
//! member changes. So a list longer than the store's threshold is not kept in
//! its object's record: each value is a key of its own under the object
//! (`L` for connector-space objects, `l` for metaverse objects), the record
//! keeps an empty placeholder and a mark naming the list, and a save writes
//! only the values that changed.
//!
//! In a connector-space object the staged copies of a list (the pending
//! import and the escrow) are stored as a delta against the hologram: one
//! new member staged on a large group is one `+` key, not a second copy of
//! the group. Lists inside pending exports are stored whole; they are as
//! large as the change they describe.
//!
//! Stored out of line, a list is a set: duplicates collapse and values come
//! back sorted. Multi-valued attributes are sets in every
//! system mvsync connects to, and the engine compares them as sets.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rules::Value;
use serde::{Deserialize, Serialize};

use super::{codec, keys, StoreError};
use crate::connector::AttrOp;
use crate::model::{Attrs, CsKey, CsObject, Escrow, MvAttr, MvId, MvObject, PendingExport, Sym};

/// Lists longer than this are stored out of line, unless the store is told otherwise.
pub const DEFAULT_THRESHOLD: usize = 256;

/// Where in a connector-space object a large list sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Slot {
    /// The hologram.
    Hologram,
    /// The pending import (a delta against the hologram).
    Import,
    /// The attributes of a pending add.
    ExportAdd,
    /// A pending update's `Replace`.
    ExportReplace,
    /// A pending update's `Add`.
    ExportAddValues,
    /// A pending update's `Remove`.
    ExportRemoveValues,
    /// The escrow (a delta against the hologram).
    Escrow,
}

impl Slot {
    /// Whether the slot is stored as a delta against the hologram.
    fn is_delta(self) -> bool {
        matches!(self, Slot::Import | Slot::Escrow)
    }

    /// The slot of a pending update's operation on a list, if it has one.
    fn of_op(op: &AttrOp) -> Option<(Slot, &[Value])> {
        match op {
            AttrOp::Replace(Value::List(items)) => Some((Slot::ExportReplace, items)),
            AttrOp::Add(items) => Some((Slot::ExportAddValues, items)),
            AttrOp::Remove(items) => Some((Slot::ExportRemoveValues, items)),
            AttrOp::Replace(_) | AttrOp::Clear => None,
        }
    }
}

/// A value in the list (`+`) or, in a delta, removed from the hologram's (`-`).
const PLUS: u8 = b'+';
const MINUS: u8 = b'-';

/// A connector-space record as stored: the object with its large lists
/// emptied, and the marks naming them.
#[derive(Serialize)]
struct CsRecordRef<'a> {
    object: &'a CsObject,
    marks: &'a [(Slot, Sym)],
}

#[derive(Deserialize)]
struct CsRecord {
    object: CsObject,
    marks: Vec<(Slot, Sym)>,
}

/// A metaverse record as stored.
#[derive(Serialize)]
struct MvRecordRef<'a> {
    object: &'a MvObject,
    marks: &'a [Sym],
}

#[derive(Deserialize)]
struct MvRecord {
    object: MvObject,
    marks: Vec<Sym>,
}

/// Reads every key under a prefix (through a batch, or from committed state).
pub type PrefixReader<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<Vec<u8>>, StoreError>;

/// A key-value write: `None` deletes.
pub type KeyWrite = (Vec<u8>, Option<Vec<u8>>);

fn cs_list_prefix(key: CsKey, slot: Slot, attr: Sym) -> Vec<u8> {
    let mut k = keys::cs_keyed(keys::tag::LARGE_CS, key);
    k.push(slot as u8);
    k.extend_from_slice(&attr.0.to_be_bytes());
    k
}

fn mv_list_prefix(id: MvId, attr: Sym) -> Vec<u8> {
    let mut k = keys::mv_keyed(keys::tag::LARGE_MV, id);
    k.extend_from_slice(&attr.0.to_be_bytes());
    k
}

/// The lists a connector-space object holds, by place. A repeated
/// (slot, attribute) in a pending update keeps only its first list here;
/// the others stay inline.
fn cs_lists(obj: &CsObject) -> BTreeMap<(Slot, Sym), &[Value]> {
    let mut out = BTreeMap::new();
    add_attr_lists(&mut out, Slot::Hologram, &obj.hologram);
    if let Some(p) = &obj.pending_import {
        add_attr_lists(&mut out, Slot::Import, &p.attrs);
    }
    match &obj.pending_export {
        Some(PendingExport::Add { attrs }) => add_attr_lists(&mut out, Slot::ExportAdd, attrs),
        Some(PendingExport::Update { changes, .. }) => {
            for (k, op) in changes {
                if let Some((slot, items)) = Slot::of_op(op) {
                    out.entry((slot, *k)).or_insert(items);
                }
            }
        }
        Some(PendingExport::Delete) | None => {}
    }
    for (k, v) in &obj.escrow.attrs {
        if let Value::List(items) = v {
            out.insert((Slot::Escrow, *k), items.as_slice());
        }
    }
    out
}

fn add_attr_lists<'o>(out: &mut BTreeMap<(Slot, Sym), &'o [Value]>, slot: Slot, attrs: &'o Attrs) {
    for (k, v) in attrs.iter() {
        if let Value::List(items) = v {
            out.insert((slot, *k), items.as_slice());
        }
    }
}

/// The lists of one image stored out of line: a hologram list longer than
/// the threshold; a delta list whose hologram list is out of line or which
/// is itself longer; any other list longer than the threshold.
fn cs_spilled<'o>(
    lists: &BTreeMap<(Slot, Sym), &'o [Value]>,
    threshold: usize,
) -> BTreeMap<(Slot, Sym), &'o [Value]> {
    let holo_out = |attr: Sym| {
        lists
            .get(&(Slot::Hologram, attr))
            .is_some_and(|l| l.len() > threshold)
    };
    lists
        .iter()
        .filter(|((slot, attr), items)| {
            items.len() > threshold || (slot.is_delta() && holo_out(*attr))
        })
        .map(|(k, v)| (*k, *v))
        .collect()
}

/// The (sign, value) entries a stored list has: the values, or for a delta
/// slot the difference from the hologram's values.
fn entries<'v>(items: &'v [Value], base: Option<&'v [Value]>) -> HashSet<(u8, &'v Value)> {
    match base {
        None => items.iter().map(|v| (PLUS, v)).collect(),
        Some(base) => {
            let have: HashSet<&Value> = items.iter().collect();
            let had: HashSet<&Value> = base.iter().collect();
            have.difference(&had)
                .map(|v| (PLUS, *v))
                .chain(had.difference(&have).map(|v| (MINUS, *v)))
                .collect()
        }
    }
}

fn entry_key(prefix: &[u8], sign: u8, value: &Value) -> Result<Vec<u8>, StoreError> {
    let mut k = prefix.to_vec();
    k.push(sign);
    k.extend_from_slice(&codec::encode(value)?);
    Ok(k)
}

/// Writes that take one list's entries from `old` to `new`.
fn diff_entries(
    prefix: &[u8],
    old: &HashSet<(u8, &Value)>,
    new: &HashSet<(u8, &Value)>,
    writes: &mut Vec<KeyWrite>,
) -> Result<(), StoreError> {
    for (sign, v) in old.difference(new) {
        writes.push((entry_key(prefix, *sign, v)?, None));
    }
    for (sign, v) in new.difference(old) {
        writes.push((entry_key(prefix, *sign, v)?, Some(Vec::new())));
    }
    Ok(())
}

/// Encodes a connector-space object for the store and lists the
/// out-of-line writes that take `before` to `after` (`None`: deleted).
pub fn save_cs<'o>(
    before: Option<&'o CsObject>,
    after: Option<&'o CsObject>,
    threshold: usize,
) -> Result<(Option<Vec<u8>>, Vec<KeyWrite>), StoreError> {
    let Some(key) = after.or(before).map(|o| o.key) else {
        return Ok((None, Vec::new()));
    };
    let (old_lists, new_lists) = (
        before.map(cs_lists).unwrap_or_default(),
        after.map(cs_lists).unwrap_or_default(),
    );
    let (old, new) = (
        cs_spilled(&old_lists, threshold),
        cs_spilled(&new_lists, threshold),
    );
    let base = |obj: Option<&'o CsObject>, spilled_here: bool, slot: Slot, attr: Sym| {
        obj.filter(|_| spilled_here && slot.is_delta())
            .map(|o| hologram_items(o, attr))
    };
    let mut writes = Vec::new();
    let places: BTreeSet<(Slot, Sym)> = old.keys().chain(new.keys()).copied().collect();
    for (slot, attr) in places {
        let (o, n) = (old.get(&(slot, attr)), new.get(&(slot, attr)));
        let (ob, nb) = (
            base(before, o.is_some(), slot, attr),
            base(after, n.is_some(), slot, attr),
        );
        if o.is_some() && o == n && ob == nb {
            continue;
        }
        let old_entries = o.map(|items| entries(items, ob)).unwrap_or_default();
        let new_entries = n.map(|items| entries(items, nb)).unwrap_or_default();
        diff_entries(
            &cs_list_prefix(key, slot, attr),
            &old_entries,
            &new_entries,
            &mut writes,
        )?;
    }
    let record = match after {
        Some(a) => {
            let marks: Vec<(Slot, Sym)> = new.keys().copied().collect();
            let record = if marks.is_empty() {
                codec::encode(&CsRecordRef {
                    object: a,
                    marks: &marks,
                })?
            } else {
                let set: BTreeSet<(Slot, Sym)> = marks.iter().copied().collect();
                codec::encode(&CsRecordRef {
                    object: &cs_stripped(a, &set),
                    marks: &marks,
                })?
            };
            Some(record)
        }
        None => None,
    };
    Ok((record, writes))
}

/// The hologram values of `attr`, which a delta list is stored against.
fn hologram_items(obj: &CsObject, attr: Sym) -> &[Value] {
    obj.hologram.get(attr).map(Value::items).unwrap_or_default()
}

/// A copy of `obj` with the lists in `marks` emptied (cloning only what stays inline).
fn cs_stripped(obj: &CsObject, marks: &BTreeSet<(Slot, Sym)>) -> CsObject {
    let value = |slot: Slot, k: Sym, v: &Value| {
        if marks.contains(&(slot, k)) {
            Value::List(Vec::new())
        } else {
            v.clone()
        }
    };
    let attrs = |slot: Slot, attrs: &Attrs| {
        Attrs(
            attrs
                .iter()
                .map(|(k, v)| (*k, value(slot, *k, v)))
                .collect(),
        )
    };
    let pending_export = obj.pending_export.as_ref().map(|p| match p {
        PendingExport::Add { attrs: a } => PendingExport::Add {
            attrs: attrs(Slot::ExportAdd, a),
        },
        PendingExport::Update { new_dn, changes } => {
            let mut emptied = BTreeSet::new();
            let changes = changes
                .iter()
                .map(|(k, op)| match Slot::of_op(op) {
                    Some((slot, _))
                        if marks.contains(&(slot, *k)) && emptied.insert((slot, *k)) =>
                    {
                        let empty = match op {
                            AttrOp::Add(_) => AttrOp::Add(Vec::new()),
                            AttrOp::Remove(_) => AttrOp::Remove(Vec::new()),
                            _ => AttrOp::Replace(Value::List(Vec::new())),
                        };
                        (*k, empty)
                    }
                    _ => (*k, op.clone()),
                })
                .collect();
            PendingExport::Update {
                new_dn: new_dn.clone(),
                changes,
            }
        }
        PendingExport::Delete => PendingExport::Delete,
    });
    CsObject {
        key: obj.key,
        anchor: obj.anchor.clone(),
        dn: obj.dn.clone(),
        object_type: obj.object_type,
        state: obj.state,
        hologram: attrs(Slot::Hologram, &obj.hologram),
        pending_import: obj
            .pending_import
            .as_ref()
            .map(|p| crate::model::PendingImport {
                kind: p.kind,
                attrs: attrs(Slot::Import, &p.attrs),
                dn: p.dn.clone(),
            }),
        pending_export,
        escrow: Escrow {
            attrs: obj
                .escrow
                .attrs
                .iter()
                .map(|(k, v)| (*k, value(Slot::Escrow, *k, v)))
                .collect(),
            dn: obj.escrow.dn.clone(),
            deleted: obj.escrow.deleted,
        },
        link: obj.link,
        sticky: obj.sticky.clone(),
        error: obj.error.clone(),
    }
}

/// Reads the (`+`, `-`) values of one out-of-line list.
fn read_entries(
    prefix: &[u8],
    read: PrefixReader<'_>,
) -> Result<(Vec<Value>, Vec<Value>), StoreError> {
    let (mut plus, mut minus) = (Vec::new(), Vec::new());
    for k in read(prefix)? {
        let bad = || StoreError::Corrupt(format!("bad out-of-line value key {k:?}"));
        let (sign, bytes) = match k.get(prefix.len()..) {
            Some([sign, rest @ ..]) => (*sign, rest),
            _ => return Err(bad()),
        };
        let value: Value = codec::decode(bytes, &|| format!("out-of-line value {k:?}"))?;
        match sign {
            PLUS => plus.push(value),
            MINUS => minus.push(value),
            _ => return Err(bad()),
        }
    }
    Ok((plus, minus))
}

/// Decodes a stored connector-space record, reading its large lists back.
pub fn load_cs(
    bytes: &[u8],
    read: PrefixReader<'_>,
    what: &dyn Fn() -> String,
) -> Result<CsObject, StoreError> {
    let CsRecord {
        mut object,
        mut marks,
    } = codec::decode(bytes, what)?;
    // Holograms first: the deltas are against them.
    marks.sort_by_key(|(slot, _)| *slot != Slot::Hologram);
    for (slot, attr) in marks {
        let (plus, minus) = read_entries(&cs_list_prefix(object.key, slot, attr), read)?;
        let items = if slot.is_delta() {
            let gone: HashSet<&Value> = minus.iter().collect();
            let base = hologram_items(&object, attr);
            let mut items: Vec<Value> =
                base.iter().filter(|v| !gone.contains(v)).cloned().collect();
            items.extend(plus);
            items
        } else {
            plus
        };
        fill_cs(&mut object, slot, attr, canonical(items));
    }
    Ok(object)
}

/// A list read back as a set: sorted, without duplicates.
fn canonical(mut items: Vec<Value>) -> Vec<Value> {
    items.sort_unstable();
    items.dedup();
    items
}

/// Puts a list read back into the placeholder `save_cs` left.
fn fill_cs(obj: &mut CsObject, slot: Slot, attr: Sym, items: Vec<Value>) {
    let value = Value::list(items);
    match slot {
        Slot::Hologram => obj.hologram.set(attr, value),
        Slot::Import => {
            if let Some(p) = &mut obj.pending_import {
                p.attrs.set(attr, value);
            }
        }
        Slot::ExportAdd => {
            if let Some(PendingExport::Add { attrs }) = &mut obj.pending_export {
                attrs.set(attr, value);
            }
        }
        Slot::ExportReplace | Slot::ExportAddValues | Slot::ExportRemoveValues => {
            if let Some(PendingExport::Update { changes, .. }) = &mut obj.pending_export {
                let placeholder = changes.iter_mut().find(|(k, op)| {
                    *k == attr
                        && Slot::of_op(op).is_some_and(|(s, items)| s == slot && items.is_empty())
                });
                if let Some((_, op)) = placeholder {
                    let items = value.items().to_vec();
                    *op = match slot {
                        Slot::ExportReplace => AttrOp::Replace(value),
                        Slot::ExportAddValues => AttrOp::Add(items),
                        _ => AttrOp::Remove(items),
                    };
                }
            }
        }
        Slot::Escrow => {
            if let Some((_, v)) = obj.escrow.attrs.iter_mut().find(|(k, _)| *k == attr) {
                *v = value;
            }
        }
    }
}

/// Encodes a metaverse object for the store and lists the out-of-line
/// writes that take `before` to `after` (`None`: deleted).
pub fn save_mv(
    before: Option<&MvObject>,
    after: Option<&MvObject>,
    threshold: usize,
) -> Result<(Option<Vec<u8>>, Vec<KeyWrite>), StoreError> {
    let Some(id) = after.or(before).map(|o| o.id) else {
        return Ok((None, Vec::new()));
    };
    let (old, new) = (mv_spilled(before, threshold), mv_spilled(after, threshold));
    let mut writes = Vec::new();
    let names: BTreeSet<Sym> = old.keys().chain(new.keys()).copied().collect();
    for attr in names {
        let (o, n) = (old.get(&attr), new.get(&attr));
        if o.is_some() && o == n {
            continue;
        }
        let old_entries = o.map(|items| entries(items, None)).unwrap_or_default();
        let new_entries = n.map(|items| entries(items, None)).unwrap_or_default();
        diff_entries(
            &mv_list_prefix(id, attr),
            &old_entries,
            &new_entries,
            &mut writes,
        )?;
    }
    let record = match after {
        Some(a) => {
            let marks: Vec<Sym> = new.keys().copied().collect();
            if marks.is_empty() {
                Some(codec::encode(&MvRecordRef {
                    object: a,
                    marks: &marks,
                })?)
            } else {
                let stripped = MvObject {
                    id: a.id,
                    object_type: a.object_type,
                    attrs: a
                        .attrs
                        .iter()
                        .map(|attr| MvAttr {
                            name: attr.name,
                            value: if new.contains_key(&attr.name) {
                                Value::List(Vec::new())
                            } else {
                                attr.value.clone()
                            },
                            connector: attr.connector,
                            rule: attr.rule,
                        })
                        .collect(),
                    links: a.links.clone(),
                };
                Some(codec::encode(&MvRecordRef {
                    object: &stripped,
                    marks: &marks,
                })?)
            }
        }
        None => None,
    };
    Ok((record, writes))
}

/// The lists of a metaverse object stored out of line.
fn mv_spilled(obj: Option<&MvObject>, threshold: usize) -> BTreeMap<Sym, &[Value]> {
    obj.map(|o| {
        o.attrs
            .iter()
            .filter_map(|a| match &a.value {
                Value::List(items) if items.len() > threshold => Some((a.name, items.as_slice())),
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Decodes a stored metaverse record, reading its large lists back.
pub fn load_mv(
    bytes: &[u8],
    read: PrefixReader<'_>,
    what: &dyn Fn() -> String,
) -> Result<MvObject, StoreError> {
    let MvRecord { mut object, marks } = codec::decode(bytes, what)?;
    for attr in marks {
        let (plus, _) = read_entries(&mv_list_prefix(object.id, attr), read)?;
        if let Some(a) = object.attrs.iter_mut().find(|a| a.name == attr) {
            a.value = Value::list(canonical(plus));
        }
    }
    Ok(object)
}
