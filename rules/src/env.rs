//! What an expression can see while it is evaluated.

use crate::Value;

/// The evaluation context of an expression: the attributes of the object the
/// expression runs against, the clock, and (for outbound flows) the
/// uniqueness oracle behind `SelectUniqueValue`.
///
/// Time and uniqueness are parameters so that evaluation is deterministic in
/// tests and so that the rules crate never touches a store.
pub trait Env {
    /// The value of an attribute of the current object; `Value::Null` when
    /// absent. `Err` when it could not be read (a store failure): the
    /// evaluation fails, so a read error can never pass for a null (a null
    /// can take an object out of scope and deprovision it).
    fn attribute(&self, name: &str) -> Result<Value, ReadError>;

    /// The current instant in microseconds since the Unix epoch (`Now()`).
    fn now(&self) -> i64;

    /// Whether `candidate` is already held, for the attribute being computed,
    /// by another object of the target connector space(s), including values
    /// chosen earlier in the same run. `None` when the expression runs where
    /// uniqueness has no meaning (a scoping filter, an inbound flow); then
    /// `SelectUniqueValue` is an evaluation error.
    fn value_in_use(&self, candidate: &Value) -> Option<bool>;

    /// The value of a variable (`$item`) bound by Select, Where or With;
    /// `None` when it is not bound here. Environments other than the
    /// evaluator's own binding layer bind none.
    fn variable(&self, _name: &str) -> Option<Value> {
        None
    }

    /// A fresh random number for a generated value (`Guid()`), available
    /// only where a generated value is made: an outbound flow at
    /// provisioning, whose result is kept (sticky) and never generated
    /// again. `None` elsewhere.
    fn random(&self) -> Option<u128> {
        None
    }
}

/// An attribute that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read attribute '{attribute}': {message}")]
pub struct ReadError {
    /// The attribute.
    pub attribute: String,
    /// Why.
    pub message: String,
}

/// A simple environment over a list of attributes, for tests, previews and
/// documentation examples. Uniqueness is checked against `taken`.
#[derive(Debug, Clone, Default)]
pub struct MapEnv {
    /// The attributes of the object.
    pub attributes: std::collections::BTreeMap<String, Value>,
    /// The instant `Now()` returns, in microseconds since the epoch.
    pub now: i64,
    /// Values considered already in use by `SelectUniqueValue`; `None`
    /// means uniqueness is not available in this context.
    pub taken: Option<std::collections::BTreeSet<Value>>,
    /// What `random()` gives (a fixed number, so examples are
    /// deterministic); `None`: no generated values here.
    pub random: Option<u128>,
}

impl MapEnv {
    /// An environment with the given attributes, time zero and no uniqueness context.
    pub fn new<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Value)>) -> MapEnv {
        MapEnv {
            attributes: attributes.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            now: 0,
            taken: None,
            random: None,
        }
    }
}

impl Env for MapEnv {
    fn attribute(&self, name: &str) -> Result<Value, ReadError> {
        Ok(self.attributes.get(name).cloned().unwrap_or(Value::Null))
    }

    fn now(&self) -> i64 {
        self.now
    }

    fn value_in_use(&self, candidate: &Value) -> Option<bool> {
        self.taken.as_ref().map(|taken| taken.contains(candidate))
    }

    fn random(&self) -> Option<u128> {
        self.random
    }
}
