//! Inbound: scoping, join, projection, and the import attribute flow with
//! precedence that derives a metaverse object from its sources.

use std::collections::BTreeMap;

use rules::{NullHandling, Value};

use super::{CsEnv, Failure, Syncer};
use crate::model::{CsObject, LinkKind, MvAttr, MvObject, Sym};
use crate::setup::{Model, RuleModel};
use crate::store::{Store, StoreError, Txn};

/// One source's offer of a value for a metaverse attribute.
#[derive(Debug, Clone)]
pub(crate) struct Contribution {
    pub attr: Sym,
    pub precedence: i64,
    /// Position of the rule in the configuration: breaks precedence ties.
    pub order: usize,
    pub value: Value,
    pub connector: Sym,
    pub rule: Sym,
    pub authoritative_null: bool,
}

/// Picks each attribute's winner: the lowest precedence that supplies a
/// value, unless a lower one's null is authoritative.
pub(crate) fn winners(contributions: &[Contribution]) -> Vec<MvAttr> {
    let mut by_attr: BTreeMap<Sym, Vec<&Contribution>> = BTreeMap::new();
    for c in contributions {
        by_attr.entry(c.attr).or_default().push(c);
    }
    let mut out = Vec::new();
    for (attr, mut offers) in by_attr {
        offers.sort_by_key(|c| (c.precedence, c.order));
        let winner = offers
            .into_iter()
            .find(|c| !c.value.is_null_or_empty() || c.authoritative_null);
        if let Some(c) = winner.filter(|c| !c.value.is_null_or_empty()) {
            out.push(MvAttr {
                name: attr,
                value: c.value.clone(),
                connector: c.connector,
                rule: c.rule,
            });
        }
    }
    out
}

impl Syncer<'_> {
    /// Scope, join, projection or disconnection of one object (the caller saves it).
    pub(super) fn inbound(&mut self, txn: &mut Txn<'_>, cs: &mut CsObject) -> Result<(), Failure> {
        let type_name = self.store.name(cs.object_type);
        let mut in_scope: Vec<&RuleModel> = Vec::new();
        {
            let env = CsEnv::new(txn, self.model, cs, &type_name, self.now);
            for r in self.model.inbound_for(cs.key.conn, cs.object_type) {
                let ok = r.rule.in_scope(&env).map_err(|e| Failure::scope(r, e))?;
                if let Some(e) = env.take_failure() {
                    return Err(e.into());
                }
                if ok {
                    in_scope.push(r);
                }
            }
        }
        match cs.link {
            None if !in_scope.is_empty() && cs.state == crate::model::CsState::Present => {
                if let Some((mv, rule)) = self.find_join(txn, cs, &type_name, &in_scope)? {
                    let Some(mv_before) = txn.mv(mv)? else {
                        return Ok(());
                    };
                    let mut mv_after = mv_before.clone();
                    // An object provisioned for it in this connector and never
                    // exported gives way to the one that exists.
                    if let Some(placeholder) = placeholder_in(txn, &mv_before, cs.key.conn)? {
                        mv_after.links.retain(|k| *k != placeholder.key);
                        txn.save_cs(Some(&placeholder), None)?;
                    }
                    self.attach(cs, &mut mv_after, LinkKind::Joined, rule);
                    txn.save_mv(Some(&mv_before), Some(&mv_after))?;
                    self.log.record.counters.joins += 1;
                } else if let Some(r) = in_scope.iter().find(|r| r.rule.project) {
                    let mut mv = MvObject {
                        id: self.store.alloc_mv_id(),
                        object_type: r.mv_type,
                        attrs: Vec::new(),
                        links: Vec::new(),
                    };
                    self.attach(cs, &mut mv, LinkKind::Projected, r.name);
                    txn.save_mv(None, Some(&mv))?;
                    self.log.record.counters.projections += 1;
                }
            }
            Some(link) if link.kind.is_source() && in_scope.is_empty() => {
                self.detach(txn, cs, link.mv)?;
                self.log.record.counters.disconnects += 1;
            }
            _ => {}
        }
        Ok(())
    }

    /// Ordered join: the first criterion with exactly one candidate joins;
    /// more than one candidate is an ambiguous-join error, never a guess.
    fn find_join(
        &self,
        txn: &Txn<'_>,
        cs: &CsObject,
        type_name: &str,
        in_scope: &[&RuleModel],
    ) -> Result<Option<(u64, Sym)>, Failure> {
        let env = CsEnv::new(txn, self.model, cs, type_name, self.now);
        for r in in_scope {
            for (i, criterion) in r.rule.join.iter().enumerate() {
                let value = criterion.cs.eval(&env).map_err(|e| {
                    Failure::eval(
                        &r.rule.name,
                        &format!("join criterion {}", i + 1),
                        &criterion.cs,
                        e,
                    )
                })?;
                if let Some(e) = env.take_failure() {
                    return Err(e.into());
                }
                if value.is_null_or_empty() {
                    continue;
                }
                let mut candidates = Vec::new();
                for id in txn.join_candidates(r.join_mv[i], &value)? {
                    if let Some(mv) = txn.mv(id)? {
                        let free = match mv.link_in(cs.key.conn) {
                            None => true,
                            Some(_) => placeholder_in(txn, &mv, cs.key.conn)?.is_some(),
                        };
                        if mv.object_type == r.mv_type && free {
                            candidates.push(id);
                        }
                    }
                }
                match candidates.as_slice() {
                    [] => continue,
                    [one] => return Ok(Some((*one, r.name))),
                    many => {
                        return Err(Failure::object(
                            "ambiguous-join",
                            format!(
                                "rule '{}', join criterion {} ({} = {}): {} metaverse objects match ({}); nothing was joined",
                                r.rule.name,
                                i + 1,
                                criterion.mv,
                                value,
                                many.len(),
                                many.iter().map(|id| format!("mv:{id}")).collect::<Vec<_>>().join(", ")
                            ),
                        ))
                    }
                }
            }
        }
        Ok(None)
    }
}

/// The object `mv` is linked to in `conn` when it is only a placeholder:
/// provisioned by an outbound rule and never exported (its add still
/// pending). An existing object that joins replaces it: provisioning ran
/// before the join had its chance (the source's sync came first), and
/// adding a second object for the same identity would be wrong.
fn placeholder_in(txn: &Txn<'_>, mv: &MvObject, conn: Sym) -> Result<Option<CsObject>, StoreError> {
    let Some(key) = mv.link_in(conn) else {
        return Ok(None);
    };
    Ok(txn
        .cs(key)?
        .filter(|o| o.state == crate::model::CsState::Provisioned))
}

/// Every in-scope inbound flow's value for `mv`, from all its linked
/// objects, with the references that did not resolve. Read-only: lineage
/// views call it too.
pub(crate) fn contributions(
    store: &Store,
    model: &Model,
    now: i64,
    txn: &Txn<'_>,
    mv: &MvObject,
    linked: &[CsObject],
) -> Result<(Vec<Contribution>, Vec<super::env::Unresolved>), Failure> {
    let mut out = Vec::new();
    let mut waiting = Vec::new();
    for cs in linked {
        let type_name = store.name(cs.object_type);
        let env = CsEnv::new(txn, model, cs, &type_name, now);
        for (order, r) in model.inbound.iter().enumerate() {
            if r.conn != cs.key.conn
                || r.mv_type != mv.object_type
                || r.cs_type.is_some_and(|t| t != cs.object_type)
            {
                continue;
            }
            if !r.rule.in_scope(&env).map_err(|e| Failure::scope(r, e))? {
                continue;
            }
            let rule_start = out.len();
            // A skipped flow keeps what this source supplied last (never
            // null): the metaverse value it won, if it won one.
            let kept = |target: Sym| {
                mv.attrs
                    .iter()
                    .find(|a| a.name == target && a.connector == cs.key.conn && a.rule == r.name)
                    .map(|a| a.value.clone())
            };
            for (flow, target) in r.rule.flows.iter().zip(&r.targets) {
                let value = match flow.expr.eval(&env) {
                    Ok(value) => value,
                    Err(e) if e.code == rules::functions::IGNORE_ATTRIBUTE_FLOW => {
                        match kept(*target) {
                            Some(value) => value,
                            None => continue,
                        }
                    }
                    // The whole rule is skipped for this object: each of its
                    // attributes keeps what it supplied last.
                    Err(e) if e.code == rules::functions::IGNORE_OBJECT_FLOW => {
                        out.truncate(rule_start);
                        for t in &r.targets {
                            if let Some(value) = kept(*t) {
                                out.push(Contribution {
                                    attr: *t,
                                    precedence: r.rule.precedence,
                                    order,
                                    value,
                                    connector: cs.key.conn,
                                    rule: r.name,
                                    authoritative_null: false,
                                });
                            }
                        }
                        break;
                    }
                    Err(e) => {
                        return Err(Failure::eval(
                            &r.rule.name,
                            &format!("flow to '{}'", flow.target),
                            &flow.expr,
                            e,
                        ))
                    }
                };
                out.push(Contribution {
                    attr: *target,
                    precedence: r.rule.precedence,
                    order,
                    value,
                    connector: cs.key.conn,
                    rule: r.name,
                    authoritative_null: flow.nulls == NullHandling::Authoritative,
                });
            }
        }
        if let Some(e) = env.take_failure() {
            return Err(e.into());
        }
        waiting.extend(env.unresolved.into_inner());
    }
    Ok((out, waiting))
}
