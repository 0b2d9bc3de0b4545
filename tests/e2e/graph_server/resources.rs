//! Graph's operations on users, groups, managers, members and the
//! organization: each takes the parsed request and answers a [`Reply`].

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::delta::{Round, Token};
use super::query::{self, Filter, Query, Selection};
use super::reply::{ApiError, Reply};
use super::state::{member_exists, Kind};
use super::{Server, Shared};

/// How many references a create or PATCH may bind at once.
const MAX_BINDS: usize = 20;

/// A request's body as sent.
#[derive(Debug, Clone)]
pub(super) enum Body {
    Empty,
    Json(Value),
    Malformed,
}

impl Body {
    /// Parses raw bytes as JSON.
    pub fn parse(bytes: &[u8]) -> Body {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Body::Empty;
        }
        serde_json::from_slice(bytes).map_or(Body::Malformed, Body::Json)
    }

    /// The body as a JSON object, or Graph's 400.
    pub fn object(&self) -> Result<&Map<String, Value>, ApiError> {
        match self {
            Body::Json(Value::Object(map)) => Ok(map),
            Body::Empty => Err(ApiError::bad_request(
                "BadRequest",
                "Empty Payload. JSON content expected.",
            )),
            Body::Json(_) | Body::Malformed => Err(ApiError::bad_request(
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            )),
        }
    }
}

/// A request to `/v1.0/…`, top-level or inside a batch.
#[derive(Debug, Clone)]
pub(super) struct ApiRequest {
    /// Upper case.
    pub method: String,
    /// Relative to `/v1.0/`, still percent-encoded, no leading slash.
    pub path: String,
    pub query: Query,
    pub body: Body,
}

/// `GET /organization`: the tenant.
pub(super) fn organization(shared: &Shared) -> Reply {
    Reply::json(
        200,
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#organization",
            "value": [{
                "id": shared.tenant_id,
                "displayName": "Contoso",
                "verifiedDomains": [{
                    "capabilities": "Email, OfficeCommunicationsOnline",
                    "isDefault": true,
                    "isInitial": true,
                    "name": super::TENANT,
                    "type": "Managed",
                }],
            }],
        }),
    )
}

/// `GET /users` or `/groups`: `$select`, `$filter`, `$top`, `$skiptoken`.
pub(super) fn list(
    server: &mut Server,
    shared: &Shared,
    kind: Kind,
    query: &Query,
) -> Result<Reply, ApiError> {
    let graph_url = shared.graph_url();
    if let Some(token) = query.get("$skiptoken") {
        return match server.tokens.get(token) {
            Some((Token::Page { round, offset }, _)) if round.path == kind.collection() => {
                Ok(Reply::json(200, server.tokens.page(&graph_url, &round, offset)))
            }
            _ => Err(ApiError::bad_request(
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            )),
        };
    }
    let select = Selection::parse(&server.dir, kind, query.get("$select"))?;
    let filter = query
        .get("$filter")
        .map(|f| Filter::parse(kind, f))
        .transpose()?;
    let page_size =
        query::top(query.get("$top"))?.map_or(server.page_size, |t| t.min(server.page_size));
    let entries = server
        .dir
        .all(kind)
        .filter(|o| filter.as_ref().is_none_or(|f| f.matches(o)))
        .map(|o| Value::Object(select.project(o)))
        .collect();
    let round = Arc::new(Round {
        path: kind.collection().to_owned(),
        context: select.context(kind),
        entries,
        page_size,
        end: None,
    });
    Ok(Reply::json(200, server.tokens.page(&graph_url, &round, 0)))
}

/// `GET /users/{id | userPrincipalName}` or `/groups/{id}`.
pub(super) fn get(
    server: &Server,
    kind: Kind,
    key: &str,
    query: &Query,
) -> Result<Reply, ApiError> {
    let select = Selection::parse(&server.dir, kind, query.get("$select"))?;
    let o = server
        .dir
        .resolve(kind, key)
        .ok_or_else(|| ApiError::not_found(key))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}/$entity", select.context(kind))),
    );
    body.extend(select.project(o));
    Ok(Reply::json(200, Value::Object(body)))
}

/// The answer configured with `fail_upn` for a user principal name, if any.
fn failing(server: &Server, upns: &[Option<&str>]) -> Result<(), ApiError> {
    for upn in upns.iter().flatten() {
        let upn = upn.to_lowercase();
        if let Some(f) = server
            .fail_upns
            .iter()
            .find(|f| f.upn.to_lowercase() == upn)
        {
            return Err(ApiError::bad_request(&f.code, f.message.clone()));
        }
    }
    Ok(())
}

/// The object id a reference URL names: its last path segment.
fn reference_id(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let id = super::routes::percent_decode(last)?;
    (!id.is_empty()).then_some(id)
}

/// The id in a `{"@odata.id": "…/directoryObjects/{id}"}` body.
fn reference_body(body: &Body) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "Request_BadRequest",
            "The request body must contain a valid '@odata.id' reference.",
        )
    };
    let url = body
        .object()?
        .get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    reference_id(url).ok_or_else(invalid)
}

/// The ids of `members@odata.bind`, each a live object.
fn member_binds(server: &Server, body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let Some(binds) = body.get("members@odata.bind") else {
        return Ok(Vec::new());
    };
    let invalid = || {
        ApiError::bad_request(
            "Request_BadRequest",
            "Invalid value specified for property 'members@odata.bind'.",
        )
    };
    let urls = binds.as_array().ok_or_else(invalid)?;
    if urls.len() > MAX_BINDS {
        return Err(ApiError::bad_request(
            "Request_BadRequest",
            format!("The request exceeds the limit of {MAX_BINDS} references for the property 'members'."),
        ));
    }
    let mut ids: Vec<String> = Vec::new();
    for url in urls {
        let id = url.as_str().and_then(reference_id).ok_or_else(invalid)?;
        if server.dir.live_any(&id).is_none() {
            return Err(ApiError::not_found(&id));
        }
        if ids.contains(&id) {
            return Err(member_exists());
        }
        ids.push(id);
    }
    Ok(ids)
}

fn is_text(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.trim().is_empty())
}

fn is_bool(v: &Value) -> bool {
    v.is_boolean()
}

fn is_upn(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| s.split_once('@'))
        .is_some_and(|(name, domain)| !name.is_empty() && !domain.is_empty())
}

fn has_password(v: &Value) -> bool {
    v.get("password")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty())
}

/// A required property and its check.
type Required = (&'static str, fn(&Value) -> bool);

/// What a new user must have, in the order Graph checks it.
const USER_REQUIRED: &[Required] = &[
    ("accountEnabled", is_bool),
    ("displayName", is_text),
    ("mailNickname", is_text),
    ("userPrincipalName", is_upn),
    ("passwordProfile", has_password),
];

/// What a new group must have.
const GROUP_REQUIRED: &[Required] = &[
    ("displayName", is_text),
    ("mailEnabled", is_bool),
    ("mailNickname", is_text),
    ("securityEnabled", is_bool),
];

/// Checks the properties a new user or group must have.
fn check_required(kind: Kind, body: &Map<String, Value>) -> Result<(), ApiError> {
    let required = match kind {
        Kind::User => USER_REQUIRED,
        Kind::Group => GROUP_REQUIRED,
    };
    for (name, valid) in required {
        if !body.get(*name).is_some_and(valid) {
            return Err(ApiError::invalid_property(name, kind.resource()));
        }
    }
    Ok(())
}

/// `POST /users` or `/groups` → 201 with the new object.
pub(super) fn create(server: &mut Server, kind: Kind, req: &ApiRequest) -> Result<Reply, ApiError> {
    let body = req.body.object()?;
    if kind == Kind::User {
        failing(
            server,
            &[body.get("userPrincipalName").and_then(Value::as_str)],
        )?;
    }
    check_required(kind, body)?;
    let members = match kind {
        Kind::Group => member_binds(server, body)?,
        Kind::User => Vec::new(),
    };
    let id = server.dir.create(kind, body)?;
    for m in &members {
        server.dir.add_member(&id, m)?;
    }
    let o = server
        .dir
        .get(&id)
        .ok_or_else(|| ApiError::not_found(&id))?;
    let mut entity = Map::new();
    entity.insert(
        "@odata.context".into(),
        json!(format!(
            "https://graph.microsoft.com/v1.0/$metadata#{}/$entity",
            kind.collection()
        )),
    );
    entity.extend(o.entity());
    Ok(Reply::json(201, Value::Object(entity)))
}

/// `PATCH /users/{id}` or `/groups/{id}` → 204.
pub(super) fn update(
    server: &mut Server,
    kind: Kind,
    key: &str,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let body = req.body.object()?;
    let o = server
        .dir
        .resolve(kind, key)
        .ok_or_else(|| ApiError::not_found(key))?;
    let id = o.id.clone();
    if kind == Kind::User {
        let new_upn = body.get("userPrincipalName").and_then(Value::as_str);
        failing(server, &[o.upn(), new_upn])?;
    }
    let members = match kind {
        Kind::Group => member_binds(server, body)?,
        Kind::User => Vec::new(),
    };
    if server
        .dir
        .live(kind, &id)
        .is_some_and(|g| members.iter().any(|m| g.members.contains(m)))
    {
        return Err(member_exists());
    }
    server.dir.update(&id, body)?;
    for m in &members {
        server.dir.add_member(&id, m)?;
    }
    Ok(Reply::no_content())
}

/// `DELETE /users/{id}` or `/groups/{id}` → 204 (to the recycle bin).
pub(super) fn delete(server: &mut Server, kind: Kind, key: &str) -> Result<Reply, ApiError> {
    let id = server
        .dir
        .resolve(kind, key)
        .map(|o| o.id.clone())
        .ok_or_else(|| ApiError::not_found(key))?;
    server.dir.remove(&id, false)?;
    Ok(Reply::no_content())
}

/// 404 for a user without a manager.
fn no_manager() -> ApiError {
    ApiError::not_found("manager")
}

/// `GET /users/{id}/manager`.
pub(super) fn get_manager(server: &Server, key: &str) -> Result<Reply, ApiError> {
    let user = server
        .dir
        .resolve(Kind::User, key)
        .ok_or_else(|| ApiError::not_found(key))?;
    let manager = user
        .manager
        .as_deref()
        .and_then(|m| server.dir.live(Kind::User, m))
        .ok_or_else(no_manager)?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!("https://graph.microsoft.com/v1.0/$metadata#directoryObjects/$entity"),
    );
    body.insert("@odata.type".into(), json!(Kind::User.odata_type()));
    body.extend(manager.entity());
    Ok(Reply::json(200, Value::Object(body)))
}

/// `PUT /users/{id}/manager/$ref` → 204.
pub(super) fn set_manager(
    server: &mut Server,
    key: &str,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    let user = server
        .dir
        .resolve(Kind::User, key)
        .map(|o| o.id.clone())
        .ok_or_else(|| ApiError::not_found(key))?;
    let manager = reference_body(&req.body)?;
    server.dir.set_manager(&user, Some(&manager))?;
    Ok(Reply::no_content())
}

/// `DELETE /users/{id}/manager/$ref` → 204, or 404 without a manager.
pub(super) fn remove_manager(server: &mut Server, key: &str) -> Result<Reply, ApiError> {
    let user = server
        .dir
        .resolve(Kind::User, key)
        .ok_or_else(|| ApiError::not_found(key))?;
    if user.manager.is_none() {
        return Err(no_manager());
    }
    let id = user.id.clone();
    server.dir.set_manager(&id, None)?;
    Ok(Reply::no_content())
}

/// `GET /groups/{id}/members` (one page).
pub(super) fn get_members(server: &Server, key: &str) -> Result<Reply, ApiError> {
    let group = server
        .dir
        .live(Kind::Group, key)
        .ok_or_else(|| ApiError::not_found(key))?;
    let value: Vec<Value> = group
        .members
        .iter()
        .filter_map(|m| server.dir.live_any(m))
        .map(|m| {
            let mut entity = Map::new();
            entity.insert("@odata.type".into(), json!(m.kind.odata_type()));
            entity.extend(m.entity());
            Value::Object(entity)
        })
        .collect();
    Ok(Reply::json(
        200,
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
            "value": value,
        }),
    ))
}

/// `POST /groups/{id}/members/$ref` → 204.
pub(super) fn add_member(
    server: &mut Server,
    group: &str,
    req: &ApiRequest,
) -> Result<Reply, ApiError> {
    if server.dir.live(Kind::Group, group).is_none() {
        return Err(ApiError::not_found(group));
    }
    let member = reference_body(&req.body)?;
    server.dir.add_member(group, &member)?;
    Ok(Reply::no_content())
}

/// `DELETE /groups/{id}/members/{memberId}/$ref` → 204.
pub(super) fn remove_member(
    server: &mut Server,
    group: &str,
    member: &str,
) -> Result<Reply, ApiError> {
    server.dir.remove_member(group, member)?;
    Ok(Reply::no_content())
}
