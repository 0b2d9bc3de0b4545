//! `mvsync plan`: what a changed configuration would do, computed without
//! writing the store.
//!
//! Two what-if stores ([`Store::what_if`]) read the committed store and keep
//! their writes in memory. In one, every connector is fully synchronized
//! under the current rules; in the other, under the new rules (sources —
//! connectors with inbound rules — first, then the others). The plan is the
//! difference between the two: metaverse attributes, and the pending exports
//! of each target connector as `inspect::pending_changes` (the preview)
//! shows them. Comparing two full syncs rather than the store itself keeps
//! staged imports and stale state out of the answer: only the rule change
//! differs between the two sides.
//!
//! Invariant: nothing here writes the store the engine was opened on.

use std::collections::{BTreeMap, BTreeSet};

use rules::Value;
use serde::Serialize;

use crate::history::{self, RunLog, StepKind};
use crate::inspect::{object_label, pending_changes, value_json, PendingChange};
use crate::model::{CsKey, MvObject, Sym};
use crate::setup::{EngineConfig, Model};
use crate::store::{keys, Store, StoreError, Txn};
use crate::sync::Syncer;
use crate::{Engine, EngineError};

pub(crate) fn json_value<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    value_json(v).serialize(s)
}

/// One attribute that differs: its value under the current rules and
/// under the new ones (`null`: absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanAttribute {
    /// The attribute.
    pub name: String,
    /// Under the current rules.
    #[serde(serialize_with = "json_value")]
    pub old: Value,
    /// Under the new rules.
    #[serde(serialize_with = "json_value")]
    pub new: Value,
}

/// A metaverse object that the new rules would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MvDelta {
    /// `mv:<id>` for an object already in the store; for one that only a
    /// what-if sync creates, its first source (`hr:E1001`), since its id
    /// may differ between the two computations.
    pub object: String,
    /// Its type.
    pub object_type: String,
    /// `add` (only under the new rules), `update` (on both sides, with
    /// different attributes), or `delete` (only under the current rules).
    pub operation: &'static str,
    /// Its sources (`connector:object`), under the new rules when it exists there.
    pub sources: Vec<String>,
    /// The attributes that differ.
    pub attributes: Vec<PlanAttribute>,
}

/// A pending export that the new rules would change, for one object of a
/// target connector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportDelta {
    /// The connector.
    pub connector: String,
    /// The object: anchor, else DN (as preview names it).
    pub object: String,
    /// Its object type.
    pub object_type: String,
    /// The pending export under the new rules: `add`, `update`, `rename`,
    /// `delete`, or `none`.
    pub operation: &'static str,
    /// The pending export under the current rules (usually `none` when the
    /// store is in step with them).
    pub current_operation: &'static str,
    /// Its DN now.
    pub dn: Option<String>,
    /// Its DN after a rename under the new rules.
    pub new_dn: Option<String>,
    /// Its DN after a rename under the current rules.
    pub current_new_dn: Option<String>,
    /// Attributes whose exported value differs: `old` is what the target
    /// holds after an export under the current rules, `new` under the new ones.
    pub attributes: Vec<PlanAttribute>,
}

/// A per-object sync error that one side has and the other has not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PlanError {
    /// The connector being synchronized.
    pub connector: String,
    /// The object (anchor, DN, or `mv:<id>`).
    pub identifier: String,
    /// The error code.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// What a configuration change would do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Notes about the comparison (a new configuration that differs in more
    /// than rules, for instance).
    pub warnings: Vec<String>,
    /// Metaverse objects that differ, by object.
    pub metaverse: Vec<MvDelta>,
    /// Pending exports that differ, by connector and object.
    pub exports: Vec<ExportDelta>,
    /// Per-object errors under the new rules that the current rules do not have.
    pub errors: Vec<PlanError>,
    /// Per-object errors under the current rules that the new rules do not have.
    pub resolved_errors: Vec<PlanError>,
}

impl Engine {
    /// Recomputes the metaverse and the pending exports under `new` and
    /// under the current configuration, each in a what-if copy of the
    /// store, and returns the difference. The store is not written.
    ///
    /// Memory: each what-if copy holds every object its full sync rewrites,
    /// so a change that touches every object costs about the size of the
    /// metaverse and the touched connector spaces, twice.
    pub fn plan(&self, new: &EngineConfig) -> Result<Plan, EngineError> {
        let now = (self.clock)();
        let current = self.store.what_if()?;
        let current_errors = sync_all(&current, &self.model, now)?;
        // An engine over the second copy: the new rules resolved against
        // it, its join and other indexes brought in step with them there.
        let proposed = Engine::new(self.store.what_if()?, new, BTreeMap::new())?;
        let proposed_errors = sync_all(&proposed.store, &proposed.model, now)?;

        let mut warnings = Vec::new();
        let old_conns: BTreeSet<String> = self
            .model
            .conns
            .keys()
            .map(|s| self.store.name(*s).to_string())
            .collect();
        let new_conns: BTreeSet<String> = new.connectors.keys().cloned().collect();
        if old_conns != new_conns {
            warnings.push(format!(
                "the new configuration's connectors ({}) differ from the current ones ({}); the plan compares them on the current store",
                new_conns.iter().cloned().collect::<Vec<_>>().join(", "),
                old_conns.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }

        let sides = Sides {
            real: &self.store,
            current: (&current, &self.model),
            proposed: (&proposed.store, &proposed.model),
        };
        let metaverse = sides.metaverse()?;
        let exports = sides.exports()?;
        let (errors, resolved_errors) = differences(current_errors, proposed_errors);
        Ok(Plan {
            warnings,
            metaverse,
            exports,
            errors,
            resolved_errors,
        })
    }
}

/// The order a what-if computation synchronizes connectors in: sources (in
/// the order their inbound rules appear), then the others by name.
pub(crate) fn sync_order(store: &Store, model: &Model) -> Vec<Sym> {
    let mut order: Vec<Sym> = Vec::new();
    for r in &model.inbound {
        if model.conns.contains_key(&r.conn) && !order.contains(&r.conn) {
            order.push(r.conn);
        }
    }
    let mut rest: Vec<(String, Sym)> = model
        .conns
        .keys()
        .filter(|s| !order.contains(s))
        .map(|s| (store.name(*s).to_string(), *s))
        .collect();
    rest.sort();
    order.extend(rest.into_iter().map(|(_, s)| s));
    order
}

/// Full sync of every connector on a what-if store; the per-object errors met.
fn sync_all(store: &Store, model: &Model, now: i64) -> Result<Vec<PlanError>, StoreError> {
    let mut errors = Vec::new();
    for conn in sync_order(store, model) {
        let name = store.name(conn).to_string();
        let mut log = RunLog::start(store, None, StepKind::FullSync, &name, now)?;
        let mut syncer = Syncer::new(store, model, &mut log, now);
        // A plan reports every deletion; it deletes nothing for real.
        syncer.deletion_limit = usize::MAX;
        syncer.run(conn, true).map_err(|e| match e {
            crate::EngineError::Store(e) => e,
            other => StoreError::Corrupt(other.to_string()),
        })?;
        if let Some((_, found)) = history::run(store, log.id())? {
            errors.extend(found.into_iter().map(|e| PlanError {
                connector: name.clone(),
                identifier: e.identifier,
                code: e.code,
                message: e.message,
            }));
        }
    }
    Ok(errors)
}

/// Errors only on the proposed side, and errors only on the current side.
fn differences(
    current: Vec<PlanError>,
    proposed: Vec<PlanError>,
) -> (Vec<PlanError>, Vec<PlanError>) {
    let current: BTreeSet<PlanError> = current.into_iter().collect();
    let proposed: BTreeSet<PlanError> = proposed.into_iter().collect();
    (
        proposed.difference(&current).cloned().collect(),
        current.difference(&proposed).cloned().collect(),
    )
}

/// The store on disk and the two what-if computations over it.
struct Sides<'a> {
    real: &'a Store,
    current: (&'a Store, &'a Model),
    proposed: (&'a Store, &'a Model),
}

/// A metaverse object as the plan compares it.
struct MvSide {
    object_type: String,
    sources: Vec<String>,
    attrs: BTreeMap<String, Value>,
}

impl Sides<'_> {
    /// How a metaverse object is named in both computations: its id when
    /// the store already has it (ids of existing objects never change),
    /// else its first source.
    fn mv_key(&self, real: &Txn<'_>, id: u64, sources: &[String]) -> Result<String, StoreError> {
        Ok(if real.mv(id)?.is_some() {
            format!("mv:{id}")
        } else {
            sources
                .first()
                .cloned()
                .unwrap_or_else(|| format!("new mv:{id}"))
        })
    }

    fn mv_side(store: &Store, txn: &Txn<'_>, mv: &MvObject) -> Result<MvSide, StoreError> {
        let mut sources = Vec::new();
        for k in &mv.links {
            if let Some(cs) = txn.cs(*k)? {
                if cs.link.is_some_and(|l| l.mv == mv.id && l.kind.is_source()) {
                    sources.push(format!("{}:{}", store.name(k.conn), object_label(&cs)));
                }
            }
        }
        sources.sort();
        Ok(MvSide {
            object_type: store.name(mv.object_type).to_string(),
            sources,
            attrs: Self::mv_attrs(store, mv),
        })
    }

    fn mv_attrs(store: &Store, mv: &MvObject) -> BTreeMap<String, Value> {
        mv.attrs
            .iter()
            .map(|a| (store.name(a.name).to_string(), a.value.clone()))
            .collect()
    }

    /// The metaverse objects that differ. Objects the store already has
    /// keep their ids on both sides and are compared id by id, streaming;
    /// only objects that a what-if sync creates are held, by first source.
    fn metaverse(&self) -> Result<Vec<MvDelta>, StoreError> {
        let real = self.real.begin();
        let exists =
            |id: u64| -> Result<bool, StoreError> { Ok(real.get_raw(&keys::mv(id))?.is_some()) };
        let (current, proposed) = (self.current.0, self.proposed.0);
        let (ctx, ptx) = (current.begin(), proposed.begin());
        let mut out = Vec::new();
        let mut created: BTreeMap<String, MvSide> = BTreeMap::new();
        current.for_each_prefix(&[keys::tag::MV], |k, v| {
            let mv = current.decode_mv(k, v)?;
            if !exists(mv.id)? {
                let side = Self::mv_side(current, &ctx, &mv)?;
                created.insert(self.mv_key(&real, mv.id, &side.sources)?, side);
                return Ok(());
            }
            match ptx.mv(mv.id)? {
                Some(new) => {
                    let attributes = attribute_deltas(
                        &Self::mv_attrs(current, &mv),
                        &Self::mv_attrs(proposed, &new),
                    );
                    if !attributes.is_empty() {
                        let side = Self::mv_side(proposed, &ptx, &new)?;
                        out.push(MvDelta {
                            object: format!("mv:{}", mv.id),
                            object_type: side.object_type,
                            operation: "update",
                            sources: side.sources,
                            attributes,
                        });
                    }
                }
                None => {
                    let side = Self::mv_side(current, &ctx, &mv)?;
                    out.push(MvDelta {
                        object: format!("mv:{}", mv.id),
                        attributes: attribute_deltas(&side.attrs, &BTreeMap::new()),
                        object_type: side.object_type,
                        operation: "delete",
                        sources: side.sources,
                    });
                }
            }
            Ok(())
        })?;
        proposed.for_each_prefix(&[keys::tag::MV], |k, v| {
            let mv = proposed.decode_mv(k, v)?;
            if exists(mv.id)? && ctx.get_raw(&keys::mv(mv.id))?.is_some() {
                return Ok(()); // compared above
            }
            let new = Self::mv_side(proposed, &ptx, &mv)?;
            let key = self.mv_key(&real, mv.id, &new.sources)?;
            let (operation, old) = match created.remove(&key) {
                Some(old) => ("update", old.attrs),
                None => ("add", BTreeMap::new()),
            };
            let attributes = attribute_deltas(&old, &new.attrs);
            if !attributes.is_empty() {
                out.push(MvDelta {
                    object: key,
                    object_type: new.object_type,
                    operation,
                    sources: new.sources,
                    attributes,
                });
            }
            Ok(())
        })?;
        for (key, old) in created {
            out.push(MvDelta {
                object: key,
                attributes: attribute_deltas(&old.attrs, &BTreeMap::new()),
                object_type: old.object_type,
                operation: "delete",
                sources: old.sources,
            });
        }
        out.sort_by(|a, b| a.object.cmp(&b.object));
        Ok(out)
    }

    /// Every pending export of a what-if store, keyed by connector and object.
    fn pending(
        &self,
        (store, model): (&Store, &Model),
    ) -> Result<BTreeMap<(String, String), PendingChange>, StoreError> {
        let conns: Vec<Sym> = model.conns.keys().copied().collect();
        let real = self.real.begin();
        let txn = store.begin();
        let mut out = BTreeMap::new();
        for change in pending_changes(store, model, &conns)? {
            // An object named only by its id is new in this computation:
            // name it by its metaverse object instead, which both sides share.
            let new_id = match change
                .object
                .strip_prefix("cs:")
                .and_then(|id| id.parse::<u64>().ok())
            {
                Some(id) => match self.real.lookup(&change.connector) {
                    Some(conn) => real.cs(CsKey { conn, id })?.is_none(),
                    None => true,
                },
                None => false,
            };
            let object = match change.mv.filter(|_| new_id) {
                Some(mv) => match txn.mv(mv)? {
                    Some(m) => {
                        let side = Self::mv_side(store, &txn, &m)?;
                        format!("new object for {}", self.mv_key(&real, mv, &side.sources)?)
                    }
                    None => change.object.clone(),
                },
                None => change.object.clone(),
            };
            out.insert((change.connector.clone(), object), change);
        }
        Ok(out)
    }

    fn exports(&self) -> Result<Vec<ExportDelta>, StoreError> {
        let mut current = self.pending(self.current)?;
        let proposed = self.pending(self.proposed)?;
        let mut out = Vec::new();
        for (key, new) in &proposed {
            let old = current.remove(key);
            out.extend(export_delta(&key.1, old.as_ref(), Some(new)));
        }
        for (key, old) in &current {
            out.extend(export_delta(&key.1, Some(old), None));
        }
        out.sort_by(|a, b| (&a.connector, &a.object).cmp(&(&b.connector, &b.object)));
        Ok(out)
    }
}

pub(crate) fn attribute_deltas(
    old: &BTreeMap<String, Value>,
    new: &BTreeMap<String, Value>,
) -> Vec<PlanAttribute> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (o, n) = (
                old.get(name).cloned().unwrap_or_default(),
                new.get(name).cloned().unwrap_or_default(),
            );
            (o != n).then(|| PlanAttribute {
                name: name.clone(),
                old: o,
                new: n,
            })
        })
        .collect()
}

/// The attributes a pending export touches: what the target holds before
/// it and after it.
fn touched(change: Option<&PendingChange>) -> BTreeMap<&str, (&Value, &Value)> {
    let mut out: BTreeMap<&str, (&Value, &Value)> = BTreeMap::new();
    let Some(change) = change.filter(|c| c.operation != "delete") else {
        return out;
    };
    for a in &change.attributes {
        // A multi-valued attribute may change twice (add, then remove):
        // the first change's old value and the last one's new value.
        out.entry(&a.name).or_insert((&a.old, &a.new)).1 = &a.new;
    }
    out
}

/// How the pending export of one object differs between the two sides.
fn export_delta(
    object: &str,
    old: Option<&PendingChange>,
    new: Option<&PendingChange>,
) -> Option<ExportDelta> {
    let any = new.or(old)?;
    let operation = new.map_or("none", |c| c.operation);
    let current_operation = old.map_or("none", |c| c.operation);
    let (a, b) = (touched(old), touched(new));
    let mut attributes = Vec::new();
    if operation != "delete" {
        let names: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
        for name in names {
            // What the target holds after an export on each side: that
            // side's new value, else (it does not touch the attribute) what
            // the target holds today, as the other side saw it.
            let under_current = a.get(name).map(|t| t.1).or(b.get(name).map(|t| t.0));
            let under_new = b.get(name).map(|t| t.1).or(a.get(name).map(|t| t.0));
            if let (Some(o), Some(n)) = (under_current, under_new) {
                if o != n {
                    attributes.push(PlanAttribute {
                        name: name.to_owned(),
                        old: o.clone(),
                        new: n.clone(),
                    });
                }
            }
        }
    }
    let new_dn = new.and_then(|c| c.new_dn.clone());
    let current_new_dn = old.and_then(|c| c.new_dn.clone());
    if operation == current_operation && new_dn == current_new_dn && attributes.is_empty() {
        return None;
    }
    Some(ExportDelta {
        connector: any.connector.clone(),
        object: object.to_owned(),
        object_type: any.object_type.clone(),
        operation,
        current_operation,
        dn: any.dn.clone(),
        new_dn,
        current_new_dn,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::AttributeChange;

    fn s(v: &str) -> Value {
        Value::from(v)
    }

    fn change(operation: &'static str, attrs: &[(&str, Value, Value)]) -> PendingChange {
        PendingChange {
            connector: "app".into(),
            object: "e1".into(),
            object_type: "account".into(),
            operation,
            dn: None,
            new_dn: None,
            attributes: attrs
                .iter()
                .map(|(n, o, v)| AttributeChange {
                    name: (*n).into(),
                    op: "set",
                    old: o.clone(),
                    new: v.clone(),
                })
                .collect(),
            mv: Some(1),
        }
    }

    fn attr(name: &str, old: Value, new: Value) -> PlanAttribute {
        PlanAttribute {
            name: name.into(),
            old,
            new,
        }
    }

    #[test]
    fn an_export_only_the_new_rules_stage_is_shown_as_it_is() {
        let new = change("update", &[("displayName", s("Ada"), s("ADA"))]);
        let d = export_delta("e1", None, Some(&new)).expect("a delta");
        assert_eq!((d.operation, d.current_operation), ("update", "none"));
        assert_eq!(d.attributes, [attr("displayName", s("Ada"), s("ADA"))]);
    }

    #[test]
    fn the_same_export_on_both_sides_is_no_change() {
        let c = change("update", &[("department", s("R&D"), s("Sales"))]);
        assert_eq!(export_delta("e1", Some(&c), Some(&c)), None);
    }

    #[test]
    fn differing_exports_compare_what_the_target_ends_up_holding() {
        // Current rules: a pending department change; new rules: the same
        // change plus an upper-cased display name.
        let old = change("update", &[("department", s("R&D"), s("Sales"))]);
        let new = change(
            "update",
            &[
                ("department", s("R&D"), s("Sales")),
                ("displayName", s("Ada"), s("ADA")),
            ],
        );
        let d = export_delta("e1", Some(&old), Some(&new)).expect("a delta");
        assert_eq!((d.operation, d.current_operation), ("update", "update"));
        assert_eq!(d.attributes, [attr("displayName", s("Ada"), s("ADA"))]);
        // And the other way round: the new rules drop a pending change.
        let d = export_delta("e1", Some(&new), Some(&old)).expect("a delta");
        assert_eq!(d.attributes, [attr("displayName", s("ADA"), s("Ada"))]);
    }

    #[test]
    fn a_delete_lists_no_attributes_and_a_rename_shows_its_dn() {
        let old = change("update", &[("displayName", s("Ada"), s("ADA"))]);
        let d = export_delta("e1", Some(&old), Some(&change("delete", &[]))).expect("delta");
        assert_eq!((d.operation, d.current_operation), ("delete", "update"));
        assert!(d.attributes.is_empty());

        let mut renamed = change("rename", &[]);
        renamed.new_dn = Some("CN=Ada,OU=New".into());
        let d = export_delta("e1", None, Some(&renamed)).expect("delta");
        assert_eq!(d.new_dn.as_deref(), Some("CN=Ada,OU=New"));
        assert_eq!(d.current_new_dn, None);
    }

    #[test]
    fn two_changes_of_one_multi_valued_attribute_are_one_difference() {
        let new = change(
            "update",
            &[
                (
                    "member",
                    Value::list([s("a"), s("b")]),
                    Value::list([s("a"), s("b"), s("c")]),
                ),
                (
                    "member",
                    Value::list([s("a"), s("b"), s("c")]),
                    Value::list([s("a"), s("c")]),
                ),
            ],
        );
        let d = export_delta("g1", None, Some(&new)).expect("delta");
        assert_eq!(
            d.attributes,
            [attr(
                "member",
                Value::list([s("a"), s("b")]),
                Value::list([s("a"), s("c")])
            )]
        );
    }

    #[test]
    fn metaverse_attributes_differ_by_value_and_by_presence() {
        let old = BTreeMap::from([("a".to_owned(), s("1")), ("b".to_owned(), s("2"))]);
        let new = BTreeMap::from([("a".to_owned(), s("1")), ("c".to_owned(), s("3"))]);
        assert_eq!(
            attribute_deltas(&old, &new),
            [
                attr("b", s("2"), Value::Null),
                attr("c", Value::Null, s("3"))
            ]
        );
    }
}
