//! The configuration the engine runs with, resolved against the store's
//! interned names once per process: rules grouped by connector and
//! direction, connector schemas, metaverse deletion rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustc_hash::FxHashMap;

use rules::{Direction, Rule, ValueType};

use crate::connector::{AttributeSchema, ConnectorInfo, RefKind};
use crate::model::Sym;
use crate::store::Store;

/// When a metaverse object is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeletionRule {
    /// When its last source (a joined or projected object) goes away.
    #[default]
    LastSource,
    /// As soon as the object from this authoritative connector goes away.
    SourceGone(String),
    /// Never: the metaverse object stays, without sources.
    Never,
}

/// What the engine needs to know about the configuration.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Connectors by name, with their schema and capabilities.
    pub connectors: BTreeMap<String, ConnectorInfo>,
    /// All sync rules, in configuration order.
    pub rules: Vec<Rule>,
    /// Deletion rule per metaverse object type; absent types use the default.
    pub deletion: BTreeMap<String, DeletionRule>,
    /// Refuse exports that would delete more objects than this.
    pub deletion_threshold: usize,
    /// Staging mode: import and sync, never export (pending exports are kept
    /// for review with preview).
    pub staging: bool,
    /// A full import refuses to stage deletes for more than this share of
    /// the connector space, in percent (whatever the count), unless allowed.
    pub import_deletion_percent: u32,
    /// How retryable export failures are retried.
    pub retry: crate::retry::RetryPolicy,
    /// Runs that finished more than this many days ago are deleted when a
    /// writer opens the store (0: keep every run).
    pub history_retention_days: u32,
    /// The audit log of exported changes (none: not kept).
    pub audit_log: Option<std::path::PathBuf>,
    /// When export failures quarantine a connector.
    pub quarantine: crate::quarantine::QuarantinePolicy,
}

impl RuleModel {
    /// What happens to a linked target object (`deleting`: the metaverse
    /// object is deleted; else it left the rule's scope), with the target
    /// syms of its disable flows.
    pub fn deprovision_action(&self, deleting: bool) -> (&rules::Deprovision, &[Sym]) {
        let targets = if deleting && self.rule.deprovision_on_delete.is_some() {
            &self.on_delete_disable_targets
        } else {
            &self.disable_targets
        };
        (self.rule.deprovision_action(deleting), targets)
    }
}

/// A rule with its names resolved.
#[derive(Debug)]
pub(crate) struct RuleModel {
    pub rule: Rule,
    pub name: Sym,
    pub conn: Sym,
    pub mv_type: Sym,
    pub cs_type: Option<Sym>,
    /// Flow target syms, parallel to `rule.flows`.
    pub targets: Vec<Sym>,
    /// Join metaverse attribute syms, parallel to `rule.join`.
    pub join_mv: Vec<Sym>,
    /// Disable-flow target syms, parallel to the `Deprovision::Disable` flows
    /// of the rule's `deprovision` (leaving scope).
    pub disable_targets: Vec<Sym>,
    /// The same for its `deprovision_on_delete`.
    pub on_delete_disable_targets: Vec<Sym>,
    /// Outbound: the connectors a generated unique value must be free in
    /// (the rule's own first).
    pub unique_conns: Vec<Sym>,
    /// Outbound: whether a flow (or disable flow) reads `target.name`, so
    /// flows are ordered by what they read.
    pub reads_target: bool,
}

/// A connector with its schema resolved.
#[derive(Debug)]
pub(crate) struct ConnModel {
    pub info: ConnectorInfo,
    /// Declared attributes by object type name, then attribute name (looked
    /// up by `&str` on every attribute read of every flow: no allocation).
    attrs: FxHashMap<String, FxHashMap<String, AttributeSchema>>,
}

impl ConnModel {
    pub fn attribute(&self, object_type: &str, name: &str) -> Option<&AttributeSchema> {
        self.attrs.get(object_type)?.get(name)
    }

    pub fn reference_kind(&self, object_type: &str, name: &str) -> Option<RefKind> {
        self.attribute(object_type, name).and_then(|a| a.reference)
    }

    pub fn anchor_attribute(&self, object_type: &str) -> Option<&str> {
        self.info
            .object_type(object_type)
            .and_then(|t| t.anchor_attribute.as_deref())
    }
}

/// The resolved configuration.
#[derive(Debug)]
pub(crate) struct Model {
    pub conns: BTreeMap<Sym, ConnModel>,
    pub inbound: Vec<RuleModel>,
    pub outbound: Vec<RuleModel>,
    pub deletion: HashMap<Sym, (DeletionRule, Option<Sym>)>,
    pub deletion_threshold: usize,
    pub import_deletion_percent: u32,
    pub retry: crate::retry::RetryPolicy,
    /// The special outbound target naming an object's DN.
    pub dn_sym: Sym,
    /// What sync's outcome depends on in the configuration (the connectors'
    /// schemas, the rules, the deletion rules), hashed: see `sync::basis`.
    pub fingerprint: [u8; 32],
    /// Whether every rule is [`rules::Rule::is_deterministic`].
    pub deterministic: bool,
}

/// The configuration that sync's outcome depends on, hashed, with the
/// program that syncs (another build may sync differently): its version,
/// and its executable's size and modification time, so that a build
/// between releases counts as another program too. The configuration's
/// debug form is stable (expressions print their trees, never addresses);
/// a change of layout alone (spaces in an expression) changes it too,
/// which only costs one full evaluation.
fn fingerprint(config: &EngineConfig) -> [u8; 32] {
    use sha2::Digest;
    let program = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| format!("{} {:?}", m.len(), m.modified().ok()))
        .unwrap_or_default();
    let text = format!(
        "{} {program}\n{:?}\n{:?}\n{:?}",
        env!("CARGO_PKG_VERSION"),
        config.connectors,
        config.rules,
        config.deletion
    );
    sha2::Sha256::digest(text.as_bytes()).into()
}

impl Model {
    pub fn new(config: &EngineConfig, store: &Store) -> Model {
        let conns = config
            .connectors
            .iter()
            .map(|(name, info)| {
                let mut attrs: FxHashMap<String, FxHashMap<String, AttributeSchema>> =
                    FxHashMap::default();
                for t in &info.object_types {
                    let by_name = attrs.entry(t.name.clone()).or_default();
                    for a in &t.attributes {
                        by_name.insert(a.name.clone(), a.clone());
                    }
                }
                (
                    store.intern(name),
                    ConnModel {
                        info: info.clone(),
                        attrs,
                    },
                )
            })
            .collect();
        let mut inbound = Vec::new();
        let mut outbound = Vec::new();
        for rule in &config.rules {
            let disable_targets = |d: Option<&rules::Deprovision>| match d {
                Some(rules::Deprovision::Disable(flows)) => {
                    flows.iter().map(|f| store.intern(&f.target)).collect()
                }
                _ => Vec::new(),
            };
            let model = RuleModel {
                name: store.intern(&rule.name),
                conn: store.intern(&rule.connector),
                mv_type: store.intern(&rule.mv_object_type),
                cs_type: rule.cs_object_type.as_deref().map(|t| store.intern(t)),
                targets: rule.flows.iter().map(|f| store.intern(&f.target)).collect(),
                join_mv: rule.join.iter().map(|j| store.intern(&j.mv)).collect(),
                disable_targets: disable_targets(Some(&rule.deprovision)),
                on_delete_disable_targets: disable_targets(rule.deprovision_on_delete.as_ref()),
                unique_conns: std::iter::once(&rule.connector)
                    .chain(&rule.unique_in)
                    .map(|c| store.intern(c))
                    .collect(),
                reads_target: rule
                    .flows
                    .iter()
                    .chain(match &rule.deprovision {
                        rules::Deprovision::Disable(f) => &f[..],
                        _ => &[],
                    })
                    .chain(match &rule.deprovision_on_delete {
                        Some(rules::Deprovision::Disable(f)) => &f[..],
                        _ => &[],
                    })
                    .any(|f| {
                        f.expr
                            .attributes()
                            .iter()
                            .any(|a| rules::target_attribute(a).is_some())
                    }),
                rule: rule.clone(),
            };
            match rule.direction {
                Direction::Inbound => inbound.push(model),
                Direction::Outbound => outbound.push(model),
            }
        }
        let deletion = config
            .deletion
            .iter()
            .map(|(t, rule)| {
                let source = match rule {
                    DeletionRule::SourceGone(c) => Some(store.intern(c)),
                    _ => None,
                };
                (store.intern(t), (rule.clone(), source))
            })
            .collect();
        Model {
            conns,
            inbound,
            outbound,
            deletion,
            deletion_threshold: config.deletion_threshold,
            import_deletion_percent: config.import_deletion_percent,
            retry: config.retry,
            dn_sym: store.intern("dn"),
            fingerprint: fingerprint(config),
            deterministic: config.rules.iter().all(rules::Rule::is_deterministic),
        }
    }

    /// The metaverse attributes join criteria look up: the join index covers
    /// them. With them, the referrer index's pseudo-attribute when a
    /// connector with DNs has outbound rules: a rename there must reach the
    /// objects that name the renamed one (see [`crate::store::Txn::referrers`]).
    pub fn join_attrs(&self, store: &Store) -> BTreeSet<Sym> {
        let mut attrs: BTreeSet<Sym> = self
            .inbound
            .iter()
            .flat_map(|r| r.join_mv.iter().copied())
            .collect();
        let dn_targets = self
            .outbound
            .iter()
            .any(|r| self.conn(r.conn).is_some_and(|c| c.info.has_dn));
        if dn_targets {
            attrs.insert(store.intern(crate::store::REFERRERS));
        }
        attrs
    }

    /// How references are written for `conn`: as the diff and preview
    /// compare them (`planned`), or as export writes them.
    pub fn ref_form(&self, conn: Sym, planned: bool) -> crate::sync::RefForm {
        use crate::sync::RefForm;
        match self.conn(conn) {
            Some(c) if planned => RefForm::planned(&c.info),
            Some(c) => RefForm::exported(&c.info),
            None => RefForm::Anchor,
        }
    }

    pub fn conn(&self, sym: Sym) -> Option<&ConnModel> {
        self.conns.get(&sym)
    }

    /// Inbound rules of a connector that apply to an object type.
    pub fn inbound_for(&self, conn: Sym, cs_type: Sym) -> impl Iterator<Item = &RuleModel> {
        self.inbound
            .iter()
            .filter(move |r| r.conn == conn && r.cs_type.is_none_or(|t| t == cs_type))
    }

    /// The (connector, attribute) pairs whose values unique-value flows must
    /// avoid: the unique-value index covers them.
    pub fn unique_pairs(&self) -> BTreeSet<(Sym, Sym)> {
        let mut out = BTreeSet::new();
        for r in &self.outbound {
            for (flow, target) in r.rule.flows.iter().zip(&r.targets) {
                if Rule::is_unique_flow(flow) {
                    out.extend(r.unique_conns.iter().map(|c| (*c, *target)));
                }
            }
        }
        out
    }

    /// Connectors with outbound rules for a metaverse type, each with its rules in order.
    pub fn outbound_for(&self, mv_type: Sym) -> BTreeMap<Sym, Vec<&RuleModel>> {
        let mut out: BTreeMap<Sym, Vec<&RuleModel>> = BTreeMap::new();
        for r in self.outbound.iter().filter(|r| r.mv_type == mv_type) {
            out.entry(r.conn).or_default().push(r);
        }
        out
    }

    /// The type outbound values are coerced to before diffing.
    pub fn target_type(&self, conn: Sym, object_type: &str, attr: &str) -> (ValueType, bool) {
        match self.conn(conn).and_then(|c| c.attribute(object_type, attr)) {
            Some(a) if a.reference.is_some() => (ValueType::Reference, a.multi_valued),
            Some(a) => (a.value_type, a.multi_valued),
            None => (ValueType::String, false),
        }
    }
}
