//! Distinguished names: EscapeDN, ParentDN, RDN.
//!
//! DNs are split at commas that are neither escaped with a backslash (`\,`,
//! and hex escapes like `\2C`) nor inside a quoted value (`CN="a,b"`), by
//! [`crate::dn`], the one DN type.

use super::util::map_text;
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
