//! Tests of the SQL connector against real SQLite databases in a temporary
//! folder (PostgreSQL is tested through the binary by the end-to-end suite,
//! which starts a server): configuration, full and delta import, export.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use engine::{
    AttrOp, Connector, ConnectorError, ConnectorErrorKind, ExportChange, ExportOp, ExportResult,
    FailureKind, ImportEvent, ImportItem, ImportedObject,
};
use futures::StreamExt;
use rules::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use crate::ConnectorConfig;

// ---------------------------------------------------------------- helpers

/// A database file `hr.db` in `dir`, set up by `script`.
async fn database(dir: &Path, script: &str) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("hr.db"))
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    sqlx::raw_sql(script).execute(&pool).await.unwrap();
    pool
}

async fn run(pool: &SqlitePool, script: &str) {
    sqlx::raw_sql(script).execute(pool).await.unwrap();
}

fn connector(dir: &Path, keys: &str) -> Box<dyn Connector> {
    let text = format!("type = \"sql\"\nurl = \"sqlite:hr.db\"\nobject_type = \"worker\"\n{keys}");
    let config: ConnectorConfig = toml::from_str(&text).unwrap();
    config.build(dir).unwrap()
}

const WORKERS: &str = "
CREATE TABLE workers (company TEXT NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL,
                      mail TEXT, manager INTEGER, version INTEGER NOT NULL DEFAULT 0,
                      PRIMARY KEY (company, id));
CREATE TABLE worker_values (company TEXT NOT NULL, id INTEGER NOT NULL, attribute TEXT NOT NULL, value TEXT NOT NULL);
INSERT INTO workers VALUES ('ACME', 1, 'Ann', 'ann@x', NULL, 1), ('ACME', 2, 'Bob', NULL, 1, 2), ('INI|T', 1, 'Cy', NULL, NULL, 3);
INSERT INTO worker_values VALUES ('ACME', 1, 'groups', 'staff'), ('ACME', 1, 'groups', 'admins'), ('ACME', 2, 'groups', 'staff');
";

const COMPOSITE: &str = "table = \"workers\"\nanchor = [\"company\", \"id\"]\nmulti_valued = { table = \"worker_values\", attributes = [\"groups\"] }\n";

/// Every event of a stream; panics on a fatal error.
async fn events(stream: engine::ImportStream) -> Vec<ImportEvent> {
    stream
        .map(|item| match item.unwrap() {
            ImportItem::Event(e) => e,
            ImportItem::Bad(b) => panic!("bad item: {b}"),
        })
        .collect()
        .await
}

async fn fatal(stream: engine::ImportStream) -> ConnectorError {
    let items: Vec<_> = stream.collect().await;
    items
        .into_iter()
        .find_map(Result::err)
        .expect("a fatal error")
}

fn objects(events: &[ImportEvent]) -> Vec<&ImportedObject> {
    events
        .iter()
        .filter_map(|e| match e {
            ImportEvent::Object(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn attr<'a>(o: &'a ImportedObject, name: &str) -> Option<&'a Value> {
    o.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn last_watermark(events: &[ImportEvent]) -> Option<String> {
    events.iter().rev().find_map(|e| match e {
        ImportEvent::Watermark(w) => Some(w.clone()),
        _ => None,
    })
}

fn change(id: u64, anchor: Option<&str>, op: ExportOp) -> ExportChange {
    ExportChange {
        id,
        object_type: "worker".into(),
        anchor: anchor.map(str::to_owned),
        dn: None,
        op,
    }
}

fn add(id: u64, attrs: &[(&str, Value)]) -> ExportChange {
    change(
        id,
        None,
        ExportOp::Add {
            attributes: attrs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect(),
        },
    )
}

fn update(id: u64, anchor: &str, changes: &[(&str, AttrOp)]) -> ExportChange {
    change(
        id,
        Some(anchor),
        ExportOp::Update {
            new_dn: None,
            changes: changes
                .iter()
                .map(|(n, c)| ((*n).to_owned(), c.clone()))
                .collect(),
        },
    )
}

fn outcome(results: &[ExportResult], id: u64) -> &Result<engine::Applied, engine::ExportFailure> {
    &results.iter().find(|r| r.id == id).unwrap().outcome
}

// ---------------------------------------------------------------- import

#[tokio::test]
async fn full_import_reads_typed_columns_composite_keys_and_child_values() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path(), WORKERS).await;
    let c = connector(dir.path(), &format!("{COMPOSITE}references = {{}}\n"));
    assert_eq!(
        c.info().object_types[0].anchor_attribute,
        None,
        "a composite key is the connector's"
    );
    let events = events(c.full_import().await.unwrap()).await;
    let objects = objects(&events);
    let anchors: Vec<&str> = objects.iter().map(|o| o.anchor.as_str()).collect();
    assert_eq!(anchors, ["ACME|1", "ACME|2", "INI\\|T|1"]);
    let ann = objects[0];
    assert_eq!(attr(ann, "id"), Some(&Value::Int(1)));
    assert_eq!(attr(ann, "name"), Some(&Value::str("Ann")));
    assert_eq!(attr(ann, "manager"), None, "nulls are omitted");
    let mut groups = attr(ann, "groups").unwrap().items().to_vec();
    groups.sort();
    assert_eq!(groups, [Value::str("admins"), Value::str("staff")]);
    assert_eq!(attr(objects[2], "groups"), None);
    assert_eq!(
        last_watermark(&events),
        None,
        "no delta configured, no watermark"
    );
}

#[tokio::test]
async fn a_reference_column_holds_the_other_rows_key_as_text() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path(), WORKERS).await;
    let c = connector(dir.path(), "table = \"workers\"\nanchor = \"id\"\nquery = \"SELECT * FROM workers WHERE company = 'ACME'\"\nreferences = { manager = \"id\" }\n");
    let events = events(c.full_import().await.unwrap()).await;
    let bob = objects(&events)
        .into_iter()
        .find(|o| o.anchor == "2")
        .unwrap();
    assert_eq!(attr(bob, "manager"), Some(&Value::str("1")));
    assert_eq!(
        c.info().object_types[0].anchor_attribute.as_deref(),
        Some("id")
    );
}

/// The watermark of a value and the anchor of the row that held it.
fn column_mark(kind: &str, anchor: &str, value: &str) -> String {
    let hex: String = anchor.bytes().map(|b| format!("{b:02x}")).collect();
    format!("sql1:column:{kind}:{hex}:{value}")
}

#[tokio::test]
async fn watermark_delta_reads_rows_above_the_mark_and_refuses_a_column_that_moved_back() {
    let dir = tempfile::tempdir().unwrap();
    let pool = database(dir.path(), WORKERS).await;
    let c = connector(
        dir.path(),
        &format!("{COMPOSITE}delta = {{ strategy = \"watermark\", column = \"version\" }}\n"),
    );
    let full = events(c.full_import().await.unwrap()).await;
    let mark = last_watermark(&full).unwrap();
    assert_eq!(mark, column_mark("int", "INI\\|T|1", "3"));

    run(
        &pool,
        "UPDATE workers SET name = 'Bobby', version = 4 WHERE id = 2 AND company = 'ACME';
         INSERT INTO workers VALUES ('ACME', 3, 'Dee', NULL, 1, 5);",
    )
    .await;
    let delta = events(c.delta_import(Some(&mark)).await.unwrap()).await;
    let names: Vec<_> = objects(&delta)
        .iter()
        .map(|o| attr(o, "name").unwrap().to_string())
        .collect();
    assert_eq!(names, ["Bobby", "Dee"]);
    let mark = last_watermark(&delta).unwrap();
    assert_eq!(mark, column_mark("int", "ACME|3", "5"));

    // Nothing new: nothing staged, the mark stays.
    let again = events(c.delta_import(Some(&mark)).await.unwrap()).await;
    assert!(objects(&again).is_empty());
    assert_eq!(last_watermark(&again), Some(mark.clone()));

    // The row that held the mark is deleted: the highest value is now
    // lower, but nothing moved back.
    run(
        &pool,
        "DELETE FROM workers WHERE id = 3 AND company = 'ACME';",
    )
    .await;
    let after_delete = events(c.delta_import(Some(&mark)).await.unwrap()).await;
    assert!(objects(&after_delete).is_empty());

    // A restored backup: the row that held the mark holds an older value.
    run(
        &pool,
        "INSERT INTO workers VALUES ('ACME', 3, 'Dee', NULL, 1, 2);",
    )
    .await;
    let e = match c.delta_import(Some(&mark)).await {
        Err(e) => e,
        Ok(s) => fatal(s).await,
    };
    assert_eq!(e.kind, ConnectorErrorKind::WatermarkExpired);
    assert!(
        e.message.contains("moved backwards")
            && e.message.contains("now holds 2")
            && e.message.contains("full import"),
        "{e}"
    );

    // A mark of the other strategy.
    let e = c.delta_import(Some("sql1:log:3")).await.err().unwrap();
    assert_eq!(e.kind, ConnectorErrorKind::WatermarkExpired);
}

#[tokio::test]
async fn an_overlap_reads_a_late_commit_again_and_never_moves_the_mark_back() {
    let dir = tempfile::tempdir().unwrap();
    let pool = database(dir.path(), WORKERS).await;
    let keys = |overlap: i64| {
        format!("{COMPOSITE}delta = {{ strategy = \"watermark\", column = \"version\", overlap = {overlap} }}\n")
    };
    let mark = column_mark("int", "INI\\|T|1", "3");
    // A row committed late with version 2, below the mark 3.
    run(
        &pool,
        "INSERT INTO workers VALUES ('ACME', 7, 'Late', NULL, NULL, 2);",
    )
    .await;
    let without = events(
        connector(dir.path(), &keys(0))
            .delta_import(Some(&mark))
            .await
            .unwrap(),
    )
    .await;
    assert!(
        objects(&without).is_empty(),
        "without an overlap the late row is missed"
    );
    let with = events(
        connector(dir.path(), &keys(2))
            .delta_import(Some(&mark))
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<String> = objects(&with)
        .iter()
        .map(|o| attr(o, "name").unwrap().to_string())
        .collect();
    assert!(names.contains(&"Late".to_owned()), "{names:?}");
    assert_eq!(
        last_watermark(&with),
        Some(mark),
        "the mark does not move back"
    );
}

#[tokio::test]
async fn intermediate_watermarks_never_fall_between_rows_that_share_a_value() {
    let dir = tempfile::tempdir().unwrap();
    database(
        dir.path(),
        "CREATE TABLE workers (company TEXT, id INTEGER, name TEXT, version INTEGER);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 3500)
         INSERT INTO workers SELECT 'ACME', i, 'W' || i, i / 7 FROM s;
         INSERT INTO workers VALUES ('ACME', 9999, 'no version', NULL);",
    )
    .await;
    let c = connector(
        dir.path(),
        "table = \"workers\"\nanchor = [\"company\", \"id\"]\ndelta = { strategy = \"watermark\", column = \"version\" }\n",
    );
    let delta = events(c.delta_import(None).await.unwrap()).await;
    let mut seen_max = -1;
    let mut marks = 0;
    for (i, event) in delta.iter().enumerate() {
        match event {
            ImportEvent::Object(o) => {
                let Some(Value::Int(v)) = attr(o, "version") else {
                    panic!("a row without a version was read by a delta: {o:?}");
                };
                seen_max = seen_max.max(*v);
            }
            ImportEvent::Watermark(w) => {
                marks += 1;
                let value: i64 = w.rsplit(':').next().unwrap().parse().unwrap();
                assert_eq!(value, seen_max, "a mark names the last value read");
                // Every row after the mark is above it.
                for later in &delta[i + 1..] {
                    if let ImportEvent::Object(o) = later {
                        assert!(
                            attr(o, "version") > Some(&Value::Int(value)),
                            "{o:?} after {w}"
                        );
                    }
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        marks >= 3,
        "intermediate marks every 1,000 objects: {marks}"
    );
    assert_eq!(objects(&delta).len(), 3500);
}

#[tokio::test]
async fn change_log_delta_sees_inserts_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let pool = database(
        dir.path(),
        &format!(
            "{WORKERS}
        CREATE TABLE worker_changes (seq INTEGER PRIMARY KEY, company TEXT, id INTEGER, op TEXT);"
        ),
    )
    .await;
    let c = connector(dir.path(), &format!("{COMPOSITE}delta = {{ strategy = \"change-log\", table = \"worker_changes\", operation = \"op\" }}\n"));
    let full = events(c.full_import().await.unwrap()).await;
    assert_eq!(last_watermark(&full).as_deref(), Some("sql1:log:none"));

    run(
        &pool,
        "
        INSERT INTO workers VALUES ('ACME', 3, 'Dee', NULL, 1, 0);
        INSERT INTO worker_values VALUES ('ACME', 3, 'groups', 'staff');
        INSERT INTO worker_changes (company, id, op) VALUES ('ACME', 3, 'insert');
        UPDATE workers SET mail = 'bob@x' WHERE id = 2;
        INSERT INTO worker_changes (company, id, op) VALUES ('ACME', 2, 'update');
        DELETE FROM workers WHERE company = 'INI|T';
        INSERT INTO worker_changes (company, id, op) VALUES ('INI|T', 1, 'delete');
        INSERT INTO worker_changes (company, id, op) VALUES ('ACME', 9, 'update');
    ",
    )
    .await;
    let delta = events(c.delta_import(Some("sql1:log:none")).await.unwrap()).await;
    let summary: Vec<String> = delta
        .iter()
        .map(|e| match e {
            ImportEvent::Object(o) => format!(
                "object {} {:?}",
                o.anchor,
                attr(o, "groups").map(Value::to_string)
            ),
            ImportEvent::Delete { anchor } => format!("delete {anchor}"),
            ImportEvent::Watermark(w) => w.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "object ACME|3 Some(\"staff\")",
            "object ACME|2 Some(\"staff\")",
            "delete INI\\|T|1",
            // Updated, then gone before the import: a delete.
            "delete ACME|9",
            "sql1:log:4",
        ]
    );

    // A log purged of what was imported is not an error.
    run(&pool, "DELETE FROM worker_changes;").await;
    let purged = events(c.delta_import(Some("sql1:log:4")).await.unwrap()).await;
    assert_eq!(purged, [ImportEvent::Watermark("sql1:log:4".into())]);

    // A recreated log is below the mark: a full import is needed.
    run(
        &pool,
        "INSERT INTO worker_changes (seq, company, id, op) VALUES (1, 'ACME', 1, 'update');",
    )
    .await;
    let e = c.delta_import(Some("sql1:log:4")).await.err().unwrap();
    assert_eq!(e.kind, ConnectorErrorKind::WatermarkExpired);
    assert!(e.message.contains("worker_changes"), "{e}");
}

#[tokio::test]
async fn an_unknown_change_log_operation_is_a_bad_item_not_the_end_of_the_import() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path(), &format!("{WORKERS}
        CREATE TABLE worker_changes (seq INTEGER PRIMARY KEY, company TEXT, id INTEGER, operation TEXT);
        INSERT INTO worker_changes (company, id, operation) VALUES ('ACME', 1, 'truncate'), ('ACME', 2, 'U');")).await;
    let c = connector(
        dir.path(),
        &format!(
            "{COMPOSITE}delta = {{ strategy = \"change-log\", table = \"worker_changes\" }}\n"
        ),
    );
    let items: Vec<_> = c.delta_import(None).await.unwrap().collect().await;
    let bad: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            Ok(ImportItem::Bad(b)) => Some(b.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(bad.len(), 1, "{items:?}");
    assert!(
        bad[0].contains("worker_changes sequence 1") && bad[0].contains("\"truncate\""),
        "{}",
        bad[0]
    );
    assert!(items.iter().any(
        |i| matches!(i, Ok(ImportItem::Event(ImportEvent::Object(o))) if o.anchor == "ACME|2")
    ));
}

#[tokio::test]
async fn a_missing_database_file_is_unavailable_not_a_new_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), "table = \"workers\"\nanchor = \"id\"\n");
    let e = c.full_import().await.err().unwrap();
    assert_eq!(e.kind, ConnectorErrorKind::Unavailable);
    assert!(e.message.contains("no SQLite database"), "{e}");
    assert!(!dir.path().join("hr.db").exists());
}

#[tokio::test]
async fn a_column_of_a_missing_table_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path(), WORKERS).await;
    let c = connector(dir.path(), "table = \"employees\"\nanchor = \"id\"\n");
    let e = match c.full_import().await {
        Err(e) => e,
        Ok(s) => fatal(s).await,
    };
    assert!(e.message.contains("no such table: employees"), "{e}");
    assert_eq!(e.kind, ConnectorErrorKind::Configuration);
}

// ---------------------------------------------------------------- export

#[tokio::test]
async fn export_commits_the_batch_except_the_change_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let pool = database(dir.path(), WORKERS).await;
    let c = connector(dir.path(), COMPOSITE);
    let batch = vec![
        add(
            1,
            &[
                ("company", Value::str("ACME")),
                ("id", Value::Int(3)),
                ("name", Value::str("Dee")),
                ("groups", Value::list([Value::str("a"), Value::str("b")])),
            ],
        ),
        // NOT NULL name: refused by the database's rules.
        add(2, &[("company", Value::str("ACME")), ("id", Value::Int(4))]),
        // The key exists: already there.
        add(
            3,
            &[
                ("company", Value::str("ACME")),
                ("id", Value::Int(1)),
                ("name", Value::str("Ann")),
            ],
        ),
        update(
            4,
            "ACME|2",
            &[
                ("mail", AttrOp::Replace(Value::str("bob@x"))),
                ("groups", AttrOp::Add(vec![Value::str("admins")])),
            ],
        ),
        update(
            5,
            "ACME|1",
            &[
                ("mail", AttrOp::Clear),
                ("groups", AttrOp::Remove(vec![Value::str("admins")])),
            ],
        ),
        change(6, Some("INI\\|T|1"), ExportOp::Delete),
        change(7, Some("ACME|99"), ExportOp::Delete),
        update(8, "ACME|98", &[("mail", AttrOp::Replace(Value::str("x")))]),
    ];
    let report = c.export(batch).await.unwrap();
    assert!(report.interrupted.is_none());
    let r = &report.results;
    assert_eq!(
        outcome(r, 1).as_ref().unwrap().anchor.as_deref(),
        Some("ACME|3")
    );
    let f = outcome(r, 2).as_ref().unwrap_err();
    assert_eq!(f.kind, FailureKind::RejectedByPolicy);
    assert_eq!(f.code.as_deref(), Some("SQLITE 1299"), "{f:?}");
    assert!(f.message.contains("NOT NULL"), "{f:?}");
    assert_eq!(
        outcome(r, 3).as_ref().unwrap_err().kind,
        FailureKind::AlreadyExists
    );
    assert!(outcome(r, 4).is_ok() && outcome(r, 5).is_ok() && outcome(r, 6).is_ok());
    assert_eq!(
        outcome(r, 7).as_ref().unwrap_err().kind,
        FailureKind::NotFound
    );
    assert_eq!(
        outcome(r, 8).as_ref().unwrap_err().kind,
        FailureKind::NotFound
    );

    let rows: Vec<(String, i64, String, Option<String>)> =
        sqlx::query_as("SELECT company, id, name, mail FROM workers ORDER BY company, id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("ACME".into(), 1, "Ann".into(), None),
            ("ACME".into(), 2, "Bob".into(), Some("bob@x".into())),
            ("ACME".into(), 3, "Dee".into(), None),
        ]
    );
    let values: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, value FROM worker_values WHERE attribute = 'groups' ORDER BY id, value",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        values,
        [
            (1, "staff".into()),
            (2, "admins".into()),
            (2, "staff".into()),
            (3, "a".into()),
            (3, "b".into())
        ]
    );
}

#[tokio::test]
async fn a_unique_column_other_than_the_key_refuses_an_add_instead_of_adopting() {
    let dir = tempfile::tempdir().unwrap();
    let pool = database(
        dir.path(),
        "CREATE TABLE accounts (account TEXT PRIMARY KEY, mail TEXT UNIQUE, active BOOLEAN, number INTEGER);
         INSERT INTO accounts VALUES ('ann', 'ann@x', 1, 1);",
    )
    .await;
    let c = connector(dir.path(), "table = \"accounts\"\nanchor = \"account\"\n");
    let report = c
        .export(vec![
            add(
                1,
                &[
                    ("account", Value::str("bob")),
                    ("mail", Value::str("ann@x")),
                ],
            ),
            add(
                2,
                &[
                    ("account", Value::str("ann")),
                    ("mail", Value::str("other@x")),
                ],
            ),
            add(
                3,
                &[
                    ("account", Value::str("cy")),
                    ("active", Value::str("false")),
                    ("number", Value::str("007")),
                ],
            ),
        ])
        .await
        .unwrap();
    let f = outcome(&report.results, 1).as_ref().unwrap_err();
    assert_eq!(
        f.kind,
        FailureKind::RejectedByPolicy,
        "another row's mail: {f:?}"
    );
    assert_eq!(f.existing_anchor, None);
    let f = outcome(&report.results, 2).as_ref().unwrap_err();
    assert_eq!(f.kind, FailureKind::AlreadyExists, "{f:?}");
    assert_eq!(f.existing_anchor.as_deref(), Some("ann"));
    assert!(outcome(&report.results, 3).is_ok());
    let rows: Vec<(String, Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT account, active, number FROM accounts ORDER BY account")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("ann".into(), Some(1), Some(1)),
            ("cy".into(), Some(0), Some(7))
        ],
        "a boolean column gets 0/1, an integer column a number"
    );
}

#[tokio::test]
async fn the_anchor_of_an_add_is_the_key_as_the_database_stored_it() {
    let dir = tempfile::tempdir().unwrap();
    database(
        dir.path(),
        "CREATE TABLE accounts (number INTEGER PRIMARY KEY, name TEXT);",
    )
    .await;
    let c = connector(dir.path(), "table = \"accounts\"\nanchor = \"number\"\n");
    let report = c
        .export(vec![add(
            1,
            &[("number", Value::str("007")), ("name", Value::str("Bond"))],
        )])
        .await
        .unwrap();
    assert_eq!(
        outcome(&report.results, 1)
            .as_ref()
            .unwrap()
            .anchor
            .as_deref(),
        Some("7")
    );
    let events = events(c.full_import().await.unwrap()).await;
    assert_eq!(objects(&events)[0].anchor, "7");
}

#[tokio::test]
async fn a_child_value_change_of_a_missing_row_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let pool = database(dir.path(), WORKERS).await;
    let c = connector(dir.path(), COMPOSITE);
    let report = c
        .export(vec![update(
            1,
            "ACME|77",
            &[("groups", AttrOp::Add(vec![Value::str("x")]))],
        )])
        .await
        .unwrap();
    assert_eq!(
        outcome(&report.results, 1).as_ref().unwrap_err().kind,
        FailureKind::NotFound
    );
    let orphans: Vec<(i64,)> = sqlx::query_as("SELECT id FROM worker_values WHERE id = 77")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(orphans.is_empty());
}

#[tokio::test]
async fn values_with_quotes_semicolons_and_comment_markers_round_trip_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path(), WORKERS).await;
    let c = connector(dir.path(), COMPOSITE);
    let nasty = "O'Brien\"; DROP TABLE workers; -- /* */ \\ '' ?1 $1 :name";
    let report = c
        .export(vec![add(
            1,
            &[
                ("company", Value::str("x'; --")),
                ("id", Value::Int(7)),
                ("name", Value::str(nasty)),
                ("groups", Value::list([Value::str(nasty)])),
            ],
        )])
        .await
        .unwrap();
    assert_eq!(
        outcome(&report.results, 1)
            .as_ref()
            .unwrap()
            .anchor
            .as_deref(),
        Some("x'; --|7")
    );
    let events = events(c.full_import().await.unwrap()).await;
    let o = objects(&events)
        .into_iter()
        .find(|o| o.anchor == "x'; --|7")
        .unwrap();
    assert_eq!(attr(o, "name"), Some(&Value::str(nasty)));
    assert_eq!(attr(o, "groups"), Some(&Value::list([Value::str(nasty)])));
    assert_eq!(
        objects(&events).len(),
        4,
        "the table is still there with every row"
    );
}

#[tokio::test]
async fn an_add_of_unknown_outcome_is_found_by_its_composite_key() {
    let dir = tempfile::tempdir().unwrap();
    database(dir.path(), WORKERS).await;
    let c = connector(dir.path(), COMPOSITE);
    let there = add(
        1,
        &[
            ("company", Value::str("ACME")),
            ("id", Value::Int(2)),
            ("name", Value::str("Bob")),
        ],
    );
    assert_eq!(
        c.find_added(&there).await.unwrap().as_deref(),
        Some("ACME|2")
    );
    let missing = add(
        2,
        &[
            ("company", Value::str("ACME")),
            ("id", Value::Int(5)),
            ("name", Value::str("Eve")),
        ],
    );
    assert_eq!(c.find_added(&missing).await.unwrap(), None);
}

#[tokio::test]
async fn statements_run_per_operation_with_named_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let pool = database(
        dir.path(),
        &format!(
            "{WORKERS}
        CREATE TABLE audit (what TEXT, company TEXT, id INTEGER, mail TEXT);"
        ),
    )
    .await;
    let c = connector(
        dir.path(),
        "table = \"workers\"\nanchor = [\"company\", \"id\"]\n[statements]\n\
         add = \"INSERT INTO audit VALUES ('add', :company, :id, :mail)\"\n\
         update = \"INSERT INTO audit VALUES ('update', :company, :id, :mail)\"\n\
         delete = \"INSERT INTO audit VALUES ('delete', :company, :id, NULL)\"\n",
    );
    let report = c
        .export(vec![
            add(
                1,
                &[
                    ("company", Value::str("ACME")),
                    ("id", Value::Int(3)),
                    ("mail", Value::str("d@x")),
                ],
            ),
            update(
                2,
                "ACME|1",
                &[("mail", AttrOp::Replace(Value::str("a':b")))],
            ),
            change(3, Some("ACME|2"), ExportOp::Delete),
        ])
        .await
        .unwrap();
    assert!(
        report.results.iter().all(|r| r.outcome.is_ok()),
        "{report:?}"
    );
    let rows: Vec<(String, String, i64, Option<String>)> =
        sqlx::query_as("SELECT what, company, id, mail FROM audit ORDER BY rowid")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("add".into(), "ACME".into(), 3, Some("d@x".into())),
            ("update".into(), "ACME".into(), 1, Some("a':b".into())),
            ("delete".into(), "ACME".into(), 2, None),
        ]
    );
}

// ---------------------------------------------------------------- config

fn config_error(keys: &str) -> String {
    let text = format!("type = \"sql\"\nobject_type = \"worker\"\n{keys}");
    match toml::from_str::<ConnectorConfig>(&text) {
        Err(e) => e.to_string(),
        Ok(c) => match c.build(Path::new(".")) {
            Err(e) => e.message,
            Ok(_) => panic!("accepted: {keys}"),
        },
    }
}

#[test]
fn malformed_configurations_name_every_problem() {
    let e = config_error("url = \"postgres://u:pw@h/db\"\ntable = \"t\"\nanchor = \"id\"\n");
    assert!(
        e.contains(crate::common::secret::LITERAL_SECRET) && !e.contains("pw@"),
        "{e}"
    );
    let e = config_error("url = \"mysql://h/db\"\nanchor = [\"a\", \"b\"]\nreferences = { m = \"a\" }\nmulti_valued = { table = \"v\", attributes = [\"a\"] }\npool_size = 0\n");
    for want in [
        "`url`: expected postgres://",
        "neither `table` nor `query`",
        "references need a one-column key",
        "\"a\" is a key column",
        "`pool_size` is 0",
    ] {
        assert!(e.contains(want), "missing {want:?} in {e}");
    }
    let e = config_error("url = \"sqlite:x.db\"\ntable = \"t\"\nanchor = \"id\"\ndelta = { strategy = \"timestamp\", column = \"x\" }\n");
    assert!(e.contains("unknown variant `timestamp`"), "{e}");
    let e = config_error("url = \"sqlite:x.db\"\ntable = \"t\"\nanchor = 5\n");
    assert!(
        e.contains("a key column's name, or a list of key columns"),
        "{e}"
    );
    let e = config_error("url = \"sqlite:x.db\"\nquery = \"SELECT 1\"\nanchor = \"id\"\n");
    assert!(e.contains("`query` without `table` or `statements`"), "{e}");
}
