//! Import through Graph's delta query: a full import is the initial round
//! of `/users/delta` and `/groups/delta` (every object, then a delta link),
//! a delta import follows the stored delta links.
//!
//! What Graph does that this tolerates:
//! - A group with many members appears several times in one round, each
//!   time with part of `members@delta` (and possibly no other property):
//!   in the initial round the parts are gathered and the group is staged
//!   once at the round's end; in a delta round each part is a partial
//!   change (members added and removed), and an add replayed is no change.
//! - An object may appear on several pages of a round (it changed while
//!   the round ran): the later appearance wins.
//! - `@removed` with reason `changed` (deleted, restorable for 30 days) or
//!   `deleted` (gone for good): either way the object left the tenant.
//! - A delta token Graph no longer honours (410 Gone, or
//!   `syncStateNotFound`): `WatermarkExpired`, so the step's full-import
//!   fallback runs.

use std::collections::{HashMap, HashSet};

use engine::{AttrOp, ConnectorError, ImportEvent, ImportedObject, ItemError};
use rules::Value;
use serde_json::Value as Json;

use super::config::{reference_of, ObjectType};
use super::watermark::Watermark;
use super::{value_of, GraphConnector};
use crate::common::stream::{Sink, Stop};

/// Whether a round is the initial one (full state) or a delta round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    Initial,
    Delta,
}

/// A group gathered over an initial round: its members in the order
/// Graph gave them, each once.
struct Gathered {
    attributes: Vec<(String, Value)>,
    members: Vec<String>,
    held: HashSet<String>,
}

/// Reads every configured type from `start` (or the initial round where
/// the watermark has no link), sending what it finds, then the watermark.
pub(crate) async fn run(
    connector: &GraphConnector,
    mut mark: Watermark,
    round: Round,
    sink: Sink,
) -> Result<(), Stop> {
    let settings = &connector.settings;
    // Users first: the groups' members name them.
    let types = super::config::TYPES
        .iter()
        .filter_map(|t| Some((*t, settings.config.object_types.get(*t)?)));
    for (name, ty) in types {
        let start = match round {
            Round::Initial => initial_url(connector, name, ty),
            // `delta_import` checked every link before the stream started.
            Round::Delta => match mark.link(name, &ty.select())? {
                Some(link) => {
                    connector.client.check_link(link)?;
                    link.to_owned()
                }
                None => {
                    return Err(Stop::Fatal(ConnectorError::watermark_expired(format!(
                        "the watermark holds no delta link for `{name}`: run a full import"
                    ))))
                }
            },
        };
        let link = read_type(connector, name, ty, start, round, &sink).await?;
        mark.set(name, &ty.select(), link);
        // The types read so far resume from their new links even if a
        // later type fails.
        sink.event(ImportEvent::Watermark(mark.to_string())).await?;
    }
    Ok(())
}

/// The initial round's URL of a type: its delta function with `$select`.
fn initial_url(connector: &GraphConnector, name: &str, ty: &ObjectType) -> String {
    connector.client.url(&format!(
        "/{}/delta?$select={}",
        collection(name),
        ty.select()
    ))
}

/// The collection of a type (`users`, `groups`).
pub(crate) fn collection(object_type: &str) -> &'static str {
    if object_type == "group" {
        "groups"
    } else {
        "users"
    }
}

/// Follows one round of one type to its delta link.
async fn read_type(
    connector: &GraphConnector,
    name: &str,
    ty: &ObjectType,
    start: String,
    round: Round,
    sink: &Sink,
) -> Result<String, Stop> {
    let client = &connector.client;
    let mut url = start;
    let mut page = 0usize;
    let mut gathered: HashMap<String, Gathered> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    loop {
        page += 1;
        let what = format!("reading {} (page {page})", collection(name));
        let body = client.get(&url, &what).await?;
        let Some(items) = body["value"].as_array() else {
            return Err(Stop::Fatal(ConnectorError::new(format!(
                "{what}: the answer has no `value` array"
            ))));
        };
        for (i, item) in items.iter().enumerate() {
            let location = format!("{} page {page} item {}", collection(name), i + 1);
            let Some(id) = item["id"].as_str().filter(|id| !id.is_empty()) else {
                sink.bad(ItemError {
                    location,
                    message: "the object has no `id`".into(),
                })
                .await?;
                continue;
            };
            if item.get("@removed").is_some() {
                if gathered.remove(id).is_some() {
                    order.retain(|o| o != id);
                }
                sink.event(ImportEvent::Delete { anchor: id.into() })
                    .await?;
                continue;
            }
            match (round, name) {
                (Round::Initial, "group") => gather(&mut gathered, &mut order, id, ty, item),
                (Round::Initial, _) => {
                    sink.event(ImportEvent::Object(ImportedObject {
                        anchor: id.into(),
                        object_type: name.into(),
                        dn: None,
                        attributes: full_attributes(name, ty, item),
                    }))
                    .await?
                }
                (Round::Delta, _) => {
                    sink.event(ImportEvent::Partial {
                        anchor: id.into(),
                        object_type: name.into(),
                        dn: None,
                        changes: changes(name, ty, item),
                    })
                    .await?
                }
            }
        }
        if let Some(next) = body["@odata.nextLink"].as_str() {
            client.check_link(next)?;
            if next == url {
                return Err(Stop::Fatal(ConnectorError::new(format!(
                    "{what}: Graph's next page is the page just read"
                ))));
            }
            url = next.to_owned();
            continue;
        }
        let Some(delta) = body["@odata.deltaLink"].as_str() else {
            return Err(Stop::Fatal(ConnectorError::new(format!(
                "{what}: the page has neither @odata.nextLink nor @odata.deltaLink"
            ))));
        };
        client.check_link(delta)?;
        for id in order {
            if let Some(g) = gathered.remove(&id) {
                let mut attributes = g.attributes;
                if ty.has_reference(name) {
                    attributes.push((
                        reference_of(name).into(),
                        Value::list(g.members.into_iter().map(Value::Str)),
                    ));
                }
                sink.event(ImportEvent::Object(ImportedObject {
                    anchor: id,
                    object_type: name.into(),
                    dn: None,
                    attributes,
                }))
                .await?;
            }
        }
        return Ok(delta.to_owned());
    }
}

/// Adds one appearance of a group in the initial round to what is
/// gathered of it.
fn gather(
    gathered: &mut HashMap<String, Gathered>,
    order: &mut Vec<String>,
    id: &str,
    ty: &ObjectType,
    item: &Json,
) {
    let entry = gathered.entry(id.to_owned()).or_insert_with(|| {
        order.push(id.to_owned());
        Gathered {
            attributes: Vec::new(),
            members: Vec::new(),
            held: HashSet::new(),
        }
    });
    // A repeat carries only `id` and `members@delta`; one with properties
    // is the object's later state.
    if ty
        .attributes
        .iter()
        .any(|a| a != "members" && item.get(a).is_some())
    {
        entry.attributes = properties(ty, item);
    }
    let (added, removed) = reference_changes(item, "members");
    if !removed.is_empty() {
        let removed: HashSet<&String> = removed.iter().collect();
        entry.members.retain(|m| !removed.contains(m));
        entry.held.retain(|m| !removed.contains(m));
    }
    for m in added {
        if entry.held.insert(m.clone()) {
            entry.members.push(m);
        }
    }
}

/// An object's selected properties (its reference aside), nulls left out.
fn properties(ty: &ObjectType, item: &Json) -> Vec<(String, Value)> {
    ty.attributes
        .iter()
        .filter(|a| *a != "manager" && *a != "members")
        .filter_map(|a| {
            let v = value_of(item.get(a)?);
            (!v.is_null()).then(|| (a.clone(), v))
        })
        .collect()
}

/// A user's full state in the initial round: its properties and manager.
fn full_attributes(name: &str, ty: &ObjectType, item: &Json) -> Vec<(String, Value)> {
    let mut attributes = properties(ty, item);
    if ty.has_reference(name) {
        let (added, _) = reference_changes(item, reference_of(name));
        if let Some(manager) = added.into_iter().last() {
            attributes.push((reference_of(name).into(), Value::Str(manager)));
        }
    }
    attributes
}

/// A delta round's changes of one object: each selected property present
/// is replaced (or cleared, when null); the reference changes from its
/// `@delta` array.
fn changes(name: &str, ty: &ObjectType, item: &Json) -> Vec<(String, AttrOp)> {
    let reference = reference_of(name);
    let mut out: Vec<(String, AttrOp)> = ty
        .attributes
        .iter()
        .filter(|a| *a != "manager" && *a != "members")
        .filter_map(|a| {
            let v = value_of(item.get(a)?);
            Some((
                a.clone(),
                if v.is_null() {
                    AttrOp::Clear
                } else {
                    AttrOp::Replace(v)
                },
            ))
        })
        .collect();
    if !ty.has_reference(name) || item.get(format!("{reference}@delta")).is_none() {
        return out;
    }
    let (added, removed) = reference_changes(item, reference);
    if name == "group" {
        if !added.is_empty() {
            out.push((
                reference.into(),
                AttrOp::Add(added.into_iter().map(Value::Str).collect()),
            ));
        }
        if !removed.is_empty() {
            out.push((
                reference.into(),
                AttrOp::Remove(removed.into_iter().map(Value::Str).collect()),
            ));
        }
    } else if let Some(manager) = added.into_iter().last() {
        out.push((reference.into(), AttrOp::Replace(Value::Str(manager))));
    } else if !removed.is_empty() {
        out.push((reference.into(), AttrOp::Clear));
    }
    out
}

/// The user ids a `<reference>@delta` array adds and removes. Members
/// of other types (devices, contacts, service principals, groups) are not
/// the connector's: leaving them out means they are never removed.
fn reference_changes(item: &Json, reference: &str) -> (Vec<String>, Vec<String>) {
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for entry in item[format!("{reference}@delta")]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(id) = entry["id"].as_str() else {
            continue;
        };
        if entry["@odata.type"]
            .as_str()
            .is_some_and(|t| t != "#microsoft.graph.user")
        {
            continue;
        }
        if entry.get("@removed").is_some() {
            removed.push(id.to_owned());
        } else {
            added.push(id.to_owned());
        }
    }
    (added, removed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ty(attributes: &[&str]) -> ObjectType {
        ObjectType {
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
            multi_valued: Vec::new(),
            initial_password: None,
        }
    }

    #[test]
    fn a_delta_item_changes_only_what_it_carries() {
        let t = ty(&["displayName", "jobTitle", "accountEnabled", "manager"]);
        let item = json!({"id": "u1", "jobTitle": null, "accountEnabled": false,
            "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m-old", "@removed": {"reason": "deleted"}},
                              {"@odata.type": "#microsoft.graph.user", "id": "m-new"}]});
        assert_eq!(
            changes("user", &t, &item),
            vec![
                ("jobTitle".into(), AttrOp::Clear),
                ("accountEnabled".into(), AttrOp::Replace(Value::Bool(false))),
                (
                    "manager".into(),
                    AttrOp::Replace(Value::Str("m-new".into()))
                ),
            ]
        );
        let gone =
            json!({"id": "u1", "manager@delta": [{"id": "m", "@removed": {"reason": "deleted"}}]});
        assert_eq!(
            changes("user", &t, &gone),
            vec![("manager".into(), AttrOp::Clear)]
        );
    }

    #[test]
    fn group_members_are_added_and_removed() {
        let t = ty(&["displayName", "members"]);
        let item = json!({"id": "g", "members@delta": [{"id": "a"}, {"id": "b", "@removed": {"reason": "deleted"}}]});
        assert_eq!(
            changes("group", &t, &item),
            vec![
                ("members".into(), AttrOp::Add(vec![Value::Str("a".into())])),
                (
                    "members".into(),
                    AttrOp::Remove(vec![Value::Str("b".into())])
                ),
            ]
        );
    }

    #[test]
    fn a_group_split_over_a_round_is_gathered_once() {
        let t = ty(&["displayName", "members"]);
        let mut gathered = HashMap::new();
        let mut order = Vec::new();
        gather(
            &mut gathered,
            &mut order,
            "g",
            &t,
            &json!({"id": "g", "displayName": "Staff", "members@delta": [{"id": "a"}, {"id": "b"}]}),
        );
        gather(
            &mut gathered,
            &mut order,
            "g",
            &t,
            &json!({"id": "g", "members@delta": [{"id": "c"}, {"id": "a"}]}),
        );
        let g = &gathered["g"];
        assert_eq!(
            g.attributes,
            vec![("displayName".into(), Value::Str("Staff".into()))]
        );
        assert_eq!(g.members, vec!["a", "b", "c"]);
        gather(
            &mut gathered,
            &mut order,
            "g",
            &t,
            &json!({"id": "g", "members@delta": [
            {"@odata.type": "#microsoft.graph.device", "id": "d"},
            {"id": "b", "@removed": {"reason": "deleted"}}]}),
        );
        assert_eq!(
            gathered["g"].members,
            vec!["a", "c"],
            "users only; a removal applies"
        );
        assert_eq!(order, vec!["g"]);
    }
}
