//! Export: applies a batch of changes to the file (read it, change its rows,
//! replace it atomically). Each change succeeds or fails alone; a failed
//! change leaves its row untouched.
//!
//! An add of an anchor already in the file updates that row, so re-exporting
//! a batch after a crash is harmless; a delete of a missing row succeeds.
//!
//! With `dn_column`, an add writes the change's DN, an update with a new DN
//! rewrites the row's DN (a rename or move: the same row, the same anchor),
//! and a DN another row holds (compared without case) is refused. With
//! `object_type_column`, an add writes the change's object type.

use engine::{
    Applied, AttrOp, ConnectorError, ExportChange, ExportFailure, ExportOp, ExportResult,
    FailureKind, RefKind,
};
use rules::Value;

use super::atomic;
use super::config::split_values;
use super::table::Table;
use super::Settings;

/// The table an export run keeps between its batches, so that a large file
/// is parsed once per run instead of once per batch. It is used again only
/// while the file is still the one it wrote.
#[derive(Debug)]
pub(crate) struct Kept {
    table: Table,
}

impl Kept {
    /// The file as it is now, for the run's first batch.
    pub(crate) fn load(settings: &Settings) -> Result<Kept, ConnectorError> {
        Ok(Kept {
            table: Table::load(settings)?,
        })
    }

    /// Leaves the row index beside the file (or removes a stale one), if
    /// the file is still the one the table holds. A failure costs the next
    /// run a parse, nothing more.
    pub(crate) fn leave_index(mut self, settings: &Settings) {
        if !self.table.is_current() {
            return;
        }
        if let Err(e) = self.table.write_index() {
            tracing::warn!(
                "cannot write the row index beside {}: {e}; the next export reads the whole file",
                settings.file.shown
            );
        }
    }
}

/// Applies `batch` in order and rewrites the file if anything changed,
/// starting from the table `kept` by the previous batch when the file has
/// not changed since. `Err` means the file could not be read or replaced:
/// nothing is applied.
pub(crate) fn apply(
    settings: &Settings,
    batch: Vec<ExportChange>,
    kept: Option<Kept>,
) -> Result<(Vec<ExportResult>, Option<Kept>), ConnectorError> {
    let path = &settings.file.path;
    let mut table = match kept {
        Some(kept) if kept.table.is_current() => kept.table,
        _ => Table::load(settings)?,
    };
    let mut results = Vec::with_capacity(batch.len());
    for change in batch {
        let id = change.id;
        let outcome = match apply_change(settings, &mut table, change) {
            Ok(applied) => Ok(applied),
            Err(Refusal::Change(failure)) => Err(failure),
            Err(Refusal::Fatal(error)) => return Err(error),
        };
        results.push(ExportResult { id, outcome });
    }
    if table.changed() {
        let (file, written) = atomic::replace(path, |out| table.write_to(out))
            .map_err(|e| ConnectorError::new(format!("cannot write {}: {e}", path.display())))?;
        if !table.reloads_as_itself() {
            return Ok((results, None));
        }
        // The next batch reads the rows from the file just written.
        table.rebase(file, written);
    }
    // A table no change touched reloads as itself (only changes add
    // columns).
    Ok((results, Some(Kept { table })))
}

/// Why a change was not applied: the change itself, or a problem that
/// fails the whole batch (the file could not be read).
enum Refusal {
    Change(ExportFailure),
    Fatal(ConnectorError),
}

impl From<ExportFailure> for Refusal {
    fn from(failure: ExportFailure) -> Self {
        Refusal::Change(failure)
    }
}

impl From<ConnectorError> for Refusal {
    fn from(error: ConnectorError) -> Self {
        Refusal::Fatal(error)
    }
}

fn apply_change(
    settings: &Settings,
    table: &mut Table,
    change: ExportChange,
) -> Result<Applied, Refusal> {
    let config = &settings.config;
    let located = |anchor: Option<&str>, message: String| match anchor {
        Some(anchor) => format!(
            "{} [{}={anchor}]: {message}",
            settings.file.shown, config.anchor
        ),
        None => format!("{} [change {}]: {message}", settings.file.shown, change.id),
    };
    // Every refusal of a file row is a problem of the change itself: it will
    // fail again as it stands.
    let fail = |anchor: Option<&str>, message: String| {
        ExportFailure::new(FailureKind::Permanent, located(anchor, message))
    };
    let not_found = |anchor: Option<&str>, message: String| {
        ExportFailure::new(FailureKind::NotFound, located(anchor, message))
    };
    let anchor = change.anchor.as_deref();
    if !config.has_type(&change.object_type) {
        let expected = match &config.object_type_column {
            Some(_) => format!(
                "one of {} (`object_types`)",
                config
                    .object_types
                    .iter()
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!(
                "{:?}, the only type in this file",
                config.object_type.as_deref().unwrap_or_default()
            ),
        };
        return Err(fail(
            anchor,
            format!("object type {:?}: expected {expected}", change.object_type),
        )
        .into());
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
                )
                .into());
            }
            // An existing row is updated: the add was exported before a crash.
            let row = table.row_of(&anchor)?;
            let mut draft = Draft::new(settings, table, row)?;
            for (name, value) in attributes {
                draft
                    .set_value(name, value)
                    .map_err(|m| fail(Some(&anchor), m))?;
            }
            if let Some(column) = &config.object_type_column {
                draft.set_identity(column, change.object_type.clone());
            }
            if let Some(column) = &config.dn_column {
                let dn = change.dn.as_deref().unwrap_or_default();
                if dn.trim().is_empty() {
                    return Err(fail(
                        Some(&anchor),
                        format!("an add needs a DN for the column {column:?}: expected a `dn` flow in the outbound rule"),
                    ).into());
                }
                if let Some(taken) = dn_taken(table, row, dn)? {
                    return Err(fail(Some(&anchor), taken).into());
                }
                draft.set_identity(column, dn.to_owned());
            }
            let cells = draft.into_cells();
            table.write_row(row, cells)?;
            Ok(Applied {
                anchor: Some(anchor),
            })
        }
        ExportOp::Update { new_dn, changes } => {
            let label = anchor.or(change.dn.as_deref());
            let (dn_column, new_dn) = match (&config.dn_column, new_dn) {
                (None, Some(dn)) => {
                    return Err(fail(
                        anchor,
                        format!("a rename to {dn:?}: the rows of this file have no DN (no `dn_column` is configured); expected attribute changes only"),
                    ).into())
                }
                (column, new_dn) => (column.as_deref(), new_dn.as_deref()),
            };
            let row = find_row(table, &change)?.ok_or_else(|| {
                not_found(
                    label,
                    match (anchor, change.dn.as_deref()) {
                        (None, None) => "an update needs the row's anchor".to_owned(),
                        (Some(anchor), _) => format!(
                            "no row has {} {anchor:?}: expected an existing row to update",
                            config.anchor
                        ),
                        (None, Some(dn)) => {
                            format!("no row has the DN {dn:?}: expected an existing row to update")
                        }
                    },
                )
            })?;
            let mut draft = Draft::new(settings, table, Some(row))?;
            let anchor = draft.current(&config.anchor).to_owned();
            for (name, op) in changes {
                draft.apply(name, op).map_err(|m| fail(Some(&anchor), m))?;
            }
            if let (Some(column), Some(dn)) = (dn_column, new_dn) {
                if dn.trim().is_empty() {
                    return Err(fail(
                        Some(&anchor),
                        format!("a rename to an empty DN: expected a DN for the column {column:?}"),
                    )
                    .into());
                }
                if let Some(taken) = dn_taken(table, Some(row), dn)? {
                    return Err(fail(Some(&anchor), taken).into());
                }
                draft.set_identity(column, dn.to_owned());
            }
            let new_anchor = draft.current(&config.anchor).to_owned();
            if new_anchor.is_empty() {
                return Err(fail(
                    Some(&anchor),
                    format!("the anchor column {:?} cannot be emptied", config.anchor),
                )
                .into());
            }
            if new_anchor != anchor && table.row_of(&new_anchor)?.is_some() {
                return Err(fail(
                    Some(&anchor),
                    format!("cannot change the anchor to {new_anchor:?}: another row has it"),
                )
                .into());
            }
            let cells = draft.into_cells();
            table.write_row(Some(row), cells)?;
            Ok(Applied {
                anchor: Some(new_anchor),
            })
        }
        ExportOp::Delete => {
            if anchor.is_none() && change.dn.is_none() {
                return Err(fail(None, "a delete needs the row's anchor".to_owned()).into());
            }
            // Already gone is fine: the delete was exported before a crash.
            let found = match find_row(table, &change)? {
                Some(row) => Some(table.anchor_of(row)?),
                None => None,
            };
            if let Some(found) = &found {
                table.delete(found)?;
            }
            Ok(Applied {
                anchor: anchor.map(str::to_owned).or(found),
            })
        }
    }
}

/// The row a change is about: the one holding its anchor, else (for a file
/// with DNs) the one holding its DN.
fn find_row(table: &Table, change: &ExportChange) -> Result<Option<usize>, ConnectorError> {
    match (&change.anchor, &change.dn) {
        (Some(anchor), _) => table.row_of(anchor),
        (None, Some(dn)) => table.row_of_dn(dn),
        (None, None) => Ok(None),
    }
}

/// Why `dn` cannot be `row`'s: a row other than `row` already holds it
/// (compared without regard to case, as directories do).
fn dn_taken(table: &Table, row: Option<usize>, dn: &str) -> Result<Option<String>, ConnectorError> {
    Ok(match table.row_of_dn(dn)? {
        Some(other) if Some(other) != row => Some(format!(
            "the DN {dn:?} is already held by another row ({}={:?}): expected a DN no other row has",
            table.anchor_name(),
            table.anchor_of(other)?
        )),
        _ => None,
    })
}

/// The new cells of one row, computed before anything is written so that a
/// failing change leaves the table as it was.
struct Draft<'a> {
    settings: &'a Settings,
    table: &'a Table,
    /// The row's cells as they are (none for a new row).
    row: Vec<String>,
    cells: Vec<(String, String)>,
}

impl<'a> Draft<'a> {
    fn new(
        settings: &'a Settings,
        table: &'a Table,
        row: Option<usize>,
    ) -> Result<Self, ConnectorError> {
        Ok(Draft {
            settings,
            table,
            row: match row {
                Some(row) => table.cells(row)?,
                None => Vec::new(),
            },
            cells: Vec::new(),
        })
    }

    /// The text a column will hold.
    fn current(&self, name: &str) -> &str {
        match self.cells.iter().rev().find(|(n, _)| n == name) {
            Some((_, text)) => text,
            None => self
                .table
                .column(name)
                .and_then(|column| self.row.get(column))
                .map_or("", String::as_str),
        }
    }

    fn set(&mut self, name: &str, text: String) -> Result<(), String> {
        let config = &self.settings.config;
        if config.dn_column.as_deref() == Some(name) {
            return Err(format!(
                "column {name:?} holds the row's DN (`dn_column`): expected the DN from a `dn` flow, not an attribute"
            ));
        }
        if config.object_type_column.as_deref() == Some(name) {
            return Err(format!(
                "column {name:?} holds the row's object type (`object_type_column`): expected it from the rule's cs_object_type, not an attribute"
            ));
        }
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

    /// Sets the DN or object type column, which no attribute may set.
    fn set_identity(&mut self, name: &str, text: String) {
        self.cells.retain(|(n, _)| n != name);
        self.cells.push((name.to_owned(), text));
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
        let by_dn = self.settings.config.reference_kind(name) == Some(RefKind::Dn);
        // DNs are the same whatever their case and escaping form.
        let same = |a: &str, b: &str| {
            if by_dn {
                rules::dn::same(a, b)
            } else {
                a == b
            }
        };
        let mut items: Vec<String> = split_values(self.current(name), separator, by_dn)
            .into_iter()
            .map(str::to_owned)
            .collect();
        for value in values.iter().flat_map(Value::items) {
            let text = item_text(self.settings, name, Some(separator), value)?;
            if adding {
                if !text.is_empty() && !items.iter().any(|item| same(item, &text)) {
                    items.push(text);
                }
            } else {
                items.retain(|item| !same(item, &text));
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
    let by_dn = settings.config.reference_kind(column) == Some(RefKind::Dn);
    if let Value::Ref(id) = item {
        let expected = match (&settings.config.dn_column, by_dn) {
            (Some(dn), true) => format!("the referenced row's DN ({dn:?})"),
            _ => format!("the referenced row's {:?}", settings.config.anchor),
        };
        return Err(format!(
            "{column:?} holds an unresolved reference (ref:{id}): expected {expected}"
        ));
    }
    let text = item.to_string();
    match separator {
        // In a list of DNs, a separator escaped inside a DN (`CN=a\;b`) is fine.
        Some(separator) if split_values(&text, separator, by_dn).len() > 1 => Err(format!(
            "value {text:?} of {column:?} contains its separator {separator:?}: it would read back as several values"
        )),
        _ => Ok(text),
    }
}
