//! `mvsync revert RUN`: the inverse of an export run's changes, from the
//! audit log, staged as ordinary pending exports that `preview` shows and
//! `export` applies (and the audit log records, so a revert can itself be
//! reverted).
//!
//! - An object the run added is deleted; one it deleted is created again
//!   with what it held (as a new object: the system gives it a new
//!   anchor where it assigns them); one it updated or renamed gets back
//!   each attribute's value and its DN from before the run.
//! - An object that a later run changed again is listed and left alone,
//!   unless forced: reverting it would undo the later change too.
//! - What a revert stages replaces any export pending for the object; the
//!   next sync computes pending exports from the rules again, so fix the
//!   rule that caused the run before syncing (or export right after the
//!   revert).

use std::collections::{BTreeMap, HashMap};

use rules::Value;

use crate::audit::{from_json, AuditEntry, AuditLog};
use crate::connector::AttrOp;
use crate::model::{Attrs, CsKey, CsObject, CsState, PendingExport};
use crate::store::Store;
use crate::EngineError;

/// What a revert staged and what it left alone.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevertReport {
    /// `connector cs:N: delete` for each staged inverse.
    pub staged: Vec<String>,
    /// `connector cs:N (anchor): why` for each object left alone.
    pub skipped: Vec<String>,
}

/// Stages the inverse of run `run`'s applied changes.
pub(crate) fn revert(
    store: &Store,
    audit: &AuditLog,
    run: u64,
    force: bool,
) -> Result<RevertReport, EngineError> {
    // The run's changes per object, in order; and which objects later runs
    // changed again.
    let mut changed: BTreeMap<(String, u64), Vec<AuditEntry>> = BTreeMap::new();
    let mut later: HashMap<(String, u64), u64> = HashMap::new();
    audit.each(&mut |e| {
        if e.result != "applied" {
            return true;
        }
        let key = (e.connector.clone(), e.object);
        if e.run == run {
            changed.entry(key).or_default().push(e);
        } else if e.run > run {
            later.entry(key).or_insert(e.run);
        }
        true
    })?;
    if changed.is_empty() {
        return Err(EngineError::Revert(format!(
            "run {run} exported no change the audit log ({}) holds: nothing to revert",
            audit.path().display()
        )));
    }
    let mut report = RevertReport::default();
    let mut txn = store.begin();
    for ((connector, id), entries) in changed {
        let shown = |entries: &[AuditEntry]| {
            let anchor = entries
                .iter()
                .find_map(|e| e.anchor.clone())
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
            format!("{connector} cs:{id}{anchor}")
        };
        if let (Some(next), false) = (later.get(&(connector.clone(), id)), force) {
            report.skipped.push(format!(
                "{}: changed again by run {next}; `--force` reverts it anyway",
                shown(&entries)
            ));
            continue;
        }
        let Some(conn) = store.lookup(&connector) else {
            report.skipped.push(format!(
                "{}: the connector is no longer in the store",
                shown(&entries)
            ));
            continue;
        };
        let key = CsKey { conn, id };
        let before = txn.cs(key)?;
        let Some((after, what)) = inverse(store, key, before.as_ref(), &entries) else {
            report
                .skipped
                .push(format!("{}: nothing to undo", shown(&entries)));
            continue;
        };
        txn.save_cs(before.as_ref(), Some(&after))?;
        report.staged.push(format!("{}: {what}", shown(&entries)));
    }
    if !report.staged.is_empty() {
        // Once exported and confirmed, the objects hold what no rule gave
        // them: the next full sync evaluates them again.
        crate::sync::Basis::forget(&mut txn);
    }
    store.commit(txn)?;
    Ok(report)
}

/// The object with the inverse of `entries` pending, and its name.
fn inverse(
    store: &Store,
    key: CsKey,
    current: Option<&CsObject>,
    entries: &[AuditEntry],
) -> Option<(CsObject, &'static str)> {
    let first = entries.first()?;
    let added = entries.iter().any(|e| e.operation == "add");
    let deleted = entries.iter().any(|e| e.operation == "delete");
    match (added, deleted) {
        // Created and deleted in the same run: nothing is left to undo.
        (true, true) => None,
        (true, false) => {
            let mut cs = current?.clone();
            cs.pending_export = Some(PendingExport::Delete);
            Some((cs, "delete"))
        }
        (false, true) => {
            let gone = entries.iter().find(|e| e.operation == "delete")?;
            let attrs: Vec<_> = gone
                .changes
                .iter()
                .filter_map(|c| {
                    let v = from_json(&c.old);
                    (!v.is_null()).then(|| (store.intern(&c.attribute), v))
                })
                .collect();
            // A new connector-space object: the deleted one may be gone
            // from the store after the import that confirmed it.
            let fresh = CsKey {
                conn: key.conn,
                id: match current {
                    Some(c) if c.state != CsState::Deleted => return None,
                    _ => store.alloc_cs_id(),
                },
            };
            let mut cs = CsObject::new(
                fresh,
                store.intern(&first.object_type),
                CsState::Provisioned,
            );
            cs.dn = gone.dn.clone();
            cs.pending_export = Some(PendingExport::Add {
                attrs: Attrs::from_pairs(attrs),
            });
            Some((cs, "add again"))
        }
        (false, false) => {
            let mut cs = current?.clone();
            // Each attribute back to its value before the run's first
            // change of it.
            let mut old: BTreeMap<String, Value> = BTreeMap::new();
            for e in entries {
                for c in &e.changes {
                    old.entry(c.attribute.clone())
                        .or_insert_with(|| from_json(&c.old));
                }
            }
            let renamed = entries.iter().any(|e| e.new_dn.is_some());
            let mut changes: Vec<_> = old
                .into_iter()
                .map(|(name, v)| {
                    let op = if v.is_null() {
                        AttrOp::Clear
                    } else {
                        AttrOp::Replace(v)
                    };
                    (store.intern(&name), op)
                })
                .collect();
            changes.sort_by_key(|(k, _)| *k);
            cs.pending_export = Some(PendingExport::Update {
                new_dn: if renamed { first.dn.clone() } else { None },
                changes,
            });
            Some((
                cs,
                if renamed {
                    "rename back and restore"
                } else {
                    "restore"
                },
            ))
        }
    }
}
