//! Multi-valued attributes: Count, Item, ItemOrNull, First,
//! RemoveDuplicates. (Split, Join and Contains live with the string
//! functions.)

use super::util::int_arg;
use super::{Args, FnError, FunctionDef};
use crate::{Env, Value, ValueType};

pub(super) const COUNT: FunctionDef = FunctionDef {
    name: "Count",
    returns: Some(ValueType::Integer),
    signature: "Count(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The number of values: the items of a multi-valued attribute, 1 for a single \
              value (even an empty string), 0 for null.",
    examples: &[
        ("Count(proxyAddresses)", "2"),
        ("Count(mail)", "1"),
        ("Count(missing)", "0"),
    ],
    eval: count,
    prepare: None,
};

fn count(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let n = args.get(0).items().len();
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

pub(super) const ITEM: FunctionDef = FunctionDef {
    name: "Item",
    returns: None,
    signature: "Item(value, index)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "Item `index` (1-based) of a multi-valued attribute, in stored order; a single \
              value is its own item 1. Null past the end; an index below 1 is an error.",
    examples: &[
        ("Item(proxyAddresses, 2)", "smtp:jm@contoso.com"),
        ("Item(proxyAddresses, 3)", "null"),
        ("Item(mail, 1)", "jose.muller@contoso.com"),
        (
            "Item(proxyAddresses, 0)",
            "error: Item: index is 1-based and must be at least 1, found 0",
        ),
    ],
    eval: item,
    prepare: None,
};

fn item(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let index = int_arg(args.get(1), "Item", "index")?;
    let Some(position) = usize::try_from(index).ok().and_then(|i| i.checked_sub(1)) else {
        return Err(FnError::bad_argument(format!(
            "Item: index is 1-based and must be at least 1, found {index}"
        )));
    };
    Ok(nth(args.take(0), position))
}

/// Item `position` (0-based) of a value, moved out without copying.
fn nth(value: Value, position: usize) -> Value {
    match value {
        Value::List(items) => items.into_iter().nth(position).unwrap_or(Value::Null),
        single if position == 0 => single,
        _ => Value::Null,
    }
}

pub(super) const FIRST: FunctionDef = FunctionDef {
    name: "First",
    returns: None,
    signature: "First(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The first item of a multi-valued attribute; a single value as it is; null for null.",
    examples: &[
        ("First(proxyAddresses)", "SMTP:jose.muller@contoso.com"),
        ("First(givenName)", "José"),
        ("First(missing)", "null"),
    ],
    eval: first,
    prepare: None,
};

fn first(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(nth(args.take(0), 0))
}

pub(super) const ITEM_OR_NULL: FunctionDef = FunctionDef {
    name: "ItemOrNull",
    returns: None,
    signature: "ItemOrNull(value, index)",
    min_args: 2,
    max_args: Some(2),
    pairs: false,
    summary: "Item `index` (1-based) of a multi-valued attribute, or null when there is no such \
              item (any index, as Entra Connect documents; Item refuses an index below 1).",
    examples: &[
        (
            "ItemOrNull(proxyAddresses, 1)",
            "SMTP:jose.muller@contoso.com",
        ),
        ("ItemOrNull(proxyAddresses, 0)", "null"),
        ("ItemOrNull(proxyAddresses, 9)", "null"),
        ("ItemOrNull(missing, 1)", "null"),
    ],
    eval: item_or_null,
    prepare: None,
};

fn item_or_null(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    let index = int_arg(args.get(1), "ItemOrNull", "index")?;
    Ok(
        match usize::try_from(index).ok().and_then(|i| i.checked_sub(1)) {
            Some(position) => nth(args.take(0), position),
            None => Value::Null,
        },
    )
}

pub(super) const REMOVE_DUPLICATES: FunctionDef = FunctionDef {
    name: "RemoveDuplicates",
    returns: None,
    signature: "RemoveDuplicates(value)",
    min_args: 1,
    max_args: Some(1),
    pairs: false,
    summary: "The values of a multi-valued attribute with repeats removed (the first of each \
              kept, order kept; values compare exactly). A single value and null are returned as \
              they are.",
    examples: &[
        ("RemoveDuplicates(Split(\"a;b;a;c;b\", \";\"))", "a; b; c"),
        ("RemoveDuplicates(Split(\"A;a\", \";\"))", "A; a"),
        ("RemoveDuplicates(mail)", "jose.muller@contoso.com"),
        ("RemoveDuplicates(missing)", "null"),
    ],
    eval: remove_duplicates,
    prepare: None,
};

fn remove_duplicates(args: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    Ok(match args.take(0) {
        Value::List(items) => {
            let mut seen = std::collections::HashSet::new();
            Value::list(items.into_iter().filter(|v| seen.insert(v.clone())))
        }
        other => other,
    })
}

fn evaluated_by_the_evaluator(_: &mut Args<'_, '_>, _: &dyn Env) -> Result<Value, FnError> {
    // Select, Where and With bind a variable, so the evaluator runs them
    // itself (`expr::eval`); a call never reaches here.
    Err(FnError::new("internal", "evaluated by the evaluator"))
}

pub(super) const SELECT: FunctionDef = FunctionDef {
    name: "Select",
    returns: None,
    signature: "Select($item, values, expression)",
    min_args: 3,
    max_args: Some(3),
    pairs: false,
    summary: "Each value of a multi-valued attribute transformed: `expression` is evaluated \
              with `$item` (any name after `$`) bound to each value in turn; null results drop \
              out. Null when there are no values.",
    examples: &[
        (
            "Select($item, proxyAddresses, Lower($item))",
            "smtp:jose.muller@contoso.com; smtp:jm@contoso.com",
        ),
        (
            "Select($p, Split(\"1-2,3-4\", \",\"), Replace($p, \"-\", \"\"))",
            "12; 34",
        ),
        ("Select($item, missing, $item)", "null"),
    ],
    eval: evaluated_by_the_evaluator,
    prepare: None,
};

pub(super) const WHERE: FunctionDef = FunctionDef {
    name: "Where",
    returns: None,
    signature: "Where($item, values, condition)",
    min_args: 3,
    max_args: Some(3),
    pairs: false,
    summary: "The values of a multi-valued attribute for which `condition` holds, with `$item` \
              bound to each value in turn. Null when none does.",
    examples: &[
        (
            "Where($item, proxyAddresses, StartsWith($item, \"SMTP:\"))",
            "SMTP:jose.muller@contoso.com",
        ),
        ("Where($a, proxyAddresses, Len($a) > 100)", "null"),
    ],
    eval: evaluated_by_the_evaluator,
    prepare: None,
};

pub(super) const WITH: FunctionDef = FunctionDef {
    name: "With",
    returns: None,
    signature: "With($variable, value, expression)",
    min_args: 3,
    max_args: Some(3),
    pairs: false,
    summary: "`expression` evaluated with `$variable` bound to `value`, computed once (a name \
              for a value used several times).",
    examples: &[
        ("With($smtp, Where($item, proxyAddresses, StartsWith($item, \"SMTP:\")), IIF(Count($smtp) > 0, $smtp, null))", "SMTP:jose.muller@contoso.com"),
        ("With($n, Len(sn), $n * 2)", "12"),
    ],
    eval: evaluated_by_the_evaluator,
    prepare: None,
};

#[cfg(test)]
mod tests {
    use crate::functions::tests::eval_str as eval;

    #[test]
    fn list_edge_cases() {
        assert_eq!(eval("Count(\"\")"), "1");
        assert_eq!(eval("Item(missing, 1)"), "null");
        assert_eq!(eval("Item(mail, 2)"), "null");
        assert_eq!(eval("Item(Split(\"a,b,c\", \",\"), \"3\")"), "c");
        assert_eq!(
            eval("Item(proxyAddresses, null)"),
            "error: Item: index must be an integer, found null"
        );
        assert_eq!(
            eval("Item(proxyAddresses, -9223372036854775808)"),
            "error: Item: index is 1-based and must be at least 1, found -9223372036854775808"
        );
        assert_eq!(eval("First(Split(\"é,a\", \",\"))"), "é");
    }
}
