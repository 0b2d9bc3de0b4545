//! Large multi-valued attributes, stored out of line.
//!
//! A group of 100,000 members must not cost a 100,000-value rewrite when one
//! member changes. So a list longer than the store's threshold is not kept in
//! its object's record, which keeps an empty placeholder and a mark naming
//! the list. Under the object (`L` for connector-space objects, `l` for
//! metaverse objects) the list is stored as
//!
//! - a *blob* (key `…B`): the whole list, sorted, in one value; and
//! - *entries* (keys `…+value` and `…-value`, empty values): the values
//!   added to and removed from the list's *base*.
//!
//! The base is the blob when there is one; otherwise, for the copies of a
//! list a connector-space object stages (pending import, escrow), the
//! hologram's list, and for any other list nothing. A save writes only the
//! entries that changed, as long as they stay under an eighth of the list;
//! past that it writes a fresh blob and drops the entries. So a new large
//! list costs one write (not a key per value), one member staged on a large
//! group is one `+` key, and the list is rewritten once per eighth of it
//! changed, whichever slot it sits in.
//!
//! Stored out of line, a list is a set: duplicates collapse and values come
//! back sorted. Multi-valued attributes are sets in every system mvsync
//! connects to, and the engine compares them as sets.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rules::Value;
use serde::{Deserialize, Serialize};

use super::{codec, keys, StoreError};
use crate::connector::AttrOp;
use crate::model::{
    as_set, Attrs, CsKey, CsObject, Escrow, MvAttr, MvId, MvObject, PendingExport, Sym,
};

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
/// The key suffix of a list's blob.
const BLOB: u8 = b'B';

/// A list's entries may grow to this share of it (plus one) before the
/// next save writes a fresh blob instead.
const ENTRY_SHARE: usize = 8;

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

/// Reads the store: through a batch, or its committed state.
pub trait Reader {
    /// The value under a key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every key under a prefix, in order.
    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError>;
}

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

/// Whether any list of `obj` is longer than `threshold`: without one,
/// nothing of it is stored out of line (a staged copy goes out of line only
/// when its hologram list does).
pub(super) fn has_large_list(obj: &CsObject, threshold: usize) -> bool {
    let attrs_large = |attrs: &Attrs| attrs.iter().any(|(_, v)| v.items().len() > threshold);
    attrs_large(&obj.hologram)
        || obj
            .pending_import
            .as_ref()
            .is_some_and(|p| attrs_large(&p.attrs))
        || match &obj.pending_export {
            Some(PendingExport::Add { attrs }) => attrs_large(attrs),
            Some(PendingExport::Update { changes, .. }) => changes
                .iter()
                .any(|(_, op)| Slot::of_op(op).is_some_and(|(_, items)| items.len() > threshold)),
            Some(PendingExport::Delete) | None => false,
        }
        || obj
            .escrow
            .attrs
            .iter()
            .any(|(_, v)| v.items().len() > threshold)
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

/// The entries that take `base` to `items`: a merge of the two sorted,
/// linear on lists that are already sorted (blobs and lists read back are).
fn entries(items: &[Value], base: &[Value]) -> HashSet<(u8, Value)> {
    let (have, had) = (as_set(items), as_set(base));
    let mut out = HashSet::new();
    let (mut i, mut j) = (0, 0);
    while i < have.len() || j < had.len() {
        match (have.get(i), had.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                out.insert((PLUS, (*a).clone()));
                i += 1;
            }
            (Some(a), None) => {
                out.insert((PLUS, (*a).clone()));
                i += 1;
            }
            (_, Some(b)) => {
                out.insert((MINUS, (*b).clone()));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

fn entry_key(prefix: &[u8], sign: u8, value: &Value) -> Result<Vec<u8>, StoreError> {
    let mut k = prefix.to_vec();
    k.push(sign);
    k.extend_from_slice(&codec::encode(value)?);
    Ok(k)
}

fn blob_key(prefix: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.push(BLOB);
    k
}

fn read_blob(reader: &dyn Reader, prefix: &[u8]) -> Result<Option<Vec<Value>>, StoreError> {
    let key = blob_key(prefix);
    match reader.get(&key)? {
        Some(bytes) => Ok(Some(codec::decode(&bytes, &|| {
            format!("out-of-line list {key:?}")
        })?)),
        None => Ok(None),
    }
}

/// One list as a save sees it: its values, and the values of the base it
/// is stored against when it has no blob (the hologram's, for a staged copy).
type ListImage<'a> = Option<(&'a [Value], &'a [Value])>;

/// Writes that take one out-of-line list from `old` to `new` (`None`: not
/// stored out of line), under `prefix`.
fn save_list(
    reader: &dyn Reader,
    prefix: &[u8],
    old: ListImage<'_>,
    new: ListImage<'_>,
    writes: &mut Vec<KeyWrite>,
) -> Result<(), StoreError> {
    // What is stored now: its blob and its entries, read rather than
    // recomputed (the entries are few; recomputing them is a pass over the list).
    let (old_blob, old_entries) = match old {
        Some(_) => (read_blob(reader, prefix)?, read_entries(reader, prefix)?),
        None => (None, HashSet::new()),
    };
    // Keep the blob and store the difference while it is small; else a
    // fresh blob.
    let (blob, new_entries) = match new {
        None => (Blob::None, HashSet::new()),
        Some((items, reference)) => {
            let limit = items.len() / ENTRY_SHARE + 1;
            let small = |base: &[Value]| {
                (items.len().abs_diff(base.len()) <= limit)
                    .then(|| entries(items, base))
                    .filter(|e| e.len() <= limit)
            };
            match old_blob.as_deref().and_then(small) {
                Some(e) => (Blob::Keep, e),
                None => match small(reference) {
                    Some(e) => (Blob::None, e),
                    None => (Blob::Fresh(items), HashSet::new()),
                },
            }
        }
    };
    match blob {
        Blob::Fresh(items) => writes.push((
            blob_key(prefix),
            Some(codec::encode(&canonical(items.to_vec()))?),
        )),
        Blob::None if old_blob.is_some() => writes.push((blob_key(prefix), None)),
        Blob::None | Blob::Keep => {}
    }
    for (sign, v) in old_entries.difference(&new_entries) {
        writes.push((entry_key(prefix, *sign, v)?, None));
    }
    for (sign, v) in new_entries.difference(&old_entries) {
        writes.push((entry_key(prefix, *sign, v)?, Some(Vec::new())));
    }
    Ok(())
}

/// What a save does with a list's blob.
enum Blob<'a> {
    /// No blob after the save.
    None,
    /// The stored blob stays.
    Keep,
    /// A new blob of these values.
    Fresh(&'a [Value]),
}

/// The `+`/`-` entries stored for one list.
fn read_entries(reader: &dyn Reader, prefix: &[u8]) -> Result<HashSet<(u8, Value)>, StoreError> {
    let mut out = HashSet::new();
    for k in reader.keys_with_prefix(prefix)? {
        let bad = || StoreError::Corrupt(format!("bad out-of-line value key {k:?}"));
        let (sign, bytes) = match k.get(prefix.len()..) {
            Some([BLOB]) => continue,
            Some([sign @ (PLUS | MINUS), rest @ ..]) => (*sign, rest),
            _ => return Err(bad()),
        };
        out.insert((
            sign,
            codec::decode(bytes, &|| format!("out-of-line value {k:?}"))?,
        ));
    }
    Ok(out)
}

/// Reads one out-of-line list back; `reference` is its base when it has no blob.
fn load_list(
    reader: &dyn Reader,
    prefix: &[u8],
    reference: &[Value],
) -> Result<Vec<Value>, StoreError> {
    let blob = read_blob(reader, prefix)?;
    let (mut plus, mut minus) = (Vec::new(), HashSet::new());
    for (sign, value) in read_entries(reader, prefix)? {
        if sign == PLUS {
            plus.push(value);
        } else {
            minus.insert(value);
        }
    }
    // A blob is stored sorted: without entries it is the list.
    let blob = match blob {
        Some(b) if plus.is_empty() && minus.is_empty() => return Ok(b),
        other => other,
    };
    let base = blob.as_deref().unwrap_or(reference);
    let mut items: Vec<Value> = base
        .iter()
        .filter(|v| !minus.contains(*v))
        .cloned()
        .collect();
    items.extend(plus);
    Ok(canonical(items))
}

/// Encodes a connector-space object for the store and lists the
/// out-of-line writes that take `before` to `after` (`None`: deleted).
pub fn save_cs(
    reader: &dyn Reader,
    before: Option<&CsObject>,
    after: Option<&CsObject>,
    threshold: usize,
) -> Result<(Option<Vec<u8>>, Vec<KeyWrite>), StoreError> {
    let Some(key) = after.or(before).map(|o| o.key) else {
        return Ok((None, Vec::new()));
    };
    // The common case, on every save of every object: nothing is large.
    let large = |o: Option<&CsObject>| o.is_some_and(|o| has_large_list(o, threshold));
    if !large(before) && !large(after) {
        let record = match after {
            Some(a) => Some(codec::encode(&CsRecordRef {
                object: a,
                marks: &[],
            })?),
            None => None,
        };
        return Ok((record, Vec::new()));
    }
    let (old_lists, new_lists) = (
        before.map(cs_lists).unwrap_or_default(),
        after.map(cs_lists).unwrap_or_default(),
    );
    let (old, new) = (
        cs_spilled(&old_lists, threshold),
        cs_spilled(&new_lists, threshold),
    );
    let mut writes = Vec::new();
    let places: BTreeSet<(Slot, Sym)> = old.keys().chain(new.keys()).copied().collect();
    for (slot, attr) in places {
        let o = cs_image(before, &old, slot, attr);
        let n = cs_image(after, &new, slot, attr);
        if o.is_some() && o == n {
            continue;
        }
        save_list(reader, &cs_list_prefix(key, slot, attr), o, n, &mut writes)?;
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

/// A connector-space list as `save_list` sees it: its values and its
/// reference (the hologram's list, for a staged copy).
fn cs_image<'o>(
    obj: Option<&'o CsObject>,
    spilled: &BTreeMap<(Slot, Sym), &'o [Value]>,
    slot: Slot,
    attr: Sym,
) -> ListImage<'o> {
    let items = *spilled.get(&(slot, attr))?;
    let reference = match obj {
        Some(o) if slot.is_delta() => hologram_items(o, attr),
        _ => &[],
    };
    Some((items, reference))
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

/// Decodes a stored connector-space record, reading its large lists back.
pub fn load_cs(
    reader: &dyn Reader,
    bytes: &[u8],
    what: &dyn Fn() -> String,
) -> Result<CsObject, StoreError> {
    let CsRecord {
        mut object,
        mut marks,
    } = codec::decode(bytes, what)?;
    // Holograms first: staged copies without a blob are stored against them.
    marks.sort_by_key(|(slot, _)| *slot != Slot::Hologram);
    for (slot, attr) in marks {
        let reference = if slot.is_delta() {
            hologram_items(&object, attr)
        } else {
            &[]
        };
        let items = load_list(reader, &cs_list_prefix(object.key, slot, attr), reference)?;
        fill_cs(&mut object, slot, attr, items);
    }
    Ok(object)
}

/// A list read back as a set: sorted, without duplicates.
fn canonical(mut items: Vec<Value>) -> Vec<Value> {
    items.sort(); // adaptive: a blob with a few entries is nearly sorted
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
    reader: &dyn Reader,
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
        let (o, n) = (
            old.get(&attr).map(|items| (*items, &[][..])),
            new.get(&attr).map(|items| (*items, &[][..])),
        );
        if o.is_some() && o == n {
            continue;
        }
        save_list(reader, &mv_list_prefix(id, attr), o, n, &mut writes)?;
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
    reader: &dyn Reader,
    bytes: &[u8],
    what: &dyn Fn() -> String,
) -> Result<MvObject, StoreError> {
    let MvRecord { mut object, marks } = codec::decode(bytes, what)?;
    for attr in marks {
        let items = load_list(reader, &mv_list_prefix(object.id, attr), &[])?;
        if let Some(a) = object.attrs.iter_mut().find(|a| a.name == attr) {
            a.value = Value::list(items);
        }
    }
    Ok(object)
}
