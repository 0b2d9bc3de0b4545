//! Prometheus metrics of `mvsync schedule`, in the text exposition format,
//! rendered after each run: written to a file (for node_exporter's
//! textfile collector), served on a loopback port, or both.
//!
//! ```toml
//! [metrics]
//! file = "state/mvsync.prom"
//! listen = "127.0.0.1:9464"       # loopback only: GET /metrics
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use engine::{Engine, RunRecord, RunStatus, StepKind};

/// The latest rendering, shared with the server.
pub(crate) type Shared = Arc<Mutex<String>>;

/// The metrics after a run of `profile` whose step records are `runs`.
pub(crate) fn render(engine: &Engine, profile: &str, runs: &[RunRecord]) -> String {
    let mut out = String::new();
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        &mut out,
        "mvsync_step_duration_seconds",
        "gauge",
        "How long each step of the last run of the profile took.",
    );
    let mut lines = String::new();
    for r in runs {
        let seconds = r.finished.map_or(0.0, |f| (f - r.started) as f64 / 1e6);
        let _ = writeln!(
            lines,
            "mvsync_step_duration_seconds{{profile=\"{}\",connector=\"{}\",step=\"{}\"}} {seconds}",
            label(profile),
            label(&r.connector),
            r.step.name()
        );
    }
    out.push_str(&lines);
    family(
        &mut out,
        "mvsync_step_objects",
        "gauge",
        "The counters of each step of the last run of the profile (adds, updates, deletes, joins, errors…); a step's own counters are shown at zero too.",
    );
    for r in runs {
        let kept = counted(r.step);
        for (counter, n) in r.counters.pairs() {
            // A step's own counters are there at zero too, so their series
            // do not vanish after a run that had nothing to do.
            if n > 0 || kept.contains(&counter) {
                let _ = writeln!(
                    out,
                    "mvsync_step_objects{{profile=\"{}\",connector=\"{}\",step=\"{}\",counter=\"{counter}\"}} {n}",
                    label(profile),
                    label(&r.connector),
                    r.step.name()
                );
            }
        }
    }
    let errors: u64 = runs.iter().map(|r| r.counters.errors).sum();
    let failed = runs.iter().any(|r| {
        matches!(
            r.status,
            RunStatus::Failed(_) | RunStatus::StoppedByThreshold(_) | RunStatus::Interrupted
        )
    });
    let (started, finished) = (
        runs.first().map_or(0, |r| r.started),
        runs.last().and_then(|r| r.finished).unwrap_or(0),
    );
    for (name, help, value) in [
        (
            "mvsync_run_duration_seconds",
            "How long the last run of the profile took.",
            (finished - started).max(0) as f64 / 1e6,
        ),
        (
            "mvsync_run_finished_timestamp_seconds",
            "When the last run of the profile ended (Unix time).",
            finished as f64 / 1e6,
        ),
        (
            "mvsync_run_errors",
            "Per-object errors of the last run of the profile.",
            errors as f64,
        ),
        (
            "mvsync_run_failed",
            "1 when a step of the last run failed or was stopped by a threshold.",
            f64::from(u8::from(failed)),
        ),
    ] {
        family(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name}{{profile=\"{}\"}} {value}", label(profile));
    }
    family(
        &mut out,
        "mvsync_pending_exports",
        "gauge",
        "Exports pending per connector after the run.",
    );
    let pending = engine.pending_export_counts().unwrap_or_default();
    for (connector, n) in &pending {
        let _ = writeln!(
            out,
            "mvsync_pending_exports{{connector=\"{}\"}} {n}",
            label(connector)
        );
    }
    family(
        &mut out,
        "mvsync_quarantined",
        "gauge",
        "1 when the connector's exports are quarantined.",
    );
    let quarantined: Vec<String> = engine
        .quarantined()
        .unwrap_or_default()
        .into_iter()
        .map(|q| q.connector)
        .collect();
    for connector in pending.keys() {
        let _ = writeln!(
            out,
            "mvsync_quarantined{{connector=\"{}\"}} {}",
            label(connector),
            u8::from(quarantined.contains(connector))
        );
    }
    out
}

/// The counters a step of this kind keeps.
fn counted(kind: StepKind) -> &'static [&'static str] {
    match kind {
        StepKind::FullImport | StepKind::DeltaImport => &[
            "import-adds",
            "import-updates",
            "import-deletes",
            "confirmed",
            "errors",
        ],
        StepKind::FullSync | StepKind::DeltaSync => &[
            "joins",
            "projections",
            "disconnects",
            "flow-updates",
            "mv-deletes",
            "provisioned",
            "deprovisioned",
            "exports-staged",
            "errors",
        ],
        StepKind::Export => &[
            "export-adds",
            "export-updates",
            "export-renames",
            "export-deletes",
            "export-adopted",
            "errors",
        ],
    }
}

/// A label value, escaped as the exposition format wants.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Keeps the rendering of each profile and gives all of them.
#[derive(Default)]
pub(crate) struct Metrics {
    by_profile: BTreeMap<String, String>,
}

impl Metrics {
    /// Records `text` for `profile` and returns every profile's metrics,
    /// each family once and each series once.
    pub(crate) fn update(&mut self, profile: &str, text: String) -> String {
        self.by_profile.insert(profile.to_owned(), text);
        let mut families: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        let mut current = String::new();
        for (name, text) in &self.by_profile {
            // Series of the whole store (pending exports, quarantine) come
            // from the newest rendering only: one value per series.
            let newest = name == profile;
            for line in text.lines() {
                if !newest && !line.starts_with('#') && !line.contains("profile=\"") {
                    continue;
                }
                if let Some(rest) = line.strip_prefix("# HELP ") {
                    current = rest.split(' ').next().unwrap_or_default().to_owned();
                    families.entry(current.clone()).or_default().0 = line.to_owned();
                } else if line.starts_with("# TYPE ") {
                    let entry = families.entry(current.clone()).or_default();
                    entry.0 = format!("{}\n{line}", entry.0);
                } else if !line.is_empty() {
                    let samples = &mut families.entry(current.clone()).or_default().1;
                    if !samples.iter().any(|s| s == line) {
                        samples.push(line.to_owned());
                    }
                }
            }
        }
        let mut out = String::new();
        for (head, samples) in families.values() {
            out.push_str(head);
            out.push('\n');
            for s in samples {
                out.push_str(s);
                out.push('\n');
            }
        }
        out
    }
}

/// Writes the metrics file atomically (a temporary file renamed over it).
pub(crate) fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Serves the latest metrics on `addr` (a loopback address) from a
/// thread of its own, so a long sync step does not hold up a scrape:
/// `GET /metrics` (or any path) answers them, in the text format.
pub(crate) fn serve(addr: SocketAddr, shared: Shared) -> std::io::Result<()> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(accept(std_listener, shared));
        })?;
    Ok(())
}

async fn accept(std_listener: std::net::TcpListener, shared: Shared) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
        return;
    };
    {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 2048];
                let _ = socket.read(&mut request).await;
                let body = shared.lock().map(|s| s.clone()).unwrap_or_default();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use engine::{Counters, StepKind};

    #[test]
    fn every_counter_a_step_keeps_is_one_the_engine_counts() {
        let names: Vec<&str> = Counters::default()
            .pairs()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        for kind in [
            StepKind::FullImport,
            StepKind::DeltaImport,
            StepKind::FullSync,
            StepKind::DeltaSync,
            StepKind::Export,
        ] {
            for counter in super::counted(kind) {
                assert!(names.contains(counter), "{counter:?} of {kind:?}");
            }
        }
    }
}
