//! `mvsync`: the command line of the mvsync identity synchronization engine.
//! The binary (`src/main.rs`) only calls [`main`]; the end-to-end suite in
//! the workspace's `tests/` crate builds its test binary from the same call.
//!
//! Exit codes: 0 success; 1 failure (the store is locked or inconsistent,
//! anything else); 2 configuration error; 3 completed with per-object
//! errors; 4 stopped by a deletion threshold; 5 a connected system failed
//! (unreachable, credentials refused, watermark expired); 6 stopped by the
//! operator (SIGTERM, Ctrl-C).

mod config;
mod console;
mod diagnostics;
mod functions;
mod metrics;
mod operations;
mod output;
mod plan;
mod progress;
mod schedule;
mod text_table;
mod toml_errors;
mod toml_string;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use engine::{Engine, EngineError, RunRecord, RunStatus, StepKind, StepOptions, Store};

use crate::config::{Config, ProfileStep};
use crate::output::Format;

/// An identity synchronization engine: connector spaces, a metaverse, sync
/// rules and run profiles, all in TOML.
#[derive(Debug, Parser)]
#[command(name = "mvsync", version, about)]
struct Cli {
    /// The configuration file.
    #[arg(
        short,
        long,
        global = true,
        default_value = "mvsync.toml",
        env = "MVSYNC_CONFIG"
    )]
    config: PathBuf,
    /// More logging (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only: no warnings, no progress.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log lines as text or as JSON objects (one per line), on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a run profile's steps in order; stop at the first failed step.
    Run {
        /// The run profile; without one, the configured profiles are
        /// listed with their steps.
        profile: Option<String>,
        /// Let imports, syncs and exports delete up to N objects, above the
        /// deletion thresholds.
        #[arg(long, value_name = "N")]
        allow_deletes: Option<usize>,
    },
    /// Stage changes from a connected system (full by default).
    Import {
        /// The connector.
        connector: String,
        #[command(flatten)]
        mode: Mode,
        /// Let a full import stage up to N deletes, above the deletion thresholds.
        #[arg(long, value_name = "N")]
        allow_deletes: Option<usize>,
    },
    /// Synchronize a connector's objects (full by default).
    ///
    /// A full sync evaluates every object, except in a target without
    /// inbound rules: there it only reads the objects that a full sync
    /// under the same configuration already evaluated and that nothing
    /// changed since. A full sync of a source re-evaluates everything.
    Sync {
        /// The connector.
        connector: String,
        #[command(flatten)]
        mode: Mode,
        /// Let the sync delete up to N metaverse objects, above the deletion threshold.
        #[arg(long, value_name = "N")]
        allow_deletes: Option<usize>,
    },
    /// Reach a connected system, authenticate and read its schema; change nothing.
    TestConnection {
        /// The connector.
        connector: String,
    },
    /// Apply pending exports to a connected system.
    Export {
        /// The connector.
        connector: String,
        /// Let the export delete up to N objects, above the deletion threshold.
        #[arg(long, value_name = "N")]
        allow_deletes: Option<usize>,
    },
    /// List pending exports: what the next export would write (a dry run).
    /// `preview object CONNECTOR ANCHOR` traces what a sync of one object would do.
    #[command(args_conflicts_with_subcommands = true)]
    Preview {
        #[command(subcommand)]
        what: Option<PreviewWhat>,
        /// Only this connector.
        connector: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: output::ListFormat,
    },
    /// What a changed configuration would do, compared with the current
    /// rules: metaverse and pending-export changes. Writes nothing.
    Plan {
        /// The changed configuration (it may differ in rules and flows).
        #[arg(long, value_name = "NEW.toml")]
        rules: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also save the plan beside the store (`<store>.plan.json`), where
        /// `mvsync console` shows it.
        #[arg(long)]
        save: bool,
    },
    /// Serve the console: run history, connector-space and metaverse
    /// search, objects with their lineage, pending exports and the saved
    /// plan, as a local web page (it gives the store up to any run that
    /// asks for it).
    Console {
        /// The address and port (default `[console] listen`, else
        /// 127.0.0.1:8470); any but loopback needs `[console] token`.
        #[arg(long, value_name = "ADDRESS:PORT")]
        listen: Option<String>,
    },
    /// Show a metaverse or connector-space object.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// List runs, or show one run with its per-object errors.
    History {
        /// A run id.
        run: Option<u64>,
        #[command(flatten)]
        filter: HistoryFilter,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: output::ListFormat,
    },
    /// Run the run profiles of `[schedules]` on their cron expressions, one
    /// at a time, until SIGTERM or Ctrl-C (for systemd or a container).
    Schedule {
        /// Run whatever is due, then exit (for cron or a systemd timer).
        #[arg(long)]
        once: bool,
    },
    /// List exported changes from the audit log (every change an export
    /// sent, old → new, with its result), oldest first.
    Audit {
        #[command(flatten)]
        filter: AuditFilter,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: output::ListFormat,
    },
    /// Stage the inverse of an export run's changes (from the audit log)
    /// as pending exports: `preview` shows them, `export` applies them.
    Revert {
        /// The export run.
        run: u64,
        /// Revert objects that later runs changed again, too.
        #[arg(long)]
        force: bool,
    },
    /// List quarantined connectors, or clear one (`quarantine clear
    /// CONNECTOR`) once the cause of its failed exports is fixed.
    Quarantine {
        #[command(subcommand)]
        action: Option<QuarantineAction>,
    },
    /// Verify every store invariant.
    Check,
    /// Rewrite the store with only its live data and swap it in (sled keeps
    /// old versions of rewritten keys until half a segment is dead): run it
    /// when the store has grown, between runs. Safe to interrupt.
    Compact,
    /// Load and validate the configuration; touch nothing.
    Validate,
    /// List the expression functions, or show one with its signature,
    /// summary and examples. Needs no configuration.
    Functions {
        /// A function's name (any case).
        name: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: output::ListFormat,
    },
    /// Print the man page, in roff (for example
    /// `mvsync man > /usr/local/share/man/man1/mvsync.1`). Needs no
    /// configuration.
    Man,
    /// Print a shell completion script (for example
    /// `mvsync completions bash > /etc/bash_completion.d/mvsync`). Needs
    /// no configuration.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Which runs `history` lists.
#[derive(Debug, Default, clap::Args)]
struct HistoryFilter {
    /// Only runs of this run profile.
    #[arg(long)]
    profile: Option<String>,
    /// Only runs of this connector.
    #[arg(long)]
    connector: Option<String>,
    /// Only runs with this status (success, completed-with-warnings,
    /// completed-with-errors, stopped-by-threshold, stopped, interrupted,
    /// failed, skipped, in-progress).
    #[arg(long)]
    status: Option<String>,
    /// Only runs started at or after this date (YYYY-MM-DD, UTC) or
    /// instant (RFC 3339).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only runs started before this date (YYYY-MM-DD, UTC: the day is
    /// excluded) or instant (RFC 3339).
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
}

#[derive(Debug, Subcommand)]
enum QuarantineAction {
    /// Let the connector export again.
    Clear {
        /// The connector.
        connector: String,
    },
}

/// Which audit entries `audit` lists.
#[derive(Debug, Default, clap::Args)]
struct AuditFilter {
    /// Only changes exported by this run.
    #[arg(long)]
    run: Option<u64>,
    /// Only changes of this connector.
    #[arg(long)]
    connector: Option<String>,
    /// Only changes of this object: its anchor, DN or cs:ID.
    #[arg(long)]
    object: Option<String>,
    /// Only changes at or after this date (YYYY-MM-DD, UTC) or instant.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only changes before this date or instant.
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
}

#[derive(Debug, clap::Args)]
struct Mode {
    /// Everything (the default).
    #[arg(long, conflicts_with = "delta")]
    full: bool,
    /// Only what changed.
    #[arg(long)]
    delta: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Readable text.
    Text,
    /// One JSON object per line (for a log collector).
    Json,
}

#[derive(Debug, Subcommand)]
enum PreviewWhat {
    /// Trace what a sync of one connector-space object would do (MIM's
    /// sync preview): scoping, join, flows with precedence, and the
    /// outbound consequences. Writes nothing.
    Object {
        /// The connector.
        connector: String,
        /// The anchor (or DN, or cs:ID).
        anchor: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum ShowWhat {
    /// A metaverse object with per-attribute lineage.
    Mv {
        /// Its id.
        id: u64,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// A connector-space object by anchor (or DN, or cs:ID).
    Cs {
        /// The connector.
        connector: String,
        /// The anchor.
        anchor: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// How the process ends.
enum Outcome {
    Ok,
    ObjectErrors,
    Failed,
    ConfigError,
    Threshold,
    ConnectorFailure,
    Stopped,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(match o {
            Outcome::Ok => 0,
            Outcome::Failed => 1,
            Outcome::ConfigError => 2,
            Outcome::ObjectErrors => 3,
            Outcome::Threshold => 4,
            Outcome::ConnectorFailure => 5,
            Outcome::Stopped => 6,
        })
    }
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Outcome::Failed.into();
        }
    };
    runtime.block_on(run(cli)).into()
}

fn init_logging(verbose: u8, quiet: bool, format: LogFormat) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stderr())
                    && std::env::var_os("NO_COLOR").is_none(),
            )
            .init(),
    }
}

fn report_config(errors: diagnostics::ConfigErrors) -> Outcome {
    eprintln!("{:?}", miette::Report::new(errors));
    Outcome::ConfigError
}

fn report(e: &EngineError) -> Outcome {
    eprintln!("error: {e}");
    match e {
        EngineError::DeletionThreshold { .. }
        | EngineError::ImportDeletionThreshold { .. }
        | EngineError::SyncDeletionThreshold { .. }
        | EngineError::Quarantined { .. } => Outcome::Threshold,
        EngineError::Connector { .. } | EngineError::WatermarkExpired { .. } => {
            Outcome::ConnectorFailure
        }
        EngineError::Stopped => Outcome::Stopped,
        _ => Outcome::Failed,
    }
}

/// SIGTERM or Ctrl-C asks the running step to stop at its next batch
/// boundary (nothing committed is lost, and the run is recorded as
/// stopped); a second one ends the process at once, which is as safe as
/// a crash: every commit is atomic, and the next run converges. The
/// handlers live on a thread of their own (sync steps keep the main
/// thread busy) and are in place when this returns.
fn watch_signals(stop: engine::StopFlag) {
    let (ready, installed) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                let _ = ready.send(false);
                return;
            };
            runtime.block_on(stop_on_signal(stop, ready));
        });
    let ok = spawned.is_ok() && installed.recv().unwrap_or(false);
    if !ok {
        eprintln!("warning: cannot watch for SIGTERM; a signal ends the process at once");
    }
}

async fn stop_on_signal(stop: engine::StopFlag, ready: std::sync::mpsc::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = ready.send(false);
        return;
    };
    let _ = ready.send(true);
    let mut first = true;
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if !first {
            eprintln!("stopping now");
            std::process::exit(130);
        }
        first = false;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!("stopping at the next batch boundary (signal again to stop at once)");
    }
}

/// A description of this process for anyone refused the store lock.
fn holder(args: &[String]) -> String {
    format!(
        "mvsync {} (pid {}, since {})",
        args.join(" "),
        std::process::id(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    )
}

async fn run(cli: Cli) -> Outcome {
    let shown = cli.config.display().to_string();
    let quiet = cli.quiet;
    if let Command::Completions { shell } = &cli.command {
        use clap::CommandFactory;
        use std::io::Write;
        // Into a buffer first: the generator panics on a write error (a
        // reader that stopped reading).
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "mvsync", &mut script);
        return match std::io::stdout().write_all(&script) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("error: cannot write the completion script: {e}");
                Outcome::Failed
            }
            _ => Outcome::Ok,
        };
    }
    if let Command::Man = &cli.command {
        use clap::CommandFactory;
        use std::io::Write;
        let mut page = Vec::new();
        if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut page) {
            eprintln!("error: cannot render the man page: {e}");
            return Outcome::Failed;
        }
        return match std::io::stdout().write_all(&page) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("error: cannot write the man page: {e}");
                Outcome::Failed
            }
            _ => Outcome::Ok,
        };
    }
    if let Command::Functions { name, format } = &cli.command {
        return match functions::command(name.as_deref(), *format) {
            Ok(text) => {
                print!("{text}");
                Outcome::Ok
            }
            Err(message) => {
                eprintln!("error: {message}");
                Outcome::Failed
            }
        };
    }
    if let Command::Validate = cli.command {
        return if validate::command(&cli.config, &shown) {
            Outcome::Ok
        } else {
            Outcome::ConfigError
        };
    }
    let mut config = match Config::load(&cli.config, &shown) {
        Ok(c) => c,
        Err(e) => return report_config(e),
    };
    let connectors = match config.build_connectors() {
        Ok(c) => c,
        Err(e) => return report_config(e),
    };
    if let Command::TestConnection { connector } = &cli.command {
        return test_connection(&connectors, connector).await;
    }
    if let Command::Schedule { once } = &cli.command {
        let stop = engine::StopFlag::default();
        watch_signals(stop.clone());
        return schedule::command(config, *once, stop, quiet).await;
    }
    if let Command::Console { listen } = &cli.command {
        return console::command(&config, listen.as_deref()).await;
    }
    if let Command::Audit { filter, format } = &cli.command {
        return operations::audit(&config, filter, *format);
    }
    if let Command::Compact = &cli.command {
        let args: Vec<String> = std::env::args().skip(1).collect();
        return operations::compact(&config, &holder(&args));
    }
    if let Command::Run { profile: None, .. } = &cli.command {
        print!("{}", output::profiles(&config.profiles));
        return Outcome::Ok;
    }
    let reads_only = matches!(
        cli.command,
        Command::Check
            | Command::Preview { .. }
            | Command::Show { .. }
            | Command::History { .. }
            | Command::Plan { .. }
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    let open = if reads_only {
        Store::open_read_only
    } else {
        Store::open
    };
    let store = match open(&config.store_path, &config.store_options, &holder(&args)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Failed;
        }
    };
    let mut engine = match Engine::new(store, &config.engine, connectors) {
        Ok(e) => e,
        Err(e) => return report(&e),
    };
    if !reads_only {
        watch_signals(engine.stop_flag());
    }
    if let Some(p) = progress::reporter(quiet) {
        engine.set_progress(p);
    }
    let outcome = dispatch(&engine, &config, cli.command).await;
    if let Err(e) = engine.close() {
        eprintln!("error: {e}");
        return Outcome::Failed;
    }
    outcome
}

async fn dispatch(engine: &Engine, config: &Config, command: Command) -> Outcome {
    let step = |connector: String, kind: StepKind| {
        vec![ProfileStep {
            connector,
            kind,
            full_import_fallback: false,
        }]
    };
    let (profile, steps, options) = match command {
        Command::Run {
            profile,
            allow_deletes,
        } => {
            let profile = profile.unwrap_or_default();
            let Some(steps) = config.profiles.get(&profile) else {
                let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
                eprintln!(
                    "error: no run profile named '{profile}'; configured profiles: {}",
                    known.join(", ")
                );
                return Outcome::Failed;
            };
            (Some(profile), steps.clone(), StepOptions { allow_deletes })
        }
        Command::Import {
            connector,
            mode,
            allow_deletes,
        } => (
            None,
            step(
                connector,
                if mode.delta {
                    StepKind::DeltaImport
                } else {
                    StepKind::FullImport
                },
            ),
            StepOptions { allow_deletes },
        ),
        Command::Sync {
            connector,
            mode,
            allow_deletes,
        } => (
            None,
            step(
                connector,
                if mode.delta {
                    StepKind::DeltaSync
                } else {
                    StepKind::FullSync
                },
            ),
            StepOptions { allow_deletes },
        ),
        // Handled before the store is opened.
        Command::TestConnection { .. } => return Outcome::Ok,
        Command::Export {
            connector,
            allow_deletes,
        } => (
            None,
            step(connector, StepKind::Export),
            StepOptions { allow_deletes },
        ),
        Command::Preview {
            what:
                Some(PreviewWhat::Object {
                    connector,
                    anchor,
                    format,
                }),
            ..
        } => return plan::preview_object(engine, &connector, &anchor, format),
        Command::Plan {
            rules,
            format,
            save,
        } => return plan::plan(engine, config, &rules, format, save),
        Command::Preview {
            what: None,
            connector,
            format,
        } => return preview(engine, connector.as_deref(), format),
        Command::Show { what } => return show(engine, what),
        Command::History {
            run,
            filter,
            format,
        } => return operations::history(engine, run, &filter, format),
        Command::Check => {
            return match engine.check() {
                Ok(problems) if problems.is_empty() => {
                    println!("store is consistent");
                    Outcome::Ok
                }
                Ok(problems) => {
                    eprintln!("the store has {} invariant violation(s):", problems.len());
                    for p in problems {
                        eprintln!("  {p}");
                    }
                    Outcome::Failed
                }
                Err(e) => report(&e),
            }
        }
        Command::Revert { run, force } => return operations::revert(engine, run, force),
        Command::Quarantine { action } => return operations::quarantine(engine, action),
        Command::Validate
        | Command::Functions { .. }
        | Command::Completions { .. }
        | Command::Man
        | Command::Audit { .. }
        | Command::Schedule { .. }
        | Command::Compact
        | Command::Console { .. } => return Outcome::Ok,
    };
    run_steps(engine, profile.as_deref(), &steps, &options).await
}

/// `mvsync test-connection`: reaches the system, authenticates and reads
/// its schema; opens no store.
async fn test_connection(
    connectors: &std::collections::BTreeMap<String, Box<dyn engine::Connector>>,
    name: &str,
) -> Outcome {
    let Some(connector) = connectors.get(name) else {
        let known: Vec<&str> = connectors.keys().map(String::as_str).collect();
        eprintln!(
            "error: no connector named '{name}' is configured; configured connectors: {}",
            known.join(", ")
        );
        return Outcome::Failed;
    };
    match connector.check().await {
        Ok(report) => {
            for line in &report.checks {
                println!("{}", output::escape(line));
            }
            println!("connector '{name}': connection ok");
            Outcome::Ok
        }
        Err(e) => {
            eprintln!("error: connector '{name}': {}", output::escape(&e.message));
            Outcome::ConnectorFailure
        }
    }
}

/// `mvsync preview`: written as it is read, one change at a time (JSON),
/// or a table per thousand changes, so that a preview of millions of
/// pending adds holds their keys in memory, never the changes or the text.
fn preview(engine: &Engine, connector: Option<&str>, format: output::ListFormat) -> Outcome {
    use output::ListFormat as Format;
    use std::io::Write;
    const TABLE_ROWS: usize = 1000;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // What waits for a quarantined connector is listed, and why it waits.
    for q in engine.quarantined().unwrap_or_default() {
        if connector.is_none_or(|c| c == q.connector) {
            let line = output::quarantine_line(&q);
            match format {
                Format::Table => {
                    let _ = writeln!(out, "{line}");
                }
                Format::Json | Format::Csv => eprintln!("warning: {line}"),
            }
        }
    }
    let mut failed: Option<std::io::Error> = None;
    let mut counts = std::collections::BTreeMap::new();
    let mut chunk = Vec::new();
    let mut first = true;
    let mut each = |change: engine::PendingChange| {
        let written = match format {
            Format::Json => {
                let item = output::json(&change);
                let sep = if first { "[\n" } else { ",\n" };
                first = false;
                let indented: Vec<String> = item.lines().map(|l| format!("  {l}")).collect();
                write!(out, "{sep}{}", indented.join("\n"))
            }
            Format::Csv => {
                let text = output::preview_csv(&change, first);
                first = false;
                text.and_then(|t| out.write_all(&t))
            }
            Format::Table => {
                *counts.entry(change.operation).or_insert(0) += 1;
                chunk.push(change);
                if chunk.len() < TABLE_ROWS {
                    Ok(())
                } else {
                    let t = output::preview_rows(&chunk);
                    chunk.clear();
                    writeln!(out, "{t}")
                }
            }
        };
        match written {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    };
    let given = match engine.preview_each(connector, &mut each) {
        Ok(n) => n,
        Err(e) => return report(&e),
    };
    let end = match format {
        Format::Json if given == 0 => writeln!(out, "[]"),
        Format::Json => writeln!(out, "\n]"),
        Format::Csv if given == 0 => writeln!(out, "{}", output::PREVIEW_CSV.join(",")),
        Format::Csv => Ok(()),
        Format::Table if given == 0 => writeln!(out, "no pending exports"),
        Format::Table => {
            let rest = if chunk.is_empty() {
                String::new()
            } else {
                format!("{}\n", output::preview_rows(&chunk))
            };
            write!(out, "{rest}{}", output::preview_summary(&counts))
        }
    };
    match failed.map_or(end.and_then(|()| out.flush()), Err) {
        Ok(()) => Outcome::Ok,
        // A reader that stopped reading (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Outcome::Ok,
        Err(e) => {
            eprintln!("error: cannot write the preview: {e}");
            Outcome::Failed
        }
    }
}

async fn run_steps(
    engine: &Engine,
    profile: Option<&str>,
    steps: &[ProfileStep],
    options: &StepOptions,
) -> Outcome {
    let mut errors = false;
    for s in steps {
        let mut result = engine
            .run_step(profile, &s.connector, s.kind, options)
            .await;
        progress::finish();
        if let (Err(e @ EngineError::WatermarkExpired { .. }), true) =
            (&result, s.full_import_fallback)
        {
            eprintln!("warning: {e}");
            eprintln!(
                "warning: running a full import of '{}' instead (the step's fallback)",
                s.connector
            );
            result = engine
                .run_step(profile, &s.connector, StepKind::FullImport, options)
                .await;
        }
        match result {
            Ok(record) => {
                println!("{}", output::run_line(&record));
                if let RunStatus::Skipped(reason) = &record.status {
                    println!("  {}", output::escape(reason));
                }
                if record.status == RunStatus::CompletedWithErrors {
                    errors = true;
                    print_errors(engine, &record);
                }
            }
            Err(e) => {
                let outcome = report(&e);
                if let Ok(Some(last)) = engine.history().map(|h| h.into_iter().last()) {
                    if last.step == s.kind && last.connector == s.connector {
                        println!("{}", output::run_line(&last));
                        print_errors(engine, &last);
                    }
                }
                return outcome;
            }
        }
    }
    if errors {
        Outcome::ObjectErrors
    } else {
        Outcome::Ok
    }
}

fn print_errors(engine: &Engine, record: &RunRecord) {
    if let Ok(Some((_, errors))) = engine.run_details(record.id) {
        print!("{}", output::errors_list(&errors, 20));
    }
}

fn show(engine: &Engine, what: ShowWhat) -> Outcome {
    match what {
        ShowWhat::Mv { id, format } => match engine.show_mv(id) {
            Ok(Some(view)) => {
                print!(
                    "{}",
                    match format {
                        Format::Table => output::mv_table(&view),
                        Format::Json => output::json(&view) + "\n",
                    }
                );
                Outcome::Ok
            }
            Ok(None) => {
                eprintln!("error: no metaverse object mv:{id}");
                Outcome::Failed
            }
            Err(e) => report(&e),
        },
        ShowWhat::Cs {
            connector,
            anchor,
            format,
        } => match engine.show_cs(&connector, &anchor) {
            Ok(Some(view)) => {
                print!(
                    "{}",
                    match format {
                        Format::Table => output::cs_table(&view),
                        Format::Json => output::json(&view) + "\n",
                    }
                );
                Outcome::Ok
            }
            Ok(None) => {
                eprintln!(
                    "error: connector '{connector}' has no object with anchor or DN '{anchor}'"
                );
                Outcome::Failed
            }
            Err(e) => report(&e),
        },
    }
}
