//! Turns records into rows: the header's columns, then each row checked
//! (quoting, field count, UTF-8, anchor; for an object, its type and DN)
//! with the file, line and column of every problem, then converted to
//! attributes.

use engine::{ConnectorError, ImportedObject, ItemError, RefKind};
use rules::Value;

use super::config::{split_values, CsvConfig, CHANGE_TYPE_COLUMN};
use super::reader::{Record, RecordReader};

/// What a column contributes to an imported object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    /// Nothing: not declared in `columns`, the change file's `changeType`,
    /// or the DN or object type column (part of the object, not attributes).
    Skip,
    /// One string value.
    Single,
    /// A list of strings split on this separator (respecting DN escapes in
    /// a list of DNs).
    Multi { separator: String, dn_aware: bool },
}

/// The header row of a file.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// The column names, in file order.
    pub(crate) names: Vec<String>,
    /// The anchor column's index.
    pub(crate) anchor: usize,
    /// The `changeType` column's index, in a change file.
    pub(crate) change_type: Option<usize>,
    /// The `dn_column`'s index, when configured.
    pub(crate) dn: Option<usize>,
    /// The `object_type_column`'s index, when configured.
    pub(crate) object_type: Option<usize>,
    columns: Vec<Column>,
    /// Cells were written with `escape_formulas`: take the quote off.
    formulas: bool,
}

/// One well-formed row.
#[derive(Debug)]
pub(crate) struct Row {
    /// Every field, in header order.
    pub(crate) cells: Vec<String>,
    /// The record's first line.
    pub(crate) line: u64,
}

impl Header {
    /// Reads the header row: `None` for a file without one (empty). A header
    /// that is malformed, repeats a name or lacks the anchor column (or a
    /// configured DN or object type column, or, with `change_file`, the
    /// `changeType` column) is a fatal error naming the file, line and column.
    pub(crate) fn read(
        reader: &mut RecordReader,
        shown: &str,
        config: &CsvConfig,
        change_file: bool,
    ) -> Result<Option<Header>, ConnectorError> {
        let Some(record) = reader.next_record()? else {
            return Ok(None);
        };
        let fatal = |offset: usize, what: &str| {
            ConnectorError::new(format!("{}: {what}", record.location(shown, offset)))
        };
        if let Some(quote) = record.unterminated_quote() {
            return Err(fatal(
                quote,
                "unterminated quoted column name: expected a closing quote",
            ));
        }
        if let Some(bad) = record.first_invalid_utf8() {
            return Err(fatal(
                bad,
                "invalid UTF-8 in the header row: expected UTF-8 text",
            ));
        }
        let mut names: Vec<String> = Vec::with_capacity(record.fields.len());
        for (index, field) in record.fields.iter().enumerate() {
            let name = String::from_utf8_lossy(field).into_owned();
            if name.is_empty() {
                return Err(fatal(
                    record.field_start(index),
                    "empty column name: expected a name for every column of the header row",
                ));
            }
            if let Some(first) = names.iter().position(|n| *n == name) {
                return Err(fatal(
                    record.field_start(index),
                    &format!(
                        "duplicate column {name:?} (also column {} of the header): expected each column name once",
                        first + 1
                    ),
                ));
            }
            names.push(name);
        }
        let line = record.line();
        let find = |wanted: &str, what: &str| {
            names.iter().position(|n| n == wanted).ok_or_else(|| {
                ConnectorError::new(format!(
                    "{shown}:{line}: expected a column {wanted:?} ({what}); found columns: {}",
                    names.join(", ")
                ))
            })
        };
        let anchor = find(&config.anchor, "the anchor")?;
        let dn = match &config.dn_column {
            Some(column) => Some(find(column, "each row's DN, `dn_column`")?),
            None => None,
        };
        let object_type = match &config.object_type_column {
            Some(column) => Some(find(
                column,
                "each row's object type, `object_type_column`",
            )?),
            None => None,
        };
        let change_type = if change_file {
            Some(find(CHANGE_TYPE_COLUMN, "add, modify or delete")?)
        } else {
            None
        };
        let columns: Vec<Column> = names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                if Some(index) == change_type
                    || Some(index) == dn
                    || Some(index) == object_type
                    || !config.is_declared(name)
                {
                    Column::Skip
                } else if let Some(separator) = config.separator(name) {
                    Column::Multi {
                        separator: separator.to_owned(),
                        dn_aware: config.reference_kind(name) == Some(RefKind::Dn),
                    }
                } else {
                    Column::Single
                }
            })
            .collect();
        let ignored: Vec<&str> = names
            .iter()
            .zip(&columns)
            .filter(|(name, column)| {
                **column == Column::Skip
                    && name.as_str() != CHANGE_TYPE_COLUMN
                    && !config.is_special(name)
            })
            .map(|(name, _)| name.as_str())
            .collect();
        if !ignored.is_empty() {
            tracing::warn!(file = shown, columns = ?ignored, "ignoring columns not declared in `columns`");
        }
        Ok(Some(Header {
            names,
            anchor,
            change_type,
            dn,
            object_type,
            columns,
            formulas: config.escape_formulas,
        }))
    }

    /// The name of column `index`, for messages.
    pub(crate) fn name(&self, index: usize) -> &str {
        self.names.get(index).map_or("?", String::as_str)
    }

    /// Checks one record: its quoting, its field count, its encoding and its
    /// anchor; each problem is an item error at the place it was found.
    pub(crate) fn row(&self, record: &Record<'_>, shown: &str) -> Result<Row, ItemError> {
        let cells = self.cells(record, shown)?;
        Ok(Row {
            cells: cells.into_iter().map(str::to_owned).collect(),
            line: record.line(),
        })
    }

    /// [`Header::row`]'s cells, borrowed from the record.
    pub(crate) fn cells<'r>(
        &self,
        record: &'r Record<'_>,
        shown: &str,
    ) -> Result<Vec<&'r str>, ItemError> {
        let bad = |offset: usize, message: String| ItemError {
            location: record.location(shown, offset),
            message,
        };
        if let Some(quote) = record.unterminated_quote() {
            let column = self.name(record.field_at(quote));
            return Err(bad(
                quote,
                format!("unterminated quoted field in column {column:?}: expected a closing quote"),
            ));
        }
        let expected = self.names.len();
        let found = record.fields.len();
        if found != expected {
            let (offset, detail) = if found > expected {
                (
                    record.field_start(expected),
                    "; the first surplus field starts here",
                )
            } else {
                (record.end(), "")
            };
            return Err(bad(
                offset,
                format!("expected {expected} fields as in the header row, found {found}{detail}"),
            ));
        }
        if let Some(offset) = record.first_invalid_utf8() {
            let column = self.name(record.field_at(offset));
            return Err(bad(
                offset,
                format!("invalid UTF-8 in column {column:?}: expected UTF-8 text"),
            ));
        }
        let mut cells = Vec::with_capacity(found);
        for (index, field) in record.fields.iter().enumerate() {
            // The whole record was valid UTF-8 and unquoting removes only ASCII quotes.
            let text = std::str::from_utf8(field).map_err(|e| {
                bad(
                    record.field_start(index) + e.valid_up_to(),
                    format!(
                        "invalid UTF-8 in column {:?}: expected UTF-8 text",
                        self.name(index)
                    ),
                )
            })?;
            cells.push(if self.formulas {
                super::formula::unescape(text)
            } else {
                text
            });
        }
        if cells[self.anchor].is_empty() {
            return Err(bad(
                record.field_start(self.anchor),
                format!(
                    "empty anchor: expected a value in column {:?}",
                    self.name(self.anchor)
                ),
            ));
        }
        Ok(cells)
    }

    /// The attributes of a well-formed row, in header order: declared
    /// columns only, the anchor included, empty cells (null) omitted,
    /// multi-valued cells split with empty pieces dropped.
    pub(crate) fn attributes(&self, cells: Vec<String>) -> Vec<(String, Value)> {
        let mut attributes = Vec::with_capacity(cells.len());
        for ((cell, column), name) in cells.into_iter().zip(&self.columns).zip(&self.names) {
            let value = match column {
                Column::Skip => continue,
                _ if cell.is_empty() => continue,
                Column::Single => Value::Str(cell),
                Column::Multi {
                    separator,
                    dn_aware,
                } => Value::list(
                    split_values(&cell, separator, *dn_aware)
                        .into_iter()
                        .map(Value::str),
                ),
            };
            if !value.is_null() {
                attributes.push((name.clone(), value));
            }
        }
        attributes
    }

    /// The object a well-formed row describes: its anchor, its type (from
    /// the object type column, which must hold one of `object_types`, or
    /// the configured `object_type`), its DN (from the DN column, which
    /// must not be empty) and its attributes. A bad type or DN is an item
    /// error at its cell.
    pub(crate) fn object(
        &self,
        record: &Record<'_>,
        row: Row,
        shown: &str,
        config: &CsvConfig,
    ) -> Result<ImportedObject, ItemError> {
        let bad = |index: usize, message: String| ItemError {
            location: record.location(shown, record.field_start(index)),
            message,
        };
        let object_type = match self.object_type {
            Some(index) => {
                let cell = row.cells.get(index).map_or("", String::as_str);
                if !config.has_type(cell) {
                    let what = if cell.is_empty() {
                        "empty object type".to_owned()
                    } else {
                        format!("unknown object type {cell:?}")
                    };
                    return Err(bad(
                        index,
                        format!(
                            "{what}: expected one of {} in column {:?} (`object_types`)",
                            config.object_types.join(", "),
                            self.name(index)
                        ),
                    ));
                }
                cell.to_owned()
            }
            None => config.object_type.clone().unwrap_or_default(),
        };
        let dn = match self.dn {
            Some(index) => {
                let cell = row.cells.get(index).map_or("", String::as_str);
                if cell.trim().is_empty() {
                    return Err(bad(
                        index,
                        format!(
                            "empty DN: expected the object's distinguished name in column {:?}",
                            self.name(index)
                        ),
                    ));
                }
                Some(cell.to_owned())
            }
            None => None,
        };
        Ok(ImportedObject {
            anchor: row.cells[self.anchor].clone(),
            object_type,
            dn,
            attributes: self.attributes(row.cells),
        })
    }
}
