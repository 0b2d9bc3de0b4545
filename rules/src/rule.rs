//! Sync rules in their compiled form: what the engine evaluates.
//!
//! The TOML shape lives with the CLI's config loader, which compiles it into
//! these types once, reporting every expression error with its file position.

use crate::{Env, EvalError, Expr};

/// How an outbound flow reads the target object's own value: `target.name`
/// (or `[target.name]`) is the value the flow to `name` computed earlier in
/// the same evaluation, else the value the target object holds.
pub const TARGET_PREFIX: &str = "target.";

/// The target attribute an attribute name reads, when it is `target.name`.
pub fn target_attribute(name: &str) -> Option<&str> {
    name.strip_prefix(TARGET_PREFIX).filter(|n| !n.is_empty())
}

/// Which way a rule moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Connector space → metaverse: scoping, join, projection, import flows.
    Inbound,
    /// Metaverse → connector space: provisioning, export flows, deprovisioning.
    Outbound,
}

/// One join criterion: the connector-space expression must equal the
/// metaverse attribute.
#[derive(Debug, Clone)]
pub struct JoinCriterion {
    /// Evaluated against the connector-space object.
    pub cs: Expr,
    /// The metaverse attribute it is compared with (indexed by the store).
    pub mv: String,
}

/// What a flow's null means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NullHandling {
    /// A null yields to the next source in precedence (the default).
    #[default]
    Yield,
    /// A null from this source is authoritative and clears the value.
    Authoritative,
}

/// One attribute flow: `target = expr`.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The attribute written: a metaverse attribute (inbound) or a
    /// connector-space attribute (outbound; `dn` names the object's DN).
    pub target: String,
    /// The expression computing it.
    pub expr: Expr,
    /// Outbound only: applied when the object is provisioned, never after.
    pub initial_only: bool,
    /// Inbound only: whether a null is authoritative.
    pub nulls: NullHandling,
}

/// What happens to a provisioned object when its metaverse object leaves the
/// rule's scope ([`Rule::deprovision`]) or is deleted
/// ([`Rule::deprovision_on_delete`]).
#[derive(Debug, Clone, Default)]
pub enum Deprovision {
    /// Delete the object in the connected system.
    #[default]
    Delete,
    /// Unlink it and leave it alone in the connected system.
    Disconnect,
    /// Keep it linked and apply these flows (a disabled state, a move).
    Disable(Vec<Flow>),
    /// Keep it linked and as it is: the rule stops writing to it (a source
    /// of authority moved elsewhere). Nothing is exported.
    Keep,
}

/// When an outbound rule creates a target object for a metaverse object in
/// its scope that has none in the connector.
#[derive(Debug, Clone, Default)]
pub enum Provision {
    /// Never: the rule only flows to objects that are already linked.
    #[default]
    Never,
    /// Always.
    Always,
    /// Only while this holds (`Status == "Active"`). Once the object is
    /// linked, the rule's flows apply whenever it is in scope.
    When(Expr),
}

/// A compiled sync rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name, used in lineage and history.
    pub name: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The connector it applies to.
    pub connector: String,
    /// The connector-space object type; `None` matches every type.
    pub cs_object_type: Option<String>,
    /// The metaverse object type.
    pub mv_object_type: String,
    /// Inbound precedence: lower wins.
    pub precedence: i64,
    /// Scoping filter; `None` means everything is in scope.
    pub scope: Option<Expr>,
    /// Inbound: ordered join criteria.
    pub join: Vec<JoinCriterion>,
    /// Inbound: create a metaverse object when nothing joins.
    pub project: bool,
    /// Attribute flows, in configuration order.
    pub flows: Vec<Flow>,
    /// Outbound: when to create a connector-space object when none is linked.
    pub provision: Provision,
    /// Outbound: what leaving scope does.
    pub deprovision: Deprovision,
    /// Outbound: what the metaverse object's deletion (its source is gone)
    /// does; `None`: the same as [`Rule::deprovision`].
    pub deprovision_on_delete: Option<Deprovision>,
    /// Outbound: an object that leaves scope is disconnected, never deleted
    /// (Entra provisioning's `SkipOutOfScopeDeletions`).
    pub skip_out_of_scope_deletions: bool,
    /// Outbound: further connectors whose objects must not hold a value that
    /// `SelectUniqueValue`/`UniqueNumbered` picks (forest-wide uniqueness).
    pub unique_in: Vec<String>,
}

impl Rule {
    /// Whether the object seen through `env` is in this rule's scope.
    pub fn in_scope(&self, env: &dyn Env) -> Result<bool, EvalError> {
        match &self.scope {
            None => Ok(true),
            Some(expr) => Ok(expr.eval(env)?.truthy()),
        }
    }

    /// Whether the rule ever provisions.
    pub fn provisions(&self) -> bool {
        !matches!(self.provision, Provision::Never)
    }

    /// Whether the rule creates a target object for the object seen through
    /// `env` (which the caller has found in scope).
    pub fn provisions_for(&self, env: &dyn Env) -> Result<bool, EvalError> {
        match &self.provision {
            Provision::Never => Ok(false),
            Provision::Always => Ok(true),
            Provision::When(expr) => Ok(expr.eval(env)?.truthy()),
        }
    }

    /// What happens to a linked target object: `deleting` when the
    /// metaverse object is deleted, else when it left the rule's scope.
    pub fn deprovision_action(&self, deleting: bool) -> &Deprovision {
        match (&self.deprovision_on_delete, deleting) {
            (Some(on_delete), true) => on_delete,
            _ => &self.deprovision,
        }
    }

    /// Whether a flow generates a unique value (its value is chosen once, at
    /// provisioning, and never regenerated).
    pub fn is_unique_flow(flow: &Flow) -> bool {
        flow.expr.generates()
    }

    /// Whether the rule's outcome depends on its inputs alone: no expression
    /// reads the clock (`Now`), and `Guid` appears only in flows, where its
    /// value is chosen once, at provisioning.
    pub fn is_deterministic(&self) -> bool {
        fn disable(d: Option<&Deprovision>) -> &[Flow] {
            match d {
                Some(Deprovision::Disable(flows)) => flows,
                _ => &[],
            }
        }
        let mut flows = self
            .flows
            .iter()
            .chain(disable(Some(&self.deprovision)))
            .chain(disable(self.deprovision_on_delete.as_ref()));
        let provision = match &self.provision {
            Provision::When(e) => Some(e),
            _ => None,
        };
        let mut conditions = self
            .scope
            .iter()
            .chain(self.join.iter().map(|j| &j.cs))
            .chain(provision);
        flows.all(|f| !f.expr.calls("Now"))
            && conditions.all(|e| !e.calls("Now") && !e.calls("Guid"))
    }

    /// Whether the rule applies to connector-space objects of `object_type`.
    pub fn matches_cs_type(&self, object_type: &str) -> bool {
        self.cs_object_type
            .as_deref()
            .is_none_or(|t| t == object_type)
    }
}

/// Flows that read one another's results through `target.name` cannot be
/// ordered: these flows (indexes into the list given to [`order_flows`])
/// form a cycle, in reading order (each reads the next, the last the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowCycle(pub Vec<usize>);

/// The order to evaluate outbound flows in, given in precedence order: a
/// flow reading `target.x` after every flow to `x` (not counting itself:
/// a flow reading its own target reads the value the object holds), and
/// flows to the same target in their given order, so the first still wins
/// it. Otherwise the given order is kept.
pub fn order_flows(flows: &[&Flow]) -> Result<Vec<usize>, FlowCycle> {
    let n = flows.len();
    // deps[i]: the flows that must be evaluated before flow i.
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, f) in flows.iter().enumerate() {
        for name in f.expr.attributes() {
            if let Some(t) = target_attribute(name) {
                deps[i].extend((0..n).filter(|&j| j != i && flows[j].target == t));
            }
        }
        deps[i].extend((0..i).filter(|&j| flows[j].target == f.target));
    }
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let next = (0..n).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d]));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => return Err(FlowCycle(cycle(&deps, &done))),
        }
    }
    Ok(order)
}

/// A cycle among the flows not `done` (each of which waits for another).
fn cycle(deps: &[Vec<usize>], done: &[bool]) -> Vec<usize> {
    let waiting = |i: usize| deps[i].iter().copied().find(|&d| !done[d]);
    let Some(start) = (0..deps.len()).find(|&i| !done[i]) else {
        return Vec::new();
    };
    // Walk "waits for" edges until a flow repeats: from there it is a cycle.
    let mut path = vec![start];
    let mut at = start;
    while let Some(next) = waiting(at) {
        if let Some(pos) = path.iter().position(|&p| p == next) {
            return path.split_off(pos);
        }
        path.push(next);
        at = next;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(target: &str, expr: &str) -> Flow {
        Flow {
            target: target.into(),
            expr: Expr::parse(expr).expect("parses"),
            initial_only: false,
            nulls: NullHandling::Yield,
        }
    }

    #[test]
    fn a_flow_reading_another_target_comes_after_it() {
        let f = [
            flow("upn", r#"target.sam + "@corp.example""#),
            flow("sam", "UniqueNumbered(givenName, 20)"),
            flow("mail", "mail"),
        ];
        let refs: Vec<&Flow> = f.iter().collect();
        assert_eq!(order_flows(&refs), Ok(vec![1, 0, 2]));
    }

    #[test]
    fn the_first_flow_to_a_target_still_wins_it() {
        let f = [
            flow("upn", "target.sam"),
            flow("upn", r#""fallback""#),
            flow("sam", "x"),
        ];
        let refs: Vec<&Flow> = f.iter().collect();
        assert_eq!(order_flows(&refs), Ok(vec![2, 0, 1]));
    }

    #[test]
    fn a_flow_reading_its_own_target_reads_the_held_value() {
        let f = [flow("n", "target.n + 1")];
        let refs: Vec<&Flow> = f.iter().collect();
        assert_eq!(order_flows(&refs), Ok(vec![0]));
    }

    #[test]
    fn flows_reading_each_other_are_a_cycle() {
        let f = [
            flow("mail", "x"),
            flow("a", "target.b"),
            flow("b", "[target.a]"),
        ];
        let refs: Vec<&Flow> = f.iter().collect();
        assert_eq!(order_flows(&refs), Err(FlowCycle(vec![1, 2])));
    }
    fn rule(flows: Vec<Flow>) -> Rule {
        Rule {
            name: "r".into(),
            direction: Direction::Outbound,
            connector: "ad".into(),
            cs_object_type: None,
            mv_object_type: "person".into(),
            precedence: 0,
            scope: None,
            join: Vec::new(),
            project: false,
            flows,
            provision: Provision::Always,
            deprovision: Deprovision::Delete,
            deprovision_on_delete: None,
            skip_out_of_scope_deletions: false,
            unique_in: Vec::new(),
        }
    }

    #[test]
    fn a_rule_is_deterministic_unless_it_reads_the_clock_or_draws_a_guid_outside_a_flow() {
        let plain = rule(vec![flow("id", "Guid()"), flow("mail", "Lower(mail)")]);
        assert!(plain.is_deterministic(), "Guid in a flow is chosen once");

        let clock = rule(vec![flow("stamp", r#"FormatDateTime(Now(), "yyyy")"#)]);
        assert!(!clock.is_deterministic());

        let mut scoped = rule(vec![]);
        scoped.scope = Some(Expr::parse(r#"DateDiff("d", hireDate, Now()) > 0"#).expect("parses"));
        assert!(!scoped.is_deterministic());

        let mut drawn = rule(vec![]);
        drawn.provision = Provision::When(Expr::parse(r#"Guid() != "x""#).expect("parses"));
        assert!(!drawn.is_deterministic());

        let mut disabled = rule(vec![]);
        disabled.deprovision_on_delete =
            Some(Deprovision::Disable(vec![flow("disabledAt", "Now()")]));
        assert!(!disabled.is_deterministic());
    }
}
