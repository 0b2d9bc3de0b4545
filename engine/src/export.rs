//! Export: applies pending exports in batches, in reference order, moves
//! each applied change into escrow, and records per-object errors without
//! stopping the run.

use std::collections::{BTreeMap, HashSet};

use petgraph::graph::{DiGraph, NodeIndex};
use rules::Value;

use crate::audit::{AuditChange, AuditEntry, AuditLog};
use crate::connector::{
    AttrOp, Connector, ExportChange, ExportFailure, ExportOp, ExportReport, FailureKind,
};
use crate::history::{RunError, RunLog};
use crate::model::{apply_op, CsKey, CsObject, CsState, ObjectError, PendingExport, Sym};
use crate::setup::Model;
use crate::store::{Store, StoreError, Txn};
use crate::sync::{translate, translate_op};
use crate::EngineError;

/// One pending export, summarised for ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub id: u64,
    pub is_add: bool,
    pub is_delete: bool,
    /// A rename or move: objects referring to it by DN must follow it.
    pub is_rename: bool,
    /// Connector-space ids its values reference.
    pub refs: Vec<u64>,
}

/// The order to export in: adds and renames before the objects that
/// reference them, deletes last. Objects in a reference cycle are returned in `split`: they
/// are added without their references, which follow in a second pass.
pub(crate) fn order(nodes: &[Node]) -> (Vec<u64>, HashSet<u64>) {
    let mut graph: DiGraph<u64, ()> = DiGraph::new();
    let mut index: BTreeMap<u64, NodeIndex> = BTreeMap::new();
    for n in nodes.iter().filter(|n| !n.is_delete) {
        index.insert(n.id, graph.add_node(n.id));
    }
    let adds: HashSet<u64> = nodes.iter().filter(|n| n.is_add).map(|n| n.id).collect();
    let renames: HashSet<u64> = nodes.iter().filter(|n| n.is_rename).map(|n| n.id).collect();
    let mut split = HashSet::new();
    for n in nodes.iter().filter(|n| !n.is_delete) {
        for r in &n.refs {
            if *r == n.id && n.is_add {
                split.insert(n.id);
            } else if *r != n.id && (adds.contains(r) || renames.contains(r)) {
                if let (Some(from), Some(to)) = (index.get(r), index.get(&n.id)) {
                    graph.update_edge(*from, *to, ());
                }
            }
        }
    }
    let mut sccs = petgraph::algo::kosaraju_scc(&graph);
    sccs.reverse();
    let mut out = Vec::with_capacity(nodes.len());
    for mut scc in sccs {
        if scc.len() > 1 {
            split.extend(scc.iter().map(|i| graph[*i]).filter(|id| adds.contains(id)));
        }
        scc.sort_by_key(|i| graph[*i]);
        out.extend(scc.into_iter().map(|i| graph[i]));
    }
    let mut deletes: Vec<u64> = nodes.iter().filter(|n| n.is_delete).map(|n| n.id).collect();
    deletes.sort_unstable();
    out.extend(deletes);
    (out, split)
}

fn value_refs(v: &Value, out: &mut Vec<u64>) {
    for item in v.items() {
        if let Value::Ref(id) = item {
            out.push(*id);
        }
    }
}

fn op_values(op: &AttrOp) -> Vec<&Value> {
    match op {
        AttrOp::Replace(v) => vec![v],
        AttrOp::Add(vs) | AttrOp::Remove(vs) => vs.iter().collect(),
        AttrOp::Clear => vec![],
    }
}

pub(crate) struct Exporter<'a> {
    pub store: &'a Store,
    pub model: &'a Model,
    pub log: &'a mut RunLog,
    pub conn: Sym,
    /// Set when the step is to stop at its next batch boundary.
    pub stop: crate::StopFlag,
    /// Where every answered change is recorded.
    pub audit: Option<AuditLog>,
    /// The entries of the answers not yet written to it.
    pub entries: Vec<AuditEntry>,
    /// When failures quarantine the connector.
    pub quarantine: crate::quarantine::QuarantinePolicy,
    /// How many pending changes are ordered together ([`ORDER_CHUNK`]).
    pub chunk: usize,
    /// Changes the system answered in this run.
    pub answered: u64,
    /// How many of them failed.
    pub failed: u64,
}

/// How many pending changes are ordered together: an export holds the
/// reference graph of one chunk at a time, and of the whole queue only its
/// ids (8 bytes a change).
pub(crate) const ORDER_CHUNK: usize = 100_000;

/// Spans dropped per commit at the end of an export step.
const EXPORT_SPANS_PER_COMMIT: usize = 1000;

/// The connector's export queue: the ids of its pending adds and updates,
/// and of its pending deletes, each in id order.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub changes: Vec<u64>,
    pub deletes: Vec<u64>,
    /// The spans read: a step that ends well has answered every change
    /// they queued, so it drops them (what failed is queued on its own
    /// key, see [`Exporter::fail`]).
    pub spans: Vec<Vec<u8>>,
}

/// How far an export run is: changes taken from the queue, of how many.
struct Progress {
    done: u64,
    total: u64,
}

impl Node {
    /// The pending export of `cs` summarised; `None` for nothing pending.
    fn of(cs: &CsObject) -> Option<Node> {
        let mut refs = Vec::new();
        let (is_add, is_delete, is_rename) = match cs.pending_export.as_ref()? {
            PendingExport::Add { attrs } => {
                for (_, v) in attrs.iter() {
                    value_refs(v, &mut refs);
                }
                (true, false, false)
            }
            PendingExport::Update { changes, new_dn } => {
                for (_, op) in changes {
                    for v in op_values(op) {
                        value_refs(v, &mut refs);
                    }
                }
                (false, false, new_dn.is_some())
            }
            PendingExport::Delete => (false, true, false),
        };
        Some(Node {
            id: cs.key.id,
            is_add,
            is_delete,
            is_rename,
            refs,
        })
    }
}

impl Exporter<'_> {
    fn has_dn(&self) -> bool {
        self.model.conn(self.conn).is_some_and(|c| c.info.has_dn)
    }

    /// The key of this connector's object `id`.
    fn key(&self, id: u64) -> CsKey {
        CsKey {
            conn: self.conn,
            id,
        }
    }

    /// The connector's export queue, split into deletes and the rest.
    pub(crate) fn queue(&self) -> Result<Queue, StoreError> {
        let mut queue = Queue::default();
        let spans = self.store.for_each_pending_export(self.conn, &mut |cs| {
            match cs.pending_export {
                Some(PendingExport::Delete) => queue.deletes.push(cs.key.id),
                _ => queue.changes.push(cs.key.id),
            }
            Ok(true)
        })?;
        queue.spans = spans.into_iter().map(|s| s.key).collect();
        Ok(queue)
    }

    /// The pending exports of `ids`, summarised.
    fn nodes(&self, ids: &[u64]) -> Result<Vec<Node>, StoreError> {
        let txn = self.store.begin();
        let mut nodes = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(node) = txn.cs(self.key(id))?.as_ref().and_then(Node::of) {
                nodes.push(node);
            }
        }
        Ok(nodes)
    }

    /// Whether object `id` has a pending add or rename, which the objects
    /// referring to it must follow.
    fn is_followed(&self, txn: &Txn<'_>, id: u64) -> Result<bool, StoreError> {
        Ok(txn.cs(self.key(id))?.is_some_and(|cs| {
            matches!(
                cs.pending_export,
                Some(
                    PendingExport::Add { .. }
                        | PendingExport::Update {
                            new_dn: Some(_),
                            ..
                        }
                )
            )
        }))
    }

    /// The nodes of a chunk that reference an add or a rename of a later
    /// chunk (`later`: the changes after this chunk, in id order) or a
    /// rename held back by an earlier chunk, and those that reference a
    /// rename of this chunk held back itself: a reference by DN must
    /// follow the rename.
    fn forward_referrers(
        &self,
        nodes: &[Node],
        later: &[u64],
        held_renames: &HashSet<u64>,
    ) -> Result<HashSet<u64>, StoreError> {
        let txn = self.store.begin();
        let mut forward = HashSet::new();
        for n in nodes {
            for &r in n.refs.iter().filter(|&&r| r != n.id) {
                let orders = held_renames.contains(&r)
                    || (later.binary_search(&r).is_ok() && self.is_followed(&txn, r)?);
                if orders {
                    forward.insert(n.id);
                    break;
                }
            }
        }
        let mut waiting_renames: HashSet<u64> = nodes
            .iter()
            .filter(|n| n.is_rename && forward.contains(&n.id))
            .map(|n| n.id)
            .collect();
        while !waiting_renames.is_empty() {
            let followers: Vec<&Node> = nodes
                .iter()
                .filter(|n| !forward.contains(&n.id))
                .filter(|n| {
                    n.refs
                        .iter()
                        .any(|r| *r != n.id && waiting_renames.contains(r))
                })
                .collect();
            forward.extend(followers.iter().map(|n| n.id));
            waiting_renames = followers
                .iter()
                .filter(|n| n.is_rename)
                .map(|n| n.id)
                .collect();
        }
        Ok(forward)
    }

    /// Exports everything pending, refusing when it would delete more than
    /// the threshold.
    pub async fn run(
        &mut self,
        connector: &dyn Connector,
        allow_deletes: Option<usize>,
    ) -> Result<(), EngineError> {
        let name = self.store.name(self.conn).to_string();
        if let Some(q) = crate::quarantine::get(self.store, &name)? {
            return Err(EngineError::Quarantined {
                connector: name,
                run: q.run,
                reason: q.reason,
            });
        }
        let queue = self.queue()?;
        let deletes = queue.deletes.len();
        let threshold = allow_deletes.unwrap_or(self.model.deletion_threshold);
        if deletes > threshold {
            return Err(EngineError::DeletionThreshold {
                connector: self.store.name(self.conn).to_string(),
                deletes,
                threshold,
            });
        }
        if !queue.changes.is_empty() || !queue.deletes.is_empty() {
            connector.export_starting().await;
        }
        let mut result = self.export_passes(connector, &queue).await;
        if result.is_ok() {
            result = self.drop_spans(&queue.spans).map_err(EngineError::from);
        }
        connector.export_finished().await;
        // What the system answered is in the log even when the step failed.
        let written = self.write_audit();
        let synced = match &self.audit {
            Some(log) => log.sync().map_err(EngineError::from),
            None => Ok(()),
        };
        result.and(written).and(synced)
    }

    /// Drops the export-queue spans a step that ended well worked through.
    fn drop_spans(&self, spans: &[Vec<u8>]) -> Result<(), StoreError> {
        for chunk in spans.chunks(EXPORT_SPANS_PER_COMMIT) {
            let mut txn = self.store.begin();
            for k in chunk {
                txn.delete_raw(k.clone());
            }
            self.store.commit(txn)?;
        }
        Ok(())
    }

    /// Exports the queue in passes:
    /// 1. the adds and updates, a chunk at a time (see
    ///    [`Exporter::export_chunks`]); the updates that wait, again the
    ///    same way, until none waits;
    /// 2. the deletes;
    /// 3. the references of the split adds.
    async fn export_passes(
        &mut self,
        connector: &dyn Connector,
        queue: &Queue,
    ) -> Result<(), EngineError> {
        let mut progress = Progress {
            done: 0,
            total: (queue.changes.len() + queue.deletes.len()) as u64,
        };
        let mut second = Vec::new();
        let mut waiting = self
            .export_chunks(connector, &queue.changes, true, &mut progress, &mut second)
            .await?;
        while !waiting.is_empty() {
            let before = waiting.len();
            waiting = self
                .export_chunks(connector, &waiting, true, &mut progress, &mut second)
                .await?;
            if waiting.len() == before {
                // Renames that wait on each other: no order serves them
                // all, so they go as they come.
                waiting = self
                    .export_chunks(connector, &waiting, false, &mut progress, &mut second)
                    .await?;
            }
        }
        self.export_in_batches(connector, &queue.deletes, &HashSet::new(), &mut progress)
            .await?;
        let second = self.follow_ups(second)?;
        self.export_in_batches(connector, &second, &HashSet::new(), &mut progress)
            .await
    }

    /// Exports `ids` a chunk of [`Exporter::chunk`] at a time, each chunk in
    /// reference order, with cycles split (added without their references,
    /// which `second` collects for the last pass). With `hold`, a change
    /// that references an add or a rename of a later chunk, or a rename
    /// held back before it, is held back itself: an add is split, an
    /// update is returned, to be exported after the chunks.
    async fn export_chunks(
        &mut self,
        connector: &dyn Connector,
        ids: &[u64],
        hold: bool,
        progress: &mut Progress,
        second: &mut Vec<u64>,
    ) -> Result<Vec<u64>, EngineError> {
        let chunk = self.chunk.max(1);
        let mut waiting = Vec::new();
        let mut held_renames = HashSet::new();
        for (i, part) in ids.chunks(chunk).enumerate() {
            let mut nodes = self.nodes(part)?;
            let forward = if hold {
                let later = ids.get((i + 1) * chunk..).unwrap_or_default();
                self.forward_referrers(&nodes, later, &held_renames)?
            } else {
                HashSet::new()
            };
            let mut split_adds = Vec::new();
            nodes.retain(|n| match (forward.contains(&n.id), n.is_add) {
                (false, _) => true,
                (true, true) => {
                    split_adds.push(n.id);
                    true
                }
                (true, false) => {
                    waiting.push(n.id);
                    if n.is_rename {
                        held_renames.insert(n.id);
                    }
                    false
                }
            });
            let (order, mut split) = order(&nodes);
            split.extend(split_adds);
            progress.total += split.len() as u64;
            self.export_in_batches(connector, &order, &split, progress)
                .await?;
            second.extend(split);
        }
        Ok(waiting)
    }

    /// Of the split adds, in id order, those whose references are still
    /// to be set: an add that failed, or that the system already had, has
    /// none pending.
    fn follow_ups(&self, mut split: Vec<u64>) -> Result<Vec<u64>, StoreError> {
        split.sort_unstable();
        let txn = self.store.begin();
        let mut kept = Vec::with_capacity(split.len());
        for id in split {
            if let Some(Some(PendingExport::Update { .. })) =
                txn.cs(self.key(id))?.map(|cs| cs.pending_export)
            {
                kept.push(id);
            }
        }
        Ok(kept)
    }

    async fn export_in_batches(
        &mut self,
        connector: &dyn Connector,
        order: &[u64],
        split: &HashSet<u64>,
        progress: &mut Progress,
    ) -> Result<(), EngineError> {
        let batch_size = self
            .model
            .conn(self.conn)
            .map_or(500, |c| c.info.export_batch_size)
            .max(1);
        let mut rest = order;
        while !rest.is_empty() {
            if crate::stop_requested(&self.stop) {
                return Err(EngineError::Stopped);
            }
            let mut txn = self.store.begin();
            let mut sent: BTreeMap<u64, Sent> = BTreeMap::new();
            // The export order within the batch (`sent` is keyed by id).
            let mut sequence = Vec::new();
            let mut taken = 0;
            for id in rest {
                if sent.len() >= batch_size {
                    break;
                }
                let Some(cs) = txn.cs(self.key(*id))? else {
                    taken += 1;
                    continue;
                };
                if !split.contains(id) && self.refers_to_unkeyed_add(&cs, &sent) {
                    // It references an add of this batch whose DN or anchor
                    // only the system's answer tells: send it in the next batch.
                    break;
                }
                taken += 1;
                match self.change_for(&txn, &cs, split.contains(id))? {
                    Ok((change, follow_up)) => {
                        sequence.push(*id);
                        sent.insert(
                            *id,
                            Sent {
                                cs,
                                change,
                                follow_up,
                            },
                        );
                    }
                    Err(message) => self.fail(
                        &mut txn,
                        &cs,
                        &ExportFailure::new(FailureKind::Permanent, message),
                    )?,
                }
            }
            rest = &rest[taken..];
            progress.done += taken as u64;
            self.log.progress(progress.done, Some(progress.total));
            self.recover_in_flight(connector, &mut txn, &mut sent)
                .await?;
            if sent.is_empty() {
                self.store.commit(txn)?;
                continue;
            }
            let marked = self.mark_in_flight(&mut txn, &mut sent)?;
            self.store
                .commit(std::mem::replace(&mut txn, self.store.begin()))?;
            if marked {
                // The intent must survive the process: a kill after the
                // system applies the adds must find them in flight.
                self.store.flush()?;
            }
            let interrupted = self.send(connector, &mut txn, &sequence, &mut sent).await?;
            self.log.checkpoint(self.store, &mut txn)?;
            self.store.commit(txn)?;
            if self.quarantine.trips(self.failed, self.answered) {
                let connector = self.store.name(self.conn).to_string();
                let reason = format!(
                    "{} of {} changes failed ({} %), more than the {} % of `quarantine_error_percent`",
                    self.failed,
                    self.answered,
                    self.failed * 100 / self.answered.max(1),
                    self.quarantine.error_percent
                );
                crate::quarantine::set(
                    self.store,
                    &crate::quarantine::Quarantine {
                        connector: connector.clone(),
                        run: self.log.id(),
                        since: chrono::Utc::now().timestamp_micros(),
                        reason: reason.clone(),
                    },
                )?;
                return Err(EngineError::Quarantined {
                    connector,
                    run: self.log.id(),
                    reason,
                });
            }
            if let Some(e) = interrupted {
                let connector_name = self.store.name(self.conn).to_string();
                let message = format!(
                    "the export stopped part-way; {} change(s) of the batch have no known outcome and stay pending: {}",
                    sent.len(),
                    e.message
                );
                return Err(EngineError::Connector {
                    connector: connector_name,
                    source: crate::ConnectorError::of(e.kind, message),
                });
            }
        }
        Ok(())
    }

    /// Adds of a system-assigned anchor whose last attempt has no recorded
    /// answer: asks the connector whether the object exists, and records the
    /// add as applied when it does instead of sending it again.
    async fn recover_in_flight(
        &mut self,
        connector: &dyn Connector,
        txn: &mut Txn<'_>,
        sent: &mut BTreeMap<u64, Sent>,
    ) -> Result<(), EngineError> {
        let in_flight: Vec<u64> = sent
            .iter()
            .filter(|(_, s)| {
                s.cs.state == CsState::InFlight && matches!(s.change.op, ExportOp::Add { .. })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in in_flight {
            let found = connector.find_added(&sent[&id].change).await.map_err(|e| {
                EngineError::Connector {
                    connector: self.store.name(self.conn).to_string(),
                    source: e,
                }
            })?;
            if let Some(anchor) = found {
                tracing::info!(connector = %self.store.name(self.conn), anchor, "an add of unknown outcome had been applied; recording it instead of sending it again");
                if let Some(s) = sent.remove(&id) {
                    self.applied(txn, &s.cs, &s.change, Some(anchor), s.follow_up)?;
                }
            }
        }
        Ok(())
    }

    /// Records the intent of every add whose anchor the system assigns, in
    /// its own commit before the batch is sent: a crash before the answer is
    /// recorded leaves the object in flight, and the next export looks it up
    /// instead of creating it twice.
    fn mark_in_flight(
        &self,
        txn: &mut Txn<'_>,
        sent: &mut BTreeMap<u64, Sent>,
    ) -> Result<bool, StoreError> {
        let Some(conn) = self.model.conn(self.conn) else {
            return Ok(false);
        };
        let mut any = false;
        for s in sent.values_mut() {
            if matches!(s.change.op, ExportOp::Add { .. })
                && s.cs.state == CsState::Provisioned
                && conn.info.assigns_anchor(&s.change.object_type)
            {
                let mut marked = s.cs.clone();
                marked.state = CsState::InFlight;
                txn.save_cs(Some(&s.cs), Some(&marked))?;
                s.cs = marked;
                any = true;
            }
        }
        Ok(any)
    }

    /// Sends `sent` and records every answer; retryable failures are sent
    /// again under the engine's retry policy. What is left in `sent`
    /// afterwards has no known outcome; `Some` when the batch was cut short.
    async fn send(
        &mut self,
        connector: &dyn Connector,
        txn: &mut Txn<'_>,
        sequence: &[u64],
        sent: &mut BTreeMap<u64, Sent>,
    ) -> Result<Option<crate::ConnectorError>, EngineError> {
        let policy = self.model.retry;
        let mut attempt = 1;
        loop {
            let batch: Vec<ExportChange> = sequence
                .iter()
                .filter_map(|id| sent.get(id))
                .map(|s| s.change.clone())
                .collect();
            let report = match connector.export(batch).await {
                Ok(r) => r,
                Err(e) => ExportReport {
                    results: Vec::new(),
                    interrupted: Some(e),
                },
            };
            let mut retry = BTreeMap::new();
            let answered = report.results.len();
            for result in report.results {
                let Some(s) = sent.remove(&result.id) else {
                    continue;
                };
                match result.outcome {
                    Ok(applied) => {
                        self.applied(txn, &s.cs, &s.change, applied.anchor, s.follow_up)?
                    }
                    Err(f) if f.kind == FailureKind::Retryable && attempt < policy.attempts => {
                        retry.insert(result.id, (s, f));
                    }
                    Err(mut f) => {
                        if f.kind == FailureKind::AlreadyExists && f.existing_anchor.is_none() {
                            // Adopting needs the object's anchor unless the
                            // DN or the anchor attribute identifies it.
                            f.existing_anchor = self.lookup(connector, &s).await?;
                        }
                        self.failed(txn, &s, f, attempt)?
                    }
                }
            }
            if answered > 0 {
                // Before the store records the answers: a change the system
                // applied is in the log even if the process dies next.
                self.write_audit()?;
            }
            if let Some(e) = report.interrupted {
                // Retries wait for the next run too: their outcome is known
                // (not applied), so they are failures, not unknowns.
                for (_, (s, f)) in retry {
                    self.failed(txn, &s, f, attempt)?;
                }
                return Ok(Some(e));
            }
            for s in std::mem::take(sent).into_values() {
                self.fail(
                    txn,
                    &s.cs,
                    &ExportFailure::new(
                        FailureKind::Permanent,
                        "the connector returned no result for this change",
                    ),
                )?;
            }
            if retry.is_empty() {
                return Ok(None);
            }
            let wait = policy.wait(attempt, None);
            tracing::warn!(
                connector = %self.store.name(self.conn),
                "{} change(s) failed with a retryable error (attempt {attempt} of {}); retrying in {} ms",
                retry.len(),
                policy.attempts,
                wait.as_millis()
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
            sent.extend(retry.into_iter().map(|(id, (s, _))| (id, s)));
            // A timeout is a retryable failure of unknown outcome: an add in
            // flight is looked up before it is sent again.
            self.recover_in_flight(connector, txn, sent).await?;
            if sent.is_empty() {
                return Ok(None);
            }
        }
    }

    /// The anchor of the object an add may have created, when the system
    /// assigns anchors and has no DN to find it by; `None` otherwise.
    async fn lookup(
        &self,
        connector: &dyn Connector,
        s: &Sent,
    ) -> Result<Option<String>, EngineError> {
        let assigns = self
            .model
            .conn(self.conn)
            .is_some_and(|c| c.info.assigns_anchor(&s.change.object_type) && !c.info.has_dn);
        if !assigns || s.cs.anchor.is_some() {
            return Ok(None);
        }
        connector
            .find_added(&s.change)
            .await
            .map_err(|e| EngineError::Connector {
                connector: self.store.name(self.conn).to_string(),
                source: e,
            })
    }

    /// Records a failed change by its kind: an add that found the object
    /// already there joins it; a delete of an object that is not there is
    /// done; anything else is an error on the object, kept pending.
    fn failed(
        &mut self,
        txn: &mut Txn<'_>,
        s: &Sent,
        failure: ExportFailure,
        attempts: u32,
    ) -> Result<(), StoreError> {
        let error = format!("{}: {}", failure.kind.code(), failure.message);
        self.audit_entry(txn, &s.cs, &s.change, None, Some(&error))?;
        self.answered += 1;
        if !matches!(
            (failure.kind, &s.change.op),
            (FailureKind::AlreadyExists, ExportOp::Add { .. })
                | (FailureKind::NotFound, ExportOp::Delete)
        ) {
            self.failed += 1;
        }
        match (failure.kind, &s.change.op) {
            (FailureKind::AlreadyExists, ExportOp::Add { .. })
                if failure.existing_anchor.is_some()
                    || s.cs.anchor.is_some()
                    || (self.has_dn() && s.cs.dn.is_some()) =>
            {
                self.adopt(txn, &s.cs, failure)
            }
            (FailureKind::NotFound, ExportOp::Delete) => {
                self.applied(txn, &s.cs, &s.change, None, None)
            }
            (FailureKind::Retryable, _) => {
                let mut f = failure;
                f.message = format!(
                    "{} (gave up after {attempts} attempt(s); kept pending for the next run)",
                    f.message
                );
                self.fail(txn, &s.cs, &f)
            }
            _ => self.fail(txn, &s.cs, &failure),
        }
    }

    /// An add found the object already in the system: the connector-space
    /// object becomes that object (with its anchor, when the system told
    /// it), the add is dropped, and the next import brings in what it holds
    /// so that sync stages only the differences.
    fn adopt(
        &mut self,
        txn: &mut Txn<'_>,
        before: &CsObject,
        failure: ExportFailure,
    ) -> Result<(), StoreError> {
        let mut cs = before.clone();
        cs.state = CsState::Present;
        cs.pending_export = None;
        cs.error = None;
        if failure.existing_anchor.is_some() {
            cs.anchor = failure.existing_anchor.clone();
        }
        tracing::info!(
            connector = %self.store.name(self.conn),
            object = %identifier(&cs),
            code = failure.code.as_deref().unwrap_or(""),
            "the object to add already exists; joined it: {}",
            failure.message
        );
        self.log.record.counters.export_adopted += 1;
        // The object holds what no sync evaluated.
        crate::sync::Basis::forget(txn);
        txn.save_cs(Some(before), Some(&cs))
    }

    /// Whether `cs`'s pending export references an object added in the
    /// batch being built whose reference key (DN or anchor) is not known
    /// until the connected system applies the add.
    fn refers_to_unkeyed_add(&self, cs: &CsObject, sent: &BTreeMap<u64, Sent>) -> bool {
        let refs = Node::of(cs).map(|n| n.refs).unwrap_or_default();
        let has_dn = self.has_dn();
        refs.iter().any(|r| match sent.get(r) {
            Some(Sent {
                cs: target, change, ..
            }) => match &change.op {
                ExportOp::Add { .. } => {
                    (if has_dn { &target.dn } else { &target.anchor }).is_none()
                }
                // A DN reference to an object this batch moves must carry the new DN.
                ExportOp::Update {
                    new_dn: Some(_), ..
                } => has_dn,
                _ => false,
            },
            None => false,
        })
    }

    /// The change to send for `cs` (references in the system's terms), and,
    /// for a split add, the update that sets its references afterwards.
    fn change_for(
        &self,
        txn: &Txn<'_>,
        cs: &CsObject,
        split: bool,
    ) -> Result<Result<(ExportChange, Option<PendingExport>), String>, StoreError> {
        let form = self.model.ref_form(self.conn, false);
        let Some(pending) = &cs.pending_export else {
            return Ok(Err("nothing pending".into()));
        };
        let unresolved = |v: &Value| v.items().iter().any(|i| matches!(i, Value::Ref(_)));
        let name = |s: Sym| self.store.name(s).to_string();
        let (op, follow_up) = match pending {
            PendingExport::Add { attrs } => {
                let mut out = Vec::new();
                let mut later = Vec::new();
                for (k, v) in attrs.iter() {
                    if split && unresolved(v) {
                        later.push((*k, AttrOp::Replace(v.clone())));
                        continue;
                    }
                    let t = translate(txn, self.conn, form, v)?;
                    if unresolved(&t) {
                        return Ok(Err(format!("'{}' references an object that has no anchor in the connected system yet", name(*k))));
                    }
                    out.push((name(*k), t));
                }
                let follow_up = (!later.is_empty()).then_some(PendingExport::Update {
                    new_dn: None,
                    changes: later,
                });
                (ExportOp::Add { attributes: out }, follow_up)
            }
            PendingExport::Update { new_dn, changes } => {
                let mut out = Vec::new();
                for (k, op) in changes {
                    let op = translate_op(txn, self.conn, form, op)?;
                    if op_values(&op).into_iter().any(unresolved) {
                        return Ok(Err(format!("'{}' references an object that has no anchor in the connected system yet", name(*k))));
                    }
                    out.push((name(*k), op));
                }
                (
                    ExportOp::Update {
                        new_dn: new_dn.clone(),
                        changes: out,
                    },
                    None,
                )
            }
            PendingExport::Delete => (ExportOp::Delete, None),
        };
        Ok(Ok((
            ExportChange {
                id: cs.key.id,
                object_type: self.store.name(cs.object_type).to_string(),
                anchor: cs.anchor.clone(),
                dn: cs.dn.clone(),
                op,
            },
            follow_up,
        )))
    }

    /// A rename applied in a system that rewrites DN references itself
    /// (Active Directory): the objects of this connector that named the
    /// renamed one now name it by `new` in the system, so their holograms
    /// (and unconfirmed exports) say so too. The next import then confirms
    /// them unchanged instead of reporting a change or a mismatch.
    fn follow_rename(
        &mut self,
        txn: &mut Txn<'_>,
        renamed: crate::model::MvId,
        old: &str,
        new: &str,
    ) -> Result<(), StoreError> {
        let Some(conn) = self.model.conn(self.conn) else {
            return Ok(());
        };
        if !conn.info.rewrites_dn_references {
            return Ok(());
        }
        for referrer in txn.referrers(renamed)? {
            let Some(key) = txn.mv(referrer)?.and_then(|m| m.link_in(self.conn)) else {
                continue;
            };
            let Some(before) = txn.cs(key)? else { continue };
            let type_name = self.store.name(before.object_type);
            let is_dn = |a: Sym| {
                conn.reference_kind(&type_name, &self.store.name(a))
                    == Some(crate::connector::RefKind::Dn)
            };
            let mut after = before.clone();
            for (attr, value) in after
                .hologram
                .0
                .iter_mut()
                .chain(after.escrow.attrs.iter_mut())
            {
                if is_dn(*attr) {
                    if let Some(v) = crate::model::rename_dn(value, old, new) {
                        *value = v;
                    }
                }
            }
            txn.save_cs(Some(&before), Some(&after))?;
        }
        Ok(())
    }

    /// Writes the pending audit entries.
    fn write_audit(&mut self) -> Result<(), EngineError> {
        let entries = std::mem::take(&mut self.entries);
        match &self.audit {
            Some(log) => Ok(log.append(&entries)?),
            None => Ok(()),
        }
    }

    /// The audit entry of an answered change: each attribute old → new,
    /// references in the system's terms.
    fn audit_entry(
        &mut self,
        txn: &Txn<'_>,
        before: &CsObject,
        change: &ExportChange,
        anchor: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        if self.audit.is_none() {
            return Ok(());
        }
        let form = self.model.ref_form(self.conn, false);
        // One attribute at a time: an export is a hot loop, and only a
        // delete needs the whole object.
        let old = |name: &str| -> Result<Value, StoreError> {
            match self.store.lookup(name).and_then(|s| before.known_attr(s)) {
                Some(v) => translate(txn, self.conn, form, v),
                None => Ok(Value::Null),
            }
        };
        let (operation, new_dn, changes) = match &change.op {
            ExportOp::Add { attributes } => (
                "add",
                None,
                attributes
                    .iter()
                    .map(|(n, v)| AuditChange::new(n, &Value::Null, v))
                    .collect(),
            ),
            ExportOp::Update { new_dn, changes } => {
                let mut out = Vec::with_capacity(changes.len());
                for (n, op) in changes {
                    let was = old(n)?;
                    out.push(AuditChange::new(n, &was, &apply_op(&was, op)));
                }
                (
                    if new_dn.is_some() { "rename" } else { "update" },
                    new_dn.clone(),
                    out,
                )
            }
            ExportOp::Delete => {
                let mut out = Vec::new();
                for (k, v) in before.known_attrs().iter() {
                    let v = translate(txn, self.conn, form, v)?;
                    out.push(AuditChange::new(&self.store.name(*k), &v, &Value::Null));
                }
                ("delete", None, out)
            }
        };
        self.entries.push(AuditEntry {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            run: self.log.id(),
            connector: self.store.name(self.conn).to_string(),
            object: before.key.id,
            object_type: change.object_type.clone(),
            anchor: anchor.map(str::to_owned).or_else(|| before.anchor.clone()),
            dn: before.dn.clone(),
            operation: operation.into(),
            new_dn,
            changes,
            result: if error.is_some() { "failed" } else { "applied" }.into(),
            error: error.map(str::to_owned),
        });
        Ok(())
    }

    fn applied(
        &mut self,
        txn: &mut Txn<'_>,
        before: &CsObject,
        change: &ExportChange,
        anchor: Option<String>,
        follow_up: Option<PendingExport>,
    ) -> Result<(), StoreError> {
        self.audit_entry(txn, before, change, anchor.as_deref(), None)?;
        self.answered += 1;
        let mut cs = before.clone();
        cs.error = None;
        if anchor.is_some() {
            cs.anchor = anchor;
        }
        let counters = &mut self.log.record.counters;
        match &change.op {
            ExportOp::Add { attributes } => {
                cs.state = CsState::Added;
                cs.escrow.attrs = attributes
                    .iter()
                    .map(|(n, v)| (self.store.intern(n), v.clone()))
                    .collect();
                cs.escrow.attrs.sort_by_key(|(k, _)| *k);
                cs.escrow.dn = cs.dn.clone();
                counters.export_adds += 1;
            }
            ExportOp::Update { new_dn, changes } => {
                // Each change applies to the result of the previous ones (a
                // member added and another removed in one update).
                let mut known = cs.known_attrs();
                for (n, op) in changes {
                    let sym = self.store.intern(n);
                    let value = apply_op(known.get(sym).unwrap_or(&Value::Null), op);
                    known.set(sym, value.clone());
                    match cs.escrow.attrs.binary_search_by_key(&sym, |(k, _)| *k) {
                        Ok(i) => cs.escrow.attrs[i].1 = value,
                        Err(i) => cs.escrow.attrs.insert(i, (sym, value)),
                    }
                }
                if let Some(dn) = new_dn {
                    if let (Some(old), Some(link)) = (before.dn.as_deref(), before.link) {
                        self.follow_rename(txn, link.mv, old, dn)?;
                    }
                    cs.dn = Some(dn.clone());
                    cs.escrow.dn = Some(dn.clone());
                    self.log.record.counters.export_renames += 1;
                } else {
                    counters.export_updates += 1;
                }
            }
            ExportOp::Delete => {
                cs.state = CsState::Deleted;
                cs.escrow.deleted = true;
                counters.export_deletes += 1;
            }
        }
        cs.pending_export = follow_up;
        txn.save_cs(Some(before), Some(&cs))
    }

    fn fail(
        &mut self,
        txn: &mut Txn<'_>,
        before: &CsObject,
        failure: &ExportFailure,
    ) -> Result<(), StoreError> {
        let mut cs = before.clone();
        if cs.state == CsState::InFlight && failure.kind != FailureKind::Retryable {
            // The system answered: the add was not applied. (A retryable
            // failure, a timeout, may have been: it stays in flight.)
            cs.state = CsState::Provisioned;
        }
        let code = failure.kind.code().to_string();
        cs.error = Some(ObjectError {
            run: self.log.id(),
            code: code.clone(),
            message: failure.message.clone(),
            system_code: failure.code.clone(),
        });
        txn.save_cs(Some(before), Some(&cs))?;
        // Still pending: queued on its own key, which outlives the span
        // that may have queued it.
        txn.queue_export(cs.key);
        self.log.error(
            txn,
            RunError {
                object: Some(cs.key),
                identifier: identifier(&cs),
                code,
                message: failure.message.clone(),
                system_code: failure.code.clone(),
            },
        )
    }
}

/// How a connector-space object is named in errors: its anchor, else its
/// DN, else its id.
fn identifier(cs: &CsObject) -> String {
    cs.anchor
        .clone()
        .or(cs.dn.clone())
        .unwrap_or_else(|| format!("cs:{}", cs.key.id))
}

/// A change of the batch being exported, with the object it came from.
#[derive(Debug)]
struct Sent {
    cs: CsObject,
    change: ExportChange,
    /// For a split add, the update that sets its references afterwards.
    follow_up: Option<PendingExport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(id: u64, refs: &[u64]) -> Node {
        Node {
            id,
            is_add: true,
            is_delete: false,
            is_rename: false,
            refs: refs.to_vec(),
        }
    }

    #[test]
    fn managers_are_added_before_their_reports() {
        // 3 reports to 2 reports to 1; listed in the wrong order.
        let nodes = vec![add(3, &[2]), add(2, &[1]), add(1, &[])];
        let (order, split) = order(&nodes);
        assert_eq!(order, vec![1, 2, 3]);
        assert!(split.is_empty());
    }

    #[test]
    fn deletes_go_last_and_cycles_are_split() {
        let del = Node {
            id: 0,
            is_add: false,
            is_delete: true,
            is_rename: false,
            refs: vec![],
        };
        let nodes = vec![del, add(5, &[6]), add(6, &[5]), add(7, &[7])];
        let (order, split) = order(&nodes);
        assert_eq!(order.last(), Some(&0));
        assert_eq!(split, HashSet::from([5, 6, 7]));
    }

    #[test]
    fn references_to_existing_objects_impose_no_order() {
        let nodes = vec![add(9, &[100]), add(8, &[])];
        let (order, _) = order(&nodes);
        assert_eq!(order.len(), 2);
    }
}
