//! Talking to Microsoft Graph: the access token (client credentials,
//! cached until shortly before it expires, fetched again when Graph calls
//! it expired), requests with throttling honoured (`Retry-After` on 429 and
//! 503, backoff with jitter otherwise, through the one `RetryPolicy`), the
//! client-side write pace, and Graph's error bodies as error kinds.
//!
//! Invariant: the bearer token and the client secret go only to the
//! configured hosts, and never into a message or a log line; a link Graph
//! returns (`@odata.nextLink`) is followed only on the configured service.

use std::time::{Duration, Instant};

use engine::{ConnectorError, ConnectorErrorKind, RetryPolicy};
use reqwest::{Method, StatusCode};
use serde_json::Value as Json;
use tokio::sync::{Mutex, OnceCell};

use super::Settings;
use crate::common::Secret;

/// One answer from Graph: its status, its JSON body (`Null` when empty)
/// and the wait it asked for.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Json,
    pub(crate) retry_after: Option<Duration>,
}

/// A failure to get an answer: transport, TLS, or a status Graph kept
/// giving after the retries.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CallError {
    /// The request did not get an HTTP answer.
    #[error("{0}")]
    Transport(ConnectorError),
    /// Graph answered with an error status.
    #[error("{0}")]
    Service(ServiceError),
}

/// Graph's error body (`{"error":{"code","message","innerError"}}`) with
/// its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status} {code}: {message}{}", request_id.as_ref().map(|r| format!(" (request-id {r})")).unwrap_or_default())]
pub(crate) struct ServiceError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) request_id: Option<String>,
}

impl ServiceError {
    /// Reads Graph's error body; a body of another shape keeps the status.
    pub(crate) fn from_answer(status: u16, body: &Json) -> ServiceError {
        let error = &body["error"];
        let text = |v: &Json| v.as_str().map(str::to_owned);
        ServiceError {
            status,
            code: text(&error["code"]).unwrap_or_else(|| {
                StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .replace(' ', "")
            }),
            message: text(&error["message"]).unwrap_or_else(|| "(no message)".into()),
            request_id: text(&error["innerError"]["request-id"])
                .or_else(|| text(&error["innererror"]["request-id"])),
        }
    }

    /// Whether the code is `code` (Graph's codes vary in case).
    pub(crate) fn is(&self, code: &str) -> bool {
        self.code.eq_ignore_ascii_case(code)
    }

    /// The failure of a whole step (import, check) this answer means.
    pub(crate) fn step_error(&self, what: &str) -> ConnectorError {
        let kind = match self.status {
            _ if self.status == 410
                || self.is("syncStateNotFound")
                || self.is("resyncRequired") =>
            {
                ConnectorErrorKind::WatermarkExpired
            }
            401 => ConnectorErrorKind::Authentication,
            403 | 400 | 404 => ConnectorErrorKind::Configuration,
            429 | 500..=599 => ConnectorErrorKind::Unavailable,
            _ => ConnectorErrorKind::Other,
        };
        let hint = match kind {
            ConnectorErrorKind::WatermarkExpired => {
                "; the delta token expired: run a full import (`mvsync import <connector> --full`, or give the run profile's step `fallback = \"full-import\"`)"
            }
            _ if self.status == 403 => {
                "; grant the app registration Microsoft Graph application permissions (User.Read.All and Group.Read.All to import; User.ReadWrite.All and Group.ReadWrite.All to export) with admin consent"
            }
            _ => "",
        };
        ConnectorError::of(kind, format!("{what}: {self}{hint}"))
    }
}

/// The cached access token.
struct Token {
    value: Secret,
    refresh_at: Instant,
}

/// The client-side write pace: writes are spread so that at most
/// `writes_per_second` leave per second.
struct Pace {
    next: Option<Instant>,
    writes: u64,
    first: Option<Instant>,
    waited: Duration,
}

/// What the export of a run sent, for its closing report.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WriteStats {
    pub(crate) writes: u64,
    pub(crate) elapsed: Duration,
    pub(crate) paced: Duration,
}

/// The connection to one tenant.
pub(crate) struct Client {
    settings: std::sync::Arc<Settings>,
    http: OnceCell<reqwest::Client>,
    token: Mutex<Option<Token>>,
    pace: Mutex<Pace>,
}

impl Client {
    pub(crate) fn new(settings: std::sync::Arc<Settings>) -> Client {
        Client {
            settings,
            http: OnceCell::new(),
            token: Mutex::new(None),
            pace: Mutex::new(Pace {
                next: None,
                writes: 0,
                first: None,
                waited: Duration::ZERO,
            }),
        }
    }

    /// The retry policy of every request: the configured attempts, Graph's
    /// `Retry-After` honoured up to two minutes.
    pub(crate) fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: self.settings.config.attempts,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(120),
        }
    }

    /// The HTTP client, built on first use (reading the CA file).
    async fn http(&self) -> Result<&reqwest::Client, ConnectorError> {
        self.http
            .get_or_try_init(|| async {
                let config = &self.settings.config;
                let timeout = Duration::from_secs(config.timeout_secs);
                let mut builder = reqwest::Client::builder()
                    .use_rustls_tls()
                    .https_only(true)
                    .timeout(timeout)
                    .connect_timeout(timeout.min(Duration::from_secs(30)))
                    .user_agent(concat!("mvsync/", env!("CARGO_PKG_VERSION")))
                    // A redirect would carry the bearer token elsewhere.
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(ca) = &config.ca_file {
                    let path = self.settings.base_dir.join(ca);
                    let pem = std::fs::read(&path).map_err(|e| {
                        ConnectorError::of(
                            ConnectorErrorKind::Configuration,
                            format!("cannot read `ca_file` {}: {e}", path.display()),
                        )
                    })?;
                    let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                        ConnectorError::of(
                            ConnectorErrorKind::Configuration,
                            format!("`ca_file` {} is not a PEM certificate: {e}", path.display()),
                        )
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                builder.build().map_err(|e| {
                    ConnectorError::of(
                        ConnectorErrorKind::Configuration,
                        format!("cannot set up HTTPS: {e}"),
                    )
                })
            })
            .await
    }

    /// A URL under the Graph base (`/users/delta?…`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.graph_url)
    }

    /// Checks that a link Graph returned stays on the configured service,
    /// so the token never goes elsewhere.
    pub(crate) fn check_link(&self, link: &str) -> Result<(), ConnectorError> {
        if link.starts_with(&format!("{}/", self.settings.graph_url)) {
            Ok(())
        } else {
            Err(ConnectorError::of(
                ConnectorErrorKind::Other,
                format!(
                    "Graph returned a link outside {} ({}); it was not followed",
                    self.settings.graph_url,
                    link.split('?').next().unwrap_or_default()
                ),
            ))
        }
    }

    /// The access token, fetched when there is none or it is about to
    /// expire.
    async fn token(&self) -> Result<String, ConnectorError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            if Instant::now() < t.refresh_at {
                return Ok(t.value.expose().to_owned());
            }
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.expose().to_owned();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets the token Graph called expired.
    async fn drop_token(&self) {
        *self.token.lock().await = None;
    }

    /// OAuth 2.0 client credentials against the identity platform.
    async fn fetch_token(&self) -> Result<Token, ConnectorError> {
        let config = &self.settings.config;
        let endpoint = format!(
            "{}/{}/oauth2/v2.0/token",
            config.authority.trim_end_matches('/'),
            config.tenant
        );
        // The credential, as the form's last fields: the secret, or a
        // client assertion signed with the certificate's key.
        let credential = self.credential(&endpoint)?;
        let http = self.http().await?;
        let answer = self
            .send(
                "the token request",
                &self.settings.authority_shown,
                Resend::Always,
                || {
                    let mut form = vec![
                        ("grant_type", "client_credentials"),
                        ("client_id", config.client_id.as_str()),
                        ("scope", config.scope.as_str()),
                    ];
                    form.extend(credential.iter().map(|(k, v)| (*k, v.expose())));
                    http.post(&endpoint).form(&form).send()
                },
            )
            .await?;
        if answer.status != 200 {
            let error = answer.body["error"].as_str().unwrap_or("error");
            let description = answer.body["error_description"]
                .as_str()
                .unwrap_or("(no description)");
            // The description's first sentence names the problem; the rest
            // is trace ids and a timestamp.
            let description = description
                .split(" Trace ID:")
                .next()
                .unwrap_or(description);
            let kind = match (answer.status, error) {
                (_, "invalid_client" | "unauthorized_client") => ConnectorErrorKind::Authentication,
                (429 | 500..=599, _) => ConnectorErrorKind::Unavailable,
                _ => ConnectorErrorKind::Configuration,
            };
            return Err(ConnectorError::of(
                kind,
                format!(
                    "the token endpoint {} refused the client credentials of app {}: HTTP {} {error}: {description}",
                    self.settings.authority_shown, config.client_id, answer.status
                ),
            ));
        }
        let Some(value) = answer.body["access_token"].as_str() else {
            return Err(ConnectorError::of(
                ConnectorErrorKind::Other,
                format!(
                    "the token endpoint {} answered without an access_token",
                    self.settings.authority_shown
                ),
            ));
        };
        // Clamped to a day: a wild value must not overflow the clock.
        let lifetime = answer.body["expires_in"]
            .as_u64()
            .or_else(|| answer.body["expires_in"].as_str()?.parse().ok())
            .unwrap_or(300)
            .min(86_400);
        // Refreshed five minutes early, or a tenth of a short lifetime.
        let margin = (lifetime / 10).min(300);
        tracing::debug!(
            "got an access token for app {} valid for {lifetime} s",
            config.client_id
        );
        Ok(Token {
            value: Secret::new(value.to_owned()),
            refresh_at: Instant::now() + Duration::from_secs(lifetime - margin),
        })
    }

    /// The form fields of the app's credential: `client_secret`, or
    /// `client_assertion_type` and a fresh `client_assertion`.
    fn credential(&self, endpoint: &str) -> Result<Vec<(&'static str, Secret)>, ConnectorError> {
        let config = &self.settings.config;
        let base = &self.settings.base_dir;
        let bad = |key: &str, e: String| {
            ConnectorError::of(ConnectorErrorKind::Configuration, format!("`{key}`: {e}"))
        };
        if let Some(cert) = &config.client_certificate {
            let path = base.join(&cert.certificate);
            let pem = std::fs::read(&path).map_err(|e| {
                bad(
                    "client_certificate.certificate",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let key = cert
                .private_key
                .resolve(base)
                .map_err(|e| bad("client_certificate.private_key", e.to_string()))?;
            let assertion =
                super::assertion::client_assertion(&pem, &key, &config.client_id, endpoint)
                    .map_err(|e| bad("client_certificate", e))?;
            return Ok(vec![
                (
                    "client_assertion_type",
                    Secret::new("urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()),
                ),
                ("client_assertion", Secret::new(assertion)),
            ]);
        }
        let Some(secret) = &config.client_secret else {
            return Err(bad("client_secret", "no credential is configured".into()));
        };
        let secret = secret
            .resolve(base)
            .map_err(|e| bad("client_secret", e.to_string()))?;
        Ok(vec![("client_secret", secret)])
    }

    /// Sends one request to Graph and reads its answer, retrying what is
    /// transient and fetching a new token once when Graph calls the token
    /// expired. `resend` says what may be sent again (a read, anything; a
    /// `$batch`, only what Graph surely did not run). An error status after
    /// the retries is a `CallError::Service`.
    pub(crate) async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Json>,
        resend: Resend,
    ) -> Result<Answer, CallError> {
        let http = self.http().await.map_err(CallError::Transport)?;
        let mut renewed = false;
        loop {
            let token = self.token().await.map_err(CallError::Transport)?;
            let what = format!("{method} {}", shown_path(url));
            let answer = self
                .send(&what, &self.settings.graph_shown, resend, || {
                    let mut request = http
                        .request(method.clone(), url)
                        .bearer_auth(&token)
                        .header("client-request-id", request_id());
                    if let Some(body) = body {
                        request = request.json(body);
                    }
                    request.send()
                })
                .await
                .map_err(CallError::Transport)?;
            if answer.status == 401 && !renewed {
                tracing::info!("Graph called the access token expired; fetching a new one");
                self.drop_token().await;
                renewed = true;
                continue;
            }
            if answer.status >= 400 {
                return Err(CallError::Service(ServiceError::from_answer(
                    answer.status,
                    &answer.body,
                )));
            }
            return Ok(answer);
        }
    }

    /// Sends a request (made again for each try) through the retry
    /// policy, the server's `Retry-After` honoured. The last answer is
    /// returned, whatever its status; no answer at all is an error.
    async fn send<F, Fut>(
        &self,
        what: &str,
        shown: &str,
        resend: Resend,
        mut request: F,
    ) -> Result<Answer, ConnectorError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<reqwest::Response, reqwest::Error>>,
    {
        let outcome = self
            .policy()
            .run(
                what,
                || {
                    let sent = request();
                    async move { read(sent.await, shown).await }
                },
                |e| match (e, resend) {
                    (Attempt::Retry(_) | Attempt::Transport(..), Resend::Always) => true,
                    // Graph ran none of it: throttled, unavailable, or
                    // never reached.
                    (Attempt::Retry(a), Resend::IfNotRun) => matches!(a.status, 429 | 503),
                    (Attempt::Transport(_, sent), Resend::IfNotRun) => !sent,
                },
                |e| match e {
                    Attempt::Retry(a) => a.retry_after,
                    Attempt::Transport(..) => None,
                },
            )
            .await;
        match outcome {
            Ok(a) | Err(Attempt::Retry(a)) => Ok(a),
            Err(Attempt::Transport(e, _)) => Err(e),
        }
    }

    /// `GET url` as JSON, for import and check.
    pub(crate) async fn get(&self, url: &str, what: &str) -> Result<Json, ConnectorError> {
        match self.call(Method::GET, url, None, Resend::Always).await {
            Ok(a) => Ok(a.body),
            Err(CallError::Transport(e)) => Err(e),
            Err(CallError::Service(e)) => Err(e.step_error(what)),
        }
    }

    /// Waits until `writes` more writes keep to `writes_per_second`.
    pub(crate) async fn pace(&self, writes: usize) {
        if writes == 0 {
            return;
        }
        let interval = Duration::from_secs_f64(1.0 / self.settings.config.writes_per_second);
        let wait = {
            let mut pace = self.pace.lock().await;
            let now = Instant::now();
            let start = pace.next.map_or(now, |n| n.max(now));
            pace.next = Some(start + interval.mul_f64(writes as f64));
            pace.first.get_or_insert(now);
            pace.writes += writes as u64;
            let wait = start - now;
            pace.waited += wait;
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// What was written since the last call, and resets the count.
    pub(crate) async fn take_stats(&self) -> WriteStats {
        let mut pace = self.pace.lock().await;
        let stats = WriteStats {
            writes: pace.writes,
            elapsed: pace.first.map(|f| f.elapsed()).unwrap_or_default(),
            paced: pace.waited,
        };
        pace.writes = 0;
        pace.first = None;
        pace.waited = Duration::ZERO;
        stats
    }
}

/// What may be sent again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Anything: a read, or a token request.
    Always,
    /// Only what the service surely did not run (429, 503, a connection
    /// never made): a `$batch` of writes, whose creates must not run twice.
    IfNotRun,
}

/// One try's outcome when it is not a final answer.
#[derive(Debug)]
enum Attempt {
    /// A status worth trying again (429, 5xx), with its answer.
    Retry(Answer),
    /// No HTTP answer; whether the request may have reached the service.
    Transport(ConnectorError, bool),
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::Retry(a) => write!(f, "{}", ServiceError::from_answer(a.status, &a.body)),
            Attempt::Transport(e, _) => write!(f, "{e}"),
        }
    }
}

/// Reads an HTTP answer: its body as JSON, its `Retry-After`; a transient
/// status is an `Attempt::Retry`.
async fn read(
    sent: Result<reqwest::Response, reqwest::Error>,
    shown: &str,
) -> Result<Answer, Attempt> {
    let response = sent.map_err(|e| {
        let sent = !e.is_connect();
        Attempt::Transport(transport_error(e, shown), sent)
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Attempt::Transport(transport_error(e, shown), true))?;
    let body = if bytes.is_empty() {
        Json::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::json!({"error": {"code": "NotJson", "message": format!(
                "the answer is not JSON: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )}})
        })
    };
    let answer = Answer {
        status,
        body,
        retry_after,
    };
    if is_transient(status) {
        Err(Attempt::Retry(answer))
    } else {
        Ok(answer)
    }
}

/// A request that got no HTTP answer, as an error kind: a certificate
/// problem is configuration, the rest is the service being unavailable.
fn transport_error(e: reqwest::Error, shown: &str) -> ConnectorError {
    let timeout = e.is_timeout();
    // The URL holds delta tokens and filter values: never in a message.
    let e = e.without_url();
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    if chain.contains("certificate") || chain.contains("Certificate") {
        ConnectorError::of(
            ConnectorErrorKind::Configuration,
            format!(
                "the TLS certificate of {shown} was not accepted{chain}; if a private CA signed it, give it as `ca_file`"
            ),
        )
    } else if timeout {
        ConnectorError::unavailable(format!("{shown} did not answer in time{chain}"))
    } else {
        ConnectorError::unavailable(format!("cannot reach {shown}{chain}"))
    }
}

/// Whether a status is worth trying again: throttled, or the service
/// briefly failing.
pub(crate) fn is_transient(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub(crate) fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// A URL's path without its query (tokens, filters), for log lines.
fn shown_path(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.path().to_owned(),
        Err(_) => url.split('?').next().unwrap_or_default().to_owned(),
    }
}

/// A fresh `client-request-id` (a random GUID), so Microsoft support can
/// find a request.
pub(crate) fn request_id() -> String {
    let mut b = [0u8; 16];
    // The OS's generator failing is not something to carry on from.
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut b).expect("the operating system's random number generator");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn graph_error_bodies_become_kinds_and_messages() {
        let body = serde_json::json!({"error": {"code": "Authorization_RequestDenied",
            "message": "Insufficient privileges to complete the operation.",
            "innerError": {"date": "2026-12-06T10:00:00", "request-id": "r-1", "client-request-id": "c-1"}}});
        let e = ServiceError::from_answer(403, &body);
        assert_eq!(e.code, "Authorization_RequestDenied");
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        let step = e.step_error("reading users");
        assert_eq!(step.kind, ConnectorErrorKind::Configuration);
        assert!(step.message.contains("User.Read.All"), "{}", step.message);
        let gone = ServiceError::from_answer(
            410,
            &serde_json::json!({"error": {"code": "resyncRequired", "message": "Resync required."}}),
        );
        assert_eq!(
            gone.step_error("x").kind,
            ConnectorErrorKind::WatermarkExpired
        );
        let expired = ServiceError::from_answer(
            400,
            &serde_json::json!({"error": {"code": "syncStateNotFound", "message": "The sync state generation is not found."}}),
        );
        assert_eq!(
            expired.step_error("x").kind,
            ConnectorErrorKind::WatermarkExpired
        );
        let odd = ServiceError::from_answer(502, &Json::Null);
        assert_eq!(
            (odd.code.as_str(), odd.step_error("x").kind),
            ("BadGateway", ConnectorErrorKind::Unavailable)
        );
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(&later).unwrap();
        assert!(
            (Duration::from_secs(28)..=Duration::from_secs(30)).contains(&wait),
            "{wait:?}"
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn request_ids_are_guids() {
        let a = request_id();
        assert_eq!(a.len(), 36);
        assert_ne!(a, request_id());
        assert_eq!(a.as_bytes()[14], b'4');
    }
}
