//! The console's views: each reads one page of the store through
//! [`Browser`] and renders it. A view never writes.

use std::path::Path;

use engine::browse::{CsFilterState, CsQuery, MvQuery, Page};
use engine::{Browser, RunRecord, RunStatus};
use maud::{html, Markup};
use serde::Deserialize;

use super::chart;
use super::page::{self, badge, json_value, layout, pager, time, url, value, Section};

/// Rows per page of a list.
pub const PAGE: usize = 50;
/// Export-queue entries counted before a count says "or more".
pub const COUNT_CAP: usize = 100_000;
/// Runs the chart shows.
const CHART_RUNS: usize = 60;
/// The largest saved plan the console reads.
const PLAN_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Why a view has nothing to show.
#[derive(Debug)]
pub enum ViewError {
    /// No such thing (404).
    NotFound(String),
    /// The request asks for something malformed (400).
    BadRequest(String),
    /// The store failed (500).
    Store(String),
}

impl From<engine::StoreError> for ViewError {
    fn from(e: engine::StoreError) -> Self {
        ViewError::Store(e.to_string())
    }
}

type View = Result<Markup, ViewError>;

/// `/runs`: filters, the chart, and a page of runs, newest first.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunsQuery {
    profile: Option<String>,
    connector: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page: Option<usize>,
}

pub fn runs(b: &Browser, q: &RunsQuery) -> View {
    let filter = crate::HistoryFilter {
        profile: given(&q.profile),
        connector: given(&q.connector),
        status: given(&q.status),
        since: given(&q.since),
        until: given(&q.until),
    };
    let keep = crate::operations::history_filter(&filter).map_err(ViewError::BadRequest)?;
    let all = b.runs()?;
    let profiles: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|r| r.profile.as_deref()).collect();
    let matching: Vec<&RunRecord> = all.iter().filter(|r| keep(r)).collect();
    let page_no = q.page.unwrap_or(1).max(1);
    let newest_first: Vec<&RunRecord> = matching
        .iter()
        .rev()
        .skip((page_no - 1) * PAGE)
        .take(PAGE)
        .copied()
        .collect();
    let charted: Vec<&RunRecord> = matching
        .iter()
        .skip(matching.len().saturating_sub(CHART_RUNS))
        .copied()
        .collect();
    let link = |p: usize| {
        let p = p.to_string();
        url(
            "/runs",
            &[
                ("profile", filter.profile.as_deref()),
                ("connector", filter.connector.as_deref()),
                ("status", filter.status.as_deref()),
                ("since", filter.since.as_deref()),
                ("until", filter.until.as_deref()),
                ("page", Some(&p)),
            ],
        )
    };
    let body = html! {
        form.filters method="get" action="/runs" {
            label { "Profile "
                select name="profile" {
                    option value="" { "any" }
                    @for p in &profiles {
                        option value=(p) selected[filter.profile.as_deref() == Some(*p)] { (p) }
                    }
                }
            }
            label { "Connector "
                select name="connector" {
                    option value="" { "any" }
                    @for c in b.connectors() {
                        option value=(c) selected[filter.connector.as_deref() == Some(c.as_str())] { (c) }
                    }
                }
            }
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in RunStatus::NAMES {
                        option value=(s) selected[filter.status.as_deref() == Some(s)] { (s) }
                    }
                }
            }
            label { "Since " input type="date" name="since" value=[filter.since.as_deref()]; }
            label { "Until " input type="date" name="until" value=[filter.until.as_deref()]; }
            button type="submit" { "Filter" }
        }
        @if charted.is_empty() {
            p.muted { "No run matches." }
        } @else {
            (chart::bars(&charted))
            div.scroll { table {
                thead { tr {
                    th { "Run" } th { "Profile" } th { "Step" } th { "Connector" } th { "Status" }
                    th { "Started (UTC)" } th { "Took" }
                    th.num { "Adds" } th.num { "Updates" } th.num { "Deletes" } th.num { "Errors" }
                } }
                tbody {
                    @for r in &newest_first {
                        @let [adds, updates, deletes] = chart::changes(r);
                        tr {
                            td { a href=(format!("/runs/{}", r.id)) { (r.id) } }
                            td { (r.profile.as_deref().unwrap_or("—")) }
                            td { (r.step.name()) }
                            td { a href=(format!("/connectors/{}", page::encode(&r.connector))) { (r.connector) } }
                            td { (status(r)) }
                            td { (time(r.started)) }
                            td { (page::duration(r.started, r.finished)) }
                            td.num { (adds) } td.num { (updates) } td.num { (deletes) }
                            td.num { (r.counters.errors) }
                        }
                    }
                }
            } }
            nav.pager {
                span.muted { (matching.len()) " runs match; page " (page_no) }
                @if page_no > 1 { a href=(link(page_no - 1)) { "Newer" } }
                @if page_no * PAGE < matching.len() { a rel="next" href=(link(page_no + 1)) { "Older" } }
            }
        }
    };
    Ok(layout("Run history", Section::Runs, body))
}

/// A run's status. While the console holds the store no run can be
/// running, so a run still marked in progress was interrupted.
fn status(r: &RunRecord) -> Markup {
    match r.status {
        RunStatus::InProgress => badge("interrupted"),
        ref s => badge(s.name()),
    }
}

/// `/runs/{id}`: the run's record, counters and a page of its errors.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AfterQuery {
    after: Option<String>,
}

pub fn run(b: &Browser, id: u64, q: &AfterQuery) -> View {
    let Some(r) = b.run(id)? else {
        return Err(ViewError::NotFound(format!("There is no run {id}.")));
    };
    let errors = b.run_errors(id, q.after.as_deref(), PAGE * 2)?;
    let message = match &r.status {
        RunStatus::Failed(m) | RunStatus::StoppedByThreshold(m) => Some(m.as_str()),
        _ => None,
    };
    let counters: Vec<(&str, u64)> = r.counters.pairs().into_iter().collect();
    let body = html! {
        dl.facts {
            dt { "Status" } dd { (status(&r)) }
            @if let Some(m) = message { dt { "Why" } dd { (m) } }
            dt { "Profile" } dd { (r.profile.as_deref().unwrap_or("—")) }
            dt { "Step" } dd { (r.step.name()) }
            dt { "Connector" } dd { a href=(format!("/connectors/{}", page::encode(&r.connector))) { (r.connector) } }
            dt { "Started (UTC)" } dd { (time(r.started)) }
            dt { "Took" } dd { (page::duration(r.started, r.finished)) }
            dt { "Store writes" } dd { (r.written.keys) " keys, " (r.written.bytes) " bytes" }
        }
        h2 { "Counters" }
        div.counters {
            @for (name, n) in &counters {
                div class=(if *n > 0 { "counter" } else { "counter zero" }) { span.n { (n) } span { (name) } }
            }
        }
        h2 { "Per-object errors" }
        @if errors.items.is_empty() {
            p.muted { "None." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Object" } th { "Code" } th { "Message" } th { "System code" } } }
                tbody {
                    @for e in &errors.items {
                        tr {
                            td {
                                @match e.object {
                                    Some(key) => {
                                        @let conn = b.store().name(key.conn);
                                        a href=(format!("/connectors/{}/objects/{}", page::encode(&conn), key.id)) { (e.identifier) }
                                    }
                                    None => { (e.identifier) }
                                }
                            }
                            td { code { (e.code) } }
                            td { (e.message) }
                            td { (e.system_code.as_deref().unwrap_or("")) }
                        }
                    }
                }
            } }
            (pager(errors.next.as_ref().map(|n| url(&format!("/runs/{id}"), &[("after", Some(n))])),
                errors.items.len(), errors.scanned,
                q.after.as_ref().map(|_| format!("/runs/{id}"))))
        }
    };
    Ok(layout(&format!("Run {id}"), Section::Runs, body))
}

/// `/connectors`: every connector with its pending exports and quarantine.
pub fn connectors(b: &Browser) -> View {
    let quarantined = engine::quarantine::all(b.store())?;
    let mut rows = Vec::new();
    for c in b.connectors() {
        let pending = b.pending_count(&c, COUNT_CAP)?;
        rows.push((c, pending));
    }
    let body = html! {
        div.scroll { table {
            thead { tr { th { "Connector" } th.num { "Pending exports" } th { "Quarantine" } th { "" } } }
            tbody {
                @for (c, pending) in &rows {
                    @let q = quarantined.iter().find(|q| &q.connector == c);
                    tr {
                        td { a href=(format!("/connectors/{}", page::encode(c))) { (c) } }
                        td.num { (count(*pending)) }
                        td { @if let Some(q) = q { (badge("stopped-by-threshold")) " " (q.reason) } @else { span.muted { "—" } } }
                        td { a href=(format!("/connectors/{}/exports", page::encode(c))) { "Pending exports" } }
                    }
                }
            }
        } }
    };
    Ok(layout("Connector spaces", Section::Connectors, body))
}

fn count(n: usize) -> String {
    if n >= COUNT_CAP {
        format!("{COUNT_CAP}+")
    } else {
        n.to_string()
    }
}

/// `/connectors/{name}`: search a connector space.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsSearch {
    anchor: Option<String>,
    dn: Option<String>,
    attribute: Option<String>,
    value: Option<String>,
    state: Option<String>,
    after: Option<String>,
}

fn given(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn search_cs(b: &Browser, connector: &str, q: &CsSearch) -> View {
    let state = match given(&q.state) {
        Some(s) => Some(CsFilterState::parse(&s).ok_or_else(|| {
            ViewError::BadRequest(format!(
                "state {s:?} is not one of {}",
                CsFilterState::NAMES.join(", ")
            ))
        })?),
        None => None,
    };
    let query = CsQuery {
        anchor: given(&q.anchor),
        dn: given(&q.dn),
        attribute: given(&q.attribute),
        value: given(&q.value),
        state,
    };
    let Some(found) = b.search_cs(connector, &query, given(&q.after).as_deref(), PAGE)? else {
        return Err(no_connector(b, connector));
    };
    let base = format!("/connectors/{}", page::encode(connector));
    let state_name = given(&q.state);
    let params = |after: Option<&str>| {
        url(
            &base,
            &[
                ("anchor", query.anchor.as_deref()),
                ("dn", query.dn.as_deref()),
                ("attribute", query.attribute.as_deref()),
                ("value", query.value.as_deref()),
                ("state", state_name.as_deref()),
                ("after", after),
            ],
        )
    };
    let body = html! {
        p { a href=(format!("{base}/exports")) { "Pending exports of " (connector) } }
        form.filters method="get" action=(base) {
            label { "Anchor starts with " input name="anchor" value=[query.anchor.as_deref()]; }
            label { "DN starts with " input name="dn" value=[query.dn.as_deref()]; }
            label { "Attribute " input name="attribute" value=[query.attribute.as_deref()] placeholder="any"; }
            label { "Value contains " input name="value" value=[query.value.as_deref()]; }
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for s in CsFilterState::NAMES {
                        option value=(s) selected[state_name.as_deref() == Some(s)] { (s) }
                    }
                }
            }
            button type="submit" { "Search" }
        }
        (cs_rows(connector, &found))
        (pager(found.next.as_deref().map(|n| params(Some(n))), found.items.len(), found.scanned,
            q.after.as_ref().map(|_| params(None))))
    };
    Ok(layout(
        &format!("Connector space: {connector}"),
        Section::Connectors,
        body,
    ))
}

fn cs_rows(connector: &str, found: &Page<engine::browse::CsRow>) -> Markup {
    html! {
        @if found.items.is_empty() {
            p.muted { "No object on this page matches." }
        } @else {
            div.scroll { table {
                thead { tr {
                    th { "Id" } th { "Anchor" } th { "DN" } th { "Type" } th { "State" }
                    th { "Metaverse" } th { "Pending import" } th { "Pending export" } th { "Error" }
                } }
                tbody {
                    @for r in &found.items {
                        tr {
                            td { a href=(format!("/connectors/{}/objects/{}", page::encode(connector), r.id)) { (r.id) } }
                            td { (r.anchor.as_deref().unwrap_or("—")) }
                            td { (r.dn.as_deref().unwrap_or("—")) }
                            td { (r.object_type) }
                            td { (badge(&r.state)) }
                            td { @if let Some(mv) = r.mv { a href=(format!("/metaverse/{mv}")) { "mv:" (mv) } } @else { span.muted { "disconnector" } } }
                            td { (r.pending_import.as_deref().unwrap_or("")) }
                            td { @if let Some(op) = r.pending_export { (badge(op)) } }
                            td { @if let Some(e) = &r.error { code { (e) } } }
                        }
                    }
                }
            } }
        }
    }
}

fn no_connector(b: &Browser, connector: &str) -> ViewError {
    ViewError::NotFound(format!(
        "There is no connector named {connector:?}; the configuration has {}.",
        b.connectors().join(", ")
    ))
}

/// `/connectors/{name}/objects/{id}`: one connector-space object.
pub fn cs_object(b: &Browser, connector: &str, id: u64) -> View {
    let Some(cs) = b.cs(connector, id)? else {
        return Err(ViewError::NotFound(format!(
            "{connector} has no object {id}."
        )));
    };
    let attrs = |rows: &[(String, serde_json::Value)]| {
        html! {
            @if rows.is_empty() { p.muted { "None." } } @else {
                div.scroll { table.attrs {
                    tbody { @for (n, v) in rows { tr { th { (n) } td { (json_value(n, v)) } } } }
                } }
            }
        }
    };
    let title = cs
        .anchor
        .clone()
        .or(cs.dn.clone())
        .unwrap_or(format!("cs:{id}"));
    let body = html! {
        dl.facts {
            dt { "Connector" } dd { a href=(format!("/connectors/{}", page::encode(connector))) { (connector) } }
            dt { "Id" } dd { (cs.id) }
            dt { "Anchor" } dd { (cs.anchor.as_deref().unwrap_or("—")) }
            dt { "DN" } dd { (cs.dn.as_deref().unwrap_or("—")) }
            dt { "Type" } dd { (cs.object_type) }
            dt { "State" } dd { (badge(&cs.state)) }
            dt { "Metaverse" } dd {
                @match &cs.link {
                    Some((mv, kind)) => { a href=(format!("/metaverse/{mv}")) { "mv:" (mv) } " (" (kind) ")" }
                    None => { span.muted { "none: a disconnector" } }
                }
            }
            @if let Some((code, message)) = &cs.error {
                dt { "Error" } dd { code { (code) } " " (message) }
            }
        }
        h2 { "Attributes (as last synchronized)" }
        (attrs(&cs.hologram))
        @if let Some((kind, staged)) = &cs.pending_import {
            h2 { "Pending import: " (kind) }
            (attrs(staged))
        }
        @if let Some(change) = &cs.pending_export {
            h2 { "Pending export: " (badge(change.operation)) }
            (change_table(change))
        }
        @if !cs.escrow.is_empty() {
            h2 { "Exported, awaiting confirmation" }
            (attrs(&cs.escrow))
        }
    };
    Ok(layout(&title, Section::Connectors, body))
}

fn change_table(c: &engine::PendingChange) -> Markup {
    html! {
        @if let Some(new_dn) = &c.new_dn {
            p { "Renamed from " code { (c.dn.as_deref().unwrap_or("—")) } " to " code { (new_dn) } }
        }
        @if c.attributes.is_empty() {
            @if c.operation == "delete" { p { "The object is deleted." } }
        } @else {
            div.scroll { table.attrs {
                thead { tr { th { "Attribute" } th { "Change" } th { "Old" } th { "New" } } }
                tbody {
                    @for a in &c.attributes {
                        tr { th { (a.name) } td { (a.op) } td { (value(&a.name, &a.old)) } td { (value(&a.name, &a.new)) } }
                    }
                }
            } }
        }
    }
}

/// `/connectors/{name}/exports`: a page of pending exports.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExportsQuery {
    op: Option<String>,
    after: Option<String>,
}

const OPERATIONS: [&str; 4] = ["add", "update", "rename", "delete"];

pub fn exports(b: &Browser, connector: &str, q: &ExportsQuery) -> View {
    let op = given(&q.op);
    if let Some(o) = &op {
        if !OPERATIONS.contains(&o.as_str()) {
            return Err(ViewError::BadRequest(format!(
                "op {o:?} is not one of {}",
                OPERATIONS.join(", ")
            )));
        }
    }
    let Some(found) = b.pending(connector, op.as_deref(), given(&q.after).as_deref(), PAGE)? else {
        return Err(no_connector(b, connector));
    };
    let total = b.pending_count(connector, COUNT_CAP)?;
    let quarantine = engine::quarantine::get(b.store(), connector)?;
    let base = format!("/connectors/{}/exports", page::encode(connector));
    let params = |after: Option<&str>| url(&base, &[("op", op.as_deref()), ("after", after)]);
    let body = html! {
        dl.facts {
            dt { "Pending exports" } dd { (count(total)) }
            dt { "Deletion threshold" } dd { (b.deletion_threshold()) " deletes per export (more stop the export unless allowed with " code { "--allow-deletes" } ")" }
            @if let Some(q) = &quarantine {
                dt { "Quarantine" } dd { (badge("stopped-by-threshold")) " since run " a href=(format!("/runs/{}", q.run)) { (q.run) } ": " (q.reason) }
            }
        }
        form.filters method="get" action=(base) {
            label { "Operation "
                select name="op" {
                    option value="" { "any" }
                    @for o in OPERATIONS { option value=(o) selected[op.as_deref() == Some(o)] { (o) } }
                }
            }
            button type="submit" { "Show" }
        }
        @if found.items.is_empty() {
            p.muted { "No pending export on this page." }
        }
        @for (id, change) in &found.items {
            section.change {
                h3 {
                    (badge(change.operation)) " "
                    a href=(format!("/connectors/{}/objects/{id}", page::encode(connector))) { (change.object) }
                    span.muted { " " (change.object_type) }
                    @if let Some(mv) = change.mv { " · " a href=(format!("/metaverse/{mv}")) { "mv:" (mv) } }
                }
                @if let Some(dn) = &change.dn { p.muted { (dn) } }
                (change_table(change))
            }
        }
        (pager(found.next.as_deref().map(|n| params(Some(n))), found.items.len(), found.scanned,
            q.after.as_ref().map(|_| params(None))))
    };
    Ok(layout(
        &format!("Pending exports: {connector}"),
        Section::Connectors,
        body,
    ))
}

/// `/metaverse`: search the metaverse.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MvSearch {
    #[serde(rename = "type")]
    object_type: Option<String>,
    attribute: Option<String>,
    value: Option<String>,
    after: Option<String>,
}

pub fn search_mv(b: &Browser, q: &MvSearch) -> View {
    let query = MvQuery {
        object_type: given(&q.object_type),
        attribute: given(&q.attribute),
        value: given(&q.value),
    };
    let found = b.search_mv(&query, given(&q.after).as_deref(), PAGE)?;
    let params = |after: Option<&str>| {
        url(
            "/metaverse",
            &[
                ("type", query.object_type.as_deref()),
                ("attribute", query.attribute.as_deref()),
                ("value", query.value.as_deref()),
                ("after", after),
            ],
        )
    };
    let body = html! {
        form.filters method="get" action="/metaverse" {
            label { "Type " input name="type" value=[query.object_type.as_deref()] placeholder="any"; }
            label { "Attribute " input name="attribute" value=[query.attribute.as_deref()] placeholder="any"; }
            label { "Value contains " input name="value" value=[query.value.as_deref()]; }
            button type="submit" { "Search" }
        }
        @if found.items.is_empty() {
            p.muted { "No object on this page matches." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Id" } th { "Type" } th { "Attributes" } th.num { "Links" } } }
                tbody {
                    @for r in &found.items {
                        tr {
                            td { a href=(format!("/metaverse/{}", r.id)) { "mv:" (r.id) } }
                            td { (r.object_type) }
                            td { @for (n, v) in &r.summary { span.pair { span.muted { (n) " " } (value(n, v)) } } }
                            td.num { (r.links) }
                        }
                    }
                }
            } }
        }
        (pager(found.next.as_deref().map(|n| params(Some(n))), found.items.len(), found.scanned,
            q.after.as_ref().map(|_| params(None))))
    };
    Ok(layout("Metaverse", Section::Metaverse, body))
}

/// `/metaverse/{id}`: one metaverse object, its lineage and its links.
pub fn mv_object(b: &Browser, id: u64) -> View {
    let now = chrono::Utc::now().timestamp_micros();
    let Some(mv) = b.mv(id, now)? else {
        return Err(ViewError::NotFound(format!(
            "There is no metaverse object {id}."
        )));
    };
    let body = html! {
        dl.facts { dt { "Type" } dd { (mv.object_type) } dt { "Id" } dd { "mv:" (mv.id) } }
        h2 { "Attributes and where they come from" }
        div.scroll { table.attrs.lineage {
            thead { tr { th { "Attribute" } th { "Value" } th { "Supplied by" } th { "Other sources" } } }
            tbody {
                @for a in &mv.attributes {
                    tr {
                        th { (a.name) }
                        td { (value(&a.name, &a.value)) }
                        td.winner {
                            a href=(format!("/connectors/{}", page::encode(&a.connector))) { (a.connector) }
                            span.muted { " rule " } (a.rule)
                        }
                        td {
                            @for o in a.offers.iter().filter(|o| !o.winner) {
                                div.loser {
                                    (o.connector) span.muted { " rule " } (o.rule)
                                    span.muted { " precedence " (o.precedence) ": " }
                                    (value(&a.name, &o.value))
                                }
                            }
                        }
                    }
                }
            }
        } }
        h2 { "Links" }
        @if mv.links.is_empty() { p.muted { "None." } } @else {
            div.scroll { table {
                thead { tr { th { "Connector" } th { "Object" } th { "Linked by" } th { "State" } th { "Pending export" } } }
                tbody {
                    @for l in &mv.links {
                        tr {
                            td { a href=(format!("/connectors/{}", page::encode(&l.connector))) { (l.connector) } }
                            td { a href=(url(&format!("/connectors/{}/find", page::encode(&l.connector)), &[("object", Some(&l.object))])) { (l.object) } }
                            td { (l.kind) }
                            td { (badge(&l.state)) }
                            td { @if let Some(op) = l.pending_export { (badge(op)) } }
                        }
                    }
                }
            } }
        }
    };
    let name = mv.attributes.iter().find_map(|a| match &a.value {
        rules::Value::Str(s) if a.name == "displayName" => Some(s.as_str()),
        _ => None,
    });
    let title = match name {
        Some(n) => format!("mv:{id} · {n}"),
        None => format!("mv:{id}"),
    };
    Ok(layout(&title, Section::Metaverse, body))
}

/// `/connectors/{name}/find?object=`: the id of an object named by its
/// anchor, DN or `cs:<id>` (as links from metaverse objects name them).
pub fn find_cs(b: &Browser, connector: &str, object: &str) -> Result<u64, ViewError> {
    b.find_cs(connector, object)?
        .ok_or_else(|| ViewError::NotFound(format!("{connector} has no object {object:?}.")))
}

/// `/plan`: the plan saved by `mvsync plan --rules NEW.toml --save`.
pub fn plan(saved: &Path) -> View {
    let body = match std::fs::metadata(saved) {
        Err(_) => html! {
            p { "No plan is saved. " code { "mvsync plan --rules NEW.toml --save" } " computes what a changed configuration would do and saves it here." }
        },
        Ok(m) if m.len() > PLAN_MAX_BYTES => html! {
            p { "The saved plan is " (m.len() / (1024 * 1024)) " MiB, more than the console shows; read it with " code { "mvsync plan --rules NEW.toml --format json" } "." }
        },
        Ok(_) => {
            let text = std::fs::read_to_string(saved)
                .map_err(|e| ViewError::Store(format!("{}: {e}", saved.display())))?;
            let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                ViewError::Store(format!("{}: not a saved plan: {e}", saved.display()))
            })?;
            plan_body(&doc)
        }
    };
    Ok(layout("Plan", Section::Plan, body))
}

fn plan_body(doc: &serde_json::Value) -> Markup {
    let plan = &doc["plan"];
    let list = |key: &str| plan[key].as_array().cloned().unwrap_or_default();
    let str_of = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let attrs = |v: &serde_json::Value| {
        let rows = v["attributes"].as_array().cloned().unwrap_or_default();
        html! {
            @if !rows.is_empty() {
                table.attrs { tbody { @for a in &rows {
                    @let n = str_of(a, "name");
                    tr { th { (n) } td { (json_value(&n, &a["old"])) } td { "→" } td { (json_value(&n, &a["new"])) } }
                } } }
            }
        }
    };
    let metaverse = list("metaverse");
    let exports = list("exports");
    let errors = list("errors");
    let resolved = list("resolved_errors");
    html! {
        dl.facts {
            dt { "Rules" } dd { code { (doc["rules"].as_str().unwrap_or("?")) } }
            dt { "Saved (UTC)" } dd { (doc["saved"].as_str().unwrap_or("?")) }
            dt { "Metaverse objects changed" } dd { (metaverse.len()) }
            dt { "Pending exports changed" } dd { (exports.len()) }
            dt { "New errors" } dd { (errors.len()) }
            dt { "Errors resolved" } dd { (resolved.len()) }
        }
        @for w in list("warnings") { p.problem { (w.as_str().unwrap_or("")) } }
        h2 { "Metaverse" }
        @for m in metaverse.iter().take(PAGE * 10) {
            section.change {
                h3 { (badge(&str_of(m, "operation"))) " " (json_value("", &m["object"])) span.muted { " " (str_of(m, "object_type")) } }
                (attrs(m))
            }
        }
        h2 { "Pending exports" }
        @for e in exports.iter().take(PAGE * 10) {
            section.change {
                h3 {
                    (badge(&str_of(e, "operation"))) " " (str_of(e, "connector")) ": " (str_of(e, "object"))
                    span.muted { " now " (str_of(e, "current_operation")) }
                }
                (attrs(e))
            }
        }
        @if !errors.is_empty() || !resolved.is_empty() {
            h2 { "Errors" }
            table { tbody {
                @for (label, rows) in [("new", &errors), ("resolved", &resolved)] {
                    @for e in rows.iter().take(PAGE * 10) {
                        tr { td { (label) } td { (str_of(e, "connector")) } td { (str_of(e, "identifier")) } td { code { (str_of(e, "code")) } } td { (str_of(e, "message")) } }
                    }
                }
            } }
        }
    }
}
