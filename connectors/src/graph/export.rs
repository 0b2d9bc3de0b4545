//! Export through Graph's JSON batching: each change becomes a chain of
//! requests (create, update, delete; the manager and memberships through
//! `$ref`), chains are packed into `$batch` requests of at most 20, with
//! `dependsOn` linking the requests of one object so they run in order and
//! a failure stops the rest of its chain, and each request's answer is
//! mapped back to its object.
//!
//! - A create is sent alone first; the references of the new object (its
//!   manager, members past the 20 a create may bind) follow once Graph has
//!   told its id.
//! - A request throttled inside a batch (429, 503) is sent again after the
//!   longest `Retry-After` of the batch, with the requests that depended
//!   on it; after the configured attempts its object fails as retryable.
//! - Adding a member that already is one, or removing a manager or member
//!   that is already gone, is done, not an error.
//! - The batch itself failing (a lost connection) interrupts the export:
//!   the objects already answered have results, the rest stay pending.

use std::collections::VecDeque;
use std::time::Duration;

use engine::{
    Applied, AttrOp, ConnectorError, ExportChange, ExportFailure, ExportOp, ExportReport,
    ExportResult, FailureKind,
};
use reqwest::Method;
use rules::Value;
use serde_json::{json, Map, Value as Json};

use super::client::{CallError, ServiceError};
use super::config::reference_of;
use super::import::collection;
use super::{json_of, GraphConnector};

/// Requests in one `$batch`: Graph's limit.
pub(crate) const BATCH_LIMIT: usize = 20;

/// Members a create may bind (`members@odata.bind`).
const BIND_LIMIT: usize = 20;

/// What an error answer of a step means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tolerate {
    /// Nothing: an error is the object's failure.
    Nothing,
    /// "already exist": adding a member that is one.
    Present,
    /// 404: removing a reference that is already gone.
    Absent,
}

/// One request of an object's chain.
#[derive(Debug, Clone)]
struct Step {
    method: Method,
    /// Relative to the Graph base (`/users/{id}`).
    url: String,
    body: Option<Json>,
    tolerate: Tolerate,
    /// A create: its answer tells the object's id.
    creates: bool,
}

/// The references of a created object, sent once its id is known.
#[derive(Debug, Clone, Default)]
struct Deferred {
    manager: Option<String>,
    members: Vec<String>,
}

/// One change being exported.
struct Work {
    id: u64,
    object_type: String,
    anchor: Option<String>,
    /// The unique key a create is found by (`userPrincipalName`).
    key: Option<(String, String)>,
    steps: VecDeque<Step>,
    deferred: Deferred,
    failure: Option<ExportFailure>,
    throttled: u32,
    /// Its create was answered (its references may still be waiting).
    created: bool,
}

impl Work {
    fn done(&self) -> bool {
        self.failure.is_some() || self.steps.is_empty()
    }
}

impl GraphConnector {
    /// Applies a batch of changes.
    pub(crate) async fn export_changes(&self, batch: Vec<ExportChange>) -> ExportReport {
        let mut works = Vec::with_capacity(batch.len());
        for change in batch {
            works.push(self.plan(change).await);
        }
        let interrupted = self.drive(&mut works).await.err();
        self.fill_existing(&mut works).await;
        let mut results = Vec::new();
        for w in works {
            let outcome = match (w.failure, w.steps.is_empty()) {
                (Some(f), _) => Err(f),
                (None, true) => Ok(Applied { anchor: w.anchor }),
                // A create done whose references were not sent: the object
                // exists, and the next import shows what it lacks.
                (None, false) if w.created => Ok(Applied { anchor: w.anchor }),
                (None, false) => continue,
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
            key: None,
            steps: VecDeque::new(),
            deferred: Deferred::default(),
            failure: None,
            throttled: 0,
            created: false,
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
                        if name == key_of(&ty_name) {
                            work.key = value.as_str().map(|v| (name.clone(), v.to_owned()));
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
                if let Some(p) = &ty.initial_password {
                    let password = crate::common::password::generate(p.length);
                    body.insert(
                        "passwordProfile".into(),
                        json!({"forceChangePasswordNextSignIn": p.force_change,
                               "password": password.expose()}),
                    );
                }
                work.steps.push_back(Step {
                    method: Method::POST,
                    url: format!("/{coll}"),
                    body: Some(Json::Object(body)),
                    tolerate: Tolerate::Nothing,
                    creates: true,
                });
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
                work.steps.push_back(Step {
                    method: Method::DELETE,
                    url: format!("/{coll}/{}", segment(&id)),
                    body: None,
                    tolerate: Tolerate::Nothing,
                    creates: false,
                });
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
                        add.extend(want.iter().filter(|w| !have.contains(w)).cloned());
                        remove.extend(have.into_iter().filter(|h| !want.contains(h)));
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
            work.steps.push_back(Step {
                method: Method::PATCH,
                url: format!("/{coll}/{}", segment(id)),
                body: Some(Json::Object(patch)),
                tolerate: Tolerate::Nothing,
                creates: false,
            });
        }
        if let Some(m) = manager {
            work.steps.push_back(self.manager_step(id, m));
        }
        for m in add {
            work.steps.push_back(self.member_add(id, &m));
        }
        for m in remove {
            work.steps.push_back(Step {
                method: Method::DELETE,
                url: format!("/groups/{}/members/{}/$ref", segment(id), segment(&m)),
                body: None,
                tolerate: Tolerate::Absent,
                creates: false,
            });
        }
        Ok(())
    }

    fn manager_step(&self, user: &str, manager: Option<String>) -> Step {
        let url = format!("/users/{}/manager/$ref", segment(user));
        match manager {
            Some(m) => Step {
                method: Method::PUT,
                url,
                body: Some(
                    json!({"@odata.id": format!("{}/users/{}", self.settings.graph_url, segment(&m))}),
                ),
                tolerate: Tolerate::Nothing,
                creates: false,
            },
            None => Step {
                method: Method::DELETE,
                url,
                body: None,
                tolerate: Tolerate::Absent,
                creates: false,
            },
        }
    }

    fn member_add(&self, group: &str, member: &str) -> Step {
        Step {
            method: Method::POST,
            url: format!("/groups/{}/members/$ref", segment(group)),
            body: Some(json!({"@odata.id": self.object_link(member)})),
            tolerate: Tolerate::Present,
            creates: false,
        }
    }

    /// `https://graph.microsoft.com/v1.0/directoryObjects/{id}`.
    fn object_link(&self, id: &str) -> String {
        format!(
            "{}/directoryObjects/{}",
            self.settings.graph_url,
            segment(id)
        )
    }

    /// A group's current member ids.
    async fn members_of(&self, group: &str) -> Result<Vec<String>, ExportFailure> {
        let mut url = self.client.url(&format!(
            "/groups/{}/members?$select=id&$top=999",
            segment(group)
        ));
        let mut ids = Vec::new();
        loop {
            let body = self.read_for_export(&url).await?;
            ids.extend(
                body["value"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_owned)),
            );
            match body["@odata.nextLink"].as_str() {
                Some(next) if self.client.check_link(next).is_ok() => url = next.to_owned(),
                _ => return Ok(ids),
            }
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
        match self.client.call(Method::GET, url, None).await {
            Ok(a) => Ok(a.body),
            Err(CallError::Service(e)) => Err(failure(&e, false)),
            Err(CallError::Transport(e)) => {
                Err(ExportFailure::new(FailureKind::Retryable, e.message))
            }
        }
    }

    /// Sends the chains until each is done or failed.
    async fn drive(&self, works: &mut [Work]) -> Result<(), ConnectorError> {
        let policy = engine::RetryPolicy {
            attempts: self.settings.config.attempts,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(120),
        };
        let mut round = 0;
        loop {
            // (work index, step index) of each request, in order.
            let mut picked: Vec<(usize, usize)> = Vec::new();
            for (w, work) in works.iter().enumerate() {
                if work.done() {
                    continue;
                }
                let room = BATCH_LIMIT - picked.len();
                if room == 0 {
                    break;
                }
                picked.extend((0..work.steps.len().min(room)).map(|s| (w, s)));
            }
            if picked.is_empty() {
                return Ok(());
            }
            let requests: Vec<Json> = picked
                .iter()
                .enumerate()
                .map(|(i, &(w, s))| {
                    let step = &works[w].steps[s];
                    let mut r = json!({"id": (i + 1).to_string(), "method": step.method.as_str(), "url": step.url});
                    if let Some(body) = &step.body {
                        r["body"] = body.clone();
                        r["headers"] = json!({"Content-Type": "application/json"});
                    }
                    if s > 0 {
                        r["dependsOn"] = json!([i.to_string()]);
                    }
                    r
                })
                .collect();
            self.client.pace(requests.len()).await;
            let answer = self
                .client
                .call(
                    Method::POST,
                    &self.client.url("/$batch"),
                    Some(&json!({ "requests": requests })),
                )
                .await;
            let body = match answer {
                Ok(a) => a.body,
                Err(CallError::Transport(e)) => return Err(e),
                Err(CallError::Service(e)) => return Err(e.step_error("sending a $batch")),
            };
            let mut answers: Vec<Option<(u16, Json, Option<Duration>)>> = vec![None; picked.len()];
            for r in body["responses"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let index = r["id"]
                    .as_str()
                    .and_then(|i| i.parse::<usize>().ok())
                    .filter(|i| (1..=picked.len()).contains(i));
                let (Some(index), Some(status)) = (index, r["status"].as_u64()) else {
                    continue;
                };
                let retry_after = r["headers"]
                    .as_object()
                    .and_then(|h| {
                        h.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                            .and_then(|(_, v)| v.as_str()?.trim().parse::<u64>().ok())
                    })
                    .map(Duration::from_secs);
                answers[index - 1] = Some((status as u16, r["body"].clone(), retry_after));
            }
            let mut wait: Option<Duration> = None;
            let mut throttled_any = false;
            // Each work's picked steps are consecutive and in order.
            let mut i = 0;
            while i < picked.len() {
                let w = picked[i].0;
                let count = picked[i..].iter().take_while(|(x, _)| *x == w).count();
                let work = &mut works[w];
                for answer in &answers[i..i + count] {
                    let Some((status, body, retry_after)) = answer else {
                        work.failure = Some(ExportFailure::new(
                            FailureKind::Retryable,
                            "the $batch answer had no response for this request",
                        ));
                        break;
                    };
                    let Some(step) = work.steps.front() else {
                        break;
                    };
                    if (200..300).contains(status) {
                        let creates = step.creates;
                        work.steps.pop_front();
                        if creates {
                            let Some(id) = body["id"].as_str() else {
                                work.failure = Some(ExportFailure::new(
                                    FailureKind::Permanent,
                                    "Graph answered the create without the new object's id",
                                ));
                                break;
                            };
                            work.anchor = Some(id.to_owned());
                            work.created = true;
                            self.follow_create(work, id);
                        }
                        continue;
                    }
                    if matches!(status, 429 | 500 | 502 | 503 | 504) {
                        throttled_any = true;
                        work.throttled += 1;
                        if let Some(r) = retry_after {
                            wait = Some(wait.map_or(*r, |w| w.max(*r)));
                        }
                        if work.throttled >= policy.attempts {
                            let e = ServiceError::from_answer(*status, body);
                            work.failure = Some(failure(&e, false));
                        }
                        break;
                    }
                    if *status == 424 {
                        // Its predecessor's answer decided; it is sent again if that one is.
                        break;
                    }
                    let e = ServiceError::from_answer(*status, body);
                    let tolerated = match step.tolerate {
                        Tolerate::Present => *status == 400 && e.message.contains("already exist"),
                        Tolerate::Absent => *status == 404,
                        Tolerate::Nothing => false,
                    };
                    if tolerated {
                        work.steps.pop_front();
                        continue;
                    }
                    work.failure = Some(failure(&e, step.creates));
                    break;
                }
                i += count;
            }
            if throttled_any {
                round += 1;
                let wait = policy.wait(round, wait);
                tracing::warn!(
                    "Graph throttled requests of a $batch; sending them again in {} ms",
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Queues a created object's references, now that its id is known.
    fn follow_create(&self, work: &mut Work, id: &str) {
        let deferred = std::mem::take(&mut work.deferred);
        if let Some(m) = deferred.manager {
            work.steps.push_back(self.manager_step(id, Some(m)));
        }
        for m in deferred.members {
            work.steps.push_back(self.member_add(id, &m));
        }
    }

    /// For creates that found the object there already, its id, so the
    /// engine joins it.
    async fn fill_existing(&self, works: &mut [Work]) {
        for w in works.iter_mut() {
            let Some(f) = &mut w.failure else { continue };
            if f.kind != FailureKind::AlreadyExists || f.existing_anchor.is_some() {
                continue;
            }
            let Some((attribute, value)) = &w.key else {
                continue;
            };
            if let Ok(found) = self.find(&w.object_type, attribute, value).await {
                f.existing_anchor = found;
            }
        }
    }

    /// The id of the object of `object_type` whose `attribute` is `value`:
    /// `None` when there is none, an error when there are several.
    pub(crate) async fn find(
        &self,
        object_type: &str,
        attribute: &str,
        value: &str,
    ) -> Result<Option<String>, ConnectorError> {
        if value.is_empty() {
            return Ok(None);
        }
        let filter = format!("{attribute} eq '{}'", value.replace('\'', "''"));
        let mut url = url::Url::parse(&self.client.url(&format!("/{}", collection(object_type))))
            .map_err(|e| ConnectorError::new(format!("bad Graph URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$select", "id");
        let body = self
            .client
            .get(
                url.as_str(),
                &format!("looking for the {object_type} whose {attribute} is `{value}`"),
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
                "{} {object_type}s have {attribute} `{value}`; cannot tell which one an earlier add created",
                ids.len()
            ))),
        }
    }
}

/// The unique property a created object is found by.
pub(crate) fn key_of(object_type: &str) -> &'static str {
    if object_type == "group" {
        "mailNickname"
    } else {
        "userPrincipalName"
    }
}

/// A value's text, for ids.
fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// An id as one path segment: Graph ids are GUIDs; anything else is
/// percent-encoded so it cannot change the path.
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

fn no_anchor() -> ExportFailure {
    ExportFailure::new(
        FailureKind::Permanent,
        "the object has no Graph id yet (its add was never confirmed): import the connector first",
    )
}

/// One request's error as the failure of its object.
fn failure(e: &ServiceError, create: bool) -> ExportFailure {
    let kind = match e.status {
        400 if create && e.message.contains("already exists") => FailureKind::AlreadyExists,
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
        assert_eq!(failure(&dup, true).kind, FailureKind::AlreadyExists);
        assert_eq!(failure(&dup, false).kind, FailureKind::Permanent);
        assert_eq!(
            failure(&e(404, "Request_ResourceNotFound", "gone"), false).kind,
            FailureKind::NotFound
        );
        assert_eq!(
            failure(&e(403, "Authorization_RequestDenied", "no"), false).kind,
            FailureKind::RejectedByPolicy
        );
        let weak = e(
            400,
            "Request_BadRequest",
            "The specified password does not comply with password complexity requirements.",
        );
        assert_eq!(failure(&weak, true).kind, FailureKind::RejectedByPolicy);
        let f = failure(&e(429, "TooManyRequests", "slow down"), false);
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
