//! Reading a delta sync's next batch ahead, on the core the sync leaves
//! idle.
//!
//! Every command is a new process, so a delta sync starts with sled's page
//! cache empty, and at 1M identities a changed identity's objects (its
//! source object, its metaverse object, its other sources and its targets)
//! sit on pages of their own: the profile of `sync hr --delta` spent 42 %
//! of its time pulling those pages from sled's log, one read after
//! another. While the sync evaluates one batch, a second thread reads the
//! objects the next batch will read, so that their pages are in the cache
//! when the sync gets there. It only reads: what it reads is dropped, and a
//! read that fails is left for the sync to make (and report).

use std::sync::mpsc::{sync_channel, TrySendError};

use crate::model::CsKey;
use crate::store::Store;

/// Runs `body` with a function that hands a batch of objects to the reader
/// ahead, which reads them while `body` goes on. A batch handed while the
/// reader is still on the previous one is dropped: the sync never waits.
pub(super) fn with_reader_ahead<R>(
    store: &Store,
    body: impl FnOnce(&mut dyn FnMut(Vec<CsKey>)) -> R,
) -> R {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Vec<CsKey>>(1);
        let reader = std::thread::Builder::new()
            .name("mvsync-read-ahead".into())
            .spawn_scoped(scope, move || {
                for batch in rx {
                    read(store, &batch);
                }
            });
        if reader.is_err() {
            // No thread: the sync reads for itself, as it did before.
            return body(&mut |_| {});
        }
        let mut hand = move |batch: Vec<CsKey>| match tx.try_send(batch) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        };
        body(&mut hand)
    })
}

/// Reads what syncing `batch` reads: each object, its metaverse object and
/// the metaverse object's other objects.
fn read(store: &Store, batch: &[CsKey]) {
    let txn = store.begin();
    for &key in batch {
        let Ok(Some(cs)) = txn.cs(key) else {
            continue;
        };
        let Some(link) = cs.link else {
            continue;
        };
        let Ok(Some(mv)) = txn.mv(link.mv) else {
            continue;
        };
        for other in mv.links.iter().filter(|k| **k != key) {
            let _ = txn.cs(*other);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::with_reader_ahead;
    use crate::model::{CsKey, CsObject, CsState, Link, LinkKind, MvObject};
    use crate::store::{keys, Entries, Kv, MemKv, Store, StoreError, Write};

    /// A store that records the keys read.
    #[derive(Default)]
    struct Recording {
        inner: MemKv,
        read: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl Kv for Recording {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            if let Ok(mut read) = self.read.lock() {
                read.push(key.to_vec());
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
            self.inner.scan(prefix, from, exclusive, limit)
        }
        fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError> {
            self.inner.apply(batch)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.inner.flush()
        }
        fn is_empty(&self) -> Result<bool, StoreError> {
            self.inner.is_empty()
        }
    }

    #[test]
    fn the_reader_ahead_reads_each_object_its_metaverse_object_and_their_other_objects() {
        let kv = Recording::default();
        let read = Arc::clone(&kv.read);
        let store = Store::with_kv(Box::new(kv), None).expect("store");
        let (hr, ad, user) = (store.intern("hr"), store.intern("ad"), store.intern("user"));
        let (source, target) = (CsKey { conn: hr, id: 1 }, CsKey { conn: ad, id: 2 });
        let mut txn = store.begin();
        for key in [source, target] {
            let mut cs = CsObject::new(key, user, CsState::Present);
            cs.link = Some(Link {
                mv: 7,
                kind: LinkKind::Projected,
                rule: user,
            });
            txn.save_cs(None, Some(&cs)).expect("save");
        }
        let mv = MvObject {
            id: 7,
            object_type: user,
            attrs: Vec::new(),
            links: vec![source, target],
        };
        txn.save_mv(None, Some(&mv)).expect("save");
        store.commit(txn).expect("commit");
        read.lock().expect("lock").clear();

        let wanted = [
            keys::cs_keyed(keys::tag::CS, source),
            keys::mv(7),
            keys::cs_keyed(keys::tag::CS, target),
        ];
        let all_read = || {
            let read = read.lock().expect("lock");
            wanted.iter().all(|k| read.contains(k))
        };
        with_reader_ahead(&store, |ahead| {
            ahead(vec![source]);
            let started = Instant::now();
            while !all_read() && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        assert!(all_read(), "read: {:?}", read.lock().expect("lock"));
    }
}
