//! Reads CSV records with the `csv` crate while keeping each record's raw
//! bytes, so that any problem can be placed at a line and column of the file
//! (a record may span several physical lines).
//!
//! The reader also strips a UTF-8 byte-order mark, can start at an offset (a
//! resumed delta import) and can hash every byte it reads (the delta watermark).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ::csv::ByteRecord;
use engine::ConnectorError;

use super::watermark::{Fnv64, Watermark};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where a reader starts in its file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// At the first byte (after a byte-order mark), hashing what it reads if asked.
    Beginning {
        /// Whether to hash the bytes read, for [`RecordReader::watermark`].
        hash: bool,
    },
    /// At a record boundary inside the file (a resumed delta import).
    Resume {
        /// The file offset to start at.
        offset: u64,
        /// The line number of the byte at `offset`.
        line: u64,
        /// The hash of the bytes before `offset`.
        hasher: Fnv64,
    },
}

/// Passes bytes through from the file, keeping those the current record may
/// span and hashing them all.
struct Tap {
    file: File,
    kept: Vec<u8>,
    hasher: Option<Fnv64>,
    total: u64,
    /// The absolute file offset of the next byte read.
    pos: u64,
    /// Read nothing at or past this absolute offset.
    limit: Option<u64>,
}

impl Read for Tap {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let out = match self.limit {
            Some(limit) => {
                let left = usize::try_from(limit.saturating_sub(self.pos)).unwrap_or(usize::MAX);
                let len = out.len().min(left);
                &mut out[..len]
            }
            None => out,
        };
        if out.is_empty() {
            return Ok(0);
        }
        let n = self.file.read(out)?;
        self.pos += n as u64;
        let got = &out[..n];
        self.kept.extend_from_slice(got);
        if let Some(hasher) = &mut self.hasher {
            hasher.write(got);
        }
        self.total += n as u64;
        Ok(n)
    }
}

/// A CSV reader that knows where each record is.
pub(crate) struct RecordReader {
    csv: ::csv::Reader<Tap>,
    record: ByteRecord,
    path: PathBuf,
    delimiter: u8,
    /// The file offset of the first byte the CSV parser sees.
    start: u64,
    /// The parser-relative offset of `Tap::kept[0]`.
    base: u64,
    /// The line number of `Tap::kept[0]`.
    line: u64,
    /// How many bytes at the front of `Tap::kept` the last record used.
    used: usize,
    /// Whether the file starts with a byte-order mark.
    bom: bool,
}

impl RecordReader {
    /// Opens `path` for reading; a missing or unreadable file is a fatal
    /// error naming the path and the OS error.
    pub(crate) fn open_file(path: &Path) -> Result<File, ConnectorError> {
        File::open(path).map_err(|e| read_error(path, &e))
    }

    /// Starts reading `file` (read from `path`) at `start`.
    pub(crate) fn new(
        mut file: File,
        path: &Path,
        delimiter: u8,
        start: Start,
    ) -> Result<Self, ConnectorError> {
        let (offset, line, hasher) = match start {
            Start::Beginning { hash } => {
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| read_error(path, &e))?;
                let mut head = Vec::with_capacity(BOM.len());
                (&mut file)
                    .take(BOM.len() as u64)
                    .read_to_end(&mut head)
                    .map_err(|e| read_error(path, &e))?;
                let mut hasher = hash.then(Fnv64::new);
                let offset = if head == BOM {
                    if let Some(hasher) = &mut hasher {
                        hasher.write(BOM);
                    }
                    BOM.len() as u64
                } else {
                    file.seek(SeekFrom::Start(0))
                        .map_err(|e| read_error(path, &e))?;
                    0
                };
                (offset, 1, hasher)
            }
            Start::Resume {
                offset,
                line,
                hasher,
            } => {
                file.seek(SeekFrom::Start(offset))
                    .map_err(|e| read_error(path, &e))?;
                (offset, line, Some(hasher))
            }
        };
        let tap = Tap {
            file,
            kept: Vec::new(),
            hasher,
            total: 0,
            pos: offset,
            limit: None,
        };
        let csv = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(tap);
        Ok(RecordReader {
            csv,
            record: ByteRecord::new(),
            path: path.to_owned(),
            delimiter,
            start: offset,
            base: 0,
            line,
            used: 0,
            bom: matches!(start, Start::Beginning { .. }) && offset == BOM.len() as u64,
        })
    }

    /// The next record, or `None` at the end of the file.
    pub(crate) fn next_record(&mut self) -> Result<Option<Record<'_>>, ConnectorError> {
        let tap = self.csv.get_mut();
        let used = self.used.min(tap.kept.len());
        self.line += count_newlines(&tap.kept[..used]);
        tap.kept.drain(..used);
        self.base += used as u64;
        self.used = 0;

        let more = self.csv.read_byte_record(&mut self.record).map_err(|e| {
            ConnectorError::new(format!("cannot read {}: {e}", self.path.display()))
        })?;
        if !more {
            return Ok(None);
        }
        let kept = &self.csv.get_ref().kept;
        let end = self.csv.position().byte().saturating_sub(self.base);
        let len = usize::try_from(end).unwrap_or(usize::MAX).min(kept.len());
        self.used = len;
        let span = &kept[..len];
        let blank = span
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        Ok(Some(Record {
            fields: &self.record,
            offset: self.start + self.base + blank as u64,
            raw: &span[blank..],
            line: self.line + count_newlines(&span[..blank]),
            delimiter: self.delimiter,
        }))
    }

    /// Reads nothing at or past the absolute file offset `limit`: the
    /// records after it are not there yet.
    pub(crate) fn limit_to(&mut self, limit: u64) {
        self.csv.get_mut().limit = Some(limit);
    }

    /// The file offset just after the last record returned (the header's end,
    /// right after reading it).
    pub(crate) fn offset(&self) -> u64 {
        self.start + self.base + self.used as u64
    }

    /// Whether the file starts with a UTF-8 byte-order mark (which the
    /// records never see).
    pub(crate) fn has_bom(&self) -> bool {
        self.bom
    }

    /// Everything read so far, as a watermark (when hashing). Meaningful at
    /// the end of the file, where every byte read has been consumed.
    pub(crate) fn watermark(&self) -> Option<Watermark> {
        let tap = self.csv.get_ref();
        tap.hasher.map(|h| Watermark {
            len: self.start + tap.total,
            hash: h.finish(),
        })
    }

    /// Gives the file back, at an unspecified position.
    pub(crate) fn into_file(self) -> File {
        self.csv.into_inner().file
    }
}

/// The length of `file`'s complete lines: up to and including its last
/// line feed. A change file's last line without one is still being written
/// (an appending writer is mid-line), so a delta import stops before it and
/// its watermark does not reach into it.
pub(crate) fn complete_length(file: &mut File, path: &Path) -> Result<u64, ConnectorError> {
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(|e| read_error(path, &e))?;
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(chunk))
            .map_err(|e| read_error(path, &e))?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// One record with its raw bytes, from its first byte through its line
/// terminator (if any).
pub(crate) struct Record<'a> {
    /// The fields, unquoted.
    pub(crate) fields: &'a ByteRecord,
    /// The file offset of `raw`'s first byte.
    offset: u64,
    raw: &'a [u8],
    line: u64,
    delimiter: u8,
}

impl Record<'_> {
    /// The line the record starts on.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The file offset of the record's first byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The record's bytes as in the file, without its line terminator.
    pub(crate) fn content(&self) -> &[u8] {
        &self.raw[..self.end()]
    }

    /// `<shown>:<line>:<column>` of a byte offset in the record, the column
    /// counted in characters of its physical line, both 1-based.
    pub(crate) fn location(&self, shown: &str, offset: usize) -> String {
        let before = &self.raw[..offset.min(self.raw.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let column = count_chars(&before[line_start..]) + 1;
        format!("{shown}:{}:{column}", self.line + count_newlines(before))
    }

    /// The byte offset where field `index` starts, or the record's end when
    /// it has no such field.
    pub(crate) fn field_start(&self, index: usize) -> usize {
        self.scan()
            .starts
            .get(index)
            .copied()
            .unwrap_or_else(|| self.end())
    }

    /// The index of the field holding byte `offset`.
    pub(crate) fn field_at(&self, offset: usize) -> usize {
        self.scan()
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }

    /// The byte offset of the end of the record's last line, before its terminator.
    pub(crate) fn end(&self) -> usize {
        let mut end = self.raw.len();
        while end > 0 && matches!(self.raw[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        end
    }

    /// The offset of an opening quote that is never closed (the parser then
    /// ran to the end of the file).
    pub(crate) fn unterminated_quote(&self) -> Option<usize> {
        if self.raw.contains(&b'"') {
            self.scan().unterminated
        } else {
            None
        }
    }

    /// The offset of the first byte that is not valid UTF-8.
    pub(crate) fn first_invalid_utf8(&self) -> Option<usize> {
        std::str::from_utf8(self.raw).err().map(|e| e.valid_up_to())
    }

    /// Finds the fields in the raw bytes, as the parser does (RFC 4180 with
    /// its leniency: after a closing quote, a field goes on unquoted).
    fn scan(&self) -> Scan {
        let raw = self.raw;
        let mut starts = vec![0];
        let mut i = 0;
        loop {
            if raw.get(i) == Some(&b'"') {
                let open = i;
                i += 1;
                loop {
                    match raw[i..].iter().position(|&b| b == b'"') {
                        None => {
                            return Scan {
                                starts,
                                unterminated: Some(open),
                            }
                        }
                        Some(p) if raw.get(i + p + 1) == Some(&b'"') => i += p + 2,
                        Some(p) => {
                            i += p + 1;
                            break;
                        }
                    }
                }
            }
            while let Some(&b) = raw.get(i) {
                if b == self.delimiter || b == b'\r' || b == b'\n' {
                    break;
                }
                i += 1;
            }
            if raw.get(i) == Some(&self.delimiter) {
                i += 1;
                starts.push(i);
            } else {
                return Scan {
                    starts,
                    unterminated: None,
                };
            }
        }
    }
}

struct Scan {
    starts: Vec<usize>,
    unterminated: Option<usize>,
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Characters in UTF-8 bytes: every byte that does not continue a sequence.
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

/// The fatal error for a file that cannot be read.
pub(crate) fn read_error(path: &Path, e: &io::Error) -> ConnectorError {
    ConnectorError::new(format!("cannot read {}: {e}", path.display()))
}
