//! Unique-value generation (SelectUniqueValue, UniqueNumbered): collisions
//! inside one run, stickiness, and uniqueness across connectors.

use crate::harness::{worker, Env};

const CONFIG: &str = r#"[store]
path = "state/mvsync.db"

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"

[connectors.legacy]
type = "csv"
path = "data/legacy.csv"
object_type = "account"
anchor = "accountName"

[connectors.app]
type = "csv"
path = "state/app.csv"
object_type = "account"
anchor = "accountName"
columns = ["accountName", "employeeId", "displayName"]

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

[[rules]]
name = "app-out"
direction = "outbound"
connector = "app"
mv_object_type = "person"
cs_object_type = "account"
provision = true
unique_in = @UNIQUE_IN@
[rules.flows]
accountName = '''SelectUniqueValue(
    Lower(Left(NormalizeDiacritics(firstName), 1) + NormalizeDiacritics(lastName)),
    Lower(NormalizeDiacritics(firstName) + "." + NormalizeDiacritics(lastName)),
    UniqueNumbered(Lower(Left(NormalizeDiacritics(firstName), 1) + NormalizeDiacritics(lastName)), 20))'''
employeeId = "employeeId"
displayName = "displayName"

[run_profiles.full]
steps = [
  { connector = "legacy", step = "full-import" },
  { connector = "hr", step = "full-import" },
  { connector = "hr", step = "full-sync" },
  { connector = "app", step = "export" },
  { connector = "app", step = "full-import" },
  { connector = "app", step = "full-sync" },
]
"#;

fn setup(unique_in: &str, legacy_accounts: &[&str]) -> Env {
    let env = Env::new(&CONFIG.replace("@UNIQUE_IN@", unique_in));
    let mut legacy = String::from("accountName\n");
    for a in legacy_accounts {
        legacy.push_str(a);
        legacy.push('\n');
    }
    env.write("data/legacy.csv", &legacy);
    env
}

/// `(employeeId, accountName)` of every exported account, in file order.
fn accounts(env: &Env) -> Vec<(String, String)> {
    env.app_rows()
        .into_iter()
        .map(|r| (r["employeeId"].clone(), r["accountName"].clone()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn three_colliding_people_get_three_distinct_names_in_one_run() {
    let env = setup("[]", &[]);
    env.write_hr(&[
        worker("E1", "John", "Smith"),
        worker("E2", "Jöhn", "Smith"),
        worker("E3", "John", "Smíth"),
    ]);
    env.ok(&["run", "full"]);
    assert_eq!(
        accounts(&env),
        pairs(&[("E1", "jsmith"), ("E2", "john.smith"), ("E3", "jsmith2")])
    );
    env.ok(&["check"]);
}

#[test]
fn a_chosen_value_is_sticky_when_the_name_changes_or_sync_runs_again() {
    let env = setup("[]", &[]);
    env.write_hr(&[worker("E1", "John", "Smith"), worker("E2", "John", "Smith")]);
    env.ok(&["run", "full"]);
    let before = accounts(&env);
    assert_eq!(before, pairs(&[("E1", "jsmith"), ("E2", "john.smith")]));

    // E1 leaves the collision: a regenerated value would now differ for E2.
    env.write_hr(&[worker("E1", "John", "Smyth"), worker("E2", "John", "Smith")]);
    env.ok(&["run", "full"]);
    assert_eq!(accounts(&env), before, "generated names never change");
    assert_eq!(env.app_row("jsmith")["displayName"], "John Smyth");
    assert!(env.preview().is_empty(), "nothing left to export");
}

#[test]
fn uniqueness_spans_the_connectors_named_in_unique_in_case_insensitively() {
    let env = setup(r#"["legacy"]"#, &["JSmith"]);
    env.write_hr(&[worker("E1", "John", "Smith")]);
    env.ok(&["run", "full"]);
    assert_eq!(accounts(&env), pairs(&[("E1", "john.smith")]));

    let unchecked = setup("[]", &["JSmith"]);
    unchecked.write_hr(&[worker("E1", "John", "Smith")]);
    unchecked.ok(&["run", "full"]);
    assert_eq!(
        accounts(&unchecked),
        pairs(&[("E1", "jsmith")]),
        "without unique_in the legacy connector is not consulted"
    );
}
