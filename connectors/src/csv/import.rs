//! Full import: every row of the file as an object, streamed, with the
//! change file's current state as the final watermark.

use std::collections::HashMap;
use std::sync::Arc;

use engine::{ConnectorError, ImportEvent, ItemError};

use super::reader::{RecordReader, Start};
use super::rows::Header;
use super::stream::{Sink, Stop};
use super::watermark::Watermark;
use super::Settings;

/// A full import whose file is open and whose header is read.
pub(crate) struct FullImport {
    settings: Arc<Settings>,
    reader: RecordReader,
    header: Header,
    change_mark: Option<Watermark>,
}

/// Opens the file and reads its header; every fatal problem surfaces here,
/// before any object is streamed.
pub(crate) fn open(settings: Arc<Settings>) -> Result<FullImport, ConnectorError> {
    // Taken first: changes appended while the file is read are then replayed
    // by the next delta import instead of being skipped.
    let change_mark = match &settings.change_file {
        Some(change_file) => Some(Watermark::of_file(&change_file.path)?),
        None => None,
    };
    let source = &settings.file;
    let file = RecordReader::open_file(&source.path)?;
    let delimiter = settings.config.delimiter.byte();
    let mut reader = RecordReader::new(
        file,
        &source.path,
        delimiter,
        Start::Beginning { hash: false },
    )?;
    let header =
        Header::read(&mut reader, &source.shown, &settings.config, false)?.ok_or_else(|| {
            ConnectorError::new(format!(
                "{}:1:1: expected a header row naming the columns, found an empty file",
                source.shown
            ))
        })?;
    Ok(FullImport {
        settings,
        reader,
        header,
        change_mark,
    })
}

/// The health check: the file is there and its header names the
/// configured columns; the change file, when configured, can be read; the
/// folder the export replaces the file in is writable. Reads only.
pub(crate) fn check(settings: &Arc<Settings>) -> Result<engine::CheckReport, ConnectorError> {
    let opened = open(Arc::clone(settings))?;
    let mut checks = vec![format!(
        "read the header of {}: {} column(s)",
        settings.file.shown,
        opened.header.names.len()
    )];
    if let Some(change_file) = &settings.change_file {
        match std::fs::metadata(&change_file.path) {
            Ok(_) => {
                RecordReader::open_file(&change_file.path)?;
                checks.push(format!("the change file {} can be read", change_file.shown));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => checks.push(format!(
                "the change file {} does not exist yet (a delta import finds no changes)",
                change_file.shown
            )),
            Err(e) => return Err(super::reader::read_error(&change_file.path, &e)),
        }
    }
    let folder = settings
        .file
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let writable = std::fs::metadata(folder)
        .map(|m| !m.permissions().readonly())
        .unwrap_or(false);
    checks.push(if writable {
        format!("the folder {} is writable (export)", folder.display())
    } else {
        format!(
            "warning: the folder {} is not writable: export would fail",
            folder.display()
        )
    });
    Ok(engine::CheckReport { checks })
}

impl FullImport {
    /// Streams every row, then the change file's watermark.
    pub(crate) fn run(mut self, sink: &Sink) {
        let outcome = self
            .stream_rows(sink)
            .and_then(|()| match self.change_mark {
                Some(mark) => sink.event(ImportEvent::Watermark(mark.to_string())),
                None => Ok(()),
            });
        sink.finish(outcome);
    }

    fn stream_rows(&mut self, sink: &Sink) -> Result<(), Stop> {
        let shown = self.settings.file.shown.as_str();
        let config = &self.settings.config;
        let anchor_column = self.header.anchor;
        // First line of each anchor and each DN (DNs compare case-insensitively):
        // the first occurrence wins.
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut seen_dns: HashMap<String, u64> = HashMap::new();
        while let Some(record) = self.reader.next_record()? {
            let row = match self.header.row(&record, shown) {
                Ok(row) => row,
                Err(bad) => {
                    sink.bad(bad)?;
                    continue;
                }
            };
            let anchor = row.cells[anchor_column].clone();
            if let Some(first) = seen.get(&anchor) {
                sink.bad(ItemError {
                    location: record.location(shown, record.field_start(anchor_column)),
                    message: format!(
                        "duplicate anchor {anchor:?}, already on line {first}: expected each value of {:?} once (the first is kept)",
                        self.header.name(anchor_column)
                    ),
                })?;
                continue;
            }
            let line = row.line;
            let object = match self.header.object(&record, row, shown, config) {
                Ok(object) => object,
                Err(bad) => {
                    sink.bad(bad)?;
                    continue;
                }
            };
            if let (Some(dn), Some(dn_column)) = (&object.dn, self.header.dn) {
                let key = rules::dn::normalize(dn);
                if let Some(first) = seen_dns.get(&key) {
                    sink.bad(ItemError {
                        location: record.location(shown, record.field_start(dn_column)),
                        message: format!(
                            "duplicate DN {dn:?}, already on line {first}: expected each DN once, compared without regard to case (the first is kept)"
                        ),
                    })?;
                    continue;
                }
                seen_dns.insert(key, line);
            }
            seen.insert(anchor, line);
            sink.event(ImportEvent::Object(object))?;
        }
        Ok(())
    }
}
