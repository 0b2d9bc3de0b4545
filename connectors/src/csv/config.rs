//! The CSV connector's configuration: what the operator writes under
//! `[connectors.<name>]` with `type = "csv"`, and the validation pass that
//! lists every problem at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use engine::RefKind;
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
///
/// A file standing in for a directory: rows have distinguished names and
/// several object types, and references name other rows by DN.
///
/// ```toml
/// [connectors.corp]
/// type = "csv"
/// path = "state/corp.csv"
/// anchor = "id"
/// dn_column = "dn"                          # each row's DN; renames rewrite it
/// object_type_column = "objectType"         # each row's type, one of:
/// object_types = ["user", "group"]
/// multi_valued = { members = ";" }
/// references = { manager = "dn", members = "dn" }   # by DN (or by the anchor column)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// The connected system: read by import, rewritten by export. Relative
    /// to the config file's folder; shown as written in error locations.
    pub path: PathBuf,
    /// The object type of every row (`worker`). Required unless
    /// `object_type_column` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    /// The column naming each row's object type, one of `object_types`.
    /// The column is not an attribute: export writes it from the change's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type_column: Option<String>,
    /// The object types `object_type_column` may hold (required with it).
    /// Every type has the same columns and the same anchor column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_types: Vec<String>,
    /// The key column: its value is each row's anchor.
    pub anchor: String,
    /// The column holding each row's distinguished name. The file then has
    /// DNs: the column is not an attribute, references may name rows by DN
    /// (`references = { manager = "<dn_column>" }`), and a changed DN is
    /// exported as a rename of the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn_column: Option<String>,
    /// The field delimiter, one ASCII character; `,` by default.
    #[serde(default)]
    pub delimiter: Delimiter,
    /// Multi-valued columns, each with the separator between values inside one field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub multi_valued: BTreeMap<String, String>,
    /// Reference columns: each holds another row's value of the column on the
    /// right, which must be the anchor column or the `dn_column`.
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
    /// For a file people open in a spreadsheet: a value a spreadsheet would
    /// run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
    /// carriage return) is written with a leading `'`, which import takes
    /// off again (see `csv::formula`). Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escape_formulas: bool,
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
        self.validate_types(&mut problems);
        if self.anchor.is_empty() {
            problems.push("`anchor` is empty: expected the key column's name".to_owned());
        }
        self.validate_special_columns(&mut problems);
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
            if separator.contains('\\') && self.reference_kind(column) == Some(RefKind::Dn) {
                problems.push(format!(
                    "`multi_valued.{column}` = {separator:?}: a list of DNs cannot be separated by a backslash, which escapes characters inside DNs"
                ));
            }
            if *column == self.anchor {
                problems.push(format!(
                    "`multi_valued.{column}`: the anchor column holds exactly one value"
                ));
            }
        }
        for (column, target) in &self.references {
            let by_dn = self.dn_column.as_ref().is_some_and(|dn| dn == target);
            if *target != self.anchor && !by_dn {
                let expected = match &self.dn_column {
                    Some(dn) => format!(
                        "{:?}, the anchor column, or {dn:?}, the `dn_column` (a reference names another row by its anchor or its DN)",
                        self.anchor
                    ),
                    None => format!(
                        "{:?}, the anchor column (a reference names another row by its anchor; with `dn_column` set, by its DN too)",
                        self.anchor
                    ),
                };
                problems.push(format!(
                    "`references.{column}` = {target:?}: expected {expected}"
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
                .chain(&self.dn_column)
                .chain(&self.object_type_column)
                .chain(self.multi_valued.keys())
                .chain(self.references.keys());
            for column in required {
                if !column.is_empty() && !seen.contains(column.as_str()) {
                    problems.push(format!(
                        "`columns` lacks {column:?}: the anchor, DN, object type, multi-valued and reference columns must be declared"
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

    /// `object_type`, or `object_type_column` with `object_types`.
    fn validate_types(&self, problems: &mut Vec<String>) {
        match (&self.object_type, &self.object_type_column) {
            (None, None) => problems.push(
                "`object_type` is missing: expected a type name such as \"worker\" (or `object_type_column` naming the column that holds each row's type, with `object_types`)"
                    .to_owned(),
            ),
            (Some(_), Some(_)) => problems.push(
                "`object_type` and `object_type_column` are both set: expected one, a type for every row or a column holding each row's type"
                    .to_owned(),
            ),
            (Some(t), None) if t.is_empty() => problems
                .push("`object_type` is empty: expected a type name such as \"worker\"".to_owned()),
            _ => {}
        }
        match (&self.object_type_column, self.object_types.is_empty()) {
            (Some(_), true) => problems.push(
                "`object_types` is missing: `object_type_column` needs the types its rows may hold, such as [\"user\", \"group\"]"
                    .to_owned(),
            ),
            (None, false) => problems.push(
                "`object_types` is set without `object_type_column`: expected `object_type_column` naming the column that holds each row's type"
                    .to_owned(),
            ),
            _ => {}
        }
        let mut seen = BTreeSet::new();
        for name in &self.object_types {
            if name.is_empty() {
                problems.push("`object_types` holds an empty name: expected type names".to_owned());
            } else if !seen.insert(name.as_str()) {
                problems.push(format!(
                    "`object_types` names {name:?} twice: expected each once"
                ));
            }
        }
    }

    /// The DN and object type columns hold what no other column may.
    fn validate_special_columns(&self, problems: &mut Vec<String>) {
        let special = [
            ("dn_column", &self.dn_column, "the DN"),
            (
                "object_type_column",
                &self.object_type_column,
                "the object type",
            ),
        ];
        for (key, column, what) in special {
            let Some(column) = column else { continue };
            if column.is_empty() {
                problems.push(format!("`{key}` is empty: expected a column name"));
                continue;
            }
            if *column == self.anchor {
                problems.push(format!(
                    "`{key}` = {column:?} is the anchor column: expected a separate column for {what}"
                ));
            }
            if self.multi_valued.contains_key(column) {
                problems.push(format!(
                    "`multi_valued.{column}`: the column holds {what}, exactly one value"
                ));
            }
            if self.references.contains_key(column) {
                problems.push(format!(
                    "`references.{column}`: the column holds {what}, not a reference"
                ));
            }
        }
        if let (Some(dn), Some(ty)) = (&self.dn_column, &self.object_type_column) {
            if !dn.is_empty() && dn == ty {
                problems.push(format!(
                    "`dn_column` and `object_type_column` are both {dn:?}: expected two columns"
                ));
            }
        }
    }

    /// The object types rows may have: `object_types` with a type column,
    /// else the one `object_type`.
    pub fn types(&self) -> Vec<&str> {
        match (&self.object_type_column, &self.object_type) {
            (Some(_), _) => self.object_types.iter().map(String::as_str).collect(),
            (None, Some(t)) => vec![t.as_str()],
            (None, None) => Vec::new(),
        }
    }

    /// Whether rows may have object type `name`.
    pub fn has_type(&self, name: &str) -> bool {
        self.types().contains(&name)
    }

    /// The separator of a multi-valued column, `None` for a single-valued one.
    pub fn separator(&self, column: &str) -> Option<&str> {
        self.multi_valued.get(column).map(String::as_str)
    }

    /// How a reference column names the referenced row: by its DN when its
    /// target is the `dn_column`, else by its anchor. `None` for other columns.
    pub fn reference_kind(&self, column: &str) -> Option<RefKind> {
        let target = self.references.get(column)?;
        Some(if self.dn_column.as_ref() == Some(target) {
            RefKind::Dn
        } else {
            RefKind::Anchor
        })
    }

    /// Whether `column` holds the DN or the object type: a part of the row's
    /// identity, never an attribute.
    pub fn is_special(&self, column: &str) -> bool {
        self.dn_column.as_deref() == Some(column)
            || self.object_type_column.as_deref() == Some(column)
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

/// Splits a multi-valued cell into its values, dropping empty pieces. In a
/// list of DNs (`dn_aware`), a separator escaped with a backslash (RFC 4514:
/// `CN=a\;b`) is part of a DN, not a boundary.
pub(crate) fn split_values<'a>(text: &'a str, separator: &str, dn_aware: bool) -> Vec<&'a str> {
    let mut pieces = Vec::new();
    if separator.is_empty() {
        if !text.is_empty() {
            pieces.push(text);
        }
        return pieces;
    }
    let mut start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        if dn_aware && bytes[i] == b'\\' {
            // Skip the escaped character, whatever its width.
            i += 1;
            i += text[i..].chars().next().map_or(0, char::len_utf8);
            continue;
        }
        if text[i..].starts_with(separator) {
            pieces.push(&text[start..i]);
            i += separator.len();
            start = i;
            continue;
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    pieces.push(&text[start..]);
    pieces.retain(|p| !p.is_empty());
    pieces
}
