//! Large groups: a membership change on a group of thousands costs what the
//! change costs. The member list is stored out of line (`store::large`), so
//! neither the source's pending import, its hologram, the metaverse object,
//! the target's pending export nor its escrow rewrites the list; the export
//! is one `Add` or `Remove` of the changed member.

use std::sync::Arc;

use rules::{Value, ValueType};

use std::sync::atomic::{AtomicUsize, Ordering};

use super::support::{crashing_store, inbound, outbound, Harness, RuleBuilder, System};
use crate::connector::{AttributeSchema, ConnectorInfo, ObjectTypeSchema};
use crate::store::{Kv, MemKv};
use crate::StepKind::{self, DeltaImport, DeltaSync, Export, FullImport, FullSync};
use crate::{AttrOp, ExportOp, ImportEvent, RefKind, Store};

/// Members of the test group. The store's out-of-line threshold is lowered
/// to 64 so the group is far past it while the test stays quick.
const MEMBERS: usize = 1_000;

fn types(person: &str, person_anchor: Option<&str>, member: RefKind) -> Vec<ObjectTypeSchema> {
    vec![
        ObjectTypeSchema {
            name: person.into(),
            anchor_attribute: person_anchor.map(str::to_owned),
            attributes: Vec::new(),
        },
        ObjectTypeSchema {
            name: "group".into(),
            anchor_attribute: person_anchor.map(|_| "groupId".to_owned()),
            attributes: vec![AttributeSchema {
                name: "member".into(),
                value_type: ValueType::Reference,
                multi_valued: true,
                reference: Some(member),
            }],
        },
    ]
}

fn info(object_types: Vec<ObjectTypeSchema>, has_dn: bool) -> ConnectorInfo {
    ConnectorInfo {
        object_types,
        delta_import: true,
        export: true,
        has_dn,
        rewrites_dn_references: false,
        export_batch_size: 100,
    }
}

fn person_id(i: usize) -> String {
    format!("E{i:05}")
}

/// The DN the directory gives a provisioned person.
fn person_dn(i: usize) -> String {
    format!("CN={},OU=People,DC=example,DC=com", person_id(i))
}

struct Setup {
    h: Harness,
    hr: Arc<System>,
    ad: Arc<System>,
}

/// HR (people and one group whose members are employee ids) and an empty
/// directory; they outlive every crash.
fn systems() -> (Arc<System>, Arc<System>) {
    let hr = System::new(
        "hr",
        info(types("worker", Some("employeeId"), RefKind::Anchor), false),
    );
    let ad = System::new("ad", info(types("user", None, RefKind::Dn), true));
    for i in 0..MEMBERS {
        let id = person_id(i);
        hr.put("worker", &id, &[("employeeId", &id)]);
    }
    hr.put("group", "G1", &[("groupId", "G1")]);
    set_members(&hr, (0..MEMBERS).collect());
    (hr, ad)
}

/// Sets the HR group's members (worker numbers).
fn set_members(hr: &System, members: Vec<usize>) {
    hr.set_attr(
        "G1",
        "member",
        Value::list(
            members
                .into_iter()
                .map(|i| Value::from(person_id(i).as_str())),
        ),
    );
}

/// People and the group projected into the metaverse and provisioned to
/// the directory (members as DNs).
fn rules() -> Vec<RuleBuilder> {
    vec![
        inbound("hr-people", "hr")
            .cs_type("worker")
            .project()
            .join("employeeId", "employeeId")
            .flow("employeeId", "employeeId"),
        inbound("hr-groups", "hr")
            .cs_type("group")
            .mv_type("group")
            .project()
            .join("groupId", "groupId")
            .flow("groupId", "groupId")
            .flow("member", "member"),
        outbound("ad-people", "ad", "user")
            .flow(
                "dn",
                r#""CN=" + employeeId + ",OU=People,DC=example,DC=com""#,
            )
            .flow("employeeID", "employeeId"),
        outbound("ad-groups", "ad", "group")
            .mv_type("group")
            .flow("dn", r#""CN=" + groupId + ",OU=Groups,DC=example,DC=com""#)
            .flow("member", "member"),
    ]
}

fn setup() -> Setup {
    let (hr, ad) = systems();
    let mut store = Store::memory();
    store.set_large_list_threshold(64).expect("store");
    let h = Harness::on_store(store, &[&hr, &ad], rules(), 500).expect("engine");
    Setup { h, hr, ad }
}

/// Opens the engine on `kv`, to die after `batches` more store batches.
fn boot(
    kv: &Arc<MemKv>,
    batches: usize,
    hr: &Arc<System>,
    ad: &Arc<System>,
) -> Option<(Harness, Arc<AtomicUsize>)> {
    let fresh = kv.is_empty().ok()?;
    let (mut store, applied) = crashing_store(kv, batches)?;
    if fresh {
        store.set_large_list_threshold(64).ok()?;
    }
    let h = Harness::on_store(store, &[hr, ad], rules(), 500).ok()?;
    Some((h, applied))
}

/// The members of the directory's group, as DNs, sorted.
fn ad_members(ad: &System) -> Vec<String> {
    let state = ad.state();
    let group = state
        .objects
        .values()
        .find(|o| o.object_type == "group")
        .expect("the group was provisioned");
    let mut members: Vec<String> = group
        .attributes
        .iter()
        .find(|(n, _)| n == "member")
        .map(|(_, v)| v.items().iter().map(Value::to_string).collect())
        .unwrap_or_default();
    members.sort();
    members
}

/// Runs steps and returns the bytes each wrote to the store.
fn written(h: &Harness, steps: &[(&str, StepKind)]) -> Vec<(String, u64)> {
    steps
        .iter()
        .map(|(conn, step)| {
            let run = h.run(conn, *step);
            assert!(
                h.errors(&run).is_empty(),
                "{conn} {}: {:?}",
                step.name(),
                h.errors(&run)
            );
            (format!("{conn} {}", step.name()), run.written.bytes)
        })
        .collect()
}

/// The bytes of the member list as DNs: what rewriting it once would cost at least.
fn list_bytes() -> u64 {
    (0..MEMBERS).map(|i| person_dn(i).len() as u64).sum()
}

/// Import and sync HR, export to the directory and confirm by importing it back.
const FULL_CYCLE: [(&str, StepKind); 5] = [
    ("hr", FullImport),
    ("hr", FullSync),
    ("ad", Export),
    ("ad", FullImport),
    ("ad", FullSync),
];

/// The same with a delta import and delta syncs.
const CYCLE: [(&str, StepKind); 5] = [
    ("hr", DeltaImport),
    ("hr", DeltaSync),
    ("ad", Export),
    ("ad", FullImport),
    ("ad", DeltaSync),
];

#[test]
fn one_member_added_to_a_large_group_writes_the_change_not_the_list() {
    let Setup { h, hr, ad } = setup();
    written(&h, &FULL_CYCLE);
    let mut expected: Vec<String> = (0..MEMBERS).map(person_dn).collect();
    expected.sort();
    assert_eq!(ad_members(&ad), expected);

    // One existing person joins the group: a delta import of one value.
    let newcomer = MEMBERS - 1;
    hr.set_attr(
        "G1",
        "member",
        Value::list(
            (0..MEMBERS)
                .filter(|i| *i != newcomer)
                .map(|i| Value::from(person_id(i).as_str())),
        ),
    );
    written(&h, &FULL_CYCLE);
    hr.set_attr(
        "G1",
        "member",
        Value::list((0..MEMBERS).map(|i| Value::from(person_id(i).as_str()))),
    );
    hr.state().delta.push(ImportEvent::Partial {
        anchor: "G1".into(),
        object_type: "group".into(),
        dn: None,
        changes: vec![(
            "member".into(),
            AttrOp::Add(vec![Value::from(person_id(newcomer).as_str())]),
        )],
    });
    let exported_before = ad.state().exported.len();
    let costs = written(&h, &CYCLE);

    let exported = ad.state().exported[exported_before..].to_vec();
    assert_eq!(exported.len(), 1, "one change exported: {exported:?}");
    match &exported[0].op {
        ExportOp::Update {
            changes,
            new_dn: None,
        } => assert_eq!(
            changes,
            &vec![(
                "member".to_string(),
                AttrOp::Add(vec![Value::from(person_dn(newcomer).as_str())])
            )]
        ),
        other => panic!("expected one member added, got {other:?}"),
    }
    assert_eq!(ad_members(&ad), expected);
    for (step, bytes) in &costs {
        assert!(
            *bytes < list_bytes() / 10,
            "{step} wrote {bytes} bytes for one member of a {}-byte list: {costs:?}",
            list_bytes()
        );
    }
    h.assert_consistent();
}

#[test]
fn one_member_removed_from_a_large_group_writes_the_change_not_the_list() {
    let Setup { h, hr, ad } = setup();
    written(&h, &FULL_CYCLE);
    let leaver = 17;
    hr.set_attr(
        "G1",
        "member",
        Value::list(
            (0..MEMBERS)
                .filter(|i| *i != leaver)
                .map(|i| Value::from(person_id(i).as_str())),
        ),
    );
    // A full import sees the whole list again; only its difference is stored.
    let costs = written(&h, &FULL_CYCLE);
    let mut expected: Vec<String> = (0..MEMBERS)
        .filter(|i| *i != leaver)
        .map(person_dn)
        .collect();
    expected.sort();
    assert_eq!(ad_members(&ad), expected);
    let last = ad.state().exported.last().cloned().expect("an export");
    assert_eq!(
        last.op,
        ExportOp::Update {
            new_dn: None,
            changes: vec![(
                "member".into(),
                AttrOp::Remove(vec![Value::from(person_dn(leaver).as_str())])
            )],
        }
    );
    for (step, bytes) in &costs {
        assert!(
            *bytes < list_bytes() / 10,
            "{step} wrote {bytes} bytes: {costs:?}"
        );
    }
    // A full import of the unchanged list stages nothing, whatever order it comes in.
    let mut reversed: Vec<Value> = (0..MEMBERS)
        .filter(|i| *i != leaver)
        .map(|i| Value::from(person_id(i).as_str()))
        .collect();
    reversed.reverse();
    hr.set_attr("G1", "member", Value::list(reversed));
    let run = h.run("hr", FullImport);
    assert_eq!(
        run.counters.import_updates, 0,
        "a reordered list is the same set"
    );
    h.assert_consistent();
}

/// Provisions the group, changes its members, and runs the cycle again,
/// killed before its store batch `crash_at` and then rerun. Returns the
/// directory's members and how many batches the change's cycle took.
fn change_with_crash(crash_at: Option<usize>) -> (Vec<String>, usize) {
    let (hr, ad) = systems();
    let kv = Arc::new(MemKv::default());
    let (h, _) = boot(&kv, usize::MAX, &hr, &ad).expect("boot");
    assert!(h.try_steps(&FULL_CYCLE));
    drop(h);
    set_members(&hr, (0..MEMBERS).filter(|i| *i != 17).collect());
    let mut batches = 0;
    if let Some(n) = crash_at {
        if let Some((h, applied)) = boot(&kv, n, &hr, &ad) {
            h.try_steps(&FULL_CYCLE);
            batches = applied.load(Ordering::SeqCst);
        }
    }
    let (h, applied) = boot(&kv, usize::MAX, &hr, &ad).expect("reboot");
    assert!(
        h.try_steps(&FULL_CYCLE),
        "the run after the crash completes"
    );
    if crash_at.is_none() {
        batches = applied.load(Ordering::SeqCst);
    }
    h.assert_consistent();
    (ad_members(&ad), batches)
}

#[test]
fn a_membership_change_killed_at_any_store_batch_converges() {
    let (expected, batches) = change_with_crash(None);
    assert_eq!(expected.len(), MEMBERS - 1);
    assert!(
        batches > 5,
        "the cycle commits in several batches: {batches}"
    );
    for crash_at in 0..batches {
        let (members, reached) = change_with_crash(Some(crash_at));
        assert_eq!(reached, crash_at, "the crash came before batch {crash_at}");
        assert_eq!(members, expected, "killed before batch {crash_at}");
    }
}

#[test]
fn check_names_the_objects_of_stray_out_of_line_values() {
    let store = Store::memory();
    let mut txn = store.begin();
    let gone = crate::model::CsKey {
        conn: store.intern("ad"),
        id: 42,
    };
    let mut key = crate::store::keys::cs_keyed(crate::store::keys::tag::LARGE_CS, gone);
    key.extend_from_slice(&[0, 0, 0, 0, 1, b'+', 0]);
    txn.put_raw(key, Vec::new());
    store.commit(txn).expect("commit");
    assert_eq!(
        crate::check::check(&store).expect("check runs"),
        ["out-of-line attribute values of objects that are not stored: cs:42"]
    );
}
