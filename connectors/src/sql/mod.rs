//! The SQL connector: a PostgreSQL or SQLite table (or view, or query) is
//! the connected system, one row per object, keyed by one or more columns.
//!
//! - [`config`]: the keys an operator writes, and their validation.
//! - `db`: connecting (password from the secret, TLS verified by default,
//!   timeouts, a pool), the two dialects, rows to values and values to
//!   parameters, failures to error kinds.
//! - `anchor`: a row's anchor from its key columns (composite keys joined
//!   by `|`). `watermark`: the delta watermark's stored form.
//! - `import`: full import, and delta import by a watermark column or a
//!   change-log table. `export`: a transaction per batch, a savepoint per
//!   change, table writes or configured statements.
//!
//! What the engine sees:
//! - An object's attributes are the row's columns (nulls omitted), typed
//!   as the database types them (integers, booleans, date-times, bytes;
//!   other types as text), plus the child table's values as lists.
//!   Reference columns hold another row's key, as text.
//! - A one-column key is the anchor attribute, so the engine knows a new
//!   row's anchor before export. A composite key is put together by the
//!   connector (the schema declares no anchor attribute): adds are
//!   recorded in flight, and `find_added` looks the row up by its key.
//! - Rows have no DNs; a rename is refused.
//!
//! Invariant: values reach the database only as bound parameters.

mod anchor;
pub mod config;
mod db;
mod export;
mod import;
mod watermark;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use engine::{
    AttributeSchema, CheckReport, Connector, ConnectorError, ConnectorInfo, ExportChange, ExportOp,
    ExportReport, ImportStream, ObjectTypeSchema, RefKind,
};
use rules::{Value, ValueType};
use tokio::sync::{Mutex, OnceCell};

pub use config::{SqlConfig, SqlConfigError};

use db::{connector_error, quote, Db, Kind};
use export::Schema;

/// A validated configuration, with what every part needs from it.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: SqlConfig,
    /// The key columns, in order.
    pub(crate) keys: Vec<String>,
    /// The database the URL names.
    pub(crate) kind: Kind,
    /// The config file's folder, for the SQLite path and secret files.
    pub(crate) base_dir: PathBuf,
}

/// A database as a connected system.
#[derive(Debug)]
pub struct SqlConnector {
    settings: Arc<Settings>,
    /// The pool, opened on first use (so `validate` touches no database)
    /// and again after a failed attempt.
    db: Mutex<Option<Db>>,
    /// PostgreSQL's column types of the tables export writes.
    schema: OnceCell<Arc<Schema>>,
}

impl SqlConnector {
    /// Validates `config`; touches no database.
    pub fn new(config: SqlConfig, base_dir: &Path) -> Result<Self, SqlConfigError> {
        config.validate()?;
        Ok(SqlConnector {
            settings: Arc::new(Settings {
                keys: config.anchor.columns(),
                kind: Kind::of(&config.url.0),
                base_dir: base_dir.to_owned(),
                config,
            }),
            db: Mutex::new(None),
            schema: OnceCell::new(),
        })
    }

    /// The open pool, opening it when there is none.
    async fn db(&self) -> Result<Db, ConnectorError> {
        let mut db = self.db.lock().await;
        if let Some(db) = db.as_ref() {
            return Ok(db.clone());
        }
        let opened = Db::connect(&self.settings.config, &self.settings.base_dir).await?;
        *db = Some(opened.clone());
        Ok(opened)
    }

    async fn schema(&self, db: &Db) -> Result<Arc<Schema>, ConnectorError> {
        let config = &self.settings.config;
        self.schema
            .get_or_try_init(|| async {
                let read = |e| connector_error(&db.shown, "cannot read the table's columns", &e);
                let table = match &config.table {
                    Some(t) => db.table_types(t).await.map_err(read)?,
                    None => Default::default(),
                };
                let child = match &config.multi_valued {
                    Some(c) => db.table_types(&c.table).await.map_err(read)?,
                    None => Default::default(),
                };
                let mut statements = std::collections::HashMap::new();
                if let Some(s) = &config.statements {
                    let configured = [
                        ("add", &s.add),
                        ("update", &s.update),
                        ("delete", &s.delete),
                    ];
                    for (operation, sql) in configured {
                        let Some(sql) = sql else { continue };
                        let plain = |n: usize| db.kind.param(n, None);
                        let (text, _) = export::named_parameters(sql, &plain);
                        let types = db.parameter_types(&text).await.map_err(|e| {
                            connector_error(
                                &db.shown,
                                &format!("the `statements.{operation}` statement does not prepare"),
                                &e,
                            )
                        })?;
                        statements.insert(operation.to_owned(), types);
                    }
                }
                Ok(Arc::new(Schema {
                    table,
                    child,
                    statements,
                }))
            })
            .await
            .cloned()
    }
}

#[async_trait]
impl Connector for SqlConnector {
    fn info(&self) -> ConnectorInfo {
        let config = &self.settings.config;
        let mut attributes: Vec<AttributeSchema> = Vec::new();
        for column in config.references.keys() {
            attributes.push(AttributeSchema {
                name: column.clone(),
                value_type: ValueType::String,
                multi_valued: config.is_child(column),
                reference: Some(RefKind::Anchor),
            });
        }
        for attr in config.multi_valued.iter().flat_map(|c| &c.attributes) {
            if !config.references.contains_key(attr) {
                attributes.push(AttributeSchema {
                    name: attr.clone(),
                    value_type: ValueType::String,
                    multi_valued: true,
                    reference: None,
                });
            }
        }
        ConnectorInfo {
            object_types: vec![ObjectTypeSchema {
                name: config.object_type.clone(),
                anchor_attribute: config.single_key().map(str::to_owned),
                attributes,
            }],
            delta_import: config.delta.is_some(),
            export: config.table.is_some() || config.statements.is_some(),
            has_dn: false,
            // A row holds references as keys, which a rename never changes.
            rewrites_dn_references: false,
            export_batch_size: config.export_batch_size,
        }
    }

    async fn full_import(&self) -> Result<ImportStream, ConnectorError> {
        let db = self.db().await?;
        import::full(Arc::clone(&self.settings), db).await
    }

    async fn delta_import(&self, watermark: Option<&str>) -> Result<ImportStream, ConnectorError> {
        let db = self.db().await?;
        import::delta(Arc::clone(&self.settings), db, watermark).await
    }

    async fn export(&self, batch: Vec<ExportChange>) -> Result<ExportReport, ConnectorError> {
        let db = self.db().await?;
        let schema = self.schema(&db).await?;
        export::apply(&self.settings, &db, &schema, batch).await
    }

    async fn find_added(&self, change: &ExportChange) -> Result<Option<String>, ConnectorError> {
        let ExportOp::Add { attributes } = &change.op else {
            return Ok(None);
        };
        let keys = &self.settings.keys;
        let values: Option<Vec<&Value>> = keys
            .iter()
            .map(|k| attributes.iter().find(|(n, _)| n == k).map(|(_, v)| v))
            .collect();
        let Some(anchor) = values.as_deref().and_then(anchor::encode) else {
            return Ok(None);
        };
        let db = self.db().await?;
        // Where the rows are read: the table, or the query (with statements).
        let found = self
            .settings
            .select_by_anchor(&db, "1", &anchor)
            .await
            .map_err(|e| {
                connector_error(&db.shown, "cannot look up an add of unknown outcome", &e)
            })?;
        Ok(found.map(|_| anchor))
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let db = self.db().await?;
        let mut checks = vec![format!("connected to {}", db.shown)];
        let config = &self.settings.config;
        let source = self.settings.relation();
        let count = db
            .fetch_optional(&format!("SELECT COUNT(*) FROM {source} AS src"), Vec::new())
            .await
            .map_err(|e| connector_error(&db.shown, "cannot read the source", &e))?;
        let rows = count
            .and_then(|r| r.values.into_iter().next())
            .unwrap_or_default();
        checks.push(format!(
            "the source holds {rows} row(s) of {}",
            config.table.as_deref().unwrap_or("the query")
        ));
        if let Some(c) = &config.multi_valued {
            db.fetch_optional(
                &format!("SELECT 1 FROM {} WHERE 1 = 0", quote(&c.table)),
                Vec::new(),
            )
            .await
            .map_err(|e| connector_error(&db.shown, "cannot read the child table", &e))?;
            checks.push(format!("the child table {} is readable", c.table));
        }
        if let Some(config::Delta::ChangeLog { table, .. }) = &config.delta {
            db.fetch_optional(
                &format!("SELECT 1 FROM {} WHERE 1 = 0", quote(table)),
                Vec::new(),
            )
            .await
            .map_err(|e| connector_error(&db.shown, "cannot read the change log", &e))?;
            checks.push(format!("the change log {table} is readable"));
        }
        Ok(CheckReport { checks })
    }
}
