//! Synchronization: per connector-space object, inbound (scope, join,
//! projection, attribute flow with precedence) and then outbound for its
//! metaverse object (provisioning, export flows, deprovisioning).
//!
//! Invariant: the metaverse is written only here, and an object's flowed
//! attributes are always recomputed from all its linked sources
//! ([`Syncer::refresh_mv`]); delta sync only chooses which objects to visit.

mod basis;
pub(crate) use basis::Basis;
mod env;
mod inbound;
mod outbound;
mod prefetch;
#[cfg(test)]
pub(crate) use prefetch::with_reader_ahead;

use std::collections::{BTreeMap, BTreeSet};

use rules::{EvalError, Expr};

use crate::connector::RefKind;
use crate::history::{RunError, RunLog};
use crate::model::{
    CsKey, CsObject, CsState, ImportKind, Link, LinkKind, MvId, MvObject, ObjectError, Sym,
};
use crate::setup::{DeletionRule, Model};
use crate::store::{keys, Store, StoreError, Txn};

pub(crate) use env::{CsEnv, MvEnv};
pub(crate) use inbound::{contributions, winners};
pub(crate) use outbound::{translate, translate_op, RefForm};

/// Objects per committed batch.
const BATCH: usize = 500;

/// Why one object could not be synchronized.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The store failed: the step fails.
    Store(StoreError),
    /// This object has an error: recorded on it, the run goes on.
    Object { code: &'static str, message: String },
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl Failure {
    pub fn object(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::Object {
            code,
            message: message.into(),
        }
    }

    /// A scoping-filter error of rule `r`.
    pub fn scope(r: &crate::setup::RuleModel, e: EvalError) -> Failure {
        match &r.rule.scope {
            Some(expr) => Failure::eval(&r.rule.name, "scope", expr, e),
            None => Failure::object("flow-error", e.message),
        }
    }

    /// An expression error, naming the rule, the place and the character.
    pub fn eval(rule: &str, place: &str, expr: &Expr, e: EvalError) -> Failure {
        let (_, col) = rules::line_col(expr.source(), e.span.start);
        Failure::object(
            "flow-error",
            format!(
                "rule '{rule}', {place}: {} (at character {col} of `{}`)",
                e.message,
                expr.source()
            ),
        )
    }
}

/// Waiting references a delta sync looks up one by one; past this many it
/// reads every waiting reference once instead (after a large import).
const ARRIVALS_LIMIT: usize = 4096;

/// Rounds of [`Syncer::resolve_waiting`] in one step, at most.
const MAX_ROUNDS: usize = 64;

/// Runs sync for one step.
pub(crate) struct Syncer<'a> {
    pub store: &'a Store,
    pub model: &'a Model,
    pub log: &'a mut RunLog,
    pub now: i64,
    /// What this step made referable, keyed as the waiting references it
    /// can resolve are: (connector, waiting key). `None`: not collected, every
    /// waiting reference is read instead (a full sync, or too many arrivals).
    /// See [`Syncer::resolve_waiting`].
    arrivals: Option<BTreeSet<(Sym, String)>>,
    /// Whether [`keys::WAITING_PASS`] is in the store (put by this step, or
    /// left by a step that was killed).
    pass_pending: bool,
    /// Metaverse objects this step may delete at most.
    pub deletion_limit: usize,
    /// Set when the step is to stop at its next batch boundary.
    pub stop: Option<crate::StopFlag>,
    /// Metaverse objects whose object got a new pending DN in a connector
    /// that stores references as text: their referrers are brought in step
    /// before the batch moves on.
    renamed: Vec<MvId>,
    /// Objects this step provisioned with initial or unique values, with
    /// the order key they chose them with: an earlier source anchor may take
    /// a unique value from them.
    pub(crate) fresh: std::collections::HashMap<CsKey, (String, MvId)>,
    /// Objects of `fresh` whose unique value an earlier anchor took: they
    /// choose again before the batch moves on.
    victims: Vec<CsKey>,
    /// A full sync's connectors taken as evaluated (`basis`): objects whose
    /// metaverse object they vouch for are read, not evaluated.
    evaluated: BTreeSet<Sym>,
    /// How many objects were read and not evaluated.
    skipped: u64,
    /// Whether this step forgot the basis (it removed something).
    forgot: bool,
}

impl<'a> Syncer<'a> {
    pub fn new(store: &'a Store, model: &'a Model, log: &'a mut RunLog, now: i64) -> Self {
        Syncer {
            store,
            model,
            log,
            now,
            arrivals: Some(BTreeSet::new()),
            pass_pending: false,
            deletion_limit: model.deletion_threshold,
            stop: None,
            renamed: Vec::new(),
            fresh: Default::default(),
            victims: Vec::new(),
            evaluated: BTreeSet::new(),
            skipped: 0,
            forgot: false,
        }
    }
}

impl Syncer<'_> {
    /// Synchronizes a connector: every object (full) or the sync queue (delta).
    /// Stops (the batch that would cross it uncommitted, so it is synced
    /// again by the next step) when it would delete more metaverse objects
    /// than [`Syncer::deletion_limit`].
    pub fn run(&mut self, conn: crate::model::Sym, full: bool) -> Result<(), crate::EngineError> {
        self.pass_pending = self.store.begin().get_raw(keys::WAITING_PASS)?.is_some();
        if full || self.pass_pending {
            // A full sync reads every waiting reference at its end: its cost
            // is the connector's size already. So does the step after one
            // that was killed before its pass: its arrivals are lost.
            self.arrivals = None;
        }
        let mut done = 0u64;
        let mut basis = self.basis()?;
        // A full sync's look-ups cover the estate: most find nothing, and
        // reading each index group once answers those from memory.
        let queue_spans = full && self.store.has_queue_spans(keys::tag::SYNC_SPAN, conn)?;
        let _absent = full.then(|| self.store.absent_lookups(queue_spans));
        if full {
            self.evaluated = self.skip_basis(&basis, conn);
            self.sync_keyed(conn, keys::tag::CS, &mut done)?;
            if self.skipped > 0 {
                tracing::info!(
                    objects = self.skipped,
                    "objects unchanged since a full sync under the same rules: read, not evaluated"
                );
            }
            // Every object was synced: the spans queue nothing more (an
            // object that failed was queued on its own key).
            self.drop_spans(conn)?;
            if !self.forgot && basis.evaluated.insert(conn) {
                let mut txn = self.store.begin();
                basis.save(&mut txn)?;
                self.store.commit(txn)?;
            }
        } else {
            self.sync_keyed(conn, keys::tag::SYNC_QUEUE, &mut done)?;
            self.sync_spans(conn, &mut done)?;
        }
        Ok(self.resolve_waiting()?)
    }

    /// Synchronizes the objects named by the keys under `tag` (objects, or
    /// queue entries) of one connector, a batch at a time.
    ///
    /// A delta sync (the queue) reads the next batch ahead on the second
    /// core (`prefetch`); a full sync does not, since applying its batches
    /// keeps that core busy.
    fn sync_keyed(&mut self, conn: Sym, tag: u8, done: &mut u64) -> Result<(), crate::EngineError> {
        let prefix = keys::conn_prefix(tag, conn);
        if tag == keys::tag::SYNC_QUEUE {
            let store = self.store;
            prefetch::with_reader_ahead(store, &prefix, |ahead| {
                self.sync_keyed_with(conn, &prefix, done, ahead)
            })
        } else {
            self.sync_keyed_with(conn, &prefix, done, &mut |_| {})
        }
    }

    /// [`Syncer::sync_keyed`], handing `ahead` the last key of each batch
    /// before syncing it.
    fn sync_keyed_with(
        &mut self,
        conn: Sym,
        prefix: &[u8],
        done: &mut u64,
        ahead: &mut dyn FnMut(Vec<u8>),
    ) -> Result<(), crate::EngineError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            self.check_stop()?;
            let chunk = self.store.keys_after(prefix, after.as_deref(), BATCH)?;
            let Some(last) = chunk.last() else {
                return Ok(());
            };
            ahead(last.clone());
            after = Some(last.clone());
            let objects: Vec<CsKey> = chunk
                .iter()
                .filter_map(|k| keys::decode_cs_keyed(k))
                .collect();
            self.sync_batch(self.store.begin(), conn, &objects, false, done)?;
        }
    }

    /// Synchronizes the objects of the connector's sync-queue spans that
    /// have a pending import, a batch at a time: each batch drops what it
    /// covered from its span in the same commit.
    fn sync_spans(&mut self, conn: Sym, done: &mut u64) -> Result<(), crate::EngineError> {
        let prefix = keys::conn_prefix(keys::tag::SYNC_SPAN, conn);
        loop {
            self.check_stop()?;
            let Some((k, v)) = self.store.kv().scan(&prefix, &prefix, false, 1)?.pop() else {
                return Ok(());
            };
            let (first, last) = keys::decode_queue_span(&k, &v)
                .ok_or_else(|| StoreError::Corrupt(format!("bad sync-queue span {k:?}")))?;
            let end = last.min(first.id.saturating_add(BATCH as u64 - 1));
            let mut txn = self.store.begin();
            txn.delete_raw(k);
            if end < last {
                let (k, v) =
                    keys::queue_span(keys::tag::SYNC_SPAN, CsKey { conn, id: end + 1 }, last);
                txn.put_raw(k, v);
            }
            let objects: Vec<CsKey> = (first.id..=end).map(|id| CsKey { conn, id }).collect();
            self.sync_batch(txn, conn, &objects, true, done)?;
        }
    }

    /// Drops the connector's sync-queue spans.
    fn drop_spans(&mut self, conn: Sym) -> Result<(), crate::EngineError> {
        let prefix = keys::conn_prefix(keys::tag::SYNC_SPAN, conn);
        loop {
            let chunk = self.store.keys_after(&prefix, None, BATCH)?;
            if chunk.is_empty() {
                return Ok(());
            }
            let mut txn = self.store.begin();
            for k in chunk {
                txn.delete_raw(k);
            }
            self.store.commit(txn)?;
        }
    }

    fn check_stop(&self) -> Result<(), crate::EngineError> {
        if self.stop.as_ref().is_some_and(crate::stop_requested) {
            // The sync queue keeps what was not synced; a full sync
            // is run again whole.
            return Err(crate::EngineError::Stopped);
        }
        Ok(())
    }

    /// Synchronizes `objects` of `conn` (with `pending_only`, those of them
    /// with a pending import) in `txn` and commits it.
    fn sync_batch(
        &mut self,
        mut txn: Txn<'_>,
        conn: Sym,
        objects: &[CsKey],
        pending_only: bool,
        done: &mut u64,
    ) -> Result<(), crate::EngineError> {
        txn.cache_objects();
        let before = self.log.record.counters.clone();
        for &key in objects {
            if pending_only && txn.cs(key)?.is_none_or(|o| o.pending_import.is_none()) {
                continue;
            }
            if !self.evaluated.is_empty() && self.unchanged(&txn, key)? {
                self.skipped += 1;
                continue;
            }
            self.sync_object(&mut txn, key)?;
        }
        if self.log.record.counters.mv_deletes as usize > self.deletion_limit {
            let deleted = before.mv_deletes as usize;
            let would = self.log.record.counters.mv_deletes as usize;
            self.log.record.counters = before;
            return Err(crate::EngineError::SyncDeletionThreshold {
                connector: self.store.name(conn).to_string(),
                deletes: would,
                deleted,
                threshold: self.deletion_limit,
            });
        }
        if basis::removals(&self.log.record.counters) > basis::removals(&before) {
            Basis::forget(&mut txn);
            self.evaluated.clear();
            self.forgot = true;
        }
        if !self.pass_pending && !txn.is_empty() {
            txn.put_raw(keys::WAITING_PASS.to_vec(), Vec::new());
            self.pass_pending = true;
        }
        self.log.checkpoint(self.store, &mut txn)?;
        self.store.commit(txn)?;
        tracing::debug!(objects = objects.len(), "sync batch committed");
        *done += objects.len() as u64;
        self.log.progress(*done, None);
        Ok(())
    }

    /// Synchronizes one object; an error on it is recorded on it and in the
    /// run, and everything it had changed in the batch is rolled back.
    pub fn sync_object(&mut self, txn: &mut Txn<'_>, key: CsKey) -> Result<(), StoreError> {
        let sp = txn.savepoint();
        let counters = self.log.record.counters.clone();
        match self.process(txn, key) {
            Ok(()) => Ok(()),
            Err(Failure::Store(e)) => Err(e),
            Err(Failure::Object { code, message }) => {
                txn.rollback(sp);
                self.log.record.counters = counters;
                self.object_error(txn, key, code, message)
            }
        }
    }

    fn object_error(
        &mut self,
        txn: &mut Txn<'_>,
        key: CsKey,
        code: &str,
        message: String,
    ) -> Result<(), StoreError> {
        let mut identifier = format!("cs:{}", key.id);
        if let Some(before) = txn.cs(key)? {
            identifier = before
                .anchor
                .clone()
                .or(before.dn.clone())
                .unwrap_or(identifier);
            let mut cs = before.clone();
            cs.error = Some(ObjectError {
                system_code: None,
                run: self.log.id(),
                code: code.to_owned(),
                message: message.clone(),
            });
            txn.save_cs(Some(&before), Some(&cs))?;
            if cs.pending_import.is_some() {
                txn.queue_import(key);
            }
        }
        self.log.error(
            txn,
            RunError {
                system_code: None,
                object: Some(key),
                identifier,
                code: code.to_owned(),
                message,
            },
        )
    }

    fn process(&mut self, txn: &mut Txn<'_>, key: CsKey) -> Result<(), Failure> {
        let Some(before) = txn.cs(key)? else {
            return Ok(());
        };
        let mut cs = before.clone();
        cs.error = None;
        let previous_mv = cs.link.map(|l| l.mv);
        let imported = cs.pending_import.is_some();
        let mut deleted = false;
        if let Some(p) = cs.pending_import.take() {
            match p.kind {
                ImportKind::Delete => deleted = true,
                ImportKind::Add | ImportKind::Update => {
                    cs.hologram = p.attrs;
                    if p.dn.is_some() {
                        cs.dn = p.dn;
                    }
                }
            }
        }
        if deleted {
            if let Some(mv) = previous_mv {
                self.detach(txn, &mut cs, mv)?;
                self.log.record.counters.disconnects += 1;
            }
            txn.save_cs(Some(&before), None)?;
            if let Some(mv) = previous_mv {
                self.refresh_mv(txn, mv)?;
            }
            return Ok(());
        }
        self.inbound(txn, &mut cs)?;
        if imported && cs.link.is_some() {
            // Its DN (or anchor) may be new: references to it may resolve.
            self.arrived(&cs);
        }
        txn.save_cs(Some(&before), Some(&cs))?;
        let current_mv = cs.link.map(|l| l.mv);
        if let Some(old) = previous_mv.filter(|old| Some(*old) != current_mv) {
            self.refresh_mv(txn, old)?;
        }
        if let Some(mv) = current_mv {
            self.refresh_mv(txn, mv)?;
        }
        Ok(())
    }

    /// Removes `cs`'s link to `mv` on both sides (the caller saves `cs`).
    fn detach(&mut self, txn: &mut Txn<'_>, cs: &mut CsObject, mv: MvId) -> Result<(), StoreError> {
        cs.link = None;
        if let Some(before) = txn.mv(mv)? {
            let mut after = before.clone();
            after.links.retain(|k| *k != cs.key);
            txn.save_mv(Some(&before), Some(&after))?;
        }
        Ok(())
    }

    /// Links `cs` to `mv` on both sides (the caller saves `cs`).
    fn attach(
        &mut self,
        cs: &mut CsObject,
        mv: &mut MvObject,
        kind: LinkKind,
        rule: crate::model::Sym,
    ) {
        cs.link = Some(Link {
            mv: mv.id,
            kind,
            rule,
        });
        if let Err(i) = mv.links.binary_search(&cs.key) {
            mv.links.insert(i, cs.key);
        }
        self.arrived(cs);
    }

    /// Notes that linked `cs` can now be referred to: by its anchor and DN in
    /// its connector (inbound references), and its metaverse object as
    /// having an object there (outbound references).
    fn arrived(&mut self, cs: &CsObject) {
        let Some(arrivals) = &mut self.arrivals else {
            return;
        };
        let conn = cs.key.conn;
        if let Some(anchor) = &cs.anchor {
            arrivals.insert((conn, env::waiting_key(RefKind::Anchor, anchor)));
        }
        if let Some(dn) = &cs.dn {
            arrivals.insert((conn, env::waiting_key(RefKind::Dn, dn)));
        }
        if let Some(link) = cs.link {
            arrivals.insert((conn, outbound::waiting_marker(link.mv)));
        }
        if arrivals.len() > ARRIVALS_LIMIT {
            self.arrivals = None;
        }
    }

    /// Recomputes a metaverse object from all its linked sources, applies its
    /// deletion rule, and brings every target connector in step with it;
    /// then the objects that refer to one it renamed in a connector that
    /// stores references as text (see [`Syncer::restage_referrers`]).
    pub fn refresh_mv(&mut self, txn: &mut Txn<'_>, id: MvId) -> Result<(), Failure> {
        self.refresh_one(txn, id)?;
        self.settle(txn)
    }

    /// Settles what bringing objects in step left to do: joiners that gave
    /// a unique value up choose again, and referrers of renamed objects are
    /// brought in step (see [`Syncer::restage_referrers`]).
    fn settle(&mut self, txn: &mut Txn<'_>) -> Result<(), Failure> {
        loop {
            if let Some(victim) = self.victims.pop() {
                self.choose_again(txn, victim)?;
            } else if let Some(renamed) = self.renamed.pop() {
                self.restage_referrers(txn, renamed)?;
            } else {
                return Ok(());
            }
        }
    }

    /// A joiner of this step whose unique value went to one with an earlier
    /// source anchor: its values are chosen again (it was never exported).
    fn choose_again(&mut self, txn: &mut Txn<'_>, key: CsKey) -> Result<(), Failure> {
        let Some(before) = txn.cs(key)? else {
            return Ok(());
        };
        let Some(link) = before.link.filter(|_| before.state == CsState::Provisioned) else {
            return Ok(());
        };
        let mut cs = before.clone();
        cs.sticky = Default::default();
        txn.save_cs(Some(&before), Some(&cs))?;
        self.refresh_one(txn, link.mv)
    }

    /// Brings the referrers of `renamed` (a report whose manager moved, a
    /// group whose member was renamed) in step, in the same batch as the
    /// rename: their pending exports then name the new DN and export after
    /// the rename (reference order).
    fn restage_referrers(&mut self, txn: &mut Txn<'_>, renamed: MvId) -> Result<(), Failure> {
        for referrer in txn.referrers(renamed)? {
            if referrer != renamed {
                self.refresh_isolated(txn, referrer)?;
            }
        }
        Ok(())
    }

    /// Refreshes metaverse object `id` on its own: an error on it is rolled
    /// back and recorded in the run under `mv:ID`, and the caller goes on.
    fn refresh_isolated(&mut self, txn: &mut Txn<'_>, id: MvId) -> Result<(), StoreError> {
        let sp = txn.savepoint();
        let counters = self.log.record.counters.clone();
        match self.refresh_mv(txn, id) {
            Ok(()) => Ok(()),
            Err(Failure::Store(e)) => Err(e),
            Err(Failure::Object { code, message }) => {
                txn.rollback(sp);
                self.log.record.counters = counters;
                self.log.error(
                    txn,
                    RunError {
                        system_code: None,
                        object: None,
                        identifier: format!("mv:{id}"),
                        code: code.to_owned(),
                        message,
                    },
                )
            }
        }
    }

    fn refresh_one(&mut self, txn: &mut Txn<'_>, id: MvId) -> Result<(), Failure> {
        let Some(before) = txn.mv(id)? else {
            return Ok(());
        };
        let mut mv = before.clone();
        let mut linked = Vec::with_capacity(mv.links.len());
        for k in &before.links {
            match txn.cs(*k)? {
                Some(o) if o.link.map(|l| l.mv) == Some(id) => linked.push(o),
                _ => mv.links.retain(|l| l != k),
            }
        }
        if self.should_delete(&mv, &linked) {
            self.outbound(txn, &mut mv, true)?;
            for k in mv.links.clone() {
                if let Some(cb) = txn.cs(k)? {
                    let mut c = cb.clone();
                    c.link = None;
                    txn.save_cs(Some(&cb), Some(&c))?;
                }
            }
            txn.save_mv(Some(&before), None)?;
            self.log.record.counters.mv_deletes += 1;
            return Ok(());
        }
        let (contributions, waiting) =
            inbound::contributions(self.store, self.model, self.now, txn, &mv, &linked)?;
        for u in waiting {
            txn.add_waiting(u.conn, &u.raw, mv.id)?;
        }
        let attrs = inbound::winners(&contributions);
        if attrs != mv.attrs {
            mv.attrs = attrs;
            self.log.record.counters.flow_updates += 1;
        }
        self.outbound(txn, &mut mv, false)?;
        txn.save_mv(Some(&before), Some(&mv))?;
        Ok(())
    }

    fn should_delete(&self, mv: &MvObject, linked: &[CsObject]) -> bool {
        let mut sources = linked
            .iter()
            .filter(|o| o.link.is_some_and(|l| l.kind.is_source()));
        match self.model.deletion.get(&mv.object_type) {
            None | Some((DeletionRule::LastSource, _)) => sources.next().is_none(),
            Some((DeletionRule::SourceGone(_), Some(conn))) => {
                !sources.any(|o| o.key.conn == *conn)
            }
            Some((DeletionRule::SourceGone(_), None)) | Some((DeletionRule::Never, _)) => false,
        }
    }

    /// Re-visits metaverse objects whose references were waiting for objects
    /// that now exist, until nothing more resolves.
    ///
    /// A delta sync looks up only the waiting references that what it linked
    /// (or renamed) can resolve, so its cost stays that of its changes however
    /// many references wait for objects that never come. A full sync, or a
    /// step past [`ARRIVALS_LIMIT`] arrivals, reads every waiting reference
    /// once (and drops those whose source is gone).
    pub fn resolve_waiting(&mut self) -> Result<(), StoreError> {
        self.resolve_rounds()?;
        if self.pass_pending {
            let mut txn = self.store.begin();
            txn.delete_raw(keys::WAITING_PASS.to_vec());
            self.store.commit(txn)?;
            self.pass_pending = false;
        }
        Ok(())
    }

    fn resolve_rounds(&mut self) -> Result<(), StoreError> {
        // A pass reading every waiting reference finds the same entries again
        // each round, so there a source is re-visited once per step: if its
        // reference still does not resolve, its entry stays for a later run.
        // A round of arrivals finds only entries that new links can resolve;
        // rounds go on while refreshing sources makes new links, so the cap
        // is a safety net only (what is left waits for the next full sync).
        let mut visited = std::collections::HashSet::new();
        for _round in 0..MAX_ROUNDS {
            let mut ready: BTreeMap<MvId, Vec<Vec<u8>>> = BTreeMap::new();
            let txn = self.store.begin();
            let mut stale = Vec::new();
            let scanning = self.arrivals.is_none();
            let candidates = match self.arrivals.replace(BTreeSet::new()) {
                None => txn.keys_with_prefix(&[keys::tag::WAITING])?,
                Some(arrivals) => {
                    let mut found = Vec::new();
                    for (conn, raw) in arrivals {
                        found.extend(txn.keys_with_prefix(&keys::waiting_prefix(conn, &raw))?);
                    }
                    found
                }
            };
            for k in candidates {
                let Some((conn, raw, source)) = keys::decode_waiting(&k) else {
                    stale.push(k);
                    continue;
                };
                if txn.mv(source)?.is_none() {
                    stale.push(k);
                } else if !(scanning && visited.contains(&source))
                    && self.resolvable(&txn, conn, &raw)?
                {
                    ready.entry(source).or_default().push(k);
                }
            }
            drop(txn);
            if ready.is_empty() && stale.is_empty() {
                return Ok(());
            }
            let mut txn = self.store.begin();
            for k in stale {
                txn.delete_raw(k);
            }
            for (source, entries) in ready {
                visited.insert(source);
                for k in entries {
                    txn.delete_raw(k);
                }
                self.refresh_isolated(&mut txn, source)?;
                if txn.len() > BATCH * 8 {
                    self.store
                        .commit(std::mem::replace(&mut txn, self.store.begin()))?;
                }
            }
            self.store.commit(txn)?;
        }
        let mut txn = self.store.begin();
        self.log.warning(
            &mut txn,
            "references",
            format!("waiting references still resolving after {MAX_ROUNDS} rounds; the next full sync resolves the rest"),
        )?;
        self.log.checkpoint(self.store, &mut txn)?;
        self.store.commit(txn)?;
        Ok(())
    }

    fn resolvable(
        &self,
        txn: &Txn<'_>,
        conn: crate::model::Sym,
        raw: &str,
    ) -> Result<bool, StoreError> {
        if let Some(target) = outbound::waiting_mv(raw) {
            return Ok(txn.mv(target)?.is_some_and(|m| m.link_in(conn).is_some()));
        }
        let key = match env::parse_waiting_key(raw) {
            Some((crate::connector::RefKind::Anchor, value)) => txn.by_anchor(conn, value)?,
            Some((crate::connector::RefKind::Dn, value)) => txn.by_dn(conn, value)?,
            // An entry this version does not understand: drop it by treating
            // it as resolvable (its source is recomputed once).
            None => return Ok(true),
        };
        Ok(match key {
            Some(k) => txn.cs(k)?.is_some_and(|o| o.link.is_some()),
            None => false,
        })
    }
}
