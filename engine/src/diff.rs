//! The one place that turns desired target state into a pending export:
//! desired (from the metaverse and the outbound rules) minus what the target
//! is known to hold (hologram plus escrow). Sync, preview and plan all call it.

use std::collections::{BTreeMap, HashSet};

use rules::{Value, ValueType};

use crate::connector::AttrOp;
use crate::model::{Attrs, Sym};

/// Whether two values mean the same thing to a connected system: equal, or
/// equal in their text form (an exported `512` reimported from a CSV as
/// "512"). Multi-valued attributes are sets: a directory may return members
/// in another order.
pub fn equivalent(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (ai, bi) = (a.items(), b.items());
    if ai.len() != bi.len() {
        return false;
    }
    if ai
        .iter()
        .zip(bi)
        .all(|(x, y)| x == y || x.to_string() == y.to_string())
    {
        return true;
    }
    let texts = |items: &[Value]| {
        let mut t: Vec<String> = items.iter().map(Value::to_string).collect();
        t.sort_unstable();
        t
    };
    ai.len() > 1 && texts(ai) == texts(bi)
}

/// Whether two values of a DN-valued attribute (a reference by DN) name
/// the same DNs: a directory may return a DN it was given with other
/// escapes (`\3B` for `\;`), case or spacing. Called only where
/// [`equivalent`] said no, so that the attributes that did not change
/// cost no schema look-up.
pub fn same_dns(a: &Value, b: &Value) -> bool {
    let (ai, bi) = (a.items(), b.items());
    ai.len() == bi.len() && {
        let keys = |items: &[Value]| {
            let mut k: Vec<String> = items.iter().map(|v| compare_key(v, true)).collect();
            k.sort_unstable();
            k
        };
        keys(ai) == keys(bi)
    }
}

/// The text a value is compared by: its text form, or its normalized DN.
fn compare_key(v: &Value, dn_valued: bool) -> String {
    match v {
        Value::Str(s) if dn_valued => rules::dn::normalize(s),
        other => other.to_string(),
    }
}

/// Converts a flowed value to the target attribute's type; values that do
/// not convert are kept as they are (the connector will reject them on that
/// object, with its own message).
pub fn coerce(value: Value, ty: ValueType, multi: bool) -> Value {
    let one = |v: Value| -> Value {
        match (ty, v) {
            (_, Value::Null) => Value::Null,
            (ValueType::Reference, v @ Value::Ref(_)) => v,
            (ValueType::String, v @ Value::Ref(_)) => v,
            (ValueType::String, Value::Str(s)) => Value::Str(s),
            (ValueType::String, v) => Value::Str(v.to_string()),
            (ValueType::Integer, Value::Str(s)) => {
                s.trim().parse().map_or(Value::Str(s), Value::Int)
            }
            (ValueType::Integer, Value::Bool(b)) => Value::Int(i64::from(b)),
            (ValueType::Boolean, Value::Str(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Value::Bool(true),
                "false" | "0" | "no" => Value::Bool(false),
                _ => Value::Str(s),
            },
            (_, v) => v,
        }
    };
    match value {
        Value::List(items) if multi => Value::list(items.into_iter().map(one)),
        Value::List(items) => {
            // A single-valued target takes the first value of a list.
            items.into_iter().next().map_or(Value::Null, one)
        }
        v if multi => Value::list([one(v)]),
        v => one(v),
    }
}

/// The attribute changes that take `known` to `desired`.
///
/// `desired` holds every flowed attribute, `Null` meaning "must be empty";
/// attributes no flow owns are never touched. `translate` puts a desired
/// value in the connected system's terms for comparison (references to the
/// target's anchor or DN); the change keeps the untranslated value, which
/// export translates again when the referenced object may have been added.
/// Multi-valued attributes change by adding and removing values, so one new
/// member of a large group is one small change.
pub fn diff(
    desired: &BTreeMap<Sym, Value>,
    known: &Attrs,
    multi: &dyn Fn(Sym) -> bool,
    dn_valued: &dyn Fn(Sym) -> bool,
    translate: &dyn Fn(&Value) -> Value,
) -> Vec<(Sym, AttrOp)> {
    let mut changes = Vec::new();
    for (attr, want) in desired {
        let have = known.get(*attr).unwrap_or(&Value::Null);
        let want_t = translate(want);
        if equivalent(&want_t, have) {
            continue;
        }
        let dn = dn_valued(*attr);
        if dn && same_dns(&want_t, have) {
            continue;
        }
        if want.is_null() {
            changes.push((*attr, AttrOp::Clear));
        } else if multi(*attr) && !have.is_null() {
            // Values match by their text form, as `equivalent` compares
            // them; hashed, so a group of 100,000 costs one pass each way.
            let have_texts: HashSet<String> =
                have.items().iter().map(|v| compare_key(v, dn)).collect();
            let wanted: Vec<(&Value, String)> = want
                .items()
                .iter()
                .map(|v| (v, compare_key(&translate(v), dn)))
                .collect();
            let want_texts: HashSet<&str> = wanted.iter().map(|(_, t)| t.as_str()).collect();
            let add: Vec<Value> = wanted
                .iter()
                .filter(|(_, t)| !have_texts.contains(t))
                .map(|(v, _)| (*v).clone())
                .collect();
            let remove: Vec<Value> = have
                .items()
                .iter()
                .filter(|h| !want_texts.contains(compare_key(h, dn).as_str()))
                .cloned()
                .collect();
            if !add.is_empty() {
                changes.push((*attr, AttrOp::Add(add)));
            }
            if !remove.is_empty() {
                changes.push((*attr, AttrOp::Remove(remove)));
            }
        } else {
            changes.push((*attr, AttrOp::Replace(want.clone())));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::from(v)
    }

    fn no_multi(_: Sym) -> bool {
        false
    }

    fn same(v: &Value) -> Value {
        v.clone()
    }

    #[test]
    fn multi_valued_attributes_compare_as_sets() {
        let a = Value::list([s("b"), s("a")]);
        let b = Value::list([s("a"), s("b")]);
        assert!(equivalent(&a, &b));
        assert!(!equivalent(&a, &Value::list([s("a"), s("c")])));
    }

    #[test]
    fn unchanged_values_produce_no_change() {
        let known = Attrs::from_pairs(vec![(Sym(1), s("Ann")), (Sym(2), s("512"))]);
        let desired = BTreeMap::from([(Sym(1), s("Ann")), (Sym(2), Value::Int(512))]);
        assert!(diff(&desired, &known, &no_multi, &no_multi, &same).is_empty());
    }

    #[test]
    fn changed_single_value_is_a_replace_and_null_is_a_clear() {
        let known = Attrs::from_pairs(vec![(Sym(1), s("Ann")), (Sym(2), s("x"))]);
        let desired = BTreeMap::from([
            (Sym(1), s("Anna")),
            (Sym(2), Value::Null),
            (Sym(3), Value::Null),
        ]);
        assert_eq!(
            diff(&desired, &known, &no_multi, &no_multi, &same),
            vec![
                (Sym(1), AttrOp::Replace(s("Anna"))),
                (Sym(2), AttrOp::Clear)
            ]
        );
    }

    #[test]
    fn attributes_without_a_flow_are_never_touched() {
        let known = Attrs::from_pairs(vec![(Sym(9), s("owned by someone else"))]);
        assert!(diff(&BTreeMap::new(), &known, &no_multi, &no_multi, &same).is_empty());
    }

    #[test]
    fn multi_valued_changes_are_adds_and_removes() {
        let known = Attrs::from_pairs(vec![(Sym(1), Value::list([s("a"), s("b"), s("c")]))]);
        let desired = BTreeMap::from([(Sym(1), Value::list([s("a"), s("c"), s("d")]))]);
        assert_eq!(
            diff(&desired, &known, &|_| true, &no_multi, &same),
            vec![
                (Sym(1), AttrOp::Add(vec![s("d")])),
                (Sym(1), AttrOp::Remove(vec![s("b")]))
            ]
        );
    }

    #[test]
    fn references_compare_in_the_targets_terms() {
        let known = Attrs::from_pairs(vec![(Sym(1), s("E100"))]);
        let desired = BTreeMap::from([(Sym(1), Value::Ref(7))]);
        let translate = |v: &Value| match v {
            Value::Ref(7) => s("E100"),
            other => other.clone(),
        };
        assert!(diff(&desired, &known, &no_multi, &no_multi, &translate).is_empty());
    }

    #[test]
    fn dn_valued_attributes_compare_as_dns() {
        let known = Attrs::from_pairs(vec![
            (Sym(1), s("CN=M\\3B x,OU=Staff,DC=corp")),
            (
                Sym(2),
                Value::list([s("cn=a,dc=corp"), s("CN=B\\2C c,DC=corp")]),
            ),
        ]);
        let desired = BTreeMap::from([
            (Sym(1), s("cn=M\\; x, ou=staff,dc=corp")),
            (
                Sym(2),
                Value::list([s("CN=A,DC=corp"), s("cn=b\\, c,dc=corp")]),
            ),
        ]);
        assert!(diff(&desired, &known, &|_| true, &|_| true, &same).is_empty());
        assert_eq!(
            diff(&desired, &known, &|_| true, &no_multi, &same).len(),
            4,
            "as plain text every value differs: an add and a remove each"
        );
    }

    #[test]
    fn coerce_renders_scalars_for_string_targets() {
        assert_eq!(
            coerce(Value::Bool(true), ValueType::String, false),
            s("true")
        );
        assert_eq!(coerce(s("514"), ValueType::Integer, false), Value::Int(514));
        assert_eq!(
            coerce(s("a"), ValueType::String, true),
            Value::list([s("a")])
        );
        assert_eq!(
            coerce(Value::Ref(3), ValueType::String, false),
            Value::Ref(3)
        );
    }
}
