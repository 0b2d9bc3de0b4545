//! A local Microsoft Graph (v1.0) for the Graph connector's tests: HTTPS on
//! 127.0.0.1 with the test CA's certificate, the Microsoft identity
//! platform's client-credentials token endpoint, users and groups with
//! managers and members, delta queries with skip and delta tokens, plain
//! lists and gets, writes, `$batch`, and faults a test switches on
//! (throttling, outages, a failing user, expired tokens, withheld answers).
//!
//! It runs inside the test process on its own tokio runtime, so plain
//! `#[test]` functions use it, and stops when the [`GraphServer`] drops.
//! The shapes follow Graph's documentation; see each module:
//!
//! - `state`: the directory and its change log,
//! - `delta`: delta rounds and tokens, and the paging lists share,
//! - `resources`: the operations on users, groups, managers, members,
//! - `batch`: `$batch`,
//! - `token`: the token endpoint and access tokens,
//! - `routes`: HTTP, authentication, faults and the request log,
//! - `query`, `reply`, `ids`, `tls`: the pieces they share.

mod batch;
mod delta;
mod ids;
mod query;
mod reply;
mod resources;
mod routes;
mod state;
#[cfg(test)]
mod tests;
mod tls;
mod token;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value};

use state::{Directory, Kind};

/// The tenant's domain: the token endpoint is `{authority}/{TENANT}/oauth2/v2.0/token`.
pub const TENANT: &str = "contoso.onmicrosoft.com";
/// The application (client) id the token endpoint knows.
pub const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
/// That application's client secret.
pub const CLIENT_SECRET: &str = "s3cr3t-Graph~Value.not-for-logs";

/// One request the server received (token requests are only counted, by
/// [`GraphServer::token_requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query, percent-decoded (`+` in the query as a space), e.g.
    /// `/v1.0/users?$filter=userPrincipalName eq 'a@b'&$select=id`; for a
    /// request inside a batch, its URL under `/v1.0`.
    pub path_and_query: String,
    /// The status answered (for a withheld answer, the one it would have been).
    pub status: u16,
    /// Whether it came inside a `$batch`.
    pub in_batch: bool,
}

/// A queued fault: the next Graph request answers this status.
#[derive(Debug, Clone, Copy)]
struct Fault {
    status: u16,
    retry_after_secs: u64,
}

/// `fail_upn`'s rule: writes of this user answer 400 with this error.
#[derive(Debug, Clone)]
struct FailUpn {
    upn: String,
    code: String,
    message: String,
}

/// Everything that changes, behind one lock.
#[derive(Debug)]
struct Server {
    dir: Directory,
    tokens: delta::Tokens,
    access: token::AccessTokens,
    faults: VecDeque<Fault>,
    fail_upns: Vec<FailUpn>,
    hold: bool,
    /// Statuses to answer the next `$batch`es with after running them.
    lost_batches: VecDeque<u16>,
    /// The app's certificate credential: its RSA public key (PKCS#1 DER)
    /// and SHA-1 thumbprint (`x5t`, base64url).
    certificate: Option<(Vec<u8>, String)>,
    log: Vec<Logged>,
    writes: usize,
    token_requests: usize,
    page_size: usize,
    members_per_entry: usize,
    token_lifetime: u64,
}

/// What the handlers share.
struct Shared {
    /// `https://127.0.0.1:PORT`
    base: String,
    /// The tenant's id (`GET /organization`).
    tenant_id: String,
    server: Mutex<Server>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Server> {
        // A test that panicked while holding the lock leaves consistent state.
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base)
    }
}

/// A running Graph server; stopped when dropped.
pub struct GraphServer {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for GraphServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The JSON object a test passed, or a panic naming the call.
fn object_arg(call: &str, value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("{call}: expected a JSON object, got {other}"),
    }
}

// Not every test uses every control.
#[allow(dead_code)]
impl GraphServer {
    /// Starts a server on a free port of 127.0.0.1 with an empty directory.
    pub fn start() -> GraphServer {
        let ca = crate::directory::test_ca();
        let acceptor = tls::acceptor(ca);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("graph-server")
            .enable_all()
            .build()
            .expect("a tokio runtime for the Graph server");
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener
            .local_addr()
            .expect("the listener's address")
            .port();
        let tcp = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).expect("a tokio listener")
        };
        let shared = Arc::new(Shared {
            base: format!("https://127.0.0.1:{port}"),
            tenant_id: ids::guid(),
            server: Mutex::new(Server {
                dir: Directory::default(),
                tokens: delta::Tokens::default(),
                access: token::AccessTokens::default(),
                faults: VecDeque::new(),
                fail_upns: Vec::new(),
                hold: false,
                lost_batches: VecDeque::new(),
                certificate: None,
                log: Vec::new(),
                writes: 0,
                token_requests: 0,
                page_size: 100,
                members_per_entry: 20,
                token_lifetime: 3599,
            }),
        });
        let app = routes::router(Arc::clone(&shared));
        runtime.spawn(async move {
            if let Err(e) = axum::serve(tls::TlsListener { tcp, acceptor }, app).await {
                eprintln!("graph server stopped: {e}");
            }
        });
        GraphServer {
            shared,
            runtime: Some(runtime),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Server> {
        self.shared.lock()
    }

    /// `https://127.0.0.1:PORT/v1.0`
    pub fn graph_url(&self) -> String {
        self.shared.graph_url()
    }

    /// `https://127.0.0.1:PORT`: the token endpoint is
    /// `{authority}/{TENANT}/oauth2/v2.0/token`.
    pub fn authority(&self) -> String {
        self.shared.base.clone()
    }

    /// The test CA's certificate (`ca.pem`), to trust the server.
    pub fn ca_file(&self) -> PathBuf {
        crate::directory::test_ca().join("ca.pem")
    }

    /// Objects per page of delta rounds and lists (default 100); rounds
    /// already started keep theirs.
    pub fn set_page_size(&self, n: usize) {
        assert!(n > 0, "set_page_size: a page holds at least one object");
        self.lock().page_size = n;
    }

    /// `members@delta` references per group item before the rest of the
    /// group's members come in further items later in the round (default 20).
    pub fn set_members_per_entry(&self, n: usize) {
        assert!(n > 0, "set_members_per_entry: at least one member per item");
        self.lock().members_per_entry = n;
    }

    /// The lifetime (`expires_in`) of tokens issued from now on (default 3599).
    pub fn set_token_lifetime(&self, secs: u64) {
        self.lock().token_lifetime = secs;
    }

    /// Adds a user with these properties (any JSON properties; a
    /// `passwordProfile` is kept apart, see [`GraphServer::password_of`]);
    /// returns its id. Panics on a duplicate `userPrincipalName`.
    pub fn add_user(&self, props: Value) -> String {
        let props = object_arg("add_user", props);
        self.lock()
            .dir
            .create(Kind::User, &props)
            .unwrap_or_else(|e| panic!("add_user: {}", e.message))
    }

    /// Adds a group with these properties; returns its id.
    pub fn add_group(&self, props: Value) -> String {
        let props = object_arg("add_group", props);
        self.lock()
            .dir
            .create(Kind::Group, &props)
            .unwrap_or_else(|e| panic!("add_group: {}", e.message))
    }

    /// Sets (or, with `null`, clears) properties of a live user or group,
    /// as a PATCH would.
    pub fn update(&self, id: &str, patch: Value) {
        let patch = object_arg("update", patch);
        self.lock()
            .dir
            .update(id, &patch)
            .unwrap_or_else(|e| panic!("update {id}: {}", e.message));
    }

    /// Soft-deletes an object (delta: `@removed` reason `changed`); it
    /// leaves its groups and stops managing anyone.
    pub fn delete(&self, id: &str) {
        self.lock()
            .dir
            .remove(id, false)
            .unwrap_or_else(|e| panic!("delete {id}: {}", e.message));
    }

    /// Hard-deletes an object, live or soft-deleted (delta: `@removed`
    /// reason `deleted`).
    pub fn purge(&self, id: &str) {
        self.lock()
            .dir
            .remove(id, true)
            .unwrap_or_else(|e| panic!("purge {id}: {}", e.message));
    }

    /// Sets or clears a user's manager.
    pub fn set_manager(&self, user: &str, manager: Option<&str>) {
        self.lock()
            .dir
            .set_manager(user, manager)
            .unwrap_or_else(|e| panic!("set_manager {user}: {}", e.message));
    }

    /// Adds a member (user or group) to a group; panics if it is one already.
    pub fn add_member(&self, group: &str, member: &str) {
        self.lock()
            .dir
            .add_member(group, member)
            .unwrap_or_else(|e| panic!("add_member {group} {member}: {}", e.message));
    }

    /// Removes a member from a group; panics if it is not one.
    pub fn remove_member(&self, group: &str, member: &str) {
        self.lock()
            .dir
            .remove_member(group, member)
            .unwrap_or_else(|e| panic!("remove_member {group} {member}: {}", e.message));
    }

    /// A live object's properties with `id`, plus `manager` (an id, absent
    /// without one) for users and `members` (sorted ids) for groups;
    /// `None` once deleted.
    pub fn object(&self, id: &str) -> Option<Value> {
        self.lock().dir.view(id)
    }

    fn views(&self, kind: Kind) -> Vec<Value> {
        let server = self.lock();
        server
            .dir
            .all(kind)
            .filter_map(|o| server.dir.view(&o.id))
            .collect()
    }

    /// Every live user as [`GraphServer::object`] shows it, in creation order.
    pub fn users(&self) -> Vec<Value> {
        self.views(Kind::User)
    }

    /// Every live group as [`GraphServer::object`] shows it, in creation order.
    pub fn groups(&self) -> Vec<Value> {
        self.views(Kind::Group)
    }

    /// The live user with this user principal name (case-insensitive).
    pub fn find_user(&self, upn: &str) -> Option<Value> {
        let server = self.lock();
        let id = server.dir.user_by_upn(upn)?.id.clone();
        server.dir.view(&id)
    }

    /// The last password set for a user (by create, PATCH or `add_user`).
    pub fn password_of(&self, id: &str) -> Option<String> {
        self.lock().dir.password(id)
    }

    fn queue_faults(&self, n: usize, status: u16, retry_after_secs: u64) {
        let fault = Fault {
            status,
            retry_after_secs,
        };
        self.lock().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// The next `n` Graph requests (top-level or inside a batch; not token
    /// requests, not the `$batch` envelope) answer 429 `TooManyRequests`
    /// with `Retry-After`.
    pub fn throttle(&self, n: usize, retry_after_secs: u64) {
        self.queue_faults(n, 429, retry_after_secs);
    }

    /// The same with 503 `serviceNotAvailable`.
    pub fn unavailable(&self, n: usize, retry_after_secs: u64) {
        self.queue_faults(n, 503, retry_after_secs);
    }

    /// Any `POST /users` or PATCH of the user with this user principal name
    /// (before or after the PATCH) answers 400 with this code and message.
    /// Calling it again for the same name replaces the rule; an empty
    /// `code` removes it.
    pub fn fail_upn(&self, upn: &str, code: &str, message: &str) {
        let mut server = self.lock();
        server
            .fail_upns
            .retain(|f| f.upn.to_lowercase() != upn.to_lowercase());
        if !code.is_empty() {
            server.fail_upns.push(FailUpn {
                upn: upn.to_owned(),
                code: code.to_owned(),
                message: message.to_owned(),
            });
        }
    }

    /// Every delta and skip token issued so far answers 410 Gone
    /// (`resyncRequired`, `Location` a fresh initial round).
    pub fn expire_delta_tokens(&self) {
        self.lock().tokens.expire_all();
    }

    /// Every access token issued so far is rejected with 401.
    pub fn expire_access_tokens(&self) {
        self.lock().access.expire_all();
    }

    /// Registers a certificate credential on the app: client assertions
    /// signed by its key (RSA public key as PKCS#1 DER) and naming its
    /// thumbprint (`x5t`) are accepted instead of the client secret.
    pub fn trust_certificate(&self, rsa_public_key: Vec<u8>, x5t: &str) {
        self.lock().certificate = Some((rsa_public_key, x5t.to_owned()));
    }

    /// The next `n` `$batch`es are run — every write in them applied —
    /// and then answered with `status` (a gateway timing out after the
    /// service did the work): the client cannot know what was applied.
    pub fn lose_batch_answers(&self, n: usize, status: u16) {
        self.lock()
            .lost_batches
            .extend(std::iter::repeat_n(status, n));
    }

    /// While true, a `$batch` or top-level write is applied and its answer
    /// never sent (the connection stays open), so a test can kill the
    /// client between a write and its record.
    pub fn hold_writes(&self, hold: bool) {
        self.lock().hold = hold;
    }

    /// Every Graph request received, in order (a `$batch` before its
    /// requests); token requests are counted by `token_requests` instead.
    pub fn requests(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    /// Write operations applied (POST, PATCH, PUT, DELETE answered below
    /// 400, each request inside a batch counted).
    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    /// Requests to the token endpoint.
    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }
}
