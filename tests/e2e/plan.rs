//! The what-if commands: `plan --rules NEW.toml` shows exactly what a rule
//! change would do, and `preview object` traces one object's sync; neither
//! writes the store.

use serde_json::{json, Value};

use crate::harness::{staff, Env, Setup};

/// What must not change when a what-if command runs: pending exports, run
/// history, and the store's invariants.
struct Untouched {
    preview: Vec<Value>,
    runs: usize,
}

impl Untouched {
    fn record(env: &Env) -> Untouched {
        Untouched {
            preview: env.preview(),
            runs: env.history().len(),
        }
    }

    fn check(&self, env: &Env) {
        assert_eq!(env.preview(), self.preview, "pending exports changed");
        assert_eq!(env.history().len(), self.runs, "the run history grew");
        env.ok(&["check"]);
    }
}

/// `staff()` exported by `run full` under `setup`.
fn exported(setup: &Setup) -> Env {
    let env = setup.env(&staff());
    env.ok(&["run", "full"]);
    env
}

/// The test configuration with one line of it replaced.
fn config_with(setup: &Setup, from: &str, to: &str) -> String {
    let text = setup.config();
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` is not one line of the config"
    );
    text.replace(from, to)
}

/// `(object, operation)` of each export change of a plan.
fn plan_operations(plan: &Value) -> Vec<(String, String)> {
    plan["exports"]
        .as_array()
        .expect("exports")
        .iter()
        .map(|e| {
            (
                e["object"].as_str().unwrap_or("?").to_owned(),
                e["operation"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

#[test]
fn plan_shows_exactly_the_effect_of_a_changed_flow() {
    let setup = Setup::default();
    let env = exported(&setup);
    assert!(env.preview().is_empty(), "in step after a full run");
    let before = Untouched::record(&env);
    env.write(
        "new.toml",
        &config_with(
            &setup,
            "displayName = \"displayName\"\n",
            "displayName = 'Upper(displayName)'\n",
        ),
    );

    let plan = env.json(&["plan", "--rules", "new.toml"]);

    let update = |account: &str, old: &str, new: &str| {
        json!({
            "connector": "app",
            "object": account,
            "object_type": "account",
            "operation": "update",
            "current_operation": "none",
            "dn": null,
            "new_dn": null,
            "current_new_dn": null,
            "attributes": [ { "name": "displayName", "old": old, "new": new } ]
        })
    };
    assert_eq!(
        plan,
        json!({
            "warnings": [],
            "metaverse": [],
            "exports": [
                update("e1", "Ada Lovelace", "ADA LOVELACE"),
                update("e2", "Grace Hopper", "GRACE HOPPER"),
                update("e3", "Alan Turing", "ALAN TURING"),
            ],
            "errors": [],
            "resolved_errors": []
        })
    );
    before.check(&env);

    let table =
        String::from_utf8_lossy(&env.ok(&["plan", "--rules", "new.toml"]).stdout).into_owned();
    assert!(
        table.contains("pending exports to app: 3 object(s) change (3 update)")
            && table.contains("GRACE HOPPER"),
        "{table}"
    );
    before.check(&env);
}

#[test]
fn plan_of_the_current_rules_changes_nothing() {
    let setup = Setup::default();
    let env = exported(&setup);
    env.write("same.toml", &setup.config());
    let out = env.ok(&["plan", "--rules", "same.toml"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("no changes"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn plan_with_a_changed_scope_shows_the_deletes_and_the_adds() {
    let setup = Setup {
        app_scope: r#"IsPresent(employeeId) && department == "Engineering""#,
        ..Setup::default()
    };
    let env = exported(&setup);
    assert_eq!(env.app_rows().len(), 2, "Ada and Grace are in Engineering");
    let before = Untouched::record(&env);
    env.write(
        "new.toml",
        &config_with(
            &setup,
            r#"department == "Engineering""#,
            r#"department == "Research""#,
        ),
    );

    let plan = env.json(&["plan", "--rules", "new.toml"]);

    assert_eq!(
        plan_operations(&plan),
        [
            ("e1".to_owned(), "delete".to_owned()),
            ("e2".to_owned(), "delete".to_owned()),
            ("e3".to_owned(), "add".to_owned()),
        ]
    );
    let add = &plan["exports"][2];
    let attribute = |name: &str| {
        add["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .map(|x| (x["old"].clone(), x["new"].clone()))
    };
    assert_eq!(attribute("accountName"), Some((Value::Null, json!("e3"))));
    assert_eq!(
        attribute("displayName"),
        Some((Value::Null, json!("Alan Turing")))
    );
    assert_eq!(
        attribute("department"),
        Some((Value::Null, json!("Research")))
    );
    assert!(
        plan["exports"][0]["attributes"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "a delete lists no attributes: {plan:#}"
    );
    assert_eq!(plan["metaverse"], json!([]), "scope is outbound only");
    before.check(&env);
}

#[test]
fn plan_warns_when_the_new_configuration_names_another_store() {
    let setup = Setup::default();
    let env = exported(&setup);
    env.write(
        "new.toml",
        &config_with(
            &setup,
            "path = \"state/mvsync.db\"",
            "path = \"elsewhere/mvsync.db\"",
        ),
    );
    let out = env.ok(&["plan", "--rules", "new.toml", "--format", "json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        plan["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("elsewhere/mvsync.db") && w.contains("current store")),
        "{plan:#}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning:"));
    assert!(
        !env.path("elsewhere").exists(),
        "the other store is never created"
    );
}

#[test]
fn plan_reports_a_broken_new_configuration_with_its_position() {
    let env = exported(&Setup::default());
    env.write("new.toml", "[store]\npath = 3\n");
    let out = env.expect(&["plan", "--rules", "new.toml"], 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("new.toml"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The one flow trace of `attribute` in a list of flow traces.
fn flow<'a>(flows: &'a Value, attribute: &str) -> &'a Value {
    let found: Vec<&Value> = flows
        .as_array()
        .expect("flows")
        .iter()
        .filter(|f| f["attribute"] == attribute)
        .collect();
    assert_eq!(found.len(), 1, "one flow to {attribute} in {flows:#}");
    found[0]
}

/// The outbound trace of one connector.
fn outbound<'a>(trace: &'a Value, connector: &str) -> &'a Value {
    trace["outbound"]
        .as_array()
        .and_then(|o| o.iter().find(|x| x["connector"] == connector))
        .unwrap_or_else(|| panic!("no outbound trace for {connector}: {trace:#}"))
}

#[test]
fn preview_object_traces_a_department_change_without_writing() {
    let env = exported(&Setup::default());
    let mut workers = staff();
    workers[2] = workers[2].clone().department("Sales");
    env.write_hr(&workers);
    env.ok(&["import", "hr"]);
    let before = Untouched::record(&env);
    let staged = env.show_cs("hr", "E3");

    let trace = env.json(&["preview", "object", "hr", "E3"]);

    assert_eq!(trace["pending_import"], "update");
    assert_eq!(
        trace["scope"],
        json!([{
            "rule": "hr-in",
            "scope": r#"workerType == "Employee" || workerType == "Contractor""#,
            "inputs": [ { "name": "workerType", "value": "Employee" } ],
            "in_scope": true,
            "error": null
        }])
    );
    assert_eq!(trace["join"], json!([]), "already linked: no join");
    assert!(trace["result"]
        .as_str()
        .is_some_and(|r| r.starts_with("stays linked")));
    let department = flow(&trace["flows"], "department");
    assert_eq!(
        department["inputs"],
        json!([{ "name": "department", "value": "Sales" }])
    );
    assert_eq!(department["output"], "Sales");
    assert_eq!(department["decision"], "wins (precedence 10)");
    assert_eq!(
        trace["metaverse"]["attributes"],
        json!([{ "name": "department", "old": "Research", "new": "Sales" }])
    );
    let app = outbound(&trace, "app");
    assert_eq!(app["action"], "update");
    assert_eq!(app["object"], "e3");
    assert_eq!(app["before"], Value::Null);
    assert_eq!(
        app["after"]["attributes"],
        json!([{ "name": "department", "op": "set", "old": "Research", "new": "Sales" }])
    );
    let exported_department = flow(&app["flows"], "department");
    assert_eq!(
        exported_department["inputs"],
        json!([{ "name": "department", "value": "Sales" }])
    );

    before.check(&env);
    assert_eq!(env.show_cs("hr", "E3"), staged, "the staged import is kept");

    let text =
        String::from_utf8_lossy(&env.ok(&["preview", "object", "hr", "E3"]).stdout).into_owned();
    assert!(
        text.contains("outbound to app: update (e3)") && text.contains("Sales"),
        "{text}"
    );
    // The plain forms still work beside the subcommand.
    env.ok(&["preview", "app"]);
    env.ok(&["preview", "--format", "json"]);
}

#[test]
fn preview_object_of_a_joiner_projects_and_provisions() {
    let env = exported(&Setup::default());
    let mut workers = staff();
    workers.push(crate::harness::worker("E4", "Katherine", "Johnson").manager("E2"));
    env.write_hr(&workers);
    env.ok(&["import", "hr"]);
    let before = Untouched::record(&env);

    let trace = env.json(&["preview", "object", "hr", "E4"]);

    assert_eq!(trace["pending_import"], "add");
    assert_eq!(trace["join"][0]["value"], "E4");
    assert_eq!(trace["join"][0]["outcome"], "no candidate");
    assert!(
        trace["result"]
            .as_str()
            .is_some_and(|r| r.starts_with("projects a new metaverse object")),
        "{trace:#}"
    );
    let app = outbound(&trace, "app");
    assert_eq!(app["action"], "provision");
    assert_eq!(app["object"], "e4");
    assert_eq!(app["after"]["operation"], "add");
    before.check(&env);
    env.expect(&["preview", "object", "hr", "E404"], 1);
}

#[test]
fn preview_object_shows_the_join_and_the_precedence_against_another_source() {
    let setup = Setup {
        extra: r#"
[connectors.phonebook]
type = "csv"
path = "data/phonebook.csv"
object_type = "entry"
anchor = "employeeId"

[[rules]]
name = "phonebook-in"
direction = "inbound"
connector = "phonebook"
mv_object_type = "person"
precedence = 5
join = [ { cs = "employeeId", mv = "employeeId" } ]
[rules.flows]
displayName = "displayName"
"#,
        ..Setup::default()
    };
    let env = exported(&setup);
    env.write("data/phonebook.csv", "employeeId,displayName\nE1,Ada L.\n");
    env.ok(&["import", "phonebook"]);
    let before = Untouched::record(&env);

    let trace = env.json(&["preview", "object", "phonebook", "E1"]);

    let join = &trace["join"][0];
    assert_eq!(join["value"], "E1");
    let mv = join["candidates"][0]["mv"].as_u64().expect("a candidate");
    assert_eq!(join["outcome"], format!("joins mv:{mv}"));
    assert_eq!(trace["link_after"], json!({ "mv": mv, "kind": "joined" }));
    let display = flow(&trace["flows"], "displayName");
    assert_eq!(display["output"], "Ada L.");
    assert_eq!(display["decision"], "wins (precedence 5)");
    assert_eq!(
        display["others"],
        json!([{ "connector": "hr", "rule": "hr-in", "precedence": 10, "value": "Ada Lovelace" }])
    );
    assert_eq!(
        outbound(&trace, "app")["after"]["attributes"],
        json!([{ "name": "displayName", "op": "set", "old": "Ada Lovelace", "new": "Ada L." }])
    );
    before.check(&env);
}
