//! The Microsoft identity platform's token endpoint (client credentials
//! only) and the access tokens it issues.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::reply::Reply;
use super::{ids, Server, CLIENT_ID, CLIENT_SECRET, TENANT};

/// The only scope a client-credentials request for Graph may ask for.
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Issued access tokens and when each expires.
#[derive(Debug, Default)]
pub(super) struct AccessTokens {
    issued: HashMap<String, Instant>,
}

impl AccessTokens {
    /// A new token valid for `lifetime_secs`.
    pub fn issue(&mut self, lifetime_secs: u64) -> String {
        let token = ids::opaque_token();
        self.issued.insert(
            token.clone(),
            Instant::now() + Duration::from_secs(lifetime_secs),
        );
        token
    }

    /// Makes every token issued so far expired.
    pub fn expire_all(&mut self) {
        let now = Instant::now();
        for expiry in self.issued.values_mut() {
            *expiry = now;
        }
    }

    /// Checks an `Authorization` header; the error is Graph's message.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), &'static str> {
        let token = authorization
            .map(str::trim)
            .and_then(|h| {
                let (scheme, token) = h.split_once(' ').unwrap_or((h, ""));
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .unwrap_or("");
        if token.is_empty() {
            return Err("Access token is empty.");
        }
        match self.issued.get(token) {
            Some(expiry) if Instant::now() < *expiry => Ok(()),
            Some(_) => Err("Access token has expired or is not yet valid."),
            None => Err("IDX14100: JWT is not well formed, there are no dots (.)."),
        }
    }
}

/// An Entra ID error: `error`, `AADSTS<code>: <description>` with the
/// trace ids, and the rest of the fields the service sends.
fn aad_error(status: u16, error: &str, code: u32, description: &str) -> Reply {
    let trace = ids::guid();
    let correlation = ids::guid();
    let timestamp = ids::aad_timestamp();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    token_reply(status, body)
}

fn token_reply(status: u16, body: Value) -> Reply {
    let mut reply = Reply::json(status, body)
        .with_header("Cache-Control", "no-store, no-cache")
        .with_header("Pragma", "no-cache");
    reply.content_type = Some("application/json; charset=utf-8");
    reply
}

/// `POST /{tenant}/oauth2/v2.0/token` with a form body.
pub(super) fn endpoint(server: &mut Server, tenant_id: &str, tenant: &str, body: &[u8]) -> Reply {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    if tenant != TENANT && tenant != tenant_id {
        return aad_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
    }
    match field("grant_type") {
        None => {
            return aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        }
        Some("client_credentials") => {}
        Some(other) => {
            return aad_error(
                400,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            )
        }
    }
    let Some(client_id) = field("client_id") else {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    if client_id != CLIENT_ID {
        return aad_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{TENANT}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        );
    }
    match field("client_secret") {
        None => match (field("client_assertion_type"), field("client_assertion")) {
            (Some(kind), Some(assertion)) => {
                if let Err(reply) = check_assertion(server, kind, assertion, tenant) {
                    return reply;
                }
            }
            _ => {
                return aad_error(
                    401,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                )
            }
        },
        Some(secret) if secret != CLIENT_SECRET => {
            return aad_error(
                401,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{CLIENT_ID}'."
                ),
            )
        }
        Some(_) => {}
    }
    match field("scope") {
        None => aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        ),
        Some(scope) if scope != GRAPH_SCOPE => aad_error(
            400,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ),
        Some(_) => {
            let lifetime = server.token_lifetime;
            let token = server.access.issue(lifetime);
            token_reply(
                200,
                json!({
                    "token_type": "Bearer",
                    "expires_in": lifetime,
                    "ext_expires_in": lifetime,
                    "access_token": token,
                }),
            )
        }
    }
}

/// Checks a client assertion as the identity platform does: a JWT for the
/// jwt-bearer type, naming the registered certificate (`x5t`), for this
/// token endpoint, from and about the app, in its validity window, signed
/// (RS256) by the certificate's key.
fn check_assertion(
    server: &Server,
    kind: &str,
    assertion: &str,
    tenant: &str,
) -> Result<(), Reply> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    if kind != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return Err(aad_error(
            400,
            "invalid_request",
            50027,
            "Invalid JWT token. The client_assertion_type is not supported.",
        ));
    }
    let parts: Vec<&str> = assertion.split('.').collect();
    let decode = |p: &str| -> Option<Value> { serde_json::from_slice(&b64.decode(p).ok()?).ok() };
    let (Some(header), Some(claims), Some(signature)) = (
        parts.first().and_then(|p| decode(p)),
        parts.get(1).and_then(|p| decode(p)),
        parts.get(2).and_then(|p| b64.decode(p).ok()),
    ) else {
        return Err(aad_error(
            400,
            "invalid_request",
            50027,
            "Invalid JWT token. The token is malformed.",
        ));
    };
    let Some((public_key, x5t)) = &server.certificate else {
        return Err(aad_error(
            401,
            "invalid_client",
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        ));
    };
    if header["alg"] != "RS256" || header["x5t"].as_str() != Some(x5t.as_str()) {
        return Err(aad_error(
            401,
            "invalid_client",
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let audience_ok = claims["aud"]
        .as_str()
        .is_some_and(|a| a.ends_with(&format!("/{tenant}/oauth2/v2.0/token")));
    if !audience_ok || claims["iss"] != CLIENT_ID || claims["sub"] != CLIENT_ID {
        return Err(aad_error(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter, or its audience is not this token endpoint.",
        ));
    }
    let exp = claims["exp"].as_u64().unwrap_or(0);
    let nbf = claims["nbf"].as_u64().unwrap_or(0);
    if exp <= now || nbf > now + 300 {
        return Err(aad_error(
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let signed = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key,
    )
    .verify(signed.as_bytes(), &signature)
    .map_err(|_| {
        aad_error(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        )
    })
}
