//! `mvsync schedule`: a long-lived process (for systemd or a container)
//! that runs run profiles on the cron expressions of `[schedules]`, or,
//! with `--once`, runs whatever is due and exits (for cron or a systemd
//! timer).
//!
//! - A profile is due when its cron expression has an occurrence after the
//!   profile's last start (from the run history) that is not in the
//!   future. A profile never run is due at once; one whose occurrences
//!   were missed while nothing ran is run once, not once per occurrence.
//! - Runs never overlap: profiles run one at a time, and a profile that
//!   falls due while another runs waits its turn (the wait is logged). The
//!   store is opened for each run and closed after it, so an operator can
//!   run a command between scheduled runs; a run that finds the store
//!   locked by another process waits for it, and says so.
//! - SIGTERM or Ctrl-C stops the running step at its next batch boundary
//!   (recorded as stopped, nothing lost) and ends the scheduler; between
//!   runs it ends at once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::{Engine, StepOptions, StopFlag, Store, StoreError};

use crate::config::{Config, Schedule};
use crate::{report, report_config, run_steps, Outcome};

/// How long a run waits between tries of a locked store.
const LOCK_RETRY: Duration = Duration::from_secs(5);

/// Runs the schedules until stopped (or once, with `once`).
pub(crate) async fn command(
    mut config: Config,
    once: bool,
    stop: StopFlag,
    quiet: bool,
) -> Outcome {
    if config.schedules.is_empty() {
        eprintln!(
            "error: {} has no [schedules]: add one per run profile, for example\n\n[schedules.delta]\ncron = \"*/30 * * * *\"",
            config.shown
        );
        return Outcome::ConfigError;
    }
    for s in &config.schedules {
        println!(
            "schedule: run profile '{}' on `{}` (UTC)",
            s.profile, s.text
        );
    }
    let mut last = match last_starts(&config) {
        Ok(l) => l,
        Err(outcome) => return outcome,
    };
    let shared = crate::metrics::Shared::default();
    if let Some(addr) = config.metrics.listen {
        if let Err(e) = crate::metrics::serve(addr, shared.clone()) {
            eprintln!("error: cannot serve metrics on {addr}: {e}");
            return Outcome::Failed;
        }
        println!("metrics: http://{addr}/metrics");
    }
    let mut metrics = crate::metrics::Metrics::default();
    let mut outcome = Outcome::Ok;
    let began = Utc::now();
    loop {
        let now = Utc::now();
        let mut due: Vec<(String, DateTime<Utc>)> = config
            .schedules
            .iter()
            .filter_map(|s| {
                let at = next_after(s, last.get(&s.profile).copied())?;
                (at <= now).then(|| (s.profile.clone(), at))
            })
            .collect();
        due.sort_by_key(|(_, at)| *at);
        if due.is_empty() && once {
            println!("nothing is due");
            return outcome;
        }
        for (profile, at) in due {
            if stopped(&stop) {
                return outcome;
            }
            let waited = Utc::now() - at;
            if !last.contains_key(&profile) {
                println!("run profile '{profile}' has not run yet: running it now");
            } else if at < began {
                println!(
                    "run profile '{profile}' missed its run at {} (nothing ran it then): running it now",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                );
            } else if waited > chrono::Duration::seconds(1) {
                println!(
                    "run profile '{profile}' was due at {} and waited {} s for its turn",
                    at.format("%Y-%m-%d %H:%M:%S UTC"),
                    waited.num_seconds()
                );
            }
            last.insert(profile.clone(), Utc::now());
            let (result, text) = run_profile(&mut config, &profile, &stop, quiet).await;
            if let Some(text) = text {
                let all = metrics.update(&profile, text);
                if let Some(file) = &config.metrics.file {
                    if let Err(e) = crate::metrics::write_file(file, &all) {
                        eprintln!(
                            "warning: cannot write the metrics file {}: {e}",
                            file.display()
                        );
                    }
                }
                if let Ok(mut s) = shared.lock() {
                    *s = all;
                }
            }
            if matches!(result, Outcome::Stopped) {
                println!("stopped on request; the scheduler ends");
                return Outcome::Ok;
            }
            if !matches!(result, Outcome::Ok) {
                outcome = result;
            }
        }
        if once {
            return outcome;
        }
        // Sleep until the next occurrence, waking each second for a stop.
        let next = config
            .schedules
            .iter()
            .filter_map(|s| next_after(s, last.get(&s.profile).copied()))
            .min();
        loop {
            if stopped(&stop) {
                println!("stopped on request; the scheduler ends");
                return Outcome::Ok;
            }
            if next.is_none_or(|n| n <= Utc::now()) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

fn stopped(stop: &StopFlag) -> bool {
    stop.load(std::sync::atomic::Ordering::Relaxed)
}

/// The first occurrence of `s` after `last` (or, never run, the first one
/// there is: the profile is due at once).
fn next_after(s: &Schedule, last: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let from = last.unwrap_or(DateTime::UNIX_EPOCH);
    s.cron.find_next_occurrence(&from, false).ok()
}

/// When each scheduled profile last started, from the run history.
fn last_starts(config: &Config) -> Result<BTreeMap<String, DateTime<Utc>>, Outcome> {
    let failed = |e: engine::StoreError| {
        eprintln!("error: {e}");
        Outcome::Failed
    };
    let (path, options, holder) = (&config.store_path, &config.store_options, "mvsync schedule");
    let mut last = BTreeMap::new();
    if engine::store::compaction_interrupted(path) {
        // A compaction killed between its renames left the store aside,
        // with its history: a writer's open puts it back.
        drop(Store::open(path, options, holder).map_err(failed)?);
    }
    if !path.is_dir() {
        return Ok(last);
    }
    let store = Store::open_read_only(path, options, holder).map_err(failed)?;
    let runs = engine::history::runs(&store).map_err(failed)?;
    for r in runs {
        if let (Some(p), Some(at)) = (r.profile, DateTime::from_timestamp_micros(r.started)) {
            last.insert(p, at);
        }
    }
    Ok(last)
}

/// Opens the store (waiting while another process holds it), runs one
/// profile, and closes the store; with the metrics of the run when it ran.
async fn run_profile(
    config: &mut Config,
    profile: &str,
    stop: &StopFlag,
    quiet: bool,
) -> (Outcome, Option<String>) {
    let Some(steps) = config.profiles.get(profile).cloned() else {
        eprintln!("error: no run profile named '{profile}'");
        return (Outcome::ConfigError, None);
    };
    let holder = format!(
        "mvsync schedule: run profile {profile} (pid {})",
        std::process::id()
    );
    let mut told = false;
    let store = loop {
        match Store::open(&config.store_path, &config.store_options, &holder) {
            Ok(s) => break s,
            Err(e @ StoreError::Locked { .. }) => {
                if !told {
                    println!("run profile '{profile}' waits for the store: {e}");
                    told = true;
                }
                if stopped(stop) {
                    return (Outcome::Stopped, None);
                }
                tokio::time::sleep(LOCK_RETRY).await;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return (Outcome::Failed, None);
            }
        }
    };
    let connectors = match config.build_connectors() {
        Ok(c) => c,
        Err(e) => return (report_config(e), None),
    };
    let mut engine = match Engine::new(store, &config.engine, connectors) {
        Ok(e) => e,
        Err(e) => return (report(&e), None),
    };
    engine.use_stop_flag(stop.clone());
    if let Some(p) = crate::progress::reporter(quiet) {
        engine.set_progress(p);
    }
    let first = engine.history().ok().and_then(|h| h.last().map(|r| r.id));
    println!("run profile '{profile}' started");
    let outcome = run_steps(&engine, Some(profile), &steps, &StepOptions::default()).await;
    let mut text = None;
    if let Ok(mut runs) = engine.history() {
        runs.retain(|r| first.is_none_or(|f| r.id > f));
        let changed: u64 = runs
            .iter()
            .flat_map(|r| r.counters.pairs())
            .map(|(_, n)| n)
            .sum();
        if changed == 0 && matches!(outcome, Outcome::Ok) {
            println!("run profile '{profile}': nothing to import, sync or export");
        }
        text = Some(crate::metrics::render(&engine, profile, &runs));
    }
    if let Err(e) = engine.close() {
        eprintln!("error: {e}");
        return (Outcome::Failed, text);
    }
    (outcome, text)
}
