//! Export: applies a batch of changes to the file (read it, change its rows,
//! replace it atomically). Each change succeeds or fails alone; a failed
//! change leaves its row untouched.
//!
//! An add of an anchor already in the file updates that row, so re-exporting
//! a batch after a crash is harmless; a delete of a missing row succeeds.

use engine::{Applied, AttrOp, ConnectorError, ExportChange, ExportOp, ExportResult, ItemError};
use rules::Value;

use super::atomic;
use super::table::Table;
use super::Settings;

/// Applies `batch` in order and rewrites the file if anything changed.
/// `Err` means the file could not be read or replaced: nothing is applied.
pub(crate) fn apply(
    settings: &Settings,
    batch: Vec<ExportChange>,
) -> Result<Vec<ExportResult>, ConnectorError> {
    let mut table = Table::load(settings)?;
    let results = batch
        .into_iter()
        .map(|change| ExportResult {
            id: change.id,
            outcome: apply_change(settings, &mut table, change),
        })
        .collect();
    if table.changed() {
        let delimiter = settings.config.delimiter.byte();
        atomic::replace(&settings.file.path, |out| table.write_to(out, delimiter)).map_err(
            |e| {
                ConnectorError::new(format!(
                    "cannot write {}: {e}",
                    settings.file.path.display()
                ))
            },
        )?;
    }
    Ok(results)
}

fn apply_change(
    settings: &Settings,
    table: &mut Table,
    change: ExportChange,
) -> Result<Applied, ItemError> {
    let config = &settings.config;
    let fail = |anchor: Option<&str>, message: String| ItemError {
        location: match anchor {
            Some(anchor) => format!("{} [{}={anchor}]", settings.file.shown, config.anchor),
            None => format!("{} [change {}]", settings.file.shown, change.id),
        },
        message,
    };
    let anchor = change.anchor.as_deref();
    if change.object_type != config.object_type {
        return Err(fail(
            anchor,
            format!(
                "object type {:?}: expected {:?}, the only type in this file",
                change.object_type, config.object_type
            ),
        ));
    }
    match &change.op {
        ExportOp::Add { attributes } => {
            let anchor = match attributes
                .iter()
                .rev()
                .find(|(name, _)| *name == config.anchor)
            {
                Some((_, value)) => {
                    render(settings, &config.anchor, value).map_err(|m| fail(None, m))?
                }
                None => String::new(),
            };
            if anchor.is_empty() {
                return Err(fail(
                    None,
                    format!(
                        "an add needs a value for the anchor column {:?}",
                        config.anchor
                    ),
                ));
            }
            // An existing row is updated: the add was exported before a crash.
            let row = table.row_of(&anchor);
            let mut draft = Draft::new(settings, table, row);
            for (name, value) in attributes {
                draft
                    .set_value(name, value)
                    .map_err(|m| fail(Some(&anchor), m))?;
            }
            let cells = draft.into_cells();
            table.write_row(row, cells);
            Ok(Applied {
                anchor: Some(anchor),
            })
        }
        ExportOp::Update {
            new_dn: Some(dn), ..
        } => Err(fail(
            anchor,
            format!("a rename to {dn:?}: a CSV row has no DN; expected attribute changes only"),
        )),
        ExportOp::Update {
            new_dn: None,
            changes,
        } => {
            let anchor =
                anchor.ok_or_else(|| fail(None, "an update needs the row's anchor".to_owned()))?;
            let row = table.row_of(anchor).ok_or_else(|| {
                fail(
                    Some(anchor),
                    format!(
                        "no row has {} {anchor:?}: expected an existing row to update",
                        config.anchor
                    ),
                )
            })?;
            let mut draft = Draft::new(settings, table, Some(row));
            for (name, op) in changes {
                draft.apply(name, op).map_err(|m| fail(Some(anchor), m))?;
            }
            let new_anchor = draft.current(&config.anchor).to_owned();
            if new_anchor.is_empty() {
                return Err(fail(
                    Some(anchor),
                    format!("the anchor column {:?} cannot be emptied", config.anchor),
                ));
            }
            if new_anchor != anchor && table.row_of(&new_anchor).is_some() {
                return Err(fail(
                    Some(anchor),
                    format!("cannot change the anchor to {new_anchor:?}: another row has it"),
                ));
            }
            let cells = draft.into_cells();
            table.write_row(Some(row), cells);
            Ok(Applied {
                anchor: Some(new_anchor),
            })
        }
        ExportOp::Delete => {
            let anchor =
                anchor.ok_or_else(|| fail(None, "a delete needs the row's anchor".to_owned()))?;
            // Already gone is fine: the delete was exported before a crash.
            table.delete(anchor);
            Ok(Applied {
                anchor: Some(anchor.to_owned()),
            })
        }
    }
}

/// The new cells of one row, computed before anything is written so that a
/// failing change leaves the table as it was.
struct Draft<'a> {
    settings: &'a Settings,
    table: &'a Table,
    row: Option<usize>,
    cells: Vec<(String, String)>,
}

impl<'a> Draft<'a> {
    fn new(settings: &'a Settings, table: &'a Table, row: Option<usize>) -> Self {
        Draft {
            settings,
            table,
            row,
            cells: Vec::new(),
        }
    }

    /// The text a column will hold.
    fn current(&self, name: &str) -> &str {
        match self.cells.iter().rev().find(|(n, _)| n == name) {
            Some((_, text)) => text,
            None => self.row.map_or("", |row| self.table.cell(row, name)),
        }
    }

    fn set(&mut self, name: &str, text: String) -> Result<(), String> {
        if !text.is_empty() && !self.table.accepts(name) {
            return Err(match &self.settings.config.columns {
                Some(columns) if !name.is_empty() => format!(
                    "column {name:?} is not declared in `columns`; expected one of: {}",
                    columns.join(", ")
                ),
                _ => "an attribute without a name: expected a column name".to_owned(),
            });
        }
        self.cells.retain(|(n, _)| n != name);
        self.cells.push((name.to_owned(), text));
        Ok(())
    }

    fn set_value(&mut self, name: &str, value: &Value) -> Result<(), String> {
        let text = render(self.settings, name, value)?;
        self.set(name, text)
    }

    fn apply(&mut self, name: &str, op: &AttrOp) -> Result<(), String> {
        let (values, adding) = match op {
            AttrOp::Replace(value) => return self.set_value(name, value),
            AttrOp::Clear => return self.set(name, String::new()),
            AttrOp::Add(values) => (values, true),
            AttrOp::Remove(values) => (values, false),
        };
        let Some(separator) = self.settings.config.separator(name) else {
            return Err(format!(
                "cannot add or remove values of {name:?}: it holds one value (it is not in `multi_valued`); expected a replace"
            ));
        };
        let mut items: Vec<String> = self
            .current(name)
            .split(separator)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect();
        for value in values.iter().flat_map(Value::items) {
            let text = item_text(self.settings, name, Some(separator), value)?;
            if adding {
                if !text.is_empty() && !items.contains(&text) {
                    items.push(text);
                }
            } else {
                items.retain(|item| *item != text);
            }
        }
        self.set(name, items.join(separator))
    }

    fn into_cells(self) -> Vec<(String, String)> {
        self.cells
    }
}

/// A value as the text of its cell: `Value`'s rendering, the values of a
/// multi-valued column joined with its separator, null as empty.
fn render(settings: &Settings, column: &str, value: &Value) -> Result<String, String> {
    let items = value.items();
    match settings.config.separator(column) {
        None => match items {
            [] => Ok(String::new()),
            [one] => item_text(settings, column, None, one),
            many => Err(format!(
                "{column:?} holds one value (it is not in `multi_valued`); got {} values",
                many.len()
            )),
        },
        Some(separator) => {
            let mut texts = Vec::with_capacity(items.len());
            for item in items {
                let text = item_text(settings, column, Some(separator), item)?;
                if !text.is_empty() {
                    texts.push(text);
                }
            }
            Ok(texts.join(separator))
        }
    }
}

fn item_text(
    settings: &Settings,
    column: &str,
    separator: Option<&str>,
    item: &Value,
) -> Result<String, String> {
    if let Value::Ref(id) = item {
        return Err(format!(
            "{column:?} holds an unresolved reference (ref:{id}): expected the referenced row's {:?}",
            settings.config.anchor
        ));
    }
    let text = item.to_string();
    match separator {
        Some(separator) if text.contains(separator) => Err(format!(
            "value {text:?} of {column:?} contains its separator {separator:?}: it would read back as several values"
        )),
        _ => Ok(text),
    }
}
