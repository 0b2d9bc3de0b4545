//! The server's own checks, through a minimal HTTPS/1.1 client (tokio-rustls).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{GraphServer, CLIENT_ID, CLIENT_SECRET, TENANT};

/// An answer: status, headers (lowercase names), JSON body (null when none).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Client {
    runtime: tokio::runtime::Runtime,
    config: Arc<rustls::ClientConfig>,
    port: u16,
    token: String,
    /// How long to wait for an answer.
    wait: std::time::Duration,
}

impl Client {
    fn new(server: &GraphServer) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(server.ca_file()).expect("ca.pem") {
            roots.add(cert.expect("a certificate")).expect("a root");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(super::tls::provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let port = server
            .authority()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        let mut client = Client {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            config: Arc::new(config),
            port,
            token: String::new(),
            wait: std::time::Duration::from_secs(10),
        };
        let answer = client.token(CLIENT_SECRET);
        assert_eq!(answer.status, 200, "{}", answer.body);
        client.token = answer.body["access_token"]
            .as_str()
            .expect("a token")
            .to_owned();
        client
    }

    fn token(&self, secret: &str) -> Answer {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("client_secret", secret)
            .append_pair("scope", "https://graph.microsoft.com/.default")
            .finish();
        self.raw(
            "POST",
            &format!("/{TENANT}/oauth2/v2.0/token"),
            None,
            "application/x-www-form-urlencoded",
            &form,
        )
    }

    /// A Graph call with the client's token; `url` absolute or under /v1.0.
    fn call(&self, method: &str, url: &str, body: Option<Value>) -> Answer {
        let path = match url.find("/v1.0/") {
            Some(i) => url[i..].to_owned(),
            None => format!("/v1.0/{}", url.trim_start_matches('/')),
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw(method, &path, Some(&self.token), "application/json", &body)
    }

    fn raw(&self, method: &str, path: &str, token: Option<&str>, ct: &str, body: &str) -> Answer {
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let bytes = self.runtime.block_on(async {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .expect("connect");
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
            let name = ServerName::try_from("127.0.0.1").expect("a name");
            let mut tls = connector.connect(name, tcp).await.expect("a TLS handshake");
            tls.write_all(request.as_bytes()).await.expect("send");
            let mut out = Vec::new();
            // The server closes without close_notify at times; what was read counts.
            let read = tokio::time::timeout(self.wait, tls.read_to_end(&mut out)).await;
            read.is_ok().then_some(out)
        });
        let Some(bytes) = bytes else {
            // No answer in time (a withheld write).
            return Answer {
                status: 0,
                headers: Vec::new(),
                body: Value::Null,
            };
        };
        let text = String::from_utf8(bytes).expect("UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).expect("a JSON body")
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Every entry of a delta or list round from `url`, and its delta link.
    fn round(&self, url: &str) -> (Vec<Value>, Option<String>) {
        let mut entries = Vec::new();
        let mut url = url.to_owned();
        loop {
            let answer = self.call("GET", &url, None);
            assert_eq!(answer.status, 200, "{}", answer.body);
            entries.extend(answer.body["value"].as_array().expect("value").clone());
            let next = answer.body.get("@odata.nextLink").and_then(Value::as_str);
            let delta = answer.body.get("@odata.deltaLink").and_then(Value::as_str);
            assert!(next.is_none() || delta.is_none(), "both links");
            match next {
                Some(n) => url = n.to_owned(),
                None => return (entries, delta.map(str::to_owned)),
            }
        }
    }
}

fn user(server: &GraphServer, name: &str) -> String {
    server.add_user(json!({
        "displayName": name,
        "userPrincipalName": format!("{name}@{TENANT}"),
        "mailNickname": name,
        "accountEnabled": true,
    }))
}

#[test]
fn tokens_and_authentication() {
    let server = GraphServer::start();
    let client = Client::new(&server);
    let bad = client.token("wrong");
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body["error"], "invalid_client");
    assert!(bad.body["error_description"]
        .as_str()
        .is_some_and(|d| d.starts_with("AADSTS7000215:")));

    let org = client.call("GET", "organization", None);
    assert_eq!(org.status, 200);
    assert_eq!(org.body["value"][0]["displayName"], "Contoso");
    assert!(org.header("request-id").is_some());

    let anonymous = client.raw("GET", "/v1.0/organization", None, "application/json", "");
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.body["error"]["code"],
        "InvalidAuthenticationToken"
    );
    assert_eq!(anonymous.body["error"]["message"], "Access token is empty.");
    assert!(anonymous.header("www-authenticate").is_some());

    server.expire_access_tokens();
    let expired = client.call("GET", "organization", None);
    assert_eq!(expired.status, 401);
    assert_eq!(
        expired.body["error"]["message"],
        "Access token has expired or is not yet valid."
    );
    assert_eq!(server.token_requests(), 2);
}

#[test]
fn delta_rounds() {
    let server = GraphServer::start();
    let client = Client::new(&server);
    server.set_page_size(2);
    let boss = user(&server, "boss");
    let ids: Vec<String> = (0..4).map(|i| user(&server, &format!("u{i}"))).collect();
    server.set_manager(&ids[0], Some(&boss));

    let (entries, delta) = client.round("users/delta?$select=displayName,employeeId,manager");
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[1]["manager@delta"][0]["id"], json!(boss));
    assert_eq!(entries[1]["employeeId"], Value::Null);
    let delta = delta.expect("a delta link");
    assert_eq!(
        server.requests()[0].path_and_query,
        "/v1.0/users/delta?$select=displayName,employeeId,manager"
    );

    let (empty, delta) = client.round(&delta);
    assert!(empty.is_empty());
    let delta = delta.expect("a delta link");

    server.update(&ids[1], json!({"employeeId": "E1", "jobTitle": "x"}));
    server.delete(&ids[2]);
    server.purge(&ids[3]);
    let new = user(&server, "new");
    server.delete(&boss);
    let (changes, delta) = client.round(&delta);
    let by_id = |id: &str| changes.iter().find(|c| c["id"] == id).cloned();
    assert_eq!(
        by_id(&ids[1]),
        Some(json!({"id": ids[1], "employeeId": "E1"}))
    );
    assert_eq!(by_id(&ids[2]).expect("u2")["@removed"]["reason"], "changed");
    assert_eq!(by_id(&ids[3]).expect("u3")["@removed"]["reason"], "deleted");
    assert_eq!(by_id(&new).expect("new")["displayName"], "new");
    assert_eq!(
        by_id(&ids[0]).expect("u0")["manager@delta"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": boss, "@removed": {"reason": "deleted"}}])
    );
    assert_eq!(changes.len(), 6);

    server.expire_delta_tokens();
    let gone = client.call("GET", &delta.expect("a delta link"), None);
    assert_eq!(gone.status, 410);
    assert_eq!(gone.body["error"]["code"], "resyncRequired");
    assert!(gone
        .header("location")
        .is_some_and(|l| l.ends_with("/v1.0/users/delta?$select=displayName,employeeId,manager")));

    let unknown = client.call("GET", "users/delta?$deltatoken=nope", None);
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["error"]["code"], "syncStateNotFound");
    let bad_select = client.call("GET", "users/delta?$select=nope", None);
    assert_eq!(bad_select.status, 400);
}

#[test]
fn group_members_split_over_items() {
    let server = GraphServer::start();
    let client = Client::new(&server);
    server.set_members_per_entry(2);
    let group = server.add_group(json!({"displayName": "g", "mailNickname": "g"}));
    let members: Vec<String> = (0..5).map(|i| user(&server, &format!("m{i}"))).collect();
    for m in &members {
        server.add_member(&group, m);
    }
    let (entries, delta) = client.round("groups/delta?$select=displayName,members");
    let mut seen: Vec<String> = entries
        .iter()
        .filter(|e| e["id"] == group)
        .flat_map(|e| e["members@delta"].as_array().cloned().unwrap_or_default())
        .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    seen.sort();
    let mut expected = members.clone();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(entries.len(), 3);

    server.remove_member(&group, &members[0]);
    let (changes, _) = client.round(&delta.expect("a delta link"));
    assert_eq!(
        changes,
        vec![json!({"id": group, "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": members[0], "@removed": {"reason": "deleted"}}
        ]})]
    );
}

#[test]
fn batch_writes() {
    let server = GraphServer::start();
    let client = Client::new(&server);
    server.fail_upn("bad@contoso.onmicrosoft.com", "Request_BadRequest", "No.");
    let new_user = |name: &str| {
        json!({
            "accountEnabled": true, "displayName": name, "mailNickname": name,
            "userPrincipalName": format!("{name}@{TENANT}"),
            "passwordProfile": {"password": "P@ss-1", "forceChangePasswordNextSignIn": false},
        })
    };
    let ct = json!({"Content-Type": "application/json"});
    server.throttle(1, 7);
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/users", "headers": ct, "body": new_user("throttled")},
        {"id": "2", "method": "POST", "url": "/users", "headers": ct, "body": new_user("ok")},
        {"id": "3", "method": "POST", "url": "users", "headers": ct, "body": new_user("bad")},
        {"id": "4", "method": "PATCH", "url": "/users/bad@contoso.onmicrosoft.com", "headers": ct, "body": {"jobTitle": "x"}},
        {"id": "5", "method": "GET", "url": "/users?$filter=userPrincipalName eq 'ok@contoso.onmicrosoft.com'&$select=id,displayName"},
    ]});
    let answer = client.call("POST", "$batch", Some(batch));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let responses = answer.body["responses"].as_array().expect("responses");
    let ids: Vec<&str> = responses.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["5", "4", "3", "2", "1"]);
    let status = |id: &str| {
        responses
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].clone())
    };
    assert_eq!(status("1"), Some(json!(429)));
    assert_eq!(responses[4]["headers"]["Retry-After"], "7");
    assert_eq!(status("2"), Some(json!(201)));
    assert_eq!(status("3"), Some(json!(400)));
    assert_eq!(status("4"), Some(json!(404)));
    assert_eq!(responses[0]["body"]["value"][0]["displayName"], "ok");
    assert_eq!(server.writes(), 1);
    let ok = server.find_user(&format!("ok@{TENANT}")).expect("ok");
    assert!(ok.get("passwordProfile").is_none());
    let id = ok["id"].as_str().expect("an id");
    assert_eq!(server.password_of(id).as_deref(), Some("P@ss-1"));

    let manager = user(&server, "boss");
    let put = client.call(
        "PUT",
        &format!("users/{id}/manager/$ref"),
        Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{manager}")})),
    );
    assert_eq!(put.status, 204);
    assert_eq!(server.object(id).expect("ok")["manager"], json!(manager));
    let duplicate = client.call("POST", "users", Some(new_user("ok")));
    assert_eq!(duplicate.status, 400);
    assert_eq!(
        duplicate.body["error"]["message"],
        "Another object with the same value for property userPrincipalName already exists."
    );
    assert!(duplicate.body["error"]["innerError"]["request-id"].is_string());
    // Sequential: a failure fails what depends on it.
    let serial = json!({"requests": [
        {"id": "a", "method": "POST", "url": "/users", "headers": ct, "body": new_user("bad")},
        {"id": "b", "method": "PATCH", "url": "/users/bad@contoso.onmicrosoft.com", "headers": ct, "body": {"jobTitle": "x"}, "dependsOn": ["a"]},
    ]});
    let answer = client.call("POST", "$batch", Some(serial));
    let statuses: Vec<(String, u64)> = answer.body["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .filter_map(|r| Some((r["id"].as_str()?.to_owned(), r["status"].as_u64()?)))
        .collect();
    assert!(statuses.contains(&("b".to_owned(), 424)), "{statuses:?}");
    // A shape Graph does not document: refused whole.
    let mixed = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/organization"},
        {"id": "2", "method": "GET", "url": "/organization"},
        {"id": "3", "method": "GET", "url": "/organization", "dependsOn": ["2"]},
    ]});
    assert_eq!(client.call("POST", "$batch", Some(mixed)).status, 400);
    let too_many = json!({"requests": (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/organization"})).collect::<Vec<_>>()});
    assert_eq!(client.call("POST", "$batch", Some(too_many)).status, 400);
    let logged = server.requests();
    assert_eq!(logged.iter().filter(|r| r.in_batch).count(), 7);
    assert!(logged.iter().any(|r| r.in_batch
        && r.path_and_query
            == "/v1.0/users?$filter=userPrincipalName eq 'ok@contoso.onmicrosoft.com'&$select=id,displayName"));

    // The rule lifted: the user is created.
    server.fail_upn("BAD@contoso.onmicrosoft.com", "", "");
    assert_eq!(
        client.call("POST", "users", Some(new_user("bad"))).status,
        201
    );
    // Encoded query options read the same, and are logged decoded.
    let found = client.call(
        "GET",
        "users?%24filter=userPrincipalName%20eq%20%27bad%40contoso.onmicrosoft.com%27&%24select=id",
        None,
    );
    assert_eq!(
        found.body["value"].as_array().map(Vec::len),
        Some(1),
        "{}",
        found.body
    );
    assert!(server.requests().iter().any(|r| r.path_and_query
        == "/v1.0/users?$filter=userPrincipalName eq 'bad@contoso.onmicrosoft.com'&$select=id"));
}

#[test]
fn held_writes_are_applied_but_never_answered() {
    let server = GraphServer::start();
    let mut client = Client::new(&server);
    client.wait = std::time::Duration::from_millis(500);
    server.hold_writes(true);
    let held = client.call(
        "POST",
        "groups",
        Some(json!({"displayName": "g", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true})),
    );
    assert_eq!(held.status, 0, "answered: {}", held.body);
    assert_eq!(server.groups().len(), 1);
    assert_eq!(server.writes(), 1);
    // Reads still answer.
    assert_eq!(
        client
            .call("GET", "groups?$select=displayName", None)
            .status,
        200
    );
    server.hold_writes(false);
    let id = server.groups()[0]["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        client.call("DELETE", &format!("groups/{id}"), None).status,
        204
    );
    assert!(server.object(&id).is_none());
}
