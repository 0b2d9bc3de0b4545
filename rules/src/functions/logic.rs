//! Choosing between values: Coalesce, IIF, Switch, IsPresent, IsNullOrEmpty.

use super::{Args, FnError, FunctionDef};
use crate::expr::ops;
use crate::{Env, Value, ValueType};

pub(super) const COALESCE: FunctionDef = FunctionDef {
    name: "Coalesce",
    returns: None,
    signature: "Coalesce(value1, value2, ...)",
    min_args: 1,
    max_args: None,
    pairs: false,
    summary: "The first argument that is neither null nor an empty string; null when every \
              argument is. A multi-valued argument counts as present and is returned whole.",
    examples: &[
        ("Coalesce(nickname, givenName)", "José"),
        ("Coalesce(preferredName, \"\", null, department)", "Sales"),
        ("Coalesce(null, \"\")", "null"),
        (
            "Coalesce(proxyAddresses, mail)",
            "SMTP:jose.muller@contoso.com; smtp:jm@contoso.com",
        ),
    ],
    eval: coalesce,
    prepare: None,
};

fn coalesce(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    match (0..args.len()).find(|&i| !args.get(i).is_null_or_empty()) {
        Some(i) => Ok(args.take(i)),
        None => Ok(Value::Null),
    }
}

pub(super) const IIF: FunctionDef = FunctionDef {
    name: "IIF",
    returns: None,
    signature: "IIF(condition, then, else)",
    min_args: 3,
    max_args: Some(3),
    pairs: false,
    summary: "`then` when the condition is truthy, `else` otherwise. Null, false, 0, the empty \
              string and the strings \"false\" and \"0\" are false. Both branches are evaluated.",
    examples: &[
        (
            "IIF(userAccountControl == 514, \"disabled\", \"enabled\")",
            "disabled",
        ),
        ("IIF(workerType == \"Contractor\", 514, 512)", "512"),
        ("IIF(missing, \"yes\", null)", "null"),
        ("IIF(\"FALSE\", 1, 2)", "2"),
    ],
    eval: iif,
    prepare: None,
};

fn iif(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let branch = if args.get(0).truthy() { 1 } else { 2 };
    Ok(args.take(branch))
}

pub(super) const SWITCH: FunctionDef = FunctionDef {
    name: "Switch",
    returns: None,
    signature: "Switch(source, default, key1, value1, key2, value2, ...)",
    min_args: 4,
    max_args: None,
    pairs: true,
    summary: "The value paired with the first key equal to `source` (compared as `==` does: \
              case-sensitive, integers equal to numeric strings, null equal to null and to \"\"), \
              or `default` when no key matches.",
    examples: &[
        (
            "Switch(city, \"OU=Users,DC=corp\", \"Dallas\", \"OU=Dallas,DC=corp\", \"Austin\", \"OU=Austin,DC=corp\")",
            "OU=Dallas,DC=corp",
        ),
        ("Switch(department, \"other\", \"sales\", \"lower\", \"Sales\", \"exact\")", "exact"),
        ("Switch(missing, \"default\", null, \"was null\")", "was null"),
        ("Switch(userAccountControl, \"?\", \"512\", \"enabled\", \"514\", \"disabled\")", "disabled"),
        ("Switch(\"x\", null, \"a\", 1)", "null"),
    ],
    eval: switch,
    prepare: None,
};

fn switch(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let source = args.get(0);
    let found = (2..args.len())
        .step_by(2)
        .find(|&key| ops::equals(source, args.get(key)));
    Ok(match found {
        Some(key) => args.take(key + 1),
        None => args.take(1),
    })
}

pub(super) const IS_PRESENT: FunctionDef = FunctionDef {
    name: "IsPresent",
    returns: Some(ValueType::Boolean),
    signature: "IsPresent(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "True when the value is neither null nor an empty string. A string of spaces is \
              present; a multi-valued attribute is present.",
    examples: &[
        ("IsPresent(mail)", "true"),
        ("IsPresent(nickname)", "false"),
        ("IsPresent(missing)", "false"),
        ("IsPresent(\" \")", "true"),
        ("IsPresent(0)", "true"),
    ],
    eval: is_present,
    prepare: None,
};

fn is_present(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::Bool(!args.get(0).is_null_or_empty()))
}

pub(super) const IS_NULL_OR_EMPTY: FunctionDef = FunctionDef {
    name: "IsNullOrEmpty",
    returns: Some(ValueType::Boolean),
    signature: "IsNullOrEmpty(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "True when the value is null or an empty string: the negation of IsPresent.",
    examples: &[
        ("IsNullOrEmpty(nickname)", "true"),
        ("IsNullOrEmpty(missing)", "true"),
        ("IsNullOrEmpty(proxyAddresses)", "false"),
        ("IsNullOrEmpty(false)", "false"),
    ],
    eval: is_null_or_empty,
    prepare: None,
};

fn is_null_or_empty(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(Value::Bool(args.get(0).is_null_or_empty()))
}
