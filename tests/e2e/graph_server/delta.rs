//! Delta queries (`/users/delta`, `/groups/delta`) and the paging they
//! share with plain lists.
//!
//! A round (an initial sync, one delta since a token, or one list) is
//! computed whole when it starts and kept in a [`Round`]; skip tokens point
//! at a round and an offset, so its pages are stable whatever changes
//! meanwhile. Its last page carries a delta token for the directory's
//! sequence number when the round started (changes made while paging show
//! up in the next delta). Tokens are opaque random strings mapped here.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::query::{Query, Selection};
use super::reply::{ApiError, Reply};
use super::state::{Change, Directory, Kind, Life, Object};
use super::Server;

/// What a delta token stands for.
#[derive(Debug, Clone)]
pub(super) struct DeltaState {
    pub kind: Kind,
    pub select: Selection,
    /// The directory's sequence number the token is "since".
    pub seq: u64,
}

/// The entries of one round, computed when it started.
#[derive(Debug)]
pub(super) struct Round {
    /// The path its next links use, relative to `/v1.0/` (`users/delta`, `users`).
    pub path: String,
    pub context: String,
    pub entries: Vec<Value>,
    pub page_size: usize,
    /// For a delta round, the state its delta link stands for.
    pub end: Option<DeltaState>,
}

/// A token handed out in a link.
#[derive(Debug, Clone)]
pub(super) enum Token {
    Delta(DeltaState),
    Page { round: Arc<Round>, offset: usize },
}

/// Every skip and delta token issued, with whether it has been expired.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    map: HashMap<String, (Token, bool)>,
}

impl Tokens {
    /// Makes every token issued so far answer 410 Gone.
    pub fn expire_all(&mut self) {
        for (_, expired) in self.map.values_mut() {
            *expired = true;
        }
    }

    /// A token and whether it is expired.
    pub fn get(&self, token: &str) -> Option<(Token, bool)> {
        self.map.get(token).cloned()
    }

    fn issue(&mut self, token: Token) -> String {
        let id = super::ids::opaque_token();
        self.map.insert(id.clone(), (token, false));
        id
    }

    /// The page of `round` at `offset`, with a next link (a new skip token)
    /// or, on the last page of a delta round, a delta link (a new delta token).
    pub fn page(&mut self, graph_url: &str, round: &Arc<Round>, offset: usize) -> Value {
        let len = round.entries.len();
        let start = offset.min(len);
        let end = (start + round.page_size.max(1)).min(len);
        let mut page = Map::new();
        page.insert("@odata.context".into(), json!(round.context));
        if end < len {
            let token = self.issue(Token::Page {
                round: Arc::clone(round),
                offset: end,
            });
            page.insert(
                "@odata.nextLink".into(),
                json!(format!("{graph_url}/{}?$skiptoken={token}", round.path)),
            );
        } else if let Some(state) = &round.end {
            let collection = state.kind.collection();
            let token = self.issue(Token::Delta(state.clone()));
            page.insert(
                "@odata.deltaLink".into(),
                json!(format!(
                    "{graph_url}/{collection}/delta?$deltatoken={token}"
                )),
            );
        }
        page.insert(
            "value".into(),
            Value::Array(round.entries[start..end].to_vec()),
        );
        Value::Object(page)
    }
}

/// `GET /{users|groups}/delta`: an initial round, the changes since a
/// delta token, the next page of a round, or (`$deltatoken=latest`) just
/// a delta link for now.
pub(super) fn handle(
    server: &mut Server,
    graph_url: &str,
    kind: Kind,
    query: &Query,
) -> Result<Reply, ApiError> {
    let path = format!("{}/delta", kind.collection());
    if let Some(token) = query.get("$skiptoken") {
        return match server.tokens.get(token) {
            Some((Token::Page { round, offset }, expired)) if round.path == path => {
                match (&round.end, expired) {
                    (Some(state), true) => Ok(gone(graph_url, state)),
                    _ => Ok(Reply::json(
                        200,
                        server.tokens.page(graph_url, &round, offset),
                    )),
                }
            }
            _ => Err(sync_state_not_found()),
        };
    }
    let members_per_entry = server.members_per_entry;
    let (state, entries) = match query.get("$deltatoken") {
        Some("latest") => {
            let select = Selection::parse(&server.dir, kind, query.get("$select"))?;
            let seq = server.dir.seq();
            (DeltaState { kind, select, seq }, Vec::new())
        }
        Some(token) => match server.tokens.get(token) {
            Some((Token::Delta(since), expired)) if since.kind == kind => {
                if expired {
                    return Ok(gone(graph_url, &since));
                }
                let entries = changed_entries(&server.dir, &since, members_per_entry);
                let state = DeltaState {
                    seq: server.dir.seq(),
                    ..since
                };
                (state, entries)
            }
            _ => return Err(sync_state_not_found()),
        },
        None => {
            let select = Selection::parse(&server.dir, kind, query.get("$select"))?;
            let entries = initial_entries(&server.dir, kind, &select, members_per_entry);
            let seq = server.dir.seq();
            (DeltaState { kind, select, seq }, entries)
        }
    };
    let round = Arc::new(Round {
        path,
        context: state.select.context(kind),
        entries,
        page_size: server.page_size,
        end: Some(state),
    });
    Ok(Reply::json(200, server.tokens.page(graph_url, &round, 0)))
}

/// 410 Gone for an expired token, pointing at a fresh initial round.
fn gone(graph_url: &str, state: &DeltaState) -> Reply {
    let location = format!(
        "{graph_url}/{}/delta{}",
        state.kind.collection(),
        state.select.query()
    );
    Reply::from(ApiError::new(
        410,
        "resyncRequired",
        "Resync required. Replace any local cached copy of the collection with the results of a full resync.",
    ))
    .with_header("Location", location)
}

/// 400 for a token this server never issued (or for another resource).
fn sync_state_not_found() -> ApiError {
    ApiError::bad_request(
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
}

/// `{"@odata.type": …, "id": …}`, with `@removed` for a removed link.
fn reference(dir: &Directory, id: &str, removed: bool) -> Value {
    let kind = dir.get(id).map_or(Kind::User, |o| o.kind);
    let mut r = json!({"@odata.type": kind.odata_type(), "id": id});
    if removed {
        r["@removed"] = json!({"reason": "deleted"});
    }
    r
}

/// Puts the first `per_entry` member references on `entry` and the rest,
/// `per_entry` at a time, on entries of their own in `later` (Graph splits
/// a large group's members over several items of a round).
fn attach_members(
    entry: &mut Map<String, Value>,
    refs: Vec<Value>,
    per_entry: usize,
    later: &mut Vec<Value>,
) {
    let mut chunks = refs.chunks(per_entry.max(1));
    let Some(first) = chunks.next() else {
        return;
    };
    entry.insert("members@delta".into(), Value::Array(first.to_vec()));
    for chunk in chunks {
        later.push(json!({"id": entry["id"], "members@delta": chunk}));
    }
}

/// An object with every selected property (null when unset) and its
/// manager or members in full.
fn full_entry(
    dir: &Directory,
    o: &Object,
    select: &Selection,
    per_entry: usize,
    later: &mut Vec<Value>,
) -> Value {
    let mut entry = Map::new();
    entry.insert("id".into(), json!(o.id));
    for name in &select.names {
        if name != "id" && name != "manager" && name != "members" {
            entry.insert(name.clone(), o.value(name));
        }
    }
    if select.has(o.kind.link()) {
        match o.kind {
            Kind::User => {
                if let Some(m) = &o.manager {
                    entry.insert("manager@delta".into(), json!([reference(dir, m, false)]));
                }
            }
            Kind::Group => {
                let refs = o.members.iter().map(|m| reference(dir, m, false)).collect();
                attach_members(&mut entry, refs, per_entry, later);
            }
        }
    }
    Value::Object(entry)
}

/// Every live object of `kind`, in creation order; split member lists at the end.
fn initial_entries(
    dir: &Directory,
    kind: Kind,
    select: &Selection,
    per_entry: usize,
) -> Vec<Value> {
    let mut later = Vec::new();
    let mut entries: Vec<Value> = dir
        .all(kind)
        .map(|o| full_entry(dir, o, select, per_entry, &mut later))
        .collect();
    entries.append(&mut later);
    entries
}

/// What changed on one object since a token.
#[derive(Default)]
struct Summary {
    last: u64,
    created: bool,
    properties: Vec<String>,
    /// The manager at the token, when it changed since.
    manager_before: Option<Option<String>>,
    /// Members whose membership changed since, with whether they were
    /// members at the token.
    members_before: Vec<(String, bool)>,
}

/// The objects of `since.kind` changed since its sequence number, each
/// once, ordered by their last change; split member lists at the end.
fn changed_entries(dir: &Directory, since: &DeltaState, per_entry: usize) -> Vec<Value> {
    let mut summaries: HashMap<&str, Summary> = HashMap::new();
    // Entry `i` of the log has sequence number `i + 1`.
    let after = usize::try_from(since.seq).unwrap_or(usize::MAX);
    for c in dir.log.get(after..).unwrap_or_default() {
        if dir.get(&c.id).map(|o| o.kind) != Some(since.kind) {
            continue;
        }
        let s = summaries.entry(c.id.as_str()).or_default();
        s.last = c.seq;
        match &c.change {
            Change::Created => s.created = true,
            Change::Property(name) => {
                if !s.properties.contains(name) {
                    s.properties.push(name.clone());
                }
            }
            Change::Manager { old } => {
                s.manager_before.get_or_insert_with(|| old.clone());
            }
            Change::Member { member, added } => {
                if !s.members_before.iter().any(|(m, _)| m == member) {
                    s.members_before.push((member.clone(), !added));
                }
            }
            Change::Removed => {}
        }
    }
    let mut order: Vec<(&str, Summary)> = summaries.into_iter().collect();
    order.sort_by_key(|(_, s)| s.last);

    let select = &since.select;
    let mut entries = Vec::new();
    let mut later = Vec::new();
    for (id, s) in order {
        let Some(o) = dir.get(id) else { continue };
        match o.life {
            Life::SoftDeleted | Life::Purged => {
                let reason = if o.life == Life::Purged {
                    "deleted"
                } else {
                    "changed"
                };
                entries.push(json!({"id": id, "@removed": {"reason": reason}}));
                continue;
            }
            Life::Live if s.created => {
                entries.push(full_entry(dir, o, select, per_entry, &mut later));
                continue;
            }
            Life::Live => {}
        }
        let mut entry = Map::new();
        entry.insert("id".into(), json!(id));
        for name in s.properties.iter().filter(|n| select.has(n)) {
            entry.insert(name.clone(), o.value(name));
        }
        if o.kind == Kind::User && select.has("manager") {
            if let Some(before) = &s.manager_before {
                match (before, &o.manager) {
                    (_, Some(now)) if before.as_ref() != Some(now) => {
                        entry.insert("manager@delta".into(), json!([reference(dir, now, false)]));
                    }
                    (Some(old), None) => {
                        entry.insert("manager@delta".into(), json!([reference(dir, old, true)]));
                    }
                    _ => {}
                }
            }
        }
        if o.kind == Kind::Group && select.has("members") {
            let refs: Vec<Value> = s
                .members_before
                .iter()
                .filter(|(m, was)| *was != o.members.contains(m))
                .map(|(m, was)| reference(dir, m, *was))
                .collect();
            attach_members(&mut entry, refs, per_entry, &mut later);
        }
        if entry.len() > 1 {
            entries.push(Value::Object(entry));
        }
    }
    entries.append(&mut later);
    entries
}
