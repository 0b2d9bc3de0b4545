//! Import stages only: it diffs what the connected system holds against the
//! connector space and writes pending imports, confirms (or reports) escrowed
//! exports, and stores the new watermark in the same commit as the changes
//! before it.

use std::collections::HashSet;

use futures::StreamExt;

use crate::connector::{Connector, ImportEvent, ImportItem, ImportedObject};
use crate::diff::{equivalent, same_dns};
use crate::history::{RunError, RunLog};
use crate::model::{
    apply_op, Attrs, CsKey, CsObject, CsState, ImportKind, ObjectError, PendingImport, Sym,
};
use crate::setup::Model;
use crate::store::{keys, Store, StoreError, Txn};
use crate::EngineError;

/// Events per committed batch.
const BATCH: usize = 1000;

/// Delta imports in a row that bad items may keep at the same watermark
/// (a file being fixed, a transient glitch) before the watermark moves past
/// them, so that one bad item cannot stop every later change.
const WATERMARK_HOLDS: u32 = 3;

pub(crate) struct Importer<'a> {
    pub store: &'a Store,
    pub model: &'a Model,
    pub log: &'a mut RunLog,
    pub conn: Sym,
    seen: HashSet<u64>,
    bad_items: u64,
    /// `--allow-deletes N`: stage up to N deletes whatever the thresholds.
    pub allow_deletes: Option<usize>,
    /// Set when the step is to stop at its next commit.
    pub stop: Option<crate::StopFlag>,
}

impl<'a> Importer<'a> {
    pub fn new(store: &'a Store, model: &'a Model, log: &'a mut RunLog, conn: Sym) -> Self {
        Importer {
            store,
            model,
            log,
            conn,
            seen: HashSet::new(),
            bad_items: 0,
            allow_deletes: None,
            stop: None,
        }
    }

    /// Runs a full or delta import from `connector`.
    pub async fn run(&mut self, connector: &dyn Connector, full: bool) -> Result<(), EngineError> {
        let name = self.store.name(self.conn).to_string();
        let connector_error = |e: crate::ConnectorError| EngineError::Connector {
            connector: name.clone(),
            source: e,
        };
        let expired = |e: crate::ConnectorError| match e.kind {
            crate::ConnectorErrorKind::WatermarkExpired => EngineError::WatermarkExpired {
                connector: name.clone(),
                source: e,
            },
            _ => connector_error(e),
        };
        let mut stream = if full {
            connector.full_import().await.map_err(connector_error)?
        } else {
            let watermark = self.store.begin().watermark(self.conn)?;
            connector
                .delta_import(watermark.as_deref())
                .await
                .map_err(expired)?
        };
        let mut txn = self.store.begin();
        let mut in_batch = 0;
        let mut read = 0u64;
        while let Some(item) = stream.next().await {
            match item {
                Err(e) => {
                    // What was staged so far is valid staging: keep it.
                    self.store.commit(txn)?;
                    return Err(expired(e));
                }
                Ok(ImportItem::Bad(bad)) => {
                    self.bad_items += 1;
                    self.log.error(
                        &mut txn,
                        RunError {
                            system_code: None,
                            object: None,
                            identifier: bad.location,
                            code: "bad-input".into(),
                            message: bad.message,
                        },
                    )?;
                }
                Ok(ImportItem::Event(ImportEvent::Watermark(w))) => {
                    self.watermark(&mut txn, &w, full)?;
                }
                Ok(ImportItem::Event(event)) => self.stage(&mut txn, event)?,
            }
            in_batch += 1;
            read += 1;
            if in_batch >= BATCH {
                self.log.progress(read, None);
                self.log.checkpoint(self.store, &mut txn)?;
                self.store
                    .commit(std::mem::replace(&mut txn, self.store.begin()))?;
                in_batch = 0;
                if self.stop.as_ref().is_some_and(crate::stop_requested) {
                    // Staged so far is valid staging; the watermark is not
                    // moved, so a delta import reads the rest again.
                    return Err(EngineError::Stopped);
                }
            }
        }
        self.log.checkpoint(self.store, &mut txn)?;
        self.store.commit(txn)?;
        if full {
            if self.bad_items == 0 {
                self.stage_unseen_as_deletes()?;
            } else {
                let mut txn = self.store.begin();
                self.log.error(
                    &mut txn,
                    RunError {
                        system_code: None,
                        object: None,
                        identifier: name.clone(),
                        code: "deletes-not-staged".into(),
                        message: format!(
                            "{} item(s) could not be read, so objects not seen were not staged as deletes; fix the input and import again",
                            self.bad_items
                        ),
                    },
                )?;
                self.store.commit(txn)?;
            }
        }
        Ok(())
    }

    /// Stores the watermark the connector reached, unless bad items keep
    /// it back: a delta import with bad items stays at the old watermark,
    /// so they are read again, at most [`WATERMARK_HOLDS`] times in a row;
    /// then it moves on and says that a full import reconciles them.
    fn watermark(&mut self, txn: &mut Txn<'_>, w: &str, full: bool) -> Result<(), StoreError> {
        let name = self.store.name(self.conn).to_string();
        if self.bad_items == 0 {
            txn.set_watermark(self.conn, w);
            txn.set_watermark_holds(self.conn, 0);
            return Ok(());
        }
        if full {
            // The next delta replays changes the full import already staged:
            // harmless, and the bad rows are read again by the next full import.
            let message = format!(
                "the watermark was not advanced: {} item(s) could not be read",
                self.bad_items
            );
            return self.log.warning(txn, &name, message);
        }
        let holds = txn.watermark_holds(self.conn)? + 1;
        if holds < WATERMARK_HOLDS {
            txn.set_watermark_holds(self.conn, holds);
            let message = format!("the watermark was not advanced: {} item(s) could not be read and will be read again (delta import {holds} of {WATERMARK_HOLDS} held back)", self.bad_items);
            return self.log.warning(txn, &name, message);
        }
        txn.set_watermark(self.conn, w);
        txn.set_watermark_holds(self.conn, 0);
        self.log.error(
            txn,
            RunError {
                object: None,
                identifier: name.clone(),
                code: "bad-input-skipped".into(),
                message: format!(
                    "{} item(s) could not be read in {WATERMARK_HOLDS} delta imports in a row; the watermark moved past them so that later changes are imported. What they held is not staged: fix the source and run a full import (`mvsync import {name} --full`) to reconcile",
                    self.bad_items
                ),
                system_code: None,
            },
        )
    }

    fn intern_attrs(&self, attrs: Vec<(String, rules::Value)>) -> Attrs {
        Attrs::from_pairs(
            attrs
                .into_iter()
                .map(|(n, v)| (self.store.intern(&n), v))
                .collect(),
        )
    }

    fn find(
        &self,
        txn: &Txn<'_>,
        anchor: &str,
        dn: Option<&str>,
    ) -> Result<Option<CsObject>, StoreError> {
        if let Some(k) = txn.by_anchor(self.conn, anchor)? {
            return txn.cs(k);
        }
        let has_dn = self.model.conn(self.conn).is_some_and(|c| c.info.has_dn);
        if let (true, Some(dn)) = (has_dn, dn) {
            // An exported add whose anchor never came back (a crash between
            // export and commit): the DN identifies it.
            if let Some(k) = txn.by_dn(self.conn, dn)? {
                return Ok(txn.cs(k)?.filter(|o| o.anchor.is_none()));
            }
        }
        Ok(None)
    }

    fn stage(&mut self, txn: &mut Txn<'_>, event: ImportEvent) -> Result<(), StoreError> {
        match event {
            ImportEvent::Object(o) => self.stage_object(txn, o),
            ImportEvent::Partial {
                anchor,
                object_type,
                dn,
                changes,
            } => {
                let existing = self.find(txn, &anchor, dn.as_deref())?;
                let mut attrs = existing
                    .as_ref()
                    .map(|o| match &o.pending_import {
                        Some(p) if p.kind != ImportKind::Delete => p.attrs.clone(),
                        _ => o.hologram.clone(),
                    })
                    .unwrap_or_default();
                for (name, op) in &changes {
                    let sym = self.store.intern(name);
                    let current = attrs.get(sym).cloned().unwrap_or_default();
                    attrs.set(sym, apply_op(&current, op));
                }
                let attributes = attrs
                    .iter()
                    .map(|(k, v)| (self.store.name(*k).to_string(), v.clone()))
                    .collect();
                self.stage_object(
                    txn,
                    ImportedObject {
                        anchor,
                        object_type,
                        dn: dn.or(existing.and_then(|o| o.dn)),
                        attributes,
                    },
                )
            }
            ImportEvent::Delete { anchor } => {
                let Some(before) = self.find(txn, &anchor, None)? else {
                    return Ok(());
                };
                self.seen.insert(before.key.id);
                self.stage_delete(txn, before)
            }
            ImportEvent::Watermark(_) => Ok(()),
        }
    }

    fn stage_object(&mut self, txn: &mut Txn<'_>, o: ImportedObject) -> Result<(), StoreError> {
        let attrs = self.intern_attrs(o.attributes);
        let object_type = self.store.intern(&o.object_type);
        let Some(before) = self.find(txn, &o.anchor, o.dn.as_deref())? else {
            let key = CsKey {
                conn: self.conn,
                id: self.store.alloc_cs_id(),
            };
            let mut cs = CsObject::new(key, object_type, CsState::Present);
            cs.anchor = Some(o.anchor);
            cs.dn = o.dn.clone();
            cs.pending_import = Some(PendingImport {
                kind: ImportKind::Add,
                attrs,
                dn: o.dn,
            });
            self.seen.insert(key.id);
            self.log.record.counters.import_adds += 1;
            return txn.save_cs(None, Some(&cs));
        };
        self.seen.insert(before.key.id);
        let mut cs = before.clone();
        if cs.anchor.as_deref() != Some(o.anchor.as_str()) {
            cs.anchor = Some(o.anchor.clone());
        }
        cs.object_type = object_type;
        let settles = self.settles_escrow(&before, object_type, &attrs, o.dn.as_deref());
        self.confirm(txn, &mut cs, Some(&attrs), o.dn.as_deref())?;
        if settles && cs.error.is_none() {
            // The system holds exactly what was exported and nothing else
            // changed, and no inbound rule reads this connector: syncing it
            // could only copy these values into the hologram, so import does
            // that here and stages nothing.
            cs.hologram = attrs;
            return txn.save_cs(Some(&before), Some(&cs));
        }
        let (current, current_dn, pending_kind) = match &cs.pending_import {
            Some(p) if p.kind != ImportKind::Delete => {
                (&p.attrs, p.dn.as_deref().or(cs.dn.as_deref()), Some(p.kind))
            }
            Some(p) => (&cs.hologram, cs.dn.as_deref(), Some(p.kind)),
            None => (&cs.hologram, cs.dn.as_deref(), None),
        };
        let dn_changed = o.dn.is_some() && o.dn.as_deref() != current_dn;
        if !current.same_as(&attrs) || dn_changed || pending_kind == Some(ImportKind::Delete) {
            let kind = if pending_kind == Some(ImportKind::Add) {
                ImportKind::Add
            } else {
                ImportKind::Update
            };
            let back_to_hologram = kind == ImportKind::Update
                && attrs.same_as(&cs.hologram)
                && (o.dn.is_none() || o.dn == cs.dn);
            cs.pending_import = if back_to_hologram {
                // The change reverted before sync saw it: nothing to sync.
                None
            } else {
                match kind {
                    ImportKind::Add => self.log.record.counters.import_adds += 1,
                    _ => self.log.record.counters.import_updates += 1,
                }
                Some(PendingImport {
                    kind,
                    attrs,
                    dn: o.dn,
                })
            };
        }
        txn.save_cs(Some(&before), Some(&cs))
    }

    /// Whether importing `attrs` for `before` only confirms its exported
    /// changes: nothing staged or in error, the system reports exactly the
    /// hologram with the escrow laid over it (same type, same DN), and no
    /// inbound rule of this connector could take a value from it.
    fn settles_escrow(
        &self,
        before: &CsObject,
        object_type: Sym,
        attrs: &Attrs,
        dn: Option<&str>,
    ) -> bool {
        before.pending_import.is_none()
            && before.error.is_none()
            && !before.escrow.is_empty()
            && !before.escrow.deleted
            && before.object_type == object_type
            && (dn.is_none() || dn == before.dn.as_deref())
            && before
                .escrow
                .dn
                .as_deref()
                .is_none_or(|d| Some(d) == before.dn.as_deref())
            && self
                .model
                .inbound_for(self.conn, object_type)
                .next()
                .is_none()
            && attrs.same_as(&before.known_attrs())
    }

    /// Compares what was exported with what the system now reports. `attrs`
    /// is `None` when the object was not seen.
    fn confirm(
        &mut self,
        txn: &mut Txn<'_>,
        cs: &mut CsObject,
        attrs: Option<&Attrs>,
        dn: Option<&str>,
    ) -> Result<(), StoreError> {
        let had_escrow = !cs.escrow.is_empty();
        let mut mismatches = Vec::new();
        match attrs {
            None => {
                if !cs.escrow.deleted {
                    mismatches
                        .push("the exported object is not in the connected system".to_string());
                }
            }
            Some(attrs) => {
                if cs.escrow.deleted {
                    mismatches
                        .push("the object was deleted by export but is still present".to_string());
                }
                let conn = self.model.conn(self.conn);
                let type_name = self.store.name(cs.object_type);
                for (k, want) in &cs.escrow.attrs {
                    let got = attrs.get(*k).cloned().unwrap_or_default();
                    let dn_valued = || {
                        conn.and_then(|c| c.reference_kind(&type_name, &self.store.name(*k)))
                            == Some(crate::connector::RefKind::Dn)
                    };
                    let confirmed = equivalent(want, &got) || dn_valued() && same_dns(want, &got);
                    if !confirmed {
                        mismatches.push(format!(
                            "{}: exported '{}', imported '{}'",
                            self.store.name(*k),
                            want,
                            got
                        ));
                    }
                }
                if let (Some(want), Some(got)) = (&cs.escrow.dn, dn) {
                    if !rules::dn::same(want, got) {
                        mismatches.push(format!("dn: exported '{want}', imported '{got}'"));
                    }
                }
            }
        }
        if attrs.is_some()
            && matches!(
                cs.state,
                CsState::Added | CsState::Provisioned | CsState::Deleted | CsState::InFlight
            )
        {
            cs.state = CsState::Present;
        }
        if !had_escrow {
            return Ok(());
        }
        cs.escrow = Default::default();
        if mismatches.is_empty() {
            self.log.record.counters.confirmed += 1;
            return Ok(());
        }
        let message = mismatches.join("; ");
        cs.error = Some(ObjectError {
            system_code: None,
            run: self.log.id(),
            code: "exported-change-not-reimported".into(),
            message: message.clone(),
        });
        self.log.error(
            txn,
            RunError {
                system_code: None,
                object: Some(cs.key),
                identifier: cs.anchor.clone().or(cs.dn.clone()).unwrap_or_default(),
                code: "exported-change-not-reimported".into(),
                message,
            },
        )
    }

    fn stage_delete(&mut self, txn: &mut Txn<'_>, before: CsObject) -> Result<(), StoreError> {
        match before.state {
            // Not in the system yet: nothing to delete.
            CsState::Provisioned => Ok(()),
            // Our own delete, confirmed: the object is gone for good.
            CsState::Deleted if before.link.is_none() => {
                self.log.record.counters.confirmed += 1;
                txn.save_cs(Some(&before), None)
            }
            _ => {
                let mut cs = before.clone();
                self.confirm(txn, &mut cs, None, None)?;
                if matches!(cs.state, CsState::Added | CsState::InFlight) {
                    // The add was not confirmed (the error says so): the
                    // next sync stages it as an add again.
                    cs.state = CsState::Provisioned;
                    return txn.save_cs(Some(&before), Some(&cs));
                }
                if !matches!(&cs.pending_import, Some(p) if p.kind == ImportKind::Delete) {
                    cs.pending_import = Some(PendingImport {
                        kind: ImportKind::Delete,
                        attrs: Attrs::default(),
                        dn: None,
                    });
                    self.log.record.counters.import_deletes += 1;
                }
                txn.save_cs(Some(&before), Some(&cs))
            }
        }
    }

    /// Full import: every object not seen is gone from the connected system.
    /// Refuses, staging none, when that is more than the deletion threshold
    /// or more than the configured share of the connector space (a source
    /// that came back empty or truncated), unless `--allow-deletes` covers it.
    fn stage_unseen_as_deletes(&mut self) -> Result<(), EngineError> {
        let mut unseen = Vec::new();
        let mut total = 0usize;
        self.store
            .for_each_prefix(&keys::conn_prefix(keys::tag::ANCHOR, self.conn), |_, v| {
                if let Ok(id) = <[u8; 8]>::try_from(v).map(u64::from_be_bytes) {
                    total += 1;
                    if !self.seen.contains(&id) {
                        unseen.push(id);
                    }
                }
                Ok(())
            })?;
        let mut deletes = 0;
        for chunk in unseen.chunks(BATCH) {
            let txn = self.store.begin();
            for id in chunk {
                let key = CsKey {
                    conn: self.conn,
                    id: *id,
                };
                if txn.cs(key)?.is_some_and(|cs| stages_delete(&cs)) {
                    deletes += 1;
                }
            }
        }
        let percent = self.model.import_deletion_percent as usize;
        let refused = match self.allow_deletes {
            Some(allowed) => deletes > allowed,
            None => {
                deletes > self.model.deletion_threshold
                    || (deletes > 0 && deletes * 100 > percent * total)
            }
        };
        if refused {
            return Err(EngineError::ImportDeletionThreshold {
                connector: self.store.name(self.conn).to_string(),
                deletes,
                total,
                threshold: self.allow_deletes.unwrap_or(self.model.deletion_threshold),
                percent: self.model.import_deletion_percent,
            });
        }
        for chunk in unseen.chunks(BATCH) {
            let mut txn = self.store.begin();
            for id in chunk {
                if let Some(before) = txn.cs(CsKey {
                    conn: self.conn,
                    id: *id,
                })? {
                    self.stage_delete(&mut txn, before)?;
                }
            }
            self.store.commit(txn)?;
        }
        Ok(())
    }
}

/// Whether a full import that does not see `cs` stages a delete for it (as
/// opposed to confirming an exported delete, or passing over an object the
/// system never had).
fn stages_delete(cs: &CsObject) -> bool {
    match cs.state {
        CsState::Provisioned | CsState::Added | CsState::InFlight => false,
        CsState::Deleted if cs.link.is_none() => false,
        _ => !matches!(&cs.pending_import, Some(p) if p.kind == ImportKind::Delete),
    }
}
