//! Sync semantics seen from the CLI: precedence and recall between two
//! sources, an ambiguous join that joins nothing, and a re-sync that stages
//! nothing.

use serde_json::json;

use crate::harness::{operations, staff, Env, Setup};

/// A self-service phone book that beats HR (precedence 10) for displayName.
const PHONEBOOK: &str = r#"
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
"#;

/// Badges joined to people by personal email; never projected.
const BADGES: &str = r#"
[connectors.badge]
type = "csv"
path = "data/badge.csv"
object_type = "badge"
anchor = "badgeId"

[[rules]]
name = "badge-in"
direction = "inbound"
connector = "badge"
mv_object_type = "person"
precedence = 20
join = [ { cs = "email", mv = "personalEmail" } ]
[rules.flows]
badgeId = "badgeId"
"#;

/// Imports, syncs and exports the phone book, then returns the exported display names of e1 and e2.
fn phonebook_round(env: &Env, phonebook: &str) -> (String, String) {
    env.write("data/phonebook.csv", phonebook);
    env.ok(&["import", "phonebook"]);
    env.ok(&["sync", "phonebook"]);
    env.ok(&["export", "app"]);
    (
        env.app_row("e1")["displayName"].clone(),
        env.app_row("e2")["displayName"].clone(),
    )
}

#[test]
fn precedence_picks_the_lowest_and_recalls_the_next_source() {
    let env = Setup {
        extra: PHONEBOOK,
        ..Setup::default()
    }
    .env(&staff());
    env.ok(&["run", "full"]);
    assert_eq!(env.app_row("e1")["displayName"], "Ada Lovelace");

    let both = "employeeId,displayName\nE1,Countess Ada\nE2,Amazing Grace\n";
    assert_eq!(
        phonebook_round(&env, both),
        ("Countess Ada".into(), "Amazing Grace".into()),
        "precedence 5 beats 10"
    );

    // The winner's row disappears: HR's value flows again.
    env.write(
        "data/phonebook.csv",
        "employeeId,displayName\nE2,Amazing Grace\n",
    );
    env.ok(&["import", "phonebook"]);
    env.ok(&["sync", "phonebook"]);
    let preview = env.preview();
    assert_eq!(
        operations(&preview),
        [("e1".to_owned(), "update".to_owned())]
    );
    assert_eq!(
        preview[0]["attributes"],
        json!([{ "name": "displayName", "op": "set", "old": "Countess Ada", "new": "Ada Lovelace" }])
    );
    env.ok(&["export", "app"]);
    assert_eq!(
        env.app_row("e1")["displayName"],
        "Ada Lovelace",
        "recall after the row is deleted"
    );

    // The winner's cell is emptied: the same.
    let emptied = "employeeId,displayName\nE2,\n";
    assert_eq!(
        phonebook_round(&env, emptied),
        ("Ada Lovelace".into(), "Grace Hopper".into()),
        "recall after the cell is emptied"
    );
}

#[test]
fn ambiguous_join_joins_nothing_and_reports_it() {
    let mut workers = staff();
    // Two people share a family mailbox.
    workers[1] = workers[1].clone().email("family@example.org");
    workers[2] = workers[2].clone().email("family@example.org");
    let env = Setup {
        extra: BADGES,
        ..Setup::default()
    }
    .env(&workers);
    env.ok(&["run", "full"]);
    env.write(
        "data/badge.csv",
        "badgeId,email\nB1,family@example.org\nB2,ada@example.org\n",
    );
    env.ok(&["import", "badge"]);

    let out = env.expect(&["sync", "badge"], 3);
    assert!(
        crate::harness::stdout(&out).contains("ambiguous-join B1"),
        "{}",
        crate::harness::describe(&out)
    );

    let errors = env.run_errors(&env.last_run());
    let codes: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap_or("?"),
                e["identifier"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(codes, [("ambiguous-join", "B1")]);
    let b1 = env.show_cs("badge", "B1");
    assert_eq!(b1["link"], json!(null), "nothing joined: {b1}");
    assert_eq!(
        b1["error"][0], "ambiguous-join",
        "the error is on the object: {b1}"
    );
    assert!(
        env.show_cs("badge", "B2")["link"].is_array(),
        "the unambiguous badge joins"
    );
}

#[test]
fn second_full_sync_stages_nothing() {
    let env = Setup::default().env(&staff());
    env.ok(&["run", "full"]);
    env.ok(&["sync", "hr", "--full"]);
    assert_eq!(env.preview(), Vec::<serde_json::Value>::new());
    let run = env.last_run();
    assert_eq!(run["step"], "FullSync");
    assert_eq!(run["counters"]["exports_staged"], 0, "{run}");
    assert_eq!(run["counters"]["flow_updates"], 0, "{run}");
}
