//! The TOML configuration: its shape, loading with file positions, a
//! validation pass that collects every error, and compilation into what the
//! engine runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use connectors::ConnectorConfig;
use engine::{Connector, DeletionRule, EngineConfig, StepKind, StoreOptions};
use rules::{Deprovision, Direction, Expr, Flow, JoinCriterion, NullHandling, Rule};
use serde::de::{self, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::diagnostics::{ConfigError, ConfigErrors};

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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    path: String,
    /// sled page cache, in MiB.
    cache_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineSection {
    #[serde(default = "default_threshold")]
    deletion_threshold: usize,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            deletion_threshold: default_threshold(),
        }
    }
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
    mv_object_type: String,
    cs_object_type: Option<String>,
    #[serde(default)]
    precedence: i64,
    scope: Option<Spanned<String>>,
    #[serde(default)]
    join: Vec<RawJoin>,
    #[serde(default)]
    project: bool,
    #[serde(default)]
    flows: BTreeMap<String, Spanned<RawFlow>>,
    #[serde(default)]
    provision: bool,
    deprovision: Option<Spanned<RawDeprovision>>,
    #[serde(default)]
    skip_out_of_scope_deletions: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJoin {
    cs: Spanned<String>,
    mv: String,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    connector: Spanned<String>,
    step: Spanned<String>,
}

/// One step of a run profile.
#[derive(Debug, Clone)]
pub struct ProfileStep {
    /// The connector.
    pub connector: String,
    /// The step.
    pub kind: StepKind,
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
    connector_spans: BTreeMap<String, Range<usize>>,
    /// Run profiles.
    pub profiles: BTreeMap<String, Vec<ProfileStep>>,
    source: Arc<String>,
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

    /// The file position of an expression inside a TOML value at `span`.
    fn expr_offset(&self, span: &Range<usize>, expr: &str) -> usize {
        self.source
            .get(span.clone())
            .and_then(|s| s.find(expr))
            .map_or(span.start, |i| span.start + i)
    }

    fn expr(&mut self, span: &Range<usize>, text: &str, what: &str) -> Option<Expr> {
        match Expr::parse(text) {
            Ok(e) => Some(e),
            Err(e) => {
                let at = self.expr_offset(span, text) + e.span.start;
                let len = e.span.len().max(1);
                self.push(
                    at..at + len,
                    format!("{what}: {} [{}]", e.message, e.code),
                    None,
                );
                None
            }
        }
    }
}

impl Config {
    /// Reads, parses and validates `path`; `shown` is how errors name it.
    pub fn load(path: &Path, shown: &str) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::new(vec![ConfigError {
                file: shown.into(),
                source_text: Arc::new(String::new()),
                span: 0..0,
                message: format!("cannot read the configuration: {e}"),
                help: Some("pass the file with -c/--config".into()),
            }])
        })?;
        let source = Arc::new(text);
        let mut errors = Errors {
            file: shown.into(),
            source: source.clone(),
            list: Vec::new(),
        };
        let raw: RawConfig = match toml::from_str(&source) {
            Ok(r) => r,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                errors.push(span, e.message().to_string(), None);
                return Err(ConfigErrors::new(errors.list));
            }
        };
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let config = compile(raw, &mut errors, shown, base_dir, source);
        if errors.list.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors::new(errors.list))
        }
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
    let mut names = BTreeSet::new();
    for r in raw.rules {
        if !names.insert(r.name.get_ref().clone()) {
            errors.push(
                r.name.span(),
                format!("a rule named '{}' is already defined", r.name.get_ref()),
                None,
            );
        }
        if !known(r.connector.get_ref()) {
            errors.push(
                r.connector.span(),
                format!(
                    "rule '{}' names connector '{}', which is not configured",
                    r.name.get_ref(),
                    r.connector.get_ref()
                ),
                Some(format!("configured connectors: {}", list_connectors())),
            );
        }
        let direction = match r.direction.get_ref().as_str() {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            other => {
                errors.push(
                    r.direction.span(),
                    format!("unknown direction '{other}'; expected \"inbound\" or \"outbound\""),
                    None,
                );
                continue;
            }
        };
        let rule_name = r.name.get_ref().clone();
        if direction == Direction::Inbound && (r.provision || r.deprovision.is_some()) {
            errors.push(r.name.span(), format!("rule '{rule_name}' is inbound: provision and deprovision belong to outbound rules"), None);
        }
        if direction == Direction::Outbound && (r.project || !r.join.is_empty()) {
            errors.push(
                r.name.span(),
                format!("rule '{rule_name}' is outbound: join and project belong to inbound rules"),
                None,
            );
        }
        if direction == Direction::Outbound && r.provision && r.cs_object_type.is_none() {
            errors.push(
                r.name.span(),
                format!(
                    "rule '{rule_name}' provisions, so it must name the cs_object_type to create"
                ),
                None,
            );
        }
        let scope = r.scope.as_ref().and_then(|s| {
            errors.expr(
                &s.span(),
                s.get_ref(),
                &format!("rule '{rule_name}', scope"),
            )
        });
        let join = r
            .join
            .iter()
            .filter_map(|j| {
                let cs = errors.expr(
                    &j.cs.span(),
                    j.cs.get_ref(),
                    &format!("rule '{rule_name}', join"),
                )?;
                Some(JoinCriterion {
                    cs,
                    mv: j.mv.clone(),
                })
            })
            .collect();
        let mut flows = Vec::new();
        for (target, flow) in &r.flows {
            let span = flow.span();
            let f = flow.get_ref();
            if let Some(expr) = errors.expr(
                &span,
                &f.expr,
                &format!("rule '{rule_name}', flow to '{target}'"),
            ) {
                if f.initial_only && direction == Direction::Inbound {
                    errors.push(
                        span.clone(),
                        "initial_only applies to outbound flows".to_string(),
                        None,
                    );
                }
                flows.push(Flow {
                    target: target.clone(),
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
        let deprovision = match &r.deprovision {
            None => Deprovision::Delete,
            Some(d) => match d.get_ref() {
                RawDeprovision::Named(n) if n == "delete" => Deprovision::Delete,
                RawDeprovision::Named(n) if n == "disconnect" => Deprovision::Disconnect,
                RawDeprovision::Named(n) => {
                    errors.push(
                        d.span(),
                        format!("unknown deprovision action '{n}'"),
                        Some("use \"delete\", \"disconnect\" or { disable = { attribute = \"expression\" } }".into()),
                    );
                    Deprovision::Delete
                }
                RawDeprovision::Disable { disable } => Deprovision::Disable(
                    disable
                        .iter()
                        .filter_map(|(target, f)| {
                            let expr = errors.expr(
                                &d.span(),
                                &f.expr,
                                &format!("rule '{rule_name}', disable flow to '{target}'"),
                            )?;
                            Some(Flow {
                                target: target.clone(),
                                expr,
                                initial_only: false,
                                nulls: NullHandling::Yield,
                            })
                        })
                        .collect(),
                ),
            },
        };
        rules.push(Rule {
            name: rule_name,
            direction,
            connector: r.connector.into_inner(),
            cs_object_type: r.cs_object_type,
            mv_object_type: r.mv_object_type,
            precedence: r.precedence,
            scope,
            join,
            project: r.project,
            flows,
            provision: r.provision,
            deprovision,
            skip_out_of_scope_deletions: r.skip_out_of_scope_deletions,
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
    for (name, profile) in raw.run_profiles {
        let mut steps = Vec::new();
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
                Some(kind) => steps.push(ProfileStep {
                    connector: s.connector.into_inner(),
                    kind,
                }),
                None => errors.push(
                    s.step.span(),
                    format!("unknown step '{}'", s.step.get_ref()),
                    Some(
                        "steps are full-import, delta-import, full-sync, delta-sync, export".into(),
                    ),
                ),
            }
        }
        profiles.insert(name.into_inner(), steps);
    }

    let connector_spans = raw
        .connectors
        .iter()
        .map(|(n, c)| (n.clone(), c.span()))
        .collect();
    let store_path = base_dir.join(&raw.store.path);
    Config {
        shown: shown.to_owned(),
        store_path,
        store_options: StoreOptions {
            cache_bytes: raw
                .store
                .cache_mb
                .map_or(StoreOptions::default().cache_bytes, |mb| mb * 1024 * 1024),
        },
        engine: EngineConfig {
            connectors: BTreeMap::new(),
            rules,
            deletion,
            deletion_threshold: raw.engine.deletion_threshold,
        },
        connectors: raw
            .connectors
            .into_iter()
            .map(|(n, c)| (n, c.into_inner()))
            .collect(),
        connector_spans,
        profiles,
        base_dir,
        source,
    }
}
