//! Crash safety: `run full` killed with SIGKILL at random points of its sync
//! and export phases, then run again, must export exactly what an
//! uninterrupted run exports and leave a store that passes `mvsync check`.
//!
//! The kill points are calibrated from an uninterrupted reference run (how
//! long its sync and its export took) and drawn from a seeded generator, one
//! per stratum of each phase, so every run of the test kills at the same
//! relative points. Each kill is timed from the line of the step before its
//! phase, so a loaded machine does not shift kills out of their phase.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{code, describe, hr_csv, many_workers, Env, Setup, APP_CSV};

const ROWS: usize = 20_000;
const KILLS: usize = 20;
/// Kill rounds run side by side (the suite targets 2 cores).
const PARALLEL: usize = 2;
const SEED: u64 = 0x6d76_7379_6e63;

/// xorshift64*: enough randomness for spreading kill points.
struct Rng(u64);

impl Rng {
    /// A float in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Starts `mvsync run full` and collects its step lines with the time each
/// was printed, as they come.
struct Timed {
    child: std::process::Child,
    started: Instant,
    lines: mpsc::Receiver<(Duration, String)>,
    seen: Vec<(Duration, String)>,
}

impl Timed {
    fn start(env: &Env) -> Timed {
        let started = Instant::now();
        let mut child = env.spawn(&["run", "full"], Stdio::piped());
        let out = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if send.send((started.elapsed(), line)).is_err() {
                    break;
                }
            }
        });
        Timed {
            child,
            started,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until `step` has printed its line; false if the run ended first.
    fn wait_for(&mut self, step: &str) -> bool {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(120)) {
            let done = step_name(&line.1) == step;
            self.seen.push(line);
            if done {
                return true;
            }
        }
        false
    }

    /// Waits for the end; the exit code (None when killed), the time taken and the step lines.
    fn finish(mut self) -> (Option<i32>, Duration, Vec<(Duration, String)>) {
        let status = self.child.wait().expect("wait");
        let took = self.started.elapsed();
        self.seen.extend(self.lines.iter());
        (status.code(), took, self.seen)
    }
}

/// The step that was running when only `lines` had been printed.
fn phase(lines: &[(Duration, String)], steps: &[String]) -> String {
    steps
        .get(lines.len())
        .cloned()
        .unwrap_or_else(|| "after the last step".into())
}

/// `run 7 full-sync hr: success (...)` → `full-sync hr`.
fn step_name(line: &str) -> String {
    line.split_whitespace()
        .skip(2)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(':')
        .to_owned()
}

/// Where a round kills: `delay` after the step `after` printed its line.
#[derive(Clone, Debug)]
struct KillPoint {
    after: &'static str,
    delay: Duration,
}

struct Round {
    at: KillPoint,
    killed_in: String,
    rerun: Duration,
    problems: Vec<String>,
}

const FINISHED_FIRST: &str = "finished before the kill";

fn round(config: &str, hr: &str, at: &KillPoint, steps: &[String], reference: &[u8]) -> Round {
    let env = Env::new(config);
    env.write("data/hr.csv", hr);
    let mut run = Timed::start(&env);
    let mut finished_first = !run.wait_for(at.after);
    if !finished_first {
        std::thread::sleep(at.delay);
        finished_first = run.child.try_wait().expect("poll").is_some();
        run.child.kill().ok();
    }
    let (_, _, lines) = run.finish();
    let killed_in = match (finished_first, phase(&lines, steps)) {
        (true, _) => FINISHED_FIRST.to_owned(),
        // The interesting window: the file is replaced, the store not yet told.
        (false, step) if step == "export app" && !env.bytes(APP_CSV).is_empty() => {
            format!("{step} (file written)")
        }
        (false, step) => step,
    };

    let mut problems = Vec::new();
    if !finished_first {
        // The killed step shows as interrupted, not in progress forever.
        let history = env.mvsync(&["history", "--format", "json"]);
        let text = String::from_utf8_lossy(&history.stdout);
        if text.contains("\"InProgress\"") {
            problems.push(format!(
                "after the kill, history does not show the run as interrupted: {text}"
            ));
        }
    }
    let started = Instant::now();
    let rerun = env.mvsync(&["run", "full"]);
    let rerun_took = started.elapsed();
    if code(&rerun) != 0 {
        problems.push(format!("the rerun did not succeed: {}", describe(&rerun)));
    }
    let exported = env.bytes(APP_CSV);
    if exported != reference {
        let sorted = |b: &[u8]| {
            let mut lines: Vec<String> = String::from_utf8_lossy(b)
                .lines()
                .map(str::to_owned)
                .collect();
            lines.sort();
            lines
        };
        let (got, want) = (sorted(&exported), sorted(reference));
        let detail = if got == want {
            "the same rows in a different order".to_owned()
        } else {
            let missing = want
                .iter()
                .filter(|l| got.binary_search(l).is_err())
                .take(3)
                .collect::<Vec<_>>();
            let extra = got
                .iter()
                .filter(|l| want.binary_search(l).is_err())
                .take(3)
                .collect::<Vec<_>>();
            format!(
                "{} rows instead of {}; missing e.g. {missing:?}; unexpected e.g. {extra:?}",
                got.len(),
                want.len()
            )
        };
        problems.push(format!(
            "the exported file differs from the reference: {detail}"
        ));
    }
    let check = env.mvsync(&["check"]);
    if code(&check) != 0 {
        problems.push(format!("`mvsync check` failed: {}", describe(&check)));
    }
    if !problems.is_empty() {
        // Keep the folder for a post-mortem.
        let kept = env.root().to_path_buf();
        std::mem::forget(env);
        problems.push(format!("store and files kept in {}", kept.display()));
    }
    Round {
        at: at.clone(),
        killed_in,
        rerun: rerun_took,
        problems,
    }
}

#[test]
fn killed_runs_converge_to_the_uninterrupted_result() {
    let test_started = Instant::now();
    let config = Setup::default().config();
    let hr = hr_csv(&many_workers(ROWS));

    let reference_env = Env::new(&config);
    reference_env.write("data/hr.csv", &hr);
    let (status, took, lines) = Timed::start(&reference_env).finish();
    assert_eq!(status, Some(0), "the reference run failed: {lines:?}");
    let reference = reference_env.bytes(APP_CSV);
    assert_eq!(reference_env.app_rows().len(), ROWS);
    let steps: Vec<String> = lines.iter().map(|(_, l)| step_name(l)).collect();
    let ended = |step: &str| {
        lines
            .iter()
            .find(|(_, l)| step_name(l) == step)
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("no `{step}` step in the reference run: {lines:?}"))
    };
    // Half the kills during the sync, half during the export, each anchored
    // to the line of the step before (so a loaded machine shifts no kill out
    // of its phase) and spread over the phase's calibrated duration, one per
    // stratum, at a seeded random point inside it.
    let sync = ended("full-sync hr") - ended("full-import hr");
    let export = ended("export app") - ended("full-sync hr");
    eprintln!(
        "crash test: reference run {took:.2?} (sync {sync:.2?}, export {export:.2?}); steps ended at {:?}",
        lines.iter().map(|(t, l)| (format!("{t:.2?}"), step_name(l))).collect::<Vec<_>>()
    );
    let mut rng = Rng(SEED);
    let per_phase = KILLS / 2;
    let points: Vec<KillPoint> = [("full-import hr", sync), ("full-sync hr", export)]
        .into_iter()
        .flat_map(|(after, length)| (0..per_phase).map(move |i| (after, length, i)))
        .map(|(after, length, i)| KillPoint {
            after,
            delay: length.mul_f64((i as f64 + rng.unit()) / per_phase as f64),
        })
        .collect();
    let next = AtomicUsize::new(0);
    let rounds = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(at) = points.get(i) else { break };
                let r = round(&config, &hr, at, &steps, &reference);
                rounds.lock().expect("lock").push((i, r));
            });
        }
    });
    let mut rounds = rounds.into_inner().expect("lock");
    rounds.sort_by_key(|(i, _)| *i);

    let mut report = String::new();
    for (i, r) in &rounds {
        report.push_str(&format!(
            "  kill {i:2} {:>8.2?} after {:<15} landed in {:<26} rerun {:>7.2?} {}\n",
            r.at.delay,
            r.at.after,
            r.killed_in,
            r.rerun,
            if r.problems.is_empty() {
                "ok".to_owned()
            } else {
                r.problems.join("\n      ")
            }
        ));
    }
    eprintln!(
        "crash test: {} kills in {:.1?} in all\n{report}",
        rounds.len(),
        test_started.elapsed()
    );
    let interrupted = rounds
        .iter()
        .filter(|(_, r)| r.killed_in != FINISHED_FIRST)
        .count();
    assert!(
        rounds.iter().all(|(_, r)| r.problems.is_empty()),
        "some killed runs did not converge:\n{report}"
    );
    assert!(
        interrupted * 10 >= KILLS * 9,
        "most kills must interrupt a run, only {interrupted} did:\n{report}"
    );
}
