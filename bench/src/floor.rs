//! The storage floor of `../shared/PERFORMANCE.md`, measured in the same
//! run on the same data as mvsync: parse the HR CSV with `csv`, serialise
//! each row with `bincode` (`Vec<(String, String)>`), write it to `sled`
//! (default settings) in batches of 10,000, flush. The import floor writes
//! one record per identity; the sync floor (import included) five: the
//! source object, the metaverse object, two target objects, one index
//! entry. No engine logic at all: what any design pays at least.

use std::path::Path;
use std::time::Instant;

/// How long the floor took and what it left on disk.
pub struct Floor {
    pub seconds: f64,
    pub disk: u64,
}

/// Writes `records` records per CSV row of `hr` into a new sled store at `db`.
pub fn run(hr: &Path, db: &Path, records: usize) -> Result<Floor, String> {
    let _ = std::fs::remove_dir_all(db);
    let started = Instant::now();
    let tree = sled::open(db).map_err(|e| format!("sled {}: {e}", db.display()))?;
    let mut reader = csv::Reader::from_path(hr).map_err(|e| format!("{}: {e}", hr.display()))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for (n, row) in reader.records().enumerate() {
        let row = row.map_err(|e| e.to_string())?;
        let pairs: Vec<(String, String)> = header
            .iter()
            .cloned()
            .zip(row.iter().map(str::to_owned))
            .collect();
        let value = bincode::serialize(&pairs).map_err(|e| e.to_string())?;
        for r in 0..records {
            let mut key = vec![b'a' + r as u8];
            key.extend_from_slice(&(n as u64).to_be_bytes());
            if r == records - 1 && records > 1 {
                // The index entry: a small key to the object, no copy.
                batch.insert(key, (n as u64).to_be_bytes().to_vec());
            } else {
                batch.insert(key, value.clone());
            }
            in_batch += 1;
        }
        if in_batch >= 10_000 {
            tree.apply_batch(std::mem::take(&mut batch))
                .map_err(|e| e.to_string())?;
            in_batch = 0;
        }
    }
    tree.apply_batch(batch).map_err(|e| e.to_string())?;
    tree.flush().map_err(|e| e.to_string())?;
    drop(tree);
    Ok(Floor {
        seconds: started.elapsed().as_secs_f64(),
        disk: du(db),
    })
}

/// Bytes under `path`.
pub fn du(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| du(&e.path()))
        .sum()
}
