//! Rendering for people (tables) and for programs (JSON).

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, ContentArrangement, Table};
use engine::{CsView, MvView, PendingChange, RunError, RunRecord};
use rules::Value;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A readable table.
    Table,
    /// JSON, for scripts.
    Json,
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    t
}

fn shown(v: &Value) -> String {
    if v.is_null() {
        "∅".into()
    } else {
        v.to_string()
    }
}

/// Pretty JSON of anything serialisable.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The pending exports as a table: one row per attribute change.
pub fn preview_table(changes: &[PendingChange]) -> String {
    if changes.is_empty() {
        return "no pending exports\n".into();
    }
    let mut t = table(&[
        "connector",
        "object",
        "operation",
        "attribute",
        "old",
        "new",
    ]);
    for c in changes {
        let mut first = true;
        let mut row = |attr: String, old: String, new: String| {
            let (conn, obj, op) = if first {
                (
                    c.connector.clone(),
                    c.object.clone(),
                    c.operation.to_string(),
                )
            } else {
                (String::new(), String::new(), String::new())
            };
            first = false;
            t.add_row(vec![conn, obj, op, attr, old, new]);
        };
        if let Some(new_dn) = &c.new_dn {
            row(
                "dn".into(),
                c.dn.clone().unwrap_or_default(),
                new_dn.clone(),
            );
        }
        match c.operation {
            "delete" => row(String::new(), String::new(), String::new()),
            _ => {
                for a in &c.attributes {
                    let old = if c.operation == "add" {
                        String::new()
                    } else {
                        shown(&a.old)
                    };
                    row(a.name.clone(), old, shown(&a.new));
                }
            }
        }
    }
    let mut counts = std::collections::BTreeMap::new();
    for c in changes {
        *counts.entry(c.operation).or_insert(0) += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!("{t}\n{} pending: {}\n", changes.len(), summary.join(", "))
}

/// A metaverse object with lineage.
pub fn mv_table(view: &MvView) -> String {
    let mut t = table(&[
        "attribute",
        "value",
        "from",
        "rule",
        "other sources (precedence: value)",
    ]);
    for a in &view.attributes {
        let losers: Vec<String> = a
            .offers
            .iter()
            .filter(|o| !o.winner)
            .map(|o| {
                format!(
                    "{}/{} ({}): {}",
                    o.connector,
                    o.rule,
                    o.precedence,
                    shown(&o.value)
                )
            })
            .collect();
        t.add_row(vec![
            a.name.clone(),
            shown(&a.value),
            a.connector.clone(),
            a.rule.clone(),
            losers.join("\n"),
        ]);
    }
    let mut links = table(&["connector", "object", "link", "state", "pending export"]);
    for l in &view.links {
        links.add_row(vec![
            l.connector.clone(),
            l.object.clone(),
            l.kind.clone(),
            l.state.clone(),
            l.pending_export.unwrap_or("").to_string(),
        ]);
    }
    format!(
        "metaverse object mv:{} ({})\n{t}\n{links}\n",
        view.id, view.object_type
    )
}

/// A connector-space object.
pub fn cs_table(view: &CsView) -> String {
    let mut out = format!(
        "{} object cs:{} ({})\n  anchor: {}\n  dn: {}\n  state: {}\n  link: {}\n",
        view.connector,
        view.id,
        view.object_type,
        view.anchor.as_deref().unwrap_or("∅"),
        view.dn.as_deref().unwrap_or("∅"),
        view.state,
        view.link
            .as_ref()
            .map_or("none (disconnector)".into(), |(mv, kind)| format!(
                "mv:{mv} ({kind})"
            )),
    );
    if let Some((code, message)) = &view.error {
        out.push_str(&format!("  error: {code}: {message}\n"));
    }
    let mut t = table(&["attribute", "hologram", "pending import", "escrow"]);
    let mut names: Vec<&String> = view.hologram.iter().map(|(n, _)| n).collect();
    if let Some((_, attrs)) = &view.pending_import {
        names.extend(attrs.iter().map(|(n, _)| n));
    }
    names.extend(view.escrow.iter().map(|(n, _)| n));
    names.sort();
    names.dedup();
    let find = |list: &[(String, serde_json::Value)], n: &str| {
        list.iter()
            .find(|(k, _)| k == n)
            .map_or(String::new(), |(_, v)| {
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            })
    };
    for n in names {
        let pending = view
            .pending_import
            .as_ref()
            .map_or(String::new(), |(_, a)| find(a, n));
        t.add_row(vec![
            n.clone(),
            find(&view.hologram, n),
            pending,
            find(&view.escrow, n),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    if let Some((kind, _)) = &view.pending_import {
        out.push_str(&format!("pending import: {kind}\n"));
    }
    if let Some(p) = &view.pending_export {
        out.push_str(&format!(
            "pending export:\n{}",
            preview_table(std::slice::from_ref(p))
        ));
    }
    out
}

fn time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Non-zero counters as `name=value`.
pub fn counters(record: &RunRecord) -> String {
    let parts: Vec<String> = record
        .counters
        .pairs()
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if parts.is_empty() {
        "no changes".into()
    } else {
        parts.join(" ")
    }
}

/// One line about a finished step.
pub fn run_line(record: &RunRecord) -> String {
    format!(
        "run {} {} {}: {} ({})",
        record.id,
        record.step.name(),
        record.connector,
        record.status.name(),
        counters(record)
    )
}

/// The run history.
pub fn history_table(runs: &[RunRecord]) -> String {
    let mut t = table(&[
        "run",
        "profile",
        "step",
        "connector",
        "started",
        "status",
        "counters",
    ]);
    for r in runs {
        t.add_row(vec![
            r.id.to_string(),
            r.profile.clone().unwrap_or_default(),
            r.step.name().to_string(),
            r.connector.clone(),
            time(r.started),
            r.status.name().to_string(),
            counters(r),
        ]);
    }
    format!("{t}\n")
}

/// Per-object errors, at most `limit`.
pub fn errors_list(errors: &[RunError], limit: usize) -> String {
    let mut out = String::new();
    for e in errors.iter().take(limit) {
        out.push_str(&format!("  {} {}: {}\n", e.code, e.identifier, e.message));
    }
    if errors.len() > limit {
        out.push_str(&format!(
            "  … and {} more (mvsync history RUN)\n",
            errors.len() - limit
        ));
    }
    out
}
