//! Reading a connector's export queue: its entries (`E`, one per object)
//! and its spans (`e`, a range of ids per sync batch that provisioned;
//! see [`super::Txn::queue_new`]) walked as one queue, in id order.

use super::{keys, Store, StoreError};
use crate::model::{CsKey, CsObject, Sym};

/// Records read from the store per scan of a span's range.
const SCAN_CHUNK: usize = 512;

/// One export-queue span: its key, and the ids it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Its key (`e`, connector, first id).
    pub key: Vec<u8>,
    /// The first id it covers.
    pub first: u64,
    /// The last id it covers.
    pub last: u64,
}

impl Store {
    /// The connector's export-queue spans, in id order. A span whose key or
    /// value is not one is an error: the objects it queued would be lost.
    pub fn export_spans(&self, conn: Sym) -> Result<Vec<Span>, StoreError> {
        let mut spans = Vec::new();
        self.for_each_prefix(&keys::conn_prefix(keys::tag::EXPORT_SPAN, conn), |k, v| {
            let (first, last) = keys::decode_queue_span(k, v).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "bad export-queue span of connector {}: key {k:?}, value {v:?} (a span is a first id in its key and a last id, not before it, in 8 bytes)",
                    self.name(conn)
                ))
            })?;
            spans.push(Span {
                key: k.to_vec(),
                first: first.id,
                last,
            });
            Ok(())
        })?;
        Ok(spans)
    }

    /// Whether the connector has a span of `span_tag` (`SYNC_SPAN` or
    /// `EXPORT_SPAN`).
    pub fn has_queue_spans(&self, span_tag: u8, conn: Sym) -> Result<bool, StoreError> {
        let spans = keys::conn_prefix(span_tag, conn);
        Ok(!self.keys_after(&spans, None, 1)?.is_empty())
    }

    /// Gives `each` every committed object of `conn` with a pending export
    /// that the export queue names (by an entry of its own or in a span),
    /// in id order and each once, until `each` returns `false`. Returns
    /// the spans it walked.
    ///
    /// Memory: the ids of the queue's entries (8 bytes each) and its spans;
    /// a span's objects are read a chunk at a time, in key order.
    pub fn for_each_pending_export(
        &self,
        conn: Sym,
        each: &mut dyn FnMut(CsObject) -> Result<bool, StoreError>,
    ) -> Result<Vec<Span>, StoreError> {
        let spans = self.export_spans(conn)?;
        self.walk_export_queue(conn, &spans, usize::MAX, each)?;
        Ok(spans)
    }

    /// [`Store::for_each_pending_export`] over `spans`, reading at most
    /// `budget` objects: whether it read all it had to (it did not stop
    /// for the budget).
    fn walk_export_queue(
        &self,
        conn: Sym,
        spans: &[Span],
        budget: usize,
        each: &mut dyn FnMut(CsObject) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let mut entries = Vec::new();
        self.for_each_prefix(&keys::conn_prefix(keys::tag::EXPORT_QUEUE, conn), |k, _| {
            entries.extend(keys::decode_cs_keyed(k).map(|key| key.id));
            Ok(())
        })?;
        let mut walk = Walk {
            store: self,
            conn,
            next: 0,
            budget,
            each,
        };
        let mut entries = entries.into_iter().peekable();
        for span in spans {
            while let Some(id) = entries.next_if(|id| *id < span.first) {
                if !walk.entry(id)? {
                    return Ok(walk.budget > 0);
                }
            }
            if !walk.range(span.first, span.last)? {
                return Ok(walk.budget > 0);
            }
        }
        for id in entries {
            if !walk.entry(id)? {
                return Ok(walk.budget > 0);
            }
        }
        Ok(true)
    }

    /// How many objects of `conn` have a pending export, counting at most
    /// `cap`. Without spans it counts the queue's keys. With spans it reads
    /// the objects (a span may cover objects with nothing pending: those
    /// of an export that stopped early, until the next one ends well),
    /// at most `cap` of them: past that it answers `cap`, "at least".
    pub fn count_pending_exports(&self, conn: Sym, cap: usize) -> Result<usize, StoreError> {
        if cap == 0 {
            return Ok(0);
        }
        let spans = self.export_spans(conn)?;
        if spans.is_empty() {
            return self.count_keys(&keys::conn_prefix(keys::tag::EXPORT_QUEUE, conn), cap);
        }
        let mut n = 0;
        let finished = self.walk_export_queue(conn, &spans, cap, &mut |_| {
            n += 1;
            Ok(n < cap)
        })?;
        Ok(if finished { n } else { cap })
    }
}

/// A walk of one connector's export queue: `next` is the lowest id not
/// yet given, so an object an entry and a span both name is given once;
/// `budget` is how many more objects it may read.
struct Walk<'a, 's> {
    store: &'s Store,
    conn: Sym,
    next: u64,
    budget: usize,
    each: &'a mut dyn FnMut(CsObject) -> Result<bool, StoreError>,
}

impl Walk<'_, '_> {
    /// Gives the object of entry `id`, when it has a pending export.
    fn entry(&mut self, id: u64) -> Result<bool, StoreError> {
        if id < self.next {
            return Ok(true);
        }
        self.next = id.saturating_add(1);
        let key = keys::cs_keyed(
            keys::tag::CS,
            CsKey {
                conn: self.conn,
                id,
            },
        );
        match self.store.get_raw(&key)? {
            Some(v) => self.give(&key, &v),
            None => Ok(true),
        }
    }

    /// Gives the objects of the connector with ids from `first` to `last`
    /// that have a pending export.
    fn range(&mut self, first: u64, last: u64) -> Result<bool, StoreError> {
        let first = first.max(self.next);
        if first > last {
            return Ok(true);
        }
        self.next = last.saturating_add(1);
        let conn = self.conn;
        let from = keys::cs_keyed(keys::tag::CS, CsKey { conn, id: first });
        let mut go_on = true;
        let store = self.store;
        store.for_each_from(
            &keys::conn_prefix(keys::tag::CS, conn),
            &from,
            SCAN_CHUNK,
            |k, v| {
                if keys::decode_cs_keyed(k).is_none_or(|key| key.id > last) {
                    return Ok(false);
                }
                go_on = self.give(k, v)?;
                Ok(go_on)
            },
        )?;
        Ok(go_on)
    }

    /// Gives the object of `record` when it has a pending export; `false`
    /// to stop (told to, or the budget spent).
    fn give(&mut self, key: &[u8], record: &[u8]) -> Result<bool, StoreError> {
        if self.budget == 0 {
            return Ok(false);
        }
        self.budget -= 1;
        let cs = self.store.decode_cs(key, record)?;
        if cs.pending_export.is_none() {
            return Ok(true);
        }
        (self.each)(cs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CsState, PendingExport};

    /// A new object of `conn` with a pending add when `pending`.
    fn object(store: &Store, conn: Sym, pending: bool) -> CsObject {
        let key = CsKey {
            conn,
            id: store.alloc_cs_id(),
        };
        let mut cs = CsObject::new(key, store.intern("user"), CsState::Provisioned);
        if pending {
            cs.pending_export = Some(PendingExport::Add {
                attrs: Default::default(),
            });
        }
        cs
    }

    /// Saves `cs` again with `pending` as its pending export.
    fn set_pending(txn: &mut crate::store::Txn<'_>, cs: &CsObject, pending: Option<PendingExport>) {
        let mut after = cs.clone();
        after.pending_export = pending;
        txn.save_cs(Some(cs), Some(&after)).expect("save");
    }

    fn spans(store: &Store, conn: Sym) -> Vec<(u64, u64)> {
        let spans = store.export_spans(conn).expect("spans");
        spans.iter().map(|s| (s.first, s.last)).collect()
    }

    fn walked(store: &Store, conn: Sym) -> Vec<u64> {
        let mut ids = Vec::new();
        store
            .for_each_pending_export(conn, &mut |cs| {
                ids.push(cs.key.id);
                Ok(true)
            })
            .expect("walk");
        ids
    }

    #[test]
    fn a_batch_of_new_objects_is_one_span_per_connector_though_their_ids_interleave() {
        let store = Store::memory();
        let (ad, scim) = (store.intern("ad"), store.intern("scim"));
        let mut txn = store.begin();
        for _ in 0..3 {
            for conn in [ad, scim] {
                let cs = object(&store, conn, true);
                txn.save_cs(None, Some(&cs)).expect("save");
            }
        }
        store.commit(txn).expect("commit");
        // ids 1 to 6: ad holds 1, 3, 5 and scim 2, 4, 6.
        assert_eq!(spans(&store, ad), vec![(1, 5)]);
        assert_eq!(spans(&store, scim), vec![(2, 6)]);
        assert_eq!(
            store
                .count_keys(&[keys::tag::EXPORT_QUEUE], usize::MAX)
                .expect("count"),
            0,
            "no entry of their own"
        );
        assert_eq!(walked(&store, ad), vec![1, 3, 5]);
        assert_eq!(walked(&store, scim), vec![2, 4, 6]);

        // The next batch opens a span of its own.
        let mut txn = store.begin();
        let cs = object(&store, ad, true);
        txn.save_cs(None, Some(&cs)).expect("save");
        store.commit(txn).expect("commit");
        assert_eq!(spans(&store, ad), vec![(1, 5), (7, 7)]);
    }

    #[test]
    fn a_rolled_back_object_leaves_the_span_as_it_was_and_the_next_opens_another() {
        let store = Store::memory();
        let ad = store.intern("ad");
        let mut txn = store.begin();
        let first = object(&store, ad, true);
        txn.save_cs(None, Some(&first)).expect("save");
        let sp = txn.savepoint();
        let second = object(&store, ad, true);
        txn.save_cs(None, Some(&second)).expect("save");
        txn.rollback(sp);
        let third = object(&store, ad, true);
        txn.save_cs(None, Some(&third)).expect("save");
        store.commit(txn).expect("commit");
        assert_eq!(spans(&store, ad), vec![(1, 1), (3, 3)]);
        assert_eq!(walked(&store, ad), vec![1, 3]);
    }

    #[test]
    fn the_walk_gives_entries_and_spans_in_id_order_each_once_and_only_what_is_pending() {
        let store = Store::memory();
        let ad = store.intern("ad");
        // ids 1 to 8 in one batch (one span), of which 4 and 6 have
        // nothing pending (their span still covers them).
        let mut txn = store.begin();
        for i in 0..8 {
            let cs = object(&store, ad, ![3, 5].contains(&i));
            txn.save_cs(None, Some(&cs)).expect("save");
        }
        store.commit(txn).expect("commit");
        // 9 and 10 queued on their own keys (a delete each), and 3 too.
        let mut txn = store.begin();
        for _ in 0..2 {
            let cs = object(&store, ad, false);
            txn.save_cs(None, Some(&cs)).expect("save");
            set_pending(&mut txn, &cs, Some(PendingExport::Delete));
        }
        txn.queue_export(CsKey { conn: ad, id: 3 });
        store.commit(txn).expect("commit");
        assert_eq!(spans(&store, ad), vec![(1, 8)]);

        assert_eq!(walked(&store, ad), vec![1, 2, 3, 5, 7, 8, 9, 10]);
        assert_eq!(
            store.count_pending_exports(ad, usize::MAX).expect("count"),
            8
        );
        assert_eq!(store.count_pending_exports(ad, 3).expect("count"), 3);
        let mut first_two = Vec::new();
        store
            .for_each_pending_export(ad, &mut |cs| {
                first_two.push(cs.key.id);
                Ok(first_two.len() < 2)
            })
            .expect("walk");
        assert_eq!(first_two, vec![1, 2], "stops when told");
    }

    #[test]
    fn a_count_reads_at_most_its_cap_of_objects_and_then_says_at_least() {
        let store = Store::memory();
        let ad = store.intern("ad");
        // One span over 10 objects of which only the last has something
        // pending (an export that stopped early answered the rest).
        let mut txn = store.begin();
        for i in 0..10 {
            let cs = object(&store, ad, true);
            txn.save_cs(None, Some(&cs)).expect("save");
            if i < 9 {
                set_pending(&mut txn, &cs, None);
            }
        }
        store.commit(txn).expect("commit");
        assert_eq!(store.count_pending_exports(ad, 100).expect("count"), 1);
        assert_eq!(
            store.count_pending_exports(ad, 5).expect("count"),
            5,
            "five objects read, the rest unknown: at least the cap"
        );
        assert_eq!(store.count_pending_exports(ad, 0).expect("count"), 0);
    }

    #[test]
    fn a_span_that_is_not_one_is_an_error_not_an_empty_queue() {
        let store = Store::memory();
        let ad = store.intern("ad");
        let mut txn = store.begin();
        let (k, _) = keys::queue_span(keys::tag::EXPORT_SPAN, CsKey { conn: ad, id: 4 }, 9);
        txn.put_raw(k, vec![0, 1]);
        store.commit(txn).expect("commit");
        let err = store
            .for_each_pending_export(ad, &mut |_| Ok(true))
            .expect_err("a bad span");
        assert!(err.to_string().contains("bad export-queue span"), "{err}");
    }
}
