//! What a handler answers ([`Reply`]), Graph's error shape ([`ApiError`])
//! and the per-request ids every answer carries ([`Ctx`]).

use serde_json::{json, Value};

use super::ids;

/// The `Content-Type` of Graph's JSON answers.
pub(super) const GRAPH_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// The `Content-Type` of Graph's error answers.
pub(super) const ERROR_JSON: &str = "application/json";

/// The ids of one request: `request-id` (made here) and
/// `client-request-id` (the client's, echoed, or the request id).
pub(super) struct Ctx {
    pub request_id: String,
    pub client_request_id: String,
}

impl Ctx {
    /// Ids for a request that sent `client_request_id` (or none).
    pub fn new(client_request_id: Option<&str>) -> Ctx {
        let request_id = ids::guid();
        let client_request_id = client_request_id
            .filter(|s| !s.is_empty())
            .map_or_else(|| request_id.clone(), str::to_owned);
        Ctx {
            request_id,
            client_request_id,
        }
    }
}

/// A Graph error: status, `error.code` and `error.message`.
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// Any error.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// 400 with this code.
    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }

    /// 404 `Request_ResourceNotFound` for `id`.
    pub fn not_found(id: &str) -> ApiError {
        ApiError::new(
            404,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    /// 405 for a method the path does not take.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    }

    /// 400 for a path segment that names nothing.
    pub fn no_segment(segment: &str) -> ApiError {
        ApiError::bad_request(
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    /// 400 `Request_BadRequest` for a missing or invalid property of a new object.
    pub fn invalid_property(name: &str, resource: &str) -> ApiError {
        ApiError::bad_request(
            "Request_BadRequest",
            format!("Invalid value specified for property '{name}' of resource '{resource}'."),
        )
    }
}

/// A handler's answer, before the per-request headers are added.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub status: u16,
    /// Headers besides `request-id`, `client-request-id` and `Content-Type`.
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    /// `None`: [`GRAPH_JSON`], or [`ERROR_JSON`] for an error.
    pub content_type: Option<&'static str>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
            content_type: None,
        }
    }

    /// 204 No Content.
    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            headers: Vec::new(),
            body: None,
            content_type: None,
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The `Content-Type` this answer is sent with (when it has a body).
    pub fn content_type(&self) -> &'static str {
        self.content_type.unwrap_or(if self.status >= 400 {
            ERROR_JSON
        } else {
            GRAPH_JSON
        })
    }

    /// Adds the `innerError` (date and the request's ids) to an error body
    /// that has none yet.
    pub fn finish(&mut self, ctx: &Ctx) {
        if self.status < 400 {
            return;
        }
        let Some(error) = self
            .body
            .as_mut()
            .and_then(|b| b.get_mut("error"))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        error.entry("innerError").or_insert_with(|| {
            json!({
                "date": ids::graph_date(),
                "request-id": ctx.request_id,
                "client-request-id": ctx.client_request_id,
            })
        });
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::json(
            e.status,
            json!({"error": {"code": e.code, "message": e.message}}),
        )
    }
}
