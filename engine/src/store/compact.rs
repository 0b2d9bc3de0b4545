//! `mvsync compact`: rewrites a store into a fresh sled database holding
//! only its live keys, and swaps it in.
//!
//! sled is log-structured: a rewritten key leaves its old version in the
//! log until sled reclaims the segment, which sled 0.34 does only once a
//! segment is at most half live. So a store that is synchronized again and
//! again grows towards twice its live size. Compaction copies every key in
//! order (a bulk load, the cheapest write sled has) into `<store>.compacting`,
//! flushes it, marks it complete with `<store>.compacted`, then swaps the
//! folders: `<store>` → `<store>.old`, `<store>.compacting` → `<store>`, and
//! removes the old one and the mark.
//!
//! Every step survives a kill: [`recover`] (run by every writer's open,
//! under the lock) removes an incomplete copy, and finishes the swap of a
//! complete one.

use std::path::{Path, PathBuf};

use super::{beside, existing, lock_path, Kv, SledKv, Store, StoreError, StoreLock, StoreOptions};

/// Keys copied per batch.
const CHUNK: usize = 4096;

/// The page cache of each side of the copy.
const COPY_CACHE: u64 = 32 << 20;

/// Bytes copied between flushes of the copy: sled keeps what it has not
/// flushed in memory, and a bulk load outruns its background flusher.
const FLUSH_EVERY: u64 = 64 << 20;

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Keys copied.
    pub keys: u64,
    /// The store's size on disk before, in bytes.
    pub before: u64,
    /// Its size after.
    pub after: u64,
}

/// The copy being written.
fn copy_path(path: &Path) -> PathBuf {
    beside(path, ".compacting")
}

/// Present once the copy is complete and flushed.
fn mark_path(path: &Path) -> PathBuf {
    beside(path, ".compacted")
}

/// The store being replaced.
fn old_path(path: &Path) -> PathBuf {
    beside(path, ".old")
}

/// Compacts the store at `path`: see the module. Takes the writer lock
/// (`holder` names this process to anyone refused it).
pub fn compact(path: &Path, options: &StoreOptions, holder: &str) -> Result<Compacted, StoreError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| StoreError::io(&p, e)
    };
    if !interrupted(path) {
        existing(path)?;
    }
    let lock = StoreLock::acquire(&lock_path(path), holder)?;
    recover(path)?;
    refuse_foreign(path)?;
    let before = size_on_disk(path).map_err(io(path))?;
    let copy = copy_path(path);
    // The store is opened as a store (its format version checked, a journal
    // left by a crash completed) and read whole, in key order.
    // Both sides are walked once, in order: a small page cache serves
    // them as well as a large one, and bounds the memory of the two.
    let small = StoreOptions {
        cache_bytes: options.cache_bytes.min(COPY_CACHE),
        ..options.clone()
    };
    let store = Store::open_locked(path, &small, lock)?;
    let keys = {
        let target = SledKv::open(&copy, small.cache_bytes)?;
        let keys = copy_keys(store.kv(), &target)?;
        target.flush()?;
        keys
    };
    // sled syncs its files; the copy's folder must hold their names too
    // before the mark says the copy is complete.
    sync_folder(&copy).map_err(io(&copy))?;
    let lock = store.into_lock();
    std::fs::File::create(mark_path(path)).map_err(io(&mark_path(path)))?;
    sync_parent(path).map_err(io(path))?;
    swap(path)?;
    drop(lock);
    let after = size_on_disk(path).map_err(io(path))?;
    Ok(Compacted {
        keys,
        before,
        after,
    })
}

/// Copies every key of `from` into `to`, in order; returns how many.
fn copy_keys(from: &dyn Kv, to: &SledKv) -> Result<u64, StoreError> {
    let mut next: Vec<u8> = Vec::new();
    let mut exclusive = false;
    let mut copied = 0u64;
    let mut unflushed = 0u64;
    loop {
        let chunk = from.scan(&[], &next, exclusive, CHUNK)?;
        let Some((last, _)) = chunk.last() else {
            return Ok(copied);
        };
        next = last.clone();
        exclusive = true;
        copied += chunk.len() as u64;
        unflushed += chunk
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum::<u64>();
        to.apply(chunk.into_iter().map(|(k, v)| (k, Some(v))).collect())?;
        if unflushed >= FLUSH_EVERY {
            to.flush()?;
            unflushed = 0;
        }
    }
}

/// Whether a kill left the store moved aside (`<store>.old`) and nothing
/// in its place: the next writer's [`recover`] puts one back.
pub fn interrupted(path: &Path) -> bool {
    !path.exists() && old_path(path).exists()
}

/// What sled 0.34 keeps in a database folder: its configuration, its log,
/// its snapshots and its blobs.
fn sled_owns(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

/// Refuses a store folder holding anything else: the swap deletes the old
/// folder whole.
fn refuse_foreign(path: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(path).map_err(|e| StoreError::io(path, e))? {
        let entry = entry.map_err(|e| StoreError::io(path, e))?;
        if !entry.file_name().to_str().is_some_and(sled_owns) {
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
                file: entry.path(),
            });
        }
    }
    Ok(())
}

/// Finishes or undoes a compaction that a kill interrupted. Runs under the
/// store's writer lock.
pub(crate) fn recover(path: &Path) -> Result<(), StoreError> {
    let (copy, mark, old) = (copy_path(path), mark_path(path), old_path(path));
    if mark.exists() {
        // The copy is complete: finish the swap.
        swap(path)
    } else {
        if copy.exists() {
            tracing::warn!(copy = %copy.display(), "removing an unfinished compaction");
            std::fs::remove_dir_all(&copy).map_err(|e| StoreError::io(&copy, e))?;
        }
        if !path.exists() && old.exists() {
            std::fs::rename(&old, path).map_err(|e| StoreError::io(&old, e))?;
        } else if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| StoreError::io(&old, e))?;
        }
        Ok(())
    }
}

/// Swaps a complete copy in; each step can be repeated after a kill.
fn swap(path: &Path) -> Result<(), StoreError> {
    let (copy, mark, old) = (copy_path(path), mark_path(path), old_path(path));
    let io = |p: &Path, e| StoreError::io(p, e);
    if copy.exists() {
        if path.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
            }
            std::fs::rename(path, &old).map_err(|e| io(path, e))?;
        }
        std::fs::rename(&copy, path).map_err(|e| io(&copy, e))?;
        sync_parent(path).map_err(|e| io(path, e))?;
    }
    std::fs::remove_file(&mark).map_err(|e| io(&mark, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
    }
    sync_parent(path).map_err(|e| io(path, e))
}

/// Makes the renames in `path`'s folder durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_folder(p),
        _ => sync_folder(Path::new(".")),
    }
}

/// Makes the names in `folder` durable.
fn sync_folder(folder: &Path) -> std::io::Result<()> {
    std::fs::File::open(folder)?.sync_all()
}

/// The bytes of the files under `path`.
pub fn size_on_disk(path: &Path) -> std::io::Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        bytes += if meta.is_dir() {
            size_on_disk(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> StoreOptions {
        StoreOptions {
            cache_bytes: 1 << 20,
            ..StoreOptions::default()
        }
    }

    /// Every key and value of the store at `path`, in order.
    fn contents(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
        let store = Store::open(path, &options(), "test").expect("open");
        let mut all = Vec::new();
        store
            .for_each_prefix(&[], |k, v| {
                all.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .expect("scan");
        all
    }

    /// Neither the copy, nor its mark, nor the store moved aside is left.
    fn assert_nothing_left(path: &Path) {
        for left in [copy_path(path), mark_path(path), old_path(path)] {
            assert!(!left.exists(), "{} is left", left.display());
        }
    }

    /// A store whose keys were each rewritten `rounds` times.
    fn churned(path: &Path, rounds: u8) {
        let store = Store::open(path, &options(), "test").expect("open");
        for round in 0..rounds {
            let mut txn = store.begin();
            for i in 0..2000u32 {
                txn.put_raw(
                    super::super::keys::counter(&format!("k{i:05}")),
                    vec![round; 200],
                );
            }
            store.commit(txn).expect("commit");
        }
        store.flush().expect("flush");
    }

    #[test]
    fn compaction_keeps_every_key_and_value_and_shrinks_a_churned_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store");
        churned(&path, 20);
        let before = contents(&path);
        let report = compact(&path, &options(), "test").expect("compact");
        assert_eq!(report.after, size_on_disk(&path).expect("size"));
        assert_eq!(contents(&path), before);
        assert_eq!(report.keys, before.len() as u64);
        assert!(
            report.after * 2 < report.before,
            "{report:?}: the old versions are gone"
        );
        assert_nothing_left(&path);
    }

    #[test]
    fn a_kill_before_the_mark_keeps_the_old_store_and_drops_the_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store");
        churned(&path, 2);
        let before = contents(&path);
        // A copy half written when the kill came.
        std::fs::create_dir_all(copy_path(&path)).expect("copy");
        std::fs::write(copy_path(&path).join("db"), b"torn").expect("write");
        assert_eq!(contents(&path), before);
        assert!(!copy_path(&path).exists());
    }

    #[test]
    fn a_kill_between_the_renames_is_finished_by_the_next_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store");
        churned(&path, 2);
        let before = contents(&path);
        // A complete copy, marked, and the store moved aside: the kill came
        // before the copy was renamed into place.
        {
            let store = Store::open(&path, &options(), "test").expect("open");
            let copy = SledKv::open(&copy_path(&path), 1 << 20).expect("copy");
            copy_keys(store.kv(), &copy).expect("copy keys");
            copy.flush().expect("flush");
        }
        std::fs::File::create(mark_path(&path)).expect("mark");
        std::fs::rename(&path, old_path(&path)).expect("aside");
        assert!(!path.exists());
        let Err(err) = Store::open_read_only(&path, &options(), "test") else {
            panic!("a reader opened a store that is not in place");
        };
        assert!(
            err.to_string().contains("a compaction of the store at ")
                && err
                    .to_string()
                    .contains("was interrupted; run `mvsync compact`"),
            "a reader names the interrupted compaction: {err}"
        );
        assert_eq!(contents(&path), before);
        assert_nothing_left(&path);
    }

    #[test]
    fn a_file_in_the_store_folder_that_is_not_the_stores_is_refused_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store");
        churned(&path, 2);
        let before = contents(&path);
        std::fs::write(path.join(".audit.jsonl"), b"{}\n").expect("audit");
        let err = compact(&path, &options(), "test").expect_err("refused");
        assert!(
            err.to_string().starts_with(&format!(
                "{} is in the store's folder {} but is not part of the store",
                path.join(".audit.jsonl").display(),
                path.display()
            )),
            "{err}"
        );
        assert_eq!(
            std::fs::read(path.join(".audit.jsonl")).expect("kept"),
            b"{}\n"
        );
        assert_eq!(contents(&path), before);
        assert!(!copy_path(&path).exists());
    }

    #[test]
    fn a_missing_store_is_refused_and_nothing_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store");
        let err = compact(&path, &options(), "test").expect_err("refused");
        assert!(matches!(err, StoreError::Missing { .. }), "{err}");
        assert!(!path.exists() && !copy_path(&path).exists());
    }
}
