//! The what-if key-value store: reads fall through to a committed store,
//! writes stay in memory and are never applied to it. `mvsync plan` and
//! `mvsync preview object` run real sync steps on it, so "what would this
//! do" is answered by the same code that does it, and the store on disk is
//! never touched.
//!
//! Invariant: nothing here calls [`Kv::apply`] or [`Kv::flush`] on the base.

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use super::kv::{Entries, Kv, Write};
use super::StoreError;

/// Writes over a read-only base: `Some` a put, `None` a delete that hides
/// the base's value.
pub struct OverlayKv {
    base: Arc<dyn Kv>,
    overlay: Mutex<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

/// Base entries fetched per scan of the base while merging.
const BASE_CHUNK: usize = 4096;

impl OverlayKv {
    /// An empty overlay over `base`.
    pub fn new(base: Arc<dyn Kv>) -> OverlayKv {
        OverlayKv {
            base,
            overlay: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Option<Vec<u8>>>> {
        // Batches apply under the lock, so a poisoned map is still consistent.
        self.overlay.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many keys the overlay holds (puts and hiding deletes): the memory
    /// a what-if computation costs beyond the base.
    pub fn written(&self) -> usize {
        self.lock().len()
    }
}

/// A scan of `base` with `writes` laid over it: a write shadows the base's
/// value, a `None` hides it. Used by the what-if overlay and by the batch in
/// flight of [`super::PipelinedKv`].
pub(super) fn scan_over(
    base: &dyn Kv,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    prefix: &[u8],
    from: &[u8],
    exclusive: bool,
    limit: usize,
) -> Result<Entries, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let lower = super::kv::scan_start(prefix, from, exclusive);
    let mut mine = writes
        .range((lower, Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(prefix))
        .peekable();
    let chunk = limit.clamp(64, BASE_CHUNK);
    let mut fetched: VecDeque<(Vec<u8>, Vec<u8>)> = VecDeque::new();
    let mut base_from = from.to_vec();
    let mut base_exclusive = exclusive;
    let mut base_done = false;
    let mut out = Vec::new();
    while out.len() < limit {
        if fetched.is_empty() && !base_done {
            let got = base.scan(prefix, &base_from, base_exclusive, chunk)?;
            base_done = got.len() < chunk;
            if let Some((last, _)) = got.last() {
                base_from = last.clone();
                base_exclusive = true;
            }
            fetched.extend(got);
        }
        let order = match (fetched.front(), mine.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((b, _)), Some((m, _))) => b.as_slice().cmp(m.as_slice()),
        };
        match order {
            Ordering::Less => out.extend(fetched.pop_front()),
            Ordering::Equal | Ordering::Greater => {
                if order == Ordering::Equal {
                    // The write shadows the base's value.
                    fetched.pop_front();
                }
                if let Some((k, Some(v))) = mine.next() {
                    out.push((k.clone(), v.clone()));
                }
            }
        }
    }
    Ok(out)
}

impl Kv for OverlayKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.lock().get(key) {
            return Ok(v.clone());
        }
        self.base.get(key)
    }

    fn scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        exclusive: bool,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        scan_over(&*self.base, &self.lock(), prefix, from, exclusive, limit)
    }

    fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let mut overlay = self.lock();
        for (k, v) in batch {
            overlay.insert(k, v);
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Nothing to make durable: the overlay lives and dies in memory.
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.scan(&[], &[], false, 1)?.is_empty())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;
    use crate::store::MemKv;

    fn put(kv: &dyn Kv, k: &[u8], v: &[u8]) {
        kv.apply(vec![(k.to_vec(), Some(v.to_vec()))]).unwrap();
    }

    fn base_with(entries: &[(&[u8], &[u8])]) -> Arc<MemKv> {
        let base = Arc::new(MemKv::default());
        for (k, v) in entries {
            put(base.as_ref(), k, v);
        }
        base
    }

    #[test]
    fn writes_stay_in_the_overlay_and_deletes_hide_the_base() {
        let base = base_with(&[(b"a1", b"x"), (b"a2", b"y"), (b"b1", b"z")]);
        let over = OverlayKv::new(base.clone());
        over.apply(vec![
            (b"a2".to_vec(), None),
            (b"a3".to_vec(), Some(b"new".to_vec())),
            (b"a1".to_vec(), Some(b"changed".to_vec())),
        ])
        .unwrap();
        assert_eq!(over.get(b"a1").unwrap(), Some(b"changed".to_vec()));
        assert_eq!(over.get(b"a2").unwrap(), None);
        assert_eq!(
            over.scan(b"a", b"a", false, 10).unwrap(),
            vec![
                (b"a1".to_vec(), b"changed".to_vec()),
                (b"a3".to_vec(), b"new".to_vec())
            ]
        );
        // The base is untouched.
        assert_eq!(base.get(b"a1").unwrap(), Some(b"x".to_vec()));
        assert_eq!(base.get(b"a2").unwrap(), Some(b"y".to_vec()));
        assert_eq!(base.get(b"a3").unwrap(), None);
        assert_eq!(over.written(), 3);
    }

    #[test]
    fn a_scan_past_many_hidden_base_keys_still_fills_its_limit() {
        let base = Arc::new(MemKv::default());
        for i in 0..2000u32 {
            put(base.as_ref(), &i.to_be_bytes(), b"v");
        }
        let over = OverlayKv::new(base.clone());
        // Hide the first 1500 keys: more than one base chunk.
        over.apply(
            (0..1500u32)
                .map(|i| (i.to_be_bytes().to_vec(), None))
                .collect(),
        )
        .unwrap();
        let got = over.scan(&[], &[], false, 3).unwrap();
        let keys: Vec<Vec<u8>> = got.into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            (1500..1503u32)
                .map(|i| i.to_be_bytes().to_vec())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn is_empty_sees_through_both_layers() {
        let over = OverlayKv::new(base_with(&[(b"k", b"v")]));
        assert!(!over.is_empty().unwrap());
        over.apply(vec![(b"k".to_vec(), None)]).unwrap();
        assert!(over.is_empty().unwrap());
        over.apply(vec![(b"j".to_vec(), Some(Vec::new()))]).unwrap();
        assert!(!over.is_empty().unwrap());
    }

    #[test]
    fn a_what_if_store_shares_names_and_counters_and_never_writes_its_base() {
        use crate::store::Store;

        let store = Store::memory();
        let saved = store.intern("displayName");
        let next_mv = store.alloc_mv_id() + 1;
        store.commit(store.begin()).unwrap();
        let unsaved = store.intern("notYetCommitted");
        let everything = |s: &Store| s.kv().scan(&[], &[], false, usize::MAX).unwrap();
        let frozen = everything(&store);

        let what_if = store.what_if().unwrap();
        assert_eq!(what_if.lookup("displayName"), Some(saved));
        assert_eq!(what_if.lookup("notYetCommitted"), Some(unsaved));
        assert_eq!(what_if.alloc_mv_id(), next_mv);
        let mut txn = what_if.begin();
        txn.put_raw(b"Zkey".to_vec(), b"v".to_vec());
        let only_here = what_if.intern("onlyInTheWhatIf");
        what_if.commit(txn).unwrap();

        assert_eq!(what_if.get_raw(b"Zkey").unwrap(), Some(b"v".to_vec()));
        assert_eq!(what_if.lookup("onlyInTheWhatIf"), Some(only_here));
        assert_eq!(store.get_raw(b"Zkey").unwrap(), None);
        assert_eq!(store.lookup("onlyInTheWhatIf"), None);
        assert_eq!(
            store.alloc_mv_id(),
            next_mv,
            "the base's counters did not move"
        );
        assert_eq!(everything(&store), frozen);
        assert!(what_if.path().is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Apply(Vec<(Vec<u8>, Option<Vec<u8>>)>),
        Get(Vec<u8>),
        Scan {
            prefix: Vec<u8>,
            from: Vec<u8>,
            exclusive: bool,
            limit: usize,
        },
    }

    /// Short keys over a small alphabet, so that prefixes, equal keys and
    /// shadowed keys are common.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0u8..4, 0..4)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => proptest::collection::vec(
                (key(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3))),
                1..6
            )
            .prop_map(Op::Apply),
            1 => key().prop_map(Op::Get),
            3 => (
                proptest::collection::vec(0u8..4, 0..2),
                key(),
                any::<bool>(),
                0usize..8
            )
                .prop_map(|(prefix, from, exclusive, limit)| Op::Scan {
                    prefix,
                    from,
                    exclusive,
                    limit
                }),
        ]
    }

    proptest! {
        /// The overlay behaves exactly like a copy of the base with the
        /// same writes applied, and the base never changes.
        #[test]
        fn overlay_matches_a_copy_of_the_base(
            base_entries in proptest::collection::vec((key(), proptest::collection::vec(any::<u8>(), 0..3)), 0..24),
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            let base = Arc::new(MemKv::default());
            let copy = MemKv::default();
            for (k, v) in &base_entries {
                put(base.as_ref(), k, v);
                put(&copy, k, v);
            }
            let frozen = base.scan(&[], &[], false, usize::MAX).unwrap();
            let over = OverlayKv::new(base.clone());
            for op in ops {
                match op {
                    Op::Apply(batch) => {
                        over.apply(batch.clone()).unwrap();
                        copy.apply(batch).unwrap();
                    }
                    Op::Get(k) => {
                        prop_assert_eq!(over.get(&k).unwrap(), copy.get(&k).unwrap());
                    }
                    Op::Scan { prefix, from, exclusive, limit } => {
                        prop_assert_eq!(
                            over.scan(&prefix, &from, exclusive, limit).unwrap(),
                            copy.scan(&prefix, &from, exclusive, limit).unwrap(),
                            "scan prefix={:?} from={:?} exclusive={} limit={}",
                            prefix, from, exclusive, limit
                        );
                    }
                }
                prop_assert_eq!(over.is_empty().unwrap(), copy.is_empty().unwrap());
            }
            prop_assert_eq!(
                over.scan(&[], &[], false, usize::MAX).unwrap(),
                copy.scan(&[], &[], false, usize::MAX).unwrap()
            );
            prop_assert_eq!(base.scan(&[], &[], false, usize::MAX).unwrap(), frozen);
        }
    }
}
