//! The data model: connector-space objects, metaverse objects and the
//! changes staged between them.
//!
//! Attribute, type, rule and connector names are interned to [`Sym`]s by the
//! store, so records carry small integers instead of repeated names.

use std::collections::HashSet;

use rules::Value;
use serde::{Deserialize, Serialize};

use crate::connector::AttrOp;

/// An interned name (attribute, object type, rule, connector).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sym(pub u32);

/// The id of a metaverse object, assigned sequentially by the store.
pub type MvId = u64;

/// A connector-space object's address: its connector and its id (ids are
/// assigned sequentially by the store and unique across connectors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CsKey {
    /// The connector.
    pub conn: Sym,
    /// The object id.
    pub id: u64,
}

/// Attributes sorted by name symbol, each with its (possibly multi-valued) value.
/// Invariant: sorted by `Sym`, no duplicates, no `Value::Null` values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs(pub Vec<(Sym, Value)>);

impl Attrs {
    /// Builds from unsorted pairs; nulls are dropped and the last of duplicate names wins.
    pub fn from_pairs(mut pairs: Vec<(Sym, Value)>) -> Attrs {
        pairs.retain(|(_, v)| !v.is_null());
        pairs.sort_by_key(|(k, _)| *k);
        let mut out: Vec<(Sym, Value)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match out.last_mut() {
                Some((lk, lv)) if *lk == k => *lv = v,
                _ => out.push((k, v)),
            }
        }
        Attrs(out)
    }

    /// The value of an attribute.
    pub fn get(&self, name: Sym) -> Option<&Value> {
        self.0
            .binary_search_by_key(&name, |(k, _)| *k)
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Sets (or, with `Null`, removes) an attribute.
    pub fn set(&mut self, name: Sym, value: Value) {
        match self.0.binary_search_by_key(&name, |(k, _)| *k) {
            Ok(i) if value.is_null() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value,
            Err(_) if value.is_null() => {}
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    /// Applies an attribute operation.
    pub fn apply(&mut self, name: Sym, op: &AttrOp) {
        let current = self.get(name).cloned().unwrap_or(Value::Null);
        self.set(name, apply_op(&current, op));
    }

    /// Whether both hold the same attributes with the same values, taking
    /// multi-valued attributes as sets (order and repeats do not count).
    pub fn same_as(&self, other: &Attrs) -> bool {
        self == other
            || (self.0.len() == other.0.len()
                && self
                    .0
                    .iter()
                    .zip(&other.0)
                    .all(|((ka, a), (kb, b))| ka == kb && same_value(a, b)))
    }

    /// Iterates the attributes.
    pub fn iter(&self) -> impl Iterator<Item = &(Sym, Value)> {
        self.0.iter()
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether two values are equal, multi-valued ones as sets.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::List(x), Value::List(y)) if a != b => as_set(x) == as_set(y),
        _ => a == b,
    }
}

/// A list's values as a set: sorted, without repeats. The sort is the
/// adaptive one, so a list that is already sorted costs one pass.
pub(crate) fn as_set(items: &[Value]) -> Vec<&Value> {
    let mut refs: Vec<&Value> = items.iter().collect();
    refs.sort();
    refs.dedup();
    refs
}

/// `value` with every DN item naming `old` (compared as DNs) replaced by
/// `new`; `None` when none does.
pub fn rename_dn(value: &Value, old: &str, new: &str) -> Option<Value> {
    let names = |v: &Value| matches!(v, Value::Str(s) if rules::dn::same(s, old));
    if !value.items().iter().any(names) {
        return None;
    }
    let one = |v: &Value| {
        if names(v) {
            Value::Str(new.to_owned())
        } else {
            v.clone()
        }
    };
    Some(match value {
        Value::List(items) => Value::list(items.iter().map(one)),
        v => one(v),
    })
}

/// The value an attribute has after `op` is applied to `current`.
pub fn apply_op(current: &Value, op: &AttrOp) -> Value {
    match op {
        AttrOp::Replace(v) => v.clone(),
        AttrOp::Clear => Value::Null,
        AttrOp::Add(values) => {
            let mut held: HashSet<&Value> = current.items().iter().collect();
            let added: Vec<Value> = values.iter().filter(|v| held.insert(*v)).cloned().collect();
            Value::list(current.items().iter().cloned().chain(added))
        }
        AttrOp::Remove(values) => {
            let gone: HashSet<&Value> = values.iter().collect();
            Value::list(
                current
                    .items()
                    .iter()
                    .filter(|v| !gone.contains(v))
                    .cloned(),
            )
        }
    }
}

/// How a connector-space object came to be linked to its metaverse object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkKind {
    /// An inbound join criterion matched.
    Joined,
    /// An inbound rule created the metaverse object from it.
    Projected,
    /// An outbound rule created it (or adopted a disconnector) for the metaverse object.
    Provisioned,
}

impl LinkKind {
    /// Whether the link makes the object a source of its metaverse object
    /// (as opposed to a target that sync provisioned).
    pub fn is_source(self) -> bool {
        matches!(self, LinkKind::Joined | LinkKind::Projected)
    }
}

/// A link from a connector-space object to its metaverse object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The metaverse object.
    pub mv: MvId,
    /// How the link was made.
    pub kind: LinkKind,
    /// The rule that made it.
    pub rule: Sym,
}

/// What a staged import changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportKind {
    /// The object is new to the connector space.
    Add,
    /// Its attributes or DN changed.
    Update,
    /// It is gone from the connected system.
    Delete,
}

/// A change that import staged and sync has not processed yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingImport {
    /// Add, update or delete.
    pub kind: ImportKind,
    /// The object's full new state (empty for a delete).
    pub attrs: Attrs,
    /// Its new DN.
    pub dn: Option<String>,
}

/// A change that sync staged and export has not applied yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingExport {
    /// Create the object with these attributes.
    Add {
        /// Every attribute of the new object; references as `Value::Ref(cs id)`.
        attrs: Attrs,
    },
    /// Change attributes and/or move the object.
    Update {
        /// The new DN, for a rename or move.
        new_dn: Option<String>,
        /// Attribute-level changes, sorted by attribute.
        changes: Vec<(Sym, AttrOp)>,
    },
    /// Delete the object.
    Delete,
}

impl PendingExport {
    /// A short name: add, update, rename, delete.
    pub fn kind_name(&self) -> &'static str {
        match self {
            PendingExport::Add { .. } => "add",
            PendingExport::Update {
                new_dn: Some(_), ..
            } => "rename",
            PendingExport::Update { .. } => "update",
            PendingExport::Delete => "delete",
        }
    }
}

/// Exported changes that no import has confirmed yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    /// The values the target should now hold (`Null`: cleared).
    pub attrs: Vec<(Sym, Value)>,
    /// The DN the target should now have.
    pub dn: Option<String>,
    /// The object was deleted.
    pub deleted: bool,
}

impl Escrow {
    /// True when nothing awaits confirmation.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.dn.is_none() && !self.deleted
    }
}

/// The lifecycle of a connector-space object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CsState {
    /// Seen by import (or added by export and confirmed).
    Present,
    /// Provisioned by sync; the connected system does not have it yet.
    Provisioned,
    /// Exported as an add; the next import should confirm it.
    Added,
    /// Deleted by export; the next full import should confirm its absence.
    Deleted,
    /// An add of a system-assigned anchor was sent and its answer never
    /// recorded (the process died, or the batch was interrupted): the object
    /// may exist. The next export looks it up (`Connector::find_added`)
    /// before sending the add again; an import that sees it makes it
    /// present, a full import that does not makes it provisioned again.
    InFlight,
}

impl CsState {
    /// Whether the connected system is not known to hold the object yet, so
    /// sync stages it as an add.
    pub fn awaits_add(self) -> bool {
        matches!(self, CsState::Provisioned | CsState::InFlight)
    }
}

/// An error recorded on one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectError {
    /// The run that hit it.
    pub run: u64,
    /// A stable code: `ambiguous-join`, `flow-error`, `export-error`, `exported-change-not-reimported`, ...
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// The connected system's own code, when it gave one.
    pub system_code: Option<String>,
}

/// A connector-space object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsObject {
    /// Its address.
    pub key: CsKey,
    /// Its identity in the connected system, once known.
    pub anchor: Option<String>,
    /// Its distinguished name, where the system has them.
    pub dn: Option<String>,
    /// Its object type.
    pub object_type: Sym,
    /// Where it is in its lifecycle.
    pub state: CsState,
    /// Attributes as last synchronized (confirmed by import, processed by sync).
    pub hologram: Attrs,
    /// A staged import, not yet synchronized.
    pub pending_import: Option<PendingImport>,
    /// A staged export, not yet applied.
    pub pending_export: Option<PendingExport>,
    /// Applied exports awaiting confirmation.
    pub escrow: Escrow,
    /// Its metaverse object, if joined, projected or provisioned.
    pub link: Option<Link>,
    /// Values fixed at provisioning (initial-only flows, unique values).
    pub sticky: Attrs,
    /// The last error on this object.
    pub error: Option<ObjectError>,
}

impl CsObject {
    /// A fresh object with nothing staged.
    pub fn new(key: CsKey, object_type: Sym, state: CsState) -> CsObject {
        CsObject {
            key,
            anchor: None,
            dn: None,
            object_type,
            state,
            hologram: Attrs::default(),
            pending_import: None,
            pending_export: None,
            escrow: Escrow::default(),
            link: None,
            sticky: Attrs::default(),
            error: None,
        }
    }

    /// What the connected system is known to hold: the latest imported state
    /// with exported-but-unconfirmed changes laid over it.
    pub fn known_attrs(&self) -> Attrs {
        let mut known = match &self.pending_import {
            Some(p) if p.kind != ImportKind::Delete => p.attrs.clone(),
            _ => self.hologram.clone(),
        };
        for (k, v) in &self.escrow.attrs {
            known.set(*k, v.clone());
        }
        known
    }

    /// One attribute of [`CsObject::known_attrs`], without copying the rest.
    pub fn known_attr(&self, attr: Sym) -> Option<&Value> {
        if let Ok(i) = self.escrow.attrs.binary_search_by_key(&attr, |(k, _)| *k) {
            return Some(&self.escrow.attrs[i].1).filter(|v| !v.is_null());
        }
        match &self.pending_import {
            Some(p) if p.kind != ImportKind::Delete => p.attrs.get(attr),
            _ => self.hologram.get(attr),
        }
    }

    /// Every value this object holds or will hold for `attr`, lower-cased:
    /// imported, staged, exported, pending add and sticky. Unique-value
    /// generation must avoid all of them.
    pub fn held_values(&self, attr: Sym) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut add = |v: Option<&Value>| {
            for item in v.map(Value::items).unwrap_or_default() {
                out.insert(item.to_string().to_lowercase());
            }
        };
        add(self.hologram.get(attr));
        add(self.sticky.get(attr));
        if let Some(p) = &self.pending_import {
            add(p.attrs.get(attr));
        }
        if let Some(PendingExport::Add { attrs }) = &self.pending_export {
            add(attrs.get(attr));
        }
        for (k, v) in &self.escrow.attrs {
            if *k == attr {
                add(Some(v));
            }
        }
        out
    }

    /// The DN the connected system is known to hold.
    pub fn known_dn(&self) -> Option<&str> {
        self.escrow
            .dn
            .as_deref()
            .or(self.pending_import.as_ref().and_then(|p| p.dn.as_deref()))
            .or(self.dn.as_deref())
    }
}

/// One metaverse attribute with its lineage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvAttr {
    /// The attribute.
    pub name: Sym,
    /// Its value (references as `Value::Ref(mv id)`).
    pub value: Value,
    /// The connector that supplied the winning value.
    pub connector: Sym,
    /// The rule whose flow supplied it.
    pub rule: Sym,
}

/// A metaverse object: one real-world identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvObject {
    /// Its id.
    pub id: MvId,
    /// Its type (`person`, `group`).
    pub object_type: Sym,
    /// Flowed attributes, sorted by name, with lineage.
    pub attrs: Vec<MvAttr>,
    /// Linked connector-space objects, sorted.
    pub links: Vec<CsKey>,
}

impl MvObject {
    /// The value of an attribute.
    pub fn get(&self, name: Sym) -> Option<&Value> {
        self.attrs
            .binary_search_by_key(&name, |a| a.name)
            .ok()
            .map(|i| &self.attrs[i].value)
    }

    /// The linked object in a connector, if any.
    pub fn link_in(&self, conn: Sym) -> Option<CsKey> {
        self.links.iter().copied().find(|k| k.conn == conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_known_attribute_agrees_with_the_whole_known_state() {
        let s = |t: &str| Value::Str(t.into());
        let mut cs = CsObject::new(
            CsKey {
                conn: Sym(1),
                id: 1,
            },
            Sym(2),
            CsState::Present,
        );
        cs.hologram = Attrs::from_pairs(vec![(Sym(3), s("a")), (Sym(4), s("b")), (Sym(5), s("c"))]);
        cs.escrow.attrs = vec![(Sym(4), s("exported")), (Sym(5), Value::Null)];
        for with_import in [false, true] {
            if with_import {
                cs.pending_import = Some(PendingImport {
                    kind: ImportKind::Update,
                    attrs: Attrs::from_pairs(vec![(Sym(3), s("imported")), (Sym(6), s("d"))]),
                    dn: None,
                });
            }
            let all = cs.known_attrs();
            for sym in (1..8).map(Sym) {
                assert_eq!(
                    cs.known_attr(sym),
                    all.get(sym),
                    "{sym:?} (import: {with_import})"
                );
            }
        }
    }
}
