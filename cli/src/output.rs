//! Rendering for people (tables) and for programs (JSON).
//!
//! Everything from data (values, anchors, DNs, attribute and type names,
//! rule and connector names, error messages, identifiers) passes through
//! [`escape`] on its way into a table cell or a line, so that what a
//! connected system holds can neither drive the terminal nor break the
//! layout. JSON output escapes as JSON does.

use std::borrow::Cow;

use engine::{CsView, MvView, PendingChange, RunError, RunRecord};

use crate::text_table::TextTable;
use rules::Value;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A readable table.
    Table,
    /// JSON, for scripts.
    Json,
}

/// How a listing command prints: a table for people, JSON or CSV for
/// programs and spreadsheets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// A readable table (one line per item).
    Table,
    /// A JSON array, written item by item.
    Json,
    /// CSV with a header row.
    Csv,
}

/// Prints audit entries as they are read: constant memory whatever the
/// log's size.
pub struct AuditPrinter {
    format: ListFormat,
    count: usize,
}

/// The columns of `mvsync audit --format csv`: one row per attribute.
const AUDIT_CSV: [&str; 13] = [
    "time",
    "run",
    "connector",
    "object",
    "anchor",
    "dn",
    "operation",
    "new_dn",
    "attribute",
    "old",
    "new",
    "result",
    "error",
];

impl AuditPrinter {
    /// A printer in `format`.
    pub fn new(format: ListFormat) -> AuditPrinter {
        AuditPrinter { format, count: 0 }
    }

    /// Prints one entry.
    pub fn entry(
        &mut self,
        out: &mut dyn std::io::Write,
        e: &engine::audit::AuditEntry,
    ) -> std::io::Result<()> {
        let first = self.count == 0;
        self.count += 1;
        match self.format {
            ListFormat::Table => {
                let object = match (&e.anchor, &e.dn) {
                    (Some(a), _) => format!("{} (cs:{})", esc(a), e.object),
                    (None, Some(dn)) => format!("{} (cs:{})", esc(dn), e.object),
                    (None, None) => format!("cs:{}", e.object),
                };
                let mut line = format!(
                    "{} run {} {} {} {}: {}",
                    e.time,
                    e.run,
                    esc(&e.connector),
                    e.operation,
                    object,
                    e.result
                );
                if let Some(err) = &e.error {
                    line.push_str(&format!(" ({})", esc(err)));
                }
                if let Some(dn) = &e.new_dn {
                    line.push_str(&format!("; dn → {}", esc(dn)));
                }
                for c in &e.changes {
                    line.push_str(&format!(
                        "; {}: {} → {}",
                        esc(&c.attribute),
                        esc(&c.old.to_string()),
                        esc(&c.new.to_string())
                    ));
                }
                writeln!(out, "{line}")
            }
            ListFormat::Json => {
                let text = serde_json::to_string(e).map_err(std::io::Error::other)?;
                write!(out, "{}{text}", if first { "[\n" } else { ",\n" })
            }
            ListFormat::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                if first {
                    w.write_record(AUDIT_CSV)?;
                }
                let text = |j: &serde_json::Value| match j {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                let row = |attribute: &str, old: String, new: String| {
                    vec![
                        e.time.clone(),
                        e.run.to_string(),
                        e.connector.clone(),
                        format!("cs:{}", e.object),
                        e.anchor.clone().unwrap_or_default(),
                        e.dn.clone().unwrap_or_default(),
                        e.operation.clone(),
                        e.new_dn.clone().unwrap_or_default(),
                        attribute.to_owned(),
                        old,
                        new,
                        e.result.clone(),
                        e.error.clone().unwrap_or_default(),
                    ]
                };
                if e.changes.is_empty() {
                    w.write_record(row("", String::new(), String::new()))?;
                }
                for c in &e.changes {
                    w.write_record(row(&c.attribute, text(&c.old), text(&c.new)))?;
                }
                let bytes = w.into_inner().map_err(|e| e.into_error())?;
                out.write_all(&bytes)
            }
        }
    }

    /// Ends the listing (closes the JSON array; an empty CSV gets its header).
    pub fn finish(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match self.format {
            ListFormat::Json if self.count == 0 => writeln!(out, "[]"),
            ListFormat::Json => writeln!(out, "\n]"),
            ListFormat::Csv if self.count == 0 => writeln!(out, "{}", AUDIT_CSV.join(",")),
            _ => Ok(()),
        }
    }
}

/// Text from data as tables and lines print it. Control characters (C0,
/// newline and ESC included; DEL; C1, U+0080–U+009F) and the Unicode
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069) are written as escapes in Rust's notation: `\n`, `\r` and
/// `\t` as such, every other one as `\u{1b}` (lower-case hexadecimal, no
/// padding). So a value stays on one line, cannot colour, move or clear
/// the terminal, and cannot reorder the text printed after it. Everything
/// else (backslashes included) is printed as it is: the escapes are for
/// reading; `--format json` gives the exact values.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    fn escaped(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if escaped(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape`], owned.
fn esc(text: &str) -> String {
    escape(text).into_owned()
}

/// An optional text, escaped, or `∅`.
fn esc_or_none(text: Option<&str>) -> String {
    text.map_or_else(|| "∅".into(), esc)
}

/// A value as tables show it (escaped; `∅` for null).
fn shown(v: &Value) -> String {
    if v.is_null() {
        "∅".into()
    } else {
        esc(&v.to_string())
    }
}

/// Pretty JSON of anything serialisable.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The run profiles, each with its steps in order (`mvsync run` without
/// a profile).
pub fn profiles(
    profiles: &std::collections::BTreeMap<String, Vec<crate::config::ProfileStep>>,
) -> String {
    if profiles.is_empty() {
        return "no run profiles are configured ([run_profiles.NAME] in the configuration)\n"
            .into();
    }
    let mut out = String::from("run profiles (mvsync run PROFILE):\n");
    for (name, steps) in profiles {
        out.push_str(&format!("  {}\n", esc(name)));
        for (i, s) in steps.iter().enumerate() {
            let fallback = if s.full_import_fallback {
                " (full import if the watermark expired)"
            } else {
                ""
            };
            out.push_str(&format!(
                "    {}. {} {}{fallback}\n",
                i + 1,
                esc(&s.connector),
                s.kind.name()
            ));
        }
    }
    out
}

/// The pending exports as a table: one row per attribute change.
pub fn preview_table(changes: &[PendingChange]) -> String {
    if changes.is_empty() {
        return "no pending exports\n".into();
    }
    let mut counts = std::collections::BTreeMap::new();
    for c in changes {
        *counts.entry(c.operation).or_insert(0) += 1;
    }
    format!("{}\n{}", preview_rows(changes), preview_summary(&counts))
}

/// The columns of `mvsync preview --format csv`: one row per attribute.
pub const PREVIEW_CSV: [&str; 9] = [
    "connector",
    "object",
    "object_type",
    "operation",
    "dn",
    "new_dn",
    "attribute",
    "old",
    "new",
];

/// One pending change as CSV rows (the header first when `first`).
pub fn preview_csv(c: &PendingChange, first: bool) -> std::io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if first {
        w.write_record(PREVIEW_CSV)?;
    }
    let row = |attribute: &str, old: String, new: String| {
        vec![
            c.connector.clone(),
            c.object.clone(),
            c.object_type.clone(),
            c.operation.to_owned(),
            c.dn.clone().unwrap_or_default(),
            c.new_dn.clone().unwrap_or_default(),
            attribute.to_owned(),
            old,
            new,
        ]
    };
    if c.attributes.is_empty() {
        w.write_record(row("", String::new(), String::new()))?;
    }
    for a in &c.attributes {
        w.write_record(row(&a.name, a.old.to_string(), a.new.to_string()))?;
    }
    w.into_inner().map_err(|e| e.into_error())
}

/// Runs as CSV: one row each, a column per counter.
pub fn history_csv(runs: &[RunRecord]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "run",
        "profile",
        "step",
        "connector",
        "started",
        "finished",
        "status",
    ];
    header.extend(engine::Counters::default().pairs().iter().map(|(n, _)| *n));
    let _ = w.write_record(&header);
    for r in runs {
        let mut row = vec![
            r.id.to_string(),
            r.profile.clone().unwrap_or_default(),
            r.step.name().to_owned(),
            r.connector.clone(),
            time(r.started),
            r.finished.map(time).unwrap_or_default(),
            r.status.name().to_owned(),
        ];
        row.extend(r.counters.pairs().iter().map(|(_, v)| v.to_string()));
        let _ = w.write_record(&row);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A run's per-object errors as CSV.
pub fn errors_csv(errors: &[RunError]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["object", "identifier", "code", "system_code", "message"]);
    for e in errors {
        let _ = w.write_record([
            e.object.map(|k| format!("cs:{}", k.id)).unwrap_or_default(),
            e.identifier.clone(),
            e.code.clone(),
            e.system_code.clone().unwrap_or_default(),
            e.message.clone(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A quarantined connector, in one line.
pub fn quarantine_line(q: &engine::quarantine::Quarantine) -> String {
    format!(
        "connector '{}' is quarantined since run {} ({}): {}; `mvsync quarantine clear {}` once the cause is fixed",
        esc(&q.connector),
        q.run,
        time(q.since),
        esc(&q.reason),
        esc(&q.connector)
    )
}

/// The last line of a preview: how many of each operation.
pub fn preview_summary(counts: &std::collections::BTreeMap<&'static str, usize>) -> String {
    let total: usize = counts.values().sum();
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!("{total} pending: {}\n", summary.join(", "))
}

/// One table of pending exports (a preview prints one per thousand).
pub fn preview_rows(changes: &[PendingChange]) -> String {
    let mut t = TextTable::new(&[
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
                (esc(&c.connector), esc(&c.object), c.operation.to_string())
            } else {
                (String::new(), String::new(), String::new())
            };
            first = false;
            t.add_row(vec![conn, obj, op, attr, old, new]);
        };
        if let Some(new_dn) = &c.new_dn {
            row(
                "dn".into(),
                esc(c.dn.as_deref().unwrap_or_default()),
                esc(new_dn),
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
                    row(esc(&a.name), old, shown(&a.new));
                }
            }
        }
    }
    t.to_string()
}

/// A metaverse object with lineage.
pub fn mv_table(view: &MvView) -> String {
    let mut t = TextTable::new(&[
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
                    esc(&o.connector),
                    esc(&o.rule),
                    o.precedence,
                    shown(&o.value)
                )
            })
            .collect();
        t.add_row(vec![
            esc(&a.name),
            shown(&a.value),
            esc(&a.connector),
            esc(&a.rule),
            losers.join("\n"),
        ]);
    }
    let mut links = TextTable::new(&["connector", "object", "link", "state", "pending export"]);
    for l in &view.links {
        links.add_row(vec![
            esc(&l.connector),
            esc(&l.object),
            esc(&l.kind),
            esc(&l.state),
            l.pending_export.unwrap_or("").to_string(),
        ]);
    }
    format!(
        "metaverse object mv:{} ({})\n{t}\n{links}\n",
        view.id,
        esc(&view.object_type)
    )
}

/// A connector-space object.
pub fn cs_table(view: &CsView) -> String {
    let mut out = format!(
        "{} object cs:{} ({})\n  anchor: {}\n  dn: {}\n  state: {}\n  link: {}\n",
        esc(&view.connector),
        view.id,
        esc(&view.object_type),
        esc_or_none(view.anchor.as_deref()),
        esc_or_none(view.dn.as_deref()),
        esc(&view.state),
        view.link
            .as_ref()
            .map_or("none (disconnector)".into(), |(mv, kind)| format!(
                "mv:{mv} ({})",
                esc(kind)
            )),
    );
    if let Some((code, message)) = &view.error {
        out.push_str(&format!("  error: {}: {}\n", esc(code), esc(message)));
    }
    let mut t = TextTable::new(&["attribute", "hologram", "pending import", "escrow"]);
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
                v.as_str().map_or_else(|| esc(&v.to_string()), esc)
            })
    };
    for n in names {
        let pending = view
            .pending_import
            .as_ref()
            .map_or(String::new(), |(_, a)| find(a, n));
        t.add_row(vec![
            esc(n),
            find(&view.hologram, n),
            pending,
            find(&view.escrow, n),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    if let Some((kind, _)) = &view.pending_import {
        out.push_str(&format!("pending import: {}\n", esc(kind)));
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
    format!("{} keys, {}", w.keys, size(w.bytes))
}

/// A size: `512 B`, `3.4 KB`, `12.0 MB`, `1.5 GB`.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    const K: f64 = 1024.0;
    if b < K {
        format!("{bytes} B")
    } else if b < K * K {
        format!("{:.1} KB", b / K)
    } else if b < K * K * K {
        format!("{:.1} MB", b / (K * K))
    } else {
        format!("{:.1} GB", b / (K * K * K))
    }
}

/// One line about a finished step.
pub fn run_line(record: &RunRecord) -> String {
    format!(
        "run {} {} {}: {} ({})",
        record.id,
        record.step.name(),
        esc(&record.connector),
        record.status.name(),
        counters(record)
    )
}

/// The run history.
pub fn history_table(runs: &[RunRecord]) -> String {
    let mut t = TextTable::new(&[
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
            esc(r.profile.as_deref().unwrap_or_default()),
            r.step.name().to_string(),
            esc(&r.connector),
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
        // The connected system's own code, where it gave one, follows the
        // engine's: `export-rejected [LDAP 19 constraintViolation]`.
        let system = e
            .system_code
            .as_deref()
            .map(|c| format!(" [{}]", esc(c)))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {}{system} {}: {}\n",
            esc(&e.code),
            esc(&e.identifier),
            esc(&e.message)
        ));
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
        let mut t = TextTable::new(&[
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
                    (esc(&m.object), m.operation.to_owned())
                } else {
                    (String::new(), String::new())
                };
                first = false;
                t.add_row(vec![object, op, esc(&a.name), shown(&a.old), shown(&a.new)]);
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
        let mut t = TextTable::new(&[
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
                let dn =
                    |d: &Option<String>| esc(d.as_deref().or(c.dn.as_deref()).unwrap_or_default());
                rows.push(("dn".into(), dn(&c.current_new_dn), dn(&c.new_dn)));
            }
            rows.extend(
                c.attributes
                    .iter()
                    .map(|a| (esc(&a.name), shown(&a.old), shown(&a.new))),
            );
            if rows.is_empty() {
                rows.push((String::new(), String::new(), String::new()));
            }
            for (i, (attr, old, new)) in rows.into_iter().enumerate() {
                let (object, op) = if i == 0 {
                    (esc(&c.object), op.clone())
                } else {
                    (String::new(), String::new())
                };
                t.add_row(vec![object, op, attr, old, new]);
            }
        }
        out.push_str(&format!(
            "pending exports to {}: {} object(s) change ({})\n{t}\n",
            esc(connector),
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
                    esc(&e.code),
                    esc(&e.identifier),
                    esc(&e.connector),
                    esc(&e.message)
                ));
            }
        }
    }
    out
}

fn inputs_text(inputs: &[engine::trace::Input]) -> String {
    inputs
        .iter()
        .map(|i| format!("{} = {}", esc(&i.name), shown(&i.value)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn scope_table(rules: &[engine::trace::ScopeTrace]) -> TextTable {
    let mut t = TextTable::new(&["rule", "scope", "inputs", "in scope"]);
    for s in rules {
        t.add_row(vec![
            esc(&s.rule),
            s.scope
                .as_deref()
                .map_or_else(|| "(everything)".into(), esc),
            inputs_text(&s.inputs),
            match (&s.in_scope, &s.error) {
                (_, Some(e)) => format!("error: {}", esc(e)),
                (Some(true), _) => "yes".into(),
                _ => "no".into(),
            },
        ]);
    }
    t
}

fn flows_table(flows: &[engine::trace::FlowTrace], inbound: bool) -> TextTable {
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
    let mut t = TextTable::new(&header);
    for f in flows {
        let mut row = vec![
            esc(&f.rule),
            esc(&f.attribute),
            esc(&f.expression),
            inputs_text(&f.inputs),
            match &f.error {
                Some(e) => format!("error: {}", esc(e)),
                None => shown(&f.output),
            },
            esc(&f.decision),
        ];
        if inbound {
            row.push(
                f.others
                    .iter()
                    .map(|o| {
                        format!(
                            "{}/{} ({}): {}",
                            esc(&o.connector),
                            esc(&o.rule),
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
            format!("mv:{} ({})", l.mv, esc(&l.kind))
        })
    };
    let mut out = format!(
        "sync preview of {} object {} ({})\n  pending import: {}\n  link: {} → {}\n  result: {}\n",
        esc(&trace.connector),
        esc(&trace.object),
        esc(&trace.object_type),
        esc(trace.pending_import.as_deref().unwrap_or("none")),
        link(&trace.link_before),
        link(&trace.link_after),
        esc(&trace.result),
    );
    if let Some(e) = &trace.error {
        out.push_str(&format!("  error: {}\n", esc(e)));
    }
    if !trace.scope.is_empty() {
        out.push_str(&format!("\ninbound scope\n{}\n", scope_table(&trace.scope)));
    }
    if !trace.join.is_empty() {
        let mut t = TextTable::new(&["rule", "criterion", "value", "candidates", "outcome"]);
        for j in &trace.join {
            t.add_row(vec![
                esc(&j.rule),
                format!("{}. {} = {}", j.criterion, esc(&j.cs), esc(&j.mv_attribute)),
                shown(&j.value),
                j.candidates
                    .iter()
                    .map(|c| match &c.reason {
                        Some(r) => format!("mv:{} ({})", c.mv, esc(r)),
                        None => format!("mv:{}", c.mv),
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                esc(&j.outcome),
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
            let mut t = TextTable::new(&["attribute", "before", "after"]);
            for a in &m.attributes {
                t.add_row(vec![esc(&a.name), shown(&a.old), shown(&a.new)]);
            }
            out.push_str(&format!("{t}\n"));
        }
    }
    for o in &trace.outbound {
        out.push_str(&format!(
            "\noutbound to {}: {}{}\n",
            esc(&o.connector),
            esc(&o.action),
            o.object
                .as_ref()
                .map_or(String::new(), |obj| format!(" ({})", esc(obj)))
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

#[cfg(test)]
mod tests {
    use engine::{Counters, RunError, RunRecord, RunStatus, StepKind, WriteStats};
    use serde_json::json;

    use super::*;

    const RED: &str = "\u{1b}[31mred\u{1b}[0m";

    fn raw_controls(text: &str) -> Vec<char> {
        // Table borders and layout use newlines only.
        text.chars()
            .filter(|&c| {
                (c.is_control() && c != '\n')
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            })
            .collect()
    }

    #[test]
    fn escape_writes_control_and_bidi_characters_as_escapes() {
        assert_eq!(escape(RED), "\\u{1b}[31mred\\u{1b}[0m");
        assert_eq!(escape("two\nlines\r\n\tend"), "two\\nlines\\r\\n\\tend");
        assert_eq!(
            escape("nul\0 del\u{7f} csi\u{9b}"),
            "nul\\u{0} del\\u{7f} csi\\u{9b}"
        );
        assert_eq!(
            escape("a\u{202e}b\u{2066}c\u{2069}d\u{202a}"),
            "a\\u{202e}b\\u{2066}c\\u{2069}d\\u{202a}"
        );
        // Ordinary text, other Unicode and backslashes pass unchanged (and
        // are not copied).
        for plain in ["Zoë Ørsted", "CN=Doe\\, John,OU=Staff", "日本語 ✓", ""] {
            assert!(matches!(escape(plain), Cow::Borrowed(p) if p == plain));
        }
        // U+00A0 (after C1) and U+202F (after the overrides) are printed as they are.
        assert_eq!(escape("a\u{a0}b\u{202f}c"), "a\u{a0}b\u{202f}c");
    }

    #[test]
    fn preview_table_escapes_every_cell_from_data() {
        let change = PendingChange {
            connector: "app".into(),
            object: format!("acct{RED}"),
            object_type: "account".into(),
            operation: "update",
            dn: Some("CN=old\u{202e}".into()),
            new_dn: Some("CN=new\nline".into()),
            attributes: vec![engine::inspect::AttributeChange {
                name: format!("display{RED}"),
                op: "set",
                old: Value::str("a\u{1b}]0;title\u{7}"),
                new: Value::list([Value::str(RED), Value::str("x\ny")]),
            }],
            mv: None,
        };
        let text = preview_table(&[change]);
        assert_eq!(raw_controls(&text), Vec::<char>::new(), "{text}");
        for shown in [
            "acct\\u{1b}[31mred\\u{1b}[0m",
            "display\\u{1b}[31mred\\u{1b}[0m",
            "CN=old\\u{202e}",
            "CN=new\\nline",
            "a\\u{1b}]0;title\\u{7}",
            "\\u{1b}[31mred\\u{1b}[0m; x\\ny",
        ] {
            assert!(text.contains(shown), "{shown} in\n{text}");
        }
        // One value, one line: three rows (dn, display…) plus borders and header.
        assert_eq!(text.lines().count(), 7, "{text}");
    }

    #[test]
    fn lines_escape_data_like_tables() {
        let errors: Vec<RunError> = serde_json::from_value(json!([{
            "object": null,
            "identifier": "data/hr.csv:4:2\u{1b}[2J",
            "code": "bad-input",
            "message": "value \u{1b}[31mred\u{1b}[0m\nsecond line",
            "system_code": null,
        }]))
        .expect("a run error");
        let text = errors_list(&errors, 20);
        assert_eq!(
            text,
            "  bad-input data/hr.csv:4:2\\u{1b}[2J: value \\u{1b}[31mred\\u{1b}[0m\\nsecond line\n"
        );

        let record: RunRecord = serde_json::from_value(json!({
            "id": 7,
            "profile": "full\u{1b}[1m",
            "step": StepKind::FullImport,
            "connector": format!("hr{RED}"),
            "started": 0,
            "finished": null,
            "status": RunStatus::Success,
            "counters": Counters::default(),
            "written": WriteStats::default(),
        }))
        .expect("a run record");
        let line = run_line(&record);
        assert_eq!(
            line,
            "run 7 full-import hr\\u{1b}[31mred\\u{1b}[0m: success (no changes)"
        );
        let table = history_table(&[record]);
        assert_eq!(raw_controls(&table), Vec::<char>::new(), "{table}");
        assert!(table.contains("full\\u{1b}[1m"), "{table}");
    }
}
