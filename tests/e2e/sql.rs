//! The SQL connector through the binary, against a real PostgreSQL that each
//! test starts (`postgres.rs`) and against SQLite files: full import of
//! 50,000 rows with a composite key and a child table, watermark and
//! change-log deltas, export with one failing row, hostile values, the
//! database stopped mid-import, wrong credentials, HR write-back, and the
//! `hr-sqlite` sample.

use serde_json::Value;

use crate::harness::{counter, flat, hr_csv, stderr, worker, Env};
use crate::postgres::{Postgres, PASSWORD};

const PASSWORD_VAR: &str = "MVSYNC_TEST_DB_PASSWORD";

/// Where a test's database lives.
enum Backend {
    Postgres(Postgres),
    /// A SQLite file in the test's folder (`data/hr.db`).
    Sqlite,
}

impl Backend {
    /// A PostgreSQL server with database `hr`, or `None` where none can run.
    fn postgres() -> Option<Backend> {
        let pg = Postgres::start()?;
        pg.create_database("hr");
        Some(Backend::Postgres(pg))
    }

    /// Both backends, PostgreSQL where it can run.
    fn all() -> Vec<Backend> {
        let mut out = vec![Backend::Sqlite];
        out.extend(Backend::postgres());
        out
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }

    /// The connector keys that reach the database.
    fn connection(&self) -> String {
        match self {
            Backend::Postgres(pg) => format!(
                "url = \"{}\"\npassword = {{ env = \"{PASSWORD_VAR}\" }}\n",
                pg.url("hr")
            ),
            Backend::Sqlite => "url = \"sqlite:data/hr.db\"\n".to_owned(),
        }
    }

    /// A test folder with this configuration (the connection keys replace
    /// `{connection}`) and the database's password in its environment.
    fn env(&self, config: &str) -> Env {
        let mut env = Env::new(&config.replace("{connection}", &self.connection()));
        env.set_var(PASSWORD_VAR, PASSWORD);
        env
    }

    fn execute(&self, env: &Env, sql: &str) {
        match self {
            Backend::Postgres(pg) => pg.execute("hr", sql),
            Backend::Sqlite => {
                std::fs::create_dir_all(env.path("data")).expect("data folder");
                let url = format!("sqlite:{}", env.path("data/hr.db").display());
                crate::database::execute(&url, sql)
                    .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"));
            }
        }
    }

    fn query(&self, env: &Env, sql: &str) -> Vec<Vec<String>> {
        match self {
            Backend::Postgres(pg) => pg.query("hr", sql),
            Backend::Sqlite => {
                crate::database::query(&format!("sqlite:{}", env.path("data/hr.db").display()), sql)
            }
        }
    }
}

// ------------------------------------------------------------ HR as a source

const WORKERS_DDL: &str = "
CREATE TABLE workers (company TEXT NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL,
                      title TEXT, version INTEGER NOT NULL, PRIMARY KEY (company, id));
CREATE TABLE worker_values (company TEXT NOT NULL, id INTEGER NOT NULL,
                            attribute TEXT NOT NULL, value TEXT NOT NULL);
CREATE TABLE worker_changes (seq INTEGER NOT NULL PRIMARY KEY, company TEXT NOT NULL,
                             id INTEGER NOT NULL, operation TEXT NOT NULL);
";

/// `n` workers alternating between two companies, each in `staff` and one
/// of ten groups.
fn fill_workers(n: usize) -> String {
    format!(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
         INSERT INTO workers (company, id, name, title, version)
         SELECT CASE WHEN i % 2 = 0 THEN 'ACME' ELSE 'INITECH' END, i, 'Worker ' || i, 'Engineer', 1 FROM s;
         INSERT INTO worker_values SELECT company, id, 'groups', 'staff' FROM workers;
         INSERT INTO worker_values SELECT company, id, 'groups', 'g' || (id % 10) FROM workers;"
    )
}

const SOURCE_CONFIG: &str = r#"
[store]
path = "state/mvsync.db"

[connectors.hrdb]
type = "sql"
{connection}
object_type = "worker"
table = "workers"
anchor = ["company", "id"]
multi_valued = { table = "worker_values", attributes = ["groups"] }
delta = { strategy = "watermark", column = "version" }

[connectors.hrlog]
type = "sql"
{connection}
object_type = "worker"
table = "workers"
anchor = ["company", "id"]
multi_valued = { table = "worker_values", attributes = ["groups"] }
delta = { strategy = "change-log", table = "worker_changes" }

[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hrdb"
mv_object_type = "person"
join = [ { cs = "name", mv = "displayName" } ]
project = true
[rules.flows]
displayName = "name"
title = "title"
groups = "groups"
"#;

#[test]
fn full_import_of_50000_rows_with_a_composite_key_and_a_child_table() {
    for db in Backend::all() {
        let env = db.env(SOURCE_CONFIG);
        db.execute(&env, WORKERS_DDL);
        db.execute(&env, &fill_workers(50_000));
        env.ok(&["import", "hrdb", "--full"]);
        let run = env.last_run();
        assert_eq!(counter(&run, "import_adds"), 50_000, "{}: {run}", db.name());
        let cs = env.show_cs("hrdb", "INITECH|49999");
        let text = cs.to_string();
        assert!(
            text.contains("Worker 49999") && text.contains("g9") && text.contains("staff"),
            "{}: {cs}",
            db.name()
        );
        // A second full import of the same rows stages nothing.
        env.ok(&["import", "hrdb", "--full"]);
        let run = env.last_run();
        assert_eq!(
            counter(&run, "import_adds")
                + counter(&run, "import_updates")
                + counter(&run, "import_deletes"),
            0,
            "{}: {run}",
            db.name()
        );
        env.ok(&["sync", "hrdb", "--full"]);
        assert_eq!(
            counter(&env.last_run(), "projections"),
            50_000,
            "{}",
            db.name()
        );
        env.ok(&["check"]);
    }
}

#[test]
fn watermark_and_change_log_deltas_see_inserts_updates_and_deletes() {
    for db in Backend::all() {
        let env = db.env(SOURCE_CONFIG);
        db.execute(&env, WORKERS_DDL);
        db.execute(&env, &fill_workers(20));
        for connector in ["hrdb", "hrlog"] {
            // Synced, so that what a delta stages counts as adds and updates.
            env.ok(&["import", connector, "--full"]);
            env.ok(&["sync", connector, "--full"]);
        }

        db.execute(
            &env,
            "UPDATE workers SET title = 'Manager', version = 2 WHERE id IN (2, 3);
             INSERT INTO worker_values VALUES ('ACME', 4, 'groups', 'admins');
             UPDATE workers SET version = 2 WHERE id = 4;
             INSERT INTO workers VALUES ('ACME', 100, 'Worker 100', 'Intern', 3);
             DELETE FROM worker_values WHERE id = 5;
             DELETE FROM workers WHERE id = 5;
             INSERT INTO worker_changes VALUES (1, 'ACME', 2, 'update'), (2, 'INITECH', 3, 'update'),
                                               (3, 'ACME', 4, 'update'), (4, 'ACME', 100, 'insert'),
                                               (5, 'INITECH', 5, 'delete');",
        );

        env.ok(&["import", "hrdb", "--delta"]);
        let run = env.last_run();
        assert_eq!(
            (
                counter(&run, "import_adds"),
                counter(&run, "import_updates"),
                counter(&run, "import_deletes")
            ),
            (1, 3, 0),
            "{}: watermark delta {run}",
            db.name()
        );
        let groups = env.show_cs("hrdb", "ACME|4").to_string();
        assert!(groups.contains("admins"), "{}: {groups}", db.name());

        env.ok(&["import", "hrlog", "--delta"]);
        let run = env.last_run();
        assert_eq!(
            (
                counter(&run, "import_adds"),
                counter(&run, "import_updates"),
                counter(&run, "import_deletes")
            ),
            (1, 3, 1),
            "{}: change-log delta {run}",
            db.name()
        );

        // Nothing new: both deltas stage nothing.
        for connector in ["hrdb", "hrlog"] {
            env.ok(&["import", connector, "--delta"]);
            let run = env.last_run();
            assert_eq!(
                counter(&run, "import_adds")
                    + counter(&run, "import_updates")
                    + counter(&run, "import_deletes"),
                0,
                "{}: {connector} {run}",
                db.name()
            );
        }

        // The watermark column cannot see a delete; the next full import does.
        env.ok(&["import", "hrdb", "--full"]);
        assert_eq!(
            counter(&env.last_run(), "import_deletes"),
            1,
            "{}",
            db.name()
        );

        // A restored backup moves the watermark column back: a clear error, and a
        // full import with the fallback.
        db.execute(&env, "UPDATE workers SET version = 1;");
        let out = env.expect(&["import", "hrdb", "--delta"], 5);
        let text = flat(&stderr(&out));
        assert!(
            text.contains("moved backwards") && text.contains("run a full import"),
            "{}: {text}",
            db.name()
        );
    }
}

// ------------------------------------------------------------ an app table as a target

const APP_DDL: &str = "
CREATE TABLE accounts (account TEXT NOT NULL PRIMARY KEY,
                       display_name TEXT NOT NULL CHECK (display_name <> 'Bad Row'),
                       department TEXT, manager TEXT);
";

const TARGET_CONFIG: &str = r#"
[store]
path = "state/mvsync.db"

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"
references = { managerId = "employeeId" }

[connectors.app]
type = "sql"
{connection}
object_type = "account"
table = "accounts"
anchor = "account"
references = { manager = "account" }

[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hr"
mv_object_type = "person"
join = [ { cs = "employeeId", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "employeeId"
displayName = 'Join(" ", firstName, lastName)'
department = "department"
manager = "managerId"

[[rules]]
name = "app-out"
direction = "outbound"
connector = "app"
mv_object_type = "person"
cs_object_type = "account"
provision = true
deprovision = "delete"
[rules.flows]
account = { expr = "Lower(employeeId)", initial_only = true }
display_name = "displayName"
department = "department"
manager = "manager"

[run_profiles.cycle]
steps = [
  { connector = "hr", step = "full-import" },
  { connector = "hr", step = "full-sync" },
  { connector = "app", step = "export" },
  { connector = "app", step = "full-import" },
  { connector = "app", step = "full-sync" },
]
"#;

fn accounts(db: &Backend, env: &Env) -> Vec<Vec<String>> {
    db.query(env, "SELECT account, display_name, COALESCE(department, 'NULL'), COALESCE(manager, 'NULL') FROM accounts ORDER BY account")
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

#[test]
fn export_of_adds_updates_and_deletes_where_one_failing_row_fails_alone() {
    for db in Backend::all() {
        let env = db.env(TARGET_CONFIG);
        db.execute(&env, APP_DDL);
        let mut workers = vec![
            worker("E1", "Ann", "Lee"),
            worker("E2", "Bob", "Ray").manager("E1"),
            worker("E3", "Bad", "Row"),
            worker("E4", "Cy", "Poe").manager("E1"),
        ];
        env.write("data/hr.csv", &hr_csv(&workers));
        env.expect(&["run", "cycle"], 3);
        let export = env
            .history()
            .into_iter()
            .rfind(|r| r["connector"] == "app" && r["step"] == "Export")
            .expect("an export step");
        let errors = env.run_errors(&export);
        assert_eq!(errors.len(), 1, "{}: {errors:?}", db.name());
        let error = errors[0].to_string();
        let code = if db.name() == "postgres" {
            "SQLSTATE 23514"
        } else {
            "SQLITE 275"
        };
        assert!(
            error.contains(code) && error.contains("export-rejected"),
            "{}: {error}",
            db.name()
        );
        assert_eq!(
            accounts(&db, &env),
            [
                row(&["e1", "Ann Lee", "Engineering", "NULL"]),
                row(&["e2", "Bob Ray", "Engineering", "e1"]),
                row(&["e4", "Cy Poe", "Engineering", "e1"]),
            ],
            "{}",
            db.name()
        );

        // A mover, a leaver, and the bad row fixed.
        workers[1] = worker("E2", "Bob", "Ray").manager("E1").department("Sales");
        workers[2] = worker("E3", "Di", "Row");
        workers.remove(3);
        env.write("data/hr.csv", &hr_csv(&workers));
        env.ok(&["run", "cycle"]);
        assert_eq!(
            accounts(&db, &env),
            [
                row(&["e1", "Ann Lee", "Engineering", "NULL"]),
                row(&["e2", "Bob Ray", "Sales", "e1"]),
                row(&["e3", "Di Row", "Engineering", "NULL"]),
            ],
            "{}",
            db.name()
        );
        assert!(
            env.preview().is_empty(),
            "{}: the confirming import settles everything",
            db.name()
        );
    }
}

#[test]
fn values_with_quotes_semicolons_and_comment_markers_round_trip_unchanged() {
    let hostile_first = "O'Brien\"; DROP TABLE accounts; --";
    let hostile_last = "/* x */ ?1 $1 :name \\ ''";
    for db in Backend::all() {
        let env = db.env(TARGET_CONFIG);
        db.execute(&env, APP_DDL);
        env.write(
            "data/hr.csv",
            &hr_csv(&[
                worker("E1", hostile_first, hostile_last),
                worker("E2';--", "Bo", "Ray"),
            ]),
        );
        env.ok(&["run", "cycle"]);
        let rows = accounts(&db, &env);
        assert_eq!(
            rows,
            [
                row(&[
                    "e1",
                    &format!("{hostile_first} {hostile_last}"),
                    "Engineering",
                    "NULL"
                ]),
                row(&["e2';--", "Bo Ray", "Engineering", "NULL"]),
            ],
            "{}",
            db.name()
        );
        // Confirmed as written: nothing pending, nothing to re-export.
        env.ok(&["run", "cycle"]);
        assert!(env.preview().is_empty(), "{}", db.name());
        assert_eq!(
            counter(&env.last_run(), "exports_staged"),
            0,
            "{}",
            db.name()
        );
    }
}

// ------------------------------------------------------------ failures

#[test]
fn the_database_stopped_mid_import_is_a_clear_error_and_the_next_run_completes() {
    let Some(db) = Backend::postgres() else {
        return;
    };
    let env = db.env(SOURCE_CONFIG);
    let Backend::Postgres(mut pg) = db else {
        unreachable!("Backend::postgres gives a PostgreSQL backend")
    };
    pg.execute("hr", WORKERS_DDL);
    pg.execute("hr", &fill_workers(60_000));
    env.ok(&["import", "hrdb", "--full"]);
    env.ok(&["sync", "hrdb", "--full"]);
    pg.execute(
        "hr",
        "UPDATE workers SET title = 'Senior Engineer', version = 2",
    );

    // Stop the server while the import streams its rows.
    let child = env
        .command(&["import", "hrdb", "--full"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mvsync");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pg.active_queries("hr", "mvsync") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the import's query never showed up"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    pg.stop_now();
    let out = child.wait_with_output().expect("wait for mvsync");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        crate::harness::describe(&out)
    );
    let text = flat(&stderr(&out));
    assert!(
        text.contains("unreachable or went away")
            && text.contains(&format!("127.0.0.1:{}/hr", pg.port())),
        "{text}"
    );
    assert!(!text.contains(PASSWORD));
    let failed = env.last_run();
    assert_eq!(
        counter(&failed, "import_deletes"),
        0,
        "an import cut short deletes nothing: {failed}"
    );

    // Everything imported before is intact; the next run completes.
    pg.restart();
    env.ok(&["check"]);
    env.ok(&["import", "hrdb", "--full"]);
    let run = env.last_run();
    assert_eq!(counter(&run, "import_deletes"), 0, "{run}");
    assert_eq!(
        counter(&run, "import_updates") + counter(&failed, "import_updates"),
        60_000,
        "{run}\n{failed}"
    );
    env.ok(&["sync", "hrdb", "--delta"]);
    env.ok(&["check"]);
    let cs = env.show_cs("hrdb", "ACME|2").to_string();
    assert!(cs.contains("Senior Engineer"), "{cs}");
}

#[test]
fn a_wrong_password_and_a_server_that_is_down_are_clear_errors_naming_no_secret() {
    let Some(db) = Backend::postgres() else {
        return;
    };
    let mut env = db.env(SOURCE_CONFIG);
    db.execute(&env, WORKERS_DDL);
    env.set_var(PASSWORD_VAR, "not-the-password-0x7");
    let out = env.expect(&["test-connection", "hrdb"], 5);
    let text = flat(&stderr(&out));
    assert!(
        text.contains("credentials were refused")
            && text.contains("password authentication failed"),
        "{text}"
    );
    assert!(!text.contains("not-the-password-0x7"), "{text}");

    let Backend::Postgres(mut pg) = db else {
        unreachable!()
    };
    pg.stop_now();
    env.set_var(PASSWORD_VAR, PASSWORD);
    let out = env.expect(&["import", "hrdb", "--full"], 5);
    let text = flat(&stderr(&out));
    assert!(
        text.contains("cannot connect") && text.contains("unreachable"),
        "{text}"
    );
}

// ------------------------------------------------------------ HR write-back

const WRITE_BACK_CONFIG: &str = r#"
[store]
path = "state/mvsync.db"

[connectors.hrdb]
type = "sql"
{connection}
object_type = "worker"
table = "hr_workers"
anchor = "employee_id"
delta = { strategy = "watermark", column = "version" }

[connectors.app]
type = "csv"
path = "state/app.csv"
object_type = "account"
anchor = "accountName"

[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hrdb"
mv_object_type = "person"
join = [ { cs = "employee_id", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "employee_id"
firstName = "first_name"
lastName = "last_name"

[[rules]]
name = "app-out"
direction = "outbound"
connector = "app"
mv_object_type = "person"
cs_object_type = "account"
provision = true
deprovision = "delete"
[rules.flows]
accountName = { expr = 'SelectUniqueValue(Lower(Left(firstName, 1) + lastName), Lower(firstName + "." + lastName))', initial_only = true }
mail = 'Lower(firstName + "." + lastName) + "@corp.example"'

[[rules]]
name = "app-in"
direction = "inbound"
connector = "app"
mv_object_type = "person"
precedence = 20
join = [ { cs = "mail", mv = "mail" } ]
[rules.flows]
username = "accountName"
mail = "mail"

[[rules]]
name = "hr-write-back"
direction = "outbound"
connector = "hrdb"
mv_object_type = "person"
cs_object_type = "worker"
provision = false
[rules.flows]
mail = "mail"
username = "username"

[run_profiles.cycle]
steps = [
  { connector = "hrdb", step = "delta-import", fallback = "full-import" },
  { connector = "hrdb", step = "delta-sync" },
  { connector = "app", step = "export" },
  { connector = "app", step = "full-import" },
  { connector = "app", step = "delta-sync" },
  { connector = "hrdb", step = "export" },
  { connector = "hrdb", step = "full-import" },
]
"#;

#[test]
fn mail_and_username_are_written_back_to_the_hr_database() {
    for db in Backend::all() {
        let env = db.env(WRITE_BACK_CONFIG);
        db.execute(
            &env,
            "CREATE TABLE hr_workers (employee_id TEXT NOT NULL PRIMARY KEY, first_name TEXT NOT NULL,
                                      last_name TEXT NOT NULL, mail TEXT, username TEXT, version INTEGER NOT NULL);
             INSERT INTO hr_workers VALUES ('E1', 'John', 'Smith', NULL, NULL, 1), ('E2', 'Jane', 'Smith', NULL, NULL, 1);",
        );
        env.ok(&["run", "cycle"]);
        let rows = db.query(
            &env,
            "SELECT employee_id, mail, username FROM hr_workers ORDER BY employee_id",
        );
        assert_eq!(
            rows,
            [
                row(&["E1", "john.smith@corp.example", "jsmith"]),
                row(&["E2", "jane.smith@corp.example", "jane.smith"]),
            ],
            "{}",
            db.name()
        );
        // The write-back is confirmed: a second cycle changes nothing.
        env.ok(&["run", "cycle"]);
        assert!(env.preview().is_empty(), "{}", db.name());
        let errors = env.run_errors(&env.last_run());
        assert!(errors.is_empty(), "{}: {errors:?}", db.name());
    }
}

#[test]
fn statements_call_a_stored_procedure_with_typed_parameters() {
    let Some(db) = Backend::postgres() else {
        return;
    };
    let config = WRITE_BACK_CONFIG.replace(
        "delta = { strategy = \"watermark\", column = \"version\" }",
        "delta = { strategy = \"watermark\", column = \"version\" }\nstatements = { update = \"CALL set_contact(:employee_id, :mail, :username)\" }",
    );
    let env = db.env(&config);
    db.execute(
        &env,
        "CREATE TABLE hr_workers (employee_id INT4 NOT NULL PRIMARY KEY, first_name TEXT NOT NULL,
                                  last_name TEXT NOT NULL, mail TEXT, username TEXT, version INT8 NOT NULL);
         INSERT INTO hr_workers VALUES (1, 'John', 'Smith', NULL, NULL, 1), (2, 'Jane', 'Smith', NULL, NULL, 1);
         CREATE TABLE contact_log (employee_id INT4, mail TEXT);
         CREATE PROCEDURE set_contact(p_id INT4, p_mail TEXT, p_username TEXT) LANGUAGE SQL AS $$
           UPDATE hr_workers SET mail = COALESCE(p_mail, mail), username = COALESCE(p_username, username)
            WHERE employee_id = p_id;
           INSERT INTO contact_log VALUES (p_id, p_mail);
         $$;",
    );
    env.ok(&["run", "cycle"]);
    assert_eq!(
        db.query(
            &env,
            "SELECT employee_id::text, mail, username FROM hr_workers ORDER BY employee_id"
        ),
        [
            row(&["1", "john.smith@corp.example", "jsmith"]),
            row(&["2", "jane.smith@corp.example", "jane.smith"]),
        ]
    );
    assert_eq!(
        db.query(&env, "SELECT count(*)::text FROM contact_log"),
        [row(&["2"])]
    );
    env.ok(&["run", "cycle"]);
    assert!(env.preview().is_empty());
    assert_eq!(
        db.query(&env, "SELECT count(*)::text FROM contact_log"),
        [row(&["2"])],
        "nothing called twice"
    );
}

// ------------------------------------------------------------ the sample

#[test]
fn the_hr_sqlite_sample_runs_with_no_server() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/hr-sqlite");
    let env = Env::empty();
    for file in ["mvsync.toml", "data/hr.db"] {
        let to = env.path(file);
        std::fs::create_dir_all(to.parent().expect("a folder")).expect("folders");
        std::fs::copy(sample.join(file), &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    env.ok(&["run", "full"]);
    let rows = env.csv_rows("state/app-accounts.csv");
    assert_eq!(
        rows.len(),
        21,
        "every employee and contractor, not the intern: {rows:?}"
    );
    let account = |name: &str| {
        rows.iter()
            .find(|r| r["accountName"] == name)
            .unwrap_or_else(|| panic!("{name} in {rows:?}"))
    };
    assert_eq!(account("e1000")["roles"], "approver;executive");
    assert_eq!(account("e1005")["displayName"], "Bob Smith");
    assert_eq!(account("e1005")["manager"], "e1004");
    assert_eq!(account("e1016")["enabled"], "no");
    env.ok(&["run", "delta"]);
    assert!(env.preview().is_empty());
}

#[test]
fn the_hr_sqlite_samples_database_is_built_from_its_sql() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/hr-sqlite/data");
    let script = std::fs::read_to_string(data.join("hr.sql")).expect("hr.sql");
    let built = Env::empty();
    let url = format!("sqlite:{}", built.path("hr.db").display());
    crate::database::execute(&url, &script).expect("hr.sql runs");
    let shipped = format!("sqlite:{}", data.join("hr.db").display());
    for sql in [
        "SELECT employee_id, first_name, last_name, COALESCE(preferred_name, ''), department, city, worker_type, status, COALESCE(manager_id, ''), updated_at FROM workers ORDER BY employee_id",
        "SELECT employee_id, attribute, value FROM worker_values ORDER BY employee_id, attribute, value",
    ] {
        assert_eq!(crate::database::query(&shipped, sql), crate::database::query(&url, sql), "data/hr.db differs from data/hr.sql: rebuild it (see samples/hr-sqlite/README.md)");
    }
}

// ------------------------------------------------------------ PostgreSQL's types

const TYPED_CONFIG: &str = r#"
[store]
path = "state/mvsync.db"

[connectors.people]
type = "sql"
{connection}
object_type = "person"
table = "people"
anchor = "id"
delta = { strategy = "watermark", column = "seen" }

[connectors.typed]
type = "sql"
{connection}
object_type = "account"
table = "typed_accounts"
anchor = "account"

[[rules]]
name = "people-in"
direction = "inbound"
connector = "people"
mv_object_type = "person"
join = [ { cs = "id", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "id"
displayName = "name"
active = "active"
hired = "hired"
salary = "salary"

[[rules]]
name = "typed-out"
direction = "outbound"
connector = "typed"
mv_object_type = "person"
cs_object_type = "account"
provision = true
deprovision = "delete"
[rules.flows]
account = { expr = '"p" + employeeId', initial_only = true }
number = "employeeId"
active = "active"
started = "hired"
salary = "salary"

[run_profiles.cycle]
steps = [
  { connector = "people", step = "delta-import", fallback = "full-import" },
  { connector = "people", step = "delta-sync" },
  { connector = "typed", step = "export" },
  { connector = "typed", step = "full-import" },
  { connector = "typed", step = "delta-sync" },
]
"#;

#[test]
fn postgres_column_types_become_typed_values_and_typed_columns_are_written() {
    let Some(db) = Backend::postgres() else {
        return;
    };
    let env = db.env(TYPED_CONFIG);
    db.execute(
        &env,
        "CREATE TABLE people (id INT4 PRIMARY KEY, name TEXT NOT NULL, active BOOL, salary NUMERIC(10, 2),
                              hired DATE, seen TIMESTAMPTZ NOT NULL, ext UUID, photo BYTEA, extra JSONB);
         INSERT INTO people VALUES
           (1, 'Ann', true, 1234.5, '2026-01-15', '2026-12-01 08:00:00.123456+00',
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x0102ff', '{\"k\": 1}'),
           (2, 'Bob', false, NULL, NULL, '2026-12-01 08:00:00.123456+00', NULL, NULL, NULL);
         CREATE TABLE typed_accounts (account TEXT PRIMARY KEY, number INT4 NOT NULL, active BOOL,
                                      started DATE, salary NUMERIC(10, 2));",
    );
    env.ok(&["run", "cycle"]);
    let ann = env.show_cs("people", "1");
    let attrs: serde_json::Map<String, Value> = ann["hologram"]
        .as_array()
        .expect("a hologram")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().expect("a name").to_owned(),
                pair[1].clone(),
            )
        })
        .collect();
    assert_eq!(attrs["id"], serde_json::json!(1), "{ann}");
    assert_eq!(attrs["active"], serde_json::json!(true), "{ann}");
    assert_eq!(attrs["salary"], serde_json::json!("1234.50"), "{ann}");
    assert_eq!(attrs["hired"], serde_json::json!("2026-01-15"), "{ann}");
    assert_eq!(
        attrs["ext"],
        serde_json::json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        "{ann}"
    );
    assert_eq!(
        attrs["photo"],
        serde_json::json!("AQL/"),
        "bytes, shown as base64: {ann}"
    );
    assert_eq!(attrs["extra"], serde_json::json!("{\"k\":1}"), "{ann}");
    assert!(
        attrs["seen"]
            .to_string()
            .contains("2026-12-01T08:00:00.123456"),
        "{ann}"
    );

    let rows = db.query(
        &env,
        "SELECT account, number::text, COALESCE(active::text, 'NULL'), COALESCE(started::text, 'NULL'), COALESCE(salary::text, 'NULL') FROM typed_accounts ORDER BY account",
    );
    assert_eq!(
        rows,
        [
            row(&["p1", "1", "true", "2026-01-15", "1234.50"]),
            row(&["p2", "2", "false", "NULL", "NULL"])
        ]
    );
    assert!(
        env.preview().is_empty(),
        "typed values are confirmed as written"
    );

    // A timestamp watermark: only the row seen later is read.
    db.execute(
        &env,
        "UPDATE people SET salary = 99.99, seen = '2026-12-01 08:00:00.123457+00' WHERE id = 2",
    );
    env.ok(&["import", "people", "--delta"]);
    let run = env.last_run();
    assert_eq!(
        (
            counter(&run, "import_updates"),
            counter(&run, "import_adds")
        ),
        (1, 0),
        "{run}"
    );
    env.ok(&["run", "cycle"]);
    assert_eq!(
        db.query(
            &env,
            "SELECT salary::text FROM typed_accounts WHERE account = 'p2'"
        ),
        [row(&["99.99"])]
    );
}
