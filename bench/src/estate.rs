//! `estate --count N`: a realistic two-target estate. HR (12 columns)
//! projected to the metaverse and provisioned to an AD-like directory file
//! (16 attributes: a DN built with `EscapeDN`, a `SelectUniqueValue`
//! account name, the manager by DN, `userAccountControl` from the status)
//! and a SCIM-like application file (15 attributes, the manager by anchor).
//! Runs full import, full sync, preview, both exports, the confirming
//! imports and syncs, then delta cycles of 1 % changes (ten by default,
//! with the store's growth across them: the first a command a step, the
//! rest as one `mvsync run delta-cycle`, which opens the store once, as a
//! schedule does) and a compaction; and the storage
//! floor on the same data in the same invocation. Prints each command's
//! wall time, peak RSS and, where one applies, its ratio to the floor; and
//! the store's size on disk.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::floor;

/// One measured command.
pub(crate) struct Measured {
    pub seconds: f64,
    pub peak_rss: u64,
}

/// Runs `mvsync args` in `dir`, its output thrown away, sampling its
/// resident memory (`VmHWM`, the kernel's peak) every 20 ms.
pub(crate) fn measure(mvsync: &Path, dir: &Path, args: &[&str]) -> Result<Measured, String> {
    let started = Instant::now();
    // Into a file, not a pipe: a pipe nobody reads would stop the process.
    let errors = dir.join("bench-stderr.log");
    let stderr =
        std::fs::File::create(&errors).map_err(|e| format!("{}: {e}", errors.display()))?;
    let mut child = Command::new(mvsync)
        .current_dir(dir)
        .args(["-q", "-c", "mvsync.toml"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{}: {e}", mvsync.display()))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            for line in text.lines() {
                if let Some(kb) = line.strip_prefix("VmHWM:") {
                    let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    peak = peak.max(kb * 1024);
                }
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let err = std::fs::read_to_string(&errors).unwrap_or_default();
        let err: String = err.lines().take(20).collect::<Vec<_>>().join("\n");
        return Err(format!(
            "mvsync {} exited with {status}:\n{err}",
            args.join(" ")
        ));
    }
    Ok(Measured {
        seconds,
        peak_rss: peak,
    })
}

fn employee(i: usize) -> String {
    format!("E{i:07}")
}

/// One HR row (12 columns); `title` varies so a delta can change it.
fn hr_row(i: usize, title: &str) -> String {
    let manager = if i == 0 {
        String::new()
    } else {
        employee(i.saturating_sub(1 + i % 1000))
    };
    let status = if i.is_multiple_of(50) {
        "Terminated"
    } else {
        "Active"
    };
    let (first, last) = (format!("First{i}"), format!("Last{}", i % 5000));
    format!(
        "{},{first},{last},{},{}.{}@example.org,Dept{},{title},City{},CC{},{manager},{status},2020-{:02}-{:02}",
        employee(i),
        if i.is_multiple_of(7) { "Pat" } else { "" },
        first.to_lowercase(),
        last.to_lowercase(),
        i % 40,
        i % 30,
        i % 200,
        1 + i % 12,
        1 + i % 28
    )
}

const HR_HEADER: &str = "employeeId,firstName,lastName,preferredName,email,department,title,location,costCenter,managerId,status,hireDate";

/// Writes the estate's HR file, an empty change file and the configuration.
fn prepare(dir: &Path, store: &str, count: usize) -> Result<(), String> {
    let mut hr = format!("{HR_HEADER}\n");
    for i in 0..count {
        let _ = writeln!(hr, "{}", hr_row(i, "Engineer"));
    }
    write(dir, "data/hr.csv", &hr)?;
    write(dir, "data/hr-changes.csv", "")?;
    write(dir, "mvsync.toml", &format!("{store}{CONFIG}"))
}

fn write(dir: &Path, rel: &str, text: &str) -> Result<(), String> {
    let path = dir.join(rel);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `console --count N`: the estate imported, synchronized and exported to
/// `ad` (so `scim` keeps N pending adds), then each console view timed.
pub fn console(mvsync: &Path, dir: &Path, store: &str, count: usize) -> Result<(), String> {
    if dir.join("state/mvsync.db").exists() {
        println!(
            "the store of an earlier run in {} ({count} identities)",
            dir.display()
        );
        let mid = employee(count / 2);
        return crate::console::time_views(mvsync, dir, &mid, count / 2);
    }
    prepare(dir, store, count)?;
    println!("{count} identities, two targets, in {}", dir.display());
    for args in [
        &["import", "hr", "--full"][..],
        &["sync", "hr", "--full"],
        &["export", "ad"],
        &["import", "ad", "--full"],
    ] {
        let m = measure(mvsync, dir, args)?;
        println!(
            "  {:<34} {:>9.1} s {:>7.0} MB peak RSS",
            args.join(" "),
            m.seconds,
            m.peak_rss as f64 / 1e6
        );
    }
    let mid = employee(count / 2);
    crate::console::time_views(mvsync, dir, &mid, count / 2)
}

/// Runs the scenario in `dir`.
pub fn run(
    mvsync: &Path,
    dir: &Path,
    store: &str,
    count: usize,
    cycles: usize,
) -> Result<(), String> {
    let write = |rel: &str, text: &str| write(dir, rel, text);
    prepare(dir, store, count)?;
    println!("{count} identities, two targets, in {}", dir.display());

    let import_floor = floor::run(&dir.join("data/hr.csv"), &dir.join("floor-import.db"), 1)?;
    let sync_floor = floor::run(&dir.join("data/hr.csv"), &dir.join("floor-sync.db"), 5)?;
    println!(
        "storage floor: import {:.1} s, sync (import included) {:.1} s, {:.0} MB on disk",
        import_floor.seconds,
        sync_floor.seconds,
        sync_floor.disk as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(dir.join("floor-import.db"));
    let _ = std::fs::remove_dir_all(dir.join("floor-sync.db"));

    println!(
        "  {:<34} {:>9} {:>9} {:>11}",
        "command", "seconds", "floor x", "peak RSS MB"
    );
    let show = |what: &str, m: &Measured, floor: Option<f64>| {
        println!(
            "  {what:<34} {:>9.1} {:>9} {:>11.0}",
            m.seconds,
            floor.map_or_else(|| "–".into(), |f| format!("{:.2}", m.seconds / f)),
            m.peak_rss as f64 / 1e6
        );
    };
    let step = |what: &str, args: &[&str], floor: Option<f64>| -> Result<Measured, String> {
        let m = measure(mvsync, dir, args)?;
        show(what, &m, floor);
        Ok(m)
    };
    step(
        "full import hr",
        &["import", "hr", "--full"],
        Some(import_floor.seconds),
    )?;
    step(
        "full sync hr (both targets)",
        &["sync", "hr", "--full"],
        Some(sync_floor.seconds),
    )?;
    step(
        "preview --format json",
        &["preview", "--format", "json"],
        None,
    )?;
    step("preview (tables)", &["preview"], None)?;
    step("check", &["check"], None)?;
    step("export ad", &["export", "ad"], None)?;
    step("export scim", &["export", "scim"], None)?;
    step(
        "full import ad (confirming)",
        &["import", "ad", "--full"],
        None,
    )?;
    step(
        "full import scim (confirming)",
        &["import", "scim", "--full"],
        None,
    )?;
    step(
        "full sync ad (nothing to do)",
        &["sync", "ad", "--full"],
        None,
    )?;
    step(
        "full sync scim (nothing to do)",
        &["sync", "scim", "--full"],
        None,
    )?;
    let after_export = floor::du(&dir.join("state/mvsync.db"));

    // Delta cycles of 1 % changes: new titles, appended to the change file
    // (its watermark resumes after what the last cycle read). Each cycle
    // changes another 1 %; the first is shown step by step, a command a
    // step, and the rest run as one run profile (one store open).
    let changed = (count / 100).max(1);
    let mut changes = format!("{HR_HEADER},changeType\n");
    for cycle in 0..cycles.max(1) {
        for k in 0..changed {
            let i = (k * 100 + 1 + cycle) % count;
            let title = format!("Principal Engineer {}", cycle + 1);
            let _ = writeln!(changes, "{},modify", hr_row(i, &title));
        }
        write("data/hr-changes.csv", &changes)?;
        let started = Instant::now();
        let steps: [(&str, &[&str]); 4] = [
            ("delta import hr (1 %)", &["import", "hr", "--delta"]),
            ("delta sync hr", &["sync", "hr", "--delta"]),
            ("export ad (delta)", &["export", "ad"]),
            ("export scim (delta)", &["export", "scim"]),
        ];
        let mut peak = 0;
        if cycle == 0 {
            for (what, args) in steps {
                peak = peak.max(step(what, args, None)?.peak_rss);
            }
        } else {
            peak = measure(mvsync, dir, &["run", "delta-cycle"])?.peak_rss;
        }
        let seconds = started.elapsed().as_secs_f64();
        if cycle == 0 {
            println!("  delta cycle of {changed} changes, a command a step: {seconds:.1} s");
        } else {
            println!(
                "  delta cycle {} of {changed} changes, one run profile: {seconds:.1} s, {:.0} MB peak, store {:.0} MB",
                cycle + 1,
                peak as f64 / 1e6,
                floor::du(&dir.join("state/mvsync.db")) as f64 / 1e6
            );
        }
    }
    let after_cycles = floor::du(&dir.join("state/mvsync.db"));
    println!(
        "  store on disk after export: {:.0} MB (floor {:.0} MB); after {} delta cycle(s): {:.0} MB ({:+.1} %)",
        after_export as f64 / 1e6,
        sync_floor.disk as f64 / 1e6,
        cycles.max(1),
        after_cycles as f64 / 1e6,
        (after_cycles as f64 / after_export as f64 - 1.0) * 100.0
    );
    step("compact", &["compact"], None)?;
    println!(
        "  store on disk after compact: {:.0} MB",
        floor::du(&dir.join("state/mvsync.db")) as f64 / 1e6
    );
    Ok(())
}

const CONFIG: &str = r#"
[engine]
deletion_threshold = 1000000000

[run_profiles.delta-cycle]
steps = [
  { connector = "hr", step = "delta-import" },
  { connector = "hr", step = "delta-sync" },
  { connector = "ad", step = "export" },
  { connector = "scim", step = "export" },
]

[connectors.hr]
type = "csv"
path = "data/hr.csv"
object_type = "worker"
anchor = "employeeId"
references = { managerId = "employeeId" }
change_file = "data/hr-changes.csv"

[connectors.ad]
type = "csv"
path = "state/ad.csv"
object_type = "user"
anchor = "id"
dn_column = "dn"
references = { manager = "dn" }
columns = ["id", "dn", "sAMAccountName", "userPrincipalName", "givenName", "sn", "displayName", "mail", "department", "title", "physicalDeliveryOfficeName", "company", "employeeID", "manager", "userAccountControl", "description", "extensionAttribute1"]

[connectors.scim]
type = "csv"
path = "state/scim.csv"
object_type = "user"
anchor = "id"
references = { manager = "id" }
columns = ["id", "userName", "givenName", "familyName", "displayName", "email", "title", "department", "costCenter", "employeeNumber", "manager", "active", "location", "locale", "userType"]

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
firstName = 'Coalesce(preferredName, firstName)'
lastName = "lastName"
displayName = 'Join(" ", Coalesce(preferredName, firstName), lastName)'
mail = "email"
department = "department"
title = "title"
location = "location"
costCenter = "costCenter"
manager = "managerId"
active = 'status != "Terminated"'

[[rules]]
name = "ad-out"
direction = "outbound"
connector = "ad"
mv_object_type = "person"
cs_object_type = "user"
provision = true
[rules.flows]
id = { expr = 'Lower(employeeId)', initial_only = true }
dn = '"CN=" + EscapeDN(displayName + " (" + employeeId + ")") + ",OU=" + EscapeDN(department) + ",DC=corp,DC=example"'
sAMAccountName = { expr = 'SelectUniqueValue(Left(Lower(firstName), 1) + Lower(lastName), Left(Lower(firstName), 2) + Lower(lastName), Lower(firstName) + "." + Lower(lastName) + Right(employeeId, 7))', initial_only = true }
userPrincipalName = 'Lower(firstName) + "." + Lower(lastName) + "@corp.example"'
givenName = "firstName"
sn = "lastName"
displayName = "displayName"
mail = "mail"
department = "department"
title = "title"
physicalDeliveryOfficeName = "location"
company = '"Example Corp"'
employeeID = "employeeId"
manager = "manager"
userAccountControl = 'IIF(active, "512", "514")'
description = '"HR " + employeeId'
extensionAttribute1 = "costCenter"

[[rules]]
name = "scim-out"
direction = "outbound"
connector = "scim"
mv_object_type = "person"
cs_object_type = "user"
provision = true
[rules.flows]
id = { expr = 'employeeId', initial_only = true }
userName = 'Lower(firstName) + "." + Lower(lastName) + "@example.org"'
givenName = "firstName"
familyName = "lastName"
displayName = "displayName"
email = "mail"
title = "title"
department = "department"
costCenter = "costCenter"
employeeNumber = "employeeId"
manager = "manager"
active = 'IIF(active, "true", "false")'
location = "location"
locale = '"en-US"'
userType = '"Employee"'
"#;
