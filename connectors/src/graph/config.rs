//! The Microsoft Graph connector's configuration: what the operator writes
//! under `[connectors.<name>]` with `type = "graph"`, and the validation
//! pass that lists every problem at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::common::SecretRef;

/// An Entra ID tenant, reached through Microsoft Graph with an app
/// registration's client credentials.
///
/// ```toml
/// [connectors.entra]
/// type = "graph"
/// tenant = "contoso.onmicrosoft.com"     # or the tenant's GUID
/// client_id = "6731de76-14a6-49ae-97bc-6eba6914391e"
/// client_secret = { env = "MVSYNC_GRAPH_SECRET" }
/// # or, instead of a secret, a certificate the app registration holds:
/// # client_certificate = { certificate = "certs/mvsync.pem", private_key = { file = "certs/mvsync.key" } }
///
/// [connectors.entra.object_types.user]
/// attributes = ["userPrincipalName", "displayName", "mailNickname",
///               "accountEnabled", "employeeId", "onPremisesImmutableId", "manager"]
/// initial_password = { length = 16 }
///
/// [connectors.entra.object_types.group]
/// attributes = ["displayName", "mailNickname", "mailEnabled", "securityEnabled", "members"]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// The tenant: its GUID or one of its domains.
    pub tenant: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// The app's client secret, from the environment or a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretRef>,
    /// Or a certificate credential: the app signs a client assertion with
    /// its private key instead of sending a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
    /// Microsoft Graph's base URL, version included (default
    /// `https://graph.microsoft.com/v1.0`; a national cloud has its own).
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// The identity platform's authority; the token endpoint is
    /// `{authority}/{tenant}/oauth2/v2.0/token` (default
    /// `https://login.microsoftonline.com`).
    #[serde(default = "default_authority")]
    pub authority: String,
    /// The scope asked for (default `https://graph.microsoft.com/.default`).
    #[serde(default = "default_scope")]
    pub scope: String,
    /// A PEM file of a CA to trust besides the system's roots (a proxy
    /// that inspects TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The object types: `user` and `group`, the Graph resources.
    pub object_types: BTreeMap<String, ObjectType>,
    /// How long to wait for an answer, in seconds (default 60).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Writes sent per second at most (default 20: Graph's documented limit
    /// for identity writes of 3,000 per 150 seconds per app and tenant).
    #[serde(default = "default_writes_per_second")]
    pub writes_per_second: f64,
    /// How many changes one export call receives (default 100); they are
    /// sent as JSON batches of at most 20 requests.
    #[serde(default = "default_batch_size")]
    pub export_batch_size: usize,
    /// How often a throttled or failed request is tried in all (default 8).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
}

/// A certificate credential of the app registration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificate {
    /// The certificate uploaded to the app registration (PEM).
    pub certificate: PathBuf,
    /// Its private key (PEM PKCS#8, RSA), from a file or the environment.
    pub private_key: SecretRef,
}

/// One object type (`user` or `group`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectType {
    /// The properties read (`$select`) and written; `manager` (users) and
    /// `members` (groups) are references by object id.
    pub attributes: Vec<String>,
    /// Further properties that hold several values, besides the documented
    /// ones (`businessPhones`, `otherMails`, `proxyAddresses`, `groupTypes`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multi_valued: Vec<String>,
    /// Users: a password made for every created user and sent in its
    /// `passwordProfile`; never stored, logged or shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_password: Option<InitialPassword>,
}

/// How a created user's password is made.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InitialPassword {
    /// Its length (default 24, 12 to 256).
    #[serde(default = "default_password_length")]
    pub length: usize,
    /// Whether the user must change it at first sign-in (default true).
    #[serde(default = "yes")]
    pub force_change: bool,
}

/// The Graph resources the connector reads and writes.
pub(crate) const TYPES: [&str; 2] = ["user", "group"];

/// The reference property of each type: the user's manager, the group's members.
pub(crate) fn reference_of(object_type: &str) -> &'static str {
    if object_type == "group" {
        "members"
    } else {
        "manager"
    }
}

/// Documented properties of `user` and `group` that are booleans.
const BOOLEANS: &[&str] = &[
    "accountEnabled",
    "onPremisesSyncEnabled",
    "mailEnabled",
    "securityEnabled",
    "isAssignableToRole",
    "showInAddressList",
];

/// Documented properties that are collections of strings.
const MULTI_VALUED: &[&str] = &[
    "businessPhones",
    "otherMails",
    "proxyAddresses",
    "imAddresses",
    "groupTypes",
];

/// Documented properties whose values are JSON objects, which the
/// connector does not map.
const COMPLEX: &[&str] = &[
    "identities",
    "onPremisesExtensionAttributes",
    "employeeOrgData",
    "assignedLicenses",
    "assignedPlans",
    "provisionedPlans",
    "licenseAssignmentStates",
    "onPremisesProvisioningErrors",
    "authorizationInfo",
    "customSecurityAttributes",
];

/// Properties Graph computes or that are written another way.
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "deletedDateTime",
    "passwordProfile",
];

fn yes() -> bool {
    true
}
fn default_graph_url() -> String {
    "https://graph.microsoft.com/v1.0".into()
}
fn default_authority() -> String {
    "https://login.microsoftonline.com".into()
}
fn default_scope() -> String {
    "https://graph.microsoft.com/.default".into()
}
fn default_timeout() -> u64 {
    60
}
fn default_writes_per_second() -> f64 {
    20.0
}
fn default_batch_size() -> usize {
    100
}
fn default_attempts() -> u32 {
    8
}
fn default_password_length() -> usize {
    24
}

/// Every problem of a configuration, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Microsoft Graph connector configuration:\n  - {}", .0.join("\n  - "))]
pub struct GraphConfigError(pub Vec<String>);

impl ObjectType {
    /// Whether `property` holds several values.
    pub(crate) fn is_multi(&self, object_type: &str, property: &str) -> bool {
        MULTI_VALUED.contains(&property)
            || self.multi_valued.iter().any(|p| p == property)
            || property == reference_of(object_type) && object_type == "group"
    }

    /// Whether `property` is a boolean.
    pub(crate) fn is_boolean(property: &str) -> bool {
        BOOLEANS.contains(&property)
    }

    /// The `$select` of its reads.
    pub(crate) fn select(&self) -> String {
        self.attributes.join(",")
    }

    /// Whether this type reads and writes its reference property.
    pub(crate) fn has_reference(&self, object_type: &str) -> bool {
        let r = reference_of(object_type);
        self.attributes.iter().any(|a| a == r)
    }
}

impl GraphConfig {
    /// Checks everything that can be checked without the service.
    pub fn validate(&self) -> Result<(), GraphConfigError> {
        let mut problems = Vec::new();
        for (key, url) in [
            ("graph_url", &self.graph_url),
            ("authority", &self.authority),
        ] {
            match url::Url::parse(url) {
                Ok(u) if u.scheme() != "https" => problems.push(format!(
                    "`{key}` must be an https:// URL (tokens and secrets cross it), not `{}://…`",
                    u.scheme()
                )),
                Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                    problems.push(format!("`{key}` must not hold credentials"))
                }
                Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                    problems.push(format!("`{key}` must not have a query or a fragment"))
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("`{key}` is not a URL ({e}): `{url}`")),
            }
        }
        if self.tenant.trim().is_empty()
            || !self
                .tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        {
            problems.push(format!(
                "`tenant` must be the tenant's GUID or one of its domains, not `{}`",
                self.tenant
            ));
        }
        if self.client_id.trim().is_empty() {
            problems.push("`client_id` is empty".into());
        }
        match (&self.client_secret, &self.client_certificate) {
            (None, None) => problems
                .push("give the app's credential: `client_secret` or `client_certificate`".into()),
            (Some(_), Some(_)) => problems
                .push("`client_secret` and `client_certificate` are both set: give one".into()),
            _ => {}
        }
        if self.object_types.is_empty() {
            problems.push("`object_types` must declare `user`, `group` or both".into());
        }
        for (name, ty) in &self.object_types {
            if !TYPES.contains(&name.as_str()) {
                problems.push(format!(
                    "object type `{name}`: Microsoft Graph types are `user` and `group`"
                ));
                continue;
            }
            if ty.attributes.is_empty() {
                problems.push(format!(
                    "object type `{name}`: `attributes` must list the properties to read"
                ));
            }
            for a in &ty.attributes {
                if a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    problems.push(format!(
                        "object type `{name}`: `{a}` is not a Graph property name"
                    ));
                } else if COMPLEX.contains(&a.as_str()) {
                    problems.push(format!(
                        "object type `{name}`: `{a}` holds JSON objects, which the connector does not map"
                    ));
                } else if READ_ONLY.contains(&a.as_str()) {
                    problems.push(format!(
                        "object type `{name}`: `{a}` is not an attribute (the id is the anchor; a password is made by `initial_password`)"
                    ));
                }
            }
            let other = reference_of(if name == "user" { "group" } else { "user" });
            if ty.attributes.iter().any(|a| a == other) {
                problems.push(format!(
                    "object type `{name}`: `{other}` belongs to the other type ({} are references on `{}`)",
                    other,
                    if name == "user" { "group" } else { "user" }
                ));
            }
            if let Some(p) = &ty.initial_password {
                if name != "user" {
                    problems.push(format!(
                        "object type `{name}`: `initial_password` is for users"
                    ));
                }
                if !(12..=256).contains(&p.length) {
                    problems.push("`initial_password.length` must be between 12 and 256".into());
                }
            }
        }
        if !(self.writes_per_second >= 0.01 && self.writes_per_second.is_finite()) {
            problems.push("`writes_per_second` must be a number of at least 0.01".into());
        }
        if self.export_batch_size == 0 {
            problems.push("`export_batch_size` must be at least 1".into());
        }
        if self.timeout_secs == 0 {
            problems.push("`timeout_secs` must be at least 1".into());
        }
        if self.attempts == 0 {
            problems.push("`attempts` must be at least 1".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(GraphConfigError(problems))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problems(extra: &str) -> Vec<String> {
        let text = format!(
            "tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\nclient_secret = {{ env = \"S\" }}\n{extra}"
        );
        let config: GraphConfig = toml::from_str(&text).unwrap();
        config.validate().map_or_else(|e| e.0, |()| Vec::new())
    }

    #[test]
    fn a_minimal_configuration_is_valid_with_the_public_endpoints() {
        let text = "tenant = \"t\"\nclient_id = \"a\"\nclient_secret = { env = \"S\" }\n[object_types.user]\nattributes = [\"displayName\", \"manager\"]\n";
        let config: GraphConfig = toml::from_str(text).unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.graph_url, "https://graph.microsoft.com/v1.0");
        assert_eq!(config.authority, "https://login.microsoftonline.com");
        assert_eq!(config.writes_per_second, 20.0);
    }

    #[test]
    fn every_problem_is_listed() {
        let p = problems(
            "graph_url = \"http://graph.example/v1.0\"\nauthority = \"https://u:p@login.example\"\nwrites_per_second = 0\n[object_types.user]\nattributes = [\"id\", \"members\", \"a b\"]\ninitial_password = { length = 6 }\n[object_types.device]\nattributes = [\"displayName\"]\n[object_types.group]\nattributes = [\"displayName\"]\ninitial_password = {}\n",
        );
        let text = p.join("\n");
        for expected in [
            "`graph_url` must be an https:// URL",
            "`authority` must not hold credentials",
            "`writes_per_second` must be a number of at least 0.01",
            "object type `user`: `id` is not an attribute",
            "object type `user`: `members` belongs to the other type",
            "object type `user`: `a b` is not a Graph property name",
            "`initial_password.length` must be between 12 and 256",
            "object type `device`: Microsoft Graph types are `user` and `group`",
            "object type `group`: `initial_password` is for users",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn a_secret_written_in_the_file_is_refused() {
        let text = "tenant = \"t\"\nclient_id = \"a\"\nclient_secret = \"hunter2\"\n[object_types.user]\nattributes = [\"displayName\"]\n";
        let e = toml::from_str::<GraphConfig>(text).unwrap_err().to_string();
        assert!(e.contains(crate::common::secret::LITERAL_SECRET), "{e}");
    }
}
