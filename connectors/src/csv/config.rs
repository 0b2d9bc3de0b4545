//! The CSV connector's configuration: what the operator writes under
//! `[connectors.<name>]` with `type = "csv"`, and the validation pass that
//! lists every problem at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The column of a change file that says what happened to the row's object.
pub const CHANGE_TYPE_COLUMN: &str = "changeType";

/// A CSV file as a connected system.
///
/// ```toml
/// [connectors.hr]
/// type = "csv"
/// path = "data/hr.csv"
/// object_type = "worker"
/// anchor = "employeeId"
/// delimiter = ","
/// multi_valued = { groups = ";" }
/// references = { managerId = "employeeId" }
/// columns = ["employeeId", "displayName", "managerId", "groups"]
/// change_file = "data/hr-changes.csv"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// The connected system: read by import, rewritten by export. Relative
    /// to the config file's folder; shown as written in error locations.
    pub path: PathBuf,
    /// The object type of every row (`worker`).
    pub object_type: String,
    /// The key column: its value is each row's anchor.
    pub anchor: String,
    /// The field delimiter, one ASCII character; `,` by default.
    #[serde(default)]
    pub delimiter: Delimiter,
    /// Multi-valued columns, each with the separator between values inside one field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub multi_valued: BTreeMap<String, String>,
    /// Reference columns: each holds another row's value of the column on the
    /// right, which must be the anchor column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub references: BTreeMap<String, String>,
    /// The declared columns, in export order. When set, import reads only
    /// these columns and export writes exactly these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// The source of delta imports: rows with a `changeType` column
    /// (`add`, `modify` or `delete`), appended over time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_file: Option<PathBuf>,
}

/// A field delimiter: one ASCII character other than a quote or a line break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Delimiter(u8);

impl Delimiter {
    /// The delimiter as a byte.
    pub fn byte(self) -> u8 {
        self.0
    }
}

impl Default for Delimiter {
    fn default() -> Self {
        Delimiter(b',')
    }
}

impl TryFrom<String> for Delimiter {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\r' | '\n') => {
                Ok(Delimiter(c as u8))
            }
            _ => Err(format!(
                "invalid delimiter {s:?}: expected one ASCII character other than a quote or a line break"
            )),
        }
    }
}

impl From<Delimiter> for String {
    fn from(d: Delimiter) -> String {
        char::from(d.0).to_string()
    }
}

impl fmt::Display for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", char::from(self.0))
    }
}

/// Every problem found in a [`CsvConfig`], so an operator fixes them in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid csv connector configuration: {}", .problems.join("; "))]
pub struct CsvConfigError {
    /// One sentence per problem, naming the key and what was expected.
    pub problems: Vec<String>,
}

impl CsvConfig {
    /// Checks the keys against each other, collecting every problem.
    pub fn validate(&self) -> Result<(), CsvConfigError> {
        let mut problems = Vec::new();
        if self.path.as_os_str().is_empty() {
            problems.push("`path` is empty: expected the CSV file's path".to_owned());
        }
        if self.object_type.is_empty() {
            problems
                .push("`object_type` is empty: expected a type name such as \"worker\"".to_owned());
        }
        if self.anchor.is_empty() {
            problems.push("`anchor` is empty: expected the key column's name".to_owned());
        }
        for (column, separator) in &self.multi_valued {
            if separator.is_empty() {
                problems.push(format!(
                    "`multi_valued.{column}` is empty: expected the separator between values"
                ));
            }
            if separator.contains(['\r', '\n']) {
                problems.push(format!(
                    "`multi_valued.{column}` = {separator:?}: expected a separator without line breaks"
                ));
            }
            if *column == self.anchor {
                problems.push(format!(
                    "`multi_valued.{column}`: the anchor column holds exactly one value"
                ));
            }
        }
        for (column, target) in &self.references {
            if *target != self.anchor {
                problems.push(format!(
                    "`references.{column}` = {target:?}: expected {:?}, the anchor column (a reference names another row by its anchor)",
                    self.anchor
                ));
            }
            if *column == self.anchor {
                problems.push(format!(
                    "`references.{column}`: the anchor column cannot also be a reference"
                ));
            }
        }
        if let Some(columns) = &self.columns {
            let mut seen = BTreeSet::new();
            for column in columns {
                if column.is_empty() {
                    problems
                        .push("`columns` holds an empty name: expected column names".to_owned());
                } else if !seen.insert(column.as_str()) {
                    problems.push(format!(
                        "`columns` names {column:?} twice: expected each once"
                    ));
                }
            }
            let required = std::iter::once(&self.anchor)
                .chain(self.multi_valued.keys())
                .chain(self.references.keys());
            for column in required {
                if !column.is_empty() && !seen.contains(column.as_str()) {
                    problems.push(format!(
                        "`columns` lacks {column:?}: the anchor, multi-valued and reference columns must be declared"
                    ));
                }
            }
        }
        if let Some(change_file) = &self.change_file {
            if change_file.as_os_str().is_empty() {
                problems.push("`change_file` is empty: expected the change file's path".to_owned());
            } else if *change_file == self.path {
                problems.push(
                    "`change_file` is the same file as `path`: expected a separate file of changes"
                        .to_owned(),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CsvConfigError { problems })
        }
    }

    /// The separator of a multi-valued column, `None` for a single-valued one.
    pub fn separator(&self, column: &str) -> Option<&str> {
        self.multi_valued.get(column).map(String::as_str)
    }

    /// Whether `column` is part of the connector's view of the file: every
    /// column when `columns` is not set, else only the declared ones.
    pub fn is_declared(&self, column: &str) -> bool {
        match &self.columns {
            Some(columns) => columns.iter().any(|c| c == column),
            None => true,
        }
    }
}
