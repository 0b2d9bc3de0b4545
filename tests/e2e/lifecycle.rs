//! Joiner, mover, leaver, rehire: an HR change, driven through import, sync,
//! preview and export, lands in the exported account list as exactly that
//! change.

use serde_json::json;

use crate::harness::{cells, changed_cells, operations, staff, worker, Env, Setup, Worker};

/// Scope that drops leavers from the app, deleting their account.
const ACTIVE_ONLY: Setup = Setup {
    threshold: 500,
    hr_scope: r#"workerType == "Employee" || workerType == "Contractor""#,
    app_scope: "IsPresent(employeeId) && active",
    deprovision: "delete",
    extra: "",
};

/// `staff()` with one worker changed.
fn staff_with(id: &str, change: impl Fn(Worker) -> Worker) -> Vec<Worker> {
    staff()
        .into_iter()
        .map(|w| if w.id == id { change(w) } else { w })
        .collect()
}

/// `staff()` exported by `run full`.
fn exported(setup: &Setup) -> Env {
    let env = setup.env(&staff());
    env.ok(&["run", "full"]);
    assert_eq!(env.app_rows().len(), 3, "every worker has an account");
    env
}

/// Imports and syncs HR (full), leaving the exports pending.
fn import_and_sync(env: &Env, workers: &[Worker]) {
    env.write_hr(workers);
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
}

/// The number of exported rows for an account.
fn rows_for(env: &Env, account: &str) -> usize {
    env.app_rows()
        .iter()
        .filter(|r| r["accountName"] == account)
        .count()
}

/// The connector-space id of an account: the same object across runs.
fn app_object(env: &Env, account: &str) -> u64 {
    env.show_cs("app", account)["id"]
        .as_u64()
        .expect("a connector-space id")
}

#[test]
fn joiner_is_provisioned_and_exported() {
    let env = exported(&Setup::default());
    let before = env.app_rows();
    let mut workers = staff();
    workers.push(worker("E4", "Katherine", "Johnson").manager("E2"));
    import_and_sync(&env, &workers);
    assert_eq!(
        operations(&env.preview()),
        [("e4".to_owned(), "add".to_owned())]
    );

    env.ok(&["run", "full"]);

    assert_eq!(
        changed_cells(&before, &env.app_rows(), "accountName"),
        cells(&[("e4", "*", "absent", "present")])
    );
    let row = env.app_row("e4");
    assert_eq!(
        (
            row["displayName"].as_str(),
            row["department"].as_str(),
            row["manager"].as_str(),
            row["enabled"].as_str()
        ),
        ("Katherine Johnson", "Engineering", "e2", "yes")
    );
}

#[test]
fn mover_updates_only_the_changed_attribute() {
    let env = exported(&Setup::default());
    let before = env.app_rows();
    import_and_sync(&env, &staff_with("E3", |w| w.department("Cryptanalysis")));

    let preview = env.preview();
    assert_eq!(
        operations(&preview),
        [("e3".to_owned(), "update".to_owned())]
    );
    assert_eq!(
        preview[0]["attributes"],
        json!([{ "name": "department", "op": "set", "old": "Research", "new": "Cryptanalysis" }])
    );

    env.ok(&["export", "app"]);
    assert_eq!(
        changed_cells(&before, &env.app_rows(), "accountName"),
        cells(&[("e3", "department", "Research", "Cryptanalysis")])
    );
}

#[test]
fn leaver_is_disabled_by_the_configured_flow() {
    let env = exported(&Setup::default());
    let before = env.app_rows();
    env.write_hr(&staff_with("E3", Worker::terminated));
    env.ok(&["run", "full"]);
    assert_eq!(
        changed_cells(&before, &env.app_rows(), "accountName"),
        cells(&[("e3", "enabled", "yes", "no")])
    );
}

#[test]
fn leaver_out_of_scope_is_deleted() {
    let env = exported(&ACTIVE_ONLY);
    let before = env.app_rows();
    import_and_sync(&env, &staff_with("E3", Worker::terminated));
    assert_eq!(
        operations(&env.preview()),
        [("e3".to_owned(), "delete".to_owned())]
    );
    env.ok(&["run", "full"]);
    assert_eq!(
        changed_cells(&before, &env.app_rows(), "accountName"),
        cells(&[("e3", "*", "present", "absent")])
    );
}

#[test]
fn rehire_after_termination_reenables_the_same_account() {
    let env = exported(&Setup::default());
    let before = env.app_rows();
    let account = app_object(&env, "e3");
    env.write_hr(&staff_with("E3", Worker::terminated));
    env.ok(&["run", "full"]);
    assert_eq!(env.app_row("e3")["enabled"], "no");

    env.write_hr(&staff());
    env.ok(&["run", "full"]);
    assert_eq!(rows_for(&env, "e3"), 1);
    assert_eq!(
        changed_cells(&before, &env.app_rows(), "accountName"),
        cells(&[])
    );
    assert_eq!(
        app_object(&env, "e3"),
        account,
        "the rehire reuses the connector-space object"
    );
}

#[test]
fn rehire_after_deprovisioning_recreates_one_account() {
    let env = exported(&ACTIVE_ONLY);
    let before = env.app_rows();
    env.write_hr(&staff_with("E3", Worker::terminated));
    env.ok(&["run", "full"]);
    assert_eq!(rows_for(&env, "e3"), 0, "the leaver's account is deleted");

    env.write_hr(&staff());
    env.ok(&["run", "full"]);
    assert_eq!(rows_for(&env, "e3"), 1);
    assert_eq!(
        changed_cells(&before, &env.app_rows(), "accountName"),
        cells(&[])
    );
    env.ok(&["check"]);
}

#[test]
fn rehire_after_removal_adopts_the_disconnected_account() {
    let env = exported(&Setup {
        deprovision: "disconnect",
        ..Setup::default()
    });
    let before = env.app_rows();
    let account = app_object(&env, "e3");
    let without_alan: Vec<Worker> = staff().into_iter().filter(|w| w.id != "E3").collect();
    env.write_hr(&without_alan);
    env.ok(&["run", "full"]);
    assert_eq!(rows_for(&env, "e3"), 1, "disconnect keeps the account");
    assert_eq!(
        env.show_cs("app", "e3")["link"],
        json!(null),
        "the account is a disconnector"
    );

    env.write_hr(&staff());
    env.ok(&["run", "full"]);
    assert_eq!(
        rows_for(&env, "e3"),
        1,
        "the rehire gets the old account, not a second one"
    );
    assert_eq!(
        changed_cells(&before, &env.app_rows(), "accountName"),
        cells(&[])
    );
    let cs = env.show_cs("app", "e3");
    assert_eq!(
        cs["id"].as_u64(),
        Some(account),
        "the connector-space object is adopted, not recreated"
    );
    assert!(
        cs["link"].is_array(),
        "the adopted account is linked again: {cs}"
    );
    env.ok(&["check"]);
}

#[test]
fn show_mv_gives_references_as_the_metaverse_objects_they_name() {
    let env = Setup::default().env(&staff());
    let mut workers = staff();
    workers.push(worker("E4", "Katherine", "Johnson").manager("E2"));
    env.write_hr(&workers);
    env.ok(&["run", "full"]);
    let mv_of = |id: &str| {
        env.show_cs("hr", id)["link"][0]
            .as_u64()
            .unwrap_or_else(|| panic!("{id} is linked"))
    };
    let (katherine, manager) = (mv_of("E4"), mv_of("E2"));
    let view = env.json(&["show", "mv", &katherine.to_string()]);
    let attribute = view["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .find(|a| a["name"] == "manager")
        .cloned()
        .expect("a manager attribute");
    let address = format!("mv:{manager}");
    assert_eq!(attribute["value"], json!(address));
    assert_eq!(attribute["offers"][0]["value"], json!(address));
    // The address is the one `show mv` takes.
    let shown = env.json(&["show", "mv", &manager.to_string()]);
    assert_eq!(shown["id"], json!(manager));
}

#[test]
fn a_preview_of_many_changes_streams_tables_of_a_thousand_and_one_json_array() {
    let env = crate::harness::Setup::default().env(&crate::harness::many_workers(2_500));
    env.ok(&["import", "hr"]);
    env.ok(&["sync", "hr"]);
    let table = crate::harness::stdout(&env.ok(&["preview"]));
    assert_eq!(
        table.matches('┌').count(),
        3,
        "2,500 changes in tables of a thousand"
    );
    assert!(
        table.ends_with("\n2500 pending: 2500 add\n"),
        "one summary at the end: {}",
        &table[table.len().saturating_sub(200)..]
    );
    let json = env.preview();
    assert_eq!(json.len(), 2_500);
    assert!(json.iter().all(|c| c["operation"] == "add"));
    let objects: Vec<&str> = json.iter().filter_map(|c| c["object"].as_str()).collect();
    let mut sorted = objects.clone();
    sorted.sort_unstable();
    assert_eq!(objects, sorted, "ordered by object, as before");
}
