//! Distinguished names: EscapeDN (and Entra Connect's EscapeDNComponent),
//! ParentDN, RDN, DNComponent, DNComponentRev.
//!
//! DNs are split at commas that are neither escaped with a backslash (`\,`,
//! and hex escapes like `\2C`) nor inside a quoted value (`CN="a,b"`), by
//! [`crate::dn`], the one DN type.

use super::util::{int_arg, map_text};
use super::{Args, FnError, FunctionDef};
use crate::dn::first_separator;
use crate::{Env, Value, ValueType};

pub(super) const ESCAPE_DN: FunctionDef = FunctionDef {
    name: "EscapeDN",
    returns: Some(ValueType::String),
    signature: "EscapeDN(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value escaped for use as an RDN value (RFC 4514): a backslash before \
              `, + \" \\ < > ; =`, before a leading `#` or space and a trailing space, and NUL \
              as `\\00`. Elementwise; null stays null.",
    examples: &[
        ("\"CN=\" + EscapeDN(displayName)", "CN=Müller\\, José"),
        ("EscapeDN(\"#1 a+b \")", "\\#1 a\\+b\\ "),
        (
            "EscapeDN(\" <x>;y=\\\"z\\\"\\\\\")",
            "\\ \\<x\\>\\;y\\=\\\"z\\\"\\\\",
        ),
        ("EscapeDN(\"a#b\")", "a#b"),
        ("EscapeDN(missing)", "null"),
    ],
    eval: escape_dn,
    prepare: None,
};

fn escape_dn(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |s| {
        Ok(Value::Str(crate::dn::escape_value(&s)))
    })
}

pub(super) const PARENT_DN: FunctionDef = FunctionDef {
    name: "ParentDN",
    returns: Some(ValueType::String),
    signature: "ParentDN(dn)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The DN without its first RDN (the container an object sits in), respecting \
              escaped and quoted commas. Null for a DN with a single RDN. Elementwise; null \
              stays null.",
    examples: &[
        (
            "ParentDN(\"CN=Müller\\\\, José,OU=Users,DC=corp\")",
            "OU=Users,DC=corp",
        ),
        ("ParentDN(\"CN=x, OU=Users\")", "OU=Users"),
        ("ParentDN(\"DC=corp\")", "null"),
        ("ParentDN(missing)", "null"),
    ],
    eval: parent_dn,
    prepare: None,
};

fn parent_dn(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |dn| {
        Ok(match first_separator(&dn) {
            Some(i) => {
                let parent = dn[i + 1..].trim_start();
                if parent.is_empty() {
                    Value::Null
                } else {
                    Value::from(parent)
                }
            }
            None => Value::Null,
        })
    })
}

pub(super) const RDN: FunctionDef = FunctionDef {
    name: "RDN",
    returns: Some(ValueType::String),
    signature: "RDN(dn)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The first RDN of a DN (`CN=…`), escapes kept, respecting escaped and quoted \
              commas. Elementwise; null and the empty DN give null.",
    examples: &[
        (
            "RDN(\"CN=Müller\\\\, José,OU=Users,DC=corp\")",
            "CN=Müller\\, José",
        ),
        ("RDN(\"CN=\\\"a,b\\\",DC=corp\")", "CN=\"a,b\""),
        ("RDN(\"DC=corp\")", "DC=corp"),
        ("RDN(\"\")", "null"),
    ],
    eval: rdn,
    prepare: None,
};

fn rdn(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    map_text(args.take(0), |mut dn| {
        if let Some(i) = first_separator(&dn) {
            dn.truncate(i);
        }
        let trimmed = dn.trim_end();
        Ok(if trimmed.is_empty() {
            Value::Null
        } else if trimmed.len() == dn.len() {
            Value::Str(dn)
        } else {
            Value::from(trimmed)
        })
    })
}

pub(super) const ESCAPE_DN_COMPONENT: FunctionDef = FunctionDef {
    name: "EscapeDNComponent",
    returns: Some(ValueType::String),
    signature: "EscapeDNComponent(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Entra Connect's name for EscapeDN: the value escaped for use as an RDN value \
              (RFC 4514). Elementwise; null stays null.",
    examples: &[
        (
            "\"CN=\" & EscapeDNComponent(displayName) & \",OU=Users\"",
            "CN=Müller\\, José,OU=Users",
        ),
        ("EscapeDNComponent(missing)", "null"),
    ],
    eval: escape_dn,
    prepare: None,
};

/// The value of the `n`th RDN (1-based) counted from the left, or from the
/// right without `DC=` components when asked.
fn component(
    dn: &str,
    n: i64,
    from_right: bool,
    skip_dc: bool,
    name: &str,
) -> Result<Value, FnError> {
    let parsed =
        crate::dn::Dn::parse(dn).map_err(|e| FnError::bad_argument(format!("{name}: {e}")))?;
    let mut values: Vec<&str> = parsed
        .rdns()
        .iter()
        .filter_map(|rdn| rdn.avas().first())
        .filter(|ava| !(skip_dc && ava.attr.eq_ignore_ascii_case("dc")))
        .map(|ava| ava.value.as_str())
        .collect();
    if from_right {
        values.reverse();
    }
    let index = n.checked_sub(1).and_then(|i| usize::try_from(i).ok());
    Ok(index
        .and_then(|i| values.get(i))
        .map_or(Value::Null, |v| Value::str(*v)))
}

pub(super) const DN_COMPONENT: FunctionDef = FunctionDef {
    name: "DNComponent",
    returns: Some(ValueType::String),
    signature: "DNComponent(dn, componentNumber)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "The value (without its attribute type, unescaped) of the DN's RDN number \
              `componentNumber`, counted from the left from 1. Null past the end. Elementwise; \
              null stays null.",
    examples: &[
        (
            "DNComponent(\"cn=Joe,ou=Atlanta,ou=GA,ou=US,dc=contoso,dc=com\", 1)",
            "Joe",
        ),
        (
            "DNComponent(\"CN=Müller\\\\, José,OU=Users\", 1)",
            "Müller, José",
        ),
        ("DNComponent(\"CN=a,OU=b\", 5)", "null"),
        ("DNComponent(missing, 1)", "null"),
    ],
    eval: dn_component,
    prepare: None,
};

fn dn_component(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let n = int_arg(args.get(1), "DNComponent", "componentNumber")?;
    map_text(args.take(0), |dn| {
        component(&dn, n, false, false, "DNComponent")
    })
}

pub(super) const DN_COMPONENT_REV: FunctionDef = FunctionDef {
    name: "DNComponentRev",
    returns: Some(ValueType::String),
    signature: "DNComponentRev(dn, componentNumber, [options])",
    min_args: 2,
    max_args: Some(3),
    pairs: false,
    summary: "The value of the DN's RDN number `componentNumber`, counted from the right from \
              1; with the option \"DC\", `DC=` components are not counted. Null past the end. \
              Elementwise; null stays null.",
    examples: &[
        (
            "DNComponentRev(\"cn=Joe,ou=Atlanta,ou=GA,ou=US,dc=contoso,dc=com\", 3)",
            "US",
        ),
        (
            "DNComponentRev(\"cn=Joe,ou=Atlanta,ou=GA,ou=US,dc=contoso,dc=com\", 1, \"DC\")",
            "US",
        ),
        (
            "DNComponentRev(\"cn=Joe,ou=Atlanta\", 1, \"X\")",
            "error: DNComponentRev: unknown option \"X\" (expected \"DC\")",
        ),
        ("DNComponentRev(missing, 1)", "null"),
    ],
    eval: dn_component_rev,
    prepare: None,
};

fn dn_component_rev(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let n = int_arg(args.get(1), "DNComponentRev", "componentNumber")?;
    let skip_dc = match args.get(2) {
        Value::Null => false,
        v if crate::functions::util::text(v).eq_ignore_ascii_case("dc") => true,
        v => {
            return Err(FnError::bad_argument(format!(
                "DNComponentRev: unknown option \"{}\" (expected \"DC\")",
                crate::functions::util::text(v)
            )))
        }
    };
    map_text(args.take(0), |dn| {
        component(&dn, n, true, skip_dc, "DNComponentRev")
    })
}

#[cfg(test)]
mod tests {
    use crate::dn::escape_value;
    use crate::functions::tests::eval_str as eval;

    #[test]
    fn escaping_follows_rfc_4514() {
        assert_eq!(escape_value(""), "");
        assert_eq!(escape_value(" "), "\\ ");
        assert_eq!(escape_value("  "), "\\ \\ ");
        assert_eq!(escape_value("Zoë, é "), "Zoë\\, é\\ ");
        assert_eq!(escape_value("x#"), "x#");
    }

    #[test]
    fn dn_functions_are_elementwise() {
        assert_eq!(
            eval("ParentDN(Split(\"CN=a,OU=x;CN=b,OU=y\", \";\"))"),
            "OU=x; OU=y"
        );
        assert_eq!(
            eval("RDN(Split(\"CN=a,OU=x;CN=b,OU=y\", \";\"))"),
            "CN=a; CN=b"
        );
        assert_eq!(eval("ParentDN(\"CN=a,\")"), "null");
        assert_eq!(eval("RDN(\"CN=a ,DC=x\")"), "CN=a");
        assert_eq!(eval("ParentDN(RDN(\"CN=a,DC=x\"))"), "null");
        assert_eq!(eval("EscapeDN(Split(\"a,b\", \";\"))"), "a\\,b");
    }
}
