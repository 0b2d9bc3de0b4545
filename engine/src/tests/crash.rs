//! Nothing is lost on a crash: a run profile killed before any one of its
//! store batches, then run again on the reopened store, leaves the target
//! exactly as an uninterrupted run does, creates nothing twice, passes
//! `check`, and a further run exports nothing. Every crash point of the
//! profile is tried, for a joiner wave and for a mover/leaver wave.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rules::Value;

use super::support::{
    connector_info, crashing_store, hr_feed, inbound, object_type, outbound, Harness, RuleBuilder,
    System,
};
use crate::store::MemKv;
use crate::StepKind::{Export, FullImport, FullSync};
use crate::{RefKind, StepKind};

const PROFILE: [(&str, StepKind); 5] = [
    ("hr", FullImport),
    ("hr", FullSync),
    ("target", Export),
    ("target", FullImport),
    ("target", FullSync),
];

/// Reports listed (and synced) before their managers.
const JOINERS: [(&str, &str, Option<&str>); 4] = [
    ("E1", "Ann", Some("E3")),
    ("E2", "Bob", Some("E3")),
    ("E3", "Cy", Some("E4")),
    ("E4", "Di", None),
];

/// Changes made to HR before a run of the profile.
type Wave = fn(&System);

/// The target's objects as (DN, sorted attributes), without their
/// system-assigned anchors, sorted.
type Snapshot = Vec<(Option<String>, Vec<(String, Value)>)>;

fn joiners(hr: &System) {
    for (id, name, manager) in JOINERS {
        let mut attrs = vec![("employeeId", id), ("name", name)];
        attrs.extend(manager.map(|m| ("managerId", m)));
        hr.put("worker", id, &attrs);
    }
}

/// E2 is renamed and moves under E4; E1 leaves.
fn movers_and_leavers(hr: &System) {
    hr.put(
        "worker",
        "E2",
        &[("employeeId", "E2"), ("name", "Bobby"), ("managerId", "E4")],
    );
    hr.remove("E1");
}

/// How the target writes references and names objects.
#[derive(Clone, Copy)]
enum Target {
    /// DNs derived from the name (a move on rename), system-assigned anchors.
    Directory,
    /// Declared anchors, references by anchor, no DNs.
    Table,
}

impl Target {
    fn system(self) -> Arc<System> {
        match self {
            Target::Directory => System::new(
                "target",
                connector_info(object_type("user", None, &[("manager", RefKind::Dn)]), true),
            ),
            Target::Table => System::new(
                "target",
                connector_info(
                    object_type("user", Some("uid"), &[("manager", RefKind::Anchor)]),
                    false,
                ),
            ),
        }
    }

    fn rules(self) -> Vec<RuleBuilder> {
        let hr_in = inbound("hr-in", "hr")
            .project()
            .join("employeeId", "employeeId")
            .flow("employeeId", "employeeId")
            .flow("displayName", "name")
            .flow("manager", "managerId");
        let out = outbound("target-out", "target", "user")
            .flow("displayName", "displayName")
            .flow("manager", "manager");
        let out = match self {
            Target::Directory => out.flow("dn", r#""CN=" + displayName + ",OU=Users""#),
            Target::Table => out.flow("uid", "employeeId"),
        };
        vec![hr_in, out]
    }
}

/// The connected systems, which outlive every crash.
struct World {
    hr: Arc<System>,
    target: Arc<System>,
}

impl World {
    fn new(target: Target) -> World {
        World {
            hr: hr_feed(),
            target: target.system(),
        }
    }

    fn target_objects(&self) -> Snapshot {
        let mut out: Vec<_> = self
            .target
            .state()
            .objects
            .values()
            .map(|o| {
                let mut attrs = o.attributes.clone();
                attrs.sort_by(|a, b| a.0.cmp(&b.0));
                (o.dn.clone(), attrs)
            })
            .collect();
        out.sort();
        out
    }
}

/// Opens the engine on `kv`, to die after `batches` more store batches.
fn boot(
    kv: &Arc<MemKv>,
    batches: usize,
    world: &World,
    target: Target,
) -> Option<(Harness, Arc<std::sync::atomic::AtomicUsize>)> {
    let (store, applied) = crashing_store(kv, batches)?;
    let h = Harness::on_store(store, &[&world.hr, &world.target], target.rules(), 500).ok()?;
    Some((h, applied))
}

/// Runs the profile until a step fails; true when every step succeeded.
fn run_profile(h: &Harness) -> bool {
    h.try_steps(&PROFILE)
}

/// Runs `waves` uninterrupted, except the last, which is killed before its
/// store batch number `crash_at` (counted from its start) and run again.
/// Returns the target's objects and whether the crash point was reached.
fn run_waves(target: Target, waves: &[Wave], crash_at: Option<usize>) -> (Snapshot, usize) {
    let world = World::new(target);
    let kv = Arc::new(MemKv::default());
    let (last, before) = waves.split_last().expect("a wave");
    for wave in before {
        wave(&world.hr);
        let (h, _) = boot(&kv, usize::MAX, &world, target).expect("boot");
        assert!(run_profile(&h));
    }
    last(&world.hr);
    let mut batches = 0;
    if let Some(n) = crash_at {
        if let Some((h, applied)) = boot(&kv, n, &world, target) {
            run_profile(&h);
            batches = applied.load(Ordering::SeqCst);
        }
    }
    let (h, applied) = boot(&kv, usize::MAX, &world, target).expect("reboot");
    assert!(run_profile(&h), "the run after the crash completes");
    if crash_at.is_none() {
        batches = applied.load(Ordering::SeqCst);
    }
    h.assert_consistent();
    let objects = world.target_objects();

    // Converged: one more run sends nothing.
    let sent = world.target.state().exported.len();
    assert!(run_profile(&h));
    assert_eq!(
        world.target.state().exported.len(),
        sent,
        "a further run exported something"
    );
    assert!(h.engine.preview(None).expect("preview").is_empty());
    (objects, batches)
}

fn crash_everywhere(target: Target, waves: &[Wave]) {
    let (expected, batches) = run_waves(target, waves, None);
    assert!(batches > 10, "the profile commits in {batches} batches");
    for n in 0..batches {
        let (objects, _) = run_waves(target, waves, Some(n));
        assert_eq!(objects, expected, "killed before batch {n} of {batches}");
    }
}

#[test]
fn joiners_converge_after_a_crash_at_any_point_with_dns() {
    crash_everywhere(Target::Directory, &[joiners]);
}

#[test]
fn joiners_converge_after_a_crash_at_any_point_with_declared_anchors() {
    crash_everywhere(Target::Table, &[joiners]);
}

#[test]
fn movers_and_leavers_converge_after_a_crash_at_any_point_with_dns() {
    crash_everywhere(Target::Directory, &[joiners, movers_and_leavers]);
}

#[test]
fn movers_and_leavers_converge_after_a_crash_at_any_point_with_declared_anchors() {
    crash_everywhere(Target::Table, &[joiners, movers_and_leavers]);
}
