//! Outbound: for one metaverse object and each target connector, compute
//! the desired target state, then provision, stage the diff as a pending
//! export, or deprovision.

use std::collections::BTreeMap;

use rules::{Deprovision, Flow, Value};

use super::{Failure, MvEnv, Syncer};
use crate::connector::AttrOp;
use crate::diff::{coerce, diff};
use crate::model::{
    Attrs, CsKey, CsObject, CsState, Escrow, LinkKind, MvId, MvObject, PendingExport, Sym,
};
use crate::setup::RuleModel;
use crate::store::{StoreError, Txn};

/// The marker of an outbound reference waiting for metaverse object `id` to
/// get an object in the target connector. Starts with NUL, which no anchor
/// or DN does.
pub(crate) fn waiting_marker(id: MvId) -> String {
    format!("\0mv{id}")
}

/// The metaverse id in a waiting marker.
pub(crate) fn waiting_mv(raw: &str) -> Option<MvId> {
    raw.strip_prefix("\0mv")?.parse().ok()
}

/// What a target object should look like.
#[derive(Debug, Default)]
pub(crate) struct Desired {
    /// Flowed attributes (`Null`: must be empty).
    pub attrs: BTreeMap<Sym, Value>,
    /// Initial-only attributes, applied at provisioning only.
    pub initial: BTreeMap<Sym, Value>,
    /// The DN from a `dn` flow.
    pub dn: Option<String>,
    /// A flow said `IgnoreObjectFlow`: nothing is staged or provisioned for
    /// the object by this sync.
    pub ignored: bool,
    /// The order key its unique values were chosen with (see
    /// [`super::env::order_key`]), when a unique flow ran.
    pub rank: Option<(String, MvId)>,
}

/// How references to connector-space objects are written for a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefForm {
    /// By anchor: the system has no DNs.
    Anchor,
    /// By the DN the object has in the system now (what export writes).
    Dn,
    /// By the DN the object will have once its pending rename is exported
    /// (what the diff and preview compare with, for systems that store
    /// references as text and so need the referrers updated with a rename).
    PendingDn,
}

impl RefForm {
    /// The form export writes references in.
    pub fn exported(info: &crate::connector::ConnectorInfo) -> RefForm {
        if info.has_dn {
            RefForm::Dn
        } else {
            RefForm::Anchor
        }
    }

    /// The form the diff and preview compare references in.
    pub fn planned(info: &crate::connector::ConnectorInfo) -> RefForm {
        match Self::exported(info) {
            RefForm::Dn if !info.rewrites_dn_references => RefForm::PendingDn,
            form => form,
        }
    }
}

/// The DN `cs` will have once its pending rename, if any, is exported.
pub(crate) fn pending_dn(cs: &CsObject) -> Option<&str> {
    match &cs.pending_export {
        Some(PendingExport::Update {
            new_dn: Some(d), ..
        }) => Some(d),
        _ => cs.dn.as_deref(),
    }
}

/// How a reference to connector-space object `id` is written in `conn`
/// (see [`RefForm`]). `None` while unknown.
pub(crate) fn reference_key(
    txn: &Txn<'_>,
    conn: Sym,
    form: RefForm,
    id: u64,
) -> Result<Option<String>, StoreError> {
    let Some(o) = txn.cs(CsKey { conn, id })? else {
        return Ok(None);
    };
    Ok(match form {
        RefForm::Anchor => o.anchor,
        RefForm::Dn => o.dn,
        RefForm::PendingDn => pending_dn(&o).map(str::to_owned),
    })
}

/// `value` with references to connector-space objects in `conn` written the
/// way the connected system writes them (unknown ones stay `Ref`).
pub(crate) fn translate(
    txn: &Txn<'_>,
    conn: Sym,
    form: RefForm,
    value: &Value,
) -> Result<Value, StoreError> {
    Ok(match value {
        Value::Ref(id) => reference_key(txn, conn, form, *id)?.map_or(Value::Ref(*id), Value::Str),
        Value::List(items) if items.iter().any(|v| matches!(v, Value::Ref(_))) => {
            let mut out = Vec::with_capacity(items.len());
            for v in items {
                out.push(translate(txn, conn, form, v)?);
            }
            Value::list(out)
        }
        other => other.clone(),
    })
}

/// An attribute operation with its values in the connected system's terms
/// (see [`translate`]).
pub(crate) fn translate_op(
    txn: &Txn<'_>,
    conn: Sym,
    form: RefForm,
    op: &AttrOp,
) -> Result<AttrOp, StoreError> {
    let all = |vs: &[Value]| {
        vs.iter()
            .map(|v| translate(txn, conn, form, v))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match op {
        AttrOp::Replace(v) => AttrOp::Replace(translate(txn, conn, form, v)?),
        AttrOp::Add(vs) => AttrOp::Add(all(vs)?),
        AttrOp::Remove(vs) => AttrOp::Remove(all(vs)?),
        AttrOp::Clear => AttrOp::Clear,
    })
}

impl Syncer<'_> {
    /// Brings every connector with outbound rules for `mv`'s type in step
    /// with it. `deleting`: the metaverse object is going away.
    pub(super) fn outbound(
        &mut self,
        txn: &mut Txn<'_>,
        mv: &mut MvObject,
        deleting: bool,
    ) -> Result<(), Failure> {
        for (conn, rules) in self.model.outbound_for(mv.object_type) {
            let mut scoped: Vec<&RuleModel> = Vec::new();
            if !deleting {
                let env = MvEnv::new(txn, mv, self.now);
                for r in &rules {
                    let ok = r.rule.in_scope(&env).map_err(|e| Failure::scope(r, e))?;
                    if ok {
                        scoped.push(r);
                    }
                }
            }
            let linked = mv.link_in(conn);
            match (scoped.is_empty(), linked) {
                (false, Some(k)) => {
                    let Some(own) = txn.cs(k)? else {
                        continue;
                    };
                    let type_name = self.store.name(own.object_type).to_string();
                    let desired = self.desired(
                        txn,
                        mv,
                        conn,
                        &type_name,
                        Some(&own),
                        scoped
                            .iter()
                            .map(|r| (*r, &r.rule.flows[..], &r.targets[..])),
                    )?;
                    if !desired.ignored {
                        self.stage(txn, k, &desired)?;
                    }
                }
                (false, None) => {
                    let mut provisioning = None;
                    for r in &scoped {
                        let env = MvEnv::new(txn, mv, self.now);
                        let holds =
                            r.rule
                                .provisions_for(&env)
                                .map_err(|e| match &r.rule.provision {
                                    rules::Provision::When(expr) => {
                                        Failure::eval(&r.rule.name, "provision", expr, e)
                                    }
                                    _ => Failure::object("flow-error", e.message),
                                })?;
                        if holds {
                            provisioning = Some(*r);
                            break;
                        }
                    }
                    if let Some(r) = provisioning {
                        let Some(type_name) = r.rule.cs_object_type.clone() else {
                            return Err(Failure::object(
                                "config",
                                format!(
                                    "rule '{}' provisions but names no cs_object_type",
                                    r.rule.name
                                ),
                            ));
                        };
                        let desired = self.desired(
                            txn,
                            mv,
                            conn,
                            &type_name,
                            None,
                            scoped
                                .iter()
                                .map(|r| (*r, &r.rule.flows[..], &r.targets[..])),
                        )?;
                        if !desired.ignored {
                            self.provision(txn, mv, conn, r, &type_name, &desired)?;
                        }
                    }
                }
                (true, Some(k)) => {
                    // The rule that provisioned (or adopted) it decides; an
                    // object another way linked goes by the first rule.
                    let link_rule = txn.cs(k)?.and_then(|o| o.link).map(|l| l.rule);
                    let rule = rules
                        .iter()
                        .find(|r| Some(r.name) == link_rule)
                        .unwrap_or(&rules[0]);
                    self.deprovision(txn, mv, rule, k, deleting)?
                }
                (true, None) => {}
            }
        }
        Ok(())
    }

    /// Evaluates flows (earlier rules win an attribute) into the target's
    /// terms. `own` is the linked target object, if there is one: its sticky
    /// values (initial-only and generated unique values) are reused, never
    /// regenerated, and an object that already exists never gets a unique
    /// value generated for it.
    fn desired<'r>(
        &mut self,
        txn: &mut Txn<'_>,
        mv: &MvObject,
        conn: Sym,
        type_name: &str,
        own: Option<&CsObject>,
        flows: impl Iterator<Item = (&'r RuleModel, &'r [Flow], &'r [Sym])>,
    ) -> Result<Desired, Failure> {
        let mut out = Desired::default();
        let mut waiting = Vec::new();
        let mut list: Vec<(&RuleModel, &Flow, &Sym)> = Vec::new();
        let mut reads_target = false;
        for (rule, flows, targets) in flows {
            reads_target |= rule.reads_target;
            list.extend(flows.iter().zip(targets).map(|(f, t)| (rule, f, t)));
        }
        if reads_target {
            // `target.x` reads what the flow to `x` chose: evaluate it first.
            // (A cycle is a configuration error `validate` reports.)
            let refs: Vec<&Flow> = list.iter().map(|(_, f, _)| *f).collect();
            if let Ok(order) = rules::order_flows(&refs) {
                list = order.into_iter().map(|i| list[i]).collect();
            }
        }
        // Only flows reading `target.` need the target's known state.
        let known = own.filter(|_| reads_target).map(CsObject::known_attrs);
        let mut rank = None;
        // Objects whose unique values this object takes: handed on only
        // when the object is not skipped (IgnoreObjectFlow).
        let mut victims = Vec::new();
        for (rule, flow, target) in list {
            if out.attrs.contains_key(target) || out.initial.contains_key(target) {
                continue;
            }
            if *target == self.model.dn_sym && out.dn.is_some() {
                continue;
            }
            let unique = rules::Rule::is_unique_flow(flow);
            if unique || flow.initial_only {
                if let Some(v) = own.and_then(|o| o.sticky.get(*target)) {
                    out.initial.insert(*target, v.clone());
                    continue;
                }
                if unique && own.is_some_and(|o| !o.state.awaits_add()) {
                    continue;
                }
            }
            let mut env = MvEnv::new(txn, mv, self.now);
            if reads_target {
                env.target = Some(super::env::TargetView {
                    computed: &out,
                    own,
                    known: known.as_ref(),
                    dn_sym: self.model.dn_sym,
                });
            }
            if unique {
                if rank.is_none() {
                    rank = Some(super::env::order_key(txn, mv)?);
                }
                env.unique = Some(super::env::UniqueCtx {
                    conns: &rule.unique_conns,
                    attr: *target,
                    own: own.map(|o| o.key),
                    rank: rank.as_ref().expect("set above"),
                    fresh: &self.fresh,
                    taken_from: Default::default(),
                });
            }
            let value = match flow.expr.eval(&env) {
                Ok(value) => value,
                // Not flowed: the target keeps what it holds.
                Err(e) if e.code == rules::functions::IGNORE_ATTRIBUTE_FLOW => {
                    if let Some(e) = env.take_failure() {
                        return Err(e.into());
                    }
                    continue;
                }
                Err(e) if e.code == rules::functions::IGNORE_OBJECT_FLOW => {
                    out.ignored = true;
                    return Ok(out);
                }
                Err(e) => {
                    return Err(Failure::eval(
                        &rule.rule.name,
                        &format!("flow to '{}'", flow.target),
                        &flow.expr,
                        e,
                    ))
                }
            };
            if let Some(e) = env.take_failure() {
                return Err(e.into());
            }
            let taken = env.unique.as_ref().map(|u| u.taken_from.take());
            victims.extend(taken.unwrap_or_default());
            let value = self.to_target_refs(txn, conn, value, &mut waiting)?;
            if *target == self.model.dn_sym {
                out.dn = (!value.is_null_or_empty()).then(|| value.to_string());
                continue;
            }
            let (ty, multi) = self.model.target_type(conn, type_name, &flow.target);
            let value = coerce(value, ty, multi);
            if flow.initial_only || unique {
                out.initial.insert(*target, value);
            } else {
                out.attrs.insert(*target, value);
            }
        }
        for id in waiting {
            txn.add_waiting(conn, &waiting_marker(id), mv.id)?;
        }
        self.victims.extend(victims);
        out.rank = rank;
        Ok(out)
    }

    /// Metaverse references → references to the referenced object's
    /// connector-space object in `conn`; those without one yet are dropped
    /// and recorded as waiting.
    fn to_target_refs(
        &self,
        txn: &Txn<'_>,
        conn: Sym,
        value: Value,
        waiting: &mut Vec<MvId>,
    ) -> Result<Value, StoreError> {
        if !value.items().iter().any(|v| matches!(v, Value::Ref(_))) {
            return Ok(value);
        }
        let mut out = Vec::new();
        for item in value.items() {
            match item {
                Value::Ref(mv) => match txn.mv(*mv)?.and_then(|m| m.link_in(conn)) {
                    Some(k) => out.push(Value::Ref(k.id)),
                    None => waiting.push(*mv),
                },
                other => out.push(other.clone()),
            }
        }
        Ok(match value {
            Value::List(_) => Value::list(out),
            _ => out.into_iter().next().unwrap_or(Value::Null),
        })
    }

    /// Stages the pending export that takes `k` from what it is known to
    /// hold to `desired`.
    fn stage(&mut self, txn: &mut Txn<'_>, k: CsKey, desired: &Desired) -> Result<(), Failure> {
        let Some(before) = txn.cs(k)? else {
            return Ok(());
        };
        let mut cs = before.clone();
        if cs.state == CsState::Deleted {
            // Deleted by an export, back in scope before any import confirmed
            // it: the system no longer has it, so it is added again.
            cs.state = CsState::Provisioned;
            cs.escrow = Escrow::default();
            cs.hologram = Attrs::default();
        }
        if cs.state.awaits_add() {
            // Values chosen now for an object that was never exported (after
            // it gave a unique value up to an earlier joiner) are fixed too.
            for (k, v) in &desired.initial {
                if cs.sticky.get(*k).is_none() {
                    cs.sticky.set(*k, v.clone());
                }
            }
            let attrs = self.add_attrs(&cs, desired);
            cs.anchor = self.provisional_anchor(k.conn, &cs, &attrs).or(cs.anchor);
            cs.dn = desired.dn.clone().or(cs.dn);
            cs.pending_export = Some(PendingExport::Add { attrs });
        } else {
            let form = self.model.ref_form(k.conn, true);
            let type_name = self.store.name(cs.object_type);
            let (model, store) = (self.model, self.store);
            let multi = |a: Sym| model.target_type(k.conn, &type_name, &store.name(a)).1;
            let conn_model = model.conn(k.conn);
            let dn_valued = |a: Sym| {
                conn_model.and_then(|c| c.reference_kind(&type_name, &store.name(a)))
                    == Some(crate::connector::RefKind::Dn)
            };
            let failure = std::cell::RefCell::new(None);
            let translate = |v: &Value| match translate(txn, k.conn, form, v) {
                Ok(t) => t,
                Err(e) => {
                    *failure.borrow_mut() = Some(e);
                    v.clone()
                }
            };
            let known = cs.known_attrs();
            let changes = diff(&desired.attrs, &known, &multi, &dn_valued, &translate);
            if let Some(e) = failure.into_inner() {
                return Err(e.into());
            }
            let new_dn = desired
                .dn
                .clone()
                .filter(|d| cs.known_dn().is_none_or(|k| !rules::dn::same(k, d)));
            cs.pending_export = if changes.is_empty() && new_dn.is_none() {
                None
            } else {
                Some(PendingExport::Update { new_dn, changes })
            };
        }
        if cs.pending_export != before.pending_export {
            self.log.record.counters.exports_staged += 1;
        }
        if let (RefForm::PendingDn, Some(link)) = (self.model.ref_form(k.conn, true), cs.link) {
            let moved = match (pending_dn(&before), pending_dn(&cs)) {
                (Some(a), Some(b)) => !rules::dn::same(a, b),
                _ => false,
            };
            if moved {
                self.renamed.push(link.mv);
            }
        }
        txn.save_cs(Some(&before), Some(&cs))?;
        Ok(())
    }

    /// The attributes of an add: flowed plus initial-only values (the ones
    /// fixed at provisioning win, so they are never regenerated).
    fn add_attrs(&self, cs: &CsObject, desired: &Desired) -> Attrs {
        let mut pairs: Vec<(Sym, Value)> =
            desired.attrs.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (k, v) in &desired.initial {
            pairs.push((*k, cs.sticky.get(*k).cloned().unwrap_or_else(|| v.clone())));
        }
        Attrs::from_pairs(pairs)
    }

    fn provisional_anchor(&self, conn: Sym, cs: &CsObject, attrs: &Attrs) -> Option<String> {
        let anchor_attr = self
            .model
            .conn(conn)?
            .anchor_attribute(&self.store.name(cs.object_type))?
            .to_owned();
        let sym = self.store.lookup(&anchor_attr)?;
        attrs
            .get(sym)
            .filter(|v| !v.is_null_or_empty())
            .map(|v| v.to_string())
    }

    /// Creates a target object for `mv` in `conn`, or adopts the unlinked
    /// object that already holds its anchor (a rehire, a re-run after a crash).
    fn provision(
        &mut self,
        txn: &mut Txn<'_>,
        mv: &mut MvObject,
        conn: Sym,
        rule: &RuleModel,
        type_name: &str,
        desired: &Desired,
    ) -> Result<(), Failure> {
        let type_sym = self.store.intern(type_name);
        let key = CsKey {
            conn,
            id: self.store.alloc_cs_id(),
        };
        let mut cs = CsObject::new(key, type_sym, CsState::Provisioned);
        cs.sticky = Attrs::from_pairs(
            desired
                .initial
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
        );
        let attrs = self.add_attrs(&cs, desired);
        let anchor = self.provisional_anchor(conn, &cs, &attrs);
        let existing = match &anchor {
            Some(a) => txn.by_anchor(conn, a)?,
            None => match &desired.dn {
                Some(dn) => txn.by_dn(conn, dn)?,
                None => None,
            },
        };
        if let Some(existing) = existing {
            let Some(before) = txn.cs(existing)? else {
                return Ok(());
            };
            if let Some(link) = before.link {
                return Err(Failure::object(
                    "provision-conflict",
                    format!(
                        "cannot provision '{}' in connector '{}': object {} is already linked to metaverse object mv:{}",
                        anchor.or(desired.dn.clone()).unwrap_or_default(),
                        self.store.name(conn),
                        existing.id,
                        link.mv
                    ),
                ));
            }
            let mut adopted = before.clone();
            self.attach(&mut adopted, mv, LinkKind::Provisioned, rule.name);
            if adopted.sticky.is_empty() {
                adopted.sticky = cs.sticky;
            }
            txn.save_cs(Some(&before), Some(&adopted))?;
            self.log.record.counters.provisioned += 1;
            return self.stage(txn, existing, desired);
        }
        if let (Some(a), Some(dn)) = (&anchor, &desired.dn) {
            // A new anchor, but a DN another object holds: the system
            // would refuse the add, and two objects cannot share a DN here.
            if let Some(holder) = txn.by_dn(conn, dn)? {
                let held_by = txn.cs(holder)?.and_then(|o| o.anchor).map_or_else(
                    || format!("cs:{}", holder.id),
                    |h| format!("cs:{} ({h})", holder.id),
                );
                return Err(Failure::object(
                    "provision-conflict",
                    format!(
                        "cannot provision '{a}' in connector '{}': its DN '{dn}' is held by {held_by}; make the DN flow unique (add the employee id to the CN, say)",
                        self.store.name(conn)
                    ),
                ));
            }
        }
        cs.anchor = anchor;
        cs.dn = desired.dn.clone();
        cs.pending_export = Some(PendingExport::Add { attrs });
        self.attach(&mut cs, mv, LinkKind::Provisioned, rule.name);
        if !desired.initial.is_empty() {
            // Its unique values may go to an earlier joiner of this step.
            let rank = match &desired.rank {
                Some(rank) => rank.clone(),
                None => super::env::order_key(txn, mv)?,
            };
            self.fresh.insert(key, rank);
        }
        txn.save_cs(None, Some(&cs))?;
        self.log.record.counters.provisioned += 1;
        self.log.record.counters.exports_staged += 1;
        Ok(())
    }

    /// The metaverse object left the scope of every outbound rule of this
    /// connector (or is being deleted): delete, disconnect or disable.
    fn deprovision(
        &mut self,
        txn: &mut Txn<'_>,
        mv: &mut MvObject,
        rule: &RuleModel,
        k: CsKey,
        deleting: bool,
    ) -> Result<(), Failure> {
        let Some(before) = txn.cs(k)? else {
            return Ok(());
        };
        let (action, disable_targets) = rule.deprovision_action(deleting);
        let action = if rule.rule.skip_out_of_scope_deletions && !deleting {
            &Deprovision::Disconnect
        } else {
            action
        };
        // A deleted metaverse object keeps no links.
        let action = match action {
            Deprovision::Keep if deleting => &Deprovision::Disconnect,
            a => a,
        };
        let mut cs = before.clone();
        let unlink = |cs: &mut CsObject, mv: &mut MvObject| {
            cs.link = None;
            mv.links.retain(|l| *l != k);
        };
        match action {
            Deprovision::Delete => {
                unlink(&mut cs, mv);
                if cs.state == CsState::Provisioned {
                    // Never exported: the connected system never had it.
                    txn.save_cs(Some(&before), None)?;
                    self.log.record.counters.deprovisioned += 1;
                    return Ok(());
                }
                cs.pending_export = Some(PendingExport::Delete);
            }
            Deprovision::Disconnect => {
                unlink(&mut cs, mv);
                cs.pending_export = None;
            }
            Deprovision::Keep => {
                if cs.state == CsState::Provisioned {
                    // Never exported: there is nothing to keep.
                    unlink(&mut cs, mv);
                    txn.save_cs(Some(&before), None)?;
                    self.log.record.counters.deprovisioned += 1;
                    return Ok(());
                }
                // Linked and left as it is: what this rule had staged is dropped.
                cs.pending_export = None;
            }
            Deprovision::Disable(flows) => {
                txn.save_cs(Some(&before), Some(&cs))?;
                let type_name = self.store.name(cs.object_type).to_string();
                let desired = self.desired(
                    txn,
                    mv,
                    k.conn,
                    &type_name,
                    Some(&cs),
                    std::iter::once((rule, &flows[..], disable_targets)),
                )?;
                if desired.ignored {
                    // Skipping a disable would leave the account enabled
                    // (and, on deletion, unlinked): never silently.
                    return Err(Failure::object(
                        "flow-error",
                        format!(
                            "rule '{}': a disable flow said IgnoreObjectFlow; deprovisioning cannot be skipped",
                            rule.rule.name
                        ),
                    ));
                }
                self.stage(txn, k, &desired)?;
                if deleting {
                    let Some(b2) = txn.cs(k)? else { return Ok(()) };
                    let mut c2 = b2.clone();
                    unlink(&mut c2, mv);
                    txn.save_cs(Some(&b2), Some(&c2))?;
                }
                self.log.record.counters.deprovisioned +=
                    u64::from(before.pending_export != txn.cs(k)?.and_then(|o| o.pending_export));
                return Ok(());
            }
        }
        if cs != before {
            self.log.record.counters.deprovisioned += 1;
        }
        if cs.pending_export != before.pending_export && cs.pending_export.is_some() {
            self.log.record.counters.exports_staged += 1;
        }
        txn.save_cs(Some(&before), Some(&cs))?;
        Ok(())
    }
}
