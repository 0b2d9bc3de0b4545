//! Paged, read-only views of a store for people clicking through it (the
//! console): connector-space and metaverse search, pending exports, a run's
//! errors. Every list walks one of the store's key ranges from a cursor and
//! stops after a page of matches or a budget of entries read, whichever
//! comes first, so a page costs the same in a store of 1,000 objects or
//! 1,000,000 and memory holds one page. A [`Browser`] has no method that
//! writes: it never commits.

use rules::Value;
use serde::Serialize;

use crate::history::{self, RunError, RunRecord};
use crate::inspect::{self, CsView, MvView, PendingChange};
use crate::model::{CsKey, CsObject, MvId, MvObject, Sym};
use crate::setup::{EngineConfig, Model};
use crate::store::{keys, Store, StoreError};

/// The most entries one page reads before it stops and offers to go on.
pub const SCAN_BUDGET: usize = 20_000;

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// What matched, in key order.
    pub items: Vec<T>,
    /// Where the next page starts (an opaque cursor), when the range goes on.
    pub next: Option<String>,
    /// How many entries this page read.
    pub scanned: usize,
}

/// A connector-space object's place in its lifecycle, as a search filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsFilterState {
    /// A staged import waits for sync.
    PendingImport,
    /// A staged export waits for export.
    PendingExport,
    /// The object carries an error.
    Error,
    /// The object is linked to no metaverse object.
    Disconnector,
}

impl CsFilterState {
    /// Every state's name, as URLs and the CLI spell them.
    pub const NAMES: [&'static str; 4] =
        ["pending-import", "pending-export", "error", "disconnector"];

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<CsFilterState> {
        Some(match name {
            "pending-import" => CsFilterState::PendingImport,
            "pending-export" => CsFilterState::PendingExport,
            "error" => CsFilterState::Error,
            "disconnector" => CsFilterState::Disconnector,
            _ => return None,
        })
    }

    fn holds(self, cs: &CsObject) -> bool {
        match self {
            CsFilterState::PendingImport => cs.pending_import.is_some(),
            CsFilterState::PendingExport => cs.pending_export.is_some(),
            CsFilterState::Error => cs.error.is_some(),
            CsFilterState::Disconnector => cs.link.is_none(),
        }
    }
}

/// A connector-space search. Every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsQuery {
    /// Anchors starting with this (walks the anchor index).
    pub anchor: Option<String>,
    /// DNs starting with this, compared as DNs compare (walks the DN index).
    pub dn: Option<String>,
    /// The attribute `value` is looked for in; any attribute when absent.
    pub attribute: Option<String>,
    /// A value containing this, ignoring case.
    pub value: Option<String>,
    /// The lifecycle state.
    pub state: Option<CsFilterState>,
}

/// A connector-space object in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsRow {
    /// Its id in the connector space.
    pub id: u64,
    /// Its anchor.
    pub anchor: Option<String>,
    /// Its DN.
    pub dn: Option<String>,
    /// Its object type.
    pub object_type: String,
    /// Its lifecycle state.
    pub state: String,
    /// Its metaverse object.
    pub mv: Option<MvId>,
    /// The kind of import staged.
    pub pending_import: Option<String>,
    /// The kind of export staged.
    pub pending_export: Option<&'static str>,
    /// The code of its error.
    pub error: Option<String>,
}

/// A metaverse search. Every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MvQuery {
    /// The metaverse object type.
    pub object_type: Option<String>,
    /// The attribute `value` is looked for in; any attribute when absent.
    pub attribute: Option<String>,
    /// A value containing this, ignoring case (an indexed attribute's exact
    /// value walks the join index instead).
    pub value: Option<String>,
}

/// A metaverse object in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MvRow {
    /// Its id.
    pub id: MvId,
    /// Its type.
    pub object_type: String,
    /// A few attributes that name it: the searched one first.
    pub summary: Vec<(String, Value)>,
    /// How many connector-space objects are linked.
    pub links: usize,
}

/// Attributes that usually name an object, in the order a row shows them.
const NAMING: [&str; 8] = [
    "displayName",
    "cn",
    "name",
    "accountName",
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "employeeId",
];

/// A read-only window on a store.
pub struct Browser {
    store: Store,
    model: Model,
}

impl Browser {
    /// Reads `store` under `config`'s connectors and rules. Unlike
    /// [`crate::Engine::new`] it repairs nothing and prunes nothing: an
    /// index that does not match the configuration is not used.
    pub fn new(store: Store, config: &EngineConfig) -> Browser {
        let model = Model::new(config, &store);
        Browser { store, model }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configured connectors' names, sorted.
    pub fn connectors(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .model
            .conns
            .keys()
            .map(|s| self.store.name(*s).to_string())
            .collect();
        out.sort();
        out
    }

    /// The engine's deletion threshold (deletes one export may make).
    pub fn deletion_threshold(&self) -> usize {
        self.model.deletion_threshold
    }

    fn conn(&self, name: &str) -> Option<Sym> {
        let sym = self.store.lookup(name)?;
        self.model.conns.contains_key(&sym).then_some(sym)
    }

    /// Every run, oldest first (runs are few: the retention window's).
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        history::runs(&self.store)
    }

    /// One run's record.
    pub fn run(&self, id: u64) -> Result<Option<RunRecord>, StoreError> {
        history::record(&self.store, id)
    }

    /// A page of a run's per-object errors.
    pub fn run_errors(
        &self,
        id: u64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<RunError>, StoreError> {
        self.walk(&keys::run_error_prefix(id), after, limit, |_, v| {
            Ok(Some(crate::store::codec::decode(v, &|| {
                format!("run error of run {id}")
            })?))
        })
    }

    /// A page of one connector's objects matching `query`; `None` when no
    /// such connector is configured.
    pub fn search_cs(
        &self,
        connector: &str,
        query: &CsQuery,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<CsRow>>, StoreError> {
        let Some(conn) = self.conn(connector) else {
            return Ok(None);
        };
        // Folded once, not per object read.
        let query = &CsQuery {
            dn: query.dn.as_deref().map(rules::dn::normalize),
            value: query.value.as_ref().map(|v| v.to_lowercase()),
            ..query.clone()
        };
        // The narrowest range that holds every match.
        let indexed = |prefix: Vec<u8>| -> Result<_, StoreError> {
            self.walk(&prefix, after, limit, |_, v| {
                let Some(id) = v.get(..8).and_then(|b| b.try_into().ok()) else {
                    return Ok(None);
                };
                self.cs_row(
                    CsKey {
                        conn,
                        id: u64::from_be_bytes(id),
                    },
                    query,
                )
            })
        };
        let queued = |tag: u8| -> Result<_, StoreError> {
            self.walk(&keys::conn_prefix(tag, conn), after, limit, |k, _| {
                match keys::decode_cs_keyed(k) {
                    Some(key) => self.cs_row(key, query),
                    None => Ok(None),
                }
            })
        };
        let page = if let Some(anchor) = &query.anchor {
            indexed(keys::anchor(conn, anchor))?
        } else if let Some(dn) = &query.dn {
            indexed(keys::dn(conn, dn))?
        } else if query.state == Some(CsFilterState::PendingImport)
            && !self.store.has_queue_spans(keys::tag::SYNC_SPAN, conn)?
        {
            // With spans queued, the object walk below filters by state.
            queued(keys::tag::SYNC_QUEUE)?
        } else if query.state == Some(CsFilterState::PendingExport)
            && !self.store.has_queue_spans(keys::tag::EXPORT_SPAN, conn)?
        {
            queued(keys::tag::EXPORT_QUEUE)?
        } else {
            self.walk(
                &keys::conn_prefix(keys::tag::CS, conn),
                after,
                limit,
                |k, v| {
                    let cs = self.store.decode_cs(k, v)?;
                    Ok(self.matches_cs(&cs, query).then(|| self.row_of(&cs)))
                },
            )?
        };
        Ok(Some(page))
    }

    fn cs_row(&self, key: CsKey, query: &CsQuery) -> Result<Option<CsRow>, StoreError> {
        let txn = self.store.begin();
        Ok(txn
            .cs(key)?
            .filter(|cs| self.matches_cs(cs, query))
            .map(|cs| self.row_of(&cs)))
    }

    /// `q` as the search folded it: its value lower-cased, its DN normalized.
    fn matches_cs(&self, cs: &CsObject, q: &CsQuery) -> bool {
        let anchor_ok = q.anchor.as_ref().is_none_or(|a| {
            cs.anchor
                .as_deref()
                .is_some_and(|x| x.starts_with(a.as_str()))
        });
        let dn_ok = q.dn.as_ref().is_none_or(|d| {
            cs.dn
                .as_deref()
                .is_some_and(|x| rules::dn::normalize(x).starts_with(d.as_str()))
        });
        let state_ok = q.state.is_none_or(|s| s.holds(cs));
        let value_ok = q.value.as_ref().is_none_or(|needle| {
            let attrs = cs
                .pending_import
                .as_ref()
                .map(|p| &p.attrs)
                .into_iter()
                .chain([&cs.hologram]);
            attrs.into_iter().any(|a| {
                a.iter().any(|(k, v)| {
                    self.attribute_named(*k, q.attribute.as_deref()) && contains(v, needle)
                })
            })
        });
        anchor_ok && dn_ok && state_ok && value_ok
    }

    fn attribute_named(&self, sym: Sym, wanted: Option<&str>) -> bool {
        wanted.is_none_or(|w| self.store.name(sym).eq_ignore_ascii_case(w))
    }

    fn row_of(&self, cs: &CsObject) -> CsRow {
        CsRow {
            id: cs.key.id,
            anchor: cs.anchor.clone(),
            dn: cs.dn.clone(),
            object_type: self.store.name(cs.object_type).to_string(),
            state: format!("{:?}", cs.state).to_lowercase(),
            mv: cs.link.map(|l| l.mv),
            pending_import: cs
                .pending_import
                .as_ref()
                .map(|p| format!("{:?}", p.kind).to_lowercase()),
            pending_export: cs
                .pending_export
                .as_ref()
                .map(crate::model::PendingExport::kind_name),
            error: cs.error.as_ref().map(|e| e.code.clone()),
        }
    }

    /// A page of metaverse objects matching `query`.
    pub fn search_mv(
        &self,
        query: &MvQuery,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<MvRow>, StoreError> {
        let folded = MvQuery {
            value: query.value.as_ref().map(|v| v.to_lowercase()),
            ..query.clone()
        };
        let indexed = query
            .attribute
            .as_deref()
            .and_then(|a| self.store.lookup(a))
            .filter(|a| self.store.indexed_attrs().contains(a));
        let mut after = after;
        let in_scan = after
            .and_then(cursor_key)
            .is_some_and(|k| k.first() == Some(&keys::tag::MV));
        if let (Some(attr), Some(value), false) = (indexed, &query.value, in_scan) {
            // An indexed attribute: its exact values through the join
            // index; when none is exact, the scan below looks for parts.
            let exact = self.walk(
                &keys::join_prefix(attr, value.as_bytes()),
                after,
                limit,
                |k, _| match keys::decode_join_mv(k) {
                    Some(id) => self.mv_row(id, &folded),
                    None => Ok(None),
                },
            )?;
            if !exact.items.is_empty() || exact.next.is_some() || after.is_some() {
                return Ok(exact);
            }
            after = None;
        }
        self.walk(&[keys::tag::MV], after, limit, |k, v| {
            let Some(id) = keys::decode_mv(k) else {
                return Ok(None);
            };
            let mv = self.store.decode_mv(k, v)?;
            Ok(self
                .matches_mv(&mv, &folded)
                .then(|| self.mv_row_of(id, &mv, &folded)))
        })
    }

    fn mv_row(&self, id: MvId, query: &MvQuery) -> Result<Option<MvRow>, StoreError> {
        let txn = self.store.begin();
        Ok(txn
            .mv(id)?
            .filter(|mv| self.matches_mv(mv, query))
            .map(|mv| self.mv_row_of(id, &mv, query)))
    }

    /// `q` as the search folded it: its value lower-cased.
    fn matches_mv(&self, mv: &MvObject, q: &MvQuery) -> bool {
        let type_ok = q
            .object_type
            .as_ref()
            .is_none_or(|t| self.store.name(mv.object_type).eq_ignore_ascii_case(t));
        let value_ok = q.value.as_ref().is_none_or(|needle| {
            mv.attrs.iter().any(|a| {
                self.attribute_named(a.name, q.attribute.as_deref()) && contains(&a.value, needle)
            })
        });
        let attribute_ok = q.value.is_some()
            || q.attribute.as_ref().is_none_or(|w| {
                mv.attrs
                    .iter()
                    .any(|a| self.store.name(a.name).eq_ignore_ascii_case(w))
            });
        type_ok && value_ok && attribute_ok
    }

    fn mv_row_of(&self, id: MvId, mv: &MvObject, q: &MvQuery) -> MvRow {
        let named = |a: &crate::model::MvAttr| self.store.name(a.name);
        let mut summary: Vec<(String, Value)> = Vec::new();
        let mut take = |wanted: &str| {
            if summary.len() < 3 && !summary.iter().any(|(n, _)| n.eq_ignore_ascii_case(wanted)) {
                if let Some(a) = mv
                    .attrs
                    .iter()
                    .find(|a| named(a).eq_ignore_ascii_case(wanted))
                {
                    summary.push((named(a).to_string(), a.value.clone()));
                }
            }
        };
        if let Some(a) = &q.attribute {
            take(a);
        } else if let Some(needle) = &q.value {
            // The attribute that matched, so the row shows why.
            if let Some(a) = mv.attrs.iter().find(|a| contains(&a.value, needle)) {
                take(&named(a));
            }
        }
        for n in NAMING {
            take(n);
        }
        if summary.is_empty() {
            summary.extend(
                mv.attrs
                    .iter()
                    .take(3)
                    .map(|a| (named(a).to_string(), a.value.clone())),
            );
        }
        MvRow {
            id,
            object_type: self.store.name(mv.object_type).to_string(),
            summary,
            links: mv.links.len(),
        }
    }

    /// A metaverse object with its lineage.
    pub fn mv(&self, id: MvId, now: i64) -> Result<Option<MvView>, StoreError> {
        inspect::mv_view(&self.store, &self.model, now, id)
    }

    /// A connector-space object by its id; `None` when there is no such
    /// connector or object.
    pub fn cs(&self, connector: &str, id: u64) -> Result<Option<CsView>, StoreError> {
        let Some(conn) = self.conn(connector) else {
            return Ok(None);
        };
        inspect::cs_view_by_key(&self.store, &self.model, CsKey { conn, id })
    }

    /// The connector-space id of the object a person names: by its anchor,
    /// else its DN, else `cs:<id>` (as `mvsync show cs` takes them).
    pub fn find_cs(&self, connector: &str, named: &str) -> Result<Option<u64>, StoreError> {
        let Some(conn) = self.conn(connector) else {
            return Ok(None);
        };
        Ok(inspect::resolve(&self.store.begin(), conn, named)?.map(|k| k.id))
    }

    /// A page of one connector's pending exports, by connector-space id,
    /// optionally of one operation (`add`, `update`, `rename`, `delete`).
    pub fn pending(
        &self,
        connector: &str,
        operation: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<(u64, PendingChange)>>, StoreError> {
        let Some(conn) = self.conn(connector) else {
            return Ok(None);
        };
        let form = self.model.ref_form(conn, true);
        let txn = self.store.begin();
        // With spans queued, the connector's objects are walked and those
        // with a pending export shown.
        let spans = self.store.has_queue_spans(keys::tag::EXPORT_SPAN, conn)?;
        let tag = if spans {
            keys::tag::CS
        } else {
            keys::tag::EXPORT_QUEUE
        };
        let page = self.walk(&keys::conn_prefix(tag, conn), after, limit, |k, v| {
            let cs = if spans {
                Some(self.store.decode_cs(k, v)?)
            } else {
                keys::decode_cs_keyed(k)
                    .map(|key| txn.cs(key))
                    .transpose()?
                    .flatten()
            };
            let Some(cs) = cs else { return Ok(None) };
            // The operation is told by the staged export itself; only a
            // change that is shown is rendered.
            let wanted = cs
                .pending_export
                .as_ref()
                .is_some_and(|p| operation.is_none_or(|o| p.kind_name() == o));
            if !wanted {
                return Ok(None);
            }
            let change = inspect::pending_change(&self.store, &txn, form, &cs)?;
            Ok(change.map(|c| (cs.key.id, c)))
        })?;
        Ok(Some(page))
    }

    /// How many exports are pending for `connector`, counting at most
    /// `cap` (a key walk of its export queue; the objects of its spans are
    /// read, see [`Store::count_pending_exports`]).
    pub fn pending_count(&self, connector: &str, cap: usize) -> Result<usize, StoreError> {
        let Some(conn) = self.conn(connector) else {
            return Ok(0);
        };
        self.store.count_pending_exports(conn, cap)
    }

    /// Walks the keys under `prefix` from the cursor `after`, giving each
    /// entry to `each`, until `limit` matched or [`SCAN_BUDGET`] entries
    /// were read. Cursors are the hex of the last key read, so a page's
    /// URL stays valid while the store changes under it.
    fn walk<T>(
        &self,
        prefix: &[u8],
        after: Option<&str>,
        limit: usize,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let start = after.and_then(cursor_key);
        let (mut from, mut exclusive) = match start {
            Some(k) => (k, true),
            None => (prefix.to_vec(), false),
        };
        let mut page = Page {
            items: Vec::new(),
            next: None,
            scanned: 0,
        };
        loop {
            let want = 256.min(SCAN_BUDGET - page.scanned);
            let chunk = self.store.kv().scan(prefix, &from, exclusive, want)?;
            let full = chunk.len() == want;
            for (i, (k, v)) in chunk.iter().enumerate() {
                page.scanned += 1;
                if let Some(item) = each(k, v)? {
                    page.items.push(item);
                }
                if page.items.len() >= limit || page.scanned >= SCAN_BUDGET {
                    // More follow unless this was the range's last key.
                    let more = i + 1 < chunk.len()
                        || (full && !self.store.kv().scan(prefix, k, true, 1)?.is_empty());
                    page.next = more.then(|| cursor_of(k));
                    return Ok(page);
                }
            }
            match chunk.last() {
                Some((k, _)) if full => {
                    from = k.clone();
                    exclusive = true;
                }
                _ => return Ok(page),
            }
        }
    }
}

/// Whether `v` (or one of its values) contains `needle`, already lower-cased.
fn contains(v: &Value, needle: &str) -> bool {
    match v {
        Value::List(items) => items.iter().any(|i| contains(i, needle)),
        Value::Null => false,
        other => other.to_string().to_lowercase().contains(needle),
    }
}

fn cursor_of(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn cursor_key(cursor: &str) -> Option<Vec<u8>> {
    if !cursor.len().is_multiple_of(2) {
        return None;
    }
    (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_no_cursor() {
        let key = vec![b'C', 0, 0, 0, 7, 0xff, 0x10];
        assert_eq!(cursor_key(&cursor_of(&key)), Some(key));
        assert_eq!(cursor_key("zz"), None);
        assert_eq!(cursor_key("abc"), None);
    }
}
