//! The checks of a configuration against what its connectors declare
//! (object types, attribute schemas, capabilities) and against itself (what
//! inbound rules supply, what outbound rules and joins need), and the
//! `mvsync validate` command that prints them.
//!
//! [`check`] is pure over a compiled [`Config`] and the connectors' offline
//! `info()`, so every check is unit-tested without files or stores.
//! [`Config::load`] runs it for every command: errors block every command
//! before a store is opened; warnings (findings that do not stop sync from
//! working, such as an outbound rule reading a metaverse attribute nothing
//! supplies) print only under `mvsync validate`, which exits 0 with them.
//!
//! A connector's schema is *closed* (an attribute it does not declare is an
//! error) only when the connector's configuration lists its attributes
//! (a CSV connector with `columns`) and the object type declares some; a CSV
//! connector without `columns` declares only its reference and multi-valued
//! columns, which says nothing about the others.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use connectors::ConnectorConfig;
use engine::diff::coerce;
use engine::{AttributeSchema, ConnectorInfo, ObjectTypeSchema, StepKind};
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use rules::{
    Deprovision, Direction, EvalError, Expr, Flow, MapEnv, Provision, Rule, Value, ValueType,
};

use crate::config::{Config, ExprSpan, RuleSpans};
use crate::diagnostics::ConfigError;

/// Whether a finding blocks commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The configuration is invalid: every command refuses it (exit 2).
    Error,
    /// Printed by `mvsync validate` only; the configuration runs.
    Warning,
}

/// One problem found in a configuration, with its place in the file.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What and where.
    pub error: ConfigError,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}", self.error),
            Severity::Warning => {
                let (line, col) = self.error.line_col();
                write!(
                    f,
                    "{}:{line}:{col}: warning: {}",
                    self.error.file, self.error.message
                )
            }
        }
    }
}

impl std::error::Error for Finding {}

impl Finding {
    fn has_text(&self) -> bool {
        !self.error.source_text.is_empty()
    }
}

impl Diagnostic for Finding {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.error.help()
    }

    // No snippet when there is no text (an unreadable file).
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.has_text().then(|| self.error.source_code()).flatten()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.has_text().then(|| self.error.labels()).flatten()
    }
}

/// `mvsync validate`: prints every finding in file order (the headline of
/// each is `FILE:LINE:COL: message`, never wrapped, so it can be grepped),
/// then a one-line summary. Returns whether the configuration is valid.
pub fn command(path: &Path, shown: &str) -> bool {
    let (config, mut findings) = match Config::load_all(path, shown) {
        Ok((config, findings)) => (Some(config), findings),
        Err(errors) => (
            None,
            errors
                .errors
                .into_iter()
                .map(|error| Finding {
                    severity: Severity::Error,
                    error,
                })
                .collect(),
        ),
    };
    {
        let mut errors: Vec<ConfigError> = findings.iter().map(|f| f.error.clone()).collect();
        crate::diagnostics::mask_literal_secrets(&mut errors);
        for (f, e) in findings.iter_mut().zip(errors) {
            f.error = e;
        }
    }
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v == "0")
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let handler = GraphicalReportHandler::new_themed(if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    })
    .with_wrap_lines(false);
    for finding in &findings {
        let mut text = String::new();
        match handler.render_report(&mut text, finding) {
            // A blank line between reports.
            Ok(()) => eprintln!("{text}"),
            Err(_) => eprintln!("{finding}"),
        }
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    match config {
        Some(config) if errors == 0 => {
            let with = if warnings == 0 {
                String::new()
            } else {
                format!(", {}", plural(warnings, "warning"))
            };
            println!(
                "{shown}: valid{with} ({}, {}, {})",
                plural(config.connectors.len(), "connector"),
                plural(config.engine.rules.len(), "rule"),
                plural(config.profiles.len(), "run profile"),
            );
            for rule in &config.engine.rules {
                if rule.direction == Direction::Outbound {
                    println!("  {}", lifecycle(rule));
                }
            }
            true
        }
        _ => {
            eprintln!(
                "{shown}: invalid ({}, {})",
                plural(errors, "error"),
                plural(warnings, "warning")
            );
            false
        }
    }
}

/// What an outbound rule does to target objects over their lifecycle:
/// when it provisions, and which deprovisioning action applies when the
/// metaverse object leaves its scope and when it is deleted.
fn lifecycle(rule: &Rule) -> String {
    let provision = match &rule.provision {
        Provision::Never => "never provisions".to_owned(),
        Provision::Always => "provisions every object in scope".to_owned(),
        Provision::When(e) => format!("provisions when {}", e.source()),
    };
    let action = |d: &Deprovision| match d {
        Deprovision::Delete => "delete".to_owned(),
        Deprovision::Disconnect => "disconnect".to_owned(),
        Deprovision::Keep => "keep (linked, no longer written)".to_owned(),
        Deprovision::Disable(flows) => {
            let targets: Vec<&str> = flows.iter().map(|f| f.target.as_str()).collect();
            format!("disable ({})", targets.join(", "))
        }
    };
    let leaving = if rule.skip_out_of_scope_deletions {
        "disconnect (skip_out_of_scope_deletions)".to_owned()
    } else {
        action(&rule.deprovision)
    };
    let deleted = match &rule.deprovision_on_delete {
        Some(d) => action(d),
        None => format!("{} (as deprovision)", action(&rule.deprovision)),
    };
    format!(
        "rule '{}' → {}: {provision}; leaving scope: {leaving}; metaverse object deleted: {deleted}",
        rule.name, rule.connector
    )
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Every finding of the checks against the connectors (`infos`, by
/// connector name) and across rules, unsorted. Connectors missing from
/// `infos` (unknown, or whose configuration is invalid) are not checked
/// against: their own error is reported elsewhere.
pub fn check(config: &Config, infos: &BTreeMap<String, ConnectorInfo>) -> Vec<Finding> {
    let mut checker = Checker::new(config, infos);
    for (rule, spans) in config.engine.rules.iter().zip(&config.rule_spans) {
        checker.rule(rule, spans);
    }
    checker.flow_cycles();
    checker.steps();
    checker.out
}

/// An export flow with its rule and where its expression is written.
type LocatedFlow<'a> = (&'a Rule, &'a Flow, &'a ExprSpan);

/// An attribute as a connector's schema knows it.
enum Lookup<'a> {
    /// Declared, with its type.
    Declared(&'a AttributeSchema),
    /// The schema is closed and does not declare it.
    Unknown,
    /// Nothing is known (an open schema).
    Open,
}

/// What a rule sees of its connector: the object types it applies to.
struct View<'a> {
    connector: &'a str,
    info: &'a ConnectorInfo,
    types: Vec<&'a ObjectTypeSchema>,
    /// Every type is closed: attributes it does not declare do not exist.
    closed: bool,
}

impl<'a> View<'a> {
    fn lookup(&self, name: &str) -> Lookup<'a> {
        if !self.closed {
            return Lookup::Open;
        }
        self.types
            .iter()
            .find_map(|t| t.attribute(name))
            .map_or(Lookup::Unknown, Lookup::Declared)
    }

    /// The object types, as messages name them: `'worker'`, `'user' or 'group'`.
    fn type_names(&self) -> String {
        quoted_list(self.types.iter().map(|t| t.name.as_str()), "or")
    }

    fn declared(&self) -> Vec<&'a str> {
        let names: BTreeSet<&str> = self
            .types
            .iter()
            .flat_map(|t| t.attributes.iter().map(|a| a.name.as_str()))
            .collect();
        names.into_iter().collect()
    }

    fn help(&self) -> Option<String> {
        Some(format!(
            "declared attributes of {}: {}",
            self.type_names(),
            self.declared().join(", ")
        ))
    }
}

fn quoted_list<'s>(names: impl Iterator<Item = &'s str>, last: &str) -> String {
    let names: Vec<String> = names.map(|n| format!("'{n}'")).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., end] => format!("{} {last} {end}", init.join(", ")),
    }
}

struct Checker<'a> {
    config: &'a Config,
    infos: &'a BTreeMap<String, ConnectorInfo>,
    /// Per metaverse type, the attributes inbound rules flow into.
    supplied: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Metaverse types an inbound rule projects or joins into.
    linked: BTreeSet<&'a str>,
    out: Vec<Finding>,
}

impl<'a> Checker<'a> {
    fn new(config: &'a Config, infos: &'a BTreeMap<String, ConnectorInfo>) -> Checker<'a> {
        let mut supplied: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut linked = BTreeSet::new();
        for (rule, spans) in config.engine.rules.iter().zip(&config.rule_spans) {
            if rule.direction != Direction::Inbound {
                continue;
            }
            // Flows whose expression did not parse still supply their target:
            // their own error is enough.
            supplied
                .entry(rule.mv_object_type.as_str())
                .or_default()
                .extend(spans.flows.iter().map(|f| f.target.as_str()));
            if rule.project || !spans.joins.is_empty() {
                linked.insert(rule.mv_object_type.as_str());
            }
        }
        Checker {
            config,
            infos,
            supplied,
            linked,
            out: Vec::new(),
        }
    }

    fn push(
        &mut self,
        severity: Severity,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) {
        self.out.push(Finding {
            severity,
            error: ConfigError {
                file: self.config.shown.as_str().into(),
                source_text: self.config.source.clone(),
                span,
                message,
                help,
            },
        });
    }

    fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        self.push(Severity::Error, span, message, help);
    }

    /// Whether every rule of a metaverse type compiled, so that what inbound
    /// rules supply to it is known.
    fn complete(&self, mv_type: &str) -> bool {
        !self.config.incomplete_mv_types.contains(mv_type)
    }

    fn rule(&mut self, rule: &'a Rule, spans: &'a RuleSpans) {
        let view = self.view(rule, spans);
        match rule.direction {
            Direction::Inbound => self.inbound(rule, spans, view.as_ref()),
            Direction::Outbound => self.outbound(rule, spans, view.as_ref()),
        }
        if let (Some(scope), Some(at)) = (&rule.scope, &spans.scope) {
            match constant(scope) {
                Some(Ok(v)) if !v.truthy() => self.error(
                    at.whole(),
                    format!(
                        "rule '{}', scope: always false, so the rule can never apply",
                        rule.name
                    ),
                    Some("a scope selects the objects a rule applies to; remove it to select every object".into()),
                ),
                Some(Err(e)) => self.always_fails(rule, "scope", at, &e),
                _ => {}
            }
        }
    }

    /// The object types of the rule's connector it applies to; `None` when
    /// nothing can be checked against them.
    fn view(&mut self, rule: &Rule, spans: &RuleSpans) -> Option<View<'a>> {
        let (connector, info) = self.infos.get_key_value(&rule.connector)?;
        let declares = self
            .config
            .connectors
            .get(&rule.connector)
            .is_some_and(ConnectorConfig::declares_attributes);
        let types: Vec<&ObjectTypeSchema> = match &rule.cs_object_type {
            None => info.object_types.iter().collect(),
            Some(_) if info.object_types.is_empty() => return None,
            Some(t) => match info.object_type(t) {
                Some(schema) => vec![schema],
                None => {
                    let offered =
                        quoted_list(info.object_types.iter().map(|t| t.name.as_str()), "or");
                    self.error(
                        spans.cs_type.clone().unwrap_or(spans.name.clone()),
                        format!(
                            "rule '{}' applies to object type '{t}', which connector '{connector}' does not offer; expected {offered}",
                            rule.name
                        ),
                        None,
                    );
                    return None;
                }
            },
        };
        let closed =
            declares && !types.is_empty() && types.iter().all(|t| !t.attributes.is_empty());
        Some(View {
            connector,
            info,
            types,
            closed,
        })
    }

    fn inbound(&mut self, rule: &'a Rule, spans: &'a RuleSpans, view: Option<&View<'a>>) {
        if let (Some(scope), Some(at)) = (&rule.scope, &spans.scope) {
            self.function_words(rule, scope, at, "scope");
            if let Some(view) = view {
                self.cs_reads(rule, view, scope, at, "scope");
            }
        }
        let mut parsed = rule.join.iter();
        for join in &spans.joins {
            if join.parsed {
                if let (Some(view), Some(criterion)) = (view, parsed.next()) {
                    self.cs_reads(rule, view, &criterion.cs, &join.cs, "join");
                }
            }
            if self.complete(&rule.mv_object_type) && !self.supplies(&rule.mv_object_type, &join.mv)
            {
                let hint = did_you_mean(&join.mv, self.supplied_names(&rule.mv_object_type));
                let supplied: Vec<&str> = self.supplied_names(&rule.mv_object_type).collect();
                self.error(
                    join.mv_span.clone(),
                    format!(
                        "rule '{}', join: metaverse attribute '{}' gets no value from any inbound rule of '{}', so the join can never match{hint}",
                        rule.name, join.mv, rule.mv_object_type
                    ),
                    Some(format!(
                        "inbound rules of '{}' flow into: {}",
                        rule.mv_object_type,
                        supplied.join(", ")
                    )),
                );
            }
        }
        for (flow, at) in flows_with_spans(rule, spans) {
            let part = format!("flow to '{}'", flow.target);
            self.function_words(rule, &flow.expr, at, &part);
            if let Some(view) = view {
                self.cs_reads(rule, view, &flow.expr, at, &part);
            }
            if let Some(Err(e)) = constant(&flow.expr) {
                self.always_fails(rule, &part, at, &e);
            }
        }
    }

    fn outbound(&mut self, rule: &'a Rule, spans: &'a RuleSpans, view: Option<&View<'a>>) {
        if let Some(view) = view {
            if !view.info.export {
                self.error(
                    spans.direction.clone(),
                    format!(
                        "rule '{}' is outbound, but connector '{}' cannot export",
                        rule.name, view.connector
                    ),
                    Some("outbound rules need a connector that exports; make the rule inbound or move it to another connector".into()),
                );
            }
        }
        let mv_type = rule.mv_object_type.as_str();
        let linked = self.linked.contains(mv_type);
        if !linked && self.complete(mv_type) {
            let hint = did_you_mean(mv_type, self.linked.iter().copied());
            self.error(
                spans.mv_type.clone(),
                format!(
                    "rule '{}' is for metaverse type '{mv_type}', which no inbound rule projects or joins, so it can never apply{hint}",
                    rule.name
                ),
                Some("metaverse objects come from inbound rules with `project = true` or a `join`".into()),
            );
        }
        // Reads of what nothing supplies are noise when the type has no source at all.
        let reads = linked && self.complete(mv_type);
        if let (true, Some(scope), Some(at)) = (reads, &rule.scope, &spans.scope) {
            self.mv_reads(rule, scope, at, "scope");
        }
        for (flow, at) in flows_with_spans(rule, spans) {
            let part = format!("flow to '{}'", flow.target);
            self.outbound_flow(
                rule,
                view,
                flow,
                spans.flows_key(&flow.target),
                at,
                &part,
                reads,
            );
        }
        if let (true, Provision::When(expr), Some(span)) =
            (reads, &rule.provision, &spans.provision)
        {
            let at = ExprSpan::locate(&self.config.source, span, expr.source());
            self.mv_reads(rule, expr, &at, "provision");
        }
        let actions = [
            ("deprovision", Some(&rule.deprovision), &spans.deprovision),
            (
                "deprovision_on_delete",
                rule.deprovision_on_delete.as_ref(),
                &spans.deprovision_on_delete,
            ),
        ];
        for (name, action, span) in actions {
            if let (Some(Deprovision::Disable(flows)), Some(span)) = (action, span) {
                for flow in flows {
                    let key = find_key(&self.config.source, span, &flow.target);
                    let at = ExprSpan::locate(&self.config.source, span, flow.expr.source());
                    let part =
                        format!("{} to '{}'", crate::config::disable_part(name), flow.target);
                    self.outbound_flow(rule, view, flow, key, &at, &part, reads);
                }
            }
        }
        if rule.provisions() {
            self.provisioned_anchor(rule, spans, view);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn outbound_flow(
        &mut self,
        rule: &Rule,
        view: Option<&View<'a>>,
        flow: &Flow,
        key: Range<usize>,
        at: &ExprSpan,
        part: &str,
        reads: bool,
    ) {
        if reads {
            self.mv_reads(rule, &flow.expr, at, part);
        }
        let folded = constant(&flow.expr);
        if let Some(Err(e)) = &folded {
            self.always_fails(rule, part, at, e);
        }
        let Some(view) = view else {
            return;
        };
        if flow.target == "dn" && view.info.has_dn {
            return;
        }
        match view.lookup(&flow.target) {
            Lookup::Open => {}
            Lookup::Unknown => {
                let hint = did_you_mean(&flow.target, view.declared().into_iter());
                self.error(
                    key,
                    format!(
                        "rule '{}', {part}: not an attribute connector '{}' declares for object type {}{hint}",
                        rule.name,
                        view.connector,
                        view.type_names()
                    ),
                    view.help(),
                );
            }
            Lookup::Declared(attr) if attr.reference.is_some() => {
                let bare = flow.expr.as_attribute().is_some()
                    || flow.expr.as_constant() == Some(&Value::Null);
                if !bare {
                    self.error(
                        at.whole(),
                        format!(
                            "rule '{}', {part}: '{}' is a reference in connector '{}': expected a bare metaverse attribute holding a reference, not an expression",
                            rule.name, flow.target, view.connector
                        ),
                        Some(format!("flow the reference as it is, such as {} = \"manager\"; the engine translates it to the target's terms", flow.target)),
                    );
                }
            }
            Lookup::Declared(attr) => match &folded {
                Some(Ok(value)) => self.constant_type(rule, view, part, flow, attr, value, at),
                Some(Err(_)) => {}
                None => {
                    let gives = flow.expr.value_type();
                    if let Some(gives) = gives.filter(|t| !fits(*t, attr.value_type)) {
                        self.error(
                            at.whole(),
                            format!(
                                "rule '{}', {part}: the expression gives {}, but connector '{}' declares '{}' as {}",
                                rule.name,
                                kind_of(gives),
                                view.connector,
                                flow.target,
                                kind_of(attr.value_type)
                            ),
                            None,
                        );
                    }
                }
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn constant_type(
        &mut self,
        rule: &Rule,
        view: &View<'_>,
        part: &str,
        flow: &Flow,
        attr: &AttributeSchema,
        value: &Value,
        at: &ExprSpan,
    ) {
        let ty = attr.value_type;
        let bad = value
            .items()
            .iter()
            .find(|item| coerce((*item).clone(), ty, false).value_type() != Some(ty));
        if let Some(bad) = bad {
            let what = bad.value_type().map_or("a value", kind_of);
            self.error(
                at.whole(),
                format!(
                    "rule '{}', {part}: the constant {} is {what}, but connector '{}' declares '{}' as {}",
                    rule.name,
                    show_value(bad),
                    view.connector,
                    flow.target,
                    kind_of(ty)
                ),
                None,
            );
        }
    }

    fn provisioned_anchor(&mut self, rule: &Rule, spans: &RuleSpans, view: Option<&View<'_>>) {
        let (Some(view), Some(cs_type)) = (view, &rule.cs_object_type) else {
            return;
        };
        let Some(anchor) = view
            .info
            .object_type(cs_type)
            .and_then(|t| t.anchor_attribute.as_deref())
        else {
            return;
        };
        // Outbound rules of one connector and metaverse type are merged: any
        // of them may flow the anchor.
        let flowed = self
            .config
            .engine
            .rules
            .iter()
            .zip(&self.config.rule_spans)
            .filter(|(r, _)| {
                r.direction == Direction::Outbound
                    && r.connector == rule.connector
                    && r.mv_object_type == rule.mv_object_type
            })
            .any(|(_, s)| s.flows.iter().any(|f| f.target == anchor));
        if !flowed {
            self.error(
                spans.provision.clone().unwrap_or(spans.name.clone()),
                format!(
                    "rule '{}' provisions '{cs_type}' objects in connector '{}', but no outbound rule flows to their anchor '{anchor}', so a new object could never be exported",
                    rule.name, view.connector
                ),
                Some(format!("add a flow such as {anchor} = {{ expr = \"...\", initial_only = true }}")),
            );
        }
    }

    /// Connector-space attributes an inbound expression reads.
    fn cs_reads(&mut self, rule: &Rule, view: &View<'_>, expr: &Expr, at: &ExprSpan, part: &str) {
        for name in expr.attributes() {
            if let Lookup::Unknown = view.lookup(name) {
                let hint = did_you_mean(name, view.declared().into_iter());
                self.error(
                    at.at(find_attribute(expr.source(), name).unwrap_or(0..expr.source().len())),
                    format!(
                        "rule '{}', {part}: reads '{name}', which connector '{}' does not declare for object type {}{hint}",
                        rule.name,
                        view.connector,
                        view.type_names()
                    ),
                    view.help(),
                );
            }
        }
    }

    /// Export flows that read one another through `target.name`: the
    /// outbound rules of one connector and metaverse type are evaluated
    /// together, so a cycle among their flows (or among one rule's disable
    /// flows) can never be ordered.
    fn flow_cycles(&mut self) {
        let config = self.config;
        let outbound: Vec<(&Rule, &RuleSpans)> = config
            .engine
            .rules
            .iter()
            .zip(&config.rule_spans)
            .filter(|(r, _)| r.direction == Direction::Outbound)
            .collect();
        let mut groups: BTreeMap<(&str, &str), Vec<LocatedFlow<'_>>> = BTreeMap::new();
        for (rule, spans) in &outbound {
            for (flow, at) in flows_with_spans(rule, spans) {
                groups
                    .entry((rule.connector.as_str(), rule.mv_object_type.as_str()))
                    .or_default()
                    .push((rule, flow, at));
            }
        }
        for flows in groups.values() {
            let refs: Vec<&Flow> = flows.iter().map(|(_, f, _)| *f).collect();
            if let Err(cycle) = rules::order_flows(&refs) {
                let (rule, flow, at) = flows[cycle.0[0]];
                let path: Vec<&str> = cycle
                    .0
                    .iter()
                    .chain(cycle.0.first())
                    .map(|i| flows[*i].1.target.as_str())
                    .collect();
                let read = format!(
                    "{}{}",
                    rules::TARGET_PREFIX,
                    flows[cycle.0[1 % cycle.0.len()]].1.target
                );
                self.error(
                    at.at(flow.expr.source().find(&read).map_or(0..flow.expr.source().len(), |i| i..i + read.len())),
                    format!(
                        "rule '{}', flow to '{}': flows read each other through target. ({}), so none of them can be computed first",
                        rule.name,
                        flow.target,
                        path.join(" reads ")
                    ),
                    Some("one of these flows must compute its value from the metaverse instead".into()),
                );
            }
        }
    }

    /// Metaverse attributes an outbound expression reads.
    /// A bare word that names a function (`Now`, `Guid`, `PCase`) reads an
    /// attribute of that name, which is almost never meant: an error that
    /// says to call it. (`[Now]` in brackets is an attribute on purpose.)
    fn function_words(&mut self, rule: &Rule, expr: &Expr, at: &ExprSpan, part: &str) {
        for (span, message) in expr.lints() {
            self.push(
                Severity::Warning,
                at.at(span),
                format!("rule '{}', {part}: {message}", rule.name),
                None,
            );
        }
        for name in expr.attributes() {
            let Some(def) = rules::functions::function(name) else {
                continue;
            };
            let Some(span) = find_attribute(expr.source(), name) else {
                continue;
            };
            if expr.source()[span.clone()].starts_with('[') {
                continue;
            }
            self.error(
                at.at(span),
                format!(
                    "rule '{}', {part}: `{name}` names the function {}, but is read as an attribute (always null here); call it as {}",
                    rule.name, def.name, def.signature
                ),
                Some("write [name] in brackets for an attribute that really has this name".to_owned()),
            );
        }
    }

    fn mv_reads(&mut self, rule: &Rule, expr: &Expr, at: &ExprSpan, part: &str) {
        self.function_words(rule, expr, at, part);
        let mv_type = rule.mv_object_type.as_str();
        for name in expr.attributes() {
            if rules::functions::function(name).is_some() {
                continue;
            }
            if rules::target_attribute(name).is_some() || self.supplies(mv_type, name) {
                continue;
            }
            let hint = did_you_mean(name, self.supplied_names(mv_type));
            self.push(
                Severity::Warning,
                at.at(find_attribute(expr.source(), name).unwrap_or(0..expr.source().len())),
                format!(
                    "rule '{}', {part}: reads metaverse attribute '{name}', which no inbound rule of '{mv_type}' flows, so it is always null{hint}",
                    rule.name
                ),
                None,
            );
        }
    }

    fn always_fails(&mut self, rule: &Rule, part: &str, at: &ExprSpan, e: &EvalError) {
        self.error(
            at.at(e.span.clone()),
            format!(
                "rule '{}', {part}: always fails: {} [{}]",
                rule.name, e.message, e.code
            ),
            None,
        );
    }

    fn supplies(&self, mv_type: &str, attribute: &str) -> bool {
        self.supplied
            .get(mv_type)
            .is_some_and(|s| s.contains(attribute))
    }

    fn supplied_names(&self, mv_type: &str) -> impl Iterator<Item = &'a str> + '_ {
        self.supplied
            .get(mv_type)
            .into_iter()
            .flat_map(|s| s.iter().copied())
    }

    /// Steps a connector cannot run.
    fn steps(&mut self) {
        for (profile, steps) in &self.config.profiles {
            let Some(spans) = self.config.step_spans.get(profile) else {
                continue;
            };
            for (step, span) in steps.iter().zip(spans) {
                let Some(info) = self.infos.get(&step.connector) else {
                    continue;
                };
                let kind = match step.kind {
                    StepKind::DeltaImport if !info.delta_import => "import deltas",
                    StepKind::Export if !info.export => "export",
                    _ => continue,
                };
                let instead = match step.kind {
                    StepKind::DeltaImport => "; use full-import",
                    _ => "",
                };
                let help = match (step.kind, self.config.connectors.get(&step.connector)) {
                    (StepKind::DeltaImport, Some(ConnectorConfig::Csv(_))) => {
                        Some("a csv connector imports deltas from its change_file".to_owned())
                    }
                    _ => None,
                };
                self.error(
                    span.step.clone(),
                    format!(
                        "run profile '{profile}': step {} on connector '{}', which cannot {kind}{instead}",
                        step.kind.name(), step.connector
                    ),
                    help,
                );
            }
        }
    }
}

impl RuleSpans {
    fn flows_key(&self, target: &str) -> Range<usize> {
        self.flows
            .iter()
            .find(|f| f.target == target)
            .map_or(self.name.clone(), |f| f.key.clone())
    }
}

/// A rule's compiled flows with where each is written.
fn flows_with_spans<'r>(
    rule: &'r Rule,
    spans: &'r RuleSpans,
) -> impl Iterator<Item = (&'r Flow, &'r ExprSpan)> {
    rule.flows.iter().filter_map(move |flow| {
        spans
            .flows
            .iter()
            .find(|f| f.target == flow.target)
            .map(|f| (flow, &f.expr))
    })
}

/// The value of an expression that reads no attribute and calls nothing
/// that depends on the clock or the target (so it is the same for every
/// object), evaluated once; `None` when it is not constant.
fn constant(expr: &Expr) -> Option<Result<Value, EvalError>> {
    if let Some(v) = expr.as_constant() {
        return Some(Ok(v.clone()));
    }
    // Generated values, the clock, and the keywords that skip a flow (a
    // skip is not a failure).
    const IMPURE: [&str; 7] = [
        "Now",
        "IgnoreFlowIfNullOrEmpty",
        "SelectUniqueValue",
        "UniqueNumbered",
        "Guid",
        "IgnoreAttributeFlow",
        "IgnoreObjectFlow",
    ];
    if !expr.attributes().is_empty() || IMPURE.iter().any(|f| expr.calls(f)) {
        return None;
    }
    Some(expr.eval(&MapEnv::default()))
}

/// Whether a value of type `gives` can reach an attribute of type `declared`:
/// every type renders as a string, a boolean converts to an integer, and a
/// string may hold any other type's text (only data can tell).
fn fits(gives: ValueType, declared: ValueType) -> bool {
    gives == declared
        || declared == ValueType::String
        || gives == ValueType::String
        || (gives, declared) == (ValueType::Boolean, ValueType::Integer)
}

fn kind_of(ty: ValueType) -> &'static str {
    match ty {
        ValueType::String => "a string",
        ValueType::Integer => "an integer",
        ValueType::Boolean => "a boolean",
        ValueType::Binary => "binary",
        ValueType::Reference => "a reference",
        ValueType::DateTime => "a date-time",
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// `; did you mean 'x'?` for the candidate closest to `name`, when one is
/// close enough to be a likely typo.
fn did_you_mean<'s>(name: &str, candidates: impl Iterator<Item = &'s str>) -> String {
    let wanted = name.to_ascii_lowercase();
    candidates
        .filter(|c| *c != name)
        .map(|c| (edit_distance(&wanted, &c.to_ascii_lowercase()), c))
        .filter(|&(d, c)| d <= (c.chars().count() / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| format!("; did you mean '{c}'?"))
        .unwrap_or_default()
}

/// The optimal-string-alignment distance: insertions, deletions,
/// substitutions and transpositions of neighbours (`nmae` → `name`) cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: the distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The byte range of the first place `src` reads attribute `name`, bare or
/// bracketed (not inside a string, not a function name).
fn find_attribute(src: &str, name: &str) -> Option<Range<usize>> {
    let mut chars = src.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' => {
                while let Some((_, d)) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '[' => {
                let close = chars.by_ref().find(|&(_, d)| d == ']');
                if let Some((j, _)) = close {
                    if &src[i + 1..j] == name {
                        return Some(i..j + 1);
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = i + 1;
                while let Some(&(k, d)) = chars.peek() {
                    if !(d.is_ascii_alphanumeric() || d == '_') {
                        break;
                    }
                    chars.next();
                    end = k + 1;
                }
                if &src[i..end] == name && !src[end..].trim_start().starts_with('(') {
                    return Some(i..end);
                }
            }
            '0'..='9' => while chars.next_if(|(_, d)| d.is_ascii_digit()).is_some() {},
            _ => {}
        }
    }
    None
}

/// Where key `name` is written inside the TOML value at `span` (a disable
/// table); the value's start when it cannot be found.
fn find_key(source: &str, span: &Range<usize>, name: &str) -> Range<usize> {
    let text = source.get(span.clone()).unwrap_or_default();
    let mut from = 0;
    while let Some(i) = text[from..].find(name).map(|i| from + i) {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].trim_start();
        let boundary = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
        if boundary && after.starts_with('=') {
            return span.start + i..span.start + i + name.len();
        }
        from = i + name.len();
    }
    span.start..span.start + 1
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use engine::{AttributeSchema, ConnectorInfo, ObjectTypeSchema, RefKind};
    use rules::ValueType;

    use super::{check, did_you_mean, find_attribute, Finding, Severity};
    use crate::config::Config;

    /// A source of workers and a directory of users, both with declared
    /// columns; `@OUT@` is appended to the outbound rule's flows and
    /// `@EXTRA@` to the file.
    const BASE: &str = r#"[store]
path = "s.db"

[connectors.src]
type = "csv"
path = "src.csv"
object_type = "worker"
anchor = "id"
columns = ["id", "name", "kind"]

[connectors.dir]
type = "csv"
path = "dir.csv"
object_type = "user"
anchor = "id"
columns = ["id", "name"]

[[rules]]
name = "src-in"
direction = "inbound"
connector = "src"
mv_object_type = "person"
join = [ { cs = "id", mv = "id" } ]
project = true
[rules.flows]
id = "id"
name = "name"

[[rules]]
name = "dir-out"
direction = "outbound"
connector = "dir"
mv_object_type = "person"
cs_object_type = "user"
provision = true
[rules.flows]
id = "id"
@OUT@
@EXTRA@
"#;

    fn text(out: &str, extra: &str) -> String {
        BASE.replace("@OUT@", out).replace("@EXTRA@", extra)
    }

    /// Loads `text` with the connectors' own `info()`: every finding, as printed.
    fn load(text: &str) -> Vec<String> {
        let (_, findings) = Config::from_text(text.to_owned(), "t.toml", PathBuf::from("."))
            .unwrap_or_else(|e| panic!("{e}"));
        findings.iter().map(Finding::to_string).collect()
    }

    fn attr(name: &str, value_type: ValueType) -> AttributeSchema {
        AttributeSchema {
            name: name.to_owned(),
            value_type,
            multi_valued: false,
            reference: None,
        }
    }

    fn info(types: Vec<ObjectTypeSchema>) -> ConnectorInfo {
        ConnectorInfo {
            object_types: types,
            delta_import: true,
            export: true,
            has_dn: false,
            rewrites_dn_references: false,
            export_batch_size: 100,
        }
    }

    fn object_type(name: &str, attributes: Vec<AttributeSchema>) -> ObjectTypeSchema {
        ObjectTypeSchema {
            name: name.to_owned(),
            anchor_attribute: Some("id".to_owned()),
            attributes,
        }
    }

    /// A directory of `user` objects: an `id` anchor and `attributes`.
    fn users(attributes: Vec<AttributeSchema>) -> ConnectorInfo {
        let mut all = vec![attr("id", ValueType::String)];
        all.extend(attributes);
        info(vec![object_type("user", all)])
    }

    /// A directory of `user` objects with attributes of these types.
    fn typed_users(attributes: &[(&str, ValueType)]) -> ConnectorInfo {
        users(attributes.iter().map(|(n, t)| attr(n, *t)).collect())
    }

    fn worker() -> ConnectorInfo {
        info(vec![object_type(
            "worker",
            ["id", "name", "kind"]
                .iter()
                .map(|n| attr(n, ValueType::String))
                .collect(),
        )])
    }

    /// Checks `text` (which must load) against hand-made connector infos.
    fn check_with(text: &str, dir: ConnectorInfo) -> Vec<String> {
        let (config, findings) =
            Config::from_text(text.to_owned(), "t.toml", PathBuf::from(".")).expect("loads");
        let compile_errors: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                !f.error.message.starts_with("rule ") && !f.error.message.starts_with("run ")
            })
            .collect();
        assert!(compile_errors.is_empty(), "{compile_errors:?}");
        let infos = BTreeMap::from([("src".to_owned(), worker()), ("dir".to_owned(), dir)]);
        let mut found = check(&config, &infos);
        found.sort_by_key(|f| f.error.span.start);
        found.iter().map(Finding::to_string).collect()
    }

    /// The line of `needle` in `text`, 1-based.
    fn line_of(text: &str, needle: &str) -> usize {
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in the text"));
        text[..at].matches('\n').count() + 1
    }

    #[test]
    fn the_base_configuration_is_clean() {
        assert_eq!(load(&text("name = \"name\"", "")), Vec::<String>::new());
    }

    #[test]
    fn the_quickstart_sample_is_clean() {
        let sample = include_str!("../../samples/quickstart/mvsync.toml");
        assert_eq!(load(sample), Vec::<String>::new());
    }

    #[test]
    fn a_constant_of_the_wrong_type_for_a_declared_attribute_is_an_error() {
        let t = text(
            r#"uac = '"disabled"'
code = '"512"'
count = '512'
flag = 'IIF(true, "maybe", "no")'
when = 'Lower("2024")'"#,
            "",
        );
        let dir = typed_users(&[
            ("uac", ValueType::Integer),
            ("code", ValueType::Integer),
            ("count", ValueType::Integer),
            ("flag", ValueType::Boolean),
            ("when", ValueType::DateTime),
        ]);
        let found = check_with(&t, dir);
        let uac = line_of(&t, "uac =");
        let flag = line_of(&t, "flag =");
        let when = line_of(&t, "when =");
        assert_eq!(
            found,
            vec![
                format!("t.toml:{uac}:8: rule 'dir-out', flow to 'uac': the constant \"disabled\" is a string, but connector 'dir' declares 'uac' as an integer"),
                format!("t.toml:{flag}:9: rule 'dir-out', flow to 'flag': the constant \"maybe\" is a string, but connector 'dir' declares 'flag' as a boolean"),
                format!("t.toml:{when}:9: rule 'dir-out', flow to 'when': the constant \"2024\" is a string, but connector 'dir' declares 'when' as a date-time"),
            ],
            "\"512\" and 512 both convert to an integer"
        );
    }

    #[test]
    fn an_expression_whose_type_is_known_must_fit_the_declared_attribute() {
        let t = text(
            r#"uac = 'BitOr(ToInt(name), 2)'
flag = 'StartsWith(name, "A")'
when = 'Count(name)'
since = 'DateAdd("d", 1, Now())'
photo = 'IsPresent(name)'
enabled = 'name != "x"'
label = 'Count(name) + 1'
guess = 'IIF(IsPresent(name), name, 3)'"#,
            "",
        );
        let dir = typed_users(&[
            ("uac", ValueType::Integer),
            ("flag", ValueType::Boolean),
            ("when", ValueType::DateTime),
            ("since", ValueType::DateTime),
            ("photo", ValueType::Binary),
            ("enabled", ValueType::Integer),
            ("label", ValueType::String),
            ("guess", ValueType::Boolean),
        ]);
        let found = check_with(&t, dir);
        let when = line_of(&t, "when =");
        let photo = line_of(&t, "photo =");
        assert_eq!(
            found,
            vec![
                format!("t.toml:{when}:9: rule 'dir-out', flow to 'when': the expression gives an integer, but connector 'dir' declares 'when' as a date-time"),
                format!("t.toml:{photo}:10: rule 'dir-out', flow to 'photo': the expression gives a boolean, but connector 'dir' declares 'photo' as binary"),
            ],
            "an integer, a boolean, a date-time fit their own types; a boolean fits an integer; anything fits a string; IIF's type depends on data"
        );
    }

    #[test]
    fn outbound_rules_and_export_steps_need_a_connector_that_exports() {
        let t = text(
            "",
            r#"[run_profiles.p]
steps = [ { connector = "dir", step = "export" }, { connector = "dir", step = "delta-import" } ]"#,
        );
        let mut dir = users(Vec::new());
        dir.export = false;
        dir.delta_import = false;
        let found = check_with(&t, dir);
        let direction = line_of(&t, "direction = \"outbound\"");
        let steps = line_of(&t, "steps =");
        assert_eq!(
            found,
            vec![
                format!("t.toml:{direction}:13: rule 'dir-out' is outbound, but connector 'dir' cannot export"),
                format!("t.toml:{steps}:39: run profile 'p': step export on connector 'dir', which cannot export"),
                format!("t.toml:{steps}:79: run profile 'p': step delta-import on connector 'dir', which cannot import deltas; use full-import"),
            ]
        );
    }

    #[test]
    fn a_csv_connector_without_columns_accepts_any_attribute() {
        let t = text("nmae = 'Lower(whatever)'", "")
            .replace("columns = [\"id\", \"name\"]\n", "")
            .replace("columns = [\"id\", \"name\", \"kind\"]\n", "");
        let t = t.replace("name = \"name\"", "name = 'Coalesce(nickname, name)'");
        let found = load(&t);
        assert_eq!(
            found,
            vec![format!(
                "t.toml:{}:15: warning: rule 'dir-out', flow to 'nmae': reads metaverse attribute 'whatever', which no inbound rule of 'person' flows, so it is always null",
                line_of(&t, "nmae =")
            )],
            "only the metaverse read is known to be wrong"
        );
    }

    #[test]
    fn without_a_cs_object_type_an_attribute_of_any_offered_type_is_accepted() {
        let t = text("", "").replace("cs_object_type = \"user\"\nprovision = true\n", "")
            + "members = \"name\"\nmail = \"name\"\n";
        let dir = info(vec![
            object_type("user", vec![attr("id", ValueType::String)]),
            object_type(
                "group",
                vec![
                    attr("id", ValueType::String),
                    attr("members", ValueType::String),
                ],
            ),
        ]);
        assert_eq!(
            check_with(&t, dir),
            vec![format!(
                "t.toml:{}:1: rule 'dir-out', flow to 'mail': not an attribute connector 'dir' declares for object type 'user' or 'group'",
                line_of(&t, "mail =")
            )]
        );
    }

    #[test]
    fn dn_is_a_target_only_where_objects_have_dns() {
        let t = text(r#"dn = '"CN=" + name'"#, "");
        let user = || users(Vec::new());
        let mut with_dns = user();
        with_dns.has_dn = true;
        assert_eq!(check_with(&t, with_dns), Vec::<String>::new());
        let found = check_with(&t, user());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("flow to 'dn': not an attribute"),
            "{found:?}"
        );
    }

    #[test]
    fn references_take_a_bare_attribute_or_null() {
        let t = text(
            "manager = 'IIF(true, name, null)'\nsponsor = 'null'\nowner = \"name\"",
            "",
        );
        let reference = |name: &str| AttributeSchema {
            reference: Some(RefKind::Anchor),
            ..attr(name, ValueType::String)
        };
        let dir = users(vec![
            reference("manager"),
            reference("sponsor"),
            reference("owner"),
        ]);
        let found = check_with(&t, dir);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("flow to 'manager': 'manager' is a reference in connector 'dir': expected a bare metaverse attribute"),
            "{found:?}"
        );
    }

    #[test]
    fn constant_scopes_are_folded() {
        for (scope, never) in [
            ("false", true),
            ("1 == 2", true),
            ("!true || \"a\" == \"b\"", true),
            ("true", false),
            ("Now() > 0", false),
            ("IsPresent(name)", false),
        ] {
            let t = text("", "").replace(
                "provision = true\n",
                &format!("provision = true\nscope = '{scope}'\n"),
            );
            let found = load(&t);
            assert_eq!(
                found.iter().any(|f| f.contains("always false")),
                never,
                "{scope}: {found:?}"
            );
        }
    }

    #[test]
    fn a_flow_that_fails_for_every_object_points_at_the_failing_call() {
        let t = text("name = 'Lower(\"x\") + ToInt(\"ten\")'", "");
        assert_eq!(
            load(&t),
            vec![format!(
                "t.toml:{}:22: rule 'dir-out', flow to 'name': always fails: ToInt: \"ten\" is not an integer [bad-argument]",
                line_of(&t, "name = 'Lower")
            )]
        );
    }

    #[test]
    fn a_flow_that_does_not_parse_still_supplies_its_target() {
        // Only the parse error: the join on `id` and the reads of `id` are fine.
        let t = text("", "").replace(
            "id = \"id\"\nname = \"name\"",
            "id = 'Lower(id'\nname = \"name\"",
        );
        let found = load(&t);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("rule 'src-in', flow to 'id'"),
            "{found:?}"
        );
    }

    #[test]
    fn a_rule_with_an_unknown_direction_does_not_cause_follow_on_errors() {
        let t = text("", "").replace("direction = \"inbound\"", "direction = \"in\"");
        let found = load(&t);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("unknown direction 'in'"), "{found:?}");
    }

    #[test]
    fn disable_flows_are_checked_against_the_schema() {
        let t = text("", "").replace(
            "provision = true\n",
            "provision = true\ndeprovision = { disable = { nmae = '\"x\"' } }\n",
        );
        assert_eq!(
            load(&t),
            vec![format!(
                "t.toml:{}:29: rule 'dir-out', disable flow to 'nmae': not an attribute connector 'dir' declares for object type 'user'; did you mean 'name'?",
                line_of(&t, "deprovision =")
            )]
        );
    }

    #[test]
    fn the_anchor_may_come_from_another_outbound_rule_of_the_connector() {
        let t = text("", "").replace(
            "[rules.flows]\nid = \"id\"\n\n",
            "[rules.flows]\nname = \"name\"\n\n",
        );
        let found = load(&t);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("no outbound rule flows to their anchor 'id'"),
            "{found:?}"
        );
        let t = t + r#"
[[rules]]
name = "dir-ids"
direction = "outbound"
connector = "dir"
mv_object_type = "person"
[rules.flows]
id = "id"
"#;
        assert_eq!(load(&t), Vec::<String>::new());
    }

    #[test]
    fn warnings_do_not_block_loading() {
        let t = text("name = 'Coalesce(nickname, name)'", "");
        let (_, findings) =
            Config::from_text(t.clone(), "t.toml", PathBuf::from(".")).expect("loads");
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mvsync.toml");
        std::fs::write(&path, &t).expect("write");
        assert!(Config::load(&path, "mvsync.toml").is_ok());
        std::fs::write(&path, t.replace("nickname", "Lowr(x)")).expect("write");
        assert!(Config::load(&path, "mvsync.toml").is_err());
    }

    #[test]
    fn attribute_positions_skip_strings_and_function_names() {
        let src = r#"Join(" name ", Name, name, [name])"#;
        assert_eq!(find_attribute(src, "name"), Some(21..25));
        assert_eq!(find_attribute(src, "Join"), None);
        assert_eq!(
            find_attribute("IIF(x, 'it''s', [a b])", "a b"),
            Some(16..21)
        );
        assert_eq!(
            find_attribute(r#""a\"name" + name2 + name"#, "name"),
            Some(20..24)
        );
    }

    #[test]
    fn suggestions_are_close_names_only() {
        let names = ["firstName", "lastName", "id"];
        assert_eq!(
            did_you_mean("fristName", names.into_iter()),
            "; did you mean 'firstName'?"
        );
        assert_eq!(did_you_mean("department", names.into_iter()), "");
        assert_eq!(
            did_you_mean("ix", names.into_iter()),
            "; did you mean 'id'?"
        );
        assert_eq!(
            did_you_mean("lastNmae", names.into_iter()),
            "; did you mean 'lastName'?",
            "a transposition is one edit"
        );
    }
}
