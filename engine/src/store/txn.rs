//! A batch of changes with read-your-writes, committed atomically by
//! [`Store::commit`]. Typed object access lives here, and so does all index
//! and queue maintenance.

use std::cell::RefCell;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use rules::Value;

use super::{keys, large, Store, StoreError};
use crate::model::{CsKey, CsObject, MvId, MvObject, Sym};

/// Keys read from the store per scan of [`Txn::keys_with_prefix`].
const SCAN_CHUNK: usize = 1024;

/// Uncommitted writes over the committed store.
pub struct Txn<'s> {
    store: &'s Store,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Previous overlay entries, newest last, for [`Txn::rollback`].
    undo: Vec<Undo>,
    /// Objects decoded by this batch, when [`Txn::cache_objects`] is on.
    cache: Option<RefCell<Decoded>>,
    /// The queue spans this batch opened or extended last, one per queue
    /// and connector (tag, first object, last id): the next new object of
    /// that queue and connector extends one (see [`Txn::queue_new`]).
    open_spans: Vec<(u8, CsKey, u64)>,
}

/// Objects a batch read, as they are in it (`None`: absent). A write to any
/// key of an object (its record, its large lists) forgets it, and `save_cs`
/// then puts back the image it saved when every list of it is inline; a
/// rollback forgets all.
#[derive(Default)]
struct Decoded {
    cs: FxHashMap<CsKey, Option<CsObject>>,
    mv: FxHashMap<MvId, Option<MvObject>>,
}

/// A key and the overlay entry it had before a write (`None`: none).
type Undo = (Vec<u8>, Option<Option<Vec<u8>>>);

/// A point in a batch that [`Txn::rollback`] returns to.
#[derive(Debug, Clone, Copy)]
pub struct Savepoint(usize);

impl<'s> Txn<'s> {
    pub(super) fn new(store: &'s Store) -> Txn<'s> {
        Txn {
            store,
            overlay: BTreeMap::new(),
            undo: Vec::new(),
            cache: None,
            open_spans: Vec::new(),
        }
    }

    /// Keeps the objects this batch decodes, so that reading one again
    /// costs a clone (or nothing, [`Txn::peek_cs`]), not a look-up and a
    /// decode (a sync reads a target
    /// object several times while it brings it in step). Only for a batch
    /// that no other batch commits under while it lives: the cache does
    /// not see other batches' commits.
    pub fn cache_objects(&mut self) {
        self.cache = Some(RefCell::new(Decoded::default()));
    }

    /// Marks the current state of the batch.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.undo.len())
    }

    /// Undoes every write made since `sp`: one object's failed sync leaves
    /// nothing behind.
    pub fn rollback(&mut self, sp: Savepoint) {
        if let Some(cache) = &self.cache {
            *cache.borrow_mut() = Decoded::default();
        }
        while self.undo.len() > sp.0 {
            let Some((key, previous)) = self.undo.pop() else {
                break;
            };
            match previous {
                Some(v) => self.overlay.insert(key, v),
                None => self.overlay.remove(&key),
            };
        }
    }

    pub(super) fn into_writes(self) -> Vec<super::kv::Write> {
        self.overlay.into_iter().collect()
    }

    /// The store this batch writes to.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// How many keys the batch writes so far.
    pub fn len(&self) -> usize {
        self.overlay.len()
    }

    /// The keys and bytes the batch writes so far (interned names and id
    /// counters, added at commit, aside).
    pub fn pending_stats(&self) -> super::WriteStats {
        super::WriteStats {
            keys: self.overlay.len() as u64,
            bytes: self
                .overlay
                .iter()
                .map(|(k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64)
                .sum(),
        }
    }

    /// Whether the batch writes nothing yet.
    pub fn is_empty(&self) -> bool {
        self.overlay.is_empty()
    }

    /// Reads a key, seeing this batch's writes.
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.overlay.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.store.kv.get(key),
        }
    }

    /// Writes a key.
    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.write(key, Some(value));
    }

    /// Deletes a key.
    pub fn delete_raw(&mut self, key: Vec<u8>) {
        self.write(key, None);
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if let Some(cache) = &self.cache {
            let mut cache = cache.borrow_mut();
            match key.first() {
                Some(&keys::tag::CS | &keys::tag::LARGE_CS) => {
                    if let Some(k) = keys::decode_cs_keyed(&key) {
                        cache.cs.remove(&k);
                    }
                }
                Some(&keys::tag::MV | &keys::tag::LARGE_MV) => {
                    if let Some(id) = keys::decode_mv(&key) {
                        cache.mv.remove(&id);
                    }
                }
                _ => {}
            }
        }
        if value.is_some() {
            self.store.absent.wrote(&key);
        }
        let previous = self.overlay.insert(key.clone(), value);
        self.undo.push((key, previous));
    }

    /// Every key under `prefix`, committed or written by this batch, in
    /// order. For small ranges (join candidates, waiting references).
    pub fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
        let mut from = prefix.to_vec();
        let mut exclusive = false;
        loop {
            let chunk = self.store.kv.scan(prefix, &from, exclusive, SCAN_CHUNK)?;
            let Some((last, _)) = chunk.last() else { break };
            from = last.clone();
            exclusive = true;
            let complete = chunk.len() < SCAN_CHUNK;
            out.extend(chunk.into_iter().map(|(k, _)| (k, true)));
            // A short chunk ends the prefix: no second look (a fifth of
            // the unique-value checks of a full sync went to it).
            if complete {
                break;
            }
        }
        for (k, v) in self.overlay.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            out.insert(k.clone(), v.is_some());
        }
        Ok(out
            .into_iter()
            .filter(|(_, live)| *live)
            .map(|(k, _)| k)
            .collect())
    }

    /// A connector-space object.
    pub fn cs(&self, key: CsKey) -> Result<Option<CsObject>, StoreError> {
        self.through_cache(
            key,
            |d| &mut d.cs,
            || {
                let Some(v) = self.get_raw(&keys::cs_keyed(keys::tag::CS, key))? else {
                    return Ok(None);
                };
                let what = || format!("connector-space object {}", key.id);
                large::load_cs(self, &v, &what).map(Some)
            },
        )
    }

    /// `f` of a connector-space object, without copying it when the batch
    /// keeps it decoded (see [`Txn::cache_objects`]). `f` runs while the
    /// cache is borrowed: it must not read the batch.
    pub fn peek_cs<R>(
        &self,
        key: CsKey,
        f: impl FnOnce(&CsObject) -> R,
    ) -> Result<Option<R>, StoreError> {
        if let Some(cache) = &self.cache {
            if let Some(found) = cache.borrow().cs.get(&key) {
                return Ok(found.as_ref().map(f));
            }
        }
        let found = self.cs(key)?;
        Ok(found.as_ref().map(f))
    }

    /// A metaverse object.
    pub fn mv(&self, id: MvId) -> Result<Option<MvObject>, StoreError> {
        self.through_cache(
            id,
            |d| &mut d.mv,
            || {
                let Some(v) = self.get_raw(&keys::mv(id))? else {
                    return Ok(None);
                };
                large::load_mv(self, &v, &|| format!("metaverse object {id}")).map(Some)
            },
        )
    }

    /// An object from the batch's cache of decoded objects (when it keeps
    /// one, see [`Txn::cache_objects`]), else `load`ed and kept there.
    fn through_cache<K: std::hash::Hash + Eq, V: Clone>(
        &self,
        key: K,
        table: impl Fn(&mut Decoded) -> &mut FxHashMap<K, Option<V>>,
        load: impl FnOnce() -> Result<Option<V>, StoreError>,
    ) -> Result<Option<V>, StoreError> {
        let Some(cache) = &self.cache else {
            return load();
        };
        if let Some(found) = table(&mut cache.borrow_mut()).get(&key) {
            return Ok(found.clone());
        }
        let found = load()?;
        table(&mut cache.borrow_mut()).insert(key, found.clone());
        Ok(found)
    }

    /// The object holding `anchor` in a connector space.
    pub fn by_anchor(&self, conn: Sym, anchor: &str) -> Result<Option<CsKey>, StoreError> {
        self.id_entry(&keys::anchor(conn, anchor), conn)
    }

    /// The object at `dn` in a connector space (case-insensitive).
    pub fn by_dn(&self, conn: Sym, dn: &str) -> Result<Option<CsKey>, StoreError> {
        self.id_entry(&keys::dn(conn, dn), conn)
    }

    fn id_entry(&self, key: &[u8], conn: Sym) -> Result<Option<CsKey>, StoreError> {
        if self.certainly_absent(key)? {
            return Ok(None);
        }
        match self.get_raw(key)? {
            Some(v) => {
                let id = <[u8; 8]>::try_from(v.as_slice())
                    .map_err(|_| StoreError::Corrupt(format!("bad index entry {key:?}")))?;
                Ok(Some(CsKey {
                    conn,
                    id: u64::from_be_bytes(id),
                }))
            }
            None => Ok(None),
        }
    }

    /// Whether no index entry holds the value `key` looks up: an anchor, DN
    /// or sync-queue entry, or a unique or join prefix that ends with its
    /// value (see [`Store::absent_lookups`]). `false` means "look".
    fn certainly_absent(&self, key: &[u8]) -> Result<bool, StoreError> {
        let verdict = self.store.absent.verdict(key, |prefix, held| {
            self.store.for_each_prefix(prefix, |k, _| {
                held(k);
                Ok(())
            })
        })?;
        Ok(verdict == super::absent::Verdict::Absent)
    }

    /// Metaverse objects whose indexed attribute `attr` holds `value`.
    pub fn join_candidates(&self, attr: Sym, value: &Value) -> Result<Vec<MvId>, StoreError> {
        let mut out = Vec::new();
        for item in value.items() {
            let text = item.to_string();
            let prefix = keys::join_prefix(attr, text.as_bytes());
            if self.certainly_absent(&prefix)? {
                continue;
            }
            for k in self.keys_with_prefix(&prefix)? {
                if let Some(id) = keys::decode_join_mv(&k) {
                    if !out.contains(&id) {
                        out.push(id);
                    }
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The metaverse objects whose attributes reference metaverse object
    /// `mv` (a report's manager, a group's member), once each, sorted. Empty
    /// unless the referrer index is on: the engine turns it on when a
    /// connector with DNs has outbound rules, so that a rename reaches every
    /// object that names the renamed one.
    pub fn referrers(&self, mv: MvId) -> Result<Vec<MvId>, StoreError> {
        match self.store.referrer_attr() {
            Some(r) => self.join_candidates(r, &Value::Ref(mv)),
            None => Ok(Vec::new()),
        }
    }

    /// Writes (or with `None` deletes) a connector-space object, keeping the
    /// anchor and DN indexes and the sync and export queues in step.
    /// Unchanged objects are not rewritten.
    pub fn save_cs(
        &mut self,
        before: Option<&CsObject>,
        after: Option<&CsObject>,
    ) -> Result<(), StoreError> {
        if before == after {
            return Ok(());
        }
        let Some(key) = after.or(before).map(|o| o.key) else {
            return Ok(());
        };
        let conn = key.conn;
        let id = key.id.to_be_bytes().to_vec();
        let old_anchor = before.and_then(|o| o.anchor.as_deref());
        let new_anchor = after.and_then(|o| o.anchor.as_deref());
        if old_anchor != new_anchor {
            if let Some(a) = old_anchor {
                self.delete_raw(keys::anchor(conn, a));
            }
            if let Some(a) = new_anchor {
                self.put_raw(keys::anchor(conn, a), id.clone());
            }
        }
        let old_dn = before.and_then(|o| o.dn.as_deref());
        let new_dn = after.and_then(|o| o.dn.as_deref());
        if old_dn != new_dn {
            let old_dn = old_dn.map(rules::dn::normalize);
            let new_dn = new_dn.map(rules::dn::normalize);
            if old_dn != new_dn {
                if let Some(d) = &old_dn {
                    self.delete_raw(keys::dn_normalized(conn, d));
                }
                if let Some(d) = &new_dn {
                    self.put_raw(keys::dn_normalized(conn, d), id.clone());
                }
            }
        }
        self.index_unique(before, after);
        for (tag, span, has) in [
            (
                keys::tag::SYNC_QUEUE,
                keys::tag::SYNC_SPAN,
                (|o: &CsObject| o.pending_import.is_some()) as fn(&CsObject) -> bool,
            ),
            (keys::tag::EXPORT_QUEUE, keys::tag::EXPORT_SPAN, |o| {
                o.pending_export.is_some()
            }),
        ] {
            if before.is_none() && after.is_some_and(has) {
                self.queue_new(span, key);
            } else {
                self.flag(tag, key, has, before, after)?;
            }
        }
        let (record, lists) =
            large::save_cs(self, before, after, self.store.large_list_threshold())?;
        self.write_record(keys::cs_keyed(keys::tag::CS, key), record, lists);
        // What the batch now holds reads back as `after` when every list of
        // it is inline (out of line, a list reads back sorted, as a set):
        // the next read need not look it up and decode it.
        let threshold = self.store.large_list_threshold();
        if let Some(cache) = &self.cache {
            if !after.is_some_and(|o| large::has_large_list(o, threshold)) {
                cache.borrow_mut().cs.insert(key, after.cloned());
            }
        }
        Ok(())
    }

    /// Queues a new object in a span of `tag` (`SYNC_SPAN` for a pending
    /// import, `EXPORT_SPAN` for a pending export): an import's new objects,
    /// and a sync's provisioned ones, take ids in sequence, so a batch of
    /// them costs one key per connector, not one each. A span covers the
    /// connector's ids from its first to its last, and may hold ids of
    /// other connectors' objects between (ids are one sequence): a reader
    /// takes the connector's objects in the range and looks at what each
    /// has pending. A sync or an export that clears an object's pending
    /// change leaves its span alone: it deletes the single entry the
    /// object lacks, which sled finds absent and writes nothing for (a
    /// full sync does not even send an `I` one, see `absent.rs`; an
    /// export sends its `E` ones). The step that works through the span
    /// drops it (see `Syncer::run`, `Exporter::run`).
    fn queue_new(&mut self, tag: u8, key: CsKey) {
        let open = self
            .open_spans
            .iter()
            .position(|(t, first, _)| *t == tag && first.conn == key.conn);
        if let Some(i) = open {
            let (_, first, last) = self.open_spans[i];
            let (k, v) = keys::queue_span(tag, first, last);
            // The span is this batch's as it left it (not rolled back).
            if key.id > last && self.overlay.get(&k) == Some(&Some(v)) {
                let (k, v) = keys::queue_span(tag, first, key.id);
                self.put_raw(k, v);
                self.open_spans[i].2 = key.id;
                return;
            }
            self.open_spans.swap_remove(i);
        }
        let (k, v) = keys::queue_span(tag, key, key.id);
        self.put_raw(k, v);
        self.open_spans.push((tag, key, key.id));
    }

    /// Queues an object's pending import on its own key: an object that a
    /// sync leaves pending (it failed) stays queued after its span is
    /// dropped.
    pub fn queue_import(&mut self, key: CsKey) {
        self.put_raw(keys::cs_keyed(keys::tag::SYNC_QUEUE, key), Vec::new());
    }

    /// Queues an object's pending export on its own key: an object an
    /// export leaves pending (it failed) stays queued after its span is
    /// dropped.
    pub fn queue_export(&mut self, key: CsKey) {
        self.put_raw(keys::cs_keyed(keys::tag::EXPORT_QUEUE, key), Vec::new());
    }

    fn flag(
        &mut self,
        tag: u8,
        key: CsKey,
        has: fn(&CsObject) -> bool,
        before: Option<&CsObject>,
        after: Option<&CsObject>,
    ) -> Result<(), StoreError> {
        let was = before.is_some_and(has);
        let is = after.is_some_and(has);
        if was != is {
            let k = keys::cs_keyed(tag, key);
            if is {
                self.put_raw(k, Vec::new());
            } else if !self.certainly_absent(&k)? {
                // An object a span queued has no entry of its own.
                self.delete_raw(k);
            }
        }
        Ok(())
    }

    /// Updates the unique-value index entries of one connector-space object.
    pub(super) fn index_unique(&mut self, before: Option<&CsObject>, after: Option<&CsObject>) {
        let Some(key) = after.or(before).map(|o| o.key) else {
            return;
        };
        for attr in self.store.unique_attrs(key.conn) {
            let old = before.map(|o| o.held_values(attr)).unwrap_or_default();
            let new = after.map(|o| o.held_values(attr)).unwrap_or_default();
            for v in old.difference(&new) {
                self.delete_raw(keys::unique(key.conn, attr, v, key.id));
            }
            for v in new.difference(&old) {
                self.put_raw(keys::unique(key.conn, attr, v, key.id), Vec::new());
            }
        }
    }

    /// Whether any object of `conn` other than `except` holds `value` in
    /// `attr` (case-insensitively), committed or written by this batch.
    pub fn value_held(
        &self,
        conn: Sym,
        attr: Sym,
        value: &str,
        except: Option<CsKey>,
    ) -> Result<bool, StoreError> {
        Ok(!self.value_holders(conn, attr, value, except)?.is_empty())
    }

    /// The objects of `conn` other than `except` that hold `value` in `attr`
    /// (case-insensitively), committed or written by this batch.
    pub fn value_holders(
        &self,
        conn: Sym,
        attr: Sym,
        value: &str,
        except: Option<CsKey>,
    ) -> Result<Vec<CsKey>, StoreError> {
        let prefix = keys::unique_prefix(conn, attr, value);
        if self.certainly_absent(&prefix)? {
            return Ok(Vec::new());
        }
        let except = except.filter(|e| e.conn == conn).map(|e| e.id);
        Ok(self
            .keys_with_prefix(&prefix)?
            .iter()
            .filter_map(|k| {
                let id = k
                    .get(prefix.len()..)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)?;
                (Some(id) != except).then_some(CsKey { conn, id })
            })
            .collect())
    }

    /// Writes (or deletes) a metaverse object, keeping the join index in step.
    pub fn save_mv(
        &mut self,
        before: Option<&MvObject>,
        after: Option<&MvObject>,
    ) -> Result<(), StoreError> {
        if before == after {
            return Ok(());
        }
        let Some(id) = after.or(before).map(|o| o.id) else {
            return Ok(());
        };
        self.index_mv(before, after);
        let (record, lists) =
            large::save_mv(self, before, after, self.store.large_list_threshold())?;
        self.write_record(keys::mv(id), record, lists);
        Ok(())
    }

    /// Writes an object's record (or deletes it, with `None`) and the
    /// out-of-line list values that changed with it.
    fn write_record(&mut self, key: Vec<u8>, record: Option<Vec<u8>>, lists: Vec<large::KeyWrite>) {
        for (k, v) in lists {
            self.write(k, v);
        }
        self.write(key, record);
    }

    /// Updates the join-index entries of one metaverse object: every value
    /// of its indexed attributes and, when the referrer index is on (see
    /// [`Txn::referrers`]), every reference it holds.
    pub(super) fn index_mv(&mut self, before: Option<&MvObject>, after: Option<&MvObject>) {
        let entries =
            |o: Option<&MvObject>| o.map(|o| self.store.join_entries(o)).unwrap_or_default();
        let old = entries(before);
        let new = entries(after);
        for k in old.difference(&new) {
            self.delete_raw(k.clone());
        }
        for k in new.difference(&old) {
            self.put_raw(k.clone(), Vec::new());
        }
    }

    /// Records that recomputing `source` met a reference to `raw` in `conn`
    /// that does not resolve yet.
    pub fn add_waiting(&mut self, conn: Sym, raw: &str, source: MvId) -> Result<(), StoreError> {
        let key = keys::waiting(conn, raw, source);
        if self.get_raw(&key)?.is_none() {
            self.put_raw(key, Vec::new());
        }
        Ok(())
    }

    /// The stored import watermark of a connector.
    pub fn watermark(&self, conn: Sym) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_raw(&keys::watermark(conn))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// How many delta imports in a row kept the watermark back for bad items.
    pub fn watermark_holds(&self, conn: Sym) -> Result<u32, StoreError> {
        Ok(self
            .get_raw(&keys::watermark_holds(conn))?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Stores that count (0 removes it).
    pub fn set_watermark_holds(&mut self, conn: Sym, holds: u32) {
        if holds == 0 {
            self.delete_raw(keys::watermark_holds(conn));
        } else {
            self.put_raw(keys::watermark_holds(conn), holds.to_string().into_bytes());
        }
    }

    /// Stores the import watermark of a connector.
    pub fn set_watermark(&mut self, conn: Sym, watermark: &str) {
        self.put_raw(keys::watermark(conn), watermark.as_bytes().to_vec());
    }
}

impl large::Reader for Txn<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(key)
    }

    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        Txn::keys_with_prefix(self, prefix)
    }
}

#[cfg(test)]
mod tests {
    use rules::Value;

    use crate::model::{CsKey, CsObject, CsState};
    use crate::store::Store;

    /// A batch that keeps objects decoded reads a saved object back as the
    /// store would: an out-of-line list comes back sorted, so it is loaded,
    /// not taken from the image that was saved.
    #[test]
    fn a_saved_object_reads_back_as_the_store_holds_it() {
        let mut store = Store::memory();
        store.set_large_list_threshold(2).expect("threshold");
        let (conn, ty, member) = (
            store.intern("c"),
            store.intern("group"),
            store.intern("member"),
        );
        let key = CsKey { conn, id: 1 };
        let mut cs = CsObject::new(key, ty, CsState::Present);
        let unsorted = ["c", "a", "b"].map(|v| Value::Str(v.into()));
        cs.hologram.set(member, Value::List(unsorted.to_vec()));
        cs.anchor = Some("g".into());
        let mut txn = store.begin();
        txn.cache_objects();
        txn.save_cs(None, Some(&cs)).expect("save");
        let read = txn.cs(key).expect("read").expect("there");
        let sorted = ["a", "b", "c"].map(|v| Value::Str(v.into()));
        assert_eq!(
            read.hologram.get(member),
            Some(&Value::List(sorted.to_vec()))
        );
        store.commit(txn).expect("commit");
        let committed = store.begin().cs(key).expect("read").expect("there");
        assert_eq!(committed, read);

        // An inline object is kept as saved, and reads back the same.
        let small = CsObject::new(CsKey { conn, id: 2 }, ty, CsState::Present);
        let mut txn = store.begin();
        txn.cache_objects();
        txn.save_cs(None, Some(&small)).expect("save");
        assert_eq!(txn.cs(small.key).expect("read"), Some(small.clone()));
    }
}
