//! The mvsync engine: connector spaces, the metaverse and the pipeline
//! between them (import → sync → export), run profiles and run history.
//!
//! Invariant: the engine knows connectors only through the [`Connector`]
//! trait; it never imports a connector crate.

pub mod audit;
pub mod browse;
pub mod check;
pub mod connector;
pub mod diff;
mod export;
pub mod history;
mod import;
pub mod inspect;
pub mod model;
pub mod plan;
pub mod quarantine;
pub mod retry;
pub mod revert;
pub mod setup;
pub mod store;
mod sync;
pub mod trace;

use std::collections::BTreeMap;

pub use browse::Browser;
pub use connector::{
    Applied, AttrOp, AttributeSchema, CheckReport, Connector, ConnectorError, ConnectorErrorKind,
    ConnectorInfo, ExportChange, ExportFailure, ExportOp, ExportReport, ExportResult, FailureKind,
    ImportEvent, ImportItem, ImportStream, ImportedObject, ItemError, ObjectTypeSchema, RefKind,
};
pub use history::{Counters, RunError, RunRecord, RunStatus, StepKind};
pub use inspect::{CsView, MvView, PendingChange};
pub use plan::Plan;
pub use retry::RetryPolicy;
pub use setup::{DeletionRule, EngineConfig};
pub use store::{Store, StoreError, StoreOptions, WriteStats};
pub use trace::Trace;

use history::RunLog;
use setup::Model;

/// Engine failures that end a step. Per-object errors never do: they are
/// recorded on the object and in the run history.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The connected system failed; every pending change is kept.
    #[error("connector '{connector}': {source}")]
    Connector {
        /// The connector.
        connector: String,
        /// What failed.
        #[source]
        source: ConnectorError,
    },
    /// The export would delete too much.
    #[error("export to '{connector}' would delete {deletes} objects, more than the deletion threshold of {threshold}; nothing was exported. Review the deletes with `mvsync preview {connector}`, then allow them with `--allow-deletes {deletes}` or raise `deletion_threshold`")]
    DeletionThreshold {
        /// The connector.
        connector: String,
        /// How many deletes are pending.
        deletes: usize,
        /// The threshold in force.
        threshold: usize,
    },
    /// A full import would stage too many deletes.
    #[error("full import of '{connector}' would delete {deletes} of its {total} objects, more than the deletion threshold ({threshold} objects, or {percent} % of the connector space); nothing was staged as deleted (the objects read were staged). If the source really lost them, allow it with `--allow-deletes {deletes}`; otherwise fix the source (an empty or truncated file, a wrong filter) and import again")]
    ImportDeletionThreshold {
        /// The connector.
        connector: String,
        /// How many objects were not seen.
        deletes: usize,
        /// How many objects the connector space holds.
        total: usize,
        /// The count threshold in force.
        threshold: usize,
        /// The share threshold in force, in percent.
        percent: u32,
    },
    /// A sync would delete too many metaverse objects.
    #[error("sync of '{connector}' stopped: it would delete at least {deletes} metaverse objects, more than the deletion threshold of {threshold} ({deleted} deleted by its earlier batches; the batch that crossed the threshold was not committed and stays queued). Review what the sources lost (`mvsync history`, `mvsync show cs`), then allow it with `--allow-deletes N` or raise `deletion_threshold`")]
    SyncDeletionThreshold {
        /// The connector.
        connector: String,
        /// How many metaverse deletions it would have made by the end of the batch.
        deletes: usize,
        /// How many earlier batches made.
        deleted: usize,
        /// The threshold in force.
        threshold: usize,
    },
    /// The connector no longer honours the stored delta watermark.
    #[error("delta import of '{connector}': the connected system no longer honours the stored watermark ({source}); nothing was staged. Run a full import (`mvsync import {connector} --full`), or give the profile's step `fallback = \"full-import\"`")]
    WatermarkExpired {
        /// The connector.
        connector: String,
        /// What the connector said.
        #[source]
        source: ConnectorError,
    },
    /// The audit log could not be written.
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    /// A run cannot be reverted.
    #[error("{0}")]
    Revert(String),
    /// The connector's exports are quarantined.
    #[error("exports to '{connector}' are quarantined since run {run}: {reason}. Nothing more is exported to it until an operator fixes the cause (`mvsync history {run}` lists the errors) and runs `mvsync quarantine clear {connector}`")]
    Quarantined {
        /// The connector.
        connector: String,
        /// The run that tripped the quarantine.
        run: u64,
        /// What that run met.
        reason: String,
    },
    /// An operator asked the process to stop (SIGTERM, Ctrl-C): the step
    /// ended at a batch boundary; what it committed is kept, and running it
    /// again goes on from there.
    #[error("stopped on request at a batch boundary; what the step committed is kept, and running it again goes on from there")]
    Stopped,
    /// A connector name that the configuration does not define.
    #[error("no connector named '{0}' is configured")]
    UnknownConnector(String),
    /// The connector cannot do this step.
    #[error("connector '{connector}' does not support {what}")]
    Unsupported {
        /// The connector.
        connector: String,
        /// The step.
        what: &'static str,
    },
}

/// Options of one step.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// Allow an import, a sync or an export to delete up to this many
    /// objects, overriding the deletion thresholds.
    pub allow_deletes: Option<usize>,
}

/// The source of "now", in microseconds since the epoch. A parameter so
/// that tests are deterministic.
pub type Clock = fn() -> i64;

fn system_clock() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A store with its configuration and connectors, ready to run steps.
pub struct Engine {
    store: Store,
    model: Model,
    connectors: BTreeMap<String, Box<dyn Connector>>,
    clock: Clock,
    staging: bool,
    stop: StopFlag,
    audit: Option<audit::AuditLog>,
    progress: Option<history::ProgressFn>,
    quarantine: quarantine::QuarantinePolicy,
    /// How many pending exports are ordered together (tests make it small).
    pub(crate) export_chunk: usize,
}

/// Set to ask the running step to stop at its next batch boundary.
pub type StopFlag = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// Whether `flag` asks the step to stop.
pub(crate) fn stop_requested(flag: &StopFlag) -> bool {
    flag.load(std::sync::atomic::Ordering::Relaxed)
}

impl Engine {
    /// Wires a store to a configuration and its connectors, bringing the
    /// join index in step with the configured join criteria.
    pub fn new(
        store: Store,
        config: &EngineConfig,
        connectors: BTreeMap<String, Box<dyn Connector>>,
    ) -> Result<Engine, EngineError> {
        let model = Model::new(config, &store);
        if store.ensure_join_index(&model.join_attrs(&store))? {
            tracing::info!("join index rebuilt for the configured join criteria");
        }
        if store.ensure_unique_index(&model.unique_pairs())? {
            tracing::info!("unique-value index rebuilt for the configured unique-value flows");
        }
        // A private copy of a store being read is not the writer: a run in
        // progress there may be alive.
        let stale = if store.is_private_copy() {
            None
        } else {
            history::mark_interrupted(&store)?
        };
        if let Some(id) = stale {
            tracing::warn!(
                run = id,
                "run {id} was interrupted (its process died before the step ended); what it committed is kept, and running the profile again converges"
            );
        }
        if config.history_retention_days > 0 && !store.is_private_copy() {
            let cutoff = system_clock() - i64::from(config.history_retention_days) * 86_400_000_000;
            let pruned = history::prune(&store, cutoff)?;
            if pruned > 0 {
                tracing::info!(
                    "pruned {pruned} run(s) older than {} days (`history_retention_days`)",
                    config.history_retention_days
                );
            }
        }
        store.commit(store.begin())?;
        Ok(Engine {
            store,
            model,
            connectors,
            clock: system_clock,
            staging: config.staging,
            stop: StopFlag::default(),
            audit: config.audit_log.clone().map(audit::AuditLog::new),
            progress: None,
            quarantine: config.quarantine,
            export_chunk: export::ORDER_CHUNK,
        })
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Clock) -> Engine {
        self.clock = clock;
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn conn(&self, name: &str) -> Result<(model::Sym, &dyn Connector), EngineError> {
        let sym = self
            .store
            .lookup(name)
            .filter(|s| self.model.conns.contains_key(s))
            .ok_or_else(|| EngineError::UnknownConnector(name.to_owned()))?;
        let connector = self
            .connectors
            .get(name)
            .ok_or_else(|| EngineError::UnknownConnector(name.to_owned()))?;
        Ok((sym, connector.as_ref()))
    }

    /// Runs one step and records it in the run history. The record is
    /// returned on success; on failure the error is returned and the
    /// history holds the failed record.
    pub async fn run_step(
        &self,
        profile: Option<&str>,
        connector: &str,
        step: StepKind,
        options: &StepOptions,
    ) -> Result<RunRecord, EngineError> {
        let (conn, system) = self.conn(connector)?;
        let info = &self.model.conns[&conn].info;
        let unsupported = |what| EngineError::Unsupported {
            connector: connector.to_owned(),
            what,
        };
        match step {
            StepKind::DeltaImport if !info.delta_import => {
                return Err(unsupported("delta import (configure a change source)"))
            }
            StepKind::Export if !info.export => return Err(unsupported("export")),
            _ => {}
        }
        let mut log = RunLog::start(&self.store, profile, step, connector, (self.clock)())?;
        log.progress = self.progress.clone();
        if step == StepKind::Export && self.staging {
            let pending = self.preview(Some(connector))?.len();
            let reason = format!(
                "staging mode: nothing was exported; {pending} pending export(s) kept for review"
            );
            tracing::info!(run = log.id(), connector, "{reason}");
            return Ok(log.finish(&self.store, RunStatus::Skipped(reason), (self.clock)())?);
        }
        tracing::info!(
            run = log.id(),
            connector,
            step = step.name(),
            "step started"
        );
        let result = match step {
            StepKind::FullImport | StepKind::DeltaImport => {
                let mut importer = import::Importer::new(&self.store, &self.model, &mut log, conn);
                importer.allow_deletes = options.allow_deletes;
                importer.stop = Some(self.stop.clone());
                importer.run(system, step == StepKind::FullImport).await
            }
            StepKind::FullSync | StepKind::DeltaSync => {
                let mut syncer =
                    sync::Syncer::new(&self.store, &self.model, &mut log, (self.clock)());
                if let Some(allowed) = options.allow_deletes {
                    syncer.deletion_limit = allowed;
                }
                syncer.stop = Some(self.stop.clone());
                syncer.run(conn, step == StepKind::FullSync)
            }
            StepKind::Export => {
                export::Exporter {
                    store: &self.store,
                    model: &self.model,
                    log: &mut log,
                    conn,
                    stop: self.stop.clone(),
                    audit: self.audit.clone(),
                    entries: Vec::new(),
                    quarantine: self.quarantine,
                    chunk: self.export_chunk,
                    answered: 0,
                    failed: 0,
                }
                .run(system, options.allow_deletes)
                .await
            }
        };
        let status = match &result {
            Ok(()) => RunStatus::Success,
            Err(
                e @ (EngineError::DeletionThreshold { .. }
                | EngineError::ImportDeletionThreshold { .. }
                | EngineError::SyncDeletionThreshold { .. }
                | EngineError::Quarantined { .. }),
            ) => RunStatus::StoppedByThreshold(e.to_string()),
            Err(EngineError::Stopped) => RunStatus::Stopped,
            Err(e) => RunStatus::Failed(e.to_string()),
        };
        let record = log.finish(&self.store, status, (self.clock)())?;
        tracing::info!(
            run = record.id,
            status = record.status.name(),
            "step finished"
        );
        result.map(|()| record)
    }

    /// The flag that asks a running step to stop at its next batch
    /// boundary (a signal handler sets it).
    pub fn stop_flag(&self) -> StopFlag {
        self.stop.clone()
    }

    /// How many exports are pending per connector (a key scan of the
    /// export queue; the objects of its spans are read, see
    /// [`Store::count_pending_exports`]).
    pub fn pending_export_counts(&self) -> Result<BTreeMap<String, u64>, EngineError> {
        let mut out = BTreeMap::new();
        for (sym, _) in self.model.conns.iter() {
            let n = self.store.count_pending_exports(*sym, usize::MAX)?;
            out.insert(self.store.name(*sym).to_string(), n as u64);
        }
        Ok(out)
    }

    /// The quarantined connectors.
    pub fn quarantined(&self) -> Result<Vec<quarantine::Quarantine>, EngineError> {
        Ok(quarantine::all(&self.store)?)
    }

    /// Clears a connector's quarantine; whether it was quarantined.
    pub fn clear_quarantine(&self, connector: &str) -> Result<bool, EngineError> {
        self.conn(connector)?;
        Ok(quarantine::clear(&self.store, connector)?)
    }

    /// The audit log of exported changes, when one is kept.
    pub fn audit_log(&self) -> Option<&audit::AuditLog> {
        self.audit.as_ref()
    }

    /// Stages the inverse of export run `run`'s changes as pending
    /// exports (see [`revert`]).
    pub fn revert(&self, run: u64, force: bool) -> Result<revert::RevertReport, EngineError> {
        let Some(audit) = &self.audit else {
            return Err(EngineError::Revert(
                "no audit log is kept, so no run can be reverted".into(),
            ));
        };
        revert::revert(&self.store, audit, run, force)
    }

    /// Tells `f` how far each step is, after each batch.
    pub fn set_progress(&mut self, f: history::ProgressFn) {
        self.progress = Some(f);
    }

    /// Uses `flag` as the stop flag (one watched by a process that opens
    /// the store again for each run).
    pub fn use_stop_flag(&mut self, flag: StopFlag) {
        self.stop = flag;
    }

    /// Pending exports of one connector, or of all.
    pub fn preview(&self, connector: Option<&str>) -> Result<Vec<PendingChange>, EngineError> {
        let conns: Vec<model::Sym> = match connector {
            Some(name) => vec![self.conn(name)?.0],
            None => self.model.conns.keys().copied().collect(),
        };
        Ok(inspect::pending_changes(&self.store, &self.model, &conns)?)
    }

    /// Pending exports of one connector, or of all, given to `each` one at
    /// a time in the order of [`Engine::preview`] (memory holds their
    /// keys, not the changes); `each` returns `false` to stop. Returns how
    /// many were given.
    pub fn preview_each(
        &self,
        connector: Option<&str>,
        each: &mut dyn FnMut(PendingChange) -> bool,
    ) -> Result<usize, EngineError> {
        let conns: Vec<model::Sym> = match connector {
            Some(name) => vec![self.conn(name)?.0],
            None => self.model.conns.keys().copied().collect(),
        };
        Ok(inspect::each_pending_change(
            &self.store,
            &self.model,
            &conns,
            each,
        )?)
    }

    /// A metaverse object with lineage.
    pub fn show_mv(&self, id: model::MvId) -> Result<Option<MvView>, EngineError> {
        Ok(inspect::mv_view(
            &self.store,
            &self.model,
            (self.clock)(),
            id,
        )?)
    }

    /// A connector-space object by anchor, DN or `cs:<id>`.
    pub fn show_cs(&self, connector: &str, anchor: &str) -> Result<Option<CsView>, EngineError> {
        let (conn, _) = self.conn(connector)?;
        Ok(inspect::cs_view(&self.store, &self.model, conn, anchor)?)
    }

    /// Every run, oldest first.
    pub fn history(&self) -> Result<Vec<RunRecord>, EngineError> {
        Ok(history::runs(&self.store)?)
    }

    /// One run with its per-object errors.
    pub fn run_details(&self, id: u64) -> Result<Option<(RunRecord, Vec<RunError>)>, EngineError> {
        Ok(history::run(&self.store, id)?)
    }

    /// Every store invariant violation.
    pub fn check(&self) -> Result<Vec<String>, EngineError> {
        Ok(check::check(&self.store)?)
    }

    /// Makes everything durable and releases the store.
    pub fn close(self) -> Result<(), EngineError> {
        self.store.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
