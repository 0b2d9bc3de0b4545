//! The Microsoft Graph connector through the binary, against the local
//! Graph server of `graph_server` (HTTPS with the test CA, Graph's
//! documented protocol): a full import of 5,000 users over many pages and
//! groups whose members Graph splits; delta after creates, updates,
//! deletes and membership changes; provisioning from HR in `$batch`es with
//! one failing request; throttling during import and export; an expired
//! delta token; an access token expiring mid-run; a kill -9 between a
//! create and its record; the client secret and passwords never shown.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::graph_server::{GraphServer, CLIENT_ID, CLIENT_SECRET, TENANT};
use crate::harness::{counter, hr_csv, stderr, stdout, worker, Env, Worker};

const SECRET_VAR: &str = "MVSYNC_TEST_GRAPH_SECRET";

/// The `[connectors.entra]` table for `server`, with `types` appended.
fn entra(server: &GraphServer, extra: &str, types: &str) -> String {
    format!(
        r#"[connectors.entra]
type = "graph"
tenant = "{TENANT}"
client_id = "{CLIENT_ID}"
client_secret = {{ env = "{SECRET_VAR}" }}
graph_url = "{graph}"
authority = "{authority}"
ca_file = "{ca}"
{extra}
{types}
"#,
        graph = server.graph_url(),
        authority = server.authority(),
        ca = server.ca_file().display(),
    )
}

const USER_TYPE: &str = r#"[connectors.entra.object_types.user]
attributes = ["userPrincipalName", "displayName", "mailNickname", "accountEnabled", "employeeId", "department", "jobTitle", "onPremisesImmutableId", "onPremisesSyncEnabled", "manager"]
"#;

const GROUP_TYPE: &str = r#"[connectors.entra.object_types.group]
attributes = ["displayName", "mailNickname", "securityEnabled", "mailEnabled", "members"]
"#;

/// A folder whose configuration reads the tenant into its connector space.
fn reader(server: &GraphServer) -> Env {
    let config = format!(
        "[store]\npath = \"state/mvsync.db\"\n\n{}",
        entra(server, "", &format!("{USER_TYPE}\n{GROUP_TYPE}"))
    );
    with_secret(Env::new(&config))
}

fn with_secret(mut env: Env) -> Env {
    env.set_var(SECRET_VAR, CLIENT_SECRET);
    env
}

/// An object's attributes as the connector space holds them (staged
/// import first).
fn cs_attrs(env: &Env, anchor: &str) -> serde_json::Map<String, Value> {
    let cs = env.show_cs("entra", anchor);
    let pairs = match &cs["pending_import"] {
        Value::Array(p) if p[0] != "delete" => p[1].clone(),
        _ => cs["hologram"].clone(),
    };
    pairs
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| Some((p[0].as_str()?.to_owned(), p[1].clone())))
        .collect()
}

/// The state of an object in the connector space (`present`, `deleted`…)
/// and its staged import kind.
fn cs_state(env: &Env, anchor: &str) -> (String, Value) {
    let cs = env.show_cs("entra", anchor);
    (
        cs["state"].as_str().unwrap_or_default().to_owned(),
        cs["pending_import"][0].clone(),
    )
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    };
    out.sort();
    out
}

fn user(n: usize) -> Value {
    json!({
        "userPrincipalName": format!("user{n}@contoso.example"),
        "displayName": format!("User {n}"),
        "mailNickname": format!("user{n}"),
        "accountEnabled": true,
        "employeeId": format!("E{n:05}"),
        "department": if n.is_multiple_of(2) { "Sales" } else { "Research" },
    })
}

#[test]
fn a_full_import_reads_5000_users_over_many_pages_and_gathers_split_groups() {
    let server = GraphServer::start();
    server.set_page_size(250);
    server.set_members_per_entry(7);
    let ids: Vec<String> = (0..5000).map(|n| server.add_user(user(n))).collect();
    server.set_manager(&ids[1], Some(&ids[0]));
    let staff = server.add_group(json!({"displayName": "Staff", "mailNickname": "staff", "securityEnabled": true, "mailEnabled": false}));
    for id in &ids[..50] {
        server.add_member(&staff, id);
    }
    let env = reader(&server);

    let out = env.ok(&["import", "entra", "--full"]);
    let run = env.last_run();
    assert_eq!(counter(&run, "import_adds"), 5001, "{}", stdout(&out));
    let pages = server
        .requests()
        .iter()
        .filter(|r| r.path_and_query.starts_with("/v1.0/users/delta"))
        .count();
    assert_eq!(pages, 20, "5,000 users at 250 a page");
    let select = &server.requests()[0].path_and_query;
    assert!(
        select.starts_with("/v1.0/users/delta"),
        "users first: {select}"
    );
    assert!(
        select.contains("$select=userPrincipalName,displayName"),
        "{select}"
    );

    let first = cs_attrs(&env, &ids[1]);
    assert_eq!(first["userPrincipalName"], "user1@contoso.example");
    assert_eq!(first["accountEnabled"], true);
    assert_eq!(first["manager"], ids[0].as_str(), "the manager by id");
    let group = cs_attrs(&env, &staff);
    let mut expected: Vec<String> = ids[..50].to_vec();
    expected.sort();
    assert_eq!(
        sorted(&group["members"]),
        expected,
        "a group Graph split over the round holds every member once"
    );
}

#[test]
fn a_delta_import_stages_creates_updates_deletes_and_membership_changes() {
    let server = GraphServer::start();
    server.set_page_size(3);
    server.set_members_per_entry(2);
    let ids: Vec<String> = (0..8).map(|n| server.add_user(user(n))).collect();
    let team = server.add_group(json!({"displayName": "Team", "mailNickname": "team", "securityEnabled": true, "mailEnabled": false}));
    for id in &ids[..3] {
        server.add_member(&team, id);
    }
    let env = reader(&server);
    env.ok(&["import", "entra", "--full"]);
    env.ok(&["sync", "entra", "--full"]);

    let new = server.add_user(user(100));
    server.update(&ids[1], json!({"jobTitle": "Engineer", "department": null}));
    server.set_manager(&ids[2], Some(&ids[0]));
    server.delete(&ids[3]);
    server.purge(&ids[4]);
    server.add_member(&team, &ids[5]);
    server.add_member(&team, &ids[6]);
    server.add_member(&team, &ids[7]);
    server.remove_member(&team, &ids[0]);

    env.ok(&["import", "entra", "--delta"]);
    let run = env.last_run();
    assert_eq!(counter(&run, "import_adds"), 1, "{run}");
    assert_eq!(counter(&run, "import_deletes"), 2, "{run}");

    assert_eq!(cs_attrs(&env, &new)["employeeId"], "E00100");
    let updated = cs_attrs(&env, &ids[1]);
    assert_eq!(updated["jobTitle"], "Engineer");
    assert!(!updated.contains_key("department"), "cleared: {updated:?}");
    assert_eq!(
        updated["displayName"], "User 1",
        "unchanged properties stay"
    );
    assert_eq!(cs_attrs(&env, &ids[2])["manager"], ids[0].as_str());
    for gone in [&ids[3], &ids[4]] {
        assert_eq!(cs_state(&env, gone).1, "delete", "soft and hard deletes");
    }
    let mut members = vec![
        ids[1].clone(),
        ids[2].clone(),
        ids[5].clone(),
        ids[6].clone(),
        ids[7].clone(),
    ];
    members.sort();
    assert_eq!(sorted(&cs_attrs(&env, &team)["members"]), members);

    // Nothing changed since: the next delta stages nothing.
    env.ok(&["sync", "entra", "--delta"]);
    env.ok(&["import", "entra", "--delta"]);
    let run = env.last_run();
    for c in ["import_adds", "import_updates", "import_deletes"] {
        assert_eq!(counter(&run, c), 0, "{c}: {run}");
    }
}

// ------------------------------------------------------------ export

/// HR provisioned into the tenant: users with their manager, deleted when
/// they leave HR.
fn provisioning(server: &GraphServer, extra: &str) -> Env {
    let config = format!(
        r#"[store]
path = "state/mvsync.db"

[metaverse.person]
deletion = "last-source"

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"
references = {{ managerId = "employeeId" }}

{entra}
[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hr"
mv_object_type = "person"
precedence = 10
join = [ {{ cs = "employeeId", mv = "employeeId" }} ]
project = true
[rules.flows]
employeeId = "employeeId"
firstName = "firstName"
lastName = "lastName"
department = "department"
manager = "managerId"

[[rules]]
name = "entra-in"
direction = "inbound"
connector = "entra"
mv_object_type = "person"
precedence = 20
join = [ {{ cs = "employeeId", mv = "employeeId" }} ]
[rules.flows]
cloudId = "employeeId"

[[rules]]
name = "entra-out"
direction = "outbound"
connector = "entra"
mv_object_type = "person"
cs_object_type = "user"
provision = true
deprovision = "delete"
[rules.flows]
userPrincipalName = 'Lower(firstName + "." + lastName) + "@contoso.example"'
mailNickname = 'Lower(firstName + lastName)'
displayName = 'firstName + " " + lastName'
accountEnabled = "true"
employeeId = "employeeId"
department = "department"
manager = "manager"

[run_profiles.cycle]
steps = [
  {{ connector = "hr", step = "full-import" }},
  {{ connector = "hr", step = "full-sync" }},
  {{ connector = "entra", step = "export" }},
  {{ connector = "entra", step = "delta-import", fallback = "full-import" }},
  {{ connector = "entra", step = "delta-sync" }},
]
"#,
        entra = entra(
            server,
            extra,
            r#"[connectors.entra.object_types.user]
attributes = ["userPrincipalName", "mailNickname", "displayName", "accountEnabled", "employeeId", "department", "manager"]
initial_password = { length = 16 }
"#
        ),
    );
    with_secret(Env::new(&config))
}

/// `n` workers, each of the first ten managing the next ones.
fn org(n: usize) -> Vec<Worker> {
    (0..n)
        .map(|i| {
            let w = worker(&format!("E{i:03}"), "Person", &format!("Number{i}"));
            if i == 0 {
                w
            } else {
                w.manager(&format!("E{:03}", (i - 1) / 10))
            }
        })
        .collect()
}

/// The tenant's user with this UPN.
fn tenant_user(server: &GraphServer, upn: &str) -> Value {
    server
        .find_user(upn)
        .unwrap_or_else(|| panic!("{upn} in the tenant: {:?}", server.users()))
}

fn upn(i: usize) -> String {
    format!("person.number{i}@contoso.example")
}

#[test]
fn export_sends_batches_of_20_with_references_after_creates_and_one_failure_stays_its_own() {
    let server = GraphServer::start();
    server.fail_upn(&upn(7), "Request_BadRequest", "Property netId is invalid.");
    let env = provisioning(&server, "");
    let mut workers = org(45);
    env.write("data/hr.csv", &hr_csv(&workers));

    let out = env.expect(&["run", "cycle"], 3);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("Property netId is invalid."), "{text}");
    assert_eq!(server.users().len(), 44, "every user but the refused one");
    let batches = server
        .requests()
        .iter()
        .filter(|r| r.path_and_query == "/v1.0/$batch")
        .count();
    assert!(
        batches >= 3,
        "45 creates and their managers in batches of at most 20: {batches}"
    );
    let top = tenant_user(&server, &upn(0));
    let report = tenant_user(&server, &upn(12));
    assert_eq!(report["manager"], tenant_user(&server, &upn(1))["id"]);
    assert_eq!(tenant_user(&server, &upn(1))["manager"], top["id"]);
    assert_eq!(report["employeeId"], "E012");
    assert!(
        server
            .password_of(top["id"].as_str().unwrap_or_default())
            .is_some_and(|p| p.len() == 16),
        "an initial password was sent"
    );

    // Updates, a manager change, a leaver.
    server.fail_upn(&upn(7), "", "");
    workers[12] = worker("E012", "Person", "Number12")
        .manager("E002")
        .department("Sales");
    workers.remove(44);
    env.write("data/hr.csv", &hr_csv(&workers));
    let writes_before = server.writes();
    let requests_before = server.requests().len();
    env.ok(&["run", "cycle"]);
    let report = tenant_user(&server, &upn(12));
    assert_eq!(report["department"], "Sales");
    assert_eq!(report["manager"], tenant_user(&server, &upn(2))["id"]);
    assert!(
        server.find_user(&upn(44)).is_none(),
        "the leaver is deleted"
    );
    assert!(
        server.find_user(&upn(7)).is_some(),
        "the refused user, once allowed"
    );
    let patches = server
        .requests()
        .iter()
        .filter(|r| {
            r.in_batch && r.path_and_query.starts_with("/v1.0/users/") && r.method == "PATCH"
        })
        .count();
    assert_eq!(patches, 1, "one PATCH, of the changed department only");
    assert_eq!(
        server.writes() - writes_before,
        5,
        "the refused user's create and then its manager; one PATCH, one manager, one delete: {:#?}",
        &server.requests()[requests_before..]
    );

    // In step: nothing more to write.
    let writes = server.writes();
    env.ok(&["run", "cycle"]);
    assert_eq!(server.writes(), writes);
}

#[test]
fn throttling_during_import_and_export_is_waited_out() {
    let server = GraphServer::start();
    server.set_page_size(2);
    let env = provisioning(&server, "");
    env.write("data/hr.csv", &hr_csv(&org(25)));
    server.throttle(2, 1);
    let started = Instant::now();
    let out = env.ok(&["-v", "run", "cycle"]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(server.users().len(), 25, "{}", stderr(&out));
    let throttled: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.status == 429)
        .collect();
    assert_eq!(throttled.len(), 2, "{throttled:?}");
    assert!(
        stderr(&out).contains("throttled") || stderr(&out).contains("retrying"),
        "{}",
        stderr(&out)
    );

    // Mid-import: the delta pages.
    server.add_user(user(500));
    server.throttle(3, 1);
    env.ok(&["import", "entra", "--delta"]);
    assert_eq!(counter(&env.last_run(), "import_adds"), 1);

    // Mid-export, inside a batch: each user is still created once.
    let mut workers = org(25);
    workers.extend((25..40).map(|i| worker(&format!("E{i:03}"), "Person", &format!("Number{i}"))));
    env.write("data/hr.csv", &hr_csv(&workers));
    server.throttle(5, 1);
    env.ok(&["run", "cycle"]);
    assert_eq!(server.users().len(), 41);
    let creates = server
        .requests()
        .iter()
        .filter(|r| {
            r.in_batch && r.method == "POST" && r.path_and_query == "/v1.0/users" && r.status == 201
        })
        .count();
    assert_eq!(creates, 40, "no user created twice");

    // A create answered 503 inside a batch may have run: it is not sent
    // again before the engine has looked for it.
    workers.push(worker("E040", "Person", "Number40"));
    env.write("data/hr.csv", &hr_csv(&workers));
    server.unavailable(1, 0);
    let lookups = |server: &GraphServer| {
        server
            .requests()
            .iter()
            .filter(|r| {
                r.path_and_query
                    .contains("$filter=userPrincipalName eq 'person.number40@")
            })
            .count()
    };
    env.ok(&["run", "cycle"]);
    assert_eq!(server.users().len(), 42);
    assert_eq!(lookups(&server), 1, "looked up before it was sent again");
}

#[test]
fn an_expired_delta_token_is_reported_and_the_fallback_runs_a_full_import() {
    let server = GraphServer::start();
    let a = server.add_user(user(1));
    let env = reader(&server);
    env.ok(&["import", "entra", "--full"]);
    server.expire_delta_tokens();
    let b = server.add_user(user(2));

    let out = env.expect(&["import", "entra", "--delta"], 5);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("delta token expired") && text.contains("full import"),
        "{text}"
    );

    env.write(
        "mvsync.toml",
        &format!(
            "{}\n[run_profiles.delta]\nsteps = [ {{ connector = \"entra\", step = \"delta-import\", fallback = \"full-import\" }} ]\n",
            std::fs::read_to_string(env.path("mvsync.toml")).unwrap_or_default()
        ),
    );
    let out = env.ok(&["run", "delta"]);
    assert!(
        stderr(&out).contains("running a full import"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cs_attrs(&env, &b)["employeeId"], "E00002");
    assert_eq!(cs_attrs(&env, &a)["employeeId"], "E00001");
    // The full import kept a fresh delta link.
    server.update(&a, json!({"jobTitle": "Lead"}));
    env.ok(&["import", "entra", "--delta"]);
    assert_eq!(cs_attrs(&env, &a)["jobTitle"], "Lead");

    // A delta link reads the properties of the round that made it: after
    // `attributes` changed, only a full import reads the new ones.
    let config = std::fs::read_to_string(env.path("mvsync.toml")).unwrap_or_default();
    env.write(
        "mvsync.toml",
        &config.replace("\"jobTitle\", ", "\"jobTitle\", \"city\", "),
    );
    let out = env.expect(&["import", "entra", "--delta"], 5);
    assert!(
        stderr(&out).contains("the attributes of `user` changed since the last full import"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_access_token_that_expires_mid_run_is_renewed() {
    let server = GraphServer::start();
    server.set_page_size(10);
    for n in 0..2000 {
        server.add_user(user(n));
    }
    let env = reader(&server);
    let mut child = env.spawn(&["import", "entra", "--full"], Stdio::null());
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.requests().len() < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    server.expire_access_tokens();
    let status = child.wait().expect("wait for mvsync");
    assert!(status.success());
    assert_eq!(counter(&env.last_run(), "import_adds"), 2000);
    assert_eq!(
        server.token_requests(),
        2,
        "one token, then one more after it expired"
    );
    assert!(server.requests().iter().any(|r| r.status == 401));
}

#[test]
fn a_kill_between_a_create_and_its_record_creates_nothing_twice() {
    let server = GraphServer::start();
    let env = provisioning(&server, "");
    env.write("data/hr.csv", &hr_csv(&org(3)));
    env.ok(&["import", "hr", "--full"]);
    env.ok(&["sync", "hr", "--full"]);
    server.hold_writes(true);
    let mut child = env.spawn(&["export", "entra"], Stdio::null());
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.writes() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(server.writes() > 0, "the creates reached Graph");
    child.kill().expect("kill -9 mvsync");
    child.wait().expect("reap mvsync");
    server.hold_writes(false);
    // The manager first: its reports wait for its id.
    assert_eq!(
        server.users().len(),
        1,
        "Graph created it; mvsync never heard"
    );

    env.ok(&["run", "cycle"]);
    assert_eq!(server.users().len(), 3);
    let creates = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_and_query == "/v1.0/users")
        .count();
    assert_eq!(creates, 3, "found by userPrincipalName, not created again");
    let found = server
        .requests()
        .iter()
        .filter(|r| r.path_and_query.contains("$filter=userPrincipalName"))
        .count();
    assert_eq!(found, 1, "the create of unknown outcome, looked up once");
    assert_eq!(
        tenant_user(&server, &upn(1))["manager"],
        tenant_user(&server, &upn(0))["id"]
    );
    env.ok(&["check"]);
}

#[test]
fn the_client_secret_and_passwords_never_appear_in_output_logs_or_the_store() {
    let server = GraphServer::start();
    let env = provisioning(&server, "");
    env.write("data/hr.csv", &hr_csv(&org(3)));
    let mut seen = String::new();
    for args in [
        vec!["-vv", "test-connection", "entra"],
        vec!["-vv", "run", "cycle"],
        vec!["history", "--format", "json"],
        vec!["preview", "--format", "json"],
    ] {
        let out = env.mvsync(&args);
        seen.push_str(&stdout(&out));
        seen.push_str(&stderr(&out));
    }
    let mut traced = env.command(&["run", "cycle"]);
    traced.env("RUST_LOG", "trace");
    let out = traced.output().expect("run mvsync");
    seen.push_str(&String::from_utf8_lossy(&out.stdout));
    seen.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(seen.contains("got a token"), "test-connection ran: {seen}");
    let passwords: Vec<String> = server
        .users()
        .iter()
        .filter_map(|u| server.password_of(u["id"].as_str()?))
        .collect();
    assert_eq!(passwords.len(), 3);
    let mut store = Vec::new();
    for entry in walk(&env.path("state")) {
        store.extend(std::fs::read(entry).unwrap_or_default());
    }
    let store = String::from_utf8_lossy(&store);
    for secret in std::iter::once(CLIENT_SECRET.to_owned()).chain(passwords) {
        assert!(!seen.contains(&secret), "a secret in the output");
        assert!(!store.contains(&secret), "a secret in the store");
    }

    // A wrong secret: refused, named, not shown.
    let out = env
        .command(&["test-connection", "entra"])
        .env(SECRET_VAR, "not-the-secret-value")
        .output()
        .expect("run mvsync");
    assert_eq!(out.status.code(), Some(5));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("invalid_client") && text.contains("AADSTS7000215"),
        "{text}"
    );
    assert!(!text.contains("not-the-secret-value"), "{text}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_1000_user_export_reports_its_rate_and_graphs_documented_limit() {
    let server = GraphServer::start();
    let env = provisioning(&server, "writes_per_second = 400");
    let workers: Vec<Worker> = (0..1000)
        .map(|i| worker(&format!("E{i:04}"), "Person", &format!("Number{i}")))
        .collect();
    env.write("data/hr.csv", &hr_csv(&workers));
    env.ok(&["import", "hr", "--full"]);
    env.ok(&["sync", "hr", "--full"]);
    let started = Instant::now();
    let out = env.ok(&["-v", "export", "entra"]);
    let took = started.elapsed();
    assert_eq!(server.users().len(), 1000);
    let log = stderr(&out);
    let line = log
        .lines()
        .find(|l| l.contains("write request(s)"))
        .unwrap_or_else(|| panic!("a rate report: {log}"));
    assert!(line.contains("sent 1000 write request(s)"), "{line}");
    assert!(
        line.contains("at Graph's documented limit of 3000 writes per 150 s per app and tenant they take at least 50.0 s"),
        "{line}"
    );
    assert!(
        took >= Duration::from_millis(2400),
        "1,000 writes paced at 400 per second: {took:?}"
    );
}

#[test]
fn soa_switch_sample_moves_labelled_users_from_ad_exports_to_graph_exports() {
    let Some(samba) = crate::directory::samba() else {
        return;
    };
    let ou = samba.ou("t-soa", &[]);
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/soa-switch");
    let read = |f: &str| std::fs::read_to_string(sample.join(f)).expect("a sample file");
    let users = read("data/ad-users.ldif")
        .split_once("\n\n")
        .map(|(_, users)| users.to_owned())
        .expect("the OU entry, then the users")
        .replace("OU=soa,DC=corp,DC=example", &ou);
    samba.tools().add(&users);
    let server = GraphServer::start();
    let tenant: Vec<Value> =
        serde_json::from_str(&read("data/entra-users.json")).expect("the tenant's users");
    let ids: Vec<String> = tenant.into_iter().map(|u| server.add_user(u)).collect();
    let config = read("mvsync.toml")
        .replace("OU=soa,DC=corp,DC=example", &ou)
        .replace("Administrator@CORP.EXAMPLE", "Administrator@TEST.LOCAL")
        .replace(
            "../hr-to-ad/state/samba/tls/ca.pem",
            &crate::directory::test_ca().join("ca.pem").display().to_string(),
        )
        .replace("MVSYNC_AD_PASSWORD", "MVSYNC_TEST_LDAP_PASSWORD")
        .replace(
            "client_id = \"00000000-0000-0000-0000-000000000000\"",
            &format!(
                "client_id = \"{CLIENT_ID}\"\ngraph_url = \"{}\"\nauthority = \"{}\"\nca_file = \"{}\"",
                server.graph_url(),
                server.authority(),
                server.ca_file().display()
            ),
        )
        .replace("MVSYNC_GRAPH_SECRET", SECRET_VAR);
    let mut env = with_secret(Env::new(&config));
    env.set_var(
        "MVSYNC_TEST_LDAP_PASSWORD",
        crate::directory::ADMIN_PASSWORD,
    );
    for f in ["data/hr.csv", "data/soa.csv"] {
        env.write(f, &read(f));
    }
    env.ok(&["run", "cycle"]);

    let mut pending: Vec<(String, String, String)> = env
        .preview()
        .iter()
        .map(|c| {
            let connector = c["connector"].as_str().unwrap_or("?").to_owned();
            let text = c.to_string();
            let names = ["Hamilton", "García", "Ørsted", "Peña", "Rooms"];
            let who = names
                .iter()
                .zip(&ids)
                .find(|(n, id)| text.contains(**n) || text.contains(id.as_str()))
                .map(|(n, _)| (*n).to_owned())
                .unwrap_or_else(|| panic!("an unexpected export: {text}"));
            (
                connector,
                who,
                c["operation"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    pending.sort();
    assert_eq!(
        pending,
        [
            ("ad".into(), "García".into(), "update".into()),
            ("ad".into(), "Hamilton".into(), "update".into()),
            ("entra".into(), "Peña".into(), "update".into()),
            ("entra".into(), "Ørsted".into(), "update".into()),
        ],
        "AD keeps the unlabelled, Graph gets the labelled: {:#?}",
        env.preview()
    );

    env.ok(&["run", "export"]);
    let zoe = server.object(&ids[2]).expect("Zoë in the tenant");
    assert_eq!(zoe["jobTitle"], "Principal Scientist");
    let margaret = server.object(&ids[0]).expect("Margaret in the tenant");
    assert_eq!(
        margaret["jobTitle"], "Lead",
        "AD's authority: not written in the cloud"
    );
    let tools = samba.tools();
    let title = |cn: &str| {
        tools
            .values(&format!("CN={cn},{ou}"), "title")
            .unwrap_or_default()
    };
    assert_eq!(title("Margaret Hamilton"), ["Director"]);
    assert_eq!(
        title("Zoë Ørsted"),
        ["Scientist"],
        "the cloud's authority: AD left alone"
    );
    assert_eq!(
        env.preview(),
        Vec::<Value>::new(),
        "in step after the export"
    );
    env.ok(&["check"]);
}

/// People and teams from one source file, provisioned as Entra users and
/// security groups.
fn groups_env(server: &GraphServer) -> Env {
    let config = format!(
        r#"[store]
path = "state/mvsync.db"

[connectors.src]
type = "csv"
path = "data/directory.csv"
anchor = "key"
object_type_column = "kind"
object_types = ["worker", "team"]
multi_valued = {{ members = ";" }}
references = {{ members = "key" }}

{entra}
[[rules]]
name = "src-workers"
direction = "inbound"
connector = "src"
mv_object_type = "person"
cs_object_type = "worker"
precedence = 10
join = [ {{ cs = "key", mv = "employeeId" }} ]
project = true
[rules.flows]
employeeId = "key"

[[rules]]
name = "src-teams"
direction = "inbound"
connector = "src"
mv_object_type = "group"
cs_object_type = "team"
precedence = 10
join = [ {{ cs = "key", mv = "groupId" }} ]
project = true
[rules.flows]
groupId = "key"
members = "members"

[[rules]]
name = "entra-users"
direction = "outbound"
connector = "entra"
mv_object_type = "person"
cs_object_type = "user"
provision = true
[rules.flows]
userPrincipalName = 'Lower(employeeId) + "@contoso.example"'
mailNickname = "Lower(employeeId)"
displayName = "employeeId"
accountEnabled = "true"

[[rules]]
name = "entra-groups"
direction = "outbound"
connector = "entra"
mv_object_type = "group"
cs_object_type = "group"
provision = true
[rules.flows]
displayName = "groupId"
mailNickname = "Lower(groupId)"
securityEnabled = "true"
mailEnabled = "false"
members = "members"

[run_profiles.cycle]
steps = [
  {{ connector = "src", step = "full-import" }},
  {{ connector = "src", step = "full-sync" }},
  {{ connector = "entra", step = "export" }},
  {{ connector = "entra", step = "delta-import", fallback = "full-import" }},
  {{ connector = "entra", step = "delta-sync" }},
]
"#,
        entra = entra(
            server,
            "",
            r#"[connectors.entra.object_types.user]
attributes = ["userPrincipalName", "mailNickname", "displayName", "accountEnabled"]
initial_password = { length = 20, force_change = false }
[connectors.entra.object_types.group]
attributes = ["displayName", "mailNickname", "securityEnabled", "mailEnabled", "members"]
"#
        ),
    );
    with_secret(Env::new(&config))
}

/// The source file: 30 workers and one team of `members` (by key).
fn directory(members: &[usize]) -> String {
    let mut text = String::from("key,kind,members\n");
    let keys: Vec<String> = members.iter().map(|m| format!("W{m:02}")).collect();
    text.push_str(&format!("T1,team,{}\n", keys.join(";")));
    for i in 0..30 {
        text.push_str(&format!("W{i:02},worker,\n"));
    }
    text
}

/// The ids of the team's members, as the tenant holds them, by UPN.
fn team_members(server: &GraphServer) -> Vec<String> {
    let group = server
        .groups()
        .into_iter()
        .find(|g| g["mailNickname"] == "t1")
        .expect("the team in the tenant");
    let mut upns: Vec<String> = group["members"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|id| {
            server.object(id.as_str()?)?["userPrincipalName"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    upns.sort();
    upns
}

fn upns(members: &[usize]) -> Vec<String> {
    let mut out: Vec<String> = members
        .iter()
        .map(|m| format!("w{m:02}@contoso.example"))
        .collect();
    out.sort();
    out
}

#[test]
fn group_memberships_are_bound_at_creation_and_changed_by_ref() {
    let server = GraphServer::start();
    let env = groups_env(&server);
    let first: Vec<usize> = (0..25).collect();
    env.write("data/directory.csv", &directory(&first));
    env.ok(&["run", "cycle"]);
    assert_eq!(server.users().len(), 30);
    assert_eq!(
        team_members(&server),
        upns(&first),
        "25 members: 20 bound at creation, 5 added by $ref"
    );
    let member_refs = |server: &GraphServer, method: &str| {
        server
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path_and_query.contains("/members"))
            .count()
    };
    let binds = |server: &GraphServer| {
        server
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path_and_query.starts_with("/v1.0/groups/"))
            .count()
    };
    assert_eq!(
        binds(&server),
        1,
        "the 5 past the 20 a create binds, in one request"
    );
    assert_eq!(member_refs(&server, "POST"), 0);

    // Five leave, two join: one bind, a removal each, nothing else.
    let second: Vec<usize> = (5..27).collect();
    env.write("data/directory.csv", &directory(&second));
    let writes = server.writes();
    env.ok(&["run", "cycle"]);
    assert_eq!(team_members(&server), upns(&second));
    assert_eq!(member_refs(&server, "DELETE"), 5);
    assert_eq!(binds(&server), 2);
    assert_eq!(
        server.writes() - writes,
        6,
        "one bind of two, five removals"
    );

    // A bind that meets a member already there is split, one per member.
    let group = server
        .groups()
        .into_iter()
        .find(|g| g["mailNickname"] == "t1")
        .and_then(|g| g["id"].as_str().map(str::to_owned))
        .expect("the team");
    let w27 = server.find_user("w27@contoso.example").expect("w27");
    server.add_member(&group, w27["id"].as_str().unwrap_or_default());
    let third: Vec<usize> = (5..29).collect();
    env.write("data/directory.csv", &directory(&third));
    env.ok(&["run", "cycle"]);
    assert_eq!(team_members(&server), upns(&third));
    // Split after `already exist`: one per member, in a serial batch, so
    // the one after the tolerated refusal is sent again (424 first).
    assert_eq!(member_refs(&server, "POST"), 3);

    // In step.
    let writes = server.writes();
    env.ok(&["run", "cycle"]);
    assert_eq!(server.writes(), writes);
}

#[test]
fn quarantine_trips_when_most_exports_fail_and_holds_until_cleared() {
    let server = GraphServer::start();
    for i in 0..15 {
        server.fail_upn(
            &upn(i),
            "Request_BadRequest",
            "The domain portion of the userPrincipalName property is invalid.",
        );
    }
    let env = provisioning(&server, "");
    let workers: Vec<Worker> = (0..25)
        .map(|i| worker(&format!("E{i:03}"), "Person", &format!("Number{i}")))
        .collect();
    env.write("data/hr.csv", &hr_csv(&workers));
    let out = env.expect(&["run", "cycle"], 4);
    let err = crate::harness::flat(&stderr(&out));
    assert!(
        err.contains("exports to 'entra' are quarantined since run"),
        "{err}"
    );
    assert!(err.contains("15 of 25 changes failed (60 %)"), "{err}");
    assert!(env.last_run()["status"].to_string().contains("quarantined"));

    // Held: the next export sends nothing at all.
    let writes = server.writes();
    let requests = server.requests().len();
    let out = env.expect(&["export", "entra"], 4);
    assert!(crate::harness::flat(&stderr(&out)).contains("mvsync quarantine clear entra"));
    assert_eq!(
        (server.writes(), server.requests().len()),
        (writes, requests)
    );
    let listed = stdout(&env.ok(&["quarantine"]));
    assert!(
        listed.contains("connector 'entra' is quarantined since run"),
        "{listed}"
    );
    let preview = stdout(&env.ok(&["preview"]));
    assert!(
        preview.starts_with("connector 'entra' is quarantined"),
        "{preview}"
    );

    // The cause fixed and the quarantine cleared: it exports again.
    for i in 0..15 {
        server.fail_upn(&upn(i), "", "");
    }
    env.ok(&["quarantine", "clear", "entra"]);
    assert!(stdout(&env.ok(&["quarantine"])).contains("no connector is quarantined"));
    env.ok(&["run", "cycle"]);
    assert_eq!(server.users().len(), 25);
    let out = env.expect(&["quarantine", "clear", "nope"], 1);
    assert!(
        stderr(&out).contains("no connector named 'nope'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_batch_whose_answer_is_lost_is_not_sent_again_and_its_creates_are_found() {
    let server = GraphServer::start();
    let env = provisioning(&server, "");
    let workers: Vec<Worker> = (0..5)
        .map(|i| worker(&format!("E{i:03}"), "Person", &format!("Number{i}")))
        .collect();
    env.write("data/hr.csv", &hr_csv(&workers));
    server.lose_batch_answers(1, 504);
    let out = env.expect(&["run", "cycle"], 5);
    let err = crate::harness::flat(&stderr(&out));
    assert!(err.contains("GatewayTimeout"), "{err}");
    assert_eq!(server.users().len(), 5, "Graph ran the batch");
    let batches = |server: &GraphServer| {
        server
            .requests()
            .iter()
            .filter(|r| r.path_and_query == "/v1.0/$batch")
            .count()
    };
    assert_eq!(
        batches(&server),
        1,
        "a batch that may have run is not sent again"
    );

    env.ok(&["run", "cycle"]);
    assert_eq!(server.users().len(), 5, "nothing created twice");
    let creates = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_and_query == "/v1.0/users")
        .count();
    assert_eq!(creates, 5);
    let lookups = server
        .requests()
        .iter()
        .filter(|r| r.path_and_query.contains("$filter=userPrincipalName"))
        .count();
    assert_eq!(lookups, 5, "each create of unknown outcome looked up");
    env.ok(&["check"]);
}

/// A key pair and self-signed certificate made with openssl in `env`:
/// `certs/app.pem`, `certs/app.key` (owner-only); the RSA public key
/// (PKCS#1 DER) and the certificate's `x5t`.
fn app_certificate(env: &Env, name: &str) -> (Vec<u8>, String) {
    use base64::Engine as _;
    let dir = env.path("certs");
    std::fs::create_dir_all(&dir).expect("certs folder");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &format!("{name}.key"),
        "-out",
        &format!("{name}.pem"),
        "-days",
        "2",
        "-subj",
        "/CN=mvsync-app",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join(format!("{name}.key")),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod the key");
    let public = run(&[
        "rsa",
        "-in",
        &format!("{name}.key"),
        "-RSAPublicKey_out",
        "-outform",
        "DER",
    ]);
    let der = run(&["x509", "-in", &format!("{name}.pem"), "-outform", "DER"]);
    let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref());
    (public, x5t)
}

#[test]
fn a_certificate_credential_signs_a_client_assertion_instead_of_a_secret() {
    let server = GraphServer::start();
    server.add_user(user(1));
    let config = format!(
        "[store]\npath = \"state/mvsync.db\"\n\n{}",
        entra(&server, "", USER_TYPE).replace(
            &format!("client_secret = {{ env = \"{SECRET_VAR}\" }}"),
            "client_certificate = { certificate = \"certs/app.pem\", private_key = { file = \"certs/app.key\" } }",
        )
    );
    let env = Env::new(&config);
    let (public, x5t) = app_certificate(&env, "app");
    server.trust_certificate(public, &x5t);
    let out = env.ok(&["-vv", "test-connection", "entra"]);
    assert!(stdout(&out).contains("connection ok"), "{}", stdout(&out));
    env.ok(&["import", "entra", "--full"]);
    assert_eq!(counter(&env.last_run(), "import_adds"), 1);
    let key = std::fs::read_to_string(env.path("certs/app.key")).expect("the key");
    let body = key.lines().nth(1).expect("a line of the key");
    assert!(
        !format!("{}{}", stdout(&out), stderr(&out)).contains(body),
        "the key is never shown"
    );

    // A certificate the app does not hold is refused, by the identity platform's code.
    app_certificate(&env, "other");
    let wrong = config
        .replace("certs/app.pem", "certs/other.pem")
        .replace("certs/app.key", "certs/other.key");
    env.write("mvsync.toml", &wrong);
    let out = env.expect(&["test-connection", "entra"], 5);
    let text = crate::harness::flat(&stderr(&out));
    assert!(
        text.contains("invalid_client") && text.contains("700027"),
        "{text}"
    );
    // Both credentials, or none: a configuration error.
    env.write(
        "mvsync.toml",
        &config.replace(
            "client_certificate =",
            &format!("client_secret = {{ env = \"{SECRET_VAR}\" }}\nclient_certificate ="),
        ),
    );
    let out = env.expect(&["test-connection", "entra"], 2);
    assert!(crate::harness::flat(&stderr(&out))
        .contains("`client_secret` and `client_certificate` are both set"));
}
