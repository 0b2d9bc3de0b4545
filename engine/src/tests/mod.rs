//! Engine unit tests: see the modules.
//!
//! - `store_model`: the store against a `BTreeMap` oracle, with reopens.
//! - `pipeline`: import, sync and export through `Engine::run_step`.
//! - `export_order`: the reference order of exports.
//! - `contract`: failure kinds, partial batches, in-flight adds, watermarks, thresholds, DNs.
//! - `crash`: a run profile killed at every store batch converges when run again.
//! - `sync_basis`: a full sync of a pure target reads what the same rules evaluated.
//! - `sync_queue`: spans and own keys of the sync queue, drained by delta sync.
//! - `support`: the in-memory connected system and config builders.

#![allow(clippy::unwrap_used)]

mod check;
mod contract;
mod crash;
mod export_order;
mod history;
mod large_groups;
mod pipeline;
mod store_model;
mod support;
mod sync_basis;
mod sync_queue;
