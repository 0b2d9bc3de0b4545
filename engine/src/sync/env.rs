//! The evaluation environments of sync: a connector-space object seen by
//! inbound rules, and a metaverse object seen by outbound rules.

use std::cell::RefCell;

use rules::{Env, ReadError, Value};

use crate::connector::RefKind;
use crate::model::{CsKey, CsObject, MvId, MvObject, Sym};
use crate::setup::Model;
use crate::store::{StoreError, Txn};

/// How a waiting inbound reference is recorded: its kind, then the value as
/// the connected system wrote it (a DN normalized by [`rules::dn::normalize`]:
/// the object that arrives may write the same DN otherwise).
pub(crate) fn waiting_key(kind: RefKind, raw: &str) -> String {
    match kind {
        RefKind::Anchor => format!("a:{raw}"),
        RefKind::Dn => format!("d:{}", rules::dn::normalize(raw)),
    }
}

/// The kind and value of a waiting inbound reference.
pub(crate) fn parse_waiting_key(key: &str) -> Option<(RefKind, &str)> {
    if let Some(raw) = key.strip_prefix("a:") {
        Some((RefKind::Anchor, raw))
    } else {
        key.strip_prefix("d:").map(|raw| (RefKind::Dn, raw))
    }
}

/// A reference that did not resolve while evaluating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unresolved {
    pub conn: Sym,
    pub raw: String,
}

/// A connector-space object's hologram, with its reference attributes
/// resolved to metaverse ids through the connector space.
pub(crate) struct CsEnv<'a, 't> {
    pub txn: &'a Txn<'t>,
    pub model: &'a Model,
    pub cs: &'a CsObject,
    pub type_name: &'a str,
    pub now: i64,
    pub unresolved: RefCell<Vec<Unresolved>>,
    pub failure: RefCell<Option<StoreError>>,
}

impl<'a, 't> CsEnv<'a, 't> {
    pub fn new(
        txn: &'a Txn<'t>,
        model: &'a Model,
        cs: &'a CsObject,
        type_name: &'a str,
        now: i64,
    ) -> Self {
        CsEnv {
            txn,
            model,
            cs,
            type_name,
            now,
            unresolved: RefCell::new(Vec::new()),
            failure: RefCell::new(None),
        }
    }

    fn resolve(&self, kind: RefKind, raw: &Value) -> Result<Option<MvId>, StoreError> {
        let Some(raw) = raw.as_str() else {
            return Ok(None);
        };
        let conn = self.cs.key.conn;
        let target = match kind {
            RefKind::Anchor => self.txn.by_anchor(conn, raw)?,
            RefKind::Dn => self.txn.by_dn(conn, raw)?,
        };
        let mv = match target {
            Some(k) => self.txn.cs(k)?.and_then(|o| o.link).map(|l| l.mv),
            None => None,
        };
        if mv.is_none() {
            self.unresolved.borrow_mut().push(Unresolved {
                conn,
                raw: waiting_key(kind, raw),
            });
        }
        Ok(mv)
    }

    /// Takes the store failure met while evaluating, if any.
    pub fn take_failure(&self) -> Option<StoreError> {
        self.failure.borrow_mut().take()
    }
}

impl Env for CsEnv<'_, '_> {
    fn attribute(&self, name: &str) -> Result<Value, ReadError> {
        let Some(sym) = self.txn.store().lookup(name) else {
            return Ok(Value::Null);
        };
        let Some(value) = self.cs.hologram.get(sym) else {
            return Ok(Value::Null);
        };
        let kind = self
            .model
            .conn(self.cs.key.conn)
            .and_then(|c| c.reference_kind(self.type_name, name));
        let Some(kind) = kind else {
            return Ok(value.clone());
        };
        let mut ids = Vec::new();
        for item in value.items() {
            match self.resolve(kind, item) {
                Ok(Some(id)) => ids.push(Value::Ref(id)),
                Ok(None) => {}
                Err(e) => {
                    let error = ReadError {
                        attribute: name.to_owned(),
                        message: e.to_string(),
                    };
                    // Kept for the caller, which fails the step on a store error.
                    *self.failure.borrow_mut() = Some(e);
                    return Err(error);
                }
            }
        }
        Ok(match value {
            Value::List(_) => Value::list(ids),
            _ => ids.into_iter().next().unwrap_or(Value::Null),
        })
    }

    fn now(&self) -> i64 {
        self.now
    }

    fn value_in_use(&self, _candidate: &Value) -> Option<bool> {
        None
    }
}

/// Where a generated unique value must be free: these connectors' objects
/// (other than `own`) must not hold it in `attr`.
pub(crate) struct UniqueCtx<'a> {
    pub conns: &'a [Sym],
    pub attr: Sym,
    pub own: Option<CsKey>,
}

/// A metaverse object, for scoping filters and export flows.
pub(crate) struct MvEnv<'a, 't> {
    pub txn: &'a Txn<'t>,
    pub mv: &'a MvObject,
    pub now: i64,
    /// Set while evaluating a unique-value flow.
    pub unique: Option<UniqueCtx<'a>>,
    pub failure: RefCell<Option<StoreError>>,
}

impl<'a, 't> MvEnv<'a, 't> {
    pub fn new(txn: &'a Txn<'t>, mv: &'a MvObject, now: i64) -> Self {
        MvEnv {
            txn,
            mv,
            now,
            unique: None,
            failure: RefCell::new(None),
        }
    }

    /// Takes the store failure met while evaluating, if any.
    pub fn take_failure(&self) -> Option<StoreError> {
        self.failure.borrow_mut().take()
    }
}

impl Env for MvEnv<'_, '_> {
    fn attribute(&self, name: &str) -> Result<Value, ReadError> {
        Ok(self
            .txn
            .store()
            .lookup(name)
            .and_then(|sym| self.mv.get(sym).cloned())
            .unwrap_or(Value::Null))
    }

    fn now(&self) -> i64 {
        self.now
    }

    fn value_in_use(&self, candidate: &Value) -> Option<bool> {
        let u = self.unique.as_ref()?;
        let text = candidate.to_string();
        for conn in u.conns {
            match self.txn.value_held(*conn, u.attr, &text, u.own) {
                Ok(false) => {}
                Ok(true) => return Some(true),
                Err(e) => {
                    *self.failure.borrow_mut() = Some(e);
                    return Some(true);
                }
            }
        }
        Some(false)
    }
}
