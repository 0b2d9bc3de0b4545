//! Quarantine: a connector whose exports fail too often in a run (more
//! than `quarantine_error_percent` of at least `quarantine_min_changes`
//! answered changes, as Entra provisioning quarantines a job) stops
//! exporting at once and stays quarantined — every later export of it
//! refused, before it sends anything — until an operator clears it
//! (`mvsync quarantine clear CONNECTOR`). Imports and syncs go on, so
//! `preview` keeps showing what waits.

use serde::{Deserialize, Serialize};

use crate::store::{codec, keys, Store, StoreError};

/// Why and since when a connector is quarantined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// The connector.
    pub connector: String,
    /// The export run that tripped it.
    pub run: u64,
    /// When, microseconds since the epoch.
    pub since: i64,
    /// What the run met (`12 of 20 changes failed (60 %)`).
    pub reason: String,
}

/// When an export's failures quarantine its connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantinePolicy {
    /// Quarantine above this share of failed changes, in percent (0: never).
    pub error_percent: u32,
    /// ...once at least this many changes were answered in the run.
    pub min_changes: u64,
}

impl Default for QuarantinePolicy {
    fn default() -> Self {
        QuarantinePolicy {
            error_percent: 50,
            min_changes: 20,
        }
    }
}

impl QuarantinePolicy {
    /// Whether `failed` of `answered` changes trip it.
    pub fn trips(&self, failed: u64, answered: u64) -> bool {
        self.error_percent > 0
            && answered >= self.min_changes.max(1)
            && failed * 100 > answered * u64::from(self.error_percent)
    }
}

/// The quarantine of `connector`, if it is quarantined.
pub fn get(store: &Store, connector: &str) -> Result<Option<Quarantine>, StoreError> {
    let Some(conn) = store.lookup(connector) else {
        return Ok(None);
    };
    store
        .get_raw(&keys::quarantine(conn))?
        .map(|raw| codec::decode(&raw, &|| format!("quarantine of {connector}")))
        .transpose()
}

/// Every quarantined connector.
pub fn all(store: &Store) -> Result<Vec<Quarantine>, StoreError> {
    let mut out = Vec::new();
    store.for_each_prefix(&[keys::tag::QUARANTINE], |k, v| {
        out.push(codec::decode(v, &|| format!("quarantine {k:?}"))?);
        Ok(())
    })?;
    Ok(out)
}

/// Quarantines a connector.
pub fn set(store: &Store, q: &Quarantine) -> Result<(), StoreError> {
    let mut txn = store.begin();
    txn.put_raw(
        keys::quarantine(store.intern(&q.connector)),
        codec::encode(q)?,
    );
    store.commit(txn)?;
    store.flush()
}

/// Clears a connector's quarantine; whether it was quarantined.
pub fn clear(store: &Store, connector: &str) -> Result<bool, StoreError> {
    if get(store, connector)?.is_none() {
        return Ok(false);
    }
    let mut txn = store.begin();
    txn.delete_raw(keys::quarantine(store.intern(connector)));
    store.commit(txn)?;
    store.flush()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_trips_above_its_share_once_enough_changes_are_in() {
        let p = QuarantinePolicy::default();
        assert!(!p.trips(19, 19), "too few to judge");
        assert!(!p.trips(10, 20), "exactly half is not above half");
        assert!(p.trips(11, 20));
        let off = QuarantinePolicy {
            error_percent: 0,
            min_changes: 1,
        };
        assert!(!off.trips(100, 100));
    }

    #[test]
    fn set_get_list_and_clear() {
        let store = Store::memory();
        let q = Quarantine {
            connector: "app".into(),
            run: 3,
            since: 1,
            reason: "r".into(),
        };
        set(&store, &q).expect("set");
        assert_eq!(get(&store, "app").expect("get"), Some(q.clone()));
        assert_eq!(all(&store).expect("all"), vec![q]);
        assert!(clear(&store, "app").expect("clear"));
        assert!(!clear(&store, "app").expect("clear"));
        assert_eq!(get(&store, "hr").expect("get"), None);
    }
}
