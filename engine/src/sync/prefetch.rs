//! Reading a delta sync's next batch ahead, on the core the sync leaves
//! idle.
//!
//! Every command is a new process, so a delta sync starts with sled's page
//! cache empty, and at 1M identities a changed identity's objects (its
//! source object, its metaverse object, its other sources and its targets)
//! sit on pages of their own: the profile of `sync hr --delta` spent 42 %
//! of its time pulling those pages from sled's log, one read after
//! another. While the sync evaluates one batch, a second thread finds the
//! next one (the queue's entries after the batch's last) and reads the
//! objects it will read, so that their pages are in the cache when the
//! sync gets there. It only reads: what it reads is dropped, and a read
//! that fails is left for the sync to make (and report).

use std::sync::mpsc::sync_channel;

use super::BATCH;
use crate::model::CsKey;
use crate::store::{keys, Store};

/// Runs `body` with a function that takes the last key of the batch the
/// sync is about to sync; the reader ahead then reads the batch after it,
/// among the keys under `prefix`, while `body` goes on. A key handed while
/// the reader is still on the previous batch is dropped: the sync never
/// waits.
pub(crate) fn with_reader_ahead<R>(
    store: &Store,
    prefix: &[u8],
    body: impl FnOnce(&mut dyn FnMut(Vec<u8>)) -> R,
) -> R {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Vec<u8>>(1);
        let reader = std::thread::Builder::new()
            .name("mvsync-read-ahead".into())
            .spawn_scoped(scope, move || {
                for after in rx {
                    let Ok(next) = store.keys_after(prefix, Some(&after), BATCH) else {
                        continue;
                    };
                    let batch: Vec<CsKey> = next
                        .iter()
                        .filter_map(|k| keys::decode_cs_keyed(k))
                        .collect();
                    read(store, &batch);
                }
            });
        if reader.is_err() {
            // No thread: the sync reads for itself, as it did before.
            return body(&mut |_| {});
        }
        // A full channel drops the key (the reader is busy); a closed one
        // means the reader is gone.
        let mut hand = move |after: Vec<u8>| drop(tx.try_send(after));
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
