//! The store against a `BTreeMap` oracle: random sequences of raw writes,
//! connector-space and metaverse saves (keeping links consistent), commits,
//! dropped batches, rollbacks to savepoints, join-index rebuilds and reopens
//! of a sled store. After every commit the store must hold exactly what the
//! oracle holds and `check` must find nothing; inside a batch every read
//! must see the batch's own writes. Also: version and lock refusals.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rules::Value;

use crate::check::check;
use crate::connector::AttrOp;
use crate::model::{
    Attrs, CsKey, CsObject, CsState, ImportKind, Link, LinkKind, MvAttr, MvObject, PendingExport,
    PendingImport, Sym,
};
use crate::store::{keys, Kv, MemKv, Savepoint, SledKv, Store, StoreError, StoreOptions, Txn};

/// A prefix no store record uses: raw writes of the test live under it.
const RAW: u8 = b't';
/// Object slots: a slot holds at most one object at a time.
const SLOTS: u8 = 4;

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: u8,
        value: u8,
    },
    Delete {
        key: u8,
    },
    /// Creates (in connector `b` or `a`) or changes the object in a slot;
    /// `variant` picks its anchor, DN, hologram and whether it is queued.
    SaveCs {
        slot: u8,
        in_b: bool,
        variant: u8,
        import: bool,
        export: bool,
    },
    DeleteCs {
        slot: u8,
    },
    /// Creates or changes a metaverse object; `values` are its join values.
    SaveMv {
        slot: u8,
        values: Vec<u8>,
        other: u8,
    },
    DeleteMv {
        slot: u8,
    },
    Link {
        cs: u8,
        mv: u8,
    },
    Unlink {
        cs: u8,
    },
    Intern {
        name: u8,
    },
    Savepoint,
    Rollback {
        to: u8,
    },
    Commit,
    /// Drops the batch uncommitted.
    Drop,
    /// Rebuilds the join index for `k` (and `o`).
    Reindex {
        both: bool,
    },
    /// Drops the store (releasing its lock) and opens it again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..6u8, any::<u8>()).prop_map(|(key, value)| Op::Put { key, value }),
        2 => (0..6u8).prop_map(|key| Op::Delete { key }),
        8 => (0..SLOTS, any::<bool>(), any::<u8>(), any::<bool>(), any::<bool>())
            .prop_map(|(slot, in_b, variant, import, export)| Op::SaveCs { slot, in_b, variant, import, export }),
        2 => (0..SLOTS).prop_map(|slot| Op::DeleteCs { slot }),
        5 => (0..SLOTS, vec(0..4u8, 0..5), 0..4u8).prop_map(|(slot, values, other)| Op::SaveMv { slot, values, other }),
        2 => (0..SLOTS).prop_map(|slot| Op::DeleteMv { slot }),
        5 => (0..SLOTS, 0..SLOTS).prop_map(|(cs, mv)| Op::Link { cs, mv }),
        2 => (0..SLOTS).prop_map(|cs| Op::Unlink { cs }),
        2 => (0..8u8).prop_map(|name| Op::Intern { name }),
        2 => Just(Op::Savepoint),
        2 => (0..4u8).prop_map(|to| Op::Rollback { to }),
        5 => Just(Op::Commit),
        1 => Just(Op::Drop),
        1 => any::<bool>().prop_map(|both| Op::Reindex { both }),
        1 => Just(Op::Reopen),
    ]
}

/// What the store should hold (committed) or show (inside a batch).
#[derive(Debug, Clone, Default, PartialEq)]
struct State {
    raw: BTreeMap<Vec<u8>, Vec<u8>>,
    cs: BTreeMap<u8, CsObject>,
    mv: BTreeMap<u8, MvObject>,
}

/// The oracle across reopens.
#[derive(Debug, Default)]
struct Oracle {
    committed: State,
    /// Interned names and whether a commit has persisted them.
    names: BTreeMap<String, (Sym, bool)>,
    /// The attributes the join index covers.
    indexed: BTreeSet<String>,
    /// Every id allocated before the last commit is at most this.
    durable_cs: u64,
    durable_mv: u64,
    /// The highest ids allocated so far in this session.
    allocated_cs: u64,
    allocated_mv: u64,
    /// Every object key ever used, to check that deleted ones read as gone.
    all_cs: BTreeSet<CsKey>,
    all_mv: BTreeSet<u64>,
}

impl Oracle {
    fn committed(&mut self, state: &State) {
        self.committed = state.clone();
        for (_, durable) in self.names.values_mut() {
            *durable = true;
        }
        self.durable_cs = self.allocated_cs;
        self.durable_mv = self.allocated_mv;
    }

    fn reopened(&mut self) {
        self.names.retain(|_, (_, durable)| *durable);
        self.allocated_cs = self.durable_cs;
        self.allocated_mv = self.durable_mv;
    }

    fn intern(&mut self, store: &Store, name: &str) -> Sym {
        let sym = store.intern(name);
        let (known, _) = *self.names.entry(name.to_owned()).or_insert((sym, false));
        assert_eq!(sym, known, "'{name}' keeps its sym");
        sym
    }

    fn alloc_cs(&mut self, store: &Store) -> u64 {
        let id = store.alloc_cs_id();
        assert!(
            id > self.allocated_cs,
            "cs id {id} reused (allocated up to {})",
            self.allocated_cs
        );
        self.allocated_cs = id;
        id
    }

    fn alloc_mv(&mut self, store: &Store) -> u64 {
        let id = store.alloc_mv_id();
        assert!(
            id > self.allocated_mv,
            "mv id {id} reused (allocated up to {})",
            self.allocated_mv
        );
        self.allocated_mv = id;
        id
    }
}

/// The names objects are built from.
struct Syms {
    conn_a: Sym,
    conn_b: Sym,
    k: Sym,
    o: Sym,
}

impl Syms {
    fn intern(store: &Store, oracle: &mut Oracle) -> Syms {
        Syms {
            conn_a: oracle.intern(store, "conn-a"),
            conn_b: oracle.intern(store, "conn-b"),
            k: oracle.intern(store, "k"),
            o: oracle.intern(store, "o"),
        }
    }

    fn sym(&self, name: &str) -> Sym {
        if name == "k" {
            self.k
        } else {
            self.o
        }
    }
}

fn join_value(v: u8) -> Value {
    Value::Str(format!("v{v}"))
}

/// A connector-space object for a slot, in one of many shapes. Anchors and
/// DNs embed the slot, so no two objects share one.
fn cs_shape(
    mut cs: CsObject,
    slot: u8,
    variant: u8,
    import: bool,
    export: bool,
    syms: &Syms,
) -> CsObject {
    cs.anchor = match variant % 4 {
        0 => None,
        _ => Some(format!("a{slot}.{}", variant % 5)),
    };
    cs.dn = match variant % 3 {
        0 => None,
        1 => Some(format!("CN=S{slot}.{},DC=x", variant % 2)),
        _ => Some(format!("cn=s{slot}.{},dc=X", variant % 2)),
    };
    cs.hologram = Attrs::from_pairs(vec![
        (syms.o, Value::Int(i64::from(variant))),
        (syms.k, members(variant)),
    ]);
    cs.pending_import = import.then(|| PendingImport {
        kind: ImportKind::Update,
        attrs: Attrs::from_pairs(vec![(syms.k, members(variant.rotate_left(3)))]),
        dn: None,
    });
    cs.pending_export = export.then(|| match variant % 3 {
        0 => PendingExport::Delete,
        1 => PendingExport::Add {
            attrs: Attrs::from_pairs(vec![(syms.k, members(variant ^ 0x2a))]),
        },
        _ => PendingExport::Update {
            new_dn: None,
            changes: vec![
                (
                    syms.k,
                    AttrOp::Add(members(variant ^ 0x15).items().to_vec()),
                ),
                (
                    syms.k,
                    AttrOp::Remove(members(variant >> 2).items().to_vec()),
                ),
            ],
        },
    });
    cs.escrow.attrs = match variant % 5 {
        0 => vec![(syms.k, members(variant.rotate_left(1)))],
        _ => Vec::new(),
    };
    cs
}

/// A multi-valued attribute: the members `m0`..`m5` picked by the bits of
/// `bits`, in the sorted order the store gives back large lists in. The
/// model test stores lists of more than two values out of line, so holograms,
/// staged deltas, pending exports and escrows all go through `large.rs`.
fn members(bits: u8) -> Value {
    Value::list(
        (0..6)
            .filter(|i| bits >> i & 1 == 1)
            .map(|i| Value::Str(format!("m{i}"))),
    )
}

/// Applies one batch operation to the batch and to the oracle's view of it.
struct Batch<'a, 's> {
    txn: Txn<'s>,
    state: State,
    oracle: &'a mut Oracle,
    syms: &'a Syms,
    store: &'s Store,
}

impl Batch<'_, '_> {
    fn save_cs(&mut self, slot: u8, after: Option<CsObject>) {
        let before = self.state.cs.get(&slot).cloned();
        self.txn
            .save_cs(before.as_ref(), after.as_ref())
            .expect("save_cs");
        match after {
            Some(o) => {
                self.oracle.all_cs.insert(o.key);
                self.state.cs.insert(slot, o);
            }
            None => {
                self.state.cs.remove(&slot);
            }
        }
    }

    fn save_mv(&mut self, slot: u8, after: Option<MvObject>) {
        let before = self.state.mv.get(&slot).cloned();
        self.txn
            .save_mv(before.as_ref(), after.as_ref())
            .expect("save_mv");
        match after {
            Some(o) => {
                self.oracle.all_mv.insert(o.id);
                self.state.mv.insert(slot, o);
            }
            None => {
                self.state.mv.remove(&slot);
            }
        }
    }

    fn mv_slot(&self, id: u64) -> u8 {
        *self
            .state
            .mv
            .iter()
            .find(|(_, m)| m.id == id)
            .expect("linked mv exists")
            .0
    }

    /// Removes the link of the object in `slot`, on both sides.
    fn unlink(&mut self, slot: u8) {
        let Some(cs) = self.state.cs.get(&slot).cloned() else {
            return;
        };
        let Some(link) = cs.link else { return };
        let mv_slot = self.mv_slot(link.mv);
        let mut mv = self.state.mv[&mv_slot].clone();
        mv.links.retain(|k| *k != cs.key);
        self.save_mv(mv_slot, Some(mv));
        self.save_cs(slot, Some(CsObject { link: None, ..cs }));
    }

    fn apply(&mut self, op: &Op) {
        let syms = self.syms;
        match op {
            Op::Put { key, value } => {
                self.txn.put_raw(vec![RAW, *key], vec![*value]);
                self.state.raw.insert(vec![RAW, *key], vec![*value]);
            }
            Op::Delete { key } => {
                self.txn.delete_raw(vec![RAW, *key]);
                self.state.raw.remove(&vec![RAW, *key]);
            }
            Op::SaveCs {
                slot,
                in_b,
                variant,
                import,
                export,
            } => {
                let cs = match self.state.cs.get(slot) {
                    Some(cs) => cs.clone(),
                    None => {
                        let conn = if *in_b { syms.conn_b } else { syms.conn_a };
                        let id = self.oracle.alloc_cs(self.store);
                        CsObject::new(CsKey { conn, id }, syms.o, CsState::Present)
                    }
                };
                let cs = cs_shape(cs, *slot, *variant, *import, *export, syms);
                self.save_cs(*slot, Some(cs));
            }
            Op::DeleteCs { slot } => {
                self.unlink(*slot);
                self.save_cs(*slot, None);
            }
            Op::SaveMv {
                slot,
                values,
                other,
            } => {
                let mut mv = match self.state.mv.get(slot) {
                    Some(mv) => mv.clone(),
                    None => MvObject {
                        id: self.oracle.alloc_mv(self.store),
                        object_type: syms.k,
                        attrs: Vec::new(),
                        links: Vec::new(),
                    },
                };
                let attr = |name: Sym, value: Value| MvAttr {
                    name,
                    value,
                    connector: syms.conn_a,
                    rule: syms.conn_a,
                };
                let mut values = values.clone();
                values.sort_unstable();
                values.dedup();
                let k = Value::list(values.iter().map(|v| join_value(*v)));
                mv.attrs = [(syms.k, k), (syms.o, join_value(*other))]
                    .into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(n, v)| attr(n, v))
                    .collect();
                mv.attrs.sort_by_key(|a| a.name);
                self.save_mv(*slot, Some(mv));
            }
            Op::DeleteMv { slot } => {
                let Some(mv) = self.state.mv.get(slot).cloned() else {
                    return;
                };
                for key in &mv.links {
                    let cs_slot = *self
                        .state
                        .cs
                        .iter()
                        .find(|(_, c)| c.key == *key)
                        .expect("linked cs")
                        .0;
                    let cs = self.state.cs[&cs_slot].clone();
                    self.save_cs(cs_slot, Some(CsObject { link: None, ..cs }));
                }
                self.save_mv(*slot, None);
            }
            Op::Link {
                cs: cs_slot,
                mv: mv_slot,
            } => {
                let (Some(cs), Some(mv)) = (
                    self.state.cs.get(cs_slot).cloned(),
                    self.state.mv.get(mv_slot).cloned(),
                ) else {
                    return;
                };
                if cs.link.is_some() || mv.link_in(cs.key.conn).is_some() {
                    return;
                }
                let mut mv = mv;
                mv.links.push(cs.key);
                mv.links.sort();
                let link = Link {
                    mv: mv.id,
                    kind: LinkKind::Joined,
                    rule: syms.conn_a,
                };
                self.save_cs(
                    *cs_slot,
                    Some(CsObject {
                        link: Some(link),
                        ..cs
                    }),
                );
                self.save_mv(*mv_slot, Some(mv));
            }
            Op::Unlink { cs } => self.unlink(*cs),
            Op::Intern { name } => {
                self.oracle.intern(self.store, &format!("name-{name}"));
            }
            Op::Savepoint
            | Op::Rollback { .. }
            | Op::Commit
            | Op::Drop
            | Op::Reindex { .. }
            | Op::Reopen => {
                unreachable!("handled by the session")
            }
        }
    }

    /// Every read inside the batch sees the batch's own writes.
    fn verify(&self) {
        let txn = &self.txn;
        for cs in self.state.cs.values() {
            assert_eq!(txn.cs(cs.key).expect("read").as_ref(), Some(cs));
            if let Some(a) = &cs.anchor {
                assert_eq!(txn.by_anchor(cs.key.conn, a).expect("read"), Some(cs.key));
            }
            if let Some(dn) = &cs.dn {
                assert_eq!(
                    txn.by_dn(cs.key.conn, &dn.to_uppercase()).expect("read"),
                    Some(cs.key)
                );
            }
        }
        let live: BTreeSet<CsKey> = self.state.cs.values().map(|o| o.key).collect();
        for key in self.oracle.all_cs.difference(&live) {
            assert_eq!(txn.cs(*key).expect("read"), None, "deleted cs:{}", key.id);
        }
        for mv in self.state.mv.values() {
            assert_eq!(txn.mv(mv.id).expect("read").as_ref(), Some(mv));
        }
        let live: BTreeSet<u64> = self.state.mv.values().map(|o| o.id).collect();
        for id in self.oracle.all_mv.difference(&live) {
            assert_eq!(txn.mv(*id).expect("read"), None, "deleted mv:{id}");
        }
        let raw_keys: Vec<Vec<u8>> = self.state.raw.keys().cloned().collect();
        assert_eq!(txn.keys_with_prefix(&[RAW]).expect("scan"), raw_keys);
        for key in 0..6u8 {
            assert_eq!(
                txn.get_raw(&[RAW, key]).expect("read").as_ref(),
                self.state.raw.get(&vec![RAW, key])
            );
        }
        for name in &self.oracle.indexed {
            let attr = self.syms.sym(name);
            for v in 0..4u8 {
                let value = join_value(v);
                let expected: BTreeSet<u64> = self
                    .state
                    .mv
                    .values()
                    .filter(|m| {
                        m.get(attr)
                            .is_some_and(|have| have.items().contains(&value))
                    })
                    .map(|m| m.id)
                    .collect();
                let found: BTreeSet<u64> = txn
                    .join_candidates(attr, &value)
                    .expect("join")
                    .into_iter()
                    .collect();
                assert_eq!(found, expected, "join candidates for {name} = {value}");
            }
        }
    }
}

/// The committed store holds exactly what the oracle committed, its
/// invariants hold, and its names are the oracle's.
fn verify_committed(store: &Store, oracle: &Oracle) {
    let mut raw = BTreeMap::new();
    store
        .for_each_prefix(&[RAW], |k, v| {
            raw.insert(k.to_vec(), v.to_vec());
            Ok(())
        })
        .expect("scan");
    assert_eq!(raw, oracle.committed.raw);

    let mut cs: BTreeMap<CsKey, CsObject> = BTreeMap::new();
    store
        .for_each_prefix(&[keys::tag::CS], |k, v| {
            let o = store.decode_cs(k, v)?;
            cs.insert(o.key, o);
            Ok(())
        })
        .expect("scan");
    let expected: BTreeMap<CsKey, CsObject> = oracle
        .committed
        .cs
        .values()
        .map(|o| (o.key, o.clone()))
        .collect();
    assert_eq!(cs, expected);

    let mut mv: BTreeMap<u64, MvObject> = BTreeMap::new();
    store
        .for_each_prefix(&[keys::tag::MV], |k, v| {
            let o = store.decode_mv(k, v)?;
            mv.insert(o.id, o);
            Ok(())
        })
        .expect("scan");
    let expected: BTreeMap<u64, MvObject> = oracle
        .committed
        .mv
        .values()
        .map(|o| (o.id, o.clone()))
        .collect();
    assert_eq!(mv, expected);

    let problems = check(store).expect("check");
    assert!(problems.is_empty(), "{problems:#?}");

    for (name, (sym, durable)) in &oracle.names {
        if *durable {
            assert_eq!(store.lookup(name), Some(*sym), "'{name}' survives");
            assert_eq!(&*store.name(*sym), name.as_str());
        }
    }
    let indexed: BTreeSet<Sym> = oracle
        .indexed
        .iter()
        .map(|n| store.lookup(n).expect("indexed name"))
        .collect();
    assert_eq!(store.indexed_attrs(), indexed);
}

fn reindex(store: &Store, oracle: &mut Oracle, syms: &Syms, both: bool) {
    let names: &[&str] = if both { &["k", "o"] } else { &["k"] };
    oracle.indexed = names.iter().map(|n| n.to_string()).collect();
    let attrs = oracle.indexed.iter().map(|n| syms.sym(n)).collect();
    store.ensure_join_index(&attrs).expect("reindex");
    store.commit(store.begin()).expect("commit");
    let committed = oracle.committed.clone();
    oracle.committed(&committed);
}

fn open(path: &Path) -> Store {
    let options = StoreOptions {
        cache_bytes: 1 << 20,
        large_list_threshold: 2,
    };
    Store::open(path, &options, "the model test").expect("open")
}

/// A batch, keeping the objects it decodes when `cached` (as a sync's do).
fn begin(store: &Store, cached: bool) -> Txn<'_> {
    let mut txn = store.begin();
    if cached {
        txn.cache_objects();
    }
    txn
}

/// Runs ops until a reopen (true) or the end (false).
fn session(
    store: &Store,
    oracle: &mut Oracle,
    ops: &mut std::slice::Iter<'_, Op>,
    first: bool,
    cached: bool,
) -> bool {
    let syms = Syms::intern(store, oracle);
    if first {
        reindex(store, oracle, &syms, false);
    }
    verify_committed(store, oracle);
    let mut batch = Batch {
        txn: begin(store, cached),
        state: oracle.committed.clone(),
        oracle,
        syms: &syms,
        store,
    };
    let mut savepoints: Vec<(Savepoint, State)> = Vec::new();
    for op in ops.by_ref() {
        match op {
            Op::Reopen => {
                batch.oracle.reopened();
                return true;
            }
            Op::Savepoint => savepoints.push((batch.txn.savepoint(), batch.state.clone())),
            Op::Rollback { to } => {
                if !savepoints.is_empty() {
                    let i = usize::from(*to) % savepoints.len();
                    savepoints.truncate(i + 1);
                    let (sp, state) = savepoints[i].clone();
                    batch.txn.rollback(sp);
                    batch.state = state;
                }
            }
            Op::Commit => {
                store
                    .commit(std::mem::replace(&mut batch.txn, begin(store, cached)))
                    .expect("commit");
                batch.oracle.committed(&batch.state);
                savepoints.clear();
                verify_committed(store, batch.oracle);
            }
            Op::Drop => {
                batch.txn = begin(store, cached);
                batch.state = batch.oracle.committed.clone();
                savepoints.clear();
            }
            Op::Reindex { both } => {
                batch.txn = begin(store, cached);
                savepoints.clear();
                reindex(store, batch.oracle, &syms, *both);
                batch.state = batch.oracle.committed.clone();
                verify_committed(store, batch.oracle);
            }
            other => batch.apply(other),
        }
        batch.verify();
    }
    false
}

fn run_model(ops: &[Op], cached: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let mut oracle = Oracle::default();
    let mut ops = ops.iter();
    let mut first = true;
    loop {
        let store = open(&path);
        let more = session(&store, &mut oracle, &mut ops, first, cached);
        first = false;
        if !more {
            break;
        }
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 64,
        rng_seed: RngSeed::Fixed(20_261_123),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn the_store_matches_a_btreemap_oracle_across_commits_rollbacks_and_reopens(ops in vec(op(), 1..100)) {
        run_model(&ops, false);
    }

    /// The same with batches that keep the objects they decode: a write to
    /// an object's record or large lists, and a rollback, must never leave
    /// a stale object to read.
    #[test]
    fn batches_that_keep_decoded_objects_read_their_writes_like_the_oracle(ops in vec(op(), 1..100)) {
        run_model(&ops, true);
    }
}

/// Writes `version` as the format version of the store at `path`.
fn write_version(path: &std::path::Path, version: u32) {
    let kv = SledKv::open(path, 1 << 20).expect("sled");
    kv.apply(vec![(
        keys::VERSION.to_vec(),
        Some(version.to_be_bytes().to_vec()),
    )])
    .expect("write");
    kv.flush().expect("flush");
}

#[test]
fn a_store_of_another_format_version_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    drop(open(&path));
    write_version(&path, keys::FORMAT_VERSION + 1);
    let options = StoreOptions::default();
    // Twice: a refused open releases the lock it took.
    for _ in 0..2 {
        let err = Store::open(&path, &options, "test").err().expect("refused");
        let message = err.to_string();
        assert!(matches!(err, StoreError::Version { .. }), "{message}");
        let found = format!("format version {}", keys::FORMAT_VERSION + 1);
        let expected = format!("reads version {}", keys::FORMAT_VERSION);
        assert!(
            message.contains(&found) && message.contains(&expected),
            "{message}"
        );
    }
}

#[test]
fn a_store_of_a_previous_format_version_opens_and_its_first_commit_upgrades_it() {
    for old in keys::UPGRADABLE_VERSIONS {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store");
        drop(open(&path));
        let version = |path: &std::path::Path| {
            let kv = SledKv::open(path, 1 << 20).expect("sled");
            let v = kv.get(keys::VERSION).expect("read").expect("a version");
            u32::from_be_bytes(v.as_slice().try_into().expect("4 bytes"))
        };
        write_version(&path, old);
        let options = StoreOptions::default();
        // Opening writes nothing: a reader may open it.
        drop(Store::open(&path, &options, "test").expect("opens"));
        assert_eq!(version(&path), old);
        {
            let store = Store::open(&path, &options, "test").expect("opens");
            let mut txn = store.begin();
            txn.put_raw(keys::counter("x"), vec![1]);
            store.commit(txn).expect("commit");
        }
        assert_eq!(version(&path), keys::FORMAT_VERSION, "from version {old}");
    }
}

#[test]
fn a_key_value_store_that_is_not_an_mvsync_store_is_refused() {
    let kv = MemKv::default();
    kv.apply(vec![(b"something else".to_vec(), Some(vec![1]))])
        .expect("write");
    let err = Store::with_kv(Box::new(kv), None).err().expect("refused");
    assert!(err.to_string().contains("not an mvsync store"), "{err}");
}

#[test]
fn a_second_open_of_the_same_store_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let options = StoreOptions::default();
    let first = Store::open(&path, &options, "run 7 (mvsync run hourly, pid 42)").expect("first");
    let err = Store::open(&path, &options, "run 8")
        .err()
        .expect("refused while held");
    match &err {
        StoreError::Locked { holder, .. } => {
            assert_eq!(holder, "run 7 (mvsync run hourly, pid 42)")
        }
        other => panic!("expected Locked, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("run 7 (mvsync run hourly, pid 42)"),
        "{err}"
    );
    drop(first);
    Store::open(&path, &options, "run 8").expect("free once the first is dropped");
}
