//! The target file while an export batch is applied: its columns, its rows
//! in file order, and indexes from anchor (and DN) to row.
//!
//! A row no change has touched stays in the file it was read from (the
//! table's *base*): the table keeps only where it is, reads it again when a
//! look-up needs one of its cells, and copies its bytes unchanged when the
//! file is written. A row is held in memory once a change writes it, or from
//! the start when its bytes are not what writing its cells would give
//! (quotes where none are needed, a cell `escape_formulas` would quote,
//! declared `columns` that are not the file's): those are written anew. A
//! 1M-row file then costs about 40 bytes a row instead of its text, and
//! writing it is mostly a copy. Every row is written with a `\n`
//! terminator.
//!
//! The base must not change while it is in use: writing checks its
//! length, modification time and inode afterwards, and a change fails the
//! batch before the new file replaces the old.
//!
//! A table whose rows are all in its file can leave a row index beside it
//! (`index`), and the next load of that same file reads the index instead
//! of parsing the file.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use engine::ConnectorError;

use super::index::{self, DnHashes, RowIndex};
use super::reader::{read_error, RecordReader, Start};
use super::rows::Header;
use super::Settings;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How much of the base file a pass in file order reads at a time.
const CHUNK: usize = 1 << 20;

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
    /// Rows in file order.
    rows: Vec<Slot>,
    /// The file the [`Slot::File`] rows are in; `None` for a new file.
    base: Option<File>,
    /// The base's version when it was read.
    stamp: Option<Stamp>,
    /// Where the base's first row starts (after its header).
    first: u64,
    /// The row index beside the base describes this table.
    indexed: bool,
    /// The file's path, for messages.
    path: PathBuf,
    delimiter: u8,
    /// Cells are written with `escape_formulas`.
    formulas: bool,
    by_anchor: KeyIndex,
    /// Normalized DN → the first row holding it (DNs compare without case),
    /// built on first use: a batch that adds nothing, renames nothing and
    /// finds its rows by anchor never normalizes the file's DNs (a third of
    /// loading a 100k-row file).
    by_dn: OnceCell<KeyIndex>,
    bom: bool,
    changed: bool,
}

/// Where a row's cells are.
#[derive(Debug)]
enum Slot {
    /// In the base file, as [`encode`] writes its cells in the table's
    /// column order (the first `fixed` columns: a column added since is
    /// empty in it).
    File(Span),
    /// In memory: written by a change, or not to be copied as it is.
    Held(Row),
    Deleted,
}

/// A row's bytes in a file, without its line terminator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    offset: u64,
    len: u32,
}

/// What [`Table::write_to`] wrote: where the header ended and where each
/// row is (`None` for a deleted one).
#[derive(Debug)]
pub(crate) struct Written {
    first: u64,
    spans: Vec<Option<Span>>,
}

/// What identifies one version of a file: a replacement (a new inode) or an
/// edit in place (length, modification time) changes it.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    /// The version of the file at `path` now.
    fn of(path: &Path) -> Option<Stamp> {
        Stamp::from(std::fs::metadata(path).ok()?)
    }

    fn of_file(file: &File) -> Option<Stamp> {
        Stamp::from(file.metadata().ok()?)
    }

    fn from(meta: std::fs::Metadata) -> Option<Stamp> {
        Some(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (meta.dev(), meta.ino())
            },
        })
    }

    /// The stamp as bytes, for the row index.
    fn to_bytes(&self) -> Vec<u8> {
        let modified = self
            .modified
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(36);
        bytes.extend_from_slice(&self.len.to_le_bytes());
        bytes.extend_from_slice(&modified.as_secs().to_le_bytes());
        bytes.extend_from_slice(&modified.subsec_nanos().to_le_bytes());
        #[cfg(unix)]
        for n in [self.inode.0, self.inode.1] {
            bytes.extend_from_slice(&n.to_le_bytes());
        }
        bytes
    }
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
        let delimiter = config.delimiter.byte();
        let mut table = Table {
            position: index(&columns),
            anchor: 0,
            dn: None,
            columns,
            fixed,
            declared: config.columns.is_some(),
            rows: Vec::new(),
            base: None,
            stamp: None,
            first: 0,
            indexed: false,
            path: source.path.clone(),
            delimiter,
            formulas: config.escape_formulas,
            by_anchor: KeyIndex::default(),
            by_dn: OnceCell::new(),
            bom: false,
            changed: false,
        };
        table.anchor = table.column(&config.anchor).unwrap_or(0);
        table.dn = config.dn_column.as_deref().and_then(|c| table.column(c));
        let file = match File::open(&source.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(table),
            Err(e) => return Err(read_error(&source.path, &e)),
        };
        // Checking for a second anchor reads earlier rows, through a handle
        // of its own (a clone would share the reader's position on Windows).
        let base = File::open(&source.path).map_err(|e| read_error(&source.path, &e))?;
        let stamp = Stamp::of_file(&base);
        if stamp.is_none() || stamp != Stamp::of_file(&file) {
            return Err(read_error(&source.path, &changed()));
        }
        table.base = Some(base);
        table.stamp = stamp;
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
        // A row stays in the file only if its fields are the table's columns.
        let in_order = target
            .iter()
            .copied()
            .eq((0..table.columns.len()).map(Some));
        table.first = reader.offset();
        if in_order && table.adopt_index() {
            return Ok(table);
        }
        let refuse = |what: String| {
            ConnectorError::new(format!(
                "cannot export to {}: {what}; fix the file first (rewriting it would lose the row)",
                source.shown
            ))
        };
        // The line of each row, for the message about a second anchor.
        let mut lines: Vec<u64> = Vec::new();
        let mut encoded = Vec::new();
        while let Some(record) = reader.next_record()? {
            let fields = header
                .cells(&record, &source.shown)
                .map_err(|bad| refuse(bad.to_string()))?;
            let anchor = fields.get(header.anchor).copied().unwrap_or_default();
            if let Some(first) = table.row_of(anchor)?.and_then(|r| lines.get(r)) {
                return Err(refuse(format!(
                    "{}: duplicate anchor {anchor:?}, already on line {first}",
                    record.location(&source.shown, record.field_start(header.anchor))
                )));
            }
            lines.push(record.line());
            let content = record.content();
            let mut copies = false;
            if in_order {
                encoded.clear();
                table.encode_cells(&mut encoded, fields.iter().copied());
                copies = encoded == content;
            }
            let slot = match u32::try_from(content.len()) {
                Ok(len) if copies => Slot::File(Span {
                    offset: record.offset(),
                    len,
                }),
                _ => {
                    // The cells in table order, borrowed from the record: a
                    // row costs its two packed allocations, not one a cell.
                    let mut cells = vec![""; table.columns.len()];
                    for (cell, to) in fields.into_iter().zip(&target) {
                        if let Some(slot) = to.and_then(|to| cells.get_mut(to)) {
                            *slot = cell;
                        }
                    }
                    Slot::Held(Row::pack(&cells))
                }
            };
            table.by_anchor.add(anchor, table.rows.len());
            table.rows.push(slot);
        }
        Ok(table)
    }

    /// Takes the rows from the index beside the file, when it describes
    /// this version of the file under these settings and its rows cover
    /// the file exactly; whether it did.
    fn adopt_index(&mut self) -> bool {
        let (Some(stamp), Some(base)) = (self.stamp.as_ref(), self.base.as_ref()) else {
            return false;
        };
        let Some(found) = index::read(&self.path, &stamp.to_bytes(), self.fingerprint()) else {
            return false;
        };
        if found.first != self.first {
            return false;
        }
        let count = found.rows.len();
        let mut at = self.first;
        let mut rows = Vec::with_capacity(count);
        for &(len, _) in &found.rows {
            rows.push(Slot::File(Span { offset: at, len }));
            at += u64::from(len) + 1;
        }
        if at != stamp.len || content_crc(base, stamp.len).ok() != Some(found.content) {
            return false;
        }
        let by_anchor = KeyIndex::from_hashes(
            found.keys,
            found.rows.iter().enumerate().map(|(row, &(_, h))| (h, row)),
        );
        // The DN index as the run that wrote the file left it built.
        if let (Some(_), Some(dns)) = (self.dn, found.dns) {
            if dns.rows.iter().any(|&(row, _)| row as usize >= count) {
                return false;
            }
            let rows = dns.rows.iter().map(|&(row, h)| (h, row as usize));
            self.by_dn = OnceCell::from(KeyIndex::from_hashes(dns.keys, rows));
        }
        self.rows = rows;
        self.by_anchor = by_anchor;
        self.indexed = true;
        true
    }

    /// What shapes the rows of the file this table writes, and which
    /// columns its hashes are of.
    fn fingerprint(&self) -> u64 {
        let flags = [
            self.delimiter,
            u8::from(self.formulas),
            u8::from(self.declared),
        ];
        let dn = self
            .dn
            .and_then(|c| self.columns.get(c))
            .map_or(&[0xff][..], |c| c.as_bytes());
        index::fingerprint(
            [&flags[..], self.anchor_name().as_bytes(), dn]
                .into_iter()
                .chain(self.columns.iter().map(|c| c.as_bytes())),
        )
    }

    /// Leaves the row index of the base beside it, when every row is in
    /// the base as it was read or written and the index there does not
    /// already describe it; otherwise removes any index there, which
    /// cannot describe it. Whether one was written.
    pub(crate) fn write_index(&mut self) -> io::Result<bool> {
        if self.indexed {
            return Ok(false);
        }
        let rows = if self.changed || !self.reloads_as_itself() {
            None
        } else {
            self.row_index()?
        };
        let Some(rows) = rows else {
            index::remove(&self.path);
            return Ok(false);
        };
        let stamp = self.stamp.as_ref().map(Stamp::to_bytes).unwrap_or_default();
        index::write(&self.path, &stamp, self.fingerprint(), &rows)?;
        self.indexed = true;
        Ok(true)
    }

    /// The rows as an index: `None` unless the base has a header and every
    /// row is in it, one after the other to its end, each with one anchor
    /// hash (and at most one DN hash).
    fn row_index(&self) -> io::Result<Option<RowIndex>> {
        let (Some(stamp), Some(base)) = (self.stamp.as_ref(), self.base.as_ref()) else {
            return Ok(None);
        };
        let Some(by_row) = self.by_anchor.by_row(self.rows.len()) else {
            return Ok(None);
        };
        // An index that left out a row holding a DN twice is not kept:
        // built again, it knows whether a removal uncovers that row.
        let dns = match (self.dn, self.by_dn.get()) {
            (Some(_), Some(index)) if index.left_out.is_empty() => {
                let Some(by_row) = index.by_row(self.rows.len()) else {
                    return Ok(None);
                };
                Some((index.keys(), by_row))
            }
            _ => None,
        };
        let mut rows = Vec::with_capacity(self.rows.len());
        let mut dn_rows = Vec::new();
        let mut at = self.first;
        for (row, (slot, hash)) in self.rows.iter().zip(by_row).enumerate() {
            match (slot, hash) {
                (Slot::File(span), Some(hash)) if span.offset == at => {
                    let dn = dns
                        .as_ref()
                        .and_then(|(_, dns)| dns.get(row).copied().flatten());
                    if let Some(dn) = dn {
                        dn_rows.push((rows.len() as u32, dn));
                    }
                    rows.push((span.len, hash));
                    at += u64::from(span.len) + 1;
                }
                (Slot::Deleted, _) => {}
                _ => return Ok(None),
            }
        }
        // No header (an empty file): nothing to find rows in.
        if self.first == 0 || at != stamp.len {
            return Ok(None);
        }
        Ok(Some(RowIndex {
            content: content_crc(base, stamp.len)?,
            keys: self.by_anchor.keys(),
            first: self.first,
            rows,
            dns: dns.map(|(keys, _)| DnHashes {
                keys,
                rows: dn_rows,
            }),
        }))
    }

    /// Whether the index beside the file describes this table (it was
    /// read from there, or written there).
    #[cfg(test)]
    pub(crate) fn indexed(&self) -> bool {
        self.indexed
    }

    /// Whether any row or column changed since loading.
    pub(crate) fn changed(&self) -> bool {
        self.changed
    }

    /// Whether loading the file this table was written to gives this table
    /// again: no column was added (the file writes added columns sorted).
    /// (The DN index always is what loading would build: it is dropped
    /// when it would not be.)
    pub(crate) fn reloads_as_itself(&self) -> bool {
        self.columns.len() == self.fixed
    }

    /// Whether the file at the table's path is still the version it
    /// reads its unchanged rows from (never, for a table without a file).
    pub(crate) fn is_current(&self) -> bool {
        self.stamp.is_some() && Stamp::of(&self.path) == self.stamp
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
    pub(crate) fn row_of(&self, anchor: &str) -> Result<Option<usize>, ConnectorError> {
        for row in self.by_anchor.rows(anchor) {
            if self.cell_at(row, self.anchor)? == anchor {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// The anchor column's name.
    pub(crate) fn anchor_name(&self) -> &str {
        self.columns.get(self.anchor).map_or("", String::as_str)
    }

    /// The anchor of a row.
    pub(crate) fn anchor_of(&self, row: usize) -> Result<String, ConnectorError> {
        Ok(self.cell_at(row, self.anchor)?.into_owned())
    }

    /// The row holding `dn`, compared without regard to case.
    pub(crate) fn row_of_dn(&self, dn: &str) -> Result<Option<usize>, ConnectorError> {
        self.row_of_normalized_dn(&rules::dn::normalize(dn))
    }

    fn row_of_normalized_dn(&self, normalized: &str) -> Result<Option<usize>, ConnectorError> {
        let Some(column) = self.dn else {
            return Ok(None);
        };
        let index = match self.by_dn.get() {
            Some(index) => index,
            None => {
                let built = self.index_dns(column)?;
                self.by_dn.get_or_init(|| built)
            }
        };
        self.holder(index, column, normalized)
    }

    /// The row of `index` whose DN normalizes to `normalized`.
    fn holder(
        &self,
        index: &KeyIndex,
        column: usize,
        normalized: &str,
    ) -> Result<Option<usize>, ConnectorError> {
        for row in index.rows(normalized) {
            if rules::dn::normalize(&self.cell_at(row, column)?) == normalized {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// The DN index of the rows as they are: the first row holding a DN.
    /// The rows still in the file are read in file order, a chunk at a time.
    fn index_dns(&self, column: usize) -> Result<KeyIndex, ConnectorError> {
        let mut index = KeyIndex::default();
        let mut chunks = Chunks::new(self.base.as_ref());
        for (row, slot) in self.rows.iter().enumerate() {
            let dn = match slot {
                Slot::File(span) => {
                    let bytes = chunks.read(*span).map_err(|e| read_error(&self.path, &e))?;
                    self.file_cell(bytes, column)?
                }
                Slot::Held(cells) => Cow::Borrowed(cells.get(column)),
                Slot::Deleted => continue,
            };
            if dn.is_empty() {
                continue;
            }
            let dn = rules::dn::normalize(&dn);
            if self.holder(&index, column, &dn)?.is_none() {
                index.add(&dn, row);
            } else {
                index.left_out.insert(index.hash(&dn));
            }
        }
        Ok(index)
    }

    /// The text of every cell of a row, in column order.
    pub(crate) fn cells(&self, row: usize) -> Result<Vec<String>, ConnectorError> {
        Ok(match self.rows.get(row) {
            Some(Slot::File(span)) => {
                let bytes = self.read(*span)?;
                fields(&bytes, self.delimiter)
                    .map(|field| self.text(field).map(Cow::into_owned))
                    .collect::<Result<_, _>>()?
            }
            Some(Slot::Held(cells)) => cells.unpack(),
            Some(Slot::Deleted) | None => Vec::new(),
        })
    }

    /// The text of a cell ("" for a column the row has no cell in).
    fn cell_at(&self, row: usize, column: usize) -> Result<Cow<'_, str>, ConnectorError> {
        match self.rows.get(row) {
            Some(Slot::File(span)) => {
                let bytes = self.read(*span)?;
                Ok(Cow::Owned(self.file_cell(&bytes, column)?.into_owned()))
            }
            Some(Slot::Held(cells)) => Ok(Cow::Borrowed(cells.get(column))),
            Some(Slot::Deleted) | None => Ok(Cow::Borrowed("")),
        }
    }

    /// A row's bytes in the base file.
    fn read(&self, span: Span) -> Result<Vec<u8>, ConnectorError> {
        let mut bytes = vec![0; span.len as usize];
        let read = match &self.base {
            Some(file) => read_at(file, &mut bytes, span.offset),
            None => Err(shrunk()),
        };
        read.map_err(|e| read_error(&self.path, &e))?;
        Ok(bytes)
    }

    /// Cell `column` of a row read from the base file.
    fn file_cell<'b>(
        &self,
        bytes: &'b [u8],
        column: usize,
    ) -> Result<Cow<'b, str>, ConnectorError> {
        match fields(bytes, self.delimiter).nth(column) {
            Some(field) => self.text(field),
            None => Ok(Cow::Borrowed("")),
        }
    }

    /// A field read from the base file as the text of its cell: without the
    /// formula quote.
    fn text<'b>(&self, field: Cow<'b, [u8]>) -> Result<Cow<'b, str>, ConnectorError> {
        let garbled = || read_error(&self.path, &changed());
        let text = match field {
            Cow::Borrowed(bytes) => {
                Cow::Borrowed(std::str::from_utf8(bytes).map_err(|_| garbled())?)
            }
            Cow::Owned(bytes) => Cow::Owned(String::from_utf8(bytes).map_err(|_| garbled())?),
        };
        Ok(match text {
            _ if !self.formulas => text,
            Cow::Borrowed(text) => Cow::Borrowed(super::formula::unescape(text)),
            Cow::Owned(text) => Cow::Owned(super::formula::unescape(&text).to_owned()),
        })
    }

    /// Appends a row's cells as the file holds them: escaped (with
    /// `escape_formulas`) and quoted where needed.
    fn encode_cells<'c>(&self, line: &mut Vec<u8>, cells: impl Iterator<Item = &'c str>) {
        if self.formulas {
            encode(line, cells.map(super::formula::escape), self.delimiter);
        } else {
            encode(line, cells, self.delimiter);
        }
    }

    /// Sets cells of a row (a new row at the end for `None`), adding columns
    /// not seen before (the caller checked [`Table::accepts`]) and re-keying
    /// the row when its anchor or DN cell changes (the caller checked the
    /// new anchor and DN are free and the anchor is not empty). Returns the row.
    pub(crate) fn write_row(
        &mut self,
        row: Option<usize>,
        cells: Vec<(String, String)>,
    ) -> Result<usize, ConnectorError> {
        let (row, mut unpacked, previous_anchor) = match row {
            Some(row) => {
                let unpacked = self.cells(row)?;
                let anchor = unpacked.get(self.anchor).cloned().unwrap_or_default();
                (row, unpacked, Some(anchor))
            }
            None => {
                self.rows.push(Slot::Held(Row::pack::<&str>(&[])));
                (self.rows.len() - 1, Vec::new(), None)
            }
        };
        // Only a built DN index needs the DN the row held.
        let previous_dn = match self.dn {
            Some(dn) if self.by_dn.get().is_some() => unpacked.get(dn).cloned().unwrap_or_default(),
            _ => String::new(),
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
        let anchor = unpacked.get(self.anchor).cloned().unwrap_or_default();
        if let Some(slot) = self.rows.get_mut(row) {
            *slot = Slot::Held(Row::pack(&unpacked));
        }
        if previous_anchor.as_deref() != Some(anchor.as_str()) {
            if let Some(previous) = previous_anchor {
                self.by_anchor.remove(&previous, row);
            }
            self.by_anchor.add(&anchor, row);
        }
        self.reindex_dn(row, &previous_dn)?;
        self.changed = true;
        Ok(row)
    }

    /// Moves `row` in the DN index from `previous` to the DN it holds now.
    /// An index not built yet is left alone: it will be built from the rows
    /// as they are.
    fn reindex_dn(&mut self, row: usize, previous: &str) -> Result<(), ConnectorError> {
        let Some(column) = self.dn.filter(|_| self.by_dn.get().is_some()) else {
            return Ok(());
        };
        let dn = self.cell_at(row, column)?;
        if dn == previous {
            return Ok(());
        }
        let dn = (!dn.is_empty()).then(|| rules::dn::normalize(&dn));
        self.unindex_dn(previous, row);
        let Some(dn) = dn else {
            return Ok(());
        };
        let other = self.row_of_normalized_dn(&dn)?.filter(|&r| r != row);
        if other.is_some() {
            // Two rows hold the DN now (the export refuses that before it
            // writes): the index is built again from the rows, as loading
            // the file would build it.
            self.by_dn = OnceCell::new();
        } else if let Some(index) = self.by_dn.get_mut() {
            index.add(&dn, row);
        }
        Ok(())
    }

    /// Forgets that `row` holds `dn`. When the index left out another row
    /// holding it, the index is dropped, to be built again from the rows
    /// on the next look-up: that finds the row left out.
    fn unindex_dn(&mut self, dn: &str, row: usize) {
        let Some(index) = self.by_dn.get_mut() else {
            return;
        };
        let dn = rules::dn::normalize(dn);
        if index.remove(&dn, row) && index.left_out.contains(&index.hash(&dn)) {
            self.by_dn = OnceCell::new();
        }
    }

    /// Deletes the row holding `anchor`; `false` if there is none.
    pub(crate) fn delete(&mut self, anchor: &str) -> Result<bool, ConnectorError> {
        let Some(row) = self.row_of(anchor)? else {
            return Ok(false);
        };
        self.by_anchor.remove(anchor, row);
        if let Some(dn_column) = self.dn {
            let dn = self.cell_at(row, dn_column)?.into_owned();
            self.unindex_dn(&dn, row);
        }
        if let Some(slot) = self.rows.get_mut(row) {
            *slot = Slot::Deleted;
        }
        self.changed = true;
        Ok(true)
    }

    /// Writes the file: header, then rows in order, a row still in the base
    /// file copied from it as it is. The same table always gives the same
    /// bytes.
    pub(crate) fn write_to(&self, out: &mut dyn Write) -> io::Result<Written> {
        let mut added: Vec<usize> = (self.fixed..self.columns.len()).collect();
        added.sort_by(|&a, &b| self.columns[a].cmp(&self.columns[b]));
        let order: Vec<usize> = (0..self.fixed).chain(added).collect();
        let mut out = Counted { out, at: 0 };
        if self.bom {
            out.put(BOM)?;
        }
        let mut line = Vec::new();
        encode(
            &mut line,
            order.iter().map(|&c| self.columns[c].as_str()),
            self.delimiter,
        );
        line.push(b'\n');
        out.put(&line)?;
        let first = out.at;
        // A copied row's cells of added columns are empty. (A row of one
        // empty cell, `""`, would need writing anew, but its one cell is
        // the anchor, which is never empty.)
        let padding = vec![self.delimiter; self.columns.len() - self.fixed];
        let mut chunks = Chunks::new(self.base.as_ref());
        let mut spans = Vec::with_capacity(self.rows.len());
        for slot in &self.rows {
            let start = out.at;
            match slot {
                Slot::File(span) => {
                    out.put(chunks.read(*span)?)?;
                    out.put(&padding)?;
                }
                Slot::Held(cells) => {
                    line.clear();
                    self.encode_cells(&mut line, order.iter().map(|&c| cells.get(c)));
                    out.put(&line)?;
                }
                Slot::Deleted => {
                    spans.push(None);
                    continue;
                }
            }
            let len = u32::try_from(out.at - start).ok();
            spans.push(len.map(|len| Span { offset: start, len }));
            out.put(b"\n")?;
        }
        out.out.flush()?;
        // A base edited in place meanwhile may have been copied half old,
        // half new: the new file must not replace the old one.
        if let Some(base) = &self.base {
            if Stamp::of_file(base) != self.stamp {
                return Err(changed());
            }
        }
        Ok(Written { first, spans })
    }

    /// Makes `file`, which [`Table::write_to`] wrote as `written`, the base:
    /// every row it could read back from there leaves memory. Only for a
    /// table that [reloads as itself](Table::reloads_as_itself) (the file's
    /// columns are the table's).
    pub(crate) fn rebase(&mut self, file: File, written: Written) {
        debug_assert!(self.reloads_as_itself());
        for (slot, span) in self.rows.iter_mut().zip(written.spans) {
            if let Some(span) = span {
                *slot = Slot::File(span);
            }
        }
        self.stamp = Stamp::of_file(&file);
        self.base = Some(file);
        self.first = written.first;
        self.changed = false;
        self.indexed = false;
    }
}

/// The fields of a record written by [`encode`], unquoted.
fn fields(record: &[u8], delimiter: u8) -> impl Iterator<Item = Cow<'_, [u8]>> {
    let mut rest = Some(record);
    std::iter::from_fn(move || {
        let (field, next) = split_field(rest?, delimiter);
        rest = next;
        Some(field)
    })
}

/// The first field of a record written by [`encode`], unquoted, and the
/// rest of the record after its delimiter (`None` after the last field).
fn split_field(bytes: &[u8], delimiter: u8) -> (Cow<'_, [u8]>, Option<&[u8]>) {
    if bytes.first() != Some(&b'"') {
        return match bytes.iter().position(|&b| b == delimiter) {
            Some(end) => (Cow::Borrowed(&bytes[..end]), Some(&bytes[end + 1..])),
            None => (Cow::Borrowed(bytes), None),
        };
    }
    let mut text = Vec::new();
    let mut i = 1;
    while let Some(&b) = bytes.get(i) {
        if b == b'"' {
            if bytes.get(i + 1) == Some(&b'"') {
                text.push(b'"');
                i += 2;
                continue;
            }
            // The closing quote, then the delimiter or the end.
            return (Cow::Owned(text), bytes.get(i + 2..));
        }
        text.push(b);
        i += 1;
    }
    (Cow::Owned(text), None)
}

/// Appends one record without its terminator, quoted as the `csv` crate
/// quotes (only where needed: a delimiter, quote, `\r` or `\n` in a field,
/// or a record of one empty field).
fn encode<S: AsRef<str>>(line: &mut Vec<u8>, fields: impl Iterator<Item = S>, delimiter: u8) {
    let start = line.len();
    let mut count = 0;
    for field in fields {
        let field = field.as_ref().as_bytes();
        if count > 0 {
            line.push(delimiter);
        }
        count += 1;
        if field
            .iter()
            .any(|&b| b == delimiter || b == b'"' || b == b'\r' || b == b'\n')
        {
            line.push(b'"');
            for &b in field {
                if b == b'"' {
                    line.push(b'"');
                }
                line.push(b);
            }
            line.push(b'"');
        } else {
            line.extend_from_slice(field);
        }
    }
    if count <= 1 && line.len() == start {
        line.extend_from_slice(b"\"\"");
    }
}

/// A writer that counts what it was given.
struct Counted<'a> {
    out: &'a mut dyn Write,
    at: u64,
}

impl Counted<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }
}

/// Reads rows of the base file in file order a chunk at a time, instead of
/// one read a row.
struct Chunks<'a> {
    file: Option<&'a File>,
    /// Allocated (and zeroed) once; `buf[..filled]` holds file bytes.
    buf: Vec<u8>,
    filled: usize,
    /// The file offset of `buf[0]`.
    start: u64,
}

impl<'a> Chunks<'a> {
    fn new(file: Option<&'a File>) -> Self {
        Chunks {
            file,
            buf: Vec::new(),
            filled: 0,
            start: 0,
        }
    }

    fn read(&mut self, span: Span) -> io::Result<&[u8]> {
        let len = span.len as usize;
        let cached = span.offset >= self.start
            && span.offset + span.len as u64 <= self.start + self.filled as u64;
        if !cached {
            let file = self.file.ok_or(io::ErrorKind::UnexpectedEof)?;
            if self.buf.len() < CHUNK.max(len) {
                self.buf.resize(CHUNK.max(len), 0);
            }
            self.filled = 0;
            let got = read_some_at(file, &mut self.buf, span.offset)?;
            if got < len {
                return Err(shrunk());
            }
            self.filled = got;
            self.start = span.offset;
        }
        let from = (span.offset - self.start) as usize;
        Ok(&self.buf[from..from + len])
    }
}

/// The CRC-32 of the first `len` bytes of a file; an error if it is
/// shorter.
fn content_crc(file: &File, len: u64) -> io::Result<u32> {
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0; CHUNK];
    let mut at = 0;
    while at < len {
        let part = &mut buf[..usize::try_from(len - at).map_or(CHUNK, |rest| rest.min(CHUNK))];
        read_at(file, part, at)?;
        crc.update(part);
        at += part.len() as u64;
    }
    Ok(crc.finalize())
}

/// Fills `buf` from `offset`, short only at the end of the file.
fn read_some_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match positioned_read(file, &mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Fills `buf` from `offset`, or fails.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    if read_some_at(file, buf, offset)? < buf.len() {
        return Err(shrunk());
    }
    Ok(())
}

/// The base changed while the table was using it.
fn changed() -> io::Error {
    io::Error::other("the file changed while it was exported; export again")
}

fn shrunk() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file is shorter than when it was read: it changed while it was exported",
    )
}

#[cfg(unix)]
fn positioned_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn positioned_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
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
/// The hash is SipHash-1-3 under random keys, which the row index keeps
/// with the hashes.
#[derive(Debug)]
struct KeyIndex {
    hasher: siphasher::sip::SipHasher13,
    /// The hashes of keys that a row was left out for, because an earlier
    /// row holds the key (the DN index holds the first row of a DN).
    left_out: HashSet<u64>,
    first: HashMap<u64, usize, Hashed>,
    more: HashMap<u64, Vec<usize>, Hashed>,
}

/// The maps of a [`KeyIndex`] are keyed by hashes already: they are their
/// own hash (SipHash spreads every bit).
type Hashed = std::hash::BuildHasherDefault<HashedKey>;

#[derive(Default)]
struct HashedKey(u64);

impl std::hash::Hasher for HashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    /// For keys other than the `u64`s the maps hold (none): folded in.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Default for KeyIndex {
    /// An empty index under random keys.
    fn default() -> Self {
        let random = || {
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8)
        };
        KeyIndex::with_keys((random(), random()))
    }
}

impl KeyIndex {
    fn with_keys(keys: (u64, u64)) -> Self {
        KeyIndex {
            hasher: siphasher::sip::SipHasher13::new_with_keys(keys.0, keys.1),
            left_out: HashSet::new(),
            first: HashMap::default(),
            more: HashMap::default(),
        }
    }

    /// An index of rows by hashes made under `keys`.
    fn from_hashes(keys: (u64, u64), rows: impl ExactSizeIterator<Item = (u64, usize)>) -> Self {
        let mut index = KeyIndex::with_keys(keys);
        index.first.reserve(rows.len());
        for (h, row) in rows {
            index.add_hash(h, row);
        }
        index
    }

    /// The keys its hashes are made with.
    fn keys(&self) -> (u64, u64) {
        self.hasher.keys()
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash(key.as_bytes())
    }

    /// Each row's hash, for rows `0..rows`; `None` if a row has two.
    fn by_row(&self, rows: usize) -> Option<Vec<Option<u64>>> {
        let mut by_row = vec![None; rows];
        let entries = self.first.iter().map(|(&h, &row)| (h, row)).chain(
            self.more
                .iter()
                .flat_map(|(&h, more)| more.iter().map(move |&row| (h, row))),
        );
        for (h, row) in entries {
            if by_row.get_mut(row)?.replace(h).is_some() {
                return None;
            }
        }
        Some(by_row)
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
        self.add_hash(self.hash(key), row);
    }

    fn add_hash(&mut self, h: u64, row: usize) {
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

    use super::{encode, KeyIndex, Row, Slot, Table};
    use crate::csv::{Settings, Source};

    fn settings(dir: &std::path::Path, keys: &str) -> Settings {
        let config: crate::csv::config::CsvConfig = toml::from_str(&format!(
            "path = \"ad.csv\"\nobject_type = \"user\"\nanchor = \"id\"\n{keys}"
        ))
        .unwrap();
        Settings {
            file: Source::new(&config.path, dir),
            config,
            change_file: None,
        }
    }

    fn kinds(table: &Table) -> String {
        table
            .rows
            .iter()
            .map(|slot| match slot {
                Slot::File(_) => 'f',
                Slot::Held(_) => 'h',
                Slot::Deleted => 'd',
            })
            .collect()
    }

    #[test]
    fn rows_stay_in_the_file_until_written_and_are_read_from_the_file_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ad.csv");
        std::fs::write(
            &path,
            "id,title\nE1,Clerk\n\"E2\",Clerk\nE3,Clerk\r\nE4,Clerk\n",
        )
        .unwrap();
        let settings = settings(dir.path(), "");
        let mut table = Table::load(&settings).unwrap();
        assert_eq!(
            kinds(&table),
            "fhff",
            "a row quoted where no quote is needed is held"
        );

        let e4 = table.row_of("E4").unwrap().unwrap();
        table
            .write_row(Some(e4), vec![("title".into(), "Lead, Ops".into())])
            .unwrap();
        table
            .write_row(
                None,
                vec![("id".into(), "E5".into()), ("title".into(), "Dev".into())],
            )
            .unwrap();
        assert!(table.delete("E1").unwrap());
        assert_eq!(kinds(&table), "dhfhh");

        let mut bytes = Vec::new();
        let written = table.write_to(&mut bytes).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "id,title\nE2,Clerk\nE3,Clerk\nE4,\"Lead, Ops\"\nE5,Dev\n"
        );
        std::fs::write(&path, &bytes).unwrap();
        table.rebase(std::fs::File::open(&path).unwrap(), written);
        assert_eq!(kinds(&table), "dffff");
        assert!(!table.changed());
        let e5 = table.row_of("E5").unwrap().unwrap();
        assert_eq!(table.cells(e5).unwrap(), ["E5", "Dev"]);
        assert_eq!(table.cells(e4).unwrap(), ["E4", "Lead, Ops"]);
        assert_eq!(table.anchor_of(1).unwrap(), "E2");
    }

    /// Writes `table` over its file as an export does (a new file renamed
    /// into place) and makes the new file its base.
    fn replace(table: &mut Table, path: &std::path::Path) {
        let mut bytes = Vec::new();
        let written = table.write_to(&mut bytes).unwrap();
        let next = path.with_extension("next");
        std::fs::write(&next, &bytes).unwrap();
        std::fs::rename(&next, path).unwrap();
        table.rebase(std::fs::File::open(path).unwrap(), written);
    }

    #[test]
    fn a_table_written_leaves_a_row_index_the_next_load_reads_instead_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ad.csv");
        std::fs::write(
            &path,
            "\u{feff}id,title\nE1,Clerk\n\"E2\",Clerk\nE3,\"Ann\nSmith\"\n",
        )
        .unwrap();
        let settings = settings(dir.path(), "");
        let mut table = Table::load(&settings).unwrap();
        assert!(!table.indexed());
        assert!(
            !table.write_index().unwrap(),
            "a row written anew (E2) is not where an index would say"
        );
        assert!(table.delete("E1").unwrap());
        let e4 = vec![("id".into(), "E4".into()), ("title".into(), "Dev".into())];
        table.write_row(None, e4).unwrap();
        replace(&mut table, &path);
        assert!(table.write_index().unwrap());
        assert!(!table.write_index().unwrap(), "written once");

        let mut again = Table::load(&settings).unwrap();
        assert!(again.indexed());
        assert_eq!(kinds(&again), "fff", "the deleted row is not in the file");
        assert!(again.row_of("E1").unwrap().is_none());
        for (anchor, title) in [("E2", "Clerk"), ("E3", "Ann\nSmith"), ("E4", "Dev")] {
            let row = again.row_of(anchor).unwrap().unwrap();
            assert_eq!(again.cells(row).unwrap(), [anchor, title]);
        }
        let e3 = again.row_of("E3").unwrap().unwrap();
        again
            .write_row(Some(e3), vec![("title".into(), "Lead".into())])
            .unwrap();
        replace(&mut again, &path);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "\u{feff}id,title\nE2,Clerk\nE3,Lead\nE4,Dev\n"
        );
        assert!(again.write_index().unwrap(), "a new file, a new index");
        assert!(Table::load(&settings).unwrap().indexed());

        // A file that no index can describe loses the one beside it.
        std::fs::write(&path, "id,title\n\"E1\",Clerk\n").unwrap();
        let mut quoted = Table::load(&settings).unwrap();
        assert!(!quoted.indexed());
        assert!(!quoted.write_index().unwrap());
        assert!(!super::index::path_of(&path).exists());
    }

    #[test]
    fn a_dn_index_built_by_a_run_comes_back_with_the_row_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ad.csv");
        std::fs::write(
            &path,
            "id,dn\nE1,\"CN=Ann,OU=A\"\nE2,\"CN=Bob,OU=A\"\nE3,\n",
        )
        .unwrap();
        let settings = settings(dir.path(), "dn_column = \"dn\"");
        let mut table = Table::load(&settings).unwrap();
        assert!(table.write_index().unwrap());
        let again = Table::load(&settings).unwrap();
        assert!(again.indexed());
        assert!(again.by_dn.get().is_none(), "no run built it");

        let mut table = Table::load(&settings).unwrap();
        assert_eq!(table.row_of_dn("cn=bob,ou=a").unwrap(), Some(1));
        assert!(table.delete("E1").unwrap());
        let e4 = vec![
            ("id".into(), "E4".into()),
            ("dn".into(), "CN=Cy,OU=A".into()),
        ];
        table.write_row(None, e4).unwrap();
        assert!(
            table.reloads_as_itself(),
            "a DN left the index of a file without duplicate DNs"
        );
        replace(&mut table, &path);
        assert!(table.write_index().unwrap());

        let again = Table::load(&settings).unwrap();
        assert!(again.indexed());
        assert!(again.by_dn.get().is_some(), "the DN index came back");
        assert_eq!(again.row_of_dn("CN=BOB,OU=A").unwrap(), Some(0));
        assert_eq!(again.row_of_dn("cn=cy,ou=a").unwrap(), Some(2));
        assert_eq!(again.row_of_dn("CN=Ann,OU=A").unwrap(), None, "deleted");

        // A DN index that left out a duplicate DN is not kept.
        std::fs::write(&path, "id,dn\nE1,CN=Ann\nE2,cn=ann\n").unwrap();
        let mut table = Table::load(&settings).unwrap();
        assert_eq!(table.row_of_dn("CN=ANN").unwrap(), Some(0));
        assert!(table.write_index().unwrap());
        let again = Table::load(&settings).unwrap();
        assert!(again.indexed());
        assert!(again.by_dn.get().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn the_row_index_stands_only_for_the_file_and_the_settings_it_was_written_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ad.csv");
        let indexed = || {
            std::fs::write(&path, "id,title\nE1,Clerk\nE2,Clerk\n").unwrap();
            let mut table = Table::load(&settings(dir.path(), "")).unwrap();
            assert!(table.write_index().unwrap());
            assert!(Table::load(&settings(dir.path(), "")).unwrap().indexed());
        };
        let load = |keys: &str| Table::load(&settings(dir.path(), keys)).unwrap();

        indexed();
        let formulas = load("escape_formulas = true");
        assert!(!formulas.indexed(), "other settings shape other rows");
        let dns = load("dn_column = \"title\"");
        assert!(!dns.indexed(), "a DN index may be of another column");

        indexed();
        // Edited in place, the same length, the modification time put back.
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_at(&file, b"E7", 18).unwrap();
        file.set_modified(modified).unwrap();
        let edited = load("");
        assert!(!edited.indexed());
        assert!(edited.row_of("E7").unwrap().is_some());

        indexed();
        let mut appended = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut appended, b"E3,Dev\n").unwrap();
        let grown = load("");
        assert!(!grown.indexed());
        assert!(grown.row_of("E3").unwrap().is_some());
    }

    #[test]
    fn a_file_that_shrinks_while_it_is_exported_fails_the_batch_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ad.csv");
        std::fs::write(&path, "id,title\nE1,Clerk\nE2,Clerk\n").unwrap();
        let table = Table::load(&settings(dir.path(), "")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(12)
            .unwrap();
        let error = table.row_of("E2").unwrap_err().to_string();
        assert!(
            error.contains("ad.csv") && error.contains("changed while it was exported"),
            "{error}"
        );
        let mut out = Vec::new();
        assert!(
            table.write_to(&mut out).is_err(),
            "nothing is written from a short file"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_edited_in_place_while_it_is_exported_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ad.csv");
        std::fs::write(&path, "id,title\nE1,Clerk\nE2,Clerk\n").unwrap();
        let mut table = Table::load(&settings(dir.path(), "")).unwrap();
        let e1 = table.row_of("E1").unwrap().unwrap();
        table
            .write_row(Some(e1), vec![("title".into(), "Lead".into())])
            .unwrap();
        // Someone rewrites E2 in place: same length, same inode.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_at(&file, b"Clark", 21).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
        file.set_modified(later).unwrap();
        let error = table.write_to(&mut Vec::new()).unwrap_err().to_string();
        assert!(error.contains("changed while it was exported"), "{error}");
    }

    #[test]
    fn records_are_quoted_as_the_csv_crate_quotes_them() {
        let records: &[&[&str]] = &[
            &["a", "b"],
            &[""],
            &["", ""],
            &["x,y", "q\"uote", "cr\r", "lf\n", " pad ", "Zoë"],
            &["", "tail"],
            &["semi;colon", "'=1"],
        ];
        for delimiter in [b',', b';', b'\t'] {
            for record in records {
                let mut csv = ::csv::WriterBuilder::new()
                    .delimiter(delimiter)
                    .terminator(::csv::Terminator::Any(b'\n'))
                    .from_writer(Vec::new());
                csv.write_record(*record).unwrap();
                let mut expected = csv.into_inner().unwrap();
                expected.pop();
                let mut line = b"kept".to_vec();
                encode(&mut line, record.iter(), delimiter);
                assert_eq!(
                    String::from_utf8_lossy(&line[4..]),
                    String::from_utf8_lossy(&expected),
                    "{record:?} with {:?}",
                    delimiter as char
                );
            }
        }
    }

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
        let e1 = table.row_of("E1").unwrap().unwrap();
        table
            .write_row(Some(e1), vec![("title".into(), "Lead".into())])
            .unwrap();
        assert!(
            table.by_dn.get().is_none(),
            "loading and updating by anchor normalize no DN"
        );

        // A rename before the index exists is seen when it is built.
        let e2 = table.row_of("E2").unwrap().unwrap();
        table
            .write_row(Some(e2), vec![("dn".into(), "CN=Bea".into())])
            .unwrap();
        assert_eq!(table.row_of_dn("cn=bea").unwrap(), Some(e2));
        assert!(table.by_dn.get().is_some());
        assert_eq!(table.row_of_dn("CN=Bob").unwrap(), None);
        assert_eq!(
            table.row_of_dn("CN=ANN").unwrap(),
            Some(e1),
            "the first row holding a DN"
        );

        // Once built, it follows renames and deletes.
        table
            .write_row(Some(e2), vec![("dn".into(), "CN=Bo".into())])
            .unwrap();
        assert_eq!(table.row_of_dn("cn=bo").unwrap(), Some(e2));
        assert_eq!(table.row_of_dn("cn=bea").unwrap(), None);
        assert!(table.by_dn.get().is_some());

        // The first holder of a DN another row holds too leaves: the index
        // is built again and finds the other.
        assert!(table.delete("E1").unwrap());
        assert!(table.by_dn.get().is_none());
        let e3 = table.row_of("E3").unwrap().unwrap();
        assert_eq!(table.row_of_dn("cn=ann").unwrap(), Some(e3));
        assert!(table.reloads_as_itself());
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
