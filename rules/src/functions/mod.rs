//! The function library of the expression language.
//!
//! Every function is one small unit: a [`FunctionDef`] constant holding its
//! name, arity, signature, summary, an evaluator, an optional parse-time
//! preparation step, and a table of examples. The examples are the
//! function's documentation and a test: `every_example_evaluates_as_documented`
//! parses each one, evaluates it in [`example_env`] and compares the result.
//!
//! Families live in their own files: `logic` (Coalesce, IIF, Switch, …),
//! `string`, `pattern` (regular expressions), `dates`, `convert`, `dn`,
//! `list` and `unique` (SelectUniqueValue, UniqueNumbered).
//!
//! Conventions shared by all functions:
//! - Arguments are evaluated eagerly, left to right, before the function runs.
//! - A null "data" argument (the string being transformed, the date being
//!   formatted) gives null; a null "parameter" (a count, a format) is an error.
//! - Functions marked *elementwise* apply to every item of a multi-valued
//!   argument and return a multi-valued result (items that become null drop out).
//! - Strings are handled as Unicode characters, never split inside a character.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::{Env, MapEnv, Value, ValueType};

mod cast;
mod convert;
mod datefmt;
mod dates;
mod dn;
mod list;
mod logic;
mod pattern;
mod string;
mod text;
mod unique;
mod util;

pub(crate) use dates::parse_datetime_str;
pub(crate) use logic::SWITCH_CONDITIONS;
pub use logic::{IGNORE_ATTRIBUTE_FLOW, IGNORE_OBJECT_FLOW};
pub(crate) use util::{describe, parse_int, text};

/// The signature of a function's evaluator.
///
/// It receives the evaluated arguments (already checked against the arity)
/// and the environment, and may take ownership of arguments with
/// [`Args::take`] to avoid copying them.
pub type EvalFn = fn(&mut Args<'_, '_>, &dyn Env) -> Result<Value, FnError>;

/// The signature of a function's parse-time preparation step.
///
/// It receives one entry per argument: `Some(value)` when the argument is a
/// literal constant, `None` otherwise. It may validate constants (an invalid
/// literal regex is a parse error, not a failure on every object) and
/// precompute state the evaluator reads back with [`Args::prepared`].
pub type PrepareFn = fn(&[Option<&Value>]) -> Result<Prepared, PrepareError>;

/// One function of the expression language.
pub struct FunctionDef {
    /// The canonical name, as printed; calls match it case-insensitively.
    pub name: &'static str,
    /// The type of value it returns (each value of a list), when that does
    /// not depend on its arguments; `validate` checks flows with it.
    pub returns: Option<ValueType>,
    /// The call shape for documentation, e.g. `Left(value, count)`.
    pub signature: &'static str,
    /// The fewest arguments the function accepts.
    pub min_args: usize,
    /// The most arguments it accepts; `None` for no limit.
    pub max_args: Option<usize>,
    /// Whether arguments beyond `min_args` must come in pairs (Switch's key/value pairs).
    pub pairs: bool,
    /// What the function does, in one or a few sentences, including how it
    /// treats null, empty and multi-valued arguments.
    pub summary: &'static str,
    /// `(expression, expected result)` pairs, evaluated in [`example_env`].
    /// The result is the value rendered with `Display`, `null` for null, or
    /// `error: <message>` for an evaluation error.
    pub examples: &'static [(&'static str, &'static str)],
    /// The evaluator.
    pub eval: EvalFn,
    /// The parse-time preparation step, if the function has one.
    pub prepare: Option<PrepareFn>,
}

impl FunctionDef {
    /// Whether a call with `n` arguments is well-formed.
    pub fn accepts(&self, n: usize) -> bool {
        n >= self.min_args
            && self.max_args.is_none_or(|max| n <= max)
            && (!self.pairs || (n - self.min_args) & 1 == 0)
    }

    /// The accepted arity in words, e.g. "2 arguments", "2 or 3 arguments",
    /// "at least 1 argument", "4, 6, 8, ... arguments".
    pub fn arity_text(&self) -> String {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        match self.max_args {
            _ if self.pairs => format!(
                "{}, {}, {}, ... arguments",
                self.min_args,
                self.min_args + 2,
                self.min_args + 4
            ),
            Some(max) if max == self.min_args => {
                format!("{} argument{}", max, plural(max))
            }
            Some(max) if max == self.min_args + 1 => {
                format!("{} or {} arguments", self.min_args, max)
            }
            Some(max) => format!("{} to {} arguments", self.min_args, max),
            None => format!(
                "at least {} argument{}",
                self.min_args,
                plural(self.min_args)
            ),
        }
    }
}

impl fmt::Debug for FunctionDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionDef")
            .field("name", &self.name)
            .field("min_args", &self.min_args)
            .field("max_args", &self.max_args)
            .finish_non_exhaustive()
    }
}

/// A function's failure on one object. The evaluator turns it into an
/// [`EvalError`](crate::EvalError) spanning the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnError {
    /// A stable kebab-case code: `bad-argument` unless said otherwise.
    pub code: &'static str,
    /// What went wrong, naming the function and the offending value.
    pub message: String,
}

impl FnError {
    /// An error with an explicit code.
    pub fn new(code: &'static str, message: impl Into<String>) -> FnError {
        FnError {
            code,
            message: message.into(),
        }
    }

    /// A `bad-argument` error.
    pub fn bad_argument(message: impl Into<String>) -> FnError {
        FnError::new("bad-argument", message)
    }
}

/// A constant argument rejected at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareError {
    /// The offending argument (0-based); `None` points at the whole call.
    pub arg: Option<usize>,
    /// A stable kebab-case code, such as `bad-regex` or `bad-format`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// State a function computed at parse time from its constant arguments (a
/// compiled regex, parsed format items). Cheap to clone; shared between
/// clones of an expression.
#[derive(Clone, Default)]
pub struct Prepared(Option<Arc<dyn Any + Send + Sync>>);

impl Prepared {
    /// Nothing prepared.
    pub fn none() -> Prepared {
        Prepared(None)
    }

    /// Wraps prepared state.
    pub fn new<T: Any + Send + Sync>(state: T) -> Prepared {
        Prepared(Some(Arc::new(state)))
    }

    /// The prepared state, if there is some of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0
            .as_deref()
            .and_then(|state| state.downcast_ref::<T>())
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Prepared(..)"
        } else {
            "Prepared(none)"
        })
    }
}

static NULL: Value = Value::Null;

/// The evaluated arguments of one call.
///
/// Arguments are borrowed from the expression when they are literals and
/// owned otherwise; [`Args::take`] moves an owned argument out without
/// copying it.
pub struct Args<'a, 'v> {
    values: &'a mut [Cow<'v, Value>],
    prepared: &'a Prepared,
}

impl<'a, 'v> Args<'a, 'v> {
    /// Wraps evaluated arguments and the call's prepared state.
    pub fn new(values: &'a mut [Cow<'v, Value>], prepared: &'a Prepared) -> Self {
        Args { values, prepared }
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Argument `i`; null when there are fewer arguments.
    pub fn get(&self, i: usize) -> &Value {
        self.values.get(i).map_or(&NULL, |v| v)
    }

    /// Moves argument `i` out, leaving null behind; copies only literals.
    pub fn take(&mut self, i: usize) -> Value {
        self.values
            .get_mut(i)
            .map_or(Value::Null, |slot| std::mem::take(slot).into_owned())
    }

    /// All arguments, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        self.values.iter().map(|v| &**v)
    }

    /// The call's parse-time state, if it has some of type `T`.
    pub fn prepared<T: Any>(&self) -> Option<&'a T> {
        self.prepared.get::<T>()
    }
}

/// Every function, sorted by name.
static FUNCTIONS: &[FunctionDef] = &[
    string::APPEND,
    convert::BIT_AND,
    convert::BIT_OR,
    cast::CBOOL,
    dates::CDATE,
    cast::CGUID,
    cast::CNUM,
    logic::COALESCE,
    string::CONTAINS,
    cast::CONVERT_FROM_BASE64,
    cast::CONVERT_FROM_UTF8_HEX,
    cast::CONVERT_TO_BASE64,
    cast::CONVERT_TO_UTF8_HEX,
    list::COUNT,
    cast::CREF,
    cast::CSTR,
    dates::DATE_ADD,
    dates::DATE_DIFF,
    dates::DATE_FROM_NUM,
    dn::DN_COMPONENT,
    dn::DN_COMPONENT_REV,
    string::ENDS_WITH,
    logic::ERROR,
    dn::ESCAPE_DN,
    dn::ESCAPE_DN_COMPONENT,
    list::FIRST,
    dates::FORMAT_DATE_TIME,
    convert::FROM_BASE64,
    cast::GUID,
    convert::GUID_TO_IMMUTABLE_ID,
    logic::IGNORE_ATTRIBUTE_FLOW_FN,
    logic::IGNORE_FLOW_IF_NULL_OR_EMPTY,
    logic::IGNORE_OBJECT_FLOW_FN,
    logic::IIF,
    text::IN_STR,
    text::IN_STR_REV,
    cast::IS_BIT_SET,
    dates::IS_DATE,
    cast::IS_EMPTY,
    cast::IS_GUID,
    cast::IS_NULL,
    logic::IS_NULL_OR_EMPTY,
    cast::IS_NUMERIC,
    logic::IS_PRESENT,
    cast::IS_STRING,
    list::ITEM,
    list::ITEM_OR_NULL,
    string::JOIN,
    text::LCASE,
    string::LEFT,
    text::LEN,
    string::LOWER,
    text::LTRIM,
    string::MID,
    string::NORMALIZE_DIACRITICS,
    cast::NOT,
    dates::NOW,
    dates::NUM_FROM_DATE,
    text::PAD_LEFT,
    text::PAD_RIGHT,
    dn::PARENT_DN,
    text::PCASE,
    dn::RDN,
    cast::REDACT,
    pattern::REGEX_REPLACE,
    list::REMOVE_DUPLICATES,
    string::REPLACE,
    text::REPLACE_CHARS,
    string::RIGHT,
    text::RTRIM,
    list::SELECT,
    unique::SELECT_UNIQUE_VALUE,
    string::SPLIT,
    string::STARTS_WITH,
    cast::STRING_FROM_GUID,
    cast::STRING_FROM_SID,
    string::STRIP_SPACES,
    logic::SWITCH,
    convert::TO_BASE64,
    convert::TO_BOOL,
    convert::TO_INT,
    text::TO_LOWER,
    convert::TO_STRING,
    text::TO_UPPER,
    string::TRIM,
    string::TRUNCATE,
    text::UCASE,
    unique::UNIQUE_NUMBERED,
    string::UPPER,
    list::WHERE,
    list::WITH,
    string::WORD,
];

/// Every function of the language, sorted by name.
pub fn functions() -> &'static [FunctionDef] {
    FUNCTIONS
}

/// The function called `name`, matched case-insensitively.
pub fn function(name: &str) -> Option<&'static FunctionDef> {
    FUNCTIONS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// The canonical name closest to `name`, when one is close enough to be a
/// likely typo.
pub fn suggest(name: &str) -> Option<&'static str> {
    let wanted = name.to_ascii_lowercase();
    FUNCTIONS
        .iter()
        .map(|f| {
            (
                util::edit_distance(&wanted, &f.name.to_ascii_lowercase()),
                f.name,
            )
        })
        .filter(|&(d, candidate)| d <= (candidate.len() / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, candidate)| candidate)
}

/// The environment the documentation examples run in: a person with
/// accented names, a multi-valued `proxyAddresses`, a binary `objectGUID`,
/// a clock at 2024-03-15T09:30:00Z and the values `jmuller`, `jose.muller`,
/// `jmuller2` and `mullerj` already in use.
pub fn example_env() -> MapEnv {
    let mut env = MapEnv::new([
        ("givenName", Value::from("José")),
        ("sn", Value::from("Müller")),
        ("displayName", Value::from("Müller, José")),
        ("employeeId", Value::from("00042")),
        ("department", Value::from("Sales")),
        ("city", Value::from("Dallas")),
        ("workerType", Value::from("Employee")),
        ("mail", Value::from("jose.muller@contoso.com")),
        (
            "proxyAddresses",
            Value::list([
                Value::from("SMTP:jose.muller@contoso.com"),
                Value::from("smtp:jm@contoso.com"),
            ]),
        ),
        (
            "objectGUID",
            Value::Bytes(vec![
                0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34,
                0x56, 0x78,
            ]),
        ),
        ("userAccountControl", Value::Int(514)),
        // 2021-06-01T08:00:00Z
        ("hireDate", Value::DateTime(1_622_534_400_000_000)),
        ("manager", Value::Ref(7)),
        ("nickname", Value::from("")),
    ]);
    // 2024-03-15T09:30:00Z
    env.now = 1_710_495_000_000_000;
    env.random = Some(0x00aa_00aa_bb11_cc22_dd33_44ee_44ee_44ee);
    env.taken = Some(
        ["jmuller", "jose.muller", "jmuller2", "mullerj"]
            .into_iter()
            .map(Value::from)
            .collect(),
    );
    env
}

#[cfg(test)]
pub(crate) mod tests;
