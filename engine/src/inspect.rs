//! Read-only views for people: pending exports (the dry run), metaverse
//! objects with per-attribute lineage, connector-space objects.

use rules::Value;
use serde::Serialize;

use crate::connector::AttrOp;
use crate::model::{apply_op, CsKey, CsObject, MvId, PendingExport, Sym};
use crate::setup::Model;
use crate::store::{Store, StoreError, Txn};
use crate::sync::{contributions, translate, translate_op, Failure, RefForm};

/// A value as JSON: strings, numbers, booleans, arrays; bytes as base64 and
/// date-times as RFC 3339 strings.
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Str(s) => s.clone().into(),
        Value::Int(i) => (*i).into(),
        Value::Bool(b) => (*b).into(),
        Value::List(items) => items.iter().map(value_json).collect(),
        other => other.to_string().into(),
    }
}

fn json_value<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    value_json(v).serialize(s)
}

/// One attribute of a pending export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeChange {
    /// The attribute.
    pub name: String,
    /// `set`, `clear`, `add` or `remove`.
    pub op: &'static str,
    /// What the target is known to hold now.
    #[serde(serialize_with = "json_value")]
    pub old: Value,
    /// What it will hold after the export.
    #[serde(serialize_with = "json_value")]
    pub new: Value,
}

/// One pending export, as preview shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingChange {
    /// The connector.
    pub connector: String,
    /// The object: anchor, else DN, else `cs:<id>`.
    pub object: String,
    /// Its object type.
    pub object_type: String,
    /// `add`, `update`, `rename` or `delete`.
    pub operation: &'static str,
    /// Its DN now.
    pub dn: Option<String>,
    /// Its DN after a rename.
    pub new_dn: Option<String>,
    /// Attribute changes (for an add: every attribute).
    pub attributes: Vec<AttributeChange>,
    /// The metaverse object it is linked to.
    pub mv: Option<MvId>,
}

/// How an object is named for people.
pub fn object_label(cs: &CsObject) -> String {
    cs.anchor
        .clone()
        .or_else(|| cs.dn.clone())
        .unwrap_or_else(|| format!("cs:{}", cs.key.id))
}

/// Every pending export of the given connectors, ordered by connector and object.
pub(crate) fn pending_changes(
    store: &Store,
    model: &Model,
    conns: &[Sym],
) -> Result<Vec<PendingChange>, StoreError> {
    let mut out = Vec::new();
    each_pending_change(store, model, conns, &mut |change| {
        out.push(change);
        true
    })?;
    Ok(out)
}

/// Calls `each` with every pending export of the given connectors, ordered
/// by connector and object, one at a time: memory holds the ordered list
/// of object keys and labels, never the changes (a preview of 2M adds).
/// `each` returns `false` to stop. Returns how many it was given.
pub(crate) fn each_pending_change(
    store: &Store,
    model: &Model,
    conns: &[Sym],
    each: &mut dyn FnMut(PendingChange) -> bool,
) -> Result<usize, StoreError> {
    let txn = store.begin();
    let mut order: Vec<(String, String, CsKey)> = Vec::new();
    for conn in conns {
        let name = store.name(*conn).to_string();
        store.for_each_pending_export(*conn, &mut |cs| {
            order.push((name.clone(), object_label(&cs), cs.key));
            Ok(true)
        })?;
    }
    order.sort_unstable();
    let mut given = 0;
    for (_, _, key) in order {
        let Some(cs) = txn.cs(key)? else { continue };
        let form = model.ref_form(key.conn, true);
        if let Some(change) = pending_change(store, &txn, form, &cs)? {
            given += 1;
            if !each(change) {
                break;
            }
        }
    }
    Ok(given)
}

pub(crate) fn pending_change(
    store: &Store,
    txn: &Txn<'_>,
    form: RefForm,
    cs: &CsObject,
) -> Result<Option<PendingChange>, StoreError> {
    let Some(pending) = &cs.pending_export else {
        return Ok(None);
    };
    let conn = cs.key.conn;
    let known = cs.known_attrs();
    let mut attributes = Vec::new();
    let mut new_dn = None;
    match pending {
        PendingExport::Add { attrs } => {
            for (k, v) in attrs.iter() {
                attributes.push(AttributeChange {
                    name: store.name(*k).to_string(),
                    op: "set",
                    old: Value::Null,
                    new: translate(txn, conn, form, v)?,
                });
            }
        }
        PendingExport::Update {
            new_dn: dn,
            changes,
        } => {
            new_dn = dn.clone();
            let mut after = known.clone();
            for (k, op) in changes {
                let op = translate_op(txn, conn, form, op)?;
                let old = after.get(*k).cloned().unwrap_or_default();
                let new = apply_op(&old, &op);
                after.set(*k, new.clone());
                attributes.push(AttributeChange {
                    name: store.name(*k).to_string(),
                    op: match op {
                        AttrOp::Replace(_) => "set",
                        AttrOp::Clear => "clear",
                        AttrOp::Add(_) => "add",
                        AttrOp::Remove(_) => "remove",
                    },
                    old,
                    new,
                });
            }
        }
        PendingExport::Delete => {}
    }
    // Stable by name, whatever order the store interned the names in.
    attributes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(PendingChange {
        connector: store.name(conn).to_string(),
        object: object_label(cs),
        object_type: store.name(cs.object_type).to_string(),
        operation: pending.kind_name(),
        dn: cs.dn.clone(),
        new_dn,
        attributes,
        mv: cs.link.map(|l| l.mv),
    }))
}

/// One source's offer for a metaverse attribute, in a lineage view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    /// The connector.
    pub connector: String,
    /// The rule.
    pub rule: String,
    /// Its precedence (lower wins).
    pub precedence: i64,
    /// The value it offers.
    #[serde(serialize_with = "json_value")]
    pub value: Value,
    /// Whether it won.
    pub winner: bool,
}

/// A metaverse attribute with its lineage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeView {
    /// The attribute.
    pub name: String,
    /// Its value.
    #[serde(serialize_with = "json_value")]
    pub value: Value,
    /// Who supplied it.
    pub connector: String,
    /// Through which rule.
    pub rule: String,
    /// Every source's offer, the winner marked, the losers with their precedence.
    pub offers: Vec<Offer>,
}

/// A link of a metaverse object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkView {
    /// The connector.
    pub connector: String,
    /// The object.
    pub object: String,
    /// How it is linked: joined, projected, provisioned.
    pub kind: String,
    /// Its lifecycle state.
    pub state: String,
    /// Whether a pending export waits.
    pub pending_export: Option<&'static str>,
}

/// A metaverse object for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MvView {
    /// Its id.
    pub id: MvId,
    /// Its type.
    pub object_type: String,
    /// Attributes with lineage.
    pub attributes: Vec<AttributeView>,
    /// Linked objects.
    pub links: Vec<LinkView>,
}

pub(crate) fn mv_view(
    store: &Store,
    model: &Model,
    now: i64,
    id: MvId,
) -> Result<Option<MvView>, StoreError> {
    let txn = store.begin();
    let Some(mv) = txn.mv(id)? else {
        return Ok(None);
    };
    let mut linked = Vec::new();
    for k in &mv.links {
        linked.extend(txn.cs(*k)?);
    }
    let offers = match contributions(store, model, now, &txn, &mv, &linked) {
        Ok((c, _)) => c,
        Err(Failure::Store(e)) => return Err(e),
        Err(Failure::Object { .. }) => Vec::new(),
    };
    let mut attributes: Vec<AttributeView> = mv
        .attrs
        .iter()
        .map(|a| AttributeView {
            name: store.name(a.name).to_string(),
            value: shown_mv_refs(&a.value),
            connector: store.name(a.connector).to_string(),
            rule: store.name(a.rule).to_string(),
            offers: offers
                .iter()
                .filter(|o| o.attr == a.name)
                .map(|o| Offer {
                    connector: store.name(o.connector).to_string(),
                    rule: store.name(o.rule).to_string(),
                    precedence: o.precedence,
                    value: shown_mv_refs(&o.value),
                    winner: o.rule == a.rule && o.connector == a.connector,
                })
                .collect(),
        })
        .collect();
    attributes.sort_by(|a, b| a.name.cmp(&b.name));
    let links = linked
        .iter()
        .map(|cs| LinkView {
            connector: store.name(cs.key.conn).to_string(),
            object: object_label(cs),
            kind: cs
                .link
                .map_or("none".into(), |l| format!("{:?}", l.kind).to_lowercase()),
            state: format!("{:?}", cs.state).to_lowercase(),
            pending_export: cs.pending_export.as_ref().map(PendingExport::kind_name),
        })
        .collect();
    Ok(Some(MvView {
        id,
        object_type: store.name(mv.object_type).to_string(),
        attributes,
        links,
    }))
}

/// A metaverse value for people: a reference to another metaverse object
/// shows as `mv:<id>`, the address `mvsync show mv` takes.
fn shown_mv_refs(v: &Value) -> Value {
    match v {
        Value::Ref(id) => Value::Str(format!("mv:{id}")),
        Value::List(items) => Value::List(items.iter().map(shown_mv_refs).collect()),
        other => other.clone(),
    }
}

/// A connector-space object for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsView {
    /// The connector.
    pub connector: String,
    /// Internal id.
    pub id: u64,
    /// Anchor.
    pub anchor: Option<String>,
    /// DN.
    pub dn: Option<String>,
    /// Object type.
    pub object_type: String,
    /// Lifecycle state.
    pub state: String,
    /// The metaverse object and how it is linked.
    pub link: Option<(MvId, String)>,
    /// Synchronized attributes.
    pub hologram: Vec<(String, serde_json::Value)>,
    /// Staged import: kind and new attributes.
    pub pending_import: Option<(String, Vec<(String, serde_json::Value)>)>,
    /// Staged export.
    pub pending_export: Option<PendingChange>,
    /// Exported values awaiting confirmation.
    pub escrow: Vec<(String, serde_json::Value)>,
    /// The last error on this object.
    pub error: Option<(String, String)>,
}

pub(crate) fn cs_view(
    store: &Store,
    model: &Model,
    conn: Sym,
    anchor: &str,
) -> Result<Option<CsView>, StoreError> {
    let txn = store.begin();
    let key = resolve(&txn, conn, anchor)?;
    let Some(cs) = key.map(|k| txn.cs(k)).transpose()?.flatten() else {
        return Ok(None);
    };
    cs_view_of(store, model, &txn, &cs).map(Some)
}

/// The key of the object a person names in a connector space: by its
/// anchor, else its DN, else `cs:<id>`.
pub(crate) fn resolve(txn: &Txn<'_>, conn: Sym, named: &str) -> Result<Option<CsKey>, StoreError> {
    if let Some(k) = txn.by_anchor(conn, named)? {
        return Ok(Some(k));
    }
    if let Some(k) = txn.by_dn(conn, named)? {
        return Ok(Some(k));
    }
    Ok(named
        .strip_prefix("cs:")
        .and_then(|id| id.parse().ok())
        .map(|id| CsKey { conn, id }))
}

/// The connector-space object under `key`, for people.
pub(crate) fn cs_view_by_key(
    store: &Store,
    model: &Model,
    key: CsKey,
) -> Result<Option<CsView>, StoreError> {
    let txn = store.begin();
    match txn.cs(key)? {
        Some(cs) => cs_view_of(store, model, &txn, &cs).map(Some),
        None => Ok(None),
    }
}

fn cs_view_of(
    store: &Store,
    model: &Model,
    txn: &Txn<'_>,
    cs: &CsObject,
) -> Result<CsView, StoreError> {
    let conn = cs.key.conn;
    let attrs = |a: &crate::model::Attrs| -> Vec<(String, serde_json::Value)> {
        let mut out: Vec<_> = a
            .iter()
            .map(|(k, v)| (store.name(*k).to_string(), value_json(v)))
            .collect();
        out.sort_by(|x, y| x.0.cmp(&y.0));
        out
    };
    let form = model.ref_form(conn, true);
    Ok(CsView {
        connector: store.name(conn).to_string(),
        id: cs.key.id,
        anchor: cs.anchor.clone(),
        dn: cs.dn.clone(),
        object_type: store.name(cs.object_type).to_string(),
        state: format!("{:?}", cs.state).to_lowercase(),
        link: cs
            .link
            .map(|l| (l.mv, format!("{:?}", l.kind).to_lowercase())),
        hologram: attrs(&cs.hologram),
        pending_import: cs
            .pending_import
            .as_ref()
            .map(|p| (format!("{:?}", p.kind).to_lowercase(), attrs(&p.attrs))),
        pending_export: pending_change(store, txn, form, cs)?,
        escrow: cs
            .escrow
            .attrs
            .iter()
            .map(|(k, v)| (store.name(*k).to_string(), value_json(v)))
            .collect(),
        error: cs
            .error
            .as_ref()
            .map(|e| (e.code.clone(), e.message.clone())),
    })
}
