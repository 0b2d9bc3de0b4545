//! Test doubles and builders for the pipeline tests: an in-memory connected
//! system implementing [`Connector`], small builders for connector schemas
//! and rules, and a harness that wires them into an [`Engine`] over
//! [`Store::memory`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::StreamExt;
use rules::{
    Deprovision, Direction, Expr, Flow, JoinCriterion, NullHandling, Rule, Value, ValueType,
};

use crate::model::{apply_op, CsObject, MvObject};
use crate::store::{keys, Entries, Kv, MemKv, Write};
use crate::{
    Applied, AttrOp, AttributeSchema, CheckReport, Connector, ConnectorError, ConnectorInfo,
    Engine, EngineConfig, EngineError, ExportChange, ExportFailure, ExportOp, ExportReport,
    ExportResult, FailureKind, ImportEvent, ImportItem, ImportStream, ImportedObject, ItemError,
    ObjectTypeSchema, RefKind, RunError, RunRecord, StepKind, StepOptions, Store, StoreError,
};

// ------------------------------------------------------------ the system

/// What the in-memory system holds and what the test asked it to do.
#[derive(Default)]
pub struct SystemState {
    /// The objects, by anchor. Full import yields them in anchor order.
    pub objects: BTreeMap<String, ImportedObject>,
    /// Anchors (or DNs) whose export fails.
    pub failing: BTreeSet<String>,
    /// Bad items the next import (full or delta) yields before anything else.
    pub bad_items: usize,
    /// Events the next delta import yields (a watermark follows them).
    pub delta: Vec<ImportEvent>,
    /// The watermark each delta import was given.
    pub watermarks_given: Vec<Option<String>>,
    /// Every change export received, in order.
    pub exported: Vec<ExportChange>,
    /// Faults: the connection drops after this many operations of the next
    /// export call (applied ones reported, the rest unknown).
    pub drop_after: Option<usize>,
    /// Faults: the next export call applies everything, then loses every
    /// answer (a crash between the system applying and the engine recording).
    pub lose_answers: bool,
    /// Faults: anchors or DNs whose export fails as retryable this many more times.
    pub busy: BTreeMap<String, usize>,
    /// Faults: anchors or DNs whose export is applied but answered as a
    /// retryable timeout this many more times.
    pub timeouts: BTreeMap<String, usize>,
    /// Faults: the next delta import reports its watermark expired.
    pub watermark_expired: bool,
    /// How many `find_added` look-ups were made.
    pub lookups: usize,
    /// Each export run's start and end, and each batch, in order:
    /// `"starting"`, `"batch"`, `"finished"`.
    pub export_calls: Vec<&'static str>,
    /// Watermarks handed out so far.
    generation: u64,
    /// System-assigned anchors handed out so far.
    next_guid: u64,
}

/// An in-memory connected system: a map of objects whose export applies
/// changes to the map. Anchors come from the type's anchor attribute when
/// it declares one, else the system assigns `guid-N`.
pub struct System {
    pub name: String,
    pub info: ConnectorInfo,
    state: Mutex<SystemState>,
}

impl System {
    pub fn new(name: &str, info: ConnectorInfo) -> Arc<System> {
        Arc::new(System {
            name: name.to_owned(),
            info,
            state: Mutex::new(SystemState::default()),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, SystemState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts an object with string attributes; `dn` is derived from the
    /// anchor when the system has DNs.
    pub fn put(&self, object_type: &str, anchor: &str, attrs: &[(&str, &str)]) {
        let object = ImportedObject {
            anchor: anchor.to_owned(),
            object_type: object_type.to_owned(),
            dn: self.info.has_dn.then(|| format!("CN={anchor},OU=Test")),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect(),
        };
        self.state().objects.insert(anchor.to_owned(), object);
    }

    pub fn remove(&self, anchor: &str) {
        self.state().objects.remove(anchor);
    }

    /// The value of an attribute of an object, as the system holds it.
    pub fn attr(&self, anchor: &str, name: &str) -> Option<Value> {
        let state = self.state();
        let object = state.objects.get(anchor)?;
        object
            .attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// Sets (or, with `Null`, removes) an attribute behind the engine's back.
    pub fn set_attr(&self, anchor: &str, name: &str, value: Value) {
        if let Some(object) = self.state().objects.get_mut(anchor) {
            set(&mut object.attributes, name, value);
        }
    }

    /// The anchor of the object holding `attr = value`.
    pub fn anchor_where(&self, attr: &str, value: &str) -> Option<String> {
        let state = self.state();
        let want = Value::from(value);
        state
            .objects
            .values()
            .find(|o| o.attributes.iter().any(|(n, v)| n == attr && *v == want))
            .map(|o| o.anchor.clone())
    }

    fn anchor_attribute(&self, object_type: &str) -> Option<String> {
        self.info.object_type(object_type)?.anchor_attribute.clone()
    }

    fn apply(
        &self,
        state: &mut SystemState,
        change: &ExportChange,
    ) -> Result<Applied, ExportFailure> {
        self.apply_change(state, change).map_err(|(kind, message)| {
            ExportFailure::new(kind, message).with_code(format!("TEST-{kind:?}"))
        })
    }

    fn apply_change(
        &self,
        state: &mut SystemState,
        change: &ExportChange,
    ) -> Result<Applied, (FailureKind, String)> {
        use FailureKind::{AlreadyExists, NotFound, Permanent};
        let refused =
            |key: &Option<String>| key.as_ref().is_some_and(|k| state.failing.contains(k));
        match &change.op {
            ExportOp::Add { attributes } => {
                let declared = self.anchor_attribute(&change.object_type).and_then(|a| {
                    attributes
                        .iter()
                        .find(|(n, _)| *n == a)
                        .map(|(_, v)| v.to_string())
                });
                if refused(&declared) || refused(&change.dn) {
                    return Err((Permanent, "refused by the test system".into()));
                }
                let anchor = declared.unwrap_or_else(|| {
                    state.next_guid += 1;
                    format!("guid-{}", state.next_guid)
                });
                let dn_taken = |o: &ImportedObject| {
                    o.dn.as_ref()
                        .zip(change.dn.as_ref())
                        .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
                };
                if state.objects.contains_key(&anchor) || state.objects.values().any(dn_taken) {
                    return Err((AlreadyExists, format!("{anchor} already exists")));
                }
                let object = ImportedObject {
                    anchor: anchor.clone(),
                    object_type: change.object_type.clone(),
                    dn: change.dn.clone(),
                    attributes: attributes.clone(),
                };
                state.objects.insert(anchor.clone(), object);
                Ok(Applied {
                    anchor: Some(anchor),
                })
            }
            ExportOp::Update { new_dn, changes } => {
                if refused(&change.anchor) || refused(&change.dn) {
                    return Err((Permanent, "refused by the test system".into()));
                }
                let anchor = change
                    .anchor
                    .clone()
                    .ok_or((Permanent, "an update without an anchor".to_owned()))?;
                let object = state
                    .objects
                    .get_mut(&anchor)
                    .ok_or((NotFound, "no such object".to_owned()))?;
                for (name, op) in changes {
                    let current = object
                        .attributes
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone());
                    set(
                        &mut object.attributes,
                        name,
                        apply_op(&current.unwrap_or_default(), op),
                    );
                }
                let old_dn = object.dn.clone();
                if new_dn.is_some() {
                    object.dn = new_dn.clone();
                }
                if let (true, Some(old), Some(new)) =
                    (self.info.rewrites_dn_references, old_dn, new_dn)
                {
                    // Referential integrity, as Active Directory keeps it.
                    for o in state.objects.values_mut() {
                        for (_, v) in &mut o.attributes {
                            if let Some(renamed) = crate::model::rename_dn(v, &old, new) {
                                *v = renamed;
                            }
                        }
                    }
                }
                Ok(Applied {
                    anchor: Some(anchor),
                })
            }
            ExportOp::Delete => {
                if refused(&change.anchor) || refused(&change.dn) {
                    return Err((Permanent, "refused by the test system".into()));
                }
                let anchor = change
                    .anchor
                    .clone()
                    .ok_or((Permanent, "a delete without an anchor".to_owned()))?;
                state
                    .objects
                    .remove(&anchor)
                    .ok_or((NotFound, "no such object".to_owned()))?;
                Ok(Applied {
                    anchor: Some(anchor),
                })
            }
        }
    }
}

fn set(attributes: &mut Vec<(String, Value)>, name: &str, value: Value) {
    attributes.retain(|(n, _)| n != name);
    if !value.is_null() {
        attributes.push((name.to_owned(), value));
        attributes.sort_by(|a, b| a.0.cmp(&b.0));
    }
}

fn stream(items: Vec<ImportItem>) -> ImportStream {
    futures::stream::iter(items.into_iter().map(Ok)).boxed()
}

fn bad_items(state: &mut SystemState) -> Vec<ImportItem> {
    (0..std::mem::take(&mut state.bad_items))
        .map(|i| {
            ImportItem::Bad(ItemError {
                location: format!("row {}", i + 2),
                message: "expected 3 columns".into(),
            })
        })
        .collect()
}

/// The [`Connector`] face of a shared [`System`].
struct Handle(Arc<System>);

#[async_trait]
impl Connector for Handle {
    fn info(&self) -> ConnectorInfo {
        self.0.info.clone()
    }

    async fn full_import(&self) -> Result<ImportStream, ConnectorError> {
        let mut state = self.0.state();
        let mut items = bad_items(&mut state);
        items.extend(
            state
                .objects
                .values()
                .cloned()
                .map(|o| ImportItem::Event(ImportEvent::Object(o))),
        );
        state.generation += 1;
        items.push(ImportItem::Event(ImportEvent::Watermark(format!(
            "w{}",
            state.generation
        ))));
        Ok(stream(items))
    }

    async fn delta_import(&self, watermark: Option<&str>) -> Result<ImportStream, ConnectorError> {
        let mut state = self.0.state();
        state.watermarks_given.push(watermark.map(str::to_owned));
        if std::mem::take(&mut state.watermark_expired) {
            return Err(ConnectorError::watermark_expired(
                "the delta token has expired (HTTP 410 syncStateNotFound)",
            ));
        }
        let mut items = bad_items(&mut state);
        items.extend(
            std::mem::take(&mut state.delta)
                .into_iter()
                .map(ImportItem::Event),
        );
        state.generation += 1;
        items.push(ImportItem::Event(ImportEvent::Watermark(format!(
            "w{}",
            state.generation
        ))));
        Ok(stream(items))
    }

    async fn export(&self, batch: Vec<ExportChange>) -> Result<ExportReport, ConnectorError> {
        let mut state = self.0.state();
        state.export_calls.push("batch");
        let mut results = Vec::with_capacity(batch.len());
        let drop_after = state.drop_after.take();
        for (n, change) in batch.into_iter().enumerate() {
            if drop_after == Some(n) {
                return Ok(ExportReport {
                    results,
                    interrupted: Some(ConnectorError::unavailable("connection reset by peer")),
                });
            }
            let key = change
                .anchor
                .clone()
                .or(change.dn.clone())
                .unwrap_or_default();
            if let Some(left) = state.busy.get_mut(&key).filter(|n| **n > 0) {
                *left -= 1;
                results.push(ExportResult {
                    id: change.id,
                    outcome: Err(ExportFailure::new(FailureKind::Retryable, "server busy")
                        .with_code("LDAP 51 busy")),
                });
                continue;
            }
            let outcome = self.0.apply(&mut state, &change);
            state.exported.push(change.clone());
            if let Some(left) = state.timeouts.get_mut(&key).filter(|n| **n > 0) {
                *left -= 1;
                results.push(ExportResult {
                    id: change.id,
                    outcome: Err(ExportFailure::new(FailureKind::Retryable, "timed out")),
                });
                continue;
            }
            results.push(ExportResult {
                id: change.id,
                outcome,
            });
        }
        if std::mem::take(&mut state.lose_answers) {
            return Err(ConnectorError::unavailable(
                "the process died before it heard back",
            ));
        }
        Ok(ExportReport::complete(results))
    }

    async fn find_added(&self, change: &ExportChange) -> Result<Option<String>, ConnectorError> {
        let mut state = self.0.state();
        state.lookups += 1;
        let ExportOp::Add { attributes } = &change.op else {
            return Ok(None);
        };
        // The stable key: the DN where the system has DNs, else the whole
        // attribute set.
        Ok(state
            .objects
            .values()
            .find(|o| match (&o.dn, &change.dn) {
                (Some(a), Some(b)) => rules::dn::same(a, b),
                _ => &o.attributes == attributes,
            })
            .map(|o| o.anchor.clone()))
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        Ok(CheckReport {
            checks: vec![format!("{} objects", self.0.state().objects.len())],
        })
    }

    async fn export_starting(&self) {
        self.0.state().export_calls.push("starting");
    }

    async fn export_finished(&self) {
        self.0.state().export_calls.push("finished");
    }
}

// ------------------------------------------------------------ schemas

/// One object type: its anchor attribute (`None`: the system assigns
/// anchors) and its reference attributes.
pub fn object_type(
    name: &str,
    anchor: Option<&str>,
    references: &[(&str, RefKind)],
) -> ObjectTypeSchema {
    ObjectTypeSchema {
        name: name.to_owned(),
        anchor_attribute: anchor.map(str::to_owned),
        attributes: references
            .iter()
            .map(|(n, kind)| AttributeSchema {
                name: (*n).to_owned(),
                value_type: ValueType::Reference,
                multi_valued: false,
                reference: Some(*kind),
            })
            .collect(),
    }
}

/// An HR feed: workers keyed by employeeId, managerId holding the manager's employeeId.
pub fn hr_feed() -> Arc<System> {
    System::new(
        "hr",
        connector_info(
            object_type(
                "worker",
                Some("employeeId"),
                &[("managerId", RefKind::Anchor)],
            ),
            false,
        ),
    )
}

/// A connector that imports (full and delta), exports, and has DNs or not.
pub fn connector_info(object_type: ObjectTypeSchema, has_dn: bool) -> ConnectorInfo {
    ConnectorInfo {
        object_types: vec![object_type],
        delta_import: true,
        export: true,
        has_dn,
        rewrites_dn_references: false,
        export_batch_size: 100,
    }
}

// ------------------------------------------------------------ rules

pub fn expr(src: &str) -> Expr {
    Expr::parse(src).unwrap_or_else(|e| panic!("`{src}` does not parse: {e:?}"))
}

/// A rule under construction.
pub struct RuleBuilder(Rule);

/// An inbound rule from `connector` to `person`, precedence 100.
pub fn inbound(name: &str, connector: &str) -> RuleBuilder {
    RuleBuilder(Rule {
        name: name.to_owned(),
        direction: Direction::Inbound,
        connector: connector.to_owned(),
        cs_object_type: None,
        mv_object_type: "person".into(),
        precedence: 100,
        scope: None,
        join: Vec::new(),
        project: false,
        flows: Vec::new(),
        provision: rules::Provision::Never,
        deprovision_on_delete: None,
        deprovision: Deprovision::Delete,
        skip_out_of_scope_deletions: false,
        unique_in: Vec::new(),
    })
}

/// An outbound rule from `person` to `cs_type` objects of `connector`,
/// provisioning and deleting on deprovision.
pub fn outbound(name: &str, connector: &str, cs_type: &str) -> RuleBuilder {
    let RuleBuilder(mut rule) = inbound(name, connector);
    rule.direction = Direction::Outbound;
    rule.cs_object_type = Some(cs_type.to_owned());
    rule.provision = rules::Provision::Always;
    RuleBuilder(rule)
}

impl RuleBuilder {
    pub fn precedence(mut self, precedence: i64) -> Self {
        self.0.precedence = precedence;
        self
    }

    /// Limits the rule to connector-space objects of one type.
    pub fn cs_type(mut self, object_type: &str) -> Self {
        self.0.cs_object_type = Some(object_type.to_owned());
        self
    }

    /// The metaverse object type the rule reads or writes.
    pub fn mv_type(mut self, object_type: &str) -> Self {
        self.0.mv_object_type = object_type.to_owned();
        self
    }

    /// The rule's scoping filter.
    pub fn scope(mut self, src: &str) -> Self {
        self.0.scope = Some(expr(src));
        self
    }

    pub fn project(mut self) -> Self {
        self.0.project = true;
        self
    }

    pub fn join(mut self, cs: &str, mv: &str) -> Self {
        self.0.join.push(JoinCriterion {
            cs: expr(cs),
            mv: mv.to_owned(),
        });
        self
    }

    pub fn flow(self, target: &str, src: &str) -> Self {
        self.push_flow(target, src, NullHandling::Yield)
    }

    /// A flow whose null is authoritative.
    pub fn flow_null_wins(self, target: &str, src: &str) -> Self {
        self.push_flow(target, src, NullHandling::Authoritative)
    }

    fn push_flow(mut self, target: &str, src: &str, nulls: NullHandling) -> Self {
        self.0.flows.push(Flow {
            target: target.to_owned(),
            expr: expr(src),
            initial_only: false,
            nulls,
        });
        self
    }

    pub fn build(self) -> Rule {
        self.0
    }
}

// ------------------------------------------------------------ the harness

/// An engine over an in-memory store, wired to in-memory systems.
pub struct Harness {
    pub engine: Engine,
}

impl Harness {
    pub fn new(
        systems: &[&Arc<System>],
        rules: Vec<RuleBuilder>,
        deletion_threshold: usize,
    ) -> Harness {
        Harness::on_store(Store::memory(), systems, rules, deletion_threshold).expect("engine")
    }

    /// An engine over a given store; fails when the store does.
    pub fn on_store(
        store: Store,
        systems: &[&Arc<System>],
        rules: Vec<RuleBuilder>,
        deletion_threshold: usize,
    ) -> Result<Harness, EngineError> {
        let config = EngineConfig {
            connectors: systems
                .iter()
                .map(|s| (s.name.clone(), s.info.clone()))
                .collect(),
            rules: rules.into_iter().map(RuleBuilder::build).collect(),
            deletion: BTreeMap::new(),
            deletion_threshold,
            staging: false,
            // The pipeline tests check the count threshold; the share one
            // has tests of its own.
            import_deletion_percent: 100,
            retry: crate::RetryPolicy {
                attempts: 3,
                first_delay: std::time::Duration::from_millis(1),
                max_delay: std::time::Duration::from_millis(5),
            },
            history_retention_days: 0,
            audit_log: None,
            quarantine: crate::quarantine::QuarantinePolicy {
                error_percent: 0,
                min_changes: 1,
            },
        };
        let connectors = systems
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    Box::new(Handle(Arc::clone(s))) as Box<dyn Connector>,
                )
            })
            .collect();
        let engine = Engine::new(store, &config, connectors)?.with_clock(|| 1_700_000_000_000_000);
        Ok(Harness { engine })
    }

    pub fn try_run(
        &self,
        connector: &str,
        step: StepKind,
        options: &StepOptions,
    ) -> Result<RunRecord, EngineError> {
        // A runtime with a clock: export retries wait with tokio's timer.
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(self.engine.run_step(None, connector, step, options))
    }

    /// Runs a step that must not fail.
    pub fn run(&self, connector: &str, step: StepKind) -> RunRecord {
        self.try_run(connector, step, &StepOptions::default())
            .unwrap_or_else(|e| panic!("{} of {connector} failed: {e}", step.name()))
    }

    /// Runs several steps in order.
    pub fn steps(&self, steps: &[(&str, StepKind)]) {
        for (connector, step) in steps {
            self.run(connector, *step);
        }
    }

    /// Runs steps until one fails; true when every step succeeded.
    pub fn try_steps(&self, steps: &[(&str, StepKind)]) -> bool {
        steps
            .iter()
            .all(|(conn, step)| self.try_run(conn, *step, &StepOptions::default()).is_ok())
    }

    /// The per-object errors of a run.
    pub fn errors(&self, run: &RunRecord) -> Vec<RunError> {
        self.engine
            .run_details(run.id)
            .expect("history")
            .expect("the run is recorded")
            .1
    }

    fn conn(&self, connector: &str) -> crate::model::Sym {
        self.engine
            .store()
            .lookup(connector)
            .expect("a configured connector")
    }

    /// The connector-space object holding `anchor`, if any.
    pub fn cs(&self, connector: &str, anchor: &str) -> Option<CsObject> {
        let txn = self.engine.store().begin();
        let key = txn
            .by_anchor(self.conn(connector), anchor)
            .expect("store")?;
        txn.cs(key).expect("store")
    }

    /// Every connector-space object of a connector, in id order.
    pub fn cs_all(&self, connector: &str) -> Vec<CsObject> {
        let mut out = Vec::new();
        let prefix = keys::conn_prefix(keys::tag::CS, self.conn(connector));
        self.engine
            .store()
            .for_each_prefix(&prefix, |k, v| {
                out.push(self.engine.store().decode_cs(k, v)?);
                Ok(())
            })
            .expect("store");
        out
    }

    /// Every metaverse object, in id order.
    pub fn mv_all(&self) -> Vec<MvObject> {
        let mut out = Vec::new();
        self.engine
            .store()
            .for_each_prefix(&[keys::tag::MV], |k, v| {
                out.push(self.engine.store().decode_mv(k, v)?);
                Ok(())
            })
            .expect("store");
        out
    }

    /// The metaverse object linked to the object holding `anchor`.
    pub fn mv_of(&self, connector: &str, anchor: &str) -> MvObject {
        let cs = self
            .cs(connector, anchor)
            .unwrap_or_else(|| panic!("no {anchor} in {connector}"));
        let link = cs
            .link
            .unwrap_or_else(|| panic!("{anchor} in {connector} is not linked"));
        self.engine
            .store()
            .begin()
            .mv(link.mv)
            .expect("store")
            .expect("linked mv exists")
    }

    /// A metaverse attribute of the object linked to `anchor`.
    pub fn mv_attr(&self, connector: &str, anchor: &str, attr: &str) -> Option<Value> {
        let sym = self.engine.store().lookup(attr)?;
        self.mv_of(connector, anchor).get(sym).cloned()
    }

    /// A hologram attribute of `cs`, by name.
    pub fn hologram_attr(&self, cs: &CsObject, attr: &str) -> Option<Value> {
        let sym = self.engine.store().lookup(attr)?;
        cs.hologram.get(sym).cloned()
    }

    /// The object of `connector` linked to the same metaverse object as
    /// `anchor` in `source`.
    pub fn target_of(&self, source: &str, anchor: &str, connector: &str) -> CsObject {
        let key = self
            .mv_of(source, anchor)
            .link_in(self.conn(connector))
            .expect("a target object");
        self.engine
            .store()
            .begin()
            .cs(key)
            .expect("store")
            .expect("linked cs exists")
    }

    /// The attribute changes of a pending update, by attribute name.
    pub fn pending_update(&self, cs: &CsObject) -> Vec<(String, AttrOp)> {
        match &cs.pending_export {
            Some(crate::model::PendingExport::Update { changes, .. }) => changes
                .iter()
                .map(|(k, op)| (self.engine.store().name(*k).to_string(), op.clone()))
                .collect(),
            other => panic!("expected a pending update, found {other:?}"),
        }
    }

    /// Fails the test if any store invariant is violated.
    pub fn assert_consistent(&self) {
        let problems = self.engine.check().expect("check runs");
        assert!(
            problems.is_empty(),
            "store invariants violated:\n{}",
            problems.join("\n")
        );
    }
}

// ------------------------------------------------------------ crashes

/// A key-value store that dies after a number of batches: every later
/// batch fails without being applied, as if the process had been killed
/// just before it. Reopening means wrapping the same map again. It also
/// counts what is read through it.
pub struct CrashKv {
    inner: Arc<MemKv>,
    batches_left: AtomicUsize,
    /// Batches applied through this handle.
    pub applied: Arc<AtomicUsize>,
    /// Reads through this handle: one per `get`, one per scan and one per
    /// entry a scan returns.
    pub reads: Arc<AtomicUsize>,
    /// The keys each `get` asked for, in order.
    pub gets: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// A store that never crashes, and the count of what is read from it.
pub fn counting_store() -> (Store, Arc<AtomicUsize>) {
    let kv = CrashKv::new(&Arc::new(MemKv::default()), usize::MAX);
    let reads = Arc::clone(&kv.reads);
    let store = Store::with_kv(Box::new(kv), None).expect("an empty store opens");
    (store, reads)
}

/// A store that never crashes, and the keys `get` was asked for.
pub fn recording_store() -> (Store, Arc<Mutex<Vec<Vec<u8>>>>) {
    let kv = CrashKv::new(&Arc::new(MemKv::default()), usize::MAX);
    let gets = Arc::clone(&kv.gets);
    let store = Store::with_kv(Box::new(kv), None).expect("an empty store opens");
    (store, gets)
}

/// A store over `kv` that dies after `batches` more batches, and the count
/// of batches it applied; `None` when the store cannot even open.
pub fn crashing_store(kv: &Arc<MemKv>, batches: usize) -> Option<(Store, Arc<AtomicUsize>)> {
    let crash_kv = CrashKv::new(kv, batches);
    let applied = Arc::clone(&crash_kv.applied);
    let store = Store::with_kv(Box::new(crash_kv), None).ok()?;
    Some((store, applied))
}

impl CrashKv {
    pub fn new(inner: &Arc<MemKv>, batches_left: usize) -> CrashKv {
        CrashKv {
            inner: Arc::clone(inner),
            batches_left: AtomicUsize::new(batches_left),
            applied: Arc::new(AtomicUsize::new(0)),
            reads: Arc::new(AtomicUsize::new(0)),
            gets: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl Kv for CrashKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut gets) = self.gets.lock() {
            gets.push(key.to_vec());
        }
        self.inner.get(key)
    }

    fn scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        exclusive: bool,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        let entries = self.inner.scan(prefix, from, exclusive, limit)?;
        self.reads.fetch_add(1 + entries.len(), Ordering::SeqCst);
        Ok(entries)
    }

    fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let alive = self
            .batches_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !alive {
            return Err(StoreError::Corrupt("simulated crash".into()));
        }
        self.applied.fetch_add(1, Ordering::SeqCst);
        self.inner.apply(batch)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        self.inner.is_empty()
    }
}
