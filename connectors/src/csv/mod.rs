//! The CSV connector: one file is the connected system, one row per object,
//! keyed by an anchor column.
//!
//! - [`config`]: the keys an operator writes, and their validation.
//! - `reader`: CSV records with their place in the file (line, column).
//! - `rows`: the header, and each record checked and turned into attributes.
//! - `import`: full import as a stream. `delta`: delta import from a change file.
//! - `watermark`: the change-file watermark. `export`: applying a batch to the
//!   file; `table`: the file in memory while a batch is applied; `atomic`:
//!   replacing the file so a crash never leaves half of it. `index`: the
//!   row index a run leaves beside the file. `formula`: spreadsheet safety
//!   (`escape_formulas`).
//!
//! What the engine sees:
//! - An imported object's attributes are the row's columns in file order,
//!   the anchor column included; empty cells (null) are omitted; with
//!   `columns` set, only declared columns appear.
//! - Delta rows (`add`/`modify`) are full objects, like full-import rows; a
//!   `delete` row yields `ImportEvent::Delete`. The watermark is
//!   `v1:<bytes consumed>:<FNV-1a 64 of those bytes, 16 hex digits>`; a full
//!   import ends with the change file's state taken *before* reading the file,
//!   so changes appended meanwhile are replayed, never skipped.
//! - An export run starts reading the file when the engine announces it
//!   (`export_starting`), while the engine orders the changes; it keeps
//!   the table between batches while the file is the one it wrote, and
//!   leaves a row index beside the file when it finishes
//!   (`.<name>.mvsync-index`, `index`), so the next run reads that instead
//!   of parsing the file while the file's content is the one it describes.
//! - Export rewrites the whole file per batch, copying the rows no change
//!   touched as they are (`table`): an add of an existing anchor
//!   updates that row (columns it does not mention keep their values), a
//!   delete of a missing row succeeds, rows keep their order, new rows are
//!   appended, new columns come after the existing ones in sorted order.
//! - With `dn_column`, the file has DNs (`has_dn`): a row's DN is
//!   `ImportedObject::dn`, not an attribute; a reference column whose
//!   target is the DN column (`references = { manager = "dn" }`) is a
//!   `RefKind::Dn` reference; export writes an add's DN, applies a new DN
//!   as a rename of the same row, and refuses a DN another row holds
//!   (DNs compare without regard to case). A list of DNs in a multi-valued
//!   column splits only at unescaped separators (`CN=a\;b` is one DN).
//! - With `object_type_column`, each row's type is that column's value, one
//!   of `object_types` (any other, or none, is a bad row), and every type
//!   shares the columns and the anchor; export writes a change's type there.
//!
//! Invariant: every value read is a `Value::Str` (or a list of them); types
//! are the engine's business.

mod atomic;
pub mod config;
mod delta;
mod export;
mod formula;
mod import;
mod index;
mod reader;
mod rows;
mod stream;
mod table;
mod watermark;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use engine::{
    AttributeSchema, CheckReport, Connector, ConnectorError, ConnectorInfo, ExportChange,
    ExportReport, ImportStream, ObjectTypeSchema,
};
use rules::ValueType;

pub use config::{CsvConfig, CsvConfigError, Delimiter, CHANGE_TYPE_COLUMN};

/// How many changes one export call receives: each call rewrites the whole file.
pub const EXPORT_BATCH_SIZE: usize = 50_000;

/// A file as the connector reads it: where it is, and how it is named in messages.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The path, resolved against the config file's folder.
    pub(crate) path: PathBuf,
    /// The path as configured, the prefix of every location.
    pub(crate) shown: String,
}

impl Source {
    fn new(configured: &Path, base_dir: &Path) -> Self {
        Source {
            path: base_dir.join(configured),
            shown: configured.display().to_string(),
        }
    }
}

/// A validated configuration with its files resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: CsvConfig,
    pub(crate) file: Source,
    pub(crate) change_file: Option<Source>,
}

/// A CSV file as a connected system.
#[derive(Debug)]
pub struct CsvConnector {
    settings: Arc<Settings>,
    /// Exports are read-modify-write of one file: one at a time. Holds the
    /// table an export run keeps between its batches.
    export_lock: tokio::sync::Mutex<Prepared>,
}

/// What an export run has of the file between its calls.
#[derive(Debug, Default)]
enum Prepared {
    #[default]
    Nothing,
    /// Read since the run started, while the engine built the first batch.
    Loading(tokio::task::JoinHandle<Result<export::Kept, ConnectorError>>),
    /// The table the last batch left.
    Kept(Box<export::Kept>),
}

impl CsvConnector {
    /// Validates `config` and resolves its relative paths against `base_dir`.
    pub fn new(config: CsvConfig, base_dir: &Path) -> Result<Self, CsvConfigError> {
        config.validate()?;
        let file = Source::new(&config.path, base_dir);
        let change_file = config
            .change_file
            .as_deref()
            .map(|p| Source::new(p, base_dir));
        Ok(CsvConnector {
            settings: Arc::new(Settings {
                config,
                file,
                change_file,
            }),
            export_lock: tokio::sync::Mutex::new(Prepared::Nothing),
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &CsvConfig {
        &self.settings.config
    }
}

#[async_trait]
impl Connector for CsvConnector {
    fn info(&self) -> ConnectorInfo {
        let config = &self.settings.config;
        // The DN and object type columns describe the row; they are not attributes.
        let names: Vec<&str> = match &config.columns {
            Some(columns) => columns
                .iter()
                .map(String::as_str)
                .filter(|c| !config.is_special(c))
                .collect(),
            None => config
                .multi_valued
                .keys()
                .chain(config.references.keys())
                .map(String::as_str)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        let attributes: Vec<AttributeSchema> = names
            .into_iter()
            .map(|name| AttributeSchema {
                name: name.to_owned(),
                value_type: ValueType::String,
                multi_valued: config.multi_valued.contains_key(name),
                reference: config.reference_kind(name),
            })
            .collect();
        ConnectorInfo {
            object_types: config
                .types()
                .into_iter()
                .map(|name| ObjectTypeSchema {
                    name: name.to_owned(),
                    anchor_attribute: Some(config.anchor.clone()),
                    attributes: attributes.clone(),
                })
                .collect(),
            delta_import: config.change_file.is_some(),
            export: true,
            has_dn: config.dn_column.is_some(),
            // A file holds DN references as text: renames update their referrers.
            rewrites_dn_references: false,
            export_batch_size: EXPORT_BATCH_SIZE,
        }
    }

    async fn full_import(&self) -> Result<ImportStream, ConnectorError> {
        let settings = Arc::clone(&self.settings);
        let opened = stream::blocking(move || import::open(settings)).await?;
        Ok(stream::spawn(move |sink| opened.run(sink)))
    }

    async fn delta_import(&self, watermark: Option<&str>) -> Result<ImportStream, ConnectorError> {
        let settings = Arc::clone(&self.settings);
        let watermark = watermark.map(str::to_owned);
        let opened = stream::blocking(move || delta::open(settings, watermark.as_deref())).await?;
        Ok(stream::spawn(move |sink| opened.run(sink)))
    }

    async fn export(&self, batch: Vec<ExportChange>) -> Result<ExportReport, ConnectorError> {
        let mut prepared = self.export_lock.lock().await;
        let previous = match std::mem::take(&mut *prepared) {
            Prepared::Nothing => None,
            // A read that failed is tried again by `apply`: the file may be
            // fixed since, and the error is then the file's as it is now.
            Prepared::Loading(task) => stream::joined(task).await.ok(),
            Prepared::Kept(kept) => Some(*kept),
        };
        let settings = Arc::clone(&self.settings);
        let (results, keep) =
            stream::blocking(move || export::apply(&settings, batch, previous)).await?;
        if let Some(keep) = keep {
            *prepared = Prepared::Kept(Box::new(keep));
        }
        // The file is replaced atomically: every change of the batch or none.
        Ok(ExportReport::complete(results))
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let settings = Arc::clone(&self.settings);
        stream::blocking(move || import::check(&settings)).await
    }

    /// Starts reading the file on the blocking pool, so that the first
    /// batch finds it read (the engine orders the changes meanwhile).
    async fn export_starting(&self) {
        let mut prepared = self.export_lock.lock().await;
        if matches!(*prepared, Prepared::Nothing) {
            let settings = Arc::clone(&self.settings);
            *prepared = Prepared::Loading(tokio::task::spawn_blocking(move || {
                export::Kept::load(&settings)
            }));
        }
    }

    /// Leaves the row index of the file the run wrote (or read) beside it.
    async fn export_finished(&self) {
        let mut prepared = self.export_lock.lock().await;
        let Prepared::Kept(kept) = std::mem::take(&mut *prepared) else {
            return;
        };
        let settings = Arc::clone(&self.settings);
        let left = stream::blocking(move || {
            kept.leave_index(&settings);
            Ok(())
        })
        .await;
        if let Err(e) = left {
            tracing::warn!(
                "cannot leave the row index beside {}: {e}; the next export reads the whole file",
                self.settings.file.shown
            );
        }
    }
}
