//! The LDAP connector: Active Directory (and Samba AD), OpenLDAP, or any
//! LDAPv3 directory, one entry per object, named by its DN.
//!
//! - [`config`]: the keys an operator writes, and their validation.
//! - `conn`: connecting (LDAPS or StartTLS, certificates verified unless a
//!   test turns it off, loudly), the bind with the password from the
//!   secret, retry of transient failures; LDAP result codes as error kinds.
//! - `entry`: entries to objects (type by objectClass, GUID anchors, bytes,
//!   integers, DN references, ranged values) and values to bytes.
//! - `import`: paged full import; delta by `uSNChanged` and tombstones
//!   (AD) or RFC 4533 (OpenLDAP). `watermark`: its stored form.
//! - `export`: add, modify, rename or move, delete. `password`: AD's
//!   initial password.
//!
//! What the engine sees:
//! - The anchor is `objectGUID` (AD, in its text form) or `entryUUID`, which
//!   the directory assigns: adds are recorded in flight and `find_added`
//!   looks for the entry at the add's DN.
//! - DN-valued attributes listed in `references` are references by DN; the
//!   directory rewrites them on renames when it says so
//!   (`rewrites_dn_references`, true for AD).
//! - AD's `userAccountControl` is read without PASSWD_NOTREQD (0x20), the
//!   bit AD sets on its own on an account added without a password, so
//!   that an exported 514 confirms as 514 and does not come back as 546.
//!
//! Invariant: every value placed in a DN or a filter is escaped (RFC 4514
//! through `rules::dn`, RFC 4515 through `ldap3::ldap_escape`), and the
//! password only ever reaches the bind.

pub mod config;
mod conn;
mod entry;
mod export;
mod import;
mod password;
mod watermark;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use engine::{
    AttributeSchema, CheckReport, Connector, ConnectorError, ConnectorErrorKind, ConnectorInfo,
    ExportChange, ExportOp, ExportReport, ImportStream, ObjectTypeSchema, RefKind,
};
use ldap3::{Ldap, Scope};
use rules::ValueType;
use tokio::sync::Mutex;

pub use config::{LdapConfig, LdapConfigError};

use config::is_listed;
use conn::step_error;
use entry::RawEntry;

/// The well-known GUID of Active Directory's Deleted Objects container.
const DELETED_OBJECTS_WKGUID: &str = "18e2ea80684f11d2b9aa00c04f79f805";

/// A validated configuration, with what every part needs from it.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: LdapConfig,
    /// The config file's folder, for the CA file and secret files.
    pub(crate) base_dir: PathBuf,
    /// The server as messages name it (`ldaps://dc1:636`).
    pub(crate) shown: String,
}

impl Settings {
    /// `ldap` with this connector's timeout set for its next operation
    /// (ldap3 takes the timeout with each operation, and a clone of a
    /// handle starts without one).
    pub(crate) fn op<'l>(&self, ldap: &'l mut Ldap) -> &'l mut Ldap {
        ldap.with_timeout(std::time::Duration::from_secs(self.config.timeout_secs))
    }

    /// The root DSE's attributes.
    pub(crate) async fn root_dse(&self, ldap: &mut Ldap) -> Result<RawEntry, ConnectorError> {
        let (found, _) = self
            .op(ldap)
            .search(
                "",
                Scope::Base,
                "(objectClass=*)",
                vec![
                    "highestCommittedUSN",
                    "dsServiceName",
                    "defaultNamingContext",
                    "namingContexts",
                    "supportedControl",
                    "vendorName",
                    "vendorVersion",
                ],
            )
            .await
            .and_then(|r| r.success())
            .map_err(|e| step_error(&self.shown, "cannot read the root DSE", e))?;
        match found.into_iter().next() {
            Some(e) => RawEntry::parse(e).map_err(|e| self.malformed(&e)),
            None => Err(self.missing("the root DSE")),
        }
    }

    /// The anchor of the entry at `dn`; `None` when there is none.
    pub(crate) async fn anchor_at(
        &self,
        ldap: &mut Ldap,
        dn: &str,
    ) -> Result<Option<String>, ldap3::LdapError> {
        let name = self.config.anchor_attribute();
        match self
            .op(ldap)
            .search(dn, Scope::Base, "(objectClass=*)", vec![name])
            .await
            .and_then(|r| r.success())
        {
            Ok((found, _)) => Ok(found
                .into_iter()
                .next()
                .and_then(|e| RawEntry::parse(e).ok())
                .and_then(|e| entry::anchor(&self.config, &e).ok())),
            Err(ldap3::LdapError::LdapResult { result }) if result.rc == 32 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The DN of the entry with this anchor under the base DNs (it may
    /// have moved since the last import); `None` when there is none.
    pub(crate) async fn locate(
        &self,
        ldap: &mut Ldap,
        anchor: &str,
    ) -> Result<Option<String>, ldap3::LdapError> {
        let Some(filter) = entry::anchor_filter(&self.config, anchor) else {
            return Ok(None);
        };
        for base in &self.config.base_dns {
            let (found, _) = self
                .op(ldap)
                .search(base, Scope::Subtree, &filter, vec!["1.1"])
                .await?
                .success()?;
            if let Some(e) = found
                .into_iter()
                .next()
                .and_then(|e| RawEntry::parse(e).ok())
            {
                return Ok(Some(e.dn));
            }
        }
        Ok(None)
    }

    /// The server sent something ldap3 could not parse.
    pub(crate) fn malformed(&self, what: &str) -> ConnectorError {
        ConnectorError::new(format!("{}: the server sent {what}", self.shown))
    }

    /// The server did not say something it must.
    pub(crate) fn missing(&self, what: &str) -> ConnectorError {
        ConnectorError::new(format!("{}: the server did not return {what}", self.shown))
    }

    /// Whether a stored USN watermark (`was`) still holds on this DC now.
    pub(crate) fn check_usn_mark(
        &self,
        was: &watermark::UsnMark,
        now: &watermark::UsnMark,
    ) -> Result<(), ConnectorError> {
        let (then, taken, now_at) = (was.usn, was.taken_at, now.taken_at);
        let (was, now_id, now) = (&was.invocation_id, &now.invocation_id, now.usn);
        let shown = &self.shown;
        if !was.eq_ignore_ascii_case(now_id) {
            return Err(ConnectorError::watermark_expired(format!(
                "{shown}: the watermark was taken on another domain controller database (invocationId {was}, now {now_id}: another DC, or this one restored); its USNs mean nothing here; a full import is needed"
            )));
        }
        if then > now {
            return Err(ConnectorError::watermark_expired(format!(
                "{shown}: the watermark's USN {then} is above the DC's highest committed USN {now} (restored from a backup?); a full import is needed"
            )));
        }
        let lifetime = i64::try_from(self.config.tombstone_lifetime_days)
            .unwrap_or(i64::MAX / 86_400)
            .saturating_mul(86_400);
        if now_at.saturating_sub(taken) > lifetime {
            return Err(ConnectorError::watermark_expired(format!(
                "{shown}: the watermark is older than the tombstone lifetime ({} days): deletes since then may be gone; a full import is needed",
                self.config.tombstone_lifetime_days
            )));
        }
        Ok(())
    }
}

/// A directory as a connected system.
#[derive(Debug)]
pub struct LdapConnector {
    settings: Arc<Settings>,
    /// The bound connection, opened on first use (so `validate` touches no
    /// server) and again after it was lost.
    session: Mutex<Option<Ldap>>,
}

impl LdapConnector {
    /// Validates `config`; touches no server.
    pub fn new(config: LdapConfig, base_dir: &Path) -> Result<Self, LdapConfigError> {
        config.validate()?;
        Ok(LdapConnector {
            settings: Arc::new(Settings {
                shown: config::shown_url(&config.url),
                base_dir: base_dir.to_owned(),
                config,
            }),
            session: Mutex::new(None),
        })
    }

    /// The bound connection, opening one when there is none or it was lost.
    async fn session(&self) -> Result<Ldap, ConnectorError> {
        let mut session = self.session.lock().await;
        if let Some(ldap) = session.as_mut() {
            if !ldap.is_closed() {
                return Ok(ldap.clone());
            }
        }
        let opened = conn::open(&self.settings.config, &self.settings.base_dir).await?;
        *session = Some(opened.clone());
        Ok(opened)
    }

    async fn forget_session(&self) {
        *self.session.lock().await = None;
    }
}

#[async_trait]
impl Connector for LdapConnector {
    fn info(&self) -> ConnectorInfo {
        let config = &self.settings.config;
        let object_types = config
            .object_types
            .iter()
            .map(|(name, ty)| {
                // Declared: references, multi-valued attributes, and every
                // attribute of a type other than text (GUIDs, SIDs and
                // AD's integers included), so that values flowing out
                // are coerced to it.
                let mut names: Vec<&String> = ty.references.iter().collect();
                let typed = ty
                    .attributes
                    .iter()
                    .filter(|a| config.is_binary(ty, a) || config.is_integer(ty, a));
                for a in ty
                    .multi_valued
                    .iter()
                    .chain(&ty.binary)
                    .chain(&ty.integers)
                    .chain(typed)
                {
                    if !is_listed(&names, a) {
                        names.push(a);
                    }
                }
                let attributes = names
                    .into_iter()
                    .map(|a| AttributeSchema {
                        name: a.clone(),
                        value_type: if config.is_binary(ty, a) {
                            ValueType::Binary
                        } else if config.is_integer(ty, a) {
                            ValueType::Integer
                        } else {
                            ValueType::String
                        },
                        multi_valued: is_listed(&ty.multi_valued, a),
                        reference: is_listed(&ty.references, a).then_some(RefKind::Dn),
                    })
                    .collect();
                ObjectTypeSchema {
                    name: name.clone(),
                    // The directory assigns the anchor.
                    anchor_attribute: None,
                    attributes,
                }
            })
            .collect();
        ConnectorInfo {
            object_types,
            delta_import: config.delta_method() != config::DeltaMethod::None,
            export: true,
            has_dn: true,
            rewrites_dn_references: config.rewrites_references(),
            export_batch_size: config.export_batch_size,
        }
    }

    async fn full_import(&self) -> Result<ImportStream, ConnectorError> {
        let ldap = self.session().await?;
        import::full(Arc::clone(&self.settings), ldap).await
    }

    async fn delta_import(&self, watermark: Option<&str>) -> Result<ImportStream, ConnectorError> {
        let ldap = self.session().await?;
        import::delta(Arc::clone(&self.settings), ldap, watermark).await
    }

    async fn export(&self, batch: Vec<ExportChange>) -> Result<ExportReport, ConnectorError> {
        let mut ldap = self.session().await?;
        let report = export::apply(&self.settings, &mut ldap, batch).await;
        if report.interrupted.is_some() {
            self.forget_session().await;
        }
        Ok(report)
    }

    async fn find_added(&self, change: &ExportChange) -> Result<Option<String>, ConnectorError> {
        let (ExportOp::Add { .. }, Some(dn)) = (&change.op, change.dn.as_deref()) else {
            return Ok(None);
        };
        let mut ldap = self.session().await?;
        self.settings.anchor_at(&mut ldap, dn).await.map_err(|e| {
            step_error(
                &self.settings.shown,
                "cannot look up an add of unknown outcome",
                e,
            )
        })
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let settings = &self.settings;
        let config = &settings.config;
        let mut ldap = self.session().await?;
        let mut checks = vec![format!("reached {}", settings.shown)];
        checks.push(match &config.bind_dn {
            Some(dn) => format!("bound as {dn}"),
            None => "bound anonymously".to_string(),
        });
        let dse = settings.root_dse(&mut ldap).await?;
        if let Some(vendor) = dse.text("vendorName") {
            checks.push(format!(
                "server: {vendor} {}",
                dse.text("vendorVersion").unwrap_or_default()
            ));
        }
        let controls: Vec<String> = dse
            .get("supportedControl")
            .unwrap_or_default()
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let needed = match config.delta_method() {
            config::DeltaMethod::Usn => vec![(conn::SHOW_DELETED, "Show Deleted")],
            config::DeltaMethod::Syncrepl => vec![(
                "1.3.6.1.4.1.4203.1.9.1.1",
                "content synchronisation (RFC 4533)",
            )],
            config::DeltaMethod::None => vec![],
        };
        for (oid, name) in [("1.2.840.113556.1.4.319", "paged results (RFC 2696)")]
            .into_iter()
            .chain(needed)
        {
            if !controls.iter().any(|c| c == oid) {
                return Err(ConnectorError::of(
                    ConnectorErrorKind::Configuration,
                    format!(
                        "{}: the server does not offer the {name} control ({oid}), which this configuration needs",
                        settings.shown
                    ),
                ));
            }
            checks.push(format!("the server offers {name}"));
        }
        for base in &config.base_dns {
            settings
                .op(&mut ldap)
                .search(base, Scope::Base, "(objectClass=*)", vec!["1.1"])
                .await
                .and_then(|r| r.success())
                .map_err(|e| {
                    step_error(
                        &settings.shown,
                        &format!("cannot read the base DN {base}"),
                        e,
                    )
                })?;
            checks.push(format!("the base DN {base} is readable"));
        }
        if config.delta_method() == config::DeltaMethod::Usn {
            // Deletes are seen through tombstones, which AD shows only to
            // accounts with the right to list Deleted Objects.
            let domain = dse
                .text("defaultNamingContext")
                .ok_or_else(|| settings.missing("defaultNamingContext in the root DSE"))?;
            let container = format!("<WKGUID={DELETED_OBJECTS_WKGUID},{domain}>");
            let found = settings
                .op(&mut ldap)
                .with_controls(conn::show_deleted())
                .search(&container, Scope::Base, "(objectClass=*)", vec!["1.1"])
                .await
                .and_then(|r| r.success());
            match found {
                Ok((entries, _)) if !entries.is_empty() => {
                    checks.push("deleted objects (tombstones) are readable".into());
                }
                _ => {
                    return Err(ConnectorError::of(
                        ConnectorErrorKind::Configuration,
                        format!(
                            "{}: {} cannot read the Deleted Objects container of {domain}: a delta import would not see deletes; grant it the right to list deleted objects (or use an account that has it)",
                            settings.shown,
                            config.bind_dn.as_deref().unwrap_or("the anonymous bind"),
                        ),
                    ));
                }
            }
        }
        Ok(CheckReport { checks })
    }
}
