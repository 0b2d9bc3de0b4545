//! Expressions copied from Entra provisioning and Entra Connect, run
//! through the binary: the VBScript operators, empty argument slots, the
//! seven-argument Replace, .NET date formats, and the flow keywords
//! (IgnoreFlowIfNullOrEmpty keeps the target's value, IgnoreObjectFlow
//! provisions nothing, Error fails the object with its message).

use crate::harness::{worker, Env};

const CONFIG: &str = r#"
[store]
path = "state/mvsync.db"

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"

[connectors.app]
type = "csv"
path = "state/app.csv"
object_type = "account"
anchor = "accountName"
columns = ["accountName", "displayName", "mail", "department", "enabled", "started", "code", "ref"]

[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hr"
mv_object_type = "person"
join = [ { cs = "employeeId", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "[employeeId]"
displayName = 'Trim([firstName]) & " " & Trim([lastName])'
email = "[email]"
department = "[department]"
workerType = "[workerType]"
status = "[status]"

[[rules]]
name = "app-out"
direction = "outbound"
connector = "app"
mv_object_type = "person"
cs_object_type = "account"
provision = true
deprovision = "delete"
[rules.flows]
accountName = 'IIF([workerType] = "Intern", IgnoreObjectFlow, ToLower([employeeId], "en-US"))'
displayName = "PCase([displayName])"
mail = 'Replace(ToLower([email]), "@contoso.com", , ,"@fabrikam.com", ,)'
department = "IgnoreFlowIfNullOrEmpty([department])"
enabled = 'Switch([status], "no", "Active", "yes")'
started = 'FormatDateTime("2012-03-16-07:00", , "yyyy-MM-ddzzz", "yyyyMMddHHmmss.fZ")'
code = 'IIF(Len([employeeId]) <> 2, PadLeft([employeeId], 6, "0"), Error("employee ids are never two characters"))'
ref = "Guid()"

[run_profiles.cycle]
steps = [
  { connector = "hr", step = "full-import" },
  { connector = "hr", step = "full-sync" },
  { connector = "app", step = "export" },
]
"#;

#[test]
fn entra_expressions_run_unchanged_through_a_full_cycle() {
    let env = Env::new(CONFIG);
    env.write_hr(&[
        worker("E100", "  ann ", "LEE")
            .email("Ann.Lee@Contoso.com")
            .department("Sales"),
        worker("E200", "Bo", "Ray")
            .department("Support")
            .terminated(),
    ]);
    env.ok(&["validate"]);
    env.ok(&["run", "cycle"]);
    let ann = env.app_row("e100");
    assert_eq!(ann["displayName"], "Ann Lee");
    assert_eq!(ann["mail"], "ann.lee@fabrikam.com");
    assert_eq!(ann["department"], "Sales");
    assert_eq!(ann["enabled"], "yes");
    assert_eq!(ann["started"], "20120316070000.0Z");
    assert_eq!(ann["code"], "00E100");
    assert_eq!(env.app_row("e200")["enabled"], "no");
    // Guid() is generated once, at provisioning: a GUID, different per
    // object, and the same after the next cycle.
    let guid = ann["ref"].clone();
    assert!(
        guid.len() == 36
            && guid.chars().filter(|c| *c == '-').count() == 4
            && guid.as_bytes()[14] == b'4',
        "{guid}"
    );
    assert_ne!(guid, env.app_row("e200")["ref"]);

    // E100's department leaves HR: IgnoreFlowIfNullOrEmpty keeps the exported
    // value. A new intern: IgnoreObjectFlow provisions nothing, and is no error.
    let hr = crate::harness::hr_csv(&[
        worker("E100", "  ann ", "LEE")
            .email("Ann.Lee@Contoso.com")
            .department(""),
        worker("E200", "Bo", "Ray")
            .department("Support")
            .terminated(),
        worker("E300", "Iris", "Stone"),
    ])
    .replace(
        "E300,Iris,Stone,,Engineering,Employee",
        "E300,Iris,Stone,,Engineering,Intern",
    );
    env.write("data/hr.csv", &hr);
    env.ok(&["run", "cycle"]);
    let rows = env.app_rows();
    assert!(
        rows.iter().all(|r| r["accountName"] != "e300"),
        "an intern is not provisioned: {rows:?}"
    );
    assert_eq!(env.app_row("e100")["department"], "Sales");
    assert_eq!(
        env.app_row("e100")["ref"],
        guid,
        "a generated value is kept"
    );
    assert!(
        env.preview().is_empty(),
        "nothing pending: {:?}",
        env.preview()
    );
    assert_eq!(env.run_errors(&env.last_run()).len(), 0);
}

#[test]
fn error_in_the_branch_taken_fails_only_that_object_with_its_message() {
    let env = Env::new(CONFIG);
    env.write_hr(&[worker("E1", "Ann", "Lee"), worker("E222", "Bo", "Ray")]);
    let out = env.expect(&["run", "cycle"], 3);
    let sync = env
        .history()
        .into_iter()
        .find(|r| r["step"] == "FullSync")
        .expect("a sync step");
    let errors = env.run_errors(&sync);
    let text = format!("{errors:?}");
    assert!(
        text.contains("employee ids are never two characters"),
        "{text}\n{}",
        crate::harness::describe(&out)
    );
    assert_eq!(errors.len(), 1, "{text}");
    assert_eq!(env.app_row("e222")["code"], "00E222");
}

#[test]
fn functions_lists_every_function_and_shows_one_with_its_examples() {
    let env = Env::empty();
    let out = env.ok(&["functions"]);
    let text = crate::harness::stdout(&out);
    for name in [
        "Replace",
        "FormatDateTime",
        "IgnoreFlowIfNullOrEmpty",
        "DNComponentRev",
        "PCase",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} in\n{text}"
        );
    }
    let one = env.json(&["functions", "formatdatetime"]);
    assert_eq!(one["name"], "FormatDateTime");
    assert!(
        one["examples"].as_array().is_some_and(|e| e.len() >= 3),
        "{one}"
    );
    let out = env.expect(&["functions", "Lowr"], 1);
    assert!(crate::harness::stderr(&out).contains("did you mean Lower?"));
    let listed = crate::harness::stdout(&env.ok(&["functions", "--format", "csv"]));
    let mut rows = csv::Reader::from_reader(listed.as_bytes());
    assert_eq!(
        rows.headers().expect("a header").iter().collect::<Vec<_>>(),
        ["name", "signature", "summary"]
    );
    assert!(rows
        .records()
        .filter_map(Result::ok)
        .any(|r| &r[0] == "FormatDateTime"));
}

const PHONEBOOK_CONFIG: &str = r#"
[store]
path = "state/mvsync.db"

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"

[connectors.phonebook]
type = "csv"
path = "data/phonebook.csv"
object_type = "entry"
anchor = "employeeId"

[connectors.app]
type = "csv"
path = "state/app.csv"
object_type = "account"
anchor = "accountName"
columns = ["accountName", "displayName", "phone"]

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
displayName = 'firstName & " " & lastName'

[[rules]]
name = "phonebook-in"
direction = "inbound"
connector = "phonebook"
mv_object_type = "person"
precedence = 5
join = [ { cs = "employeeId", mv = "employeeId" } ]
[rules.flows]
displayName = 'IIF([optOut] = "yes", IgnoreObjectFlow, [displayName])'
phone = "phone"

[[rules]]
name = "app-out"
direction = "outbound"
connector = "app"
mv_object_type = "person"
cs_object_type = "account"
provision = true
[rules.flows]
accountName = { expr = "Lower(employeeId)", initial_only = true }
displayName = "displayName"
phone = "phone"

[run_profiles.cycle]
steps = [
  { connector = "hr", step = "full-import" },
  { connector = "hr", step = "full-sync" },
  { connector = "phonebook", step = "full-import" },
  { connector = "phonebook", step = "full-sync" },
  { connector = "app", step = "export" },
]
"#;

#[test]
fn ignore_object_flow_in_an_inbound_rule_takes_the_source_out_for_that_object() {
    let env = Env::new(PHONEBOOK_CONFIG);
    env.write_hr(&[worker("E1", "Ann", "Lee"), worker("E2", "Bo", "Ray")]);
    env.write(
        "data/phonebook.csv",
        "employeeId,displayName,phone,optOut\nE1,Annie Lee,555-0101,no\nE2,Bobby Ray,555-0102,yes\n",
    );
    env.ok(&["run", "cycle"]);
    let ann = env.app_row("e1");
    assert_eq!(
        (ann["displayName"].as_str(), ann["phone"].as_str()),
        ("Annie Lee", "555-0101")
    );
    // The phone book opted out: none of its flows count for E2, HR's name wins.
    let bo = env.app_row("e2");
    assert_eq!(
        (bo["displayName"].as_str(), bo["phone"].as_str()),
        ("Bo Ray", "")
    );
    assert!(env.run_errors(&env.last_run()).is_empty());

    // E1 opts out later: the phone book's values stay as they were (a skip
    // never writes null), they just stop changing.
    env.write(
        "data/phonebook.csv",
        "employeeId,displayName,phone,optOut\nE1,Annie B. Lee,555-0199,yes\nE2,Bobby Ray,555-0102,yes\n",
    );
    env.ok(&["run", "cycle"]);
    let ann = env.app_row("e1");
    assert_eq!(
        (ann["displayName"].as_str(), ann["phone"].as_str()),
        ("Annie Lee", "555-0101")
    );
    // `preview object` shows the skip as a decision, not as an error.
    let trace = crate::harness::stdout(&env.ok(&[
        "preview",
        "object",
        "phonebook",
        "E1",
        "--format",
        "json",
    ]));
    assert!(trace.contains("skipped (IgnoreObjectFlow)"), "{trace}");
}
