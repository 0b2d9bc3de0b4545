//! Crash safety: `run full` killed with SIGKILL at random points of its sync
//! and export phases, then run again, must export exactly what an
//! uninterrupted run exports and leave a store that passes `mvsync check`.
//!
//! The kill points are calibrated from an uninterrupted reference run (when
//! each step ended) and drawn from a seeded generator, one per stratum of
//! the window, so every run of the test kills at the same relative points.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
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

/// Starts `mvsync run full` and collects its step lines with the time each was printed.
struct Timed {
    child: std::process::Child,
    started: Instant,
    reader: std::thread::JoinHandle<Vec<(Duration, String)>>,
}

impl Timed {
    fn start(env: &Env) -> Timed {
        let started = Instant::now();
        let mut child = env.spawn(&["run", "full"], Stdio::piped());
        let out = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(out).lines().map_while(Result::ok).map(|l| (started.elapsed(), l)).collect()
        });
        Timed { child, started, reader }
    }

    /// Waits for the end; the exit code (None when killed) and the step lines.
    fn finish(mut self) -> (Option<i32>, Duration, Vec<(Duration, String)>) {
        let status = self.child.wait().expect("wait");
        let took = self.started.elapsed();
        (status.code(), took, self.reader.join().expect("reader"))
    }
}

/// The step that was running when only `lines` had been printed.
fn phase(lines: &[(Duration, String)], steps: &[String]) -> String {
    steps.get(lines.len()).cloned().unwrap_or_else(|| "after the last step".into())
}

/// `run 7 full-sync hr: success (...)` → `full-sync hr`.
fn step_name(line: &str) -> String {
    line.split_whitespace().skip(2).take(2).collect::<Vec<_>>().join(" ").trim_end_matches(':').to_owned()
}

struct Round {
    delay: Duration,
    killed_in: String,
    rerun: Duration,
    problems: Vec<String>,
}

fn round(config: &str, hr: &str, delay: Duration, steps: &[String], reference: &[u8]) -> Round {
    let env = Env::new(config);
    env.write("data/hr.csv", hr);
    let mut run = Timed::start(&env);
    std::thread::sleep(delay.saturating_sub(run.started.elapsed()));
    let finished_first = run.child.try_wait().expect("poll").is_some();
    run.child.kill().ok();
    let (_, _, lines) = run.finish();
    let killed_in = if finished_first { "finished before the kill".to_owned() } else { phase(&lines, steps) };

    let started = Instant::now();
    let rerun = env.mvsync(&["run", "full"]);
    let rerun_took = started.elapsed();
    let mut problems = Vec::new();
    if code(&rerun) != 0 {
        problems.push(format!("the rerun did not succeed: {}", describe(&rerun)));
    }
    let exported = env.bytes(APP_CSV);
    if exported != reference {
        let sorted = |b: &[u8]| {
            let mut lines: Vec<String> = String::from_utf8_lossy(b).lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        let (got, want) = (sorted(&exported), sorted(reference));
        let detail = if got == want {
            "the same rows in a different order".to_owned()
        } else {
            let missing = want.iter().filter(|l| got.binary_search(l).is_err()).take(3).collect::<Vec<_>>();
            let extra = got.iter().filter(|l| want.binary_search(l).is_err()).take(3).collect::<Vec<_>>();
            format!("{} rows instead of {}; missing e.g. {missing:?}; unexpected e.g. {extra:?}", got.len(), want.len())
        };
        problems.push(format!("the exported file differs from the reference: {detail}"));
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
        delay,
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
    // From the end of the import to the end of the export: sync, then export.
    let (from, to) = (ended("full-import hr"), ended("export app"));
    eprintln!("crash test: reference run {took:.2?}; steps ended at {:?}", lines.iter().map(|(t, l)| (format!("{t:.2?}"), step_name(l))).collect::<Vec<_>>());

    let mut rng = Rng(SEED);
    let delays: Vec<Duration> =
        (0..KILLS).map(|i| from + (to - from).mul_f64((i as f64 + rng.unit()) / KILLS as f64)).collect();
    let next = AtomicUsize::new(0);
    let rounds = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(delay) = delays.get(i) else { break };
                let r = round(&config, &hr, *delay, &steps, &reference);
                rounds.lock().expect("lock").push((i, r));
            });
        }
    });
    let mut rounds = rounds.into_inner().expect("lock");
    rounds.sort_by_key(|(i, _)| *i);

    let mut report = String::new();
    for (i, r) in &rounds {
        report.push_str(&format!(
            "  kill {i:2} at {:>8.2?} during {:<24} rerun {:>7.2?} {}\n",
            r.delay,
            r.killed_in,
            r.rerun,
            if r.problems.is_empty() { "ok".to_owned() } else { r.problems.join("\n      ") }
        ));
    }
    eprintln!("crash test: {} kills in {:.1?} in all\n{report}", rounds.len(), test_started.elapsed());
    let interrupted = rounds.iter().filter(|(_, r)| r.killed_in != "finished before the kill").count();
    assert!(rounds.iter().all(|(_, r)| r.problems.is_empty()), "some killed runs did not converge:\n{report}");
    assert!(interrupted * 10 >= KILLS * 9, "most kills must interrupt a run, only {interrupted} did:\n{report}");
}
