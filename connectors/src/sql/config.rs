//! The SQL connector's configuration: what the operator writes under
//! `[connectors.<name>]` with `type = "sql"`, and the validation pass that
//! lists every problem at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::common::secret::LITERAL_SECRET;
use crate::common::SecretRef;

/// A database table (or view, or query) as a connected system.
///
/// ```toml
/// [connectors.hrdb]
/// type = "sql"
/// url = "postgres://mvsync@db.corp.example:5432/hr"   # or "sqlite:data/hr.db"
/// password = { env = "MVSYNC_HR_DB_PASSWORD" }
/// object_type = "worker"
/// table = "workers"                  # read by import, written by export
/// anchor = ["company", "employee_id"] # one key column, or several
/// references = { manager_id = "employee_id" }
/// multi_valued = { table = "worker_values", attributes = ["groups"] }
/// delta = { strategy = "watermark", column = "updated_at" }
/// # or: delta = { strategy = "change-log", table = "worker_changes", sequence = "seq", operation = "op" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// `postgres://user@host:port/database?sslmode=…` or `sqlite:path`
    /// (relative to the config file's folder). Never holds the password.
    pub url: DbUrl,
    /// The database password, from the environment or a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// A PEM file of the CA that signed the server's certificate (a private
    /// CA); the system's trusted roots otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The object type of every row (`worker`).
    pub object_type: String,
    /// The table (or view) import reads and export writes, optionally
    /// schema-qualified (`hr.workers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A query import reads instead of `table` (a join, a filtered view).
    /// Export still writes `table`, or runs `statements`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The key column(s): their values are each row's anchor.
    pub anchor: KeyColumns,
    /// Columns that hold another row's key: `column = "<the key column>"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub references: BTreeMap<String, String>,
    /// Multi-valued attributes kept in a child table, one row per value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_valued: Option<ChildTable>,
    /// How a delta import finds what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Delta>,
    /// Statements export runs per operation instead of writing `table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statements: Option<Statements>,
    /// How long to wait for a connection, in seconds (default 10).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// How long one statement may run, in seconds (default 300; PostgreSQL).
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_secs: u64,
    /// The most connections the pool opens (default 4).
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// How many changes one export transaction holds (default 500).
    #[serde(default = "default_batch_size")]
    pub export_batch_size: usize,
}

fn default_connect_timeout() -> u64 {
    10
}
fn default_statement_timeout() -> u64 {
    300
}
fn default_pool_size() -> u32 {
    4
}
fn default_batch_size() -> usize {
    500
}

/// A database URL without a password in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DbUrl(pub String);

/// A URL carrying a password is refused with the literal-secret message, so
/// the configuration's error snippet masks it.
impl<'de> Deserialize<'de> for DbUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let url = String::deserialize(d)?;
        if url_has_password(&url) {
            return Err(serde::de::Error::custom(format!(
                "{LITERAL_SECRET}: remove the password from the URL and give it as password = {{ env = \"VARIABLE\" }} or {{ file = \"path\" }} (and remove it from this file's history)"
            )));
        }
        Ok(DbUrl(url))
    }
}

/// Whether `scheme://user:password@host…` or `?password=` carries a secret.
fn url_has_password(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if lower.contains("password=") {
        return true;
    }
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// One key column or several (a composite key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum KeyColumns {
    /// `anchor = "employee_id"`.
    One(String),
    /// `anchor = ["company", "employee_id"]`.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for KeyColumns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KeyColumns;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key column's name, or a list of key columns")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyColumns, E> {
                Ok(KeyColumns::One(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<KeyColumns, A::Error> {
                let mut columns = Vec::new();
                while let Some(c) = seq.next_element::<String>()? {
                    columns.push(c);
                }
                Ok(KeyColumns::Many(columns))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl KeyColumns {
    /// The key columns in order.
    pub fn columns(&self) -> Vec<String> {
        match self {
            KeyColumns::One(c) => vec![c.clone()],
            KeyColumns::Many(cs) => cs.clone(),
        }
    }
}

/// A child table holding multi-valued attributes: the key columns (named as
/// in the main table), a column naming the attribute and a value column.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChildTable {
    /// The child table.
    pub table: String,
    /// The attributes it holds (`groups`, `proxyAddresses`).
    pub attributes: Vec<String>,
    /// The column naming the attribute (default `attribute`).
    #[serde(default = "default_attribute_column")]
    pub attribute_column: String,
    /// The column holding one value (default `value`).
    #[serde(default = "default_value_column")]
    pub value_column: String,
}

fn default_attribute_column() -> String {
    "attribute".to_owned()
}
fn default_value_column() -> String {
    "value".to_owned()
}

/// The two delta strategies of MIM's generic SQL connector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "strategy", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Delta {
    /// A column every insert and update raises (a timestamp or a version):
    /// `delta = { strategy = "watermark", column = "updated_at" }`. Sees
    /// adds and updates; a delete is seen by the next full import.
    Watermark {
        /// The column.
        column: String,
        /// How far below the mark a delta reads again (seconds for a
        /// timestamp column, units for a number; 0 by default), so that a
        /// row committed late with a value below one already imported is
        /// still seen. Rows read again that did not change stage nothing.
        #[serde(default)]
        overlap: i64,
    },
    /// A table the application (or a trigger) appends one row to per
    /// change: the key columns, an operation and an increasing sequence.
    /// `delta = { strategy = "change-log", table = "worker_changes" }`.
    ChangeLog {
        /// The change-log table.
        table: String,
        /// Its increasing sequence column (default `seq`).
        #[serde(default = "default_sequence")]
        sequence: String,
        /// Its operation column (default `operation`): `insert`/`add`/`I`,
        /// `update`/`modify`/`U`, `delete`/`D`.
        #[serde(default = "default_operation")]
        operation: String,
    },
}

fn default_sequence() -> String {
    "seq".to_owned()
}
fn default_operation() -> String {
    "operation".to_owned()
}

/// Statements (or stored-procedure calls) export runs instead of writing
/// the table. `:name` is the value of attribute `name` (a key column's for
/// the key), bound as a parameter, never spliced into the text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Statements {
    /// Runs for an add, with every attribute of the new object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<String>,
    /// Runs for an update: the key and the changed attributes; an attribute
    /// the update does not change is bound as null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
    /// Runs for a delete, with the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
}

/// Every problem found in a [`SqlConfig`], so an operator fixes them in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid sql connector configuration: {}", .problems.join("; "))]
pub struct SqlConfigError {
    /// One sentence per problem, naming the key and what was expected.
    pub problems: Vec<String>,
}

impl SqlConfig {
    /// Checks the keys against each other, collecting every problem.
    pub fn validate(&self) -> Result<(), SqlConfigError> {
        let mut problems = Vec::new();
        let url = self.url.0.as_str();
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite:"))
        {
            problems.push(
                "`url`: expected postgres://user@host:port/database or sqlite:path".to_owned(),
            );
        }
        if self.object_type.is_empty() {
            problems.push("`object_type` is empty: expected the rows' object type".to_owned());
        }
        match (&self.table, &self.query) {
            (None, None) => problems.push(
                "neither `table` nor `query` is set: expected the table import reads (or a query)"
                    .to_owned(),
            ),
            (None, Some(_)) if self.statements.is_none() => problems.push(
                "`query` without `table` or `statements`: export needs the table it writes, or statements to run"
                    .to_owned(),
            ),
            _ => {}
        }
        let keys = self.anchor.columns();
        if keys.is_empty() || keys.iter().any(String::is_empty) {
            problems.push("`anchor`: expected the key column, or a list of key columns".to_owned());
        }
        for (column, target) in &self.references {
            if keys.len() != 1 {
                problems.push(format!(
                    "`references.{column}`: references need a one-column key; this connector's key has {} columns",
                    keys.len()
                ));
            } else if *target != keys[0] {
                problems.push(format!(
                    "`references.{column}` = {target:?}: expected {:?}, the key column (a reference holds another row's key)",
                    keys[0]
                ));
            }
        }
        if let Some(child) = &self.multi_valued {
            if child.attributes.is_empty() {
                problems.push("`multi_valued.attributes` is empty: expected the attributes the child table holds".to_owned());
            }
            for a in &child.attributes {
                if keys.contains(a) {
                    problems.push(format!(
                        "`multi_valued.attributes`: {a:?} is a key column, which holds one value"
                    ));
                }
            }
        }
        if let Some(Delta::ChangeLog { table, .. }) = &self.delta {
            if table.is_empty() {
                problems.push("`delta.table` is empty: expected the change-log table".to_owned());
            }
        }
        if self.pool_size == 0 {
            problems.push("`pool_size` is 0: expected at least one connection".to_owned());
        }
        if self.export_batch_size == 0 {
            problems.push(
                "`export_batch_size` is 0: expected at least one change per transaction".to_owned(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SqlConfigError { problems })
        }
    }

    /// Whether the anchor is one column the engine can compute before
    /// export (a composite key is put together by the connector).
    pub fn single_key(&self) -> Option<&str> {
        match &self.anchor {
            KeyColumns::One(c) => Some(c),
            KeyColumns::Many(cs) if cs.len() == 1 => Some(&cs[0]),
            KeyColumns::Many(_) => None,
        }
    }

    /// Whether `attribute` lives in the child table.
    pub fn is_child(&self, attribute: &str) -> bool {
        self.multi_valued
            .as_ref()
            .is_some_and(|c| c.attributes.iter().any(|a| a == attribute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused() {
        assert!(url_has_password("postgres://u:hunter2@h/db"));
        assert!(url_has_password("postgres://h/db?user=u&password=x"));
        assert!(!url_has_password("postgres://u@h:5432/db"));
        assert!(!url_has_password("sqlite:data/hr.db"));
        assert!(!url_has_password("postgres://h:5432/db"));
    }
}
