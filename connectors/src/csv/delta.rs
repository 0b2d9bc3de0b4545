//! Delta import: the rows appended to the change file since the watermark,
//! each an add, a modify (the object's full row) or a delete.
//!
//! The watermark records the consumed prefix of the file (length and hash).
//! When the file still starts with those bytes, only what follows is read;
//! otherwise the file is a new one and is read from its start.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::sync::Arc;

use engine::{ConnectorError, ImportEvent, ItemError};

use super::config::CHANGE_TYPE_COLUMN;
use super::reader::{complete_length, read_error, RecordReader, Start};
use super::rows::Header;
use super::stream::{Sink, Stop};
use super::watermark::{check_prefix, Prefix, Watermark};
use super::Settings;

/// A delta import ready to stream.
pub(crate) enum DeltaImport {
    /// There is no change file: no changes, and the watermark stays.
    Missing {
        /// The watermark the engine passed in, echoed at the end.
        previous: Option<Watermark>,
    },
    /// The change file is open, positioned at the first change to report.
    Reading {
        /// The resolved configuration.
        settings: Arc<Settings>,
        /// The change file, as configured (for locations).
        shown: String,
        /// Positioned after the header, or after the watermark.
        reader: Box<RecordReader>,
        /// `None` for a change file without even a header (no changes).
        header: Option<Header>,
    },
}

/// Opens the change file and positions it after `watermark`.
pub(crate) fn open(
    settings: Arc<Settings>,
    watermark: Option<&str>,
) -> Result<DeltaImport, ConnectorError> {
    let Some(source) = settings.change_file.clone() else {
        return Err(ConnectorError::new(format!(
            "cannot delta-import {}: no `change_file` is configured",
            settings.file.shown
        )));
    };
    let previous = watermark.map(Watermark::parse).transpose()?;
    let mut file = match File::open(&source.path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::info!(file = %source.path.display(), "no change file: no changes to import");
            return Ok(DeltaImport::Missing { previous });
        }
        Err(e) => return Err(read_error(&source.path, &e)),
    };
    let complete = complete_length(&mut file, &source.path)?;
    let full = file
        .metadata()
        .map_err(|e| read_error(&source.path, &e))?
        .len();
    if complete < full {
        tracing::info!(
            file = %source.path.display(),
            "the change file's last line has no line end yet (still being written): it is left for the next delta import"
        );
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| read_error(&source.path, &e))?;
    let prefix = match previous {
        Some(mark) => check_prefix(&mut file, mark, &source.path)?,
        None => Prefix::Different,
    };
    let delimiter = settings.config.delimiter.byte();
    let mut reader = RecordReader::new(
        file,
        &source.path,
        delimiter,
        Start::Beginning { hash: true },
    )?;
    reader.limit_to(complete);
    let Some(header) = Header::read(&mut reader, &source.shown, &settings.config, true)? else {
        return Ok(DeltaImport::Reading {
            settings,
            shown: source.shown,
            reader: Box::new(reader),
            header: None,
        });
    };
    match (prefix, previous) {
        // A watermark inside the header (an empty file's) means: from the start.
        (Prefix::Same { hasher, newlines }, Some(mark)) if mark.len >= reader.offset() => {
            let start = Start::Resume {
                offset: mark.len,
                line: newlines + 1,
                hasher,
            };
            reader = RecordReader::new(reader.into_file(), &source.path, delimiter, start)?;
            reader.limit_to(complete);
        }
        (Prefix::Same { .. }, _) | (_, None) => {}
        (Prefix::Different, Some(_)) => tracing::info!(
            file = %source.path.display(),
            "the change file does not start with the part already imported: reading it from the start"
        ),
    }
    Ok(DeltaImport::Reading {
        settings,
        shown: source.shown,
        reader: Box::new(reader),
        header: Some(header),
    })
}

impl DeltaImport {
    /// Streams the changes, then the new watermark.
    pub(crate) fn run(self, sink: &Sink) {
        let outcome = match self {
            DeltaImport::Missing { previous: None } => Ok(()),
            DeltaImport::Missing {
                previous: Some(mark),
            } => sink.event(ImportEvent::Watermark(mark.to_string())),
            DeltaImport::Reading {
                settings,
                shown,
                mut reader,
                header,
            } => {
                let streamed = match &header {
                    Some(header) => stream_changes(&settings, &shown, &mut reader, header, sink),
                    None => Ok(()),
                };
                streamed.and_then(|()| match reader.watermark() {
                    Some(mark) => sink.event(ImportEvent::Watermark(mark.to_string())),
                    None => Ok(()),
                })
            }
        };
        sink.finish(outcome);
    }
}

fn stream_changes(
    settings: &Settings,
    shown: &str,
    reader: &mut RecordReader,
    header: &Header,
    sink: &Sink,
) -> Result<(), Stop> {
    let change_column = header.change_type.unwrap_or(header.anchor);
    while let Some(record) = reader.next_record()? {
        let row = match header.row(&record, shown) {
            Ok(row) => row,
            Err(bad) => {
                sink.bad(bad)?;
                continue;
            }
        };
        let change = row.cells[change_column].to_ascii_lowercase();
        let event = match change.as_str() {
            "add" | "modify" => match header.object(&record, row, shown, &settings.config) {
                Ok(object) => ImportEvent::Object(object),
                Err(bad) => {
                    sink.bad(bad)?;
                    continue;
                }
            },
            "delete" => ImportEvent::Delete {
                anchor: row.cells[header.anchor].clone(),
            },
            _ => {
                sink.bad(ItemError {
                    location: record.location(shown, record.field_start(change_column)),
                    message: format!(
                        "unknown {CHANGE_TYPE_COLUMN} {:?}: expected add, modify or delete",
                        row.cells[change_column]
                    ),
                })?;
                continue;
            }
        };
        sink.event(event)?;
    }
    Ok(())
}
