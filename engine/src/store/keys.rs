//! The key layout. One keyspace, partitioned by a one-byte tag; integers are
//! big-endian so that keys sort by id and ids assigned in sequence load in
//! order (cheaper for sled than random keys).
//!
//! | tag | key | value |
//! | --- | --- | --- |
//! | `V` | | format version (u32) |
//! | `T` | | large-list threshold (u64), fixed at creation |
//! | `N` | counter name | next id (u64) |
//! | `S` | sym (u32) | interned name |
//! | `K` | | indexed metaverse attributes |
//! | `P` | | present while a sync step's pass over waiting references is unfinished |
//! | `B` | | the sync basis: the configuration fingerprint the last sync step ran under, and the connectors a full sync has evaluated under it (see `sync/basis.rs`) |
//! | `C` | conn sym, cs id | connector-space object |
//! | `M` | mv id | metaverse object |
//! | `L` | conn sym, cs id, slot (u8), attr sym, sign (`+`/`-`), value | empty (one value of a large list of a connector-space object; see `large.rs`) |
//! | `l` | mv id, attr sym, value | empty (one value of a large list of a metaverse object) |
//! | `A` | conn sym, anchor | cs id |
//! | `D` | conn sym, lower-cased DN | cs id |
//! | `J` | attr sym, len-prefixed value, mv id | empty (join index) |
//! | `I` | conn sym, cs id | empty (sync queue: objects with a pending import) |
//! | `i` | conn sym, first cs id | last cs id (u64) (sync-queue span: the objects with ids from first to last that have a pending import; an import's new objects, one key per batch) |
//! | `E` | conn sym, cs id | empty (export queue: objects with a pending export) |
//! | `e` | conn sym, first cs id | last cs id (u64) (export-queue span: the connector's objects with ids from first to last may have a pending export; a sync's provisioned objects, one key per batch and connector; see `queue.rs`) |
//! | `U` | conn sym, attr sym, len-prefixed lower-cased value, cs id | empty (values held, for unique-value generation) |
//! | `X` | conn sym, len-prefixed waiting key (`a:`anchor, `d:`lower-cased DN, or NUL `mv`id for an outbound reference), mv id | empty (references waiting for their target) |
//! | `W` | conn sym | import watermark |
//! | `W` | conn sym, `h` | delta imports in a row held back by bad items |
//! | `R` | run id | run record |
//! | `r` | run id, seq (u32) | per-object error of a run |
//! | `j` | (chunk u32) | the journal of a batch applied beside readers: its chunk count, its chunks (see `kv.rs`); none in a store closed cleanly |

use crate::model::{CsKey, MvId, Sym};

/// Format version of the store; bump on any incompatible layout change.
/// 3: system codes on object and run errors, the adopted-export counter,
/// DN index keys normalized by `rules::dn`.
/// 4: sync-queue spans (`i`).
/// 5: export-queue spans (`e`).
pub const FORMAT_VERSION: u32 = 5;

/// The older format versions this mvsync upgrades in place, by rewriting
/// the version on the first commit: such a store holds none of the spans
/// its version lacks, and its queue entries mean what they meant.
pub const UPGRADABLE_VERSIONS: [u32; 2] = [3, 4];

/// Key of the format version.
pub const VERSION: &[u8] = b"V";
/// Key of the large-list threshold, fixed when the store is created.
pub const LARGE_THRESHOLD: &[u8] = b"T";
/// Key of the indexed-attribute set.
pub const INDEXED: &[u8] = b"K";
/// Key of the set of (connector, attribute) pairs the unique-value index covers.
pub const UNIQUE_TRACKED: &[u8] = b"Q";
/// Present while the join index is being rebuilt: a crash mid-rebuild
/// forces another rebuild on the next open.
pub const JOIN_REBUILDING: &[u8] = b"K!";
/// Present while the unique-value index is being rebuilt.
pub const UNIQUE_REBUILDING: &[u8] = b"Q!";
/// Present from a sync step's first write until its pass over waiting
/// references completes: a step killed in between leaves it, and the next
/// sync step reads every waiting reference (what the killed step linked
/// is known to no one else).
pub const WAITING_PASS: &[u8] = b"P";

/// Key of the sync basis (`sync::basis`).
pub const SYNC_BASIS: &[u8] = b"B";

/// Prefix tags.
pub mod tag {
    /// Counters.
    pub const COUNTER: u8 = b'N';
    /// Interned names.
    pub const SYM: u8 = b'S';
    /// Connector-space objects.
    pub const CS: u8 = b'C';
    /// Metaverse objects.
    pub const MV: u8 = b'M';
    /// Values of large lists of connector-space objects.
    pub const LARGE_CS: u8 = b'L';
    /// Values of large lists of metaverse objects.
    pub const LARGE_MV: u8 = b'l';
    /// Anchor index.
    pub const ANCHOR: u8 = b'A';
    /// DN index.
    pub const DN: u8 = b'D';
    /// Join index.
    pub const JOIN: u8 = b'J';
    /// Sync queue.
    pub const SYNC_QUEUE: u8 = b'I';
    /// Sync-queue spans.
    pub const SYNC_SPAN: u8 = b'i';
    /// Export queue.
    pub const EXPORT_QUEUE: u8 = b'E';
    /// Export-queue spans.
    pub const EXPORT_SPAN: u8 = b'e';
    /// Waiting references.
    pub const WAITING: u8 = b'X';
    /// Unique-value index.
    pub const UNIQUE: u8 = b'U';
    /// Watermarks.
    pub const WATERMARK: u8 = b'W';
    /// Runs.
    pub const RUN: u8 = b'R';
    /// Run errors.
    pub const RUN_ERROR: u8 = b'r';
    /// Quarantined connectors: why, since which run.
    pub const QUARANTINE: u8 = b'Z';
}

fn with(tag: u8, cap: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(cap + 1);
    k.push(tag);
    k
}

fn push_len_prefixed(k: &mut Vec<u8>, bytes: &[u8]) {
    k.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    k.extend_from_slice(bytes);
}

/// A counter.
pub fn counter(name: &str) -> Vec<u8> {
    let mut k = with(tag::COUNTER, name.len());
    k.extend_from_slice(name.as_bytes());
    k
}

/// An interned name.
pub fn sym(s: Sym) -> Vec<u8> {
    let mut k = with(tag::SYM, 4);
    k.extend_from_slice(&s.0.to_be_bytes());
    k
}

/// The prefix of one connector's entries under `tag`.
pub fn conn_prefix(tag: u8, conn: Sym) -> Vec<u8> {
    let mut k = with(tag, 4);
    k.extend_from_slice(&conn.0.to_be_bytes());
    k
}

/// A connector-space object (`tag::CS`) or a queue entry (`tag::SYNC_QUEUE`, `tag::EXPORT_QUEUE`).
pub fn cs_keyed(tag: u8, key: CsKey) -> Vec<u8> {
    let mut k = conn_prefix(tag, key.conn);
    k.extend_from_slice(&key.id.to_be_bytes());
    k
}

/// Decodes the `CsKey` at the end of a `cs_keyed` key.
pub fn decode_cs_keyed(key: &[u8]) -> Option<CsKey> {
    let conn = u32::from_be_bytes(key.get(1..5)?.try_into().ok()?);
    let id = u64::from_be_bytes(key.get(5..13)?.try_into().ok()?);
    Some(CsKey {
        conn: Sym(conn),
        id,
    })
}

/// A queue span's key (`tag::SYNC_SPAN` or `tag::EXPORT_SPAN`, its first
/// object) and value (its last id).
pub fn queue_span(tag: u8, first: CsKey, last: u64) -> (Vec<u8>, Vec<u8>) {
    (cs_keyed(tag, first), last.to_be_bytes().to_vec())
}

/// Decodes a queue span: its first object and its last id, when the last
/// is not before the first.
pub fn decode_queue_span(key: &[u8], value: &[u8]) -> Option<(CsKey, u64)> {
    let first = decode_cs_keyed(key).filter(|_| key.len() == 13)?;
    let last = u64::from_be_bytes(value.try_into().ok()?);
    (first.id <= last).then_some((first, last))
}

/// A metaverse object.
pub fn mv(id: MvId) -> Vec<u8> {
    mv_keyed(tag::MV, id)
}

/// A key under `tag` for one metaverse object.
pub fn mv_keyed(tag: u8, id: MvId) -> Vec<u8> {
    let mut k = with(tag, 8);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Decodes the id of a metaverse key.
pub fn decode_mv(key: &[u8]) -> Option<MvId> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

/// An anchor index entry.
pub fn anchor(conn: Sym, anchor: &str) -> Vec<u8> {
    let mut k = conn_prefix(tag::ANCHOR, conn);
    k.extend_from_slice(anchor.as_bytes());
    k
}

/// A DN index entry. DNs compare as [`rules::dn::normalize`] says (case,
/// escaping forms and spaces after commas do not matter).
pub fn dn(conn: Sym, dn: &str) -> Vec<u8> {
    dn_normalized(conn, &rules::dn::normalize(dn))
}

/// A DN index entry for a DN already normalized by [`rules::dn::normalize`].
pub fn dn_normalized(conn: Sym, normalized: &str) -> Vec<u8> {
    let mut k = conn_prefix(tag::DN, conn);
    k.extend_from_slice(normalized.as_bytes());
    k
}

/// The prefix of join-index entries for one attribute value.
pub fn join_prefix(attr: Sym, value: &[u8]) -> Vec<u8> {
    let mut k = with(tag::JOIN, 8 + value.len() + 8);
    k.extend_from_slice(&attr.0.to_be_bytes());
    push_len_prefixed(&mut k, value);
    k
}

/// A join-index entry.
pub fn join(attr: Sym, value: &[u8], mv: MvId) -> Vec<u8> {
    let mut k = join_prefix(attr, value);
    k.extend_from_slice(&mv.to_be_bytes());
    k
}

/// Decodes the metaverse id at the end of a join-index key.
pub fn decode_join_mv(key: &[u8]) -> Option<MvId> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// The prefix of unique-index entries for one value of one attribute in one connector.
pub fn unique_prefix(conn: Sym, attr: Sym, value: &str) -> Vec<u8> {
    let mut k = conn_prefix(tag::UNIQUE, conn);
    k.extend_from_slice(&attr.0.to_be_bytes());
    push_len_prefixed(&mut k, value.to_lowercase().as_bytes());
    k
}

/// A unique-index entry: object `id` of `conn` holds `value` in `attr`.
pub fn unique(conn: Sym, attr: Sym, value: &str, id: u64) -> Vec<u8> {
    let mut k = unique_prefix(conn, attr, value);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The prefix of waiting-reference entries for one raw reference.
pub fn waiting_prefix(conn: Sym, raw: &str) -> Vec<u8> {
    let mut k = conn_prefix(tag::WAITING, conn);
    push_len_prefixed(&mut k, raw.as_bytes());
    k
}

/// A waiting-reference entry: recomputing metaverse object `source` met a
/// reference to `raw` in `conn` that does not resolve yet.
pub fn waiting(conn: Sym, raw: &str, source: MvId) -> Vec<u8> {
    let mut k = waiting_prefix(conn, raw);
    k.extend_from_slice(&source.to_be_bytes());
    k
}

/// Decodes (conn, raw reference, source) from a waiting-reference key.
pub fn decode_waiting(key: &[u8]) -> Option<(Sym, String, MvId)> {
    let conn = Sym(u32::from_be_bytes(key.get(1..5)?.try_into().ok()?));
    let len = u32::from_be_bytes(key.get(5..9)?.try_into().ok()?) as usize;
    let raw = String::from_utf8(key.get(9..9 + len)?.to_vec()).ok()?;
    let rest = key.get(9 + len..)?;
    Some((conn, raw, u64::from_be_bytes(rest.try_into().ok()?)))
}

/// A watermark.
pub fn watermark(conn: Sym) -> Vec<u8> {
    conn_prefix(tag::WATERMARK, conn)
}

/// How many delta imports in a row kept a connector's watermark back
/// because of bad items (a decimal count).
pub fn watermark_holds(conn: Sym) -> Vec<u8> {
    let mut k = conn_prefix(tag::WATERMARK, conn);
    k.push(b'h');
    k
}

/// A connector's quarantine record.
pub fn quarantine(conn: Sym) -> Vec<u8> {
    conn_prefix(tag::QUARANTINE, conn)
}

/// A run record.
pub fn run(id: u64) -> Vec<u8> {
    let mut k = with(tag::RUN, 8);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// A run's per-object error.
pub fn run_error(run: u64, seq: u32) -> Vec<u8> {
    let mut k = with(tag::RUN_ERROR, 12);
    k.extend_from_slice(&run.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The prefix of one run's errors.
pub fn run_error_prefix(run: u64) -> Vec<u8> {
    let mut k = with(tag::RUN_ERROR, 8);
    k.extend_from_slice(&run.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cs_keys_round_trip_and_sort_by_id() {
        let a = CsKey {
            conn: Sym(3),
            id: 2,
        };
        let b = CsKey {
            conn: Sym(3),
            id: 256,
        };
        assert_eq!(decode_cs_keyed(&cs_keyed(tag::CS, a)), Some(a));
        assert!(cs_keyed(tag::CS, a) < cs_keyed(tag::CS, b));
    }

    #[test]
    fn join_prefix_does_not_match_longer_values() {
        let short = join_prefix(Sym(1), b"ab");
        let long = join(Sym(1), b"abc", 7);
        assert!(!long.starts_with(&short));
        assert_eq!(decode_join_mv(&join(Sym(1), b"ab", 7)), Some(7));
    }

    #[test]
    fn waiting_keys_round_trip() {
        let key = waiting(Sym(2), "E100", 9);
        assert!(key.starts_with(&waiting_prefix(Sym(2), "E100")));
        assert!(!key.starts_with(&waiting_prefix(Sym(2), "E10")));
        assert_eq!(decode_waiting(&key), Some((Sym(2), "E100".to_string(), 9)));
    }
}
