//! The test harness: a temporary folder per test holding its own
//! `mvsync.toml` and CSV files, the `mvsync` binary run inside it, and
//! readers for what the binary writes (exported CSV, preview and history JSON).
//!
//! Commands run with the folder as working directory and no `-c`, so the
//! config is the default `mvsync.toml` and every message names files exactly
//! as a test wrote them (`mvsync.toml:3:7`, `data/hr.csv:4:2`).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mvsync-testkit");

/// Where the test configuration's app connector exports to.
pub const APP_CSV: &str = "state/app.csv";

/// `mvsync args` in `dir`, isolated from the caller's environment.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(dir)
        .env_remove("MVSYNC_CONFIG")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

/// The exit code (-1 when killed by a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything about a finished command, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit code {}\n--- stdout\n{}--- stderr\n{}",
        code(o),
        stdout(o),
        stderr(o)
    )
}

/// Text with the report's frame (miette wraps long messages inside `│`
/// borders) removed and whitespace collapsed, so a message can be searched
/// for whatever the terminal width was.
pub fn flat(text: &str) -> String {
    text.replace(['│', '×'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A CSV row by column name.
pub type Row = BTreeMap<String, String>;

/// A test's folder.
pub struct Env {
    dir: tempfile::TempDir,
    /// Environment variables every command of this folder gets (a connector's password).
    vars: Vec<(String, String)>,
}

impl Env {
    /// An empty folder.
    pub fn empty() -> Env {
        Env {
            vars: Vec::new(),
            dir: tempfile::Builder::new()
                .prefix("mvsync-e2e-")
                .tempdir()
                .expect("create a temp dir"),
        }
    }

    /// A folder with this `mvsync.toml`.
    pub fn new(config: &str) -> Env {
        let env = Env::empty();
        env.write("mvsync.toml", config);
        env
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file, creating its folders.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// A file's bytes (empty when missing).
    pub fn bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_default()
    }

    /// Runs `mvsync args` to completion.
    /// Gives every later command of this folder the variable `name`.
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.vars.push((name.to_owned(), value.to_owned()));
    }

    /// `mvsync args` in this folder, with its variables.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = command(self.root(), args);
        c.envs(self.vars.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn mvsync(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run mvsync")
    }

    /// Starts `mvsync args`, its output discarded unless the caller pipes it.
    pub fn spawn(&self, args: &[&str], stdout: Stdio) -> Child {
        self.command(args)
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("start mvsync")
    }

    /// Runs `mvsync args` and asserts its exit code.
    pub fn expect(&self, args: &[&str], expected: i32) -> Output {
        let out = self.mvsync(args);
        assert_eq!(
            code(&out),
            expected,
            "`mvsync {}` in {}:\n{}",
            args.join(" "),
            self.root().display(),
            describe(&out)
        );
        out
    }

    /// Runs `mvsync args` and asserts that it succeeds.
    pub fn ok(&self, args: &[&str]) -> Output {
        self.expect(args, 0)
    }

    /// Runs `mvsync args --format json`, which must succeed, and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let args: Vec<&str> = args.iter().copied().chain(["--format", "json"]).collect();
        let out = self.ok(&args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "`mvsync {}` printed invalid JSON ({e}):\n{}",
                args.join(" "),
                describe(&out)
            )
        })
    }

    /// Every pending export.
    pub fn preview(&self) -> Vec<Value> {
        array(self.json(&["preview"]))
    }

    /// Every run record, oldest first.
    pub fn history(&self) -> Vec<Value> {
        array(self.json(&["history"]))
    }

    /// The latest run record.
    pub fn last_run(&self) -> Value {
        self.history().pop().expect("a run in the history")
    }

    /// The per-object errors of a run.
    pub fn run_errors(&self, run: &Value) -> Vec<Value> {
        let id = run["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("a run id in {run}"))
            .to_string();
        array(self.json(&["history", &id])["errors"].take())
    }

    /// A connector-space object.
    pub fn show_cs(&self, connector: &str, anchor: &str) -> Value {
        self.json(&["show", "cs", connector, anchor])
    }

    /// The rows of a CSV file (none when it does not exist).
    pub fn csv_rows(&self, rel: &str) -> Vec<Row> {
        let Ok(file) = std::fs::File::open(self.path(rel)) else {
            return Vec::new();
        };
        let mut reader = csv::Reader::from_reader(file);
        let header = reader.headers().expect("a header row").clone();
        reader
            .records()
            .map(|r| {
                let r = r.unwrap_or_else(|e| panic!("{rel} is not valid CSV: {e}"));
                header
                    .iter()
                    .zip(r.iter())
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .collect()
    }

    /// The exported app accounts.
    pub fn app_rows(&self) -> Vec<Row> {
        self.csv_rows(APP_CSV)
    }

    /// The one exported account with this name.
    pub fn app_row(&self, account: &str) -> Row {
        let rows = self.app_rows();
        let found: Vec<&Row> = rows
            .iter()
            .filter(|r| r["accountName"] == account)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one row for account {account} in {APP_CSV}, found {}: {rows:#?}",
            found.len()
        );
        found[0].clone()
    }

    /// Replaces the HR file.
    pub fn write_hr(&self, workers: &[Worker]) {
        self.write("data/hr.csv", &hr_csv(workers));
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("expected a JSON array, got {other}"),
    }
}

/// `(object, operation)` of each pending export, in preview order.
pub fn operations(preview: &[Value]) -> Vec<(String, String)> {
    preview
        .iter()
        .map(|c| {
            (
                c["object"].as_str().unwrap_or("?").to_owned(),
                c["operation"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// What differs between two versions of a CSV file, keyed by `anchor`:
/// `(anchor, column, old, new)` for each changed cell, with column `*` and
/// `present`/`absent` for a row added or removed.
pub fn changed_cells(
    before: &[Row],
    after: &[Row],
    anchor: &str,
) -> Vec<(String, String, String, String)> {
    let index = |rows: &[Row]| -> BTreeMap<String, Row> {
        rows.iter()
            .map(|r| (r[anchor].clone(), r.clone()))
            .collect()
    };
    let (old, new) = (index(before), index(after));
    let mut out = Vec::new();
    for key in old
        .keys()
        .chain(new.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (old.get(key), new.get(key)) {
            (Some(o), Some(n)) => {
                for column in o
                    .keys()
                    .chain(n.keys())
                    .collect::<std::collections::BTreeSet<_>>()
                {
                    let (a, b) = (
                        o.get(column).cloned().unwrap_or_default(),
                        n.get(column).cloned().unwrap_or_default(),
                    );
                    if a != b {
                        out.push((key.clone(), column.clone(), a, b));
                    }
                }
            }
            (o, _) => {
                let (a, b) = if o.is_some() {
                    ("present", "absent")
                } else {
                    ("absent", "present")
                };
                out.push((key.clone(), "*".into(), a.into(), b.into()));
            }
        }
    }
    out
}

/// `changed_cells` entries from string literals.
pub fn cells(items: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    items
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect()
}

// ------------------------------------------------------------------ HR data

/// The columns of the test HR file.
pub const HR_COLUMNS: [&str; 8] = [
    "employeeId",
    "firstName",
    "lastName",
    "email",
    "department",
    "workerType",
    "status",
    "managerId",
];

/// One row of the test HR file.
#[derive(Clone, Debug)]
pub struct Worker {
    /// employeeId.
    pub id: String,
    first: String,
    last: String,
    email: String,
    department: String,
    kind: String,
    status: String,
    manager: String,
}

/// An active employee in Engineering without a manager or an email.
pub fn worker(id: &str, first: &str, last: &str) -> Worker {
    Worker {
        id: id.into(),
        first: first.into(),
        last: last.into(),
        email: String::new(),
        department: "Engineering".into(),
        kind: "Employee".into(),
        status: "Active".into(),
        manager: String::new(),
    }
}

impl Worker {
    /// With this department.
    pub fn department(mut self, d: &str) -> Worker {
        self.department = d.into();
        self
    }

    /// Terminated.
    pub fn terminated(mut self) -> Worker {
        self.status = "Terminated".into();
        self
    }

    /// With this manager (an employeeId).
    pub fn manager(mut self, id: &str) -> Worker {
        self.manager = id.into();
        self
    }

    /// With this personal email.
    pub fn email(mut self, e: &str) -> Worker {
        self.email = e.into();
        self
    }

    /// A contractor.
    pub fn contractor(mut self) -> Worker {
        self.kind = "Contractor".into();
        self
    }

    /// The row's cells, in `HR_COLUMNS` order.
    pub fn cells(&self) -> [&str; 8] {
        [
            &self.id,
            &self.first,
            &self.last,
            &self.email,
            &self.department,
            &self.kind,
            &self.status,
            &self.manager,
        ]
    }
}

/// The HR file holding `workers`.
pub fn hr_csv(workers: &[Worker]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(HR_COLUMNS).expect("write header");
    for worker in workers {
        w.write_record(worker.cells()).expect("write row");
    }
    String::from_utf8(w.into_inner().expect("flush")).expect("utf-8")
}

/// A small organisation: Ada manages Grace, who manages Alan.
pub fn staff() -> Vec<Worker> {
    vec![
        worker("E1", "Ada", "Lovelace").email("ada@example.org"),
        worker("E2", "Grace", "Hopper")
            .manager("E1")
            .email("grace@example.org"),
        worker("E3", "Alan", "Turing")
            .manager("E2")
            .department("Research")
            .email("alan@example.org"),
    ]
}

/// `n` workers in a tree of managers (ten reports each, managers first),
/// with diacritics, quoted departments, contractors and leavers.
pub fn many_workers(n: usize) -> Vec<Worker> {
    const FIRST: [&str; 8] = [
        "Zoë", "José", "Łukasz", "Anna", "Søren", "Chloé", "Kenji", "Priya",
    ];
    const LAST: [&str; 9] = [
        "Ørsted", "García", "Müller", "Peña", "Nielsen", "Dubois", "Tanaka", "Sharma", "Horák",
    ];
    const DEPARTMENTS: [&str; 3] = ["Engineering", "Sales, EMEA", "Finance"];
    (0..n)
        .map(|i| {
            let mut w = worker(&format!("E{i:06}"), FIRST[i % 8], LAST[i % 9])
                .department(DEPARTMENTS[i % 3]);
            if i > 0 {
                w = w.manager(&format!("E{:06}", (i - 1) / 10));
            }
            if i % 7 == 3 {
                w = w.contractor();
            }
            if i % 13 == 5 {
                w = w.terminated();
            }
            w
        })
        .collect()
}

// ------------------------------------------------------------------ config

/// The test configuration: `hr` (with a change file) feeds `person`s, each
/// provisioned as an `app` account written to `state/app.csv`. The knobs
/// are the parts tests vary; `extra` is appended (more connectors and rules).
pub struct Setup {
    /// `[engine] deletion_threshold`.
    pub threshold: usize,
    /// The `hr-in` scope.
    pub hr_scope: &'static str,
    /// The `app-out` scope.
    pub app_scope: &'static str,
    /// The `app-out` deprovision action.
    pub deprovision: &'static str,
    /// TOML appended to the file.
    pub extra: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            threshold: 500,
            hr_scope: r#"workerType == "Employee" || workerType == "Contractor""#,
            app_scope: "IsPresent(employeeId)",
            deprovision: "delete",
            extra: "",
        }
    }
}

const TEMPLATE: &str = r#"[store]
path = "state/mvsync.db"

[engine]
deletion_threshold = @THRESHOLD@

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"
references = { managerId = "employeeId" }
change_file = "data/hr-changes.csv"

[connectors.app]
type = "csv"
path = "state/app.csv"
object_type = "account"
anchor = "accountName"
references = { manager = "accountName" }
columns = ["accountName", "displayName", "department", "manager", "enabled"]

[[rules]]
name = "hr-in"
direction = "inbound"
connector = "hr"
mv_object_type = "person"
precedence = 10
scope = '@HR_SCOPE@'
join = [ { cs = "employeeId", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "employeeId"
displayName = 'Join(" ", firstName, lastName)'
department = "department"
personalEmail = "email"
manager = "managerId"
active = 'status != "Terminated"'

[[rules]]
name = "app-out"
direction = "outbound"
connector = "app"
mv_object_type = "person"
cs_object_type = "account"
scope = '@APP_SCOPE@'
provision = true
deprovision = "@DEPROVISION@"
[rules.flows]
accountName = { expr = 'Lower(employeeId)', initial_only = true }
displayName = "displayName"
department = "department"
manager = "manager"
enabled = 'IIF(active, "yes", "no")'

[run_profiles.full]
steps = [
  { connector = "hr", step = "full-import" },
  { connector = "hr", step = "full-sync" },
  { connector = "app", step = "export" },
  { connector = "app", step = "full-import" },
  { connector = "app", step = "full-sync" },
]

[run_profiles.delta]
steps = [
  { connector = "hr", step = "delta-import" },
  { connector = "hr", step = "delta-sync" },
  { connector = "app", step = "export" },
  { connector = "app", step = "full-import" },
  { connector = "app", step = "delta-sync" },
]
"#;

impl Setup {
    /// The configuration text.
    pub fn config(&self) -> String {
        let mut text = TEMPLATE
            .replace("@THRESHOLD@", &self.threshold.to_string())
            .replace("@HR_SCOPE@", self.hr_scope)
            .replace("@APP_SCOPE@", self.app_scope)
            .replace("@DEPROVISION@", self.deprovision);
        if !self.extra.is_empty() {
            text.push('\n');
            text.push_str(self.extra);
        }
        text
    }

    /// A folder with this configuration and an HR file holding `workers`.
    pub fn env(&self, workers: &[Worker]) -> Env {
        let env = Env::new(&self.config());
        env.write_hr(workers);
        env
    }
}

/// The sum of a counter over a run's steps.
pub fn counter(run: &Value, name: &str) -> u64 {
    let steps = run["steps"].as_array().cloned().unwrap_or_default();
    if steps.is_empty() {
        return run["counters"][name].as_u64().unwrap_or(0);
    }
    steps
        .iter()
        .map(|s| s["counters"][name].as_u64().unwrap_or(0))
        .sum()
}

/// A port of 127.0.0.1 free now (for a server a test starts).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}
