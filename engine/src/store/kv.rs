//! The key-value layer under the store: a small trait with a sled
//! implementation and an in-memory one (the oracle of model-based tests).
//!
//! Everything lives in one ordered keyspace partitioned by a one-byte prefix
//! (see `keys`), so that one batch commits objects, indexes, queues and
//! counters atomically.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::StoreError;

/// One write of a batch: `Some` puts, `None` deletes.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// A batch in key order, each key once (`None` deletes).
pub type SortedBatch = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Key-value pairs returned by a scan.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Where a [`Kv::scan`] starts: at `from`, or just after it when
/// `exclusive`, but never before `prefix`. Every implementation uses it, so
/// they agree on the bound.
pub fn scan_start(prefix: &[u8], from: &[u8], exclusive: bool) -> Bound<Vec<u8>> {
    if from < prefix {
        Bound::Included(prefix.to_vec())
    } else if exclusive {
        Bound::Excluded(from.to_vec())
    } else {
        Bound::Included(from.to_vec())
    }
}

/// An ordered key-value store that applies batches atomically.
pub trait Kv: Send + Sync {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` entries with keys `>= from` (or `> from` when
    /// `exclusive`) that start with `prefix`, in key order.
    fn scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        exclusive: bool,
        limit: usize,
    ) -> Result<Entries, StoreError>;
    /// Applies every write or none.
    fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError>;
    /// Applies every write or none, as [`Kv::apply`] does, while readers on
    /// other threads go on reading (they may see part of the batch: the
    /// caller hides that, see `pipeline.rs`). Made for a thread of its own.
    fn apply_beside_readers(&self, batch: &SortedBatch) -> Result<(), StoreError> {
        self.apply(batch.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
    /// Makes applied batches durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Whether the store holds no key at all.
    fn is_empty(&self) -> Result<bool, StoreError>;
}

/// sled, one tree.
pub struct SledKv {
    db: sled::Db,
    /// A batch applied beside readers failed part-way: its journal stays,
    /// and the next open completes it.
    torn: std::sync::atomic::AtomicBool,
}

/// sled's atomic batch holds a lock that stops every reader, so a batch
/// applied beside readers is first written whole to a journal (in one
/// atomic batch, a moment's lock), then key by key under sled's shared
/// lock. sled recovers a prefix of its log, so a key of the batch that
/// survives a crash implies its journal survived, and opening the store
/// replays a journal left behind. Replaying it again is harmless: nothing
/// is written after a journal but its own keys, until the next journal
/// replaces it. Keys: `j` the number of chunks (u32), `j`+chunk (u32) a
/// chunk of writes. The tag sorts apart from every other (see `keys.rs`).
mod journal {
    use super::Write;

    pub const HEAD: &[u8] = b"j";
    /// Bytes per chunk before compression. A leaf of sled's tree holds up
    /// to 16 keys and is logged whole now and then; past a quarter of a
    /// 512 KiB segment it goes to a blob file of its own. Chunks of 64 KiB
    /// did that, and made a store of 100k identities 1.1 GB after its full
    /// sync instead of 0.5 GB. 8 KiB, compressed by lz4, leaves no blob;
    /// the estate's store after its exports held 653 MB with them against
    /// 851 MB with uncompressed 4 KiB chunks (499 MB with no journal). A
    /// single write larger than that (a large list's blob) makes a chunk
    /// of its own size, as the write itself does in sled.
    pub const CHUNK: usize = 8 * 1024;

    pub fn chunk_key(i: u32) -> Vec<u8> {
        let mut k = HEAD.to_vec();
        k.extend_from_slice(&i.to_be_bytes());
        k
    }

    /// The batch in chunks of about [`CHUNK`] bytes: each write is its key's
    /// length (u32) and key, then 0 for a delete or 1, the value's length
    /// (u32) and value.
    pub fn encode<'a>(
        batch: impl IntoIterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>,
    ) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        let mut cur = Vec::new();
        for (k, v) in batch {
            cur.extend_from_slice(&(k.len() as u32).to_be_bytes());
            cur.extend_from_slice(k);
            match v {
                None => cur.push(0),
                Some(v) => {
                    cur.push(1);
                    cur.extend_from_slice(&(v.len() as u32).to_be_bytes());
                    cur.extend_from_slice(v);
                }
            }
            if cur.len() >= CHUNK {
                chunks.push(lz4_flex::compress_prepend_size(&std::mem::take(&mut cur)));
            }
        }
        if !cur.is_empty() {
            chunks.push(lz4_flex::compress_prepend_size(&cur));
        }
        chunks
    }

    /// Appends the writes of one chunk to `out`; `None` if it does not
    /// decode.
    pub fn decode(chunk: &[u8], out: &mut Vec<Write>) -> Option<()> {
        let chunk = lz4_flex::decompress_size_prepended(chunk).ok()?;
        let mut rest = chunk.as_slice();
        let mut take = |n: usize| -> Option<Vec<u8>> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head.to_vec())
        };
        let len = |b: Vec<u8>| b.try_into().ok().map(|b| u32::from_be_bytes(b) as usize);
        loop {
            let Some(klen) = take(4) else {
                // The end, if nothing is left over.
                return take(1).is_none().then_some(());
            };
            let key = take(len(klen)?)?;
            let value = match take(1)?.first()? {
                0 => None,
                1 => {
                    let vlen = len(take(4)?)?;
                    Some(take(vlen)?)
                }
                _ => return None,
            };
            out.push((key, value));
        }
    }
}

/// How long [`SledKv::open`] waits for sled's own file lock.
const SLED_LOCK_WAIT: Duration = Duration::from_secs(5);

impl SledKv {
    /// Opens (or creates) the database at `path` with a bounded page cache.
    ///
    /// Callers hold the store's writer lock first, so sled's own file lock
    /// can only be held by a database this process has just dropped: sled
    /// releases it from a background thread a moment after the drop returns
    /// (sled issue #1289). Open waits for that, up to a few seconds, and then
    /// reports the lock error as it stands.
    ///
    /// A batch a crash interrupted while it was applied beside readers is
    /// completed from its journal first.
    pub fn open(path: &std::path::Path, cache_bytes: u64) -> Result<SledKv, StoreError> {
        let kv = Self::open_waiting(path, cache_bytes, SLED_LOCK_WAIT)?;
        kv.replay_journal(path)?;
        Ok(kv)
    }

    fn replay_journal(&self, path: &std::path::Path) -> Result<(), StoreError> {
        let Some(head) = self.db.get(journal::HEAD)? else {
            return Ok(());
        };
        // Until the batch is whole, its journal outlives this handle.
        self.torn.store(true, std::sync::atomic::Ordering::SeqCst);
        let damaged = |why: String| {
            StoreError::Corrupt(format!(
                "{}: the journal of a batch a crash interrupted {why}, so the batch cannot be completed",
                path.display()
            ))
        };
        let chunks = head
            .as_ref()
            .try_into()
            .map(u32::from_be_bytes)
            .map_err(|_| damaged(format!("has a head of {} bytes, not 4", head.len())))?;
        let mut writes = Vec::new();
        for i in 0..chunks {
            let chunk = self
                .db
                .get(journal::chunk_key(i))?
                .ok_or_else(|| damaged(format!("lacks chunk {i} of {chunks}")))?;
            journal::decode(&chunk, &mut writes)
                .ok_or_else(|| damaged(format!("has a chunk {i} that does not decode")))?;
        }
        tracing::info!(
            writes = writes.len(),
            "completing a batch a crash interrupted"
        );
        // One atomic batch: the writes, and the journal gone (`apply`
        // removes its head).
        writes.extend((0..chunks).map(|i| (journal::chunk_key(i), None)));
        self.apply(writes)?;
        self.db.flush()?;
        self.torn.store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn open_waiting(
        path: &std::path::Path,
        cache_bytes: u64,
        wait: Duration,
    ) -> Result<SledKv, sled::Error> {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(5);
        loop {
            match config.open() {
                Ok(db) => {
                    return Ok(SledKv {
                        db,
                        torn: Default::default(),
                    })
                }
                Err(e) if is_lock_contention(&e) && Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether sled refused to open because another handle holds its file lock.
/// sled reports this only as an I/O error with this text.
fn is_lock_contention(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        exclusive: bool,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        let lower = scan_start(prefix, from, exclusive);
        let mut out = Vec::new();
        for item in self.db.range::<Vec<u8>, _>((lower, Bound::Unbounded)) {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        // A journal left behind is older than this batch: never replay it.
        b.remove(journal::HEAD);
        self.db.apply_batch(b)?;
        Ok(())
    }

    fn apply_beside_readers(&self, batch: &SortedBatch) -> Result<(), StoreError> {
        let chunks = journal::encode(batch);
        let mut j = sled::Batch::default();
        j.insert(journal::HEAD, &(chunks.len() as u32).to_be_bytes());
        for (i, chunk) in chunks.into_iter().enumerate() {
            j.insert(journal::chunk_key(i as u32), chunk);
        }
        self.db.apply_batch(j)?;
        // Inserted from slices: sled copies each into its own buffer anyway.
        let applied = batch.iter().try_for_each(|(k, v)| match v {
            Some(v) => self.db.insert(k.as_slice(), v.as_slice()).map(drop),
            None => self.db.remove(k.as_slice()).map(drop),
        });
        if applied.is_err() {
            self.torn.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(applied?)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.db.is_empty())
    }
}

impl Drop for SledKv {
    /// A store closed whole needs no journal: its last batch is in.
    fn drop(&mut self) {
        if self.torn.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let keys: Vec<_> = self
            .db
            .scan_prefix(journal::HEAD)
            .keys()
            .flatten()
            .collect();
        // A store only read holds no journal: closing it writes nothing.
        if keys.is_empty() {
            return;
        }
        let mut b = sled::Batch::default();
        for key in keys {
            b.remove(key);
        }
        let _ = self.db.apply_batch(b);
    }
}

/// An in-memory store: a `BTreeMap` behind a mutex.
#[derive(Default)]
pub struct MemKv {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemKv {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A poisoned map is still a consistent map: batches apply under the lock.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Kv for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    fn scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        exclusive: bool,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        let lower = scan_start(prefix, from, exclusive);
        Ok(self
            .lock()
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let mut map = self.lock();
        for (k, v) in batch {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.lock().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(k: &str, v: Option<&str>) -> Write {
        (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))
    }

    fn all(kv: &SledKv) -> Vec<(String, String)> {
        kv.scan(&[], &[], false, usize::MAX)
            .expect("store call")
            .into_iter()
            .map(|(k, v)| {
                let s = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
                (s(k), s(v))
            })
            .collect()
    }

    #[test]
    fn a_batch_torn_beside_readers_is_completed_from_its_journal_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let kv = SledKv::open(&path, 1 << 20).expect("open");
        kv.apply(vec![w("a", Some("old")), w("b", Some("old"))])
            .expect("store call");
        // Big enough for several chunks, with a delete among the writes.
        let value = "v".repeat(3000);
        let mut batch: Vec<Write> = (0..20)
            .map(|i| w(&format!("k{i:02}"), Some(&value)))
            .collect();
        batch.push(w("a", None));
        batch.push(w("b", Some("new")));
        let chunks = journal::encode(batch.iter().map(|(k, v)| (k, v)));
        assert!(chunks.len() > 1, "{} chunk(s)", chunks.len());
        // The journal lands, then only the first three writes: a crash.
        let mut j = sled::Batch::default();
        j.insert(journal::HEAD, &(chunks.len() as u32).to_be_bytes());
        for (i, chunk) in chunks.into_iter().enumerate() {
            j.insert(journal::chunk_key(i as u32), chunk);
        }
        kv.db.apply_batch(j).expect("store call");
        for (k, v) in batch.iter().take(3) {
            kv.db
                .insert(k, v.clone().expect("store call"))
                .expect("store call");
        }
        kv.torn.store(true, std::sync::atomic::Ordering::SeqCst);
        kv.db.flush().expect("store call");
        drop(kv);
        let kv = SledKv::open(&path, 1 << 20).expect("reopen");
        let mut want: Vec<(String, String)> = (0..20)
            .map(|i| (format!("k{i:02}"), value.clone()))
            .collect();
        want.insert(0, ("b".into(), "new".into()));
        assert_eq!(all(&kv), want, "the batch is whole and the journal gone");
    }

    #[test]
    fn batches_beside_readers_leave_no_journal_and_an_atomic_batch_voids_an_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let kv = SledKv::open(&path, 1 << 20).expect("open");
        kv.apply_beside_readers(&[w("a", Some("1")), w("b", Some("1"))].into_iter().collect())
            .expect("store call");
        assert!(
            kv.db.get(journal::HEAD).expect("store call").is_some(),
            "journal while open"
        );
        kv.apply(vec![w("a", Some("2"))]).expect("store call");
        assert!(
            kv.db.get(journal::HEAD).expect("store call").is_none(),
            "voided by an atomic batch"
        );
        kv.apply_beside_readers(&[w("c", Some("1"))].into_iter().collect())
            .expect("store call");
        drop(kv);
        let kv = SledKv::open(&path, 1 << 20).expect("reopen");
        assert!(
            kv.db.get(journal::HEAD).expect("store call").is_none(),
            "removed at a clean close"
        );
        let got: Vec<String> = all(&kv)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(got, ["a=2", "b=1", "c=1"]);
    }

    #[test]
    fn a_journal_that_does_not_decode_is_reported_not_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let kv = SledKv::open(&path, 1 << 20).expect("open");
        kv.db
            .insert(journal::HEAD, &2u32.to_be_bytes())
            .expect("store call");
        kv.db
            .insert(journal::chunk_key(0), b"garbage".to_vec())
            .expect("store call");
        kv.torn.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(kv);
        // Refused every time: a refused open keeps the journal, naming
        // the store and the chunk.
        for _ in 0..2 {
            let err = SledKv::open(&path, 1 << 20).err().expect("refused");
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains("chunk 0 that does not decode"), "{text}");
        }
        // A journal that lacks a chunk is refused as well.
        let kv = SledKv::open_waiting(&path, 1 << 20, SLED_LOCK_WAIT).expect("sled opens");
        kv.torn.store(true, std::sync::atomic::Ordering::SeqCst);
        kv.db
            .insert(
                journal::chunk_key(0),
                journal::encode([(&b"k".to_vec(), &None)]).remove(0),
            )
            .expect("store call");
        drop(kv);
        let err = SledKv::open(&path, 1 << 20).err().expect("refused");
        assert!(err.to_string().contains("lacks chunk 1 of 2"), "{err}");
    }

    #[test]
    fn open_waits_for_a_dropped_database_to_release_its_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let held = SledKv::open(&path, 1 << 20).expect("first open");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(held);
        });
        let second = SledKv::open_waiting(&path, 1 << 20, Duration::from_secs(10));
        release.join().expect("release thread");
        assert!(second.is_ok(), "{:?}", second.err());
    }

    #[test]
    fn open_reports_a_lock_that_stays_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let _held = SledKv::open(&path, 1 << 20).expect("first open");
        let err = SledKv::open_waiting(&path, 1 << 20, Duration::from_millis(50))
            .err()
            .expect("refused while held");
        assert!(is_lock_contention(&err), "{err}");
    }

    #[test]
    fn other_open_errors_are_not_taken_for_lock_contention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").expect("write");
        let err = SledKv::open_waiting(&file.join("db"), 1 << 20, Duration::from_secs(10))
            .err()
            .expect("a path under a file cannot be opened");
        assert!(!is_lock_contention(&err), "{err}");
    }
}
