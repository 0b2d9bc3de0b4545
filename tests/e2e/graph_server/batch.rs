//! `POST /v1.0/$batch`: up to 20 requests run in order (`dependsOn`
//! respected) through the same [`execute`] as top-level requests, answered
//! in reverse order so clients match answers by id.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::query::Query;
use super::reply::{ApiError, Ctx, Reply};
use super::resources::{ApiRequest, Body};
use super::routes::{execute, readable};
use super::{Logged, Server, Shared};

/// Graph's limit of requests in one batch.
const MAX_REQUESTS: usize = 20;

/// One request of the batch, as sent.
struct Item {
    id: String,
    method: String,
    url: String,
    headers: Map<String, Value>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("BadRequest", message)
}

/// Reads and checks the batch's requests.
fn parse(bytes: &[u8]) -> Result<Vec<Item>, ApiError> {
    let payload: Value =
        serde_json::from_slice(bytes).map_err(|_| invalid("Invalid batch payload format."))?;
    let requests = payload
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("Invalid batch payload format."))?;
    if requests.len() > MAX_REQUESTS {
        return Err(invalid(format!(
            "Number of requests in a batch exceeds the limit of {MAX_REQUESTS}."
        )));
    }
    let mut items = Vec::new();
    for r in requests {
        let text = |name: &str| r.get(name).and_then(Value::as_str).map(str::to_owned);
        let id = text("id").ok_or_else(|| invalid("Every request in a batch needs an 'id'."))?;
        let method = text("method")
            .ok_or_else(|| invalid(format!("Request '{id}' has no 'method'.")))?
            .to_ascii_uppercase();
        let url = text("url").ok_or_else(|| invalid(format!("Request '{id}' has no 'url'.")))?;
        let headers = match r.get("headers") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(h)) => h.clone(),
            Some(_) => return Err(invalid(format!("Request '{id}' has invalid 'headers'."))),
        };
        let depends_on = match r.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|d| d.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid(format!("Request '{id}' has an invalid 'dependsOn'.")))?,
            Some(_) => {
                return Err(invalid(format!(
                    "Request '{id}' has an invalid 'dependsOn'."
                )))
            }
        };
        items.push(Item {
            id,
            method,
            url,
            headers,
            body: r.get("body").cloned(),
            depends_on,
        });
    }
    let mut ids = HashSet::new();
    for item in &items {
        if !ids.insert(item.id.as_str()) {
            return Err(invalid(format!(
                "Request id '{}' appears more than once in the batch.",
                item.id
            )));
        }
    }
    for item in &items {
        if let Some(unknown) = item.depends_on.iter().find(|d| !ids.contains(d.as_str())) {
            return Err(invalid(format!(
                "Request '{}' depends on request '{unknown}', which is not in the batch.",
                item.id
            )));
        }
    }
    // Graph documents three shapes only: every request independent, every
    // request after the one before it, or every request after one same
    // request.
    let none = items.iter().all(|i| i.depends_on.is_empty());
    let serial = items.iter().enumerate().all(|(k, i)| match k {
        0 => i.depends_on.is_empty(),
        _ => i.depends_on == [items[k - 1].id.clone()],
    });
    let one = items
        .iter()
        .skip(1)
        .all(|i| i.depends_on == [items[0].id.clone()])
        && items.first().is_some_and(|i| i.depends_on.is_empty());
    if !(none || serial || one) {
        return Err(invalid(
            "Batch requests must be all independent, all sequential, or all dependent on the same request."
                .to_owned(),
        ));
    }
    Ok(items)
}

/// The order to run the requests in: each after those it depends on,
/// otherwise as sent. `None` for a cycle.
fn order(items: &[Item]) -> Option<Vec<usize>> {
    let mut done: Vec<bool> = vec![false; items.len()];
    let mut order = Vec::new();
    while order.len() < items.len() {
        let next = (0..items.len()).find(|&i| {
            !done[i]
                && items[i].depends_on.iter().all(|d| {
                    items
                        .iter()
                        .position(|x| &x.id == d)
                        .is_some_and(|j| done[j])
                })
        })?;
        done[next] = true;
        order.push(next);
    }
    Some(order)
}

/// A header of a batch request, by case-insensitive name.
fn header<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// A batch request's URL as the request log shows it (see [`readable`]).
fn logged_path(item: &Item) -> String {
    let url = item.url.trim_start_matches('/');
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    readable(&format!("/v1.0/{path}"), query)
}

/// Runs one request of the batch (its dependencies succeeded).
fn run_one(server: &mut Server, shared: &Shared, ctx: &Ctx, item: &Item) -> Reply {
    let url = item.url.trim_start_matches('/');
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let logged = logged_path(item);
    let early = if item.url.contains("://") {
        Some(invalid(
            "Invalid request URL: a batch request's URL must be relative.",
        ))
    } else if path.trim_end_matches('/') == "$batch" {
        Some(invalid("A batch cannot contain another batch."))
    } else if matches!(item.method.as_str(), "POST" | "PATCH" | "PUT")
        && (item.body.is_none() || header(item, "Content-Type").is_none())
    {
        Some(invalid(format!(
            "Write request id : {} does not contain Content-Type header or body.",
            item.id
        )))
    } else {
        None
    };
    if let Some(error) = early {
        let mut reply = Reply::from(error);
        reply.finish(ctx);
        server.log.push(Logged {
            method: item.method.clone(),
            path_and_query: logged,
            status: reply.status,
            in_batch: true,
        });
        return reply;
    }
    let body = match &item.body {
        None | Some(Value::Null) => Body::Empty,
        Some(v) => Body::Json(v.clone()),
    };
    let req = ApiRequest {
        method: item.method.clone(),
        path: path.to_owned(),
        query: Query::parse(query),
        body,
    };
    execute(server, shared, ctx, &req, logged, true)
}

/// One answer in the batch's `responses`.
fn response(id: &str, reply: &Reply) -> Value {
    let mut headers = Map::new();
    for (name, value) in &reply.headers {
        headers.insert(name.clone(), json!(value));
    }
    let mut r = json!({"id": id, "status": reply.status});
    if let Some(body) = &reply.body {
        headers.insert("Content-Type".into(), json!(reply.content_type()));
        r["body"] = body.clone();
    }
    r["headers"] = Value::Object(headers);
    r
}

/// Runs a batch (already authenticated) and answers it.
pub(super) fn run(server: &mut Server, shared: &Shared, bytes: &[u8]) -> Reply {
    let items = match parse(bytes) {
        Ok(items) => items,
        Err(e) => return Reply::from(e),
    };
    let Some(order) = order(&items) else {
        return Reply::from(invalid(
            "The dependsOn of the batch's requests form a cycle.",
        ));
    };
    let mut statuses: Vec<Option<u16>> = vec![None; items.len()];
    let mut responses = Vec::new();
    for i in order {
        let item = &items[i];
        let ctx = Ctx::new(header(item, "client-request-id"));
        let failed_dependency = item.depends_on.iter().any(|d| {
            items
                .iter()
                .position(|x| &x.id == d)
                .and_then(|j| statuses[j])
                .is_some_and(|s| s >= 400)
        });
        let reply = if failed_dependency {
            let mut reply = Reply::from(ApiError::new(
                424,
                "FailedDependency",
                "Dependent request failed.",
            ));
            reply.finish(&ctx);
            server.log.push(Logged {
                method: item.method.clone(),
                path_and_query: logged_path(item),
                status: 424,
                in_batch: true,
            });
            reply
        } else {
            run_one(server, shared, &ctx, item)
        };
        statuses[i] = Some(reply.status);
        responses.push(response(&item.id, &reply));
    }
    // Graph may answer in any order; reversed keeps clients honest.
    responses.reverse();
    Reply::json(200, json!({"responses": responses}))
}
