//! `export::order` beyond its own unit tests: long chains without stack
//! overflow, long cycles, and a property over random reference graphs.

use std::collections::{BTreeSet, HashMap, HashSet};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::export::{order, Node};

fn add(id: u64, refs: &[u64]) -> Node {
    Node {
        id,
        is_add: true,
        is_delete: false,
        is_rename: false,
        refs: refs.to_vec(),
    }
}

const LONG: u64 = 10_000;

#[test]
fn a_chain_of_ten_thousand_adds_is_ordered_manager_first_without_overflowing_the_stack() {
    // Node i reports to node i - 1; listed from the last report up.
    let nodes: Vec<Node> = (0..LONG)
        .rev()
        .map(|i| add(i, &i.checked_sub(1).into_iter().collect::<Vec<_>>()))
        .collect();
    let (order, split) = order(&nodes);
    assert_eq!(order, (0..LONG).collect::<Vec<_>>());
    assert!(split.is_empty());
}

#[test]
fn a_cycle_of_ten_thousand_adds_is_split_and_each_is_exported_once() {
    let nodes: Vec<Node> = (0..LONG).map(|i| add(i, &[(i + 1) % LONG])).collect();
    let (order, split) = order(&nodes);
    assert_eq!(
        order,
        (0..LONG).collect::<Vec<_>>(),
        "a cycle is exported in id order"
    );
    assert_eq!(split.len(), LONG as usize);
}

#[test]
fn an_update_that_references_an_add_follows_it_and_is_never_split() {
    let update = Node {
        id: 1,
        is_add: false,
        is_delete: false,
        is_rename: false,
        refs: vec![2, 1],
    };
    let (order, split) = order(&[update, add(2, &[])]);
    assert_eq!(order, [2, 1]);
    assert!(split.is_empty());
}

#[test]
fn a_chain_hanging_off_a_cycle_follows_the_cycle_unsplit() {
    // 1 <-> 2 is a cycle; 3 reports to 2, 4 to 3.
    let nodes = vec![add(4, &[3]), add(3, &[2]), add(2, &[1]), add(1, &[2])];
    let (order, split) = order(&nodes);
    assert_eq!(order, [1, 2, 3, 4]);
    assert_eq!(split, HashSet::from([1, 2]));
}

/// Node ids reachable from each node along "is referenced by" edges
/// from an add to the non-deleted nodes that reference it.
fn reachable(nodes: &[Node]) -> HashMap<u64, HashSet<u64>> {
    // Edges run from an add or a rename to the objects that reference it
    // (a rename's self-reference imposes no order).
    let adds: HashSet<u64> = nodes.iter().filter(|n| n.is_add).map(|n| n.id).collect();
    let renames: HashSet<u64> = nodes.iter().filter(|n| n.is_rename).map(|n| n.id).collect();
    let live: Vec<&Node> = nodes.iter().filter(|n| !n.is_delete).collect();
    let mut reach: HashMap<u64, HashSet<u64>> =
        live.iter().map(|n| (n.id, HashSet::new())).collect();
    for n in &live {
        for r in n
            .refs
            .iter()
            .filter(|r| adds.contains(r) || (renames.contains(r) && **r != n.id))
        {
            reach.entry(*r).or_default().insert(n.id);
        }
    }
    // Transitive closure; the graphs are small.
    loop {
        let mut grew = false;
        let snapshot = reach.clone();
        for targets in reach.values_mut() {
            let more: HashSet<u64> = targets
                .iter()
                .flat_map(|t| snapshot[t].iter().copied())
                .collect();
            let before = targets.len();
            targets.extend(more);
            grew |= targets.len() > before;
        }
        if !grew {
            return reach;
        }
    }
}

fn graph() -> impl Strategy<Value = Vec<Node>> {
    (1..14usize)
        .prop_flat_map(|n| vec((0..4u8, vec(0..n as u64, 0..3)), n))
        .prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(id, (kind, refs))| Node {
                    id: id as u64,
                    is_add: kind < 2,
                    is_delete: kind == 3,
                    is_rename: kind == 2,
                    refs,
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(Config {
        cases: 512,
        rng_seed: RngSeed::Fixed(20_261_124),
        failure_persistence: None,
        ..Config::default()
    })]

    /// Every node once; deletes last in id order; an add before everything
    /// that references it, except inside a cycle, whose adds are split.
    #[test]
    fn adds_precede_their_referrers_and_only_cycles_are_split(nodes in graph()) {
        let (order, split) = order(&nodes);
        let ids: BTreeSet<u64> = nodes.iter().map(|n| n.id).collect();
        prop_assert_eq!(order.len(), nodes.len());
        prop_assert_eq!(order.iter().copied().collect::<BTreeSet<_>>(), ids);

        let deletes: Vec<u64> = nodes.iter().filter(|n| n.is_delete).map(|n| n.id).collect();
        prop_assert_eq!(&order[order.len() - deletes.len()..], &deletes[..]);

        let position: HashMap<u64, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let reach = reachable(&nodes);
        let in_cycle = |id: u64| reach.get(&id).is_some_and(|r| r.contains(&id));
        let by_id: HashMap<u64, &Node> = nodes.iter().map(|n| (n.id, n)).collect();
        for n in nodes.iter().filter(|n| !n.is_delete) {
            for r in &n.refs {
                let target = by_id[r];
                if !(target.is_add || target.is_rename) || target.is_delete || *r == n.id {
                    continue;
                }
                let same_cycle = reach[&n.id].contains(r) && reach[r].contains(&n.id);
                prop_assert!(
                    position[r] < position[&n.id] || same_cycle,
                    "{} references add or rename {} but comes first: {:?}", n.id, r, order
                );
            }
            let self_add = n.is_add && n.refs.contains(&n.id);
            prop_assert_eq!(
                split.contains(&n.id),
                n.is_add && (in_cycle(n.id) || self_add),
                "split of {}: {:?}", n.id, split
            );
        }
    }
}
