//! The row index an export run leaves beside its file
//! (`.<file name>.mvsync-index`), so that the next run finds its rows
//! without parsing the file: where each row is, its anchor's hash, and,
//! when the run indexed the file's DNs, the hash of each indexed DN.
//!
//! It is a cache, never the truth. It is used only for the very content
//! it describes: the file's stamp (length, modification time, inode) and
//! what shapes the rows (delimiter, formula escaping, anchor and DN
//! columns, columns, this mvsync's version) must match, the rows must
//! cover the file exactly, the file's CRC-32 must be the one it records
//! (a stamp cannot see an edit that keeps the length within one tick of
//! the clock), and its own checksum must hold. Anything else (a file
//! edited, replaced or restored; an index damaged, truncated, stale or
//! from another version) and the file is parsed as before. A look-up
//! still compares the row's anchor cell, so a hash alone never updates
//! a row.
//!
//! Format (integers little-endian): the magic line, the format version
//! (u32), the settings fingerprint (u64), the stamp (u32 length, bytes),
//! the file's CRC-32 (u32), the hash keys (two u64), the first row's
//! offset (u64), the row count (u64), each row's length without its `\n`
//! (u32 each), each row's anchor hash (u64 each), the DN index (u8 0 for
//! none; 1, its hash keys (two u64), its entry count (u64), each entry's
//! row (u32) and hash (u64)), then FNV-1a 64 of everything before it
//! (u64).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::atomic;
use super::watermark::Fnv64;

const MAGIC: &[u8] = b"mvsync csv row index\n";
const VERSION: u32 = 1;

/// What the index holds of a file's rows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RowIndex {
    /// The CRC-32 of the whole file.
    pub(crate) content: u32,
    /// The keys the anchor hashes were made with.
    pub(crate) keys: (u64, u64),
    /// The first row's offset (the header's end).
    pub(crate) first: u64,
    /// Each row's length without its `\n` (rows follow each other), and
    /// its anchor's hash.
    pub(crate) rows: Vec<(u32, u64)>,
    /// The DN index, when the run built it.
    pub(crate) dns: Option<DnHashes>,
}

/// A DN index: its hash keys, and the rows it holds with their normalized
/// DN's hash.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DnHashes {
    pub(crate) keys: (u64, u64),
    pub(crate) rows: Vec<(u32, u64)>,
}

/// Where the index of `file` is kept.
pub(crate) fn path_of(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    file.with_file_name(format!(".{name}.mvsync-index"))
}

/// The index of `file` if there is one for this version of it (`stamp`)
/// and these settings (`fingerprint`), whole and intact. (The caller
/// checks the file's content against [`RowIndex::content`].)
pub(crate) fn read(file: &Path, stamp: &[u8], fingerprint: u64) -> Option<RowIndex> {
    let bytes = fs::read(path_of(file)).ok()?;
    let mut r = Fields(&bytes);
    if r.take(MAGIC.len())? != MAGIC
        || r.u32()? != VERSION
        || r.u64()? != fingerprint
        || r.sized()? != stamp
    {
        return None;
    }
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if Fields(sum).u64()? != checksum(body) {
        return None;
    }
    let content = r.u32()?;
    let keys = (r.u64()?, r.u64()?);
    let first = r.u64()?;
    let count = usize::try_from(r.u64()?).ok()?;
    let mut lengths = Fields(r.take(count.checked_mul(4)?)?);
    let mut hashes = Fields(r.take(count.checked_mul(8)?)?);
    let rows = (0..count)
        .map(|_| Some((lengths.u32()?, hashes.u64()?)))
        .collect::<Option<_>>()?;
    let dns = match r.take(1)? {
        [0] => None,
        [1] => {
            let keys = (r.u64()?, r.u64()?);
            let count = usize::try_from(r.u64()?).ok()?;
            let rows = (0..count)
                .map(|_| Some((r.u32()?, r.u64()?)))
                .collect::<Option<_>>()?;
            Some(DnHashes { keys, rows })
        }
        _ => return None,
    };
    (r.0.len() == 8).then_some(RowIndex {
        content,
        keys,
        first,
        rows,
        dns,
    })
}

/// Writes the index of `file` (replacing any atomically), readable by
/// whoever may read the file.
pub(crate) fn write(
    file: &Path,
    stamp: &[u8],
    fingerprint: u64,
    index: &RowIndex,
) -> io::Result<()> {
    let rows = index.rows.len();
    let mut out = Vec::with_capacity(MAGIC.len() + 64 + stamp.len() + rows * 12);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out.extend_from_slice(&(stamp.len() as u32).to_le_bytes());
    out.extend_from_slice(stamp);
    out.extend_from_slice(&index.content.to_le_bytes());
    out.extend_from_slice(&index.keys.0.to_le_bytes());
    out.extend_from_slice(&index.keys.1.to_le_bytes());
    out.extend_from_slice(&index.first.to_le_bytes());
    out.extend_from_slice(&(rows as u64).to_le_bytes());
    for (len, _) in &index.rows {
        out.extend_from_slice(&len.to_le_bytes());
    }
    for (_, hash) in &index.rows {
        out.extend_from_slice(&hash.to_le_bytes());
    }
    match &index.dns {
        None => out.push(0),
        Some(DnHashes { keys, rows }) => {
            out.push(1);
            out.extend_from_slice(&keys.0.to_le_bytes());
            out.extend_from_slice(&keys.1.to_le_bytes());
            out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
            for (row, hash) in rows {
                out.extend_from_slice(&row.to_le_bytes());
                out.extend_from_slice(&hash.to_le_bytes());
            }
        }
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    atomic::replace_like(&path_of(file), file, |w| w.write_all(&out))?;
    Ok(())
}

/// Removes the index of `file`, if there is one: it cannot describe the
/// file any more.
pub(crate) fn remove(file: &Path) {
    let _ = fs::remove_file(path_of(file));
}

/// The fingerprint of what shapes a file's rows: the table writes a row
/// as these settings (and this mvsync's encoding and DN normalization)
/// say, so an index made under others may not hold.
pub(crate) fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut hash = Fnv64::new();
    hash.write(env!("CARGO_PKG_VERSION").as_bytes());
    for part in parts {
        hash.write(&(part.len() as u64).to_le_bytes());
        hash.write(part);
    }
    hash.finish()
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut hash = Fnv64::new();
    hash.write(bytes);
    hash.finish()
}

/// Reads an index's fields in order; `None` past its end.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn sized(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.take(usize::try_from(n).ok()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample() -> RowIndex {
        RowIndex {
            content: 0xdead_beef,
            keys: (7, 9),
            first: 12,
            rows: vec![(5, 1), (0, u64::MAX), (70_000, 3)],
            dns: Some(DnHashes {
                keys: (4, 5),
                rows: vec![(0, 8), (2, u64::MAX)],
            }),
        }
    }

    #[test]
    fn an_index_reads_back_only_for_its_stamp_and_settings_and_intact() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.csv");
        write(&file, b"stamp", 42, &sample()).unwrap();
        assert!(path_of(&file).ends_with(".users.csv.mvsync-index"));
        assert_eq!(read(&file, b"stamp", 42), Some(sample()));
        let without_dns = RowIndex {
            dns: None,
            ..sample()
        };
        write(&file, b"stamp", 42, &without_dns).unwrap();
        assert_eq!(read(&file, b"stamp", 42), Some(without_dns));
        write(&file, b"stamp", 42, &sample()).unwrap();
        assert_eq!(
            read(&file, b"other", 42),
            None,
            "another version of the file"
        );
        assert_eq!(read(&file, b"stamp", 43), None, "other settings");
        let whole = fs::read(path_of(&file)).unwrap();
        for at in [0, MAGIC.len() + 2, whole.len() / 2, whole.len() - 1] {
            let mut damaged = whole.clone();
            damaged[at] ^= 0x10;
            fs::write(path_of(&file), &damaged).unwrap();
            assert_eq!(read(&file, b"stamp", 42), None, "a byte flipped at {at}");
        }
        fs::write(path_of(&file), &whole[..whole.len() - 9]).unwrap();
        assert_eq!(read(&file, b"stamp", 42), None, "truncated");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        remove(&file);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn an_index_is_readable_by_whoever_may_read_its_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.csv");
        fs::write(&file, "id\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        write(&file, b"stamp", 42, &sample()).unwrap();
        let mode = fs::metadata(path_of(&file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
