//! Benchmarks of the `mvsync` binary on generated data.
//!
//! Each scenario writes its data and configuration into a fresh folder,
//! runs `mvsync` there (build it first: `cargo build --release -p mvsync`),
//! and prints, per step, the wall time and what the step wrote to the store,
//! from `mvsync history --format json`.
//!
//! - `identities --count N`: N HR workers (with managers) projected and
//!   provisioned to an application CSV: full import, full sync, export and
//!   the confirming import and sync.
//! - `group --members N`: N workers in one team provisioned to a directory
//!   CSV as users and a group; then one member leaves and a new worker
//!   joins (a cycle of full syncs), then another member leaves (a cycle of
//!   delta syncs, which touch only the changed objects): what one
//!   membership change costs.
//! - `estate --count N`: a realistic estate with two targets and the
//!   storage floor measured in the same run (see `estate.rs`).

mod console;
mod estate;
mod floor;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::{Parser, Subcommand};
use serde_json::Value;

#[derive(Parser)]
#[command(about = "Benchmarks of the mvsync binary on generated data")]
struct Cli {
    /// The mvsync binary.
    #[arg(long, default_value = "target/release/mvsync")]
    mvsync: PathBuf,
    /// Where to write the data and the store (default: a new folder under the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// `[store] large_list_threshold` for the run (default: mvsync's own).
    #[arg(long)]
    large_list_threshold: Option<usize>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// HR workers projected and provisioned to an application.
    Identities {
        /// How many workers.
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
    /// One large group, then a one-member change.
    Group {
        /// How many members.
        #[arg(long, default_value_t = 100_000)]
        members: usize,
    },
    /// HR provisioned to an AD-like and a SCIM-like target, against the
    /// storage floor measured in the same run.
    Estate {
        /// How many identities.
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        /// How many delta cycles of 1 % changes follow the full cycle (the
        /// store's growth across them is reported).
        #[arg(long, default_value_t = 10)]
        cycles: usize,
    },
    /// The estate imported, synchronized and exported to one target, then
    /// every view of `mvsync console` timed (with `--dir` holding the
    /// store of an earlier run, only the views).
    Console {
        /// How many identities.
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
}

/// The same allocator as `mvsync`, so that the storage floor is measured
/// with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("mvsync-bench-{}", std::process::id()))
    });
    let mvsync = match cli.mvsync.canonicalize() {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "{}: {e}; build it first with `cargo build --release -p mvsync`",
                cli.mvsync.display()
            );
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(dir.join("data")) {
        eprintln!("{}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let bench = Bench {
        mvsync,
        dir,
        store: store_section(cli.large_list_threshold),
    };
    let result = match cli.scenario {
        Scenario::Identities { count } => bench.identities(count),
        Scenario::Group { members } => bench.group(members),
        Scenario::Estate { count, cycles } => {
            estate::run(&bench.mvsync, &bench.dir, &bench.store, count, cycles)
        }
        Scenario::Console { count } => {
            estate::console(&bench.mvsync, &bench.dir, &bench.store, count)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn store_section(threshold: Option<usize>) -> String {
    let mut s = "[store]\npath = \"state/mvsync.db\"\n".to_owned();
    if let Some(t) = threshold {
        let _ = writeln!(s, "large_list_threshold = {t}");
    }
    s
}

struct Bench {
    mvsync: PathBuf,
    dir: PathBuf,
    store: String,
}

impl Bench {
    fn write(&self, rel: &str, text: &str) -> Result<(), String> {
        let path = self.dir.join(rel);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn mvsync(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.mvsync)
            .current_dir(&self.dir)
            .args(["-c", "mvsync.toml"])
            .args(args)
            .output()
            .map_err(|e| format!("{}: {e}", self.mvsync.display()))?;
        if !out.status.success() {
            return Err(format!(
                "mvsync {} exited with {}:\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn runs(&self) -> Result<Vec<Value>, String> {
        // Before the first step there is no store (and `history` says so).
        if !self.dir.join("state/mvsync.db").exists() {
            return Ok(Vec::new());
        }
        let text = self.mvsync(&["history", "--format", "json"])?;
        match serde_json::from_str(&text) {
            Ok(Value::Array(runs)) => Ok(runs),
            _ => Err(format!("unexpected history output: {text}")),
        }
    }

    /// Runs a profile and prints one line per step it ran.
    fn profile(&self, title: &str, profile: &str) -> Result<(), String> {
        let before = self.runs()?.len();
        let started = Instant::now();
        self.mvsync(&["run", profile])?;
        let total = started.elapsed();
        println!("{title} ({:.1} s in all)", total.as_secs_f64());
        println!(
            "  {:<8} {:<13} {:>9} {:>10} {:>12}",
            "connector", "step", "seconds", "keys", "bytes"
        );
        for run in self.runs()?.into_iter().skip(before) {
            let micros =
                run["finished"].as_i64().unwrap_or(0) - run["started"].as_i64().unwrap_or(0);
            println!(
                "  {:<8} {:<13} {:>9.2} {:>10} {:>12}",
                run["connector"].as_str().unwrap_or("?"),
                step_name(&run["step"]),
                micros as f64 / 1e6,
                run["written"]["keys"],
                run["written"]["bytes"],
            );
        }
        Ok(())
    }

    fn identities(&self, count: usize) -> Result<(), String> {
        let mut hr = String::from("employeeId,firstName,lastName,department,managerId,status\n");
        for i in 0..count {
            let manager = if i == 0 {
                String::new()
            } else {
                employee(i.saturating_sub(1 + i % 1000))
            };
            let status = if i % 50 == 0 { "Terminated" } else { "Active" };
            let _ = writeln!(
                hr,
                "{},First{i},Last{i},Dept{},{manager},{status}",
                employee(i),
                i % 40
            );
        }
        self.write("data/hr.csv", &hr)?;
        self.write("mvsync.toml", &format!("{}{IDENTITIES}", self.store))?;
        println!("{count} identities in {}", self.dir.display());
        self.profile("full cycle", "full")
    }

    fn group(&self, members: usize) -> Result<(), String> {
        let everyone: Vec<usize> = (0..members).collect();
        self.write("data/directory.csv", &directory(members, &everyone))?;
        self.write("mvsync.toml", &format!("{}{GROUP}", self.store))?;
        println!("one group of {members} members in {}", self.dir.display());
        self.profile("first cycle: provision the workers and the group", "cycle")?;
        let changed: Vec<usize> = (0..=members).filter(|i| *i != 7).collect();
        self.write("data/directory.csv", &directory(members + 1, &changed))?;
        self.profile(
            "second cycle (full syncs): W0000007 leaves the group, a new worker joins it",
            "cycle",
        )?;
        let changed: Vec<usize> = (0..=members).filter(|i| *i != 7 && *i != 8).collect();
        self.write("data/directory.csv", &directory(members + 1, &changed))?;
        self.profile(
            "third cycle (delta syncs): W0000008 leaves the group",
            "delta",
        )
    }
}

fn step_name(step: &Value) -> String {
    step.as_str()
        .map_or_else(|| step.to_string(), str::to_owned)
}

fn employee(i: usize) -> String {
    format!("E{i:07}")
}

/// Workers `W0000000`.. and a team `T1` holding `members`.
fn directory(workers: usize, members: &[usize]) -> String {
    let mut out = String::from("key,kind,name,members\nT1,team,Everyone,");
    for (n, i) in members.iter().enumerate() {
        if n > 0 {
            out.push(';');
        }
        let _ = write!(out, "W{i:07}");
    }
    out.push('\n');
    for i in 0..workers {
        let _ = writeln!(out, "W{i:07},worker,Worker {i:07},");
    }
    out
}

const IDENTITIES: &str = r#"
[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"
references = { managerId = "employeeId" }

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
join = [ { cs = "employeeId", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "employeeId"
displayName = 'Join(" ", firstName, lastName)'
department = "department"
manager = "managerId"
active = 'status != "Terminated"'

[[rules]]
name = "app-out"
direction = "outbound"
connector = "app"
mv_object_type = "person"
cs_object_type = "account"
provision = true
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
"#;

const GROUP: &str = r#"
[engine]
deletion_threshold = 10

[connectors.src]
type = "csv"
path = "data/directory.csv"
anchor = "key"
object_type_column = "kind"
object_types = ["worker", "team"]
multi_valued = { members = ";" }
references = { members = "key" }

[connectors.corp]
type = "csv"
path = "state/corp.csv"
anchor = "id"
dn_column = "dn"
object_type_column = "objectType"
object_types = ["user", "group"]
multi_valued = { members = ";" }
references = { members = "dn" }
columns = ["id", "objectType", "dn", "displayName", "members"]

[[rules]]
name = "src-workers"
direction = "inbound"
connector = "src"
mv_object_type = "person"
cs_object_type = "worker"
precedence = 10
join = [ { cs = "key", mv = "employeeId" } ]
project = true
[rules.flows]
employeeId = "key"
displayName = "name"

[[rules]]
name = "src-teams"
direction = "inbound"
connector = "src"
mv_object_type = "group"
cs_object_type = "team"
precedence = 10
join = [ { cs = "key", mv = "groupId" } ]
project = true
[rules.flows]
groupId = "key"
displayName = "name"
members = "members"

[[rules]]
name = "corp-users"
direction = "outbound"
connector = "corp"
mv_object_type = "person"
cs_object_type = "user"
provision = true
[rules.flows]
id = { expr = 'Lower(employeeId)', initial_only = true }
dn = '"CN=" + EscapeDN(displayName) + ",OU=Users,DC=corp,DC=example"'
displayName = "displayName"

[[rules]]
name = "corp-groups"
direction = "outbound"
connector = "corp"
mv_object_type = "group"
cs_object_type = "group"
provision = true
[rules.flows]
id = { expr = '"g-" + Lower(groupId)', initial_only = true }
dn = '"CN=" + EscapeDN(displayName) + ",OU=Groups,DC=corp,DC=example"'
displayName = "displayName"
members = "members"

[run_profiles.delta]
steps = [
  { connector = "src", step = "full-import" },
  { connector = "src", step = "delta-sync" },
  { connector = "corp", step = "export" },
  { connector = "corp", step = "full-import" },
  { connector = "corp", step = "delta-sync" },
]

[run_profiles.cycle]
steps = [
  { connector = "src", step = "full-import" },
  { connector = "src", step = "full-sync" },
  { connector = "corp", step = "export" },
  { connector = "corp", step = "full-import" },
  { connector = "corp", step = "full-sync" },
]
"#;
