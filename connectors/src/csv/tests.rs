//! Tests of the CSV connector: configuration, full import, delta import and
//! export, each against real files in a temporary folder.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use engine::{
    Applied, AttrOp, Connector, ConnectorError, ExportChange, ExportOp, ExportResult, ImportEvent,
    ImportItem, ImportStream, ImportedObject, RefKind,
};
use futures::StreamExt;
use rules::{Value, ValueType};

use crate::ConnectorConfig;

// ---------------------------------------------------------------- helpers

/// Parses a connector config from TOML (the keys after `type = "csv"`).
fn config(keys: &str) -> ConnectorConfig {
    toml::from_str(&format!("type = \"csv\"\n{keys}")).unwrap()
}

const HR: &str = "path = \"hr.csv\"\nobject_type = \"worker\"\nanchor = \"employeeId\"\n";

/// A connector over `dir`, configured by `keys` (added to the HR basics).
fn connector(dir: &Path, keys: &str) -> Box<dyn Connector> {
    config(&format!("{HR}{keys}")).build(dir).unwrap()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn append(dir: &Path, name: &str, bytes: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(name))
        .unwrap();
    file.write_all(bytes.as_bytes()).unwrap();
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// What an import stream yielded, in an easily compared form.
#[derive(Debug, PartialEq)]
enum Got {
    Object(ImportedObject),
    Delete(String),
    Watermark(String),
    Bad(String, String),
}

async fn drain(stream: ImportStream) -> Vec<Got> {
    stream
        .map(|item| match item.unwrap() {
            ImportItem::Event(ImportEvent::Object(object)) => Got::Object(object),
            ImportItem::Event(ImportEvent::Delete { anchor }) => Got::Delete(anchor),
            ImportItem::Event(ImportEvent::Watermark(mark)) => Got::Watermark(mark),
            ImportItem::Event(other) => panic!("unexpected event {other:?}"),
            ImportItem::Bad(bad) => Got::Bad(bad.location, bad.message),
        })
        .collect()
        .await
}

async fn full(connector: &dyn Connector) -> Vec<Got> {
    drain(connector.full_import().await.unwrap()).await
}

async fn delta(connector: &dyn Connector, mark: Option<&str>) -> Vec<Got> {
    drain(connector.delta_import(mark).await.unwrap()).await
}

fn worker(anchor: &str, attributes: &[(&str, Value)]) -> Got {
    Got::Object(ImportedObject {
        anchor: anchor.to_owned(),
        object_type: "worker".to_owned(),
        dn: None,
        attributes: attributes
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect(),
    })
}

fn s(text: &str) -> Value {
    Value::str(text)
}

fn list(items: &[&str]) -> Value {
    Value::list(items.iter().map(|i| Value::str(*i)))
}

fn objects(got: &[Got]) -> Vec<&ImportedObject> {
    got.iter()
        .filter_map(|g| match g {
            Got::Object(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn bad_locations(got: &[Got]) -> Vec<&str> {
    got.iter()
        .filter_map(|g| match g {
            Got::Bad(location, _) => Some(location.as_str()),
            _ => None,
        })
        .collect()
}

fn watermark(got: &[Got]) -> String {
    match got.last() {
        Some(Got::Watermark(mark)) => mark.clone(),
        other => panic!("expected a final watermark, got {other:?}"),
    }
}

async fn full_import_error(connector: &dyn Connector) -> ConnectorError {
    match connector.full_import().await {
        Err(e) => e,
        Ok(_) => panic!("expected the full import to fail"),
    }
}

/// The message of a full import of `hr.csv` holding `bytes`, which must fail.
async fn hr_import_error(bytes: impl AsRef<[u8]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hr.csv", bytes);
    full_import_error(&*connector(dir.path(), "")).await.message
}

fn add(id: u64, attributes: &[(&str, Value)]) -> ExportChange {
    ExportChange {
        id,
        object_type: "worker".to_owned(),
        anchor: None,
        dn: None,
        op: ExportOp::Add {
            attributes: attributes
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect(),
        },
    }
}

fn update(id: u64, anchor: &str, changes: Vec<(&str, AttrOp)>) -> ExportChange {
    ExportChange {
        id,
        object_type: "worker".to_owned(),
        anchor: Some(anchor.to_owned()),
        dn: None,
        op: ExportOp::Update {
            new_dn: None,
            changes: changes
                .into_iter()
                .map(|(n, op)| (n.to_owned(), op))
                .collect(),
        },
    }
}

fn delete(id: u64, anchor: &str) -> ExportChange {
    ExportChange {
        id,
        object_type: "worker".to_owned(),
        anchor: Some(anchor.to_owned()),
        dn: None,
        op: ExportOp::Delete,
    }
}

fn applied(id: u64, anchor: &str) -> ExportResult {
    ExportResult {
        id,
        outcome: Ok(Applied {
            anchor: Some(anchor.to_owned()),
        }),
    }
}

fn failure(results: &[ExportResult], id: u64) -> (String, String) {
    let result = results.iter().find(|r| r.id == id).unwrap();
    match &result.outcome {
        Err(e) => match e.message.split_once("]: ") {
            Some((location, message)) => (format!("{location}]"), message.to_owned()),
            None => (String::new(), e.message.clone()),
        },
        Ok(applied) => panic!("expected change {id} to fail, it applied: {applied:?}"),
    }
}

// ---------------------------------------------------------------- configuration

#[test]
fn config_parses_every_key_and_round_trips() {
    let parsed = config(&format!(
        "{HR}delimiter = \";\"\nmulti_valued = {{ groups = \"|\" }}\nreferences = {{ managerId = \"employeeId\" }}\n\
         columns = [\"employeeId\", \"managerId\", \"groups\"]\nchange_file = \"changes.csv\"\n"
    ));
    assert_eq!(parsed.kind(), "csv");
    // Refutable only when the `testkit` feature adds the fault type.
    #[allow(irrefutable_let_patterns)]
    let crate::ConnectorConfig::Csv(csv) = &parsed
    else {
        panic!("expected a csv configuration")
    };
    assert_eq!(csv.delimiter.byte(), b';');
    assert_eq!(csv.separator("groups"), Some("|"));
    let again: ConnectorConfig = toml::from_str(&toml::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(again, parsed);
}

#[test]
fn config_rejects_a_misspelt_key() {
    let error =
        toml::from_str::<ConnectorConfig>(&format!("type = \"csv\"\n{HR}delimeter = \";\"\n"))
            .unwrap_err()
            .to_string();
    assert!(error.contains("unknown field `delimeter`"), "{error}");
}

#[test]
fn config_rejects_an_unknown_type_and_a_long_delimiter() {
    let error = toml::from_str::<ConnectorConfig>(&format!("type = \"cvs\"\n{HR}"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown variant `cvs`"), "{error}");
    let error =
        toml::from_str::<ConnectorConfig>(&format!("type = \"csv\"\n{HR}delimiter = \"::\"\n"))
            .unwrap_err()
            .to_string();
    assert!(error.contains("expected one ASCII character"), "{error}");
}

#[test]
fn build_lists_every_config_problem() {
    let config = config(&format!(
        "{HR}references = {{ managerId = \"managerNumber\" }}\nmulti_valued = {{ groups = \"\" }}\ncolumns = [\"displayName\"]\n"
    ));
    let error = config.build(Path::new(".")).err().unwrap().message;
    assert!(
        error.contains("`references.managerId` = \"managerNumber\": expected \"employeeId\""),
        "{error}"
    );
    assert!(error.contains("`multi_valued.groups` is empty"), "{error}");
    assert!(error.contains("`columns` lacks \"employeeId\""), "{error}");
}

#[test]
fn info_declares_columns_multi_values_and_references() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(
        dir.path(),
        "multi_valued = { groups = \";\" }\nreferences = { managerId = \"employeeId\" }\n\
         columns = [\"employeeId\", \"displayName\", \"managerId\", \"groups\"]\nchange_file = \"c.csv\"\n",
    );
    let info = connector.info();
    assert!(info.delta_import && info.export && !info.has_dn);
    assert_eq!(info.export_batch_size, 50_000);
    let worker = info.object_type("worker").unwrap();
    assert_eq!(worker.anchor_attribute.as_deref(), Some("employeeId"));
    let names: Vec<&str> = worker.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["employeeId", "displayName", "managerId", "groups"]);
    assert!(worker
        .attributes
        .iter()
        .all(|a| a.value_type == ValueType::String));
    assert!(worker.attribute("groups").unwrap().multi_valued);
    assert_eq!(
        worker.attribute("managerId").unwrap().reference,
        Some(RefKind::Anchor)
    );
    assert_eq!(worker.attribute("displayName").unwrap().reference, None);
}

#[test]
fn info_without_columns_declares_only_references_and_multi_values() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(
        dir.path(),
        "multi_valued = { groups = \";\" }\nreferences = { managerId = \"employeeId\" }\n",
    );
    let info = connector.info();
    assert!(!info.delta_import);
    let names: Vec<&str> = info.object_types[0]
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["groups", "managerId"]);
}

// ---------------------------------------------------------------- full import

#[tokio::test]
async fn full_import_reads_bom_quoted_comma_and_embedded_newline() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "\u{FEFF}employeeId,displayName,address,city\r\nE1,\"Doe, Jane\",\"1 Main St\r\nFlat 2\",\r\nE2,Bob,,Oslo\r\n",
    );
    let got = full(&*connector(dir.path(), "")).await;
    assert_eq!(
        got,
        [
            worker(
                "E1",
                &[
                    ("employeeId", s("E1")),
                    ("displayName", s("Doe, Jane")),
                    ("address", s("1 Main St\r\nFlat 2"))
                ]
            ),
            worker(
                "E2",
                &[
                    ("employeeId", s("E2")),
                    ("displayName", s("Bob")),
                    ("city", s("Oslo"))
                ]
            ),
        ]
    );
}

#[tokio::test]
async fn full_import_uses_the_configured_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId;displayName\nE1;Doe, Jane\nE2;\"a;b\"\n",
    );
    let got = full(&*connector(dir.path(), "delimiter = \";\"\n")).await;
    assert_eq!(
        got,
        [
            worker(
                "E1",
                &[("employeeId", s("E1")), ("displayName", s("Doe, Jane"))]
            ),
            worker("E2", &[("employeeId", s("E2")), ("displayName", s("a;b"))]),
        ]
    );
}

#[tokio::test]
async fn full_import_splits_multi_valued_columns_and_drops_empty_pieces() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,groups\nE1,a;;b ; c;\nE2,;\nE3,solo\n",
    );
    let got = full(&*connector(
        dir.path(),
        "multi_valued = { groups = \";\" }\n",
    ))
    .await;
    assert_eq!(
        got,
        [
            worker(
                "E1",
                &[
                    ("employeeId", s("E1")),
                    ("groups", list(&["a", "b ", " c"]))
                ]
            ),
            worker("E2", &[("employeeId", s("E2"))]),
            worker(
                "E3",
                &[("employeeId", s("E3")), ("groups", list(&["solo"]))]
            ),
        ]
    );
}

#[tokio::test]
async fn full_import_reads_only_declared_columns_when_columns_is_set() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,secret,displayName\nE1,x,Ann\n",
    );
    let got = full(&*connector(
        dir.path(),
        "columns = [\"employeeId\", \"displayName\"]\n",
    ))
    .await;
    assert_eq!(
        got,
        [worker(
            "E1",
            &[("employeeId", s("E1")), ("displayName", s("Ann"))]
        )]
    );
}

#[tokio::test]
async fn full_import_reports_each_bad_row_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"employeeId,displayName,city\n"); // line 1
    bytes.extend_from_slice(b"E1,Ann,Paris\n"); // line 2
    bytes.extend_from_slice(b"E2,Bob,Rome,extra,more\n"); // line 3: surplus from column 13
    bytes.extend_from_slice("E3,Zoë\n".as_bytes()); // line 4: short, end of line is column 7
    bytes.extend_from_slice(b"E4,\"two\nlines\",Oslo,x\n"); // lines 5-6: surplus on line 6, column 13
    bytes.extend_from_slice("E5,Dé\u{e9}".as_bytes()); // line 7: invalid byte at column 7
    bytes.extend_from_slice(b"\xFFx,Nice\n");
    bytes.extend_from_slice(b",Eve,Lyon\n"); // line 8: empty anchor at column 1
    bytes.extend_from_slice(b"E1,Dup,Paris\n"); // line 9: duplicate of line 2
    bytes.extend_from_slice(b"E6,Fay,Bern\n"); // line 10: fine
    write(dir.path(), "hr.csv", &bytes);
    let got = full(&*connector(dir.path(), "")).await;
    let bad: Vec<(&str, &str)> = got
        .iter()
        .filter_map(|g| match g {
            Got::Bad(location, message) => Some((location.as_str(), message.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        bad,
        [
            (
                "hr.csv:3:13",
                "expected 3 fields as in the header row, found 5; the first surplus field starts here"
            ),
            ("hr.csv:4:7", "expected 3 fields as in the header row, found 2"),
            (
                "hr.csv:6:13",
                "expected 3 fields as in the header row, found 4; the first surplus field starts here"
            ),
            ("hr.csv:7:7", "invalid UTF-8 in column \"displayName\": expected UTF-8 text"),
            ("hr.csv:8:1", "empty anchor: expected a value in column \"employeeId\""),
            (
                "hr.csv:9:1",
                "duplicate anchor \"E1\", already on line 2: expected each value of \"employeeId\" once (the first is kept)"
            ),
        ]
    );
    let anchors: Vec<&str> = objects(&got).iter().map(|o| o.anchor.as_str()).collect();
    assert_eq!(
        anchors,
        ["E1", "E6"],
        "bad rows are skipped, the first E1 is kept"
    );
    assert_eq!(
        objects(&got)[0].attributes[1],
        ("displayName".to_owned(), s("Ann"))
    );
}

#[tokio::test]
async fn a_large_file_places_rows_and_problems_where_they_are() {
    // 10,000 rows, every hundredth across two lines, then a bad row: far
    // more than the reader keeps of the file at a time.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("employeeId,displayName,city\n");
    for i in 0..10_000 {
        if i % 100 == 0 {
            text.push_str(&format!("N{i:05},\"two\nlines\",Oslo\n"));
        } else {
            text.push_str(&format!("N{i:05},Name,Oslo\n"));
        }
    }
    text.push_str("X1,Bob,Rome,extra\n");
    write(dir.path(), "hr.csv", &text);
    let got = full(&*connector(dir.path(), "")).await;
    assert_eq!(objects(&got).len(), 10_000);
    assert!(
        got.contains(&Got::Bad(
            "hr.csv:10102:13".into(),
            "expected 3 fields as in the header row, found 4; the first surplus field starts here"
                .into()
        )),
        "1 header line, 10,000 rows, 100 of them on two lines"
    );
    // Export finds the last good row in the file and copies the rest.
    write(
        dir.path(),
        "hr.csv",
        text.replace("X1,Bob,Rome,extra\n", ""),
    );
    let last = update(1, "N09999", vec![("city", AttrOp::Replace(s("Bergen")))]);
    connector(dir.path(), "").export(vec![last]).await.unwrap();
    let written = read(dir.path(), "hr.csv");
    assert_eq!(written.len(), text.len() - "X1,Bob,Rome,extra\n".len() + 2);
    assert!(written.contains("N05000,\"two\nlines\",Oslo\nN05001,Name,Oslo\n"));
    assert!(
        written.ends_with("N09998,Name,Oslo\nN09999,Name,Bergen\n"),
        "{}",
        &written[written.len() - 60..]
    );
}

#[tokio::test]
async fn full_import_locates_an_empty_anchor_in_its_own_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "displayName,employeeId\nZoë,\n\"Ann\nLee\",\n",
    );
    let got = full(&*connector(dir.path(), "")).await;
    assert_eq!(bad_locations(&got), ["hr.csv:2:5", "hr.csv:4:6"]);
}

#[tokio::test]
async fn full_import_reports_an_unterminated_quote() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName\nE1,Ann\nE2,\"Bob\nE3,Cy\n",
    );
    let got = full(&*connector(dir.path(), "")).await;
    assert_eq!(objects(&got).len(), 1);
    assert_eq!(
        got[1],
        Got::Bad(
            "hr.csv:3:4".to_owned(),
            "unterminated quoted field in column \"displayName\": expected a closing quote"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn full_import_of_a_missing_file_fails_naming_the_path_and_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = full_import_error(&*connector(dir.path(), "")).await.message;
    let path = dir.path().join("hr.csv");
    assert!(
        error.contains(&format!("cannot read {}", path.display())),
        "{error}"
    );
    assert!(error.contains("os error 2"), "{error}");
}

#[tokio::test]
async fn full_import_without_the_anchor_column_fails_naming_what_it_found() {
    let error = hr_import_error("employeeID,displayName\nE1,Ann\n").await;
    assert_eq!(
        error,
        "hr.csv:1: expected a column \"employeeId\" (the anchor); found columns: employeeID, displayName"
    );
}

#[tokio::test]
async fn full_import_refuses_duplicate_column_names() {
    let error = hr_import_error("employeeId,name,name\nE1,a,b\n").await;
    assert_eq!(
        error,
        "hr.csv:1:17: duplicate column \"name\" (also column 2 of the header): expected each column name once"
    );
}

#[tokio::test]
async fn full_import_refuses_a_header_that_is_not_utf8() {
    let error = hr_import_error(b"employeeId,na\xFFme\nE1,a\n").await;
    assert_eq!(
        error,
        "hr.csv:1:14: invalid UTF-8 in the header row: expected UTF-8 text"
    );
}

#[tokio::test]
async fn full_import_refuses_an_empty_file() {
    let error = hr_import_error("").await;
    assert_eq!(
        error,
        "hr.csv:1:1: expected a header row naming the columns, found an empty file"
    );
}

#[tokio::test]
async fn full_import_resolves_relative_paths_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    write(dir.path(), "data/hr.csv", "employeeId\nE1\nE2\n");
    let connector =
        config("path = \"data/hr.csv\"\nobject_type = \"worker\"\nanchor = \"employeeId\"\n")
            .build(dir.path())
            .unwrap();
    let got = full(&*connector).await;
    assert_eq!(objects(&got).len(), 2);
}

#[tokio::test]
async fn dropping_a_full_import_stream_midway_stops_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("employeeId\n");
    for i in 0..10_000 {
        text.push_str(&format!("E{i}\n"));
    }
    write(dir.path(), "hr.csv", text);
    let connector = connector(dir.path(), "");
    let mut stream = connector.full_import().await.unwrap();
    assert!(stream.next().await.is_some());
    // The runtime waits for blocking tasks when it shuts down: a reader stuck
    // on the full channel would hang this test instead of ending it.
    drop(stream);
}

// ---------------------------------------------------------------- delta import

const CHANGES: &str = "change_file = \"changes.csv\"\n";

#[tokio::test]
async fn delta_import_reports_adds_modifies_deletes_and_unknown_change_types() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "changes.csv",
        "employeeId,changeType,displayName\nE1,add,Ann\nE2,Modify,Bob\nE3,delete,\nE4,upsert,Dan\n",
    );
    let got = delta(&*connector(dir.path(), CHANGES), None).await;
    assert_eq!(got.len(), 5);
    assert_eq!(
        got[0],
        worker("E1", &[("employeeId", s("E1")), ("displayName", s("Ann"))])
    );
    assert_eq!(
        got[1],
        worker("E2", &[("employeeId", s("E2")), ("displayName", s("Bob"))])
    );
    assert_eq!(got[2], Got::Delete("E3".to_owned()));
    assert_eq!(
        got[3],
        Got::Bad(
            "changes.csv:5:4".to_owned(),
            "unknown changeType \"upsert\": expected add, modify or delete".to_owned()
        )
    );
    assert!(watermark(&got).starts_with("v1:"));
}

#[tokio::test]
async fn delta_import_resumes_after_appended_rows() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), CHANGES);
    write(
        dir.path(),
        "changes.csv",
        "\u{FEFF}employeeId,changeType\nE1,add\n",
    );
    let first = delta(&*connector, None).await;
    assert_eq!(first.len(), 2);
    let mark = watermark(&first);

    // Nothing new: nothing reported, the same watermark.
    let again = delta(&*connector, Some(&mark)).await;
    assert_eq!(again, [Got::Watermark(mark.clone())]);

    append(dir.path(), "changes.csv", "E2,add\nE3,delete\nE4,bogus\n");
    let next = delta(&*connector, Some(&mark)).await;
    assert_eq!(next[0], worker("E2", &[("employeeId", s("E2"))]));
    assert_eq!(next[1], Got::Delete("E3".to_owned()));
    // Line numbers continue from the consumed part.
    assert_eq!(bad_locations(&next), ["changes.csv:5:4"]);
    assert_ne!(watermark(&next), mark);
    let len = std::fs::metadata(dir.path().join("changes.csv"))
        .unwrap()
        .len();
    assert!(watermark(&next).starts_with(&format!("v1:{len}:")));
}

#[tokio::test]
async fn delta_import_leaves_a_last_row_without_line_break_for_the_next_delta() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), CHANGES);
    // The writer is mid-line: "E1,ad" may yet become "E1,add" or "E1,adder".
    write(dir.path(), "changes.csv", "employeeId,changeType\nE1,ad");
    let first = delta(&*connector, None).await;
    let mark = watermark(&first);
    assert_eq!(first.len(), 1, "only the watermark: {first:?}");
    assert_eq!(
        mark,
        format!("v1:{}:", "employeeId,changeType\n".len()) + &mark[mark.rfind(':').unwrap() + 1..],
        "the watermark stops before the unfinished line"
    );
    append(dir.path(), "changes.csv", "d\nE2,delete\n");
    let next = delta(&*connector, Some(&mark)).await;
    assert_eq!(next[0], worker("E1", &[("employeeId", s("E1"))]));
    assert_eq!(next[1], Got::Delete("E2".to_owned()));
    assert_eq!(next.len(), 3);
    // A full import's watermark stops before an unfinished line too.
    append(dir.path(), "changes.csv", "E3,del");
    write(dir.path(), "hr.csv", "employeeId\nE1\n");
    let full = full(&*connector).await;
    let full_mark = watermark(&full);
    append(dir.path(), "changes.csv", "ete\n");
    let after = delta(&*connector, Some(&full_mark)).await;
    assert_eq!(after[0], Got::Delete("E3".to_owned()));
}

#[tokio::test]
async fn delta_import_restarts_on_a_new_change_file() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), CHANGES);
    write(
        dir.path(),
        "changes.csv",
        "employeeId,changeType\nE1,add\nE2,add\n",
    );
    let mark = watermark(&delta(&*connector, None).await);
    // Rotated: a new, shorter file with different content.
    write(
        dir.path(),
        "changes.csv",
        "employeeId,changeType\nE9,delete\n",
    );
    let next = delta(&*connector, Some(&mark)).await;
    assert_eq!(next[0], Got::Delete("E9".to_owned()));
    assert_eq!(next.len(), 2);
    // Same length as before but different bytes: also a new file.
    write(
        dir.path(),
        "changes.csv",
        "employeeId,changeType\nE7,add\nE8,add\n",
    );
    let next = delta(&*connector, Some(&mark)).await;
    assert_eq!(objects(&next).len(), 2);
}

#[tokio::test]
async fn delta_import_without_a_change_file_reports_nothing_and_keeps_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), CHANGES);
    let mark = "v1:10:00000000000000ff";
    assert_eq!(
        delta(&*connector, Some(mark)).await,
        [Got::Watermark(mark.to_owned())]
    );
    assert_eq!(delta(&*connector, None).await, []);
}

#[tokio::test]
async fn delta_import_refuses_a_malformed_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), CHANGES);
    for bad in [
        "v2:1:0000000000000000",
        "v1:x:0000000000000000",
        "v1:1:ff",
        "junk",
    ] {
        let error = match connector.delta_import(Some(bad)).await {
            Err(e) => e.message,
            Ok(_) => panic!("{bad} was accepted"),
        };
        assert!(
            error.contains(&format!("malformed csv watermark {bad:?}")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn delta_import_requires_the_change_type_column() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "changes.csv", "employeeId,change\nE1,add\n");
    let error = match connector(dir.path(), CHANGES).delta_import(None).await {
        Err(e) => e.message,
        Ok(_) => panic!("accepted"),
    };
    assert_eq!(
        error,
        "changes.csv:1: expected a column \"changeType\" (add, modify or delete); found columns: employeeId, change"
    );
}

#[tokio::test]
async fn full_import_ends_with_the_change_files_watermark_so_delta_sees_only_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), CHANGES);
    write(dir.path(), "hr.csv", "employeeId\nE1\n");
    write(dir.path(), "changes.csv", "employeeId,changeType\nE1,add\n");
    let got = full(&*connector).await;
    assert_eq!(got.len(), 2);
    let mark = watermark(&got);
    assert_eq!(
        delta(&*connector, Some(&mark)).await,
        [Got::Watermark(mark.clone())]
    );
    append(dir.path(), "changes.csv", "E2,add\n");
    let next = delta(&*connector, Some(&mark)).await;
    assert_eq!(objects(&next).len(), 1);
    assert_eq!(objects(&next)[0].anchor, "E2");
}

#[tokio::test]
async fn full_import_without_a_change_file_yet_lets_delta_read_it_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), CHANGES);
    write(dir.path(), "hr.csv", "employeeId\nE1\n");
    let mark = watermark(&full(&*connector).await);
    write(dir.path(), "changes.csv", "employeeId,changeType\nE2,add\n");
    let next = delta(&*connector, Some(&mark)).await;
    assert_eq!(objects(&next)[0].anchor, "E2");
}

// ---------------------------------------------------------------- export

const OUT: &str = "multi_valued = { groups = \";\" }\n";

#[tokio::test]
async fn export_adds_updates_and_deletes_rows() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,groups\nE1,Ann,a;b\nE2,Bob,\n",
    );
    let connector = connector(dir.path(), OUT);
    let results = connector
        .export(vec![
            add(
                1,
                &[
                    ("employeeId", s("E3")),
                    ("displayName", s("Cy, Jr.")),
                    ("title", s("Dev")),
                    ("groups", list(&["x", "y"])),
                    ("room", Value::Null),
                ],
            ),
            update(
                2,
                "E1",
                vec![
                    ("displayName", AttrOp::Replace(s("Annie"))),
                    ("groups", AttrOp::Add(vec![s("c"), s("b")])),
                    ("groups", AttrOp::Remove(vec![s("a")])),
                ],
            ),
            delete(3, "E2"),
            delete(4, "E9"),
            update(
                5,
                "E3",
                vec![
                    ("title", AttrOp::Clear),
                    ("age", AttrOp::Replace(Value::Int(42))),
                ],
            ),
        ])
        .await
        .unwrap()
        .results;
    assert_eq!(
        results,
        [
            applied(1, "E3"),
            applied(2, "E1"),
            applied(3, "E2"),
            applied(4, "E9"),
            applied(5, "E3")
        ]
    );
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups,age,title\nE1,Annie,b;c,,\nE3,\"Cy, Jr.\",x;y,42,\n"
    );
    // What export wrote, import reads back.
    let got = full(&*connector).await;
    assert_eq!(
        got[1],
        worker(
            "E3",
            &[
                ("employeeId", s("E3")),
                ("displayName", s("Cy, Jr.")),
                ("groups", list(&["x", "y"])),
                ("age", s("42"))
            ]
        )
    );
}

/// Exports `batches` through one connector, one call each, then ends the run.
async fn export_run(dir: &Path, keys: &str, batches: Vec<Vec<ExportChange>>) {
    let connector = connector(dir, keys);
    for batch in batches {
        connector.export(batch).await.unwrap();
    }
    connector.export_finished().await;
}

fn many_changes() -> Vec<ExportChange> {
    let mut changes = Vec::new();
    for i in 0..12u64 {
        let groups = list(&[&format!("g{}", i % 3)]);
        changes.push(add(
            i,
            &[("employeeId", s(&format!("N{i}"))), ("groups", groups)],
        ));
    }
    changes.push(update(
        20,
        "E1",
        vec![("displayName", AttrOp::Replace(s("Annie")))],
    ));
    changes.push(delete(21, "E2"));
    changes.push(update(
        22,
        "N3",
        vec![("groups", AttrOp::Add(vec![s("x")]))],
    ));
    changes.push(delete(23, "N5"));
    changes.push(add(
        24,
        &[("employeeId", s("N5")), ("displayName", s("back"))],
    ));
    changes
}

#[tokio::test]
async fn an_export_run_in_many_batches_writes_what_one_batch_writes() {
    let start = "employeeId,displayName,groups\nE1,Ann,a;b\nE2,Bob,\n";
    let one = tempfile::tempdir().unwrap();
    write(one.path(), "hr.csv", start);
    export_run(one.path(), OUT, vec![many_changes()]).await;

    let many = tempfile::tempdir().unwrap();
    write(many.path(), "hr.csv", start);
    let batches = many_changes().chunks(3).map(<[_]>::to_vec).collect();
    export_run(many.path(), OUT, batches).await;

    assert_eq!(read(many.path(), "hr.csv"), read(one.path(), "hr.csv"));
}

#[tokio::test]
async fn export_copies_untouched_rows_as_they_are_and_writes_anew_those_it_must() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,groups\r\nE1,Ann,a;b\n\"E2\",Bob,\nE3,\"Cy, Jr.\",\r\nE4,Dee,\n",
    );
    let plain = connector(dir.path(), OUT);
    let dea = update(1, "E4", vec![("displayName", AttrOp::Replace(s("Dea")))]);
    plain.export(vec![dea]).await.unwrap();
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,Ann,a;b\nE2,Bob,\nE3,\"Cy, Jr.\",\nE4,Dea,\n",
        "quotes only where needed and one terminator, as if every row were written anew"
    );

    // With `escape_formulas`, a cell escaping would change is written anew:
    // E5's formula gets its quote, E6's lone quote a second one.
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,groups\nE1,'=1,\nE5,=2,\nE6,'plain,\nE7,'+3,\n",
    );
    let formulas = connector(dir.path(), &format!("{OUT}escape_formulas = true\n"));
    let e7 = update(1, "E7", vec![("groups", AttrOp::Replace(s("x")))]);
    formulas.export(vec![e7]).await.unwrap();
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,'=1,\nE5,'=2,\nE6,''plain,\nE7,'+3,x\n"
    );
}

#[tokio::test]
async fn export_copies_rows_after_a_bom_across_lines_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "\u{feff}employeeId,displayName,groups\nE1,\"Ann\nSmith\",a;b\n\nE2,Bob,\nE3,Cy,",
    );
    let connector = connector(dir.path(), OUT);
    let bea = update(1, "E2", vec![("displayName", AttrOp::Replace(s("Bea")))]);
    connector.export(vec![bea]).await.unwrap();
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "\u{feff}employeeId,displayName,groups\nE1,\"Ann\nSmith\",a;b\nE2,Bea,\nE3,Cy,\n"
    );
    // The next batch reads E1 from the file the first one wrote.
    let c = update(2, "E1", vec![("groups", AttrOp::Add(vec![s("c")]))]);
    connector.export(vec![c]).await.unwrap();
    connector.export_finished().await;
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "\u{feff}employeeId,displayName,groups\nE1,\"Ann\nSmith\",a;b;c\nE2,Bea,\nE3,Cy,\n"
    );
}

/// Waits until the read an export run started has ended.
async fn read_by_the_run(csv: &super::CsvConnector) {
    loop {
        match &*csv.export_lock.lock().await {
            super::Prepared::Loading(task) if !task.is_finished() => {}
            _ => return,
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_export_run_reads_the_file_from_its_start_and_still_sees_a_later_replacement() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,groups\nE1,Ann,\n",
    );
    let config: super::CsvConfig = toml::from_str(&format!("{HR}{OUT}")).unwrap();
    let csv = super::CsvConnector::new(config, dir.path()).unwrap();
    csv.export_starting().await;
    assert!(
        matches!(*csv.export_lock.lock().await, super::Prepared::Loading(_)),
        "reading began before the first batch"
    );
    let bob = add(1, &[("employeeId", s("E2")), ("displayName", s("Bob"))]);
    csv.export(vec![bob]).await.unwrap();
    assert!(matches!(
        *csv.export_lock.lock().await,
        super::Prepared::Kept(_)
    ));
    csv.export_finished().await;
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,Ann,\nE2,Bob,\n"
    );

    // Replaced after the run read it: the first batch reads it again.
    csv.export_starting().await;
    read_by_the_run(&csv).await;
    write(
        dir.path(),
        "hr.csv.new",
        "employeeId,displayName,groups\nE9,Zed,\n",
    );
    std::fs::rename(dir.path().join("hr.csv.new"), dir.path().join("hr.csv")).unwrap();
    let cy = add(2, &[("employeeId", s("E3")), ("displayName", s("Cy"))]);
    csv.export(vec![cy]).await.unwrap();
    csv.export_finished().await;
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE9,Zed,\nE3,Cy,\n"
    );

    // A file that cannot be read fails the first batch, naming it, and is
    // left as it was.
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,groups\nE1,\"Ann\n",
    );
    csv.export_starting().await;
    let dee = add(3, &[("employeeId", s("E4")), ("displayName", s("Dee"))]);
    let error = csv.export(vec![dee.clone()]).await.unwrap_err().to_string();
    csv.export_finished().await;
    assert!(
        error.contains("hr.csv") && error.contains("unterminated"),
        "{error}"
    );
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,\"Ann\n"
    );
    // Fixed after the run read it: the first batch reads it again.
    csv.export_starting().await;
    read_by_the_run(&csv).await;
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,groups\nE1,Ann,\n",
    );
    csv.export(vec![dee]).await.unwrap();
    csv.export_finished().await;
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,Ann,\nE4,Dee,\n"
    );
}

/// A file holding E1 Ann, and a connector that has just exported E2 Bob.
async fn ann_then_bob_added() -> (tempfile::TempDir, Box<dyn Connector>) {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,groups\nE1,Ann,\n",
    );
    let connector = connector(dir.path(), OUT);
    let bob = add(1, &[("employeeId", s("E2")), ("displayName", s("Bob"))]);
    connector.export(vec![bob]).await.unwrap();
    (dir, connector)
}

async fn add_cy(connector: &dyn Connector) {
    let cy = add(2, &[("employeeId", s("E3")), ("displayName", s("Cy"))]);
    connector.export(vec![cy]).await.unwrap();
}

#[tokio::test]
async fn an_export_batch_sees_the_file_as_changed_by_others_since_the_last_batch() {
    let (dir, connector) = ann_then_bob_added().await;
    // Someone else replaces the file with one of the same length.
    let replaced = read(dir.path(), "hr.csv").replace("Ann", "Amy");
    write(dir.path(), "hr.csv.new", &replaced);
    std::fs::rename(dir.path().join("hr.csv.new"), dir.path().join("hr.csv")).unwrap();
    add_cy(connector.as_ref()).await;
    // And then appends a row.
    append(dir.path(), "hr.csv", "E9,Zed,\n");
    connector.export(vec![delete(3, "E2")]).await.unwrap();
    connector.export_finished().await;
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,Amy,\nE3,Cy,\nE9,Zed,\n"
    );
}

#[tokio::test]
async fn a_finished_export_run_keeps_nothing_for_the_next() {
    let (dir, connector) = ann_then_bob_added().await;
    connector.export_finished().await;
    // An edit in place that keeps the length and the modification time:
    // only reading the file again can see it.
    let path = dir.path().join("hr.csv");
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let edited = read(dir.path(), "hr.csv").replace("Bob", "Bea");
    std::fs::write(&path, edited).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    add_cy(connector.as_ref()).await;
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,Ann,\nE2,Bea,\nE3,Cy,\n"
    );
}

#[tokio::test]
async fn export_creates_a_missing_file_with_the_anchor_first() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), "");
    let results = connector
        .export(vec![add(
            1,
            &[("zeta", s("z")), ("employeeId", s("E1")), ("alpha", s("a"))],
        )])
        .await
        .unwrap()
        .results;
    assert_eq!(results, [applied(1, "E1")]);
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,alpha,zeta\nE1,a,z\n"
    );
}

#[tokio::test]
async fn export_of_no_effective_change_does_not_create_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let results = connector(dir.path(), "")
        .export(vec![delete(1, "E1")])
        .await
        .unwrap()
        .results;
    assert_eq!(results, [applied(1, "E1")]);
    assert!(!dir.path().join("hr.csv").exists());
}

#[tokio::test]
async fn export_add_of_an_existing_anchor_updates_it_so_a_repeated_batch_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,city\nE1,Ann,Paris\n",
    );
    let connector = connector(dir.path(), "");
    let batch = vec![
        add(1, &[("employeeId", s("E2")), ("displayName", s("Bob"))]),
        add(2, &[("employeeId", s("E1")), ("displayName", s("Annie"))]),
        delete(3, "E1"),
        add(
            4,
            &[("employeeId", s("E1")), ("displayName", s("Ann again"))],
        ),
    ];
    let first = connector.export(batch.clone()).await.unwrap().results;
    let bytes = read(dir.path(), "hr.csv");
    assert_eq!(
        bytes,
        "employeeId,displayName,city\nE2,Bob,\nE1,Ann again,\n"
    );
    let second = connector.export(batch).await.unwrap().results;
    assert_eq!(first, second);
    assert_eq!(read(dir.path(), "hr.csv"), bytes);
}

#[tokio::test]
async fn export_upsert_keeps_columns_the_add_does_not_mention() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,city\nE1,Ann,Paris\n",
    );
    let connector = connector(dir.path(), "");
    connector
        .export(vec![add(
            1,
            &[("employeeId", s("E1")), ("displayName", s("Annie"))],
        )])
        .await
        .unwrap();
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,city\nE1,Annie,Paris\n"
    );
}

#[tokio::test]
async fn export_re_keys_a_row_whose_anchor_changes() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName\nE1,Ann\nE2,Bob\n",
    );
    let connector = connector(dir.path(), "");
    let results = connector
        .export(vec![
            update(1, "E1", vec![("employeeId", AttrOp::Replace(s("E100")))]),
            update(
                2,
                "E100",
                vec![("displayName", AttrOp::Replace(s("Annie")))],
            ),
            update(3, "E1", vec![("displayName", AttrOp::Replace(s("Nobody")))]),
            update(4, "E2", vec![("employeeId", AttrOp::Replace(s("E100")))]),
            update(5, "E2", vec![("employeeId", AttrOp::Clear)]),
        ])
        .await
        .unwrap()
        .results;
    assert_eq!(results[..2], [applied(1, "E100"), applied(2, "E100")]);
    assert_eq!(
        failure(&results, 3),
        (
            "hr.csv [employeeId=E1]".to_owned(),
            "no row has employeeId \"E1\": expected an existing row to update".to_owned()
        )
    );
    assert_eq!(
        failure(&results, 4).1,
        "cannot change the anchor to \"E100\": another row has it"
    );
    assert_eq!(
        failure(&results, 5).1,
        "the anchor column \"employeeId\" cannot be emptied"
    );
    // The row keeps its place.
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName\nE100,Annie\nE2,Bob\n"
    );
}

#[tokio::test]
async fn export_rejects_bad_changes_one_object_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "employeeId,displayName,groups\nE1,Ann,\n",
    );
    let connector = connector(
        dir.path(),
        &format!("{OUT}columns = [\"employeeId\", \"displayName\", \"groups\"]\n"),
    );
    let results = connector
        .export(vec![
            add(1, &[("displayName", s("No anchor"))]),
            add(2, &[("employeeId", s("E2")), ("shoeSize", s("44"))]),
            update(
                3,
                "E1",
                vec![("displayName", AttrOp::Replace(list(&["a", "b"])))],
            ),
            update(4, "E1", vec![("displayName", AttrOp::Add(vec![s("x")]))]),
            update(5, "E1", vec![("groups", AttrOp::Replace(list(&["a;b"])))]),
            update(
                6,
                "E1",
                vec![("displayName", AttrOp::Replace(Value::Ref(7)))],
            ),
            update(7, "E1", vec![("displayName", AttrOp::Replace(s("Kept")))]),
            ExportChange {
                object_type: "group".to_owned(),
                ..delete(8, "E1")
            },
        ])
        .await
        .unwrap()
        .results;
    assert_eq!(
        failure(&results, 1),
        (
            "hr.csv [change 1]".to_owned(),
            "an add needs a value for the anchor column \"employeeId\"".to_owned()
        )
    );
    assert_eq!(
        failure(&results, 2),
        (
            "hr.csv [employeeId=E2]".to_owned(),
            "column \"shoeSize\" is not declared in `columns`; expected one of: employeeId, displayName, groups"
                .to_owned()
        )
    );
    assert!(failure(&results, 3).1.contains("holds one value"));
    assert!(failure(&results, 4)
        .1
        .contains("cannot add or remove values of \"displayName\""));
    assert!(failure(&results, 5)
        .1
        .contains("contains its separator \";\""));
    assert!(failure(&results, 6)
        .1
        .contains("unresolved reference (ref:7)"));
    assert_eq!(results[6], applied(7, "E1"));
    assert!(failure(&results, 8).1.contains("object type \"group\""));
    // Only the good change touched the file; the failed add created no row.
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,Kept,\n"
    );
}

#[tokio::test]
async fn export_with_declared_columns_writes_them_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "displayName,legacy,employeeId\nAnn,old,E1\n",
    );
    let connector = connector(
        dir.path(),
        "columns = [\"employeeId\", \"city\", \"displayName\"]\n",
    );
    connector
        .export(vec![add(
            1,
            &[("employeeId", s("E2")), ("city", s("Rome"))],
        )])
        .await
        .unwrap();
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,city,displayName\nE1,,Ann\nE2,Rome,\n"
    );
}

#[tokio::test]
async fn export_refuses_a_malformed_file_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let original = "employeeId,displayName\nE1,Ann\nE2\n";
    write(dir.path(), "hr.csv", original);
    let error = connector(dir.path(), "")
        .export(vec![delete(1, "E1")])
        .await
        .unwrap_err()
        .message;
    assert!(
        error.starts_with("cannot export to hr.csv: hr.csv:3:3: expected 2 fields"),
        "{error}"
    );
    assert_eq!(read(dir.path(), "hr.csv"), original);
}

#[tokio::test]
async fn export_replaces_the_file_atomically_leaving_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hr.csv",
        "\u{FEFF}employeeId;displayName\r\nE1;Ann\r\n",
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o640);
        std::fs::set_permissions(dir.path().join("hr.csv"), mode).unwrap();
    }
    let connector = connector(dir.path(), "delimiter = \";\"\n");
    for i in 0..3 {
        connector
            .export(vec![add(i, &[("employeeId", s(&format!("N{i}")))])])
            .await
            .unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["hr.csv"]);
    // The byte-order mark and the permissions survive; lines end with \n.
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "\u{FEFF}employeeId;displayName\nE1;Ann\nN0;\nN1;\nN2;\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("hr.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}

#[tokio::test]
async fn export_output_is_byte_for_byte_deterministic() {
    let batch = || {
        vec![
            add(
                1,
                &[
                    ("employeeId", s("E3")),
                    ("zone", s("z")),
                    ("area", s("a")),
                    ("mid", s("m")),
                ],
            ),
            add(
                2,
                &[
                    ("employeeId", s("E4")),
                    ("note", s("line\nbreak \"quoted\"")),
                ],
            ),
            update(
                3,
                "E1",
                vec![("groups", AttrOp::Add(vec![s("g2"), s("g1")]))],
            ),
        ]
    };
    let mut outputs = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "hr.csv", "employeeId,groups\nE1,\nE2,g\n");
        connector(dir.path(), OUT).export(batch()).await.unwrap();
        outputs.push(std::fs::read(dir.path().join("hr.csv")).unwrap());
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        String::from_utf8(outputs.remove(0)).unwrap(),
        "employeeId,groups,area,mid,note,zone\nE1,g2;g1,,,,\nE2,g,,,,\nE3,,a,m,,z\nE4,,,,\"line\nbreak \"\"quoted\"\"\",\n"
    );
}

// ---------------------------------------------------------------- locating fields

proptest::proptest! {
    /// Whatever the fields hold (delimiters, quotes, line breaks, non-ASCII),
    /// the reader finds each field where the `csv` crate parsed it, so every
    /// location points into the right field.
    #[test]
    fn field_positions_agree_with_the_csv_parser(
        rows in proptest::collection::vec(
            proptest::collection::vec("[a,;\"\n\ré ]{0,6}", 1..5), 1..8)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ::csv::WriterBuilder::new().flexible(true).from_path(dir.path().join("f.csv")).unwrap();
        for row in &rows {
            writer.write_record(row).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        let path = dir.path().join("f.csv");
        let file = super::reader::RecordReader::open_file(&path).unwrap();
        let start = super::reader::Start::Beginning { hash: false };
        let mut reader = super::reader::RecordReader::new(file, &path, b',', start).unwrap();
        let mut parsed = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            let count = record.fields.len();
            proptest::prop_assert!(record.unterminated_quote().is_none());
            for index in 0..count {
                let start = record.field_start(index);
                proptest::prop_assert!(start <= record.end());
                proptest::prop_assert_eq!(record.field_at(start), index);
            }
            parsed.push(record.fields.iter().map(|f| String::from_utf8(f.to_vec()).unwrap()).collect::<Vec<_>>());
        }
        // A row of one empty field is written as `""`, so no row is lost.
        proptest::prop_assert_eq!(parsed, rows);
    }
}

// ---------------------------------------------------------------- DNs and object types

/// A directory-like file: users and groups, each with a DN; managers and
/// members named by DN.
const DIR: &str = "path = \"corp.csv\"\nanchor = \"id\"\ndn_column = \"dn\"\n\
    object_type_column = \"objectType\"\nobject_types = [\"user\", \"group\"]\n\
    multi_valued = { members = \";\" }\nreferences = { manager = \"dn\", members = \"dn\", sponsor = \"id\" }\n";

fn directory(dir: &Path) -> Box<dyn Connector> {
    config(DIR).build(dir).unwrap()
}

fn entry(object_type: &str, anchor: &str, dn: &str, attributes: &[(&str, Value)]) -> Got {
    Got::Object(ImportedObject {
        anchor: anchor.to_owned(),
        object_type: object_type.to_owned(),
        dn: Some(dn.to_owned()),
        attributes: attributes
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect(),
    })
}

fn change(
    id: u64,
    object_type: &str,
    anchor: Option<&str>,
    dn: Option<&str>,
    op: ExportOp,
) -> ExportChange {
    ExportChange {
        id,
        object_type: object_type.to_owned(),
        anchor: anchor.map(str::to_owned),
        dn: dn.map(str::to_owned),
        op,
    }
}

fn add_at(id: u64, object_type: &str, dn: &str, attributes: &[(&str, Value)]) -> ExportChange {
    change(
        id,
        object_type,
        None,
        Some(dn),
        ExportOp::Add {
            attributes: attributes
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect(),
        },
    )
}

fn rename(
    id: u64,
    anchor: &str,
    dn: &str,
    new_dn: &str,
    changes: Vec<(&str, AttrOp)>,
) -> ExportChange {
    change(
        id,
        "user",
        Some(anchor),
        Some(dn),
        ExportOp::Update {
            new_dn: Some(new_dn.to_owned()),
            changes: changes
                .into_iter()
                .map(|(n, op)| (n.to_owned(), op))
                .collect(),
        },
    )
}

#[test]
fn config_with_dns_and_object_types_parses_and_round_trips() {
    let parsed = config(DIR);
    // Refutable only when the `testkit` feature adds the fault type.
    #[allow(irrefutable_let_patterns)]
    let crate::ConnectorConfig::Csv(csv) = &parsed
    else {
        panic!("expected a csv configuration")
    };
    assert_eq!(csv.dn_column.as_deref(), Some("dn"));
    assert_eq!(csv.types(), ["user", "group"]);
    assert_eq!(csv.reference_kind("manager"), Some(RefKind::Dn));
    assert_eq!(csv.reference_kind("sponsor"), Some(RefKind::Anchor));
    assert_eq!(csv.reference_kind("title"), None);
    let again: ConnectorConfig = toml::from_str(&toml::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(again, parsed);
    assert!(parsed.build(Path::new(".")).is_ok());
}

#[test]
fn build_lists_every_dn_and_object_type_problem() {
    let problems = |keys: &str| config(keys).build(Path::new(".")).err().unwrap().message;

    let error = problems("path = \"f.csv\"\nanchor = \"id\"\n");
    assert!(error.contains("`object_type` is missing"), "{error}");

    let error = problems(
        "path = \"f.csv\"\nanchor = \"id\"\nobject_type = \"user\"\nobject_type_column = \"objectType\"\n",
    );
    assert!(
        error.contains("`object_type` and `object_type_column` are both set"),
        "{error}"
    );
    assert!(error.contains("`object_types` is missing"), "{error}");

    let error = problems(
        "path = \"f.csv\"\nanchor = \"id\"\nobject_type = \"user\"\nobject_types = [\"user\"]\n",
    );
    assert!(
        error.contains("`object_types` is set without `object_type_column`"),
        "{error}"
    );

    let error = problems(
        "path = \"f.csv\"\nanchor = \"id\"\nobject_type_column = \"kind\"\nobject_types = [\"user\", \"user\", \"\"]\n\
         dn_column = \"id\"\nmulti_valued = { kind = \";\" }\nreferences = { manager = \"dn\", members = \"id\" }\n\
         columns = [\"id\", \"manager\", \"members\"]\n",
    );
    assert!(
        error.contains("`object_types` names \"user\" twice"),
        "{error}"
    );
    assert!(
        error.contains("`object_types` holds an empty name"),
        "{error}"
    );
    assert!(
        error.contains("`dn_column` = \"id\" is the anchor column"),
        "{error}"
    );
    assert!(
        error.contains("`multi_valued.kind`: the column holds the object type"),
        "{error}"
    );
    assert!(
        error.contains("`references.manager` = \"dn\": expected \"id\", the anchor column, or \"id\", the `dn_column`"),
        "{error}"
    );
    assert!(error.contains("`columns` lacks \"kind\""), "{error}");

    // Without a DN column, a reference by DN names a column that is not there.
    let error = problems(
        "path = \"f.csv\"\nanchor = \"id\"\nobject_type = \"user\"\nreferences = { manager = \"dn\" }\n",
    );
    assert!(
        error.contains("`references.manager` = \"dn\": expected \"id\", the anchor column (a reference names another row by its anchor; with `dn_column` set, by its DN too)"),
        "{error}"
    );
}

#[test]
fn info_with_dns_lists_each_type_with_dn_references() {
    let dir = tempfile::tempdir().unwrap();
    let info = directory(dir.path()).info();
    assert!(info.has_dn);
    let names: Vec<&str> = info.object_types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["user", "group"]);
    for t in &info.object_types {
        assert_eq!(t.anchor_attribute.as_deref(), Some("id"));
        let attributes: Vec<&str> = t.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(attributes, ["manager", "members", "sponsor"]);
        assert_eq!(t.attribute("manager").unwrap().reference, Some(RefKind::Dn));
        assert!(t.attribute("members").unwrap().multi_valued);
        assert_eq!(t.attribute("members").unwrap().reference, Some(RefKind::Dn));
        assert_eq!(
            t.attribute("sponsor").unwrap().reference,
            Some(RefKind::Anchor)
        );
    }
    // Declared columns: the DN and type columns are not attributes.
    let connector = config(&format!(
        "{DIR}columns = [\"id\", \"objectType\", \"dn\", \"displayName\", \"manager\", \"members\", \"sponsor\"]\n"
    ))
    .build(dir.path())
    .unwrap();
    let info = connector.info();
    let attributes: Vec<&str> = info.object_types[1]
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(
        attributes,
        ["id", "displayName", "manager", "members", "sponsor"]
    );
}

#[tokio::test]
async fn full_import_reads_dns_types_and_lists_of_dns() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "corp.csv",
        "id,objectType,dn,displayName,manager,members\n\
         u1,user,\"CN=Ada,OU=Users,DC=corp\",Ada,,\n\
         u2,user,\"CN=Smith\\, J\\;r,OU=Users,DC=corp\",\"Smith, J;r\",\"CN=Ada,OU=Users,DC=corp\",\n\
         g1,group,\"CN=Team,OU=Groups,DC=corp\",Team,,\"CN=Ada,OU=Users,DC=corp;CN=Smith\\, J\\;r,OU=Users,DC=corp\"\n",
    );
    let got = full(&*directory(dir.path())).await;
    assert_eq!(
        got,
        [
            entry(
                "user",
                "u1",
                "CN=Ada,OU=Users,DC=corp",
                &[("id", s("u1")), ("displayName", s("Ada"))]
            ),
            entry(
                "user",
                "u2",
                "CN=Smith\\, J\\;r,OU=Users,DC=corp",
                &[
                    ("id", s("u2")),
                    ("displayName", s("Smith, J;r")),
                    ("manager", s("CN=Ada,OU=Users,DC=corp"))
                ]
            ),
            entry(
                "group",
                "g1",
                "CN=Team,OU=Groups,DC=corp",
                &[
                    ("id", s("g1")),
                    ("displayName", s("Team")),
                    // The escaped `;` inside a DN does not split the list.
                    (
                        "members",
                        list(&[
                            "CN=Ada,OU=Users,DC=corp",
                            "CN=Smith\\, J\\;r,OU=Users,DC=corp"
                        ])
                    )
                ]
            ),
        ]
    );
}

#[tokio::test]
async fn full_import_reports_bad_types_empty_and_duplicate_dns_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "corp.csv",
        "id,objectType,dn\n\
         u1,user,CN=A\n\
         u2,,CN=B\n\
         u3,contact,CN=C\n\
         u4,user,\n\
         u5,group,cn=a\n\
         u6,group,CN=F\n",
    );
    let got = full(&*directory(dir.path())).await;
    let anchors: Vec<&str> = objects(&got).iter().map(|o| o.anchor.as_str()).collect();
    assert_eq!(anchors, ["u1", "u6"]);
    let bad: Vec<(&str, &str)> = got
        .iter()
        .filter_map(|g| match g {
            Got::Bad(location, message) => Some((location.as_str(), message.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        bad,
        [
            (
                "corp.csv:3:4",
                "empty object type: expected one of user, group in column \"objectType\" (`object_types`)"
            ),
            (
                "corp.csv:4:4",
                "unknown object type \"contact\": expected one of user, group in column \"objectType\" (`object_types`)"
            ),
            (
                "corp.csv:5:9",
                "empty DN: expected the object's distinguished name in column \"dn\""
            ),
            (
                "corp.csv:6:10",
                "duplicate DN \"cn=a\", already on line 2: expected each DN once, compared without regard to case (the first is kept)"
            ),
        ]
    );
}

#[tokio::test]
async fn full_import_without_the_dn_column_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "corp.csv", "id,objectType\nu1,user\n");
    let error = full_import_error(&*directory(dir.path())).await.message;
    assert_eq!(
        error,
        "corp.csv:1: expected a column \"dn\" (each row's DN, `dn_column`); found columns: id, objectType"
    );
}

#[tokio::test]
async fn delta_import_reads_dns_and_types() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "corp.csv", "id,objectType,dn\n");
    write(
        dir.path(),
        "changes.csv",
        "changeType,id,objectType,dn,displayName\n\
         add,u1,user,\"CN=Ada,OU=Users\",Ada\n\
         modify,g1,,CN=G,\n\
         delete,u9,,,\n",
    );
    let connector = config(&format!("{DIR}change_file = \"changes.csv\"\n"))
        .build(dir.path())
        .unwrap();
    let got = delta(&*connector, None).await;
    assert_eq!(
        got[0],
        entry(
            "user",
            "u1",
            "CN=Ada,OU=Users",
            &[("id", s("u1")), ("displayName", s("Ada"))]
        )
    );
    assert_eq!(bad_locations(&got), ["changes.csv:3:11"]);
    assert_eq!(got[2], Got::Delete("u9".to_owned()));
}

#[tokio::test]
async fn export_to_a_new_file_writes_anchor_type_and_dn_first() {
    let dir = tempfile::tempdir().unwrap();
    let connector = directory(dir.path());
    let results = connector
        .export(vec![
            add_at(
                1,
                "user",
                "CN=Ada,OU=Users,DC=corp",
                &[("id", s("u1")), ("displayName", s("Ada"))],
            ),
            add_at(
                2,
                "user",
                "CN=Grace,OU=Users,DC=corp",
                &[
                    ("id", s("u2")),
                    ("displayName", s("Grace")),
                    ("manager", s("CN=Ada,OU=Users,DC=corp")),
                ],
            ),
            add_at(
                3,
                "group",
                "CN=Team,OU=Groups,DC=corp",
                &[
                    ("id", s("g1")),
                    (
                        "members",
                        list(&["CN=Ada,OU=Users,DC=corp", "CN=Grace,OU=Users,DC=corp"]),
                    ),
                ],
            ),
        ])
        .await
        .unwrap()
        .results;
    assert_eq!(
        results,
        [applied(1, "u1"), applied(2, "u2"), applied(3, "g1")]
    );
    assert_eq!(
        read(dir.path(), "corp.csv"),
        "id,objectType,dn,displayName,manager,members\n\
         u1,user,\"CN=Ada,OU=Users,DC=corp\",Ada,,\n\
         u2,user,\"CN=Grace,OU=Users,DC=corp\",Grace,\"CN=Ada,OU=Users,DC=corp\",\n\
         g1,group,\"CN=Team,OU=Groups,DC=corp\",,,\"CN=Ada,OU=Users,DC=corp;CN=Grace,OU=Users,DC=corp\"\n"
    );
    // What export wrote, import reads back: DN and type as identity, not attributes.
    let got = full(&*connector).await;
    assert_eq!(
        got[1],
        entry(
            "user",
            "u2",
            "CN=Grace,OU=Users,DC=corp",
            &[
                ("id", s("u2")),
                ("displayName", s("Grace")),
                ("manager", s("CN=Ada,OU=Users,DC=corp"))
            ]
        )
    );
}

#[tokio::test]
async fn export_rename_rewrites_the_same_rows_dn() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "corp.csv",
        "id,objectType,dn,city\nu1,user,\"CN=Ada,OU=Users\",Austin\nu2,user,\"CN=Bob,OU=Users\",Austin\n",
    );
    let connector = directory(dir.path());
    let results = connector
        .export(vec![rename(
            1,
            "u1",
            "CN=Ada,OU=Users",
            "CN=Ada,OU=Dallas,OU=Users",
            vec![("city", AttrOp::Replace(s("Dallas")))],
        )])
        .await
        .unwrap()
        .results;
    assert_eq!(results, [applied(1, "u1")]);
    assert_eq!(
        read(dir.path(), "corp.csv"),
        "id,objectType,dn,city\nu1,user,\"CN=Ada,OU=Dallas,OU=Users\",Dallas\nu2,user,\"CN=Bob,OU=Users\",Austin\n"
    );
    // The old DN is free again; a case-only rename of the same row is allowed.
    let results = connector
        .export(vec![
            rename(2, "u2", "CN=Bob,OU=Users", "CN=Ada,OU=Users", vec![]),
            rename(
                3,
                "u1",
                "CN=Ada,OU=Dallas,OU=Users",
                "cn=ada,ou=dallas,ou=users",
                vec![],
            ),
        ])
        .await
        .unwrap()
        .results;
    assert_eq!(results, [applied(2, "u2"), applied(3, "u1")]);
    assert_eq!(
        read(dir.path(), "corp.csv"),
        "id,objectType,dn,city\nu1,user,\"cn=ada,ou=dallas,ou=users\",Dallas\nu2,user,\"CN=Ada,OU=Users\",Austin\n"
    );
}

#[tokio::test]
async fn export_refuses_a_dn_another_row_holds() {
    let dir = tempfile::tempdir().unwrap();
    let before = "id,objectType,dn,city\nu1,user,\"CN=Ada,OU=Users\",Austin\nu2,user,\"CN=Bob,OU=Users\",Austin\n";
    write(dir.path(), "corp.csv", before);
    let connector = directory(dir.path());
    let results = connector
        .export(vec![
            rename(
                1,
                "u2",
                "CN=Bob,OU=Users",
                "cn=ADA,ou=users",
                vec![("city", AttrOp::Replace(s("Dallas")))],
            ),
            add_at(2, "user", "CN=Bob,OU=Users", &[("id", s("u3"))]),
            add_at(3, "user", " ", &[("id", s("u4"))]),
            rename(4, "u1", "CN=Ada,OU=Users", "", vec![]),
        ])
        .await
        .unwrap()
        .results;
    assert_eq!(
        failure(&results, 1),
        (
            "corp.csv [id=u2]".to_owned(),
            "the DN \"cn=ADA,ou=users\" is already held by another row (id=\"u1\"): expected a DN no other row has".to_owned()
        )
    );
    assert_eq!(
        failure(&results, 2).1,
        "the DN \"CN=Bob,OU=Users\" is already held by another row (id=\"u2\"): expected a DN no other row has"
    );
    assert_eq!(
        failure(&results, 3).1,
        "an add needs a DN for the column \"dn\": expected a `dn` flow in the outbound rule"
    );
    assert_eq!(
        failure(&results, 4).1,
        "a rename to an empty DN: expected a DN for the column \"dn\""
    );
    // A failed change leaves its row as it was, attribute changes included.
    assert_eq!(read(dir.path(), "corp.csv"), before);
}

#[tokio::test]
async fn export_finds_the_other_holder_of_a_dn_the_file_holds_twice_once_the_first_leaves() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "corp.csv",
        "id,objectType,dn\nu1,user,\"CN=Ada,OU=Users\"\nu2,user,\"cn=ada,ou=users\"\n",
    );
    let connector = directory(dir.path());
    let gone = ExportChange {
        object_type: "user".to_owned(),
        ..delete(2, "u1")
    };
    let results = connector
        .export(vec![
            add_at(1, "user", "CN=Eve,OU=Users", &[("id", s("u5"))]),
            gone,
            add_at(3, "user", "CN=Ada,OU=Users", &[("id", s("u4"))]),
        ])
        .await
        .unwrap()
        .results;
    assert_eq!(
        failure(&results, 3).1,
        "the DN \"CN=Ada,OU=Users\" is already held by another row (id=\"u2\"): expected a DN no other row has"
    );
    assert_eq!(
        read(dir.path(), "corp.csv"),
        "id,objectType,dn\nu2,user,\"cn=ada,ou=users\"\nu5,user,\"CN=Eve,OU=Users\"\n"
    );
}

#[tokio::test]
async fn export_changes_lists_of_dns_one_member_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "corp.csv",
        "id,objectType,dn,members\ng1,group,CN=G,\"CN=A,OU=U;CN=B\\;x,OU=U;CN=C,OU=U\"\n",
    );
    let connector = directory(dir.path());
    let results = connector
        .export(vec![change(
            1,
            "group",
            Some("g1"),
            Some("CN=G"),
            ExportOp::Update {
                new_dn: None,
                changes: vec![
                    (
                        "members".to_owned(),
                        AttrOp::Add(vec![s("CN=D\\;y,OU=U"), s("cn=a,ou=u")]),
                    ),
                    // DNs compare without regard to case.
                    (
                        "members".to_owned(),
                        AttrOp::Remove(vec![s("cn=b\\;X,ou=u")]),
                    ),
                ],
            },
        )])
        .await
        .unwrap()
        .results;
    assert_eq!(results, [applied(1, "g1")]);
    assert_eq!(
        read(dir.path(), "corp.csv"),
        "id,objectType,dn,members\ng1,group,CN=G,\"CN=A,OU=U;CN=C,OU=U;CN=D\\;y,OU=U\"\n"
    );
    let got = full(&*connector).await;
    assert_eq!(
        objects(&got)[0].attributes,
        [
            ("id".to_owned(), s("g1")),
            (
                "members".to_owned(),
                list(&["CN=A,OU=U", "CN=C,OU=U", "CN=D\\;y,OU=U"])
            )
        ]
    );
}

#[tokio::test]
async fn export_rejects_wrong_types_identity_columns_and_renames_without_dns() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "corp.csv", "id,objectType,dn\nu1,user,CN=A\n");
    let connector = directory(dir.path());
    let results = connector
        .export(vec![
            add_at(1, "contact", "CN=X", &[("id", s("x"))]),
            add_at(2, "user", "CN=Y", &[("id", s("y")), ("dn", s("CN=Z"))]),
            change(
                3,
                "user",
                Some("u1"),
                Some("CN=A"),
                ExportOp::Update {
                    new_dn: None,
                    changes: vec![("objectType".to_owned(), AttrOp::Replace(s("group")))],
                },
            ),
            change(
                4,
                "group",
                Some("u1"),
                None,
                ExportOp::Update {
                    new_dn: None,
                    changes: vec![("members".to_owned(), AttrOp::Replace(Value::Ref(9)))],
                },
            ),
        ])
        .await
        .unwrap()
        .results;
    assert_eq!(
        failure(&results, 1).1,
        "object type \"contact\": expected one of \"user\", \"group\" (`object_types`)"
    );
    assert_eq!(
        failure(&results, 2).1,
        "column \"dn\" holds the row's DN (`dn_column`): expected the DN from a `dn` flow, not an attribute"
    );
    assert!(failure(&results, 3)
        .1
        .starts_with("column \"objectType\" holds the row's object type"));
    assert_eq!(
        failure(&results, 4).1,
        "\"members\" holds an unresolved reference (ref:9): expected the referenced row's DN (\"dn\")"
    );
    assert_eq!(
        read(dir.path(), "corp.csv"),
        "id,objectType,dn\nu1,user,CN=A\n"
    );

    // A file without DNs cannot rename.
    let plain = tempfile::tempdir().unwrap();
    write(plain.path(), "hr.csv", "employeeId\nE1\n");
    let results = connector_for_rename(plain.path()).await;
    assert_eq!(
        failure(&results, 1).1,
        "a rename to \"CN=E1\": the rows of this file have no DN (no `dn_column` is configured); expected attribute changes only"
    );
}

async fn connector_for_rename(dir: &Path) -> Vec<ExportResult> {
    connector(dir, "")
        .export(vec![ExportChange {
            op: ExportOp::Update {
                new_dn: Some("CN=E1".to_owned()),
                changes: vec![],
            },
            ..update(1, "E1", vec![])
        }])
        .await
        .unwrap()
        .results
}

#[tokio::test]
async fn export_finds_a_row_by_dn_when_the_anchor_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "corp.csv",
        "id,objectType,dn,city\nu1,user,CN=A,Austin\nu2,user,CN=B,Austin\n",
    );
    let connector = directory(dir.path());
    let results = connector
        .export(vec![
            change(
                1,
                "user",
                None,
                Some("cn=a"),
                ExportOp::Update {
                    new_dn: None,
                    changes: vec![("city".to_owned(), AttrOp::Replace(s("Dallas")))],
                },
            ),
            change(2, "user", None, Some("CN=B"), ExportOp::Delete),
        ])
        .await
        .unwrap()
        .results;
    assert_eq!(results, [applied(1, "u1"), applied(2, "u2")]);
    assert_eq!(
        read(dir.path(), "corp.csv"),
        "id,objectType,dn,city\nu1,user,CN=A,Dallas\n"
    );
}

#[test]
fn split_values_respects_escapes_only_in_lists_of_dns() {
    use super::config::split_values;
    assert_eq!(split_values("a;b;;c", ";", false), ["a", "b", "c"]);
    assert_eq!(split_values("a\\;b;c", ";", false), ["a\\", "b", "c"]);
    assert_eq!(split_values("a\\;b;c", ";", true), ["a\\;b", "c"]);
    assert_eq!(
        split_values("CN=x\\\\;CN=y", ";", true),
        ["CN=x\\\\", "CN=y"]
    );
    assert_eq!(
        split_values("CN=é\\é||CN=ü", "||", true),
        ["CN=é\\é", "CN=ü"]
    );
    assert_eq!(split_values("trailing\\", ";", true), ["trailing\\"]);
    assert!(split_values("", ";", true).is_empty());
}

#[tokio::test]
async fn escape_formulas_quotes_what_a_spreadsheet_would_run_and_import_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), "escape_formulas = true\n");
    let hostile = [
        ("E1", "=HYPERLINK(\"http://evil.example\",\"x\")"),
        ("E2", "+cmd|' /C calc'!A0"),
        ("E3", "-2+3"),
        ("E4", "@SUM(1+1)"),
        ("E5", "'quoted"),
        ("E6", "Ada"),
    ];
    let results = connector
        .export(
            hostile
                .iter()
                .enumerate()
                .map(|(i, (id, name))| {
                    add(i as u64, &[("employeeId", s(id)), ("displayName", s(name))])
                })
                .collect(),
        )
        .await
        .unwrap();
    assert!(results.results.iter().all(|r| r.outcome.is_ok()));
    let text = read(dir.path(), "hr.csv");
    assert_eq!(
        text,
        "employeeId,displayName\nE1,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"\nE2,'+cmd|' /C calc'!A0\nE3,'-2+3\nE4,'@SUM(1+1)\nE5,''quoted\nE6,Ada\n"
    );
    let got = full(connector.as_ref()).await;
    let names: Vec<(String, Value)> = objects(&got)
        .iter()
        .map(|o| (o.anchor.clone(), o.attributes[1].1.clone()))
        .collect();
    let expected: Vec<(String, Value)> = hostile
        .iter()
        .map(|(id, n)| ((*id).to_owned(), s(n)))
        .collect();
    assert_eq!(names, expected, "every value reads back as exported");
    // Off by default: the file holds the values as they are.
    let plain = tempfile::tempdir().unwrap();
    let connector = self::connector(plain.path(), "");
    connector
        .export(vec![add(
            1,
            &[("employeeId", s("E1")), ("displayName", s("=1+1"))],
        )])
        .await
        .unwrap();
    assert_eq!(
        read(plain.path(), "hr.csv"),
        "employeeId,displayName\nE1,=1+1\n"
    );
}

#[tokio::test]
async fn an_export_run_leaves_a_row_index_for_the_next_run_and_a_hand_edit_voids_it() {
    let (dir, first) = ann_then_bob_added().await;
    assert!(!dir.path().join(".hr.csv.mvsync-index").exists());
    first.export_finished().await;
    assert!(dir.path().join(".hr.csv.mvsync-index").exists());

    let next = connector(dir.path(), OUT);
    let bea = update(2, "E2", vec![("displayName", AttrOp::Replace(s("Bea")))]);
    next.export(vec![bea]).await.unwrap();
    next.export_finished().await;
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,Ann,\nE2,Bea,\n"
    );

    // Someone appends a row the next run adds: it must update that row,
    // which only reading the file again can find.
    append(dir.path(), "hr.csv", "E3,Cy,\n");
    let last = connector(dir.path(), OUT);
    add_cy(last.as_ref()).await;
    last.export_finished().await;
    assert_eq!(
        read(dir.path(), "hr.csv"),
        "employeeId,displayName,groups\nE1,Ann,\nE2,Bea,\nE3,Cy,\n"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "the file and its index, nothing else: {names:?}"
    );
}
