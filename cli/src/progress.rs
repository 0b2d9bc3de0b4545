//! Progress of long steps: a bar (or, when the total is not known, a
//! counter) with objects per second and an estimate on a terminal, and on
//! anything else a plain line every few seconds
//! (`progress: run 3 full-sync hr: 120000 objects, 4100/s`), so logs of
//! unattended runs stay readable. `-q` turns it off.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use engine::history::ProgressFn;
use engine::RunRecord;
use indicatif::{ProgressBar, ProgressStyle};

/// The watcher of this process, when progress is shown.
static SHOWN: OnceLock<Arc<Progress>> = OnceLock::new();

/// How progress is shown.
enum Mode {
    Bar,
    Lines { every: Duration },
}

/// The step being shown.
struct Current {
    run: u64,
    started: Instant,
    printed: Instant,
    bar: Option<ProgressBar>,
}

/// Progress of this process's steps.
pub(crate) struct Progress {
    mode: Mode,
    current: Mutex<Option<Current>>,
}

/// The engine's progress callback for this process, or none with `-q`.
/// Lines come every `MVSYNC_PROGRESS_SECS` seconds (default 10) when
/// stderr is not a terminal.
pub(crate) fn reporter(quiet: bool) -> Option<ProgressFn> {
    if quiet {
        return None;
    }
    let mode = if std::io::stderr().is_terminal() {
        Mode::Bar
    } else {
        let secs = std::env::var("MVSYNC_PROGRESS_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(10.0);
        Mode::Lines {
            every: Duration::from_secs_f64(secs),
        }
    };
    let progress = SHOWN
        .get_or_init(|| {
            Arc::new(Progress {
                mode,
                current: Mutex::new(None),
            })
        })
        .clone();
    Some(Arc::new(move |record: &RunRecord, done, total| {
        progress.report(record, done, total)
    }))
}

/// Ends the step being shown (its bar is cleared before its result line).
pub(crate) fn finish() {
    if let Some(p) = SHOWN.get() {
        if let Ok(mut current) = p.current.lock() {
            if let Some(bar) = current.take().and_then(|c| c.bar) {
                bar.finish_and_clear();
            }
        }
    }
}

impl Progress {
    fn report(&self, record: &RunRecord, done: u64, total: Option<u64>) {
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        let now = Instant::now();
        if current.as_ref().is_none_or(|c| c.run != record.id) {
            if let Some(bar) = current.take().and_then(|c| c.bar) {
                bar.finish_and_clear();
            }
            *current = Some(Current {
                run: record.id,
                started: now,
                printed: now,
                bar: matches!(self.mode, Mode::Bar).then(|| bar(record, total)),
            });
        }
        let Some(c) = current.as_mut() else { return };
        match &self.mode {
            Mode::Bar => {
                if let Some(bar) = &c.bar {
                    if let Some(t) = total {
                        bar.set_length(t);
                    }
                    bar.set_position(done);
                }
            }
            Mode::Lines { every } => {
                if now.duration_since(c.printed) < *every {
                    return;
                }
                c.printed = now;
                let secs = now.duration_since(c.started).as_secs_f64().max(0.001);
                let rate = done as f64 / secs;
                let what = format!(
                    "progress: run {} {} {}",
                    record.id,
                    record.step.name(),
                    record.connector
                );
                match total {
                    Some(t) if t > 0 => {
                        let left = t.saturating_sub(done) as f64 / rate.max(0.001);
                        eprintln!(
                            "{what}: {done}/{t} objects ({} %), {rate:.0}/s, about {left:.0} s left",
                            done * 100 / t
                        );
                    }
                    _ => eprintln!("{what}: {done} objects, {rate:.0}/s"),
                }
            }
        }
    }
}

fn bar(record: &RunRecord, total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(t) => (
            ProgressBar::new(t),
            "{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {msg} {pos} objects {per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("{} {}", record.step.name(), record.connector));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
