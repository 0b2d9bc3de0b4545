//! The LDAP connector's configuration: what the operator writes under
//! `[connectors.<name>]` with `type = "ldap"`, and the validation pass that
//! lists every problem at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::common::SecretRef;

/// A directory (Active Directory, OpenLDAP, any LDAPv3 server) as a
/// connected system.
///
/// ```toml
/// [connectors.ad]
/// type = "ldap"
/// flavor = "active-directory"          # or "openldap", "ldap"
/// url = "ldaps://dc1.corp.example"     # or ldap://… (StartTLS is required)
/// bind_dn = "CN=svc-mvsync,OU=Service,DC=corp,DC=example"
/// password = { env = "MVSYNC_AD_PASSWORD" }
/// ca_file = "certs/corp-ca.pem"        # a private CA; the system's roots otherwise
/// base_dns = ["OU=Staff,DC=corp,DC=example"]
/// filter = "(!(objectClass=computer))"
///
/// [connectors.ad.object_types.user]
/// object_class = "user"
/// object_classes = ["top", "person", "organizationalPerson", "user"]
/// attributes = ["sAMAccountName", "displayName", "manager", "userAccountControl"]
/// references = ["manager"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// Which directory: it sets the anchor, the delta method and whether
    /// the server rewrites DN references on renames.
    #[serde(default)]
    pub flavor: Flavor,
    /// `ldaps://host[:port]`, or `ldap://host[:port]` upgraded by StartTLS.
    pub url: String,
    /// The DN (or, for AD, `user@domain`) to bind as; anonymous without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// The bind password, from the environment or a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// A PEM file of the CA that signed the server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// `false` turns certificate verification off: for tests only, logged
    /// as a warning on every connection.
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// `false` allows `ldap://` without StartTLS: for tests only; the
    /// password then crosses the network in clear, and is refused with it.
    #[serde(default = "yes")]
    pub starttls: bool,
    /// The subtrees imported and written; objects outside them are not the
    /// connector's.
    pub base_dns: Vec<String>,
    /// An LDAP filter (RFC 4515) every imported object must match, besides
    /// being of a configured type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The attribute whose value is each object's anchor: `objectGUID` for
    /// Active Directory, `entryUUID` otherwise. It must never change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// How a delta import finds what changed (default by flavor: `usn` for
    /// Active Directory, `syncrepl` for OpenLDAP, none otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaMethod>,
    /// Whether the server rewrites DN-valued attributes (manager, member)
    /// when the object they name is renamed (default: true for Active
    /// Directory; an OpenLDAP server with the refint overlay does too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrites_dn_references: Option<bool>,
    /// The object types, by name.
    pub object_types: BTreeMap<String, ObjectType>,
    /// Entries per page of a paged search (default 500).
    #[serde(default = "default_page_size")]
    pub page_size: i32,
    /// How long to wait for a connection or an answer, in seconds (default 30).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// How many changes one export call receives (default 100).
    #[serde(default = "default_batch_size")]
    pub export_batch_size: usize,
    /// Active Directory: an initial password for every added user, made by
    /// the connector and written as `unicodePwd` (over TLS only). It is
    /// never stored, logged or shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<InitialPassword>,
    /// Active Directory: write `mS-DS-ConsistencyGuid` from the new
    /// object's `objectGUID` when an add did not set it.
    #[serde(default)]
    pub consistency_guid: bool,
    /// Active Directory: days a deleted object stays a tombstone (default
    /// 180); a watermark older than that may have missed deletes.
    #[serde(default = "default_tombstone_days")]
    pub tombstone_lifetime_days: u64,
}

/// The kinds of directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavor {
    /// Microsoft Active Directory or a Samba AD domain controller.
    ActiveDirectory,
    /// OpenLDAP `slapd`.
    Openldap,
    /// Any LDAPv3 server.
    #[default]
    Ldap,
}

/// How a delta import finds what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeltaMethod {
    /// Active Directory: objects whose `uSNChanged` is above the stored
    /// high-water mark, tombstones included (the Show Deleted control).
    Usn,
    /// RFC 4533 content synchronisation (OpenLDAP's syncprov overlay),
    /// refresh-only, from the stored cookie.
    Syncrepl,
    /// None: every import is a full import.
    None,
}

/// One object type: which entries are of it and which attributes it has.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectType {
    /// The objectClass that marks an entry as of this type (`user`, `group`).
    pub object_class: String,
    /// The objectClass values an add writes (default: `object_class` alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_classes: Vec<String>,
    /// The attributes read and written (empty: every user attribute is read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// DN-valued attributes, imported as references (`manager`, `member`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Attributes that hold several values (`member`, `proxyAddresses`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multi_valued: Vec<String>,
    /// Attributes whose values are bytes (`objectSid`, `jpegPhoto`);
    /// `objectGUID` always is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binary: Vec<String>,
    /// Attributes whose values are integers (`userAccountControl` always is
    /// for Active Directory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integers: Vec<String>,
}

/// How the initial password is made.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InitialPassword {
    /// Its length (default 24, at least 12).
    #[serde(default = "default_password_length")]
    pub length: usize,
}

fn yes() -> bool {
    true
}
fn default_page_size() -> i32 {
    500
}
fn default_timeout() -> u64 {
    30
}
fn default_batch_size() -> usize {
    100
}
fn default_tombstone_days() -> u64 {
    180
}
fn default_password_length() -> usize {
    24
}

/// Every problem of a configuration, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LDAP connector configuration:\n  - {}", .0.join("\n  - "))]
pub struct LdapConfigError(pub Vec<String>);

/// The integer attributes of Active Directory's user and group classes
/// that flows compute with (BitAnd, BitOr, comparisons).
const AD_INTEGERS: &[&str] = &[
    "userAccountControl",
    "accountExpires",
    "pwdLastSet",
    "groupType",
    "primaryGroupID",
    "sAMAccountType",
    "uSNChanged",
    "uSNCreated",
];

impl LdapConfig {
    /// The anchor attribute.
    pub fn anchor_attribute(&self) -> &str {
        match (&self.anchor, self.flavor) {
            (Some(a), _) => a,
            (None, Flavor::ActiveDirectory) => "objectGUID",
            (None, _) => "entryUUID",
        }
    }

    /// The delta method.
    pub fn delta_method(&self) -> DeltaMethod {
        match (self.delta, self.flavor) {
            (Some(d), _) => d,
            (None, Flavor::ActiveDirectory) => DeltaMethod::Usn,
            (None, Flavor::Openldap) => DeltaMethod::Syncrepl,
            (None, Flavor::Ldap) => DeltaMethod::None,
        }
    }

    /// Whether the server rewrites DN references on renames.
    pub fn rewrites_references(&self) -> bool {
        self.rewrites_dn_references
            .unwrap_or(self.flavor == Flavor::ActiveDirectory)
    }

    /// Whether the anchor attribute's values are bytes (a GUID).
    pub fn binary_anchor(&self) -> bool {
        self.anchor_attribute().eq_ignore_ascii_case("objectGUID")
    }

    /// Whether `attribute` of `ty` holds bytes.
    pub fn is_binary(&self, ty: &ObjectType, attribute: &str) -> bool {
        is_listed(&ty.binary, attribute)
            || attribute.eq_ignore_ascii_case("objectGUID")
            || self.flavor == Flavor::ActiveDirectory
                && is_listed(&["objectSid", "mS-DS-ConsistencyGuid"], attribute)
    }

    /// Whether `attribute` of `ty` holds integers.
    pub fn is_integer(&self, ty: &ObjectType, attribute: &str) -> bool {
        is_listed(&ty.integers, attribute)
            || self.flavor == Flavor::ActiveDirectory && is_listed(AD_INTEGERS, attribute)
    }

    /// Whether the connection is encrypted (LDAPS, or StartTLS).
    pub fn encrypted(&self) -> bool {
        self.url.starts_with("ldaps://") || self.starttls
    }

    /// Checks everything that can be checked without the server.
    pub fn validate(&self) -> Result<(), LdapConfigError> {
        let mut problems = Vec::new();
        if !(self.url.starts_with("ldap://") || self.url.starts_with("ldaps://")) {
            problems.push(format!(
                "`url` must start with ldap:// or ldaps://, not `{}`",
                shown_url(&self.url)
            ));
        } else if self.url.contains('@') {
            problems.push(
                "`url` must not hold credentials: give `bind_dn` and `password` instead".into(),
            );
        }
        if self.password.is_some() && self.bind_dn.is_none() {
            problems.push("`password` is set but `bind_dn` is not".into());
        }
        if self.bind_dn.is_some() && self.password.is_none() {
            problems.push("`bind_dn` is set but `password` is not".into());
        }
        if self.password.is_some() && !self.encrypted() {
            problems.push(
                "a password is never sent over ldap:// without StartTLS: use ldaps:// or `starttls = true`"
                    .into(),
            );
        }
        if self.base_dns.is_empty() {
            problems.push("`base_dns` must name at least one subtree".into());
        }
        for base in &self.base_dns {
            if let Err(e) = rules::dn::Dn::parse(base) {
                problems.push(format!("`base_dns`: `{base}` is not a DN: {e}"));
            }
        }
        if let Some(filter) = &self.filter {
            if ldap3::parse_filter(filter).is_err() {
                problems.push(format!(
                    "`filter` is not an LDAP filter (RFC 4515): `{filter}`"
                ));
            }
        }
        if self.object_types.is_empty() {
            problems.push("`object_types` must declare at least one type".into());
        }
        for (name, ty) in &self.object_types {
            if ty.object_class.trim().is_empty() {
                problems.push(format!("object type `{name}`: `object_class` is empty"));
            }
            for (key, list) in [
                ("references", &ty.references),
                ("multi_valued", &ty.multi_valued),
                ("binary", &ty.binary),
                ("integers", &ty.integers),
            ] {
                if ty.attributes.is_empty() {
                    continue;
                }
                for attr in list {
                    if !is_listed(&ty.attributes, attr) {
                        problems.push(format!(
                            "object type `{name}`: `{key}` names `{attr}`, which is not in `attributes`"
                        ));
                    }
                }
            }
        }
        if self.page_size < 1 {
            problems.push("`page_size` must be at least 1".into());
        }
        if self.export_batch_size == 0 {
            problems.push("`export_batch_size` must be at least 1".into());
        }
        if let Some(p) = &self.initial_password {
            if self.flavor != Flavor::ActiveDirectory {
                problems.push("`initial_password` is for Active Directory (`unicodePwd`)".into());
            }
            if p.length < 12 || p.length > 120 {
                problems.push("`initial_password.length` must be between 12 and 120".into());
            }
            if !self.encrypted() {
                problems.push(
                    "`initial_password` needs an encrypted connection (ldaps:// or StartTLS)"
                        .into(),
                );
            }
        }
        if self.consistency_guid && self.flavor != Flavor::ActiveDirectory {
            problems.push("`consistency_guid` is for Active Directory".into());
        }
        if self.delta_method() == DeltaMethod::Usn && self.flavor != Flavor::ActiveDirectory {
            problems.push("`delta = \"usn\"` is for Active Directory".into());
        }
        // The deltas name deleted objects by these: another anchor would
        // never match them, and deletes would be missed.
        let anchor = self.anchor_attribute();
        match self.delta_method() {
            DeltaMethod::Usn if !anchor.eq_ignore_ascii_case("objectGUID") => problems.push(format!(
                "`delta = \"usn\"` needs `anchor = \"objectGUID\"` (tombstones keep only it), not `{anchor}`"
            )),
            DeltaMethod::Syncrepl if !anchor.eq_ignore_ascii_case("entryUUID") => {
                problems.push(format!(
                    "`delta = \"syncrepl\"` needs `anchor = \"entryUUID\"` (RFC 4533 names deleted entries by it), not `{anchor}`"
                ))
            }
            _ => {}
        }
        if self.timeout_secs == 0 {
            problems.push("`timeout_secs` must be at least 1".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LdapConfigError(problems))
        }
    }
}

/// Whether `list` names `attribute` (attribute names are case-insensitive).
pub(crate) fn is_listed(list: &[impl AsRef<str>], attribute: &str) -> bool {
    list.iter()
        .any(|a| a.as_ref().eq_ignore_ascii_case(attribute))
}

/// The URL as it may be shown: scheme, host and port only.
pub(crate) fn shown_url(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.rsplit('@').next().unwrap_or(rest);
    let host = host.split('/').next().unwrap_or(host);
    match url.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://{host}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problems(toml_text: &str) -> Vec<String> {
        let config: LdapConfig = toml::from_str(toml_text).unwrap();
        config.validate().map_or_else(|e| e.0, |()| Vec::new())
    }

    const TYPES: &str = "[object_types.user]\nobject_class = \"user\"\n";

    #[test]
    fn a_valid_configuration_has_no_problem() {
        let ok = format!(
            "flavor = \"active-directory\"\nurl = \"ldaps://dc1\"\nbind_dn = \"svc@corp\"\npassword = {{ env = \"P\" }}\nbase_dns = [\"DC=corp\"]\n{TYPES}"
        );
        assert_eq!(problems(&ok), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let bad = format!(
            "flavor = \"openldap\"\nurl = \"http://x@y\"\nbind_dn = \"cn=a\"\npassword = {{ env = \"P\" }}\nstarttls = false\nbase_dns = [\"not a dn\"]\nfilter = \"(broken\"\nanchor = \"uid\"\npage_size = 0\ntimeout_secs = 0\ninitial_password = {{ length = 8 }}\n{TYPES}"
        );
        let found = problems(&bad).join("\n");
        for expected in [
            "`url` must start with ldap:// or ldaps://",
            "`base_dns`: `not a dn` is not a DN",
            "`filter` is not an LDAP filter",
            "`delta = \"syncrepl\"` needs `anchor = \"entryUUID\"`",
            "`page_size` must be at least 1",
            "`timeout_secs` must be at least 1",
            "`initial_password` is for Active Directory",
            "`initial_password.length` must be between 12 and 120",
        ] {
            assert!(
                found.contains(expected),
                "{expected} missing from:\n{found}"
            );
        }
        let clear = format!(
            "url = \"ldap://x\"\nbind_dn = \"cn=a\"\npassword = {{ env = \"P\" }}\nstarttls = false\nbase_dns = [\"dc=x\"]\n{TYPES}"
        );
        assert!(
            problems(&clear)
                .join("\n")
                .contains("a password is never sent over ldap:// without StartTLS"),
            "{:?}",
            problems(&clear)
        );
    }
}
