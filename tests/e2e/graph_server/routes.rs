//! The HTTP side: one axum fallback handler that reads the whole request,
//! routes it (token endpoint, `$batch`, or a Graph call), checks the
//! access token, applies the configured faults, logs it, and answers with
//! Graph's headers. Graph calls go through [`execute`], which `$batch`
//! uses for each of its requests too.

use std::sync::Arc;

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use axum::Router;

use super::reply::{ApiError, Ctx, Reply};
use super::resources::{self, ApiRequest, Body};
use super::state::Kind;
use super::{batch, delta, token, Fault, Logged, Server, Shared};

/// The largest request body read.
const MAX_BODY: usize = 16 << 20;

/// The router: everything goes to [`entry`].
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(entry).with_state(shared)
}

/// What [`handle`] decided: the answer, and whether to withhold it.
struct Outcome {
    reply: Reply,
    hold: bool,
}

async fn entry(State(shared): State<Arc<Shared>>, request: Request) -> Response<HttpBody> {
    let (parts, body) = request.into_parts();
    let ctx = Ctx::new(
        parts
            .headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok()),
    );
    let path_and_query = readable(parts.uri.path(), parts.uri.query());
    let outcome = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => handle(
            &shared,
            &parts.method,
            &parts.uri,
            &parts.headers,
            &bytes,
            &ctx,
        ),
        Err(e) => {
            let reply = Reply::from(ApiError::bad_request(
                "BadRequest",
                format!("The request body could not be read: {e}"),
            ));
            shared.lock().log.push(Logged {
                method: parts.method.to_string(),
                path_and_query,
                status: reply.status,
                in_batch: false,
            });
            Outcome { reply, hold: false }
        }
    };
    if outcome.hold {
        // The write is applied; its answer never comes (see `hold_writes`).
        std::future::pending::<()>().await;
    }
    let mut reply = outcome.reply;
    reply.finish(&ctx);
    respond(reply, &ctx)
}

/// Routes one request and logs it.
fn handle(
    shared: &Shared,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    bytes: &Bytes,
    ctx: &Ctx,
) -> Outcome {
    let path = uri.path();
    let path_and_query = readable(path, uri.query());
    let mut server = shared.lock();
    let log = |server: &mut Server, status: u16| {
        server.log.push(Logged {
            method: method.to_string(),
            path_and_query: path_and_query.clone(),
            status,
            in_batch: false,
        });
    };

    // The token endpoint: /{tenant}/oauth2/v2.0/token.
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    if let [tenant, "oauth2", "v2.0", "token"] = segments.as_slice() {
        // Counted by `token_requests`, not logged with the Graph requests.
        server.token_requests += 1;
        let reply = if method == Method::POST {
            token::endpoint(&mut server, &shared.tenant_id, tenant, bytes)
        } else {
            Reply::from(ApiError::method_not_allowed())
        };
        return Outcome { reply, hold: false };
    }

    let Some(rest) = path
        .strip_prefix("/v1.0")
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        let segment = segments.first().copied().unwrap_or_default();
        let reply = Reply::from(ApiError::no_segment(segment));
        log(&mut server, reply.status);
        return Outcome { reply, hold: false };
    };
    let rest = rest.trim_start_matches('/');

    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(message) = server.access.check(authorization) {
        let www_authenticate = format!(
            "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            shared.base
        );
        let reply = Reply::from(ApiError::new(401, "InvalidAuthenticationToken", message))
            .with_header("WWW-Authenticate", www_authenticate);
        log(&mut server, reply.status);
        return Outcome { reply, hold: false };
    }

    if percent_decode(rest).as_deref() == Some("$batch") {
        if method != Method::POST {
            let reply = Reply::from(ApiError::method_not_allowed());
            log(&mut server, reply.status);
            return Outcome { reply, hold: false };
        }
        // Logged before the requests inside it, with its status set after.
        let index = server.log.len();
        log(&mut server, 0);
        let mut reply = batch::run(&mut server, shared, bytes);
        if let Some(status) = server.lost_batches.pop_front() {
            reply = Reply::from(ApiError::new(
                status,
                "GatewayTimeout",
                "The gateway did not receive a response from the service in time.",
            ));
        }
        server.log[index].status = reply.status;
        return Outcome {
            hold: server.hold,
            reply,
        };
    }

    let req = ApiRequest {
        method: method.as_str().to_ascii_uppercase(),
        path: rest.to_owned(),
        query: super::query::Query::parse(uri.query()),
        body: Body::parse(bytes),
    };
    let reply = execute(
        &mut server,
        shared,
        ctx,
        &req,
        path_and_query.clone(),
        false,
    );
    Outcome {
        hold: server.hold && is_write(&req.method),
        reply,
    }
}

/// A path and query as the request log shows them: percent-decoded (`+`
/// in the query as a space), so `$filter=userPrincipalName eq 'x'` reads
/// the same however the client encoded it.
pub(super) fn readable(path: &str, query: Option<&str>) -> String {
    let mut out = percent_decode(path).unwrap_or_else(|| path.to_owned());
    if let Some(query) = query {
        let pairs: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| {
                if v.is_empty() {
                    k.into_owned()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Whether a method writes.
pub(super) fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PATCH" | "PUT" | "DELETE")
}

/// Runs one Graph request (already authenticated): takes the next fault if
/// one is queued, else dispatches it; counts an applied write and logs it.
pub(super) fn execute(
    server: &mut Server,
    shared: &Shared,
    ctx: &Ctx,
    req: &ApiRequest,
    logged_path: String,
    in_batch: bool,
) -> Reply {
    let mut reply = match server.faults.pop_front() {
        Some(fault) => fault_reply(fault),
        None => dispatch(server, shared, req).unwrap_or_else(Reply::from),
    };
    reply.finish(ctx);
    if is_write(&req.method) && reply.status < 400 {
        server.writes += 1;
    }
    server.log.push(Logged {
        method: req.method.clone(),
        path_and_query: logged_path,
        status: reply.status,
        in_batch,
    });
    reply
}

/// 429 or 503 with `Retry-After`.
fn fault_reply(fault: Fault) -> Reply {
    let error = match fault.status {
        429 => ApiError::new(429, "TooManyRequests", "Too many requests"),
        status => ApiError::new(status, "serviceNotAvailable", "Service Unavailable"),
    };
    Reply::from(error).with_header("Retry-After", fault.retry_after_secs.to_string())
}

/// Percent-decodes a path segment (`None` when it is not UTF-8 or malformed).
pub(super) fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Finds the operation for a method and path.
fn dispatch(server: &mut Server, shared: &Shared, req: &ApiRequest) -> Result<Reply, ApiError> {
    let segments: Vec<String> = req
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect::<Option<_>>()
        .ok_or_else(|| {
            ApiError::bad_request("BadRequest", "Invalid URL: malformed percent-encoding.")
        })?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method.as_str();
    let Some((first, rest)) = segments.split_first() else {
        return Err(ApiError::no_segment(""));
    };
    if *first == "organization" {
        return match (method, rest) {
            ("GET", []) => Ok(resources::organization(shared)),
            (_, []) => Err(ApiError::method_not_allowed()),
            (_, [next, ..]) => Err(ApiError::no_segment(next)),
        };
    }
    let Some(kind) = Kind::from_collection(first) else {
        return Err(ApiError::no_segment(first));
    };
    let user = kind == Kind::User;
    match (method, rest) {
        ("GET", []) => resources::list(server, shared, kind, &req.query),
        ("POST", []) => resources::create(server, kind, req),
        (_, []) => Err(ApiError::method_not_allowed()),
        ("GET", ["delta" | "delta()"]) => {
            delta::handle(server, &shared.graph_url(), kind, &req.query)
        }
        (_, ["delta" | "delta()"]) => Err(ApiError::method_not_allowed()),
        ("GET", [id]) => resources::get(server, kind, id, &req.query),
        ("PATCH", [id]) => resources::update(server, kind, id, req),
        ("DELETE", [id]) => resources::delete(server, kind, id),
        (_, [_]) => Err(ApiError::method_not_allowed()),
        ("GET", [id, "manager"]) if user => resources::get_manager(server, id),
        (_, [_, "manager"]) if user => Err(ApiError::method_not_allowed()),
        ("PUT", [id, "manager", "$ref"]) if user => resources::set_manager(server, id, req),
        ("DELETE", [id, "manager", "$ref"]) if user => resources::remove_manager(server, id),
        (_, [_, "manager", "$ref"]) if user => Err(ApiError::method_not_allowed()),
        ("GET", [id, "members"]) if !user => resources::get_members(server, id),
        (_, [_, "members"]) if !user => Err(ApiError::method_not_allowed()),
        ("POST", [id, "members", "$ref"]) if !user => resources::add_member(server, id, req),
        (_, [_, "members", "$ref"]) if !user => Err(ApiError::method_not_allowed()),
        ("DELETE", [id, "members", member, "$ref"]) if !user => {
            resources::remove_member(server, id, member)
        }
        (_, [_, "members", _, "$ref"]) if !user => Err(ApiError::method_not_allowed()),
        (_, [_, next, ..]) => Err(ApiError::no_segment(next)),
    }
}

/// The HTTP response: status, Graph's headers, the JSON body.
fn respond(reply: Reply, ctx: &Ctx) -> Response<HttpBody> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(HttpBody::empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let mut add = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    };
    add("request-id", &ctx.request_id);
    add("client-request-id", &ctx.client_request_id);
    for (name, value) in &reply.headers {
        add(name, value);
    }
    if let Some(body) = &reply.body {
        add("Content-Type", reply.content_type());
        *response.body_mut() = HttpBody::from(body.to_string());
    }
    response
}
