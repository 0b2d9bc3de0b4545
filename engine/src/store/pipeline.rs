//! Batches applied on a second thread: the store's writer hands a committed
//! batch to an applier thread and goes on computing the next one, so sled's
//! inserts (about 40 % of a full sync on one core) run beside flow
//! evaluation on the other core.
//!
//! Invariants:
//! - At most one batch is in flight. [`Kv::apply`] waits for the previous
//!   one, so batches reach the inner store whole and in commit order, and a
//!   crash leaves a prefix of them, as before.
//! - Reads see the batch in flight: a `get` or `scan` lays it over the inner
//!   store. Laying it over is right whether or not the applier has reached
//!   it, since it holds the newest value of every key it names and no later
//!   batch can start while a read runs on the writer's thread.
//! - A failed apply poisons the store: that batch is lost, and every later
//!   read or write fails, so nothing is written after a batch that was not.
//!   The failure surfaces at the next commit, flush or read; the run then
//!   fails as if the process had died at that batch.

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::kv::{Entries, Kv, SortedBatch, Write};
use super::overlay::scan_over;
use super::StoreError;

type Batch = SortedBatch;

/// A [`Kv`] whose batches are applied by a thread of its own.
pub struct PipelinedKv {
    inner: Arc<dyn Kv>,
    shared: Arc<Shared>,
    /// `None` only once dropping has begun.
    to_applier: Option<Sender<Arc<Batch>>>,
    applier: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    settled: Condvar,
}

#[derive(Default)]
struct State {
    in_flight: Option<Arc<Batch>>,
    /// The first failed apply: taken by the call that reports it.
    failure: Option<StoreError>,
    /// What failed, for every call after that.
    poisoned: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a pair of options set in one step: a poisoned lock
        // still holds a consistent one.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until no batch is in flight; reports a failed apply.
    fn settle(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        let mut state = self.lock();
        while state.in_flight.is_some() {
            state = self.settled.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.check()?;
        Ok(state)
    }

    /// The batch in flight, if any; reports a failed apply.
    fn in_flight(&self) -> Result<Option<Arc<Batch>>, StoreError> {
        let mut state = self.lock();
        state.check()?;
        Ok(state.in_flight.clone())
    }
}

impl State {
    fn check(&mut self) -> Result<(), StoreError> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        match &self.poisoned {
            Some(why) => Err(StoreError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }
}

/// Settles the batch in flight when its apply ends, however it ends: a
/// panic in the inner store poisons the handle instead of leaving the
/// writer waiting for a batch that never lands.
struct Landed<'a> {
    shared: &'a Shared,
    result: Option<Result<(), StoreError>>,
}

impl Drop for Landed<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        match self.result.take() {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                state.poisoned = Some(e.to_string());
                state.failure = Some(e);
            }
            None => state.poisoned = Some("the thread applying batches panicked".into()),
        }
        state.in_flight = None;
        self.shared.settled.notify_all();
    }
}

impl PipelinedKv {
    /// Applies `inner`'s batches on a thread of their own; fails when no
    /// thread can be started.
    pub fn new(inner: Arc<dyn Kv>) -> std::io::Result<PipelinedKv> {
        let shared = Arc::new(Shared::default());
        let (to_applier, batches) = mpsc::channel::<Arc<Batch>>();
        let applier = {
            let (inner, shared) = (Arc::clone(&inner), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("mvsync-store-apply".into())
                .spawn(move || {
                    for batch in batches {
                        let mut landed = Landed {
                            shared: &shared,
                            result: None,
                        };
                        landed.result = Some(inner.apply_beside_readers(&batch));
                    }
                })?
        };
        Ok(PipelinedKv {
            inner,
            shared,
            to_applier: Some(to_applier),
            applier: Some(applier),
        })
    }
}

impl Kv for PipelinedKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(batch) = self.shared.in_flight()? {
            if let Some(v) = batch.get(key) {
                return Ok(v.clone());
            }
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
        match self.shared.in_flight()? {
            Some(batch) => scan_over(&*self.inner, &batch, prefix, from, exclusive, limit),
            None => self.inner.scan(prefix, from, exclusive, limit),
        }
    }

    fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let mut state = self.shared.settle()?;
        let batch = Arc::new(batch.into_iter().collect::<Batch>());
        state.in_flight = Some(Arc::clone(&batch));
        drop(state);
        let sent = self.to_applier.as_ref().map(|to| to.send(batch));
        if !matches!(sent, Some(Ok(()))) {
            // The applier is gone (only a panic in the inner store ends
            // it, and `Landed` reported that): nothing more may be written.
            let mut state = self.shared.lock();
            state.in_flight = None;
            let why = "the thread applying batches stopped".to_string();
            state.poisoned = Some(why.clone());
            return Err(StoreError::Poisoned(why));
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        drop(self.shared.settle()?);
        self.inner.flush()
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        drop(self.shared.settle()?);
        self.inner.is_empty()
    }
}

impl Drop for PipelinedKv {
    /// Lets the batch in flight reach the inner store before it closes.
    fn drop(&mut self) {
        self.to_applier = None;
        if let Some(applier) = self.applier.take() {
            let _ = applier.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemKv;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A store whose applies wait until released, and may fail.
    #[derive(Default)]
    struct Gated {
        map: MemKv,
        open: Mutex<bool>,
        opened: Condvar,
        fail: AtomicBool,
    }

    impl Gated {
        fn release(&self) {
            *self.open.lock().expect("store call") = true;
            self.opened.notify_all();
        }
    }

    impl Kv for Gated {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.map.get(key)
        }
        fn scan(&self, p: &[u8], f: &[u8], x: bool, l: usize) -> Result<Entries, StoreError> {
            self.map.scan(p, f, x, l)
        }
        fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError> {
            let mut open = self.open.lock().expect("store call");
            while !*open {
                open = self.opened.wait(open).expect("store call");
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::Corrupt("disk full".into()));
            }
            self.map.apply(batch)
        }
        fn flush(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn is_empty(&self) -> Result<bool, StoreError> {
            self.map.is_empty()
        }
    }

    fn put(k: &str, v: &str) -> Write {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    fn del(k: &str) -> Write {
        (k.as_bytes().to_vec(), None)
    }

    fn keys(entries: &Entries) -> Vec<String> {
        entries
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            })
            .collect()
    }

    #[test]
    fn reads_see_the_batch_in_flight_merged_with_the_store_in_key_order() {
        let gated = Arc::new(Gated::default());
        gated.release();
        let kv = PipelinedKv::new(gated.clone()).expect("an applier thread");
        let stored: Vec<Write> = (0..10).map(|i| put(&format!("k{i}"), "old")).collect();
        kv.apply(stored).expect("store call");
        kv.flush().expect("store call");
        *gated.open.lock().expect("store call") = false;
        // In flight: k3 changed, k5 and k8 deleted, k45 and k99 added.
        kv.apply(vec![
            put("k3", "new"),
            del("k5"),
            del("k8"),
            put("k45", "add"),
            put("k99", "add"),
        ])
        .expect("store call");
        assert_eq!(kv.get(b"k3").expect("store call"), Some(b"new".to_vec()));
        assert_eq!(kv.get(b"k5").expect("store call"), None);
        assert_eq!(kv.get(b"k45").expect("store call"), Some(b"add".to_vec()));
        assert_eq!(kv.get(b"k1").expect("store call"), Some(b"old".to_vec()));
        let want = [
            "k0=old", "k1=old", "k2=old", "k3=new", "k4=old", "k45=add", "k6=old", "k7=old",
            "k9=old", "k99=add",
        ];
        // Whole, and in pages of every size: deletes never end a walk early.
        assert_eq!(
            keys(&kv.scan(b"k", b"k", false, 100).expect("store call")),
            want
        );
        for limit in 1..6 {
            let mut seen = Vec::new();
            let (mut from, mut exclusive) = (b"k".to_vec(), false);
            loop {
                let page = kv.scan(b"k", &from, exclusive, limit).expect("store call");
                assert!(page.len() <= limit);
                let Some((last, _)) = page.last() else { break };
                (from, exclusive) = (last.clone(), true);
                seen.extend(keys(&page));
            }
            assert_eq!(seen, want, "pages of {limit}");
        }
        gated.release();
        kv.flush().expect("store call");
        assert_eq!(
            keys(&gated.map.scan(b"k", b"k", false, 100).expect("store call")),
            want
        );
    }

    #[test]
    fn a_failed_apply_is_reported_and_nothing_is_written_after_it() {
        let gated = Arc::new(Gated::default());
        gated.fail.store(true, Ordering::SeqCst);
        gated.release();
        let kv = PipelinedKv::new(gated.clone()).expect("an applier thread");
        kv.apply(vec![put("a", "1")]).expect("store call");
        let first = kv.apply(vec![put("b", "2")]).expect_err("fails");
        assert!(first.to_string().contains("disk full"), "{first}");
        gated.fail.store(false, Ordering::SeqCst);
        let later = kv.apply(vec![put("c", "3")]).expect_err("fails");
        assert!(later.to_string().contains("disk full"), "{later}");
        assert!(kv.get(b"a").is_err() && kv.flush().is_err());
        assert!(gated.map.is_empty().expect("store call"));
    }

    /// A store whose every apply panics.
    #[derive(Default)]
    struct Panicking(MemKv);

    impl Kv for Panicking {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.get(key)
        }
        fn scan(&self, p: &[u8], f: &[u8], x: bool, l: usize) -> Result<Entries, StoreError> {
            self.0.scan(p, f, x, l)
        }
        fn apply(&self, _: Vec<Write>) -> Result<(), StoreError> {
            panic!("the inner store broke")
        }
        fn flush(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn is_empty(&self) -> Result<bool, StoreError> {
            self.0.is_empty()
        }
    }

    #[test]
    fn a_panic_while_applying_poisons_the_store_instead_of_hanging_the_writer() {
        let kv = PipelinedKv::new(Arc::new(Panicking::default())).expect("an applier thread");
        kv.apply(vec![put("a", "1")]).expect("queued");
        let err = kv.apply(vec![put("b", "2")]).expect_err("poisoned");
        assert!(err.to_string().contains("panicked"), "{err}");
        assert!(kv.flush().is_err());
    }

    #[test]
    fn dropping_the_store_lets_the_batch_in_flight_land() {
        let gated = Arc::new(Gated::default());
        let kv = PipelinedKv::new(gated.clone()).expect("an applier thread");
        kv.apply(vec![put("a", "1")]).expect("store call");
        let releaser = {
            let gated = Arc::clone(&gated);
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                gated.release();
            })
        };
        drop(kv);
        // Read before the releaser is joined: the drop itself waited.
        let landed = gated.map.get(b"a").expect("store call");
        releaser.join().expect("store call");
        assert_eq!(landed, Some(b"1".to_vec()));
    }
}
