//! The delta watermark: how much of the change file was consumed, and a hash
//! of those bytes, so the next delta resumes after them only if the file still
//! starts with exactly them.
//!
//! Format: `v1:<length in bytes>:<FNV-1a 64 of those bytes, 16 lower-case hex digits>`.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use engine::ConnectorError;

use super::reader::read_error;

/// The FNV-1a 64-bit hash, fed incrementally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub(crate) fn new() -> Self {
        Fnv64(Self::OFFSET_BASIS)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// A consumed prefix of the change file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watermark {
    /// Bytes consumed from the start of the file.
    pub(crate) len: u64,
    /// FNV-1a 64 of those bytes.
    pub(crate) hash: u64,
}

impl Watermark {
    /// The watermark of an empty (or missing) change file.
    pub(crate) fn empty() -> Self {
        Watermark {
            len: 0,
            hash: Fnv64::new().finish(),
        }
    }

    /// Parses the engine's stored string.
    pub(crate) fn parse(s: &str) -> Result<Self, ConnectorError> {
        let malformed = || {
            ConnectorError::new(format!(
                "malformed csv watermark {s:?}: expected \"v1:<length>:<16 hex digits>\""
            ))
        };
        let mut parts = s.split(':');
        let (Some("v1"), Some(len), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        if hash.len() != 16 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let len = len.parse().map_err(|_| malformed())?;
        let hash = u64::from_str_radix(hash, 16).map_err(|_| malformed())?;
        Ok(Watermark { len, hash })
    }

    /// The current state of a whole file's complete lines: a later delta
    /// reads only what is appended after them (a last line still being
    /// written included). A missing file is an empty one.
    pub(crate) fn of_file(path: &Path) -> Result<Self, ConnectorError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Watermark::empty()),
            Err(e) => return Err(read_error(path, &e)),
        };
        let mut file = file;
        let complete = super::reader::complete_length(&mut file, path)?;
        file.seek(std::io::SeekFrom::Start(0))
            .map_err(|e| read_error(path, &e))?;
        let mut file = file.take(complete);
        let mut hasher = Fnv64::new();
        let mut len = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(path, &e)),
            };
            hasher.write(&buf[..n]);
            len += n as u64;
        }
        Ok(Watermark {
            len,
            hash: hasher.finish(),
        })
    }
}

impl std::fmt::Display for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v1:{}:{:016x}", self.len, self.hash)
    }
}

/// What the start of a change file says about a stored watermark.
#[derive(Debug)]
pub(crate) enum Prefix {
    /// The file starts with the watermarked bytes: resume after them.
    Same {
        /// The hash state after those bytes, to extend over what follows.
        hasher: Fnv64,
        /// Line feeds among those bytes (the resumed line is one more).
        newlines: u64,
    },
    /// The file is shorter or starts differently: it is a new change file.
    Different,
}

/// Reads the first `mark.len` bytes of `file` (from its current position,
/// the start) and compares them with the watermark.
pub(crate) fn check_prefix(
    file: &mut impl Read,
    mark: Watermark,
    path: &Path,
) -> Result<Prefix, ConnectorError> {
    let mut hasher = Fnv64::new();
    let mut newlines = 0u64;
    let mut left = mark.len;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => return Ok(Prefix::Different),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(path, &e)),
        };
        hasher.write(&buf[..n]);
        newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        left -= n as u64;
    }
    if hasher.finish() == mark.hash {
        Ok(Prefix::Same { hasher, newlines })
    } else {
        Ok(Prefix::Different)
    }
}
