//! The console's hold on the store. sled lets one process open a store, so
//! the console opens it the way a reader that gives way does
//! ([`Store::open_giving_way`]): it keeps it open between requests (pages
//! answer in milliseconds), and the moment a run asks for it — the run's
//! `Store::open` finds the console's lock and asks — a watcher drops it
//! once the requests in flight are done. While the run holds the store the
//! pages say so, naming it; the first request after the run reopens it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use engine::{Browser, EngineConfig, Store, StoreError, StoreOptions};

/// Why a page cannot read the store now.
#[derive(Debug)]
pub enum Unavailable {
    /// Another process (a run) holds it: who.
    Busy(String),
    /// Opening it failed.
    Failed(String),
}

/// The store, opened on demand and given up on request.
pub struct Source {
    path: PathBuf,
    options: StoreOptions,
    config: EngineConfig,
    holder: String,
    open: Mutex<Option<Arc<Browser>>>,
}

/// How often the watcher looks for a run asking for the store.
const WATCH: Duration = Duration::from_millis(100);

impl Source {
    /// A source for the store at `path`, not yet opened.
    pub fn new(path: PathBuf, options: StoreOptions, config: EngineConfig) -> Arc<Source> {
        let holder = format!("mvsync console (pid {})", std::process::id());
        let source = Arc::new(Source {
            path,
            options,
            config,
            holder,
            open: Mutex::new(None),
        });
        let watched = Arc::downgrade(&source);
        let spawned = std::thread::Builder::new()
            .name("console-store".into())
            .spawn(move || {
                while let Some(source) = watched.upgrade() {
                    source.give_way_if_asked();
                    drop(source);
                    std::thread::sleep(WATCH);
                }
            });
        if spawned.is_err() {
            tracing::warn!(
                "cannot watch for runs asking for the store; runs wait for the console to end"
            );
        }
        source
    }

    fn slot(&self) -> MutexGuard<'_, Option<Arc<Browser>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open store, opening it first when needed.
    pub fn get(&self) -> Result<Arc<Browser>, Unavailable> {
        let mut slot = self.slot();
        if let Some(b) = slot.as_ref() {
            return Ok(b.clone());
        }
        match Store::open_giving_way(&self.path, &self.options, &self.holder) {
            Ok(store) => {
                let b = Arc::new(Browser::new(store, &self.config));
                *slot = Some(b.clone());
                Ok(b)
            }
            Err(StoreError::Locked { holder, .. }) => Err(Unavailable::Busy(holder)),
            Err(e) => Err(Unavailable::Failed(e.to_string())),
        }
    }

    /// Drops the store when a run asked for it, after the requests that
    /// hold it now are done (each holds it for one page).
    fn give_way_if_asked(&self) {
        let taken = {
            let mut slot = self.slot();
            match slot.as_ref() {
                Some(b) if b.store().asked_to_give_way() => slot.take(),
                _ => None,
            }
        };
        let Some(mut browser) = taken else { return };
        // Requests in flight hold clones; the last one out closes the store.
        loop {
            match Arc::try_unwrap(browser) {
                Ok(b) => {
                    drop(b);
                    tracing::info!("gave the store up to a run that asked for it");
                    return;
                }
                Err(still_shared) => {
                    browser = still_shared;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}
