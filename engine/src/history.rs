//! Run history: one record per executed step, with MIM-style counters and
//! the per-object errors it met.

use serde::{Deserialize, Serialize};

use crate::model::CsKey;
use crate::store::{codec, keys, Store, StoreError, Txn, WriteStats};

/// A step of a run profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    /// Read everything, stage the differences (and deletes for what was not seen).
    FullImport,
    /// Read the changes since the watermark.
    DeltaImport,
    /// Synchronize every object of the connector.
    FullSync,
    /// Synchronize the objects with a pending import.
    DeltaSync,
    /// Apply pending exports.
    Export,
}

impl StepKind {
    /// The name used in configuration and output (`full-import`, ...).
    pub fn name(self) -> &'static str {
        match self {
            StepKind::FullImport => "full-import",
            StepKind::DeltaImport => "delta-import",
            StepKind::FullSync => "full-sync",
            StepKind::DeltaSync => "delta-sync",
            StepKind::Export => "export",
        }
    }

    /// Parses a step name.
    pub fn parse(name: &str) -> Option<StepKind> {
        [
            StepKind::FullImport,
            StepKind::DeltaImport,
            StepKind::FullSync,
            StepKind::DeltaSync,
            StepKind::Export,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    /// Still running, or killed (a record left in this state by a dead process).
    InProgress,
    /// Finished without errors.
    Success,
    /// Finished; some objects had errors.
    CompletedWithErrors,
    /// The step failed; pending changes are kept for the next run.
    Failed(String),
    /// The step did not run, for the reason given (staging mode).
    Skipped(String),
    /// The process running the step died (kill -9, power loss) before the
    /// step ended. What it committed is in the store (every commit is a
    /// consistent batch); running the profile again converges.
    Interrupted,
    /// A deletion threshold stopped the step; what it would have deleted is
    /// kept for review (the message says how to allow it).
    StoppedByThreshold(String),
    /// An operator stopped the step (SIGTERM, Ctrl-C); it ended at a batch
    /// boundary and what it committed is kept.
    Stopped,
    /// Finished without per-object errors, with warnings worth a look
    /// (listed with the run's errors, code `warning`).
    CompletedWithWarnings,
}

impl RunStatus {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            RunStatus::InProgress => "in-progress",
            RunStatus::Success => "success",
            RunStatus::CompletedWithErrors => "completed-with-errors",
            RunStatus::Failed(_) => "failed",
            RunStatus::Skipped(_) => "skipped",
            RunStatus::Interrupted => "interrupted",
            RunStatus::StoppedByThreshold(_) => "stopped-by-threshold",
            RunStatus::Stopped => "stopped",
            RunStatus::CompletedWithWarnings => "completed-with-warnings",
        }
    }

    /// Every status name, for filters and their errors.
    pub const NAMES: [&'static str; 9] = [
        "in-progress",
        "success",
        "completed-with-warnings",
        "completed-with-errors",
        "stopped-by-threshold",
        "stopped",
        "interrupted",
        "failed",
        "skipped",
    ];
}

/// MIM-style run counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Import: objects staged as adds.
    pub import_adds: u64,
    /// Import: objects staged as updates.
    pub import_updates: u64,
    /// Import: objects staged as deletes.
    pub import_deletes: u64,
    /// Import: exported changes confirmed.
    pub confirmed: u64,
    /// Sync: connector-space objects joined to an existing metaverse object.
    pub joins: u64,
    /// Sync: metaverse objects created by projection.
    pub projections: u64,
    /// Sync: objects disconnected (left scope, or deleted in the connected system).
    pub disconnects: u64,
    /// Sync: metaverse objects whose attributes changed.
    pub flow_updates: u64,
    /// Sync: metaverse objects deleted.
    pub mv_deletes: u64,
    /// Sync: connector-space objects provisioned.
    pub provisioned: u64,
    /// Sync: connector-space objects deprovisioned.
    pub deprovisioned: u64,
    /// Sync: pending exports staged or changed.
    pub exports_staged: u64,
    /// Export: adds applied.
    pub export_adds: u64,
    /// Export: updates applied.
    pub export_updates: u64,
    /// Export: renames applied.
    pub export_renames: u64,
    /// Export: deletes applied.
    pub export_deletes: u64,
    /// Export: adds that found the object already there and joined it.
    pub export_adopted: u64,
    /// Objects with errors.
    pub errors: u64,
}

impl Counters {
    /// The counters as (name, value) pairs, in display order.
    pub fn pairs(&self) -> [(&'static str, u64); 18] {
        [
            ("import-adds", self.import_adds),
            ("import-updates", self.import_updates),
            ("import-deletes", self.import_deletes),
            ("confirmed", self.confirmed),
            ("joins", self.joins),
            ("projections", self.projections),
            ("disconnects", self.disconnects),
            ("flow-updates", self.flow_updates),
            ("mv-deletes", self.mv_deletes),
            ("provisioned", self.provisioned),
            ("deprovisioned", self.deprovisioned),
            ("exports-staged", self.exports_staged),
            ("export-adds", self.export_adds),
            ("export-updates", self.export_updates),
            ("export-renames", self.export_renames),
            ("export-deletes", self.export_deletes),
            ("export-adopted", self.export_adopted),
            ("errors", self.errors),
        ]
    }
}

/// One executed step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id, sequential.
    pub id: u64,
    /// The run profile it belongs to, when started by one.
    pub profile: Option<String>,
    /// The step.
    pub step: StepKind,
    /// The connector.
    pub connector: String,
    /// Start, microseconds since the epoch.
    pub started: i64,
    /// End, when it ended.
    pub finished: Option<i64>,
    /// Outcome.
    pub status: RunStatus,
    /// Counters.
    pub counters: Counters,
    /// What the step wrote to the store (its own run record aside).
    pub written: WriteStats,
}

/// A per-object error of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// The object, when it is in a connector space.
    pub object: Option<CsKey>,
    /// How to find it: an anchor, a DN, `file:line:column`.
    pub identifier: String,
    /// A stable code.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// The connected system's own code (`LDAP 53 unwillingToPerform`), when
    /// it gave one.
    pub system_code: Option<String>,
}

/// What a step reports as it goes: the run record (id, step, connector),
/// the objects done so far, and how many there are when that is known.
pub type ProgressFn = std::sync::Arc<dyn Fn(&RunRecord, u64, Option<u64>) + Send + Sync>;

/// The live state of a run: its record and the errors met so far.
pub struct RunLog {
    /// The record, updated as the run goes.
    pub record: RunRecord,
    next_error: u32,
    warnings: u64,
    written_at_start: WriteStats,
    /// What the checkpoints of the record itself wrote (not the step's writes).
    own: WriteStats,
    /// Told after each batch.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLog")
            .field("record", &self.record)
            .finish()
    }
}

impl RunLog {
    /// Starts a run and persists its record as in progress.
    pub fn start(
        store: &Store,
        profile: Option<&str>,
        step: StepKind,
        connector: &str,
        now: i64,
    ) -> Result<RunLog, StoreError> {
        let record = RunRecord {
            id: store.alloc_run_id(),
            profile: profile.map(str::to_owned),
            step,
            connector: connector.to_owned(),
            started: now,
            finished: None,
            status: RunStatus::InProgress,
            counters: Counters::default(),
            written: WriteStats::default(),
        };
        let mut txn = store.begin();
        txn.put_raw(keys::run(record.id), codec::encode(&record)?);
        store.commit(txn)?;
        // Durable before the step does anything: a process killed during
        // the step leaves this record, which the next writer marks
        // interrupted.
        store.flush()?;
        Ok(RunLog {
            record,
            next_error: 0,
            warnings: 0,
            written_at_start: store.written(),
            own: WriteStats::default(),
            progress: None,
        })
    }

    /// The run id.
    pub fn id(&self) -> u64 {
        self.record.id
    }

    /// Tells the progress watcher how far the step is.
    pub fn progress(&self, done: u64, total: Option<u64>) {
        if let Some(p) = &self.progress {
            p(&self.record, done, total);
        }
    }

    /// Records a per-object error in `txn`.
    pub fn error(&mut self, txn: &mut Txn<'_>, error: RunError) -> Result<(), StoreError> {
        tracing::debug!(run = self.record.id, code = %error.code, object = %error.identifier, "{}", error.message);
        self.record.counters.errors += 1;
        txn.put_raw(
            keys::run_error(self.record.id, self.next_error),
            codec::encode(&error)?,
        );
        self.next_error += 1;
        Ok(())
    }

    /// Records a warning in `txn`: listed with the run's errors (code
    /// `warning`), not counted as one, and the run completes with warnings.
    pub fn warning(
        &mut self,
        txn: &mut Txn<'_>,
        identifier: &str,
        message: String,
    ) -> Result<(), StoreError> {
        tracing::warn!(run = self.record.id, "{identifier}: {message}");
        self.warnings += 1;
        txn.put_raw(
            keys::run_error(self.record.id, self.next_error),
            codec::encode(&RunError {
                object: None,
                identifier: identifier.to_owned(),
                code: "warning".into(),
                message,
                system_code: None,
            })?,
        );
        self.next_error += 1;
        Ok(())
    }

    /// Puts the record as it stands (still in progress) into `txn`, a batch
    /// the step is about to commit: a process killed later leaves a record
    /// that says what the step had committed. Nothing when `txn` is empty.
    pub fn checkpoint(&mut self, store: &Store, txn: &mut Txn<'_>) -> Result<(), StoreError> {
        if txn.is_empty() {
            return Ok(());
        }
        let mut record = self.record.clone();
        let pending = txn.pending_stats();
        record.written = store.written() - self.written_at_start - self.own;
        record.written.keys += pending.keys;
        record.written.bytes += pending.bytes;
        let key = keys::run(record.id);
        let value = codec::encode(&record)?;
        self.own.keys += 1;
        self.own.bytes += (key.len() + value.len()) as u64;
        txn.put_raw(key, value);
        Ok(())
    }

    /// Ends the run and persists the final record.
    pub fn finish(
        mut self,
        store: &Store,
        status: RunStatus,
        now: i64,
    ) -> Result<RunRecord, StoreError> {
        self.record.status = match status {
            RunStatus::Success if self.record.counters.errors > 0 => RunStatus::CompletedWithErrors,
            RunStatus::Success if self.warnings > 0 => RunStatus::CompletedWithWarnings,
            other => other,
        };
        self.record.finished = Some(now);
        self.record.written = store.written() - self.written_at_start - self.own;
        let mut txn = store.begin();
        txn.put_raw(keys::run(self.record.id), codec::encode(&self.record)?);
        store.commit(txn)?;
        store.flush()?;
        Ok(self.record)
    }
}

/// Marks the newest run as interrupted when it is still recorded as in
/// progress, and returns its id. Only the store's one writer may call it:
/// holding the lock, it knows no other process runs a step, so an
/// in-progress record belongs to a dead one. Only the newest can be one: a
/// process runs its steps one after another, and the next writer marks a
/// dead one's before it starts any step (so no command reads the whole
/// history to find it).
pub fn mark_interrupted(store: &Store) -> Result<Option<u64>, StoreError> {
    let Some(id) = store.last_run_id() else {
        return Ok(None);
    };
    let Some(raw) = store.get_raw(&keys::run(id))? else {
        return Ok(None);
    };
    let mut record: RunRecord = codec::decode(&raw, &|| format!("run record {id}"))?;
    if record.status != RunStatus::InProgress {
        return Ok(None);
    }
    record.status = RunStatus::Interrupted;
    let mut txn = store.begin();
    txn.put_raw(keys::run(id), codec::encode(&record)?);
    store.commit(txn)?;
    Ok(Some(id))
}

/// Deletes the runs (and their errors) that finished before `cutoff`
/// (microseconds since the epoch), oldest first, stopping at the first
/// newer one: runs are numbered in the order they start, so a store that
/// keeps 90 days reads only what it deletes. Returns how many it deleted.
pub fn prune(store: &Store, cutoff: i64) -> Result<usize, StoreError> {
    let prefix = [keys::tag::RUN];
    let mut deleted = 0;
    loop {
        let chunk = store.keys_after(&prefix, None, 256)?;
        if chunk.is_empty() {
            return Ok(deleted);
        }
        let mut txn = store.begin();
        let mut done = false;
        for key in chunk {
            let Some(raw) = store.get_raw(&key)? else {
                continue;
            };
            let record: RunRecord = codec::decode(&raw, &|| format!("run record {key:?}"))?;
            if record.finished.is_none_or(|f| f >= cutoff) {
                done = true;
                break;
            }
            let mut errors = Vec::new();
            store.for_each_prefix(&keys::run_error_prefix(record.id), |k, _| {
                errors.push(k.to_vec());
                Ok(())
            })?;
            errors.into_iter().for_each(|k| txn.delete_raw(k));
            txn.delete_raw(key);
            deleted += 1;
        }
        store.commit(txn)?;
        if done {
            return Ok(deleted);
        }
    }
}

/// Every run, oldest first.
pub fn runs(store: &Store) -> Result<Vec<RunRecord>, StoreError> {
    let mut out = Vec::new();
    store.for_each_prefix(&[keys::tag::RUN], |k, v| {
        out.push(codec::decode(v, &|| format!("run record {k:?}"))?);
        Ok(())
    })?;
    Ok(out)
}

/// One run's record.
pub fn record(store: &Store, id: u64) -> Result<Option<RunRecord>, StoreError> {
    let Some(raw) = store.get_raw(&keys::run(id))? else {
        return Ok(None);
    };
    Ok(Some(codec::decode(&raw, &|| format!("run record {id}"))?))
}

/// One run and its errors.
pub fn run(store: &Store, id: u64) -> Result<Option<(RunRecord, Vec<RunError>)>, StoreError> {
    let Some(record) = record(store, id)? else {
        return Ok(None);
    };
    let mut errors = Vec::new();
    store.for_each_prefix(&keys::run_error_prefix(id), |k, v| {
        errors.push(codec::decode(v, &|| format!("run error {k:?}"))?);
        Ok(())
    })?;
    Ok(Some((record, errors)))
}
