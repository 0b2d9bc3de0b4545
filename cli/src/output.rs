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

/// What a step wrote to the store: `12 keys, 3.4 KB`.
pub fn written(w: engine::WriteStats) -> String {
    let bytes = w.bytes as f64;
    let size = if bytes < 1024.0 {
        format!("{} B", w.bytes)
    } else if bytes < 1024.0 * 1024.0 {
        format!("{:.1} KB", bytes / 1024.0)
    } else {
        format!("{:.1} MB", bytes / (1024.0 * 1024.0))
    };
    format!("{} keys, {size}", w.keys)
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
        "written",
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
            written(r.written),
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

/// A plan: metaverse changes, then one table of pending-export changes per
/// connector, then errors the new rules would meet or resolve.
pub fn plan_table(plan: &engine::Plan) -> String {
    if plan.metaverse.is_empty()
        && plan.exports.is_empty()
        && plan.errors.is_empty()
        && plan.resolved_errors.is_empty()
    {
        return "no changes: the new rules give the same metaverse and pending exports as the current ones\n"
            .into();
    }
    let mut out = String::new();
    let summary = |ops: &mut dyn Iterator<Item = &str>| {
        let mut counts = std::collections::BTreeMap::new();
        for op in ops {
            *counts.entry(op.to_owned()).or_insert(0) += 1;
        }
        counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !plan.metaverse.is_empty() {
        let mut t = table(&[
            "object",
            "operation",
            "attribute",
            "current rules",
            "new rules",
        ]);
        for m in &plan.metaverse {
            let mut first = true;
            for a in &m.attributes {
                let (object, op) = if first {
                    (m.object.clone(), m.operation.to_owned())
                } else {
                    (String::new(), String::new())
                };
                first = false;
                t.add_row(vec![
                    object,
                    op,
                    a.name.clone(),
                    shown(&a.old),
                    shown(&a.new),
                ]);
            }
        }
        out.push_str(&format!(
            "metaverse: {} object(s) change ({})\n{t}\n",
            plan.metaverse.len(),
            summary(&mut plan.metaverse.iter().map(|m| m.operation))
        ));
    }
    let connectors: std::collections::BTreeSet<&str> =
        plan.exports.iter().map(|e| e.connector.as_str()).collect();
    for connector in connectors {
        let changes: Vec<&engine::plan::ExportDelta> = plan
            .exports
            .iter()
            .filter(|e| e.connector == connector)
            .collect();
        let mut t = table(&[
            "object",
            "pending export",
            "attribute",
            "current rules",
            "new rules",
        ]);
        for c in &changes {
            let op = if c.current_operation == "none" {
                c.operation.to_owned()
            } else {
                format!("{} (current rules: {})", c.operation, c.current_operation)
            };
            let mut rows: Vec<(String, String, String)> = Vec::new();
            if c.new_dn != c.current_new_dn {
                let dn = |d: &Option<String>| d.clone().or(c.dn.clone()).unwrap_or_default();
                rows.push(("dn".into(), dn(&c.current_new_dn), dn(&c.new_dn)));
            }
            rows.extend(
                c.attributes
                    .iter()
                    .map(|a| (a.name.clone(), shown(&a.old), shown(&a.new))),
            );
            if rows.is_empty() {
                rows.push((String::new(), String::new(), String::new()));
            }
            for (i, (attr, old, new)) in rows.into_iter().enumerate() {
                let (object, op) = if i == 0 {
                    (c.object.clone(), op.clone())
                } else {
                    (String::new(), String::new())
                };
                t.add_row(vec![object, op, attr, old, new]);
            }
        }
        out.push_str(&format!(
            "pending exports to {connector}: {} object(s) change ({})\n{t}\n",
            changes.len(),
            summary(&mut changes.iter().map(|c| c.operation))
        ));
    }
    for (title, errors) in [
        ("errors under the new rules", &plan.errors),
        ("errors the new rules resolve", &plan.resolved_errors),
    ] {
        if !errors.is_empty() {
            out.push_str(&format!("{title}:\n"));
            for e in errors.iter() {
                out.push_str(&format!(
                    "  {} {} ({}): {}\n",
                    e.code, e.identifier, e.connector, e.message
                ));
            }
        }
    }
    out
}

fn inputs_text(inputs: &[engine::trace::Input]) -> String {
    inputs
        .iter()
        .map(|i| format!("{} = {}", i.name, shown(&i.value)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn scope_table(rules: &[engine::trace::ScopeTrace]) -> Table {
    let mut t = table(&["rule", "scope", "inputs", "in scope"]);
    for s in rules {
        t.add_row(vec![
            s.rule.clone(),
            s.scope.clone().unwrap_or_else(|| "(everything)".into()),
            inputs_text(&s.inputs),
            match (&s.in_scope, &s.error) {
                (_, Some(e)) => format!("error: {e}"),
                (Some(true), _) => "yes".into(),
                _ => "no".into(),
            },
        ]);
    }
    t
}

fn flows_table(flows: &[engine::trace::FlowTrace], inbound: bool) -> Table {
    let mut header = vec![
        "rule",
        "attribute",
        "expression",
        "inputs",
        "output",
        "decision",
    ];
    if inbound {
        header.push("other sources (precedence: value)");
    }
    let mut t = table(&header);
    for f in flows {
        let mut row = vec![
            f.rule.clone(),
            f.attribute.clone(),
            f.expression.clone(),
            inputs_text(&f.inputs),
            match &f.error {
                Some(e) => format!("error: {e}"),
                None => shown(&f.output),
            },
            f.decision.clone(),
        ];
        if inbound {
            row.push(
                f.others
                    .iter()
                    .map(|o| {
                        format!(
                            "{}/{} ({}): {}",
                            o.connector,
                            o.rule,
                            o.precedence,
                            shown(&o.value)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
        t.add_row(row);
    }
    t
}

/// A sync preview of one object, section by section.
pub fn trace_text(trace: &engine::Trace) -> String {
    let link = |l: &Option<engine::trace::LinkTrace>| {
        l.as_ref().map_or("none (disconnector)".into(), |l| {
            format!("mv:{} ({})", l.mv, l.kind)
        })
    };
    let mut out = format!(
        "sync preview of {} object {} ({})\n  pending import: {}\n  link: {} → {}\n  result: {}\n",
        trace.connector,
        trace.object,
        trace.object_type,
        trace.pending_import.as_deref().unwrap_or("none"),
        link(&trace.link_before),
        link(&trace.link_after),
        trace.result,
    );
    if let Some(e) = &trace.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    if !trace.scope.is_empty() {
        out.push_str(&format!("\ninbound scope\n{}\n", scope_table(&trace.scope)));
    }
    if !trace.join.is_empty() {
        let mut t = table(&["rule", "criterion", "value", "candidates", "outcome"]);
        for j in &trace.join {
            t.add_row(vec![
                j.rule.clone(),
                format!("{}. {} = {}", j.criterion, j.cs, j.mv_attribute),
                shown(&j.value),
                j.candidates
                    .iter()
                    .map(|c| match &c.reason {
                        Some(r) => format!("mv:{} ({r})", c.mv),
                        None => format!("mv:{}", c.mv),
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                j.outcome.clone(),
            ]);
        }
        out.push_str(&format!("\njoin\n{t}\n"));
    }
    if !trace.flows.is_empty() {
        out.push_str(&format!(
            "\nimport attribute flows\n{}\n",
            flows_table(&trace.flows, true)
        ));
    }
    if let Some(m) = &trace.metaverse {
        let id = |i: Option<u64>| i.map_or("none".into(), |i| format!("mv:{i}"));
        out.push_str(&format!(
            "\nmetaverse object {} → {}\n",
            id(m.before),
            id(m.after)
        ));
        if m.attributes.is_empty() {
            out.push_str("  no attribute changes\n");
        } else {
            let mut t = table(&["attribute", "before", "after"]);
            for a in &m.attributes {
                t.add_row(vec![a.name.clone(), shown(&a.old), shown(&a.new)]);
            }
            out.push_str(&format!("{t}\n"));
        }
    }
    for o in &trace.outbound {
        out.push_str(&format!(
            "\noutbound to {}: {}{}\n",
            o.connector,
            o.action,
            o.object
                .as_ref()
                .map_or(String::new(), |obj| format!(" ({obj})"))
        ));
        if !o.rules.is_empty() {
            out.push_str(&format!("{}\n", scope_table(&o.rules)));
        }
        if !o.flows.is_empty() {
            out.push_str(&format!("{}\n", flows_table(&o.flows, false)));
        }
        let pending = |p: &Option<PendingChange>| match p {
            Some(p) => preview_table(std::slice::from_ref(p)),
            None => "none\n".into(),
        };
        if o.before.is_some() || o.after.is_some() {
            out.push_str(&format!(
                "pending export before:\n{}pending export after:\n{}",
                pending(&o.before),
                pending(&o.after)
            ));
        }
    }
    out
}
