//! The target file in memory while an export batch is applied: its columns,
//! its rows in file order, and indexes from anchor (and DN) to row.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::io::{self, Write};

use engine::ConnectorError;

use super::reader::{RecordReader, Start};
use super::rows::Header;
use super::Settings;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A CSV file as rows of text cells.
#[derive(Debug)]
pub(crate) struct Table {
    /// The file's header (or the declared columns), then the columns added by
    /// this batch.
    columns: Vec<String>,
    position: HashMap<String, usize>,
    /// `columns[fixed..]` were added by this batch; they are written sorted.
    fixed: usize,
    /// Whether `columns` is configured (then no column is ever added).
    declared: bool,
    anchor: usize,
    /// The DN column, with `dn_column`.
    dn: Option<usize>,
    /// Rows in file order; `None` once deleted.
    rows: Vec<Option<Row>>,
    by_anchor: KeyIndex,
    /// Normalized DN → the first row holding it (DNs compare without case),
    /// built on first use: a batch that adds nothing, renames nothing and
    /// finds its rows by anchor never normalizes the file's DNs (a third of
    /// loading a 100k-row file).
    by_dn: OnceCell<KeyIndex>,
    bom: bool,
    changed: bool,
    /// A DN left the index: with duplicate DNs in the file, loading it again
    /// could index another row than this table does.
    dn_unindexed: bool,
}

impl Table {
    /// Reads the target file. A missing or empty file is an empty system; a
    /// malformed one is a fatal error (rewriting it would lose rows).
    pub(crate) fn load(settings: &Settings) -> Result<Table, ConnectorError> {
        let config = &settings.config;
        let source = &settings.file;
        let (columns, fixed) = match &config.columns {
            Some(columns) => (columns.clone(), columns.len()),
            // A new file starts with its anchor, object type and DN
            // columns; the rest come sorted.
            None => {
                let first: Vec<String> = std::iter::once(&config.anchor)
                    .chain(&config.object_type_column)
                    .chain(&config.dn_column)
                    .cloned()
                    .collect();
                let fixed = first.len();
                (first, fixed)
            }
        };
        let mut table = Table {
            position: index(&columns),
            anchor: 0,
            dn: None,
            columns,
            fixed,
            declared: config.columns.is_some(),
            rows: Vec::new(),
            by_anchor: KeyIndex::default(),
            by_dn: OnceCell::new(),
            bom: false,
            changed: false,
            dn_unindexed: false,
        };
        table.anchor = table.column(&config.anchor).unwrap_or(0);
        table.dn = config.dn_column.as_deref().and_then(|c| table.column(c));
        let file = match std::fs::File::open(&source.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(table),
            Err(e) => return Err(super::reader::read_error(&source.path, &e)),
        };
        let delimiter = config.delimiter.byte();
        let mut reader = RecordReader::new(
            file,
            &source.path,
            delimiter,
            Start::Beginning { hash: false },
        )?;
        table.bom = reader.has_bom();
        let Some(header) = Header::read(&mut reader, &source.shown, config, false)? else {
            return Ok(table);
        };
        if !table.declared {
            table.columns = header.names.clone();
            table.fixed = table.columns.len();
            table.position = index(&table.columns);
            table.anchor = header.anchor;
            table.dn = header.dn;
        }
        // Where each column of the file goes in the table (nowhere, when undeclared).
        let target: Vec<Option<usize>> = header.names.iter().map(|n| table.column(n)).collect();
        let refuse = |what: String| {
            ConnectorError::new(format!(
                "cannot export to {}: {what}; fix the file first (rewriting it would lose the row)",
                source.shown
            ))
        };
        // The line of each row, for the message about a second anchor.
        let mut lines: Vec<u64> = Vec::new();
        while let Some(record) = reader.next_record()? {
            // The cells in table order, borrowed from the record: a row
            // costs its two packed allocations, not one a cell.
            let fields = header
                .cells(&record, &source.shown)
                .map_err(|bad| refuse(bad.to_string()))?;
            let mut cells = vec![""; table.columns.len()];
            for (cell, to) in fields.into_iter().zip(&target) {
                if let Some(slot) = to.and_then(|to| cells.get_mut(to)) {
                    *slot = cell;
                }
            }
            let anchor = cells.get(table.anchor).copied().unwrap_or_default();
            let held = table.row_of(anchor);
            if let Some(first) = held.and_then(|r| lines.get(r)) {
                return Err(refuse(format!(
                    "{}: duplicate anchor {anchor:?}, already on line {first}",
                    record.location(&source.shown, record.field_start(header.anchor))
                )));
            }
            lines.push(record.line());
            let index = table.rows.len();
            table.by_anchor.add(anchor, index);
            table.rows.push(Some(Row::pack(&cells)));
        }
        Ok(table)
    }

    /// Whether any row or column changed since loading.
    pub(crate) fn changed(&self) -> bool {
        self.changed
    }

    /// Marks the table as written to its file: nothing changed since.
    pub(crate) fn mark_written(&mut self) {
        self.changed = false;
    }

    /// Whether loading the file this table was written to gives this table
    /// again: no column was added (the file writes added columns sorted)
    /// and no DN left the index.
    pub(crate) fn reloads_as_itself(&self) -> bool {
        self.columns.len() == self.fixed && !self.dn_unindexed
    }

    /// The index of a column.
    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.position.get(name).copied()
    }

    /// Whether a value for `name` can be stored: declared columns only, when
    /// `columns` is configured.
    pub(crate) fn accepts(&self, name: &str) -> bool {
        !name.is_empty() && (!self.declared || self.position.contains_key(name))
    }

    /// The row holding `anchor`.
    pub(crate) fn row_of(&self, anchor: &str) -> Option<usize> {
        self.by_anchor
            .rows(anchor)
            .find(|&row| self.cell_at(row, self.anchor) == anchor)
    }

    /// The anchor column's name.
    pub(crate) fn anchor_name(&self) -> &str {
        self.columns.get(self.anchor).map_or("", String::as_str)
    }

    /// The anchor of a row.
    pub(crate) fn anchor_of(&self, row: usize) -> &str {
        self.cell_at(row, self.anchor)
    }

    /// The row holding `dn`, compared without regard to case.
    pub(crate) fn row_of_dn(&self, dn: &str) -> Option<usize> {
        self.row_of_normalized_dn(&rules::dn::normalize(dn))
    }

    fn row_of_normalized_dn(&self, normalized: &str) -> Option<usize> {
        let column = self.dn?;
        let index = self.by_dn.get_or_init(|| self.index_dns(column));
        self.holder(index, column, normalized)
    }

    /// The row of `index` whose DN normalizes to `normalized`.
    fn holder(&self, index: &KeyIndex, column: usize, normalized: &str) -> Option<usize> {
        index
            .rows(normalized)
            .find(|&row| rules::dn::normalize(self.cell_at(row, column)) == normalized)
    }

    /// The DN index of the rows as they are: the first row holding a DN.
    fn index_dns(&self, column: usize) -> KeyIndex {
        let mut index = KeyIndex::default();
        for row in 0..self.rows.len() {
            let dn = self.cell_at(row, column);
            if dn.is_empty() {
                continue;
            }
            let dn = rules::dn::normalize(dn);
            if self.holder(&index, column, &dn).is_none() {
                index.add(&dn, row);
            }
        }
        index
    }

    /// The text of a cell ("" for a column the row has no cell in).
    pub(crate) fn cell(&self, row: usize, name: &str) -> &str {
        self.column(name)
            .map_or("", |column| self.cell_at(row, column))
    }

    fn cell_at(&self, row: usize, column: usize) -> &str {
        match self.rows.get(row) {
            Some(Some(cells)) => cells.get(column),
            _ => "",
        }
    }

    /// Sets cells of a row (a new row at the end for `None`), adding columns
    /// not seen before (the caller checked [`Table::accepts`]) and re-keying
    /// the row when its anchor or DN cell changes (the caller checked the
    /// new anchor and DN are free and the anchor is not empty). Returns the row.
    pub(crate) fn write_row(&mut self, row: Option<usize>, cells: Vec<(String, String)>) -> usize {
        let previous_anchor = row.map(|row| self.cell_at(row, self.anchor).to_owned());
        // Only a built DN index needs the DN the row held.
        let previous_dn = match (row, self.dn) {
            (Some(row), Some(dn)) if self.by_dn.get().is_some() => self.cell_at(row, dn).to_owned(),
            _ => String::new(),
        };
        let row = match row {
            Some(row) => row,
            None => {
                self.rows.push(Some(Row::pack::<&str>(&[])));
                self.rows.len() - 1
            }
        };
        let mut unpacked: Vec<String> = match self.rows.get(row) {
            Some(Some(packed)) => packed.unpack(),
            _ => Vec::new(),
        };
        for (name, text) in cells {
            let column = match self.column(&name) {
                Some(column) => column,
                None if text.is_empty() => continue,
                None => {
                    self.columns.push(name.clone());
                    self.position.insert(name, self.columns.len() - 1);
                    self.columns.len() - 1
                }
            };
            if unpacked.len() <= column {
                unpacked.resize(column + 1, String::new());
            }
            unpacked[column] = text;
        }
        if let Some(Some(packed)) = self.rows.get_mut(row) {
            *packed = Row::pack(&unpacked);
        }
        let anchor = self.cell_at(row, self.anchor).to_owned();
        if previous_anchor.as_deref() != Some(anchor.as_str()) {
            if let Some(previous) = previous_anchor {
                self.by_anchor.remove(&previous, row);
            }
            self.by_anchor.add(&anchor, row);
        }
        self.reindex_dn(row, &previous_dn);
        self.changed = true;
        row
    }

    /// Moves `row` in the DN index from `previous` to the DN it holds now.
    /// An index not built yet is left alone: it will be built from the rows
    /// as they are.
    fn reindex_dn(&mut self, row: usize, previous: &str) {
        let Some(column) = self.dn.filter(|_| self.by_dn.get().is_some()) else {
            return;
        };
        let dn = self.cell_at(row, column);
        if dn == previous {
            return;
        }
        let dn = (!dn.is_empty()).then(|| rules::dn::normalize(dn));
        self.unindex_dn(previous, row);
        let Some(dn) = dn else {
            return;
        };
        let other = self.row_of_normalized_dn(&dn).filter(|&r| r != row);
        if let Some(index) = self.by_dn.get_mut() {
            if let Some(other) = other {
                index.remove(&dn, other);
            }
            index.add(&dn, row);
        }
    }

    /// Forgets that `row` holds `dn` (another row holding it stays indexed).
    fn unindex_dn(&mut self, dn: &str, row: usize) {
        let Some(index) = self.by_dn.get_mut() else {
            return;
        };
        if index.remove(&rules::dn::normalize(dn), row) {
            self.dn_unindexed = true;
        }
    }

    /// Deletes the row holding `anchor`; `false` if there is none.
    pub(crate) fn delete(&mut self, anchor: &str) -> bool {
        let Some(row) = self.row_of(anchor) else {
            return false;
        };
        self.by_anchor.remove(anchor, row);
        if let Some(dn_column) = self.dn {
            let dn = self.cell_at(row, dn_column).to_owned();
            self.unindex_dn(&dn, row);
        }
        if let Some(slot) = self.rows.get_mut(row) {
            *slot = None;
        }
        self.changed = true;
        true
    }

    /// Writes the file: header, then rows in order. The same table always
    /// gives the same bytes.
    pub(crate) fn write_to(
        &self,
        out: &mut dyn Write,
        delimiter: u8,
        escape_formulas: bool,
    ) -> io::Result<()> {
        if self.bom {
            out.write_all(BOM)?;
        }
        let mut added: Vec<usize> = (self.fixed..self.columns.len()).collect();
        added.sort_by(|&a, &b| self.columns[a].cmp(&self.columns[b]));
        let order: Vec<usize> = (0..self.fixed).chain(added).collect();
        let mut csv = ::csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(::csv::Terminator::Any(b'\n'))
            .from_writer(out);
        csv.write_record(order.iter().map(|&c| self.columns[c].as_str()))?;
        for cells in self.rows.iter().flatten() {
            for &c in &order {
                let cell = cells.get(c);
                if escape_formulas {
                    csv.write_field(super::formula::escape(cell).as_bytes())?;
                } else {
                    csv.write_field(cell)?;
                }
            }
            csv.write_record(std::iter::empty::<&[u8]>())?;
        }
        csv.flush()
    }
}

/// One row's cells packed into one allocation of text and one of cell
/// ends: two allocations a row instead of one a cell (a 1M-row file of
/// 17 columns took 1.2 GB as a `Vec<String>` per row).
#[derive(Debug)]
struct Row {
    text: Box<str>,
    /// Where each cell ends in `text`.
    ends: Box<[usize]>,
}

impl Row {
    fn pack<S: AsRef<str>>(cells: &[S]) -> Row {
        let mut text = String::with_capacity(cells.iter().map(|c| c.as_ref().len()).sum());
        let mut ends = Vec::with_capacity(cells.len());
        for cell in cells {
            text.push_str(cell.as_ref());
            ends.push(text.len());
        }
        Row {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The cell in `column` ("" past the row's end).
    fn get(&self, column: usize) -> &str {
        let Some(&end) = self.ends.get(column) else {
            return "";
        };
        let start = match column {
            0 => 0,
            c => self.ends.get(c - 1).copied().unwrap_or(0),
        };
        self.text.get(start..end).unwrap_or("")
    }

    fn unpack(&self) -> Vec<String> {
        (0..self.ends.len())
            .map(|c| self.get(c).to_owned())
            .collect()
    }
}

/// Rows by a key one of their cells holds (the anchor, the normalized
/// DN), without a copy of the keys: each key's hash to its row, and the
/// rare rows whose keys share a hash in a second map. A look-up checks the
/// row's cell, so an entry left by a cell that changed never answers.
/// (A 1M-row file's anchors and DNs took about 200 MB as `String` maps.)
#[derive(Debug, Default)]
struct KeyIndex {
    hasher: std::collections::hash_map::RandomState,
    first: HashMap<u64, usize>,
    more: HashMap<u64, Vec<usize>>,
}

impl KeyIndex {
    fn hash(&self, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    /// The rows whose key may be `key`, in the order they were added.
    fn rows(&self, key: &str) -> impl Iterator<Item = usize> + '_ {
        let h = self.hash(key);
        self.first
            .get(&h)
            .copied()
            .into_iter()
            .chain(self.more.get(&h).into_iter().flatten().copied())
    }

    fn add(&mut self, key: &str, row: usize) {
        let h = self.hash(key);
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(row);
            }
            std::collections::hash_map::Entry::Occupied(o) if *o.get() == row => {}
            std::collections::hash_map::Entry::Occupied(_) => {
                let more = self.more.entry(h).or_default();
                if !more.contains(&row) {
                    more.push(row);
                }
            }
        }
    }

    /// Forgets that `row` holds `key`; whether it was indexed.
    fn remove(&mut self, key: &str, row: usize) -> bool {
        let h = self.hash(key);
        if self.first.get(&h) == Some(&row) {
            match self.more.get_mut(&h) {
                Some(more) if !more.is_empty() => {
                    let next = more.remove(0);
                    if more.is_empty() {
                        self.more.remove(&h);
                    }
                    self.first.insert(h, next);
                }
                _ => {
                    self.first.remove(&h);
                }
            }
            return true;
        }
        let Some(more) = self.more.get_mut(&h) else {
            return false;
        };
        let Some(at) = more.iter().position(|&r| r == row) else {
            return false;
        };
        more.remove(at);
        if more.is_empty() {
            self.more.remove(&h);
        }
        true
    }
}

fn index(columns: &[String]) -> HashMap<String, usize> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{KeyIndex, Row, Table};
    use crate::csv::{Settings, Source};

    #[test]
    fn the_dn_index_is_built_on_the_first_look_up_by_dn_from_the_rows_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ad.csv"),
            "id,dn,title\nE1,CN=Ann,Clerk\nE2,CN=Bob,Clerk\nE3,cn=ann,Clerk\n",
        )
        .unwrap();
        let config: crate::csv::config::CsvConfig = toml::from_str(
            "path = \"ad.csv\"\nobject_type = \"user\"\nanchor = \"id\"\ndn_column = \"dn\"\n",
        )
        .unwrap();
        let settings = Settings {
            file: Source::new(&config.path, dir.path()),
            config,
            change_file: None,
        };
        let mut table = Table::load(&settings).unwrap();
        let e1 = table.row_of("E1").unwrap();
        table.write_row(Some(e1), vec![("title".into(), "Lead".into())]);
        assert!(
            table.by_dn.get().is_none(),
            "loading and updating by anchor normalize no DN"
        );

        // A rename before the index exists is seen when it is built.
        let e2 = table.row_of("E2").unwrap();
        table.write_row(Some(e2), vec![("dn".into(), "CN=Bea".into())]);
        assert_eq!(table.row_of_dn("cn=bea"), Some(e2));
        assert!(table.by_dn.get().is_some());
        assert_eq!(table.row_of_dn("CN=Bob"), None);
        assert_eq!(
            table.row_of_dn("CN=ANN"),
            Some(e1),
            "the first row holding a DN"
        );

        // Once built, it follows renames and deletes.
        table.write_row(Some(e2), vec![("dn".into(), "CN=Bo".into())]);
        assert_eq!(table.row_of_dn("cn=bo"), Some(e2));
        assert_eq!(table.row_of_dn("cn=bea"), None);
        assert!(table.delete("E1"));
        assert_eq!(
            table.row_of_dn("cn=ann"),
            None,
            "the duplicate was never indexed"
        );
        assert!(!table.reloads_as_itself());
    }

    #[test]
    fn a_key_index_keeps_every_row_of_a_hash_in_order_and_forgets_one_at_a_time() {
        let mut index = KeyIndex::default();
        index.add("cn=a", 1);
        index.add("cn=a", 2);
        index.add("cn=a", 2);
        index.add("cn=b", 3);
        assert_eq!(index.rows("cn=a").collect::<Vec<_>>(), [1, 2]);
        assert!(index.remove("cn=a", 1));
        assert_eq!(index.rows("cn=a").collect::<Vec<_>>(), [2]);
        assert!(!index.remove("cn=a", 1), "already forgotten");
        assert!(index.remove("cn=a", 2));
        assert_eq!(index.rows("cn=a").count(), 0);
        assert_eq!(index.rows("cn=b").collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn a_packed_row_gives_back_its_cells_empty_ones_and_past_its_end() {
        let cells = vec![
            "E1".to_string(),
            String::new(),
            "Zoë, \"Z\"".into(),
            String::new(),
        ];
        let row = Row::pack(&cells);
        assert_eq!(row.unpack(), cells);
        assert_eq!(row.get(2), "Zoë, \"Z\"");
        assert_eq!(row.get(1), "");
        assert_eq!(row.get(9), "", "a column the row has no cell in");
        assert_eq!(Row::pack::<&str>(&[]).get(0), "");
    }
}
