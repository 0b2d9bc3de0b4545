//! The commands of an operator looking back: `history` (runs, filtered),
//! `audit` (exported changes), `revert` (a run undone) and `quarantine`.

use engine::{Engine, RunRecord, RunStatus};

use crate::config::Config;
use crate::output;
use crate::{report, AuditFilter, HistoryFilter, Outcome, QuarantineAction};

pub(crate) fn history(
    engine: &Engine,
    run: Option<u64>,
    filter: &HistoryFilter,
    format: output::ListFormat,
) -> Outcome {
    use output::ListFormat as Format;
    let keep = match history_filter(filter) {
        Ok(keep) => keep,
        Err(message) => {
            eprintln!("error: {message}");
            return Outcome::ConfigError;
        }
    };
    match run {
        None => match engine.history() {
            Ok(mut runs) => {
                runs.retain(|r| keep(r));
                print!(
                    "{}",
                    match format {
                        Format::Table => output::history_table(&runs),
                        Format::Json => output::json(&runs) + "\n",
                        Format::Csv => output::history_csv(&runs),
                    }
                );
                Outcome::Ok
            }
            Err(e) => report(&e),
        },
        Some(id) => match engine.run_details(id) {
            Ok(Some((record, errors))) => {
                match format {
                    Format::Table => {
                        println!("{}", output::run_line(&record));
                        if let RunStatus::Failed(message) | RunStatus::StoppedByThreshold(message) =
                            &record.status
                        {
                            println!("  {}: {}", record.status.name(), output::escape(message));
                        }
                        print!("{}", output::errors_list(&errors, usize::MAX));
                    }
                    Format::Json => {
                        println!(
                            "{}",
                            output::json(&serde_json::json!({ "run": record, "errors": errors }))
                        );
                    }
                    Format::Csv => print!("{}", output::errors_csv(&errors)),
                }
                Outcome::Ok
            }
            Ok(None) => {
                eprintln!("error: no run {id}");
                Outcome::Failed
            }
            Err(e) => report(&e),
        },
    }
}

/// The test a run must pass to be listed, or why the filter is wrong.
pub(crate) fn history_filter(
    f: &HistoryFilter,
) -> Result<impl Fn(&RunRecord) -> bool + '_, String> {
    if let Some(status) = &f.status {
        if !RunStatus::NAMES.contains(&status.as_str()) {
            return Err(format!(
                "--status {status:?} is not a run status; expected one of: {}",
                RunStatus::NAMES.join(", ")
            ));
        }
    }
    let (since, until) = window(f.since.as_deref(), f.until.as_deref())?;
    Ok(move |r: &RunRecord| {
        f.profile
            .as_ref()
            .is_none_or(|p| r.profile.as_ref() == Some(p))
            && f.connector.as_ref().is_none_or(|c| &r.connector == c)
            && f.status.as_ref().is_none_or(|s| r.status.name() == s)
            && since.is_none_or(|t| r.started >= t)
            && until.is_none_or(|t| r.started < t)
    })
}

/// `--since` and `--until` as instants (see [`instant`]).
fn window(since: Option<&str>, until: Option<&str>) -> Result<(Option<i64>, Option<i64>), String> {
    Ok((
        since.map(|d| instant("--since", d)).transpose()?,
        until.map(|d| instant("--until", d)).transpose()?,
    ))
}

/// A date (`2026-12-06`, midnight UTC) or an RFC 3339 instant, in
/// microseconds since the epoch.
pub(crate) fn instant(flag: &str, text: &str) -> Result<i64, String> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .map_err(|_| {
            format!("{flag} {text:?} is not a date (YYYY-MM-DD) or an RFC 3339 instant (2026-12-06T08:00:00Z)")
        })
}

/// `mvsync audit`: the audit log, filtered, one entry at a time (a log of
/// millions of changes is never in memory). Reads the file only: no store.
pub(crate) fn audit(config: &Config, f: &AuditFilter, format: output::ListFormat) -> Outcome {
    use std::io::Write;
    let Some(path) = &config.engine.audit_log else {
        eprintln!("error: no audit log is kept");
        return Outcome::Failed;
    };
    let (since, until) = match window(f.since.as_deref(), f.until.as_deref()) {
        Ok(w) => w,
        Err(m) => {
            eprintln!("error: {m}");
            return Outcome::ConfigError;
        }
    };
    let object = f.object.as_deref();
    let keep = |e: &engine::audit::AuditEntry| {
        let at = chrono::DateTime::parse_from_rfc3339(&e.time)
            .map(|t| t.timestamp_micros())
            .unwrap_or(0);
        f.run.is_none_or(|r| e.run == r)
            && f.connector.as_ref().is_none_or(|c| &e.connector == c)
            && object.is_none_or(|o| {
                e.anchor.as_deref() == Some(o)
                    || e.dn.as_deref() == Some(o)
                    || e.new_dn.as_deref() == Some(o)
                    || o.strip_prefix("cs:").and_then(|n| n.parse().ok()) == Some(e.object)
            })
            && since.is_none_or(|t| at >= t)
            && until.is_none_or(|t| at < t)
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printer = output::AuditPrinter::new(format);
    let mut failed = None;
    let log = engine::audit::AuditLog::new(path);
    let read = log.each(&mut |e| {
        if !keep(&e) {
            return true;
        }
        match printer.entry(&mut out, &e) {
            Ok(()) => true,
            Err(err) => {
                failed = Some(err);
                false
            }
        }
    });
    let finished = printer.finish(&mut out).and_then(|()| out.flush());
    match (read, failed, finished) {
        (Err(e), _, _) => {
            eprintln!("error: {e}");
            Outcome::Failed
        }
        (_, Some(e), _) | (_, _, Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: cannot write the audit listing: {e}");
            Outcome::Failed
        }
        _ => Outcome::Ok,
    }
}

/// `mvsync compact`: rewrites the store with its live keys only.
pub(crate) fn compact(config: &Config, holder: &str) -> Outcome {
    let started = std::time::Instant::now();
    match engine::store::compact(&config.store_path, &config.store_options, holder) {
        Ok(c) => {
            println!(
                "compacted {}: {} → {} ({} keys) in {:.1} s",
                config.store_path.display(),
                output::size(c.before),
                output::size(c.after),
                c.keys,
                started.elapsed().as_secs_f64()
            );
            Outcome::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::Failed
        }
    }
}

/// `mvsync revert RUN`: stages the inverse of the run's exports.
pub(crate) fn revert(engine: &Engine, run: u64, force: bool) -> Outcome {
    match engine.revert(run, force) {
        Ok(report) => {
            for line in &report.staged {
                println!("staged: {}", output::escape(line));
            }
            for line in &report.skipped {
                println!("left alone: {}", output::escape(line));
            }
            println!(
                "{} change(s) staged; review them with `mvsync preview`, apply them with `mvsync export CONNECTOR` (before the next sync, which stages exports from the rules again)",
                report.staged.len()
            );
            Outcome::Ok
        }
        Err(e) => report(&e),
    }
}

/// `mvsync quarantine [clear CONNECTOR]`.
pub(crate) fn quarantine(engine: &Engine, action: Option<QuarantineAction>) -> Outcome {
    match action {
        None => match engine.quarantined() {
            Ok(list) if list.is_empty() => {
                println!("no connector is quarantined");
                Outcome::Ok
            }
            Ok(list) => {
                for q in list {
                    println!("{}", output::quarantine_line(&q));
                }
                Outcome::Ok
            }
            Err(e) => report(&e),
        },
        Some(QuarantineAction::Clear { connector }) => match engine.clear_quarantine(&connector) {
            Ok(true) => {
                println!("connector '{connector}': quarantine cleared; its next export runs");
                Outcome::Ok
            }
            Ok(false) => {
                println!("connector '{connector}' is not quarantined");
                Outcome::Ok
            }
            Err(e) => report(&e),
        },
    }
}
