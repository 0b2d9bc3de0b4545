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
///
/// Joiners of one sync step get their values in ascending order of their
/// source anchor, whatever order the step meets them in: a candidate held
/// only by objects this step provisioned for a later anchor is free, and
/// those objects are recorded in `taken_from`, to choose again.
pub(crate) struct UniqueCtx<'a> {
    pub conns: &'a [Sym],
    pub attr: Sym,
    pub own: Option<CsKey>,
    /// The order key of the object choosing (see [`order_key`]).
    pub rank: &'a (String, MvId),
    /// Objects this step provisioned (never exported), with the order key
    /// they chose with: their values may be taken by an earlier anchor.
    pub fresh: &'a std::collections::HashMap<CsKey, (String, MvId)>,
    /// The holders of the chosen candidate that must choose again.
    pub taken_from: RefCell<Vec<CsKey>>,
}

/// The order in which joiners of one step get unique values: the anchor of
/// the metaverse object's source (the object that projected it, else its
/// first source), then its id.
pub(crate) fn order_key(txn: &Txn<'_>, mv: &MvObject) -> Result<(String, MvId), StoreError> {
    let mut first = None;
    for k in &mv.links {
        let source = |o: &crate::model::CsObject| {
            o.link
                .filter(|l| l.mv == mv.id && l.kind.is_source())
                .map(|l| (l.kind, o.anchor.clone()))
        };
        let Some((kind, anchor)) = txn.peek_cs(*k, source)?.flatten() else {
            continue;
        };
        if kind == crate::model::LinkKind::Projected {
            return Ok((anchor.unwrap_or_default(), mv.id));
        }
        first = first.or(anchor);
    }
    Ok((first.unwrap_or_default(), mv.id))
}

/// What `target.name` reads in an export flow: the value the flow to
/// `name` computed earlier in this evaluation, else the value the target
/// object holds (known to the system, or fixed at provisioning).
pub(crate) struct TargetView<'a> {
    pub computed: &'a super::outbound::Desired,
    pub own: Option<&'a CsObject>,
    /// `own`'s known attributes (hologram with escrow laid over it).
    pub known: Option<&'a crate::model::Attrs>,
    pub dn_sym: Sym,
}

impl TargetView<'_> {
    fn read(&self, sym: Option<Sym>) -> Value {
        if sym == Some(self.dn_sym) {
            let dn = self.computed.dn.as_deref();
            let dn = dn.or(self.own.and_then(super::outbound::pending_dn));
            return dn.map_or(Value::Null, Value::from);
        }
        let Some(sym) = sym else {
            return Value::Null;
        };
        let held = || {
            let own = self.own?;
            let pending_add = match &own.pending_export {
                Some(crate::model::PendingExport::Add { attrs }) => attrs.get(sym),
                _ => None,
            };
            pending_add
                .or(self.known.and_then(|k| k.get(sym)))
                .or(own.sticky.get(sym))
                .cloned()
        };
        self.computed
            .attrs
            .get(&sym)
            .or(self.computed.initial.get(&sym))
            .cloned()
            .or_else(held)
            .unwrap_or(Value::Null)
    }
}

/// A metaverse object, for scoping filters and export flows.
pub(crate) struct MvEnv<'a, 't> {
    pub txn: &'a Txn<'t>,
    pub mv: &'a MvObject,
    pub now: i64,
    /// Set while evaluating export flows that read `target.name`.
    pub target: Option<TargetView<'a>>,
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
            target: None,
            unique: None,
            failure: RefCell::new(None),
        }
    }

    /// Takes the store failure met while evaluating, if any.
    pub fn take_failure(&self) -> Option<StoreError> {
        self.failure.borrow_mut().take()
    }
}

impl MvEnv<'_, '_> {
    /// Whether `holder` gives its value up to the object choosing: this
    /// step provisioned it, for a later source anchor (the order key it
    /// chose with, kept since: reading it again cost a fifth of a full sync
    /// where names collide), and it is still only provisioned.
    fn yields_to(&self, u: &UniqueCtx<'_>, holder: CsKey) -> Result<bool, StoreError> {
        let Some(rank) = u.fresh.get(&holder) else {
            return Ok(false);
        };
        if rank <= u.rank {
            return Ok(false);
        }
        Ok(self
            .txn
            .cs(holder)?
            .is_some_and(|o| o.state == crate::model::CsState::Provisioned))
    }
}

impl Env for MvEnv<'_, '_> {
    fn attribute(&self, name: &str) -> Result<Value, ReadError> {
        if let (Some(view), Some(attr)) = (&self.target, rules::target_attribute(name)) {
            return Ok(view.read(self.txn.store().lookup(attr)));
        }
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

    fn random(&self) -> Option<u128> {
        // Only where a generated (sticky) value is made.
        self.unique.as_ref()?;
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).ok()?;
        Some(u128::from_le_bytes(bytes))
    }

    fn value_in_use(&self, candidate: &Value) -> Option<bool> {
        let u = self.unique.as_ref()?;
        let text = candidate.to_string();
        let mut taken_from = Vec::new();
        for conn in u.conns {
            let holders = match self.txn.value_holders(*conn, u.attr, &text, u.own) {
                Ok(h) => h,
                Err(e) => {
                    *self.failure.borrow_mut() = Some(e);
                    return Some(true);
                }
            };
            for holder in holders {
                match self.yields_to(u, holder) {
                    Ok(true) => taken_from.push(holder),
                    Ok(false) => return Some(true),
                    Err(e) => {
                        *self.failure.borrow_mut() = Some(e);
                        return Some(true);
                    }
                }
            }
        }
        *u.taken_from.borrow_mut() = taken_from;
        Some(false)
    }
}
