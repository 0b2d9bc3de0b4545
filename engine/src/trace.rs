//! `mvsync preview object`: MIM's sync preview. A trace of what a sync of
//! one connector-space object would do, written nowhere.
//!
//! The decisions are explained by read-only evaluation against the store
//! (scoping filters, join criteria and their candidates, flows with their
//! inputs, precedence through `sync::contributions` and `sync::winners`);
//! the outcome is not re-implemented: the real `Syncer::sync_object` runs on
//! a what-if copy of the store ([`Store::what_if`]), and the trace reports
//! what it did there — the link, the metaverse attributes, and the pending
//! export of every linked object before and after, as preview shows them.
//!
//! Invariant: nothing here writes the store the engine was opened on.

use std::collections::BTreeSet;

use rules::{Env, Expr, NullHandling, Value};
use serde::Serialize;

use crate::history::{self, RunLog, StepKind};
use crate::inspect::{object_label, pending_change, PendingChange};
use crate::model::{CsKey, CsObject, ImportKind, MvObject, PendingExport, Sym};
use crate::plan::{attribute_deltas, json_value, PlanAttribute};
use crate::setup::{Model, RuleModel};
use crate::store::{Store, StoreError, Txn};
use crate::sync::{contributions, winners, CsEnv, Failure, Syncer};
use crate::{Engine, EngineError};

/// An attribute an expression reads, with the value it saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Input {
    /// The attribute.
    pub name: String,
    /// Its value (references as the metaverse objects they resolve to).
    #[serde(serialize_with = "json_value")]
    pub value: Value,
}

/// One rule's scoping decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeTrace {
    /// The rule.
    pub rule: String,
    /// The scoping filter (`None`: everything is in scope).
    pub scope: Option<String>,
    /// What the filter read.
    pub inputs: Vec<Input>,
    /// The decision (`None` when the filter failed).
    pub in_scope: Option<bool>,
    /// The evaluation error, if any.
    pub error: Option<String>,
}

/// A metaverse object a join criterion found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The metaverse object.
    pub mv: u64,
    /// Whether it can be joined; otherwise why not.
    pub eligible: bool,
    /// Why it cannot be joined.
    pub reason: Option<String>,
}

/// One join criterion tried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinAttempt {
    /// The rule.
    pub rule: String,
    /// The criterion's position in the rule (1-based).
    pub criterion: usize,
    /// The connector-space expression.
    pub cs: String,
    /// The metaverse attribute it must equal.
    pub mv_attribute: String,
    /// The expression's value.
    #[serde(serialize_with = "json_value")]
    pub value: Value,
    /// What the join index found.
    pub candidates: Vec<Candidate>,
    /// `no value`, `no candidate`, `joins mv:<id>`, `ambiguous` or an error.
    pub outcome: String,
}

/// Another source's offer for an attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfferTrace {
    /// The connector.
    pub connector: String,
    /// The rule.
    pub rule: String,
    /// Its precedence.
    pub precedence: i64,
    /// Its value.
    #[serde(serialize_with = "json_value")]
    pub value: Value,
}

/// One flow: what it read, what it produced, and whether it won.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowTrace {
    /// The rule.
    pub rule: String,
    /// The attribute written.
    pub attribute: String,
    /// The expression.
    pub expression: String,
    /// What it read.
    pub inputs: Vec<Input>,
    /// What it produced.
    #[serde(serialize_with = "json_value")]
    pub output: Value,
    /// The evaluation error, if any.
    pub error: Option<String>,
    /// The decision: `wins`, `loses to …`, `initial only`, `shadowed by …`.
    pub decision: String,
    /// Other sources' offers for the same attribute (inbound).
    pub others: Vec<OfferTrace>,
}

/// How the object is linked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkTrace {
    /// The metaverse object.
    pub mv: u64,
    /// joined, projected, provisioned.
    pub kind: String,
}

/// The metaverse object before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MvTrace {
    /// Its id before the sync (`None`: it did not exist or was not linked).
    pub before: Option<u64>,
    /// Its id after (`None`: deleted or unlinked).
    pub after: Option<u64>,
    /// The attributes that change.
    pub attributes: Vec<PlanAttribute>,
}

/// What the sync does to one target connector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundTrace {
    /// The connector.
    pub connector: String,
    /// Its outbound rules' scoping decisions for the metaverse object.
    pub rules: Vec<ScopeTrace>,
    /// Its export flows (of the rules in scope).
    pub flows: Vec<FlowTrace>,
    /// The linked object (anchor, else DN), before or after.
    pub object: Option<String>,
    /// `provision`, `update`, `rename`, `deprovision (delete)`,
    /// `deprovision (disconnect)`, `deprovision (disable)`, `unchanged`, `none`.
    pub action: String,
    /// Its pending export before the sync.
    pub before: Option<PendingChange>,
    /// Its pending export after the sync.
    pub after: Option<PendingChange>,
}

/// What a sync of one connector-space object would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// The connector.
    pub connector: String,
    /// The object (anchor, else DN).
    pub object: String,
    /// Its object type.
    pub object_type: String,
    /// Its staged import: `add`, `update`, `delete`, or `None`.
    pub pending_import: Option<String>,
    /// Its link before the sync.
    pub link_before: Option<LinkTrace>,
    /// Its link after the sync.
    pub link_after: Option<LinkTrace>,
    /// What the sync does to it, in one line.
    pub result: String,
    /// The error the sync would record on it, as `code: message`.
    pub error: Option<String>,
    /// Each inbound rule's scoping decision.
    pub scope: Vec<ScopeTrace>,
    /// Each join criterion tried, in order.
    pub join: Vec<JoinAttempt>,
    /// Each inbound flow of the rules in scope, with precedence.
    pub flows: Vec<FlowTrace>,
    /// The metaverse object's changes.
    pub metaverse: Option<MvTrace>,
    /// The consequences per target connector.
    pub outbound: Vec<OutboundTrace>,
}

/// A metaverse object seen by outbound rules, read-only (uniqueness has no
/// meaning in a trace: generated values are reported, not regenerated).
struct MvAttrs<'a> {
    store: &'a Store,
    mv: &'a MvObject,
    now: i64,
}

impl Env for MvAttrs<'_> {
    fn attribute(&self, name: &str) -> Result<Value, rules::ReadError> {
        Ok(self
            .store
            .lookup(name)
            .and_then(|s| self.mv.get(s).cloned())
            .unwrap_or(Value::Null))
    }

    fn now(&self) -> i64 {
        self.now
    }

    fn value_in_use(&self, _candidate: &Value) -> Option<bool> {
        None
    }
}

fn inputs(expr: &Expr, env: &dyn Env) -> Vec<Input> {
    expr.attributes()
        .into_iter()
        .map(|name| Input {
            name: name.to_owned(),
            // Shown, not used: a read failure is reported by the evaluation itself.
            value: env.attribute(name).unwrap_or_default(),
        })
        .collect()
}

fn scope_trace(r: &RuleModel, env: &dyn Env) -> ScopeTrace {
    let (in_scope, error) = match r.rule.in_scope(env) {
        Ok(b) => (Some(b), None),
        Err(e) => (None, Some(e.message)),
    };
    ScopeTrace {
        rule: r.rule.name.clone(),
        scope: r.rule.scope.as_ref().map(|e| e.source().to_owned()),
        inputs: r
            .rule
            .scope
            .as_ref()
            .map_or_else(Vec::new, |e| inputs(e, env)),
        in_scope,
        error,
    }
}

fn link_trace(cs: &CsObject) -> Option<LinkTrace> {
    cs.link.map(|l| LinkTrace {
        mv: l.mv,
        kind: format!("{:?}", l.kind).to_lowercase(),
    })
}

fn store_failure(e: Failure) -> Result<String, StoreError> {
    match e {
        Failure::Store(e) => Err(e),
        Failure::Object { code, message } => Ok(format!("{code}: {message}")),
    }
}

impl Engine {
    /// Traces what a sync of one connector-space object (by anchor, DN or
    /// `cs:<id>`) would do, without writing the store: `None` when the
    /// connector has no such object.
    pub fn preview_object(
        &self,
        connector: &str,
        anchor: &str,
    ) -> Result<Option<Trace>, EngineError> {
        let (conn, _) = self.conn(connector)?;
        Ok(Tracer {
            store: &self.store,
            model: &self.model,
            now: (self.clock)(),
        }
        .trace(conn, anchor)?)
    }
}

struct Tracer<'a> {
    store: &'a Store,
    model: &'a Model,
    now: i64,
}

impl Tracer<'_> {
    fn trace(&self, conn: Sym, anchor: &str) -> Result<Option<Trace>, StoreError> {
        let real = self.store.begin();
        let Some(key) = crate::inspect::resolve(&real, conn, anchor)? else {
            return Ok(None);
        };
        let Some(before) = real.cs(key)? else {
            return Ok(None);
        };
        let type_name = self.store.name(before.object_type).to_string();

        // The object as sync sees it: its staged import applied.
        let mut staged = before.clone();
        let mut deleted = false;
        if let Some(p) = staged.pending_import.take() {
            match p.kind {
                ImportKind::Delete => deleted = true,
                ImportKind::Add | ImportKind::Update => {
                    staged.hologram = p.attrs;
                    if p.dn.is_some() {
                        staged.dn = p.dn;
                    }
                }
            }
        }

        let mut scope = Vec::new();
        let mut join = Vec::new();
        if !deleted {
            let env = CsEnv::new(&real, self.model, &staged, &type_name, self.now);
            let rules: Vec<&RuleModel> = self.model.inbound_for(conn, staged.object_type).collect();
            let mut in_scope = Vec::new();
            for r in &rules {
                let t = scope_trace(r, &env);
                if t.in_scope == Some(true) {
                    in_scope.push(*r);
                }
                scope.push(t);
            }
            if let Some(e) = env.take_failure() {
                return Err(e);
            }
            if staged.link.is_none() && staged.state == crate::model::CsState::Present {
                join = self.join_attempts(&real, &env, &staged, &in_scope)?;
            }
        }

        // The sync itself, on a what-if copy.
        let what_if = self.store.what_if()?;
        let mut log = RunLog::start(
            &what_if,
            None,
            StepKind::DeltaSync,
            &self.store.name(conn),
            self.now,
        )?;
        let mut txn = what_if.begin();
        Syncer::new(&what_if, self.model, &mut log, self.now).sync_object(&mut txn, key)?;
        what_if.commit(txn)?;
        let error = history::run(&what_if, log.id())?
            .and_then(|(_, errors)| errors.into_iter().next())
            .map(|e| format!("{}: {}", e.code, e.message));

        let wtx = what_if.begin();
        let after = wtx.cs(key)?;
        let link_before = link_trace(&before);
        let link_after = after.as_ref().and_then(link_trace);
        let mv_before = match before.link {
            Some(l) => real.mv(l.mv)?,
            None => None,
        };
        let mv_after = match after.as_ref().and_then(|o| o.link) {
            Some(l) => wtx.mv(l.mv)?,
            None => None,
        };
        let result = describe(
            &self.store.name(key.conn),
            &link_before,
            &link_after,
            after.is_none(),
            error.is_some(),
            &scope,
        );

        let flows = match (&after, &mv_after) {
            (Some(cs), Some(mv)) if cs.link.is_some_and(|l| l.kind.is_source()) => {
                self.inbound_flows(&what_if, &wtx, cs, mv)?
            }
            _ => Vec::new(),
        };
        // The metaverse object the link leads to after the sync, or (deleted,
        // disconnected) the one it led to before, as it is after; and the
        // same object as it was before.
        let after_mv = match (&mv_after, &mv_before) {
            (Some(m), _) => Some(m.clone()),
            (None, Some(b)) => wtx.mv(b.id)?,
            (None, None) => None,
        };
        let before_mv = match (&mv_before, &mv_after) {
            (Some(m), _) => Some(m.clone()),
            (None, Some(a)) => real.mv(a.id)?,
            (None, None) => None,
        };
        let attrs = |store: &Store, mv: &Option<MvObject>| {
            mv.as_ref()
                .map(|m| {
                    m.attrs
                        .iter()
                        .map(|a| (store.name(a.name).to_string(), a.value.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let metaverse = (mv_before.is_some() || mv_after.is_some()).then(|| MvTrace {
            before: before_mv.as_ref().map(|m| m.id),
            after: after_mv.as_ref().map(|m| m.id),
            attributes: attribute_deltas(
                &attrs(self.store, &before_mv),
                &attrs(&what_if, &after_mv),
            ),
        });
        let outbound =
            self.outbound(&real, &what_if, &wtx, before_mv.as_ref(), after_mv.as_ref())?;

        Ok(Some(Trace {
            connector: self.store.name(key.conn).to_string(),
            object: object_label(&before),
            object_type: type_name,
            pending_import: before
                .pending_import
                .as_ref()
                .map(|p| format!("{:?}", p.kind).to_lowercase()),
            link_before,
            link_after,
            result,
            error,
            scope,
            join,
            flows,
            metaverse,
            outbound,
        }))
    }

    /// The join criteria of the rules in scope, in order, as sync tries them:
    /// the first criterion with exactly one eligible candidate joins; more
    /// than one is an ambiguous-join error.
    fn join_attempts(
        &self,
        real: &Txn<'_>,
        env: &CsEnv<'_, '_>,
        cs: &CsObject,
        in_scope: &[&RuleModel],
    ) -> Result<Vec<JoinAttempt>, StoreError> {
        let mut out = Vec::new();
        for r in in_scope {
            for (i, criterion) in r.rule.join.iter().enumerate() {
                let mut attempt = JoinAttempt {
                    rule: r.rule.name.clone(),
                    criterion: i + 1,
                    cs: criterion.cs.source().to_owned(),
                    mv_attribute: criterion.mv.clone(),
                    value: Value::Null,
                    candidates: Vec::new(),
                    outcome: String::new(),
                };
                let value = match criterion.cs.eval(env) {
                    Ok(v) => v,
                    Err(e) => {
                        attempt.outcome = format!("error: {}", e.message);
                        out.push(attempt);
                        return Ok(out);
                    }
                };
                if let Some(e) = env.take_failure() {
                    return Err(e);
                }
                attempt.value = value.clone();
                if value.is_null_or_empty() {
                    attempt.outcome = "no value".into();
                    out.push(attempt);
                    continue;
                }
                let mut eligible = Vec::new();
                for id in real.join_candidates(r.join_mv[i], &value)? {
                    let reason = match real.mv(id)? {
                        None => Some("no longer exists".to_owned()),
                        Some(mv) if mv.object_type != r.mv_type => Some(format!(
                            "is a {}, not a {}",
                            self.store.name(mv.object_type),
                            r.rule.mv_object_type
                        )),
                        Some(mv) => mv.link_in(cs.key.conn).map(|k| {
                            format!(
                                "already has an object in '{}' (cs:{})",
                                self.store.name(k.conn),
                                k.id
                            )
                        }),
                    };
                    if reason.is_none() {
                        eligible.push(id);
                    }
                    attempt.candidates.push(Candidate {
                        mv: id,
                        eligible: reason.is_none(),
                        reason,
                    });
                }
                let decided = !eligible.is_empty();
                attempt.outcome = match eligible.as_slice() {
                    [] => "no candidate".into(),
                    [one] => format!("joins mv:{one}"),
                    many => format!("ambiguous: {} candidates, nothing is joined", many.len()),
                };
                out.push(attempt);
                if decided {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// The inbound flows of `cs` (after the sync) with their inputs, and
    /// each attribute's precedence decision among all the metaverse
    /// object's sources.
    fn inbound_flows(
        &self,
        store: &Store,
        txn: &Txn<'_>,
        cs: &CsObject,
        mv: &MvObject,
    ) -> Result<Vec<FlowTrace>, StoreError> {
        let mut linked = Vec::new();
        for k in &mv.links {
            if let Some(o) = txn.cs(*k)? {
                if o.link.is_some_and(|l| l.mv == mv.id) {
                    linked.push(o);
                }
            }
        }
        let (offers, winning) = match contributions(store, self.model, self.now, txn, mv, &linked) {
            Ok((c, _)) => {
                let w = winners(&c);
                (c, w)
            }
            Err(e) => {
                store_failure(e)?;
                (Vec::new(), Vec::new())
            }
        };
        let type_name = store.name(cs.object_type).to_string();
        let env = CsEnv::new(txn, self.model, cs, &type_name, self.now);
        let mut out = Vec::new();
        for r in self.model.inbound_for(cs.key.conn, cs.object_type) {
            if r.mv_type != mv.object_type || !matches!(r.rule.in_scope(&env), Ok(true)) {
                continue;
            }
            for (flow, target) in r.rule.flows.iter().zip(&r.targets) {
                // A flow keyword's skip is a decision, not an error.
                let mut skipped = None;
                let (output, error) = match flow.expr.eval(&env) {
                    Ok(v) => (v, None),
                    Err(e) if e.code == rules::functions::IGNORE_ATTRIBUTE_FLOW => {
                        skipped = Some(
                            "skipped (IgnoreAttributeFlow): keeps what this source supplied last",
                        );
                        (Value::Null, None)
                    }
                    Err(e) if e.code == rules::functions::IGNORE_OBJECT_FLOW => {
                        skipped = Some(
                            "skipped (IgnoreObjectFlow): this rule changes nothing for the object",
                        );
                        (Value::Null, None)
                    }
                    Err(e) => (Value::Null, Some(e.message)),
                };
                let mine = |c_conn: Sym, c_rule: Sym| c_conn == cs.key.conn && c_rule == r.name;
                let others: Vec<OfferTrace> = offers
                    .iter()
                    .filter(|c| c.attr == *target && !mine(c.connector, c.rule))
                    .map(|c| OfferTrace {
                        connector: store.name(c.connector).to_string(),
                        rule: store.name(c.rule).to_string(),
                        precedence: c.precedence,
                        value: c.value.clone(),
                    })
                    .collect();
                let winner = winning.iter().find(|a| a.name == *target);
                let decision = match winner {
                    _ if skipped.is_some() => skipped.unwrap_or_default().to_owned(),
                    Some(w) if mine(w.connector, w.rule) => {
                        format!("wins (precedence {})", r.rule.precedence)
                    }
                    Some(w) => {
                        let p = offers
                            .iter()
                            .find(|c| {
                                c.attr == *target && c.connector == w.connector && c.rule == w.rule
                            })
                            .map_or(String::new(), |c| format!(", precedence {}", c.precedence));
                        format!(
                            "loses to {}/{}{p} (this rule: precedence {})",
                            store.name(w.connector),
                            store.name(w.rule),
                            r.rule.precedence
                        )
                    }
                    None if output.is_null_or_empty()
                        && flow.nulls == NullHandling::Authoritative =>
                    {
                        "authoritative null: the attribute is cleared".into()
                    }
                    None if others.iter().any(|o| !o.value.is_null_or_empty()) => {
                        "cleared by an authoritative null of a higher-precedence source".into()
                    }
                    None if output.is_null_or_empty() => "no value (null yields)".into(),
                    None => "cleared by an authoritative null of a higher-precedence source".into(),
                };
                let inputs = inputs(&flow.expr, &env);
                if let Some(e) = env.take_failure() {
                    return Err(e);
                }
                out.push(FlowTrace {
                    rule: r.rule.name.clone(),
                    attribute: flow.target.clone(),
                    expression: flow.expr.source().to_owned(),
                    inputs,
                    output,
                    error,
                    decision,
                    others,
                });
            }
        }
        if let Some(e) = env.take_failure() {
            return Err(e);
        }
        Ok(out)
    }

    /// Per target connector: outbound scoping, export flows, and the linked
    /// object's pending export before and after.
    fn outbound(
        &self,
        real: &Txn<'_>,
        what_if: &Store,
        wtx: &Txn<'_>,
        mv_before: Option<&MvObject>,
        mv_after: Option<&MvObject>,
    ) -> Result<Vec<OutboundTrace>, StoreError> {
        let mv_type = mv_after.or(mv_before).map(|m| m.object_type);
        let mut conns: BTreeSet<Sym> = BTreeSet::new();
        if let Some(t) = mv_type {
            conns.extend(self.model.outbound_for(t).into_keys());
        }
        let is_target = |k: &CsKey| self.model.outbound.iter().any(|r| r.conn == k.conn);
        for m in [mv_before, mv_after].into_iter().flatten() {
            conns.extend(m.links.iter().filter(|k| is_target(k)).map(|k| k.conn));
        }
        let mut out = Vec::new();
        for conn in conns {
            let form = self.model.ref_form(conn, true);
            let mut rules = Vec::new();
            let mut flows = Vec::new();
            if let (Some(mv), Some(t)) = (mv_after, mv_type) {
                let env = MvAttrs {
                    store: what_if,
                    mv,
                    now: self.now,
                };
                let mut claimed: Vec<(Sym, String)> = Vec::new();
                for r in self.model.outbound_for(t).remove(&conn).unwrap_or_default() {
                    let s = scope_trace(r, &env);
                    let in_scope = s.in_scope == Some(true);
                    rules.push(s);
                    if in_scope {
                        flows.extend(self.outbound_flows(r, &env, &mut claimed));
                    }
                }
            }
            let before_key = mv_before.and_then(|m| m.link_in(conn));
            let after_key = mv_after.and_then(|m| m.link_in(conn));
            let key = after_key.or(before_key);
            let (object, before, after) = match key {
                Some(k) => {
                    let b = real.cs(k)?;
                    let a = wtx.cs(k)?;
                    let label = a.as_ref().or(b.as_ref()).map(object_label);
                    let before = match &b {
                        Some(o) => pending_change(self.store, real, form, o)?,
                        None => None,
                    };
                    let after = match &a {
                        Some(o) => pending_change(what_if, wtx, form, o)?,
                        None => None,
                    };
                    (label, before, after)
                }
                None => (None, None, None),
            };
            let in_scope = rules.iter().any(|r| r.in_scope == Some(true));
            // Which action applies: the metaverse object's deletion runs the
            // rule's `deprovision_on_delete`, leaving scope its `deprovision`.
            let why = if mv_after.is_none() {
                "deprovision_on_delete: the metaverse object is deleted"
            } else {
                "deprovision: it left the scope"
            };
            let action = match (before_key, after_key) {
                (None, Some(_)) => "provision".to_owned(),
                (Some(k), None) => match wtx.cs(k)?.map(|o| o.pending_export) {
                    None => format!("delete ({why}; removed: it was never exported)"),
                    Some(Some(PendingExport::Delete)) => format!("delete ({why})"),
                    Some(Some(_)) => format!("disable ({why})"),
                    Some(None) => format!("disconnect ({why})"),
                },
                (Some(_), Some(_)) if before == after => "unchanged".to_owned(),
                (Some(_), Some(_)) if !in_scope => format!("disable ({why})"),
                (Some(_), Some(_)) => after
                    .as_ref()
                    .map_or("none: the pending export is no longer needed", |c| {
                        c.operation
                    })
                    .to_owned(),
                (None, None) => "none".to_owned(),
            };
            out.push(OutboundTrace {
                connector: self.store.name(conn).to_string(),
                rules,
                flows,
                object,
                action,
                before,
                after,
            });
        }
        out.sort_by(|a, b| a.connector.cmp(&b.connector));
        Ok(out)
    }

    /// Export flows of one in-scope rule; an attribute already flowed by an
    /// earlier rule of the connector is shadowed (the first rule wins it).
    fn outbound_flows(
        &self,
        r: &RuleModel,
        env: &MvAttrs<'_>,
        claimed: &mut Vec<(Sym, String)>,
    ) -> Vec<FlowTrace> {
        let mut out = Vec::new();
        for (flow, target) in r.rule.flows.iter().zip(&r.targets) {
            let shadowed = claimed
                .iter()
                .find(|(t, _)| t == target)
                .map(|(_, n)| n.clone());
            let generated = rules::Rule::is_unique_flow(flow);
            let mut skipped = None;
            let (output, error) = if generated {
                (Value::Null, None)
            } else {
                match flow.expr.eval(env) {
                    Ok(v) => (v, None),
                    Err(e) if e.code == rules::functions::IGNORE_ATTRIBUTE_FLOW => {
                        skipped = Some("skipped (IgnoreAttributeFlow): the target keeps its value");
                        (Value::Null, None)
                    }
                    Err(e) if e.code == rules::functions::IGNORE_OBJECT_FLOW => {
                        skipped = Some(
                            "skipped (IgnoreObjectFlow): nothing is staged or provisioned for the object",
                        );
                        (Value::Null, None)
                    }
                    Err(e) => (Value::Null, Some(e.message)),
                }
            };
            let decision = match shadowed {
                Some(rule) => format!("shadowed by rule '{rule}'"),
                None if skipped.is_some() => skipped.unwrap_or_default().to_owned(),
                None if generated => {
                    "generated value: chosen at provisioning, never regenerated".into()
                }
                None if flow.initial_only => "initial only: applied at provisioning".into(),
                None => "flows".into(),
            };
            if !claimed.iter().any(|(t, _)| t == target) {
                claimed.push((*target, r.rule.name.clone()));
            }
            out.push(FlowTrace {
                rule: r.rule.name.clone(),
                attribute: flow.target.clone(),
                expression: flow.expr.source().to_owned(),
                inputs: inputs(&flow.expr, env),
                output,
                error,
                decision,
                others: Vec::new(),
            });
        }
        out
    }
}

/// The outcome for the traced object, in one line.
fn describe(
    connector: &str,
    before: &Option<LinkTrace>,
    after: &Option<LinkTrace>,
    gone: bool,
    failed: bool,
    scope: &[ScopeTrace],
) -> String {
    if failed {
        return "the sync fails on this object; nothing changes (see error)".into();
    }
    if gone {
        return match before {
            Some(l) => format!(
                "deleted from the connector space; disconnected from mv:{}",
                l.mv
            ),
            None => "deleted from the connector space".into(),
        };
    }
    match (before, after) {
        (None, Some(a)) if a.kind == "projected" => {
            format!("projects a new metaverse object mv:{}", a.mv)
        }
        (None, Some(a)) => format!(
            "{} to mv:{}",
            if a.kind == "joined" { "joins" } else { "links" },
            a.mv
        ),
        (Some(b), None) => format!("disconnected from mv:{} (no inbound rule in scope)", b.mv),
        (Some(b), Some(a)) if b.mv != a.mv => format!("moves from mv:{} to mv:{}", b.mv, a.mv),
        (Some(b), Some(_)) => format!("stays linked to mv:{} ({})", b.mv, b.kind),
        (None, None) if scope.is_empty() => {
            format!("stays a disconnector: '{connector}' has no inbound rule for its type")
        }
        (None, None) if !scope.iter().any(|s| s.in_scope == Some(true)) => {
            "stays a disconnector: no inbound rule has it in scope".into()
        }
        (None, None) => "stays a disconnector: nothing joins and no rule in scope projects".into(),
    }
}
