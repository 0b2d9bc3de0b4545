//! Export: add (the type's objectClass set, an initial password where
//! configured, the new object's anchor read back), modify (attribute-level
//! add, replace and delete), rename or move (modify DN), delete. One
//! operation per change, in the engine's order (references first), so a
//! failure is one object's; a lost connection stops the batch and leaves
//! the rest of unknown outcome.

use std::collections::HashSet;

use engine::{
    Applied, AttrOp, ExportChange, ExportFailure, ExportOp, ExportReport, ExportResult, FailureKind,
};
use ldap3::{Ldap, LdapError, LdapResult, Mod};
use rules::dn::Dn;
use rules::Value;

use super::conn::{export_failure, is_connection_lost, step_error};
use super::entry;
use super::password;
use super::Settings;

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
    match &change.op {
        ExportOp::Add { attributes } => add(settings, ldap, change, dn, attributes).await,
        ExportOp::Update { new_dn, changes } => {
            let at = match new_dn {
                Some(new_dn) if !rules::dn::same(new_dn, dn) => {
                    rename(ldap, dn, new_dn).await?;
                    new_dn.as_str()
                }
                _ => dn,
            };
            modify(settings, ldap, at, changes).await?;
            Ok(Applied {
                anchor: change.anchor.clone(),
            })
        }
        ExportOp::Delete => match ldap.delete(dn).await.and_then(LdapResult::success) {
            Ok(_) => Ok(Applied {
                anchor: change.anchor.clone(),
            }),
            Err(e) => Err(e.into()),
        },
    }
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
    let anchor_name = config.anchor_attribute();
    let mut entry: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = Vec::new();
    let mut has_classes = false;
    let mut has_consistency = false;
    for (name, value) in attributes {
        let values: HashSet<Vec<u8>> = entry::to_bytes(value).into_iter().collect();
        // The directory assigns the anchor; an empty value is no value.
        if values.is_empty() || name.eq_ignore_ascii_case(anchor_name) && config.binary_anchor() {
            continue;
        }
        has_classes |= name.eq_ignore_ascii_case("objectClass");
        has_consistency |= name.eq_ignore_ascii_case("mS-DS-ConsistencyGuid");
        entry.push((name.clone().into_bytes(), values));
    }
    if !has_classes {
        let classes = if ty.object_classes.is_empty() {
            std::slice::from_ref(&ty.object_class)
        } else {
            ty.object_classes.as_slice()
        };
        entry.push((
            b"objectClass".to_vec(),
            classes.iter().map(|c| c.clone().into_bytes()).collect(),
        ));
    }
    if let Some(p) = &config.initial_password {
        let made = password::generate(p.length);
        entry.push((
            b"unicodePwd".to_vec(),
            HashSet::from([password::unicode_pwd(&made)]),
        ));
    }
    match ldap.add(dn, entry).await.and_then(LdapResult::success) {
        Ok(_) => {}
        Err(LdapError::LdapResult { result }) if result.rc == 68 => {
            let mut failure = export_failure(&LdapError::LdapResult { result });
            failure.existing_anchor = read_anchor(settings, ldap, dn).await?;
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
    let anchor = read_anchor(settings, ldap, dn).await?;
    if config.consistency_guid && !has_consistency {
        let guid = anchor.as_deref().and_then(entry::guid_bytes);
        if let Some(guid) = guid {
            let set = HashSet::from([guid.to_vec()]);
            ldap.modify(
                dn,
                vec![Mod::Replace(b"mS-DS-ConsistencyGuid".to_vec(), set)],
            )
            .await
            .and_then(LdapResult::success)?;
        }
    }
    Ok(Applied { anchor })
}

/// The anchor of the entry at `dn`, if there is one.
async fn read_anchor(
    settings: &Settings,
    ldap: &mut Ldap,
    dn: &str,
) -> Result<Option<String>, Failed> {
    Ok(settings.anchor_at(ldap, dn).await?)
}

/// A rename or move: the new RDN, and the new parent when it changed.
async fn rename(ldap: &mut Ldap, dn: &str, new_dn: &str) -> Result<(), Failed> {
    let (old, new) = match (Dn::parse(dn), Dn::parse(new_dn)) {
        (Ok(old), Ok(new)) => (old, new),
        (_, Err(e)) | (Err(e), _) => return Err(permanent(e.to_string())),
    };
    let Some(rdn) = new.rdn() else {
        return Err(permanent("the new DN is empty"));
    };
    let parent = new.parent().map(|p| p.to_string()).unwrap_or_default();
    let moved = old.parent().map(|p| p.normalized()) != new.parent().map(|p| p.normalized());
    let superior = moved.then_some(parent.as_str());
    ldap.modifydn(dn, &rdn.to_string(), true, superior)
        .await
        .and_then(LdapResult::success)?;
    Ok(())
}

async fn modify(
    settings: &Settings,
    ldap: &mut Ldap,
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
        let set =
            |vs: &[Value]| -> HashSet<Vec<u8>> { vs.iter().flat_map(entry::to_bytes).collect() };
        mods.push(match op {
            AttrOp::Replace(v) => Mod::Replace(attr, entry::to_bytes(v).into_iter().collect()),
            AttrOp::Add(vs) => Mod::Add(attr, set(vs)),
            AttrOp::Remove(vs) => Mod::Delete(attr, set(vs)),
            AttrOp::Clear => Mod::Replace(attr, HashSet::new()),
        });
    }
    if mods.is_empty() {
        return Ok(());
    }
    match ldap.modify(dn, mods).await.and_then(LdapResult::success) {
        Ok(_) => Ok(()),
        Err(LdapError::LdapResult { result }) if result.rc == 32 => {
            let failure = export_failure(&LdapError::LdapResult { result });
            if read_anchor(settings, ldap, dn).await?.is_some() {
                // The object is there: a reference names one that is not (yet).
                Err(Failed::Object(ExportFailure {
                    kind: FailureKind::Retryable,
                    message: format!(
                        "a DN the change names does not exist yet: {}",
                        failure.message
                    ),
                    ..failure
                }))
            } else {
                Err(Failed::Object(failure))
            }
        }
        Err(e) => Err(e.into()),
    }
}
