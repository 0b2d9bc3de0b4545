//! The what-if commands: `mvsync plan --rules NEW.toml` (what a changed
//! configuration would do) and `mvsync preview object CONNECTOR ANCHOR`
//! (what a sync of one object would do). Neither writes the store.

use std::collections::BTreeSet;
use std::path::Path;

use engine::Engine;

use crate::config::Config;
use crate::output::{self, Format};
use crate::{report, report_config, Outcome};

/// Loads `rules` exactly like the current configuration, then prints the
/// plan: what deploying it would change, compared with the current rules.
pub fn plan(
    engine: &Engine,
    current: &Config,
    rules: &Path,
    format: Format,
    save: bool,
) -> Outcome {
    let shown = rules.display().to_string();
    let mut new = match Config::load(rules, &shown) {
        Ok(c) => c,
        Err(e) => return report_config(e),
    };
    if let Err(e) = new.build_connectors() {
        return report_config(e);
    }
    let mut warnings = Vec::new();
    if !same_path(&new.store_path, &current.store_path) {
        warnings.push(format!(
            "{shown} names the store {}; the plan reads the current store {} (a plan compares rules, never stores)",
            new.store_path.display(),
            current.store_path.display()
        ));
    }
    let names = |c: &Config| c.connectors.keys().cloned().collect::<BTreeSet<_>>();
    let changed: Vec<String> = names(current)
        .union(&names(&new))
        .filter(|n| current.connectors.get(*n) != new.connectors.get(*n))
        .cloned()
        .collect();
    if !changed.is_empty() {
        warnings.push(format!(
            "{shown} configures connector(s) {} differently; the plan runs on the current store's connector spaces anyway",
            changed.join(", ")
        ));
    }
    let mut plan = match engine.plan(&new.engine) {
        Ok(p) => p,
        Err(e) => return report(&e),
    };
    // The engine's own notes (about the connectors it sees) come after ours.
    warnings.append(&mut plan.warnings);
    plan.warnings = warnings;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if save {
        if let Err(message) = save_plan(&plan, rules, &current.store_path) {
            eprintln!("error: {message}");
            return Outcome::Failed;
        }
    }
    print!(
        "{}",
        match format {
            Format::Table => output::plan_table(&plan),
            Format::Json => output::json(&plan) + "\n",
        }
    );
    Outcome::Ok
}

/// Writes the plan beside the store for the console, atomically (a
/// temporary file renamed over the last one).
fn save_plan(plan: &engine::Plan, rules: &Path, store: &Path) -> Result<(), String> {
    let path = crate::console::plan_path(store);
    let doc = serde_json::json!({
        "rules": rules.display().to_string(),
        "saved": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        "plan": plan,
    });
    let mut partial = path.clone().into_os_string();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    std::fs::write(&partial, output::json(&doc))
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|e| format!("cannot save the plan to {}: {e}", path.display()))?;
    eprintln!(
        "plan saved to {} (`mvsync console` shows it)",
        path.display()
    );
    Ok(())
}

fn same_path(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    a == b || canonical(a) == canonical(b)
}

/// Prints the trace of a sync of one object.
pub fn preview_object(engine: &Engine, connector: &str, anchor: &str, format: Format) -> Outcome {
    match engine.preview_object(connector, anchor) {
        Ok(Some(trace)) => {
            print!(
                "{}",
                match format {
                    Format::Table => output::trace_text(&trace),
                    Format::Json => output::json(&trace) + "\n",
                }
            );
            Outcome::Ok
        }
        Ok(None) => {
            eprintln!("error: connector '{connector}' has no object with anchor or DN '{anchor}'");
            Outcome::Failed
        }
        Err(e) => report(&e),
    }
}
