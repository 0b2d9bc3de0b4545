//! Replaces a file so that a crash at any point leaves either the old file or
//! the new one, never half of one: write a temporary file in the same
//! directory, flush it to disk, rename it over the target, then flush the
//! directory so the rename itself survives a power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `target` with what `write` produces. The new file keeps the
/// permissions of the file it replaces. Returns the new file (open for
/// reading and writing; the export reads its rows from it) and what
/// `write` returned.
pub(crate) fn replace<T>(
    target: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<(File, T)> {
    replace_like(target, target, write)
}

/// [`replace`], the new file taking the permissions of `like` (a file
/// kept beside another takes that one's).
pub(crate) fn replace_like<T>(
    target: &Path,
    like: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<(File, T)> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = target.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let mut temp = Temp {
        path: dir.join(format!(
            ".{}.{}-{}.mvsync-tmp",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )),
        renamed: false,
    };
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp.path)
    };
    let file = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Left by an earlier run of a process with our id that crashed.
            fs::remove_file(&temp.path)?;
            open()?
        }
        other => other?,
    };
    if let Ok(metadata) = fs::metadata(like) {
        file.set_permissions(metadata.permissions())?;
    }
    let mut out = BufWriter::new(file);
    let written = write(&mut out)?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    fs::rename(&temp.path, target)?;
    temp.renamed = true;
    sync_dir(dir)?;
    Ok((file, written))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is durable
    // once the file system commits it.
    Ok(())
}

/// A temporary file, removed unless it was renamed into place.
struct Temp {
    path: PathBuf,
    renamed: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: the target is intact either way.
            let _ = fs::remove_file(&self.path);
        }
    }
}
