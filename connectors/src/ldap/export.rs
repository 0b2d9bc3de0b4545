//! Export: add (the type's objectClass set, an initial password where
//! configured, the new object's anchor read back), modify (attribute-level
//! add, replace and delete, with the Permissive Modify control so that a
//! change sent again is not an error), rename or move (modify DN), delete.
//! One operation per change, in the engine's order (references first), so
//! a failure is one object's; a lost connection stops the batch and leaves
//! the rest of unknown outcome. An object an administrator moved since the
//! last import is found by its anchor.

use std::collections::HashSet;

use engine::{
    Applied, AttrOp, ExportChange, ExportFailure, ExportOp, ExportReport, ExportResult, FailureKind,
};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapError, LdapResult, Mod};
use rules::dn::Dn;
use rules::Value;

use super::config::{is_listed, Flavor};
use super::conn::{export_failure, is_connection_lost, step_error};
use super::entry::{self, PASSWD_NOTREQD};
use super::password;
use super::Settings;

/// The Permissive Modify control (AD, Samba, OpenLDAP): adding a value
/// that is there, or deleting one that is not, succeeds.
const PERMISSIVE_MODIFY: &str = "1.2.840.113556.1.4.1413";

/// Why one change did not apply.
enum Failed {
    /// This object's failure; the batch goes on.
    Object(ExportFailure),
    /// The connection is gone; the batch stops.
    Connection(LdapError),
}

impl From<LdapError> for Failed {
    fn from(e: LdapError) -> Self {
        if is_connection_lost(&e) {
            Failed::Connection(e)
        } else {
            Failed::Object(export_failure(&e))
        }
    }
}

/// The LDAP result code of a failure, when it is one.
fn code(e: &LdapError) -> Option<u32> {
    match e {
        LdapError::LdapResult { result } => Some(result.rc),
        _ => None,
    }
}

/// Applies a batch in order.
pub(crate) async fn apply(
    settings: &Settings,
    ldap: &mut Ldap,
    batch: Vec<ExportChange>,
) -> ExportReport {
    let mut results = Vec::with_capacity(batch.len());
    for change in batch {
        let outcome = match one(settings, ldap, &change).await {
            Ok(applied) => Ok(applied),
            Err(Failed::Object(f)) => Err(f),
            Err(Failed::Connection(e)) => {
                return ExportReport {
                    results,
                    interrupted: Some(step_error(
                        &settings.shown,
                        "the connection was lost during export",
                        e,
                    )),
                };
            }
        };
        results.push(ExportResult {
            id: change.id,
            outcome,
        });
    }
    ExportReport::complete(results)
}

fn permanent(message: impl Into<String>) -> Failed {
    Failed::Object(ExportFailure::new(FailureKind::Permanent, message))
}

async fn one(
    settings: &Settings,
    ldap: &mut Ldap,
    change: &ExportChange,
) -> Result<Applied, Failed> {
    let Some(dn) = change.dn.as_deref() else {
        return Err(permanent("the object has no DN; an LDAP object needs one"));
    };
    let applied = || Applied {
        anchor: change.anchor.clone(),
    };
    match &change.op {
        ExportOp::Add { attributes } => add(settings, ldap, change, dn, attributes).await,
        ExportOp::Update { new_dn, changes } => {
            let mut at = dn.to_owned();
            if let Some(new_dn) = new_dn.as_deref().filter(|n| !rules::dn::same(n, dn)) {
                rename(settings, ldap, change, dn, new_dn).await?;
                at = new_dn.to_owned();
            }
            modify(settings, ldap, change, &at, changes).await?;
            Ok(applied())
        }
        ExportOp::Delete => {
            let deleted = settings
                .op(ldap)
                .delete(dn)
                .await
                .and_then(LdapResult::success);
            match deleted {
                Ok(_) => Ok(applied()),
                Err(e) if code(&e) == Some(32) => {
                    // Not at its DN: moved since the last import, or gone.
                    match moved(settings, ldap, change, dn).await? {
                        Some(now) => {
                            settings
                                .op(ldap)
                                .delete(&now)
                                .await
                                .and_then(LdapResult::success)?;
                            Ok(applied())
                        }
                        None => Err(e.into()),
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Where the object is now, when it is no longer at `dn` (an
/// administrator moved it since the last import): found by its anchor.
async fn moved(
    settings: &Settings,
    ldap: &mut Ldap,
    change: &ExportChange,
    dn: &str,
) -> Result<Option<String>, Failed> {
    let Some(anchor) = change.anchor.as_deref() else {
        return Ok(None);
    };
    Ok(settings
        .locate(ldap, anchor)
        .await?
        .filter(|now| !rules::dn::same(now, dn)))
}

/// Whether a class list names a user account (the only objects an
/// initial password is for).
fn is_account(classes: &[String]) -> bool {
    is_listed(classes, "user") || is_listed(classes, "inetOrgPerson")
}

async fn add(
    settings: &Settings,
    ldap: &mut Ldap,
    change: &ExportChange,
    dn: &str,
    attributes: &[(String, Value)],
) -> Result<Applied, Failed> {
    let config = &settings.config;
    let Some(ty) = config.object_types.get(&change.object_type) else {
        return Err(permanent(format!(
            "`{}` is not an object type of this connector",
            change.object_type
        )));
    };
    let classes = if ty.object_classes.is_empty() {
        std::slice::from_ref(&ty.object_class)
    } else {
        ty.object_classes.as_slice()
    };
    let anchor_name = config.anchor_attribute();
    let mut entry: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = Vec::new();
    let mut has_classes = false;
    let mut has_consistency = false;
    for (name, value) in attributes {
        let values: HashSet<Vec<u8>> = to_bytes(settings, name, value).into_iter().collect();
        // The directory assigns the anchor; an empty value is no value.
        if values.is_empty() || name.eq_ignore_ascii_case(anchor_name) && config.binary_anchor() {
            continue;
        }
        has_classes |= name.eq_ignore_ascii_case("objectClass");
        has_consistency |= name.eq_ignore_ascii_case("mS-DS-ConsistencyGuid");
        entry.push((name.clone().into_bytes(), values));
    }
    if !has_classes {
        entry.push((
            b"objectClass".to_vec(),
            classes.iter().map(|c| c.clone().into_bytes()).collect(),
        ));
    }
    if let (Some(p), true) = (&config.initial_password, is_account(classes)) {
        let made = password::generate(p.length);
        entry.push((
            b"unicodePwd".to_vec(),
            HashSet::from([password::unicode_pwd(&made)]),
        ));
    }
    match settings
        .op(ldap)
        .add(dn, entry)
        .await
        .and_then(LdapResult::success)
    {
        Ok(_) => {}
        Err(LdapError::LdapResult { result }) if result.rc == 68 => {
            let mut failure = export_failure(&LdapError::LdapResult { result });
            failure.existing_anchor = settings.anchor_at(ldap, dn).await?;
            if failure.existing_anchor.is_none() {
                // Nothing at the DN: another object holds one of the new
                // one's unique values (AD's sAMAccountName or
                // userPrincipalName). Not this object: never adopted.
                failure.kind = FailureKind::RejectedByPolicy;
                failure.message = format!(
                    "another entry already holds one of this object's unique values (such as sAMAccountName or userPrincipalName): {}",
                    failure.message
                );
            }
            return Err(Failed::Object(failure));
        }
        Err(LdapError::LdapResult { result }) if result.rc == 32 => {
            // The parent, or an object a reference names, is not there
            // yet: it may be exported later in this run.
            let failure = export_failure(&LdapError::LdapResult { result });
            return Err(Failed::Object(ExportFailure {
                kind: FailureKind::Retryable,
                message: format!(
                    "a DN the new object names (its parent, or a reference) does not exist yet: {}",
                    failure.message
                ),
                ..failure
            }));
        }
        Err(e) => return Err(e.into()),
    }
    // The add is done: what follows must not report it failed (the engine
    // would send it again). A lost connection leaves it of unknown
    // outcome, which `find_added` resolves by its DN.
    let anchor = match settings.anchor_at(ldap, dn).await {
        Ok(anchor) => anchor,
        Err(e) if is_connection_lost(&e) => return Err(Failed::Connection(e)),
        Err(e) => {
            tracing::warn!("{dn}: added, but its anchor could not be read back: {e}");
            None
        }
    };
    if config.consistency_guid && !has_consistency {
        if let Some(guid) = anchor.as_deref().and_then(entry::guid_bytes) {
            let set = HashSet::from([guid.to_vec()]);
            let written = settings
                .op(ldap)
                .modify(
                    dn,
                    vec![Mod::Replace(b"mS-DS-ConsistencyGuid".to_vec(), set)],
                )
                .await
                .and_then(LdapResult::success);
            if let Err(e) = written {
                tracing::warn!("{dn}: added, but mS-DS-ConsistencyGuid was not written: {e}");
            }
        }
    }
    Ok(Applied { anchor })
}

/// A value as the directory takes it; AD's `userAccountControl` without
/// the PASSWD_NOTREQD bit, which is AD's own (it is never read either).
fn to_bytes(settings: &Settings, name: &str, value: &Value) -> Vec<Vec<u8>> {
    if settings.config.flavor == Flavor::ActiveDirectory
        && name.eq_ignore_ascii_case("userAccountControl")
    {
        let masked = Value::list(value.items().iter().map(|v| {
            match v {
                Value::Int(n) => Value::Int(n & !PASSWD_NOTREQD),
                Value::Str(s) => s
                    .trim()
                    .parse::<i64>()
                    .map_or_else(|_| v.clone(), |n| Value::Int(n & !PASSWD_NOTREQD)),
                other => other.clone(),
            }
        }));
        return entry::to_bytes(&masked);
    }
    entry::to_bytes(value)
}

/// A rename or move: the new RDN, and the new parent when it changed. A
/// rename sent again (the modify after it failed and the change is
/// retried) finds the object at its new DN already: done.
async fn rename(
    settings: &Settings,
    ldap: &mut Ldap,
    change: &ExportChange,
    dn: &str,
    new_dn: &str,
) -> Result<(), Failed> {
    let (old, new) = match (Dn::parse(dn), Dn::parse(new_dn)) {
        (Ok(old), Ok(new)) => (old, new),
        (_, Err(e)) | (Err(e), _) => return Err(permanent(e.to_string())),
    };
    let Some(rdn) = new.rdn() else {
        return Err(permanent("the new DN is empty"));
    };
    let parent = new.parent().map(|p| p.to_string()).unwrap_or_default();
    let moved_out = old.parent().map(|p| p.normalized()) != new.parent().map(|p| p.normalized());
    let superior = moved_out.then_some(parent.as_str());
    let renamed = settings
        .op(ldap)
        .modifydn(dn, &rdn.to_string(), true, superior)
        .await
        .and_then(LdapResult::success);
    match renamed {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some(32) => {
            let there = settings.anchor_at(ldap, new_dn).await?;
            if there.is_some() && there == change.anchor {
                Ok(())
            } else {
                Err(e.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn modify(
    settings: &Settings,
    ldap: &mut Ldap,
    change: &ExportChange,
    dn: &str,
    changes: &[(String, AttrOp)],
) -> Result<(), Failed> {
    // The naming attribute changes with the DN, by the rename; the
    // directory refuses it in a modify.
    let naming: Vec<String> = Dn::parse(dn)
        .ok()
        .and_then(|d| {
            d.rdn()
                .map(|r| r.avas().iter().map(|a| a.attr.clone()).collect())
        })
        .unwrap_or_default();
    let mut mods = Vec::with_capacity(changes.len());
    for (name, op) in changes {
        if naming.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        let attr = name.clone().into_bytes();
        let set = |vs: &[Value]| -> HashSet<Vec<u8>> {
            vs.iter()
                .flat_map(|v| to_bytes(settings, name, v))
                .collect()
        };
        mods.push(match op {
            AttrOp::Replace(v) => {
                Mod::Replace(attr, to_bytes(settings, name, v).into_iter().collect())
            }
            AttrOp::Add(vs) => Mod::Add(attr, set(vs)),
            // An empty delete would remove every value.
            AttrOp::Remove(vs) if set(vs).is_empty() => continue,
            AttrOp::Remove(vs) => Mod::Delete(attr, set(vs)),
            AttrOp::Clear => Mod::Replace(attr, HashSet::new()),
        });
    }
    if mods.is_empty() {
        return Ok(());
    }
    let permissive = RawControl {
        ctype: PERMISSIVE_MODIFY.into(),
        crit: false,
        val: None,
    };
    let modified = settings
        .op(ldap)
        .with_controls(permissive.clone())
        .modify(dn, mods.clone())
        .await
        .and_then(LdapResult::success);
    match modified {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some(32) => {
            if settings.anchor_at(ldap, dn).await?.is_some() {
                // The object is there: a reference names one that is not (yet).
                let failure = export_failure(&e);
                return Err(Failed::Object(ExportFailure {
                    kind: FailureKind::Retryable,
                    message: format!(
                        "a DN the change names does not exist yet: {}",
                        failure.message
                    ),
                    ..failure
                }));
            }
            // Moved since the last import: changed where it is now.
            let Some(now) = moved(settings, ldap, change, dn).await? else {
                return Err(e.into());
            };
            settings
                .op(ldap)
                .with_controls(permissive)
                .modify(&now, mods)
                .await
                .and_then(LdapResult::success)?;
            Ok(())
        }
        Err(e) => {
            let mut failed = Failed::from(e);
            // "Already exists" is an add's answer; on a modify it is a
            // value conflict, and nothing to adopt.
            if let Failed::Object(f) = &mut failed {
                if f.kind == FailureKind::AlreadyExists {
                    f.kind = FailureKind::Permanent;
                }
            }
            Err(failed)
        }
    }
}
