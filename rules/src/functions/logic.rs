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
              string and the strings \"false\" and \"0\" are false. Only the branch taken is \
              evaluated (so `Error` or `IgnoreAttributeFlow` there acts only when chosen).",
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
              or `default` when no key matches. Only the value taken is evaluated. Entra \
              Connect's form, condition/value pairs (`Switch([city] = \"Rome\", \"Italian\", True, \
              \"other\")`), is recognised by a first argument that is a condition.",
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

/// Entra Connect's Switch, `Switch(condition1, value1, condition2, value2,
/// …)`: the parser chooses it when the first argument is a condition (a
/// comparison, IsPresent, …), which provisioning's form forbids as its
/// source. Not in the registry: it is written `Switch`.
pub(crate) static SWITCH_CONDITIONS: FunctionDef = FunctionDef {
    name: "Switch",
    returns: None,
    signature: "Switch(condition1, value1, condition2, value2, ...)",
    min_args: 2,
    max_args: None,
    pairs: true,
    summary: "Entra Connect's form: the value after the first condition that holds (only that \
              value is evaluated); null when none holds. `True` as the last condition gives a \
              default.",
    examples: &[(
        "Switch(city == \"Rome\", \"Italian\", True, \"other\")",
        "other",
    )],
    eval: switch_conditions,
    prepare: None,
};

fn switch_conditions(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let found = (0..args.len()).step_by(2).find(|&c| args.get(c).truthy());
    Ok(found.map_or(Value::Null, |c| args.take(c + 1)))
}

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

/// The evaluation-error code of `IgnoreAttributeFlow` (and of
/// `IgnoreFlowIfNullOrEmpty` on an empty value): the engine skips the flow
/// for this object, as if the rule had no flow to that attribute; it never
/// writes null.
pub const IGNORE_ATTRIBUTE_FLOW: &str = "ignore-attribute-flow";

/// The evaluation-error code of `IgnoreObjectFlow`: the engine skips the
/// rule for this object (inbound: it contributes nothing; outbound: nothing
/// is staged or provisioned for it by this sync).
pub const IGNORE_OBJECT_FLOW: &str = "ignore-object-flow";

pub(super) const IGNORE_ATTRIBUTE_FLOW_FN: FunctionDef = FunctionDef {
    name: "IgnoreAttributeFlow",
    returns: None,
    signature: "IgnoreAttributeFlow",
    min_args: 0,
    max_args: Some(0),
    pairs: false,
    summary: "A keyword (written bare or with `()`): the flow it is reached in does not flow \
              for this object, so the attribute keeps its value (another source's, by \
              precedence, or the target's own), never null. Typically the value of an IIF or \
              Switch branch.",
    examples: &[
        (
            "IIF(IsPresent(mail), mail, IgnoreAttributeFlow)",
            "jose.muller@contoso.com",
        ),
        (
            "IIF(IsPresent(missing), missing, IgnoreAttributeFlow)",
            "error: IgnoreAttributeFlow: this flow is skipped for this object",
        ),
    ],
    eval: ignore_attribute_flow,
    prepare: None,
};

fn ignore_attribute_flow(_: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Err(FnError::new(
        IGNORE_ATTRIBUTE_FLOW,
        "IgnoreAttributeFlow: this flow is skipped for this object",
    ))
}

pub(super) const IGNORE_OBJECT_FLOW_FN: FunctionDef = FunctionDef {
    name: "IgnoreObjectFlow",
    returns: None,
    signature: "IgnoreObjectFlow",
    min_args: 0,
    max_args: Some(0),
    pairs: false,
    summary: "A keyword (written bare or with `()`): the rule it is reached in is skipped for \
              this object: an inbound rule contributes nothing, an outbound rule stages nothing \
              and provisions nothing for it in this sync.",
    examples: &[
        (
            "IIF(workerType == \"Employee\", sn, IgnoreObjectFlow)",
            "Müller",
        ),
        (
            "Switch(workerType, IgnoreObjectFlow, \"Contractor\", sn)",
            "error: IgnoreObjectFlow: this rule is skipped for this object",
        ),
    ],
    eval: ignore_object_flow,
    prepare: None,
};

fn ignore_object_flow(_: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Err(FnError::new(
        IGNORE_OBJECT_FLOW,
        "IgnoreObjectFlow: this rule is skipped for this object",
    ))
}

pub(super) const IGNORE_FLOW_IF_NULL_OR_EMPTY: FunctionDef = FunctionDef {
    name: "IgnoreFlowIfNullOrEmpty",
    returns: None,
    signature: "IgnoreFlowIfNullOrEmpty(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The value; when it is null or empty, the flow is skipped for this object (as \
              IgnoreAttributeFlow), so a missing source value never clears the target.",
    examples: &[
        ("IgnoreFlowIfNullOrEmpty(mail)", "jose.muller@contoso.com"),
        ("IgnoreFlowIfNullOrEmpty(nickname)", "error: IgnoreFlowIfNullOrEmpty: the value is empty: this flow is skipped for this object"),
        ("IgnoreFlowIfNullOrEmpty(missing)", "error: IgnoreFlowIfNullOrEmpty: the value is empty: this flow is skipped for this object"),
    ],
    eval: ignore_flow_if_null_or_empty,
    prepare: None,
};

fn ignore_flow_if_null_or_empty(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let value = args.take(0);
    if value.is_null_or_empty() {
        return Err(FnError::new(
            IGNORE_ATTRIBUTE_FLOW,
            "IgnoreFlowIfNullOrEmpty: the value is empty: this flow is skipped for this object",
        ));
    }
    Ok(value)
}

pub(super) const ERROR: FunctionDef = FunctionDef {
    name: "Error",
    returns: None,
    signature: "Error(message)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "Fails the evaluation with the message: an error on the object (code \
              `error-function`), as Entra Connect's Error does. Typically the value of an IIF \
              or Switch branch that must never be taken.",
    examples: &[
        ("IIF(IsPresent(sn), sn, Error(\"no last name\"))", "Müller"),
        (
            "IIF(IsPresent(missing), missing, Error(\"no value for \" & \"missing\"))",
            "error: no value for missing",
        ),
    ],
    eval: error,
    prepare: None,
};

fn error(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Err(FnError::new(
        "error-function",
        super::util::text(args.get(0)).into_owned(),
    ))
}
