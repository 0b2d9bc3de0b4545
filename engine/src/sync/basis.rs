//! The sync basis: what a full sync of a target may take as already
//! evaluated, so that with nothing changed it reads instead of evaluating.
//!
//! The store keeps ([`keys::SYNC_BASIS`]) the fingerprint of the
//! configuration the last sync step ran under, and the connectors whose
//! full sync has completed under it. Every sync step first compares the
//! fingerprint: a step under another configuration empties the set before
//! it writes anything. So while a connector is in the set, every object of
//! it was evaluated under the current rules, and every change since went
//! through a sync under them too.
//!
//! A full sync of a connector that has no inbound rule (a pure target: its
//! objects only receive) skips the evaluation of an object when
//! [`Syncer::unchanged`] holds: nothing is pending on it or has failed on
//! it, and its metaverse object links an object of a connector in the set
//! that has not failed either. Evaluating it would recompute that metaverse
//! object from the same sources with the same rules, so it would change
//! nothing. Not when a rule reads the clock ([`rules::Rule::is_deterministic`]):
//! then every object is evaluated.
//!
//! Evaluating an object also reads other objects: its references name
//! their targets' objects, and nothing revisits a referrer when its target
//! leaves (a later full sync does). So the basis is forgotten, in the same
//! batch, whenever a sync step disconnects, deprovisions or deletes
//! anything, and a step that did so does not vouch for its connector; so is
//! it by what changes a target's objects outside a sync (`revert`, an add
//! adopted by export): [`Basis::forget`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Syncer;
use crate::model::{CsKey, Sym};
use crate::store::{codec, keys, Store, StoreError, Txn};

/// The stored basis.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Basis {
    /// The fingerprint of the configuration (`Model::fingerprint`).
    pub fingerprint: [u8; 32],
    /// Connectors whose full sync completed under it.
    pub evaluated: BTreeSet<Sym>,
}

impl Basis {
    /// The basis in the store, if any.
    pub fn load(store: &Store) -> Result<Option<Basis>, StoreError> {
        match store.begin().get_raw(keys::SYNC_BASIS)? {
            Some(bytes) => Ok(Some(codec::decode(&bytes, &|| "the sync basis".into())?)),
            None => Ok(None),
        }
    }

    /// Writes the basis in `txn`.
    pub fn save(&self, txn: &mut Txn<'_>) -> Result<(), StoreError> {
        txn.put_raw(keys::SYNC_BASIS.to_vec(), codec::encode(self)?);
        Ok(())
    }

    /// Forgets the basis in `txn`: the next full sync of every connector
    /// evaluates every object.
    pub fn forget(txn: &mut Txn<'_>) {
        txn.delete_raw(keys::SYNC_BASIS.to_vec());
    }
}

/// How many objects a step's counters say left: disconnected,
/// deprovisioned or deleted from the metaverse.
pub(super) fn removals(counters: &crate::history::Counters) -> u64 {
    counters.disconnects + counters.deprovisioned + counters.mv_deletes
}

impl Syncer<'_> {
    /// Makes the store's basis this configuration's, emptied if it was
    /// another's, before the step writes anything; returns it.
    pub(super) fn basis(&mut self) -> Result<Basis, StoreError> {
        let stored = Basis::load(self.store)?;
        match stored {
            Some(b) if b.fingerprint == self.model.fingerprint => Ok(b),
            _ => {
                let fresh = Basis {
                    fingerprint: self.model.fingerprint,
                    evaluated: BTreeSet::new(),
                };
                let mut txn = self.store.begin();
                fresh.save(&mut txn)?;
                self.store.commit(txn)?;
                Ok(fresh)
            }
        }
    }

    /// The connectors a full sync of `conn` may take as evaluated (empty:
    /// it evaluates every object).
    pub(super) fn skip_basis(&self, basis: &Basis, conn: Sym) -> BTreeSet<Sym> {
        let pure_target = !self.model.inbound.iter().any(|r| r.conn == conn);
        if pure_target && self.model.deterministic {
            basis.evaluated.clone()
        } else {
            BTreeSet::new()
        }
    }

    /// Whether evaluating `key` would change nothing: see the module.
    pub(super) fn unchanged(&self, txn: &Txn<'_>, key: CsKey) -> Result<bool, StoreError> {
        let Some(cs) = txn.cs(key)? else {
            return Ok(false);
        };
        let quiet =
            cs.pending_import.is_none() && cs.pending_export.is_none() && cs.error.is_none();
        let Some(link) = cs.link.filter(|_| quiet) else {
            return Ok(false);
        };
        let Some(mv) = txn.mv(link.mv)? else {
            return Ok(false);
        };
        for source in mv.links.iter().filter(|k| self.evaluated.contains(&k.conn)) {
            if *source == key || txn.cs(*source)?.is_some_and(|s| s.error.is_none()) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
