//! The store: sled behind a small key-value trait, with typed access to
//! connector-space and metaverse objects and indexes kept in step with them.
//!
//! Invariant: every index and queue entry is written by [`Txn::save_cs`] /
//! [`Txn::save_mv`] from the before and after images of an object, in the
//! same atomic batch as the object. No other code writes them.

mod absent;
pub mod codec;
mod compact;
pub mod keys;
mod kv;
mod large;
mod lock;
mod names;
mod overlay;
mod pipeline;
mod queue;
mod txn;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

pub use compact::{compact, interrupted as compaction_interrupted, size_on_disk, Compacted};
pub use kv::{Entries, Kv, MemKv, SledKv, Write};
pub use lock::StoreLock;
pub use names::Names;
pub use overlay::OverlayKv;
pub use pipeline::PipelinedKv;
pub use queue::Span;
pub use txn::{Savepoint, Txn};

use crate::model::{CsObject, MvId, MvObject, Sym};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("store I/O failed: {0}")]
    Sled(#[from] sled::Error),
    /// A file beside the store failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A record does not decode.
    #[error("the store is damaged: {0}")]
    Corrupt(String),
    /// The store was written by an incompatible version of mvsync.
    #[error("the store at {path} has format version {found}; this mvsync reads version {expected}. Use the mvsync release that wrote it, or start a new store")]
    Version {
        /// The store.
        path: PathBuf,
        /// What it holds.
        found: String,
        /// What we read.
        expected: u32,
    },
    /// There is no store where a read-only command looked.
    #[error("there is no store at {path}: nothing has been imported with this configuration yet (run an import or a run profile first)")]
    Missing {
        /// Where.
        path: PathBuf,
    },
    /// A compaction was killed between moving the store aside and moving
    /// its copy in.
    #[error("a compaction of the store at {path} was interrupted; run `mvsync compact`, an import, a sync or an export to finish it")]
    Interrupted {
        /// Where the store belongs.
        path: PathBuf,
    },
    /// A file in the store's folder that is not the store's own, which
    /// compaction would delete with the folder.
    #[error("{file} is in the store's folder {path} but is not part of the store; compaction replaces the folder and would delete it: move it out first (an `audit_log` belongs beside the store, not in it)")]
    Foreign {
        /// The store.
        path: PathBuf,
        /// The file.
        file: PathBuf,
    },
    /// An earlier batch of this process failed to reach the store, so
    /// nothing after it may be written (see `pipeline.rs`).
    #[error("an earlier write to the store failed ({0}); nothing more is written by this process")]
    Poisoned(String),
    /// Another process holds the store.
    #[error("the store is in use by {holder} (lock file {path}); wait for that run to finish")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it.
        holder: String,
    },
}

impl StoreError {
    fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled's page cache in bytes. It does not cap memory, but bounds it.
    pub cache_bytes: u64,
    /// Multi-valued attributes with more values than this are stored a key
    /// per value, so changing one value writes one key.
    pub large_list_threshold: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 256 * 1024 * 1024,
            large_list_threshold: large::DEFAULT_THRESHOLD,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counters {
    next_cs: u64,
    next_mv: u64,
    next_run: u64,
}

/// What commits have written through one `Store` handle since it opened.
#[derive(Debug, Default)]
struct Written {
    keys: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

/// Keys and bytes (keys plus values; a delete counts its key) written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteStats {
    /// Keys written or deleted.
    pub keys: u64,
    /// Bytes of the keys and values written.
    pub bytes: u64,
}

impl std::ops::Sub for WriteStats {
    type Output = WriteStats;
    fn sub(self, earlier: WriteStats) -> WriteStats {
        WriteStats {
            keys: self.keys.saturating_sub(earlier.keys),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

/// The store.
pub struct Store {
    kv: Arc<dyn Kv>,
    names: RwLock<Names>,
    counters: Mutex<Counters>,
    saved_counters: Mutex<Counters>,
    indexed: RwLock<BTreeSet<Sym>>,
    unique: RwLock<BTreeSet<(Sym, Sym)>>,
    large_list_threshold: usize,
    written: Written,
    /// The full sync's proof of absence for index look-ups (see
    /// [`Store::absent_lookups`]).
    absent: absent::Absent,
    /// Set while the store holds an older format version that the next
    /// commit rewrites ([`keys::UPGRADABLE_VERSIONS`]).
    upgrade: std::sync::atomic::AtomicBool,
    path: Option<PathBuf>,
    _lock: Option<StoreLock>,
    /// For a store read through a private copy: the copy, removed on drop.
    _copy: Option<PrivateCopy>,
}

/// A private copy of a store that this process may only read (sled opens
/// its files for writing), removed when dropped.
#[derive(Debug)]
struct PrivateCopy {
    dir: PathBuf,
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Refuses a store that does not exist (a reader never creates one).
fn existing(path: &Path) -> Result<(), StoreError> {
    if path.is_dir() {
        Ok(())
    } else if compact::interrupted(path) {
        Err(StoreError::Interrupted {
            path: path.to_path_buf(),
        })
    } else {
        Err(StoreError::Missing {
            path: path.to_path_buf(),
        })
    }
}

/// Whether this process may write the store at `path` (its folder and its
/// data file), without changing it: the folder by creating and removing a
/// probe file, the data file by opening it for writing.
fn may_write(path: &Path) -> bool {
    let probe = path.join(format!(".mvsync-probe-{}", std::process::id()));
    let folder = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map(|_| {
            let _ = std::fs::remove_file(&probe);
        })
        .is_ok();
    let data = path.join("db");
    folder && (!data.exists() || std::fs::OpenOptions::new().write(true).open(&data).is_ok())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            bytes += copy_dir(&entry.path(), &target)?;
        } else {
            bytes += std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(bytes)
}

/// A sym no name has: an index set holding it never matches a configuration,
/// so the index is rebuilt (after a crash mid-rebuild).
const UNKNOWN: Sym = Sym(u32::MAX);

/// The interned name of the referrer index's pseudo-attribute (a NUL
/// starts no attribute name); see [`Txn::referrers`].
pub(crate) const REFERRERS: &str = "\0referrers";

const CS_COUNTER: &str = "cs";
const MV_COUNTER: &str = "mv";
const RUN_COUNTER: &str = "run";

impl Store {
    /// Opens (creating if needed) the store at `path`, taking its writer lock
    /// first. `holder` describes this process for anyone refused the lock.
    pub fn open(path: &Path, options: &StoreOptions, holder: &str) -> Result<Store, StoreError> {
        let lock = StoreLock::acquire(&lock_path(path), holder)?;
        compact::recover(path)?;
        Store::open_locked(path, options, lock)
    }

    /// Opens the store at `path` under its writer lock, already taken.
    fn open_locked(
        path: &Path,
        options: &StoreOptions,
        lock: StoreLock,
    ) -> Result<Store, StoreError> {
        let kv = PipelinedKv::new(Arc::new(SledKv::open(path, options.cache_bytes)?))
            .map_err(|e| StoreError::io(path, e))?;
        let mut store = Store::with_kv(Box::new(kv), Some(path.to_path_buf()))?;
        store._lock = Some(lock);
        if store.kv.get(keys::LARGE_THRESHOLD)?.is_none() {
            store.set_large_list_threshold(options.large_list_threshold)?;
        } else if store.large_list_threshold != options.large_list_threshold {
            tracing::warn!(
                stored = store.large_list_threshold,
                configured = options.large_list_threshold,
                "large_list_threshold is fixed when a store is created; keeping the store's"
            );
        }
        Ok(store)
    }

    /// Opens an existing store for a command that only reads it (`check`,
    /// `preview`, `show`, `history`, `plan`); never creates one. A store this
    /// process may write opens as [`Store::open`] does, with its lock. One it
    /// may only read is copied into a private temporary folder and read
    /// there (sled cannot open files it may not write), so an auditor with
    /// read access can look; the copy costs the store's size in temporary
    /// space and is removed when the store is dropped.
    pub fn open_read_only(
        path: &Path,
        options: &StoreOptions,
        holder: &str,
    ) -> Result<Store, StoreError> {
        existing(path)?;
        if may_write(path) {
            return Store::open(path, options, holder);
        }
        let dir = std::env::temp_dir().join(format!(
            "mvsync-read-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        ));
        let copy = PrivateCopy { dir };
        let store_copy = copy.dir.join("store");
        // Not while a writer runs: the copy would be torn.
        let _shared = lock::StoreLock::share(&lock_path(path))?;
        let bytes = copy_dir(path, &store_copy).map_err(|e| StoreError::io(path, e))?;
        tracing::info!(
            store = %path.display(),
            "the store is read-only for this user: reading a private copy ({} MiB) in {}",
            bytes / (1024 * 1024),
            copy.dir.display()
        );
        let mut store = Store::open(&store_copy, options, holder)?;
        store._copy = Some(copy);
        Ok(store)
    }

    /// Opens an existing store for a reader that gives it up to any writer
    /// that asks (the console): its lock says so, a writer refused it asks
    /// and waits, and the reader drops the store when
    /// [`Store::asked_to_give_way`] says so. Refused while a writer waits.
    pub fn open_giving_way(
        path: &Path,
        options: &StoreOptions,
        holder: &str,
    ) -> Result<Store, StoreError> {
        existing(path)?;
        let lock = lock_path(path);
        if lock::give_way_asked(&lock) {
            return Err(StoreError::Locked {
                path: lock,
                holder: "a run waiting to start".into(),
            });
        }
        Store::open(path, options, &format!("{holder}{}", lock::GIVES_WAY))
    }

    /// Closes the store and hands back its writer lock, still held.
    fn into_lock(mut self) -> Option<StoreLock> {
        self._lock.take()
    }

    /// Whether a writer waits for this store (opened by
    /// [`Store::open_giving_way`]) to be dropped.
    pub fn asked_to_give_way(&self) -> bool {
        self._lock
            .as_ref()
            .is_some_and(StoreLock::asked_to_give_way)
    }

    /// Whether this is a private copy of a store that may only be read:
    /// what happens to it is thrown away.
    pub fn is_private_copy(&self) -> bool {
        self._copy.is_some()
    }

    /// An in-memory store, for tests and what-if computations.
    pub fn memory() -> Store {
        // An empty in-memory store always initialises.
        match Store::with_kv(Box::new(MemKv::default()), None) {
            Ok(s) => s,
            Err(e) => unreachable!("in-memory store failed to initialise: {e}"),
        }
    }

    /// Wraps a key-value store, checking its format version and loading its
    /// names and counters.
    pub fn with_kv(kv: Box<dyn Kv>, path: Option<PathBuf>) -> Result<Store, StoreError> {
        let shown = path.clone().unwrap_or_else(|| PathBuf::from("<memory>"));
        let mut upgrade = false;
        match kv.get(keys::VERSION)? {
            None if kv.is_empty()? => {
                kv.apply(vec![(
                    keys::VERSION.to_vec(),
                    Some(keys::FORMAT_VERSION.to_be_bytes().to_vec()),
                )])?;
            }
            None => {
                return Err(StoreError::Version {
                    path: shown,
                    found: "none (not an mvsync store)".into(),
                    expected: keys::FORMAT_VERSION,
                })
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_slice())
                    .ok()
                    .map(u32::from_be_bytes);
                if found.is_some_and(|f| keys::UPGRADABLE_VERSIONS.contains(&f)) {
                    // Rewritten by the first commit: opening alone (a
                    // reader, the console) writes nothing.
                    upgrade = true;
                } else if found != Some(keys::FORMAT_VERSION) {
                    return Err(StoreError::Version {
                        path: shown,
                        found: found.map_or_else(|| format!("{v:?}"), |n| n.to_string()),
                        expected: keys::FORMAT_VERSION,
                    });
                }
            }
        }
        let mut names = Names::default();
        let mut from = vec![keys::tag::SYM];
        loop {
            let chunk = kv.scan(&[keys::tag::SYM], &from, from.len() > 1, 4096)?;
            let Some((last, _)) = chunk.last() else { break };
            from = last.clone();
            for (k, v) in &chunk {
                let sym = k
                    .get(1..5)
                    .and_then(|b| b.try_into().ok())
                    .map(|b| Sym(u32::from_be_bytes(b)));
                let name = std::str::from_utf8(v).ok();
                match (sym, name) {
                    (Some(sym), Some(name)) if names.restore(sym, name) => {}
                    _ => return Err(StoreError::Corrupt(format!("bad name entry {k:?}"))),
                }
            }
        }
        let read_counter = |name: &str| -> Result<u64, StoreError> {
            Ok(match kv.get(&keys::counter(name))? {
                Some(v) => u64::from_be_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt(format!("bad counter {name}")))?,
                ),
                None => 1,
            })
        };
        let counters = Counters {
            next_cs: read_counter(CS_COUNTER)?,
            next_mv: read_counter(MV_COUNTER)?,
            next_run: read_counter(RUN_COUNTER)?,
        };
        let indexed = match kv.get(keys::INDEXED)? {
            _ if kv.get(keys::JOIN_REBUILDING)?.is_some() => BTreeSet::from([UNKNOWN]),
            Some(v) => codec::decode::<BTreeSet<Sym>>(&v, &|| "the indexed-attribute set".into())?,
            None => BTreeSet::new(),
        };
        let unique = match kv.get(keys::UNIQUE_TRACKED)? {
            _ if kv.get(keys::UNIQUE_REBUILDING)?.is_some() => BTreeSet::from([(UNKNOWN, UNKNOWN)]),
            Some(v) => codec::decode::<BTreeSet<(Sym, Sym)>>(&v, &|| {
                "the unique-value attribute set".into()
            })?,
            None => BTreeSet::new(),
        };
        let large_list_threshold = match kv.get(keys::LARGE_THRESHOLD)? {
            Some(v) => <[u8; 8]>::try_from(v.as_slice())
                .map(|b| usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX))
                .map_err(|_| {
                    StoreError::Corrupt(format!(
                        "the large-list threshold (key T) is {} bytes, expected 8",
                        v.len()
                    ))
                })?,
            None => large::DEFAULT_THRESHOLD,
        };
        Ok(Store {
            kv: Arc::from(kv),
            upgrade: upgrade.into(),
            names: RwLock::new(names),
            counters: Mutex::new(counters),
            saved_counters: Mutex::new(counters),
            indexed: RwLock::new(indexed),
            unique: RwLock::new(unique),
            large_list_threshold,
            written: Written::default(),
            absent: absent::Absent::default(),
            path,
            _lock: None,
            _copy: None,
        })
    }

    /// A what-if copy of this store: it reads this store's committed state
    /// and keeps its own writes in memory ([`OverlayKv`]), so whole sync
    /// steps can run on it without touching this store. Same names and id
    /// counters; no lock (it never writes here).
    pub fn what_if(&self) -> Result<Store, StoreError> {
        let store = Store::with_kv(Box::new(OverlayKv::new(Arc::clone(&self.kv))), None)?;
        *store.names_write() = self.names_read().clone();
        *store.counters() = *self.counters();
        *store
            .saved_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = *self
            .saved_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Ok(store)
    }

    /// Sets how long a list must be to be stored out of line (see
    /// `large.rs`); the default suits production, tests lower it.
    ///
    /// The threshold is part of the store's layout: which lists a record
    /// marks as out of line depends on it. So it is recorded, and a store
    /// keeps the threshold it was created with.
    pub fn set_large_list_threshold(&mut self, values: usize) -> Result<(), StoreError> {
        self.kv.apply(vec![(
            keys::LARGE_THRESHOLD.to_vec(),
            Some((values as u64).to_be_bytes().to_vec()),
        )])?;
        self.large_list_threshold = values;
        Ok(())
    }

    pub(crate) fn large_list_threshold(&self) -> usize {
        self.large_list_threshold
    }

    /// Decodes a committed connector-space record (from a scan of `C`),
    /// reading its large lists back.
    pub fn decode_cs(&self, key: &[u8], record: &[u8]) -> Result<CsObject, StoreError> {
        large::load_cs(self, record, &|| format!("connector-space object {key:?}"))
    }

    /// Decodes a committed metaverse record (from a scan of `M`), reading
    /// its large lists back.
    pub fn decode_mv(&self, key: &[u8], record: &[u8]) -> Result<MvObject, StoreError> {
        large::load_mv(self, record, &|| format!("metaverse object {key:?}"))
    }

    /// Where the store lives on disk, if it does.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The raw key-value store, for the invariant checker and chunked scans.
    pub fn kv(&self) -> &dyn Kv {
        self.kv.as_ref()
    }

    fn names_read(&self) -> std::sync::RwLockReadGuard<'_, Names> {
        self.names.read().unwrap_or_else(|e| e.into_inner())
    }

    fn names_write(&self) -> std::sync::RwLockWriteGuard<'_, Names> {
        self.names.write().unwrap_or_else(|e| e.into_inner())
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sym of a name, allocating it if new (persisted with the next commit).
    pub fn intern(&self, name: &str) -> Sym {
        if let Some(s) = self.names_read().lookup(name) {
            return s;
        }
        self.names_write().intern(name)
    }

    /// The sym of a name, if it was ever interned.
    pub fn lookup(&self, name: &str) -> Option<Sym> {
        self.names_read().lookup(name)
    }

    /// The name of a sym.
    pub fn name(&self, sym: Sym) -> Arc<str> {
        self.names_read().name(sym)
    }

    /// Allocates a connector-space object id.
    pub fn alloc_cs_id(&self) -> u64 {
        let mut c = self.counters();
        c.next_cs += 1;
        c.next_cs - 1
    }

    /// Allocates a metaverse object id.
    pub fn alloc_mv_id(&self) -> MvId {
        let mut c = self.counters();
        c.next_mv += 1;
        c.next_mv - 1
    }

    /// The id of the newest run, if any.
    pub fn last_run_id(&self) -> Option<u64> {
        self.counters().next_run.checked_sub(1)
    }

    /// Allocates a run id.
    pub fn alloc_run_id(&self) -> u64 {
        let mut c = self.counters();
        c.next_run += 1;
        c.next_run - 1
    }

    /// The metaverse attributes the join index covers.
    pub fn indexed_attrs(&self) -> BTreeSet<Sym> {
        self.indexed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The join-index pseudo-attribute under which every metaverse
    /// reference is indexed by its target, when the index covers it.
    pub(crate) fn referrer_attr(&self) -> Option<Sym> {
        self.lookup(REFERRERS).filter(|s| self.is_indexed(*s))
    }

    /// The join-index keys of one metaverse object: every value of its
    /// indexed attributes and, when the referrer index is on, every
    /// reference it holds (see [`Txn::referrers`]).
    pub(crate) fn join_entries(&self, o: &MvObject) -> BTreeSet<Vec<u8>> {
        let referrers = self.referrer_attr();
        let mut out = BTreeSet::new();
        for a in &o.attrs {
            let indexed = self.is_indexed(a.name);
            for item in a.value.items() {
                if indexed {
                    out.insert(keys::join(a.name, item.to_string().as_bytes(), o.id));
                }
                if let (Some(r), rules::Value::Ref(_)) = (referrers, item) {
                    out.insert(keys::join(r, item.to_string().as_bytes(), o.id));
                }
            }
        }
        out
    }

    fn is_indexed(&self, attr: Sym) -> bool {
        self.indexed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&attr)
    }

    /// The (connector, attribute) pairs the unique-value index covers.
    pub fn unique_tracked(&self) -> BTreeSet<(Sym, Sym)> {
        self.unique
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The attributes of `conn` the unique-value index covers.
    pub(crate) fn unique_attrs(&self, conn: Sym) -> Vec<Sym> {
        self.unique
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, a)| *a)
            .collect()
    }

    /// Deletes every entry under a one-byte tag, in chunks.
    fn clear_tag(&self, tag: u8) -> Result<(), StoreError> {
        loop {
            let chunk = self.kv.scan(&[tag], &[tag], false, 10_000)?;
            if chunk.is_empty() {
                return Ok(());
            }
            self.kv
                .apply(chunk.into_iter().map(|(k, _)| (k, None)).collect())?;
        }
    }

    /// Makes the unique-value index cover exactly `pairs` of (connector,
    /// attribute), rebuilding it from the connector spaces when the
    /// configuration asks for a different set.
    pub fn ensure_unique_index(&self, pairs: &BTreeSet<(Sym, Sym)>) -> Result<bool, StoreError> {
        if *self.unique.read().unwrap_or_else(|e| e.into_inner()) == *pairs {
            return Ok(false);
        }
        self.kv
            .apply(vec![(keys::UNIQUE_REBUILDING.to_vec(), Some(Vec::new()))])?;
        self.clear_tag(keys::tag::UNIQUE)?;
        *self.unique.write().unwrap_or_else(|e| e.into_inner()) = pairs.clone();
        let conns: BTreeSet<Sym> = pairs.iter().map(|(c, _)| *c).collect();
        for conn in conns {
            let prefix = keys::conn_prefix(keys::tag::CS, conn);
            let mut after: Option<Vec<u8>> = None;
            loop {
                let chunk = self.kv.scan(
                    &prefix,
                    after.as_deref().unwrap_or(&prefix),
                    after.is_some(),
                    10_000,
                )?;
                let Some((last, _)) = chunk.last() else { break };
                after = Some(last.clone());
                let mut txn = self.begin();
                for (k, v) in &chunk {
                    let cs = self.decode_cs(k, v)?;
                    txn.index_unique(None, Some(&cs));
                }
                self.commit(txn)?;
            }
        }
        self.kv.apply(vec![
            (keys::UNIQUE_TRACKED.to_vec(), Some(codec::encode(pairs)?)),
            (keys::UNIQUE_REBUILDING.to_vec(), None),
        ])?;
        Ok(true)
    }

    /// Makes the join index cover exactly `attrs`, rebuilding it from the
    /// metaverse when the configuration asks for a different set.
    pub fn ensure_join_index(&self, attrs: &BTreeSet<Sym>) -> Result<bool, StoreError> {
        if self.indexed_attrs() == *attrs {
            return Ok(false);
        }
        // Drop every old entry, then re-add from each metaverse object; the
        // marker makes a crash in between force another rebuild.
        self.kv
            .apply(vec![(keys::JOIN_REBUILDING.to_vec(), Some(Vec::new()))])?;
        self.clear_tag(keys::tag::JOIN)?;
        *self.indexed.write().unwrap_or_else(|e| e.into_inner()) = attrs.clone();
        let mut from = vec![keys::tag::MV];
        loop {
            let chunk = self
                .kv
                .scan(&[keys::tag::MV], &from, from.len() > 1, 10_000)?;
            let Some((last, _)) = chunk.last() else { break };
            from = last.clone();
            let mut txn = self.begin();
            for (k, v) in &chunk {
                let mv = self.decode_mv(k, v)?;
                txn.index_mv(None, Some(&mv));
            }
            self.commit(txn)?;
        }
        self.kv.apply(vec![
            (keys::INDEXED.to_vec(), Some(codec::encode(attrs)?)),
            (keys::JOIN_REBUILDING.to_vec(), None),
        ])?;
        Ok(true)
    }

    /// Starts a batch of changes.
    pub fn begin(&self) -> Txn<'_> {
        Txn::new(self)
    }

    /// Applies a batch atomically, together with the names and counters it
    /// allocated.
    pub fn commit(&self, txn: Txn<'_>) -> Result<(), StoreError> {
        let mut writes = txn.into_writes();
        let unsaved = self.names_write().take_unsaved();
        for (sym, name) in &unsaved {
            writes.push((keys::sym(*sym), Some(name.as_bytes().to_vec())));
        }
        let current = *self.counters();
        let saved = *self
            .saved_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if current != saved {
            for (name, v) in [
                (CS_COUNTER, current.next_cs),
                (MV_COUNTER, current.next_mv),
                (RUN_COUNTER, current.next_run),
            ] {
                writes.push((keys::counter(name), Some(v.to_be_bytes().to_vec())));
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        let upgrade = self.upgrade.load(std::sync::atomic::Ordering::Relaxed);
        if upgrade {
            writes.push((
                keys::VERSION.to_vec(),
                Some(keys::FORMAT_VERSION.to_be_bytes().to_vec()),
            ));
        }
        let (keys, bytes) = (
            writes.len() as u64,
            writes
                .iter()
                .map(|(k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64)
                .sum::<u64>(),
        );
        match self.kv.apply(writes) {
            Ok(()) => {
                use std::sync::atomic::Ordering::Relaxed;
                self.written.keys.fetch_add(keys, Relaxed);
                self.written.bytes.fetch_add(bytes, Relaxed);
                if upgrade {
                    self.upgrade.store(false, Relaxed);
                }
                *self
                    .saved_counters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = current;
                Ok(())
            }
            Err(e) => {
                self.names_write()
                    .requeue(unsaved.into_iter().map(|(s, _)| s));
                Err(e)
            }
        }
    }

    /// What commits through this handle have written since it opened.
    pub fn written(&self) -> WriteStats {
        use std::sync::atomic::Ordering::Relaxed;
        WriteStats {
            keys: self.written.keys.load(Relaxed),
            bytes: self.written.bytes.load(Relaxed),
        }
    }

    /// Makes everything committed durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.kv.flush()
    }

    /// Reads a committed value.
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(key)
    }

    /// Answers the index look-ups that find nothing (an anchor, DN, unique
    /// value or join value no object holds) from memory until the guard is
    /// dropped: each index group is read once, on its first look-up (see
    /// `absent.rs`). For a full sync step, whose look-ups cover the whole
    /// estate; a delta step would read whole groups for a few look-ups.
    /// Only while no batch is open. `queue_spans`: the step syncs objects
    /// that sync-queue spans queued, whose sync-queue entries (which they
    /// lack) it then does not delete.
    pub fn absent_lookups(&self, queue_spans: bool) -> AbsentLookups<'_> {
        let started = self.absent.start(queue_spans);
        AbsentLookups(self, started)
    }

    /// Visits every committed entry under `prefix`, in key order, in chunks.
    pub fn for_each_prefix(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.for_each_from(prefix, prefix, 4096, |k, v| f(k, v).map(|()| true))
    }

    /// Visits the committed entries under `prefix` from `from` on, in key
    /// order, `chunk` at a time, until `f` returns `false`.
    pub fn for_each_from(
        &self,
        prefix: &[u8],
        from: &[u8],
        chunk: usize,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut from = from.to_vec();
        let mut exclusive = false;
        loop {
            let entries = self.kv.scan(prefix, &from, exclusive, chunk)?;
            let Some((last, _)) = entries.last() else {
                return Ok(());
            };
            let next = last.clone();
            for (k, v) in &entries {
                if !f(k, v)? {
                    return Ok(());
                }
            }
            from = next;
            exclusive = true;
        }
    }

    /// How many committed keys start with `prefix`, counting at most `cap`
    /// (a key walk: no value is read).
    pub fn count_keys(&self, prefix: &[u8], cap: usize) -> Result<usize, StoreError> {
        let mut n = 0;
        let mut after: Option<Vec<u8>> = None;
        while n < cap {
            let chunk = self.keys_after(prefix, after.as_deref(), 4096.min(cap - n))?;
            let Some(last) = chunk.last() else { break };
            n += chunk.len();
            after = Some(last.clone());
        }
        Ok(n)
    }

    /// Up to `limit` committed keys under `prefix` after `after` (exclusive),
    /// for loops that commit between chunks.
    pub fn keys_after(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let (from, exclusive) = match after {
            Some(a) => (a, true),
            None => (prefix, false),
        };
        Ok(self
            .kv
            .scan(prefix, from, exclusive, limit)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }
}

/// The scope of [`Store::absent_lookups`]: the outermost one turns the
/// sets off when dropped.
#[must_use = "look-ups are answered from memory only while the guard lives"]
pub struct AbsentLookups<'s>(&'s Store, bool);

impl Drop for AbsentLookups<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.absent.stop();
        }
    }
}

/// Committed state, for decoding objects found by a scan.
impl large::Reader for Store {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(key)
    }

    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.keys_after(prefix, None, usize::MAX)
    }
}

/// The lock file of the store at `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    beside(path, ".lock")
}

/// A file beside the store at `path`, named after it with `suffix`
/// (`state/mvsync.db` → `state/mvsync.db.lock`), never inside its folder,
/// however the path ends.
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}
