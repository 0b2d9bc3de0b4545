//! One writer: an advisory lock file beside the store that names its holder.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::StoreError;

/// Holds the store's lock until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Takes the lock at once or fails naming the holder. `holder` describes
    /// this process (command, run, pid) for whoever is refused next.
    pub fn acquire(lock_path: &Path, holder: &str) -> Result<StoreLock, StoreError> {
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        // Never through a symbolic link: the lock is rewritten with this
        // process's description, and a link would aim that write at
        // whatever file it points to.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let mut file = options.open(lock_path).map_err(|e| {
            let is_link =
                std::fs::symlink_metadata(lock_path).is_ok_and(|m| m.file_type().is_symlink());
            if is_link {
                StoreError::io(
                    lock_path,
                    std::io::Error::other(
                        "the lock file is a symbolic link; refusing to follow it (remove the link)",
                    ),
                )
            } else {
                StoreError::io(lock_path, e)
            }
        })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut held_by = String::new();
                let _ = file.read_to_string(&mut held_by);
                let held_by = held_by.trim().to_string();
                let gives_way = held_by.ends_with(GIVES_WAY) && !holder.ends_with(GIVES_WAY);
                if !(gives_way && ask_to_give_way(&file, lock_path)?) {
                    return Err(StoreError::Locked {
                        path: lock_path.to_path_buf(),
                        holder: if held_by.is_empty() {
                            "another mvsync process".to_string()
                        } else {
                            held_by
                        },
                    });
                }
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io(lock_path, e)),
        }
        file.set_len(0).map_err(|e| StoreError::io(lock_path, e))?;
        file.rewind().map_err(|e| StoreError::io(lock_path, e))?;
        file.write_all(holder.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| StoreError::io(lock_path, e))?;
        Ok(StoreLock {
            _file: file,
            path: lock_path.to_path_buf(),
        })
    }

    /// Takes a shared hold on the lock file without writing it (a reader
    /// that may not write the store), failing at once, naming the holder,
    /// while a writer holds it. No lock file: nothing to wait for.
    pub fn share(lock_path: &Path) -> Result<Option<File>, StoreError> {
        let mut options = OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let mut file = match options.open(lock_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(lock_path, e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(file)),
            Err(TryLockError::WouldBlock) => {
                let mut held_by = String::new();
                let _ = file.read_to_string(&mut held_by);
                Err(StoreError::Locked {
                    path: lock_path.to_path_buf(),
                    holder: match held_by.trim() {
                        "" => "another mvsync process".to_string(),
                        h => h.to_string(),
                    },
                })
            }
            Err(TryLockError::Error(e)) => Err(StoreError::io(lock_path, e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a writer waits for this holder to give the store up.
    pub fn asked_to_give_way(&self) -> bool {
        give_way_asked(&self.path)
    }
}

/// How a holder that gives the store up to any writer that asks (the
/// console) ends its description in the lock file.
pub const GIVES_WAY: &str = "; gives way to runs";

/// How long a writer waits for a holder that gives way.
const GIVE_WAY_WAIT: Duration = Duration::from_secs(10);

fn wanted_path(lock_path: &Path) -> PathBuf {
    let mut name = lock_path.as_os_str().to_os_string();
    name.push(".wanted");
    PathBuf::from(name)
}

/// Whether a writer asked the holder of the lock at `lock_path` to give
/// way, and is still waiting (a request older than the wait is stale: its
/// writer gave up or died).
pub fn give_way_asked(lock_path: &Path) -> bool {
    std::fs::metadata(wanted_path(lock_path))
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().unwrap_or_default() < GIVE_WAY_WAIT + Duration::from_secs(2))
}

/// Asks the holder to give way (a `.wanted` file beside the lock) and
/// waits for the lock; whether it was taken.
fn ask_to_give_way(file: &File, lock_path: &Path) -> Result<bool, StoreError> {
    let wanted = wanted_path(lock_path);
    std::fs::write(&wanted, b"").map_err(|e| StoreError::io(&wanted, e))?;
    let deadline = Instant::now() + GIVE_WAY_WAIT;
    let taken = loop {
        match file.try_lock() {
            Ok(()) => break true,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => break false,
            Err(TryLockError::Error(e)) => {
                let _ = std::fs::remove_file(&wanted);
                return Err(StoreError::io(lock_path, e));
            }
        }
    };
    let _ = std::fs::remove_file(&wanted);
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("precious.txt");
        std::fs::write(&target, "keep me").expect("write");
        let path = dir.path().join("store.lock");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let err = StoreLock::acquire(&path, "mvsync check").expect_err("must refuse");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep me");
    }

    #[test]
    fn a_holder_that_gives_way_is_asked_and_the_writer_gets_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.lock");
        let console = StoreLock::acquire(&path, &format!("mvsync console{GIVES_WAY}"))
            .expect("console takes the lock");
        assert!(!console.asked_to_give_way());
        let handover = std::thread::spawn(move || {
            while !console.asked_to_give_way() {
                std::thread::sleep(Duration::from_millis(10));
            }
            drop(console);
        });
        let run = StoreLock::acquire(&path, "mvsync run nightly").expect("the run gets the lock");
        handover.join().expect("join");
        assert!(
            !give_way_asked(&path),
            "the request is withdrawn once granted"
        );
        let err = StoreLock::acquire(&path, &format!("mvsync console{GIVES_WAY}"))
            .expect_err("a run never gives way");
        assert!(err.to_string().contains("mvsync run nightly"), "{err}");
        drop(run);
    }

    #[test]
    fn second_holder_is_refused_with_the_first_ones_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.lock");
        let first = StoreLock::acquire(&path, "run 7 (mvsync run hourly, pid 42)").expect("first");
        let err = StoreLock::acquire(&path, "other").expect_err("second must fail");
        assert!(
            err.to_string()
                .contains("run 7 (mvsync run hourly, pid 42)"),
            "{err}"
        );
        drop(first);
        StoreLock::acquire(&path, "third").expect("free again after drop");
    }
}
