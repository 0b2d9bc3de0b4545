//! Lifecycle semantics of an HR → directory run, day by day through the
//! binary, against a CSV file standing in for a directory that keeps DN
//! references as text: a rename or move reaching the reports' `manager` in
//! the same run, leaving scope apart from deletion, provisioning only
//! active workers while linked accounts keep their flows, `target.` flows
//! (a UPN from the chosen account name), and unique values that do not
//! depend on the HR file's row order.

use crate::harness::{flat, stderr, Env};

/// The directory file export writes.
const DIR_CSV: &str = "state/dir.csv";

/// HR → person → a directory with DNs. `@SCOPE@`, `@PROVISION@` and
/// `@DEPROVISION@` are replaced per test.
const CONFIG: &str = r#"[store]
path = "state/mvsync.db"

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"
references = { managerId = "employeeId" }

[connectors.dir]
type = "csv"
path = "state/dir.csv"
object_type = "user"
anchor = "employeeId"
dn_column = "dn"
references = { manager = "dn" }
columns = ["employeeId", "dn", "sAMAccountName", "userPrincipalName", "title", "manager", "enabled"]

[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hr"
mv_object_type = "person"
join = [ { cs = "employeeId", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "employeeId"
firstName = "firstName"
lastName = "lastName"
displayName = 'Join(" ", firstName, lastName)'
city = "city"
title = "title"
status = "status"
manager = "managerId"

[[rules]]
name = "dir-out"
direction = "outbound"
connector = "dir"
mv_object_type = "person"
cs_object_type = "user"
scope = '@SCOPE@'
provision = @PROVISION@
@DEPROVISION@
[rules.flows]
employeeId = { expr = "employeeId", initial_only = true }
dn = '"CN=" + EscapeDN(displayName) + ",OU=" + city + ",DC=corp"'
sAMAccountName = 'UniqueNumbered(Lower(Left(firstName, 1) + lastName), 20)'
userPrincipalName = 'target.sAMAccountName + "@corp.example"'
title = "title"
manager = "manager"
enabled = 'IIF(status == "Active", "yes", "no")'

[run_profiles.cycle]
steps = [
  { connector = "hr", step = "full-import" },
  { connector = "hr", step = "delta-sync" },
  { connector = "dir", step = "export" },
  { connector = "dir", step = "full-import" },
  { connector = "dir", step = "delta-sync" },
]
"#;

/// The lifecycle set-up: active workers are in scope; a leaver is disabled
/// and moved to OU=Disabled; a worker removed from HR is deleted.
const LIFECYCLE: (&str, &str, &str) = (
    r#"status == "Active""#,
    "true",
    r#"deprovision = { disable = { enabled = '"no"', dn = '"CN=" + EscapeDN(displayName) + ",OU=Disabled,DC=corp"' } }
deprovision_on_delete = "delete""#,
);

fn config((scope, provision, deprovision): (&str, &str, &str)) -> String {
    CONFIG
        .replace("@SCOPE@", scope)
        .replace("@PROVISION@", provision)
        .replace("@DEPROVISION@", deprovision)
}

const HR_HEADER: &str = "employeeId,firstName,lastName,city,title,status,managerId\n";

/// One HR day: rows as `id,first,last,city,title,status,manager`.
fn hr(env: &Env, rows: &[&str]) {
    let mut text = HR_HEADER.to_owned();
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    env.write("data/hr.csv", &text);
}

/// The directory file's rows, sorted, as `employeeId|dn|sam|upn|title|manager|enabled`.
fn directory(env: &Env) -> Vec<String> {
    let mut rows: Vec<String> = env
        .csv_rows(DIR_CSV)
        .iter()
        .map(|r| {
            [
                "employeeId",
                "dn",
                "sAMAccountName",
                "userPrincipalName",
                "title",
                "manager",
                "enabled",
            ]
            .iter()
            .map(|c| r.get(*c).map_or("", String::as_str).to_owned())
            .collect::<Vec<_>>()
            .join("|")
        })
        .collect();
    rows.sort();
    rows
}

fn expect_directory(env: &Env, day: &str, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(directory(env), expected, "{day}: the directory file");
}

/// Runs the cycle, then runs it again and asserts the second run stages
/// and exports nothing.
fn cycle_settles(env: &Env, day: &str) {
    env.ok(&["run", "cycle"]);
    assert_eq!(
        env.preview(),
        Vec::<serde_json::Value>::new(),
        "{day}: nothing left pending"
    );
    let before = env.bytes(DIR_CSV);
    env.ok(&["run", "cycle"]);
    let run = env.last_run();
    assert_eq!(
        run["counters"]["exports_staged"], 0,
        "{day}: a second run stages nothing: {run}"
    );
    assert_eq!(
        env.bytes(DIR_CSV),
        before,
        "{day}: a second run changes nothing"
    );
}

const MARY: &str = "E1,Mary,Major,London,Director,Active,";
const DN_MARY: &str = "CN=Mary Major,OU=London,DC=corp";

#[test]
fn a_renamed_manager_reaches_every_report_in_the_same_run() {
    let env = Env::new(&config(LIFECYCLE));
    let reports = [
        "E2,Bob,Stone,London,Engineer,Active,E1",
        "E3,Cy,Vale,Paris,Engineer,Active,E1",
    ];
    hr(&env, &[&[MARY][..], &reports[..]].concat());
    env.ok(&["run", "cycle"]);
    hr(
        &env,
        &[&["E1,Mary,Minor,London,Director,Active,"][..], &reports[..]].concat(),
    );
    env.ok(&["import", "hr"]);
    // A delta sync visits the manager only: the reports must follow.
    env.ok(&["sync", "hr", "--delta"]);
    // The preview shows the rename and both reports' new manager DN.
    let preview = env.preview();
    let managers: Vec<(String, String)> = preview
        .iter()
        .filter_map(|c| {
            let m = c["attributes"]
                .as_array()?
                .iter()
                .find(|a| a["name"] == "manager")?;
            Some((
                c["object"].as_str()?.to_owned(),
                m["new"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let new_dn = "CN=Mary Minor,OU=London,DC=corp";
    assert_eq!(
        managers,
        [
            ("E2".to_owned(), new_dn.to_owned()),
            ("E3".to_owned(), new_dn.to_owned())
        ],
        "preview: {preview:#?}"
    );
    env.ok(&["run", "cycle"]);
    expect_directory(
        &env,
        "after the rename",
        &[
            "E1|CN=Mary Minor,OU=London,DC=corp|mmajor|mmajor@corp.example|Director||yes",
            "E2|CN=Bob Stone,OU=London,DC=corp|bstone|bstone@corp.example|Engineer|CN=Mary Minor,OU=London,DC=corp|yes",
            "E3|CN=Cy Vale,OU=Paris,DC=corp|cvale|cvale@corp.example|Engineer|CN=Mary Minor,OU=London,DC=corp|yes",
        ],
    );
    cycle_settles(&env, "after the rename");
}

#[test]
fn a_moved_manager_reaches_every_report_in_the_same_run() {
    let env = Env::new(&config(LIFECYCLE));
    let reports = ["E2,Bob,Stone,London,Engineer,Active,E1"];
    hr(&env, &[&[MARY][..], &reports[..]].concat());
    env.ok(&["run", "cycle"]);
    assert!(directory(&env)
        .iter()
        .any(|r| r.contains(&format!("|{DN_MARY}|yes"))));
    hr(
        &env,
        &[&["E1,Mary,Major,Berlin,Director,Active,"][..], &reports[..]].concat(),
    );
    env.ok(&["run", "cycle"]);
    expect_directory(
        &env,
        "after the move",
        &[
            "E1|CN=Mary Major,OU=Berlin,DC=corp|mmajor|mmajor@corp.example|Director||yes",
            "E2|CN=Bob Stone,OU=London,DC=corp|bstone|bstone@corp.example|Engineer|CN=Mary Major,OU=Berlin,DC=corp|yes",
        ],
    );
    cycle_settles(&env, "after the move");
}

#[test]
fn leaving_scope_disables_and_moves_while_deletion_deletes() {
    let env = Env::new(&config(LIFECYCLE));
    hr(
        &env,
        &[
            "E1,Ann,Lee,London,Clerk,Active,",
            "E2,Bob,Stone,London,Clerk,Active,",
        ],
    );
    env.ok(&["run", "cycle"]);
    // Ann leaves (terminated: out of scope); Bob is removed from HR.
    hr(&env, &["E1,Ann,Lee,London,Clerk,Terminated,"]);
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    let ops: Vec<(String, String)> = env
        .preview()
        .iter()
        .map(|c| {
            (
                c["object"].as_str().unwrap_or_default().to_owned(),
                c["operation"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("E1".to_owned(), "rename".to_owned()),
            ("E2".to_owned(), "delete".to_owned())
        ]
    );
    env.ok(&["run", "cycle"]);
    expect_directory(
        &env,
        "after the leaver and the removal",
        &["E1|CN=Ann Lee,OU=Disabled,DC=corp|alee|alee@corp.example|Clerk||no"],
    );
    // validate says which action applies to each event.
    let out = env.ok(&["validate"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("rule 'dir-out' → dir: provisions every object in scope; leaving scope: disable (dn, enabled); metaverse object deleted: delete"),
        "{text}"
    );
}

#[test]
fn provisioning_scope_is_apart_from_the_rules_scope() {
    // Everyone with an employeeId is in scope; only active workers get a new account.
    let env = Env::new(&config((
        "IsPresent(employeeId)",
        r#"'status == "Active"'"#,
        "",
    )));
    hr(
        &env,
        &[
            "E1,Ann,Lee,London,Clerk,Active,",
            "E2,Bob,Stone,London,Clerk,Terminated,",
        ],
    );
    env.ok(&["run", "cycle"]);
    expect_directory(
        &env,
        "only the active worker is provisioned",
        &["E1|CN=Ann Lee,OU=London,DC=corp|alee|alee@corp.example|Clerk||yes"],
    );
    // Ann leaves, then her title changes: it still flows to her account.
    hr(
        &env,
        &[
            "E1,Ann,Lee,London,Archivist,Terminated,",
            "E2,Bob,Stone,London,Clerk,Terminated,",
        ],
    );
    env.ok(&["run", "cycle"]);
    expect_directory(
        &env,
        "a terminated worker's account keeps its flows",
        &["E1|CN=Ann Lee,OU=London,DC=corp|alee|alee@corp.example|Archivist||no"],
    );
    cycle_settles(&env, "terminated");
}

#[test]
fn a_flow_reads_the_value_another_flow_chose_for_the_target() {
    let env = Env::new(&config(LIFECYCLE));
    hr(
        &env,
        &[
            "E1,John,Smith,London,Clerk,Active,",
            "E2,John,Smith,Paris,Clerk,Active,",
        ],
    );
    env.ok(&["run", "cycle"]);
    expect_directory(
        &env,
        "two John Smiths",
        &[
            "E1|CN=John Smith,OU=London,DC=corp|jsmith|jsmith@corp.example|Clerk||yes",
            "E2|CN=John Smith,OU=Paris,DC=corp|jsmith2|jsmith2@corp.example|Clerk||yes",
        ],
    );
}

#[test]
fn flows_that_read_each_other_are_a_validate_error_with_their_location() {
    let text = config(LIFECYCLE)
        .replace("title = \"title\"\n", "title = 'target.enabled'\n")
        .replace(
            "enabled = 'IIF(status == \"Active\", \"yes\", \"no\")'",
            "enabled = 'IIF(target.title == \"x\", \"yes\", \"no\")'",
        );
    let env = Env::new(&text);
    let out = env.expect(&["validate"], 2);
    let err = flat(&stderr(&out));
    let line = text
        .lines()
        .position(|l| l.starts_with("enabled = 'IIF(target.title"))
        .expect("the planted line")
        + 1;
    assert!(
        err.contains(&format!(
            "mvsync.toml:{line}:16: rule 'dir-out', flow to 'enabled': flows read each other through target. (enabled reads title reads enabled), so none of them can be computed first"
        )),
        "{err}"
    );
}

#[test]
fn joiners_get_the_same_unique_values_whatever_the_row_order() {
    let joiners = [
        "E1,John,Smith,London,Clerk,Active,",
        "E2,John,Smith,Paris,Clerk,Active,",
        "E3,John,Smith,Berlin,Clerk,Active,",
    ];
    let expected = [
        "E1|CN=John Smith,OU=London,DC=corp|jsmith|jsmith@corp.example|Clerk||yes",
        "E2|CN=John Smith,OU=Paris,DC=corp|jsmith2|jsmith2@corp.example|Clerk||yes",
        "E3|CN=John Smith,OU=Berlin,DC=corp|jsmith3|jsmith3@corp.example|Clerk||yes",
    ];
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let env = Env::new(&config(LIFECYCLE));
        let rows: Vec<&str> = order.iter().map(|i| joiners[*i]).collect();
        hr(&env, &rows);
        env.ok(&["run", "cycle"]);
        expect_directory(&env, &format!("rows in order {order:?}"), &expected);
        cycle_settles(&env, &format!("rows in order {order:?}"));
    }
}

#[test]
fn five_days_of_joiners_movers_renames_leavers_removals_rehires_and_conversions() {
    let env = Env::new(&config(LIFECYCLE));
    // Day 1: joiners, in reverse anchor order, two of them John Smith.
    hr(
        &env,
        &[
            "C1,Ann,Lee,London,Contractor,Active,E1",
            "E3,John,Smith,London,Engineer,Active,E1",
            "E2,John,Smith,Paris,Engineer,Active,E1",
            MARY,
        ],
    );
    env.ok(&["run", "cycle"]);
    expect_directory(
        &env,
        "day 1",
        &[
            "C1|CN=Ann Lee,OU=London,DC=corp|alee|alee@corp.example|Contractor|CN=Mary Major,OU=London,DC=corp|yes",
            "E1|CN=Mary Major,OU=London,DC=corp|mmajor|mmajor@corp.example|Director||yes",
            "E2|CN=John Smith,OU=Paris,DC=corp|jsmith|jsmith@corp.example|Engineer|CN=Mary Major,OU=London,DC=corp|yes",
            "E3|CN=John Smith,OU=London,DC=corp|jsmith2|jsmith2@corp.example|Engineer|CN=Mary Major,OU=London,DC=corp|yes",
        ],
    );
    // Day 2: a mover (E2, Paris → Berlin).
    hr(
        &env,
        &[
            "C1,Ann,Lee,London,Contractor,Active,E1",
            "E3,John,Smith,London,Engineer,Active,E1",
            "E2,John,Smith,Berlin,Engineer,Active,E1",
            MARY,
        ],
    );
    env.ok(&["run", "cycle"]);
    expect_directory(
        &env,
        "day 2",
        &[
            "C1|CN=Ann Lee,OU=London,DC=corp|alee|alee@corp.example|Contractor|CN=Mary Major,OU=London,DC=corp|yes",
            "E1|CN=Mary Major,OU=London,DC=corp|mmajor|mmajor@corp.example|Director||yes",
            "E2|CN=John Smith,OU=Berlin,DC=corp|jsmith|jsmith@corp.example|Engineer|CN=Mary Major,OU=London,DC=corp|yes",
            "E3|CN=John Smith,OU=London,DC=corp|jsmith2|jsmith2@corp.example|Engineer|CN=Mary Major,OU=London,DC=corp|yes",
        ],
    );
    // Day 3: the manager is renamed; every report follows in the same run.
    let day3 = [
        "C1,Ann,Lee,London,Contractor,Active,E1",
        "E3,John,Smith,London,Engineer,Active,E1",
        "E2,John,Smith,Berlin,Engineer,Active,E1",
        "E1,Mary,Minor,London,Director,Active,",
    ];
    hr(&env, &day3);
    env.ok(&["run", "cycle"]);
    let minor = "CN=Mary Minor,OU=London,DC=corp";
    expect_directory(
        &env,
        "day 3",
        &[
            &format!("C1|CN=Ann Lee,OU=London,DC=corp|alee|alee@corp.example|Contractor|{minor}|yes"),
            "E1|CN=Mary Minor,OU=London,DC=corp|mmajor|mmajor@corp.example|Director||yes",
            &format!("E2|CN=John Smith,OU=Berlin,DC=corp|jsmith|jsmith@corp.example|Engineer|{minor}|yes"),
            &format!("E3|CN=John Smith,OU=London,DC=corp|jsmith2|jsmith2@corp.example|Engineer|{minor}|yes"),
        ],
    );
    // Day 4: the contractor leaves (disabled, moved) and is converted to an
    // employee (a new record, a new account that must not reuse 'alee');
    // E3 is removed from HR (deleted).
    hr(
        &env,
        &[
            "C1,Ann,Lee,London,Contractor,Terminated,E1",
            "E4,Ann,Lee,Berlin,Engineer,Active,E1",
            "E2,John,Smith,Berlin,Engineer,Active,E1",
            "E1,Mary,Minor,London,Director,Active,",
        ],
    );
    env.ok(&["run", "cycle"]);
    let day4 = [
        format!("C1|CN=Ann Lee,OU=Disabled,DC=corp|alee|alee@corp.example|Contractor|{minor}|no"),
        "E1|CN=Mary Minor,OU=London,DC=corp|mmajor|mmajor@corp.example|Director||yes".to_owned(),
        format!(
            "E2|CN=John Smith,OU=Berlin,DC=corp|jsmith|jsmith@corp.example|Engineer|{minor}|yes"
        ),
        format!("E4|CN=Ann Lee,OU=Berlin,DC=corp|alee2|alee2@corp.example|Engineer|{minor}|yes"),
    ];
    expect_directory(
        &env,
        "day 4",
        &day4.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // Day 5: the contractor is rehired: the same account, enabled again and
    // moved back.
    let day5 = [
        "C1,Ann,Lee,London,Contractor,Active,E1",
        "E4,Ann,Lee,Berlin,Engineer,Active,E1",
        "E2,John,Smith,Berlin,Engineer,Active,E1",
        "E1,Mary,Minor,London,Director,Active,",
    ];
    hr(&env, &day5);
    env.ok(&["run", "cycle"]);
    let day5_expected = [
        format!("C1|CN=Ann Lee,OU=London,DC=corp|alee|alee@corp.example|Contractor|{minor}|yes"),
        "E1|CN=Mary Minor,OU=London,DC=corp|mmajor|mmajor@corp.example|Director||yes".to_owned(),
        format!(
            "E2|CN=John Smith,OU=Berlin,DC=corp|jsmith|jsmith@corp.example|Engineer|{minor}|yes"
        ),
        format!("E4|CN=Ann Lee,OU=Berlin,DC=corp|alee2|alee2@corp.example|Engineer|{minor}|yes"),
    ];
    expect_directory(
        &env,
        "day 5",
        &day5_expected.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // An identical last day stages and exports nothing.
    cycle_settles(&env, "day 6 (identical)");
    expect_directory(
        &env,
        "day 6",
        &day5_expected.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}
