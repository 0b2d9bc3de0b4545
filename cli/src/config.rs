//! The TOML configuration: its shape, loading with file positions, a
//! validation pass that collects every error, and compilation into what the
//! engine runs.
//!
//! Loading checks the file on its own (shape, names, expressions); the
//! checks against the connectors' schemas and capabilities live in
//! [`crate::validate`] and run on every load, so an invalid configuration
//! blocks every command before a store is opened. The positions those checks
//! point at are kept in [`RuleSpans`] and [`StepSpans`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use connectors::ConnectorConfig;
use engine::{Connector, ConnectorInfo, DeletionRule, EngineConfig, StepKind, StoreOptions};
use rules::{Deprovision, Direction, Expr, Flow, JoinCriterion, NullHandling, Provision, Rule};
use serde::de::{self, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::diagnostics::{ConfigError, ConfigErrors};
use crate::validate::{self, Finding, Severity};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    store: StoreSection,
    #[serde(default)]
    engine: EngineSection,
    #[serde(default)]
    metaverse: BTreeMap<String, MvTypeSection>,
    #[serde(default)]
    connectors: BTreeMap<String, Spanned<ConnectorConfig>>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    run_profiles: BTreeMap<Spanned<String>, RawProfile>,
    #[serde(default)]
    schedules: BTreeMap<Spanned<String>, RawSchedule>,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    console: RawConsole,
}

/// `[console]`: where `mvsync console` listens, and its token.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    /// The address and port (`127.0.0.1:8470`).
    listen: Option<Spanned<String>>,
    /// The token a browser must present (needed to listen beyond loopback).
    token: Option<connectors::common::SecretRef>,
}

/// Where `mvsync console` listens, and the token it asks for.
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// The address served (`--listen` overrides it).
    pub listen: Option<std::net::SocketAddr>,
    /// The token, from the environment or a file.
    pub token: Option<connectors::common::SecretRef>,
}

/// `[metrics]`: where `mvsync schedule` puts its Prometheus metrics.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    /// A file rewritten after each run (node_exporter's textfile collector).
    file: Option<String>,
    /// A loopback address and port to serve them on (`127.0.0.1:9464`).
    listen: Option<Spanned<String>>,
}

/// Where `mvsync schedule` puts its Prometheus metrics.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// The file rewritten after each run.
    pub file: Option<PathBuf>,
    /// The loopback address served.
    pub listen: Option<std::net::SocketAddr>,
}

/// `[schedules.<profile>]`: when `mvsync schedule` runs the profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    /// A cron expression, in UTC: five fields (minute hour day-of-month
    /// month day-of-week), or six with seconds first.
    cron: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    path: String,
    /// sled page cache, in MiB.
    cache_mb: Option<u64>,
    /// Lists with more values than this are stored a key per value.
    large_list_threshold: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineSection {
    #[serde(default = "default_threshold")]
    deletion_threshold: usize,
    /// Import and sync, never export.
    #[serde(default)]
    staging: bool,
    /// A full import refuses to stage deletes for more than this share of
    /// a connector space, in percent.
    #[serde(default = "default_deletion_percent")]
    import_deletion_percent: u32,
    /// Tries in all for a retryable export failure.
    #[serde(default = "default_retry_attempts")]
    retry_attempts: u32,
    /// The wait before the first retry, in milliseconds; it doubles, up to 30 s.
    #[serde(default = "default_retry_delay_ms")]
    retry_delay_ms: u64,
    /// Runs older than this many days are pruned (0: kept forever).
    #[serde(default = "default_history_retention_days")]
    history_retention_days: u32,
    /// The audit log of exported changes (default: beside the store,
    /// `<store path>.audit.jsonl`).
    #[serde(default)]
    audit_log: Option<String>,
    /// An export whose failures pass this share (in percent) of its answered
    /// changes quarantines its connector (0: never).
    #[serde(default = "default_quarantine_percent")]
    quarantine_error_percent: u32,
    /// ...once at least this many changes were answered in the run.
    #[serde(default = "default_quarantine_min")]
    quarantine_min_changes: u64,
}

fn default_quarantine_percent() -> u32 {
    engine::quarantine::QuarantinePolicy::default().error_percent
}

fn default_quarantine_min() -> u64 {
    engine::quarantine::QuarantinePolicy::default().min_changes
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            deletion_threshold: default_threshold(),
            staging: false,
            import_deletion_percent: default_deletion_percent(),
            retry_attempts: default_retry_attempts(),
            retry_delay_ms: default_retry_delay_ms(),
            history_retention_days: default_history_retention_days(),
            audit_log: None,
            quarantine_error_percent: default_quarantine_percent(),
            quarantine_min_changes: default_quarantine_min(),
        }
    }
}

fn default_history_retention_days() -> u32 {
    90
}

fn default_deletion_percent() -> u32 {
    50
}

fn default_retry_attempts() -> u32 {
    4
}

fn default_retry_delay_ms() -> u64 {
    500
}

fn default_threshold() -> usize {
    500
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MvTypeSection {
    deletion: Option<Spanned<DeletionSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DeletionSpec {
    Named(String),
    Source { source: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    direction: Spanned<String>,
    connector: Spanned<String>,
    mv_object_type: Spanned<String>,
    cs_object_type: Option<Spanned<String>>,
    #[serde(default)]
    precedence: i64,
    scope: Option<Spanned<String>>,
    #[serde(default)]
    join: Vec<RawJoin>,
    #[serde(default)]
    project: bool,
    #[serde(default)]
    flows: BTreeMap<Spanned<String>, Spanned<RawFlow>>,
    provision: Option<Spanned<RawProvision>>,
    deprovision: Option<Spanned<RawDeprovision>>,
    /// What the metaverse object's deletion does (default: `deprovision`).
    deprovision_on_delete: Option<Spanned<RawDeprovision>>,
    #[serde(default)]
    skip_out_of_scope_deletions: bool,
    /// Further connectors a generated unique value must be free in.
    #[serde(default)]
    unique_in: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJoin {
    cs: Spanned<String>,
    mv: Spanned<String>,
}

/// A flow: `target = "expr"` or `target = { expr = "...", ... }`.
#[derive(Debug, Default)]
struct RawFlow {
    expr: String,
    initial_only: bool,
    null_is_authoritative: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowTable {
    expr: String,
    #[serde(default)]
    initial_only: bool,
    #[serde(default)]
    null_is_authoritative: bool,
}

impl<'de> Deserialize<'de> for RawFlow {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFlow;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an expression string or a table { expr = \"...\", initial_only = true }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawFlow, E> {
                Ok(RawFlow {
                    expr: s.to_owned(),
                    ..RawFlow::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawFlow, A::Error> {
                let t = FlowTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawFlow {
                    expr: t.expr,
                    initial_only: t.initial_only,
                    null_is_authoritative: t.null_is_authoritative,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `provision = true`, `false`, or an expression: provision only while it holds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawProvision {
    Flag(bool),
    When(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDeprovision {
    Named(String),
    Disable { disable: BTreeMap<String, RawFlow> },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    steps: Vec<RawStep>,
}

/// A run profile and when `mvsync schedule` runs it.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The run profile.
    pub profile: String,
    /// The cron expression as written.
    pub text: String,
    /// It, parsed.
    pub cron: croner::Cron,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    connector: Spanned<String>,
    step: Spanned<String>,
    /// For a delta import: what to run when the system no longer honours
    /// the watermark (`"full-import"`).
    fallback: Option<Spanned<String>>,
}

/// One step of a run profile.
#[derive(Debug, Clone)]
pub struct ProfileStep {
    /// The connector.
    pub connector: String,
    /// The step.
    pub kind: StepKind,
    /// A delta import that finds its watermark expired runs a full import instead.
    pub full_import_fallback: bool,
}

/// Where an expression is written: the TOML value holding it and, when the
/// expression could be found in it, the file offset of each of its bytes
/// (through TOML escapes, see `toml_string`).
#[derive(Debug, Clone)]
pub(crate) struct ExprSpan {
    /// The TOML value (quotes included).
    pub value: Range<usize>,
    /// File offsets of the expression's bytes, plus one past its end.
    offsets: Option<Vec<usize>>,
    /// The length of the expression text.
    pub len: usize,
}

impl ExprSpan {
    /// Locates `text` inside the TOML value at `value`.
    pub(crate) fn locate(source: &str, value: &Range<usize>, text: &str) -> ExprSpan {
        let offsets = source
            .get(value.clone())
            .and_then(|raw| crate::toml_string::find(raw, text))
            .map(|map| map.iter().map(|o| value.start + o).collect());
        ExprSpan {
            value: value.clone(),
            offsets,
            len: text.len(),
        }
    }

    /// The file range of `inner`, a byte range of the expression text; the
    /// whole value when the expression could not be located.
    pub fn at(&self, inner: Range<usize>) -> Range<usize> {
        match &self.offsets {
            Some(map) => {
                let last = map.len() - 1;
                let start = map[inner.start.min(last)];
                let end = map[inner.end.min(last)];
                start..end.max(start + 1)
            }
            None => self.value.clone(),
        }
    }

    /// The file range of the whole expression.
    pub fn whole(&self) -> Range<usize> {
        self.at(0..self.len)
    }
}

/// Where one flow is written.
#[derive(Debug, Clone)]
pub(crate) struct FlowSpans {
    /// The attribute written.
    pub target: String,
    /// The key naming it.
    pub key: Range<usize>,
    /// The expression.
    pub expr: ExprSpan,
}

/// Where one join criterion is written.
#[derive(Debug, Clone)]
pub(crate) struct JoinSpans {
    /// The metaverse attribute compared.
    pub mv: String,
    /// Its value in the file.
    pub mv_span: Range<usize>,
    /// The connector-space expression.
    pub cs: ExprSpan,
    /// Whether the expression parsed (and so is among the rule's criteria).
    pub parsed: bool,
}

/// Where the parts of one rule are written, for messages about it.
#[derive(Debug, Clone)]
pub(crate) struct RuleSpans {
    pub name: Range<usize>,
    pub direction: Range<usize>,
    pub mv_type: Range<usize>,
    pub cs_type: Option<Range<usize>>,
    pub scope: Option<ExprSpan>,
    /// Every join criterion written, in order, including those that did not parse.
    pub joins: Vec<JoinSpans>,
    /// Every flow written, in order, including those that did not parse.
    pub flows: Vec<FlowSpans>,
    pub provision: Option<Range<usize>>,
    pub deprovision: Option<Range<usize>>,
    pub deprovision_on_delete: Option<Range<usize>>,
}

/// Where one run-profile step is written.
#[derive(Debug, Clone)]
pub(crate) struct StepSpans {
    pub step: Range<usize>,
}

/// A loaded, validated configuration.
pub struct Config {
    /// The config file as given on the command line.
    pub shown: String,
    /// The folder relative paths resolve against.
    pub base_dir: PathBuf,
    /// The store.
    pub store_path: PathBuf,
    /// Store options.
    pub store_options: StoreOptions,
    /// What the engine runs with (connector schemas are filled by [`Config::build_connectors`]).
    pub engine: EngineConfig,
    /// Connector configurations by name.
    pub connectors: BTreeMap<String, ConnectorConfig>,
    pub(crate) connector_spans: BTreeMap<String, Range<usize>>,
    /// Run profiles.
    pub profiles: BTreeMap<String, Vec<ProfileStep>>,
    /// When `mvsync schedule` runs which profile.
    pub schedules: Vec<Schedule>,
    /// Where `mvsync schedule` puts its metrics.
    pub metrics: MetricsConfig,
    /// Where `mvsync console` listens.
    pub console: ConsoleConfig,
    /// Where each rule of `engine.rules` is written (parallel to it).
    pub(crate) rule_spans: Vec<RuleSpans>,
    /// Where each step of `profiles` is written (parallel to them).
    pub(crate) step_spans: BTreeMap<String, Vec<StepSpans>>,
    /// Metaverse types with a rule that could not be compiled (an unknown
    /// direction): checks that need to see every rule of a type skip them.
    pub(crate) incomplete_mv_types: BTreeSet<String>,
    pub(crate) source: Arc<String>,
}

struct Errors {
    file: Arc<str>,
    source: Arc<String>,
    list: Vec<ConfigError>,
}

impl Errors {
    fn push(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<String>) {
        self.list.push(ConfigError {
            file: self.file.clone(),
            source_text: self.source.clone(),
            span,
            message: message.into(),
            help,
        });
    }

    /// Parses an expression written in the TOML value at `span`, reporting
    /// a parse error at its character; returns where the expression is.
    fn expr(&mut self, span: &Range<usize>, text: &str, what: &str) -> (Option<Expr>, ExprSpan) {
        let located = ExprSpan::locate(&self.source, span, text);
        match Expr::parse(text) {
            Ok(e) => (Some(e), located),
            Err(e) => {
                self.push(
                    located.at(e.span.clone()),
                    format!("{what}: {} [{}]", e.message, e.code),
                    None,
                );
                (None, located)
            }
        }
    }
}

impl Config {
    /// Reads, parses and validates `path`; `shown` is how errors name it.
    /// Fails with every error (warnings are left to `mvsync validate`).
    pub fn load(path: &Path, shown: &str) -> Result<Config, ConfigErrors> {
        let (config, findings) = Config::load_all(path, shown)?;
        let errors: Vec<ConfigError> = findings
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.error)
            .collect();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors::new(errors))
        }
    }

    /// Reads `path` and checks it completely, connectors' schemas and
    /// capabilities included (offline: `info()` touches no connected
    /// system): every error and warning, in file order. `Err` only when the
    /// file cannot be read or is not TOML of the right shape.
    pub fn load_all(path: &Path, shown: &str) -> Result<(Config, Vec<Finding>), ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::new(vec![ConfigError {
                file: shown.into(),
                source_text: Arc::new(String::new()),
                span: 0..0,
                message: format!("cannot read the configuration: {e}"),
                help: Some("pass the file with -c/--config".into()),
            }])
        })?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Config::from_text(text, shown, base_dir)
    }

    /// [`Config::load_all`] of a configuration's text.
    pub(crate) fn from_text(
        text: String,
        shown: &str,
        base_dir: PathBuf,
    ) -> Result<(Config, Vec<Finding>), ConfigErrors> {
        let source = Arc::new(text);
        let mut errors = Errors {
            file: shown.into(),
            source: source.clone(),
            list: Vec::new(),
        };
        let Some((mut raw, damage)) = read_raw(&source, &mut errors) else {
            return Err(ConfigErrors::new(errors.list));
        };
        // The shape errors stand apart: no follow-up is filtered from them.
        let shape_errors = std::mem::take(&mut errors.list);
        raw.connectors
            .retain(|name, _| !damage.connectors.contains(name));
        let mut config = compile(raw, &mut errors, shown, base_dir, source);
        let lost_types = damage.mv_types(&config);
        config
            .incomplete_mv_types
            .extend(lost_types.iter().cloned());
        let infos = config.connector_infos(&mut errors);
        let mut findings: Vec<Finding> = errors
            .list
            .into_iter()
            .map(|error| Finding {
                severity: Severity::Error,
                error,
            })
            .collect();
        findings.extend(validate::check(&config, &infos));
        findings.retain(|f| !damage.explains(&f.error.message, &config, &lost_types));
        findings.extend(shape_errors.into_iter().map(|error| Finding {
            severity: Severity::Error,
            error,
        }));
        findings.sort_by_key(|f| f.error.span.start);
        Ok((config, findings))
    }

    /// What each connector that builds says about itself (offline).
    fn connector_infos(&self, errors: &mut Errors) -> BTreeMap<String, ConnectorInfo> {
        let mut infos = BTreeMap::new();
        for (name, cfg) in &self.connectors {
            match cfg.build(&self.base_dir) {
                Ok(c) => {
                    infos.insert(name.clone(), c.info());
                }
                Err(e) => {
                    let span = self.connector_spans.get(name).cloned().unwrap_or(0..0);
                    errors.push(span, format!("connector '{name}': {}", e.message), None);
                }
            }
        }
        infos
    }

    /// Builds every connector and records its schema in the engine config.
    pub fn build_connectors(
        &mut self,
    ) -> Result<BTreeMap<String, Box<dyn Connector>>, ConfigErrors> {
        let mut built = BTreeMap::new();
        let mut errors = Errors {
            file: self.shown.as_str().into(),
            source: self.source.clone(),
            list: Vec::new(),
        };
        for (name, cfg) in &self.connectors {
            match cfg.build(&self.base_dir) {
                Ok(c) => {
                    self.engine.connectors.insert(name.clone(), c.info());
                    built.insert(name.clone(), c);
                }
                Err(e) => {
                    let span = self.connector_spans.get(name).cloned().unwrap_or(0..0);
                    errors.push(span, format!("connector '{name}': {}", e.message), None);
                }
            }
        }
        if errors.list.is_empty() {
            Ok(built)
        } else {
            Err(ConfigErrors::new(errors.list))
        }
    }
}

use crate::toml_errors::{self, Cause, Seg};

/// The forms the configuration's untagged enums accept, for messages.
const UNTAGGED_FORMS: &[(&str, &str)] = &[
    (
        "DeletionSpec",
        r#""last-source", "never" or a table { source = "CONNECTOR" }"#,
    ),
    (
        "RawDeprovision",
        r#""delete", "disconnect" or a table { disable = { attribute = "expression" } }"#,
    ),
    (
        "RawProvision",
        r#"true, false or an expression string (provision while it holds)"#,
    ),
];

/// How messages name a disable flow of the `deprovision` or
/// `deprovision_on_delete` action.
pub(crate) fn disable_part(key: &str) -> String {
    match key {
        "deprovision" => "disable flow".to_owned(),
        other => format!("{other} disable flow"),
    }
}

/// A deprovisioning action (`key` is `deprovision` or
/// `deprovision_on_delete`), its expressions parsed.
fn deprovision_action(
    errors: &mut Errors,
    rule_name: &str,
    key: &str,
    d: &Spanned<RawDeprovision>,
) -> Deprovision {
    match d.get_ref() {
        RawDeprovision::Named(n) if n == "delete" => Deprovision::Delete,
        RawDeprovision::Named(n) if n == "disconnect" => Deprovision::Disconnect,
        RawDeprovision::Named(n) if n == "keep" => Deprovision::Keep,
        RawDeprovision::Named(n) => {
            errors.push(
                d.span(),
                format!("unknown {key} action '{n}'"),
                Some(
                    "use \"delete\", \"disconnect\", \"keep\" or { disable = { attribute = \"expression\" } }"
                        .into(),
                ),
            );
            Deprovision::Delete
        }
        RawDeprovision::Disable { disable } => Deprovision::Disable(
            disable
                .iter()
                .filter_map(|(target, f)| {
                    let (expr, _) = errors.expr(
                        &d.span(),
                        &f.expr,
                        &format!("rule '{rule_name}', {} to '{target}'", disable_part(key)),
                    );
                    Some(Flow {
                        target: target.clone(),
                        expr: expr?,
                        initial_only: false,
                        nulls: NullHandling::Yield,
                    })
                })
                .collect(),
        ),
    }
}

/// Parses the configuration's text and deserialises it, collecting every
/// error (see [`toml_errors`]): a TOML syntax error is one error and
/// nothing more; otherwise each key or element that cannot be read is
/// reported and left out, and the rest is returned with what was lost.
/// `None` when nothing usable remains.
fn read_raw(source: &str, errors: &mut Errors) -> Option<(RawConfig, Damage)> {
    let document = match toml_edit::ImDocument::parse(source) {
        Ok(d) => d,
        Err(e) => {
            errors.push(e.span().unwrap_or(0..0), e.message().to_owned(), None);
            return None;
        }
    };
    let collected = toml_errors::collect::<RawConfig>(document.into_table(), UNTAGGED_FORMS);
    for e in collected.errors {
        errors.push(e.span.unwrap_or(0..0), e.message, None);
    }
    let raw = collected.value?;
    Some((raw, Damage::of(&collected.removals)))
}

/// What deserialisation left out of the configuration (beyond unknown
/// keys, which mean nothing), so the checks after it do not report what
/// follows only from the loss.
///
/// The policy: an item that could not be read is reported once, by its own
/// error. A connector with any unreadable part is left out entirely, and
/// the errors saying that a rule, a step or a deletion rule names a
/// connector "which is not configured" are dropped for it. A rule with any
/// unreadable part (or left out because of one) makes its metaverse type
/// incomplete, so the checks that need every rule of the type skip it (as
/// for a rule with an unknown direction), and "no outbound rule flows to
/// their anchor" is dropped for rules of that type; "must name the
/// cs_object_type" is dropped for a rule whose `cs_object_type` could not
/// be read, and "has no steps" for a run profile that lost steps.
#[derive(Debug, Default)]
struct Damage {
    /// Connectors with a part that could not be read.
    connectors: BTreeSet<String>,
    /// `connectors` itself could not be read.
    all_connectors: bool,
    /// The metaverse types of rules with a part that could not be read.
    mv_types: BTreeSet<String>,
    /// Such a rule's type is unknown (it could not be read either).
    all_mv_types: bool,
    /// Rules whose `cs_object_type` could not be read, by name.
    lost_cs_type: BTreeSet<String>,
    /// Run profiles that lost steps.
    profiles: BTreeSet<String>,
}

impl Damage {
    fn of(removals: &[toml_errors::Removal]) -> Damage {
        let mut damage = Damage::default();
        let text = |entry: &Option<toml_edit::Item>, key: &str| {
            entry
                .as_ref()
                .and_then(toml_edit::Item::as_table_like)
                .and_then(|t| t.get(key))
                .and_then(toml_edit::Item::as_str)
                .map(str::to_owned)
        };
        for r in removals.iter().filter(|r| r.cause != Cause::UnknownKey) {
            let section = r.path.first().and_then(Seg::key);
            let entry = r.path.get(1).and_then(Seg::key);
            match section {
                Some("connectors") => match entry {
                    Some(name) => {
                        damage.connectors.insert(name.to_owned());
                    }
                    None => damage.all_connectors = true,
                },
                Some("rules") => {
                    match text(&r.entry, "mv_object_type") {
                        Some(t) => {
                            damage.mv_types.insert(t);
                        }
                        None => damage.all_mv_types = true,
                    }
                    if r.path.get(2).and_then(Seg::key) == Some("cs_object_type") {
                        damage.lost_cs_type.extend(text(&r.entry, "name"));
                    }
                }
                Some("run_profiles") if r.path.len() > 2 => {
                    damage.profiles.extend(entry.map(str::to_owned));
                }
                _ => {}
            }
        }
        damage
    }

    /// The metaverse types whose rules are not all there.
    fn mv_types(&self, config: &Config) -> BTreeSet<String> {
        let mut types = self.mv_types.clone();
        if self.all_mv_types {
            types.extend(config.engine.rules.iter().map(|r| r.mv_object_type.clone()));
            types.extend(config.incomplete_mv_types.iter().cloned());
        }
        types
    }

    /// Whether a finding of the checks after deserialisation follows only
    /// from what was left out. The messages matched are `compile`'s and
    /// `validate`'s; the e2e tests `validate::what_cannot_be_read_*` fail
    /// if one of them changes.
    fn explains(&self, message: &str, config: &Config, lost_types: &BTreeSet<String>) -> bool {
        let unconfigured =
            |name: &str| message.contains(&format!("connector '{name}', which is not configured"));
        (self.all_connectors && message.contains("', which is not configured"))
            || self.connectors.iter().any(|n| unconfigured(n))
            || self.lost_cs_type.iter().any(|n| {
                message
                    == format!(
                        "rule '{n}' provisions, so it must name the cs_object_type to create"
                    )
            })
            || self
                .profiles
                .iter()
                .any(|p| message == format!("run profile '{p}' has no steps"))
            || (message.contains(", but no outbound rule flows to their anchor '")
                && config.engine.rules.iter().any(|r| {
                    lost_types.contains(&r.mv_object_type)
                        && message.starts_with(&format!("rule '{}' provisions '", r.name))
                }))
    }
}

fn compile(
    raw: RawConfig,
    errors: &mut Errors,
    shown: &str,
    base_dir: PathBuf,
    source: Arc<String>,
) -> Config {
    let connector_names: BTreeSet<String> = raw.connectors.keys().cloned().collect();
    let known = |name: &str| connector_names.contains(name);
    let list_connectors = || {
        connector_names
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };

    let mut rules = Vec::new();
    let mut rule_spans = Vec::new();
    let mut incomplete_mv_types = BTreeSet::new();
    let mut names = BTreeSet::new();
    for r in raw.rules {
        let rule_name = r.name.get_ref().clone();
        if !names.insert(rule_name.clone()) {
            errors.push(
                r.name.span(),
                format!("a rule named '{rule_name}' is already defined"),
                None,
            );
        }
        if !known(r.connector.get_ref()) {
            errors.push(
                r.connector.span(),
                format!(
                    "rule '{rule_name}' names connector '{}', which is not configured",
                    r.connector.get_ref()
                ),
                Some(format!("configured connectors: {}", list_connectors())),
            );
        }
        for other in &r.unique_in {
            if !known(other.get_ref()) {
                errors.push(
                    other.span(),
                    format!(
                        "rule '{rule_name}' checks uniqueness in connector '{}', which is not configured",
                        other.get_ref()
                    ),
                    Some(format!("configured connectors: {}", list_connectors())),
                );
            }
        }
        let direction = match r.direction.get_ref().as_str() {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            other => {
                errors.push(
                    r.direction.span(),
                    format!("unknown direction '{other}'; expected \"inbound\" or \"outbound\""),
                    None,
                );
                None
            }
        };
        let provision = match r.provision.as_ref().map(|p| (p.span(), p.get_ref())) {
            None | Some((_, RawProvision::Flag(false))) => Provision::Never,
            Some((_, RawProvision::Flag(true))) => Provision::Always,
            Some((span, RawProvision::When(text))) => errors
                .expr(&span, text, &format!("rule '{rule_name}', provision"))
                .0
                .map_or(Provision::Always, Provision::When),
        };
        let provisions = !matches!(provision, Provision::Never);
        if direction == Some(Direction::Inbound)
            && (provisions || r.deprovision.is_some() || r.deprovision_on_delete.is_some())
        {
            errors.push(r.name.span(), format!("rule '{rule_name}' is inbound: provision and deprovision belong to outbound rules"), None);
        }
        if direction == Some(Direction::Outbound) && (r.project || !r.join.is_empty()) {
            errors.push(
                r.name.span(),
                format!("rule '{rule_name}' is outbound: join and project belong to inbound rules"),
                None,
            );
        }
        if direction == Some(Direction::Outbound) && provisions && r.cs_object_type.is_none() {
            errors.push(
                r.name.span(),
                format!(
                    "rule '{rule_name}' provisions, so it must name the cs_object_type to create"
                ),
                None,
            );
        }
        let (scope, scope_span) = match &r.scope {
            Some(s) => {
                let (expr, at) = errors.expr(
                    &s.span(),
                    s.get_ref(),
                    &format!("rule '{rule_name}', scope"),
                );
                (expr, Some(at))
            }
            None => (None, None),
        };
        let mut join = Vec::new();
        let mut join_spans = Vec::new();
        for j in &r.join {
            let (cs, at) = errors.expr(
                &j.cs.span(),
                j.cs.get_ref(),
                &format!("rule '{rule_name}', join"),
            );
            join_spans.push(JoinSpans {
                mv: j.mv.get_ref().clone(),
                mv_span: j.mv.span(),
                cs: at,
                parsed: cs.is_some(),
            });
            if let Some(cs) = cs {
                join.push(JoinCriterion {
                    cs,
                    mv: j.mv.get_ref().clone(),
                });
            }
        }
        let mut flows = Vec::new();
        let mut flow_spans = Vec::new();
        for (target, flow) in &r.flows {
            let span = flow.span();
            let f = flow.get_ref();
            let target_name = target.get_ref();
            if f.initial_only && direction == Some(Direction::Inbound) {
                errors.push(
                    span.clone(),
                    "initial_only applies to outbound flows".to_string(),
                    None,
                );
            }
            let (expr, at) = errors.expr(
                &span,
                &f.expr,
                &format!("rule '{rule_name}', flow to '{target_name}'"),
            );
            flow_spans.push(FlowSpans {
                target: target_name.clone(),
                key: target.span(),
                expr: at,
            });
            if let Some(expr) = expr {
                flows.push(Flow {
                    target: target_name.clone(),
                    expr,
                    initial_only: f.initial_only,
                    nulls: if f.null_is_authoritative {
                        NullHandling::Authoritative
                    } else {
                        NullHandling::Yield
                    },
                });
            }
        }
        let deprovision = r.deprovision.as_ref().map_or(Deprovision::Delete, |d| {
            deprovision_action(errors, &rule_name, "deprovision", d)
        });
        let deprovision_on_delete = r
            .deprovision_on_delete
            .as_ref()
            .map(|d| deprovision_action(errors, &rule_name, "deprovision_on_delete", d));
        let Some(direction) = direction else {
            incomplete_mv_types.insert(r.mv_object_type.into_inner());
            continue;
        };
        rule_spans.push(RuleSpans {
            name: r.name.span(),
            direction: r.direction.span(),
            mv_type: r.mv_object_type.span(),
            cs_type: r.cs_object_type.as_ref().map(Spanned::span),
            scope: scope_span,
            joins: join_spans,
            flows: flow_spans,
            provision: r.provision.as_ref().map(Spanned::span),
            deprovision: r.deprovision.as_ref().map(Spanned::span),
            deprovision_on_delete: r.deprovision_on_delete.as_ref().map(Spanned::span),
        });
        rules.push(Rule {
            name: rule_name,
            direction,
            connector: r.connector.into_inner(),
            cs_object_type: r.cs_object_type.map(Spanned::into_inner),
            mv_object_type: r.mv_object_type.into_inner(),
            precedence: r.precedence,
            scope,
            join,
            project: r.project,
            flows,
            provision,
            deprovision,
            deprovision_on_delete,
            skip_out_of_scope_deletions: r.skip_out_of_scope_deletions,
            unique_in: r.unique_in.into_iter().map(Spanned::into_inner).collect(),
        });
    }

    let mut deletion = BTreeMap::new();
    for (mv_type, section) in raw.metaverse {
        let Some(spec) = section.deletion else {
            continue;
        };
        let rule = match spec.get_ref() {
            DeletionSpec::Named(n) if n == "last-source" => DeletionRule::LastSource,
            DeletionSpec::Named(n) if n == "never" => DeletionRule::Never,
            DeletionSpec::Named(n) => {
                errors.push(
                    spec.span(),
                    format!("unknown deletion rule '{n}'"),
                    Some("use \"last-source\", \"never\" or { source = \"CONNECTOR\" }".into()),
                );
                continue;
            }
            DeletionSpec::Source { source } => {
                if !known(source) {
                    errors.push(
                        spec.span(),
                        format!(
                            "deletion rule names connector '{source}', which is not configured"
                        ),
                        None,
                    );
                }
                DeletionRule::SourceGone(source.clone())
            }
        };
        deletion.insert(mv_type, rule);
    }

    let mut profiles = BTreeMap::new();
    let mut step_spans = BTreeMap::new();
    for (name, profile) in raw.run_profiles {
        let mut steps = Vec::new();
        let mut spans = Vec::new();
        if profile.steps.is_empty() {
            errors.push(
                name.span(),
                format!("run profile '{}' has no steps", name.get_ref()),
                None,
            );
        }
        for s in profile.steps {
            if !known(s.connector.get_ref()) {
                errors.push(
                    s.connector.span(),
                    format!(
                        "run profile '{}' names connector '{}', which is not configured",
                        name.get_ref(),
                        s.connector.get_ref()
                    ),
                    Some(format!("configured connectors: {}", list_connectors())),
                );
            }
            match StepKind::parse(s.step.get_ref()) {
                Some(kind) => {
                    spans.push(StepSpans {
                        step: s.step.span(),
                    });
                    let full_import_fallback = match &s.fallback {
                        None => false,
                        Some(f) if f.get_ref() == "full-import" && kind == StepKind::DeltaImport => {
                            true
                        }
                        Some(f) => {
                            errors.push(
                                f.span(),
                                format!(
                                    "run profile '{}': fallback '{}': expected \"full-import\", on a delta-import step",
                                    name.get_ref(),
                                    f.get_ref()
                                ),
                                None,
                            );
                            false
                        }
                    };
                    steps.push(ProfileStep {
                        connector: s.connector.into_inner(),
                        kind,
                        full_import_fallback,
                    });
                }
                None => errors.push(
                    s.step.span(),
                    format!(
                        "run profile '{}': unknown step '{}'; expected full-import, delta-import, full-sync, delta-sync or export",
                        name.get_ref(),
                        s.step.get_ref()
                    ),
                    None,
                ),
            }
        }
        step_spans.insert(name.get_ref().clone(), spans);
        profiles.insert(name.into_inner(), steps);
    }

    let mut schedules = Vec::new();
    for (profile, schedule) in raw.schedules {
        if !profiles.contains_key(profile.get_ref()) {
            let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
            errors.push(
                profile.span(),
                format!(
                    "schedule for run profile '{}', which is not configured",
                    profile.get_ref()
                ),
                Some(format!("configured run profiles: {}", known.join(", "))),
            );
        }
        let text = schedule.cron.get_ref().trim().to_owned();
        match croner::Cron::new(&text).with_seconds_optional().parse() {
            Ok(cron) => schedules.push(Schedule {
                profile: profile.into_inner(),
                text,
                cron,
            }),
            Err(e) => errors.push(
                schedule.cron.span(),
                format!("`cron` of schedule '{}' is not a cron expression: {e}", profile.get_ref()),
                Some("five fields, in UTC: minute hour day-of-month month day-of-week (\"*/30 * * * *\" every half hour, \"0 2 * * *\" at 02:00), or six with seconds first".into()),
            ),
        }
    }

    let mut console = ConsoleConfig {
        listen: None,
        token: raw.console.token.clone(),
    };
    if let Some(listen) = &raw.console.listen {
        match listen.get_ref().parse::<std::net::SocketAddr>() {
            Ok(addr) => match crate::console::check_listen(addr, console.token.is_some()) {
                Ok(()) => console.listen = Some(addr),
                Err(message) => errors.push(
                    listen.span(),
                    message,
                    Some("set `token = { env = \"MVSYNC_CONSOLE_TOKEN\" }` (or `{ file = … }`) in `[console]`, or listen on 127.0.0.1".into()),
                ),
            },
            Err(_) => errors.push(
                listen.span(),
                format!("`listen` {:?} is not an address and port", listen.get_ref()),
                Some("for example \"127.0.0.1:8470\"".into()),
            ),
        }
    }

    let mut metrics = MetricsConfig {
        file: raw.metrics.file.as_ref().map(|f| base_dir.join(f)),
        listen: None,
    };
    if let Some(listen) = &raw.metrics.listen {
        match listen.get_ref().parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() => metrics.listen = Some(addr),
            Ok(addr) => errors.push(
                listen.span(),
                format!("`listen` {addr} is not a loopback address: metrics are served on 127.0.0.1 or ::1 only"),
                Some("put a reverse proxy with authentication in front to reach them from elsewhere".into()),
            ),
            Err(_) => errors.push(
                listen.span(),
                format!("`listen` {:?} is not an address and port", listen.get_ref()),
                Some("for example \"127.0.0.1:9464\"".into()),
            ),
        }
    }

    let connector_spans = raw
        .connectors
        .iter()
        .map(|(n, c)| (n.clone(), c.span()))
        .collect();
    let store_path = base_dir.join(&raw.store.path);
    let audit_log = match &raw.engine.audit_log {
        Some(path) => base_dir.join(path),
        None => engine::store::beside(&store_path, ".audit.jsonl"),
    };
    Config {
        shown: shown.to_owned(),
        store_path,
        store_options: StoreOptions {
            cache_bytes: raw
                .store
                .cache_mb
                .map_or(StoreOptions::default().cache_bytes, |mb| mb * 1024 * 1024),
            large_list_threshold: raw
                .store
                .large_list_threshold
                .unwrap_or(StoreOptions::default().large_list_threshold),
        },
        engine: EngineConfig {
            connectors: BTreeMap::new(),
            rules,
            deletion,
            deletion_threshold: raw.engine.deletion_threshold,
            staging: raw.engine.staging,
            import_deletion_percent: raw.engine.import_deletion_percent,
            retry: engine::RetryPolicy {
                attempts: raw.engine.retry_attempts.max(1),
                first_delay: std::time::Duration::from_millis(raw.engine.retry_delay_ms),
                max_delay: std::time::Duration::from_secs(30),
            },
            history_retention_days: raw.engine.history_retention_days,
            audit_log: Some(audit_log),
            quarantine: engine::quarantine::QuarantinePolicy {
                error_percent: raw.engine.quarantine_error_percent,
                min_changes: raw.engine.quarantine_min_changes,
            },
        },
        connectors: raw
            .connectors
            .into_iter()
            .map(|(n, c)| (n, c.into_inner()))
            .collect(),
        connector_spans,
        profiles,
        schedules,
        metrics,
        console,
        rule_spans,
        step_spans,
        incomplete_mv_types,
        base_dir,
        source,
    }
}
