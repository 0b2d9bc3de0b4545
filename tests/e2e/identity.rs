//! Identity semantics end to end, against a CSV file standing in for a
//! directory (`dn_column`, `object_type_column`, references by DN): a
//! manager chain provisioned in reference order, an OU move exported as a
//! rename, DN escaping, deprovisioning by disable-and-move, out-of-scope
//! objects kept by `skip_out_of_scope_deletions`, group membership changed
//! one member at a time, and references that arrive before their target.

use serde_json::{json, Value};

use crate::harness::{cells, changed_cells, operations, Env, Row};

/// Where the directory connector writes.
const CORP_CSV: &str = "state/corp.csv";

/// The suffix of every user's DN.
const USERS: &str = "OU=Users,DC=corp,DC=example";

/// The parts of the configuration the tests vary.
struct Corp {
    /// The `corp-users` scope.
    scope: &'static str,
    /// The `corp-users` deprovision action (TOML).
    deprovision: &'static str,
    /// `skip_out_of_scope_deletions` of `corp-users`.
    skip_out_of_scope_deletions: bool,
    /// The `dn` flow of `corp-users`.
    dn: &'static str,
    /// The HR connector's extra keys (a DN column, say).
    hr_extra: &'static str,
}

impl Default for Corp {
    fn default() -> Self {
        Corp {
            scope: "IsPresent(employeeId)",
            deprovision: r#""delete""#,
            skip_out_of_scope_deletions: false,
            dn: r#"'"CN=" + EscapeDN(displayName) + ",OU=Users,DC=corp,DC=example"'"#,
            hr_extra: "",
        }
    }
}

const TEMPLATE: &str = r#"[store]
path = "state/mvsync.db"

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"
references = { managerId = "employeeId" }
change_file = "data/hr-changes.csv"
@HR_EXTRA@

[connectors.corp]
type = "csv"
path = "state/corp.csv"
anchor = "id"
dn_column = "dn"
object_type_column = "objectType"
object_types = ["user", "group"]
multi_valued = { members = ";" }
references = { manager = "dn", members = "dn" }
columns = ["id", "objectType", "dn", "displayName", "city", "manager", "enabled", "members"]

[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hr"
mv_object_type = "person"
precedence = 10
join = [ { cs = "employeeId", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "employeeId"
displayName = 'Join(" ", firstName, lastName)'
city = "city"
status = "status"
manager = "managerId"

[[rules]]
name = "corp-users"
direction = "outbound"
connector = "corp"
mv_object_type = "person"
cs_object_type = "user"
scope = '@SCOPE@'
provision = true
deprovision = @DEPROVISION@
skip_out_of_scope_deletions = @SKIP@
[rules.flows]
id = { expr = 'Lower(employeeId)', initial_only = true }
dn = @DN@
displayName = "displayName"
city = "city"
manager = "manager"
enabled = '"yes"'

[run_profiles.full]
steps = [
  { connector = "hr", step = "full-import" },
  { connector = "hr", step = "full-sync" },
  { connector = "corp", step = "export" },
  { connector = "corp", step = "full-import" },
  { connector = "corp", step = "full-sync" },
]
"#;

impl Corp {
    fn config(&self) -> String {
        TEMPLATE
            .replace("@HR_EXTRA@", self.hr_extra)
            .replace("@SCOPE@", self.scope)
            .replace("@DEPROVISION@", self.deprovision)
            .replace("@SKIP@", &self.skip_out_of_scope_deletions.to_string())
            .replace("@DN@", self.dn)
    }

    /// A folder with this configuration and an HR file of `workers`.
    fn env(&self, workers: &[Person]) -> Env {
        let env = Env::new(&self.config());
        write_hr(&env, workers);
        env
    }
}

/// One HR row: employeeId, firstName, lastName, city, status, managerId.
#[derive(Clone)]
struct Person([String; 6]);

const HR_HEADER: [&str; 6] = [
    "employeeId",
    "firstName",
    "lastName",
    "city",
    "status",
    "managerId",
];

/// An active worker in Austin.
fn person(id: &str, first: &str, last: &str, manager: &str) -> Person {
    Person([
        id.into(),
        first.into(),
        last.into(),
        "Austin".into(),
        "Active".into(),
        manager.into(),
    ])
}

impl Person {
    fn city(mut self, city: &str) -> Person {
        self.0[3] = city.into();
        self
    }

    fn terminated(mut self) -> Person {
        self.0[4] = "Terminated".into();
        self
    }
}

/// Rows under `header`, quoted as needed.
fn csv_text<const N: usize>(header: [&str; N], rows: &[[&str; N]]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(header).expect("write header");
    for row in rows {
        w.write_record(row).expect("write row");
    }
    String::from_utf8(w.into_inner().expect("flush")).expect("utf-8")
}

fn hr_rows(workers: &[Person]) -> Vec<[&str; 6]> {
    workers
        .iter()
        .map(|p| p.0.each_ref().map(String::as_str))
        .collect()
}

fn write_hr(env: &Env, workers: &[Person]) {
    env.write("data/hr.csv", &csv_text(HR_HEADER, &hr_rows(workers)));
}

/// A user's DN in OU=Users.
fn user_dn(escaped_cn: &str) -> String {
    format!("CN={escaped_cn},{USERS}")
}

fn corp_rows(env: &Env) -> Vec<Row> {
    env.csv_rows(CORP_CSV)
}

/// The one directory row with this anchor.
fn corp_row(env: &Env, id: &str) -> Row {
    let rows = corp_rows(env);
    let found: Vec<&Row> = rows.iter().filter(|r| r["id"] == id).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one row with id {id} in {CORP_CSV}: {rows:#?}"
    );
    found[0].clone()
}

/// A list of DNs as the connector writes it: split at `;` not escaped by a
/// backslash.
fn dn_list(cell: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let last = out.last_mut().expect("a piece");
                last.push(c);
                last.extend(chars.next());
            }
            ';' => out.push(String::new()),
            c => out.last_mut().expect("a piece").push(c),
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

/// The preview as `(object, operation, dn, new_dn)`.
fn renames(preview: &[Value]) -> Vec<(String, String, Value, Value)> {
    preview
        .iter()
        .map(|c| {
            (
                c["object"].as_str().unwrap_or("?").to_owned(),
                c["operation"].as_str().unwrap_or("?").to_owned(),
                c["dn"].clone(),
                c["new_dn"].clone(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- references and order

#[test]
fn manager_chain_is_provisioned_in_one_run_managers_first() {
    // Reports first, so sync provisions each report before its manager.
    let workers = [
        person("E4", "Dan", "Report", "E3"),
        person("E3", "Cat", "Lead", "E2"),
        person("E2", "Bob", "Director", "E1"),
        person("E1", "Ann", "Chief", ""),
    ];
    let env = Corp::default().env(&workers);
    env.ok(&["run", "full"]);

    let rows = corp_rows(&env);
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["e1", "e2", "e3", "e4"], "export order: {rows:#?}");
    let expected = [
        ("e1", user_dn("Ann Chief"), String::new()),
        ("e2", user_dn("Bob Director"), user_dn("Ann Chief")),
        ("e3", user_dn("Cat Lead"), user_dn("Bob Director")),
        ("e4", user_dn("Dan Report"), user_dn("Cat Lead")),
    ];
    for (row, (id, dn, manager)) in rows.iter().zip(&expected) {
        assert_eq!(
            (
                row["id"].as_str(),
                &row["dn"],
                &row["manager"],
                row["objectType"].as_str()
            ),
            (*id, dn, manager, "user")
        );
    }
    // Every manager DN names a row written before the report.
    for (i, row) in rows.iter().enumerate() {
        if !row["manager"].is_empty() {
            let manager = rows.iter().position(|r| r["dn"] == row["manager"]);
            assert!(
                manager.is_some_and(|m| m < i),
                "{}'s manager {} is not an earlier row",
                row["id"],
                row["manager"]
            );
        }
    }
    // The import confirmed every export: nothing more to do.
    assert_eq!(env.preview(), Vec::<Value>::new());
    assert_eq!(
        env.show_cs("corp", "e4")["dn"],
        json!(user_dn("Dan Report"))
    );
    env.ok(&["check"]);
}

#[test]
fn report_synced_before_its_manager_exists_gets_the_manager_later_without_a_resync() {
    let env = Corp::default().env(&[person("E2", "Bob", "Report", "E1")]);
    env.ok(&["run", "full"]);
    assert_eq!(corp_row(&env, "e2")["manager"], "", "no manager yet");

    // The manager arrives in a later delta import of HR; only the manager is synced.
    env.write(
        "data/hr-changes.csv",
        &format!(
            "changeType,{}",
            csv_text(HR_HEADER, &[["E1", "Ann", "Chief", "Austin", "Active", ""]])
                .replacen('\n', "\nadd,", 1)
        ),
    );
    env.ok(&["import", "hr", "--delta"]);
    assert_eq!(
        env.show_cs("hr", "E2")["pending_import"],
        Value::Null,
        "the report itself has no change to sync"
    );
    env.ok(&["sync", "hr", "--delta"]);

    let preview = env.preview();
    assert_eq!(
        operations(&preview),
        [
            ("e1".to_owned(), "add".to_owned()),
            ("e2".to_owned(), "update".to_owned())
        ]
    );
    assert_eq!(
        preview[1]["attributes"],
        json!([{ "name": "manager", "op": "set", "old": null, "new": user_dn("Ann Chief") }])
    );
    env.ok(&["export", "corp"]);
    assert_eq!(corp_row(&env, "e2")["manager"], user_dn("Ann Chief"));
    assert_eq!(corp_row(&env, "e1")["dn"], user_dn("Ann Chief"));
}

#[test]
fn anchor_references_of_a_source_with_dns_resolve_in_the_same_sync() {
    // HR rows carry DNs too, while managers are still named by employeeId.
    let setup = Corp {
        hr_extra: r#"dn_column = "hrDn""#,
        ..Corp::default()
    };
    let env = Env::new(&setup.config());
    env.write(
        "data/hr.csv",
        "employeeId,hrDn,firstName,lastName,city,status,managerId\n\
         E2,\"CN=E2,O=HR\",Bob,Report,Austin,Active,E1\n\
         E1,\"CN=E1,O=HR\",Ann,Chief,Austin,Active,\n",
    );
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    let preview = env.preview();
    let manager = preview
        .iter()
        .find(|c| c["object"] == "e2")
        .and_then(|c| {
            c["attributes"]
                .as_array()?
                .iter()
                .find(|a| a["name"] == "manager")
        })
        .map(|a| a["new"].clone());
    assert_eq!(
        manager,
        Some(json!(user_dn("Ann Chief"))),
        "the report synced before its manager gets the manager in the same sync step: {preview:#?}"
    );
}

#[test]
fn references_follow_a_renamed_manager() {
    let env = Corp {
        dn: DN_BY_CITY,
        ..Corp::default()
    }
    .env(&[
        person("E1", "Ann", "Chief", ""),
        person("E2", "Bob", "Report", "E1"),
    ]);
    env.ok(&["run", "full"]);
    let moved = format!("CN=Ann Chief,OU=Dallas,{USERS}");

    write_hr(
        &env,
        &[
            person("E1", "Ann", "Chief", "").city("Dallas"),
            person("E2", "Bob", "Report", "E1"),
        ],
    );
    env.ok(&["run", "full"]);
    assert_eq!(corp_row(&env, "e1")["dn"], moved);
    // A CSV file has no referential integrity: the engine notices the stale
    // reference when it reads the file back, and fixes it.
    env.ok(&["run", "full"]);
    assert_eq!(corp_row(&env, "e2")["manager"], moved);
    assert_eq!(env.preview(), Vec::<Value>::new());
}

#[test]
fn report_hired_while_the_manager_moves_gets_the_new_dn_in_the_same_run() {
    let env = Corp {
        dn: DN_BY_CITY,
        ..Corp::default()
    }
    .env(&[person("E1", "Ann", "Chief", "")]);
    env.ok(&["run", "full"]);

    write_hr(
        &env,
        &[
            person("E1", "Ann", "Chief", "").city("Dallas"),
            person("E2", "Bob", "Report", "E1"),
        ],
    );
    env.ok(&["run", "full"]);
    let moved = format!("CN=Ann Chief,OU=Dallas,{USERS}");
    assert_eq!(corp_row(&env, "e1")["dn"], moved);
    assert_eq!(
        corp_row(&env, "e2")["manager"],
        moved,
        "the new report's manager must name the manager where it now is"
    );
}

// ---------------------------------------------------------------- DNs

/// Users in Dallas get their own OU.
const DN_BY_CITY: &str = r#"'Join(",", "CN=" + EscapeDN(displayName), Switch(city, "OU=Users,DC=corp,DC=example", "Dallas", "OU=Dallas,OU=Users,DC=corp,DC=example"))'"#;

#[test]
fn ou_move_is_exported_as_a_rename_of_the_same_row() {
    let env = Corp {
        dn: DN_BY_CITY,
        ..Corp::default()
    }
    .env(&[
        person("E1", "Ann", "Chief", ""),
        person("E2", "Bob", "Mover", ""),
    ]);
    env.ok(&["run", "full"]);
    let before = corp_rows(&env);
    let object = env.show_cs("corp", "e2")["id"].clone();

    write_hr(
        &env,
        &[
            person("E1", "Ann", "Chief", ""),
            person("E2", "Bob", "Mover", "").city("Dallas"),
        ],
    );
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    let old_dn = user_dn("Bob Mover");
    let new_dn = format!("CN=Bob Mover,OU=Dallas,{USERS}");
    let preview = env.preview();
    assert_eq!(
        renames(&preview),
        [(
            "e2".to_owned(),
            "rename".to_owned(),
            json!(old_dn),
            json!(new_dn)
        )],
        "a move, not a delete and an add: {preview:#?}"
    );
    assert_eq!(
        preview[0]["attributes"],
        json!([{ "name": "city", "op": "set", "old": "Austin", "new": "Dallas" }])
    );

    env.ok(&["export", "corp"]);
    let after = corp_rows(&env);
    assert_eq!(after.len(), before.len());
    assert_eq!(
        changed_cells(&before, &after, "id"),
        cells(&[
            ("e2", "city", "Austin", "Dallas"),
            ("e2", "dn", &old_dn, &new_dn)
        ])
    );
    env.ok(&["import", "corp"]);
    env.ok(&["sync", "corp"]);
    let cs = env.show_cs("corp", "e2");
    assert_eq!(cs["id"], object, "the same connector-space object");
    assert_eq!(cs["dn"], json!(new_dn));
    assert_eq!(cs["error"], Value::Null, "the rename was confirmed: {cs}");
    assert_eq!(env.preview(), Vec::<Value>::new());
    env.ok(&["check"]);
}

#[test]
fn names_that_need_escaping_make_valid_dns_that_round_trip() {
    let workers = [
        person("E1", "#Renée", r#"O"Brien, Jr. + <Ops>; \ Team"#, ""),
        person("E2", " Łukasz", "Nowak ", "E1"),
    ];
    let env = Corp::default().env(&workers);
    env.ok(&["run", "full"]);

    let renee = user_dn(r#"\#Renée O\"Brien\, Jr. \+ \<Ops\>\; \\ Team"#);
    let lukasz = user_dn(r"\ Łukasz Nowak\ ");
    let row = corp_row(&env, "e1");
    assert_eq!(
        (row["dn"].as_str(), row["displayName"].as_str()),
        (renee.as_str(), r#"#Renée O"Brien, Jr. + <Ops>; \ Team"#)
    );
    let row = corp_row(&env, "e2");
    assert_eq!(
        (row["dn"].as_str(), row["manager"].as_str()),
        (lukasz.as_str(), renee.as_str())
    );
    // Imported back with the same DN: no rename, no change.
    assert_eq!(env.show_cs("corp", "e1")["dn"], json!(renee));
    assert_eq!(
        env.show_cs("corp", &lukasz)["id"],
        env.show_cs("corp", "e2")["id"]
    );
    assert_eq!(env.preview(), Vec::<Value>::new());
    env.ok(&["sync", "hr"]);
    env.ok(&["sync", "corp"]);
    assert_eq!(env.preview(), Vec::<Value>::new(), "no spurious rename");
    let exported = env.bytes(CORP_CSV);
    env.ok(&["run", "full"]);
    assert_eq!(
        env.bytes(CORP_CSV),
        exported,
        "a second run writes nothing new"
    );
}

// ---------------------------------------------------------------- deprovisioning

#[test]
fn terminated_worker_is_disabled_and_moved_not_deleted() {
    let env = Corp {
        scope: r#"status != "Terminated""#,
        deprovision: r#"{ disable = { enabled = '"no"', dn = '"CN=" + EscapeDN(displayName) + ",OU=Disabled,DC=corp,DC=example"' } }"#,
        ..Corp::default()
    }
    .env(&[
        person("E1", "Ann", "Chief", ""),
        person("E2", "Bob", "Leaver", "E1"),
    ]);
    env.ok(&["run", "full"]);
    let before = corp_rows(&env);

    write_hr(
        &env,
        &[
            person("E1", "Ann", "Chief", ""),
            person("E2", "Bob", "Leaver", "E1").terminated(),
        ],
    );
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    let disabled = "CN=Bob Leaver,OU=Disabled,DC=corp,DC=example";
    let preview = env.preview();
    assert_eq!(
        renames(&preview),
        [(
            "e2".to_owned(),
            "rename".to_owned(),
            json!(user_dn("Bob Leaver")),
            json!(disabled)
        )],
        "{preview:#?}"
    );
    assert_eq!(
        preview[0]["attributes"],
        json!([{ "name": "enabled", "op": "set", "old": "yes", "new": "no" }])
    );

    env.ok(&["run", "full"]);
    assert_eq!(
        changed_cells(&before, &corp_rows(&env), "id"),
        cells(&[
            ("e2", "dn", &user_dn("Bob Leaver"), disabled),
            ("e2", "enabled", "yes", "no")
        ]),
        "the row stays, disabled and moved"
    );
    assert!(env.show_cs("corp", "e2")["link"].is_array(), "still linked");
    assert_eq!(env.preview(), Vec::<Value>::new());
}

#[test]
fn out_of_scope_object_is_disconnected_not_deleted_with_skip_out_of_scope_deletions() {
    let env = Corp {
        scope: r#"status != "Terminated""#,
        skip_out_of_scope_deletions: true,
        ..Corp::default()
    }
    .env(&[
        person("E1", "Ann", "Chief", ""),
        person("E2", "Bob", "Leaver", ""),
    ]);
    env.ok(&["run", "full"]);
    let before = corp_rows(&env);

    write_hr(
        &env,
        &[
            person("E1", "Ann", "Chief", ""),
            person("E2", "Bob", "Leaver", "").terminated(),
        ],
    );
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    let preview = env.preview();
    assert!(
        !operations(&preview).iter().any(|(_, op)| op == "delete"),
        "nothing is deleted: {preview:#?}"
    );
    assert_eq!(
        env.show_cs("corp", "e2")["link"],
        Value::Null,
        "a disconnector"
    );

    env.ok(&["run", "full"]);
    assert_eq!(changed_cells(&before, &corp_rows(&env), "id"), cells(&[]));
    assert_eq!(env.show_cs("corp", "e2")["link"], Value::Null);
    env.ok(&["check"]);
}

#[test]
fn keep_leaves_an_out_of_scope_object_linked_and_unwritten() {
    let env = Corp {
        scope: r#"status != "Terminated""#,
        deprovision: r#""keep""#,
        ..Corp::default()
    }
    .env(&[
        person("E1", "Ann", "Chief", ""),
        person("E2", "Bob", "Moved", ""),
    ]);
    env.ok(&["run", "full"]);
    let before = corp_rows(&env);

    // Out of scope and changed in HR: nothing is written to the object,
    // which stays linked (its source of authority moved elsewhere).
    write_hr(
        &env,
        &[
            person("E1", "Ann", "Chief", ""),
            person("E2", "Bob", "Moved", "").city("Bergen").terminated(),
        ],
    );
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    assert_eq!(env.preview(), Vec::<Value>::new(), "nothing pending");
    assert!(env.show_cs("corp", "e2")["link"].is_array(), "still linked");
    env.ok(&["run", "full"]);
    assert_eq!(changed_cells(&before, &corp_rows(&env), "id"), cells(&[]));
    assert!(env.show_cs("corp", "e2")["link"].is_array());
    let text = crate::harness::stdout(&env.ok(&["validate"]));
    assert!(
        text.contains("leaving scope: keep (linked, no longer written)"),
        "{text}"
    );
    env.ok(&["check"]);
}

#[test]
fn revert_renames_an_object_back_and_restores_its_attributes() {
    let env = Corp::default().env(&[
        person("E1", "Ann", "Chief", ""),
        person("E2", "Bob", "Smith", "E1"),
    ]);
    env.ok(&["run", "full"]);
    let before = env.bytes(CORP_CSV);
    write_hr(
        &env,
        &[
            person("E1", "Ann", "Chief", ""),
            person("E2", "Bob", "Jones", "E1").city("Oslo"),
        ],
    );
    env.ok(&["run", "full"]);
    assert_eq!(corp_row(&env, "e2")["dn"], user_dn("Bob Jones"));
    let run = env
        .history()
        .iter()
        .rev()
        .find(|r| r["step"] == "Export")
        .and_then(|r| r["id"].as_u64())
        .expect("the export run");
    let out = env.ok(&["revert", &run.to_string()]);
    assert!(
        crate::harness::stdout(&out).contains("rename back and restore"),
        "{}",
        crate::harness::stdout(&out)
    );
    env.ok(&["export", "corp"]);
    assert_eq!(corp_row(&env, "e2")["dn"], user_dn("Bob Smith"));
    assert_eq!(env.bytes(CORP_CSV), before, "the directory as it was");
    env.ok(&["check"]);
}

#[test]
fn a_provisioned_dn_another_object_holds_is_an_error_and_the_store_stays_consistent() {
    let env = Corp::default().env(&[
        person("E1", "Ann", "Chief", ""),
        person("E2", "Ann", "Chief", ""),
    ]);
    let out = env.expect(&["run", "full"], 3);
    let text = crate::harness::stdout(&out);
    assert!(
        text.contains("provision-conflict") && text.contains("is held by cs:"),
        "{text}"
    );
    assert_eq!(
        corp_rows(&env).len(),
        1,
        "one account; the second waits for a unique DN"
    );
    env.ok(&["check"]);
}

// ---------------------------------------------------------------- groups

/// A source of workers and teams in one file (`object_type_column`); teams
/// list their members by key. Teams become groups in the directory.
const GROUPS: &str = r#"
[connectors.src]
type = "csv"
path = "data/directory.csv"
anchor = "key"
object_type_column = "kind"
object_types = ["worker", "team"]
multi_valued = { members = ";" }
references = { members = "key" }

[[rules]]
name = "src-workers"
direction = "inbound"
connector = "src"
mv_object_type = "person"
cs_object_type = "worker"
precedence = 10
join = [ { cs = "key", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "key"
displayName = "name"

[[rules]]
name = "src-teams"
direction = "inbound"
connector = "src"
mv_object_type = "group"
cs_object_type = "team"
precedence = 10
join = [ { cs = "key", mv = "groupId" } ]
project = true
[rules.flows]
groupId = "key"
displayName = "name"
members = "members"

[[rules]]
name = "corp-groups"
direction = "outbound"
connector = "corp"
mv_object_type = "group"
cs_object_type = "group"
provision = true
deprovision = "delete"
[rules.flows]
id = { expr = '"g-" + Lower(groupId)', initial_only = true }
dn = '"CN=" + EscapeDN(displayName) + ",OU=Groups,DC=corp,DC=example"'
displayName = "displayName"
members = "members"

[run_profiles.groups]
steps = [
  { connector = "src", step = "full-import" },
  { connector = "src", step = "full-sync" },
  { connector = "corp", step = "export" },
  { connector = "corp", step = "full-import" },
  { connector = "corp", step = "full-sync" },
]
"#;

fn directory_csv(members: &str) -> String {
    csv_text(
        ["key", "kind", "name", "members"],
        &[
            // The team first: its members are synced after it.
            ["T1", "team", "Engineering", members],
            ["E1", "worker", "Ada Lovelace", ""],
            ["E2", "worker", "Grace Hopper", ""],
            ["E3", "worker", "Smith; Jo", ""],
            ["E4", "worker", "Alan Turing", ""],
        ],
    )
}

#[test]
fn group_membership_change_adds_and_removes_just_those_members() {
    let env = Env::new(&format!("{}{GROUPS}", Corp::default().config()));
    env.write("data/directory.csv", &directory_csv("E1;E2;E3"));
    env.ok(&["run", "groups"]);
    let ada = user_dn("Ada Lovelace");
    let grace = user_dn("Grace Hopper");
    let jo = user_dn(r"Smith\; Jo");
    let alan = user_dn("Alan Turing");

    let rows = corp_rows(&env);
    let position = |id: &str| rows.iter().position(|r| r["id"] == id);
    for member in ["e1", "e2", "e3"] {
        assert!(
            position(member) < position("g-t1"),
            "the group is added after its member {member}: {rows:#?}"
        );
    }
    let group = corp_row(&env, "g-t1");
    assert_eq!(group["objectType"], "group");
    assert_eq!(group["dn"], "CN=Engineering,OU=Groups,DC=corp,DC=example");
    assert_eq!(
        sorted(dn_list(&group["members"])),
        sorted(vec![ada.clone(), grace.clone(), jo.clone()])
    );
    assert_eq!(env.preview(), Vec::<Value>::new());
    let before = corp_rows(&env);

    // Grace leaves the team, Alan joins.
    env.write("data/directory.csv", &directory_csv("E1;E3;E4"));
    env.ok(&["import", "src"]);
    env.ok(&["sync", "src"]);
    let preview = env.preview();
    assert_eq!(
        operations(&preview),
        [("g-t1".to_owned(), "update".to_owned())],
        "{preview:#?}"
    );
    let ops: Vec<(&str, &str)> = preview[0]["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or("?"),
                a["op"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(ops, [("members", "add"), ("members", "remove")]);
    let attributes = &preview[0]["attributes"];
    assert_eq!(attributes[0]["new"], json!([ada, grace, jo, alan]));
    assert_eq!(attributes[1]["new"], json!([ada, jo, alan]));

    env.ok(&["export", "corp"]);
    let after = corp_rows(&env);
    let changed = changed_cells(&before, &after, "id");
    assert_eq!(
        changed
            .iter()
            .map(|c| (c.0.as_str(), c.1.as_str()))
            .collect::<Vec<_>>(),
        [("g-t1", "members")],
        "only the group's members changed"
    );
    assert_eq!(
        sorted(dn_list(&corp_row(&env, "g-t1")["members"])),
        sorted(vec![ada, jo, alan])
    );
    assert_eq!(env.preview(), Vec::<Value>::new());
    env.ok(&["check"]);
}

#[test]
fn adding_and_removing_members_in_one_export_is_confirmed_by_the_next_import() {
    let env = Env::new(&format!("{}{GROUPS}", Corp::default().config()));
    env.write("data/directory.csv", &directory_csv("E1;E2;E3"));
    env.ok(&["run", "groups"]);

    env.write("data/directory.csv", &directory_csv("E1;E3;E4"));
    // Export, then the import that must confirm what was exported.
    let out = env.mvsync(&["run", "groups"]);
    assert_eq!(
        crate::harness::code(&out),
        0,
        "the import confirms the exported membership:\n{}",
        crate::harness::describe(&out)
    );
    assert_eq!(env.show_cs("corp", "g-t1")["error"], Value::Null);
}

/// Workers `W0000`.. and team `T1` listing `members` (worker numbers).
fn large_directory_csv(workers: usize, members: &[usize]) -> String {
    let list: Vec<String> = members.iter().map(|i| format!("W{i:04}")).collect();
    let list = list.join(";");
    let mut rows = vec![[
        "T1".to_owned(),
        "team".to_owned(),
        "Everyone".to_owned(),
        list,
    ]];
    rows.extend((0..workers).map(|i| {
        [
            format!("W{i:04}"),
            "worker".to_owned(),
            format!("Worker {i:04}"),
            String::new(),
        ]
    }));
    let rows: Vec<[&str; 4]> = rows
        .iter()
        .map(|r| r.each_ref().map(String::as_str))
        .collect();
    csv_text(["key", "kind", "name", "members"], &rows)
}

#[test]
fn a_large_group_changes_one_member_without_rewriting_its_member_list() {
    // Past the store's out-of-line threshold (256 values), so the list is
    // kept a key per member.
    const N: usize = 2_000;
    let env = Env::new(&format!("{}{GROUPS}", Corp::default().config()));
    let everyone: Vec<usize> = (0..N).collect();
    env.write("data/directory.csv", &large_directory_csv(N, &everyone));
    env.ok(&["run", "groups"]);
    let dns = |members: &[usize]| -> Vec<String> {
        sorted(
            members
                .iter()
                .map(|i| user_dn(&format!("Worker {i:04}")))
                .collect(),
        )
    };
    assert_eq!(
        sorted(dn_list(&corp_row(&env, "g-t1")["members"])),
        dns(&everyone)
    );
    let list_bytes: usize = dns(&everyone).iter().map(String::len).sum();

    // W0007 leaves the team and a new worker, W2000, joins it.
    let members: Vec<usize> = (0..=N).filter(|i| *i != 7).collect();
    env.write("data/directory.csv", &large_directory_csv(N + 1, &members));
    let runs_before = env.history().len();
    env.ok(&["run", "groups"]);
    assert_eq!(
        sorted(dn_list(&corp_row(&env, "g-t1")["members"])),
        dns(&members)
    );
    let runs = env.history().split_off(runs_before);
    assert_eq!(runs.len(), 5);
    for run in &runs {
        let bytes = run["written"]["bytes"].as_u64().expect("written bytes");
        assert!(
            (bytes as usize) < list_bytes / 10,
            "{} {} wrote {bytes} bytes to the store; the member list is {list_bytes} bytes",
            run["connector"],
            run["step"]
        );
    }
    assert_eq!(env.preview(), Vec::<Value>::new());
    env.ok(&["check"]);
}
