//! The key-value layer under the store: a small trait with a sled
//! implementation and an in-memory one (the oracle of model-based tests).
//!
//! Everything lives in one ordered keyspace partitioned by a one-byte prefix
//! (see `keys`), so that one batch commits objects, indexes, queues and
//! counters atomically.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

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

impl SledKv {
    /// Opens (or creates) the database at `path` with a bounded page cache.
    pub fn open(path: &std::path::Path, cache_bytes: u64) -> Result<SledKv, sled::Error> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()?;
        Ok(SledKv { db })
    }
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
