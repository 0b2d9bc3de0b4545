//! Proof of absence for the index look-ups of a full sync.
//!
//! A full sync that provisions asks, for every object, whether an index
//! holds something that is almost never there: an anchor or a DN another
//! target object holds, a unique-value candidate in use, a join value. And
//! it deletes, for every object it syncs, a sync-queue entry that an
//! import's span stood for, so that there is none. Each question, and each
//! delete, is a descent of sled's tree. While [`Absent`] is on (a full
//! sync step, see [`super::Store::absent_lookups`]), each index group is
//! read once, on its first question, into a set of hashes of the values it
//! holds, and every key the step writes under it adds its hash, so a value
//! not in the set is certainly not in the index and the look-up is skipped.
//!
//! The set only ever answers "certainly absent" or "look": it may hold more
//! than the index (a hash collision, a value deleted since, a batch rolled
//! back), which costs a real look-up, never a wrong answer. It never holds
//! less, because every write of an index key goes through `Txn::write`
//! (the store writes indexes only from `save_cs`/`save_mv`), because it is
//! turned on when no batch is open, and because the sets are dropped when
//! the step ends. A step that turns it on while it is on (none does) does
//! not clear it: a batch's records would be lost.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::keys::tag;

/// Where a key's index group ends and the value that look-ups ask about
/// starts, and how many bytes of id follow the value.
fn layout(key: &[u8]) -> Option<(usize, usize)> {
    match key.first()? {
        // tag, conn | anchor or normalized DN
        &tag::ANCHOR | &tag::DN => Some((5, 0)),
        // tag, conn | cs id (a sync-queue entry: an object queued on its
        // own key, which a full sync's objects, queued by span, lack)
        &tag::SYNC_QUEUE => Some((5, 0)),
        // tag, conn, attr | len-prefixed value | cs id
        &tag::UNIQUE => Some((9, 8)),
        // tag, attr | len-prefixed value | mv id
        &tag::JOIN => Some((5, 8)),
        _ => None,
    }
}

/// One index group's values: those the step wrote, and, once a look-up
/// asked, those the store held then.
#[derive(Default)]
struct Group {
    hashes: HashSet<u64, rustc_hash::FxBuildHasher>,
    read: bool,
}

/// The sets of one full sync step (see the module documentation).
#[derive(Default)]
pub(crate) struct Absent {
    on: AtomicBool,
    /// Whether sync-queue entries are judged: only when the connector has
    /// spans, whose objects lack entries. Otherwise its queued objects
    /// hold entries, and reading them all would buy nothing.
    queue: AtomicBool,
    groups: Mutex<HashMap<Vec<u8>, Group>>,
    /// Fx: a collision costs a look-up, never a wrong answer.
    hasher: rustc_hash::FxBuildHasher,
}

/// What a look-up for a key (or a prefix ending in a value) may find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing: no key of the index holds the value.
    Absent,
    /// Look it up.
    Look,
}

impl Absent {
    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Only while no batch is open: a write made before this is seen only
    /// once committed. Turns the sets on, empty, unless they are on already; whether this
    /// call turned them on (and so its [`Absent::stop`] turns them off).
    pub(super) fn start(&self, queue: bool) -> bool {
        if self.is_on() {
            return false;
        }
        self.groups().clear();
        self.queue.store(queue, Ordering::Release);
        self.on.store(true, Ordering::Release);
        true
    }

    /// [`layout`], for the groups this step judges.
    fn judged(&self, key: &[u8]) -> Option<(usize, usize)> {
        if key.first() == Some(&tag::SYNC_QUEUE) && !self.queue.load(Ordering::Acquire) {
            return None;
        }
        layout(key)
    }

    /// Turns the sets off and drops them.
    pub(super) fn stop(&self) {
        self.on.store(false, Ordering::Release);
        self.groups().clear();
    }

    fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Records a key a batch writes (deletes need no record: a set may hold
    /// more than the index).
    pub(super) fn wrote(&self, key: &[u8]) {
        if !self.is_on() {
            return;
        }
        let Some((group, id)) = self.judged(key) else {
            return;
        };
        let Some(value) = key.get(group..key.len().saturating_sub(id)) else {
            return;
        };
        let hash = self.hasher.hash_one(value);
        let mut groups = self.groups();
        match groups.get_mut(&key[..group]) {
            Some(g) => g.hashes.insert(hash),
            None => groups
                .entry(key[..group].to_vec())
                .or_default()
                .hashes
                .insert(hash),
        };
    }

    /// What a look-up of `key` (an anchor or DN entry, or a unique or join
    /// prefix that ends with its value) may find. The first question of a
    /// group reads every key of it with `scan`, which must see the store's
    /// committed and in-flight writes.
    pub(super) fn verdict(
        &self,
        key: &[u8],
        scan: impl FnOnce(&[u8], &mut dyn FnMut(&[u8])) -> Result<(), super::StoreError>,
    ) -> Result<Verdict, super::StoreError> {
        if !self.is_on() {
            return Ok(Verdict::Look);
        }
        let Some((group, id)) = self.judged(key) else {
            return Ok(Verdict::Look);
        };
        let Some(value) = key.get(group..) else {
            return Ok(Verdict::Look);
        };
        let prefix = &key[..group];
        let hash = self.hasher.hash_one(value);
        let read = |g: &Group| {
            if g.hashes.contains(&hash) {
                Verdict::Look
            } else {
                Verdict::Absent
            }
        };
        if let Some(g) = self.groups().get(prefix).filter(|g| g.read) {
            return Ok(read(g));
        }
        let mut held = Vec::new();
        scan(prefix, &mut |k: &[u8]| {
            if let Some(v) = k.get(group..k.len().saturating_sub(id)) {
                held.push(self.hasher.hash_one(v));
            }
        })?;
        let mut groups = self.groups();
        let g = groups.entry(prefix.to_vec()).or_default();
        g.hashes.extend(held);
        g.read = true;
        Ok(read(g))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::model::Sym;
    use crate::store::keys;

    /// The verdict on `key` when the store holds `held`; `scans` counts the
    /// groups read.
    fn ask(absent: &Absent, held: &[Vec<u8>], scans: &Cell<usize>, key: &[u8]) -> Verdict {
        absent
            .verdict(key, |prefix, f| {
                scans.set(scans.get() + 1);
                held.iter()
                    .filter(|k| k.starts_with(prefix))
                    .for_each(|k| f(k));
                Ok(())
            })
            .expect("a scan that cannot fail")
    }

    #[test]
    fn off_it_always_says_look_and_reads_nothing() {
        let absent = Absent::default();
        let scans = Cell::new(0);
        let key = keys::anchor(Sym(1), "nobody");
        assert_eq!(ask(&absent, &[], &scans, &key), Verdict::Look);
        assert_eq!(scans.get(), 0);
    }

    #[test]
    fn what_the_store_holds_is_looked_up_and_the_rest_is_absent() {
        let absent = Absent::default();
        absent.start(true);
        let scans = Cell::new(0);
        let held = vec![
            keys::anchor(Sym(1), "e1"),
            keys::dn(Sym(1), "CN=One,DC=x"),
            keys::unique(Sym(1), Sym(7), "jdoe", 42),
            keys::join(Sym(3), b"E1", 9),
            keys::cs_keyed(
                keys::tag::SYNC_QUEUE,
                crate::model::CsKey {
                    conn: Sym(1),
                    id: 5,
                },
            ),
        ];
        let ask = |key: &[u8]| ask(&absent, &held, &scans, key);
        assert_eq!(ask(&keys::anchor(Sym(1), "e1")), Verdict::Look);
        assert_eq!(ask(&keys::anchor(Sym(1), "e2")), Verdict::Absent);
        // Another connector's group is another set.
        assert_eq!(ask(&keys::anchor(Sym(2), "e1")), Verdict::Absent);
        assert_eq!(ask(&keys::dn(Sym(1), "cn=one, dc=X")), Verdict::Look);
        assert_eq!(ask(&keys::dn(Sym(1), "CN=Two,DC=x")), Verdict::Absent);
        // Unique and join look-ups ask with the prefix that ends with the
        // value: the held key's id is not part of it.
        let unique = |v: &str| keys::unique_prefix(Sym(1), Sym(7), v);
        assert_eq!(ask(&unique("JDoe")), Verdict::Look);
        assert_eq!(ask(&unique("jdoe2")), Verdict::Absent);
        assert_eq!(ask(&keys::join_prefix(Sym(3), b"E1")), Verdict::Look);
        assert_eq!(ask(&keys::join_prefix(Sym(3), b"E2")), Verdict::Absent);
        // A sync-queue entry is judged whole.
        let queued = |id| {
            keys::cs_keyed(
                keys::tag::SYNC_QUEUE,
                crate::model::CsKey { conn: Sym(1), id },
            )
        };
        assert_eq!(ask(&queued(5)), Verdict::Look);
        assert_eq!(ask(&queued(6)), Verdict::Absent);
        // Each group was read once: A/1, A/2, D/1, U/1/7, J/3, I/1.
        assert_eq!(scans.get(), 6);
    }

    #[test]
    fn what_the_step_writes_is_looked_up_before_and_after_its_group_is_read() {
        let absent = Absent::default();
        absent.start(true);
        let scans = Cell::new(0);
        let ask = |key: &[u8]| ask(&absent, &[], &scans, key);
        // Written before the group's first question...
        absent.wrote(&keys::unique(Sym(1), Sym(7), "jdoe", 42));
        assert_eq!(
            ask(&keys::unique_prefix(Sym(1), Sym(7), "jdoe")),
            Verdict::Look
        );
        // ... and after it.
        absent.wrote(&keys::anchor(Sym(1), "seen"));
        assert_eq!(ask(&keys::anchor(Sym(1), "other")), Verdict::Absent);
        absent.wrote(&keys::anchor(Sym(1), "new"));
        assert_eq!(ask(&keys::anchor(Sym(1), "new")), Verdict::Look);
        assert_eq!(ask(&keys::anchor(Sym(1), "seen")), Verdict::Look);
        // Other keys are never judged.
        assert_eq!(ask(&keys::mv(5)), Verdict::Look);
    }

    #[test]
    fn sync_queue_entries_are_judged_only_for_a_step_over_spans() {
        let absent = Absent::default();
        absent.start(false);
        let scans = Cell::new(0);
        let queued = keys::cs_keyed(
            keys::tag::SYNC_QUEUE,
            crate::model::CsKey {
                conn: Sym(1),
                id: 6,
            },
        );
        assert_eq!(ask(&absent, &[], &scans, &queued), Verdict::Look);
        assert_eq!(scans.get(), 0);
        absent.stop();
        absent.start(true);
        assert_eq!(ask(&absent, &[], &scans, &queued), Verdict::Absent);
        assert_eq!(scans.get(), 1);
    }

    #[test]
    fn starting_again_while_on_keeps_what_the_step_wrote() {
        let absent = Absent::default();
        assert!(absent.start(true));
        let key = keys::anchor(Sym(1), "written");
        absent.wrote(&key);
        assert!(!absent.start(true));
        let scans = Cell::new(0);
        assert_eq!(ask(&absent, &[], &scans, &key), Verdict::Look);
    }

    #[test]
    fn stopping_drops_the_sets() {
        let absent = Absent::default();
        absent.start(true);
        let scans = Cell::new(0);
        let key = keys::anchor(Sym(1), "e1");
        assert_eq!(ask(&absent, &[], &scans, &key), Verdict::Absent);
        absent.stop();
        absent.wrote(&key);
        absent.start(true);
        // Read again, from a store that holds it now.
        assert_eq!(
            ask(&absent, std::slice::from_ref(&key), &scans, &key),
            Verdict::Look
        );
        assert_eq!(scans.get(), 2);
    }
}
