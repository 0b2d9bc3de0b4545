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
    /// Makes applied batches durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Whether the store holds no key at all.
    fn is_empty(&self) -> Result<bool, StoreError>;
}

/// sled, one tree.
pub struct SledKv {
    db: sled::Db,
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
    pub fn open(path: &std::path::Path, cache_bytes: u64) -> Result<SledKv, sled::Error> {
        Self::open_waiting(path, cache_bytes, SLED_LOCK_WAIT)
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
                Ok(db) => return Ok(SledKv { db }),
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
        self.db.apply_batch(b)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.db.is_empty())
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
