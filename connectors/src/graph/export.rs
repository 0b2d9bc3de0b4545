//! Export, planned: each change becomes a chain of requests (create,
//! update, delete; the manager and memberships through `$ref`), which
//! `batch` sends. A create is sent alone first; the references of the new
//! object (its manager, members past the 20 a create may bind) follow once
//! Graph has told its id. Adding a member that already is one, or removing
//! a manager or member that is already gone, is done, not an error.

use std::collections::{HashSet, VecDeque};

use engine::{
    Applied, AttrOp, ConnectorError, ExportChange, ExportFailure, ExportOp, ExportReport,
    ExportResult, FailureKind,
};
use reqwest::Method;
use rules::Value;
use serde_json::{json, Map, Value as Json};

use super::client::{CallError, Resend, ServiceError};
use super::config::reference_of;
use super::import::collection;
use super::{json_of, GraphConnector};
use crate::common::Secret;

/// Members a create may bind (`members@odata.bind`).
const BIND_LIMIT: usize = 20;

/// What an error answer of a step means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tolerate {
    /// Nothing: an error is the object's failure.
    Nothing,
    /// "already exist": adding a member that is one.
    Present,
    /// 404: removing a manager that is already gone.
    Absent,
    /// 404 not about this group: removing a member that is already gone
    /// (a 404 naming the group means the group is gone).
    AbsentFrom(String),
    /// "already exist" on a bind of several members to this group: sent
    /// again as one request per member.
    Split(String, Vec<String>),
}

/// One request of an object's chain. Not `Debug`: a create's body is
/// completed with the initial password only when it is sent.
#[derive(Clone)]
pub(crate) struct Step {
    pub(crate) method: Method,
    /// Relative to the Graph base (`/users/{id}`).
    pub(crate) url: String,
    pub(crate) body: Option<Json>,
    /// A user create's `passwordProfile`: (force change, password).
    pub(crate) password: Option<(bool, Secret)>,
    pub(crate) tolerate: Tolerate,
    /// A create: its answer tells the object's id.
    pub(crate) creates: bool,
}

impl Step {
    fn new(method: Method, url: String, body: Option<Json>, tolerate: Tolerate) -> Step {
        Step {
            method,
            url,
            body,
            password: None,
            tolerate,
            creates: false,
        }
    }

    /// The body as sent.
    pub(crate) fn sent_body(&self) -> Option<Json> {
        let mut body = self.body.clone()?;
        if let (Some((force, password)), Json::Object(map)) = (&self.password, &mut body) {
            map.insert(
                "passwordProfile".into(),
                json!({"forceChangePasswordNextSignIn": force, "password": password.expose()}),
            );
        }
        Some(body)
    }
}

/// The references of a created object, sent once its id is known.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deferred {
    manager: Option<String>,
    members: Vec<String>,
}

/// One change being exported.
pub(crate) struct Work {
    pub(crate) id: u64,
    pub(crate) object_type: String,
    pub(crate) anchor: Option<String>,
    /// The properties a create is found by (`userPrincipalName`).
    pub(crate) key: Vec<(String, String)>,
    pub(crate) steps: VecDeque<Step>,
    pub(crate) deferred: Deferred,
    pub(crate) failure: Option<ExportFailure>,
    /// Sends refused for now (throttled, or a reference not yet visible).
    pub(crate) throttled: u32,
    /// Its create was answered (its references may still be waiting).
    pub(crate) created: bool,
    /// Its outcome cannot be known (a create answered without an id, a
    /// request the batch answer left out): no result is reported.
    pub(crate) unknown: bool,
}

impl Work {
    pub(crate) fn done(&self) -> bool {
        self.failure.is_some() || self.unknown || self.steps.is_empty()
    }
}

impl GraphConnector {
    /// Applies a batch of changes.
    pub(crate) async fn export_changes(&self, batch: Vec<ExportChange>) -> ExportReport {
        let mut works = Vec::with_capacity(batch.len());
        for change in batch {
            works.push(self.plan(change).await);
        }
        let mut interrupted = self.drive(&mut works).await.err();
        self.fill_existing(&mut works).await;
        let mut results = Vec::new();
        for w in works {
            let outcome = match (w.created, w.failure, w.steps.is_empty()) {
                _ if w.unknown => {
                    interrupted.get_or_insert_with(|| {
                        ConnectorError::unavailable(
                            "Graph's answer did not tell the outcome of every request of a $batch",
                        )
                    });
                    continue;
                }
                // The object exists: a reference write that failed after its
                // create does not undo it, and the next import shows what it
                // lacks.
                (true, failure, _) => {
                    if let Some(f) = failure {
                        tracing::warn!(
                            "created {} {} but could not set its references: {f}",
                            w.object_type,
                            w.anchor.as_deref().unwrap_or("?")
                        );
                    }
                    Ok(Applied { anchor: w.anchor })
                }
                (false, Some(f), _) => Err(f),
                (false, None, true) => Ok(Applied { anchor: w.anchor }),
                (false, None, false) => continue,
            };
            results.push(ExportResult { id: w.id, outcome });
        }
        ExportReport {
            results,
            interrupted,
        }
    }

    /// The chain of requests of one change.
    async fn plan(&self, change: ExportChange) -> Work {
        let ty_name = change.object_type.clone();
        let coll = collection(&ty_name);
        let reference = reference_of(&ty_name);
        let mut work = Work {
            id: change.id,
            object_type: ty_name.clone(),
            anchor: change.anchor.clone(),
            key: Vec::new(),
            steps: VecDeque::new(),
            deferred: Deferred::default(),
            failure: None,
            throttled: 0,
            created: false,
            unknown: false,
        };
        let Some(ty) = self.settings.config.object_types.get(&ty_name) else {
            work.failure = Some(ExportFailure::new(
                FailureKind::Permanent,
                format!("`{ty_name}` is not a configured type of this connector"),
            ));
            return work;
        };
        match change.op {
            ExportOp::Add { attributes } => {
                let mut body = Map::new();
                for (name, value) in attributes {
                    if name == reference {
                        let ids = value.items().iter().filter_map(text).collect::<Vec<_>>();
                        if ty_name == "group" {
                            work.deferred.members = ids;
                        } else {
                            work.deferred.manager = ids.into_iter().next();
                        }
                    } else if !value.is_null() {
                        if let (true, Some(v)) =
                            (keys_of(&ty_name).contains(&name.as_str()), value.as_str())
                        {
                            work.key.push((name.clone(), v.to_owned()));
                        }
                        body.insert(name, json_of(&value));
                    }
                }
                if ty_name == "group" && !work.deferred.members.is_empty() {
                    let bound: Vec<String> = work
                        .deferred
                        .members
                        .drain(..work.deferred.members.len().min(BIND_LIMIT))
                        .collect();
                    body.insert(
                        "members@odata.bind".into(),
                        Json::from(
                            bound
                                .iter()
                                .map(|m| self.object_link(m))
                                .collect::<Vec<_>>(),
                        ),
                    );
                }
                if ty_name == "user" && ty.initial_password.is_none() {
                    work.failure = Some(ExportFailure::new(
                        FailureKind::Permanent,
                        "Graph creates a user only with a password: set `initial_password` on the connector's `user` type",
                    ));
                    return work;
                }
                let mut create = Step::new(
                    Method::POST,
                    format!("/{coll}"),
                    Some(Json::Object(body)),
                    Tolerate::Nothing,
                );
                create.creates = true;
                create.password = ty
                    .initial_password
                    .as_ref()
                    .map(|p| (p.force_change, crate::common::password::generate(p.length)));
                work.steps.push_back(create);
            }
            ExportOp::Update { changes, .. } => {
                let Some(id) = change.anchor.clone() else {
                    work.failure = Some(no_anchor());
                    return work;
                };
                if let Err(f) = self.plan_update(&mut work, &ty_name, &id, changes).await {
                    work.failure = Some(f);
                }
            }
            ExportOp::Delete => {
                let Some(id) = change.anchor.clone() else {
                    work.failure = Some(no_anchor());
                    return work;
                };
                work.steps.push_back(Step::new(
                    Method::DELETE,
                    format!("/{coll}/{}", segment(&id)),
                    None,
                    Tolerate::Nothing,
                ));
            }
        }
        work
    }

    /// An update's requests: one PATCH of the properties, then the
    /// reference changes.
    async fn plan_update(
        &self,
        work: &mut Work,
        ty_name: &str,
        id: &str,
        changes: Vec<(String, AttrOp)>,
    ) -> Result<(), ExportFailure> {
        let coll = collection(ty_name);
        let reference = reference_of(ty_name);
        let mut patch = Map::new();
        let mut add = Vec::new();
        let mut remove = Vec::new();
        let mut manager: Option<Option<String>> = None;
        for (name, op) in changes {
            if name == reference && ty_name == "group" {
                match op {
                    AttrOp::Add(v) => add.extend(v.iter().filter_map(text)),
                    AttrOp::Remove(v) => remove.extend(v.iter().filter_map(text)),
                    AttrOp::Replace(v) => {
                        let want: Vec<String> = v.items().iter().filter_map(text).collect();
                        let have = self.members_of(id).await?;
                        let held: HashSet<&String> = have.iter().collect();
                        let wanted: HashSet<&String> = want.iter().collect();
                        add.extend(want.iter().filter(|w| !held.contains(w)).cloned());
                        remove.extend(have.iter().filter(|h| !wanted.contains(h)).cloned());
                    }
                    AttrOp::Clear => remove.extend(self.members_of(id).await?),
                }
            } else if name == reference {
                manager = Some(match op {
                    AttrOp::Replace(v) => text(&v),
                    AttrOp::Add(v) => v.first().and_then(text),
                    AttrOp::Remove(_) | AttrOp::Clear => None,
                });
            } else {
                let value = match op {
                    AttrOp::Replace(v) => json_of(&v),
                    AttrOp::Clear => Json::Null,
                    AttrOp::Add(_) | AttrOp::Remove(_) => {
                        // Graph replaces a collection whole: start from what it holds.
                        let mut have = self.property_of(ty_name, id, &name).await?;
                        have = engine::model::apply_op(&have, &op);
                        json_of(&have)
                    }
                };
                patch.insert(name, value);
            }
        }
        if !patch.is_empty() {
            work.steps.push_back(Step::new(
                Method::PATCH,
                format!("/{coll}/{}", segment(id)),
                Some(Json::Object(patch)),
                Tolerate::Nothing,
            ));
        }
        if let Some(m) = manager {
            work.steps.push_back(self.manager_step(id, m));
        }
        self.member_adds(work, id, &add);
        for m in remove {
            work.steps.push_back(Step::new(
                Method::DELETE,
                format!("/groups/{}/members/{}/$ref", segment(id), segment(&m)),
                None,
                Tolerate::AbsentFrom(id.to_owned()),
            ));
        }
        Ok(())
    }

    fn manager_step(&self, user: &str, manager: Option<String>) -> Step {
        let url = format!("/users/{}/manager/$ref", segment(user));
        match manager {
            Some(m) => Step::new(
                Method::PUT,
                url,
                Some(
                    json!({"@odata.id": format!("{}/users/{}", self.settings.graph_url, segment(&m))}),
                ),
                Tolerate::Nothing,
            ),
            None => Step::new(Method::DELETE, url, None, Tolerate::Absent),
        }
    }

    fn member_add(&self, group: &str, member: &str) -> Step {
        Step::new(
            Method::POST,
            format!("/groups/{}/members/$ref", segment(group)),
            Some(json!({"@odata.id": self.object_link(member)})),
            Tolerate::Present,
        )
    }

    /// `https://graph.microsoft.com/v1.0/directoryObjects/{id}`.
    fn object_link(&self, id: &str) -> String {
        format!(
            "{}/directoryObjects/{}",
            self.settings.graph_url,
            segment(id)
        )
    }

    /// A group's current members that are users (devices, contacts,
    /// service principals and groups in it are not the connector's).
    async fn members_of(&self, group: &str) -> Result<Vec<String>, ExportFailure> {
        let mut url = self.client.url(&format!(
            "/groups/{}/members/microsoft.graph.user?$select=id&$top=999",
            segment(group)
        ));
        let mut ids = Vec::new();
        loop {
            let body = self.read_for_export(&url).await?;
            let Some(page) = body["value"].as_array() else {
                return Err(ExportFailure::new(
                    FailureKind::Retryable,
                    "Graph listed the group's members without a `value` array",
                ));
            };
            ids.extend(
                page.iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_owned)),
            );
            let Some(next) = body["@odata.nextLink"].as_str() else {
                return Ok(ids);
            };
            if next == url {
                return Err(ExportFailure::new(
                    FailureKind::Retryable,
                    "Graph's next page of the group's members is the same page",
                ));
            }
            self.client
                .check_link(next)
                .map_err(|e| ExportFailure::new(FailureKind::Permanent, e.message))?;
            url = next.to_owned();
        }
    }

    /// One property's current value.
    async fn property_of(
        &self,
        ty_name: &str,
        id: &str,
        property: &str,
    ) -> Result<Value, ExportFailure> {
        let url = self.client.url(&format!(
            "/{}/{}?$select={property}",
            collection(ty_name),
            segment(id)
        ));
        let body = self.read_for_export(&url).await?;
        Ok(super::value_of(&body[property]))
    }

    async fn read_for_export(&self, url: &str) -> Result<Json, ExportFailure> {
        match self
            .client
            .call(Method::GET, url, None, Resend::Always)
            .await
        {
            Ok(a) => Ok(a.body),
            Err(CallError::Service(e)) => Err(failure(&e, None)),
            Err(CallError::Transport(e)) => {
                Err(ExportFailure::new(FailureKind::Retryable, e.message))
            }
        }
    }

    /// Queues a created object's references, now that its id is known.
    pub(crate) fn follow_create(&self, work: &mut Work, id: &str) {
        let deferred = std::mem::take(&mut work.deferred);
        if let Some(m) = deferred.manager {
            work.steps.push_back(self.manager_step(id, Some(m)));
        }
        self.member_adds(work, id, &deferred.members);
    }

    /// Members added 20 to a request (`PATCH` with `members@odata.bind`):
    /// a 10,000-member change costs 500 writes of Graph's budget, not
    /// 10,000. A request refused because one of them already is a member
    /// is split into one `$ref` per member.
    fn member_adds(&self, work: &mut Work, group: &str, members: &[String]) {
        for chunk in members.chunks(BIND_LIMIT) {
            let links: Vec<String> = chunk.iter().map(|m| self.object_link(m)).collect();
            work.steps.push_back(Step::new(
                Method::PATCH,
                format!("/groups/{}", segment(group)),
                Some(json!({ "members@odata.bind": links })),
                Tolerate::Split(group.to_owned(), chunk.to_vec()),
            ));
        }
    }

    /// The requests a refused bind is split into.
    pub(crate) fn split(&self, group: &str, members: &[String]) -> Vec<Step> {
        members.iter().map(|m| self.member_add(group, m)).collect()
    }

    /// For creates that found the object there already, its id, so the
    /// engine joins it.
    async fn fill_existing(&self, works: &mut [Work]) {
        for w in works.iter_mut() {
            let Some(f) = &mut w.failure else { continue };
            if f.kind != FailureKind::AlreadyExists || f.existing_anchor.is_some() {
                continue;
            }
            if w.key.is_empty() {
                continue;
            }
            if let Ok(found) = self.find(&w.object_type, &w.key).await {
                f.existing_anchor = found;
            }
        }
    }

    /// The id of the object of `object_type` whose properties hold these
    /// values: `None` when there is none, an error when there are several.
    pub(crate) async fn find(
        &self,
        object_type: &str,
        key: &[(String, String)],
    ) -> Result<Option<String>, ConnectorError> {
        let filter = key
            .iter()
            .map(|(attribute, value)| format!("{attribute} eq '{}'", value.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(" and ");
        let shown = key
            .iter()
            .map(|(a, v)| format!("{a} `{v}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        let mut url = url::Url::parse(&self.client.url(&format!("/{}", collection(object_type))))
            .map_err(|e| ConnectorError::new(format!("bad Graph URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$select", "id");
        let body = self
            .client
            .get(
                url.as_str(),
                &format!("looking for the {object_type} with {shown}"),
            )
            .await?;
        let ids: Vec<&str> = body["value"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|o| o["id"].as_str())
            .collect();
        match ids.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some((*one).to_owned())),
            _ => Err(ConnectorError::new(format!(
                "{} {object_type}s have {shown}; cannot tell which one an earlier add created",
                ids.len()
            ))),
        }
    }
}

/// The properties a created object is found by: a user's
/// `userPrincipalName` is unique; a security group's `mailNickname` need
/// not be, so its `displayName` must match too.
pub(crate) fn keys_of(object_type: &str) -> &'static [&'static str] {
    if object_type == "group" {
        &["mailNickname", "displayName"]
    } else {
        &["userPrincipalName"]
    }
}

/// A value's text, for ids.
pub(crate) fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// An id as one path segment: Graph ids are GUIDs; anything else is
/// percent-encoded so it cannot change the path.
pub(crate) fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

fn no_anchor() -> ExportFailure {
    ExportFailure::new(
        FailureKind::Permanent,
        "the object has no Graph id yet (its add was never confirmed): import the connector first",
    )
}

/// One request's error as the failure of its object; `create` names the
/// type of a create, whose clash on its key property is `AlreadyExists`
/// (a clash on another unique property, `proxyAddresses` say, is another
/// object's and is refused).
pub(crate) fn failure(e: &ServiceError, create: Option<&str>) -> ExportFailure {
    let clash = e.message.contains("already exist")
        || e.is("Request_MultipleObjectsWithSameKeyValue")
        || e.is("ObjectConflict");
    let kind = match e.status {
        400 | 409
            if clash
                && create.is_some_and(|t| keys_of(t).iter().any(|k| e.message.contains(k))) =>
        {
            FailureKind::AlreadyExists
        }
        400 | 409 if clash => FailureKind::RejectedByPolicy,
        404 => FailureKind::NotFound,
        403 => FailureKind::RejectedByPolicy,
        400 if e.message.to_lowercase().contains("password") => FailureKind::RejectedByPolicy,
        429 | 500..=599 => FailureKind::Retryable,
        _ => FailureKind::Permanent,
    };
    ExportFailure::new(kind, e.to_string()).with_code(e.code.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn graph_errors_become_failure_kinds() {
        let e = |status: u16, code: &str, message: &str| ServiceError {
            status,
            code: code.into(),
            message: message.into(),
            request_id: None,
        };
        let dup = e(
            400,
            "Request_BadRequest",
            "Another object with the same value for property userPrincipalName already exists.",
        );
        assert_eq!(failure(&dup, Some("user")).kind, FailureKind::AlreadyExists);
        assert_eq!(failure(&dup, None).kind, FailureKind::RejectedByPolicy);
        let other = e(
            400,
            "Request_BadRequest",
            "Another object with the same value for property proxyAddresses already exists.",
        );
        assert_eq!(
            failure(&other, Some("user")).kind,
            FailureKind::RejectedByPolicy
        );
        assert_eq!(
            failure(&e(404, "Request_ResourceNotFound", "gone"), None).kind,
            FailureKind::NotFound
        );
        assert_eq!(
            failure(&e(403, "Authorization_RequestDenied", "no"), None).kind,
            FailureKind::RejectedByPolicy
        );
        let weak = e(
            400,
            "Request_BadRequest",
            "The specified password does not comply with password complexity requirements.",
        );
        assert_eq!(
            failure(&weak, Some("user")).kind,
            FailureKind::RejectedByPolicy
        );
        let f = failure(&e(429, "TooManyRequests", "slow down"), None);
        assert_eq!(
            (f.kind, f.code.as_deref()),
            (FailureKind::Retryable, Some("TooManyRequests"))
        );
    }

    #[test]
    fn ids_cannot_change_the_path() {
        assert_eq!(
            segment("6731de76-14a6-49ae-97bc-6eba6914391e"),
            "6731de76-14a6-49ae-97bc-6eba6914391e"
        );
        assert_eq!(segment("../me?x=1"), "..%2Fme%3Fx%3D1");
    }
}
