//! Typed attribute values shared by every part of mvsync.
//!
//! A value is single (string, integer, boolean, bytes, reference, date-time),
//! a list of single values (a multi-valued attribute), or null. Lists never
//! nest and never hold `Null`; an empty list is normalised to `Null`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An attribute value.
///
/// `Ref` holds a store object id: in the metaverse the id of another
/// metaverse object, in a pending export the id of a connector-space object.
/// Connected systems never see it: connectors translate references to their
/// own form (a DN, an anchor) at the edges.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub enum Value {
    /// No value.
    #[default]
    Null,
    /// A UTF-8 string.
    Str(String),
    /// A 64-bit signed integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Raw bytes (objectGUID, jpegPhoto).
    Bytes(Vec<u8>),
    /// A reference to another object by store id.
    Ref(u64),
    /// An instant in UTC, microseconds since the Unix epoch.
    DateTime(i64),
    /// A multi-valued attribute: at least one item, no nulls, no nesting.
    List(Vec<Value>),
}

/// The type of a value, as schemas and error messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueType {
    /// See [`Value::Str`].
    String,
    /// See [`Value::Int`].
    Integer,
    /// See [`Value::Bool`].
    Boolean,
    /// See [`Value::Bytes`].
    Binary,
    /// See [`Value::Ref`].
    Reference,
    /// See [`Value::DateTime`].
    DateTime,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Boolean => "boolean",
            ValueType::Binary => "binary",
            ValueType::Reference => "reference",
            ValueType::DateTime => "date-time",
        })
    }
}

impl Value {
    /// Builds a string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// Builds a multi-valued value, dropping nulls, flattening nested lists
    /// and normalising an empty result to `Null`.
    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        let mut out = Vec::new();
        for item in items {
            match item {
                Value::Null => {}
                Value::List(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        if out.is_empty() {
            Value::Null
        } else {
            Value::List(out)
        }
    }

    /// True for `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// True for `Null`, an empty string and an empty list.
    pub fn is_null_or_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            Value::List(items) => items.is_empty(),
            _ => false,
        }
    }

    /// The type of a single value; `None` for `Null` and for lists.
    pub fn value_type(&self) -> Option<ValueType> {
        Some(match self {
            Value::Null | Value::List(_) => return None,
            Value::Str(_) => ValueType::String,
            Value::Int(_) => ValueType::Integer,
            Value::Bool(_) => ValueType::Boolean,
            Value::Bytes(_) => ValueType::Binary,
            Value::Ref(_) => ValueType::Reference,
            Value::DateTime(_) => ValueType::DateTime,
        })
    }

    /// Truthiness as scoping filters and `IIF` read it: `Null`, `false`,
    /// `0`, the empty string and the strings "false"/"0" (any case) are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Str(s) => !(s.is_empty() || s.eq_ignore_ascii_case("false") || s == "0"),
            Value::List(items) => !items.is_empty(),
            Value::Bytes(_) | Value::Ref(_) | Value::DateTime(_) => true,
        }
    }

    /// The items of a value: none for `Null`, one for a single value, all for a list.
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Null => &[],
            Value::List(items) => items,
            single => std::slice::from_ref(single),
        }
    }

    /// The string inside a `Str`, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// A plain rendering for people: strings unquoted, lists joined by "; ",
    /// bytes as base64, date-times as RFC 3339.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Bytes(b) => {
                use base64::Engine as _;
                f.write_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Ref(id) => write!(f, "ref:{id}"),
            Value::DateTime(us) => match chrono::DateTime::from_timestamp_micros(*us) {
                Some(dt) => write!(
                    f,
                    "{}",
                    dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
                None => write!(f, "datetime:{us}"),
            },
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_normalises_nulls_nesting_and_emptiness() {
        assert_eq!(Value::list(vec![]), Value::Null);
        assert_eq!(Value::list(vec![Value::Null]), Value::Null);
        assert_eq!(
            Value::list(vec![
                Value::from("a"),
                Value::list(vec![Value::from("b")]),
                Value::Null
            ]),
            Value::List(vec![Value::from("a"), Value::from("b")])
        );
    }

    #[test]
    fn truthiness_follows_scoping_conventions() {
        assert!(!Value::Null.truthy());
        assert!(!Value::from("FALSE").truthy());
        assert!(!Value::from("").truthy());
        assert!(Value::from("Employee").truthy());
        assert!(!Value::Int(0).truthy());
        assert!(Value::Int(512).truthy());
    }

    #[test]
    fn display_is_plain() {
        assert_eq!(
            Value::list(vec!["a".into(), "b".into()]).to_string(),
            "a; b"
        );
        assert_eq!(Value::Bytes(vec![1, 2, 3]).to_string(), "AQID");
        assert_eq!(Value::DateTime(0).to_string(), "1970-01-01T00:00:00Z");
    }
}
